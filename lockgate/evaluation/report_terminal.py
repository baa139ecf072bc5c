"""The evaluation report in the terminal (``lockgate show ID`` of a ModelEvaluation): the
verdict, the checks failing first, and the slices' main metrics with their intervals, the
baseline and the difference. Every cell is a ``rich.text.Text``, never markup, so a slice
value like ``[bold]`` prints as it is. A table wider than the console is split into several,
each repeating the slice column, rather than squeezed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lockgate.evaluation.report_view import (
    available_metrics,
    check_slice,
    check_status,
    check_text,
    failing_cells,
    fmt_estimate,
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

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = ["SHOWN_PASSING_CHECKS", "render_terminal"]

SHOWN_PASSING_CHECKS = 8  # more passing checks than this are folded into one line


def render_terminal(
    evaluation: Mapping[str, Any], console: Console, *, metrics: Sequence[str] | None = None
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
    others = len(available_metrics(ev)) - len(shown)
    if others > 0:
        console.print(
            Text(
                f"{others} more metrics: --metrics NAME,... to choose, --json or --html for all",
                style="dim",
            )
        )


def _terminal_table(ev: Mapping[str, Any], shown: Sequence[str], sep: str) -> Table:
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
