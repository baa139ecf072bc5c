"""XGBoost's JSON or UBJ model, imported only (lockgate's trainers do not produce it)."""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from lockgate.errors import ModelError


class XGBoostFramework:
    name = "xgboost"
    description = "XGBoost boosters imported as XGBoost's JSON or UBJ model"
    suffixes = (".json", ".ubj")
    takes_trust = False
    predicts_labels = False
    format_name = "XGBoost's JSON or UBJ model"

    def claims(self, estimator: Any) -> str | None:
        return None  # not saved by train: its scikit-learn wrappers go through skops

    def save(
        self, estimator: Any, folder: Path, *, trusted: Collection[str]
    ) -> tuple[str, list[str]]:
        raise ModelError("lockgate imports XGBoost models but does not save them")

    def file_name(self, source: Path) -> str:
        return "model.ubj" if source.suffix.lower() == ".ubj" else "model.xgb.json"

    def check_import(self, data: bytes, source: Path, trusted: Collection[str]) -> None:
        return None

    def is_own_format(self, data: bytes) -> bool:
        return data.lstrip()[:1] == b"{"

    def load(self, data: bytes, path: Path, *, trusted: Collection[str]) -> Any:
        try:
            import xgboost
        except ImportError as exc:
            raise ModelError(
                "XGBoost models need xgboost", hint='pip install "lockgate[xgboost]"'
            ) from exc
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


def _margin_to_proba(margin: np.ndarray) -> np.ndarray:
    if margin.ndim == 1 or margin.shape[1] == 1:
        p = 1.0 / (1.0 + np.exp(-margin.reshape(-1)))
        return np.column_stack([1.0 - p, p])
    shifted = np.exp(margin - margin.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True), dtype=np.float64)


FRAMEWORK = XGBoostFramework()
