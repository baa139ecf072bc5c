"""``lockgate serve``: the model server, with each model's production version loaded."""

from __future__ import annotations

from pathlib import Path

import click

from lockgate.errors import ConfigError


def build_repository(store, model_names: list[str]):  # -> ModelRepository
    """Load the production version of each model from the registry (sha256 checked)."""
    from lockgate.metadata.registry import Registry
    from lockgate.serving.repository import ModelRepository
    from lockgate.serving.servable import PipelineServable

    registry = Registry(store)
    names = model_names or registry.models()
    if not names:
        raise ConfigError(
            "no model in the registry to serve",
            hint="run a pipeline with a push step first: lockgate run",
        )
    repository = ModelRepository()
    for name in names:
        version = registry.get(name)  # the production alias
        pushed = version.artifact
        repository.set(
            PipelineServable.load(
                name,
                str(version.version),
                Path(pushed.uri),
                model_sha256=pushed.properties["model_sha256"],
            )
        )
    return repository


@click.command("serve")
@click.option(
    "--project", "project_dir", type=click.Path(file_okay=False, path_type=Path), default="."
)
@click.option(
    "--host", default=None, help="Address to listen on (default from lockgate.toml: 127.0.0.1)."
)
@click.option("--port", default=None, type=int, help="Port (default from lockgate.toml: 8080).")
@click.option(
    "--model", "models", multiple=True, help="A model to serve (default: [serve] models)."
)
def serve_command(
    project_dir: Path, host: str | None, port: int | None, models: tuple[str, ...]
) -> None:
    """Serve the production version of the project's models (Open Inference Protocol V2)."""
    from lockgate.cli.project import load_settings, open_store
    from lockgate.serving.app import create_app, serve

    settings = load_settings(project_dir, serve_host=host, serve_port=port)
    store = open_store(settings)
    try:
        repository = build_repository(store, list(models or settings.serve_models))
    finally:
        store.close()
    for name in repository.names():
        click.echo(f"Serving '{name}' version(s) {', '.join(repository.versions(name))}")
    click.echo(
        f"Listening on http://{settings.serve_host}:{settings.serve_port} "
        f"(POST /v2/models/<name>/infer); Ctrl+C stops"
    )
    serve(create_app(repository), host=settings.serve_host, port=settings.serve_port)


COMMANDS = [serve_command]
