"""The model server: one Starlette app speaking Open Inference Protocol V2 and TF-Serving v1.

Routes (``[/versions/{v}]`` optional; ``/labels/{l}`` resolves like a version)::

    GET  /v2/health/live              200 while the process answers              (open)
    GET  /v2/health/ready             200 once a model is loaded, else 503       (open)
    GET  /v2                          server metadata
    GET  /v2/models/{name}[/versions/{v}]          model metadata
    GET  /v2/models/{name}[/versions/{v}]/ready    200, 404 unknown, 503 loading
    POST /v2/models/{name}[/versions/{v}]/infer    JSON or binary tensor data
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            TF-Serving model status
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata   signature_def
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict    instances / inputs
    GET  /metrics                     Prometheus text format

Errors are JSON ``{"error": ...}``: LockgateErrors with their ``status_code`` (400, 401,
404, 408, 413, 503, 504), anything else 500 and logged; the server keeps serving either way.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Generator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, cast

import anyio
import anyio.to_thread
import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

import lockgate
from lockgate.errors import (
    ConfigError,
    InferenceRequestError,
    InferenceTimeoutError,
    LockgateError,
    ModelNotFoundError,
    RequestTimeoutError,
    did_you_mean,
)
from lockgate.serving import oip_v2, tfserving_v1
from lockgate.serving.canary import CanaryServable
from lockgate.serving.inline import InlinePolicy
from lockgate.serving.loop_batching import DEFAULT_MAX_ROWS, LoopBatcher
from lockgate.serving.metrics import ServingMetrics
from lockgate.serving.repository import Lease, ModelRepository
from lockgate.serving.security import BearerAuth, BodyLimit, decompress
from lockgate.serving.servable import (
    NUMERIC_DATATYPES,
    ServingChain,
    as_chain,
    columns_from_matrix,
    feature_order,
    validate_columns,
)

logger = logging.getLogger("lockgate.serving")

#: Model name -> its labels (registry aliases: production, canary, ...) -> version.
Labels = Callable[[str], Mapping[str, int | str]]

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
#: the GIL switch interval of a serving process (see ``serve``)
SWITCH_INTERVAL_S = 0.001
DEFAULT_REQUEST_TIMEOUT_S = 30.0


class JSON(JSONResponse):
    """JSON that is always encodable: ASCII escapes (a lone surrogate echoed from a request
    cannot break UTF-8 encoding) and no NaN (JSON has none)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(
            content, ensure_ascii=True, allow_nan=False, separators=(",", ":")
        ).encode()


def create_app(
    repository: ModelRepository,
    *,
    auth_token: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
    metrics: ServingMetrics | None = None,
    labels: Labels | None = None,
    batch_max_rows: int = DEFAULT_MAX_ROWS,
) -> Starlette:
    """Build the app around ``repository``, which may be swapped into while serving.

    ``auth_token`` set: every path but the health checks needs ``Authorization: Bearer``.
    ``max_body_bytes`` bounds a request body, before and after decompression (413).
    ``request_timeout_s`` bounds reading the body (408) and the model's answer (504).
    ``metrics`` defaults to a fresh ``ServingMetrics``; it is ``app.state.metrics``.
    ``labels(name)`` gives a model's labels for ``/v1/models/{name}/labels/{label}`` (the
    registry's aliases, from the follower); a canary's candidate is ``canary`` and a
    served version number is its own label either way. ``batch_max_rows`` bounds the rows
    of one call that merges requests on the event loop (1: each request alone).
    """
    if auth_token is not None and not auth_token:
        raise ConfigError("The 'auth_token' parameter of create_app must not be empty.")
    if not isinstance(max_body_bytes, int) or max_body_bytes <= 0:
        raise ConfigError(
            "The 'max_body_bytes' parameter of create_app must be a positive integer. "
            f"Got {max_body_bytes!r} instead."
        )
    if not request_timeout_s > 0:
        raise ConfigError(
            "The 'request_timeout_s' parameter of create_app must be positive. "
            f"Got {request_timeout_s!r} instead."
        )
    metrics = metrics if metrics is not None else ServingMetrics()
    metrics.watch(repository)
    pinned = _Pinned(repository, labels)
    if not isinstance(batch_max_rows, int) or batch_max_rows < 1:
        raise ConfigError(
            "The 'batch_max_rows' parameter of create_app must be a positive integer. "
            f"Got {batch_max_rows!r} instead."
        )
    run = _Inference(repository, metrics, max_body_bytes, request_timeout_s, pinned, batch_max_rows)

    async def live(request: Request) -> Response:
        return JSON({"live": True})

    async def ready(request: Request) -> Response:
        is_ready = repository.ready
        return JSON({"ready": is_ready}, status_code=200 if is_ready else 503)

    async def server_metadata(request: Request) -> Response:
        return JSON(
            {
                "name": "lockgate",
                "version": lockgate.__version__,
                "extensions": ["binary_tensor_data"],
            }
        )

    async def model_metadata(request: Request) -> Response:
        with _held(pinned, request) as servable:
            version = request.path_params.get("version")
            return JSON(
                {
                    "name": servable.name,
                    "versions": [version] if version else repository.versions(servable.name),
                    "platform": servable.platform,
                    "inputs": [s.to_json() for s in servable.inputs],
                    "outputs": [s.to_json() for s in servable.outputs],
                    "parameters": feature_order(servable.inputs),
                }
            )

    async def model_ready(request: Request) -> Response:
        with _held(pinned, request) as servable:
            return JSON({"name": servable.name, "ready": True})

    async def infer(request: Request) -> Response:
        header = request.headers.get(oip_v2.HEADER)
        return await run(request, "v2", lambda s, body: _v2_infer(s, body, header))

    async def v1_status(request: Request) -> Response:
        with _held(pinned, request) as servable:
            one = "version" in request.path_params or "label" in request.path_params
            versions = [servable.version] if one else repository.versions(servable.name)
            return JSON(tfserving_v1.status_doc(versions))

    async def v1_metadata(request: Request) -> Response:
        with _held(pinned, request) as servable:
            return JSON(tfserving_v1.metadata_doc(servable))

    async def v1_predict(request: Request) -> Response:
        return await run(request, "v1", _v1_predict)

    async def prometheus(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    routes = []
    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        routes += [
            Route(prefix, model_metadata, methods=["GET"]),
            Route(prefix + "/ready", model_ready, methods=["GET"]),
            Route(prefix + "/infer", infer, methods=["POST"]),
        ]
    for prefix in (
        "/v1/models/{name}",
        "/v1/models/{name}/versions/{version}",
        "/v1/models/{name}/labels/{label}",
    ):
        routes += [
            Route(prefix + ":predict", v1_predict, methods=["POST"]),
            Route(prefix + "/metadata", v1_metadata, methods=["GET"]),
            Route(prefix, v1_status, methods=["GET"]),
        ]
    routes += [
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={LockgateError: error_response, HTTPException: error_response},
    )
    # Added innermost first: _CatchUnexpected wraps the others and renders their errors.
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, on_reject=metrics.observe_rejection)
    if auth_token is not None:
        app.add_middleware(BearerAuth, token=auth_token, on_reject=metrics.observe_rejection)
    app.add_middleware(_CatchUnexpected)
    app.state.metrics = metrics
    return app


@dataclass
class _Answer:
    """A protocol's encoded answer, the rows it predicted and the version that answered
    (a canary's candidate or primary), for the metrics."""

    body: bytes
    rows: int
    version: str
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


_Results = tuple[str, dict[str, np.ndarray]]
#: A protocol's exchange for one request: it yields the request's columns, is sent the
#: version that answered and the outputs, and returns the encoded answer. The same exchange
#: runs in a worker thread, inline, or with other requests in one call (``loop_batching``).
_Exchange = Generator[dict[str, np.ndarray], _Results, _Answer]
_Work = Callable[[ServingChain, bytes], _Exchange]


class _Inference:
    """What every inference request goes through, whatever its protocol: take a lease on
    the servable (held until the model has answered, so a hot swap never closes it under
    the request), read the body within the limits, answer on the loop when the model is
    fast (``inline``) or else in a thread within the timeout, and count the outcome under
    the version that answered."""

    def __init__(
        self,
        repository: ModelRepository,
        metrics: ServingMetrics,
        max_body_bytes: int,
        timeout_s: float,
        pinned: _Pinned,
        batch_max_rows: int = DEFAULT_MAX_ROWS,
    ) -> None:
        self.repository = repository
        self.pinned = pinned
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.timeout_s = timeout_s
        self.inline = InlinePolicy()
        self.batches = LoopBatcher(self.predict, max_rows=batch_max_rows)
        self._threads = 0  # requests in worker threads now (counted on the loop)
        self._dispatched = 0  # requests ever sent to a worker thread

    async def __call__(self, request: Request, protocol: str, work: _Work) -> Response:
        started = time.perf_counter()
        model = version = ""
        status, rows, error = 500, 0, None
        lease: Lease | None = None
        try:
            params = request.path_params
            lease = self.repository.lease(params["name"], self.pinned(params))
            servable = lease.servable
            if isinstance(servable, CanaryServable) and ("version" in params or "label" in params):
                servable = as_chain(servable.primary)  # a version asked for is not split
            model, version = servable.name, servable.version
            deadline = anyio.current_time() + self.timeout_s
            body: bytes | None = None
            with anyio.move_on_after(self.timeout_s):
                body = await request.body()
            if body is None:
                raise RequestTimeoutError(
                    f"the request body did not arrive within {self.timeout_s:g} s"
                )
            encoding = request.headers.get("content-encoding")
            answer = await self._answer(work, lease, servable, body, encoding, deadline)
            if answer is None:
                raise InferenceTimeoutError(
                    f"model '{model}' version '{version}' did not answer within "
                    f"{self.timeout_s:g} s",
                    hint="send fewer rows per request, or raise request_timeout_s",
                )
            status, rows, version = 200, answer.rows, answer.version
            return Response(answer.body, media_type=answer.media_type, headers=answer.headers)
        except ClientDisconnect:
            status = 499  # nginx's "client closed request": nobody is left to answer
            return Response(status_code=499)
        except Exception as exc:
            status = getattr(exc, "status_code", 500) if isinstance(exc, LockgateError) else 500
            error = type(exc).__name__
            raise
        finally:
            if lease is not None and lease.claim():  # the worker never started: end the hold
                lease.release()
            elapsed = time.perf_counter() - started
            self.metrics.observe_request(
                model, version, protocol, status, elapsed, rows, error=error
            )

    async def _answer(
        self,
        work: _Work,
        lease: Lease,
        servable: ServingChain,
        body: bytes,
        encoding: str | None,
        deadline: float,
    ) -> _Answer | None:
        """The answer, made on the event loop when this model answers fast (``inline``),
        with the other requests of this turn in one call (``loop_batching``), else in a
        worker thread within the deadline (None when it passed); its costs go to the inline
        policy. A canary draws a version per request and each version batches its own
        requests below the draw, so a canary always goes to a thread."""
        size = len(body)
        if not isinstance(servable, CanaryServable) and self.inline.allows(servable, size):
            answer, wall_s, cpu_s = await self._batched(work, lease, servable, body, encoding)
            self.inline.observe(servable, size, wall_s=wall_s, cpu_s=cpu_s, alone=True)
            return answer
        self._threads += 1
        dispatched = self._dispatched = self._dispatched + 1
        alone = self._threads == 1
        found: tuple[_Answer | None, float, float] | None = None
        try:
            with anyio.move_on_at(deadline):
                found = await anyio.to_thread.run_sync(
                    self._work, work, lease, servable, body, encoding, abandon_on_cancel=True
                )
        finally:
            self._threads -= 1
        if found is None:
            return None
        answer, wall_s, cpu_s = found
        alone = alone and self._dispatched == dispatched  # and nothing else came meanwhile
        self.inline.observe(servable, size, wall_s=wall_s, cpu_s=cpu_s, alone=alone)
        return answer

    def _work(
        self, work: _Work, lease: Lease, servable: ServingChain, body: bytes, encoding: str | None
    ) -> tuple[_Answer | None, float, float]:
        """The answer, its wall time and this thread's CPU time for it; the hold passes to
        the caller (a worker thread, or the loop) and ends when the answer is made."""
        if not lease.claim():  # the request gave up (timeout) before this thread began
            return None, 0.0, 0.0
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            exchange = work(servable, decompress(body, encoding, self.max_body_bytes))
            answer = _finish(exchange, self.predict(servable, next(exchange)))
            return answer, time.perf_counter() - wall, time.thread_time() - cpu
        finally:
            lease.release()

    async def _batched(
        self, work: _Work, lease: Lease, servable: ServingChain, body: bytes, encoding: str | None
    ) -> tuple[_Answer | None, float, float]:
        """``_work`` on the loop, the model's call shared with this turn's other requests:
        the costs are this request's decoding and encoding and its share of the call."""
        if not lease.claim():
            return None, 0.0, 0.0
        started = time.perf_counter()
        try:
            exchange = work(servable, decompress(body, encoding, self.max_body_bytes))
            typed = validate_columns(next(exchange), servable.inputs)
            own = time.perf_counter() - started  # on the loop: wall time is CPU time
            share = await self.batches.predict(servable, typed)
            started = time.perf_counter()
            answer = _finish(exchange, (share.version, share.outputs))
            own += time.perf_counter() - started
            return answer, own + share.wall_s, own + share.cpu_s
        finally:
            lease.release()

    def predict(
        self, servable: ServingChain, columns: dict[str, np.ndarray]
    ) -> tuple[str, dict[str, np.ndarray]]:
        """Validate, predict, count the batch; return the version that answered (a canary
        says which of its two did) and the outputs. A servable that batches requests
        together has ``observes_batches`` true and reports its own batches instead."""
        typed = validate_columns(columns, servable.inputs)  # once: the links inward reuse it
        version, results = servable.predict_versioned(typed)
        if not servable.observes_batches:
            self.metrics.observe_batch(servable.name, version, typed.rows)
        return version, {name: np.asarray(value) for name, value in results.items()}


def _finish(exchange: _Exchange, results: _Results) -> _Answer:
    """Send an exchange its results; its encoded answer."""
    try:
        exchange.send(results)
    except StopIteration as done:
        return cast(_Answer, done.value)
    raise RuntimeError("a protocol exchange yielded twice")  # a bug here, not the client's


def _v2_infer(servable: ServingChain, body: bytes, header: str | None) -> _Exchange:
    request = oip_v2.decode_request(body, oip_v2.parse_header_length(header, len(body)))
    columns = _columns(request, servable)
    version, results = yield columns
    outputs = _outputs(request, servable, results)
    content, header_length = oip_v2.encode_response(servable.name, version, outputs, request)
    rows = len(next(iter(columns.values())))
    if header_length is None:
        return _Answer(content, rows, version)
    return _Answer(
        content, rows, version, "application/octet-stream", {oip_v2.HEADER: str(header_length)}
    )


def _v1_predict(servable: ServingChain, body: bytes) -> _Exchange:
    request = tfserving_v1.decode_predict(body, servable.inputs)
    version, results = yield request.columns
    if request.output_filter is not None:
        _check_outputs(request.output_filter, results)
        results = {name: results[name] for name in request.output_filter}
    content = tfserving_v1.encode_predict(results, row_format=request.row_format)
    return _Answer(content, request.rows, version)


def _columns(request: oip_v2.InferRequest, servable: ServingChain) -> dict[str, np.ndarray]:
    specs = {spec.name: spec for spec in servable.inputs}
    if len(request.inputs) == 1:
        tensor = request.inputs[0]
        if len(tensor.shape) == 2 and tensor.name not in specs:  # one [n, N] matrix
            where = f"input '{tensor.name}'"
            return columns_from_matrix(tensor.data, tensor.datatype, servable.inputs, where)
    columns: dict[str, np.ndarray] = {}
    for tensor in request.inputs:
        where = f"input '{tensor.name}'"
        if tensor.name in columns:
            raise InferenceRequestError(f"{where} is given twice")
        if len(tensor.shape) not in (1, 2) or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            raise InferenceRequestError(
                f"{where}: shape {tensor.shape} is not one value per row; use [n] or [n, 1]"
            )
        spec = specs.get(tensor.name)
        if spec is not None and not _compatible(spec.datatype, tensor.datatype):
            raise InferenceRequestError(
                f"{where}: expected datatype {spec.datatype}, got {tensor.datatype}"
            )
        columns[tensor.name] = tensor.data.reshape(-1)
    return columns


def _compatible(expected: str, got: str) -> bool:
    if expected in NUMERIC_DATATYPES:
        return got in NUMERIC_DATATYPES
    return expected == got


def _check_outputs(names: list[str], results: dict[str, np.ndarray]) -> None:
    for name in names:
        if name not in results:
            raise InferenceRequestError(
                f"unknown output '{name}'; the model's outputs are {list(results)}"
            )


def _outputs(
    request: oip_v2.InferRequest, servable: ServingChain, results: dict[str, np.ndarray]
) -> list[oip_v2.Tensor]:
    """Only the outputs asked for, in the order asked (all of them when none are named)."""
    names = list(results) if request.outputs is None else [o.name for o in request.outputs]
    _check_outputs(names, results)
    datatypes = {spec.name: spec.datatype for spec in servable.outputs}
    tensors = []
    for name in names:
        array = results[name]
        datatype = datatypes.get(name) or _datatype_of(array)
        tensors.append(oip_v2.Tensor(name, datatype, list(array.shape), array))
    return tensors


def _datatype_of(array: np.ndarray) -> str:
    for name, dtype in oip_v2.DTYPES.items():
        if name != "BYTES" and array.dtype == dtype:
            return name
    return "BYTES"


def _held(pinned: _Pinned, request: Request) -> AbstractContextManager[ServingChain]:
    """The servable a request names, held (counted in flight) for the ``with`` block."""
    return pinned.repository.acquire(request.path_params["name"], pinned(request.path_params))


class _Pinned:
    """The version a path pins: ``/versions/{v}`` as it is, ``/labels/{label}`` through the
    model's labels (404 naming the known ones); None for the default version."""

    def __init__(self, repository: ModelRepository, labels: Labels | None) -> None:
        self.repository = repository
        self.labels = labels

    def __call__(self, params: Mapping[str, Any]) -> str | None:
        if "label" not in params:
            return params.get("version")
        name, label = params["name"], params["label"]
        known = self.known(name)
        versions = self.repository.versions(name)
        if label in known:
            if known[label] not in versions and versions:
                raise ModelNotFoundError(
                    f"model '{name}' label '{label}' is version {known[label]}, which this"
                    f" server does not serve; it serves versions {versions}"
                )
            return known[label]
        if label in versions:  # a version number is its own label
            return str(label)
        if not versions:
            self.repository.get(name)  # the 404 (unknown) or 503 (loading) for the model
        names = sorted(known)
        raise ModelNotFoundError(
            f"model '{name}' has no label '{label}'; its labels are {names} and its served"
            f" versions {versions}{did_you_mean(label, names)}"
        )

    def known(self, name: str) -> dict[str, str]:
        """Label -> version: the registry's aliases, and ``canary`` for a canary served."""
        known = {k: str(v) for k, v in (self.labels(name) if self.labels else {}).items()}
        default = self.repository.default_version(name)
        if default is not None and "canary" not in known:
            try:
                with self.repository.acquire(name, default) as servable:
                    if isinstance(servable, CanaryServable):
                        known["canary"] = servable.candidate.version
            except LockgateError:  # swapped out meanwhile: no canary to name
                pass
        return known


async def error_response(request: Request | None, exc: Exception) -> Response:
    """The one place errors become HTTP: JSON ``{"error"}`` with the error's status."""
    if isinstance(exc, HTTPException):
        return JSON({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)
    status = getattr(exc, "status_code", 500) if isinstance(exc, LockgateError) else 500
    if status == 504:
        logger.warning("%s", exc)
    elif status >= 500 and status != 503:
        logger.error("request failed: %s", exc, exc_info=exc)
    body: dict[str, Any] = {"error": str(exc) or type(exc).__name__}
    if isinstance(exc, LockgateError) and exc.hint:
        body["hint"] = exc.hint
    if not isinstance(exc, LockgateError):
        body["error"] = f"internal error: {type(exc).__name__}: {exc}"
    return JSON(body, status_code=status, headers=getattr(exc, "headers", None))


class _CatchUnexpected:
    """Turn an exception escaping the app or a middleware into a JSON answer (its status if
    it is a LockgateError, else 500) instead of a dropped request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watch(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started or scope["type"] != "http":
                raise
            response = await error_response(None, exc)
            await response(scope, receive, send)


def serve(app: Starlette, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run ``app`` under uvicorn until interrupted (uvloop and httptools where installed;
    no access log line per request). What is loaded by now is frozen out of the garbage
    collector's full passes (see ``heap``)."""
    import sys

    import uvicorn

    from lockgate.serving.heap import freeze_loaded

    freeze_loaded()
    # The request log's writer and slow models' worker threads run Python beside the event
    # loop; the loop waits for the GIL up to the switch interval (5 ms by default) each time
    # it wants it back. 1 ms bounds what they can add to a request.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
