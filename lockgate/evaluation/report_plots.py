"""The evaluation report's charts as inline ``<svg>`` strings, drawn by matplotlib from the
data of ``evaluation/curves.py``: ROC and precision-recall curves, the calibration plot, the
confusion matrix and the residual plot, the candidate and the baseline on one chart.

No pyplot: each chart is its own ``Figure`` on an Agg canvas saved as SVG, so nothing
global changes. Text stays SVG ``<text>`` that matplotlib escapes, mathtext is off (a class
called ``$5`` is not a formula), and the namespace and DTD URLs are dropped from the SVG so
that the page references nothing outside itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

__all__ = [
    "calibration_svg",
    "confusion_svg",
    "pr_svg",
    "residual_histogram_svg",
    "residual_svg",
    "roc_svg",
]

Series = Sequence[tuple[str, Mapping[str, Any]]]  # (model label, its compute_curves dict)

CANDIDATE = "#3568c9"
BASELINE = "#6b7280"
_FONT = 7
_SIZE = (3.3, 2.9)  # inches; the page scales each SVG to its column
_RC: dict[Any, Any] = {
    "text.parse_math": False,
    "svg.fonttype": "none",
    "svg.hashsalt": "lockgate",
    "font.size": _FONT,
    "font.family": "sans-serif",
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "legend.fontsize": _FONT - 0.5,
}
_CLASS_COLOURS = [
    "#3568c9",
    "#e37400",
    "#188038",
    "#c5221f",
    "#8e24aa",
    "#00897b",
    "#6d4c41",
    "#d81b60",
    "#5f6368",
    "#9e9d24",
]


@contextlib.contextmanager
def _figure(size: tuple[float, float] = _SIZE) -> Iterator[Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from lockgate.data.report.charts import report_style

    with report_style(_RC):
        fig = Figure(figsize=size, layout="constrained")
        FigureCanvasAgg(fig)
        try:
            yield fig
        finally:
            fig.clear()


def _to_svg(fig: Any, ident: str) -> str:
    """The figure as an ``<svg>`` element with ids unique on the page and no URLs."""
    from lockgate.data.report.charts import svg_element

    return svg_element(fig, ident, css_class="chart", no_urls=True)


def _style(model: int, k: int, n_classes: int) -> dict[str, Any]:
    """Binary: blue candidate, grey baseline. Multiclass: a colour per class, the baseline
    dashed."""
    if n_classes <= 1:
        return {"color": CANDIDATE if model == 0 else BASELINE, "linestyle": "-"}
    return {
        "color": _CLASS_COLOURS[k % len(_CLASS_COLOURS)],
        "linestyle": "-" if model == 0 else "--",
    }


def _square(ax: Any, xlabel: str, ylabel: str) -> None:
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_aspect("equal")


def _short(text: Any, size: int = 24) -> str:
    text = str(text)
    return text if len(text) <= size else text[: size - 1] + "…"


def _label(model: str, curve: Mapping[str, Any], many: bool, score: str, name: str) -> str:
    value = curve.get(score)
    figure = f" · {name} {value:.3f}" if isinstance(value, float) else ""
    return f"{model} {_short(curve['class'])}{figure}" if many else f"{model}{figure}"


def _legend_size(series: Series, key: str) -> tuple[float, float]:
    """Room below the axes for a legend of one line per class and model (multiclass)."""
    lines = sum(len(curves.get(key) or []) for _, curves in series)
    many = any(len(curves.get(key) or []) > 1 for _, curves in series)
    return (_SIZE[0], _SIZE[1] + 0.13 * lines) if many else _SIZE


def _legend(fig: Any, ax: Any, size: tuple[float, float], loc: str) -> None:
    if not ax.get_legend_handles_labels()[1]:  # no curve drawn (one class in the split)
        return
    if size == _SIZE:
        ax.legend(loc=loc)
    else:
        fig.legend(loc="outside lower center")


def roc_svg(series: Series, *, ident: str) -> str:
    size = _legend_size(series, "roc")
    with _figure(size) as fig:
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], color="#dadce0", linewidth=0.8, linestyle=":")
        for m, (model, curves) in enumerate(series):
            many = len(curves["roc"]) > 1
            for k, curve in enumerate(curves["roc"]):
                if not curve["fpr"]:
                    continue
                style = _style(m, k, len(curves["roc"]))
                ax.plot(
                    curve["fpr"],
                    curve["tpr"],
                    linewidth=1.2,
                    **style,
                    label=_label(model, curve, many, "auc", "AUC"),
                )
                point = curve.get("operating_point")
                if point:
                    ax.plot(
                        [point["fpr"]],
                        [point["tpr"]],
                        marker="o",
                        markersize=3.5,
                        color=style["color"],
                    )
        _square(ax, "false positive rate", "true positive rate")
        _legend(fig, ax, size, "lower right")
        return _to_svg(fig, ident)


def pr_svg(series: Series, *, ident: str) -> str:
    size = _legend_size(series, "pr")
    with _figure(size) as fig:
        ax = fig.add_subplot()
        for m, (model, curves) in enumerate(series):
            many = len(curves["pr"]) > 1
            for k, curve in enumerate(curves["pr"]):
                if not curve["recall"]:
                    continue
                style = _style(m, k, len(curves["pr"]))
                ax.plot(
                    curve["recall"],
                    curve["precision"],
                    linewidth=1.2,
                    drawstyle="steps-post",
                    **style,
                    label=_label(model, curve, many, "average_precision", "AP"),
                )
                point = curve.get("operating_point")
                if point and point.get("precision") is not None:
                    ax.plot(
                        [point["recall"]],
                        [point["precision"]],
                        marker="o",
                        markersize=3.5,
                        color=style["color"],
                    )
                if m == 0 and not many and curve.get("prevalence") is not None:
                    ax.axhline(curve["prevalence"], color="#dadce0", linewidth=0.8, linestyle=":")
        _square(ax, "recall", "precision")
        _legend(fig, ax, size, "lower left")
        return _to_svg(fig, ident)


def calibration_svg(series: Series, *, ident: str) -> str:
    of = "predicted probability"
    with _figure() as fig:
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], color="#dadce0", linewidth=0.8, linestyle=":")
        for m, (model, curves) in enumerate(series):
            calibration = curves.get("calibration")
            if not calibration:
                continue
            of = calibration.get("of", of)
            full = [b for b in calibration["bins"] if b["count"]]
            ax.plot(
                [b["mean_predicted"] for b in full],
                [b["observed"] for b in full],
                marker="o",
                markersize=3,
                linewidth=1.2,
                label=model,
                color=CANDIDATE if m == 0 else BASELINE,
            )
        _square(ax, f"mean {of}", "observed frequency")
        ax.legend(loc="upper left")
        return _to_svg(fig, ident)


def confusion_svg(curves: Mapping[str, Any], *, title: str, ident: str) -> str:
    confusion = curves["confusion_matrix"]
    labels, matrix = confusion["labels"], confusion["matrix"]
    k = len(labels)
    side = min(2.2 + 0.3 * k, 6.0)
    with _figure((side + 0.6, side)) as fig:
        ax = fig.add_subplot()
        totals = [sum(row) or 1 for row in matrix]
        shares = [[c / t for c in row] for row, t in zip(matrix, totals, strict=True)]
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        if k <= 20:
            for i, row in enumerate(matrix):
                for j, count in enumerate(row):
                    ax.text(
                        j,
                        i,
                        str(count),
                        ha="center",
                        va="center",
                        fontsize=_FONT - 0.5,
                        color="white" if shares[i][j] > 0.6 else "#202124",
                    )
        ticks = list(range(k))
        ax.set_xticks(
            ticks,
            labels=[str(x) for x in labels],
            rotation=45 if k > 3 else 0,
            ha="right" if k > 3 else "center",
        )
        ax.set_yticks(ticks, labels=[_short(x) for x in labels])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
        for spine in ax.spines.values():
            spine.set_visible(False)
        return _to_svg(fig, ident)


def residual_svg(series: Series, *, ident: str) -> str:
    with _figure((4.2, 2.9)) as fig:
        ax = fig.add_subplot()
        ax.axhline(0, color="#dadce0", linewidth=0.8)
        for m, (model, curves) in enumerate(series):
            points = [
                (x, r)
                for x, r in zip(
                    curves["residuals"]["y_pred"], curves["residuals"]["residual"], strict=True
                )
                if x is not None and r is not None
            ]
            if points:
                xs, rs = zip(*points, strict=True)
                ax.scatter(
                    xs,
                    rs,
                    s=5,
                    alpha=0.55,
                    linewidths=0,
                    label=model,
                    color=CANDIDATE if m == 0 else BASELINE,
                    zorder=3 - m,  # the candidate on top
                )
        ax.set_xlabel("predicted")
        ax.set_ylabel("residual (true - predicted)")
        ax.legend(loc="upper right")
        return _to_svg(fig, ident)


def residual_histogram_svg(series: Series, *, ident: str) -> str:
    with _figure((4.2, 2.4)) as fig:
        ax = fig.add_subplot()
        for m, (model, curves) in enumerate(series):
            histogram = curves["histogram"]
            edges, counts = histogram["edges"], histogram["counts"]
            if not counts or any(e is None for e in edges):
                continue
            total = sum(counts) or 1
            widths = [(hi - lo) or 1.0 for lo, hi in zip(edges, edges[1:], strict=False)]
            density = [c / total / w for c, w in zip(counts, widths, strict=True)]
            ax.stairs(
                density,
                edges,
                fill=m == 0,
                alpha=0.5 if m == 0 else 1.0,
                label=model,
                color=CANDIDATE if m == 0 else BASELINE,
                linewidth=1.2,
            )
        ax.set_xlabel("residual (true - predicted)")
        ax.set_ylabel("density")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper right")
        return _to_svg(fig, ident)
