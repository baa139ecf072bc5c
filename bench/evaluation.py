"""Evaluation speed: lockgate's ``score_models`` against a plain loop of scikit-learn calls.

A binary classifier's eval split of ``--rows`` rows (default 1M) with two slice features, one
with 8 values and one with 5, crossed: 40 slices plus the whole split. Seven metrics
(accuracy, precision, recall, f1, roc_auc, log_loss, brier_score) on every slice, with
``--resamples`` (default 200) Poisson bootstrap resamples.

* lockgate: one ``score_models`` call (point estimates, every resample, every slice,
  intervals), timed whole, weights included.
* scikit-learn: for every slice, the seven ``sklearn.metrics`` calls on the rows, then the
  same seven calls with ``sample_weight=`` the very Poisson weights lockgate uses, for each
  resample. The weights are drawn beforehand and not timed. A full loop takes many minutes,
  so only ``--sklearn-resamples`` resamples (default 5) are timed, and the loop's time is
  extrapolated linearly: points + per-resample time x ``--resamples``. Printed as such.

The two run in one process, interleaved A, B, A, B with ``--repeat``. The point estimates,
and the resampled values of the timed resamples, must agree to 1e-9 (asserted).
Run: ``python bench/evaluation.py [--rows 1000000] [--resamples 200] [--repeat 1]``.
"""

from __future__ import annotations

import argparse
import resource
import time
from typing import Any

import numpy as np
import pyarrow as pa

METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "brier_score"]
SEED = 0


def make_data(rows: int) -> tuple[np.ndarray, np.ndarray, pa.Table]:
    """Labels, (n, 2) probabilities of a fair classifier, and the two slice features."""
    rng = np.random.default_rng(2026)
    a = rng.integers(0, 8, rows)
    b = rng.integers(0, 5, rows)
    y = (rng.random(rows) < 0.3 + 0.05 * (a % 3)).astype(np.int64)
    logit = 1.6 * (y - 0.5) + rng.normal(0.0, 1.0, rows) + 0.1 * b
    p1 = 1.0 / (1.0 + np.exp(-logit))
    proba = np.stack([1.0 - p1, p1], axis=1)
    stores = pa.array([f"s{i}" for i in range(8)])
    regions = pa.array([f"r{i}" for i in range(5)])
    features = pa.table({"store": stores.take(pa.array(a)), "region": regions.take(pa.array(b))})
    return y, proba, features


def run_lockgate(y: np.ndarray, proba: np.ndarray, features: pa.Table, resamples: int) -> Any:
    from lockgate.evaluation.engine import Predictions, score_models
    from lockgate.evaluation.results import BootstrapSettings

    return score_models(
        "classification",
        y,
        {"candidate": Predictions((proba[:, 1] >= 0.5).astype(np.int64), proba)},
        features,
        slice_by=[["store", "region"]],
        metrics=METRICS,
        bootstrap=BootstrapSettings(n_resamples=resamples, seed=SEED),
    )["candidate"]


def sklearn_metrics(y: np.ndarray, proba: np.ndarray, weight: np.ndarray | None) -> list[float]:
    from sklearn import metrics as skm

    y_pred = (proba[:, 1] >= 0.5).astype(np.int64)
    kw = {"sample_weight": weight}
    return [
        skm.accuracy_score(y, y_pred, **kw),
        skm.precision_score(y, y_pred, zero_division=0, **kw),
        skm.recall_score(y, y_pred, zero_division=0, **kw),
        skm.f1_score(y, y_pred, zero_division=0, **kw),
        skm.roc_auc_score(y, proba[:, 1], **kw),
        skm.log_loss(y, proba, labels=[0, 1], **kw),
        skm.brier_score_loss(y, proba[:, 1], **kw),
    ]


def slice_rows(features: pa.Table) -> list[tuple[tuple[Any, ...], np.ndarray]]:
    """(key, row indices) of the whole split and of every (store, region) slice, sorted."""
    store = np.asarray(features.column("store").to_pylist())
    region = np.asarray(features.column("region").to_pylist())
    out: list[tuple[tuple[Any, ...], np.ndarray]] = [((), np.arange(len(store)))]
    for s in sorted(set(store)):
        for r in sorted(set(region)):
            rows = np.flatnonzero((store == s) & (region == r))
            if rows.size:
                out.append(((("store", s), ("region", r)), rows))
    return out


def run_sklearn(
    y: np.ndarray,
    proba: np.ndarray,
    slices: list[tuple[tuple[Any, ...], np.ndarray]],
    weights: np.ndarray,
) -> tuple[dict[Any, list[float]], dict[Any, np.ndarray], float, float]:
    """(points, samples (metrics x resamples) per slice, seconds for points, seconds for the
    resamples) of the plain loop."""
    points: dict[Any, list[float]] = {}
    samples: dict[Any, np.ndarray] = {}
    started = time.perf_counter()
    for key, rows in slices:
        points[key] = sklearn_metrics(y[rows], proba[rows], None)
    point_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for key, rows in slices:
        yr, pr = y[rows], proba[rows]
        samples[key] = np.array(
            [sklearn_metrics(yr, pr, weights[rows, j]) for j in range(weights.shape[1])]
        ).T
    return points, samples, point_seconds, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--sklearn-resamples", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    from lockgate.evaluation.bootstrap import resample_weights

    y, proba, features = make_data(args.rows)
    slices = slice_rows(features)
    print(
        f"{args.rows:,} rows, {len(slices) - 1} slices + overall, {len(METRICS)} metrics, "
        f"{args.resamples} resamples"
    )
    weights = resample_weights(args.rows, range(args.sklearn_resamples), SEED)  # not timed
    lockgate_times, sklearn_times = [], []
    for attempt in range(args.repeat):
        started = time.perf_counter()
        scores = run_lockgate(y, proba, features, args.resamples)
        lockgate_times.append(time.perf_counter() - started)
        if attempt == 0:  # before the scikit-learn loop allocates anything
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"peak RSS after lockgate (data included): {peak:.0f} MiB")
        points, samples, point_s, resample_s = run_sklearn(y, proba, slices, weights)
        per_resample = resample_s / max(args.sklearn_resamples, 1)
        sklearn_times.append(point_s + per_resample * args.resamples)
        print(
            f"[{attempt + 1}] lockgate score_models: {lockgate_times[-1]:.2f} s | scikit-learn "
            f"loop: points {point_s:.2f} s + {args.sklearn_resamples} resamples timed "
            f"{resample_s:.2f} s ({per_resample:.2f} s each) -> extrapolated to "
            f"{args.resamples} resamples: {sklearn_times[-1]:.1f} s"
        )
    by_key = scores.by_key()
    assert [k for k, _ in slices] == [s.key for s in scores.slices], "slice order differs"
    worst = 0.0
    for key, _ in slices:
        for i, name in enumerate(METRICS):
            got = by_key[key].metrics[name]
            assert got.value is not None and got.samples is not None
            worst = max(worst, abs(got.value - points[key][i]))
            for j in range(args.sklearn_resamples):
                worst = max(worst, abs(got.samples[j] - samples[key][i, j]))
    assert worst <= 1e-9, f"lockgate and scikit-learn differ by {worst:.3g}"
    best_lockgate, best_sklearn = min(lockgate_times), min(sklearn_times)
    speedup = best_sklearn / best_lockgate
    print(
        f"point estimates and the {args.sklearn_resamples} timed resamples agree on every "
        f"slice and metric (max |difference| {worst:.2g})"
    )
    print(
        f"best of {args.repeat}: lockgate {best_lockgate:.2f} s, scikit-learn loop "
        f"{best_sklearn:.1f} s (extrapolated): {speedup:.0f}x faster"
    )
    print(
        f"targets: >= 20x faster: {'met' if speedup >= 20 else 'NOT met'}; under 30 s: "
        f"{'met' if best_lockgate < 30 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
