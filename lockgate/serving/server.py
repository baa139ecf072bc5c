"""The model server's assembly, in one place: ``lockgate serve`` and infra-validation both
start a server through here, so what infra-validation checks is what production runs.

``build_server`` loads every model once, synchronously (a model that cannot load is
reported before anything listens); ``Server.serve`` builds the app, starts following the
registry and blocks under uvicorn until interrupted, then stops the follower and flushes
the request log whatever happened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lockgate.errors import ConfigError

if TYPE_CHECKING:
    from lockgate.serving.metrics import ServingMetrics
    from lockgate.serving.reload import RegistryFollower
    from lockgate.serving.repository import ModelRepository
    from lockgate.serving.request_log import RequestLogger
    from lockgate.settings import Settings

#: Receives one line to show the operator (the CLI prints it); ``error`` marks the loud ones.
Say = Callable[..., None]


def _quiet(line: str, *, error: bool = False) -> None:
    return None


@dataclass
class Server:
    """A server with its models loaded and nothing listening yet."""

    settings: Settings
    repository: ModelRepository
    follower: RegistryFollower
    request_logger: RequestLogger | None
    metrics: ServingMetrics

    def status_lines(self) -> list[str]:
        """One line per served model: its version, canary and policy."""
        lines = []
        for name, state in self.follower.status().items():
            if state["serving"] is None:
                continue
            canary = ""
            if state["canary"] is not None:
                mode = "shadow" if state["canary_shadow"] else f"{state['canary_percent']:g}%"
                canary = f", canary version {state['canary']} ({mode})"
            lines.append(f"Serving '{name}' version {state['serving']}{canary} [{state['policy']}]")
        return lines

    def app(self) -> Any:
        """The ASGI app over this server's repository (auth, limits and metrics as set)."""
        from lockgate.serving.app import create_app

        return create_app(
            self.repository,
            auth_token=self.settings.serve_auth_token,
            max_body_bytes=self.settings.serve_max_body_bytes,
            request_timeout_s=self.settings.serve_request_timeout_s,
            metrics=self.metrics,
            labels=self.follower.aliases,
            batch_max_rows=self.settings.serve_batch_max_size,
        )

    def serve(self, *, say: Say = _quiet) -> None:
        """Listen on the settings' host and port until interrupted; always ``close``."""
        from lockgate.serving.app import serve

        settings = self.settings
        try:
            app = self.app()
            self.follower.start()
            auth = "; a bearer token is required" if settings.serve_auth_token else ""
            say(
                f"Listening on http://{settings.serve_host}:{settings.serve_port} "
                f"(POST /v2/models/<name>/infer){auth}; following the registry every "
                f"{settings.serve_poll_interval_s:g}s; Ctrl+C stops"
            )
            serve(app, host=settings.serve_host, port=settings.serve_port)
        finally:
            self.close()

    def close(self) -> None:
        """Stop following the registry and flush the request log."""
        _shutdown(self.follower, self.request_logger)


def build_server(
    settings: Settings,
    models: list[str],
    *,
    metrics: ServingMetrics | None = None,
    say: Say = _quiet,
) -> Server:
    """A ``Server`` for ``settings``, every model loaded once, synchronously, so that a model
    that cannot load is reported before the server listens. A model whose registry version
    does not load serves the newest earlier version of its alias that does, with a warning
    (through ``say``); ``ConfigError`` when no model loads. ``metrics`` (the app's
    ``ServingMetrics``, a fresh one by default) records the batches each version's batcher
    makes and what each model serves."""
    from lockgate.metadata.serving_status import ServerId
    from lockgate.metadata.store import SqlMetadataStore
    from lockgate.serving.metrics import ServingMetrics
    from lockgate.serving.reload import RegistryFollower, ServingOptions
    from lockgate.serving.repository import ModelRepository
    from lockgate.serving.request_log import RequestLogger

    metrics = metrics if metrics is not None else ServingMetrics()
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
        say(f"warning: model '{name}' is not served yet: {error}")
    for name, warning in follower.warnings().items():
        if name not in failed:
            say(f"WARNING: {warning}", error=True)
    return Server(settings, repository, follower, request_logger, metrics)


def _shutdown(follower: RegistryFollower, request_logger: RequestLogger | None) -> None:
    follower.stop()
    if request_logger is not None:
        request_logger.close()
        if request_logger.store is not None:
            request_logger.store.close()
