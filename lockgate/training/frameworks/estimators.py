"""Building a scikit-learn-API estimator from a class, lockgate's defaults and the
pipeline's ``params``: the one place that names an unknown parameter and seeds it."""

from __future__ import annotations

from typing import Any

from lockgate.errors import ConfigError, did_you_mean


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
    accepted = cls().get_params()
    if not open_params:
        for name in params:
            if name not in accepted:
                raise ConfigError(
                    f"unknown parameter '{name}' for trainer '{label}' ({cls.__name__});"
                    f" parameters are {sorted(accepted)}{did_you_mean(name, accepted)}"
                )
    defaults = dict(defaults)
    if "random_state" in accepted:
        defaults["random_state"] = seed
    try:
        return cls(**{**defaults, **params})
    except TypeError as exc:
        raise ConfigError(f"bad parameter for trainer '{label}': {exc}") from exc
