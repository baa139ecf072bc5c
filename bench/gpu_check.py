"""Train each GPU-capable framework on the GPU and on the CPU, on one generated data set,
and print both fit times and the difference in the eval metric.

    python bench/gpu_check.py [--rows 200000] [--features 20]

Which frameworks: every registered framework that trains and lists "cuda" among its
devices (XGBoost; PyTorch's torch_mlp when lockgate[torch] is installed), each through
lockgate's own ``train_model`` with ``device="cuda"`` and ``device="cpu"``. Without a CUDA
GPU the script runs the CPU cells and says why the GPU cells are missing, so it runs here
and unchanged on a CUDA machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from lockgate.evaluation.metrics import compute_metrics
from lockgate.training.devices import cuda_gpus
from lockgate.training.frameworks import frameworks
from lockgate.training.frameworks.base import Trains
from lockgate.training.model_files import load_model, save_model
from lockgate.training.trainers import train_model

PARAMS = {
    "xgboost": {"n_estimators": 200, "max_depth": 8, "learning_rate": 0.1},
    "torch_mlp": {"epochs": 5, "batch_size": 1024, "hidden_layers": [256, 128]},
}


def make_data(rows: int, features: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """A binary task whose label depends non-linearly on half of the features."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features))
    signal = X[:, : features // 2] @ rng.normal(size=features // 2) + np.sin(3 * X[:, 0])
    y = (signal + rng.normal(scale=0.5, size=rows) > 0).astype(np.int64)
    cut = int(rows * 0.8)
    return X[:cut], y[:cut], X[cut:], y[cut:]


def gpu_trainers() -> list[tuple[str, str]]:
    """(framework, trainer) for each framework that can fit on CUDA."""
    found = []
    for name, framework in frameworks().items():
        if isinstance(framework, Trains) and "cuda" in framework.devices:
            trainer = next(
                t for t, tasks in framework.trainers.items() if "classification" in tasks
            )
            found.append((name, trainer))
    return found


def fit_and_score(trainer: str, device: str, data: tuple[np.ndarray, ...]) -> tuple[float, float]:
    """(fit seconds, eval log loss) of one fit on ``device``."""
    X, y, X_eval, y_eval = data
    started = time.perf_counter()
    estimator = train_model(
        X, y, spec=trainer, params=PARAMS.get(trainer, {}), task="classification", device=device
    )
    seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:  # scored as served: saved, then loaded
        save_model(estimator, Path(folder))
        proba = load_model(folder).predict_proba(X_eval)
    assert proba is not None
    metrics = compute_metrics("classification", y_eval, proba.argmax(axis=1), proba, 2)
    return seconds, float(metrics["log_loss"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=20)
    args = parser.parse_args()
    data = make_data(args.rows, args.features)
    gpus = cuda_gpus()
    print(f"data: {args.rows} rows x {args.features} features (80% train, 20% eval)")
    print(f"GPU: {', '.join(gpus) if gpus else 'none (nvidia-smi lists no CUDA GPU)'}")
    print(
        f"{'trainer':<12}{'cpu fit s':>11}{'cuda fit s':>12}{'speed-up':>10}"
        f"{'cpu log_loss':>14}{'cuda log_loss':>15}{'difference':>12}"
    )
    for _, trainer in gpu_trainers():
        cpu_s, cpu_loss = fit_and_score(trainer, "cpu", data)
        if not gpus:
            print(
                f"{trainer:<12}{cpu_s:>11.2f}{'-':>12}{'-':>10}{cpu_loss:>14.5f}{'-':>15}{'-':>12}"
            )
            continue
        cuda_s, cuda_loss = fit_and_score(trainer, "cuda", data)
        print(
            f"{trainer:<12}{cpu_s:>11.2f}{cuda_s:>12.2f}{cpu_s / cuda_s:>9.1f}x"
            f"{cpu_loss:>14.5f}{cuda_loss:>15.5f}{cuda_loss - cpu_loss:>+12.5f}"
        )
    if not gpus:
        print("no CUDA GPU here: the cuda cells need one (device='cuda' fails clearly without)")


if __name__ == "__main__":
    main()
