"""Requests to a fast model that arrive together share one call into it, on the event loop:
the batcher on its own, and through a real uvicorn with many clients at once."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest

from lockgate.errors import ConfigError
from lockgate.serving.app import create_app
from lockgate.serving.loop_batching import LoopBatcher
from lockgate.serving.repository import ModelRepository
from lockgate.serving.request_log import LoggingServable, RequestLogger
from lockgate.serving.servable import TensorSpec, ValidColumns, as_chain, validate_columns

Serve = Callable[[Any], str]
SPECS = [TensorSpec("x", "FP64", [-1])]


class Tripler:
    """Answers 3x; a negative x is a model error (for that row's request only, when alone).
    Notes the rows of every call."""

    name, version, platform = "triple", "1", "test"
    inputs = SPECS
    outputs = [TensorSpec("y", "FP64", [-1])]

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = np.asarray(columns["x"], dtype=np.float64)
        self.calls.append(len(x))
        if (x < 0).any():
            raise ValueError("negative x")
        return {"y": 3 * x}


def _columns(*values: float) -> ValidColumns:
    return validate_columns({"x": np.array(values, dtype=np.float64)}, SPECS)


def _run(model: Tripler, requests: list[ValidColumns], max_rows: int = 1024) -> list[Any]:
    chain = as_chain(model)

    def predict(servable: Any, columns: ValidColumns) -> tuple[str, dict[str, np.ndarray]]:
        return servable.predict_versioned(columns)

    batcher = LoopBatcher(predict, max_rows=max_rows)

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(batcher.predict(chain, c) for c in requests), return_exceptions=True
        )

    return asyncio.run(main())


def test_requests_of_one_turn_share_one_call_and_get_their_own_rows() -> None:
    model = Tripler()
    answers = _run(model, [_columns(1.0), _columns(2.0, 3.0), _columns(4.0)])
    assert model.calls == [4]
    assert [a.outputs["y"].tolist() for a in answers] == [[3.0], [6.0, 9.0], [12.0]]
    assert {a.version for a in answers} == {"1"}


def test_a_batch_stops_at_max_rows_and_the_rest_goes_in_the_next_call() -> None:
    model = Tripler()
    answers = _run(model, [_columns(1.0, 2.0), _columns(3.0, 4.0), _columns(5.0)], max_rows=3)
    assert model.calls == [2, 3]
    assert [a.outputs["y"].tolist() for a in answers] == [[3.0, 6.0], [9.0, 12.0], [15.0]]


def test_when_the_merged_call_fails_each_request_gets_its_own_answer_or_error() -> None:
    model = Tripler()
    answers = _run(model, [_columns(1.0), _columns(-1.0), _columns(2.0)])
    assert model.calls == [3, 1, 1, 1]  # merged, then each alone
    assert answers[0].outputs["y"].tolist() == [3.0]
    assert isinstance(answers[1], ValueError)
    assert answers[2].outputs["y"].tolist() == [6.0]


def test_the_request_log_keeps_one_record_per_request_of_a_merged_call(tmp_path: Path) -> None:
    logger = RequestLogger(tmp_path, flush_rows=100_000, rng=random.Random(0))
    model = Tripler()
    answers = _run_logged(model, logger, [_columns(1.0), _columns(2.0, 3.0)])
    logger.close()
    assert model.calls == [3] and len(answers) == 2
    (artifact,) = logger.stats.artifacts
    assert artifact.properties["requests"] == 2
    table = pq.read_table(artifact.path / "part-0.parquet")
    assert table.column("x").to_pylist() == [1.0, 2.0, 3.0]
    assert table.column("_output_y").to_pylist() == [3.0, 6.0, 9.0]
    ids = table.column("_request_id").to_pylist()
    assert ids[1] == ids[2] != ids[0]


def _run_logged(model: Tripler, logger: RequestLogger, requests: list[ValidColumns]) -> list[Any]:
    chain = as_chain(LoggingServable(model, logger))
    batcher = LoopBatcher(lambda servable, columns: servable.predict_versioned(columns))

    async def main() -> list[Any]:
        return await asyncio.gather(*(batcher.predict(chain, c) for c in requests))

    return asyncio.run(main())


def test_many_clients_at_once_through_uvicorn_share_calls_and_each_gets_its_answer(
    serve_app: Serve,
) -> None:
    model = Tripler()
    url = serve_app(create_app(ModelRepository([model])))

    def body(x: float) -> dict[str, Any]:
        return {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [x]}]}

    async def clients() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url) as http:
            for _ in range(10):  # answered alone first: the model is known to be fast
                await http.post("/v2/models/triple/infer", json=body(0.5))
            sends = [http.post("/v2/models/triple/infer", json=body(float(i))) for i in range(64)]
            sends.append(http.post("/v2/models/triple/infer", json=body(-1.0)))
            sends.append(http.post("/v2/models/triple/infer", json={"inputs": "bad"}))
            return list(await asyncio.gather(*sends))

    for _ in range(3):  # a busy machine may preempt the server into answering one by one
        model.calls.clear()
        answers = asyncio.run(clients())
        for i, answer in enumerate(answers[:64]):
            assert answer.status_code == 200, answer.text
            assert answer.json()["outputs"][0]["data"] == [3.0 * i]
        assert answers[64].status_code == 500 and "negative x" in answers[64].text
        assert answers[65].status_code == 400
        if max(model.calls) > 1:
            break
    assert max(model.calls) > 1  # some calls carried several requests
    assert sum(model.calls) >= 66  # every request's row went in (some twice: alone again)


def test_batch_max_rows_one_answers_every_request_alone(serve_app: Serve) -> None:
    """``[serve] batch_max_size = 1`` turns batching off on the loop too."""
    model = Tripler()
    url = serve_app(create_app(ModelRepository([model]), batch_max_rows=1))

    async def clients() -> list[httpx.Response]:
        body = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [2], "data": [1.0, 2.0]}]}
        async with httpx.AsyncClient(base_url=url) as http:
            for _ in range(10):
                await http.post("/v2/models/triple/infer", json=body)
            sends = [http.post("/v2/models/triple/infer", json=body) for _ in range(32)]
            return list(await asyncio.gather(*sends))

    answers = asyncio.run(clients())
    assert all(a.json()["outputs"][0]["data"] == [3.0, 6.0] for a in answers)
    assert set(model.calls) == {2}  # a two-row request per call, never more


def test_create_app_refuses_a_batch_size_below_one() -> None:
    with pytest.raises(ConfigError, match="'batch_max_rows' parameter of create_app"):
        create_app(ModelRepository([Tripler()]), batch_max_rows=0)
