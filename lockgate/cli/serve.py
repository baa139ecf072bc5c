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
    from lockgate.serving.server import build_server

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
    server = build_server(settings, list(models or settings.serve_models), say=_say)
    try:
        for line in server.status_lines():
            click.echo(line)
    except BaseException:
        server.close()
        raise
    # uvicorn stops on SIGTERM, then raises it again: end through `finally` instead of
    # dying, so the request log is flushed and this server's serving_status removed.
    signal.signal(signal.SIGTERM, _exit)
    server.serve(say=_say)


def _say(line: str, *, error: bool = False) -> None:
    if line.startswith("warning:"):
        click.secho(line, fg="yellow", err=True)
    elif error:
        click.secho(line, fg="red", bold=True, err=True)
    else:
        click.echo(line)


def _exit(signum: int, frame: Any) -> None:
    raise SystemExit(0)


COMMANDS = [serve_command]
