"""XGBoost: ``trainer="xgboost"`` saves its booster as XGBoost's JSON model
(``model.xgb.json``); ``models import`` also takes JSON or UBJ files. Read as a Booster."""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from lockgate.errors import ConfigError, ModelError
from lockgate.training.frameworks.base import Report
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
    devices = ("cpu", "cuda")

    def estimator(
        self, spec: str, task: str, params: dict[str, Any], seed: int, *, device: str = "cpu"
    ) -> Any:
        xgboost = _import_xgboost()
        cls = xgboost.XGBClassifier if task == "classification" else xgboost.XGBRegressor
        defaults = {"n_jobs": 1, "tree_method": "hist", "verbosity": 0, "device": device}
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
        base_model: Any = None,
        report: Report | None = None,
    ) -> Any:
        """A ``base_model`` Booster is continued from (``xgb_model``); ``report`` rides
        on an XGBoost training callback, removed again after the fit."""
        kwargs: dict[str, Any] = {"sample_weight": sample_weight}
        if base_model is not None:
            kwargs["xgb_model"] = base_model
        if eval_set is not None:
            kwargs.update(eval_set=[eval_set], verbose=False)
        if report is None:
            return estimator.fit(X, y, **kwargs)
        estimator.set_params(callbacks=[_reporting(report)])
        try:
            return estimator.fit(X, y, **kwargs)
        finally:
            estimator.set_params(callbacks=None)

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
        from lockgate.training.xgboost_checks import check_xgboost_model

        xgboost = _import_xgboost()
        check_xgboost_model(data, str(path))  # XGBoost crashes on a tree out of range
        booster = xgboost.Booster()
        try:  # the bytes whose sha256 was checked, not the file again (it may have changed)
            booster.load_model(bytearray(data))
        except xgboost.core.XGBoostError as exc:
            first = str(exc).split("\n")[0]  # the rest is XGBoost's C++ stack trace
            raise ModelError(
                f"{path} is not a readable XGBoost model: {first}", path=str(path)
            ) from exc
        return booster

    def predict(self, model: Any, X: np.ndarray) -> np.ndarray:
        return np.asarray(model.inplace_predict(X))

    def predict_proba(self, model: Any, X: np.ndarray) -> np.ndarray | None:
        # float64 before the softmax: float32 rows sum to 1 only within ~1e-7
        margin = np.asarray(model.inplace_predict(X, predict_type="margin"), dtype=np.float64)
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


def _reporting(report: Report) -> Any:
    """An XGBoost callback that reports the last eval metric of each round as a loss."""
    import xgboost

    class Reporting(xgboost.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            for metrics in evals_log.values():
                name, values = next(iter(metrics.items()))
                value = float(values[-1][0] if isinstance(values[-1], tuple) else values[-1])
                report(epoch, -value if name in _HIGHER_IS_BETTER else value)
                break
            return False

    return Reporting()


#: XGBoost eval metrics where higher is better (the rest are losses)
_HIGHER_IS_BETTER = {"auc", "aucpr", "map", "ndcg", "pre"}


def _margin_to_proba(margin: np.ndarray) -> np.ndarray:
    if margin.ndim == 1 or margin.shape[1] == 1:
        p = 1.0 / (1.0 + np.exp(-margin.reshape(-1)))
        return np.column_stack([1.0 - p, p])
    shifted = np.exp(margin - margin.max(axis=1, keepdims=True))
    proba = np.asarray(shifted / shifted.sum(axis=1, keepdims=True), dtype=np.float64)
    # float32 rows cast to float64 miss one by ~1e-7, which log_loss warns about
    return np.asarray(proba / proba.sum(axis=1, keepdims=True), dtype=np.float64)


FRAMEWORK = XGBoostFramework()
