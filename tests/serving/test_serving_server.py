"""The server's assembly (``serving/server.py``) and the serving chain's protocol: a request
is validated once, at the edge, however many links it passes; a plain ``Servable`` gets the
chain's defaults."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from lockgate.errors import ConfigError
from lockgate.serving import servable as servable_module
from lockgate.serving.app import create_app
from lockgate.serving.batching import BatchingServable
from lockgate.serving.repository import ModelRepository
from lockgate.serving.servable import (
    PipelineServable,
    ServableWrapper,
    TensorSpec,
    ValidColumns,
    as_chain,
    validate_columns,
)
from lockgate.serving.server import build_server
from lockgate.settings import Settings

ROW = {"island": ["Biscoe"], "bill_length_mm": [45.1], "flipper_length_mm": [215.0]}


def test_a_request_is_validated_once_through_the_whole_chain(
    penguin_servable: PipelineServable,
    serve_app: Callable[[Any], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batched = BatchingServable(penguin_servable, max_batch_size=64, max_wait_ms=0)
    url = serve_app(create_app(ModelRepository([batched])))
    calls: list[str] = []
    typed = servable_module._typed_column

    def counting(spec: TensorSpec, column: np.ndarray) -> np.ndarray:
        calls.append(spec.name)
        return typed(spec, column)

    monkeypatch.setattr(servable_module, "_typed_column", counting)
    inputs = [
        {
            "name": k,
            "datatype": "BYTES" if isinstance(v[0], str) else "FP64",
            "shape": [1],
            "data": v,
        }
        for k, v in ROW.items()
    ]
    answer = httpx.post(f"{url}/v2/models/penguins/infer", json={"inputs": inputs})
    assert answer.status_code == 200, answer.text
    assert sorted(calls) == sorted(spec.name for spec in penguin_servable.inputs)
    batched.close()


def test_valid_columns_are_not_checked_again_for_the_same_specs() -> None:
    specs = [TensorSpec("x", "FP64"), TensorSpec("s", "BYTES")]
    valid = validate_columns({"x": np.array([1, 2]), "s": np.array(["a", "b"])}, specs)
    assert isinstance(valid, ValidColumns) and valid.rows == 2
    assert validate_columns(valid, specs) is valid
    assert validate_columns(valid, [TensorSpec("x", "FP64"), TensorSpec("s", "BYTES")]) is valid
    with pytest.raises(Exception, match="unexpected input 's'"):
        validate_columns(valid, [TensorSpec("x", "FP64")])  # other specs: checked again


class Plain:
    """Only the ``Servable`` protocol: no close, no predict_versioned."""

    name, version, platform = "plain", "3", "test"
    inputs = [TensorSpec("x", "FP64")]
    outputs = [TensorSpec("y", "FP64")]

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"y": np.asarray(columns["x"]) + 1}


def test_a_plain_servable_gets_the_chains_defaults() -> None:
    chain = as_chain(Plain())
    assert (chain.name, chain.version, chain.observes_batches) == ("plain", "3", False)
    version, outputs = chain.predict_versioned({"x": np.array([1.0])})
    assert version == "3" and outputs["y"].tolist() == [2.0]
    chain.close()  # nothing to close: no error
    batched = BatchingServable(Plain(), max_batch_size=4)
    assert isinstance(batched, ServableWrapper) and as_chain(batched) is batched
    assert not batched.observes_batches
    batched.close()


def test_build_server_refuses_a_registry_with_nothing_to_serve(tmp_path: Path) -> None:
    settings = Settings.load(tmp_path, environ={}, overrides={"serve_log_sample_rate": 0})
    with pytest.raises(ConfigError, match="no model in the registry to serve"):
        build_server(settings, [])
