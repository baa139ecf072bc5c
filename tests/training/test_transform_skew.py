"""The skew test: for every transform, the matrix that training computes from raw rows
(``graph.apply`` of an Arrow table) equals the one the model server computes from the same
rows sent as a request, decoded by the server's own code (OIP V2 and TF-Serving V1 bodies,
``app._columns``, ``PipelineServable.predict``), missing values and unseen categories
included: exactly for integer values, to 1e-12 for the others."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import transform_functions
from transform_data import fit, generated

from lockgate import transforms as T
from lockgate.serving import oip_v2, tfserving_v1
from lockgate.serving.app import _columns
from lockgate.serving.servable import PipelineServable, read_samples, typical_rows
from lockgate.training.transform import TransformGraph

CASES: dict[str, list[Any]] = {
    "defaults only (format 1)": [],
    "zscore": [T.zscore("x"), T.zscore("count")],
    "min_max": [T.min_max("amount"), T.min_max("count")],
    "log": [T.log("amount"), T.log("count", output="log_count")],
    "clip": [T.clip("x", lower=3.0, upper=7.0), T.clip("count", upper=4)],
    "bucketize": [T.bucketize("x", buckets=5), T.bucketize("count", buckets=3)],
    "vocabulary ids": [T.vocabulary("city", top_k=2, oov_buckets=3), T.vocabulary("count")],
    "vocabulary + one_hot": [T.vocabulary("city", top_k=3), T.one_hot("city")],
    "one_hot": [T.one_hot("city"), T.one_hot("flag"), T.one_hot("count")],
    "hashing": [T.hashing("city", buckets=8), T.hashing("count", buckets=4), T.one_hot("count")],
    "impute mean": [T.impute("x", strategy="mean")],
    "impute median": [T.impute("x", strategy="median", output="x_filled")],
    "impute most_frequent": [T.impute("count", strategy="most_frequent"), T.impute("city", strategy="most_frequent")],
    "impute constant": [T.impute("x", strategy="constant", value=0.5), T.impute("city", strategy="constant", value="none")],
    "cross": [T.cross(["city", "flag"], buckets=16), T.one_hot("city_x_flag"), T.cross(["city", "count"], buckets=5)],
    "date_parts": [T.date_parts("ts", parts=["year", "quarter", "month", "day", "dayofweek", "dayofyear", "hour", "minute", "second"])],
    "row_function": [
        T.row_function(transform_functions.text_and_time, inputs=["city", "ts"], outputs=["city_length", "days"]),
        T.zscore("days"),
    ],
    "chain": [T.impute("amount", strategy="median"), T.log("amount"), T.zscore("amount"), T.bucketize("x", buckets=4), T.one_hot("x")],
}  # fmt: skip


class Recorder:
    """A model that keeps the matrix the server hands it."""

    def __init__(self, classes: int) -> None:
        self.classes = classes
        self.seen: np.ndarray | None = None

    def predict_with_proba(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.seen = X
        n = len(X)
        return np.zeros(n, np.int64), np.full((n, self.classes), 1 / self.classes)


def raw_rows() -> tuple[pa.Table, pa.Table]:
    """Train rows, and rows to send: eval rows, a row with unseen values, one all missing."""
    table = generated(n=400)
    train, rows = table.slice(0, 300), table.slice(300)
    odd = pa.table(
        {
            "x": pa.array([1e6, None], pa.float64()),
            "amount": pa.array([0.0, None], pa.float64()),
            "count": pa.array([123, None], pa.int64()),
            "city": pa.array(["tokyo", None]),
            "flag": pa.array([True, None]),
            "ts": pa.array([dt.datetime(1999, 12, 31, 23, 59, 59), None], pa.timestamp("us")),
            "y": pa.array(["a", None]),
        }
    )
    return train, pa.concat_tables([rows, odd.cast(rows.schema)])


def _json(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _body(servable: PipelineServable, table: pa.Table, protocol: str) -> bytes:
    columns = {
        spec.name: [_json(v) for v in table.column(spec.name).to_pylist()]
        for spec in servable.inputs
    }
    if protocol == "v1":
        return json.dumps({"inputs": columns}).encode()
    inputs = [
        {"name": spec.name, "datatype": spec.datatype, "shape": [table.num_rows], "data": columns[spec.name]}
        for spec in servable.inputs
    ]  # fmt: skip
    return json.dumps({"inputs": inputs}).encode()


def served(graph: TransformGraph, table: pa.Table, protocol: str) -> np.ndarray:
    """What the server computes from ``table`` sent as a JSON request."""
    model = Recorder(len(graph.label_classes or [0]))
    servable = PipelineServable("skew", "1", graph, model)
    body = _body(servable, table, protocol)
    if protocol == "v1":
        columns = tfserving_v1.decode_predict(body, servable.inputs).columns
    else:
        columns = _columns(oip_v2.decode_request(body), servable)
    servable.predict(columns)
    assert model.seen is not None
    return model.seen


def assert_no_skew(trained: np.ndarray, serving: np.ndarray) -> None:
    assert trained.shape == serving.shape
    integral = np.all(trained == np.round(trained), axis=0)
    np.testing.assert_array_equal(serving[:, integral], trained[:, integral])
    np.testing.assert_allclose(serving[:, ~integral], trained[:, ~integral], rtol=0, atol=1e-12)


def graph_for(specs: list[Any], train: pa.Table) -> TransformGraph:
    if not specs:
        features = [c for c in train.column_names if c not in ("y", "ts")]
        return TransformGraph.fit(train, label="y", features=features)
    return fit(train, specs, label="y")


@pytest.mark.parametrize("protocol", ["v2", "v1"])
@pytest.mark.parametrize("case", list(CASES))
def test_training_and_serving_compute_the_same_matrix(case: str, protocol: str) -> None:
    train, rows = raw_rows()
    graph = graph_for(CASES[case], train)
    trained = graph.apply(rows)
    assert trained.shape == (rows.num_rows, len(graph.feature_names_out))
    assert np.isfinite(trained).all()
    assert_no_skew(trained, served(graph, rows, protocol))


@pytest.mark.parametrize("case", [c for c in CASES if CASES[c]])
def test_no_skew_after_a_json_round_trip(case: str) -> None:
    """The server loads transform.json; what it loads computes what training fitted."""
    train, rows = raw_rows()
    graph = graph_for(CASES[case], train)
    loaded = TransformGraph.from_dict(json.loads(json.dumps(graph.to_dict())))
    assert_no_skew(graph.apply(rows), served(loaded, rows, "v2"))


def test_every_transform_has_a_skew_case() -> None:
    ops: set[str] = set()
    for specs in CASES.values():
        ops.update(spec.op for spec in specs)
    builders: list[Callable[..., Any]] = [
        getattr(T, name)
        for name in T.__all__
        if name.islower() and name not in ("resolve_function", "spec_from_dict")
    ]
    assert {fn.__name__ for fn in builders} == ops


@pytest.mark.parametrize("case", list(CASES))
def test_the_warm_up_rows_of_every_graph_are_served(case: str, tmp_path: Path) -> None:
    """push writes typical rows for the server to warm up with; each graph must take them."""
    train, _ = raw_rows()
    graph = graph_for(CASES[case], train)
    rows = typical_rows(graph)
    assert set(rows) == set(graph.features)
    (tmp_path / "samples.json").write_text(json.dumps({"inputs": rows}))
    servable = PipelineServable("skew", "1", graph, Recorder(2))
    servable.predict(read_samples(tmp_path, graph))
    assert servable.model.seen is not None and np.isfinite(servable.model.seen).all()
