"""Regression metrics per (slice, resample), vectorised; each equals scikit-learn's.

MAE, MSE, RMSE, R² and MAPE are weighted sums (one sparse product); the median absolute
error and the residual quantiles are weighted quantiles over rows sorted once per slice.
R² on fewer than two rows is undefined (NaN), as scikit-learn says.
"""

from __future__ import annotations

import numpy as np

from lockgate.evaluation.grouped import SortedSlices, sum_matrix, weighted_quantiles, weighted_sums

_SUMS = ("count", "abs", "sq", "y", "y2", "ape")
RESIDUAL_QUANTILES = {"residual_p10": 0.1, "residual_p50": 0.5, "residual_p90": 0.9}


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


class RegressionScores:
    """One model on one partition, prepared once, evaluated for any weight columns."""

    def __init__(
        self,
        y_true: np.ndarray,
        y_pred: np.ndarray,
        codes: np.ndarray,
        n_slices: int,
        names: set[str],
        orders: dict[str, np.ndarray] | None = None,
    ) -> None:
        """``orders`` caches the sorts of the errors across the partitions of one model."""
        self.s, self.names = n_slices, names
        orders = {} if orders is None else orders
        error = y_true - y_pred
        centred = y_true - (y_true.mean() if y_true.size else 0.0)  # less cancellation in R²
        eps = np.finfo(np.float64).eps
        per_row = {
            "count": np.ones_like(error),
            "abs": np.abs(error),
            "sq": error**2,
            "y": centred,
            "y2": centred**2,
            "ape": np.abs(error) / np.maximum(np.abs(y_true), eps),
        }
        self.matrix = sum_matrix(
            [codes + i * n_slices for i in range(len(_SUMS))],
            [per_row[name] for name in _SUMS],
            len(_SUMS) * n_slices,
        )
        self.absolute = self.residual = None
        if "median_absolute_error" in names:
            if "abs" not in orders:
                orders["abs"] = np.argsort(np.abs(error), kind="stable")
            self.absolute = SortedSlices(codes, np.abs(error), n_slices, orders["abs"])
        if names & set(RESIDUAL_QUANTILES):
            if "residual" not in orders:
                orders["residual"] = np.argsort(error, kind="stable")
            self.residual = SortedSlices(codes, error, n_slices, orders["residual"])

    def evaluate(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """Metric name -> array ``(n_slices, n_resamples)``."""
        s = self.s
        sums = weighted_sums(self.matrix, weights)
        part = {name: sums[i * s : (i + 1) * s] for i, name in enumerate(_SUMS)}
        n = part["count"]
        out: dict[str, np.ndarray] = {
            "mae": _div(part["abs"], n),
            "mse": _div(part["sq"], n),
            "mape": _div(part["ape"], n),
        }
        out["rmse"] = np.sqrt(out["mse"])
        total = part["y2"] - _div(part["y"] ** 2, n)
        flat = total <= 1e-12 * part["y2"]  # y_true constant on the slice
        r2 = 1.0 - _div(part["sq"], np.where(flat, 0.0, total))
        r2 = np.where(flat, np.where(part["sq"] == 0, 1.0, 0.0), r2)
        out["r2"] = np.where(n >= 2, r2, np.nan)
        if self.absolute is not None:
            out["median_absolute_error"] = weighted_quantiles(self.absolute, weights, [0.5])[0]
        if self.residual is not None:
            quantiles = weighted_quantiles(
                self.residual, weights, list(RESIDUAL_QUANTILES.values())
            )
            for i, name in enumerate(RESIDUAL_QUANTILES):
                out[name] = quantiles[i]
        return out
