"""Canary: a traffic share for the candidate, or a shadow copy whose answers are only logged."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest

from lockgate.errors import ConfigError
from lockgate.serving.canary import CanaryServable
from lockgate.serving.servable import TensorSpec


class Constant:
    platform = "test"
    inputs = [TensorSpec("x", "FP64")]
    outputs = [TensorSpec("y", "FP64")]

    def __init__(self, version: str, value: float, *, fail: bool = False) -> None:
        self.name, self.version, self.value, self.fail = "m", version, value, fail
        self.calls = 0

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls += 1
        if self.fail:
            raise RuntimeError("candidate is broken")
        return {"y": np.full(len(columns["x"]), self.value)}


def test_split_sends_about_percent_of_requests_to_the_candidate() -> None:
    primary, candidate = Constant("1", 1.0), Constant("2", 2.0)
    canary = CanaryServable(primary, candidate, 20, rng=random.Random(7))
    versions = [canary.predict_versioned({"x": np.array([0.0])})[0] for _ in range(2000)]
    share = versions.count("2") / len(versions)
    assert 0.17 < share < 0.23
    assert (canary.stats.primary, canary.stats.candidate) == (
        versions.count("1"),
        versions.count("2"),
    )
    assert (canary.name, canary.version, canary.inputs) == ("m", "1", primary.inputs)
    assert canary.predict({"x": np.array([0.0, 0.0])})["y"].shape == (2,)
    canary.close()


def test_zero_and_hundred_percent_are_exact() -> None:
    primary, candidate = Constant("1", 1.0), Constant("2", 2.0)
    none = CanaryServable(primary, candidate, 0)
    every = CanaryServable(primary, candidate, 100)
    assert {none.predict_versioned({"x": np.array([0.0])})[0] for _ in range(200)} == {"1"}
    assert {every.predict_versioned({"x": np.array([0.0])})[0] for _ in range(200)} == {"2"}


def test_shadow_answers_with_the_primary_and_logs_the_candidate() -> None:
    primary, candidate = Constant("1", 1.0), Constant("2", 2.0)
    seen: list[tuple[str, list[float]]] = []
    done = threading.Semaphore(0)

    def on_shadow(servable, columns, outputs, error) -> None:  # type: ignore[no-untyped-def]
        seen.append((servable.version, outputs["y"].tolist()))
        done.release()

    canary = CanaryServable(primary, candidate, 50, shadow=True, on_shadow=on_shadow)
    answers = [canary.predict({"x": np.array([float(i)])})["y"].tolist() for i in range(20)]
    for _ in range(20):
        assert done.acquire(timeout=5)
    canary.close()
    assert answers == [[1.0]] * 20  # the caller never sees the candidate
    assert seen == [("2", [2.0])] * 20 and canary.stats.shadow == 20


def test_a_failing_shadow_never_fails_a_request() -> None:
    errors: list[Exception] = []
    canary = CanaryServable(
        Constant("1", 1.0),
        Constant("2", 0.0, fail=True),
        100,
        shadow=True,
        on_shadow=lambda s, c, o, e: errors.append(e),  # type: ignore[arg-type,func-returns-value]
    )
    assert canary.predict({"x": np.array([1.0])})["y"].tolist() == [1.0]
    canary.close()
    assert canary.stats.shadow_errors == 1 and "broken" in str(errors[0])


def test_percent_and_names_are_checked() -> None:
    with pytest.raises(ConfigError, match="between 0 and 100; got 120"):
        CanaryServable(Constant("1", 1), Constant("2", 2), 120)
    other = Constant("2", 2)
    other.name = "other"
    with pytest.raises(ConfigError, match="two versions of one model"):
        CanaryServable(Constant("1", 1), other, 10)
