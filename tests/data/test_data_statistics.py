import datetime as dt
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lockgate.core.protocols import Accumulator
from lockgate.data.statistics import (
    QUANTILES,
    NumericAccumulator,
    StringAccumulator,
    TableStatisticsAccumulator,
    TimestampAccumulator,
    compute_statistics,
    numeric,
)
from lockgate.errors import DataError


def _data(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    ints = rng.integers(-50, 50, n)
    floats = rng.normal(10.0, 3.0, n).round(2)
    floats[rng.random(n) < 0.05] = 0.0
    words = np.array(["red", "green", "blue", "cyan", "magenta", "yellow", "black"])
    strings = words[rng.zipf(1.6, n) % len(words)]
    bools = rng.random(n) < 0.3
    base = np.datetime64("2024-01-01T00:00:00", "us")
    stamps = base + rng.integers(0, 10**12, n).astype("timedelta64[us]")

    def nulls(p: float) -> np.ndarray:
        return rng.random(n) < p

    return pa.table(
        {
            "i": pa.array(ints, mask=nulls(0.1)),
            "f": pa.array(floats, mask=nulls(0.2)),
            "s": pa.array(strings, mask=nulls(0.15)),
            "b": pa.array(bools, mask=nulls(0.05)),
            "t": pa.array(stamps, mask=nulls(0.1)),
        }
    )


def _stats(table: pa.Table, batch: int = 1000) -> dict:
    acc = TableStatisticsAccumulator()
    for b in table.to_batches(max_chunksize=batch):
        acc.update(b)
    return acc.result()


def _rank_ok(values: np.ndarray, q: float, p: float, err: float) -> bool:
    """q is a valid p-quantile up to rank error ``err`` (ties make the rank an interval)."""
    x = np.sort(values)
    below = np.searchsorted(x, q, side="left") / len(x)
    upto = np.searchsorted(x, q, side="right") / len(x)
    # KLL's bound holds with 99% confidence per query; 2x makes a flake negligible
    slack = 2 * err + 1 / len(x)
    return bool(below - slack <= p <= upto + slack)


@pytest.mark.parametrize("exact_values", [100_000, 500])
def test_numeric_against_numpy(exact_values: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Below the bound quantiles and histograms are exact; above it within KLL's error."""
    monkeypatch.setattr(numeric, "EXACT_VALUES", exact_values)
    t = _data(20_000)
    stats = _stats(t)
    assert stats["num_rows"] == 20_000
    for name, kind in (("i", "int"), ("f", "float")):
        fs = stats["features"][name]
        x = t.column(name).drop_null().to_numpy().astype(float)
        assert fs["type"] == kind
        assert fs["count"] == len(x)
        assert fs["missing"] == t.column(name).null_count
        assert fs["zeros"] == int((x == 0).sum())
        assert fs["min"] == x.min() and fs["max"] == x.max()
        assert fs["mean"] == pytest.approx(x.mean(), rel=1e-12)
        assert fs["std"] == pytest.approx(x.std(ddof=0), rel=1e-12)
        err = fs["quantiles"]["rank_error"]
        exact = len(np.unique(x)) <= exact_values
        assert err == 0 if exact else 0 < err < 0.02
        for p in QUANTILES:
            if exact:
                assert fs["quantiles"][str(p)] == np.quantile(x, p, method="inverted_cdf")
            assert _rank_ok(x, fs["quantiles"][str(p)], p, err), (name, p)
        assert fs["median"] == fs["quantiles"]["0.5"]
        for key in ("histogram", "quantile_histogram"):
            hist = fs[key]
            assert sum(h["count"] for h in hist) == len(x)
            assert hist[0]["low"] == x.min() and hist[-1]["high"] == x.max()
            for h in hist:  # bucket i holds low < x <= high (the first also holds low)
                true = int(((x > h["low"]) & (x <= h["high"])).sum())
                true += int((x == h["low"]).sum()) if h is hist[0] else 0
                assert abs(h["count"] - true) <= 2 * err * len(x) + 1, (name, key, h, true)
        assert len(fs["histogram"]) == 10 and len(fs["quantile_histogram"]) <= 10
        if exact:  # equal mass: each bucket's share is a decile, up to ties
            shares = [h["count"] / len(x) for h in fs["quantile_histogram"]]
            assert max(shares) < 0.2
    assert isinstance(stats["features"]["i"]["min"], int)
    fi = stats["features"]["i"]
    xi = t.column("i").drop_null().to_numpy()
    assert (fi["distinct"], fi["distinct_is_estimate"]) == (len(np.unique(xi)), False)
    assert "distinct" not in stats["features"]["f"]


def test_small_data_quantiles_and_histogram_are_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(numeric, "EXACT_VALUES", 100)  # use KLL, exact below its k
    x = np.random.default_rng(3).normal(size=150)  # below KLL's k: the sketch is exact
    acc = NumericAccumulator("float")
    acc.update(pa.array(x))
    r = acc.result()
    for p in QUANTILES:
        assert r["quantiles"][str(p)] == np.quantile(x, p, method="inverted_cdf")
    edges = np.linspace(x.min(), x.max(), 11)
    cum = np.searchsorted(np.sort(x), edges[1:-1], side="right")
    expected = np.diff(np.concatenate([[0], cum, [len(x)]]))
    assert [h["count"] for h in r["histogram"]] == expected.tolist()


def test_strings_and_bools_against_pandas() -> None:
    t = _data(20_000)
    stats = _stats(t)
    s = t.column("s").to_pandas()
    fs = stats["features"]["s"]
    assert fs["type"] == "string"
    assert (fs["count"], fs["missing"]) == (s.notna().sum(), s.isna().sum())
    vc = s.value_counts()
    expected = sorted(vc.items(), key=lambda kv: (-kv[1], kv[0]))
    assert fs["top_values"] == [[v, int(c)] for v, c in expected]
    assert fs["distinct"] == s.nunique() and fs["distinct_is_estimate"] is False
    assert fs["avg_length"] == pytest.approx(s.dropna().str.len().mean())
    assert fs["rank_histogram"] == [
        {"rank": i, "label": v, "count": int(c)} for i, (v, c) in enumerate(expected)
    ]
    b = t.column("b").to_pandas()
    fb = stats["features"]["b"]
    assert fb["type"] == "bool" and "avg_length" not in fb and "mean" not in fb
    assert dict(fb["top_values"]) == {
        "true": int((b == True).sum()),  # noqa: E712
        "false": int((b == False).sum()),  # noqa: E712
    }
    assert fb["missing"] == b.isna().sum()


def test_timestamps() -> None:
    t = _data(5000)
    ft = _stats(t)["features"]["t"]
    ts = pd.Series(t.column("t").to_pandas()).dropna()
    hist = ft.pop("histogram")
    assert ft == {
        "type": "timestamp",
        "count": len(ts),
        "missing": t.column("t").null_count,
        "min": ts.min().isoformat(),
        "max": ts.max().isoformat(),
    }
    assert 2 <= len(hist) <= 10
    lows = pd.to_datetime([h["low"] for h in hist])
    highs = pd.to_datetime([h["high"] for h in hist])
    assert lows[0] <= ts.min() and ts.max() < highs[-1]
    assert len(set(highs - lows)) == 1  # equal width
    for lo, hi, h in zip(lows, highs, hist, strict=True):  # exact counts, [low, high)
        assert h["count"] == int(((ts >= lo) & (ts < hi)).sum())
    acc = TimestampAccumulator()
    acc.update(pa.array([dt.date(2020, 1, 2), None, dt.date(2019, 5, 1)]))
    assert acc.result()["min"] == "2019-05-01T00:00:00"


def test_merge_of_shards_equals_whole() -> None:
    t = _data(30_000, seed=7)
    whole = _stats(t)
    shards = [TableStatisticsAccumulator() for _ in range(3)]
    for k, shard in enumerate(shards):
        shard.update(t.slice(k * 10_000, 10_000))
    merged = shards[2].merge(shards[0]).merge(shards[1]).result()
    assert merged["num_rows"] == whole["num_rows"]
    for name, fw in whole["features"].items():
        fm = merged["features"][name]
        for key in (
            "type", "count", "missing", "zeros", "min", "max", "top_values", "distinct",
            "histogram", "rank_histogram",
        ):  # fmt: skip
            assert fm.get(key) == fw.get(key), (name, key)
        for key in ("mean", "std", "avg_length"):
            if fw.get(key) is not None:
                assert fm[key] == pytest.approx(fw[key], rel=1e-9)
        if "quantiles" in fw:
            x = t.column(name).drop_null().to_numpy().astype(float)
            err = fm["quantiles"]["rank_error"]
            for p in QUANTILES:
                assert _rank_ok(x, fm["quantiles"][str(p)], p, err), (name, p)


def test_pickle_round_trip_then_merge() -> None:
    t = _data(3000)
    acc = TableStatisticsAccumulator()
    acc.update(t)
    clone = pickle.loads(pickle.dumps(acc))
    assert clone.result() == acc.result()
    other = TableStatisticsAccumulator()
    other.update(t)
    assert pickle.loads(pickle.dumps(other)).merge(clone).result()["num_rows"] == 6000
    for cls in (NumericAccumulator, StringAccumulator, TimestampAccumulator):
        assert isinstance(cls(), Accumulator)
    assert isinstance(acc, Accumulator)


def test_int_and_float_batches_promote_to_float() -> None:
    acc = TableStatisticsAccumulator()
    acc.update(pa.table({"x": pa.array([None, None], pa.null())}))
    acc.update(pa.table({"x": [1, 2]}))
    acc.update(pa.table({"x": [0.5, None]}))
    fs = acc.result()["features"]["x"]
    assert (fs["type"], fs["count"], fs["missing"], fs["min"], fs["max"]) == ("float", 3, 3, 0.5, 2)


def test_int_and_string_is_an_error_naming_the_column() -> None:
    a, b = TableStatisticsAccumulator(), TableStatisticsAccumulator()
    a.update(pa.table({"zip": [1, 2]}))
    b.update(pa.table({"zip": ["02139", "x"]}))
    with pytest.raises(DataError, match="column 'zip' is int in one batch or shard and string"):
        a.merge(b)


def test_unsupported_type_names_column() -> None:
    with pytest.raises(DataError, match="column 'tags' has Arrow type struct"):
        TableStatisticsAccumulator().update(pa.table({"tags": [{"a": 1}, {"a": 2}]}))


def test_all_missing_and_empty() -> None:
    acc = NumericAccumulator("float")
    acc.update(pa.array([None, float("nan")], pa.float64()))
    r = acc.result()
    assert (r["count"], r["missing"], r["mean"], r["std"], r["histogram"]) == (0, 2, None, None, [])
    assert r["quantile_histogram"] == []
    same = NumericAccumulator("int")
    same.update(pa.array([4, 4, 4]))
    assert same.result()["histogram"] == [{"low": 4.0, "high": 4.0, "count": 3}]


def test_distinct_cap_switches_to_sketch() -> None:
    n = 20_000
    values = pa.array([f"user-{i}" for i in range(n)] + ["user-1"] * 5)
    acc = StringAccumulator(max_distinct=1000)
    for chunk in range(0, len(values), 4096):
        acc.update(values.slice(chunk, 4096))
    r = acc.result()
    assert r["distinct_is_estimate"] is True
    assert abs(r["distinct"] - n) / n < 0.05
    # Misra-Gries: a lower bound, short by at most the recorded error (<= N / (keep + 1))
    top_value, top_count = r["top_values"][0]
    assert top_value == "user-1" and 6 - acc.counts.error <= top_count <= 6
    assert acc.counts.error <= len(values) / (acc.counts.keep + 1)
    pickle.loads(pickle.dumps(acc))


def test_compute_statistics_files_json_safe(tmp_path: Path, penguins_csv: Path) -> None:
    stats = compute_statistics([penguins_csv], batch_size=100)
    json.dumps(stats, allow_nan=False)
    assert stats["num_rows"] == 344
    assert stats["features"]["sex"]["missing"] == 11
    assert stats["features"]["year"]["type"] == "int"
    one = compute_statistics(penguins_csv)["features"]["body_mass_g"]
    assert one["count"] == stats["features"]["body_mass_g"]["count"] == 342


def test_column_absent_from_a_file_counts_as_missing(tmp_path: Path) -> None:
    pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), tmp_path / "1.parquet")
    pq.write_table(pa.table({"a": [3]}), tmp_path / "2.parquet")
    stats = compute_statistics([tmp_path / "1.parquet", tmp_path / "2.parquet"])
    assert stats["features"]["b"]["missing"] == 1 and stats["features"]["b"]["count"] == 2
