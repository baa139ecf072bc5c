"""Over real HTTP: a request holds its model version from routing to answer (a hot swap closes
the old version only after it), a canary reports the version that answered, and a batcher
fills the app's batch-size histogram."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lockgate.serving.app import create_app
from lockgate.serving.batching import BatchingServable
from lockgate.serving.canary import CanaryServable
from lockgate.serving.metrics import ServingMetrics
from lockgate.serving.repository import ModelRepository
from lockgate.serving.servable import TensorSpec

Serve = Callable[[Any], str]


class Scaler:
    """``y = factor * x``; records close() and refuses to predict after it."""

    platform = "test"
    inputs = [TensorSpec("x", "FP64")]
    outputs = [TensorSpec("y", "FP64")]

    def __init__(self, version: str, factor: float, *, delay_s: float = 0.0) -> None:
        self.name, self.version, self.factor, self.delay_s = "m", version, factor, delay_s
        self.go = threading.Event()
        self.go.set()
        self.started = threading.Event()
        self.closed = False

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.started.set()
        assert self.go.wait(10)
        time.sleep(self.delay_s)
        if self.closed:
            raise RuntimeError("used after close")
        return {"y": self.factor * np.asarray(columns["x"], dtype=np.float64)}

    def close(self) -> None:
        self.closed = True


class Gated(Scaler):
    """A servable whose metadata blocks while ``gate`` is shut: the request is then inside
    its handler, and the test can look at what it holds."""

    def __init__(self, version: str) -> None:
        super().__init__(version, 1.0)
        self.gate = threading.Event()
        self.gate.set()
        self.reading = threading.Event()

    def __getattribute__(self, name: str) -> Any:
        if name in ("platform", "inputs", "outputs"):
            object.__getattribute__(self, "reading").set()
            assert object.__getattribute__(self, "gate").wait(10)
        return object.__getattribute__(self, name)


def _infer(x: list[float]) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "datatype": "FP64", "shape": [len(x)], "data": x}]}


def _wait_for(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def _samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_hot_swap_while_the_body_streams_waits_for_the_request(serve_app: Serve) -> None:
    """The version is taken when the request is routed, before its body has arrived: the
    swap that comes meanwhile must not close it under the request."""
    old, new = Scaler("1", 1.0), Scaler("2", 2.0)
    repo = ModelRepository([old])
    url = serve_app(create_app(repo))
    more = threading.Event()

    def body() -> Iterator[bytes]:
        yield b'{"inputs": [{"name": "x", "datatype": "FP64", '
        assert more.wait(10)
        yield b'"shape": [2], "data": [1.0, 2.0]}]}'

    answers: list[httpx.Response] = []
    request = threading.Thread(
        target=lambda: answers.append(httpx.post(f"{url}/v2/models/m/infer", content=body()))
    )
    request.start()
    try:
        assert _wait_for(lambda: repo.in_flight(old) == 1), "the request does not hold v1"
        retired = repo.replace("m", [new], default="2")
        released = threading.Event()
        releaser = threading.Thread(
            target=lambda: released.set() if repo.release(retired[0], timeout_s=10) else None
        )
        releaser.start()
        assert not released.wait(0.2) and not old.closed  # waits for the request
    finally:
        more.set()
        request.join(10)
    releaser.join(10)
    assert answers[0].status_code == 200, answers[0].text
    assert answers[0].json()["model_version"] == "1"
    assert answers[0].json()["outputs"][0]["data"] == [1.0, 2.0]
    assert released.is_set() and old.closed and not new.closed
    assert repo.in_flight(old) == 0
    after = httpx.post(f"{url}/v2/models/m/infer", json=_infer([1.0])).json()
    assert (after["model_version"], after["outputs"][0]["data"]) == ("2", [2.0])


@pytest.mark.parametrize(
    "path",
    ["/v2/models/m", "/v2/models/m/versions/1", "/v1/models/m/metadata"],
)
def test_metadata_requests_hold_their_version(serve_app: Serve, path: str) -> None:
    gated = Gated("1")
    repo = ModelRepository([gated])
    url = serve_app(create_app(repo))
    gated.gate.clear()
    answers: list[httpx.Response] = []
    request = threading.Thread(target=lambda: answers.append(httpx.get(url + path)))
    request.start()
    try:
        assert gated.reading.wait(5)
        assert repo.in_flight(gated) == 1
    finally:
        gated.gate.set()
        request.join(10)
    assert answers[0].status_code == 200, answers[0].text
    assert repo.in_flight(gated) == 0


def test_ready_and_status_requests_release_their_hold(serve_app: Serve) -> None:
    scaler = Scaler("1", 1.0)
    repo = ModelRepository([scaler])
    url = serve_app(create_app(repo))
    with httpx.Client(base_url=url) as http:
        assert http.get("/v2/models/m/ready").json() == {"name": "m", "ready": True}
        assert http.get("/v2/models/m/versions/1/ready").status_code == 200
        status = http.get("/v1/models/m").json()
        assert status["model_version_status"][0]["version"] == "1"
        assert http.get("/v1/models/m/versions/9").status_code == 404
    assert repo.in_flight(scaler) == 0


def test_a_timed_out_request_holds_its_version_until_the_model_returns(
    serve_app: Serve,
) -> None:
    """504 answers the client, but the model is still running in its thread: the version
    must stay held until it returns, or a swap would close it under that thread."""
    slow = Scaler("1", 1.0)
    slow.go.clear()
    repo = ModelRepository([slow])
    url = serve_app(create_app(repo, request_timeout_s=0.2))
    try:
        answer = httpx.post(f"{url}/v1/models/m:predict", json={"instances": [{"x": 1.0}]})
        assert answer.status_code == 504
        assert slow.started.is_set() and repo.in_flight(slow) == 1
    finally:
        slow.go.set()
    assert _wait_for(lambda: repo.in_flight(slow) == 0)


def test_a_canary_reports_the_version_that_answered(serve_app: Serve) -> None:
    primary, candidate = Scaler("1", 1.0), Scaler("2", 2.0)
    canary = CanaryServable(primary, candidate, 50, rng=random.Random(3))
    repo = ModelRepository()
    repo.replace("m", [canary, candidate], default="1")
    metrics = ServingMetrics()
    url = serve_app(create_app(repo, metrics=metrics))
    versions: list[str] = []
    with httpx.Client(base_url=url) as http:
        for i in range(40):
            answer = http.post("/v2/models/m/infer", json=_infer([float(i)])).json()
            factor = {"1": 1.0, "2": 2.0}[answer["model_version"]]
            assert answer["outputs"][0]["data"] == [factor * i]  # the version that answered
            versions.append(answer["model_version"])
        for _ in range(10):
            assert http.post("/v1/models/m:predict", json={"instances": [{"x": 1.0}]}).is_success
        samples = _samples(http.get("/metrics").text)
        for pinned in ("1", "2"):  # a version asked for by name is not split
            path = f"/v2/models/m/versions/{pinned}/infer"
            answered = {
                http.post(path, json=_infer([1.0])).json()["model_version"] for _ in range(8)
            }
            assert answered == {pinned}
    canary.close()
    assert set(versions) == {"1", "2"}
    assert (canary.stats.primary, canary.stats.candidate) == (
        versions.count("1") + samples.get(_v1_key("1"), 0),
        versions.count("2") + samples.get(_v1_key("2"), 0),
    )
    for version in ("1", "2"):
        key = frozenset(
            {"model": "m", "version": version, "protocol": "v2", "status": "200"}.items()
        )
        assert samples[("lockgate_requests_total", key)] == versions.count(version)
        rows = frozenset({"model": "m", "version": version}.items())
        assert samples[("lockgate_batch_size_count", rows)] == versions.count(
            version
        ) + samples.get(_v1_key(version), 0)


def _v1_key(version: str) -> tuple[str, frozenset]:
    labels = {"model": "m", "version": version, "protocol": "v1", "status": "200"}
    return ("lockgate_requests_total", frozenset(labels.items()))


def test_a_batcher_fills_the_apps_batch_size_histogram(serve_app: Serve) -> None:
    metrics = ServingMetrics()
    inner = Scaler("1", 3.0, delay_s=0.02)
    batcher = BatchingServable(inner, max_batch_size=64, max_wait_ms=20, metrics=metrics)
    assert batcher.observes_batches
    url = serve_app(create_app(ModelRepository([batcher]), metrics=metrics))
    requests = 24
    with httpx.Client(base_url=url, limits=httpx.Limits(max_connections=requests)) as http:
        with ThreadPoolExecutor(requests) as pool:
            answers = list(
                pool.map(
                    lambda i: http.post("/v2/models/m/infer", json=_infer([float(i), 1.0])),
                    range(requests),
                )
            )
        scrape = http.get("/metrics").text
    batcher.close()
    for i, answer in enumerate(answers):
        assert answer.json()["outputs"][0]["data"] == [3.0 * i, 3.0]
    samples = _samples(scrape)
    labels = frozenset({"model": "m", "version": "1"}.items())
    count = samples[("lockgate_batch_size_count", labels)]
    assert samples[("lockgate_batch_size_sum", labels)] == 2 * requests  # every row, once
    assert count == batcher.stats.batches < requests  # merged calls, not one per request
    assert samples[("lockgate_batch_size_bucket", labels | {("le", "2.0")})] < count


def test_without_metrics_a_batcher_leaves_the_counting_to_the_app(serve_app: Serve) -> None:
    batcher = BatchingServable(Scaler("1", 1.0), max_batch_size=8, max_wait_ms=0)
    assert not batcher.observes_batches
    metrics = ServingMetrics()
    url = serve_app(create_app(ModelRepository([batcher]), metrics=metrics))
    for _ in range(3):
        assert httpx.post(f"{url}/v2/models/m/infer", json=_infer([1.0, 2.0])).is_success
    batcher.close()
    samples = _samples(metrics.render().decode())
    labels = frozenset({"model": "m", "version": "1"}.items())
    assert samples[("lockgate_batch_size_sum", labels)] == 6


def test_the_follower_hands_the_apps_metrics_to_each_versions_batcher(
    store: Any, push_version: Any, serve_app: Serve
) -> None:
    """Production and a 50% canary from the registry: the answers name both versions, and
    each version's batcher fills the app's histogram with the rows it merged."""
    from lockgate.serving.reload import RegistryFollower, ServingOptions

    push_version(store, seed=0)
    push_version(store, seed=1, alias="canary")
    metrics = ServingMetrics()
    repo = ModelRepository()
    options = ServingOptions(canary_percent=50.0, batch_max_wait_ms=10.0)
    follower = RegistryFollower(store.url, repo, ["penguins"], options=options, metrics=metrics)
    try:
        assert follower.poll_once() == {"penguins": None}
        url = serve_app(create_app(repo, metrics=metrics))
        body = {
            "inputs": [
                {"name": "bill_length_mm", "datatype": "FP64", "shape": [1], "data": [40.0]},
                {"name": "flipper_length_mm", "datatype": "FP64", "shape": [1], "data": [195.0]},
                {"name": "island", "datatype": "BYTES", "shape": [1], "data": ["Dream"]},
            ]
        }
        with httpx.Client(base_url=url, limits=httpx.Limits(max_connections=16)) as http:
            with ThreadPoolExecutor(16) as pool:
                answers = list(
                    pool.map(lambda _: http.post("/v2/models/penguins/infer", json=body), range(64))
                )
            scrape = http.get("/metrics").text
    finally:
        follower.stop()
    versions = [a.json()["model_version"] for a in answers]
    assert set(versions) == {"1", "2"}
    samples = _samples(scrape)
    for version in ("1", "2"):
        labels = frozenset({"model": "penguins", "version": version}.items())
        assert samples[("lockgate_batch_size_sum", labels)] == versions.count(version)
    merged = sum(
        samples[
            ("lockgate_batch_size_count", frozenset({"model": "penguins", "version": v}.items()))
        ]
        for v in ("1", "2")
    )
    assert merged < len(answers)  # the batchers counted merged calls, not requests
