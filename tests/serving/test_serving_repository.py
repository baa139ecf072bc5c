"""The repository counts requests per servable, swaps sets atomically, and releases an old
version only when no request uses it any more."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from lockgate.serving.repository import ModelRepository
from lockgate.serving.servable import Servable, TensorSpec


class Slow:
    """A servable whose predict blocks until the test lets it go; records close()."""

    platform = "test"
    inputs = [TensorSpec("x", "FP64")]
    outputs = [TensorSpec("y", "FP64")]

    def __init__(self, version: str) -> None:
        self.name, self.version = "m", version
        self.started = threading.Event()
        self.go = threading.Event()
        self.closed = False

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.started.set()
        assert self.go.wait(10)
        if self.closed:
            raise RuntimeError("used after close")
        return {"y": np.asarray(columns["x"]) * 2}

    def close(self) -> None:
        self.closed = True


def test_get_hands_out_a_counted_servable_that_keeps_the_protocol() -> None:
    slow = Slow("1")
    repo = ModelRepository([slow])
    handle = repo.get("m")
    assert isinstance(handle, Servable)
    assert (handle.name, handle.version, handle.platform) == ("m", "1", "test")
    assert handle.inputs == slow.inputs and handle.outputs == slow.outputs
    slow.go.set()
    assert handle.predict({"x": np.array([1.0])})["y"].tolist() == [2.0]
    assert repo.in_flight(handle) == 0 and repo.default_version("m") == "1"


def test_acquire_counts_the_whole_block() -> None:
    repo = ModelRepository([Slow("1")])
    with repo.acquire("m") as servable:
        assert servable.version == "1"
        assert repo.in_flight(repo.get("m")) == 1
    assert repo.in_flight(repo.get("m")) == 0


def test_replace_swaps_atomically_and_release_waits_for_in_flight_requests() -> None:
    old, new = Slow("1"), Slow("2")
    repo = ModelRepository([old])
    handle = repo.get("m")
    answers: list[list[float]] = []
    request = threading.Thread(
        target=lambda: answers.append(handle.predict({"x": np.array([3.0])})["y"].tolist())
    )
    request.start()
    assert old.started.wait(5)
    retired = repo.replace("m", [new], default="2")
    assert repo.get("m").version == "2" and repo.versions("m") == ["2"]
    assert [r.version for r in retired] == ["1"] and repo.in_flight(retired[0]) == 1
    assert repo.release(retired[0], timeout_s=0.05) is False  # still busy: not closed
    assert not old.closed
    releaser = threading.Thread(target=repo.release, args=(retired[0],))
    releaser.start()
    time.sleep(0.05)
    assert not old.closed  # waiting for the request
    old.go.set()
    request.join(5)
    releaser.join(5)
    assert answers == [[6.0]] and old.closed and not new.closed


def test_replace_keeps_unchanged_versions_and_checks_the_default() -> None:
    one, two = Slow("1"), Slow("2")
    repo = ModelRepository([one])
    assert repo.replace("m", [one, two], default="1") == []
    assert repo.get("m").version == "1" and repo.versions("m") == ["1", "2"]
    with pytest.raises(ValueError, match="default version '3' is not among"):
        repo.replace("m", [one], default="3")
    repo.add(Slow("3"))
    assert repo.default_version("m") == "1" and repo.versions("m") == ["1", "2", "3"]
