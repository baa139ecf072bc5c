"""Building a scikit-learn-API estimator from a class, lockgate's defaults and the
pipeline's ``params``: the one place that names an unknown parameter and seeds it.

LightGBM and XGBoost take their booster's parameters through ``**kwargs`` besides the
estimator's own, and would ignore a misspelt one with a log line; here a name that neither
the estimator nor the booster knows is refused, as scikit-learn's are (``train`` and
``tune`` share the check)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from lockgate.errors import ConfigError, did_you_mean

#: Listed in the message when there are at most this many names (else only did-you-mean).
_LISTED = 40


def build_estimator(
    cls: type,
    defaults: dict[str, Any],
    params: dict[str, Any],
    seed: int,
    *,
    label: str,
    open_params: bool = False,
) -> Any:
    """``cls(**defaults, random_state=seed, **params)``; ``open_params`` for libraries
    that also take their booster's parameters through ``**kwargs`` (LightGBM, XGBoost)."""
    accepted = set(cls().get_params())
    known = accepted | booster_params(cls) if open_params else accepted
    for name in params:
        if name not in known:
            listed = f"; parameters are {sorted(known)}" if len(known) <= _LISTED else ""
            raise ConfigError(
                f"unknown parameter '{name}' for trainer '{label}' ({cls.__name__})"
                f"{listed}{did_you_mean(name, known)}",
                hint=_BOOSTER_DOCS.get(cls.__module__.split(".")[0], None),
            )
    defaults = dict(defaults)
    if "random_state" in accepted:
        defaults["random_state"] = seed
    try:
        return cls(**{**defaults, **params})
    except TypeError as exc:
        raise ConfigError(f"bad parameter for trainer '{label}': {exc}") from exc


def booster_params(cls: type) -> set[str]:
    """The booster parameters (and their aliases) of the library ``cls`` comes from; empty
    for a library lockgate has no list for (every name is then passed on unchecked)."""
    lister = _BOOSTER_LISTS.get(cls.__module__.split(".")[0])
    return set(lister()) if lister is not None else set()


@functools.cache
def _lightgbm_params() -> frozenset[str]:
    """Every LightGBM parameter and alias, as LightGBM itself lists them."""
    from lightgbm.basic import _ConfigAliases

    aliases = _ConfigAliases._get_all_param_aliases()
    return frozenset({*aliases, *(a for names in aliases.values() for a in names)})


#: XGBoost parameters its trained configuration (below) does not show: the dart booster's,
#: the linear booster's, objective-specific ones and the learner's (from its parameter docs).
_XGBOOST_EXTRA = frozenset(
    {
        "rate_drop",
        "one_drop",
        "skip_drop",
        "sample_type",
        "normalize_type",
        "feature_selector",
        "top_k",
        "updater",
        "tweedie_variance_power",
        "huber_slope",
        "quantile_alpha",
        "aft_loss_distribution",
        "aft_loss_distribution_scale",
        "lambdarank_pair_method",
        "lambdarank_num_pair_per_sample",
        "lambdarank_unbiased",
        "lambdarank_bias_norm",
        "ndcg_exp_gain",
        "eval_metric",
        "seed",
        "nthread",
        "verbosity",
        "use_rmm",
        "disable_default_eval_metric",
        "max_cached_hist_node",
        "extmem_single_page",
        "refresh_leaf",
        "process_type",
    }
)


@functools.cache
def _xgboost_params() -> frozenset[str]:
    """XGBoost's booster parameters: those its configuration names after one tiny round
    (tree, learner and objective parameters), and the documented others."""
    import json

    import numpy as np
    import xgboost

    data = xgboost.DMatrix(np.array([[0.0], [1.0]]), label=np.array([0.0, 1.0]))
    booster = xgboost.train({"verbosity": 0, "nthread": 1}, data, num_boost_round=1)
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str | int | float):
                    names.add(key)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(booster.save_config()))
    return frozenset(names | _XGBOOST_EXTRA)


_BOOSTER_LISTS: dict[str, Callable[[], frozenset[str]]] = {
    "lightgbm": _lightgbm_params,
    "xgboost": _xgboost_params,
}
_BOOSTER_DOCS = {
    "lightgbm": "see https://lightgbm.readthedocs.io/en/latest/Parameters.html",
    "xgboost": "see https://xgboost.readthedocs.io/en/stable/parameter.html",
}
