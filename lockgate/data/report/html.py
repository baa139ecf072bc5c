"""The statistics of a span as one self-contained HTML page: inline CSS, inline SVG charts,
a few lines of inline JavaScript to filter features, nothing fetched from the network.

Every value from the data (feature names, categories, messages, labels) goes through
Jinja2's autoescaping; the only markup inserted as-is is the SVG that matplotlib wrote.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from lockgate.data.report.view import (
    CATEGORICAL,
    NUMERIC,
    FeatureView,
    build_views,
    check_statistics,
    fmt_num,
    fmt_pct,
    missing_rate,
    short_value,
    top_values,
)

__all__ = ["render_html"]

#: Charts cost ~30 ms each; past this many features only the flagged ones get charts.
DEFAULT_MAX_CHARTS = 60
_TOP = 10  # categories per bar chart


def render_html(
    stats: Mapping[str, Any],
    *,
    title: str,
    anomalies: Sequence[Mapping[str, Any]] | None = None,
    compare: Mapping[str, Any] | None = None,
    compare_label: str = "previous",
    label: str = "current",
    drift: Mapping[str, Any] | None = None,
    max_charts: int | None = DEFAULT_MAX_CHARTS,
) -> str:
    """The page for ``stats`` (``compute_statistics``'s dict), with ``anomalies``
    (``Anomaly.to_dict()``s) highlighted, ``compare`` (another span's statistics) side by
    side, and ``drift`` (``DriftReport.to_dict()``) per feature.

    ``max_charts`` bounds the features drawn as charts (features with an anomaly or a failed
    drift check first, then in order); None draws them all.
    """
    check_statistics(stats)
    if compare is not None:
        check_statistics(compare, name="compare")
    views = build_views(stats, anomalies=anomalies, compare=compare, drift=drift)
    anchors = {v.name: v.anchor for v in views}
    charted = _charted(views, max_charts)
    charts: dict[str, list[dict[str, str]]] = {}
    for v in views:
        if v.anchor in charted:
            _charts(v, compare is not None, charts)
    template = _environment().get_template("report.html.j2")
    return template.render(
        title=title,
        labels=[label, compare_label] if compare is not None else [label],
        compare=compare is not None,
        totals=[_totals(stats)] + ([_totals(compare)] if compare is not None else []),
        features=views,
        charts=charts,
        skipped_charts=sum(1 for v in views if v.anchor not in charted),
        anomalies=[_anomaly(a, anchors) for a in anomalies or ()],
        drift=drift,
        drift_rows=[v for v in views if v.drift],
        slices=_slices(stats),
        fmt_num=fmt_num,
        fmt_pct=fmt_pct,
        missing_rate=missing_rate,
    )


@functools.cache
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("lockgate.data.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _charted(views: list[FeatureView], limit: int | None) -> set[str]:
    if limit is None:
        return {v.anchor for v in views}
    ordered = [v for v in views if v.severity] + [v for v in views if not v.severity]
    return {v.anchor for v in ordered[: max(limit, 0)]}


def _charts(view: FeatureView, compare: bool, out: dict[str, list[dict[str, str]]]) -> None:
    """Put the feature's charts (caption, svg, kind) into ``out[view.anchor]``, and those of
    a list feature's values into their own anchor."""
    from lockgate.data.report.charts import histogram_svg

    spans = view.spans[: 2 if compare else 1]
    kind = view.kind
    mine = out.setdefault(view.anchor, [])
    if kind in NUMERIC or kind == "timestamp":
        series = [(fs or {}).get("histogram") for fs in spans]
        if any(series):
            bins = len(next(s for s in series if s))
            caption = f"histogram, {bins} equal-width buckets"
            svg = histogram_svg(
                series, ident=view.anchor, time=kind == "timestamp", integer=kind == "int"
            )
            mine.append({"caption": caption, "svg": svg, "kind": "histogram"})
    elif kind in CATEGORICAL or any(
        fs and ("top_values" in fs or "rank_histogram" in fs) for fs in spans
    ):
        bars = _bars(view, spans)
        if bars:
            mine.append(bars)
    if kind == "list":
        series = [((fs or {}).get("value_count") or {}).get("histogram") for fs in spans]
        if any(series):
            svg = histogram_svg(series, ident=f"{view.anchor}c", integer=True)
            mine.append({"caption": "values per row", "svg": svg, "kind": "histogram"})
    for child in view.children:
        _charts(child, compare, out)


def _bars(view: FeatureView, spans: Sequence[Mapping[str, Any] | None]) -> dict[str, str] | None:
    from lockgate.data.report.charts import bars_svg

    tops = [dict(top_values(fs)) for fs in spans]
    labels = list(tops[0])[:_TOP]
    for other in tops[1:]:  # categories only the other span has still show, up to _TOP
        labels += [v for v in other if v not in labels][: max(_TOP - len(labels), 0)]
    if not labels:
        return None
    if len(spans) > 1:  # shares, as the spans differ in size
        totals = [
            float((fs or {}).get("count") or sum(t.values()) or 1)
            for fs, t in zip(spans, tops, strict=True)
        ]
        series = [
            [t.get(v, 0.0) / total for v in labels] for t, total in zip(tops, totals, strict=True)
        ]
        notes = [
            f"{fmt_num(int(tops[0].get(v, 0)))} ({fmt_pct(series[0][i])})"
            for i, v in enumerate(labels)
        ]
    else:
        series = [[tops[0][v] for v in labels]]
        notes = [fmt_num(int(tops[0][v])) for v in labels]
    svg = bars_svg([short_value(v, 22) for v in labels], series, ident=view.anchor, notes=notes)
    shown = len(labels)
    distinct = max(((fs or {}).get("distinct") or 0) for fs in spans)
    caption = f"top {shown} values" + (f" of {fmt_num(distinct)}" if distinct > shown else "")
    return {"caption": caption, "svg": svg, "kind": "bars"}


def _totals(stats: Mapping[str, Any]) -> dict[str, Any]:
    features = stats["features"]
    missing = sum(int(fs.get("missing") or 0) for fs in features.values())
    cells = sum(int(fs.get("missing") or 0) + int(fs.get("count") or 0) for fs in features.values())
    return {
        "rows": stats.get("num_rows"),
        "weighted_rows": stats.get("weighted_num_rows"),
        "features": len(features),
        "missing": missing,
        "missing_rate": missing / cells if cells else None,
    }


def _anomaly(a: Mapping[str, Any], anchors: Mapping[str, str]) -> dict[str, Any]:
    name = a.get("feature")
    anchor = anchors.get(name) if isinstance(name, str) else None
    return {
        "feature": name,
        "anchor": anchor,
        "kind": a.get("kind", ""),
        "severity": a.get("severity") if a.get("severity") in ("error", "warning") else "warning",
        "message": a.get("message") or "",
        "count": a.get("count"),
    }


def _slices(stats: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, part in (stats.get("slices") or {}).items():
        views = build_views(part) if isinstance(part.get("features"), Mapping) else []
        out.append({"name": name, "rows": part.get("num_rows"), "views": views})
    return out
