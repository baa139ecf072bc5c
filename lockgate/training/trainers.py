"""Trainers: a name (or the user's own function) turned into a fitted estimator.

A name is resolved through the framework registry: a short name one framework declares in
its ``trainers`` (``"lightgbm"``, ``"random_forest"``, ``"xgboost"``), or
``"<framework>:<spec>"`` handed to that framework (``"sklearn:sklearn.svm.SVC"``). Every
built-in estimator is seeded and single-threaded enough to be deterministic, so a cached
step and a re-run give the same model.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from lockgate.errors import ConfigError, LockgateError, ModelError, did_you_mean
from lockgate.training.devices import Device, resolve_device
from lockgate.training.frameworks import frameworks, get_framework
from lockgate.training.frameworks.base import Report, Trains

UserTrainer = Callable[[np.ndarray, np.ndarray, dict[str, Any]], Any]
TASKS = ("classification", "regression")


def specs() -> dict[str, tuple[str, ...]]:
    """Every short trainer name the registered frameworks declare, with its tasks."""
    found: dict[str, tuple[str, ...]] = {}
    for framework in frameworks().values():
        if isinstance(framework, Trains):
            found.update(framework.trainers)
    return found


def framework_record(name: str) -> dict[str, str | None]:
    """What lineage and the registry keep about the framework that saved a model: its
    description, and the version of its library where the framework trains."""
    framework = get_framework(name)
    library_version = None
    if isinstance(framework, Trains):
        try:
            library_version = version(framework.library)
        except PackageNotFoundError:
            library_version = None
    return {"framework_description": framework.description, "framework_version": library_version}


def _trainer_framework(spec: str, task: str) -> tuple[Trains, str]:
    """(framework, the spec it gets) for a trainer name, or a ConfigError naming it."""
    if task not in TASKS:
        raise ConfigError(f"task must be 'classification' or 'regression'; got {task!r}")
    if ":" in spec:
        name, _, rest = spec.partition(":")
        framework = get_framework(name)
        if not isinstance(framework, Trains):
            trains = sorted(n for n, f in frameworks().items() if isinstance(f, Trains))
            raise ConfigError(
                f"trainer '{spec}': framework {name!r} loads models but does not train them;"
                f" frameworks that train are {trains}"
            )
        return framework, rest
    for framework in frameworks().values():
        if isinstance(framework, Trains) and spec in framework.trainers:
            if task not in framework.trainers[spec]:
                other = (
                    "linear_regression" if spec == "logistic_regression" else "logistic_regression"
                )
                raise ConfigError(f"trainer spec '{spec}' does not do {task}; use '{other}'")
            return framework, spec
    known = specs()
    raise ConfigError(
        f"unknown trainer spec '{spec}'; known specs are {sorted(known)}"
        f"{did_you_mean(spec, known)}",
        hint="or name a scikit-learn estimator, trainer='sklearn:sklearn.svm.SVC', or pass"
        " your own function fn(X, y, params) -> fitted estimator",
    )


def trainer_device(spec: str | UserTrainer, task: str, requested: str) -> Device:
    """The device trainer ``spec`` fits on when ``requested`` ("cpu", "cuda", "auto"),
    with the note that says why when "auto" fell back to the CPU."""
    if callable(spec):
        if requested != "cpu":
            raise ConfigError("device= applies to the built-in trainers; yours decides itself")
        return Device("cpu")
    framework, _ = _trainer_framework(spec, task)
    return resolve_device(requested, trainer=spec, supported=framework.devices)


def train_model(
    X: np.ndarray,
    y: np.ndarray,
    *,
    spec: str | UserTrainer,
    params: dict[str, Any] | None = None,
    task: str,
    seed: int = 0,
    eval_set: tuple[np.ndarray, np.ndarray] | None = None,
    sample_weight: np.ndarray | None = None,
    device: str = "cpu",
    base_model: Any = None,
    base_framework: str | None = None,
    report: Report | None = None,
) -> Any:
    """Fit a model on the transformed matrix ``X`` and encoded label ``y``.

    With ``params["early_stopping_rounds"]`` (boosters, PyTorch) or ``report`` (the tuner),
    ``eval_set`` (the eval split's matrix and label) is watched. ``sample_weight``: one
    weight per row (``weights.row_weights``), for the built-in trainers only.
    ``base_model``: a loaded model of framework ``base_framework`` to continue from.
    ``device``: "cpu", "cuda" or "auto" (see ``devices.resolve_device``)."""
    params = dict(params or {})
    if callable(spec):
        given = {
            "weights (sample_weight_column, class_weight)": sample_weight is not None,
            "a base model": base_model is not None,
            "tuning reports": report is not None,
        }
        if any(given.values()):
            asked = ", ".join(name for name, present in given.items() if present)
            raise ConfigError(
                f"{asked}: these apply to the built-in trainers; your trainer function gets"
                " no weights, base model or reports",
                hint="read the weights in your function, or use a trainer name",
            )
        trainer_device(spec, task, device)  # refuses a device for the user's function
        return _train_user(spec, X, y, params)
    framework, rest = _trainer_framework(spec, task)
    name = framework.name  # type: ignore[attr-defined]  # a Trains is also a Framework
    if base_model is not None and base_framework != name:
        raise ConfigError(
            f"the base model is a {base_framework} model and trainer '{spec}' is {name};"
            " warm start continues a model of the same framework",
            hint=f"train with a {base_framework} trainer, or leave base_model out",
        )
    chosen = resolve_device(device, trainer=spec, supported=framework.devices)
    estimator = framework.estimator(rest, task, params, seed, device=chosen.name)
    stopping = params.get("early_stopping_rounds") is not None
    if (stopping or report is not None) and eval_set is None:
        needs = "early_stopping_rounds" if stopping else "tuning"
        raise ConfigError(
            f"trainer '{spec}': {needs} needs the eval split, and there is none",
            hint="ingest(..., eval_fraction=0.2) makes one",
        )
    watched = None
    if (stopping or report is not None) and eval_set is not None:
        watched = (np.asarray(eval_set[0], dtype=np.float64), np.asarray(eval_set[1]))
    try:
        fitted = framework.fit(
            estimator,
            np.asarray(X, dtype=np.float64),
            np.asarray(y),
            eval_set=watched,
            sample_weight=sample_weight,
            base_model=base_model,
            report=report,
        )
    except LockgateError:
        raise  # the framework's own, already naming what is wrong
    except (TypeError, ValueError) as exc:
        # sklearn's InvalidParameterError is a ValueError that names the parameter.
        if type(exc).__name__ == "InvalidParameterError" or isinstance(exc, TypeError):
            raise ConfigError(f"bad parameter for trainer '{spec}': {exc}") from exc
        raise ModelError(f"trainer '{spec}' failed to fit: {exc}") from exc
    return fitted


def _train_user(fn: UserTrainer, X: np.ndarray, y: np.ndarray, params: dict[str, Any]) -> Any:
    name = getattr(fn, "__qualname__", repr(fn))
    estimator = fn(X, y, params)
    if estimator is None or not callable(getattr(estimator, "predict", None)):
        raise ModelError(
            f"trainer function '{name}' returned {type(estimator).__name__}, which has no"
            " predict method",
            hint="return the fitted estimator (an object with .predict(X)), e.g. `return model`",
        )
    return estimator
