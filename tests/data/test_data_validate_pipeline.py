"""The data gate inside a pipeline: drift against the previous span, duplicate keys on the
data, the HTML reports the artifacts carry, and the skew step on the serving request log."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lockgate import Pipeline, run_pipeline
from lockgate.components import (
    check_skew,
    compute_statistics,
    infer_schema,
    ingest,
    latest_inference_log,
    previous_span_statistics,
    validate_examples,
)
from lockgate.metadata.store import SqlMetadataStore
from lockgate.serving.request_log import RequestLogger
from lockgate.serving.servable import TensorSpec

SCHEMA = """\
features:
  id: {type: int}
  x: {type: float, drift_threshold: 0.1}
  c: {type: string, domain: [a, b]}
"""


def _write_span(root: Path, span: int, *, shift: float = 0.0, seed: int = 0, ids=None) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    ids = range(n) if ids is None else ids
    x = rng.normal(shift, 1.0, n)
    c = rng.choice(["a", "b"], n)
    folder = root / "data" / f"span-{span}"
    folder.mkdir(parents=True)
    lines = [f"{i},{v:.4f},{k}" for i, v, k in zip(ids, x, c, strict=True)]
    (folder / "d.csv").write_text("id,x,c\n" + "\n".join(lines) + "\n")


def _validation_pipeline(*, with_examples: bool = True, stop_on: str = "error") -> Pipeline:
    examples = ingest(path="data/span-{SPAN}/d.csv")
    statistics = compute_statistics(examples=examples.outputs.examples)
    schema = infer_schema(statistics=statistics.outputs.statistics, schema_file="schema.yaml")
    validation = validate_examples(
        statistics=statistics.outputs.statistics,
        schema=schema.outputs.schema,
        previous_statistics=previous_span_statistics(),
        examples=examples.outputs.examples if with_examples else None,
        stop_on=stop_on,
    )
    return Pipeline("spans", [examples, statistics, schema, validation])


def _run(project: Path, pipeline: Pipeline):  # -> RunResult
    store = SqlMetadataStore(f"sqlite:///{project / 'm.db'}")
    try:
        return run_pipeline(pipeline, store=store, artifact_root=project / "a", project_dir=project)
    finally:
        store.close()


def test_a_shifted_span_is_stopped_as_drift_against_the_span_before(tmp_path: Path) -> None:
    (tmp_path / "schema.yaml").write_text(SCHEMA)
    _write_span(tmp_path, 1, seed=1)
    first = _run(tmp_path, _validation_pipeline())
    assert first.ok, first.error
    validation = first.steps["validate_examples"].outputs["anomalies"]
    assert validation.properties["compared_with_previous"] is False

    _write_span(tmp_path, 2, seed=2)  # same distribution, fresh sample: no false alarm
    second = _run(tmp_path, _validation_pipeline())
    assert second.ok, second.error
    validation = second.steps["validate_examples"].outputs["anomalies"]
    assert validation.properties["compared_with_previous"] is True
    assert validation.properties["errors"] == 0

    _write_span(tmp_path, 3, shift=3.0, seed=3)
    third = _run(tmp_path, _validation_pipeline())
    assert not third.ok
    assert "divergence to the previous span" in str(third.error)
    blocked = {(a["split"], a["feature"], a["kind"]) for a in third.error.anomalies}
    assert blocked == {("train", "x", "drift"), ("eval", "x", "drift")}  # c did not move


def test_repeated_keys_stop_the_run_with_their_count(tmp_path: Path) -> None:
    (tmp_path / "schema.yaml").write_text("key: [id]\n" + SCHEMA)
    _write_span(tmp_path, 1, ids=[i % 390 for i in range(400)])  # 10 ids repeat
    result = _run(tmp_path, _validation_pipeline())
    assert not result.ok
    assert "saw 10 rows repeating a key" in str(result.error)  # over train and eval at once
    blocked = [(a["split"], a["kind"], a["seen"]) for a in result.error.anomalies]
    assert blocked == [("all", "duplicate_key", 10)]


def test_a_declared_key_without_the_examples_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "schema.yaml").write_text("key: [id]\n" + SCHEMA)
    _write_span(tmp_path, 1)
    result = _run(tmp_path, _validation_pipeline(with_examples=False))
    assert not result.ok
    assert "declares the key ['id']" in str(result.error)
    assert "examples=" in str(result.error.hint)


def test_statistics_and_anomalies_artifacts_carry_an_html_report(tmp_path: Path) -> None:
    (tmp_path / "schema.yaml").write_text(SCHEMA.replace("domain: [a, b]", "domain: [a]"))
    _write_span(tmp_path, 1)
    result = _run(tmp_path, _validation_pipeline(stop_on="never"))
    assert result.ok, result.error
    statistics = result.steps["compute_statistics"].outputs["statistics"]
    page = (Path(statistics.uri) / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and ">x<" in page and "eval" in page
    anomalies = result.steps["validate_examples"].outputs["anomalies"]
    page = (Path(anomalies.uri) / "report.html").read_text()
    assert "unexpected_value" in page and "expected values in [&#39;a&#39;]" in page
    assert anomalies.properties["errors"] >= 1


class _ShiftedServable:
    """A served model whose answers do not matter; the log records its requests."""

    name, version, platform = "trips", "1", "test"
    inputs = [TensorSpec("id", "INT64", [-1]), TensorSpec("x", "FP64", [-1])]
    outputs = [TensorSpec("predicted", "BYTES", [-1])]

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"predicted": np.array(["yes"] * len(columns["x"]), dtype=object)}


def _skew_pipeline(stop_on: str = "error") -> Pipeline:
    examples = ingest(path="data/span-{SPAN}/d.csv")
    statistics = compute_statistics(examples=examples.outputs.examples)
    skew = check_skew(
        statistics=statistics.outputs.statistics,
        inference_log=latest_inference_log("trips"),
        stop_on=stop_on,
    )
    return Pipeline("skew", [examples, statistics, skew])


def test_the_skew_step_compares_training_data_with_the_request_log(tmp_path: Path) -> None:
    _write_span(tmp_path, 1)
    before = _run(tmp_path, _skew_pipeline())
    assert before.ok, before.error
    assert before.steps["check_skew"].outputs["skew"].properties["serving_rows"] == 0

    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        logger = RequestLogger(tmp_path / "a", store=store, flush_rows=10_000)
        rng = np.random.default_rng(7)
        servable = _ShiftedServable()
        for _ in range(20):  # production sees x shifted by 2
            columns = {"id": np.arange(10), "x": rng.normal(2.0, 1.0, 10)}
            logger.log(servable, columns, servable.predict(columns))
        logger.close()
    finally:
        store.close()

    after = _run(tmp_path, _skew_pipeline())
    assert after.ok, after.error  # over a default threshold is a warning, not a stop
    step = after.steps["check_skew"]
    assert step.status == "complete"  # a new log is a new input: not from the cache
    skew = step.outputs["skew"]
    assert skew.properties["serving_rows"] == 200
    assert "x" in [a["feature"] for a in skew.properties["anomalies"]]
    report = json.loads((Path(skew.uri) / "skew.json").read_text())
    features = {f["feature"]: f for f in report["features"]}
    assert set(features) == {"id", "x"}  # c was not served; _output_ columns are answers
    assert features["x"]["distance"] > features["x"]["threshold"]
    assert (Path(skew.uri) / "report.html").exists()


@pytest.mark.parametrize("stop_on", ["always", ""])
def test_a_bad_stop_on_is_named(tmp_path: Path, stop_on: str) -> None:
    _write_span(tmp_path, 1)
    result = _run(tmp_path, _skew_pipeline(stop_on))
    assert not result.ok
    assert "'stop_on' parameter of check_skew" in str(result.error)
