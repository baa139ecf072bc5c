"""Auth, body limits and timeouts, each against a real uvicorn with its own settings."""

from __future__ import annotations

import gzip
import json
import re
import socket
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
import tritonclient.http as triton

from lockgate.errors import ConfigError, InferenceRequestError
from lockgate.serving.app import create_app
from lockgate.serving.repository import ModelRepository
from lockgate.serving.security import RequestTooLargeError, decompress
from lockgate.serving.servable import TensorSpec

Serve = Callable[[Any], str]
ROW = {"bill_length_mm": 40.0, "flipper_length_mm": 195.0, "island": "Dream"}


def _v2_body(rows: int = 1) -> dict:
    return {
        "inputs": [
            {"name": "bill_length_mm", "datatype": "FP64", "shape": [rows], "data": [40.0] * rows},
            {
                "name": "flipper_length_mm",
                "datatype": "FP64",
                "shape": [rows],
                "data": [195.0] * rows,
            },
            {"name": "island", "datatype": "BYTES", "shape": [rows], "data": ["Dream"] * rows},
        ]
    }


def test_bearer_token_guards_everything_but_health(
    serve_app: Serve, repository: ModelRepository
) -> None:
    url = serve_app(create_app(repository, auth_token="s3cret"))
    good = {"Authorization": "Bearer s3cret"}
    with httpx.Client(base_url=url) as http:
        assert http.get("/v2/health/live").status_code == 200
        assert http.get("/v2/health/ready").status_code == 200
        for method, path in [
            ("GET", "/v2"),
            ("GET", "/v2/models/penguins"),
            ("POST", "/v2/models/penguins/infer"),
            ("POST", "/v1/models/penguins:predict"),
            ("GET", "/v1/models/penguins"),
            ("GET", "/metrics"),
            ("GET", "/no/such/path"),
        ]:
            for headers in [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}]:
                response = http.request(method, path, headers=headers)
                assert response.status_code == 401, (method, path, headers)
                assert response.json()["error"] == "missing or wrong bearer token"
                assert response.headers["www-authenticate"].startswith("Bearer")
        answer = http.post("/v2/models/penguins/infer", json=_v2_body(), headers=good)
        assert answer.status_code == 200
        predict = http.post("/v1/models/penguins:predict", json={"instances": [ROW]}, headers=good)
        assert predict.json()["predictions"][0]["predicted"] == "Chinstrap"
        assert http.get("/metrics", headers=good).status_code == 200
    client = triton.InferenceServerClient(url.removeprefix("http://"))
    assert client.is_server_live()
    assert client.get_model_metadata("penguins", headers=good)["name"] == "penguins"


def test_body_over_the_limit_is_413_by_content_length(
    serve_app: Serve, repository: ModelRepository
) -> None:
    url = serve_app(create_app(repository, max_body_bytes=2_000))
    with httpx.Client(base_url=url) as http:
        assert http.post("/v2/models/penguins/infer", json=_v2_body(5)).status_code == 200
        for path in ["/v2/models/penguins/infer", "/v1/models/penguins:predict"]:
            response = http.post(path, content=b" " * 2_001)
            assert response.status_code == 413
            assert "the limit is 2000 bytes, got Content-Length 2001" in response.json()["error"]
        assert http.post("/v2/models/penguins/infer", json=_v2_body(5)).status_code == 200


def test_streamed_body_is_cut_off_without_reading_it_all(
    serve_app: Serve, repository: ModelRepository
) -> None:
    """A chunked upload has no Content-Length: the server answers 413 once the limit is
    passed, while the client has not even finished sending (it never will here)."""
    url = serve_app(create_app(repository, max_body_bytes=10_000))
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(
            b"POST /v2/models/penguins/infer HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b" " * 4_096
        for _ in range(4):  # 16 KiB of an endless body
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65_536)
            if not data:
                break
            answer += data
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert b"at least" in body and b"bytes streamed" in body
    with httpx.Client(base_url=url) as http:
        assert http.post("/v2/models/penguins/infer", json=_v2_body()).status_code == 200


def test_gzip_bomb_is_413_and_bad_encodings_are_400(
    serve_app: Serve, repository: ModelRepository
) -> None:
    url = serve_app(create_app(repository, max_body_bytes=100_000))
    bomb = gzip.compress(b"[" + b" " * 10_000_000 + b"]")
    assert len(bomb) < 100_000
    with httpx.Client(base_url=url) as http:
        for path in ["/v2/models/penguins/infer", "/v1/models/penguins:predict"]:
            response = http.post(path, content=bomb, headers={"Content-Encoding": "gzip"})
            assert response.status_code == 413
            assert "inflates to more than the limit" in response.json()["error"]
        response = http.post(
            "/v2/models/penguins/infer", content=b"{}", headers={"Content-Encoding": "br"}
        )
        assert response.status_code == 400 and "unsupported Content-Encoding" in response.text
        small = gzip.compress(json.dumps(_v2_body()).encode())
        ok = http.post(
            "/v2/models/penguins/infer", content=small, headers={"Content-Encoding": "gzip"}
        )
        assert ok.status_code == 200


@pytest.mark.parametrize(
    ("body", "encoding", "match"),
    [
        (b"not gzip", "gzip", "not valid gzip data"),
        (gzip.compress(b"{}", mtime=0)[:-6], "gzip", "ends early"),
        (gzip.compress(b"{}", mtime=0) + b"tail", "gzip", "4 bytes after the end"),
    ],
)
def test_decompress_errors(body: bytes, encoding: str, match: str) -> None:
    with pytest.raises(InferenceRequestError, match=match):
        decompress(body, encoding, 1_000)


def test_decompress_limit_and_pass_through() -> None:
    assert decompress(b"{}", None, 1) == b"{}"
    assert decompress(gzip.compress(b"x" * 10), "GZIP", 10) == b"x" * 10
    with pytest.raises(RequestTooLargeError, match="more than the limit of 9 bytes"):
        decompress(gzip.compress(b"x" * 10), "gzip", 9)


class Slow:
    """A servable that answers only when the test lets it."""

    name, version, platform = "slow", "1", "test"
    inputs = [TensorSpec("x", "FP64", [-1])]
    outputs = [TensorSpec("y", "FP64", [-1])]

    def __init__(self) -> None:
        self.release = threading.Event()

    def predict(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.release.wait(10)
        return {"y": columns["x"]}


def test_slow_model_is_504_and_server_keeps_serving(serve_app: Serve) -> None:
    slow = Slow()
    app = create_app(ModelRepository([slow]), request_timeout_s=0.2)
    url = serve_app(app)
    body = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]}]}
    try:
        with httpx.Client(base_url=url) as http:
            response = http.post("/v2/models/slow/infer", json=body)
            assert response.status_code == 504
            assert "did not answer within 0.2 s" in response.json()["error"]
            v1 = http.post("/v1/models/slow:predict", json={"instances": [1.0]})
            assert v1.status_code == 504
            assert http.get("/v2/health/live").status_code == 200
            slow.release.set()
            assert http.post("/v2/models/slow/infer", json=body).status_code == 200
    finally:
        slow.release.set()


def _read_response(sock: socket.socket) -> bytes:
    """The head and the body may arrive in separate packets: read the head, then its body."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65_536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head, re.IGNORECASE).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += sock.recv(65_536)
    return head + b"\r\n\r\n" + body


def test_slow_body_is_408(serve_app: Serve) -> None:
    url = serve_app(create_app(ModelRepository([Slow()]), request_timeout_s=0.3))
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(
            b"POST /v2/models/slow/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
        )
        answer = _read_response(sock)
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"did not arrive within 0.3 s" in answer


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"auth_token": ""}, "'auth_token' parameter of create_app must not be empty"),
        ({"max_body_bytes": 0}, "'max_body_bytes' parameter of create_app must be a positive"),
        ({"request_timeout_s": -1.0}, "'request_timeout_s' parameter of create_app must be"),
    ],
)
def test_create_app_checks_its_settings(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        create_app(ModelRepository(), **kwargs)
