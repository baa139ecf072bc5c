"""The registry of frameworks: lockgate's own, then the ``lockgate.frameworks`` entry
points, both loaded on the first lookup (never at import time)."""

from __future__ import annotations

import importlib
import threading
from importlib.metadata import entry_points
from typing import Any

from lockgate.errors import ConfigError, ModelError, did_you_mean
from lockgate.training.frameworks.base import Framework

ENTRY_POINT_GROUP = "lockgate.frameworks"
_BUILTIN = ("sklearn", "lightgbm", "xgboost", "onnx", "pytorch")
_REGISTRY: dict[str, Framework] = {}
_loaded = False
_LOADING = threading.RLock()


def register_framework(framework: Framework, *, replace: bool = False) -> Framework:
    """Add ``framework`` under its ``name``; a second one of the same name is an error
    unless ``replace``."""
    if not isinstance(framework, Framework):
        raise ConfigError(
            f"{framework!r} is not a lockgate Framework; it lacks"
            f" {_missing(framework)} (see lockgate.training.frameworks.base)"
        )
    if framework.name in _REGISTRY and not replace and _REGISTRY[framework.name] is not framework:
        raise ConfigError(f"a framework named {framework.name!r} is registered already")
    _REGISTRY[framework.name] = framework
    return framework


def _missing(obj: Any) -> list[str]:
    wanted = [n for n in dir(Framework) if not n.startswith("_")]
    wanted += list(getattr(Framework, "__annotations__", {}))
    return sorted({n for n in wanted if not hasattr(obj, n)})


def _ensure_loaded() -> None:
    """Fill the registry once; steps running in parallel threads wait for the first to
    finish (a flag set before the modules were imported let a second thread see an empty
    registry)."""
    global _loaded
    if _loaded:
        return
    with _LOADING:
        if _loaded:
            return
        for name in _BUILTIN:
            module = importlib.import_module(f"lockgate.training.frameworks.{name}")
            if module.FRAMEWORK.name not in _REGISTRY:
                register_framework(module.FRAMEWORK)
        for point in entry_points(group=ENTRY_POINT_GROUP):
            try:
                found = point.load()
                framework = found() if isinstance(found, type) else found
            except Exception as exc:  # noqa: BLE001 - a third party's import may fail any way
                raise ModelError(
                    f"framework entry point {point.name!r} ({point.value}) failed to load: {exc}",
                    hint=f"fix or uninstall the package that declares it in {ENTRY_POINT_GROUP!r}",
                ) from exc
            if framework.name not in _REGISTRY:
                register_framework(framework)
        _loaded = True


def frameworks() -> dict[str, Framework]:
    """Every registered framework by name, in registration order."""
    _ensure_loaded()
    return dict(_REGISTRY)


def get_framework(name: str) -> Framework:
    """The framework called ``name``; an unknown name is a ConfigError listing the known."""
    _ensure_loaded()
    found = _REGISTRY.get(name)
    if found is None:
        known = _REGISTRY
        raise ConfigError(
            f"unknown framework {name!r}; known frameworks are {sorted(known)}"
            f"{did_you_mean(name, known)}",
            hint=f"a third-party framework registers through the {ENTRY_POINT_GROUP!r}"
            " entry point group",
        )
    return found
