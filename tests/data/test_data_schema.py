import json
from pathlib import Path

import pytest

from lockgate.data.schema import FeatureSpec, Schema
from lockgate.data.statistics import compute_statistics
from lockgate.errors import SchemaError


@pytest.fixture
def penguin_schema(penguins_csv: Path) -> Schema:
    return Schema.from_statistics(compute_statistics([penguins_csv]))


def test_inferred_from_penguins(penguin_schema: Schema) -> None:
    f = penguin_schema.features
    assert list(f)[:2] == ["species", "island"]
    assert f["species"] == FeatureSpec("string", 1.0, ["Adelie", "Chinstrap", "Gentoo"], None)
    assert f["sex"].domain == ["female", "male"] and f["sex"].min_presence == 0.0
    assert f["bill_length_mm"].type == "float"
    assert f["bill_length_mm"].range == (32.1, 59.6)
    assert f["year"].range == (2007, 2009) and f["year"].min_presence == 1.0


def test_no_domain_for_many_values() -> None:
    stats = {
        "num_rows": 60,
        "features": {
            "name": {
                "type": "string",
                "count": 60,
                "missing": 0,
                "distinct": 60,
                "distinct_is_estimate": False,
                "top_values": [[f"v{i}", 1] for i in range(50)],
            },
            "empty": {"type": "null", "count": 0, "missing": 60},
        },
    }
    s = Schema.from_statistics(stats)
    assert s.features["name"].domain is None
    assert s.features["empty"] == FeatureSpec("string", 0.0)


def test_yaml_round_trip_is_readable(tmp_path: Path, penguin_schema: Schema) -> None:
    path = tmp_path / "schema.yaml"
    penguin_schema.dump(path)
    text = path.read_text()
    assert text.startswith("# lockgate schema")
    assert "version control" in text
    assert "domain: [Adelie, Chinstrap, Gentoo]" in text
    assert text.index("species:") < text.index("island:") < text.index("year:")
    assert Schema.load(path) == penguin_schema


def test_json_load(tmp_path: Path, penguin_schema: Schema) -> None:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(penguin_schema.to_dict()))
    assert Schema.load(path) == penguin_schema


def test_bool_domain_written_unquoted(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("features:\n  ok:\n    type: bool\n    domain: [true, false]\n")
    assert Schema.load(path).features["ok"].domain == ["true", "false"]


def test_broken_yaml_names_path(testdata: Path) -> None:
    with pytest.raises(SchemaError, match=r"broken_schema\.yaml does not parse") as info:
        Schema.load(testdata / "broken_schema.yaml")
    assert info.value.path.endswith("broken_schema.yaml")


def test_unknown_type_names_feature_and_path(testdata: Path) -> None:
    with pytest.raises(
        SchemaError, match=r"feature 'species' in .*bad_type_schema\.yaml: unknown type 'strnig'"
    ):
        Schema.load(testdata / "bad_type_schema.yaml")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"cannot read schema .*nope\.yaml"):
        Schema.load(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("feature", "match"),
    [
        ({"type": "float", "range": [5, 1]}, "range must be"),
        ({"type": "float", "range": [1]}, "range must be"),
        ({"type": "string", "range": [1, 2]}, "range must be"),
        ({"type": "float", "min_presence": 1.5}, "min_presence must be"),
        ({"type": "int", "domain": ["a"]}, "domain must be"),
        ({"type": "string", "domian": ["a"]}, "unknown key 'domian'.*did you mean 'domain'"),
        ("string", "expected a mapping"),
    ],
)
def test_invalid_features(feature: object, match: str) -> None:
    with pytest.raises(SchemaError, match=f"feature 'x' in s.yaml: {match}"):
        Schema.from_dict({"features": {"x": feature}}, path="s.yaml")


def test_invalid_top_level() -> None:
    with pytest.raises(SchemaError, match="a 'features' mapping"):
        Schema.from_dict([1, 2])
    with pytest.raises(SchemaError, match="unknown top-level key 'featurs'"):
        Schema.from_dict({"features": {}, "featurs": {}})
