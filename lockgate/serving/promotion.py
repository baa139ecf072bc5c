"""The check a version passes before an alias moves to it: it loads as the server loads it.

An alias moved onto a version the server cannot load is an outage waiting for a restart:
the running server keeps its old version, but the next one to start finds only the broken
one. So every path that moves an alias (``lockgate models promote``, ``rollback``,
``canary``, and in Python a ``Registry`` from ``verified_registry``) first runs
``verify_version``: the PushedModel folder's fingerprint and the model file's sha256
against the store, the transform and the model loaded, and the warm-up requests recorded
with it answered with one row per request row. The server's follower loads each version
through the same two steps, ``load_files`` and ``check_warm_up``.

The metadata layer cannot import the serving layer, so ``Registry`` is handed the check
(its ``verify`` argument) rather than calling it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lockgate.errors import LockgateError, ModelError, ModelIntegrityError

if TYPE_CHECKING:
    from lockgate.metadata.registry import ModelVersion, Registry
    from lockgate.metadata.store import SqlMetadataStore
    from lockgate.serving.servable import PipelineServable

#: Why a version did not load, as ``/metrics`` labels it: its files changed after the push
#: (fingerprint, sha256), they could not be read or deserialised, or the warm-up failed.
INTEGRITY, LOAD, WARM_UP = "integrity", "load", "warm-up"


def verify_version(version: ModelVersion) -> None:
    """Load ``version`` as the server would and answer its warm-up requests; raise
    ``ModelIntegrityError`` (its files changed) or ``ModelError`` naming the version, the
    file and what to do. Nothing stays loaded."""
    servable = load_files(version.model_name, version)
    try:
        check_warm_up(servable, version)
    finally:
        servable.close()


def verified_registry(store: SqlMetadataStore) -> Registry:
    """The registry every tool that moves aliases should use: ``verify_version`` runs
    before each move (promote, rollback, canary)."""
    from lockgate.metadata.registry import Registry

    return Registry(store, verify=verify_version)


def load_files(name: str, version: Any) -> PipelineServable:
    """Step 1: the version's files checked against the store, then deserialised."""
    from lockgate.serving.reload import load_version  # reload imports this module

    try:
        return load_version(name, version)
    except Exception as exc:
        reason = INTEGRITY if isinstance(exc, ModelIntegrityError) else LOAD
        raise _refusal(name, version, reason, exc) from exc


def check_warm_up(servable: PipelineServable, version: Any) -> None:
    """Step 2: the warm-up requests recorded with the version (else typical rows from its
    transform) answered, one output row per request row."""
    from lockgate.serving.reload import warm_up  # reload imports this module
    from lockgate.serving.servable import read_samples

    try:
        warm_up(servable, read_samples(version.artifact.path, servable.transform))
    except Exception as exc:
        raise _refusal(servable.name, version, WARM_UP, exc) from exc


def failure_reason(error: BaseException) -> str:
    """``integrity``, ``load`` or ``warm-up`` for an error of ``load_files`` or
    ``check_warm_up`` (``load`` for anything else, such as a version gone from the store)."""
    reason = getattr(error, "reason", None)
    return reason if reason in (INTEGRITY, LOAD, WARM_UP) else LOAD


_HINT = {
    INTEGRITY: "restore its files from the artifact store, or push the model again;"
    " meanwhile promote a version that loads (lockgate models list {name})",
    LOAD: "check that its files under {path} are there and readable, or push the model"
    " again; meanwhile promote a version that loads (lockgate models list {name})",
    WARM_UP: "its samples.json or its transform does not fit the model; push it again, or"
    " promote a version that loads (lockgate models list {name})",
}


def _refusal(name: str, version: Any, reason: str, cause: Exception) -> ModelError:
    number = getattr(version, "version", version)
    detail = str(cause) if isinstance(cause, ModelError) else f"{type(cause).__name__}: {cause}"
    if reason != WARM_UP or not isinstance(cause, ModelError):  # warm_up names the version
        detail = f"model '{name}' version {number} does not load: {detail}"
    path = getattr(cause, "path", None) or getattr(getattr(version, "artifact", None), "uri", "")
    kind = ModelIntegrityError if reason == INTEGRITY else ModelError
    hint = _HINT[reason].format(name=name, path=path)
    if reason == LOAD and isinstance(cause, LockgateError) and cause.hint:
        hint = cause.hint  # the loader knows best (an untrusted type: --trust it, ...)
    error = kind(detail, path=path or None, hint=hint)
    error.reason = reason  # type: ignore[attr-defined]  # read by failure_reason
    return error
