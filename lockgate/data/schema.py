"""The schema: what the data should look like, inferred once, then owned by people.

``Schema.from_statistics`` writes a first draft; from then on the YAML file is edited,
reviewed and versioned like code, and ``validate.find_anomalies`` checks every new span
against it. Loading validates every field so that a typo fails here, with the file and
the feature named, not as a puzzling anomaly later.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lockgate.errors import SchemaError, did_you_mean

__all__ = ["DOMAIN_MAX", "TYPES", "FeatureSpec", "Schema"]

TYPES: tuple[str, ...] = ("int", "float", "string", "bool", "timestamp")
#: A string/bool feature gets an inferred domain when it has at most this many values.
DOMAIN_MAX = 50
_KEYS = ("type", "min_presence", "domain", "range")
_HEADER = """\
# lockgate schema: what every span of this data must look like.
# Inferred from statistics as a first draft; it is meant to be edited by people and kept in
# version control. Per feature:
#   type          int | float | string | bool | timestamp (int data is fine for a float)
#   min_presence  the fraction of rows that must have a value (1.0: required, 0.0: optional)
#   domain        the allowed values of a string or bool feature
#   range         [min, max] allowed for a numeric feature
"""


@dataclass
class FeatureSpec:
    """What one feature must satisfy.

    ``min_presence`` is inferred as 1.0 when no value was missing and 0.0 otherwise: the
    observed fraction itself is noise (requiring 0.967 would fail the next span over one
    more gap), so a feature is either required or optional until a person says otherwise.
    """

    type: str
    min_presence: float = 0.0
    domain: list[str] | None = None
    range: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "min_presence": self.min_presence}
        if self.domain is not None:
            out["domain"] = list(self.domain)
        if self.range is not None:
            out["range"] = list(self.range)
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
        presence = d.get("min_presence", 0.0)
        if (
            isinstance(presence, bool)
            or not isinstance(presence, int | float)
            or not (0.0 <= presence <= 1.0)
        ):
            raise fail(f"min_presence must be a number in [0, 1]; got {presence!r} instead")
        domain = d.get("domain")
        if domain is not None:
            if kind not in ("string", "bool") or not isinstance(domain, list):
                raise fail(f"domain must be a list and only for string or bool; got {domain!r}")
            domain = [_domain_value(v) for v in domain]
        rng = d.get("range")
        if rng is not None:
            ok = (
                kind in ("int", "float")
                and isinstance(rng, list | tuple)
                and len(rng) == 2
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in rng)
                and not any(math.isnan(v) for v in rng)
                and rng[0] <= rng[1]
            )
            if not ok:
                raise fail(f"range must be [min, max] with min <= max, numeric only; got {rng!r}")
            rng = (rng[0], rng[1])
        return cls(type=kind, min_presence=float(presence), domain=domain, range=rng)


def _domain_value(v: Any) -> str:
    """YAML turns an unquoted ``true`` into a bool; the data's text form is "true"."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


@dataclass
class Schema:
    """Features in column order."""

    features: dict[str, FeatureSpec] = field(default_factory=dict)

    @classmethod
    def from_statistics(cls, stats: dict[str, Any]) -> Schema:
        """A first draft: observed types, presence, small domains and numeric ranges."""
        features: dict[str, FeatureSpec] = {}
        for name, fs in stats["features"].items():
            kind = fs["type"] if fs["type"] in TYPES else "string"  # all-null: no type seen
            spec = FeatureSpec(type=kind, min_presence=1.0 if fs["missing"] == 0 else 0.0)
            top = fs.get("top_values")
            if (
                kind in ("string", "bool")
                and top is not None
                and not fs.get("distinct_is_estimate")
                and 0 < fs["distinct"] <= DOMAIN_MAX
                and len(top) == fs["distinct"]
            ):
                spec.domain = sorted(v for v, _ in top)
            if kind in ("int", "float") and fs.get("min") is not None and fs.get("max") is not None:
                spec.range = (fs["min"], fs["max"])
            features[name] = spec
        return cls(features)

    def to_dict(self) -> dict[str, Any]:
        return {"features": {name: spec.to_dict() for name, spec in self.features.items()}}

    @classmethod
    def from_dict(cls, d: Any, path: str | Path | None = None) -> Schema:
        where = str(path) if path is not None else None
        if not isinstance(d, dict) or not isinstance(d.get("features"), dict):
            place = f"{where}: " if where else ""
            raise SchemaError(
                f"{place}a schema is a mapping with a 'features' mapping; got {type(d).__name__}",
                path=where,
            )
        extra = [k for k in d if k != "features"]
        if extra:
            raise SchemaError(
                f"{where or 'schema'}: unknown top-level key '{extra[0]}'", path=where
            )
        return cls(
            {str(n): FeatureSpec.from_dict(str(n), f, path=where) for n, f in d["features"].items()}
        )

    def dump(self, path: str | Path) -> None:
        """Write readable YAML (features in column order) with an explanatory header."""
        body = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        Path(path).write_text(_HEADER + body, encoding="utf-8")

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
