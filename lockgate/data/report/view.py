"""What a report shows of statistics, anomalies and drift, shared by the HTML page and the
terminal table: one ``FeatureView`` per feature, its summary rows already formatted.

Only plain Python here (no Jinja2, no matplotlib), so importing the report stays cheap.
Every field of the statistics contract (docs/architecture.md) is optional: a field that is
absent is not shown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lockgate.errors import DataError

__all__ = [
    "FeatureView",
    "Row",
    "build_views",
    "check_statistics",
    "fmt_num",
    "fmt_pct",
    "missing_rate",
    "short_time",
    "short_value",
    "top_values",
]

NUMERIC = ("int", "float")
CATEGORICAL = ("string", "bool")


def check_statistics(stats: Any, *, name: str = "stats") -> Mapping[str, Any]:
    """``stats`` as a mapping with ``features``, or a ``DataError`` saying what it is."""
    if not isinstance(stats, Mapping) or not isinstance(stats.get("features"), Mapping):
        got = sorted(stats) if isinstance(stats, Mapping) else type(stats).__name__
        raise DataError(
            f"The '{name}' parameter must be statistics with a 'features' mapping "
            f"(the output of compute_statistics). Got {got} instead."
        )
    return stats


def fmt_num(value: Any) -> str:
    """A number short enough for a table cell: 4 significant digits, thousands separated."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 100_000 else str(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    size = abs(value)
    if size == 0:
        return "0"
    if 1e5 <= size < 1e12:
        return f"{value:,.0f}"
    if 1e4 <= size < 1e5:
        return f"{value:.0f}"
    if 1e-3 <= size < 1e4:
        return f"{value:.4g}"
    return f"{value:.3e}"


def fmt_pct(rate: float | None) -> str:
    if rate is None:
        return "–"
    if 0 < rate < 0.001:
        return "<0.1%"
    return f"{100 * rate:.1f}%"


def missing_rate(fs: Mapping[str, Any] | None) -> float | None:
    """Missing cells over all cells of a feature (``missing / (count + missing)``)."""
    if not fs:
        return None
    count, missing = fs.get("count"), fs.get("missing")
    if count is None or missing is None or count + missing == 0:
        return None
    return float(missing) / float(count + missing)


def short_value(value: Any, limit: int = 40) -> str:
    """A category or timestamp as one short line (user data: newlines and tabs shown)."""
    text = '""' if value == "" else str(value)
    text = text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_time(value: Any) -> str:
    """An ISO 8601 timestamp to the minute, or to the day when it is midnight."""
    if value is None:
        return "–"
    text = str(value).replace("T", " ")
    return text[:10] if text[10:19] in ("", " 00:00:00") else text[:16]


def top_values(fs: Mapping[str, Any] | None) -> list[tuple[str, float]]:
    """(value, count), most frequent first, from ``top_values`` or else ``rank_histogram``."""
    if not fs:
        return []
    if fs.get("top_values"):
        return [(str(v), float(c)) for v, c in fs["top_values"]]
    if fs.get("rank_histogram"):
        ranked = sorted(fs["rank_histogram"], key=lambda b: b.get("rank", 0))
        return [(str(b.get("label")), float(b.get("count", 0))) for b in ranked]
    return []


@dataclass
class Row:
    """One line of a summary table: a label and one formatted cell per span."""

    label: str
    cells: tuple[str, ...]
    rates: tuple[float | None, ...] | None = None  # drawn as bars (missing rate)


@dataclass
class FeatureView:
    """One feature of the current span and, when comparing, of the other span."""

    name: str
    anchor: str
    current: Mapping[str, Any] | None
    other: Mapping[str, Any] | None = None
    anomalies: list[Mapping[str, Any]] = field(default_factory=list)
    drift: Mapping[str, Any] | None = None
    children: list[FeatureView] = field(default_factory=list)

    @property
    def spans(self) -> tuple[Mapping[str, Any] | None, ...]:
        return (self.current, self.other)

    @property
    def type(self) -> str:
        types = [str(fs["type"]) for fs in self.spans if fs and fs.get("type")]
        if len(set(types)) > 1:
            return " / ".join(types)
        return types[0] if types else "?"

    @property
    def kind(self) -> str:
        """The type that decides the chart: the current span's, else the other's."""
        for fs in self.spans:
            if fs and fs.get("type"):
                return str(fs["type"])
        return "?"

    @property
    def drift_failed(self) -> bool:
        return bool(self.drift) and self.drift.get("passed") is False  # type: ignore[union-attr]

    @property
    def severity(self) -> str | None:
        """``error``, ``warning`` or None: how strongly the feature is highlighted."""
        seen = {a.get("severity") for a in self.anomalies}
        if "error" in seen or self.drift_failed:
            return "error"
        return "warning" if self.anomalies else None

    def rows(self, compare: bool) -> list[Row]:
        """Counts and moments (the left table of a feature)."""
        n = 2 if compare else 1
        spans = self.spans[:n]
        rows = [
            Row("count", tuple(fmt_num(fs.get("count")) if fs else "absent" for fs in spans)),
            Row(
                "missing",
                tuple(_missing_cell(fs) for fs in spans),
                tuple(missing_rate(fs) for fs in spans),
            ),
        ]
        for key, label in (
            ("mean", "mean"),
            ("std", "std"),
            ("zeros", "zeros"),
            ("distinct", "distinct"),
            ("avg_length", "avg length"),
        ):
            if any(fs and key in fs for fs in spans):
                rows.append(Row(label, tuple(_cell(fs, key) for fs in spans)))
        if any(fs and "value_count" in fs for fs in spans):
            for key in ("min", "mean", "max"):
                cells = tuple(
                    fmt_num((fs.get("value_count") or {}).get(key)) if fs else "–" for fs in spans
                )
                rows.append(Row(f"values per row, {key}", cells))
        if any(fs and "weighted" in fs for fs in spans):
            for key in ("count", "mean", "std"):
                cells = tuple(
                    fmt_num((fs.get("weighted") or {}).get(key)) if fs else "–" for fs in spans
                )
                if any(c != "–" for c in cells):
                    rows.append(Row(f"weighted {key}", cells))
        return rows

    def position_rows(self, compare: bool) -> list[Row]:
        """min, quantiles, median and max (the right table of a numeric or time feature)."""
        spans = self.spans[: 2 if compare else 1]
        keys: set[float] = set()
        for fs in spans:
            for k in (fs or {}).get("quantiles") or {}:
                if k != "rank_error":
                    keys.add(float(k))
        rows: list[Row] = []
        if any(fs and "min" in fs for fs in spans):
            rows.append(Row("min", tuple(_cell(fs, "min") for fs in spans)))
        for q in sorted(keys):
            label = "median" if q == 0.5 else f"{_pct_label(q)}"
            rows.append(Row(label, tuple(_quantile(fs, q) for fs in spans)))
        if 0.5 not in keys and any(fs and "median" in fs for fs in spans):
            rows.insert(
                len(rows) // 2 + 1, Row("median", tuple(_cell(fs, "median") for fs in spans))
            )
        if any(fs and "max" in fs for fs in spans):
            rows.append(Row("max", tuple(_cell(fs, "max") for fs in spans)))
        return rows

    def rank_error(self) -> float | None:
        errors = [
            (fs.get("quantiles") or {}).get("rank_error") for fs in self.spans if fs is not None
        ]
        known = [e for e in errors if isinstance(e, int | float)]
        return max(known) if known else None

    def headline(self, fs: Mapping[str, Any] | None) -> str:
        """One short cell: mean ± std for numbers, the top value for categories."""
        if not fs:
            return "absent"
        kind = fs.get("type")
        if kind in NUMERIC and "mean" in fs:
            return f"{fmt_num(fs['mean'])} ± {fmt_num(fs.get('std'))}"
        if kind == "timestamp":
            return f"{short_time(fs.get('min'))} … {short_time(fs.get('max'))}"
        tops = top_values(fs)
        if tops:
            value, count = tops[0]
            return f"{short_value(value, 24)} ({fmt_num(int(count))})"
        if kind == "list" and fs.get("value_count"):
            return f"{fmt_num(fs['value_count'].get('mean'))} values/row"
        return ""


def _missing_cell(fs: Mapping[str, Any] | None) -> str:
    if not fs:
        return "–"
    rate = missing_rate(fs)
    return f"{fmt_num(fs.get('missing'))} ({fmt_pct(rate)})"


def _cell(fs: Mapping[str, Any] | None, key: str) -> str:
    if not fs or key not in fs:
        return "–"
    value = fs[key]
    if key == "distinct" and fs.get("distinct_is_estimate"):
        return f"≈{fmt_num(value)}"
    if isinstance(value, str):
        return short_value(value)
    return fmt_num(value)


def _quantile(fs: Mapping[str, Any] | None, q: float) -> str:
    for k, v in ((fs or {}).get("quantiles") or {}).items():
        if k != "rank_error" and float(k) == q:
            return fmt_num(v)
    return "–"


def _pct_label(q: float) -> str:
    return f"{100 * q:g}%"


def build_views(
    stats: Mapping[str, Any],
    *,
    anomalies: Sequence[Mapping[str, Any]] | None = None,
    compare: Mapping[str, Any] | None = None,
    drift: Mapping[str, Any] | None = None,
) -> list[FeatureView]:
    """One view per feature: the current span's features in order, then those only the other
    span has; each with its anomalies and its drift entry."""
    features: Mapping[str, Any] = stats["features"]
    others: Mapping[str, Any] = compare["features"] if compare else {}
    names = list(features) + [n for n in others if n not in features]
    by_feature: dict[str, list[Mapping[str, Any]]] = {}
    for a in anomalies or ():
        by_feature.setdefault(str(a.get("feature")), []).append(a)
    drift_of = {str(d.get("feature")): d for d in (drift or {}).get("features", ())}
    views = []
    for i, name in enumerate(names):
        view = FeatureView(
            name=name,
            anchor=f"f{i}",
            current=features.get(name),
            other=others.get(name),
            anomalies=by_feature.get(name, []),
            drift=drift_of.get(name),
        )
        values = [fs.get("values") if fs else None for fs in view.spans]
        if any(values):
            view.children.append(
                FeatureView(
                    name=f"{name} (values)", anchor=f"f{i}v", current=values[0], other=values[1]
                )
            )
        views.append(view)
    return views
