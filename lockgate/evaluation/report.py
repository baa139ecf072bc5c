"""The evaluation report: ``evaluation.json`` (format_version 2) as one self-contained HTML
page (``report.html`` in the ModelEvaluation artifact) and as tables in the terminal
(``lockgate show``).

Both lead with the verdict and the failing threshold checks, then skipped and passing ones;
then every slice's metrics with their intervals, the candidate beside the baseline and their
difference. The page adds the curves (``report_plots.py``). Every string from the user or
the data (slice values, class names, metric names, messages) is HTML-escaped on the page
and printed as plain ``rich.text.Text`` in the terminal, never as markup. An
``evaluation.json`` of format 1 (before intervals and blessing were recorded in it) is
read too, with what it has.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from lockgate.errors import ConfigError, DataError, did_you_mean
from lockgate.evaluation.results import slice_label

__all__ = [
    "main_metrics",
    "normalise_evaluation",
    "ordered_checks",
    "render_html",
    "render_terminal",
]

FORMAT_VERSION = 2
MAIN_METRICS = {
    "classification": ("accuracy", "f1_macro", "roc_auc", "log_loss"),
    "regression": ("mae", "rmse", "r2"),
}
_STATUS_ORDER = {"failed": 0, "skipped": 1, "passed": 2}
SHOWN_PASSING_CHECKS = 8  # more passing checks than this are folded away


# -- the data, as both renderings read it ---------------------------------------------------


def normalise_evaluation(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """``evaluation`` in format 2; a format 1 dict (task, overall, slices, baseline) becomes
    one with point estimates only, no curves, and the verdict only when the caller added
    the run's ``blessing.json`` as ``"blessing"``."""
    version = evaluation.get("format_version", 1)
    if version == FORMAT_VERSION:
        return dict(evaluation)
    if version != 1 or "overall" not in evaluation:
        raise DataError(
            f"evaluation.json has format_version {version!r}; this lockgate reads 1 and"
            f" {FORMAT_VERSION}. Upgrade lockgate or run the evaluate step again"
        )
    baseline = evaluation.get("baseline")
    return {
        "format_version": 1,
        "task": evaluation.get("task"),
        "classes": None,
        "settings": {},
        "candidate": _v1_scores(evaluation),
        "baseline": _v1_scores(baseline) if baseline else None,
        "baseline_uri": evaluation.get("baseline_uri"),
        "differences": None,
        "curves": None,
        "blessing": evaluation.get("blessing"),  # blessing.json beside it, when the caller has it
    }


def _v1_scores(scores: Mapping[str, Any]) -> list[dict[str, Any]]:
    def entry(key: list[list[Any]], metrics: Mapping[str, Any]) -> dict[str, Any]:
        count = metrics.get("example_count")
        return {
            "slice": key,
            "label": slice_label(tuple((f, v) for f, v in key)),
            "example_count": int(count) if isinstance(count, int | float) else None,
            "gated": True,
            "note": None,
            "metrics": {
                name: {"value": value, "lower": None, "upper": None}
                for name, value in metrics.items()
                if name != "example_count"
            },
        }

    out = [entry([], scores.get("overall") or {})]
    for s in scores.get("slices") or []:
        out.append(entry([[s.get("feature"), s.get("value")]], s.get("metrics") or {}))
    return out


def check_status(check: Mapping[str, Any]) -> str:
    """``"failed"``, ``"skipped"`` (not evaluated, e.g. no baseline yet) or ``"passed"``."""
    if check.get("skipped") or check.get("status") == "skipped" or check.get("passed") is None:
        return "skipped"
    return "passed" if check.get("passed") else "failed"


def ordered_checks(evaluation: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The blessing's checks, failing first, then skipped, then passing (stable within)."""
    checks = list((evaluation.get("blessing") or {}).get("checks") or [])
    return sorted(checks, key=lambda c: _STATUS_ORDER[check_status(c)])


def check_slice(check: Mapping[str, Any]) -> str:
    """The label of the slice a check is on (the whole split when it names none)."""
    if check.get("label"):
        return str(check["label"])
    key = check.get("slice")
    if isinstance(key, Sequence) and not isinstance(key, str):
        return slice_label(tuple((str(p[0]), p[1]) for p in key))
    return slice_label(()) if key is None else str(key)


def check_text(check: Mapping[str, Any]) -> str:
    """The check's own message, or one made from its parts."""
    text = check.get("message") or check.get("reason")
    if text:
        return str(text)
    parts = [str(check.get(k)) for k in ("metric", "kind", "value") if check.get(k) is not None]
    return " ".join(parts) or json.dumps(check, default=str)


def unlisted_reasons(evaluation: Mapping[str, Any]) -> list[str]:
    """The blessing's reasons that no check states (``"no thresholds: not blessed"``)."""
    blessing = evaluation.get("blessing") or {}
    listed = {check_text(c) for c in blessing.get("checks") or []}
    return [str(r) for r in blessing.get("reasons") or [] if str(r) not in listed]


def verdict(evaluation: Mapping[str, Any]) -> str | None:
    """``"BLESSED"``, ``"NOT BLESSED"``, or None when the evaluation records no verdict."""
    blessing = evaluation.get("blessing")
    if not blessing or blessing.get("blessed") is None:
        return None
    return "BLESSED" if blessing["blessed"] else "NOT BLESSED"


def main_metrics(evaluation: Mapping[str, Any], metrics: Sequence[str] | None = None) -> list[str]:
    """The metrics the tables show: ``metrics`` when given (each must be in the evaluation),
    else those a threshold names, then the task's main ones, as far as they were computed."""
    available = _available_metrics(evaluation)
    if metrics:
        for name in metrics:
            if name not in available:
                raise ConfigError(
                    f"metric '{name}' is not in this evaluation; metrics are"
                    f" {available}{did_you_mean(name, available)}"
                )
        return list(dict.fromkeys(metrics))
    named = [str(c["metric"]) for c in ordered_checks(evaluation) if c.get("metric")]
    wanted = [*named, *MAIN_METRICS.get(str(evaluation.get("task")), ())]
    chosen = [m for m in dict.fromkeys(wanted) if m in available]
    return chosen or available[:4]


def _available_metrics(evaluation: Mapping[str, Any]) -> list[str]:
    names: dict[str, None] = {}
    for entry in evaluation.get("candidate") or []:
        names.update(dict.fromkeys(entry.get("metrics") or {}))
    return list(names)


def _slice_id(entry: Mapping[str, Any]) -> str:
    return json.dumps(entry.get("slice"), default=str)


def rows(evaluation: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per slice: the candidate's entry, the baseline's and the difference's (or
    None), matched by slice key."""
    baseline = {_slice_id(e): e for e in evaluation.get("baseline") or []}
    differences = {_slice_id(e): e for e in evaluation.get("differences") or []}
    return [
        {
            "candidate": entry,
            "baseline": baseline.get(_slice_id(entry)),
            "difference": differences.get(_slice_id(entry)),
        }
        for entry in evaluation.get("candidate") or []
    ]


def failing_cells(evaluation: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(slice label, metric) of every failed check."""
    return {
        (check_slice(c), str(c.get("metric")))
        for c in ordered_checks(evaluation)
        if check_status(c) == "failed"
    }


def fmt_number(value: Any, *, signed: bool = False) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return "–"
    size = abs(value)
    sign = "+" if signed else ""
    if size == 0 or 1e-3 <= size < 1e4:
        return f"{value:{sign}.3f}"
    return f"{value:{sign}.4g}"


def fmt_estimate(
    estimate: Mapping[str, Any] | None, *, signed: bool = False, sep: str = " "
) -> str:
    """``"0.912 [0.887, 0.934]"``; the point alone without an interval; ``"–"`` if undefined."""
    if not estimate or estimate.get("value") is None:
        return "–"
    text = fmt_number(estimate["value"], signed=signed)
    lower, upper = estimate.get("lower"), estimate.get("upper")
    if lower is not None and upper is not None:
        text += f"{sep}[{fmt_number(lower, signed=signed)}, {fmt_number(upper, signed=signed)}]"
    return text


def significant(estimate: Mapping[str, Any] | None) -> bool:
    """A difference whose interval lies wholly on one side of zero."""
    if not estimate:
        return False
    lower, upper = estimate.get("lower"), estimate.get("upper")
    return lower is not None and upper is not None and (lower > 0 or upper < 0)


def summary_line(evaluation: Mapping[str, Any]) -> str:
    """Task, eval rows, baseline and how the intervals were made, in one line."""
    settings = evaluation.get("settings") or {}
    candidate = evaluation.get("candidate") or []
    parts = [str(evaluation.get("task") or "unknown task")]
    if candidate and candidate[0].get("example_count") is not None:
        parts.append(f"{candidate[0]['example_count']} eval examples")
    uri = evaluation.get("baseline_uri")
    parts.append(f"baseline {uri}" if evaluation.get("baseline") else "no baseline")
    if settings.get("n_resamples"):
        level = settings.get("confidence_level") or 0.95
        parts.append(f"{level:.0%} intervals from {settings['n_resamples']} bootstrap resamples")
        if (settings.get("min_slice_size") or 1) > 1:
            parts.append(f"slices under {settings['min_slice_size']} examples not gated")
    elif evaluation.get("format_version") == 1:
        parts.append("no intervals (evaluation format 1)")
    if (
        settings.get("decision_threshold") is not None
        and evaluation.get("task") == "classification"
    ):
        parts.append(f"decision threshold {settings['decision_threshold']}")
    return " · ".join(parts)


# -- HTML -----------------------------------------------------------------------------------

_CSS = """
:root { --error: #c5221f; --warn: #b06000; --ok: #188038; --cand: #3568c9; --base: #6b7280;
        --line: #dadce0; --muted: #5f6368; }
body { margin: 0; font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: #202124; background: #f6f7f9; }
.page { max-width: 1240px; margin: 0 auto; padding: 16px 20px 48px; }
h1 { font-size: 20px; margin: 0 0 6px; } h2 { font-size: 15px; margin: 0 0 8px; }
.meta { color: var(--muted); overflow-wrap: anywhere; }
.panel { background: #fff; border: 1px solid var(--line); border-radius: 6px;
         padding: 12px 14px; margin: 14px 0; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 12px; font-size: 14px;
           font-weight: 700; vertical-align: 2px; margin-left: 8px; }
.verdict.blessed { background: #e6f4ea; color: var(--ok); }
.verdict.not-blessed { background: #fce8e6; color: var(--error); }
.verdict.unknown { background: #f1f3f4; color: var(--muted); }
.checks ul { margin: 0; padding: 0; list-style: none; }
.checks li { padding: 3px 0; border-top: 1px solid #f1f3f4; overflow-wrap: anywhere; }
.status { display: inline-block; min-width: 64px; font-weight: 700; font-size: 11px; }
li.failed .status { color: var(--error); } li.skipped .status { color: var(--warn); }
li.passed .status { color: var(--ok); }
.where { color: var(--muted); font-family: ui-monospace, Menlo, Consolas, monospace;
         font-size: 12px; margin-right: 6px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; }
.metrics th, .metrics td { padding: 4px 8px; border-bottom: 1px solid #f1f3f4;
                           text-align: right; vertical-align: top; white-space: nowrap; }
.metrics th:first-child, .metrics td:first-child { text-align: left; white-space: normal;
                                                  min-width: 140px; overflow-wrap: anywhere; }
.metrics td { font-variant-numeric: tabular-nums; }
.metrics .base { color: var(--base); font-size: 12px; }
.metrics .diff { color: var(--muted); font-size: 12px; } .metrics .diff.sig { font-weight: 700; }
.metrics td.fail { background: #fce8e6; } .metrics td.fail .cand { color: var(--error); font-weight: 700; }
tr.ungated td { color: var(--muted); } .note { font-size: 11px; color: var(--warn); }
.charts { display: flex; flex-wrap: wrap; gap: 12px 24px; }
figure { margin: 0; } figcaption { font-weight: 600; margin-bottom: 4px; }
svg.chart { max-width: 100%; height: auto; }
details { margin: 4px 0; } summary { cursor: pointer; overflow-wrap: anywhere; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 4px 0 10px; }
"""


def render_html(evaluation: Mapping[str, Any]) -> str:
    """The whole page for ``evaluation`` (``evaluation.json``'s dict)."""
    ev = normalise_evaluation(evaluation)
    word = verdict(ev)
    css_class = {"BLESSED": "blessed", "NOT BLESSED": "not-blessed"}.get(word or "", "unknown")
    title = f"Model evaluation — {word or 'no verdict recorded'}"
    has_baseline = bool(ev.get("baseline"))
    legend = '<span class="swatch" style="background:var(--cand)"></span>candidate' + (
        '<span class="swatch" style="background:var(--base)"></span>baseline'
        if has_baseline
        else ""
    )
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>",
        '<body><div class="page">',
        f'<header><h1>Model evaluation<span class="verdict {css_class}">'
        f"{escape(word or 'NO VERDICT RECORDED')}</span></h1>",
        f'<p class="meta">{escape(summary_line(ev))}{legend}</p></header>',
        _html_checks(ev),
        _html_metrics_table(ev),
        _html_charts(ev),
        _html_all_metrics(ev),
        "</div></body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def _html_checks(ev: Mapping[str, Any]) -> str:
    blessing = ev.get("blessing")
    if blessing is None:
        return (
            '<section class="panel checks"><h2>Threshold checks</h2><p class="meta">'
            "This evaluation (format 1) does not record its checks; the Blessing artifact of"
            " the same run holds the verdict.</p></section>"
        )
    items = [
        f'<li class="{"passed" if blessing.get("blessed") else "failed"}">'
        f'<span class="status">NOTE</span>{escape(reason)}</li>'
        for reason in unlisted_reasons(ev)
    ]
    passing: list[str] = []
    for check in ordered_checks(ev):
        status = check_status(check)
        where = check_slice(check)
        metric = check.get("metric")
        (passing if status == "passed" else items).append(
            f'<li class="{status}"><span class="status">{status.upper()}</span>'
            f'<span class="where">{escape(where)}{" · " + escape(str(metric)) if metric else ""}'
            f"</span>{escape(check_text(check))}</li>"
        )
    if len(passing) > SHOWN_PASSING_CHECKS:  # the many that pass, one click away
        items.append(
            f"<li><details><summary>{len(passing)} checks pass</summary><ul>"
            f"{''.join(passing)}</ul></details></li>"
        )
    else:
        items += passing
    body = "<ul>" + "".join(items) + "</ul>" if items else '<p class="meta">No checks.</p>'
    return f'<section class="panel checks"><h2>Threshold checks</h2>{body}</section>'


def _html_cell(row: Mapping[str, Any], metric: str, failing: bool, has_baseline: bool) -> str:
    cand = (row["candidate"].get("metrics") or {}).get(metric)
    lines = [f'<div class="cand">{escape(fmt_estimate(cand))}</div>']
    if has_baseline:
        base = ((row["baseline"] or {}).get("metrics") or {}).get(metric)
        lines.append(f'<div class="base">baseline {escape(fmt_estimate(base))}</div>')
        diff = ((row["difference"] or {}).get("metrics") or {}).get(metric)
        if diff is not None:
            sig = " sig" if significant(diff) else ""
            lines.append(
                f'<div class="diff{sig}">Δ {escape(fmt_estimate(diff, signed=True))}</div>'
            )
    return f'<td class="{"fail" if failing else ""}">{"".join(lines)}</td>'


def _html_slice_cell(entry: Mapping[str, Any]) -> str:
    label = escape(str(entry.get("label") or slice_label(())))
    note = ""
    if not entry.get("gated", True):
        note = f'<div class="note">not gated: {escape(str(entry.get("note") or "too few examples"))}</div>'
    elif entry.get("note"):
        note = f'<div class="note">{escape(str(entry["note"]))}</div>'
    return f"<td>{label}{note}</td>"


def _html_metrics_table(ev: Mapping[str, Any]) -> str:
    metrics = main_metrics(ev)
    failing = failing_cells(ev)
    has_baseline = bool(ev.get("baseline"))
    head = "".join(f"<th>{escape(m)}</th>" for m in metrics)
    body = []
    for row in rows(ev):
        entry = row["candidate"]
        label = str(entry.get("label") or slice_label(()))
        cells = "".join(_html_cell(row, m, (label, m) in failing, has_baseline) for m in metrics)
        count = entry.get("example_count")
        css = "" if entry.get("gated", True) else ' class="ungated"'
        body.append(
            f"<tr{css}>{_html_slice_cell(entry)}<td>{'–' if count is None else count}</td>{cells}</tr>"
        )
    return (
        '<section class="panel"><h2>Metrics per slice</h2><div class="scroll">'
        f'<table class="metrics"><thead><tr><th>slice</th><th>examples</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div></section>"
    )


def _html_all_metrics(ev: Mapping[str, Any]) -> str:
    has_baseline = bool(ev.get("baseline"))
    failing = failing_cells(ev)
    blocks = []
    for row in rows(ev):
        entry = row["candidate"]
        label = str(entry.get("label") or slice_label(()))
        head = "<th>metric</th><th>candidate</th>" + (
            "<th>baseline</th><th>difference</th>" if has_baseline else ""
        )
        lines = []
        for metric in entry.get("metrics") or {}:
            cand = entry["metrics"][metric]
            cells = [escape(fmt_estimate(cand))]
            if has_baseline:
                base = ((row["baseline"] or {}).get("metrics") or {}).get(metric)
                diff = ((row["difference"] or {}).get("metrics") or {}).get(metric)
                cells += [escape(fmt_estimate(base)), escape(fmt_estimate(diff, signed=True))]
            css = ' class="fail"' if (label, metric) in failing else ""
            tds = "".join(f"<td{css}>{c}</td>" for c in cells)
            lines.append(f"<tr><td>{escape(metric)}</td>{tds}</tr>")
        blocks.append(
            f"<details><summary>{escape(label)} ({entry.get('example_count', '–')} examples)"
            f'</summary><div class="scroll"><table class="metrics"><thead><tr>{head}</tr>'
            f"</thead><tbody>{''.join(lines)}</tbody></table></div></details>"
        )
    return f'<section class="panel"><h2>All metrics</h2>{"".join(blocks)}</section>'


def _html_charts(ev: Mapping[str, Any]) -> str:
    from lockgate.evaluation import report_plots as plots

    curves = ev.get("curves") or {}
    series = [
        (name, curves[name]) for name in ("candidate", "baseline") if curves.get(name) is not None
    ]
    if not series:
        return ""
    figures: list[tuple[str, str]] = []
    if ev.get("task") == "classification":
        if any(c.get("roc") for _, c in series):
            figures.append(("ROC curve", plots.roc_svg(series, ident="roc")))
            figures.append(("Precision-recall curve", plots.pr_svg(series, ident="pr")))
        if any(c.get("calibration") for _, c in series):
            figures.append(("Calibration", plots.calibration_svg(series, ident="calibration")))
        for name, c in series:
            if c.get("confusion_matrix"):
                figures.append(
                    (
                        f"Confusion matrix ({name})",
                        plots.confusion_svg(c, title=name, ident=f"confusion-{name}"),
                    )
                )
    else:
        figures.append(("Residuals", plots.residual_svg(series, ident="residuals")))
        figures.append(
            ("Residual distribution", plots.residual_histogram_svg(series, ident="histogram"))
        )
    chart_html = "".join(
        f"<figure><figcaption>{escape(caption)}</figcaption>{svg}</figure>"
        for caption, svg in figures
    )
    extra = _html_quantiles(series) if ev.get("task") == "regression" else ""
    return (
        f'<section class="panel"><h2>Curves</h2><div class="charts">{chart_html}</div>'
        f"{extra}</section>"
    )


def _html_quantiles(series: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    qs = [q["q"] for q in series[0][1].get("quantiles") or []]
    if not qs:
        return ""
    head = "".join(f"<th>p{round(q * 100):g}</th>" for q in qs)
    body = ""
    for name, c in series:
        values = {q["q"]: q["value"] for q in c.get("quantiles") or []}
        body += (
            f"<tr><td>{escape(name)}</td>"
            + "".join(f"<td>{fmt_number(values.get(q))}</td>" for q in qs)
            + "</tr>"
        )
    return (
        '<h2>Residual quantiles</h2><div class="scroll"><table class="metrics"><thead><tr>'
        f"<th>model</th>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


# -- terminal -------------------------------------------------------------------------------


def render_terminal(
    evaluation: Mapping[str, Any], console: Any, *, metrics: Sequence[str] | None = None
) -> None:
    """Print the verdict, the checks (failing first) and a table of the slices' main
    metrics (``metrics`` to choose them) with intervals, the baseline and the difference."""
    from rich.text import Text

    ev = normalise_evaluation(evaluation)
    shown = main_metrics(ev, metrics)  # an unknown name fails before anything is printed
    word = verdict(ev)
    head = Text("Model evaluation: ", style="bold")
    head.append(
        word or "no verdict recorded (format 1; see the Blessing artifact)",
        style={"BLESSED": "bold green", "NOT BLESSED": "bold red"}.get(word or "", "dim"),
    )
    console.print(head)
    console.print(Text(summary_line(ev), style="dim"))
    blessing = ev.get("blessing") or {}
    for reason in unlisted_reasons(ev):
        console.print(Text(f"  NOTE  {reason}", style="" if blessing.get("blessed") else "red"))
    styles = {
        "failed": ("FAIL", "bold red"),
        "skipped": ("SKIP", "yellow"),
        "passed": ("pass", "green"),
    }
    checks = ordered_checks(ev)
    passing = sum(check_status(c) == "passed" for c in checks)
    for check in checks:
        status = check_status(check)
        if status == "passed" and passing > SHOWN_PASSING_CHECKS:
            console.print(Text(f"  pass  {passing} checks pass (listed in --html)", style="green"))
            break
        word_, style = styles[status]
        line = Text(f"  {word_:<4}  ", style=style)
        line.append(f"{check_slice(check)}", style="cyan")
        if check.get("metric"):
            line.append(f" · {check['metric']}", style="cyan")
        line.append(f"  {check_text(check)}")
        console.print(line)
    labels = [str(r["candidate"].get("label") or slice_label(())) for r in rows(ev)]
    first = min(max((len(x) for x in labels), default=7), 30) + 9  # slice and n columns
    width = console.width
    # the interval on the value's line when every metric fits so, else below it; and as
    # many tables as it takes, each repeating the slice column, rather than a squeezed one
    sep = " "
    if first + sum(_column_width(ev, m, " ") for m in shown) > width:
        sep = "\n"
    groups: list[list[str]] = [[]]
    used = first
    for m in shown:
        need = _column_width(ev, m, sep)
        if groups[-1] and used + need > width:
            groups.append([])
            used = first
        groups[-1].append(m)
        used += need
    for group in groups:
        console.print(_terminal_table(ev, group, sep))
    others = len(_available_metrics(ev)) - len(shown)
    if others > 0:
        console.print(
            Text(
                f"{others} more metrics: --metrics NAME,... to choose, --json or --html for all",
                style="dim",
            )
        )


def _terminal_table(ev: Mapping[str, Any], shown: Sequence[str], sep: str) -> Any:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    failing = failing_cells(ev)
    has_baseline = bool(ev.get("baseline"))
    table = Table(box=box.SIMPLE_HEAD, show_lines=has_baseline, pad_edge=False)
    table.add_column("slice", overflow="fold", max_width=30)
    table.add_column("n", justify="right", no_wrap=True)
    for m in shown:
        table.add_column(Text(m), justify="right", no_wrap=True)
    for row in rows(ev):
        entry = row["candidate"]
        label = str(entry.get("label") or slice_label(()))
        name = Text(label)
        if not entry.get("gated", True):
            name.append(f"\nnot gated: {entry.get('note') or 'too few examples'}", style="yellow")
        cells: list[Text | str] = [name, str(entry.get("example_count", "–"))]
        for m in shown:
            lines = _cell_lines(row, m, sep, has_baseline)
            cell = Text(lines[0], style="bold red" if (label, m) in failing else "")
            if len(lines) > 1:
                cell.append(f"\n{lines[1]}", style="dim")
            if len(lines) > 2:
                diff = ((row["difference"] or {}).get("metrics") or {}).get(m)
                cell.append(f"\n{lines[2]}", style="bold" if significant(diff) else "")
            cells.append(cell)
        table.add_row(*cells)
    return table


def _cell_lines(row: Mapping[str, Any], metric: str, sep: str, has_baseline: bool) -> list[str]:
    """The candidate's estimate, then (with a baseline) the baseline's and the difference."""
    cand = (row["candidate"].get("metrics") or {}).get(metric)
    lines = [fmt_estimate(cand, sep=sep)]
    if has_baseline:
        base = ((row["baseline"] or {}).get("metrics") or {}).get(metric)
        lines.append(f"base {fmt_estimate(base, sep=sep)}")
        diff = ((row["difference"] or {}).get("metrics") or {}).get(metric)
        if diff is not None:
            lines.append(f"Δ {fmt_estimate(diff, signed=True, sep=sep)}")
    return lines


def _column_width(ev: Mapping[str, Any], metric: str, sep: str) -> int:
    """The widest line of a metric's column (with the padding between columns)."""
    has_baseline = bool(ev.get("baseline"))
    widest = len(metric)
    for row in rows(ev):
        for line in _cell_lines(row, metric, sep, has_baseline):
            widest = max(widest, *(len(part) for part in line.split("\n")))
    return widest + 3
