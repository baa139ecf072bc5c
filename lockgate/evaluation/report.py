"""The evaluation report: ``evaluation.json`` (format_version 2) as one self-contained HTML
page (``report.html`` in the ModelEvaluation artifact) and as tables in the terminal
(``lockgate show``, drawn by ``report_terminal.py``).

Both lead with the verdict and the failing threshold checks, then skipped and passing ones;
then every slice's metrics with their intervals, the candidate beside the baseline and their
difference. The page adds the curves (``report_plots.py``) and every metric of every slice.
Every string from the user or the data (slice values, class names, metric names, messages)
is HTML-escaped; the only markup inserted as it is is the SVG that matplotlib wrote, whose
text matplotlib escapes. Nothing is fetched: no script, stylesheet or font from elsewhere.
An ``evaluation.json`` of format 1 (before intervals were recorded) is read too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from lockgate.evaluation.report_terminal import SHOWN_PASSING_CHECKS, render_terminal
from lockgate.evaluation.report_view import (
    check_slice,
    check_status,
    check_text,
    failing_cells,
    fmt_estimate,
    fmt_number,
    main_metrics,
    normalise_evaluation,
    ordered_checks,
    rows,
    significant,
    summary_line,
    unlisted_reasons,
    verdict,
)
from lockgate.evaluation.results import slice_label

__all__ = ["render_html", "render_terminal"]


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
