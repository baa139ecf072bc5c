"""``lockgate run``: run the project's pipeline and show what happened."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from lockgate.core.run import RunResult


def run_project(
    project_dir: Path,
    *,
    assignments: tuple[str, ...] = (),
    use_cache: bool = True,
    runner: str | None = None,
    address: str | None = None,
) -> RunResult:
    """Load the project's pipeline, run it against its store on the runner the settings
    (or ``runner``/``address``) name, print the summary."""
    from lockgate.cli.project import apply_overrides, load_pipeline, load_settings, open_store
    from lockgate.cli.summary import render_run
    from lockgate.core.run import run_pipeline
    from lockgate.core.runners import runner_named
    from lockgate.metadata.registry import Registry

    settings = load_settings(project_dir, runner_name=runner, runner_address=address)
    pipeline = apply_overrides(load_pipeline(settings.pipeline_path), list(assignments))
    chosen = runner_named(settings.runner_name, address=settings.runner_address)
    start = getattr(chosen, "start", None)
    if start is not None:  # Ray: on this (main) thread, before the steps' threads
        start()
    store = open_store(settings)
    try:
        result = run_pipeline(
            pipeline,
            store=store,
            artifact_root=settings.resolved_artifact_root,
            project_dir=settings.project_dir,
            use_cache=use_cache,
            runner=chosen,
        )
        render_run(result, model_registry=Registry(store))
    finally:
        store.close()
        shutdown = getattr(chosen, "shutdown", None)
        if shutdown is not None:
            shutdown()
    return result


@click.command("run")
@click.option(
    "--project",
    "project_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    help="Project folder.",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="STEP.PARAM=VALUE",
    help="Override a step parameter (VALUE as JSON).",
)
@click.option("--no-cache", is_flag=True, help="Run every step even when a cached result exists.")
@click.option(
    "--runner",
    type=click.Choice(["local", "ray"]),
    default=None,
    help="Where steps run: local threads (default) or Ray tasks ([runner] name).",
)
@click.option(
    "--address",
    default=None,
    metavar="HOST:PORT",
    help="Join this Ray cluster (host:6379, ray://host:10001) instead of starting a local one.",
)
def run_command(
    project_dir: Path,
    assignments: tuple[str, ...],
    no_cache: bool,
    runner: str | None,
    address: str | None,
) -> None:
    """Run the project's pipeline; unchanged steps come from the cache."""
    result = run_project(
        project_dir,
        assignments=assignments,
        use_cache=not no_cache,
        runner=runner,
        address=address,
    )
    if not result.ok:
        raise click.exceptions.Exit(1)


COMMANDS = [run_command]
