"""The server follows the registry: promoted versions swap in under load with no failed
request, a version that cannot load or warm up never replaces one that works, and each
model is served under its own policy."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from lockgate.errors import ConfigError
from lockgate.metadata.registry import CANARY, PRODUCTION, Registry
from lockgate.metadata.store import SqlMetadataStore
from lockgate.serving.app import create_app
from lockgate.serving.canary import CanaryServable
from lockgate.serving.reload import ModelPolicy, RegistryFollower, ServingOptions
from lockgate.serving.repository import ModelRepository

BODY = {
    "inputs": [
        {"name": "bill_length_mm", "datatype": "FP64", "shape": [2], "data": [38.0, 48.0]},
        {"name": "flipper_length_mm", "datatype": "FP64", "shape": [2], "data": [190.0, 214.0]},
        {"name": "island", "datatype": "BYTES", "shape": [2], "data": ["Biscoe", "Torgersen"]},
    ]
}
FAST = ServingOptions(release_grace_s=0.05, retry_failed_after_s=0.0)


@pytest.fixture
def follower(store: SqlMetadataStore) -> Iterator[RegistryFollower]:
    made: list[RegistryFollower] = []

    def make(models: list[str], **kwargs: object) -> RegistryFollower:
        options = kwargs.pop("options", FAST)
        made.append(
            RegistryFollower(store.url, ModelRepository(), models, 0.05, options=options, **kwargs)  # type: ignore[arg-type]
        )
        return made[-1]

    yield make  # type: ignore[misc]
    for item in made:
        item.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_in_thread(repository: ModelRepository) -> tuple[str, uvicorn.Server, threading.Thread]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(repository), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            httpx.get(f"{url}/v2/health/live")
            return url, server, thread
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def test_a_promoted_version_swaps_in_under_load_with_zero_failed_requests(
    store: SqlMetadataStore, push_version, follower
) -> None:
    push_version(store, seed=1)
    follow = follower(["penguins"])
    assert follow.poll_once() == {"penguins": None}
    repository = follow.repository
    old = repository.get("penguins").inner
    url, server, thread = serve_in_thread(repository)
    stop = threading.Event()
    outcomes: Counter[str] = Counter()
    first_seen: dict[str, float] = {}
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            while not stop.is_set():
                try:
                    response = http.post("/v2/models/penguins/infer", json=BODY)
                    ok = response.status_code == 200
                    key = response.json()["model_version"] if ok else f"http {response.status_code}"
                except httpx.HTTPError as exc:
                    key = f"transport {type(exc).__name__}"
                with lock:
                    outcomes[key] += 1
                    first_seen.setdefault(key, time.perf_counter())

    clients = [threading.Thread(target=client) for _ in range(8)]
    try:
        for c in clients:
            c.start()
        follow.start()
        time.sleep(0.3)
        pushed = push_version(store, seed=2, alias=None)
        promoted_at = time.perf_counter()
        Registry(store).set_alias("penguins", PRODUCTION, pushed.version)
        deadline = time.monotonic() + 20
        while "2" not in first_seen and time.monotonic() < deadline:
            time.sleep(0.01)
        swap_s = first_seen["2"] - promoted_at
        time.sleep(0.3)
        # a version whose files were changed after the push: refused, version 2 keeps serving
        broken = push_version(store, seed=3, alias=None)
        (Path(broken.artifact.uri) / "model" / "model.skops").write_bytes(b"tampered")
        Registry(store).set_alias("penguins", PRODUCTION, broken.version)
        deadline = time.monotonic() + 10
        while follow.status()["penguins"]["last_error"] is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
    finally:
        stop.set()
        for c in clients:
            c.join(10)
        server.should_exit = True
        thread.join(10)
    failed = sum(n for key, n in outcomes.items() if key not in ("1", "2"))
    sent = sum(outcomes.values())
    print(
        f"\nswap under load: {sent} requests, {failed} failed, {dict(outcomes)},"
        f" promote-to-first-answer {swap_s * 1000:.0f} ms,"
        f" load+warm-up {follow.status()['penguins']['last_load_s'] * 1000:.0f} ms"
    )
    assert failed == 0, outcomes
    assert outcomes["1"] > 0 and outcomes["2"] > 0 and sent > 100
    status = follow.status()["penguins"]
    assert status["serving"] == 2 and "sha256" in status["last_error"]
    assert repository.versions("penguins") == ["2"]
    deadline = time.monotonic() + 5
    while not old._closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert old._closed  # the old version's batcher was released after its requests


def test_a_version_that_fails_warm_up_is_reported_and_the_old_one_serves(
    store: SqlMetadataStore, push_version, follower, caplog: pytest.LogCaptureFixture
) -> None:
    push_version(store, seed=1)
    follow = follower(["penguins"])
    follow.poll_once()
    bad = push_version(store, seed=2, alias=None)
    samples = Path(bad.artifact.uri) / "samples.json"
    samples.write_text(json.dumps({"inputs": {"bill_length_mm": ["x"]}}))
    # the samples file changed too, so re-record the fingerprint as if it had been pushed so
    with store.transaction() as conn:
        from lockgate.core.fingerprint import path_fingerprint
        from lockgate.metadata import tables

        conn.execute(
            tables.artifacts.update()
            .where(tables.artifacts.c.id == bad.artifact.id)
            .values(fingerprint=path_fingerprint(bad.artifact.uri))
        )
    Registry(store).set_alias("penguins", PRODUCTION, bad.version)
    errors = follow.poll_once()
    assert "failed its warm-up request" in (errors["penguins"] or "")
    assert follow.repository.get("penguins").version == "1"
    assert "keeping version 1" in caplog.text
    Registry(store).set_alias("penguins", PRODUCTION, 1, reason="back")
    assert follow.poll_once() == {"penguins": None}


def test_a_transform_changed_after_the_push_is_refused(
    store: SqlMetadataStore, push_version, follower
) -> None:
    push_version(store, seed=1)
    follow = follower(["penguins"])
    follow.poll_once()
    edited = push_version(store, seed=2, alias=None)
    transform = Path(edited.artifact.uri) / "transform" / "transform.json"
    transform.write_text(transform.read_text().replace('"std": ', '"std": 1e9 + ', 1))
    Registry(store).set_alias("penguins", PRODUCTION, edited.version)
    error = follow.poll_once(log_errors=False)["penguins"] or ""
    assert "has fingerprint" in error and "files changed after they were pushed" in error
    assert follow.repository.get("penguins").version == "1"


def test_each_model_has_its_own_policy(store: SqlMetadataStore, push_version, follower) -> None:
    for seed in (1, 2):
        push_version(store, "penguins", seed=seed)  # production -> 2
    push_version(store, "penguins", seed=3, alias="staging", blessed=False)  # 3, unblessed
    push_version(store, "birds", seed=4)
    follow = follower(["penguins@1", "birds", "pinned@latest"])
    push_version(store, "pinned", seed=5, alias=None)
    push_version(store, "pinned", seed=6, alias=None, blessed=False)
    assert follow.poll_once() == {"penguins": None, "birds": None, "pinned": None}
    repo = follow.repository
    assert repo.names() == ["birds", "penguins", "pinned"]
    assert (repo.get("penguins").version, repo.get("birds").version) == ("1", "1")
    assert repo.get("pinned").version == "1"  # newest *blessed*
    staging = follower(["penguins@staging"])
    staging.poll_once()
    assert staging.repository.get("penguins").version == "3"
    everything = follower([])
    assert everything.poll_once() == {"penguins": None, "birds": None}  # pinned: no production
    assert everything.repository.names() == ["birds", "penguins"]
    missing = follower(["penguins@nope"])
    assert "has no alias 'nope'" in (missing.poll_once()["penguins"] or "")


def test_the_canary_alias_splits_traffic_and_shadow_only_watches(
    store: SqlMetadataStore, push_version, follower
) -> None:
    push_version(store, seed=1)
    push_version(store, seed=2, alias=None)
    registry = Registry(store)
    registry.start_canary("penguins", 2, percent=100)
    follow = follower(["penguins"])
    follow.poll_once()
    served = follow.repository.get("penguins")
    assert isinstance(served.inner, CanaryServable)
    assert served.version == "1" and follow.repository.versions("penguins") == ["1", "2"]
    columns = {k: [v] for k, v in (("bill_length_mm", 38.0), ("flipper_length_mm", 190.0))}
    columns["island"] = ["Biscoe"]
    import numpy as np

    arrays = {k: np.array(v, dtype=object) for k, v in columns.items()}
    assert served.inner.predict_versioned(arrays)[0] == "2"
    assert follow.status()["penguins"]["canary_percent"] == 100.0
    registry.start_canary("penguins", 2, shadow=True)
    follow.poll_once()
    shadow = follow.repository.get("penguins").inner
    assert shadow.shadow and shadow.predict_versioned(arrays)[0] == "1"
    registry.remove_alias("penguins", CANARY, reason="done")
    follow.poll_once()
    assert not isinstance(follow.repository.get("penguins").inner, CanaryServable)
    assert follow.status()["penguins"]["canary"] is None


def test_policies_parse_or_say_what_is_wrong() -> None:
    assert ModelPolicy.parse("m") == ModelPolicy("m", PRODUCTION)
    assert str(ModelPolicy.parse("m@3")) == "m@3" and not ModelPolicy.parse("m@3").follows_alias
    with pytest.raises(ConfigError, match="NAME or NAME@VERSION"):
        ModelPolicy.parse("m@")
    with pytest.raises(ConfigError, match="one policy only"):
        RegistryFollower("sqlite://", ModelRepository(), ["m", "m@3"])
