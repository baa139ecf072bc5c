"""The request log: sampled, off the request path, Parquet with the raw feature columns,
registered as InferenceLog artifacts that lead back to the pushed model."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from lockgate.errors import ConfigError
from lockgate.metadata.store import SqlMetadataStore
from lockgate.serving.request_log import LoggingServable, RequestLogger
from lockgate.serving.servable import PipelineServable

ROWS = {
    "bill_length_mm": np.array([38.0, 43.0, np.nan]),
    "flipper_length_mm": np.array([190.0, 202.0, 214.0]),
    "island": np.array(["Biscoe", None, "Torgersen"], dtype=object),
}


def test_rows_are_written_with_raw_features_and_registered(
    store: SqlMetadataStore, tmp_path: Path, penguin_servable: PipelineServable, push_version
) -> None:
    source = push_version(store).artifact
    logger = RequestLogger(tmp_path / "artifacts", store=store, flush_rows=6)
    served = LoggingServable(penguin_servable, logger, source=source)
    answers = [served.predict(dict(ROWS)) for _ in range(3)]  # 9 rows: one file of 6, then 3
    assert answers[0]["predicted"].tolist()[:2] == ["Adelie", "Chinstrap"]
    logger.close()
    assert logger.stats.rows_written == 9 and logger.stats.files == 2
    logs = store.artifacts_of_type("InferenceLog")
    assert len(logs) == 2 and sum(a.properties["rows"] for a in logs) == 9
    table = pq.read_table(Path(logs[0].uri) / "part-0.parquet")
    assert table.column_names[:3] == ["bill_length_mm", "flipper_length_mm", "island"]
    assert table.column("island").to_pylist()[:3] == ["Biscoe", None, "Torgersen"]
    assert table.column("_model_version").to_pylist()[0] == "2"
    assert table.column("_output_predicted").to_pylist()[0] == "Adelie"
    assert table.column("_output_probabilities").type.list_size == 3
    assert logs[0].fingerprint and logs[0].properties["model_name"] == "penguins"
    producer = store.producer(logs[0].id)
    assert producer is not None and producer.component == "request_log"
    inputs = store.execution_artifacts(producer.id, "input")
    assert inputs["pushed_model"].id == source.id  # lineage: log -> model


def test_a_log_reads_like_training_data(tmp_path: Path, penguin_servable) -> None:
    """The statistics of a log's features come out as those of a data file would."""
    from lockgate.data.statistics import compute_statistics

    logger = RequestLogger(tmp_path, flush_rows=1000)
    LoggingServable(penguin_servable, logger).predict(dict(ROWS))
    logger.close()
    stats = compute_statistics([logger.stats.artifacts[0].uri])
    assert stats["num_rows"] == 3
    assert stats["features"]["island"]["missing"] == 1
    assert stats["features"]["bill_length_mm"]["type"] == "float"


def test_flushes_on_time_and_samples(tmp_path: Path, penguin_servable) -> None:
    logger = RequestLogger(tmp_path, sample_rate=0.5, flush_interval_s=0.2, rng=random.Random(3))
    served = LoggingServable(penguin_servable, logger)
    for _ in range(200):
        served.predict({k: v[:1] for k, v in ROWS.items()})
    assert 70 < logger.stats.sampled < 130
    deadline = time.monotonic() + 5
    while logger.stats.rows_written < logger.stats.sampled and time.monotonic() < deadline:
        time.sleep(0.05)
    assert logger.stats.rows_written == logger.stats.sampled  # written without close()
    logger.close()
    assert not LoggingServable(penguin_servable, logger).request_logger.log(
        penguin_servable, dict(ROWS), {}
    )  # closed: nothing more is taken


def test_a_full_queue_drops_instead_of_blocking(tmp_path: Path, penguin_servable) -> None:
    blocker = threading.Event()
    logger = RequestLogger(tmp_path, max_queue=5, flush_rows=1)
    original = logger._write
    logger._write = lambda records: (blocker.wait(10), original(records))  # type: ignore[method-assign]
    served = LoggingServable(penguin_servable, logger)
    started = time.perf_counter()
    for _ in range(50):
        served.predict({k: v[:1] for k, v in ROWS.items()})
    assert time.perf_counter() - started < 2.0
    assert logger.stats.dropped > 0 and logger.stats.sampled <= 6
    blocker.set()
    logger.close()
    assert logger.stats.rows_written == logger.stats.sampled


def test_a_failing_writer_never_fails_a_request(tmp_path: Path, penguin_servable, caplog) -> None:
    logger = RequestLogger(tmp_path, flush_rows=1)

    def broken(records: object) -> None:
        raise OSError("disk full")

    logger._write = broken  # type: ignore[method-assign,assignment]
    served = LoggingServable(penguin_servable, logger)
    assert len(served.predict(dict(ROWS))["predicted"]) == 3
    logger.close()
    assert logger.stats.failures == 1 and "could not write" in caplog.text


def test_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sample rate must be between 0 and 1; got 2"):
        RequestLogger(tmp_path, sample_rate=2)


class _Named:
    """Just what the request log reads of a servable: its name and version."""

    name = "m"
    version = "3"


def test_requests_of_several_shapes_are_joined_column_by_column(tmp_path: Path) -> None:
    """One file holds a model version's requests in order: each request's rows under its own
    request id and time; a request whose columns differ in kind (a number where strings
    were) goes to a file of its own instead of failing the others'."""
    logger = RequestLogger(tmp_path, flush_rows=100_000)
    sent = []
    for rows in (1, 3, 2):
        x = np.arange(rows, dtype=np.float64) + 10 * rows
        sent.append(x)
        columns = {"x": x, "k": np.array(["a"] * rows, dtype=object)}
        outputs = {"label": np.arange(rows), "probabilities": np.tile([0.25, 0.75], (rows, 1))}
        assert logger.log(_Named(), columns, outputs)
    odd = {"x": np.array([7.0]), "k": np.array([5])}
    assert logger.log(_Named(), odd, {"label": np.array([9]), "probabilities": [[0.5, 0.5]]})
    logger.close()
    assert logger.stats.failures == 0
    joined, alone = logger.stats.artifacts
    assert joined.properties["rows"] == 6 and joined.properties["requests"] == 3
    table = pq.read_table(joined.path / "part-0.parquet")
    assert table.column("x").to_pylist() == np.concatenate(sent).tolist()
    assert table.column("k").to_pylist() == ["a"] * 6
    assert table.column("_output_label").to_pylist() == [0, 0, 1, 2, 0, 1]
    assert table.column("_output_probabilities").to_pylist()[-1] == [0.25, 0.75]
    ids = table.column("_request_id").to_pylist()
    assert [len(set(ids[a:b])) for a, b in ((0, 1), (1, 4), (4, 6))] == [1, 1, 1]
    assert len(set(ids)) == 3
    stamps = table.column("_timestamp").to_pylist()
    assert stamps == sorted(stamps) and stamps[1] == stamps[3]
    assert set(table.column("_model_name").to_pylist()) == {"m"}
    assert set(table.column("_model_version").to_pylist()) == {"3"}
    assert table.column("_shadow").to_pylist() == [False] * 6
    other = pq.read_table(alone.path / "part-0.parquet")
    assert other.column("k").to_pylist() == [5] and other.column("_output_label").to_pylist() == [9]
