from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from lockgate.errors import ColumnNotFoundError, ConfigError, DataError, ModelError
from lockgate.training.transform import OOV, TransformGraph, drop_missing_label

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"]


@pytest.fixture(scope="module")
def graph(penguins_split: tuple[pa.Table, pa.Table]) -> TransformGraph:
    train, _ = penguins_split
    return TransformGraph.fit(drop_missing_label(train, "species"), label="species")


def test_fit_infers_features_kinds_task_and_classes(graph: TransformGraph) -> None:
    assert graph.task == "classification"
    assert graph.label == "species"
    assert graph.label_classes == ["Adelie", "Chinstrap", "Gentoo"]
    assert graph.features == {
        "island": "string",
        **{name: "numeric" for name in NUMERIC[:4]},
        "sex": "string",
        "year": "numeric",
    }


def test_statistics_come_from_train_only(
    graph: TransformGraph, penguins: pa.Table, penguins_split: tuple[pa.Table, pa.Table]
) -> None:
    train, _ = penguins_split
    spec = {c.name: c for c in graph.columns}["body_mass_g"]
    values = train.column("body_mass_g").to_numpy(zero_copy_only=False).astype(float)
    everything = penguins.column("body_mass_g").to_numpy(zero_copy_only=False).astype(float)
    assert spec.mean == pytest.approx(np.nanmean(values))
    assert spec.std == pytest.approx(np.nanstd(values))
    assert spec.mean != pytest.approx(np.nanmean(everything), abs=1e-9)


def test_apply_shape_no_nan_and_one_hot(
    graph: TransformGraph, penguins_split: tuple[pa.Table, pa.Table]
) -> None:
    train, evaluation = penguins_split
    X = graph.apply(evaluation)
    assert X.dtype == np.float64
    assert X.shape == (evaluation.num_rows, len(graph.feature_names_out))
    assert not np.isnan(X).any()
    names = graph.feature_names_out
    island = [i for i, n in enumerate(names) if n.startswith("island=")]
    assert [names[i] for i in island] == [
        "island=Biscoe",
        "island=Dream",
        "island=Torgersen",
        f"island={OOV}",
    ]  # most frequent first
    assert np.array_equal(X[:, island].sum(axis=1), np.ones(evaluation.num_rows))
    sex = [i for i, n in enumerate(names) if n.startswith("sex=")]
    missing_sex = np.asarray(evaluation.column("sex").is_null())
    assert np.array_equal(X[:, sex[-1]] == 1.0, missing_sex)  # missing -> the OOV slot
    Xtrain = graph.apply(train)
    num = [names.index(n) for n in NUMERIC[:4]]
    # standardised with train statistics, imputed with the train mean (-> 0)
    assert np.allclose(Xtrain[:, num].mean(axis=0), 0.0, atol=0.02)
    missing = pa.table(
        {
            **{n: pa.array([None], pa.float64()) for n in NUMERIC},
            "island": pa.array([None], pa.string()),
            "sex": pa.array([None]),
        }
    )
    assert np.array_equal(graph.apply(missing)[0, num], np.zeros(4))  # imputed: train mean


def test_unknown_category_goes_to_oov_and_extra_columns_are_ignored(
    graph: TransformGraph, penguins_split: tuple[pa.Table, pa.Table]
) -> None:
    _, evaluation = penguins_split
    row = evaluation.slice(0, 1).drop_columns(["species"])
    row = row.set_column(row.schema.get_field_index("island"), "island", pa.array(["Atlantis"]))
    row = row.append_column("comment", pa.array(["extra"]))
    X = graph.apply(row)
    assert X[0, graph.feature_names_out.index(f"island={OOV}")] == 1.0


def test_ints_are_accepted_for_floats(
    graph: TransformGraph, penguins_split: tuple[pa.Table, pa.Table]
) -> None:
    _, evaluation = penguins_split
    table = evaluation.slice(0, 5).drop_null()
    as_int = table.set_column(
        table.schema.get_field_index("bill_length_mm"),
        "bill_length_mm",
        pa.array([40, 41, 42, 43, 44][: table.num_rows], type=pa.int32()),
    )
    X = graph.apply(as_int)
    spec = {c.name: c for c in graph.columns}["bill_length_mm"]
    col = graph.feature_names_out.index("bill_length_mm")
    expected = (np.array([40, 41, 42, 43, 44][: table.num_rows]) - spec.mean) / spec.std
    assert np.allclose(X[:, col], expected)


def test_json_round_trip_applies_identically(
    graph: TransformGraph, penguins_split: tuple[pa.Table, pa.Table], tmp_path
) -> None:
    _, evaluation = penguins_split
    path = graph.save(tmp_path)
    assert path.name == "transform.json"
    text = path.read_text()
    assert text.startswith("{\n  ")  # indented, readable
    data = json.loads(text)
    assert data["format_version"] == 1
    loaded = TransformGraph.load(tmp_path)
    assert loaded == graph
    assert np.array_equal(loaded.apply(evaluation), graph.apply(evaluation))
    assert TransformGraph.from_dict(graph.to_dict()) == graph


def test_missing_column_is_named(
    graph: TransformGraph, penguins_split: tuple[pa.Table, pa.Table]
) -> None:
    _, evaluation = penguins_split
    with pytest.raises(ColumnNotFoundError, match="'flipper_length_mm' not found"):
        graph.apply(evaluation.drop_columns(["flipper_length_mm"]))


def test_wrong_type_column_is_named(
    graph: TransformGraph, penguins_split: tuple[pa.Table, pa.Table]
) -> None:
    _, evaluation = penguins_split
    table = evaluation.slice(0, 2)
    bad = table.set_column(
        table.schema.get_field_index("bill_depth_mm"), "bill_depth_mm", pa.array(["abc", "1"])
    )
    with pytest.raises(DataError, match=r"'bill_depth_mm' expected numeric.*got string.*'abc'"):
        graph.apply(bad)
    bad = table.set_column(table.schema.get_field_index("island"), "island", pa.array([1, 2]))
    with pytest.raises(DataError, match=r"'island' expected string values, got int64"):
        graph.apply(bad)


def test_label_encoding(graph: TransformGraph, penguins_split: tuple[pa.Table, pa.Table]) -> None:
    _, evaluation = penguins_split
    y = graph.encode_label(evaluation)
    assert y.dtype == np.int64
    assert graph.decode_label(y) == evaluation.column("species").to_pylist()
    unknown = pa.table({"species": ["Adelie", "Emperor"]})
    with pytest.raises(DataError, match="'Emperor'"):
        graph.encode_label(unknown)
    with pytest.raises(DataError, match="drop_missing_label"):
        graph.encode_label(pa.table({"species": ["Adelie", None]}))


def test_regression_task_and_label(penguins: pa.Table) -> None:
    table = drop_missing_label(penguins, "body_mass_g")
    assert table.num_rows == penguins.num_rows - 2
    graph = TransformGraph.fit(
        table, label="body_mass_g", features=["species", "flipper_length_mm"]
    )
    assert graph.task == "regression"
    assert graph.label_classes is None
    y = graph.encode_label(table)
    assert y.dtype == np.float64 and y[0] == 3750.0
    assert list(graph.features) == ["species", "flipper_length_mm"]
    # an integer label with few values is classification (class ids) unless told
    assert TransformGraph.fit(penguins, label="year", task="regression").task == "regression"
    as_classes = TransformGraph.fit(penguins, label="year")
    assert as_classes.task == "classification"
    assert as_classes.label_classes == [2007, 2008, 2009]
    assert as_classes.decode_label(as_classes.encode_label(penguins.slice(0, 1))) == [2007]


def test_bool_feature_and_label() -> None:
    table = pa.table({"flag": [True, False, True, None], "x": [1.0, 2.0, 3.0, 4.0]})
    graph = TransformGraph.fit(table, label="flag")
    assert graph.task == "classification"
    assert graph.label_classes == [False, True]
    graph = TransformGraph.fit(table, label="x")
    assert graph.features == {"flag": "bool"}
    assert graph.feature_names_out == ["flag=True", "flag=False", f"flag={OOV}"]
    X = graph.apply(table)
    assert X.tolist() == [[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1]]


def test_fit_errors(penguins: pa.Table) -> None:
    with pytest.raises(ColumnNotFoundError, match="'specie' not found.*did you mean 'species'"):
        TransformGraph.fit(penguins, label="specie")
    with pytest.raises(ConfigError, match="task must be one of"):
        TransformGraph.fit(penguins, label="species", task="ranking")
    with pytest.raises(ConfigError, match="regression needs a numeric label"):
        TransformGraph.fit(penguins, label="species", task="regression")


def test_broken_json_names_the_path(tmp_path) -> None:
    (tmp_path / "transform.json").write_text("{not json")
    with pytest.raises(ModelError, match="transform.json is not valid JSON") as info:
        TransformGraph.load(tmp_path)
    assert info.value.path == str(tmp_path / "transform.json")
    (tmp_path / "transform.json").write_text('{"format_version": 99}')
    with pytest.raises(ModelError, match="format_version 99"):
        TransformGraph.load(tmp_path)
    with pytest.raises(ModelError, match="no transform.json"):
        TransformGraph.load(tmp_path / "missing")


def test_apply_columns_equals_apply_on_the_same_rows(
    graph: TransformGraph, penguins_split: tuple[pa.Table, pa.Table]
) -> None:
    """The server's path (NumPy columns, numbers without Arrow) encodes as apply does."""
    _, evaluation = penguins_split
    columns: dict[str, np.ndarray | pa.Array] = {}
    for name, kind in graph.features.items():
        column = evaluation.column(name).combine_chunks()
        if kind == "numeric":
            columns[name] = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        else:
            columns[name] = column
    assert any(np.isnan(v).any() for v in columns.values() if isinstance(v, np.ndarray))
    np.testing.assert_array_equal(graph.apply_columns(columns), graph.apply(evaluation))
    with pytest.raises(ColumnNotFoundError, match="island"):
        graph.apply_columns({k: v for k, v in columns.items() if k != "island"})
