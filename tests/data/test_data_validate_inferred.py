"""Both directions of the inferred schema, on generated data.

A schema inferred from one sample must raise no error on fresh samples of the same
distribution (false alarms teach people to ignore the gate), and must still catch each
kind of anomaly injected into such a sample, at the severity the schema gives it.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from lockgate.data import statistics
from lockgate.data.drift import compare_statistics
from lockgate.data.keys import find_duplicate_keys
from lockgate.data.schema import Schema
from lockgate.data.validate import Anomaly, find_anomalies

COLOURS = ["red", "green", "blue", "black"]
COLOUR_P = [0.5, 0.3, 0.15, 0.05]
COUNTRIES = [f"c{i:02d}" for i in range(30)]
_W = 1 / np.arange(1, 31) ** 0.8
COUNTRY_P = _W / _W.sum()  # Zipf-like; the rarest about 0.7%


def sample(seed: int, n: int) -> pa.Table:
    """One span: a key, ints, heavy- and light-tailed floats with and without nulls, closed
    and open-ended strings, a bool."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 0.5, n)
    note = [f"note {v}" for v in rng.integers(0, 10**9, n)]
    return pa.table(
        {
            "id": [f"s{seed}-{i}" for i in range(n)],
            "age": np.clip(rng.normal(40, 12, n).round(), 18, 90).astype(np.int64),
            "income": pa.array(income, mask=rng.random(n) < 0.05),
            "score": rng.normal(0, 1, n),
            "colour": rng.choice(COLOURS, n, p=COLOUR_P),
            "country": rng.choice(COUNTRIES, n, p=COUNTRY_P),
            "member": rng.random(n) < 0.1,
            "city": [f"city{k}" for k in rng.zipf(1.3, n)],
            "note": pa.array(note, mask=rng.random(n) < 0.2),
        }
    )


def stats_of(table: pa.Table, tmp_path: Path) -> dict:
    of_table = getattr(statistics, "statistics_of_table", None)
    if of_table is not None:
        return of_table(table)  # type: ignore[no-any-return]
    path = tmp_path / f"span-{id(table)}.parquet"
    pq.write_table(table, path)
    return statistics.compute_statistics([path])


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Schema]:
    stats = stats_of(sample(0, 2000), tmp_path_factory.mktemp("base"))
    schema = Schema.from_statistics(stats)
    schema.key = ["id"]  # a key is declared by a person, never inferred
    return stats, schema


def _errors(found: list[Anomaly]) -> list[tuple[str, str]]:
    return [(a.feature, a.kind) for a in found if a.severity == "error"]


def test_the_inferred_schema_makes_the_claims_the_checks_need(base: tuple[dict, Schema]) -> None:
    f = base[1].features
    assert not f["id"].nullable and f["id"].domain is None and f["id"].max_distinct is None
    assert f["colour"].domain == sorted(COLOURS) and f["colour"].max_distinct == 18
    assert f["country"].domain == sorted(COUNTRIES)
    assert f["city"].domain is None and f["city"].max_distinct is None  # open-ended
    assert 0.8 <= f["income"].min_presence < 0.95 and f["income"].nullable
    assert f["score"].range is not None and f["member"].domain == ["false", "true"]


@pytest.mark.parametrize("seed", range(1, 21))
def test_no_false_alarm_on_fresh_samples(
    seed: int, base: tuple[dict, Schema], tmp_path: Path
) -> None:
    base_stats, schema = base
    n = 300 if seed % 2 else 5000  # smaller and bigger spans than the one inferred from
    stats = stats_of(sample(seed, n), tmp_path)
    found = find_anomalies(stats, schema)
    assert _errors(found) == []
    assert [a for a in found if a.kind != "out_of_range"] == []  # not even a warning
    report = compare_statistics(base_stats, stats, schema=schema)
    assert report.passed, [f for f in report.features if not f.passed]
    assert report.anomalies() == []


def _drop_score(t: pa.Table) -> pa.Table:
    return t.drop_columns(["score"])


def _add_column(t: pa.Table) -> pa.Table:
    return t.append_column("extra", pa.array(range(t.num_rows)))


def _age_as_text(t: pa.Table) -> pa.Table:
    return t.set_column(t.schema.get_field_index("age"), "age", pc.cast(t["age"], pa.string()))


def _income_mostly_missing(t: pa.Table) -> pa.Table:
    mask = np.random.default_rng(7).random(t.num_rows) < 0.6
    income = pa.array(t["income"].to_numpy(zero_copy_only=False), mask=mask)
    return t.set_column(t.schema.get_field_index("income"), "income", income)


def _set(t: pa.Table, column: str, rows: range, values: list) -> pa.Table:
    data = t[column].to_pylist()
    for row, value in zip(rows, values, strict=True):
        data[row] = value
    return t.set_column(t.schema.get_field_index(column), column, pa.array(data, t[column].type))


def _colour_nulls(t: pa.Table) -> pa.Table:
    return _set(t, "colour", range(5), [None] * 5)


def _colour_purple(t: pa.Table) -> pa.Table:
    rows = range(0, t.num_rows, 20)  # 5%
    return _set(t, "colour", rows, ["purple"] * len(rows))


def _score_in_milli_units(t: pa.Table) -> pa.Table:
    return t.set_column(t.schema.get_field_index("score"), "score", pc.multiply(t["score"], 1000))


def _colour_garbage_trickle(t: pa.Table) -> pa.Table:
    """25 rows of 3000 (0.8%: within the domain's tolerance), each a different value."""
    return _set(t, "colour", range(25), [f"#{i:06x}" for i in range(25)])


def _repeated_ids(t: pa.Table) -> pa.Table:
    return _set(t, "id", range(10, 20), t["id"].to_pylist()[:10])


INJECTED: list[tuple[Callable[[pa.Table], pa.Table], str, str, str]] = [
    (_drop_score, "score", "missing_column", "error"),
    (_add_column, "extra", "new_column", "warning"),
    (_age_as_text, "age", "type_mismatch", "error"),
    (_income_mostly_missing, "income", "presence", "error"),
    (_colour_nulls, "colour", "unexpected_null", "error"),
    (_colour_purple, "colour", "unexpected_value", "error"),
    (_score_in_milli_units, "score", "out_of_range", "warning"),  # inferred ranges warn
    (_colour_garbage_trickle, "colour", "cardinality_jump", "error"),
    (_repeated_ids, "id", "duplicate_key", "error"),
]


@pytest.mark.parametrize(
    ("inject", "feature", "kind", "severity"), INJECTED, ids=[i[2] for i in INJECTED]
)
def test_each_injected_anomaly_is_caught(
    inject: Callable[[pa.Table], pa.Table],
    feature: str,
    kind: str,
    severity: str,
    base: tuple[dict, Schema],
    tmp_path: Path,
) -> None:
    found = find_anomalies(stats_of(inject(sample(99, 3000)), tmp_path), base[1])
    hits = [a for a in found if (a.feature, a.kind) == (feature, kind)]
    assert [a.severity for a in hits] == [severity], found
    assert hits[0].message.startswith(
        f"feature '{feature}': " if kind != "duplicate_key" else "key"
    )
    others = [a for a in found if a not in hits and a.kind != "out_of_range"]
    assert others == []  # and nothing else: one cause, one anomaly


def test_a_range_made_an_error_by_a_person_stops_the_run(
    base: tuple[dict, Schema], tmp_path: Path
) -> None:
    schema = Schema.from_dict(base[1].to_dict())
    schema.features["score"].severity = None  # the person deleted the warning line
    found = find_anomalies(stats_of(_score_in_milli_units(sample(99, 3000)), tmp_path), schema)
    assert _errors(found) == [("score", "out_of_range")]


def test_duplicate_keys_counted_on_the_data_agree(base: tuple[dict, Schema]) -> None:
    table = _repeated_ids(sample(99, 3000))
    assert find_duplicate_keys(table, ["id"]) == 10
    assert find_duplicate_keys(table.to_batches(max_chunksize=700), ["id"]) == 10
    assert find_duplicate_keys(table, ["id", "colour"]) <= 10


def _shift_colour(t: pa.Table) -> pa.Table:
    rng = np.random.default_rng(5)
    colour = rng.choice(COLOURS, t.num_rows, p=[0.2, 0.3, 0.15, 0.35])
    return t.set_column(t.schema.get_field_index("colour"), "colour", pa.array(colour))


def _shift_score(t: pa.Table) -> pa.Table:
    return t.set_column(t.schema.get_field_index("score"), "score", pc.add(t["score"], 1.0))


@pytest.mark.parametrize(
    ("inject", "feature", "measure"),
    [(_shift_colour, "colour", "linf"), (_shift_score, "score", "jensen_shannon")],
)
def test_drift_and_skew_are_caught(
    inject: Callable[[pa.Table], pa.Table],
    feature: str,
    measure: str,
    base: tuple[dict, Schema],
    tmp_path: Path,
) -> None:
    base_stats, schema = base
    stats = stats_of(inject(sample(99, 3000)), tmp_path)
    report = compare_statistics(base_stats, stats, schema=schema, kind="skew")
    assert [(f.feature, f.measure) for f in report.features if not f.passed] == [(feature, measure)]
    assert [(a.feature, a.kind, a.severity) for a in report.anomalies()] == [
        (feature, "skew", "warning")  # over the default threshold: reported
    ]
    chosen = Schema.from_dict(schema.to_dict())
    chosen.features[feature].drift_threshold = 0.1
    found = find_anomalies(stats, chosen, previous_stats=base_stats)
    assert _errors(found) == [(feature, "drift")]  # over a chosen threshold: stops the run
