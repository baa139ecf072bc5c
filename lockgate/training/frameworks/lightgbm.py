"""LightGBM through its native text model (``model.txt``), read as a Booster."""

from __future__ import annotations

import inspect
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from lockgate.errors import ConfigError, ModelError
from lockgate.training.frameworks.estimators import build_estimator


class LightGBMFramework:
    name = "lightgbm"
    description = "LightGBM models saved as LightGBM's text model (model.txt)"
    suffixes = (".txt",)
    takes_trust = False
    predicts_labels = False
    format_name = "LightGBM's text model"
    library = "lightgbm"
    trainers = {"lightgbm": ("classification", "regression")}

    def estimator(self, spec: str, task: str, params: dict[str, Any], seed: int) -> Any:
        import lightgbm

        cls = lightgbm.LGBMClassifier if task == "classification" else lightgbm.LGBMRegressor
        defaults = {"verbose": -1, "n_jobs": 1, "deterministic": True, "force_row_wise": True}
        # LightGBM also takes booster parameters through **kwargs
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
        """With ``eval_set``, LightGBM stops on it by its ``early_stopping_rounds``
        parameter; the saved model holds the trees up to the best iteration."""
        if eval_set is None:
            return estimator.fit(X, y, sample_weight=sample_weight)
        if "eval_X" in inspect.signature(estimator.fit).parameters:  # LightGBM >= 4.6
            return estimator.fit(
                X, y, sample_weight=sample_weight, eval_X=(eval_set[0],), eval_y=(eval_set[1],)
            )
        return estimator.fit(X, y, sample_weight=sample_weight, eval_set=[eval_set])

    def claims(self, estimator: Any) -> str | None:
        try:
            import lightgbm
        except ImportError:  # pragma: no cover - lightgbm is a core dependency
            return None
        if not isinstance(estimator, lightgbm.LGBMModel):
            return None
        return "classification" if isinstance(estimator, lightgbm.LGBMClassifier) else "regression"

    def save(
        self, estimator: Any, folder: Path, *, trusted: Collection[str]
    ) -> tuple[str, list[str]]:
        if trusted:
            raise ConfigError(
                f"train(trust=...) applies to skops files; a LightGBM model got {list(trusted)}"
            )
        path = folder / "model.txt"
        estimator.booster_.save_model(str(path))
        return path.name, []

    def file_name(self, source: Path) -> str:
        return "model.txt"

    def check_import(self, data: bytes, source: Path, trusted: Collection[str]) -> None:
        return None

    def is_own_format(self, data: bytes) -> bool:
        return data.lstrip()[:5] in (b"tree\n", b"tree\r")

    def load(self, data: bytes, path: Path, *, trusted: Collection[str]) -> Any:
        """From LightGBM's text model only (``check_format`` saw its header)."""
        import lightgbm

        try:
            return lightgbm.Booster(model_str=data.decode("utf-8"))
        except (lightgbm.basic.LightGBMError, UnicodeDecodeError) as exc:
            raise ModelError(
                f"{path} is not a readable LightGBM model: {exc}", path=str(path)
            ) from exc

    def predict(self, model: Any, X: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(X), dtype=np.float64)

    def predict_proba(self, model: Any, X: np.ndarray) -> np.ndarray | None:
        """A binary Booster returns p(class 1) only; make it two columns like sklearn."""
        raw = np.asarray(model.predict(X), dtype=np.float64)
        return np.column_stack([1.0 - raw, raw]) if raw.ndim == 1 else raw

    def describe(self, model: Any) -> tuple[str, int | None, list[Any] | None]:
        dump = model.dump_model(num_iteration=0)
        objective = str(dump.get("objective", ""))
        width = model.num_feature()
        if objective.startswith(("binary", "multiclass", "multiclassova", "cross_entropy")):
            k = max(2, int(dump.get("num_class", 1)))
            return "classification", width, list(range(k))
        return "regression", width, None


FRAMEWORK = LightGBMFramework()
