"""The statistics of a span as a plain-text table, one row per feature, anomalies below.

Drawn with rich into a string. Cells are ``rich.text.Text`` objects, never markup, so a
feature called ``[bold]`` prints as it is. Colour only when asked (``color=True``, e.g.
when stdout is a terminal).
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

from lockgate.data.report.view import (
    NUMERIC,
    FeatureView,
    build_views,
    check_statistics,
    fmt_num,
    fmt_pct,
    missing_rate,
    short_time,
    short_value,
    top_values,
)

__all__ = ["render_terminal"]


def render_terminal(
    stats: Mapping[str, Any],
    *,
    anomalies: Sequence[Mapping[str, Any]] | None = None,
    compare: Mapping[str, Any] | None = None,
    drift: Mapping[str, Any] | None = None,
    width: int | None = None,
    label: str = "current",
    compare_label: str = "previous",
    color: bool = False,
) -> str:
    """A table of ``stats`` (one row per feature: name, type, count, missing, mean, std,
    min, max or distinct and top value), anomaly lines below, at most ``width`` columns
    (default: the terminal's width)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    check_statistics(stats)
    if compare is not None:
        check_statistics(compare, name="compare")
    width = width or shutil.get_terminal_size((100, 24)).columns
    views = build_views(stats, anomalies=anomalies, compare=compare, drift=drift)
    console = Console(
        file=io.StringIO(),
        width=width,
        color_system="standard" if color else None,
        force_terminal=color,
        no_color=not color,
        highlight=False,
        emoji=False,
        markup=False,
        legacy_windows=False,
    )
    # Wide: separate mean/std/min/max columns, the other span and drift in their own
    # columns. Compact: one summary cell per feature, with the other span and drift as
    # further lines of it, so that no column collapses to nothing.
    wide = width >= 100 + (34 if compare is not None else 0) + (16 if drift is not None else 0)
    longest = max((len(v.name) for v in views), default=8)
    stacked = not wide and (compare is not None or drift is not None)
    table = Table(
        box=box.SIMPLE_HEAD, pad_edge=False, header_style="bold", leading=1 if stacked else 0
    )
    table.add_column("feature", overflow="fold", min_width=min(max(longest, 7), 20))
    table.add_column("type", no_wrap=True)
    table.add_column("count", justify="right", no_wrap=True)
    table.add_column("missing", justify="right", no_wrap=True)
    other = short_value(compare_label, 24)
    if wide:
        for name in ("mean", "std", "min", "max"):
            table.add_column(name, justify="right", no_wrap=True, overflow="ellipsis")
        table.add_column("distinct · top value", no_wrap=True, overflow="ellipsis", min_width=12)
        if compare is not None:
            table.add_column(f"{other}: missing, mean / top", overflow="fold", min_width=12)
        if drift is not None:
            table.add_column("drift", justify="right", no_wrap=True)
    else:
        heading = "summary" + (f" ({other} below)" if compare is not None else "")
        table.add_column(heading, overflow="fold", min_width=14)
    if wide:
        table.add_column("", no_wrap=True, min_width=5)  # flags
    for view in views:
        style = {"error": "red", "warning": "yellow"}.get(view.severity or "", "")
        cells = [Text(view.name, style=style), Text(view.type), *_cells(view.current, wide)]
        if wide:
            if compare is not None:
                cells.append(Text(_brief(view.other)))
            if drift is not None:
                cells.append(Text(_drift(view), style="red" if view.drift_failed else ""))
        else:
            summary = cells[-1]
            if compare is not None:
                summary.append(f"\n{other}: {_brief(view.other)}", style="dim")
            if view.drift:
                summary.append(
                    f"\n{(drift or {}).get('kind', 'drift')} {_drift(view)}",
                    style="red" if view.drift_failed else "",
                )
        if wide:
            cells.append(Text(_flag(view), style=style))
        elif view.severity:
            cells[0].append(f"\n{_flag(view)}", style=style)
        table.add_row(*cells)
    console.print(Text(_heading(stats, label, compare, compare_label), overflow="fold"))
    console.print(table)
    lines = _anomaly_lines(anomalies or (), views, drift)
    if lines:
        console.print(Text(f"{len(lines)} finding(s):", style="bold"))
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True, min_width=7)
        grid.add_column(overflow="fold")
        for severity, tag, line in lines:
            grid.add_row(Text(tag, style="red" if severity == "error" else "yellow"), Text(line))
        console.print(grid)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in out.splitlines()) + "\n"


def _heading(
    stats: Mapping[str, Any], label: str, compare: Mapping[str, Any] | None, compare_label: str
) -> str:
    def one(s: Mapping[str, Any]) -> str:
        features = s["features"]
        missing = sum(int(fs.get("missing") or 0) for fs in features.values())
        return f"{fmt_num(s.get('num_rows'))} rows, {len(features)} features, {fmt_num(missing)} missing cells"

    text = one(stats)
    if compare is not None:
        text = f"{label}: {text}; {compare_label}: {one(compare)}"
    return text


def _cells(fs: Mapping[str, Any] | None, wide: bool) -> list[Any]:
    """count, missing, then mean, std, min, max, categories (wide) or one summary cell."""
    from rich.text import Text

    if not fs:
        return [Text("absent"), *(Text("") for _ in range(6 if wide else 2))]
    count = Text(fmt_num(fs.get("count")))
    missing = Text(fmt_pct(missing_rate(fs)))
    kind = fs.get("type")
    numbers = ["mean", "std", "min", "max"]
    if kind in NUMERIC:
        values = [fmt_num(fs.get(k)) if k in fs else "" for k in numbers]
    elif kind == "timestamp":
        values = ["", "", short_time(fs.get("min")), short_time(fs.get("max"))]
    else:
        values = ["", "", "", ""]
    categories = _categories(fs, wide)
    if wide:
        return [count, missing, *(Text(v) for v in values), Text(categories)]
    mean, std, low, high = values
    parts = [f"{mean} ± {std}" if mean else "", f"[{low}, {high}]" if low or high else ""]
    return [
        count,
        missing,
        Text(", ".join(p for p in [" ".join(p for p in parts if p), categories] if p)),
    ]


def _categories(fs: Mapping[str, Any], wide: bool) -> str:
    """Distinct count and top value: ``3 · Adelie (152)`` in its own column, or spelled out
    (``3 distinct, top Adelie (152)``) inside a summary."""
    parts = []
    if "distinct" in fs:
        approx = "≈" if fs.get("distinct_is_estimate") else ""
        parts.append(f"{approx}{fmt_num(fs['distinct'])}" + ("" if wide else " distinct"))
    tops = top_values(fs)
    if tops:
        value, count = tops[0]
        parts.append(("" if wide else "top ") + f"{short_value(value, 24)} ({fmt_num(int(count))})")
    if fs.get("type") == "list" and fs.get("value_count"):
        vc = fs["value_count"]
        parts.append(f"{fmt_num(vc.get('min'))}..{fmt_num(vc.get('max'))} values/row")
    return (" · " if wide else ", ").join(parts)


def _brief(fs: Mapping[str, Any] | None) -> str:
    if not fs:
        return "absent"
    return f"{fmt_pct(missing_rate(fs))}, {FeatureView('', '', fs).headline(fs)}"


def _drift(view: FeatureView) -> str:
    d = view.drift
    if not d:
        return ""
    sign = ">" if view.drift_failed else "<="
    return f"{fmt_num(d.get('distance'))} {sign} {fmt_num(d.get('threshold'))}"


def _flag(view: FeatureView) -> str:
    return {"error": "ERROR", "warning": "WARN"}.get(view.severity or "", "")


def _anomaly_lines(
    anomalies: Sequence[Mapping[str, Any]],
    views: list[FeatureView],
    drift: Mapping[str, Any] | None,
) -> list[tuple[str, str, str]]:
    """(severity, tag, text) per anomaly, then per failed drift check not among them."""
    lines = []
    for a in anomalies:
        severity = str(a.get("severity") or "warning")
        feature = a.get("feature")
        where = f"{feature}: " if feature else ""
        lines.append(
            (severity, severity.upper(), f"{where}{a.get('kind', '')}: {a.get('message', '')}")
        )
    flagged = {(str(a.get("feature")), a.get("kind")) for a in anomalies}
    kind = str((drift or {}).get("kind") or "drift")
    for view in views:
        if view.drift_failed and view.drift and (view.name, kind) not in flagged:
            text = f"{view.name}: {kind}, {view.drift.get('measure')} {_drift(view)}"
            lines.append(("error", kind.upper(), text))
    return lines
