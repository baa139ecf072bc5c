"""XGBoost: ``trainer="xgboost"`` saves its booster as XGBoost's JSON model
(``model.xgb.json``); ``models import`` also takes JSON or UBJ files. Read as a Booster."""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from lockgate.errors import ConfigError, ModelError
from lockgate.training.frameworks.estimators import build_estimator


class XGBoostFramework:
    name = "xgboost"
    description = "XGBoost models saved as XGBoost's JSON model (model.xgb.json), or UBJ"
    suffixes = (".json", ".ubj")
    takes_trust = False
    predicts_labels = False
    format_name = "XGBoost's JSON or UBJ model"
    library = "xgboost"
    trainers = {"xgboost": ("classification", "regression")}

    def estimator(self, spec: str, task: str, params: dict[str, Any], seed: int) -> Any:
        xgboost = _import_xgboost()
        cls = xgboost.XGBClassifier if task == "classification" else xgboost.XGBRegressor
        defaults = {"n_jobs": 1, "tree_method": "hist", "verbosity": 0}
        # XGBoost also takes booster parameters through **kwargs
        return build_estimator(cls, defaults, params, seed, label=spec, open_params=True)

    def fit(
        self,
        estimator: Any,
        X: np.ndarray,
        y: np.ndarray,
        *,
        eval_set: tuple[np.ndarray, np.ndarray] | None,
        sample_weight: np.ndarray | None = None,
    ) -> Any:
        if eval_set is None:
            return estimator.fit(X, y, sample_weight=sample_weight)
        return estimator.fit(X, y, sample_weight=sample_weight, eval_set=[eval_set], verbose=False)

    def claims(self, estimator: Any) -> str | None:
        try:
            import xgboost
        except ImportError:
            return None  # then nothing fitted can be an XGBoost model
        if isinstance(estimator, xgboost.XGBClassifier):
            return "classification"
        if isinstance(estimator, xgboost.XGBRegressor):
            return "regression"
        return None  # a ranker is not served

    def save(
        self, estimator: Any, folder: Path, *, trusted: Collection[str]
    ) -> tuple[str, list[str]]:
        if trusted:
            raise ConfigError(
                f"train(trust=...) applies to skops files; an XGBoost model got {list(trusted)}"
            )
        path = folder / "model.xgb.json"
        booster = estimator.get_booster()
        if estimator.get_params().get("early_stopping_rounds") is not None:
            # keep the trees up to the best round, the ones the fitted model predicts with
            booster = booster[: estimator.best_iteration + 1]
        booster.save_model(str(path))
        return path.name, []

    def file_name(self, source: Path) -> str:
        return "model.ubj" if source.suffix.lower() == ".ubj" else "model.xgb.json"

    def check_import(self, data: bytes, source: Path, trusted: Collection[str]) -> None:
        return None

    def is_own_format(self, data: bytes) -> bool:
        return data.lstrip()[:1] == b"{"

    def load(self, data: bytes, path: Path, *, trusted: Collection[str]) -> Any:
        xgboost = _import_xgboost()
        booster = xgboost.Booster()
        try:  # the bytes whose sha256 was checked, not the file again (it may have changed)
            booster.load_model(bytearray(data))
        except xgboost.core.XGBoostError as exc:
            raise ModelError(
                f"{path} is not a readable XGBoost model: {exc}", path=str(path)
            ) from exc
        return booster

    def predict(self, model: Any, X: np.ndarray) -> np.ndarray:
        return np.asarray(model.inplace_predict(X))

    def predict_proba(self, model: Any, X: np.ndarray) -> np.ndarray | None:
        margin = np.asarray(model.inplace_predict(X, predict_type="margin"))
        return _margin_to_proba(margin)

    def describe(self, model: Any) -> tuple[str, int | None, list[Any] | None]:
        config = json.loads(model.save_config())["learner"]
        objective = config["objective"]["name"]
        width = model.num_features()
        if objective.startswith(("binary:", "multi:")):
            k = max(2, int(config["learner_model_param"].get("num_class", "0")))
            return "classification", width, list(range(k))
        if objective.startswith("rank:"):
            raise ModelError(f"XGBoost ranking objective {objective!r} cannot be served")
        return "regression", width, None


def _import_xgboost() -> Any:
    try:
        import xgboost
    except ImportError as exc:
        raise ModelError(
            "XGBoost models need xgboost", hint='pip install "lockgate[xgboost]"'
        ) from exc
    return xgboost


def _margin_to_proba(margin: np.ndarray) -> np.ndarray:
    if margin.ndim == 1 or margin.shape[1] == 1:
        p = 1.0 / (1.0 + np.exp(-margin.reshape(-1)))
        return np.column_stack([1.0 - p, p])
    shifted = np.exp(margin - margin.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True), dtype=np.float64)


FRAMEWORK = XGBoostFramework()
