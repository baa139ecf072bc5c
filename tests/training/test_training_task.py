"""The task is decided from the label and said: a string, bool or few-valued integer label
is classification, a float label regression; ``task=`` overrides; classes keep their type
in transform.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from lockgate.errors import ConfigError
from lockgate.training import transform
from lockgate.training.transform import TransformGraph

WINE = Path(__file__).parents[1] / "testdata" / "data" / "wine.csv"


def _table(label: list | pa.Array) -> pa.Table:
    n = len(label)
    return pa.table({"x": np.linspace(0.0, 1.0, n), "y": label})


@pytest.mark.parametrize(
    ("label", "task", "reason"),
    [
        (
            pa.array([0, 1, 2, 1, 0, 2], pa.int64()),
            "classification",
            "label 'y' is integer with 3 distinct values, at most 50; task= overrides",
        ),
        (
            pa.array([1, 0, 1, 0], pa.int8()),
            "classification",
            "label 'y' is integer with 2 distinct values, at most 50; task= overrides",
        ),
        (
            list(range(51)),  # transform.MAX_INTEGER_CLASSES + 1
            "regression",
            "label 'y' is integer with 51 distinct values, over 50; task= overrides",
        ),
        ([0.5, 1.5, 2.0, 0.5], "regression", "label 'y' is double; task= overrides"),
        (["a", "b", "a", "b"], "classification", "label 'y' is string; task= overrides"),
        ([True, False, True, True], "classification", "label 'y' is bool; task= overrides"),
    ],
)
def test_the_task_follows_the_label_and_says_why(
    label: list | pa.Array, task: str, reason: str
) -> None:
    graph = TransformGraph.fit(_table(label), label="y")
    assert (graph.task, graph.task_reason) == (task, reason)


def test_the_wine_csv_target_is_classification_with_integer_classes(tmp_path: Path) -> None:
    wine = pacsv.read_csv(WINE)
    assert wine["target"].type == pa.int64()
    graph = TransformGraph.fit(wine, label="target")
    assert graph.task == "classification"
    assert graph.label_classes == [0, 1, 2]
    assert graph.decode_label(graph.encode_label(wine.slice(0, 1))) == [0]
    graph.save(tmp_path)
    assert json.loads((tmp_path / "transform.json").read_text())["label_classes"] == [0, 1, 2]
    loaded = TransformGraph.load(tmp_path)
    assert loaded.label_classes == [0, 1, 2] and type(loaded.label_classes[0]) is int
    assert loaded.task_reason == graph.task_reason


def test_bool_classes_round_trip_as_bools(tmp_path: Path) -> None:
    TransformGraph.fit(_table([True, False, True, False]), label="y").save(tmp_path)
    loaded = TransformGraph.load(tmp_path)
    assert loaded.label_classes == [False, True]
    assert loaded.task_reason == "label 'y' is bool; task= overrides"
    assert (
        '"label_classes": [\n    false,\n    true\n  ]' in (tmp_path / "transform.json").read_text()
    )


def test_task_overrides_and_the_reason_says_so() -> None:
    ids = _table([0, 1, 2, 1])
    graph = TransformGraph.fit(ids, label="y", task="regression")
    assert graph.task == "regression" and graph.label_classes is None
    assert graph.task_reason == (
        "set by task=; label 'y' is integer with 3 distinct values, at most 50"
    )
    floats = TransformGraph.fit(_table([1.0, 2.0, 1.0, 2.0]), label="y", task="classification")
    assert floats.task == "classification" and floats.label_classes == [1.0, 2.0]
    with pytest.raises(ConfigError, match=r"task must be one of \['classification', 'regr"):
        TransformGraph.fit(ids, label="y", task="ranking")
    with pytest.raises(ConfigError, match="regression needs a numeric label; 'y' is string"):
        TransformGraph.fit(_table(["a", "b"]), label="y", task="regression")


def test_a_dictionary_encoded_label_is_decided_by_its_values() -> None:
    label = pa.array(["a", "b", "a"]).dictionary_encode()
    assert transform.decide_task("y", pa.chunked_array([label])) == (
        "classification",
        "label 'y' is string; task= overrides",
    )


def test_a_transform_json_without_a_reason_still_loads(tmp_path: Path) -> None:
    graph = TransformGraph.fit(_table(["a", "b", "a"]), label="y")
    data = graph.to_dict()
    del data["task_reason"]  # written before the reason was recorded
    (tmp_path / "transform.json").write_text(json.dumps(data))
    loaded = TransformGraph.load(tmp_path)
    assert loaded.task == "classification" and loaded.task_reason == ""
