"""Real servables trained here and a real uvicorn server in a thread, for the serving tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pytest
import uvicorn
from sklearn.linear_model import LinearRegression, LogisticRegression
from support import publish_pushed_model as publish_artifact

from lockgate.serving.app import create_app
from lockgate.serving.repository import ModelRepository
from lockgate.serving.servable import PipelineServable, TensorSpec
from lockgate.training.model_files import load_model, save_model
from lockgate.training.transform import TransformGraph

ISLANDS = ["Biscoe", "Dream", "Torgersen"]
SPECIES = ["Adelie", "Chinstrap", "Gentoo"]


def make_penguins(n: int = 300, seed: int = 0) -> pa.Table:
    """Species follows the island, bill length separates them further: easy to learn."""
    rng = np.random.default_rng(seed)
    species = rng.integers(0, 3, n)
    bill = 38.0 + 5.0 * species + rng.normal(0, 0.8, n)
    flipper = 190.0 + 12.0 * species + rng.normal(0, 2.0, n)
    island = np.array(ISLANDS)[species]
    return pa.table(
        {
            "bill_length_mm": bill,
            "flipper_length_mm": flipper,
            "island": island.tolist(),
            "species": np.array(SPECIES)[species].tolist(),
        }
    )


class BillRegressor:
    """A servable written straight against the protocol: flipper length from bill length."""

    platform = "sklearn_linear"

    def __init__(self, table: pa.Table) -> None:
        self.name, self.version = "flipper", "1"
        self.inputs = [TensorSpec("bill_length_mm", "FP64", [-1])]
        self.outputs = [TensorSpec("flipper_length_mm", "FP64", [-1])]
        x = table["bill_length_mm"].to_numpy().reshape(-1, 1)
        self.model = LinearRegression().fit(x, table["flipper_length_mm"].to_numpy())

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = np.asarray(columns["bill_length_mm"], dtype=np.float64).reshape(-1, 1)
        return {"flipper_length_mm": self.model.predict(x)}


class Broken:
    """A servable whose model fails: the server must answer 500 and keep serving."""

    name, version, platform = "broken", "1", "test"
    inputs = [TensorSpec("x", "FP64", [-1])]
    outputs = [TensorSpec("y", "FP64", [-1])]

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise RuntimeError("the model fell over")


@pytest.fixture(scope="session")
def penguins() -> pa.Table:
    return make_penguins()


@pytest.fixture(scope="session")
def penguin_servable(
    penguins: pa.Table, tmp_path_factory: pytest.TempPathFactory
) -> PipelineServable:
    """The real transform and a real saved-and-verified model, as a pipeline pushes them."""
    transform = TransformGraph.fit(penguins, label="species")
    estimator = LogisticRegression(max_iter=500).fit(
        transform.apply(penguins), transform.encode_label(penguins)
    )
    folder = tmp_path_factory.mktemp("penguin-model")
    info = save_model(estimator, folder)
    return PipelineServable("penguins", "2", transform, load_model(folder, sha256=info.sha256))


@pytest.fixture(scope="session")
def repository(penguins: pa.Table, penguin_servable: PipelineServable) -> ModelRepository:
    old = PipelineServable("penguins", "1", penguin_servable.transform, penguin_servable.model)
    repo = ModelRepository([old, penguin_servable, BillRegressor(penguins), Broken()])
    repo.expect("loading")
    return repo


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def server_url(repository: ModelRepository) -> Iterator[str]:
    """A real uvicorn serving the app on a free port, in a background thread."""
    port = _free_port()
    config = uvicorn.Config(
        create_app(repository), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            if httpx.get(f"{url}/v2/health/live").status_code == 200:
                break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


# --- added for the v1 / metrics / security / fuzz tests (issue 4) ---------------------------


class _UvicornThread:
    """One uvicorn server in a daemon thread, stopped by ``stop``."""

    def __init__(self, app: Any) -> None:
        port = _free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self.url

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def serve_app() -> Iterator[Callable[[Any], str]]:
    """A factory: ``serve_app(app) -> url`` runs ``app`` under a real uvicorn until the test ends."""
    servers: list[_UvicornThread] = []

    def start(app: Any) -> str:
        server = _UvicornThread(app)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


class Doubler:
    """A one-input servable that honours the protocol's missing values (NaN in, NaN out)."""

    name, version, platform = "double", "1", "test"
    inputs = [TensorSpec("x", "FP64", [-1])]
    outputs = [TensorSpec("y", "FP64", [-1])]

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"y": 2.0 * np.asarray(columns["x"], dtype=np.float64)}


@pytest.fixture(scope="session")
def fuzz_server_url(penguin_servable: PipelineServable) -> Iterator[str]:
    """The penguins (version 2) and ``double`` behind a 64 KiB body limit, for the fuzz
    tests; session-scoped, as Hypothesis wants no function-scoped fixture under ``@given``."""
    repository = ModelRepository([penguin_servable, Doubler()])
    server = _UvicornThread(create_app(repository, max_body_bytes=64 * 1024))
    yield server.start()
    server.stop()


# --- registry-backed servables (added for the registry follower, canary and request log) ---


def publish_pushed_model(store, folder, properties: dict):  # -> PushedModel
    """Register ``folder`` as a PushedModel the way the launcher does: an execution outputs it."""
    from lockgate.core.artifacts import PushedModel
    from lockgate.core.fingerprint import path_fingerprint

    artifact = PushedModel(
        uri=str(folder), properties=dict(properties), fingerprint=path_fingerprint(folder)
    )
    return publish_artifact(store, artifact, pipeline="test-push")


@pytest.fixture
def push_version(tmp_path_factory: pytest.TempPathFactory, penguins: pa.Table):
    """``push_version(store, name, seed=0, alias="production", blessed=True)``: a real
    TransformGraph + scikit-learn model written as a PushedModel and registered."""
    from sklearn.linear_model import LogisticRegression as _LR

    from lockgate.metadata.registry import Registry
    from lockgate.serving.servable import typical_rows, write_samples
    from lockgate.training.model_files import save_model
    from lockgate.training.transform import TransformGraph

    def push(
        store,
        name: str = "penguins",
        *,
        seed: int = 0,
        alias: str | None = "production",
        blessed: bool = True,
    ):
        table = make_penguins(200, seed=seed)
        graph = TransformGraph.fit(table, label="species")
        estimator = _LR(max_iter=300 + seed).fit(graph.apply(table), graph.encode_label(table))
        folder = tmp_path_factory.mktemp(f"pushed-{name}-{seed}")
        graph.save(folder / "transform")
        info = save_model(estimator, folder / "model")
        write_samples(folder, typical_rows(graph))
        artifact = publish_pushed_model(
            store,
            folder,
            {"model_name": name, "model_sha256": info.sha256, "model_fingerprint": f"fp{seed}"},
        )
        registry = Registry(store)
        version = registry.register(
            name, artifact, blessed=blessed, properties={"model_fingerprint": f"fp{seed}"}
        )
        if alias is not None:
            registry.set_alias(name, alias, version.version, force=not blessed, reason="test")
        return version

    return push
