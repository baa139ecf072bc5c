"""PipelineServable, input validation before the model, and the repository's swaps."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from lockgate.errors import InferenceRequestError, ModelNotFoundError, ModelNotReadyError
from lockgate.serving.repository import ModelRepository
from lockgate.serving.servable import PipelineServable, Servable, TensorSpec, validate_columns

ROWS = {
    "bill_length_mm": np.array([38.0, 43.0, 48.0]),
    "flipper_length_mm": np.array([190.0, 202.0, 214.0]),
    "island": np.array(["Biscoe", "Dream", "Torgersen"], dtype=object),
}


class NeverCalled:
    def predict(self, x: np.ndarray) -> np.ndarray:
        raise AssertionError("the model must not run on an invalid request")

    predict_proba = predict


def test_metadata_from_transform(penguin_servable: PipelineServable) -> None:
    assert isinstance(penguin_servable, Servable)
    assert [(s.name, s.datatype) for s in penguin_servable.inputs] == [
        ("bill_length_mm", "FP64"),
        ("flipper_length_mm", "FP64"),
        ("island", "BYTES"),
    ]
    assert [(s.name, s.datatype, s.shape) for s in penguin_servable.outputs] == [
        ("predicted", "BYTES", [-1]),
        ("probabilities", "FP64", [-1, 3]),
    ]


def test_predicts_like_the_model(penguin_servable: PipelineServable) -> None:
    out = penguin_servable.predict(dict(ROWS))
    assert out["predicted"].tolist() == ["Adelie", "Chinstrap", "Gentoo"]
    features = penguin_servable.transform.apply(pa.table(ROWS))
    np.testing.assert_allclose(out["probabilities"], penguin_servable.model.predict_proba(features))


def test_missing_values_reach_the_transform(penguin_servable: PipelineServable) -> None:
    rows = dict(
        ROWS,
        bill_length_mm=np.array([None, 43.0, 48.0], dtype=object),
        island=np.array([None, "Dream", "Torgersen"], dtype=object),
    )
    assert len(penguin_servable.predict(rows)["predicted"]) == 3


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"island": None}, r"missing input 'island'; the model's inputs are \['bill_length_mm'"),
        (
            {"bill_length_mm": np.array([1.0, "x", 2.0], dtype=object)},
            "input 'bill_length_mm' expects numbers .* got 'x'",
        ),
        ({"island": np.array([1.0, 2.0, 3.0])}, "input 'island' expects strings"),
        ({"island": np.array(["a", 2, "c"], dtype=object)}, "input 'island' expects strings"),
        ({"islands": np.array(["a"], dtype=object)}, "unexpected input 'islands'.*'island'"),
        ({"island": np.array(["Dream"], dtype=object)}, "different numbers of rows"),
        ({k: np.array([], dtype=object) for k in ROWS}, "request has no rows"),
        ({"island": np.array([["Dream"]] * 3, dtype=object)}, "one value per row"),
    ],
)
def test_bad_columns_never_reach_the_model(
    penguin_servable: PipelineServable, change: dict, match: str
) -> None:
    servable = PipelineServable("p", "1", penguin_servable.transform, NeverCalled())
    rows = {k: v for k, v in (ROWS | change).items() if v is not None}
    with pytest.raises(InferenceRequestError, match=match):
        servable.predict(rows)


def test_validate_columns_casts_numbers() -> None:
    spec = [TensorSpec("x", "FP64"), TensorSpec("s", "BYTES")]
    out = validate_columns({"x": np.array([1, 2]), "s": np.array(["a", "b"])}, spec)
    assert out["x"].dtype == np.float64 and out["s"].dtype == object


class Named:
    platform = "test"
    inputs: list[TensorSpec] = []
    outputs: list[TensorSpec] = []

    def __init__(self, name: str, version: str) -> None:
        self.name, self.version = name, version

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {}


def test_repository_versions_and_swap() -> None:
    repo = ModelRepository()
    assert not repo.ready
    repo.expect("m")
    with pytest.raises(ModelNotReadyError, match="'m' is not loaded yet"):
        repo.get("m")
    repo.set(Named("m", "1"))
    repo.set(Named("m", "2"))
    assert repo.ready and repo.get("m").version == "2" and repo.get("m", "1").version == "1"
    repo.remove("m", "2")
    assert repo.get("m").version == "1" and repo.versions("m") == ["1"]
    with pytest.raises(ModelNotFoundError, match="no version '9'; versions are"):
        repo.get("m", "9")
    with pytest.raises(ModelNotFoundError, match=r"'mm' is not served.*did you mean 'm'"):
        repo.get("mm")
    repo.remove("m", "1")
    assert not repo.ready and repo.names() == []
