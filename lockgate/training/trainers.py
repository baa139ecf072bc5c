"""Trainers: a name (or the user's own function) turned into a fitted estimator.

Every built-in spec is seeded and single-threaded enough to be deterministic, so a cached
step and a re-run give the same model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lockgate.errors import ConfigError, ModelError, did_you_mean

UserTrainer = Callable[[np.ndarray, np.ndarray, dict[str, Any]], Any]

SPECS: dict[str, tuple[str, ...]] = {
    "lightgbm": ("classification", "regression"),
    "random_forest": ("classification", "regression"),
    "gradient_boosting": ("classification", "regression"),
    "logistic_regression": ("classification",),
    "linear_regression": ("regression",),
}


def _estimator_class(spec: str, task: str) -> tuple[type, dict[str, Any]]:
    """The estimator class and the defaults lockgate sets (seed, quiet, deterministic)."""
    classification = task == "classification"
    if spec == "lightgbm":
        import lightgbm

        cls = lightgbm.LGBMClassifier if classification else lightgbm.LGBMRegressor
        return cls, {"verbose": -1, "n_jobs": 1, "deterministic": True, "force_row_wise": True}
    if spec == "random_forest":
        from sklearn import ensemble

        cls = ensemble.RandomForestClassifier if classification else ensemble.RandomForestRegressor
        return cls, {"n_jobs": 1}
    if spec == "gradient_boosting":
        from sklearn import ensemble

        return (
            ensemble.HistGradientBoostingClassifier
            if classification
            else ensemble.HistGradientBoostingRegressor
        ), {}
    if spec == "logistic_regression":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression, {"max_iter": 1000}
    from sklearn.linear_model import LinearRegression

    return LinearRegression, {}


def _check_spec(spec: str, task: str) -> None:
    if task not in ("classification", "regression"):
        raise ConfigError(f"task must be 'classification' or 'regression'; got {task!r}")
    if spec not in SPECS:
        raise ConfigError(
            f"unknown trainer spec '{spec}'; known specs are {sorted(SPECS)}"
            f"{did_you_mean(spec, SPECS)}",
            hint="or pass your own function fn(X, y, params) -> fitted estimator",
        )
    if task not in SPECS[spec]:
        other = "linear_regression" if spec == "logistic_regression" else "logistic_regression"
        raise ConfigError(f"trainer spec '{spec}' does not do {task}; use '{other}'")


def _build(spec: str, task: str, params: dict[str, Any], seed: int) -> Any:
    cls, defaults = _estimator_class(spec, task)
    accepted = cls().get_params()
    if spec != "lightgbm":  # LightGBM also takes booster parameters through **kwargs
        for name in params:
            if name not in accepted:
                raise ConfigError(
                    f"unknown parameter '{name}' for trainer '{spec}' ({cls.__name__});"
                    f" parameters are {sorted(accepted)}{did_you_mean(name, accepted)}"
                )
    if "random_state" in accepted:
        defaults["random_state"] = seed
    try:
        return cls(**{**defaults, **params})
    except TypeError as exc:
        raise ConfigError(f"bad parameter for trainer '{spec}': {exc}") from exc


def train_model(
    X: np.ndarray,
    y: np.ndarray,
    *,
    spec: str | UserTrainer,
    params: dict[str, Any] | None = None,
    task: str,
    seed: int = 0,
) -> Any:
    """Fit a model on the transformed matrix ``X`` and encoded label ``y``."""
    params = dict(params or {})
    if callable(spec):
        return _train_user(spec, X, y, params)
    _check_spec(spec, task)
    estimator = _build(spec, task, params, seed)
    try:
        estimator.fit(np.asarray(X, dtype=np.float64), np.asarray(y))
    except (TypeError, ValueError) as exc:
        # sklearn's InvalidParameterError is a ValueError that names the parameter.
        if type(exc).__name__ == "InvalidParameterError" or isinstance(exc, TypeError):
            raise ConfigError(f"bad parameter for trainer '{spec}': {exc}") from exc
        raise ModelError(f"trainer '{spec}' failed to fit: {exc}") from exc
    return estimator


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
