"""``lockgate serve``: the model server, following the registry while it runs.

Each model is served under its policy (``NAME`` = its production alias, ``NAME@latest``,
``NAME@3``, ``NAME@alias``); a newly promoted version is loaded, warmed up and swapped in
without dropping a request, and sampled requests are logged as InferenceLog artifacts.

``--auth-token`` (better: ``LOCKGATE_SERVE_AUTH_TOKEN``, as a command line is visible to
other users of the machine) makes every path but the health checks need
``Authorization: Bearer <token>``; the token is never printed.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import click

from lockgate.errors import ConfigError


def build_server(settings: Any, models: list[str], *, metrics: Any = None) -> tuple[Any, Any, Any]:
    """(repository, follower, request logger) for ``settings``; every model loaded once,
    synchronously, so that a model that cannot load is reported before the server listens.
    A model whose registry version does not load serves the newest earlier version of its
    alias that does, with a warning; the server exits (2) only when no model loads.
    ``metrics`` (the app's ``ServingMetrics``) records the batches each version's batcher
    makes and what each model serves."""
    from lockgate.metadata.serving_status import ServerId
    from lockgate.metadata.store import SqlMetadataStore
    from lockgate.serving.reload import RegistryFollower, ServingOptions
    from lockgate.serving.repository import ModelRepository
    from lockgate.serving.request_log import RequestLogger

    url = settings.resolved_store_url
    request_logger = None
    if settings.serve_log_sample_rate > 0:
        request_logger = RequestLogger(
            settings.resolved_artifact_root,
            store=SqlMetadataStore(url),
            sample_rate=settings.serve_log_sample_rate,
            flush_rows=settings.serve_log_flush_rows,
            flush_interval_s=settings.serve_log_flush_interval_s,
        )
    repository = ModelRepository()
    follower = RegistryFollower(
        url,
        repository,
        models,
        settings.serve_poll_interval_s,
        options=ServingOptions(
            batch_max_size=settings.serve_batch_max_size,
            batch_max_wait_ms=settings.serve_batch_max_wait_ms,
            canary_percent=settings.serve_canary_percent,
            canary_shadow=settings.serve_canary_shadow,
        ),
        request_logger=request_logger,
        metrics=metrics,
        server=ServerId.here(settings.serve_port),
    )
    try:
        errors = follower.poll_once(log_errors=False)
        if not errors:
            raise ConfigError(
                "no model in the registry to serve",
                hint="run a pipeline with a push step first (lockgate run), or import one:"
                " lockgate models import PATH --name NAME",
            )
        failed = {name: error for name, error in errors.items() if error}
        if not repository.ready:
            detail = "; ".join(f"{name}: {error}" for name, error in failed.items())
            raise ConfigError(
                f"no model could be loaded ({detail})",
                hint="promote a version that loads (lockgate models list NAME shows them):"
                " lockgate models promote NAME N",
            )
    except BaseException:
        _shutdown(follower, request_logger)
        raise
    for name, error in failed.items():
        click.secho(f"warning: model '{name}' is not served yet: {error}", fg="yellow", err=True)
    for name, warning in follower.warnings().items():
        if name not in failed:
            click.secho(f"WARNING: {warning}", fg="red", bold=True, err=True)
    return repository, follower, request_logger


def _shutdown(follower: Any, request_logger: Any) -> None:
    follower.stop()
    if request_logger is not None:
        request_logger.close()
        if request_logger.store is not None:
            request_logger.store.close()


@click.command("serve")
@click.option(
    "--project", "project_dir", type=click.Path(file_okay=False, path_type=Path), default="."
)
@click.option(
    "--host", default=None, help="Address to listen on (default from lockgate.toml: 127.0.0.1)."
)
@click.option("--port", default=None, type=int, help="Port (default from lockgate.toml: 8080).")
@click.option(
    "--model",
    "models",
    multiple=True,
    help="NAME (its production alias), NAME@latest, NAME@3 or NAME@ALIAS; repeatable"
    " (default: [serve] models, else every registered model).",
)
@click.option("--poll-interval", type=float, default=None, help="Seconds between registry checks.")
@click.option(
    "--log-sample-rate",
    type=float,
    default=None,
    help="Share of requests written to the request log (0 turns it off).",
)
@click.option(
    "--auth-token",
    default=None,
    help="Bearer token every request but the health checks must send (401 otherwise);"
    " prefer the environment variable LOCKGATE_SERVE_AUTH_TOKEN.",
)
@click.option(
    "--max-body-bytes",
    type=int,
    default=None,
    help="Largest request body, also after decompression (413 above; default 32 MiB).",
)
@click.option(
    "--request-timeout",
    type=float,
    default=None,
    help="Seconds for a body to arrive (408) and the model to answer (504; default 30).",
)
def serve_command(
    project_dir: Path,
    host: str | None,
    port: int | None,
    models: tuple[str, ...],
    poll_interval: float | None,
    log_sample_rate: float | None,
    auth_token: str | None,
    max_body_bytes: int | None,
    request_timeout: float | None,
) -> None:
    """Serve the project's models (Open Inference Protocol V2), following the registry."""
    from lockgate.cli.project import load_settings
    from lockgate.core.project_code import make_importable
    from lockgate.serving.app import create_app, serve
    from lockgate.serving.metrics import ServingMetrics

    make_importable(project_dir)  # a transform's row_function may live in a project module
    settings = load_settings(
        project_dir,
        serve_host=host,
        serve_port=port,
        serve_poll_interval_s=poll_interval,
        serve_log_sample_rate=log_sample_rate,
        serve_auth_token=auth_token,
        serve_max_body_bytes=max_body_bytes,
        serve_request_timeout_s=request_timeout,
    )
    metrics = ServingMetrics()
    repository, follower, request_logger = build_server(
        settings, list(models or settings.serve_models), metrics=metrics
    )
    try:
        for name, state in follower.status().items():
            if state["serving"] is None:
                continue
            canary = ""
            if state["canary"] is not None:
                mode = "shadow" if state["canary_shadow"] else f"{state['canary_percent']:g}%"
                canary = f", canary version {state['canary']} ({mode})"
            click.echo(f"Serving '{name}' version {state['serving']}{canary} [{state['policy']}]")
        app = create_app(
            repository,
            auth_token=settings.serve_auth_token,
            max_body_bytes=settings.serve_max_body_bytes,
            request_timeout_s=settings.serve_request_timeout_s,
            metrics=metrics,
            labels=follower.aliases,
        )
        follower.start()
        auth = "; a bearer token is required" if settings.serve_auth_token else ""
        click.echo(
            f"Listening on http://{settings.serve_host}:{settings.serve_port} "
            f"(POST /v2/models/<name>/infer){auth}; following the registry every "
            f"{settings.serve_poll_interval_s:g}s; Ctrl+C stops"
        )
        # uvicorn stops on SIGTERM, then raises it again: end through `finally` instead of
        # dying, so the request log is flushed and this server's serving_status removed.
        signal.signal(signal.SIGTERM, _exit)
        serve(app, host=settings.serve_host, port=settings.serve_port)
    finally:
        _shutdown(follower, request_logger)


def _exit(signum: int, frame: Any) -> None:
    raise SystemExit(0)


COMMANDS = [serve_command]
