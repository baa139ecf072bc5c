"""Classification metrics per (slice, resample), vectorised; each equals scikit-learn's.

Confusion matrices, log loss, Brier score and the calibration bins are weighted sums (one
sparse product per partition); ROC-AUC and average precision are weighted cumulative sums
over the rows sorted once by (slice, score) (``ranking.py``). Undefined values are NaN. Conventions, as
scikit-learn with ``zero_division=0``: a per-class precision with no predictions of that
class is 0; macro averages run over the classes present in y_true or y_pred of the slice;
AUC and PR-AUC are undefined when a class they need is absent. The expected calibration
error is about the probabilities, so its bins use the top class's probability and whether
that class is right, whatever the decision threshold.
"""

from __future__ import annotations

import numpy as np

from lockgate.evaluation.grouped import sum_matrix, weighted_sums
from lockgate.evaluation.ranking import RankingScores

ECE_BINS = 10
_AUC = ("roc_auc", "pr_auc")


def _div(num: np.ndarray, den: np.ndarray, empty: float = 0.0) -> np.ndarray:
    out = np.full(np.broadcast(num, den).shape, empty, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def ece_bins(confidence: np.ndarray) -> np.ndarray:
    """Bin 0..9 of 10 equal-width bins on [0, 1]; 1.0 falls in the last bin."""
    edges = np.linspace(0.0, 1.0, ECE_BINS + 1)
    return np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, ECE_BINS - 1)


class ClassificationScores:
    """Everything needed to score one model on one partition, prepared once and then
    evaluated for any number of weight columns."""

    def __init__(
        self,
        y_true: np.ndarray,
        y_pred: np.ndarray,
        proba: np.ndarray | None,
        codes: np.ndarray,
        n_slices: int,
        n_classes: int,
        names: set[str],
        orders: dict[int, np.ndarray] | None = None,
    ) -> None:
        """``orders`` caches ``argsort(proba[:, c])`` across the partitions of one model."""
        k, s = n_classes, n_slices
        orders = {} if orders is None else orders
        self.k, self.s, self.names = k, s, names
        columns = [codes * k * k + y_true * k + y_pred]
        values = [np.ones(codes.shape[0])]
        self.blocks: dict[str, int] = {"confusion": 0}
        width = s * k * k
        self.ranking: list[RankingScores] = []
        if proba is not None:
            eps = np.finfo(np.float64).eps
            onehot = np.zeros_like(proba)
            onehot[np.arange(proba.shape[0]), y_true] = 1.0
            confidence = proba.max(axis=1)
            bins = ece_bins(confidence)
            correct = (proba.argmax(axis=1) == y_true).astype(np.float64)
            per_row = {
                "log_loss": (
                    codes,
                    -np.log(np.clip(proba[np.arange(len(y_true)), y_true], eps, 1 - eps)),
                ),
                "brier_score": (
                    codes,
                    ((onehot - proba) ** 2).sum(axis=1) * (0.5 if k == 2 else 1.0),
                ),
                "ece_count": (codes * ECE_BINS + bins, np.ones_like(confidence)),
                "ece_confidence": (codes * ECE_BINS + bins, confidence),
                "ece_correct": (codes * ECE_BINS + bins, correct),
            }
            wanted = {
                "log_loss": "log_loss" in names,
                "brier_score": "brier_score" in names,
            }
            for block in ("ece_count", "ece_confidence", "ece_correct"):
                wanted[block] = "expected_calibration_error" in names
            for block, (cols, vals) in per_row.items():
                if wanted[block]:
                    self.blocks[block] = width
                    columns.append(cols + width)
                    values.append(vals)
                    width += s * (ECE_BINS if block.startswith("ece") else 1)
            if names & set(_AUC):
                for c in [1] if k == 2 else range(k):
                    if c not in orders:
                        orders[c] = np.argsort(proba[:, c], kind="stable")
                    self.ranking.append(
                        RankingScores(codes, proba[:, c], y_true == c, s, orders[c])
                    )
        self.matrix = sum_matrix(columns, values, width)

    def evaluate(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """Metric name -> array ``(n_slices, n_resamples)``; per-class metrics are keyed
        ``"precision[<index>]"`` here (the engine renames them)."""
        k, s, r = self.k, self.s, weights.shape[1]
        sums = weighted_sums(self.matrix, weights)
        cm = sums[: s * k * k].reshape(s, k, k, r)  # [slice, true, pred, resample]
        tp = np.einsum("siir->sir", cm)
        support = cm.sum(axis=2)
        predicted = cm.sum(axis=1)
        total = support.sum(axis=1)
        nan_if_empty = np.where(total > 0, 1.0, np.nan)  # (s, r)
        out: dict[str, np.ndarray] = {}
        out["accuracy"] = _div(tp.sum(axis=1), total, np.nan)
        per_class = {
            "precision": _div(tp, predicted),
            "recall": _div(tp, support),
            "f1": _div(2 * tp, support + predicted),
        }
        present = (support + predicted) > 0
        for prefix, value in per_class.items():
            out[f"{prefix}_macro"] = _div(
                (value * present).sum(axis=1), present.sum(axis=1), np.nan
            )
            out[f"{prefix}_micro"] = out["accuracy"]
            out[f"{prefix}_weighted"] = _div((value * support).sum(axis=1), total, np.nan)
            for c in range(k):
                out[f"{prefix}[{c}]"] = value[:, c] * nan_if_empty
            if k == 2:
                out[prefix] = value[:, 1] * nan_if_empty
        has_support = support > 0
        out["balanced_accuracy"] = _div(
            (per_class["recall"] * has_support).sum(axis=1), has_support.sum(axis=1), np.nan
        )
        if "log_loss" in self.blocks:
            start = self.blocks["log_loss"]
            out["log_loss"] = _div(sums[start : start + s], total, np.nan)
        if "brier_score" in self.blocks:
            start = self.blocks["brier_score"]
            out["brier_score"] = _div(sums[start : start + s], total, np.nan)
        if "ece_count" in self.blocks:
            width = s * ECE_BINS

            def block(name: str) -> np.ndarray:
                start = self.blocks[name]
                return sums[start : start + width].reshape(s, ECE_BINS, r)

            gap = np.abs(block("ece_correct") - block("ece_confidence")).sum(axis=1)
            out["expected_calibration_error"] = _div(gap, total, np.nan)
        if self.ranking:
            want_auc, want_ap = "roc_auc" in self.names, "pr_auc" in self.names
            pairs = [rs.evaluate(weights, auc=want_auc, ap=want_ap) for rs in self.ranking]
            # macro over classes: undefined when any class's is (a class absent from the slice)
            if want_auc:
                out["roc_auc"] = np.mean([auc for auc, _ in pairs if auc is not None], axis=0)
            if want_ap:
                out["pr_auc"] = np.mean([ap for _, ap in pairs if ap is not None], axis=0)
        return out
