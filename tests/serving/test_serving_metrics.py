"""Prometheus /metrics over real HTTP, read back with prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from lockgate.serving.app import create_app
from lockgate.serving.metrics import ServingMetrics
from lockgate.serving.repository import ModelRepository
from lockgate.serving.servable import PipelineServable

Serve = Callable[[Any], str]
ROW = {"bill_length_mm": 40.0, "flipper_length_mm": 195.0, "island": "Dream"}


def _samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_requests_latency_rows_and_errors_per_model_and_version(
    serve_app: Serve, repository: ModelRepository
) -> None:
    url = serve_app(create_app(repository))
    v2 = {"model": "penguins", "version": "2", "protocol": "v2"}
    v1 = {"model": "penguins", "version": "1", "protocol": "v1"}
    with httpx.Client(base_url=url) as http:
        for rows in (1, 3):
            body = {"instances": [ROW] * rows}
            assert http.post("/v1/models/penguins/versions/1:predict", json=body).is_success
        body = {
            "inputs": [
                {"name": "bill_length_mm", "datatype": "FP64", "shape": [5], "data": [40.0] * 5},
                {"name": "flipper_length_mm", "datatype": "FP64", "shape": [5], "data": [1.0] * 5},
                {"name": "island", "datatype": "BYTES", "shape": [5], "data": ["Dream"] * 5},
            ]
        }
        assert http.post("/v2/models/penguins/infer", json=body).is_success
        assert http.post("/v2/models/penguins/infer", content=b"{").status_code == 400
        assert http.post("/v2/models/made-up/infer", content=b"{}").status_code == 404
        scrape = http.get("/metrics")
    assert scrape.headers["content-type"].startswith("text/plain; version=")
    samples = _samples(scrape.text)
    assert _value(samples, "lockgate_requests_total", **v1, status="200") == 2
    assert _value(samples, "lockgate_requests_total", **v2, status="200") == 1
    assert _value(samples, "lockgate_requests_total", **v2, status="400") == 1
    assert _value(samples, "lockgate_request_duration_seconds_count", **v2) == 2
    assert _value(samples, "lockgate_request_duration_seconds_sum", **v2) > 0
    assert _value(samples, "lockgate_request_rows_sum", **v1) == 4
    assert _value(samples, "lockgate_request_rows_bucket", **v1, le="2.0") == 1
    assert _value(samples, "lockgate_request_rows_sum", **v2) == 5
    assert _value(samples, "lockgate_batch_size_count", model="penguins", version="1") == 2
    assert _value(samples, "lockgate_batch_size_sum", model="penguins", version="2") == 5
    errors = "lockgate_request_errors_total"
    assert _value(samples, errors, **v2, error="InferenceRequestError") == 1
    # an unknown model name is not turned into a label of its own
    assert (
        _value(samples, errors, model="", version="", protocol="v2", error="ModelNotFoundError")
        == 1
    )
    assert not any("made-up" in str(labels) for _, labels in samples)
    assert _value(samples, "lockgate_ready") == 1
    assert _value(samples, "lockgate_model_versions", model="penguins") == 2


def test_readiness_is_false_until_a_model_is_loaded(
    serve_app: Serve, penguin_servable: PipelineServable
) -> None:
    repository = ModelRepository()
    url = serve_app(create_app(repository))
    with httpx.Client(base_url=url) as http:
        assert http.get("/v2/health/ready").status_code == 503
        assert http.get("/v2/health/live").status_code == 200
        assert _value(_samples(http.get("/metrics").text), "lockgate_ready") == 0
        repository.set(penguin_servable)
        assert http.get("/v2/health/ready").json() == {"ready": True}
        samples = _samples(http.get("/metrics").text)
        assert _value(samples, "lockgate_ready") == 1
        assert _value(samples, "lockgate_model_versions", model="penguins") == 1


def test_rejections_before_routing_are_counted(
    serve_app: Serve, repository: ModelRepository
) -> None:
    url = serve_app(create_app(repository, auth_token="t", max_body_bytes=10))
    auth = {"Authorization": "Bearer t"}
    with httpx.Client(base_url=url) as http:
        assert http.get("/metrics").status_code == 401
        assert (
            http.post("/v2/models/penguins/infer", content=b"x" * 11, headers=auth).status_code
            == 413
        )
        samples = _samples(http.get("/metrics", headers=auth).text)
    assert _value(samples, "lockgate_rejected_requests_total", reason="unauthorized") == 1
    assert _value(samples, "lockgate_rejected_requests_total", reason="body_too_large") == 1


def test_each_app_has_its_own_registry(repository: ModelRepository) -> None:
    """Two apps in one process (tests, a canary) must not clash over the same names."""
    first, second = create_app(repository), create_app(repository)
    assert first.state.metrics.registry is not second.state.metrics.registry
    first.state.metrics.observe_request("m", "1", "v2", 200, 0.01, 2)
    assert "lockgate_requests_total" not in _names_with_values(second.state.metrics)


def _names_with_values(metrics: ServingMetrics) -> set[str]:
    return {
        s.name
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
        if s.value
    }


def test_observe_batch_is_for_other_parts_too() -> None:
    """A batching wrapper reports the batches it makes through the same object."""
    metrics = ServingMetrics()
    metrics.observe_batch("m", "1", 32)
    metrics.observe_batch("m", "1", 8)
    samples = _samples(metrics.render().decode())
    assert _value(samples, "lockgate_batch_size_sum", model="m", version="1") == 40
    assert _value(samples, "lockgate_batch_size_count", model="m", version="1") == 2
