"""The cache key and, when it misses, why: one short reason per step that ran.

The key is a sha256 over its parts — the component, its parameters, the code it runs (its
function and the project files that function reaches), the libraries under it, its input
artifacts and the outside files it reads. The parts are stored with each execution, so that
the next miss names the part that changed against the newest earlier execution of the step:
``parameter params.n_estimators: 100 → 50``, ``code changed: helpers/features.py``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lockgate.core.artifacts import Artifact

NO_CACHE = "--no-cache"
NO_EARLIER_RUN = "no earlier run"
OUTPUTS_GONE = "earlier outputs are gone"
NOT_CACHEABLE = "never cached: what it reads outside cannot be fingerprinted"
_CALLABLE = "callable:"


@dataclass(frozen=True)
class CacheKey:
    """A step's cache key (``digest``; None: the step cannot be cached) and its parts."""

    digest: str | None
    parts: dict[str, Any] = field(default_factory=dict)


def cache_key(
    *,
    component: str,
    params_json: str,
    code: Mapping[str, str],
    libraries: Mapping[str, str],
    inputs: Mapping[str, Artifact | None],
    files: Mapping[str, tuple[str, str]] | None,
) -> CacheKey:
    """The key over every part; ``files`` is {parameter: (path, sha256)} or None when the
    step reads something that cannot be fingerprinted."""
    parts: dict[str, Any] = {
        "component": component,
        "code": dict(sorted(code.items())),
        "libraries": dict(sorted(libraries.items())),
        "inputs": {
            name: None if a is None else {"artifact": a.id, "fingerprint": a.fingerprint}
            for name, a in sorted(inputs.items())
        },
        "files": None
        if files is None
        else {name: {"path": p, "fingerprint": fp} for name, (p, fp) in sorted(files.items())},
    }
    if files is None:
        return CacheKey(None, parts)
    keyed = {
        **parts,
        "params": params_json,
        "inputs": {n: None if v is None else v["fingerprint"] for n, v in parts["inputs"].items()},
        "files": {n: v["fingerprint"] for n, v in parts["files"].items()},
    }
    digest = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()
    return CacheKey(digest, parts)


def miss_reason(
    key: CacheKey,
    params: Mapping[str, Any],
    previous: Any | None,
    *,
    use_cache: bool = True,
) -> str:
    """Why a step was not served from the cache, against ``previous`` (the newest earlier
    execution of the step that gave outputs: ``cache_key``, ``cache_parts``, ``params``)."""
    if not use_cache:
        return NO_CACHE
    if key.digest is None:
        return NOT_CACHEABLE
    if previous is None:
        return NO_EARLIER_RUN
    if previous.cache_key == key.digest or not previous.cache_parts:
        if previous.status == "blocked":
            return "its gate closed in the earlier run (a closed gate is never cached)"
        if previous.status == "failed":
            return "it failed in the earlier run"
        if previous.cache_key == key.digest:
            return OUTPUTS_GONE
        return "the earlier run was recorded by an older lockgate (its cache key differs)"
    old = previous.cache_parts
    changes = [
        *_component(old.get("component"), key.parts["component"]),
        *_libraries(old.get("libraries") or {}, key.parts["libraries"]),
        *_code(old.get("code") or {}, key.parts["code"]),
        *_params(_flat(previous.params or {}), _flat(params)),
        *_inputs(old.get("inputs") or {}, key.parts["inputs"]),
        *_files(old.get("files") or {}, key.parts["files"] or {}),
    ]
    if not changes:
        return "cache key changed"
    more = f" (and {len(changes) - 1} more)" if len(changes) > 1 else ""
    return changes[0] + more


def _component(old: str | None, new: str) -> list[str]:
    return [] if old in (None, new) else [f"component changed: {old} → {new}"]


def _libraries(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    return [
        f"library changed: {name} {old.get(name, 'none')} → {new.get(name, 'none')}"
        for name in sorted({*old, *new})
        if old.get(name) != new.get(name)
    ]


def _code(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    changed = [name for name in sorted({*old, *new}) if old.get(name) != new.get(name)]
    files = [n for n in changed if not n.startswith("function ")]
    return [f"code changed: {name}" for name in [*files, *(n for n in changed if n not in files)]]


def _flat(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"params": {"n": 1}}`` as ``{"params.n": 1}``: a reason names the key that changed."""
    flat: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def _params(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    reasons = []
    missing = object()
    for name in sorted({*old, *new}):
        before, after = old.get(name, missing), new.get(name, missing)
        if before == after:
            continue
        if _same_function(before, after):
            reasons.append(f"code changed: function {_show(after)} (parameter {name})")
        else:
            shown = [_show(v) if v is not missing else "unset" for v in (before, after)]
            reasons.append(f"parameter {name}: {shown[0]} → {shown[1]}")
    return reasons


def _same_function(before: Any, after: Any) -> bool:
    """Both are a callable parameter's "callable:module.name:sha256" of the same function."""
    if not (isinstance(before, str) and isinstance(after, str)):
        return False
    if not (before.startswith(_CALLABLE) and after.startswith(_CALLABLE)):
        return False
    return before.rsplit(":", 1)[0] == after.rsplit(":", 1)[0]


def _show(value: Any) -> str:
    if isinstance(value, str) and value.startswith(_CALLABLE):
        return value[len(_CALLABLE) :].rsplit(":", 1)[0].rsplit(".", 1)[-1]
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 40 else text[:37] + "..."


def _inputs(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """One reason for all the inputs that are new: they are one change upstream."""
    changed = []
    for name in sorted({*old, *new}):
        before, after = old.get(name), new.get(name)
        if (before or {}).get("fingerprint") == (after or {}).get("fingerprint"):
            continue
        now = f"artifact {after['artifact']}" if after else "none"
        was = before["artifact"] if before else "none"
        changed.append((name, f"{now}, was {was}"))
    if len(changed) == 1:
        return [f"input {changed[0][0]} is new ({changed[0][1]})"]
    if changed:
        return ["inputs " + ", ".join(f"{n} ({what})" for n, what in changed) + " are new"]
    return []


def _files(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    reasons = []
    for name in sorted({*old, *new}):
        before, after = old.get(name) or {}, new.get(name) or {}
        if before.get("fingerprint") == after.get("fingerprint"):
            continue
        path = after.get("path") or before.get("path")
        moved = before.get("path") and after.get("path") and before["path"] != after["path"]
        reasons.append(
            f"outside file changed: {path}" + (f" (was {before['path']})" if moved else "")
        )
    return reasons
