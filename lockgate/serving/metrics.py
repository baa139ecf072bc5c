"""Prometheus metrics for the model server, one registry per app.

Each ``ServingMetrics`` owns its ``CollectorRegistry`` instead of using prometheus_client's
global one, so several apps in one process (tests, a canary next to production) never
clash over "duplicated timeseries". Everything that wants to count something (the app,
a batching wrapper) calls the ``observe_*`` methods; nobody touches the collectors.

Names (``protocol`` is ``v2`` or ``v1``; ``model``/``version`` are the *resolved*
servable's, or ``""`` when the request named no model the server holds, so a client cannot
mint a new time series per made-up model name)::

    lockgate_requests_total{model,version,protocol,status}        counter
    lockgate_request_duration_seconds{model,version,protocol}     histogram
    lockgate_request_rows{model,version,protocol}                 histogram (rows per request)
    lockgate_batch_size{model,version}                            histogram (rows per model call)
    lockgate_request_errors_total{model,version,protocol,error}   counter (status >= 400)
    lockgate_rejected_requests_total{reason}                      counter (before routing)
    lockgate_ready                                                gauge, 1 once a model is loaded
    lockgate_model_versions{model}                                gauge, versions loaded

The registry follower (never a request) reports what each model serves, per ``role``
(``primary``, or ``canary`` when a canary alias is served next to it)::

    lockgate_serving_version{model,role}                  gauge, the version answering
    lockgate_registry_version{model,role}                 gauge, the version the registry names
    lockgate_serving_registry_mismatch{model,role}        gauge, 1 while the two differ
    lockgate_model_load_failures_total{model,version,reason}  counter; reason is integrity
                                                          (files changed), load or warm-up
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from lockgate.serving.repository import ModelRepository

#: Rows per request or per batch: powers of two up to 8192.
ROW_BUCKETS = tuple(float(2**i) for i in range(14))
#: Seconds: from a cached tiny model (1 ms) to a slow one (30 s).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ServingMetrics:
    """The server's counters and histograms, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._requests = Counter(
            "lockgate_requests",
            "Inference requests answered, by status code.",
            ["model", "version", "protocol", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "lockgate_request_duration_seconds",
            "Time from routing an inference request to its answer.",
            ["model", "version", "protocol"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._rows = Histogram(
            "lockgate_request_rows",
            "Rows (instances) per answered inference request.",
            ["model", "version", "protocol"],
            buckets=ROW_BUCKETS,
            registry=self.registry,
        )
        self._batches = Histogram(
            "lockgate_batch_size",
            "Rows per call into a model (one request, or a server-side batch of several).",
            ["model", "version"],
            buckets=ROW_BUCKETS,
            registry=self.registry,
        )
        self._errors = Counter(
            "lockgate_request_errors",
            "Inference requests that failed, by error class.",
            ["model", "version", "protocol", "error"],
            registry=self.registry,
        )
        self._rejected = Counter(
            "lockgate_rejected_requests",
            "Requests refused before reaching a model (auth, body size).",
            ["reason"],
            registry=self.registry,
        )

        self._serving = Gauge(
            "lockgate_serving_version",
            "The version of a model that answers requests, by role (primary, canary).",
            ["model", "role"],
            registry=self.registry,
        )
        self._wanted = Gauge(
            "lockgate_registry_version",
            "The version the registry names for a model's role (its alias, or the canary).",
            ["model", "role"],
            registry=self.registry,
        )
        self._mismatch = Gauge(
            "lockgate_serving_registry_mismatch",
            "1 while the version served differs from the registry's (a version that did"
            " not load, a start-up fallback), else 0.",
            ["model", "role"],
            registry=self.registry,
        )
        self._load_failures = Counter(
            "lockgate_model_load_failures",
            "Versions that failed to load, by reason: integrity (files changed after the"
            " push), load, warm-up.",
            ["model", "version", "reason"],
            registry=self.registry,
        )

    def observe_request(
        self,
        model: str,
        version: str,
        protocol: str,
        status: int,
        seconds: float,
        rows: int,
        *,
        error: str | None = None,
    ) -> None:
        """Count one inference request; ``rows`` is 0 when it failed before prediction."""
        self._requests.labels(model, version, protocol, str(status)).inc()
        self._latency.labels(model, version, protocol).observe(seconds)
        if rows:
            self._rows.labels(model, version, protocol).observe(rows)
        if status >= 400:
            self._errors.labels(model, version, protocol, error or f"HTTP {status}").inc()

    def observe_batch(self, model: str, version: str, rows: int) -> None:
        """Record one call into a model with ``rows`` rows."""
        self._batches.labels(model, version).observe(rows)

    def observe_rejection(self, reason: str) -> None:
        """Count a request refused before routing (``unauthorized``, ``body_too_large``)."""
        self._rejected.labels(reason).inc()

    def observe_serving(
        self, model: str, role: str, served: int | None, wanted: int | None
    ) -> None:
        """What ``model`` serves in ``role`` and what the registry names (``None``: nothing);
        a role with neither is removed from the scrape."""
        labels = (model, role)
        _set(self._serving, labels, served)
        _set(self._wanted, labels, wanted)
        neither = served is None and wanted is None
        _set(self._mismatch, labels, None if neither else served != wanted)

    def observe_load_failure(self, model: str, version: str, reason: str) -> None:
        """Count a version that did not load (``reason``: integrity, load, warm-up)."""
        self._load_failures.labels(model, version, reason).inc()

    def watch(self, repository: ModelRepository) -> None:
        """Report readiness and loaded versions of ``repository`` at every scrape."""
        self.registry.register(_RepositoryCollector(repository))

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


def _set(gauge: Gauge, labels: tuple[str, ...], value: float | None) -> None:
    if value is not None:
        gauge.labels(*labels).set(float(value))
        return
    try:
        gauge.remove(*labels)
    except KeyError:  # never set
        pass


class _RepositoryCollector(Collector):
    """Reads the repository when scraped, so a hot reload shows without bookkeeping."""

    def __init__(self, repository: ModelRepository) -> None:
        self.repository = repository

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "lockgate_ready",
            "1 while at least one model is loaded, else 0.",
            value=1.0 if self.repository.ready else 0.0,
        )
        versions = GaugeMetricFamily(
            "lockgate_model_versions", "Versions of a model loaded.", labels=["model"]
        )
        for name in self.repository.names():
            versions.add_metric([name], float(len(self.repository.versions(name))))
        yield versions
