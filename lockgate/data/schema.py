"""The schema: what the data should look like, inferred once, then owned by people.

``Schema.from_statistics`` writes a first draft (the rules are in ``schema_inference``);
from then on the YAML file is edited, reviewed and versioned like code, and
``validate.find_anomalies`` checks every new span against it. Loading validates every
field so that a typo fails here, with the file and the feature named, not as a puzzling
anomaly later. Files written before a field existed still load: every field but ``type``
is optional and its default is the behaviour those files had.
"""

from __future__ import annotations

import json
import math
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lockgate.data.anomaly import DEFAULT_SEVERITY, SEVERITIES, Severity
from lockgate.data.schema_diff import SchemaChange, diff_schemas
from lockgate.errors import DataError, SchemaError, did_you_mean

__all__ = [
    "DEFAULT_DRIFT_THRESHOLD",
    "DEFAULT_SKEW_THRESHOLD",
    "TYPES",
    "FeatureSpec",
    "Schema",
    "SchemaChange",
    "diff_schemas",
]

TYPES: tuple[str, ...] = ("int", "float", "string", "bool", "timestamp", "list")
#: Used where a feature sets no threshold: L-infinity for categoricals, Jensen-Shannon
#: divergence for numerics, both in [0, 1]. 0.1 is about a 0.75 standard-deviation shift of
#: a normal, or ten points of probability moved between two categories.
DEFAULT_DRIFT_THRESHOLD = 0.1
DEFAULT_SKEW_THRESHOLD = 0.1

_KEYS = (
    "type",
    "min_presence",
    "nullable",
    "domain",
    "domain_tolerance",
    "range",
    "value_count",
    "max_distinct",
    "severity",
    "drift_threshold",
    "skew_threshold",
)
#: Severity can be set per feature for these; ``new_column`` has no feature entry to hold it.
_FEATURE_KINDS = tuple(k for k in DEFAULT_SEVERITY if k not in ("new_column", "no_rows"))
_HEADER = """\
# lockgate schema: what every span of this data must look like.
# Inferred from statistics as a first draft; it is meant to be edited by people and kept in
# version control. Top level: `key: [columns]` (optional) is a key that must not repeat.
# Per feature (only `type` is required):
#   type              int | float | string | bool | timestamp | list (int data is fine for float)
#   min_presence      fraction of rows that must have a value (default 0.0: optional)
#   nullable          false: any missing value is an anomaly (default true)
#   domain            allowed values of a string, bool or list feature
#   domain_tolerance  fraction of values allowed outside the domain (default 0.0)
#   range             [min, max] allowed for a numeric feature
#   value_count       [min, max] values per row of a list feature
#   max_distinct      more distinct values than this is a cardinality jump
#   severity          error | warning for every anomaly of the feature, or per kind, e.g.
#                     {out_of_range: warning}; an error stops the run, a warning reports
#   drift_threshold   max distance to the previous span (default 0.1; L-infinity for
#                     categoricals, Jensen-Shannon divergence for numerics)
#   skew_threshold    max distance between training and serving data (default 0.1)
# Drift or skew over a threshold written here is an error; over the default, a warning.
"""


@dataclass
class FeatureSpec:
    """What one feature must satisfy; every field past ``range`` is keyword-only.

    ``severity`` is either one severity for every kind of anomaly of this feature or a
    mapping from kind to severity; kinds it does not name keep ``DEFAULT_SEVERITY``.
    """

    type: str
    min_presence: float = 0.0
    domain: list[str] | None = None
    range: tuple[float, float] | None = None
    _: KW_ONLY
    nullable: bool = True
    domain_tolerance: float = 0.0
    value_count: tuple[int, int] | None = None
    max_distinct: int | None = None
    severity: Severity | dict[str, Severity] | None = None
    drift_threshold: float | None = None
    skew_threshold: float | None = None

    def severity_for(self, kind: str, default: Severity | None = None) -> Severity:
        """The severity this feature gives ``kind``: its own setting, else ``default``,
        else the kind's built-in one."""
        if isinstance(self.severity, str):
            return self.severity
        if self.severity is not None and kind in self.severity:
            return self.severity[kind]
        return default or DEFAULT_SEVERITY[kind]

    def to_dict(self) -> dict[str, Any]:
        """Only the fields that differ from their default, so the YAML stays short."""
        out: dict[str, Any] = {"type": self.type, "min_presence": self.min_presence}
        if not self.nullable:
            out["nullable"] = False
        if self.domain is not None:
            out["domain"] = list(self.domain)
        if self.domain_tolerance:
            out["domain_tolerance"] = self.domain_tolerance
        for key in ("range", "value_count"):
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value)
        for key in ("max_distinct", "drift_threshold", "skew_threshold"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.severity is not None:
            out["severity"] = (
                self.severity if isinstance(self.severity, str) else dict(self.severity)
            )
        return out

    @classmethod
    def from_dict(cls, name: str, d: Any, *, path: str | None = None) -> FeatureSpec:
        def fail(what: str) -> SchemaError:
            where = f" in {path}" if path else ""
            return SchemaError(f"feature '{name}'{where}: {what}", path=path)

        if not isinstance(d, dict):
            raise fail(f"expected a mapping of {list(_KEYS)}; got {d!r} instead")
        for key in d:
            if key not in _KEYS:
                raise fail(f"unknown key '{key}'; keys are {list(_KEYS)}{did_you_mean(key, _KEYS)}")
        kind = d.get("type")
        if kind not in TYPES:
            raise fail(f"unknown type {kind!r}; types are {list(TYPES)}")
        spec = cls(type=kind)
        spec.min_presence = _fraction(d, "min_presence", 0.0, fail)
        nullable = d.get("nullable", True)
        if not isinstance(nullable, bool):
            raise fail(f"nullable must be true or false; got {nullable!r}")
        spec.nullable = nullable
        domain = d.get("domain")
        if domain is not None:
            if kind not in ("string", "bool", "list") or not isinstance(domain, list):
                raise fail(
                    f"domain must be a list and only for string, bool or list; got {domain!r}"
                )
            spec.domain = [_domain_value(v) for v in domain]
        if "domain_tolerance" in d and domain is None:
            raise fail("domain_tolerance needs a domain; add one or remove the tolerance")
        spec.domain_tolerance = _fraction(d, "domain_tolerance", 0.0, fail)
        rng = d.get("range")
        if rng is not None:
            if kind not in ("int", "float", "list") or not _pair(rng, float):
                raise fail(f"range must be [min, max] with min <= max, numeric only; got {rng!r}")
            spec.range = (rng[0], rng[1])
        counts = d.get("value_count")
        if counts is not None:
            if kind != "list" or not _pair(counts, int) or counts[0] < 0:
                raise fail(f"value_count must be [min, max] counts, list only; got {counts!r}")
            spec.value_count = (counts[0], counts[1])
        most = d.get("max_distinct")
        if most is not None and (isinstance(most, bool) or not isinstance(most, int) or most < 1):
            raise fail(f"max_distinct must be a positive integer; got {most!r}")
        spec.max_distinct = most
        spec.severity = _severity(d.get("severity"), fail)
        for key in ("drift_threshold", "skew_threshold"):
            if d.get(key) is not None:
                setattr(spec, key, _fraction(d, key, 0.0, fail))
        return spec


def _fraction(d: dict[str, Any], key: str, default: float, fail: Any) -> float:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise fail(f"{key} must be a number in [0, 1]; got {value!r} instead")
    return float(value)


def _pair(value: Any, number: type) -> bool:
    """``[a, b]`` of numbers (ints when ``number`` is int), a <= b, no NaN."""
    allowed = int if number is int else (int, float)
    return (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, allowed) and not isinstance(v, bool) for v in value)
        and not any(math.isnan(v) for v in value)
        and value[0] <= value[1]
    )


def _severity(value: Any, fail: Any) -> Severity | dict[str, Severity] | None:
    if value is None or value in SEVERITIES:
        return value
    if isinstance(value, dict):
        for kind, level in value.items():
            if kind not in _FEATURE_KINDS:
                raise fail(
                    f"severity names unknown kind '{kind}'; kinds are {list(_FEATURE_KINDS)}"
                    f"{did_you_mean(str(kind), _FEATURE_KINDS)}"
                )
            if level not in SEVERITIES:
                raise fail(f"severity of {kind} must be error or warning; got {level!r}")
        return dict(value)
    raise fail(f"severity must be error, warning or a mapping of kind to those; got {value!r}")


def _domain_value(v: Any) -> str:
    """YAML turns an unquoted ``true`` into a bool; the data's text form is "true"."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


@dataclass
class Schema:
    """Features in column order, and the key columns whose values must not repeat."""

    features: dict[str, FeatureSpec] = field(default_factory=dict)
    key: list[str] | None = None

    @classmethod
    def from_statistics(cls, stats: dict[str, Any]) -> Schema:
        """A first draft that a fresh sample of the same data passes without an error.

        See ``lockgate.data.schema_inference`` for the rules and why.
        """
        from lockgate.data.schema_inference import infer_feature

        num_rows = stats["num_rows"]
        if num_rows == 0:
            raise DataError(
                "cannot infer a schema from data without rows: every type would be a guess",
                hint="infer it from a span with rows, or write schema.yaml by hand",
            )
        return cls({name: infer_feature(fs, num_rows) for name, fs in stats["features"].items()})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.key:
            out["key"] = list(self.key)
        out["features"] = {name: spec.to_dict() for name, spec in self.features.items()}
        return out

    @classmethod
    def from_dict(cls, d: Any, path: str | Path | None = None) -> Schema:
        where = str(path) if path is not None else None
        place = where or "schema"
        if not isinstance(d, dict) or not isinstance(d.get("features"), dict):
            prefix = f"{where}: " if where else ""
            raise SchemaError(
                f"{prefix}a schema is a mapping with a 'features' mapping; got {type(d).__name__}",
                path=where,
            )
        extra = [k for k in d if k not in ("features", "key")]
        if extra:
            raise SchemaError(
                f"{place}: unknown top-level key '{extra[0]}'; keys are ['key', 'features']"
                f"{did_you_mean(str(extra[0]), ['key', 'features'])}",
                path=where,
            )
        features = {
            str(n): FeatureSpec.from_dict(str(n), f, path=where) for n, f in d["features"].items()
        }
        key = d.get("key")
        if key is not None:
            if isinstance(key, str):
                key = [key]
            if not isinstance(key, list) or not key:
                raise SchemaError(
                    f"{place}: key must be a list of columns; got {key!r}", path=where
                )
            for column in key:
                if column not in features:
                    raise SchemaError(
                        f"{place}: key column '{column}' is not a feature; features are "
                        f"{list(features)}{did_you_mean(str(column), features)}",
                        path=where,
                    )
            key = [str(c) for c in key]
        return cls(features, key=key)

    def to_yaml(self) -> str:
        """Readable YAML: the explanatory header, then one small mapping per feature."""
        body = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        return _HEADER + body

    def dump(self, path: str | Path) -> None:
        """Write YAML, or JSON when the suffix is ``.json``; features in column order."""
        p = Path(path)
        if p.suffix.lower() == ".json":
            p.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        else:
            p.write_text(self.to_yaml(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        """Read YAML (or JSON, by suffix ``.json``); every problem is a SchemaError."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SchemaError(f"cannot read schema {p}: {exc}", path=str(p)) from exc
        try:
            data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
        except (yaml.YAMLError, json.JSONDecodeError) as exc:
            raise SchemaError(
                f"schema {p} does not parse: {exc}",
                path=str(p),
                hint="fix the syntax at the line shown (YAML indentation, a missing colon)",
            ) from exc
        return cls.from_dict(data, path=p)
