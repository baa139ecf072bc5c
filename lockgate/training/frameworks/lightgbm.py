"""LightGBM through its native text model (``model.txt``), read as a Booster."""

from __future__ import annotations

import inspect
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from lockgate.errors import ConfigError, ModelError
from lockgate.training.frameworks.base import Report
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
    #: LightGBM's pip wheels train on the CPU only (its CUDA build is compiled by hand)
    devices = ("cpu",)

    def estimator(
        self, spec: str, task: str, params: dict[str, Any], seed: int, *, device: str = "cpu"
    ) -> Any:
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
        base_model: Any = None,
        report: Report | None = None,
    ) -> Any:
        """With ``eval_set``, LightGBM stops on it by its ``early_stopping_rounds``
        parameter (the saved model holds the trees up to the best iteration); a
        ``base_model`` Booster is continued from (``init_model``)."""
        kwargs: dict[str, Any] = {"sample_weight": sample_weight}
        if base_model is not None:
            kwargs["init_model"] = base_model
        if report is not None:
            kwargs["callbacks"] = [_reporting(report)]
        if eval_set is not None:
            if "eval_X" in inspect.signature(estimator.fit).parameters:  # LightGBM >= 4.6
                kwargs.update(eval_X=(eval_set[0],), eval_y=(eval_set[1],))
            else:
                kwargs["eval_set"] = [eval_set]
        return estimator.fit(X, y, **kwargs)

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

        from lockgate.training.lightgbm_checks import readable_lightgbm_text

        text = readable_lightgbm_text(data, str(path))  # LightGBM's parser crashes on bad text
        try:
            return lightgbm.Booster(model_str=text)
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


def _reporting(report: Report) -> Any:
    """A LightGBM callback that reports the first eval metric of each round, as a loss."""

    def callback(env: Any) -> None:
        if env.evaluation_result_list:
            _, _, value, higher_is_better = env.evaluation_result_list[0][:4]
            report(env.iteration - env.begin_iteration, -value if higher_is_better else value)

    callback.order = 30  # type: ignore[attr-defined]  # after early stopping's bookkeeping
    return callback


FRAMEWORK = LightGBMFramework()
