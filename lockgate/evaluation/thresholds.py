"""Thresholds as in TFMA, and the slices they apply to: the gate's settings (the checks
themselves are in ``evaluation/blessing.py``).

A :class:`Threshold` bounds one metric in up to four ways (each becomes one check per slice):

- value bounds on the candidate's point estimate: ``lower_bound``, ``upper_bound``;
- change against the baseline (the model in production), in the metric's bad direction:
  ``max_regression`` (absolute, in the metric's units) and ``max_relative_regression``
  (a fraction of the baseline's value: 0.05 allows 5% of it). The direction comes from
  the engine (``directions[metric]``) or the threshold's own ``higher_is_better``, which a
  metric of unknown direction requires;
- ``significant=True`` (change kinds only): the regression must also be significant on the
  paired resampled differences; see ``blessing.py`` for the rule.

``slices`` says where it applies: ``"overall"`` (the default), ``"every"`` (every slice,
overall included: "no slice may regress by more than 0.02"), or named slices, as a dict
``{"island": "Biscoe"}`` (crossed: ``{"island": "Biscoe", "sex": "male"}``, in any order;
``None`` names the missing value), a slice label as the report shows it
(``"island=Biscoe, sex=male"``), or a list of those.

The forms :func:`parse_thresholds` accepts::

    {"accuracy": {"lower_bound": 0.9, "max_regression": 0.02}}            # overall
    {"accuracy": [{"lower_bound": 0.9},
                  {"max_regression": 0.02, "slices": "every", "significant": True}]}
    [Threshold("accuracy", max_relative_regression=0.05, slices={"island": "Dream"}),
     {"metric": "log_loss", "upper_bound": 0.4}]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from lockgate.errors import ConfigError, did_you_mean
from lockgate.evaluation.results import ModelScores, SliceKey, SliceMetrics, slice_label

BOUND_KINDS = ("lower_bound", "upper_bound")
CHANGE_KINDS = ("max_regression", "max_relative_regression")
KINDS = BOUND_KINDS + CHANGE_KINDS

SliceSpec = str | Mapping[str, Any] | Sequence[str | Mapping[str, Any]]


@dataclass(frozen=True)
class Threshold:
    """Bounds on one metric on some slices; see the module docstring for each setting."""

    metric: str
    lower_bound: float | None = None
    upper_bound: float | None = None
    max_regression: float | None = None
    max_relative_regression: float | None = None
    higher_is_better: bool | None = None  # needed only where lockgate does not know
    slices: SliceSpec = "overall"
    significant: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not self.metric:
            raise ConfigError(f"a threshold's metric must be a metric name; got {self.metric!r}")
        where = f"the threshold on '{self.metric}'"
        for kind in KINDS:
            value = getattr(self, kind)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value)
            ):
                raise ConfigError(f"{kind} of {where} must be a number; got {value!r}")
        for kind in CHANGE_KINDS:
            value = getattr(self, kind)
            if value is not None and value < 0:
                raise ConfigError(f"{kind} of {where} must be >= 0; got {value}")
        if all(getattr(self, kind) is None for kind in KINDS):
            raise ConfigError(f"{where} sets no bound; set at least one of {list(KINDS)}")
        if (
            self.lower_bound is not None
            and self.upper_bound is not None
            and self.lower_bound > self.upper_bound
        ):
            raise ConfigError(
                f"{where} has lower_bound {self.lower_bound} > upper_bound {self.upper_bound};"
                " no value can meet both"
            )
        if self.higher_is_better is not None and not isinstance(self.higher_is_better, bool):
            raise ConfigError(
                f"higher_is_better of {where} must be true or false; got {self.higher_is_better!r}"
            )
        if not isinstance(self.significant, bool):
            raise ConfigError(
                f"significant of {where} must be true or false; got {self.significant!r}"
            )
        if self.significant and not self.change_kinds:
            raise ConfigError(
                f"{where} sets significant=True but no change threshold; significance applies"
                " to max_regression and max_relative_regression"
            )
        _slice_targets(self)  # fails now, not at the first evaluation

    @property
    def kinds(self) -> list[str]:
        """The kinds of check this threshold makes, in a fixed order."""
        return [kind for kind in KINDS if getattr(self, kind) is not None]

    @property
    def change_kinds(self) -> list[str]:
        return [kind for kind in CHANGE_KINDS if getattr(self, kind) is not None]

    def to_dict(self) -> dict[str, Any]:
        """The settings that differ from the defaults, as JSON-able data (``metric`` first)."""
        data: dict[str, Any] = {"metric": self.metric}
        for f in fields(self)[1:]:
            value = getattr(self, f.name)
            if value != f.default:
                data[f.name] = _plain_slices(value) if f.name == "slices" else value
        return data


def parse_thresholds(
    thresholds: Threshold
    | Sequence[Threshold | Mapping[str, Any]]
    | Mapping[str, Mapping[str, Any] | Sequence[Mapping[str, Any]]]
    | None,
) -> list[Threshold]:
    """Accept ``{"accuracy": {"lower_bound": 0.9}}`` (a list of such dicts per metric too),
    or a list of :class:`Threshold` and of dicts with ``"metric"``."""
    if thresholds is None:
        return []
    if isinstance(thresholds, Threshold):
        return [thresholds]
    if isinstance(thresholds, Mapping):
        parsed: list[Threshold] = []
        for metric, spec in thresholds.items():
            specs = [spec] if isinstance(spec, Mapping) else spec
            if isinstance(specs, str) or not isinstance(specs, Sequence):
                raise ConfigError(
                    f"the threshold on '{metric}' must be a dict of settings (or a list of"
                    f" them); got {spec!r}"
                )
            parsed.extend(_from_mapping(s, metric=metric) for s in specs)
        return parsed
    if isinstance(thresholds, str) or not isinstance(thresholds, Sequence):
        raise ConfigError(
            "thresholds must be a dict {metric: settings} or a list of Threshold or of dicts"
            f" with 'metric'; got {thresholds!r}"
        )
    return [t if isinstance(t, Threshold) else _from_mapping(t) for t in thresholds]


def _from_mapping(spec: Any, *, metric: str | None = None) -> Threshold:
    if isinstance(spec, Threshold):
        return spec
    if not isinstance(spec, Mapping):
        raise ConfigError(f"a threshold must be a Threshold or a dict of settings; got {spec!r}")
    settings = dict(spec)
    if metric is not None:
        if settings.setdefault("metric", metric) != metric:
            raise ConfigError(
                f"the threshold under '{metric}' names another metric, '{settings['metric']}'"
            )
    elif "metric" not in settings:
        raise ConfigError(f"a threshold given as a dict needs 'metric'; got {dict(spec)!r}")
    names = [f.name for f in fields(Threshold)]
    for key in settings:
        if key not in names:
            raise ConfigError(
                f"unknown threshold setting '{key}' for metric '{settings['metric']}'; settings"
                f" are {names[1:]}{did_you_mean(str(key), names)}"
            )
    return Threshold(**settings)


@dataclass(frozen=True)
class _Named:
    """One named slice: from a dict (matched on its feature/value pairs in any order, values
    compared as text) or a label string (matched on the label)."""

    label: str
    pairs: frozenset[tuple[str, str | None]] | None = None

    def matches(self, key: SliceKey) -> bool:
        if self.pairs is None:
            return slice_label(key) == self.label
        return _pairs(key) == self.pairs


def _pairs(key: Any) -> frozenset[tuple[str, str | None]]:
    return frozenset((str(f), None if v is None else str(v)) for f, v in key)


def _slice_targets(t: Threshold) -> str | tuple[_Named, ...]:
    """``"overall"``, ``"every"`` or the named slices of a threshold (validated)."""
    spec = t.slices
    if spec in ("overall", "every"):
        return str(spec)
    items = [spec] if isinstance(spec, str | Mapping) else spec
    if not isinstance(items, Sequence) or not items:
        raise ConfigError(
            f"slices of the threshold on '{t.metric}' must be 'overall', 'every', a slice"
            f" ({{'island': 'Biscoe'}} or 'island=Biscoe') or a list of slices; got {spec!r}"
        )
    named = []
    for item in items:
        if isinstance(item, str):
            named.append(_Named("Overall" if item == "overall" else item))
        elif isinstance(item, Mapping) and all(isinstance(f, str) for f in item):
            named.append(_Named(slice_label(tuple(item.items())), _pairs(item.items())))
        else:
            raise ConfigError(
                f"a slice of the threshold on '{t.metric}' must be a dict of feature to value"
                f" or a slice label; got {item!r}"
            )
    return tuple(dict.fromkeys(named))


def _plain_slices(spec: SliceSpec) -> Any:
    if isinstance(spec, str):
        return spec
    if isinstance(spec, Mapping):
        return dict(spec)
    return [s if isinstance(s, str) else dict(s) for s in spec]


def resolve_slices(t: Threshold, scores: ModelScores) -> list[SliceMetrics]:
    """The candidate's slices a threshold applies to; a named slice that is not there is a
    ConfigError listing the slice labels."""
    targets = _slice_targets(t)
    if targets == "overall":
        return [scores.overall]
    if isinstance(targets, str):
        return list(scores.slices)
    resolved: dict[SliceKey, SliceMetrics] = {}
    labels = [s.label for s in scores.slices]
    for named in targets:
        found = [s for s in scores.slices if named.matches(s.key)]
        if not found:
            raise ConfigError(
                f"the threshold on '{t.metric}' names slice '{named.label}', which the"
                f" evaluation does not have; slices are {labels}"
                f"{did_you_mean(named.label, [*labels, 'every'])}",
                hint="slice_by decides the slices: add the feature (or the crossed features)",
            )
        resolved.update((s.key, s) for s in found)
    return list(resolved.values())


__all__ = [
    "BOUND_KINDS",
    "CHANGE_KINDS",
    "KINDS",
    "Threshold",
    "parse_thresholds",
    "resolve_slices",
]
