"""How a run is shown in the terminal: steps, anomalies, metrics, the gate's verdict."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from lockgate.core.run import RunResult

_STATUS_COLOURS = {
    "complete": "green",
    "cached": "cyan",
    "failed": "red",
    "blocked": "yellow",
    "skipped": "bright_black",
}


def render_run(result: RunResult, *, model_registry: Any | None = None) -> None:
    colour = "green" if result.ok else "red"
    click.secho(
        f"Run {result.run_id} of pipeline '{result.pipeline}': {result.status} "
        f"in {result.duration_s:.2f} s",
        fg=colour,
        bold=True,
    )
    width = max(len(name) for name in result.steps) + 2
    click.echo(f"  {'step'.ljust(width)}{'status'.ljust(10)}{'time':>9}  cache why")
    for name, step in result.steps.items():
        status = click.style(step.status.ljust(10), fg=_STATUS_COLOURS.get(step.status))
        cache = "hit" if step.status == "cached" else "-" if step.status == "skipped" else "miss"
        if step.reason:  # why it ran: the cache missed because ...
            cache = f"{cache.ljust(4)}  {step.reason}"
        click.echo(f"  {name.ljust(width)}{status}{step.duration_s:>7.2f} s  {cache}")
    outputs = {a.type_name: a for s in result.steps.values() for a in s.outputs.values()}
    _render_data_gate(result)
    transform = outputs.get("TransformGraph")
    if transform is not None and transform.properties.get("task"):
        why = transform.properties.get("task_reason")
        task = transform.properties["task"]
        classes = transform.properties.get("classes")
        if task == "classification" and classes:
            kind = "binary" if len(classes) == 2 else f"multiclass, {len(classes)} classes"
            task = f"{task} ({kind})"
        click.echo(f"Task: {task}" + (f" — {why}" if why else ""))
    tuned = outputs.get("HyperParameters")
    if tuned is not None and tuned.properties.get("metric"):
        found = tuned.properties
        click.echo(
            f"Tuning: best {found['metric']} {_number(found.get('best_value'))} of"
            f" {found.get('trials')} trials ({found.get('pruned', 0)} pruned,"
            f" {found.get('rounds', 0)} rounds); study {found.get('study_name')}"
        )
    model = outputs.get("Model")
    if model is not None:
        _render_training(model.properties)
    evaluation = outputs.get("ModelEvaluation")
    if evaluation is not None:
        props = evaluation.properties
        headline = props.get("headline")
        if headline:  # with bootstrap intervals (evaluations since format 2)
            shown = "  ".join(f"{k} {_estimate(v)}" for k, v in headline.items())
            count = props.get("slices", 1)
            slices = f"{count} slice{'' if count == 1 else 's'}"
            click.echo(f"Model metrics (eval split, {slices}): {shown}")
            baseline = props.get("baseline")
            if baseline:
                baseline = {k: baseline.get(k) for k in headline}
        else:
            click.echo("Model metrics (eval split): " + _metrics(props.get("metrics")))
            baseline = props.get("baseline")
        click.echo(
            "  production baseline:      " + (_metrics(baseline) if baseline else "none yet")
        )
    blessing = outputs.get("Blessing")
    if blessing is not None:
        blessed = blessing.properties.get("blessed")
        click.echo(f"Blessed: {'yes' if blessed else 'no'}")
        for reason in blessing.properties.get("reasons", []):
            click.echo(f"  {reason}")
    infra = outputs.get("InfraBlessing")
    if infra is not None:
        props = infra.properties
        load, p99, rss = (props.get(k) for k in ("load_time_s", "p99_ms", "peak_rss_mb"))
        measured = "the server did not come up"
        if load is not None:
            measured = f"loaded in {load:.2f} s"
            measured += f", p99 {p99:.1f} ms" if p99 is not None else ""
            measured += f", peak RSS {rss:.0f} MiB" if rss is not None else ""
        verdict = "yes" if props.get("blessed") else "no"
        click.echo(f"Infra-validated in a real server: {verdict} ({measured})")
        for reason in props.get("reasons", []):
            click.echo(f"  {reason}")
    pushed_by = {a.type_name: s for s in result.steps.values() for a in s.outputs.values()}
    pushed = outputs.get("PushedModel")
    if pushed is not None or blessing is not None or infra is not None:
        if pushed is None:
            click.echo("Pushed: no")
        else:
            cached = pushed_by["PushedModel"].status == "cached"
            click.echo("Pushed: " + _pushed_note(model_registry, pushed, cached=cached))
    if not result.ok and result.error is not None:
        render_step_error(result)


def _render_training(properties: dict[str, Any]) -> None:
    """What the train step did beyond the usual: where it fitted, what it continued from."""
    device = properties.get("device")
    note = properties.get("device_note")
    if note:
        click.echo(f"Training: {note}")
    elif device and device != "cpu":
        click.echo(f"Training: on {device}")
    base = properties.get("base_model")
    if base:
        version = f" version {base['version']}" if base.get("version") else ""
        click.echo(
            f"Warm start: continued from model '{base['model_name']}'{version}"
            f" (artifact {base['artifact_id']})"
        )


def _render_data_gate(result: RunResult) -> None:
    """The curated schema written on a first run, then every check's anomalies; those that
    stopped the run (a blocked step's, from its error when its outputs were not kept) come
    first and are marked, with the report that shows them."""
    for step in result.steps.values():
        for artifact in step.outputs.values():
            written = artifact.properties.get("written_to")
            if artifact.type_name == "Schema" and written:
                click.echo(
                    f"Schema: wrote {_shown_path(written)} from this data; review it and keep "
                    "it in version control"
                )
            rejected = artifact.properties.get("rejected")
            if artifact.type_name == "Examples" and rejected and step.status != "cached":
                reasons = artifact.properties.get("rejected_reasons") or []
                shown = "; ".join(reasons[:3]) + ("; ..." if rejected > len(reasons[:3]) else "")
                click.echo(
                    f"Rows set aside by ingest: {rejected} (bad_rows='skip'; "
                    f"rejected/rejected.parquet): {shown}"
                )
    checks = {
        name: a
        for name, s in result.steps.items()
        for a in s.outputs.values()
        if a.type_name == "Anomalies"
    }  # the data gate, and the skew check when the pipeline has one
    stopping = {
        name: [dict(a) for a in getattr(s.error, "anomalies", None) or []]
        for name, s in result.steps.items()
        if s.status == "blocked"
    }
    names = [n for n in result.steps if n in checks or stopping.get(n)]
    if not names:
        return
    found: list[tuple[str, dict[str, Any], bool]] = []
    for name in names:
        blocking = stopping.get(name, [])
        keys = {_anomaly_key(a) for a in blocking}
        items = checks[name].properties.get("anomalies", []) if name in checks else blocking
        shown = name if len(names) > 1 else ""
        found.extend((shown, item, _anomaly_key(item) in keys) for item in items)
    found.sort(key=lambda entry: not entry[2])  # stable: what stopped the run first
    stopped = sum(entry[2] for entry in found)
    gate = ", ".join(n for n in names if stopping.get(n))
    note = f" ({stopped} stopped the run at {gate})" if stopped else ""
    click.echo(f"Anomalies: {len(found) or 'none'}{note}")
    for step_name, item, blocked in found[:10]:
        where = f"{step_name} {item.get('split', '')}".strip()
        mark = click.style("  <- stopped the run", fg="red") if blocked else ""
        click.echo(f"  [{item['severity']}] {where}: {item['message']}{mark}")
    if len(found) > 10:
        click.echo(f"  ... and {len(found) - 10} more")
    for name in names:
        report = checks[name].path / "report.html" if name in checks else None
        if stopping.get(name) and report is not None and report.exists():
            click.echo(f"  report: {_shown_path(str(report))}")


def _anomaly_key(item: dict[str, Any]) -> tuple[Any, ...]:
    return (item.get("split"), item.get("feature"), item.get("kind"), item.get("message"))


def _shown_path(path: str) -> str:
    """``path`` relative to the working folder when it is inside it, else as it is."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


def render_step_error(result: RunResult) -> None:
    error = result.error
    kind = "gate closed" if result.status == "blocked" else "failed"
    click.secho(f"Step '{result.failed_step}' {kind}: {error}", fg="red", err=True)
    hint = getattr(error, "hint", None)
    if hint:
        click.echo(f"hint: {hint}", err=True)


def _metrics(metrics: dict[str, Any] | None) -> str:
    if not metrics:
        return "-"
    return "  ".join(f"{k} {_number(v)}" for k, v in metrics.items())


def _estimate(estimate: dict[str, Any]) -> str:
    """``0.9651 [0.9302, 0.9884]``: the value and its bootstrap interval, when there is one."""
    value, lower, upper = estimate.get("value"), estimate.get("lower"), estimate.get("upper")
    if value is None:
        return "n/a"
    if lower is None or upper is None:
        return _number(value)
    return f"{_number(value)} [{_number(lower)}, {_number(upper)}]"


def _number(value: Any) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.4f}"
    return str(int(value)) if isinstance(value, float) else str(value)


def _pushed_note(registry: Any | None, pushed: Any, *, cached: bool) -> str:
    """Which version this run's push is (the one its PushedModel was registered as, not
    whatever production is now) and whether it still serves in production."""
    name = str(pushed.properties.get("model_name"))
    version = registry.version_of(pushed) if registry is not None else None
    if version is None:
        return f"yes, model '{name}'"
    if not cached:
        return f"yes, model '{name}' version {version.version}, now in production"
    where = "still in production" if "production" in version.aliases else "not in production now"
    return f"no change, model '{name}' version {version.version} ({where}) is this model"
