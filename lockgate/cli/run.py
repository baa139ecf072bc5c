"""``lockgate run``: run the project's pipeline and show what happened."""

from __future__ import annotations

from pathlib import Path

import click

from lockgate.core.run import RunResult


def run_project(
    project_dir: Path, *, assignments: tuple[str, ...] = (), use_cache: bool = True
) -> RunResult:
    """Load the project's pipeline, run it against its store, print the summary."""
    from lockgate.cli.project import apply_overrides, load_pipeline, load_settings, open_store
    from lockgate.cli.summary import render_run
    from lockgate.core.run import run_pipeline
    from lockgate.metadata.registry import Registry

    settings = load_settings(project_dir)
    pipeline = apply_overrides(load_pipeline(settings.pipeline_path), list(assignments))
    store = open_store(settings)
    try:
        result = run_pipeline(
            pipeline,
            store=store,
            artifact_root=settings.resolved_artifact_root,
            project_dir=settings.project_dir,
            use_cache=use_cache,
        )
        render_run(result, model_registry=Registry(store))
    finally:
        store.close()
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
def run_command(project_dir: Path, assignments: tuple[str, ...], no_cache: bool) -> None:
    """Run the project's pipeline; unchanged steps come from the cache."""
    result = run_project(project_dir, assignments=assignments, use_cache=not no_cache)
    if not result.ok:
        raise click.exceptions.Exit(1)


COMMANDS = [run_command]
