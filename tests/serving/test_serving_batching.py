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


class Gated:
    """Holds every call until released, and records the thread and size of each call."""

    name, version, platform = "m", "1", "test"
    inputs = [TensorSpec("x", "FP64")]
    outputs = [TensorSpec("y", "FP64")]

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.calls: list[tuple[str, int]] = []

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls.append((threading.current_thread().name, len(columns["x"])))
        self.entered.set()
        self.release.wait(10)
        return {"y": np.asarray(columns["x"], dtype=np.float64) * 2}


def test_a_request_to_an_idle_model_is_answered_in_its_own_thread() -> None:
    gated = Gated()
    gated.release.set()
    batching = BatchingServable(gated, max_batch_size=64, max_wait_ms=0)
    try:
        assert batching.predict({"x": np.array([1.0, 2.0])})["y"].tolist() == [2.0, 4.0]
    finally:
        batching.close()
    assert gated.calls == [(threading.current_thread().name, 2)]  # no hand-off to a batcher
    assert batching.stats.requests == 1 and batching.stats.batches == 1


def test_requests_that_arrive_while_the_model_is_busy_go_in_together() -> None:
    gated = Gated()
    batching = BatchingServable(gated, max_batch_size=64, max_wait_ms=0)
    with ThreadPoolExecutor(9) as pool:
        first = pool.submit(batching.predict, {"x": np.array([100.0])})
        assert gated.entered.wait(5)  # the model is now busy with the first request
        later = [pool.submit(batching.predict, {"x": np.array([float(i)] * 3)}) for i in range(8)]
        while len(batching._queue) < 8:  # all eight are waiting for the model
            threading.Event().wait(0.005)
        gated.release.set()
        answers = [f.result(10)["y"].tolist() for f in later]
        assert first.result(10)["y"].tolist() == [200.0]
    batching.close()
    assert answers == [[2.0 * i] * 3 for i in range(8)]  # each caller its own rows
    sizes = [rows for _, rows in gated.calls]
    assert sizes == [1, 24]  # the eight queued requests went in as one batch
    assert gated.calls[1][0].startswith("lockgate-batcher-")
