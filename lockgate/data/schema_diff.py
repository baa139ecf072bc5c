"""What changed between two schemas, one line per change, for review and ``schema diff``.

A schema is edited by people, so a change to it is a decision that a reviewer should see
spelled out: which feature, which field, before and after. Domains are compared as sets
(values added, values removed) because a reordered list is no change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lockgate.data.schema import FeatureSpec, Schema

__all__ = ["CHANGE_KINDS", "SchemaChange", "diff_schemas"]

CHANGE_KINDS: tuple[str, ...] = (
    "key_changed",
    "feature_added",
    "feature_removed",
    "type_changed",
    "presence_changed",
    "nullable_changed",
    "domain_values_added",
    "domain_values_removed",
    "domain_tolerance_changed",
    "range_changed",
    "value_count_changed",
    "max_distinct_changed",
    "severity_changed",
    "threshold_changed",
)
#: FeatureSpec fields compared as a whole value: field -> change kind.
_SCALAR_FIELDS = {
    "min_presence": "presence_changed",
    "nullable": "nullable_changed",
    "domain_tolerance": "domain_tolerance_changed",
    "range": "range_changed",
    "value_count": "value_count_changed",
    "max_distinct": "max_distinct_changed",
    "severity": "severity_changed",
    "drift_threshold": "threshold_changed",
    "skew_threshold": "threshold_changed",
}


@dataclass(frozen=True)
class SchemaChange:
    """One difference from schema A to schema B; ``str()`` is its one-line description."""

    feature: str | None
    kind: str
    before: Any
    after: Any
    description: str

    def __str__(self) -> str:
        return self.description


def _show(value: Any) -> str:
    """A value as the YAML file spells it, so the line matches what the reviewer edits."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return str(value)


def diff_schemas(a: Schema, b: Schema) -> list[SchemaChange]:
    """Every change from ``a`` to ``b``: the key, then features removed, then per feature of
    ``b`` in its order (added, or each changed field), so the list reads like the file."""
    out: list[SchemaChange] = []
    if (a.key or None) != (b.key or None):
        out.append(
            SchemaChange(
                None,
                "key_changed",
                a.key,
                b.key,
                f"key changed from {_show(a.key)} to {_show(b.key)}",
            )
        )
    for name, spec in a.features.items():
        if name not in b.features:
            out.append(
                SchemaChange(
                    name,
                    "feature_removed",
                    spec.type,
                    None,
                    f"feature '{name}' removed ({spec.type})",
                )
            )
    for name, spec in b.features.items():
        old = a.features.get(name)
        if old is None:
            out.append(
                SchemaChange(
                    name, "feature_added", None, spec.type, f"feature '{name}' added ({spec.type})"
                )
            )
        else:
            out.extend(_feature_changes(name, old, spec))
    return out


def _feature_changes(name: str, a: FeatureSpec, b: FeatureSpec) -> list[SchemaChange]:
    out: list[SchemaChange] = []
    if a.type != b.type:
        out.append(
            SchemaChange(
                name, "type_changed", a.type, b.type, f"feature '{name}': type {a.type} -> {b.type}"
            )
        )
    out.extend(_domain_changes(name, a.domain, b.domain))
    for attr, kind in _SCALAR_FIELDS.items():
        before, after = getattr(a, attr), getattr(b, attr)
        if before != after:
            out.append(
                SchemaChange(
                    name,
                    kind,
                    before,
                    after,
                    f"feature '{name}': {attr} {_show(before)} -> {_show(after)}",
                )
            )
    return out


def _domain_changes(name: str, a: list[str] | None, b: list[str] | None) -> list[SchemaChange]:
    """A domain that appears or disappears is all its values added or removed; ``none``
    (any value allowed) is said outright so the reviewer sees the check come or go."""
    before, after = set(a or ()), set(b or ())
    out: list[SchemaChange] = []
    added = sorted(after - before)
    removed = sorted(before - after)
    if added or (a is None and b is not None):
        note = " (domain was none: any value)" if a is None else ""
        out.append(
            SchemaChange(
                name,
                "domain_values_added",
                None if a is None else sorted(before),
                added,
                f"feature '{name}': domain values added: {', '.join(map(repr, added))}{note}",
            )
        )
    if removed or (b is None and a is not None):
        note = " (domain is now none: any value)" if b is None else ""
        out.append(
            SchemaChange(
                name,
                "domain_values_removed",
                sorted(before),
                None if b is None else removed,
                f"feature '{name}': domain values removed: {', '.join(map(repr, removed))}{note}",
            )
        )
    return out
