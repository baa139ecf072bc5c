"""The inference rules one by one, on hand-written statistics (the generated-data test of
"no false alarm, every anomaly caught" is in test_data_validate_inferred.py)."""

import pytest

from lockgate.data.schema import FeatureSpec, Schema
from lockgate.data.schema_inference import infer_feature


def _string(counts: dict[str, int], *, missing: int = 0, estimate: bool = False) -> dict:
    top = sorted(counts.items(), key=lambda kv: -kv[1])
    return {
        "type": "string",
        "count": sum(counts.values()),
        "missing": missing,
        "distinct": len(counts),
        "distinct_is_estimate": estimate,
        "top_values": [list(kv) for kv in top[:50]],
    }


def _numeric(kind: str, lo: float, hi: float, count: int = 1000, **extra: object) -> dict:
    return {"type": kind, "count": count, "missing": 0, "min": lo, "max": hi, **extra}


@pytest.mark.parametrize(
    ("count", "num_rows", "min_presence", "nullable"),
    [
        (1000, 1000, 1.0, False),  # nothing missing in enough rows: required
        (99, 99, 0.9, True),  # nothing missing, but 99 rows prove little
        (20, 20, 0.77, True),
        (333, 344, 0.85, True),  # penguins' sex
        (990, 1000, 0.89, True),  # the 0.1 floor of the margin
        (500, 1000, 0.21, True),  # 4 standard errors of a 50-row span
        (100, 1000, 0.0, True),
        (0, 10, 0.0, True),
        (0, 0, 0.0, True),
    ],
)
def test_presence(count: int, num_rows: int, min_presence: float, nullable: bool) -> None:
    fs = {"type": "float", "count": count, "missing": num_rows - count}
    spec = infer_feature(fs, num_rows)
    assert (spec.min_presence, spec.nullable) == (min_presence, nullable)


def test_domain_for_a_closed_set_with_the_least_tolerance() -> None:
    spec = infer_feature(_string({"b": 600, "a": 300, "c": 100}), 1000)
    assert (spec.domain, spec.domain_tolerance, spec.max_distinct) == (["a", "b", "c"], 0.01, 16)


def test_domain_tolerance_grows_with_values_seen_once() -> None:
    counts = {f"v{i}": 40 for i in range(25)} | {"rare1": 1, "rare2": 1, "rare3": 1}
    spec = infer_feature(_string(counts), 1003)
    assert spec.domain is not None and "rare1" in spec.domain
    assert spec.domain_tolerance == 0.01  # 2 * 3/1003 rounds up to 0.01
    counts |= {f"once{i}": 1 for i in range(10)}
    spec = infer_feature(_string(counts), 1013)
    assert spec.domain_tolerance == 0.03  # 2 * 13/1013 = 0.0257, rounded up
    assert spec.max_distinct is None  # values seen once: the set is not complete


@pytest.mark.parametrize(
    "fs",
    [
        _string({f"v{i}": 1 for i in range(40)} | {"a": 200}),  # 40 of 240 rows seen once
        _string({f"v{i}": 3 for i in range(20)}),  # fewer than 10 rows per value
        _string({f"v{i}": 100 for i in range(51)}),  # more than DOMAIN_MAX values
        _string({"a": 100, "b": 100}, estimate=True),
    ],
    ids=["many-seen-once", "too-few-rows", "too-many-values", "estimate"],
)
def test_no_domain(fs: dict) -> None:
    assert infer_feature(fs, fs["count"]).domain is None


def test_bool_domain_but_no_max_distinct() -> None:
    fs = _string({"true": 30, "false": 70}) | {"type": "bool"}
    spec = infer_feature(fs, 100)
    assert (spec.type, spec.domain, spec.max_distinct) == ("bool", ["false", "true"], None)


@pytest.mark.parametrize(
    ("fs", "expected"),
    [
        (_numeric("float", 32.1, 59.6), (18.0, 74.0)),
        (_numeric("float", 0.2, 0.9), (0.0, 1.3)),  # no negative seen: none allowed
        (_numeric("float", -3.4, 3.1), (-7.0, 7.0)),
        (_numeric("float", 5.0, 5.0), (2.5, 7.5)),  # a constant: half its size each way
        (_numeric("float", 0.0, 0.0), (0.0, 1.0)),
        (_numeric("int", 2007, 2009), (2006, 2010)),
        (_numeric("int", 2700, 6300), (900, 8100)),
        (_numeric("int", 0, 3), (0, 5)),
    ],
)
def test_range_is_widened_and_a_warning(fs: dict, expected: tuple) -> None:
    spec = infer_feature(fs, 1000)
    assert spec.range == expected
    assert all(type(v) is type(expected[0]) for v in spec.range)  # ints stay ints
    assert spec.severity == {"out_of_range": "warning"}


def test_no_range_without_finite_bounds() -> None:
    spec = infer_feature({"type": "float", "count": 0, "missing": 5, "min": None, "max": None}, 5)
    assert spec.range is None and spec.severity is None


@pytest.mark.parametrize(
    ("extra", "max_distinct"),
    [
        ({"distinct": 40, "distinct_is_estimate": False}, 90),  # 1000 rows, 25 per value
        ({"distinct": 60, "distinct_is_estimate": False}, None),  # 16 per value: open-ended
        ({"distinct": 40, "distinct_is_estimate": True}, None),
        ({}, None),  # statistics without a distinct count for ints
    ],
)
def test_max_distinct_of_ints(extra: dict, max_distinct: int | None) -> None:
    spec = infer_feature(_numeric("int", 0, 100, count=1000, **extra), 1000)
    assert spec.max_distinct == max_distinct


def test_list_feature() -> None:
    fs = {
        "type": "list",
        "count": 100,
        "missing": 0,
        "value_count": {"min": 3, "max": 3, "mean": 3.0},
        "values": _string({"x": 150, "y": 150}),
    }
    spec = infer_feature(fs, 100)
    assert spec == FeatureSpec(
        "list",
        1.0,
        ["x", "y"],
        None,
        nullable=False,
        value_count=(3, 3),
        domain_tolerance=0.01,
        max_distinct=14,
    )
    fs["value_count"] = {"min": 1, "max": 4, "mean": 2.0}
    assert infer_feature(fs, 100).value_count is None  # lengths vary: no claim


def test_no_key_and_no_thresholds_are_inferred() -> None:
    unique = _string({f"id{i}": 1 for i in range(30)})
    schema = Schema.from_statistics({"num_rows": 30, "features": {"id": unique}})
    assert schema.key is None
    assert schema.features["id"].drift_threshold is None
    assert schema.features["id"].skew_threshold is None
