"""The server follows the registry: a newly promoted version takes traffic without a failed
request, and a version that cannot load never replaces one that works.

``RegistryFollower`` polls each served model's aliases. When the version a model's policy
names changes it, in its own thread and off the request path:

1. loads the version's ``PushedModel`` from the registry (the folder's fingerprint and the
   model file's sha256 checked against the store before anything is deserialised),
2. warms it up on the requests recorded with it (``samples.json``, else typical values from
   its transform) and checks every answer has one row per request row,
3. swaps it in with one ``ModelRepository.replace`` (requests running keep the old version,
   the next request gets the new one),
4. releases the old version once its in-flight requests have finished.

Steps 1 and 2 are ``serving/promotion.py``'s, the check every alias move passes first. A
failure in 1 or 2 is logged, counted in ``/metrics`` by reason (integrity, load, warm-up)
and kept in ``status()``; the old version keeps serving and the failed version is retried
only after ``retry_failed_after_s``. When nothing of a model serves yet (the server starts)
and its alias names a version that does not load, the newest earlier version of that alias
that loads is served instead, loudly, while the follower keeps following the registry.

A model's policy is its production alias (``name``), an alias (``name@staging``), the
newest blessed version (``name@latest``) or a pinned number (``name@3``). Under an alias
policy the ``canary`` alias, when it points elsewhere, is served next to it
(``CanaryServable``).

What each model serves, next to what the registry names, goes to ``/metrics`` and to the
store's ``serving_status`` (at each change and every ``status_heartbeat_s``), where
``lockgate models list`` shows a server that disagrees with the registry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from lockgate.errors import ConfigError, LockgateError, ModelError
from lockgate.serving.batching import BatchingServable, BatchObserver
from lockgate.serving.canary import CanaryServable
from lockgate.serving.heap import refreeze
from lockgate.serving.promotion import check_warm_up, failure_reason, load_files
from lockgate.serving.repository import ModelRepository
from lockgate.serving.request_log import LoggingServable, RequestLogger
from lockgate.serving.servable import (
    PipelineServable,
    Servable,
    ServableWrapper,
    ServingChain,
)

if TYPE_CHECKING:
    from lockgate.metadata.serving_status import ServerId, ServingRow

logger = logging.getLogger("lockgate.serving.reload")

PRODUCTION = "production"
CANARY = "canary"
LATEST = "latest"


@dataclass(frozen=True)
class ModelPolicy:
    """Which version of a model to serve: an alias, ``latest`` blessed, or a number."""

    name: str
    version: str = PRODUCTION

    @classmethod
    def parse(cls, text: str | ModelPolicy) -> ModelPolicy:
        """``name``, ``name@alias``, ``name@latest`` or ``name@3``."""
        if isinstance(text, ModelPolicy):
            return text
        name, _, version = text.strip().partition("@")
        if not name or (_ and not version):
            raise ConfigError(
                f"a served model is NAME or NAME@VERSION (an alias, 'latest' or a number);"
                f" got {text!r}"
            )
        return cls(name, version or PRODUCTION)

    @property
    def follows_alias(self) -> bool:
        return self.version != LATEST and not self.version.isdigit()

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass
class ServingOptions:
    """How each loaded version is wrapped and how swaps behave (from ``[serve]`` settings)."""

    batch_max_size: int = 64
    batch_max_wait_ms: float = 0.0
    canary_percent: float = 10.0
    canary_shadow: bool = False
    release_grace_s: float = 1.0
    release_timeout_s: float = 120.0
    retry_failed_after_s: float = 60.0
    status_heartbeat_s: float = 30.0


class FollowerMetrics(BatchObserver, Protocol):
    """What the follower reports to (``ServingMetrics`` is one): batch sizes through each
    version's batcher, what each model serves, and every version that failed to load."""

    def observe_serving(
        self, model: str, role: str, served: int | None, wanted: int | None
    ) -> None: ...

    def observe_load_failure(self, model: str, version: str, reason: str) -> None: ...


@dataclass
class ModelStatus:
    """What the follower knows about one model, for ``/metrics``, the UI and the CLI."""

    policy: str
    serving: int | None = None
    canary: int | None = None
    canary_percent: float | None = None
    canary_shadow: bool = False
    swaps: int = 0
    failures: int = 0
    last_error: str | None = None
    last_load_s: float | None = None
    last_swap_at: float | None = None
    wanted: int | None = None  # the registry's version for ``serving`` ...
    wanted_canary: int | None = None  # ... and for ``canary``
    failed_version: int | None = None  # the last version that did not load, and why
    failure_reason: str | None = None
    fallback_from: int | None = None  # serving an earlier version: this one did not load

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def fallback_warning(self, name: str) -> str | None:
        """One line for the operator while something else than the registry's version
        stands in because that one does not load, else None."""
        alias = self.policy.partition("@")[2]
        said = f"model '{name}' version {self.failed_version} does not load: "
        why = f"({self.failure_reason}): {(self.last_error or '').removeprefix(said)}"
        if self.fallback_from is not None:
            return (
                f"model '{name}': {alias} version {self.fallback_from} does not load {why};"
                f" serving version {self.serving} instead, the newest earlier {alias} version"
                " that loads, until a version that loads is promoted"
            )
        if self.canary is None and self.wanted_canary is not None:
            if self.failed_version == self.wanted_canary:
                return (
                    f"model '{name}': canary version {self.wanted_canary} does not load {why};"
                    f" serving {alias} version {self.serving} without a canary"
                )
        return None


@dataclass
class _Loaded:
    """One loaded version: the plain servable and its wrapped forms."""

    version: int
    base: Servable
    batched: ServingChain
    served: Servable
    artifact: Any
    properties: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        self.batched.close()


@dataclass(frozen=True)
class _Wanted:
    primary: int
    canary: int | None
    percent: float
    shadow: bool


class RegistryFollower:
    """Keeps ``repository`` serving what the registry says, polling every few seconds."""

    def __init__(
        self,
        store_url: str,
        repository: ModelRepository,
        models: Sequence[str | ModelPolicy] | None = None,
        poll_interval_s: float = 5.0,
        *,
        options: ServingOptions | None = None,
        request_logger: RequestLogger | None = None,
        metrics: FollowerMetrics | None = None,
        server: ServerId | None = None,
    ) -> None:
        """``metrics``: the app's ``ServingMetrics``, handed to each version's batcher so
        that ``lockgate_batch_size`` shows the merged batches, and told what each model
        serves. ``server``: who writes ``serving_status`` (default: this host and pid)."""
        self.store_url = store_url
        self.repository = repository
        self.policies = [ModelPolicy.parse(m) for m in models or []]
        names = [p.name for p in self.policies]
        if len(set(names)) != len(names):
            raise ConfigError(f"a model may be served under one policy only; got {models}")
        self.poll_interval_s = poll_interval_s
        self.options = options or ServingOptions()
        self.request_logger = request_logger
        self.metrics = metrics
        self._store: Any = None
        self._loaded: dict[str, dict[int, _Loaded]] = {}
        self._wanted: dict[str, _Wanted] = {}
        self._failed: dict[tuple[str, int], float] = {}
        self._aliases: dict[str, dict[str, int]] = {}  # as of the last poll
        self._status: dict[str, ModelStatus] = {}
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._releases: list[threading.Thread] = []
        if server is None:
            from lockgate.metadata.serving_status import ServerId

            server = ServerId.here()
        self.server = server
        self._started_at = datetime.now(UTC)
        self._reported: list[ServingRow] | None = None
        self._reported_at = 0.0
        self._report_failed = False

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Poll in a background thread until ``stop``."""
        if self._thread is not None:
            return
        for policy in self.policies:
            if policy.name not in self.repository.names():
                self.repository.expect(policy.name)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="lockgate-follower", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop polling, wait for pending releases, and close every loaded version."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        for thread in list(self._releases):
            thread.join(timeout_s)
        with self._poll_lock:
            for versions in self._loaded.values():
                for loaded in versions.values():
                    loaded.close()
            self._loaded.clear()
            if self._store is not None:
                if self._reported is not None:
                    self._report(forget=True)
                self._store.close()
                self._store = None

    def status(self) -> dict[str, dict[str, Any]]:
        with self._poll_lock:
            return {name: s.to_dict() for name, s in sorted(self._status.items())}

    def warnings(self) -> dict[str, str]:
        """{model: one line} for each model served by a stand-in because the version the
        registry names does not load (see ``ModelStatus.fallback_warning``)."""
        with self._poll_lock:
            lines = {name: s.fallback_warning(name) for name, s in sorted(self._status.items())}
        return {name: line for name, line in lines.items() if line}

    def aliases(self, name: str) -> dict[str, int]:
        """A served model's registry aliases as of the last poll (the server's labels)."""
        return dict(self._aliases.get(name, {}))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.poll_interval_s)

    # --- one poll -------------------------------------------------------------------------

    def poll_once(self, *, log_errors: bool = True) -> dict[str, str | None]:
        """Bring every model in line with the registry now; {model: error or None}.

        ``log_errors=False`` leaves reporting to the caller (``lockgate serve`` at start)."""
        with self._poll_lock:
            try:
                registry = self._registry()
                # Serving "every model": those with a production version; others wait quietly.
                policies = self.policies or [
                    ModelPolicy(n) for n in registry.models() if PRODUCTION in registry.aliases(n)
                ]
            except Exception as exc:  # noqa: BLE001 - the store may be down; keep serving
                if log_errors:
                    logger.error("registry follower: cannot read the registry: %s", exc)
                return {"*": str(exc)}
            results: dict[str, str | None] = {}
            for policy in policies:
                status = self._status.setdefault(policy.name, ModelStatus(str(policy)))
                try:
                    fell_back = self._sync(registry, policy, status)
                    results[policy.name] = None
                    warning = status.fallback_warning(policy.name) if fell_back else None
                    if warning and log_errors:
                        logger.warning("%s", warning)
                except Exception as exc:  # noqa: BLE001 - one model's trouble is not another's
                    message = (
                        f"{type(exc).__name__}: {exc}"
                        if not isinstance(exc, LockgateError)
                        else str(exc)
                    )
                    status.failures += 1
                    status.last_error = message
                    results[policy.name] = message
                    if not log_errors:
                        continue
                    logger.error(
                        "model '%s': keeping version %s; %s", policy.name, status.serving, message
                    )
            self._report()
            return results

    def _report(self, *, forget: bool = False) -> None:
        """Tell ``/metrics`` and the store's ``serving_status`` what each model serves next
        to what the registry names: the store when that changes and every
        ``status_heartbeat_s`` (``forget``: remove this server's rows, it stops)."""
        from lockgate.metadata import serving_status as ss

        rows: list[ServingRow] = []
        for name, status in sorted(self._status.items()):
            alias = status.policy.partition("@")[2]
            canary_failed = (
                status.wanted_canary not in (None, status.wanted)
                and status.failed_version == status.wanted_canary
            )
            for role, role_alias, served, wanted, failed in (
                (ss.PRIMARY, alias, status.serving, status.wanted, not canary_failed),
                (ss.CANARY, CANARY, status.canary, status.wanted_canary, canary_failed),
            ):
                if self.metrics is not None:
                    self.metrics.observe_serving(name, role, served, wanted)
                if served is None and wanted is None:
                    continue
                failure = status.failed_version is not None and failed
                rows.append(
                    ss.ServingRow(
                        name,
                        role,
                        role_alias,
                        wanted,
                        served,
                        status.failed_version if failure else None,
                        status.failure_reason if failure else None,
                        status.last_error if failure else None,
                    )
                )
        if self._store is None:
            return
        heartbeat_s = self.options.status_heartbeat_s
        due = time.monotonic() - self._reported_at >= heartbeat_s
        if not forget and rows == self._reported and not due:
            return
        try:
            if forget:
                ss.forget(self._store, self.server)
            else:
                if self._reported is None:
                    ss.forget_gone(self._store, self.server)
                ss.report(
                    self._store,
                    self.server,
                    rows,
                    heartbeat_s=heartbeat_s,
                    started_at=self._started_at,
                )
        except Exception as exc:  # noqa: BLE001 - the status is for people; serving goes on
            if not self._report_failed:
                logger.warning("cannot record what this server serves in the store: %s", exc)
            self._report_failed = True
            return
        self._report_failed = False
        self._reported, self._reported_at = rows, time.monotonic()

    def _registry(self) -> Any:
        from lockgate.metadata.registry import Registry
        from lockgate.metadata.store import SqlMetadataStore

        if self._store is None:
            self._store = SqlMetadataStore(self.store_url)
        return Registry(self._store)

    def _sync(self, registry: Any, policy: ModelPolicy, status: ModelStatus) -> bool:
        """Serve what the registry names for ``policy``; True when an earlier version had
        to stand in (nothing served yet, and the named version does not load)."""
        wanted = self._resolve(registry, policy)
        status.wanted, status.wanted_canary = wanted.primary, wanted.canary
        current = self._wanted.get(policy.name)
        try:
            swapped = wanted == current or self._swap(registry, policy.name, wanted, status)
        except Exception as exc:
            if current is not None or not policy.follows_alias:
                raise
            self._fall_back(registry, policy, wanted, status, exc)
            return True
        if swapped:  # serving what the registry names: no failure stands any more
            status.fallback_from = status.failed_version = status.failure_reason = None
        return False

    def _fall_back(
        self,
        registry: Any,
        policy: ModelPolicy,
        wanted: _Wanted,
        status: ModelStatus,
        error: Exception,
    ) -> None:
        """Nothing of the model serves and the registry's version did not load: serve the
        newest earlier version of the alias that loads (the primary alone when only the
        canary failed); raise ``error``, with what else failed, when none loads."""
        name = policy.name
        failed, reason = status.failed_version, status.failure_reason
        message = (
            str(error) if isinstance(error, LockgateError) else f"{type(error).__name__}: {error}"
        )
        history = registry.alias_history(name, policy.version)
        canary_failed = wanted.canary is not None and failed == wanted.canary
        candidates = [wanted.primary] if canary_failed else []
        candidates += [entry["version"] for entry in history if entry["version"] is not None]
        tried: list[str] = []
        for number in dict.fromkeys(candidates):
            if number == failed or self._failed_recently(name, number):
                continue
            try:
                self._swap(registry, name, _Wanted(number, None, 0.0, False), status)
            except Exception as exc:  # noqa: BLE001 - the next one may load
                tried.append(str(exc) if isinstance(exc, LockgateError) else repr(exc))
                continue
            status.fallback_from = None if canary_failed else wanted.primary
            status.last_error = message
            status.failed_version, status.failure_reason = failed, reason
            return
        status.failed_version, status.failure_reason = failed, reason
        if not tried:
            raise error
        raise ModelError(
            f"{message}; no earlier '{policy.version}' version loads either: {'; '.join(tried)}",
            hint=error.hint if isinstance(error, LockgateError) else None,
        ) from error

    def _swap(self, registry: Any, name: str, wanted: _Wanted, status: ModelStatus) -> bool:
        """Load what ``wanted`` needs and swap it in, in one step; raise if any fails,
        return False when one failed too recently to try again."""
        loaded = self._loaded.setdefault(name, {})
        needed = [wanted.primary] + ([wanted.canary] if wanted.canary is not None else [])
        if any(self._failed_recently(name, n) for n in needed if n not in loaded):
            return False  # reported when it failed; tried again after retry_failed_after_s
        started = time.perf_counter()
        fresh: dict[int, _Loaded] = {}
        try:
            for number in needed:
                if number not in loaded:
                    fresh[number] = self._load(registry, name, number, status)
        except Exception:
            for item in fresh.values():
                item.close()
            raise
        loaded.update(fresh)
        load_s = time.perf_counter() - started
        primary = loaded[wanted.primary]
        servables: list[Servable] = [primary.served]
        default = str(wanted.primary)
        if wanted.canary is not None:
            candidate = loaded[wanted.canary]
            composite = CanaryServable(
                primary.served,
                candidate.batched if wanted.shadow else candidate.served,
                wanted.percent,
                shadow=wanted.shadow,
                on_shadow=self._shadow_hook(candidate) if wanted.shadow else None,
            )
            servables = [composite, candidate.served]
        retired = self.repository.replace(name, servables, default=default)
        unused = [item for number, item in loaded.items() if number not in needed]
        for item in unused:
            del loaded[item.version]
        self._wanted[name] = wanted
        status.serving, status.canary = wanted.primary, wanted.canary
        status.canary_percent = wanted.percent if wanted.canary is not None else None
        status.canary_shadow = wanted.shadow and wanted.canary is not None
        status.swaps += 1
        status.last_error = None
        status.last_load_s = load_s
        status.last_swap_at = time.time()
        logger.info(
            "model '%s': now serving version %s%s (loaded and warmed up in %.2fs)",
            name,
            wanted.primary,
            f", canary {wanted.canary} at {wanted.percent}%" if wanted.canary else "",
            load_s,
        )
        if retired or unused:  # the first load retires nothing: no thread to wait out
            thread = threading.Thread(
                target=self._release, args=(retired, unused), name=f"lockgate-release-{name}"
            )
            self._releases = [t for t in self._releases if t.is_alive()] + [thread]
            thread.start()
        return True

    def _resolve(self, registry: Any, policy: ModelPolicy) -> _Wanted:
        aliases = registry.aliases(policy.name)
        self._aliases[policy.name] = dict(aliases)
        if policy.version == LATEST:
            primary = registry.latest(policy.name).version
        elif policy.version.isdigit():
            primary = int(policy.version)
            registry.get(policy.name, primary)  # a clear error when the pin does not exist
        elif policy.version in aliases:
            primary = aliases[policy.version]
        else:
            raise ModelError(
                f"model '{policy.name}' has no alias '{policy.version}' (aliases are"
                f" {sorted(aliases)})",
                hint=f"promote a version: lockgate models promote {policy.name} N",
            )
        canary = aliases.get(CANARY) if policy.follows_alias else None
        if canary is None or canary == primary:
            return _Wanted(primary, None, 0.0, False)
        properties = registry.get(policy.name, canary).properties
        percent = float(properties.get("canary_percent", self.options.canary_percent))
        shadow = bool(properties.get("canary_shadow", self.options.canary_shadow))
        return _Wanted(primary, canary, percent, shadow)

    def _failed_recently(self, name: str, number: int) -> bool:
        failed_at = self._failed.get((name, number))
        return (
            failed_at is not None
            and time.monotonic() - failed_at < self.options.retry_failed_after_s
        )

    def _load(self, registry: Any, name: str, number: int, status: ModelStatus) -> _Loaded:
        """Load and warm up one registry version; remember a failure for the retry delay
        and count it by reason."""
        try:
            version = registry.get(name, number)
            base = load_files(name, version)
            try:
                check_warm_up(base, version)
            except BaseException:
                base.close()
                raise
        except Exception as exc:
            self._failed[(name, number)] = time.monotonic()
            status.failed_version, status.failure_reason = number, failure_reason(exc)
            if self.metrics is not None:
                self.metrics.observe_load_failure(name, str(number), status.failure_reason)
            raise
        self._failed.pop((name, number), None)
        batched: ServingChain = base
        if self.options.batch_max_size > 1:
            batched = BatchingServable(
                base,
                max_batch_size=self.options.batch_max_size,
                max_wait_ms=self.options.batch_max_wait_ms,
                metrics=self.metrics,
            )
        served: Servable = batched
        if self.request_logger is not None:
            served = LoggingServable(batched, self.request_logger, source=version.artifact)
        return _Loaded(number, base, batched, served, version.artifact, version.properties)

    def _shadow_hook(self, candidate: _Loaded) -> Any:
        request_logger = self.request_logger

        def on_shadow(
            servable: Servable,
            columns: dict[str, np.ndarray],
            outputs: dict[str, np.ndarray] | None,
            error: Exception | None,
        ) -> None:
            if error is not None:
                logger.warning("shadow version %s failed: %s", servable.version, error)
            elif request_logger is not None and outputs is not None:
                request_logger.log(
                    candidate.base, columns, outputs, shadow=True, source=candidate.artifact
                )

        return on_shadow

    def _release(self, retired: list[Servable], unused: list[_Loaded]) -> None:
        """After a swap: wait out requests that took the old servables, then close them."""
        time.sleep(self.options.release_grace_s)  # covers a request between get and predict
        drained = True
        for handle in retired:
            drained &= self.repository.release(
                handle, timeout_s=self.options.release_timeout_s, close=False
            )
            inner = handle.inner if isinstance(handle, ServableWrapper) else handle
            if isinstance(inner, CanaryServable):
                inner.close()
        if not drained:
            logger.warning("old versions still busy after %.0fs", self.options.release_timeout_s)
            return
        for item in unused:
            item.close()
        refreeze()  # the old version's objects were frozen with the rest: let them go


def load_version(name: str, version: Any) -> PipelineServable:
    """A registry version's servable: only a registered ``PushedModel`` is loaded, and only
    after its folder fingerprint and model sha256 match what the store recorded. The skops
    types it trusts beyond the allowlist are the ones recorded with the version (an import's
    ``--trust``), else the PushedModel's, else its fingerprinted model.json's."""
    pushed = version.artifact
    if pushed.type_name != "PushedModel":
        raise ModelError(
            f"model '{name}' version {version.version} points at a {pushed.type_name}, not a"
            " PushedModel; only pushed models are served"
        )
    sha256 = pushed.properties.get("model_sha256")
    if not sha256:
        raise ModelError(
            f"model '{name}' version {version.version}: its PushedModel has no recorded"
            " model_sha256, so it cannot be verified and is not loaded"
        )
    trusted = version.properties.get("trusted_types", pushed.properties.get("trusted_types"))
    return PipelineServable.load(
        name,
        str(version.version),
        pushed.path,
        model_sha256=sha256,
        fingerprint=pushed.fingerprint,
        trusted_types=trusted,
    )


def warm_up(servable: Servable, samples: dict[str, np.ndarray]) -> None:
    """Answer the sample requests once (first-call costs paid before traffic arrives) and
    check every output has a row per input row; raise ModelError otherwise."""
    if not samples:
        return
    rows = len(next(iter(samples.values())))
    try:
        outputs = servable.predict(samples)
    except Exception as exc:  # noqa: BLE001 - any failure here means: do not swap
        raise ModelError(
            f"model '{servable.name}' version {servable.version} failed its warm-up request:"
            f" {type(exc).__name__}: {exc}"
        ) from exc
    for key, value in outputs.items():
        if len(np.asarray(value)) != rows:
            raise ModelError(
                f"model '{servable.name}' version {servable.version}: warm-up output '{key}' has"
                f" {len(np.asarray(value))} rows for {rows} request rows"
            )
