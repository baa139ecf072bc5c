"""Slices, weights, lists, distinct-count sketches and shard merges, against exact answers."""

import json
import pickle

import numpy as np
import pyarrow as pa
import pytest

from lockgate.data.statistics import (
    QUANTILES,
    NumericAccumulator,
    StringAccumulator,
    TableStatisticsAccumulator,
    numeric,
    statistics_of_table,
)
from lockgate.data.statistics.distinct import RELATIVE_ERROR_99, ThetaDistinct
from lockgate.data.statistics.frequency import ValueCounts
from lockgate.data.statistics.table import MAX_SLICES
from lockgate.errors import ColumnNotFoundError, DataError


def _table(n: int, seed: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed)
    island = np.array(["Biscoe", "Dream", "Torgersen"])[rng.integers(0, 3, n)]
    return pa.table(
        {
            "island": pa.array(island, mask=rng.random(n) < 0.1),
            "mass": pa.array(rng.normal(4000, 500, n).round(1), mask=rng.random(n) < 0.05),
            "flippers": pa.array(rng.integers(170, 230, n)),
            "sex": pa.array(np.array(["m", "f"])[rng.integers(0, 2, n)]),
            "w": pa.array(rng.uniform(0.0, 3.0, n)),
        }
    )


def _weighted_quantile(x: np.ndarray, w: np.ndarray, p: float) -> float:
    order = np.argsort(x)
    cum = np.cumsum(w[order])
    return float(x[order][np.searchsorted(cum, p * cum[-1], side="left")])


def _weighted_rank_ok(x: np.ndarray, w: np.ndarray, q: float, p: float, err: float) -> bool:
    total = w.sum()
    below, upto = w[x < q].sum() / total, w[x <= q].sum() / total
    return bool(below - err - 1e-12 <= p <= upto + err + 1e-12)


def test_slices_equal_statistics_of_the_filtered_table() -> None:
    t = _table(6000)
    stats = statistics_of_table(t, batch_size=1000, slice_by=["island"])
    keys = set(stats["slices"])
    assert keys == {"island=Biscoe", "island=Dream", "island=Torgersen", "island=<missing>"}
    island = t.column("island").to_pandas()
    for key, sliced in stats["slices"].items():
        label = key.split("=", 1)[1]
        mask = island.isna() if label == "<missing>" else island == label
        expected = statistics_of_table(t.filter(pa.array(mask.to_numpy())), batch_size=1000)
        assert sliced["num_rows"] == expected["num_rows"] == int(mask.sum())
        for name, fs in expected["features"].items():
            got = sliced["features"][name]
            for field in ("count", "missing", "min", "max", "top_values", "distinct", "quantiles"):
                assert got.get(field) == fs.get(field), (key, name, field)
            for field in ("mean", "std"):
                if fs.get(field) is not None:
                    assert got[field] == pytest.approx(fs[field], rel=1e-9)
    assert "slices_omitted_rows" not in stats
    json.dumps(stats, allow_nan=False)


def test_slices_are_capped_and_the_rest_is_counted() -> None:
    n = 5000
    codes = np.arange(n) % 150  # 150 slice values; 100 are reported
    t = pa.table({"code": pa.array(codes), "x": pa.array(np.ones(n))})
    stats = statistics_of_table(t, batch_size=700, slice_by=["code"])
    assert len(stats["slices"]) == MAX_SLICES
    reported = sum(s["num_rows"] for s in stats["slices"].values())
    assert stats["slices_omitted_rows"] == {"code": n - reported}


def test_weighted_statistics_match_numpy() -> None:
    t = _table(20_000)
    stats = statistics_of_table(t, batch_size=3000, weight="w")
    w_all = t.column("w").to_numpy()
    assert "w" not in stats["features"]
    assert stats["weighted_num_rows"] == pytest.approx(w_all.sum())
    for name in ("mass", "flippers"):
        col = t.column(name)
        present = col.is_valid().to_numpy(zero_copy_only=False)
        x = col.to_numpy(zero_copy_only=False)[present].astype(float)
        w = w_all[present]
        ws = stats["features"][name]["weighted"]
        mean = np.average(x, weights=w)
        assert ws["count"] == pytest.approx(w.sum())
        assert ws["mean"] == pytest.approx(mean, rel=1e-9)
        assert ws["std"] == pytest.approx(np.sqrt(np.average((x - mean) ** 2, weights=w)), rel=1e-9)
        assert ws["quantiles"]["rank_error"] == 0.0  # below the summary's size: exact
        for p in QUANTILES:
            assert ws["quantiles"][str(p)] == _weighted_quantile(x, w, p)
    island = t.column("island").to_pandas()
    ws = stats["features"]["island"]["weighted"]
    by_value = pa.table({"v": t.column("island"), "w": w_all}).to_pandas().groupby("v")["w"].sum()
    assert dict((v, pytest.approx(c)) for v, c in ws["top_values"]) == by_value.to_dict()
    assert ws["count"] == pytest.approx(w_all[island.notna().to_numpy()].sum())
    json.dumps(stats, allow_nan=False)


def test_weighted_quantiles_past_compaction_stay_within_their_bound() -> None:
    rng = np.random.default_rng(5)
    n = 700_000  # more than 16 * SIZE pairs: the summary compacts
    x, w = rng.normal(size=n), rng.exponential(size=n)
    acc = NumericAccumulator("float", weighted=True)
    for lo in range(0, n, 100_000):
        acc.update(pa.array(x[lo : lo + 100_000]), w[lo : lo + 100_000])
    q = acc.result()["weighted"]["quantiles"]
    assert 0 < q["rank_error"] < 0.001
    for p in QUANTILES:
        assert _weighted_rank_ok(x, w, q[str(p)], p, q["rank_error"]), p


def test_weight_errors_name_the_column() -> None:
    t = _table(100)
    with pytest.raises(ColumnNotFoundError, match="column 'wt' not found in the weight column"):
        statistics_of_table(t, weight="wt")
    with pytest.raises(DataError, match="weight column 'sex' has Arrow type string"):
        statistics_of_table(t, weight="sex")
    with pytest.raises(DataError, match="weight column 'x' has negative values"):
        statistics_of_table(pa.table({"x": [1.0, -2.0], "y": [1, 2]}), weight="x")
    with pytest.raises(ColumnNotFoundError, match="column 'isle' not found.*did you mean 'island'"):
        statistics_of_table(t, slice_by=["isle"])
    with pytest.raises(DataError, match="'slice_by' parameter .* must be a list"):
        TableStatisticsAccumulator(slice_by="island")  # type: ignore[arg-type]


def test_list_columns_value_counts_and_flattened_values() -> None:
    rng = np.random.default_rng(2)
    n = 3000
    lengths = rng.integers(0, 12, n)
    lists = [list(rng.integers(0, 50, k)) for k in lengths]
    nulls = rng.random(n) < 0.1
    col = pa.array(
        [None if m else v for v, m in zip(lists, nulls, strict=True)], pa.list_(pa.int64())
    )
    stats = statistics_of_table(pa.table({"tags": col}), batch_size=512)["features"]["tags"]
    kept = lengths[~nulls]
    flat = np.concatenate([np.asarray(v) for v, m in zip(lists, nulls, strict=True) if not m])
    assert (stats["type"], stats["count"], stats["missing"]) == (
        "list",
        len(kept),
        int(nulls.sum()),
    )
    vc = stats["value_count"]
    assert (vc["min"], vc["max"]) == (kept.min(), kept.max())
    assert vc["mean"] == pytest.approx(kept.mean())
    for h in vc["histogram"]:  # exact counts, [low, high)
        assert h["count"] == int(((kept >= h["low"]) & (kept < h["high"])).sum())
    assert sum(h["count"] for h in vc["histogram"]) == len(kept)
    values = stats["values"]
    assert (values["type"], values["count"], values["min"], values["max"]) == (
        "int",
        len(flat),
        flat.min(),
        flat.max(),
    )
    assert values["mean"] == pytest.approx(flat.mean())
    assert values["distinct"] == len(np.unique(flat))
    strings = pa.array([["a", "b"], [], ["a"], None])
    fs = statistics_of_table(pa.table({"s": strings}))["features"]["s"]
    assert fs["values"]["top_values"] == [["a", 2], ["b", 1]]
    assert fs["value_count"]["min"] == 0


@pytest.mark.parametrize("kind", ["string", "int"])
def test_distinct_estimate_within_stated_error(kind: str) -> None:
    n = 300_000  # past the 100k exact bound
    ids = np.random.default_rng(3).permutation(n * 7)[:n]
    values = pa.array(ids) if kind == "int" else pa.array(ids.astype(str))
    t = pa.table({"id": pa.concat_arrays([values, values.slice(0, 1000)])})
    fs = statistics_of_table(t, batch_size=50_000)["features"]["id"]
    assert fs["distinct_is_estimate"] is True
    assert abs(fs["distinct"] - n) / n <= RELATIVE_ERROR_99


def test_theta_merge_equals_whole_and_pickles() -> None:
    a, b, whole = ThetaDistinct(), ThetaDistinct(), ThetaDistinct()
    left, right = pa.array(np.arange(0, 60_000)), pa.array(np.arange(40_000, 100_000))
    a.update(left)
    b.update(right)
    whole.update(left)
    whole.update(right)
    merged = pickle.loads(pickle.dumps(a)).merge(pickle.loads(pickle.dumps(b)))
    assert merged.estimate() == whole.estimate()
    lo, hi = merged.bounds(3)
    assert lo <= 100_000 <= hi
    other = ThetaDistinct()
    other.polars_version = "0.0.1"
    with pytest.raises(DataError, match="Polars .* and 0.0.1"):
        a.merge(other)


def test_misra_gries_error_bound_holds_after_merges() -> None:
    rng = np.random.default_rng(4)
    data = rng.zipf(1.5, 60_000).astype(str)
    shards = [ValueCounts(pa.large_string(), max_distinct=300, keep=100) for _ in range(3)]
    for k, shard in enumerate(shards):
        shard.update(pa.array(data[k * 20_000 : (k + 1) * 20_000]))
    merged = shards[0].merge(shards[1]).merge(shards[2])
    values, counts = np.unique(data, return_counts=True)
    true = dict(zip(values.tolist(), counts.tolist(), strict=True))
    assert 0 < merged.error <= len(data) / (merged.keep + 1)
    for value, count in merged.top(20):
        assert true[value] - merged.error <= count <= true[value]
    heavy = [v for v, c in true.items() if c > merged.error]
    reported = {v for v, _ in merged.top(merged.keep)}
    assert set(heavy) <= reported  # every value above the error is kept


def test_exact_and_sketched_numeric_shards_merge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(numeric, "EXACT_VALUES", 1000)
    rng = np.random.default_rng(6)
    few, many = rng.integers(0, 10, 5000).astype(float), rng.normal(size=5000)
    a, b = NumericAccumulator("float"), NumericAccumulator("float")
    a.update(pa.array(few))
    b.update(pa.array(many))
    assert a.sketch is None and b.sketch is not None
    for first, second in ((a, b), (b, a)):
        merged = pickle.loads(pickle.dumps(first)).merge(pickle.loads(pickle.dumps(second)))
        r = merged.result()
        x = np.concatenate([few, many])
        assert r["count"] == 10_000 and r["quantiles"]["rank_error"] > 0
        assert r["mean"] == pytest.approx(x.mean())
        assert sum(h["count"] for h in r["histogram"]) == 10_000
    ints, floats = NumericAccumulator("int"), NumericAccumulator("float")
    ints.update(pa.array([1, 2, 2]))
    floats.update(pa.array([0.5]))
    r = ints.merge(floats).result()
    assert (r["type"], r["quantiles"]["0.5"], r["quantiles"]["rank_error"]) == ("float", 1.0, 0.0)
    assert "distinct" not in r


def test_bool_and_string_weighted_pickle() -> None:
    acc = StringAccumulator("bool", weighted=True)
    acc.update(pa.array([True, False, True, None]), np.array([1.0, 2.0, 0.5, 9.0]))
    r = pickle.loads(pickle.dumps(acc)).result()
    assert r["weighted"] == {"count": 3.5, "top_values": [["false", 2.0], ["true", 1.5]]}
    assert r["top_values"] == [["true", 2], ["false", 1]]
