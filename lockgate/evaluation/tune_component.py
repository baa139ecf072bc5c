"""The ``tune`` component: a hyperparameter search whose trials train as ``train`` does
and are scored as ``evaluate`` scores, on the eval split.

It lives with the evaluation layer because it scores with lockgate's own metrics
(``evaluation.metrics``), which the training layer below may not import; the search
space, the study's storage and the trial loop are ``lockgate.training.tuning``.
"""

from __future__ import annotations

import json
from typing import Any

from lockgate.core.artifacts import Examples, HyperParameters, TransformGraph
from lockgate.core.component import Input, Output, component

#: The metrics tune can optimise, per task (those ``compute_metrics`` computes).
METRICS = {
    "classification": ("accuracy", "f1_macro", "log_loss"),
    "regression": ("mae", "r2", "rmse"),
}
DEFAULT_METRIC = {"classification": "log_loss", "regression": "rmse"}


@component
def tune(
    examples: Input[Examples],
    transform: Input[TransformGraph],
    hyperparameters: Output[HyperParameters],
    *,
    search_space: dict[str, Any],
    trainer: str = "lightgbm",
    n_trials: int = 20,
    metric: str | None = None,
    params: dict[str, Any] | None = None,
    seed: int = 0,
    pruning: bool = True,
    study_name: str | None = None,
    timeout: float | None = None,
) -> None:
    """Search ``search_space`` (see ``lockgate.training.tuning``) with Optuna's TPE sampler:
    each trial trains ``trainer`` on the train split with ``params`` and the trial's values,
    and is scored with ``metric`` (default log_loss, or rmse for regression) on the eval
    split. ``pruning`` stops a trial whose eval loss lags the others' at the same round
    (LightGBM, XGBoost). The study lives in the project's metadata database; its name
    defaults to one derived from the pipeline, the step, the trainer, the space, ``params``,
    the metric, the seed and the data, so that raising ``n_trials`` runs only the trials
    the study lacks. The best parameters (with ``params``) go to ``train(hyperparameters=...)``.
    """
    from lockgate.core.launcher import current_step
    from lockgate.training import tuning
    from lockgate.training.components import load_transform, prepare

    context = current_step()
    where = f"tune step '{context.step}'" if context is not None else "tune"
    graph = load_transform(transform)
    dimensions = tuning.parse_space(search_space)
    chosen, direction = _metric(metric, graph.task)
    fixed = dict(params or {})
    _check(where, trainer, graph.task, fixed, dimensions, n_trials, timeout, seed)
    _, X, y = prepare(examples, graph, "train")
    _, X_eval, y_eval = prepare(examples, graph, "eval")
    n_classes = len(graph.label_classes) if graph.label_classes else None

    def objective(values: dict[str, Any], report: Any) -> float:
        return _trial(
            X, y, X_eval, y_eval, trainer, graph.task, {**fixed, **values}, seed, report,
            chosen, n_classes,
        )  # fmt: skip

    key = {
        "trainer": trainer,
        "task": graph.task,
        "search_space": search_space,
        "params": fixed,
        "metric": chosen,
        "seed": seed,
        "pruning": pruning,
        "examples": examples.fingerprint,
        "transform": transform.fingerprint,
    }
    name = study_name or tuning.study_name(
        pipeline=context.pipeline if context else "",
        step=context.step if context else "",
        key=key,
    )
    storage = tuning.open_storage(context.store.url if context is not None else None)
    try:
        result = tuning.run_study(
            objective,
            dimensions,
            storage=storage,
            name=name,
            direction=direction,
            n_trials=n_trials,
            seed=seed,
            pruning=pruning,
            timeout=timeout,
            attributes={"lockgate": json.loads(json.dumps(key, default=str))},
        )
    finally:
        storage.close()
    best = {**fixed, **result.best_params}
    record = {
        "params": best,
        "metric": chosen,
        "direction": result.direction,
        "best_value": result.best_value,
        "best_trial": result.best_trial,
        "trainer": trainer,
        "study_name": result.name,
        "storage": storage.shown,
        "trials": result.trials,
    }
    path = hyperparameters.path / HyperParameters.FILE_NAME
    path.write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
    hyperparameters.properties.update(
        params=best,
        metric=chosen,
        direction=result.direction,
        best_value=result.best_value,
        best_trial=result.best_trial,
        trials=len(result.trials),
        pruned=result.pruned,
        rounds=result.rounds,
        ran=result.ran,
        trainer=trainer,
        study_name=result.name,
        storage=storage.shown,
    )


def _metric(metric: str | None, task: str) -> tuple[str, str]:
    """(metric, "minimize" | "maximize"); an unknown one is a ConfigError listing the known."""
    from lockgate.errors import ConfigError, did_you_mean
    from lockgate.evaluation.blessing import HIGHER_IS_BETTER

    chosen = metric if metric is not None else DEFAULT_METRIC.get(task, "log_loss")
    known = METRICS.get(task, ())
    if chosen not in known:
        raise ConfigError(
            f"tune cannot optimise metric '{chosen}' for {task}; metrics are {list(known)}"
            f"{did_you_mean(chosen, known)}"
        )
    return chosen, "maximize" if chosen in HIGHER_IS_BETTER else "minimize"


def _check(
    where: str,
    trainer: Any,
    task: str,
    fixed: dict[str, Any],
    dimensions: list[Any],
    n_trials: Any,
    timeout: Any,
    seed: Any,
) -> None:
    """Everything that can be checked before a trial runs: counts, the trainer, and that it
    knows every parameter of ``params`` and of the search space (did you mean)."""
    from lockgate.errors import ConfigError
    from lockgate.training.trainers import _trainer_framework

    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ConfigError(f"{where}: n_trials must be a positive int; got {n_trials!r}")
    if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
        raise ConfigError(f"{where}: timeout must be a positive number of seconds; got {timeout!r}")
    if not isinstance(trainer, str):
        raise ConfigError(
            f"{where}: trainer must be a trainer name (tune reports each round's loss, which"
            f" your own function cannot); got {trainer!r}",
            hint='use trainer="lightgbm", "xgboost" or a scikit-learn one',
        )
    both = sorted(set(fixed) & {d.name for d in dimensions})
    if both:
        raise ConfigError(
            f"{where}: {both} are both fixed in params and searched in search_space",
            hint="keep each parameter in one of them",
        )
    framework, spec = _trainer_framework(trainer, task)
    for label, probe in (
        ("params", fixed),
        ("search_space", {**fixed, **{d.name: d.first() for d in dimensions}}),
    ):
        try:
            framework.estimator(spec, task, probe, seed)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {label}: {exc}", hint=exc.hint) from exc


def _trial(
    X: Any,
    y: Any,
    X_eval: Any,
    y_eval: Any,
    trainer: str,
    task: str,
    params: dict[str, Any],
    seed: int,
    report: Any,
    metric: str,
    n_classes: int | None,
) -> float:
    """One trial: fit on the train split (reporting each round's eval loss), score on eval."""
    from lockgate.errors import ModelError
    from lockgate.evaluation.metrics import compute_metrics
    from lockgate.training.trainers import train_model

    estimator = train_model(
        X, y, spec=trainer, params=params, task=task, seed=seed, eval_set=(X_eval, y_eval),
        report=report,
    )  # fmt: skip
    proba = None
    if task == "classification" and callable(getattr(estimator, "predict_proba", None)):
        import numpy as np

        # float64 rows that sum to one (XGBoost answers float32), as evaluate's models do
        proba = np.asarray(estimator.predict_proba(X_eval), dtype=np.float64)
        proba /= proba.sum(axis=1, keepdims=True)
        # the labels as the estimator's predict gives them, without predicting twice
        predicted = np.asarray(estimator.classes_)[proba.argmax(axis=1)]
    else:
        predicted = estimator.predict(X_eval)
    value = compute_metrics(task, y_eval, predicted, proba, n_classes).get(metric)
    if value is None:
        raise ModelError(f"metric '{metric}' is undefined on the eval split ({len(y_eval)} rows)")
    return float(value)
