from lockgate.data.schema import FeatureSpec, Schema, SchemaChange, diff_schemas

A = Schema(
    {
        "species": FeatureSpec(
            "string", 1.0, ["Adelie", "Chinstrap", "Gentoo"], nullable=False, domain_tolerance=0.01
        ),
        "island": FeatureSpec("string", 1.0, ["Biscoe", "Dream"]),
        "bill_length_mm": FeatureSpec("float", 0.89, None, (18.0, 74.0)),
        "year": FeatureSpec("int", 1.0),
        "comment": FeatureSpec("string"),
    }
)


def test_no_change() -> None:
    assert diff_schemas(A, A) == []
    assert diff_schemas(A, Schema.from_dict(A.to_dict())) == []
    reordered = Schema.from_dict(A.to_dict())
    reordered.features["species"].domain = ["Gentoo", "Adelie", "Chinstrap"]
    assert diff_schemas(A, reordered) == []  # a domain is a set


def test_every_kind_of_change_in_one_line_each() -> None:
    b = Schema.from_dict(A.to_dict())
    del b.features["comment"]
    b.features["sex"] = FeatureSpec("string", domain=["female", "male"])
    b.features["year"].type = "float"
    b.features["species"].domain = ["Adelie", "Emperor", "Gentoo"]
    b.features["species"].nullable = True
    b.features["species"].domain_tolerance = 0.05
    b.features["island"].domain = None
    b.features["bill_length_mm"].range = (20.0, 74.0)
    b.features["bill_length_mm"].min_presence = 0.5
    b.features["bill_length_mm"].drift_threshold = 0.2
    b.features["bill_length_mm"].severity = {"out_of_range": "warning"}
    b.features["year"].max_distinct = 20
    b.key = ["species", "year"]
    changes = diff_schemas(A, b)
    assert [str(c) for c in changes] == [
        "key changed from none to [species, year]",
        "feature 'comment' removed (string)",
        "feature 'species': domain values added: 'Emperor'",
        "feature 'species': domain values removed: 'Chinstrap'",
        "feature 'species': nullable false -> true",
        "feature 'species': domain_tolerance 0.01 -> 0.05",
        "feature 'island': domain values removed: 'Biscoe', 'Dream' (domain is now none: any value)",
        "feature 'bill_length_mm': min_presence 0.89 -> 0.5",
        "feature 'bill_length_mm': range [18.0, 74.0] -> [20.0, 74.0]",
        "feature 'bill_length_mm': severity none -> {out_of_range: warning}",
        "feature 'bill_length_mm': drift_threshold none -> 0.2",
        "feature 'year': type int -> float",
        "feature 'year': max_distinct none -> 20",
        "feature 'sex' added (string)",
    ]
    assert [c.kind for c in changes] == [
        "key_changed",
        "feature_removed",
        "domain_values_added",
        "domain_values_removed",
        "nullable_changed",
        "domain_tolerance_changed",
        "domain_values_removed",
        "presence_changed",
        "range_changed",
        "severity_changed",
        "threshold_changed",
        "type_changed",
        "max_distinct_changed",
        "feature_added",
    ]
    added = changes[2]
    assert added == SchemaChange(
        "species",
        "domain_values_added",
        ["Adelie", "Chinstrap", "Gentoo"],
        ["Emperor"],
        "feature 'species': domain values added: 'Emperor'",
    )


def test_a_domain_that_appears_is_said_outright() -> None:
    b = Schema.from_dict(A.to_dict())
    b.features["comment"].domain = ["ok"]
    (change,) = diff_schemas(A, b)
    assert change.kind == "domain_values_added" and change.before is None
    assert (
        str(change) == "feature 'comment': domain values added: 'ok' (domain was none: any value)"
    )


def test_skew_threshold_and_value_count() -> None:
    a = Schema({"v": FeatureSpec("list", value_count=(3, 3))})
    b = Schema({"v": FeatureSpec("list", value_count=(3, 4), skew_threshold=0.05)})
    assert [str(c) for c in diff_schemas(a, b)] == [
        "feature 'v': value_count [3, 3] -> [3, 4]",
        "feature 'v': skew_threshold none -> 0.05",
    ]
    assert [str(c) for c in diff_schemas(b, a)][0] == "feature 'v': value_count [3, 4] -> [3, 3]"
