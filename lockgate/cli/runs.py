"""``lockgate runs``: every run with its status and duration; ``--run N`` shows its steps
and, for each step that ran, why the cache missed."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("runs")
@click.option(
    "--project", "project_dir", type=click.Path(file_okay=False, path_type=Path), default="."
)
@click.option("--limit", default=20, show_default=True, help="How many of the newest runs.")
@click.option("--run", "run_id", type=int, default=None, help="Show the steps of one run.")
def runs_command(project_dir: Path, limit: int, run_id: int | None) -> None:
    """List runs, newest first, with status and duration."""
    from lockgate.cli.project import load_settings, open_store

    store = open_store(load_settings(project_dir))
    try:
        if run_id is not None:
            run = store.get_run(run_id)
            click.echo(
                f"Run {run.id} of '{run.pipeline}': {run.status}, {_duration(run.duration_s)}"
            )
            for execution in store.run_executions(run_id):
                why = f"  {execution.miss_reason}" if execution.miss_reason else ""
                click.echo(
                    f"  {execution.step_name:<22}{execution.status:<10}"
                    f"{_duration(execution.duration_s):>10}{why}"
                )
            if run.error:
                click.echo(f"error: {run.error}")
            return
        runs = store.list_runs(limit=limit)
        if not runs:
            click.echo("No runs yet. Start one with: lockgate run")
            return
        click.echo(
            f"{'run':>5}  {'pipeline':<16}{'status':<10}{'started':<21}{'duration':>10}  steps"
        )
        for run in runs:
            executions = store.run_executions(run.id)
            cached = sum(e.status == "cached" for e in executions)
            click.echo(
                f"{run.id:>5}  {run.pipeline:<16}{run.status:<10}"
                f"{run.started_at.strftime('%Y-%m-%d %H:%M:%S'):<21}{_duration(run.duration_s):>10}"
                f"  {len(executions)} ({cached} cached)"
            )
    finally:
        store.close()


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f} s"


COMMANDS = [runs_command]
