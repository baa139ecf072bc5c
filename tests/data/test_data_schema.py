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
    assert f["species"] == FeatureSpec(
        "string",
        1.0,
        ["Adelie", "Chinstrap", "Gentoo"],
        None,
        nullable=False,
        domain_tolerance=0.01,
        max_distinct=16,
    )
    # 11 of 344 missing: required would fail the next span, 0.0 would never catch a drop.
    assert f["sex"].domain == ["female", "male"] and f["sex"].nullable
    assert f["sex"].min_presence == 0.85
    assert f["bill_length_mm"].type == "float"
    # observed [32.1, 59.6], widened by half its width each side, rounded outward; a warning
    assert f["bill_length_mm"].range == (18.0, 74.0)
    assert f["bill_length_mm"].severity_for("out_of_range") == "warning"
    assert f["bill_length_mm"].severity_for("presence") == "error"
    assert f["year"].range == (2006, 2010) and f["year"].min_presence == 1.0
    assert not f["year"].nullable


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
    assert s.features["name"].max_distinct is None  # open-ended: grows with the span
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


OLD_YAML = """\
features:
  species:
    type: string
    min_presence: 1.0
    domain: [Adelie, Chinstrap, Gentoo]
  bill_length_mm:
    type: float
    min_presence: 0.0
    range: [32.1, 59.6]
"""


def test_a_schema_written_before_the_new_fields_loads_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text(OLD_YAML)
    schema = Schema.load(path)
    species = schema.features["species"]
    assert species == FeatureSpec("string", 1.0, ["Adelie", "Chinstrap", "Gentoo"], None)
    assert species.nullable and species.domain_tolerance == 0.0 and schema.key is None
    assert species.severity_for("out_of_range") == "error"  # as before: every anomaly an error
    assert schema.to_dict() == Schema.from_dict(schema.to_dict()).to_dict()
    assert schema.to_yaml().endswith(OLD_YAML)  # and written back the same


FULL = Schema(
    {
        "id": FeatureSpec("string", 1.0, nullable=False, severity="error"),
        "colour": FeatureSpec(
            "string",
            0.9,
            ["blue", "red"],
            domain_tolerance=0.02,
            max_distinct=14,
            severity={"unexpected_value": "warning", "drift": "error"},
            drift_threshold=0.2,
            skew_threshold=0.05,
        ),
        "size": FeatureSpec("float", 0.5, None, (0.0, 10.5), severity="warning"),
        "tags": FeatureSpec("list", 0.0, ["a", "b"], None, value_count=(1, 3)),
    },
    key=["id"],
)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_every_field_round_trips(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"schema{suffix}"
    FULL.dump(path)
    assert Schema.load(path) == FULL
    if suffix == ".yaml":
        text = path.read_text()
        assert text == FULL.to_yaml()
        assert "key: [id]\nfeatures:\n" in text
        assert "    severity: {unexpected_value: warning, drift: error}\n" in text
        assert "    value_count: [1, 3]\n" in text
    else:
        assert json.loads(path.read_text())["key"] == ["id"]


def test_severity_per_feature_and_per_kind() -> None:
    colour, size = FULL.features["colour"], FULL.features["size"]
    assert colour.severity_for("unexpected_value") == "warning"
    assert colour.severity_for("presence") == "error"  # not named: the kind's default
    assert colour.severity_for("skew") == "warning"
    assert colour.severity_for("skew", "error") == "error"  # the caller's default
    assert size.severity_for("presence") == "warning"  # one severity for every kind


def test_key_may_be_one_column_name() -> None:
    d = {"key": "id", "features": {"id": {"type": "int"}}}
    assert Schema.from_dict(d).key == ["id"]


@pytest.mark.parametrize(
    ("key", "match"),
    [
        (["idd"], r"key column 'idd' is not a feature; features are \['id'\]; did you mean 'id'"),
        ([], "key must be a list of columns"),
        ({"a": 1}, "key must be a list of columns"),
    ],
)
def test_invalid_key(key: object, match: str) -> None:
    with pytest.raises(SchemaError, match=f"s.yaml: {match}"):
        Schema.from_dict({"key": key, "features": {"id": {"type": "int"}}}, path="s.yaml")


@pytest.mark.parametrize(
    ("feature", "match"),
    [
        ({"type": "string", "nullable": "no"}, "nullable must be true or false"),
        ({"type": "string", "domain_tolerance": 0.1}, "domain_tolerance needs a domain"),
        (
            {"type": "string", "domain": ["a"], "domain_tolerance": 2},
            r"domain_tolerance must be a number in \[0, 1\]",
        ),
        ({"type": "float", "value_count": [1, 2]}, "value_count must be"),
        ({"type": "list", "value_count": [1.5, 2]}, "value_count must be"),
        ({"type": "list", "value_count": [-1, 2]}, "value_count must be"),
        ({"type": "string", "max_distinct": 0}, "max_distinct must be a positive integer"),
        ({"type": "string", "max_distinct": True}, "max_distinct must be a positive integer"),
        ({"type": "string", "severity": "fatal"}, "severity must be error, warning or a mapping"),
        (
            {"type": "string", "severity": {"out_of_rnage": "warning"}},
            "severity names unknown kind 'out_of_rnage'.*did you mean 'out_of_range'",
        ),
        ({"type": "string", "severity": {"drift": "info"}}, "severity of drift must be"),
        ({"type": "string", "severity": {"new_column": "error"}}, "severity names unknown kind"),
        (
            {"type": "float", "drift_threshold": 1.5},
            r"drift_threshold must be a number in \[0, 1\]",
        ),
        ({"type": "float", "skew_threshold": "x"}, "skew_threshold must be a number"),
    ],
)
def test_invalid_new_fields(feature: object, match: str) -> None:
    with pytest.raises(SchemaError, match=f"feature 'x' in s.yaml: {match}"):
        Schema.from_dict({"features": {"x": feature}}, path="s.yaml")


def test_inferred_yaml_is_small_and_explained(tmp_path: Path, penguin_schema: Schema) -> None:
    header, body = penguin_schema.to_yaml().split("features:\n")
    for field in ("key", "nullable", "domain_tolerance", "value_count", "max_distinct"):
        assert f"{field}" in header  # the header explains every field
    for field in ("severity", "drift_threshold", "skew_threshold"):
        assert f"#   {field}" in header
    assert "drift_threshold:" not in body  # defaults are documented, not repeated
    assert "  bill_length_mm:\n    type: float\n    min_presence: 0.89\n" in body
    assert "    range: [18.0, 74.0]\n    severity: {out_of_range: warning}\n" in body
