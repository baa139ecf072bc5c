"""scikit-learn through skops (no pickle): only types skops, lockgate's allowlist or a
person's recorded trust allow are loaded (``skops_trust``)."""

from __future__ import annotations

import importlib
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from lockgate.errors import ConfigError, ModelError
from lockgate.training import skops_trust
from lockgate.training.frameworks.base import Report
from lockgate.training.frameworks.estimators import build_estimator

_ZIP = b"PK\x03\x04"


class SklearnFramework:
    name = "sklearn"
    description = "scikit-learn estimators saved with skops (model.skops), allowlisted types"
    suffixes = (".skops",)
    takes_trust = True
    predicts_labels = True
    format_name = "a skops zip"
    library = "scikit-learn"
    trainers = {
        "random_forest": ("classification", "regression"),
        "gradient_boosting": ("classification", "regression"),
        "logistic_regression": ("classification",),
        "linear_regression": ("regression",),
    }

    devices = ("cpu",)

    def estimator(
        self, spec: str, task: str, params: dict[str, Any], seed: int, *, device: str = "cpu"
    ) -> Any:
        """A short name, or any scikit-learn estimator by import path
        (``trainer="sklearn:sklearn.ensemble.ExtraTreesClassifier"``)."""
        if spec in self.trainers:
            cls, defaults = _short_name_class(spec, task)
            label = spec
        else:
            cls = _estimator_by_path(spec, task)
            defaults = {"n_jobs": 1} if "n_jobs" in cls().get_params() else {}
            label = f"sklearn:{spec}"
        return build_estimator(cls, defaults, params, seed, label=label)

    def fit(
        self,
        estimator: Any,
        X: np.ndarray,
        y: np.ndarray,
        *,
        eval_set: tuple[np.ndarray, np.ndarray] | None,
        sample_weight: np.ndarray | None = None,
        base_model: Any = None,
        report: Report | None = None,
    ) -> Any:
        """A ``base_model`` (the loaded estimator) is continued from through scikit-learn's
        ``warm_start``: it takes this fit's parameters (raise ``n_estimators`` to add trees)
        and keeps what it learned. ``eval_set`` and ``report`` are refused before this."""
        if base_model is not None:
            estimator = _warm_started(estimator, base_model)
        if sample_weight is None:
            return estimator.fit(X, y)
        from sklearn.utils.validation import has_fit_parameter

        if not has_fit_parameter(estimator, "sample_weight"):
            raise ConfigError(
                f"{type(estimator).__name__} does not take sample weights, so"
                " sample_weight_column and class_weight cannot be used with it"
            )
        return estimator.fit(X, y, sample_weight=sample_weight)

    def claims(self, estimator: Any) -> str | None:
        from sklearn.base import BaseEstimator, is_classifier, is_regressor

        if not isinstance(estimator, BaseEstimator):
            return None
        if is_classifier(estimator):
            return "classification"
        return "regression" if is_regressor(estimator) else None

    def save(
        self, estimator: Any, folder: Path, *, trusted: Collection[str]
    ) -> tuple[str, list[str]]:
        path = folder / "model.skops"
        return path.name, _dump_skops(estimator, path, trusted)

    def file_name(self, source: Path) -> str:
        return "model.skops"

    def check_import(self, data: bytes, source: Path, trusted: Collection[str]) -> None:
        untrusted = skops_trust.untrusted_types(data, source)
        skops_trust.refuse_untrusted(untrusted, trusted, source, hint=skops_trust.import_hint)
        _check_trust_is_needed(untrusted, trusted, source)

    def is_own_format(self, data: bytes) -> bool:
        return data.startswith(_ZIP)

    def load(self, data: bytes, path: Path, *, trusted: Collection[str]) -> Any:
        return skops_trust.load_skops(data, path, trusted=trusted, hint=skops_trust.import_hint)

    def predict(self, model: Any, X: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(X))

    def predict_proba(self, model: Any, X: np.ndarray) -> np.ndarray | None:
        if not callable(getattr(model, "predict_proba", None)):
            return None
        return np.asarray(model.predict_proba(X), dtype=np.float64)

    def describe(self, model: Any) -> tuple[str, int | None, list[Any] | None]:
        from sklearn.base import is_classifier, is_regressor

        if not (is_classifier(model) or is_regressor(model)):
            raise ModelError(f"{type(model).__name__} is neither a classifier nor a regressor")
        width = getattr(model, "n_features_in_", None)
        if is_classifier(model):
            return "classification", width, np.asarray(model.classes_).tolist()
        return "regression", width, None


def _short_name_class(spec: str, task: str) -> tuple[type, dict[str, Any]]:
    from sklearn import ensemble, linear_model

    classification = task == "classification"
    if spec == "random_forest":
        cls = ensemble.RandomForestClassifier if classification else ensemble.RandomForestRegressor
        return cls, {"n_jobs": 1}
    if spec == "gradient_boosting":
        return (
            ensemble.HistGradientBoostingClassifier
            if classification
            else ensemble.HistGradientBoostingRegressor
        ), {}
    if spec == "logistic_regression":
        return linear_model.LogisticRegression, {"max_iter": 1000}
    return linear_model.LinearRegression, {}


_DOTTED = re.compile(r"sklearn(\.[A-Za-z_][A-Za-z0-9_]*)+")


def _estimator_by_path(path: str, task: str) -> type:
    """The class at ``path``, imported only when the path lies inside the ``sklearn``
    package and names a scikit-learn estimator for ``task``: a pipeline never gets an
    arbitrary module imported through its trainer name."""
    example = "sklearn:sklearn.ensemble.ExtraTreesClassifier"
    if not _DOTTED.fullmatch(path):
        raise ConfigError(
            f"trainer 'sklearn:{path}' must name a class inside the sklearn package by its"
            f" import path; got {path!r}",
            hint=f"e.g. trainer={example!r}, or pass your own function fn(X, y, params)",
        )
    module_name, _, class_name = path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"trainer 'sklearn:{path}': scikit-learn has no {path} ({exc})",
            hint=f"e.g. trainer={example!r}",
        ) from exc
    from sklearn.base import BaseEstimator, is_classifier, is_regressor

    if not (isinstance(found, type) and issubclass(found, BaseEstimator)):
        raise ConfigError(
            f"trainer 'sklearn:{path}' is not a scikit-learn estimator"
            f" (got {type(found).__name__})",
            hint=f"e.g. trainer={example!r}",
        )
    try:
        instance = found()
    except TypeError as exc:
        raise ConfigError(
            f"trainer 'sklearn:{path}' cannot be built without arguments: {exc}"
        ) from exc
    kind = is_classifier if task == "classification" else is_regressor
    if not kind(instance):
        wanted = "classifier" if task == "classification" else "regressor"
        raise ConfigError(
            f"trainer 'sklearn:{path}' is not a {wanted}, and the label makes this {task}"
        )
    return found


def _dump_skops(estimator: Any, path: Path, trusted: Collection[str]) -> list[str]:
    """Dump through skops, then refuse what would not load again: a model is not saved
    unless lockgate itself (or the caller's explicit trust) can read it back."""
    import skops.io

    from lockgate.core.project_code import AST_LOCK

    try:
        with AST_LOCK:
            data = skops.io.dumps(estimator)
    except Exception as exc:  # noqa: BLE001 - skops refuses types it cannot persist
        raise ModelError(f"skops cannot save {type(estimator).__name__}: {exc}") from exc
    untrusted = skops_trust.untrusted_types(data, path)
    needed = skops_trust.needed_trust(untrusted)
    unused = sorted(set(trusted) - set(needed))
    if unused:
        raise ConfigError(
            f"train(trust=...) names {unused}, which the model does not hold; it needs"
            f" {needed or 'no extra trust'}"
        )
    skops_trust.refuse_untrusted(
        untrusted,
        trusted,
        path,
        hint=lambda types: (
            "if your trainer's model is meant to hold them, pass"
            f" train(..., trust={types}); the trust is recorded with the model"
        ),
    )
    path.write_bytes(data)
    return needed


def _check_trust_is_needed(untrusted: list[str], trusted: Collection[str], path: Path) -> None:
    """Trust is recorded only for types the file holds beyond the allowlist: a typo, or a
    type it does not need, is an error rather than a standing permission."""
    needed = skops_trust.needed_trust(untrusted)
    unused = sorted(set(trusted) - set(needed))
    if unused:
        raise ConfigError(
            f"--trust names {unused}, which {path.name} does not hold beyond what lockgate"
            f" trusts already; it needs {needed or 'no --trust'}"
        )


FRAMEWORK = SklearnFramework()


def _warm_started(estimator: Any, base_model: Any) -> Any:
    """The base model, set to this fit's parameters with ``warm_start=True``."""
    if type(base_model) is not type(estimator):
        raise ConfigError(
            f"the base model is a {type(base_model).__name__}, this trainer fits a"
            f" {type(estimator).__name__}; warm start continues the same estimator",
            hint="train with the base model's trainer, or leave base_model out",
        )
    params = estimator.get_params(deep=False)
    if "warm_start" not in params:
        raise ConfigError(
            f"{type(estimator).__name__} cannot warm start (it has no warm_start parameter)",
            hint="warm start works for estimators with warm_start (random_forest,"
            " gradient_boosting, logistic_regression, ...) and for LightGBM and XGBoost",
        )
    return base_model.set_params(**{**params, "warm_start": True})
