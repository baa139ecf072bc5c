"""The serving benchmark's model: one scikit-learn classifier, saved for each server.

One ``GradientBoostingClassifier`` (100 trees of depth 3, 8 numeric features, two classes)
is trained once on a generated table with a fixed seed, then written three ways from the
same fitted object::

    <work>/
      model.skops                 lockgate: `lockgate models import model.skops --features ...`
      mlserver/model.joblib       MLServer's sklearn runtime (model-settings.json beside it)
      mlflow-model/               an MLflow sklearn model, built by bench/.venv-mlflow's python

Its ``predict`` takes about 0.2 ms on one row, so the servers' own overhead dominates.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

FEATURES = [f"f{i}" for i in range(8)]
MODEL_NAME = "gbc"


def make_table(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Eight numeric features and a binary label with some interaction, fixed seed."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, len(FEATURES)))
    signal = X[:, 0] + X[:, 1] * X[:, 2] - 0.5 * X[:, 3] + 0.3 * np.sin(3 * X[:, 4])
    y = (signal + rng.normal(scale=0.3, size=rows) > 0).astype(np.int64)
    return X, y


def train() -> Any:
    from sklearn.ensemble import GradientBoostingClassifier

    X, y = make_table(2000)
    return GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=0).fit(X, y)


def save_skops(model: Any, path: Path) -> Path:
    import skops.io

    skops.io.dump(model, path)
    return path


def save_mlserver_repository(model: Any, folder: Path, *, ports: dict[str, int]) -> Path:
    """A model repository for ``mlserver start``: settings.json (only the ports) and the
    model's folder with model.joblib and model-settings.json (sklearn runtime defaults)."""
    import joblib

    model_dir = folder / MODEL_NAME
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_dir / "model.joblib")
    settings = {
        "name": MODEL_NAME,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1"},
    }
    (model_dir / "model-settings.json").write_text(json.dumps(settings, indent=1))
    server = {
        "host": "127.0.0.1",
        "http_port": ports["http"],
        "grpc_port": ports["grpc"],
        "metrics_port": ports["metrics"],
    }
    (folder / "settings.json").write_text(json.dumps(server, indent=1))
    return folder


_MLFLOW_SAVE = """
import sys, joblib, mlflow.sklearn
mlflow.sklearn.save_model(joblib.load(sys.argv[1]), sys.argv[2], serialization_format="pickle")
"""


def save_mlflow_model(joblib_file: Path, target: Path, python: Path) -> Path:
    """An MLflow sklearn model directory made from the same joblib file, by MLflow's own
    python (MLflow is not installed in lockgate's environment)."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"file://{target.parent / 'mlruns'}"}
    done = subprocess.run(
        [str(python), "-c", _MLFLOW_SAVE, str(joblib_file), str(target)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"mlflow save_model failed: {done.stderr.strip()[-2000:]}")
    return target


def bare_predict_p50_ms(model: Any, rows: int, *, calls: int = 2000) -> float:
    """Median wall time of ``model.predict`` on ``rows`` rows, in this process."""
    X, _ = make_table(rows, seed=1)
    for _ in range(50):
        model.predict(X)
    times = np.empty(calls)
    for i in range(calls):
        started = time.perf_counter()
        model.predict(X)
        times[i] = time.perf_counter() - started
    return float(np.median(times) * 1000.0)
