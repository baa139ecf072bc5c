"""The serving benchmark's models: one classifier per ``--model``, saved for each server.

Every model is trained once on the same generated table (20 numeric features, two classes,
2 000 rows, fixed seed) and written from the same fitted object in each server's format::

    --model sklearn     GradientBoostingClassifier, 100 trees of depth 3
      <work>/model.skops                lockgate: `lockgate models import model.skops ...`
      <work>/mlserver/gbc/model.joblib  MLServer's sklearn runtime
      <work>/mlflow/mlflow-model/       an MLflow sklearn model (bench/.venv-mlflow's python)
    --model xgboost     XGBClassifier, 100 trees of depth 3
      <work>/model.json                 lockgate: `lockgate models import model.json ...`
      <work>/mlserver/xgb/model.json    MLServer's XGBoost runtime, the same file
    --model torch_mlp   lockgate's own trainer "torch_mlp" (MLP 20-64-32-2, ReLU)
      <work>/torch/model.safetensors    lockgate: `lockgate models import model.safetensors ...`
      <work>/mlserver/mlp/              the same file, served by MLServer with the custom
                                        runtime bench/serving_mlserver_torch.py beside it

The bare floor is each framework's own in-process predict: scikit-learn's ``predict``, the
XGBoost Booster's ``inplace_predict`` (thresholded at 0.5; one thread), and the module's
forward pass through lockgate's ``TorchModel.predict`` (one torch thread). Each takes well
under a millisecond on one row, so the servers' own overhead dominates.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
FEATURES = [f"f{i}" for i in range(20)]
MODELS = ("sklearn", "xgboost", "torch_mlp")
TORCH_PARAMS = {"hidden_layers": [64, 32], "epochs": 50}


@dataclass
class BenchModel:
    """A fitted model and what each server needs of it. ``predict`` is the bare floor
    (labels, in this process); ``fitted`` is the object the framework returned."""

    kind: str
    name: str
    description: str
    fitted: Any
    predict: Callable[[np.ndarray], np.ndarray]
    #: wraps the bare calls (one torch thread)
    quiet: Callable[[], Any]

    def save_for_lockgate(self, work: Path) -> Path:
        """The file ``lockgate models import`` reads."""
        if self.kind == "sklearn":
            import skops.io

            path = work / "model.skops"
            skops.io.dump(self.fitted, path)
            return path
        if self.kind == "xgboost":
            path = work / "model.json"
            self.fitted.save_model(path)
            return path
        from lockgate.training.model_files import save_model

        info = save_model(self.fitted, work / "torch")
        return work / "torch" / info.file

    def mlserver_model_settings(self, model_dir: Path, lockgate_file: Path) -> dict[str, Any]:
        """Write the model into MLServer's model folder; the model-settings.json to use."""
        if self.kind == "sklearn":
            import joblib

            joblib.dump(self.fitted, model_dir / "model.joblib")
            implementation, uri = "mlserver_sklearn.SKLearnModel", "./model.joblib"
        elif self.kind == "xgboost":
            shutil.copyfile(lockgate_file, model_dir / "model.json")
            implementation, uri = "mlserver_xgboost.XGBoostModel", "./model.json"
        else:
            shutil.copyfile(lockgate_file, model_dir / "model.safetensors")
            shutil.copyfile(HERE / "serving_mlserver_torch.py", model_dir / "torch_runtime.py")
            implementation, uri = "torch_runtime.TorchMLP", "./model.safetensors"
        return {
            "name": self.name,
            "implementation": implementation,
            "parameters": {"uri": uri, "version": "v1"},
        }


def make_table(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Twenty numeric features and a binary label with some interaction, fixed seed."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, len(FEATURES)))
    signal = X[:, 0] + X[:, 1] * X[:, 2] - 0.5 * X[:, 3] + 0.3 * np.sin(3 * X[:, 4])
    y = (signal + rng.normal(scale=0.3, size=rows) > 0).astype(np.int64)
    return X, y


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def train(kind: str = "sklearn") -> BenchModel:
    X, y = make_table(2000)
    if kind == "sklearn":
        from sklearn.ensemble import GradientBoostingClassifier

        model = GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=0)
        model.fit(X, y)
        return BenchModel(kind, "gbc", "scikit-learn GradientBoostingClassifier, 100 trees "
                          "of depth 3", model, model.predict, _nothing)  # fmt: skip
    if kind == "xgboost":
        import xgboost

        model = xgboost.XGBClassifier(n_estimators=100, max_depth=3, random_state=0).fit(X, y)
        booster = model.get_booster().copy()
        booster.set_param({"nthread": 1})

        def predict(rows: np.ndarray) -> np.ndarray:
            return (booster.inplace_predict(rows) > 0.5).astype(np.int64)

        return BenchModel(kind, "xgb", f"XGBoost {xgboost.__version__} XGBClassifier, 100 "
                          "trees of depth 3", model, predict, _nothing)  # fmt: skip
    if kind == "torch_mlp":
        import torch

        from lockgate.training.trainers import train_model

        fitted = train_model(X, y, spec="torch_mlp", task="classification", params=TORCH_PARAMS)

        @contextmanager
        def one_thread() -> Iterator[None]:
            before = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                yield
            finally:
                torch.set_num_threads(before)

        return BenchModel(kind, "mlp", f"lockgate torch_mlp (torch {torch.__version__}), "
                          f"{TORCH_PARAMS}", fitted, fitted.predict, one_thread)  # fmt: skip
    raise ValueError(f"unknown model {kind!r}; models are {list(MODELS)}")


def save_mlserver_repository(
    model: BenchModel, lockgate_file: Path, folder: Path, *, ports: dict[str, int]
) -> Path:
    """A model repository for ``mlserver start``: settings.json (only the ports) and the
    model's folder with its file and model-settings.json (the runtime's defaults)."""
    model_dir = folder / model.name
    model_dir.mkdir(parents=True, exist_ok=True)
    settings = model.mlserver_model_settings(model_dir, lockgate_file)
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
    target.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [str(python), "-c", _MLFLOW_SAVE, str(joblib_file), str(target)],
        capture_output=True,
        text=True,
        env=env,
        cwd=target.parent,  # not bench/: its statistics.py would shadow the standard module
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"mlflow save_model failed: {done.stderr.strip()[-2000:]}")
    return target


def bare_predict_p50_ms(model: BenchModel, rows: int, *, calls: int = 2000) -> float:
    """Median wall time of the model's bare predict on ``rows`` rows, in this process."""
    X, _ = make_table(rows, seed=1)
    with model.quiet():
        for _ in range(50):
            model.predict(X)
        times = np.empty(calls)
        for i in range(calls):
            started = time.perf_counter()
            model.predict(X)
            times[i] = time.perf_counter() - started
    return float(np.median(times) * 1000.0)
