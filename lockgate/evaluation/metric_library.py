"""The metrics the evaluator knows by name, their direction, and the user's own metrics.

A name is what thresholds, the report and ``evaluation.json`` use, so it is checked here,
once, with a "did you mean" for a typo and a clear word for a metric of the other task.
Per-class metrics are named ``"precision[<class>]"``, ``"recall[<class>]"`` and
``"f1[<class>]"``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lockgate.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    import numpy as np

TASKS = ("classification", "regression")

#: classification metrics from the confusion matrix (no probabilities needed)
COUNT_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "precision_macro",
    "precision_micro",
    "precision_weighted",
    "recall_macro",
    "recall_micro",
    "recall_weighted",
    "f1_macro",
    "f1_micro",
    "f1_weighted",
)
#: of the positive class 1; binary only
BINARY_METRICS = ("precision", "recall", "f1")
#: need ``proba``
PROBA_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier_score", "expected_calibration_error")
PER_CLASS = ("precision", "recall", "f1")
REGRESSION_METRICS = (
    "mae",
    "mse",
    "rmse",
    "r2",
    "mape",
    "median_absolute_error",
    "residual_p10",
    "residual_p50",
    "residual_p90",
)
CLASSIFICATION_METRICS = COUNT_METRICS + BINARY_METRICS + PROBA_METRICS

_LOWER_IS_BETTER = {
    "log_loss",
    "brier_score",
    "expected_calibration_error",
    "mae",
    "mse",
    "rmse",
    "mape",
    "median_absolute_error",
}
_NO_DIRECTION = {"residual_p10", "residual_p50", "residual_p90"}
_PER_CLASS_NAME = re.compile(r"^(precision|recall|f1)\[(.*)\]$")


@dataclass(frozen=True)
class Metric:
    """The user's own metric: ``fn(y_true, y_pred, proba) -> float`` on the rows of one slice
    (``proba`` is None for regression). Its intervals come from calling ``fn`` once per
    resample on the resampled rows, a Python loop, so it is slower than the built-ins."""

    fn: Callable[[np.ndarray, np.ndarray, np.ndarray | None], float]
    name: str
    higher_is_better: bool | None = True


def metric(
    fn: Callable[[np.ndarray, np.ndarray, np.ndarray | None], float],
    *,
    name: str | None = None,
    higher_is_better: bool | None = True,
) -> Metric:
    """Wrap ``fn`` as a metric named ``name`` (default ``fn.__name__``) for ``metrics=``."""
    return Metric(fn=fn, name=name or fn.__name__, higher_is_better=higher_is_better)


def class_labels(n_classes: int, class_names: Sequence[str] | None) -> list[str]:
    """The names used inside ``precision[...]``: the class names, else the indices."""
    if class_names is not None:
        if len(class_names) != n_classes:
            raise ConfigError(f"class_names has {len(class_names)} names for {n_classes} classes")
        return [str(c) for c in class_names]
    return [str(c) for c in range(n_classes)]


def metric_names(
    task: str,
    n_classes: int = 0,
    class_names: Sequence[str] | None = None,
    *,
    has_proba: bool = True,
) -> list[str]:
    """The metrics ``score_models`` computes by default for the task, in report order."""
    check_task(task)
    if task == "regression":
        return list(REGRESSION_METRICS)
    names = list(COUNT_METRICS)
    if n_classes == 2:
        names += list(BINARY_METRICS)
    for prefix in PER_CLASS:
        names += [f"{prefix}[{label}]" for label in class_labels(n_classes, class_names)]
    if has_proba:
        names += list(PROBA_METRICS)
    return names


def higher_is_better(metric: str, metrics: Sequence[str | Metric] = ()) -> bool | None:
    """True or False for a built-in (or per-class) name or a user metric in ``metrics``;
    None for a metric without a direction (residual quantiles) or one not known."""
    for m in metrics:
        if isinstance(m, Metric) and m.name == metric:
            return m.higher_is_better
    match = _PER_CLASS_NAME.match(metric)
    if match:
        return True
    if metric in _NO_DIRECTION:
        return None
    if metric in _LOWER_IS_BETTER:
        return False
    if metric in CLASSIFICATION_METRICS or metric in REGRESSION_METRICS:
        return True
    return None


def check_task(task: str) -> None:
    if task not in TASKS:
        raise ConfigError(f"task must be 'classification' or 'regression'; got {task!r}")


def resolve(
    task: str,
    requested: Sequence[str | Metric | Callable[..., float]] | None,
    n_classes: int,
    class_names: Sequence[str] | None,
    *,
    has_proba: bool,
) -> tuple[list[str], list[Metric]]:
    """Split ``metrics=`` into built-in names (checked) and user metrics, in the order given.
    User metrics come on top of the built-ins: with no built-in named, all of the task's."""
    default = metric_names(task, n_classes, class_names, has_proba=has_proba)
    if requested is None:
        return default, []
    every = metric_names(task, n_classes, class_names, has_proba=True)
    builtins: list[str] = []
    users: list[Metric] = []
    for item in requested:
        if isinstance(item, Metric):
            users.append(item)
        elif callable(item):
            users.append(metric(item))
        elif isinstance(item, str):
            builtins.append(_check_name(task, item, n_classes, every, has_proba=has_proba))
        else:
            raise ConfigError(
                f"a metric must be a name or a function fn(y_true, y_pred, proba); got {item!r}"
            )
    if not builtins:
        builtins = default
    names = builtins + [u.name for u in users]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"metrics named more than once: {duplicates}")
    return builtins, users


def _check_name(task: str, name: str, n_classes: int, every: list[str], *, has_proba: bool) -> str:
    if name not in every:
        other = "regression" if task == "classification" else "classification"
        if name in (REGRESSION_METRICS if other == "regression" else CLASSIFICATION_METRICS):
            raise ConfigError(
                f"metric '{name}' is a {other} metric, not available for {task}; "
                f"{task} metrics are {every}"
            )
        if task == "classification" and name in BINARY_METRICS:
            raise ConfigError(
                f"metric '{name}' (of the positive class) needs a binary task; this one has "
                f"{n_classes} classes: use '{name}_macro' or '{name}[<class>]'"
            )
        raise ConfigError(f"unknown metric '{name}' for {task}{did_you_mean(name, every)}")
    if name in PROBA_METRICS and not has_proba:
        raise ConfigError(f"metric '{name}' needs predicted probabilities, and a model gave none")
    return name
