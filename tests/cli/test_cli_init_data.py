"""``lockgate init NAME --data PATH --label COLUMN``: a project for data lockgate has never
seen (scikit-learn's wine and breast-cancer tables), run and served as a newcomer does."""

from __future__ import annotations

import gzip
import os
import subprocess
from pathlib import Path

import httpx
import pytest
from support import LOCKGATE, free_port, lockgate, wait_until_ready

import lockgate.cli.project_from_data as from_data
from lockgate.cli.inputs import InputOptions
from lockgate.errors import ColumnNotFoundError, ConfigError

PENGUINS = Path(__file__).resolve().parents[2] / "lockgate" / "templates" / "penguins"


@pytest.fixture(scope="module")
def wine_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.datasets import load_wine

    path = tmp_path_factory.mktemp("wine") / "wine.csv"
    load_wine(as_frame=True).frame.to_csv(path, index=False)
    return path


def _texts(folder: Path) -> dict[str, str]:
    return {
        str(f.relative_to(folder)): f.read_text(encoding="utf-8", errors="replace")
        for f in folder.rglob("*")
        if f.is_file() and ".lockgate" not in f.parts
    }


def test_a_project_for_the_wine_data_runs_and_serves(wine_csv: Path, tmp_path: Path) -> None:
    made = lockgate("init", "wine", "--data", str(wine_csv), "--label", "target", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "label:    target (classification: integer with 3 distinct values" in made.stdout
    project = tmp_path / "wine"
    files = _texts(project)
    assert sorted(files) == ["data/wine.csv", "lockgate.toml", "pipeline.py"]
    for name, text in files.items():
        assert "penguin" not in text.lower(), name
    assert 'models = ["wine"]' in files["lockgate.toml"]
    assert 'name = "wine"' in files["lockgate.toml"]
    pipeline = files["pipeline.py"]
    assert 'MODEL_NAME = "wine"' in pipeline and 'LABEL = "target"' in pipeline
    assert '"proline",' in pipeline and '"target",' not in pipeline  # the label is no feature
    assert 'ingest(path="data/wine.csv"' in pipeline
    assert 'schema_file="schema.yaml"' in pipeline  # the curated schema flow
    # the gate: beat always guessing the most common class (71 of 178 wines)
    assert '"accuracy": {"lower_bound": 0.4, "max_regression": 0.02}' in pipeline
    assert "slice_by=[],  # no categorical column" in pipeline

    run = lockgate("run", cwd=project)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Pushed: yes, model 'wine' version 1" in run.stdout
    assert (project / "schema.yaml").exists()

    port = free_port()
    server = subprocess.Popen(
        [*LOCKGATE, "serve", "--port", str(port)],
        cwd=project,
        env={k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(server, url)
        header = wine_csv.read_text().splitlines()[0].split(",")
        row = wine_csv.read_text().splitlines()[1].split(",")
        inputs = [
            {"name": name, "shape": [1], "datatype": "FP64", "data": [float(value)]}
            for name, value in zip(header, row, strict=True)
            if name != "target"
        ]
        answer = httpx.post(f"{url}/v2/models/wine/infer", json={"inputs": inputs}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_name"] == "wine"
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_a_label_that_is_no_column_says_which_it_might_be(wine_csv: Path, tmp_path: Path) -> None:
    made = lockgate("init", "wine", "--data", str(wine_csv), "--label", "Target", cwd=tmp_path)
    assert made.returncode == 2
    assert "column 'Target' not found" in made.stderr
    assert "did you mean 'target'?" in made.stderr
    assert "--label names the column to predict" in made.stderr
    assert not (tmp_path / "wine").exists()
    with pytest.raises(ColumnNotFoundError, match="did you mean 'target'"):
        from_data.create_project_from_data(tmp_path / "w", wine_csv, "targt")


def test_label_and_input_flags_need_data(tmp_path: Path) -> None:
    made = lockgate("init", "x", "--label", "target", cwd=tmp_path)
    assert made.returncode == 2 and "go with --data PATH" in made.stderr
    made = lockgate("init", "x", "--data", str(PENGUINS / "data" / "penguins.csv"), cwd=tmp_path)
    assert made.returncode == 2 and "--data needs --label COLUMN" in made.stderr
    plain = lockgate("init", "plain", cwd=tmp_path)  # without --data: the template, as before
    assert plain.returncode == 0
    assert (tmp_path / "plain" / "data" / "penguins.csv").exists()


def test_a_string_label_with_a_categorical_column_gets_slices(tmp_path: Path) -> None:
    made = from_data.create_project_from_data(
        tmp_path / "birds", PENGUINS / "data" / "penguins.csv", "species"
    )
    assert made.task == "classification"
    assert made.slice_by == ["sex"]  # 2 values, fewer than island's 3
    assert made.thresholds == {"accuracy": {"lower_bound": 0.45, "max_regression": 0.02}}
    pipeline = (tmp_path / "birds" / "pipeline.py").read_text()
    assert 'slice_by=["sex"],' in pipeline
    compile(pipeline, "pipeline.py", "exec")


def test_a_float_label_is_regression_with_an_r2_gate(tmp_path: Path) -> None:
    made = from_data.create_project_from_data(
        tmp_path / "mass", PENGUINS / "data" / "penguins.csv", "bill_length_mm"
    )
    assert made.task == "regression"
    assert made.thresholds == {"r2": {"lower_bound": 0.0, "max_regression": 0.02}}
    pipeline = (tmp_path / "mass" / "pipeline.py").read_text()
    assert "linear_regression" in pipeline and "logistic_regression" not in pipeline


def test_large_data_is_referenced_not_copied(
    wine_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(from_data, "COPY_LIMIT", 1000)
    made = from_data.create_project_from_data(tmp_path / "big", wine_csv, "target")
    assert not made.copied
    assert not (tmp_path / "big" / "data").exists()
    assert (
        f"ingest(path={str(wine_csv.resolve())!r}".replace("'", '"')
        in (tmp_path / "big" / "pipeline.py").read_text()
    )
    assert "referenced where it is, not copied" in made.describe()[0]


def test_a_name_that_cannot_name_a_model_is_refused(wine_csv: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot name a model"):
        from_data.create_project_from_data(tmp_path / "my wine", wine_csv, "target")


def test_a_headerless_compressed_file_with_the_input_flags_runs(
    wine_csv: Path, tmp_path: Path
) -> None:
    header, *rows = wine_csv.read_text().splitlines(keepends=True)
    data = tmp_path / "wine.txt.gz"
    data.write_bytes(gzip.compress("".join(r.replace(",", ";") for r in rows).encode()))
    names = ",".join(header.strip().split(","))
    made = lockgate(
        "init", "vino", "--data", str(data), "--label", "target", "--format", "csv",
        "--delimiter", ";", "--no-header", "--column-names", names, cwd=tmp_path,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    pipeline = (tmp_path / "vino" / "pipeline.py").read_text()
    assert 'format="csv", delimiter=";", header=false' not in pipeline  # Python, not JSON
    assert 'format="csv", delimiter=";", header=False, column_names=[' in pipeline
    run = lockgate("run", cwd=tmp_path / "vino")
    assert run.returncode == 0, run.stdout + run.stderr
    update = lockgate("schema", "update", cwd=tmp_path / "vino")  # reads the data as ingest does
    assert update.returncode == 0, update.stdout + update.stderr
    assert "no changes" in update.stdout
    assert InputOptions(header=False).ingest_params() == {"header": False}
