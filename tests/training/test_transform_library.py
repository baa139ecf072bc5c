"""The transform library: each analyzer against an independent computation (NumPy, Polars,
Python), train-split-only fitting, the JSON round trip, bad input and row functions."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import transform_functions
from transform_data import column, fit, floats, generated

from lockgate import transforms as T
from lockgate.core.artifacts import Examples
from lockgate.errors import ColumnNotFoundError, ConfigError, DataError, ModelError
from lockgate.training.components import _fit_library
from lockgate.training.transform import TransformGraph


def fnv1a64(text: str) -> int:
    """FNV-1a 64 as its definition states it, byte by byte."""
    h = 0xCBF29CE484222325
    for byte in text.encode():
        h = ((h ^ byte) * 0x100000001B3) % 2**64
    return h


# ---- numbers -----------------------------------------------------------------------------
def test_zscore_uses_the_train_mean_and_population_std(
    penguins_split: tuple[pa.Table, pa.Table],
) -> None:
    train, test = penguins_split
    graph = fit(train, [T.zscore("bill_length_mm")])
    x = floats(train, "bill_length_mm")
    mean, std = np.nanmean(x), np.nanstd(x)
    fitted = graph.steps[0]["fitted"]
    assert fitted["mean"] == pytest.approx(mean, rel=1e-12)
    assert fitted["std"] == pytest.approx(std, rel=1e-12)
    got = column(graph, test, "bill_length_mm")
    expected = np.nan_to_num((floats(test, "bill_length_mm") - mean) / std, nan=0.0)
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_min_max_scales_train_into_the_unit_interval(
    penguins_split: tuple[pa.Table, pa.Table],
) -> None:
    train, test = penguins_split
    graph = fit(train, [T.min_max("body_mass_g")])
    x = floats(train, "body_mass_g")
    lo, hi = np.nanmin(x), np.nanmax(x)
    assert graph.steps[0]["fitted"] == {"min": lo, "max": hi}
    got = column(graph, train, "body_mass_g")
    assert got.min() >= 0 and got.max() == 1.0
    expected = np.nan_to_num((floats(test, "body_mass_g") - lo) / (hi - lo), nan=0.0)
    np.testing.assert_allclose(column(graph, test, "body_mass_g"), expected, atol=1e-12)


def test_log_is_log1p_and_refuses_negative_training_values() -> None:
    table = generated()
    graph = fit(table, [T.log("amount")], label="y")
    np.testing.assert_allclose(
        column(graph, table, "amount"), np.log1p(floats(table, "amount")), atol=1e-12
    )
    negative = table.set_column(1, "amount", pa.array(floats(table, "amount") - 30))
    with pytest.raises(
        DataError, match=r"log\('amount'\): column 'amount' has \d+ negative"
    ) as info:
        fit(negative, [T.log("amount")], label="y")
    assert "clip('amount', lower=0)" in (info.value.hint or "")
    # clipped first, it fits; a negative value met later counts as missing (0.0 out)
    clipped = fit(negative, [T.clip("amount", lower=0), T.log("amount")], label="y")
    assert column(clipped, negative, "amount").min() == 0.0
    assert (
        column(fit(table, [T.log("amount")], label="y"), negative, "amount")[
            floats(negative, "amount") < 0
        ]
        == 0
    ).all()


def test_clip_limits_values_and_an_empty_range_is_refused() -> None:
    table = generated()
    graph = fit(table, [T.clip("x", lower=3.0, upper=6.5)], label="y")
    expected = np.nan_to_num(np.clip(floats(table, "x"), 3.0, 6.5), nan=0.0)
    np.testing.assert_array_equal(column(graph, table, "x"), expected)
    with pytest.raises(
        ConfigError, match=r"clip\('x'\) has an empty range: lower=2 is above upper=1"
    ):
        T.clip("x", lower=2, upper=1)
    with pytest.raises(ConfigError, match=r"clip\('x'\) needs lower=, upper= or both"):
        T.clip("x")


def test_bucketize_edges_are_the_train_quantiles(penguins_split: tuple[pa.Table, pa.Table]) -> None:
    train, test = penguins_split
    graph = fit(train, [T.bucketize("flipper_length_mm", buckets=4)])
    x = floats(train, "flipper_length_mm")
    present = x[~np.isnan(x)]
    edges = np.unique(np.quantile(present, [0.25, 0.5, 0.75], method="inverted_cdf"))
    assert graph.steps[0]["fitted"]["edges"] == edges.tolist()
    t = floats(test, "flipper_length_mm")
    expected = np.where(np.isnan(t), 0.0, np.searchsorted(edges, t, side="right"))
    np.testing.assert_array_equal(column(graph, test, "flipper_length_mm"), expected)
    assert set(np.unique(column(graph, train, "flipper_length_mm"))) <= {0.0, 1.0, 2.0, 3.0}
    with pytest.raises(
        ConfigError, match=r"'buckets' parameter of bucketize\('x'\) must be an int >= 2; got 1"
    ):
        T.bucketize("x", buckets=1)


# ---- imputation --------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent", "constant"])
def test_impute_fills_numbers_and_adds_a_missing_indicator(strategy: str) -> None:
    table = generated()
    value = -1.5 if strategy == "constant" else None
    graph = fit(table, [T.impute("count", strategy=strategy, value=value)], label="y")
    x = floats(table, "count")
    present = x[~np.isnan(x)]
    series = pl.Series(present)
    expected_fill = {
        "mean": present.mean(),
        "median": float(np.quantile(present, 0.5, method="inverted_cdf")),
        "most_frequent": series.value_counts(sort=True).sort(
            ["count", ""], descending=[True, False]
        )[0, 0],
        "constant": -1.5,
    }[strategy]
    assert graph.feature_names_out[-2:] == ["count", "count__missing"]
    np.testing.assert_allclose(
        column(graph, table, "count"), np.where(np.isnan(x), expected_fill, x), atol=1e-12
    )
    np.testing.assert_array_equal(column(graph, table, "count__missing"), np.isnan(x).astype(float))


def test_impute_text_with_the_most_frequent_value_then_one_hot() -> None:
    table = generated()
    graph = fit(table, [T.impute("city", strategy="most_frequent", indicator=False)], label="y")
    counts = pl.Series(table.column("city").drop_null().to_pylist()).value_counts(sort=True)
    top = counts[0, 0]
    assert graph.steps[0]["fitted"] == {"value": top}
    assert graph.steps[-1]["op"] == "one_hot"  # text left at the end is one-hot encoded
    city = np.array(table.column("city").to_pylist(), dtype=object)
    missing = np.array([v is None for v in city])
    np.testing.assert_array_equal(
        column(graph, table, f"city={top}"), ((city == top) | missing).astype(float)
    )


def test_impute_refuses_an_unknown_strategy_and_mean_on_text() -> None:
    with pytest.raises(
        ConfigError, match=r"'strategy' parameter of impute\('x'\) must be one of .*got 'mode'"
    ):
        T.impute("x", strategy="mode")
    with pytest.raises(
        DataError, match=r"impute\('city'\): strategy 'median' needs numbers; 'city' is text"
    ):
        fit(generated(), [T.impute("city", strategy="median")], label="y")
    with pytest.raises(ConfigError, match="needs value="):
        T.impute("x", strategy="constant")


# ---- categories --------------------------------------------------------------------------
def test_vocabulary_keeps_the_top_k_and_sends_the_rest_to_oov(
    penguins_split: tuple[pa.Table, pa.Table],
) -> None:
    train, test = penguins_split
    graph = fit(train, [T.vocabulary("island", top_k=2), T.one_hot("island")])
    counts = pl.Series(train.column("island").drop_null().to_pylist()).value_counts()
    top = counts.sort(["count", ""], descending=[True, False])[""].to_list()[:2]
    assert graph.steps[0]["fitted"] == {"vocabulary": top}
    names = [f"island={v}" for v in top] + ["island=<other>"]
    assert graph.feature_names_out[-3:] == names
    island = np.array(test.column("island").to_pylist(), dtype=object)
    X = graph.apply(test)[:, -3:]
    for j, value in enumerate(top):
        np.testing.assert_array_equal(X[:, j], (island == value).astype(float))
    np.testing.assert_array_equal(X[:, 2], (~np.isin(island, top)).astype(float))


def test_vocabulary_ids_and_several_oov_buckets() -> None:
    table = generated()
    graph = fit(table, [T.vocabulary("city", top_k=3, oov_buckets=4)], label="y")
    vocab = graph.steps[0]["fitted"]["vocabulary"]
    ids = column(graph, table, "city")
    for value, got in zip(table.column("city").to_pylist(), ids, strict=True):
        want = vocab.index(value) if value in vocab else 3 + fnv1a64(value or "") % 4
        assert got == want
    with pytest.raises(
        ConfigError, match=r"'oov_buckets' parameter of vocabulary\('c'\) must be an int >= 1"
    ):
        T.vocabulary("c", oov_buckets=0)


def test_one_hot_of_a_text_column_is_todays_default_encoding(
    penguins_split: tuple[pa.Table, pa.Table],
) -> None:
    train, test = penguins_split
    default = TransformGraph.fit(train, label="species", features=["island"])
    library = fit(train, [T.one_hot("island")], features=["island"])
    assert library.feature_names_out == default.feature_names_out
    np.testing.assert_array_equal(library.apply(test), default.apply(test))


def test_hashing_is_fnv1a_of_the_text_mod_buckets() -> None:
    table = generated()
    graph = fit(table, [T.hashing("city", buckets=7), T.one_hot("city")], label="y")
    X = graph.apply(table)[:, -7:]
    assert graph.feature_names_out[-7:] == [f"city__hash{i}" for i in range(7)]
    expected = [fnv1a64(v or "") % 7 for v in table.column("city").to_pylist()]
    np.testing.assert_array_equal(X.argmax(axis=1), expected)
    assert (X.sum(axis=1) == 1).all()
    # integral numbers hash as their digits, whether int in training or float in a request
    counts = fit(table, [T.hashing("count", buckets=5)], label="y")
    expected = [fnv1a64("" if v is None else str(v)) % 5 for v in table.column("count").to_pylist()]
    np.testing.assert_array_equal(column(counts, table, "count"), expected)


def test_cross_hashes_the_joined_values() -> None:
    table = generated()
    graph = fit(
        table, [T.cross(["city", "count"], buckets=16), T.one_hot("city_x_count")], label="y"
    )
    names = graph.feature_names_out
    assert "city_x_count__hash7" in names
    X = graph.apply(table)[:, names.index("city_x_count__hash0") :]
    cities, counts = table.column("city").to_pylist(), table.column("count").to_pylist()
    expected = [
        fnv1a64(f"{c or ''}\x1f{'' if k is None else k}") % 16
        for c, k in zip(cities, counts, strict=True)
    ]
    np.testing.assert_array_equal(X.argmax(axis=1), expected)
    with pytest.raises(ConfigError, match="at least two different columns"):
        T.cross(["a"], buckets=4)


def test_date_parts_match_pythons_datetime() -> None:
    table = generated()
    parts = ["year", "quarter", "month", "day", "dayofweek", "dayofyear", "hour", "minute"]
    graph = fit(table, [T.date_parts("ts", parts=parts)], label="y")
    assert graph.feature_names_out[-len(parts) :] == [f"ts__{p}" for p in parts]
    X = graph.apply(table)[:, -len(parts) :]
    for row, stamp in zip(X, table.column("ts").to_pylist(), strict=True):
        if stamp is None:
            assert (row == 0).all()
            continue
        want = [stamp.year, (stamp.month - 1) // 3 + 1, stamp.month, stamp.day, stamp.weekday(),
                stamp.timetuple().tm_yday, stamp.hour, stamp.minute]  # fmt: skip
        assert row.tolist() == want
    with pytest.raises(ConfigError, match=r"'parts' parameter of date_parts\('ts'\)"):
        T.date_parts("ts", parts=["week"])


# ---- chaining, defaults, passes ----------------------------------------------------------
def test_impute_log_zscore_chain_on_one_column_fits_in_order(
    penguins_split: tuple[pa.Table, pa.Table],
) -> None:
    train, test = penguins_split
    graph = fit(
        train,
        [T.impute("body_mass_g", strategy="median"), T.log("body_mass_g"), T.zscore("body_mass_g")],
    )
    x = floats(train, "body_mass_g")
    median = float(np.quantile(x[~np.isnan(x)], 0.5, method="inverted_cdf"))
    logged = np.log1p(np.where(np.isnan(x), median, x))
    fitted = graph.steps[2]["fitted"]
    assert fitted["mean"] == pytest.approx(logged.mean(), rel=1e-12)
    assert fitted["std"] == pytest.approx(logged.std(), rel=1e-12)
    t = floats(test, "body_mass_g")
    expected = (np.log1p(np.where(np.isnan(t), median, t)) - logged.mean()) / logged.std()
    np.testing.assert_allclose(column(graph, test, "body_mass_g"), expected, atol=1e-12)


def test_features_no_step_names_keep_the_default_and_come_first(
    penguins_split: tuple[pa.Table, pa.Table],
) -> None:
    train, test = penguins_split
    graph = fit(train, [T.min_max("body_mass_g")])
    default = TransformGraph.fit(
        train,
        label="species",
        features=[f for f in train.column_names if f not in ("species", "body_mass_g")],
    )
    assert graph.feature_names_out == [*default.feature_names_out, "body_mass_g"]
    np.testing.assert_allclose(graph.apply(test)[:, :-1], default.apply(test), atol=1e-12)
    assert graph.features == {**default.features, "body_mass_g": "numeric"}


def test_eval_rows_do_not_change_what_is_fitted(
    tmp_path: Path, penguins_split: tuple[pa.Table, pa.Table]
) -> None:
    train, test = penguins_split
    for split, table in (
        ("train", train),
        (
            "eval",
            test.set_column(2, "bill_length_mm", pa.array(floats(test, "bill_length_mm") * 100)),
        ),
    ):
        (tmp_path / split).mkdir()
        pq.write_table(table, tmp_path / split / "part-0.parquet")
    specs = [
        T.zscore("bill_length_mm"),
        T.bucketize("bill_length_mm", buckets=3),
        T.vocabulary("island", top_k=2),
    ]
    examples = Examples(uri=str(tmp_path))
    graph, rows = _fit_library(
        examples, "species", [c for c in train.column_names if c != "species"], specs, None
    )
    alone = fit(train, specs, rows=10**6)  # one batch, as the file is read
    assert rows == train.num_rows
    assert graph.to_dict() == alone.to_dict()
    both = fit(pa.concat_tables([train, test]), specs)
    assert both.steps[0]["fitted"] != graph.steps[0]["fitted"]


# ---- JSON --------------------------------------------------------------------------------
def test_the_fitted_graph_round_trips_through_json(tmp_path: Path) -> None:
    table = generated()
    specs = [
        T.impute("x", strategy="median"), T.zscore("x"), T.min_max("amount"), T.log("amount", output="log_amount"),
        T.bucketize("count", buckets=3), T.cross(["city", "flag"], buckets=5),
        T.row_function(transform_functions.text_and_time, inputs=["city", "ts"], outputs=["city_length", "days"]),
        T.vocabulary("city", top_k=2), T.one_hot("city"), T.hashing("flag", buckets=3), T.date_parts("ts"),
    ]  # fmt: skip
    graph = fit(table, specs, label="y")
    path = graph.save(tmp_path)
    doc = json.loads(path.read_text())
    assert doc["format_version"] == 2
    assert doc["feature_names_out"] == graph.feature_names_out
    assert {"x__missing", "ts__month", "city=<other>", "log_amount", "days"} <= set(
        doc["feature_names_out"]
    )
    loaded = TransformGraph.load(tmp_path)
    assert loaded.to_dict() == graph.to_dict()
    np.testing.assert_array_equal(loaded.apply(table), graph.apply(table))


def test_a_format_1_file_still_loads_and_defaults_write_format_1(
    penguins_split: tuple[pa.Table, pa.Table], tmp_path: Path
) -> None:
    train, _ = penguins_split
    graph = TransformGraph.fit(train, label="species")
    doc = graph.to_dict()
    assert doc["format_version"] == 1 and "steps" not in doc
    graph.save(tmp_path)
    assert TransformGraph.load(tmp_path) == graph
    with pytest.raises(ModelError, match="format_version 3 is not supported"):
        TransformGraph.from_dict({**doc, "format_version": 3})


def test_the_module_exports_a_sorted_all() -> None:
    assert T.__all__ == sorted(T.__all__)
    assert all(hasattr(T, name) for name in T.__all__)


def test_specs_are_frozen_and_json_serialisable() -> None:
    spec = T.vocabulary("c", top_k=3)
    assert json.loads(json.dumps(spec)) == {
        "op": "vocabulary",
        "input": "c",
        "output": "c",
        "top_k": 3,
        "oov_buckets": 1,
    }
    with pytest.raises(TypeError, match="frozen"):
        spec["top_k"] = 4
    assert T.spec_from_dict(json.loads(json.dumps(spec))) == spec
    assert pickle.loads(pickle.dumps(spec)) == spec and copy.deepcopy(spec) == spec
    assert isinstance(pickle.loads(pickle.dumps(spec)), T.TransformSpec)
    with pytest.raises(ConfigError, match="unknown transform 'square'"):
        T.spec_from_dict({"op": "square", "input": "c"})


# ---- bad input ---------------------------------------------------------------------------
def test_a_missing_column_is_named_with_the_columns_and_a_suggestion() -> None:
    with pytest.raises(
        ColumnNotFoundError,
        match=r"column 'amout' not found in the train split \(zscore\('amout'\)\); columns are \[.*\]; did you mean 'amount'\?",
    ):
        fit(generated(), [T.zscore("amout")], label="y")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (T.log("city"), r"log\('city'\) needs a number or ids column; 'city' is text"),
        (T.date_parts("x"), r"date_parts\('x'\) needs a timestamp column; 'x' is a number"),
        (
            T.vocabulary("ts"),
            r"vocabulary\('ts'\) needs text or a number or ids column; 'ts' is a timestamp",
        ),
    ],
)
def test_a_column_of_the_wrong_kind_is_refused_naming_the_step(
    spec: T.TransformSpec, message: str
) -> None:
    with pytest.raises(DataError, match=message):
        fit(generated(), [spec], label="y")


def test_a_step_after_one_hot_and_the_label_as_input_are_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"zscore\('city'\): column 'city' is already one-hot encoded"
    ):
        fit(generated(), [T.one_hot("city"), T.zscore("city")], label="y")
    with pytest.raises(ConfigError, match=r"one_hot\('y'\) reads the label 'y'"):
        fit(generated(), [T.one_hot("y")], label="y")


def test_unseen_and_missing_values_at_apply_time_never_raise() -> None:
    table = generated()
    graph = fit(
        table,
        [
            T.vocabulary("city", top_k=2),
            T.one_hot("city"),
            T.hashing("flag", buckets=3),
            T.impute("x"),
        ],
        label="y",
    )
    odd = pa.table({
        "x": pa.array([None, None], pa.float64()), "amount": [1.0, 2.0], "count": pa.array([None, 3], pa.int64()),
        "city": ["tokyo", None], "flag": pa.array([None, None], pa.bool_()), "ts": pa.array([None, None], pa.timestamp("us")),
    })  # fmt: skip
    X = graph.apply(odd)
    assert np.isfinite(X).all()
    assert column(graph, odd, "city=<other>").tolist() == [1.0, 1.0]


# ---- row functions -----------------------------------------------------------------------
def test_a_row_function_is_applied_and_stored_by_name_and_fingerprint(
    penguins_split: tuple[pa.Table, pa.Table],
) -> None:
    train, test = penguins_split
    spec = T.row_function(
        transform_functions.bill_ratio,
        inputs=["bill_length_mm", "bill_depth_mm"],
        outputs=["bill_ratio"],
    )
    graph = fit(train, [spec, T.zscore("bill_ratio")])
    step = graph.steps[0]
    assert step["function"] == "transform_functions:bill_ratio" and len(step["fingerprint"]) == 64
    ratio = floats(train, "bill_length_mm") / floats(train, "bill_depth_mm")
    assert graph.steps[1]["fitted"]["mean"] == pytest.approx(np.nanmean(ratio), rel=1e-12)
    t = floats(test, "bill_length_mm") / floats(test, "bill_depth_mm")
    expected = np.nan_to_num((t - np.nanmean(ratio)) / np.nanstd(ratio), nan=0.0)
    np.testing.assert_allclose(column(graph, test, "bill_ratio"), expected, atol=1e-12)


def test_a_lambda_a_nested_or_a_main_function_is_refused_when_declared() -> None:
    with pytest.raises(ConfigError, match=r"must be importable by name.*<lambda>"):
        T.row_function(lambda c: c, inputs=["x"], outputs=["y"])

    def local(columns: dict[str, np.ndarray]) -> np.ndarray:
        return columns["x"]

    with pytest.raises(ConfigError, match=r"must be importable by name.*<locals>"):
        T.row_function(local, inputs=["x"], outputs=["y"])
    local.__module__, local.__qualname__ = "__main__", "local"
    with pytest.raises(ConfigError, match=r"__main__:local is not"):
        T.row_function(local, inputs=["x"], outputs=["y"])


def test_loading_refuses_a_row_function_that_is_gone_or_changed(
    tmp_path: Path, penguins_split: tuple[pa.Table, pa.Table]
) -> None:
    train, _ = penguins_split
    spec = T.row_function(
        transform_functions.bill_ratio,
        inputs=["bill_length_mm", "bill_depth_mm"],
        outputs=["bill_ratio"],
    )
    doc = fit(train, [spec]).to_dict()
    changed = json.loads(json.dumps(doc))
    changed["steps"][0]["fingerprint"] = "0" * 64
    (tmp_path / "transform.json").write_text(json.dumps(changed))
    with pytest.raises(
        ModelError,
        match=r"transform.json: row_function 'transform_functions:bill_ratio' is not the code the transform was fitted with",
    ) as info:
        TransformGraph.load(tmp_path)
    assert "run the pipeline again" in (info.value.hint or "")
    gone = json.loads(json.dumps(doc))
    gone["steps"][0]["function"] = "transform_functions:vanished"
    with pytest.raises(
        ModelError, match=r"row_function 'transform_functions:vanished' cannot be imported"
    ) as info:
        TransformGraph.from_dict(gone)
    assert "PYTHONPATH" in (info.value.hint or "")
