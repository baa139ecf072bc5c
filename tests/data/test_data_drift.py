"""Drift and skew: L-infinity for categoricals, Jensen-Shannon divergence for numerics,
checked against SciPy and against the exact divergence of known distributions."""

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import norm

from lockgate.data import statistics
from lockgate.data.drift import compare_statistics, jensen_shannon, linf_distance
from lockgate.data.schema import FeatureSpec, Schema
from lockgate.errors import ConfigError


def stats_of(table: pa.Table, tmp_path: Path) -> dict:
    of_table = getattr(statistics, "statistics_of_table", None)
    if of_table is not None:
        return of_table(table)  # type: ignore[no-any-return]
    path = tmp_path / f"span-{id(table)}.parquet"
    pq.write_table(table, path)
    return statistics.compute_statistics([path])


def _cat(counts: dict[str, int], *, top_k: int = 50, kind: str = "string") -> dict:
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "type": kind,
        "count": sum(counts.values()),
        "missing": 0,
        "distinct": len(counts),
        "distinct_is_estimate": False,
        "top_values": [list(kv) for kv in top[:top_k]],
    }


def _num(buckets: list[tuple[float, float, int]], kind: str = "float") -> dict:
    hist = [{"low": lo, "high": hi, "count": c} for lo, hi, c in buckets]
    return {"type": kind, "count": sum(c for *_, c in buckets), "missing": 0, "histogram": hist}


def _stats(**features: dict) -> dict:
    return {"num_rows": 100, "features": features}


def test_identical_statistics_are_at_distance_zero(penguins_csv: Path) -> None:
    stats = statistics.compute_statistics([penguins_csv])
    report = compare_statistics(stats, stats)
    assert [f.feature for f in report.features] == list(stats["features"])  # every feature
    assert {f.distance for f in report.features} == {0.0}
    assert report.passed and report.anomalies() == []
    measures = {f.feature: f.measure for f in report.features}
    assert measures["species"] == "linf" and measures["body_mass_g"] == "jensen_shannon"


def test_disjoint_categoricals_are_at_linf_one() -> None:
    assert linf_distance(_cat({"a": 5, "b": 5}), _cat({"c": 3}))[0] == 1.0
    report = compare_statistics(_stats(x=_cat({"a": 5})), _stats(x=_cat({"b": 5})))
    assert report.features[0].distance == 1.0 and not report.passed


def test_linf_is_the_largest_frequency_change() -> None:
    distance, detail = linf_distance(_cat({"a": 60, "b": 40}), _cat({"a": 45, "b": 45, "c": 10}))
    assert distance == pytest.approx(0.15)
    assert detail == "largest change: 'a' 60.0% -> 45.0%"


def test_linf_groups_the_values_beyond_the_top_ones_as_other() -> None:
    """Base lists every value; new lists 2 of many: the 70% beyond them is 'other'."""
    new = _cat({"a": 20, "b": 10} | {f"v{i}": 1 for i in range(70)}, top_k=2)
    distance, detail = linf_distance(_cat({"a": 50, "b": 50}), new)
    assert distance == pytest.approx(0.7)
    assert "values beyond the top ones" in detail


def test_linf_leaves_other_out_when_both_sides_are_cut() -> None:
    """Unique ids: the top 50 are 2.5% of 2000 rows and 17% of 300; no drift for that."""
    big = _cat({f"a{i}": 1 for i in range(2000)})
    small = _cat({f"b{i}": 1 for i in range(300)})
    assert linf_distance(big, small)[0] == pytest.approx(1 / 300)


def test_jensen_shannon_is_scipys_divergence_on_aligned_histograms() -> None:
    rng = np.random.default_rng(0)
    edges = np.linspace(0, 10, 11)
    for _ in range(5):
        p, q = rng.integers(0, 50, 10), rng.integers(1, 50, 10)
        base = list(zip(edges[:-1], edges[1:], p, strict=True))
        new = list(zip(edges[:-1], edges[1:], q, strict=True))
        expected = jensenshannon(p, q, base=2) ** 2  # SciPy gives the distance: its root
        assert jensen_shannon(base, new) == pytest.approx(expected, abs=1e-12)


def test_jensen_shannon_rebuckets_uniformly() -> None:
    # new's [0, 2] spread uniformly: half in base's [0, 1], half in [1, 2]
    assert jensen_shannon([(0, 1, 5), (1, 2, 5)], [(0, 2, 10)]) == pytest.approx(0.0)
    expected = jensenshannon([1, 0], [0.5, 0.5], base=2) ** 2
    assert jensen_shannon([(0, 1, 4)], [(0, 2, 8)]) == pytest.approx(expected)
    # beyond the base's range: the open-ended outer cell
    assert jensen_shannon([(0, 1, 4)], [(2, 3, 4)]) == pytest.approx(1.0)


def test_jensen_shannon_of_constants_and_repeated_values() -> None:
    assert jensen_shannon([(5, 5, 10)], [(5, 5, 3)]) == 0.0
    assert jensen_shannon([(5, 5, 10)], [(6, 6, 3)]) == pytest.approx(1.0)
    # a point mass inside a base bucket lands in that bucket
    expected = jensenshannon([1, 0], [0.5, 0.5], base=2) ** 2
    assert jensen_shannon([(0, 1, 4), (1, 2, 4)], [(0, 1, 4), (1.5, 1.5, 4)]) == 0.0
    assert jensen_shannon([(0, 1, 4)], [(0, 1, 2), (1, 1, 2)]) == pytest.approx(expected)


def _reference(base_stats: dict, x_base: np.ndarray, x_new: np.ndarray) -> float:
    """SciPy's JS divergence of the raw samples counted exactly in the cells the estimate
    uses (the base histogram's inner edges, the outer two cells open-ended): what the
    estimate would be without spreading each bucket uniformly."""
    b = base_stats["features"]["x"]
    field = "quantile_histogram" if b.get("quantile_histogram") else "histogram"
    bounds = sorted({h["low"] for h in b[field]} | {h["high"] for h in b[field]})
    grid = np.concatenate([[-np.inf], bounds[1:-1], [np.inf]])
    p, q = np.histogram(x_base, grid)[0], np.histogram(x_new, grid)[0]
    return float(jensenshannon(p, q, base=2) ** 2)


def test_jensen_shannon_grows_with_a_shift_and_matches_scipy(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x_base = rng.normal(0, 1, 20_000)
    base = stats_of(pa.table({"x": x_base}), tmp_path)
    grid = np.linspace(-10, 12, 20_001)
    distances = []
    for shift in (0.0, 0.25, 0.5, 1.0, 2.0):
        x_new = rng.normal(shift, 1, 20_000)
        (f,) = compare_statistics(base, stats_of(pa.table({"x": x_new}), tmp_path)).features
        reference = _reference(base, x_base, x_new)
        assert f.distance == pytest.approx(reference, abs=0.015, rel=0.1)
        # and the divergence of the two normal distributions themselves, at 10 buckets
        exact = jensenshannon(norm.pdf(grid), norm.pdf(grid, loc=shift), base=2) ** 2
        assert f.distance == pytest.approx(exact, abs=0.1)
        distances.append(f.distance)
    assert distances == sorted(distances) and distances[0] < 0.005
    assert [d > 0.1 for d in distances] == [False, False, False, True, True]


def test_thresholds_come_from_the_schema() -> None:
    base = _stats(a=_cat({"x": 50, "y": 50}), b=_cat({"x": 50, "y": 50}), c=_cat({"x": 1}))
    new = _stats(a=_cat({"x": 70, "y": 30}), b=_cat({"x": 70, "y": 30}), c=_cat({"x": 1}))
    schema = Schema(
        {
            "a": FeatureSpec("string", drift_threshold=0.3, skew_threshold=0.05),
            "b": FeatureSpec("string", severity={"drift": "error"}),
            "c": FeatureSpec("string"),
        }
    )
    drift = compare_statistics(base, new, schema=schema)
    assert [(f.feature, f.threshold, f.passed) for f in drift.features] == [
        ("a", 0.3, True),
        ("b", 0.1, False),  # the default
        ("c", 0.1, True),
    ]
    assert [(a.feature, a.kind, a.severity) for a in drift.anomalies()] == [("b", "drift", "error")]
    skew = compare_statistics(base, new, schema=schema, kind="skew")
    assert [(a.feature, a.kind, a.severity) for a in skew.anomalies()] == [
        ("a", "skew", "error"),  # a threshold a person chose: an error
        ("b", "skew", "warning"),  # the default threshold: a warning
    ]
    assert skew.anomalies()[0].message == (
        "feature 'a': expected L-infinity distance to the training data at most 0.05; "
        "saw 0.2000; largest change: 'x' 50.0% -> 70.0%"
    )


def test_the_report_lists_every_shared_feature_as_the_contract_says() -> None:
    base = _stats(
        s=_cat({"a": 1}),
        n=_num([(0, 1, 5), (1, 2, 5)]),
        t={"type": "int", "count": 3, "missing": 0},  # no histogram yet
        gone=_cat({"a": 1}),
        empty={"type": "null", "count": 0, "missing": 4},
    )
    new = _stats(
        s=_cat({"a": 1}),
        n=_num([(0, 2, 20)], kind="int"),
        t={"type": "string", "count": 3, "missing": 0},  # type changed
        empty={"type": "null", "count": 0, "missing": 4},
        extra=_cat({"a": 1}),
    )
    d = compare_statistics(base, new).to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["kind"] == "drift" and d["passed"] is True
    assert [f["feature"] for f in d["features"]] == ["s", "n", "t", "empty"]
    for f in d["features"]:
        assert set(f) == {"feature", "type", "measure", "distance", "threshold", "passed"}
    assert [f["distance"] for f in d["features"]] == [0.0, 0.0, None, None]
    assert [f["measure"] for f in d["features"]][:2] == ["linf", "jensen_shannon"]


def test_bools_timestamps_and_lists() -> None:
    flags = compare_statistics(
        _stats(b=_cat({"true": 9, "false": 1}, kind="bool")),
        _stats(b=_cat({"true": 5, "false": 5}, kind="bool")),
    )
    assert flags.features[0].distance == pytest.approx(0.4)
    day = [
        {"low": "2024-01-01T00:00:00", "high": "2024-01-02T00:00:00", "count": 10},
        {"low": "2024-01-02T00:00:00", "high": "2024-01-03T00:00:00", "count": 10},
    ]
    later = [{"low": "2024-01-02T00:00:00+00:00", "high": "2024-01-03T00:00:00+00:00", "count": 9}]
    ts = {"type": "timestamp", "count": 20, "missing": 0}
    (f,) = compare_statistics(
        _stats(t=ts | {"histogram": day}), _stats(t=ts | {"histogram": later})
    ).features
    assert f.measure == "jensen_shannon"
    assert f.distance == pytest.approx(jensenshannon([1, 1], [0, 1], base=2) ** 2)
    lists = {"type": "list", "count": 5, "missing": 0, "values": _cat({"a": 5, "b": 5})}
    other = lists | {"values": _cat({"a": 10})}
    (f,) = compare_statistics(_stats(l=lists), _stats(l=other), kind="skew").features
    assert (f.type, f.measure, f.distance) == ("list", "linf", pytest.approx(0.5))


def test_quantile_histogram_is_preferred_when_both_sides_have_one() -> None:
    a = _num([(0, 10, 10)]) | {"quantile_histogram": [{"low": 0, "high": 1, "count": 10}]}
    b = _num([(0, 10, 10)]) | {"quantile_histogram": [{"low": 5, "high": 6, "count": 10}]}
    assert compare_statistics(_stats(x=a), _stats(x=b)).features[0].distance == 1.0
    assert compare_statistics(_stats(x=a), _stats(x=_num([(0, 10, 10)]))).features[0].distance == 0


def test_kind_must_be_drift_or_skew() -> None:
    with pytest.raises(ConfigError, match="'kind' parameter of compare_statistics must be"):
        compare_statistics(_stats(), _stats(), kind="shift")
