"""The model server: one Starlette app speaking the Open Inference Protocol V2.

Routes (``{v}`` optional as ``/versions/{v}``)::

    GET  /v2/health/live              200 while the process answers
    GET  /v2/health/ready             200 once a model is loaded, else 503
    GET  /v2                          server metadata
    GET  /v2/models/{name}[/versions/{v}]          model metadata
    GET  /v2/models/{name}[/versions/{v}]/ready    200, 404 unknown, 503 loading
    POST /v2/models/{name}[/versions/{v}]/infer    JSON or binary tensor data

Errors are JSON ``{"error": ...}``: LockgateErrors with their ``status_code`` (400, 404,
503), anything else 500 and logged; the server keeps serving either way.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

import lockgate
from lockgate.errors import InferenceRequestError, LockgateError
from lockgate.serving import oip_v2
from lockgate.serving.repository import ModelRepository
from lockgate.serving.servable import NUMERIC_DATATYPES, Servable, validate_columns

logger = logging.getLogger("lockgate.serving")


def create_app(repository: ModelRepository) -> Starlette:
    """Build the V2 app around ``repository``, which may be swapped into while serving."""

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        is_ready = repository.ready
        return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)

    async def server_metadata(request: Request) -> Response:
        return JSONResponse(
            {
                "name": "lockgate",
                "version": lockgate.__version__,
                "extensions": ["binary_tensor_data"],
            }
        )

    async def model_metadata(request: Request) -> Response:
        servable = _servable(repository, request)
        version = request.path_params.get("version")
        return JSONResponse(
            {
                "name": servable.name,
                "versions": [version] if version else repository.versions(servable.name),
                "platform": servable.platform,
                "inputs": [s.to_json() for s in servable.inputs],
                "outputs": [s.to_json() for s in servable.outputs],
            }
        )

    async def model_ready(request: Request) -> Response:
        _servable(repository, request)
        return JSONResponse({"name": request.path_params["name"], "ready": True})

    async def infer(request: Request) -> Response:
        servable = _servable(repository, request)
        body = await request.body()
        encoding = request.headers.get("content-encoding")
        header = request.headers.get(oip_v2.HEADER)
        content, header_length = await run_in_threadpool(
            infer_body, servable, body, header, encoding
        )
        if header_length is None:
            return Response(content, media_type="application/json")
        return Response(
            content,
            media_type="application/octet-stream",
            headers={oip_v2.HEADER: str(header_length)},
        )

    routes = []
    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        routes += [
            Route(prefix, model_metadata, methods=["GET"]),
            Route(prefix + "/ready", model_ready, methods=["GET"]),
            Route(prefix + "/infer", infer, methods=["POST"]),
        ]
    routes += [
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2", server_metadata, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={LockgateError: error_response, HTTPException: error_response},
    )
    app.add_middleware(_CatchUnexpected)
    return app


def infer_body(
    servable: Servable, body: bytes, header: str | None, encoding: str | None = None
) -> tuple[bytes, int | None]:
    """Decode, validate, predict, encode: all blocking work, so it runs in a thread."""
    body = _decompress(body, encoding)
    request = oip_v2.decode_request(body, oip_v2.parse_header_length(header, len(body)))
    columns = validate_columns(_columns(request, servable), servable.inputs)
    results = servable.predict(columns)
    return oip_v2.encode_response(
        servable.name, servable.version, _outputs(request, servable, results), request
    )


def _columns(request: oip_v2.InferRequest, servable: Servable) -> dict[str, np.ndarray]:
    specs = {spec.name: spec for spec in servable.inputs}
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


def _outputs(
    request: oip_v2.InferRequest, servable: Servable, results: dict[str, np.ndarray]
) -> list[oip_v2.Tensor]:
    names = list(results) if request.outputs is None else [o.name for o in request.outputs]
    datatypes = {spec.name: spec.datatype for spec in servable.outputs}
    tensors = []
    for name in names:
        if name not in results:
            raise InferenceRequestError(
                f"unknown output '{name}'; the model's outputs are {list(results)}"
            )
        array = np.asarray(results[name])
        datatype = datatypes.get(name) or _datatype_of(array)
        tensors.append(oip_v2.Tensor(name, datatype, list(array.shape), array))
    return tensors


def _datatype_of(array: np.ndarray) -> str:
    for name, dtype in oip_v2.DTYPES.items():
        if name != "BYTES" and array.dtype == dtype:
            return name
    return "BYTES"


def _decompress(body: bytes, encoding: str | None) -> bytes:
    try:
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
    except (OSError, zlib.error, EOFError) as exc:
        raise InferenceRequestError(f"body is not valid {encoding} data: {exc}") from None
    return body


def _servable(repository: ModelRepository, request: Request) -> Servable:
    return repository.get(request.path_params["name"], request.path_params.get("version"))


async def error_response(request: Request | None, exc: Exception) -> Response:
    """The one place errors become HTTP: JSON ``{"error"}`` with the error's status."""
    if isinstance(exc, HTTPException):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
    status = getattr(exc, "status_code", 500) if isinstance(exc, LockgateError) else 500
    if status >= 500:
        logger.error("request failed: %s", exc, exc_info=exc)
    body: dict[str, Any] = {"error": str(exc) or type(exc).__name__}
    if isinstance(exc, LockgateError) and exc.hint:
        body["hint"] = exc.hint
    if not isinstance(exc, LockgateError):
        body["error"] = f"internal error: {type(exc).__name__}: {exc}"
    return JSONResponse(body, status_code=status)


class _CatchUnexpected:
    """Turn an unexpected exception into a 500 JSON answer instead of a dropped request."""

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
    """Run ``app`` under uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning")
