"""Adaptive batching: under concurrency every caller gets its own rows back, batches really
form, and one bad request never fails the others."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from lockgate.errors import ConfigError, InferenceRequestError
from lockgate.serving.batching import BatchingServable
from lockgate.serving.servable import PipelineServable, TensorSpec

ISLANDS = np.array(["Biscoe", "Dream", "Torgersen"], dtype=object)


class Counting:
    """Forwards to a servable and records the size of every call it gets."""

    def __init__(self, inner: PipelineServable) -> None:
        self.inner = inner
        self.name, self.version, self.platform = inner.name, inner.version, inner.platform
        self.inputs, self.outputs = inner.inputs, inner.outputs
        self.calls: list[int] = []
        self.lock = threading.Lock()

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self.lock:
            self.calls.append(len(columns["island"]))
        return self.inner.predict(columns)


def request(i: int, rows: int = 1) -> dict[str, np.ndarray]:
    """Distinct rows per caller, so a mixed-up answer would show."""
    idx = (np.arange(rows) + i) % 3
    return {
        "bill_length_mm": 36.0 + 0.1 * i + 5.0 * idx,
        "flipper_length_mm": 188.0 + 0.2 * i + 12.0 * idx,
        "island": ISLANDS[idx],
    }


def test_64_concurrent_callers_each_get_their_own_answer(
    penguin_servable: PipelineServable,
) -> None:
    inner = Counting(penguin_servable)
    batching = BatchingServable(inner, max_batch_size=32, max_wait_ms=20)
    start = threading.Barrier(64)

    def call(i: int) -> dict[str, np.ndarray]:
        start.wait()
        return batching.predict(request(i, rows=1 + i % 3))

    try:
        with ThreadPoolExecutor(64) as pool:
            answers = list(pool.map(call, range(64)))
    finally:
        batching.close()
    for i, answer in enumerate(answers):
        expected = penguin_servable.predict(request(i, rows=1 + i % 3))
        assert answer["predicted"].tolist() == expected["predicted"].tolist()
        np.testing.assert_allclose(answer["probabilities"], expected["probabilities"])
    assert sum(inner.calls) == sum(1 + i % 3 for i in range(64))
    assert len(inner.calls) < 64 / 4  # batches formed
    assert max(inner.calls) <= 32 and batching.stats.largest_batch <= 32
    assert batching.stats.requests == 64 and batching.stats.batches == len(inner.calls)


def test_a_lone_request_waits_at_most_max_wait(penguin_servable: PipelineServable) -> None:
    batching = BatchingServable(penguin_servable, max_batch_size=64, max_wait_ms=1)
    try:
        assert batching.predict(request(0, rows=2))["predicted"].tolist() == [
            "Adelie",
            "Chinstrap",
        ]
        assert (batching.name, batching.version) == ("penguins", "2")
        assert batching.inputs == penguin_servable.inputs
    finally:
        batching.close()
    # closed: calls go straight to the model
    assert len(batching.predict(request(1))["predicted"]) == 1


class FailsOnRow:
    """Fails whenever a batch contains the poisoned value: the others must still succeed."""

    name, version, platform = "m", "1", "test"
    inputs = [TensorSpec("x", "FP64")]
    outputs = [TensorSpec("y", "FP64")]

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = np.asarray(columns["x"], dtype=np.float64)
        if (x == 13.0).any():
            raise RuntimeError("unlucky row")
        return {"y": x * 10}


def test_one_bad_request_never_fails_the_others() -> None:
    batching = BatchingServable(FailsOnRow(), max_batch_size=64, max_wait_ms=30)
    start = threading.Barrier(16)

    def call(i: int) -> object:
        start.wait()
        if i == 5:
            columns = {"x": np.array(["not a number"], dtype=object)}
        else:
            columns = {"x": np.array([float(i)])}
        try:
            return batching.predict(columns)["y"].tolist()
        except Exception as exc:  # noqa: BLE001
            return exc

    try:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(call, range(16)))
    finally:
        batching.close()
    for i, result in enumerate(results):
        if i == 5:
            assert isinstance(result, InferenceRequestError)
        elif i == 13:
            assert isinstance(result, RuntimeError) and "unlucky" in str(result)
        else:
            assert result == [i * 10.0]


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="max_batch_size must be at least 1; got 0"):
        BatchingServable(FailsOnRow(), max_batch_size=0)
    with pytest.raises(ConfigError, match="max_wait_ms must be 0 or more"):
        BatchingServable(FailsOnRow(), max_wait_ms=-1)
