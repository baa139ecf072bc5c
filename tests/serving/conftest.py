"""Real servables trained here and a real uvicorn server in a thread, for the serving tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import numpy as np
import pyarrow as pa
import pytest
import uvicorn
from sklearn.linear_model import LinearRegression, LogisticRegression

from lockgate.serving.app import create_app
from lockgate.serving.repository import ModelRepository
from lockgate.serving.servable import PipelineServable, TensorSpec

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


@dataclass
class TinyTransform:
    """A hand-written stand-in for TransformGraph: standardise numbers, one-hot islands."""

    means: dict[str, float]
    stds: dict[str, float]
    label: str = "species"
    task: str = "classification"

    features = {
        "bill_length_mm": "numeric",
        "flipper_length_mm": "numeric",
        "island": "categorical",
    }
    label_classes = SPECIES

    @classmethod
    def fit(cls, table: pa.Table) -> TinyTransform:
        names = ["bill_length_mm", "flipper_length_mm"]
        return cls(
            means={n: float(np.mean(table[n].to_numpy())) for n in names},
            stds={n: float(np.std(table[n].to_numpy())) for n in names},
        )

    def apply(self, table: pa.Table) -> np.ndarray:
        parts = []
        for name, mean in self.means.items():
            values = table[name].to_numpy(zero_copy_only=False).astype(np.float64)
            parts.append(np.nan_to_num((values - mean) / self.stds[name], nan=0.0))
        islands = np.array(table["island"].to_pylist(), dtype=object)
        parts += [(islands == island).astype(np.float64) for island in ISLANDS]
        return np.column_stack(parts)

    def encode_label(self, table: pa.Table) -> np.ndarray:
        return np.array([SPECIES.index(s) for s in table[self.label].to_pylist()])

    def decode_label(self, indices: np.ndarray) -> list[str]:
        return [SPECIES[int(i)] for i in indices]


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
def penguin_servable(penguins: pa.Table) -> PipelineServable:
    transform = TinyTransform.fit(penguins)
    model = LogisticRegression(max_iter=500).fit(
        transform.apply(penguins), transform.encode_label(penguins)
    )
    return PipelineServable("penguins", "2", transform, model)


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
