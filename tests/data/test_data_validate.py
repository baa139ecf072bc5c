import copy
import json
from pathlib import Path

import pyarrow as pa
import pytest

from lockgate.data.readers import read_table
from lockgate.data.schema import FeatureSpec, Schema
from lockgate.data.statistics import TableStatisticsAccumulator, compute_statistics
from lockgate.data.validate import Anomaly, find_anomalies


def _stats(table: pa.Table) -> dict:
    acc = TableStatisticsAccumulator()
    acc.update(table)
    return acc.result()


@pytest.fixture
def penguins(penguins_csv: Path) -> tuple[dict, Schema]:
    stats = compute_statistics([penguins_csv])
    return stats, Schema.from_statistics(stats)


def _kinds(anomalies: list[Anomaly]) -> list[tuple[str, str]]:
    return [(a.feature, a.kind) for a in anomalies]


def test_no_anomaly_on_the_data_the_schema_came_from(penguins: tuple[dict, Schema]) -> None:
    stats, schema = penguins
    assert find_anomalies(stats, schema) == []


def test_no_anomaly_on_a_subset(penguins_csv: Path, penguins: tuple[dict, Schema]) -> None:
    _, schema = penguins
    table = read_table(penguins_csv).slice(0, 100)
    table = table.filter(pa.compute.is_valid(table["sex"]))
    assert find_anomalies(_stats(table), schema) == []


def test_missing_and_new_column(penguins_csv: Path, penguins: tuple[dict, Schema]) -> None:
    _, schema = penguins
    table = (
        read_table(penguins_csv)
        .drop_columns(["island"])
        .append_column("colour", pa.array(["x"] * 344))
    )
    found = find_anomalies(_stats(table), schema)
    assert _kinds(found) == [("island", "missing_column"), ("colour", "new_column")]
    assert [a.severity for a in found] == ["error", "warning"]
    assert found[0].message == "feature 'island': column missing; expected a string column"


def test_type_mismatch_but_int_for_float_is_fine() -> None:
    schema = Schema({"a": FeatureSpec("float"), "b": FeatureSpec("int")})
    found = find_anomalies(_stats(pa.table({"a": [1, 2], "b": ["x", "y"]})), schema)
    assert _kinds(found) == [("b", "type_mismatch")]
    assert found[0].message == "feature 'b': expected type int; saw string"
    assert (found[0].expected, found[0].seen, found[0].severity) == ("int", "string", "error")


def test_presence() -> None:
    schema = Schema({"a": FeatureSpec("int", min_presence=0.9)})
    found = find_anomalies(_stats(pa.table({"a": [1, None, None, 4]})), schema)
    assert _kinds(found) == [("a", "presence")]
    assert found[0].count == 2 and found[0].seen == 0.5
    assert "at least 90.0% of rows; saw 50.0% (2 of 4 missing)" in found[0].message


def test_unexpected_values(penguins_csv: Path, penguins: tuple[dict, Schema]) -> None:
    stats, schema = penguins
    table = read_table(penguins_csv)
    species = table["species"].to_pylist()
    species[:7] = ["Emperor"] * 5 + ["King"] * 2
    table = table.set_column(0, "species", pa.array(species))
    found = find_anomalies(_stats(table), schema)
    assert _kinds(found) == [("species", "unexpected_value")]
    a = found[0]
    assert (a.count, a.seen, a.severity) == (7, ["Emperor", "King"], "error")
    assert a.message == (
        "feature 'species': expected values in ['Adelie', 'Chinstrap', 'Gentoo']; "
        "saw 'Emperor', 'King' in 7 rows (2.0% of values, tolerated 1.0%)"
    )


def test_unexpected_values_beyond_top_values() -> None:
    values = [f"v{i}" for i in range(80)] + ["a"] * 100
    schema = Schema({"s": FeatureSpec("string", domain=["a"])})
    found = find_anomalies(_stats(pa.table({"s": values})), schema)
    assert _kinds(found) == [("s", "unexpected_value")]
    assert "at least" in found[0].message


def test_out_of_range(penguins: tuple[dict, Schema]) -> None:
    stats, schema = penguins
    stats = copy.deepcopy(stats)
    stats["features"]["bill_length_mm"]["max"] = 75.0
    found = find_anomalies(stats, schema)
    assert _kinds(found) == [("bill_length_mm", "out_of_range")]
    assert found[0].seen == [32.1, 75.0] and found[0].severity == "warning"  # inferred range
    assert found[0].message == (
        "feature 'bill_length_mm': expected values in [18.0, 74.0]; saw min 32.1, max 75.0"
    )


def test_to_dict_is_json(penguins_csv: Path, penguins: tuple[dict, Schema]) -> None:
    _, schema = penguins
    table = read_table(penguins_csv).drop_columns(["year"])
    d = [a.to_dict() for a in find_anomalies(_stats(table), schema)]
    assert json.loads(json.dumps(d))[0]["kind"] == "missing_column"
    assert set(d[0]) == {"feature", "kind", "severity", "expected", "seen", "count", "message"}


def _string_stats(counts: dict[str, int], *, missing: int = 0, top_k: int = 50) -> dict:
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "type": "string",
        "count": sum(counts.values()),
        "missing": missing,
        "distinct": len(counts),
        "distinct_is_estimate": False,
        "top_values": [list(kv) for kv in top[:top_k]],
    }


def _one(fs: dict, num_rows: int | None = None) -> dict:
    return {"num_rows": num_rows or fs["count"] + fs["missing"], "features": {"x": fs}}


def test_unexpected_null_replaces_presence_for_a_required_column() -> None:
    schema = Schema({"a": FeatureSpec("int", 1.0, nullable=False)})
    found = find_anomalies(_stats(pa.table({"a": [1, None, 3, 4]})), schema)
    assert _kinds(found) == [("a", "unexpected_null")]
    assert (found[0].count, found[0].severity) == (1, "error")
    assert found[0].message == "feature 'a': expected no missing value; saw 1 of 4 rows missing"


def test_an_all_null_column_is_no_type_mismatch_but_unexpected_nulls() -> None:
    schema = Schema({"a": FeatureSpec("float", 1.0, nullable=False)})
    found = find_anomalies(_stats(pa.table({"a": pa.nulls(3)})), schema)
    assert _kinds(found) == [("a", "unexpected_null")]


@pytest.mark.parametrize(("outside", "found"), [(2, False), (3, True)])
def test_domain_tolerance_is_a_fraction_of_values(outside: int, found: bool) -> None:
    schema = Schema({"x": FeatureSpec("string", domain=["a"], domain_tolerance=0.02)})
    fs = _string_stats({"a": 100 - outside} | {f"new{i}": 1 for i in range(outside)})
    assert bool(find_anomalies(_one(fs), schema)) is found


def test_domain_check_on_truncated_top_values_counts_at_least() -> None:
    """The domain value 'b' is not listed: it has at most the smallest listed count (1)."""
    counts = {"a": 500} | {f"v{i:02d}": 1 for i in range(60)} | {"b": 1}
    fs = _string_stats(counts, top_k=50)
    schema = Schema({"x": FeatureSpec("string", domain=["a", "b"])})
    (a,) = find_anomalies(_one(fs), schema)
    assert a.count == 60  # 561 values - 500 'a' - at most 1 'b'
    assert "in at least 60 rows" in a.message


def test_severity_from_the_schema() -> None:
    stats = _stats(pa.table({"a": [1, None], "b": ["x", "y"]}))
    schema = Schema(
        {
            "a": FeatureSpec("int", 1.0, severity="warning"),
            "b": FeatureSpec("string", domain=["x"], severity={"unexpected_value": "warning"}),
            "c": FeatureSpec("int", severity={"missing_column": "warning"}),
        }
    )
    found = find_anomalies(stats, schema)
    assert [(a.feature, a.kind, a.severity) for a in found] == [
        ("a", "presence", "warning"),
        ("b", "unexpected_value", "warning"),
        ("c", "missing_column", "warning"),
    ]


def test_cardinality_jump_against_the_schema() -> None:
    schema = Schema({"x": FeatureSpec("string", max_distinct=18)})
    fs = _string_stats({f"v{i}": 10 for i in range(19)})
    (a,) = find_anomalies(_one(fs), schema)
    assert (a.kind, a.expected, a.seen, a.severity) == ("cardinality_jump", 18, 19, "error")
    assert a.message == "feature 'x': expected at most 18 distinct values (max_distinct); saw 19"
    fs = _string_stats({f"v{i}": 10 for i in range(18)})
    assert find_anomalies(_one(fs), schema) == []


def test_cardinality_jump_against_the_previous_span_scales_with_rows() -> None:
    schema = Schema({"x": FeatureSpec("int")})

    def ints(count: int, distinct: int, estimate: bool = False) -> dict:
        fs = {"type": "int", "count": count, "missing": 0, "min": 0, "max": 10**6}
        return _one(fs | {"distinct": distinct, "distinct_is_estimate": estimate})

    previous = ints(1000, 100)
    assert find_anomalies(ints(1000, 210), schema, previous_stats=previous) == []
    assert find_anomalies(ints(5000, 1000), schema, previous_stats=previous) == []  # 5x rows
    (jump,) = [
        a
        for a in find_anomalies(ints(1000, 211, True), schema, previous_stats=previous)
        if a.kind == "cardinality_jump"
    ]
    assert jump.expected == 210
    assert jump.message == (
        "feature 'x': expected at most 210 distinct values (twice the previous span's 100, "
        "scaled to the rows, + 10); saw about 211"
    )


def test_duplicate_key_from_exact_statistics() -> None:
    schema = Schema({"id": FeatureSpec("string")}, key=["id"])
    stats = _stats(pa.table({"id": ["a", "b", "b", "c", "c", "c"]}))
    (a,) = find_anomalies(stats, schema)
    assert (a.feature, a.kind, a.count, a.severity) == ("id", "duplicate_key", 3, "error")
    assert a.message == "key (id): expected unique values; saw 3 rows repeating a key"
    assert find_anomalies(_stats(pa.table({"id": ["a", "b", None]})), schema) == []  # no key


def test_duplicate_key_from_an_estimated_distinct_count() -> None:
    schema = Schema({"x": FeatureSpec("string")}, key=["x"])
    fs = {"type": "string", "count": 100_000, "missing": 0, "distinct_is_estimate": True}
    assert find_anomalies(_one(fs | {"distinct": 97_000}), schema) == []  # within the error
    (a,) = find_anomalies(_one(fs | {"distinct": 50_000}), schema)
    assert "saw about 50000 rows repeating a key" in a.message


def test_duplicate_key_of_several_columns_needs_the_count_from_the_data() -> None:
    schema = Schema({"a": FeatureSpec("int"), "b": FeatureSpec("int")}, key=["a", "b"])
    table = pa.table({"a": [1, 1, 2, 2], "b": [1, 2, 1, 1]})
    stats = _stats(table)
    assert find_anomalies(stats, schema) == []  # statistics cannot tell
    from lockgate.data.keys import find_duplicate_keys

    found = find_anomalies(stats, schema, duplicate_keys=find_duplicate_keys(table, ["a", "b"]))
    assert [(a.feature, a.kind, a.count) for a in found] == [("a, b", "duplicate_key", 1)]


def test_find_duplicate_keys_names_a_missing_column() -> None:
    from lockgate.data.keys import find_duplicate_keys
    from lockgate.errors import ColumnNotFoundError

    with pytest.raises(ColumnNotFoundError, match=r"column 'ids' not found .*did you mean 'id'"):
        find_duplicate_keys(pa.table({"id": [1]}), ["ids"])
    assert find_duplicate_keys([], ["id"]) == 0


def _list_stats(lo: int, hi: int, values: dict[str, int]) -> dict:
    return {
        "type": "list",
        "count": 10,
        "missing": 0,
        "value_count": {"min": lo, "max": hi, "mean": (lo + hi) / 2},
        "values": _string_stats(values),
    }


def test_list_value_count_and_domain_of_values() -> None:
    schema = Schema({"x": FeatureSpec("list", domain=["a", "b"], value_count=(2, 2))})
    assert find_anomalies(_one(_list_stats(2, 2, {"a": 10, "b": 10})), schema) == []
    found = find_anomalies(_one(_list_stats(1, 3, {"a": 10, "c": 10})), schema)
    assert _kinds(found) == [("x", "unexpected_value"), ("x", "out_of_range")]
    assert found[1].message == "feature 'x': expected 2 to 2 values per row; saw min 1, max 3"


def test_drift_is_checked_only_against_a_previous_span() -> None:
    schema = Schema({"x": FeatureSpec("string", drift_threshold=0.2)})
    before = _one(_string_stats({"a": 90, "b": 10}))
    after = _one(_string_stats({"a": 50, "b": 50}))
    assert find_anomalies(after, schema) == []
    (a,) = find_anomalies(after, schema, previous_stats=before)
    assert (a.kind, a.severity, a.expected) == ("drift", "error", 0.2)
    assert a.seen == pytest.approx(0.4)
    assert a.message == (
        "feature 'x': expected L-infinity distance to the previous span at most 0.2; "
        "saw 0.4000; largest change: 'a' 90.0% -> 50.0%"
    )
