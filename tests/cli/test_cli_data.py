"""The data pipeline's standalone commands as a script uses them: the real `lockgate`
process, its exit status, its JSON on stdout, and one-line errors on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support import lockgate

PENGUINS = Path(__file__).resolve().parents[2] / "lockgate/templates/penguins/data/penguins.csv"


def _trips(path: Path, *, shift: float = 0.0, seed: int = 0, rows: int = 2000) -> Path:
    rng = np.random.default_rng(seed)
    table = pa.table(
        {
            "fare": rng.normal(20 + shift, 5, rows),
            "payment": rng.choice(["card", "cash"], rows, p=[0.7, 0.3]),
        }
    )
    pq.write_table(table, path)
    return path


def test_stats_json_has_the_documented_fields(tmp_path: Path) -> None:
    result = lockgate("stats", str(PENGUINS), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["num_rows"] == 344
    mass = stats["features"]["body_mass_g"]
    assert mass["type"] == "float" or mass["type"] == "int"
    assert mass["missing"] == 2 and mass["count"] == 342
    for field in ("mean", "std", "min", "max", "median", "quantiles"):
        assert field in mass, field
    island = stats["features"]["island"]
    assert island["distinct"] == 3 and island["top_values"][0] == ["Biscoe", 168]
    assert "mean" not in island  # fields that do not apply to a type are left out


def test_stats_writes_html_and_prints_a_table(tmp_path: Path) -> None:
    page = tmp_path / "stats.html"
    result = lockgate("stats", str(PENGUINS), "--html", str(page), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert page.read_text().startswith("<!DOCTYPE html>")
    table = lockgate("stats", str(PENGUINS), cwd=tmp_path)
    assert table.returncode == 0 and "flipper_length_mm" in table.stdout


def test_schema_infer_then_validate_passes_and_a_bad_file_fails(tmp_path: Path) -> None:
    inferred = lockgate("schema", "infer", str(PENGUINS), cwd=tmp_path)
    assert inferred.returncode == 0, inferred.stderr
    schema = tmp_path / "schema.yaml"
    schema.write_text(inferred.stdout)
    ok = lockgate("validate", str(PENGUINS), "--schema", str(schema), "--json", cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["errors"] == 0

    bad = tmp_path / "bad.csv"
    lines = PENGUINS.read_text().splitlines()
    header = lines[0].split(",")
    island = header.index("island")
    rows = [line.split(",") for line in lines[1:]]
    for row in rows[:5]:
        row[island] = "Atlantis"
    bad.write_text("\n".join([",".join(header), *(",".join(r) for r in rows)]) + "\n")
    failed = lockgate("validate", str(bad), "--schema", str(schema), "--json", cwd=tmp_path)
    assert failed.returncode == 1
    found = json.loads(failed.stdout)["anomalies"]
    atlantis = [a for a in found if a["feature"] == "island"]
    assert atlantis and atlantis[0]["count"] == 5 and "Atlantis" in str(atlantis[0]["seen"])
    listed = lockgate("validate", str(bad), "--schema", str(schema), cwd=tmp_path)
    assert listed.returncode == 1 and "island" in listed.stdout and "Atlantis" in listed.stdout


def test_schema_diff_exits_1_when_schemas_differ(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("features:\n  fare: {type: float, range: [0, 100]}\n")
    b.write_text("features:\n  fare: {type: float, range: [0, 200]}\n  tip: {type: float}\n")
    same = lockgate("schema", "diff", str(a), str(a), cwd=tmp_path)
    assert same.returncode == 0, same.stderr
    differ = lockgate("schema", "diff", str(a), str(b), cwd=tmp_path)
    assert differ.returncode == 1
    assert "fare" in differ.stdout and "tip" in differ.stdout


def test_drift_lists_every_feature_and_exits_1_over_threshold(tmp_path: Path) -> None:
    base = _trips(tmp_path / "base.parquet", seed=1)
    same = _trips(tmp_path / "same.parquet", seed=2)
    moved = _trips(tmp_path / "moved.parquet", shift=10, seed=3)
    ok = lockgate("drift", str(base), str(same), "--json", cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    report = json.loads(ok.stdout)
    assert {f["feature"] for f in report["features"]} == {"fare", "payment"}
    assert all("distance" in f and "threshold" in f for f in report["features"])
    over = lockgate("drift", str(base), str(moved), "--json", cwd=tmp_path)
    assert over.returncode == 1
    failed = [f["feature"] for f in json.loads(over.stdout)["features"] if not f["passed"]]
    assert failed == ["fare"]


def test_skew_reads_a_request_log_and_ignores_its_answer_columns(tmp_path: Path) -> None:
    training = _trips(tmp_path / "train.parquet", seed=1)
    log = tmp_path / "log.parquet"
    table = pq.read_table(_trips(tmp_path / "served.parquet", seed=4, rows=300))
    table = table.append_column("_output_predicted", pa.array(["x"] * 300))
    pq.write_table(table, log)
    result = lockgate("skew", str(training), str(log), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {f["feature"] for f in json.loads(result.stdout)["features"]} == {"fare", "payment"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["stats", "missing.csv"], "missing.csv"),
        (["stats", "empty.csv"], "empty.csv is empty"),
        (["validate", "data.csv", "--schema", "broken.yaml"], "broken.yaml"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    (tmp_path / "broken.yaml").write_text("features: [this is: not a mapping\n")
    result = lockgate(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
