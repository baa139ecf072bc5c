"""The data pipeline on its own, scriptable: ``stats``, ``schema infer|diff``, ``validate``,
``drift`` and ``skew``. Exit status 1 means the check failed (an error-severity anomaly,
a distance over its threshold, schemas that differ); anything else wrong is an error line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

_PATH = click.Path(path_type=str)


def _statistics(
    path: str,
    *,
    slice_by: tuple[str, ...] = (),
    weight: str | None = None,
    rows_to: str | None = None,
) -> dict[str, Any]:
    """Statistics of ``path``; with ``rows_to`` ("compare", ...) a file without rows is an
    error saying what it has no rows for."""
    from lockgate.data.statistics import compute_statistics

    stats = compute_statistics([path], slice_by=list(slice_by) or None, weight=weight)
    if rows_to is not None and stats["num_rows"] == 0:
        from lockgate.errors import DataFileError

        raise DataFileError(
            f"{path} has no rows to {rows_to} ({len(stats['features'])} columns, 0 rows)",
            path=path,
            hint="a header-only file or an empty span is no data; use a span with rows",
        )
    return stats


def _load_schema(path: str) -> Any:
    from lockgate.data.schema import Schema

    return Schema.load(path)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=1, default=str))


def _write_html(target: Path, html: str) -> None:
    target.write_text(html, encoding="utf-8")
    click.echo(f"wrote {target}", err=True)


@click.command("stats")
@click.argument("path", type=_PATH)
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a self-contained HTML report.",
)
@click.option(
    "--slice-by",
    multiple=True,
    help="Also compute statistics per value of this categorical feature.",
)
@click.option("--weight", default=None, help="A numeric column that weighs each row.")
def stats_command(
    path: str, as_json: bool, html_file: Path | None, slice_by: tuple[str, ...], weight: str | None
) -> None:
    """Statistics of a CSV, Parquet or JSON-lines PATH (a file, a folder or a glob)."""
    stats = _statistics(path, slice_by=slice_by, weight=weight)
    if stats["num_rows"] == 0:
        click.echo(f"note: {path} has no rows, only its {len(stats['features'])} columns", err=True)
    if html_file is not None:
        from lockgate.data.report import render_html

        _write_html(html_file, render_html(stats, title=f"Statistics of {path}"))
    if as_json:
        _echo_json(stats)
    elif html_file is None:
        from lockgate.data.report import render_terminal

        click.echo(render_terminal(stats))


@click.group("schema")
def schema_group() -> None:
    """Infer a schema from data, or compare two schemas."""


@schema_group.command("infer")
@click.argument("path", type=_PATH)
def schema_infer_command(path: str) -> None:
    """Print the schema inferred from PATH as YAML (redirect it into schema.yaml)."""
    from lockgate.data.schema import Schema

    stats = _statistics(path, rows_to="infer a schema from")
    click.echo(Schema.from_statistics(stats).to_yaml(), nl=False)


@schema_group.command("diff")
@click.argument("a", type=click.Path(exists=True, dir_okay=False, path_type=str))
@click.argument("b", type=click.Path(exists=True, dir_okay=False, path_type=str))
def schema_diff_command(a: str, b: str) -> None:
    """What changed from schema A to schema B; exit status 1 when they differ."""
    from lockgate.data.schema import diff_schemas

    changes = diff_schemas(_load_schema(a), _load_schema(b))
    if not changes:
        click.echo("no differences")
        return
    for change in changes:
        click.echo(str(change))
    sys.exit(1)


@click.command("validate")
@click.argument("path", type=_PATH)
@click.option(
    "--schema",
    "schema_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=str),
)
@click.option("--json", "as_json", is_flag=True, help="Print the anomalies as JSON.")
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report with anomalies highlighted.",
)
def validate_command(path: str, schema_file: str, as_json: bool, html_file: Path | None) -> None:
    """Check PATH against a schema; exit status 1 on an error-severity anomaly."""
    from lockgate.data.validate import find_anomalies

    stats = _statistics(path)
    anomalies = [a.to_dict() for a in find_anomalies(stats, _load_schema(schema_file))]
    if html_file is not None:
        from lockgate.data.report import render_html

        _write_html(
            html_file, render_html(stats, title=f"Validation of {path}", anomalies=anomalies)
        )
    errors = sum(a["severity"] == "error" for a in anomalies)
    if as_json:
        _echo_json({"path": path, "schema": schema_file, "errors": errors, "anomalies": anomalies})
    else:
        _print_anomalies(anomalies)
    if errors:
        sys.exit(1)


def _print_anomalies(anomalies: list[dict[str, Any]]) -> None:
    if not anomalies:
        click.echo("no anomalies")
        return
    click.echo(f"{'severity':<9}{'feature':<24}{'kind':<18}{'rows':>8}  expected -> seen")
    for a in anomalies:
        count = "-" if a.get("count") is None else str(a["count"])
        colour = "red" if a["severity"] == "error" else "yellow"
        click.echo(
            click.style(f"{a['severity']:<9}", fg=colour)
            + f"{a['feature']:<24}{a['kind']:<18}{count:>8}  {a.get('expected')} -> {a.get('seen')}"
        )


def _compare(
    kind: str, base: str, new: str, schema_file: str | None, as_json: bool, html_file: Path | None
) -> None:
    from lockgate.data.drift import compare_statistics

    base_stats, new_stats = (
        _statistics(base, rows_to="compare"),
        _statistics(new, rows_to="compare"),
    )
    schema = _load_schema(schema_file) if schema_file else None
    report = compare_statistics(base_stats, new_stats, schema=schema, kind=kind).to_dict()
    if html_file is not None:
        from lockgate.data.report import render_html

        _write_html(
            html_file,
            render_html(
                new_stats,
                title=f"{kind.capitalize()}: {base} -> {new}",
                label=new,
                compare=base_stats,
                compare_label=base,
                drift=report,
            ),
        )
    if as_json:
        _echo_json({"base": base, "new": new, **report})
    else:
        click.echo(f"{'feature':<24}{'measure':<16}{'distance':>10}{'threshold':>11}  result")
        for f in report["features"]:
            distance = "-" if f.get("distance") is None else f"{f['distance']:.4f}"
            result = (
                click.style("ok", fg="green")
                if f["passed"]
                else click.style("over threshold", fg="red")
            )
            click.echo(
                f"{f['feature']:<24}{f['measure']:<16}{distance:>10}{f['threshold']:>11.4f}  {result}"
            )
    if not report["passed"]:
        sys.exit(1)


_compare_options = [
    click.option(
        "--schema",
        "schema_file",
        type=click.Path(exists=True, dir_okay=False, path_type=str),
        help="Per-feature thresholds.",
    ),
    click.option("--json", "as_json", is_flag=True, help="Print the report as JSON."),
    click.option(
        "--html",
        "html_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write both side by side as HTML.",
    ),
]


def _with_compare_options(fn: Any) -> Any:
    for option in reversed(_compare_options):
        fn = option(fn)
    return fn


@click.command("drift")
@click.argument("base_path", type=_PATH)
@click.argument("new_path", type=_PATH)
@_with_compare_options
def drift_command(
    base_path: str, new_path: str, schema_file: str | None, as_json: bool, html_file: Path | None
) -> None:
    """Distance per feature between two spans; exit status 1 over a threshold."""
    _compare("drift", base_path, new_path, schema_file, as_json, html_file)


@click.command("skew")
@click.argument("training_path", type=_PATH)
@click.argument("serving_path", type=_PATH)
@_with_compare_options
def skew_command(
    training_path: str,
    serving_path: str,
    schema_file: str | None,
    as_json: bool,
    html_file: Path | None,
) -> None:
    """Distance per feature between training data and serving request logs."""
    _compare("skew", training_path, serving_path, schema_file, as_json, html_file)


COMMANDS = [stats_command, schema_group, validate_command, drift_command, skew_command]
