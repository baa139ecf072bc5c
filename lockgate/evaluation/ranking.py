"""ROC-AUC and average precision of one class per (slice, resample), from sorted weights.

The rows are sorted once by (slice, score). For each resample, AUC is the weighted count of
(positive, negative) pairs in order, over the product of the weights, and average precision
is scikit-learn's step sum over thresholds; both are cumulative sums of the weights in that
order. When no positive row ties with another row (continuous scores, the common case) the
positives and negatives are handled apart: one cumulative sum of the negatives' weights, read
at each positive, a few passes over the rows. Otherwise the rows are first summed into runs of
equal scores (ties count half in AUC, as scikit-learn does).
"""

from __future__ import annotations

import numpy as np

from lockgate.evaluation.grouped import SortedSlices


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _segment_sums(x: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sums of consecutive segments of ``x`` (``counts`` rows from ``starts``), empty ones 0."""
    out = np.zeros((starts.shape[0],) + x.shape[1:])
    nonempty = counts > 0
    if nonempty.any():
        out[nonempty] = np.add.reduceat(x, starts[nonempty], axis=0)
    return out


class RankingScores:
    """AUC and average precision of ``positive`` against the rest, per slice."""

    def __init__(
        self,
        codes: np.ndarray,
        score: np.ndarray,
        positive: np.ndarray,
        n_slices: int,
        score_order: np.ndarray | None = None,
    ) -> None:
        self.groups = SortedSlices(codes, score, n_slices, score_order)
        order = self.groups.order
        pos_sorted = positive[order]
        run_length = np.diff(np.append(self.groups.run_starts, len(order)))
        run_has_pos = (
            np.add.reduceat(pos_sorted.astype(np.int64), self.groups.run_starts) > 0
            if len(order)
            else np.zeros(0, bool)
        )
        self.fast = not bool(np.any(run_has_pos & (run_length > 1)))
        self.pos_sorted = pos_sorted.astype(np.float64)
        if not self.fast:
            return
        sorted_codes = codes[order]
        slices = np.arange(n_slices)
        self.pos_rows, self.neg_rows = order[pos_sorted], order[~pos_sorted]
        pos_codes, neg_codes = sorted_codes[pos_sorted], sorted_codes[~pos_sorted]
        self.pos_codes = pos_codes
        self.pos_start = np.searchsorted(pos_codes, slices, side="left")
        self.pos_count = np.searchsorted(pos_codes, slices, side="right") - self.pos_start
        neg_start = np.searchsorted(neg_codes, slices, side="left")
        neg_end = np.searchsorted(neg_codes, slices, side="right")
        self.neg_before = neg_start  # negatives (all slices) before each slice's first
        self.neg_end = neg_end
        # negatives sorted before each positive (all slices): where to read their cumsum
        self.neg_below = np.cumsum(~pos_sorted)[pos_sorted]

    def evaluate(
        self, weights: np.ndarray, *, auc: bool, ap: bool
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``(auc, ap)``, each ``(n_slices, n_resamples)`` with NaN where undefined."""
        if not self.fast:
            return _by_runs(self.groups, self.pos_sorted, weights, auc=auc, ap=ap)
        r = weights.shape[1]
        neg_cum = np.take(weights, self.neg_rows, axis=0)
        np.cumsum(neg_cum, axis=0, out=neg_cum)  # exact: integer weights

        def cum_at(index: np.ndarray) -> np.ndarray:
            """Cumulative negative weight through ``index`` (0 where the index is 0)."""
            if neg_cum.shape[0] == 0:  # no negative anywhere: nothing to count
                return np.zeros((len(index), r))
            out = neg_cum[np.maximum(index - 1, 0)]
            out[index == 0] = 0.0
            return out

        base = cum_at(self.neg_before)  # (s, r): negatives of earlier slices
        neg_total = cum_at(self.neg_end) - base
        pos_w = np.take(weights, self.pos_rows, axis=0)
        pos_total = _segment_sums(pos_w, self.pos_start, self.pos_count)
        below = cum_at(self.neg_below)  # (n_pos, r), counted from the first slice
        below -= base[self.pos_codes]
        auc_out = ap_out = None
        if auc:
            wins = _segment_sums(pos_w * below, self.pos_start, self.pos_count)
            auc_out = _div(wins, pos_total * neg_total)
            auc_out[(pos_total == 0) | (neg_total == 0)] = np.nan
        if ap:
            pos_cum = np.cumsum(pos_w, axis=0)
            pos_before = np.zeros((len(self.pos_start), r))
            has = self.pos_start > 0
            pos_before[has] = pos_cum[self.pos_start[has] - 1]
            # positives at or above each positive's score, within its slice
            tp = pos_total[self.pos_codes] - (pos_cum - pos_w - pos_before[self.pos_codes])
            fp = neg_total[self.pos_codes] - below
            precision = np.zeros_like(tp)
            np.divide(tp, tp + fp, out=precision, where=(tp + fp) > 0)
            gained = pos_w * precision
            ap_out = _div(_segment_sums(gained, self.pos_start, self.pos_count), pos_total)
        return auc_out, ap_out


def _by_runs(
    groups: SortedSlices, positive: np.ndarray, weights: np.ndarray, *, auc: bool, ap: bool
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The general case, ties included: weights summed per run of equal scores first."""
    w = weights[groups.order]
    pos = groups.run_sums(w * positive[:, None])
    neg = groups.run_sums(w) - pos
    pos_below = groups.below(pos)
    neg_below = groups.below(neg)
    pos_total = groups.slice_sums(pos)
    neg_total = groups.slice_sums(neg)
    auc_out = ap_out = None
    if auc:
        # for each positive, the negatives scored lower, plus half the tied ones
        wins = groups.slice_sums(pos * (neg_below + 0.5 * neg))
        auc_out = _div(wins, pos_total * neg_total)
        auc_out[(pos_total == 0) | (neg_total == 0)] = np.nan
    if ap:
        # sum over thresholds (runs) of recall gained x precision at that threshold
        tps = pos_total[groups.run_slice] - pos_below
        fps = neg_total[groups.run_slice] - neg_below
        precision = np.zeros_like(tps)
        np.divide(tps, tps + fps, out=precision, where=(tps + fps) > 0)
        ap_out = _div(groups.slice_sums(pos * precision), pos_total)
    return auc_out, ap_out
