"""The data pipeline on its own, scriptable: ``stats``, ``schema infer|diff|update``, ``validate``,
``drift`` and ``skew``. Exit status 1 means the check failed (an error-severity anomaly,
a distance over its threshold, schemas that differ); anything else wrong is an error line."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import click

from lockgate.cli.inputs import InputOptions, input_options

_PATH = click.Path(path_type=str)


def _statistics(
    path: str,
    *,
    slice_by: tuple[str, ...] = (),
    weight: str | None = None,
    rows_to: str | None = None,
    read: InputOptions | None = None,
) -> dict[str, Any]:
    """Statistics of ``path`` (read as ``read`` says); with ``rows_to`` ("compare", ...) a
    file without rows is an error saying what it has no rows for."""
    from lockgate.data.statistics import compute_statistics

    read = read or InputOptions()
    stats = compute_statistics(
        [path], slice_by=list(slice_by) or None, weight=weight, format=read.format, csv=read.csv
    )
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
@input_options
def stats_command(
    path: str,
    as_json: bool,
    html_file: Path | None,
    slice_by: tuple[str, ...],
    weight: str | None,
    read: InputOptions,
) -> None:
    """Statistics of a CSV, Parquet or JSON-lines PATH (a file, a folder or a glob; text
    files may be .gz, .bz2 or .zst)."""
    stats = _statistics(path, slice_by=slice_by, weight=weight, read=read)
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
    """Infer a schema from data, compare two schemas, or update a curated one."""


@schema_group.command("infer")
@click.argument("path", type=_PATH)
@input_options
def schema_infer_command(path: str, read: InputOptions) -> None:
    """Print the schema inferred from PATH as YAML (redirect it into schema.yaml)."""
    from lockgate.data.schema import Schema

    stats = _statistics(path, rows_to="infer a schema from", read=read)
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


@schema_group.command("update")
@click.argument("path", required=False, type=_PATH)
@click.option(
    "--schema",
    "schema_file",
    type=click.Path(dir_okay=False, path_type=str),
    help="The curated schema (default: the pipeline's infer_schema(schema_file=...)).",
)
@click.option("--write", is_flag=True, help="Write the updated schema into the schema file.")
@click.option(
    "--project",
    "project_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    help="Project folder (to find the data and the schema in its pipeline).",
)
def schema_update_command(
    path: str | None, schema_file: str | None, write: bool, project_dir: Path
) -> None:
    """What the data at PATH would change in the curated schema, and with --write the
    schema file updated. Only what the data contradicts changes (values added to a domain,
    a range widened, a column added or removed); severities, thresholds and the key stay.
    Without PATH and --schema, the pipeline's ingest path and infer_schema file are used.
    Exit status as schema diff: 0 no change, 1 changes shown; 0 once --write wrote them."""
    from lockgate.data.schema import Schema, diff_schemas
    from lockgate.data.schema_inference import update_schema
    from lockgate.errors import ConfigError

    if path is None or schema_file is None:
        found_path, found_schema, csv, format = _project_data_and_schema(project_dir)
        path, schema_file = path or found_path, schema_file or found_schema
    else:
        csv, format = None, None
    if not Path(schema_file).exists():
        raise ConfigError(
            f"{schema_file} does not exist: there is no curated schema to update",
            hint="the first lockgate run writes it from the data; or: lockgate schema infer "
            f"DATA > {schema_file}",
        )
    curated = Schema.load(schema_file)
    stats = _statistics_keeping_bad_values(
        path, curated, csv=csv, schema_types=False, format=format
    )
    proposed = update_schema(curated, stats)
    changes = diff_schemas(curated, proposed)
    for name, found in (stats.get("invalid_values") or {}).items():
        click.echo(
            f"note: {found['count']} values of '{name}' do not parse as {found['expected']} "
            f"({_seen(found['examples'])}); no schema change fixes that, the data must be",
            err=True,
        )
    shown_data, shown_schema = _relative(path), _relative(schema_file)
    if not changes:
        click.echo(f"no changes: {shown_data} fits {shown_schema}")
        return
    click.echo(f"{shown_schema} <- {shown_data}: {len(changes)} changes")
    for change in changes:
        click.echo(f"  {change}")
    if write:
        proposed.dump(schema_file)
        click.echo(f"wrote {shown_schema}; review the change and commit it with the data")
        return
    click.echo("run again with --write to write them")
    sys.exit(1)


def _relative(path: str) -> str:
    """``path`` relative to the working folder when it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


def _project_data_and_schema(project_dir: Path) -> tuple[str, str, Any, str | None]:
    """The data path (its span resolved), the schema file, the CSV options and the format
    that the project's pipeline gives its ingest step and its infer_schema(schema_file=...)."""
    from lockgate.cli.project import load_pipeline, load_settings
    from lockgate.core.component import OutputRef
    from lockgate.data.readers import CsvOptions
    from lockgate.data.spans import resolve_span
    from lockgate.errors import ConfigError

    settings = load_settings(project_dir)
    steps = load_pipeline(settings.pipeline_path).steps
    schema_steps = [
        s
        for s in steps.values()
        if s.component.name == "infer_schema" and s.params.get("schema_file")
    ]
    hint = "name them: lockgate schema update DATA --schema schema.yaml"
    if len(schema_steps) != 1:
        raise ConfigError(
            f"the pipeline has {len(schema_steps)} infer_schema steps with a schema_file; "
            "expected one",
            hint=hint,
        )
    step = schema_steps[0]
    ingest_step = None
    for _ in range(len(steps)):  # upwards along the first input: statistics, examples
        ref = next((r for r in step.inputs.values() if isinstance(r, OutputRef)), None)
        if ref is None:
            break
        step = steps[ref.step]
        if step.component.name == "ingest":
            ingest_step = step
            break
    if ingest_step is None or not ingest_step.params.get("path"):
        raise ConfigError("cannot find the ingest step (with a path) of the schema", hint=hint)
    params = ingest_step.params
    data, _ = resolve_span(settings.project_dir / str(params["path"]), params.get("span"))
    csv = CsvOptions(
        delimiter=params.get("delimiter", ","),
        header=params.get("header", True),
        quote_char=params.get("quote_char", '"'),
        encoding=params.get("encoding", "utf-8"),
        column_names=params.get("column_names"),
    )
    schema_file = settings.project_dir / str(schema_steps[0].params["schema_file"])
    return str(data), str(schema_file), csv, params.get("format")


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
@input_options
def validate_command(
    path: str, schema_file: str, as_json: bool, html_file: Path | None, read: InputOptions
) -> None:
    """Check PATH against a schema; exit status 1 on an error-severity anomaly.

    A value that does not parse as its column's type (the schema's, for a number column
    of a CSV file; else the type most of the column has) is an anomaly of the data, with
    its count and lines, not a failure to read it."""
    from lockgate.data.validate import find_anomalies

    schema = _load_schema(schema_file)
    stats = _statistics_keeping_bad_values(path, schema, csv=read.csv, format=read.format)
    anomalies = [a.to_dict() for a in find_anomalies(stats, schema)]
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


def _statistics_keeping_bad_values(
    path: str,
    schema: Any,
    *,
    csv: Any = None,
    schema_types: bool = True,
    format: str | None = None,
) -> dict[str, Any]:
    """Statistics of ``path`` where a value that does not parse as its column's type is
    kept as null and listed in ``invalid_values`` (as ingest keeps it for the data gate);
    with ``schema_types``, a CSV file's number columns are read as the schema types them."""
    from lockgate.data.ingest import InvalidValues
    from lockgate.data.readers import CsvOptions, iter_batches
    from lockgate.data.statistics import TableStatisticsAccumulator
    from lockgate.data.statistics.compute import BATCH_SIZE, coalesce

    invalid = InvalidValues(path)
    if schema_types:
        csv = dataclasses.replace(
            csv or CsvOptions(), column_types=_schema_number_types(path, schema)
        )
    accumulator = TableStatisticsAccumulator()
    batches = iter_batches(
        path,
        format=format,
        batch_size=BATCH_SIZE,
        csv=csv,
        on_bad_rows=invalid,  # type: ignore[arg-type]
    )
    for batch in coalesce(batches, BATCH_SIZE):
        accumulator.update(batch)
    stats = accumulator.result()
    if invalid.columns:
        stats["invalid_values"] = invalid.to_dict()
    return stats


def _schema_number_types(path: str, schema: Any) -> dict[str, str]:
    """The schema's int and float columns that a CSV file's header has: read as the schema
    says, so that a value that is no number is found even where most of the column is."""
    if not path.lower().endswith(".csv") or not Path(path).is_file():
        return {}
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        with pacsv.open_csv(path) as reader:
            names = set(reader.schema.names)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError):
        return {}  # the reader proper says what is wrong with the file
    return {
        name: spec.type
        for name, spec in schema.features.items()
        if spec.type in ("int", "float") and name in names
    }


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
            + f"{a['feature']:<24}{a['kind']:<18}{count:>8}  {a.get('expected')} -> "
            + _seen(a.get("seen"))
        )


def _seen(seen: Any) -> str:
    """Values that did not parse are shown with their lines: 'two' (line 52)."""
    if isinstance(seen, list) and seen and all(isinstance(v, dict) for v in seen):
        return ", ".join(f"{v.get('value')!r} (line {v.get('line')})" for v in seen)
    return str(seen)


def _compare(
    kind: str,
    base: str,
    new: str,
    schema_file: str | None,
    as_json: bool,
    html_file: Path | None,
    read: InputOptions | None = None,
) -> None:
    from lockgate.data.drift import compare_statistics

    base_stats, new_stats = (
        _statistics(base, rows_to="compare", read=read),
        _statistics(new, rows_to="compare", read=read),
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
@input_options
def drift_command(
    base_path: str,
    new_path: str,
    schema_file: str | None,
    as_json: bool,
    html_file: Path | None,
    read: InputOptions,
) -> None:
    """Distance per feature between two spans; exit status 1 over a threshold."""
    _compare("drift", base_path, new_path, schema_file, as_json, html_file, read)


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
