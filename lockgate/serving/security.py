"""What keeps a hostile or careless client from hurting the server.

- ``BearerAuth``: every path but the health checks needs ``Authorization: Bearer <token>``
  when a token is configured (401 otherwise); the token is compared in constant time.
- ``BodyLimit``: a body larger than ``max_bytes`` is refused with 413, from its
  Content-Length before anything is read, and again while it streams (chunked uploads have
  no Content-Length), so the server never holds more than ``max_bytes`` of one body.
- ``decompress``: gzip/deflate bodies are inflated up to the same limit (a 10 KB zip bomb
  must not become 10 GB in memory).
- The errors (``UnauthorizedError``, ``RequestTooLargeError``, ... in ``lockgate.errors``)
  carry their HTTP status; the app's one error handler renders them.

Timeouts are applied in the app (``request_timeout_s``): 408 when the body does not arrive
in time, 504 when the model does not answer in time.
"""

from __future__ import annotations

import hmac
import zlib
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lockgate.errors import (  # the errors live in the one tree; re-exported for old imports
    InferenceRequestError,
    InferenceTimeoutError,
    RequestTimeoutError,
    RequestTooLargeError,
    UnauthorizedError,
)

#: Paths a load balancer or orchestrator probes without credentials.
OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready"})

__all__ = [
    "OPEN_PATHS",
    "BearerAuth",
    "BodyLimit",
    "InferenceTimeoutError",
    "RequestTimeoutError",
    "RequestTooLargeError",
    "UnauthorizedError",
    "decompress",
]


class BearerAuth:
    """Require ``Authorization: Bearer <token>`` on every HTTP path but ``OPEN_PATHS``."""

    def __init__(self, app: ASGIApp, *, token: str, on_reject: Any = None) -> None:
        self.app = app
        self.token = token.encode()
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS:
            if not self._authorized(scope):
                if self.on_reject is not None:
                    self.on_reject("unauthorized")
                raise UnauthorizedError(
                    "missing or wrong bearer token",
                    hint="send the header 'Authorization: Bearer <token>'",
                )
        await self.app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        for key, value in scope["headers"]:
            if key == b"authorization":
                scheme, _, given = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(
                    given.strip(), self.token
                )
        return False


class BodyLimit:
    """Refuse bodies over ``max_bytes``: by Content-Length up front, and while streaming."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, on_reject: Any = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            self._reject()
            raise self._error(f"Content-Length {declared}")
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    self._reject()
                    raise self._error(f"at least {received} bytes streamed")
            return message

        await self.app(scope, limited, send)

    def _reject(self) -> None:
        if self.on_reject is not None:
            self.on_reject("body_too_large")

    def _error(self, got: str) -> RequestTooLargeError:
        return RequestTooLargeError(
            f"request body too large: the limit is {self.max_bytes} bytes, got {got}",
            hint="send fewer rows per request, or raise max_body_bytes",
        )


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def decompress(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """Inflate a gzip or deflate body, refusing (413) to produce more than ``max_bytes``."""
    coding = (encoding or "identity").strip().lower()
    if coding == "identity":
        return body
    if coding not in ("gzip", "deflate"):
        raise InferenceRequestError(
            f"unsupported Content-Encoding {encoding!r}; expected gzip, deflate or identity"
        )
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if coding == "gzip" else zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise InferenceRequestError(f"body is not valid {coding} data: {exc}") from None
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise RequestTooLargeError(
            f"request body inflates to more than the limit of {max_bytes} bytes",
            hint="send fewer rows per request, or raise max_body_bytes",
        )
    if not inflater.eof:
        raise InferenceRequestError(f"body is not valid {coding} data: it ends early")
    if inflater.unused_data:
        raise InferenceRequestError(
            f"body has {len(inflater.unused_data)} bytes after the end of the {coding} data"
        )
    return out
