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
        "saw 'Emperor', 'King' in 7 rows"
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
    assert found[0].seen == [32.1, 75.0]
    assert found[0].message == (
        "feature 'bill_length_mm': expected values in [32.1, 59.6]; saw min 32.1, max 75.0"
    )


def test_to_dict_is_json(penguins_csv: Path, penguins: tuple[dict, Schema]) -> None:
    _, schema = penguins
    table = read_table(penguins_csv).drop_columns(["year"])
    d = [a.to_dict() for a in find_anomalies(_stats(table), schema)]
    assert json.loads(json.dumps(d))[0]["kind"] == "missing_column"
    assert set(d[0]) == {"feature", "kind", "severity", "expected", "seen", "count", "message"}
