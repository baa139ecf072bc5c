"""The walking skeleton end to end, through the real `lockgate` command: demo, cached re-run,
a parameter change, lineage, runs, and the model served to a real V2 client."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyarrow.csv as pacsv
import pytest
from support import LOCKGATE, free_port, lockgate, wait_until_ready


def step_statuses(output: str) -> dict[str, str]:
    """{step: status} from the run summary's step table."""
    statuses = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[1] in {"complete", "cached", "failed", "blocked", "skipped"}:
            statuses[parts[0]] = parts[1]
    return statuses


STEPS = [
    "ingest",
    "compute_statistics",
    "infer_schema",
    "validate_examples",
    "check_skew",
    "fit_transform",
    "train",
    "evaluate",
    "infra_validate",
    "push",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`lockgate demo` run once in a fresh folder; tests below read and extend it."""
    workdir = tmp_path_factory.mktemp("demo")
    result = lockgate("demo", cwd=workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert step_statuses(result.stdout) == dict.fromkeys(STEPS, "complete")
    assert "Anomalies: none" in result.stdout
    assert "Blessed: yes" in result.stdout
    assert "Pushed: yes, model 'penguins' version 1, now in production" in result.stdout
    assert "lockgate serve" in result.stdout  # the next commands to try
    project = workdir / "lockgate-demo"
    assert (project / "pipeline.py").exists() and (project / "lockgate.toml").exists()
    assert (project / "data" / "penguins.csv").exists()
    return project


def test_rerun_with_nothing_changed_comes_entirely_from_cache(demo: Path) -> None:
    # the demo's first run wrote schema.yaml; the next reads it (the same schema, so what
    # follows is cached), and from then on nothing runs
    result = lockgate("run", cwd=demo)
    assert result.returncode == 0, result.stderr
    assert step_statuses(result.stdout) == dict.fromkeys(STEPS, "cached") | {
        "infer_schema": "complete"
    }
    result = lockgate("run", cwd=demo)
    assert result.returncode == 0, result.stderr
    assert step_statuses(result.stdout) == dict.fromkeys(STEPS, "cached")


def test_changing_a_training_parameter_reruns_train_and_downstream_only(demo: Path) -> None:
    result = lockgate("run", "--set", "train.params.n_estimators=40", cwd=demo)
    assert result.returncode == 0, result.stdout + result.stderr
    statuses = step_statuses(result.stdout)
    upstream = [
        "ingest",
        "compute_statistics",
        "infer_schema",
        "validate_examples",
        "fit_transform",
    ]
    assert {s: statuses[s] for s in upstream} == dict.fromkeys(upstream, "cached")
    assert {s: statuses[s] for s in ("train", "evaluate", "push")} == dict.fromkeys(
        ("train", "evaluate", "push"), "complete"
    )
    assert "Pushed: yes, model 'penguins' version 2, now in production" in result.stdout
    again = lockgate("run", "--set", "train.params.n_estimators=40", cwd=demo)
    assert step_statuses(again.stdout) == dict.fromkeys(STEPS, "cached")


def test_lineage_goes_from_the_production_model_back_to_the_input_file(demo: Path) -> None:
    result = lockgate("lineage", "penguins", cwd=demo)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for step in (
        "push",
        "evaluate",
        "train",
        "fit_transform",
        "infer_schema",
        "compute_statistics",
        "ingest",
    ):
        assert f"step '{step}'" in out
    csv = demo / "data" / "penguins.csv"
    import hashlib

    digest = hashlib.sha256(csv.read_bytes()).hexdigest()
    assert f"input file: {csv}  sha256:{digest}" in out
    as_json = json.loads(lockgate("lineage", "penguins", "--json", cwd=demo).stdout)
    assert as_json["lineage"]["type"] == "PushedModel"
    assert "production" in as_json["aliases"]


def test_runs_lists_every_run_with_status_and_duration(demo: Path) -> None:
    result = lockgate("runs", cwd=demo)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert len(rows) >= 2
    assert all(row[2] == "complete" and row[6] == "s" for row in rows)
    detail = lockgate("runs", "--run", rows[-1][0], cwd=demo)
    assert "ingest" in detail.stdout and "push" in detail.stdout


@pytest.fixture(scope="module")
def server(demo: Path) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [*LOCKGATE, "serve", "--port", str(port)],
        cwd=demo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"127.0.0.1:{port}"
    wait_until_ready(process, f"http://{url}")
    yield url
    process.terminate()
    process.wait(timeout=30)
    if process.stdout is not None:
        process.stdout.close()


def eval_rows(demo: Path) -> dict[str, list]:
    table = pacsv.read_csv(
        demo / "data" / "penguins.csv",
        convert_options=pacsv.ConvertOptions(null_values=["NA"], strings_can_be_null=True),
    ).drop_null()
    return table.slice(0, 40).to_pydict()


def test_tritonclient_health_metadata_and_raw_feature_inference(demo: Path, server: str) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(server)
    assert client.is_server_live() and client.is_server_ready()
    metadata = client.get_model_metadata("penguins")
    assert metadata["name"] == "penguins"
    inputs_meta = {i["name"]: i["datatype"] for i in metadata["inputs"]}
    assert inputs_meta["island"] == "BYTES" and inputs_meta["bill_length_mm"] == "FP64"
    rows = eval_rows(demo)
    n = len(rows["species"])
    inputs = []
    for name, datatype in inputs_meta.items():
        values = rows[name]
        array = np.array(values, dtype=object if datatype == "BYTES" else np.float64).reshape(n, 1)
        tensor = triton.InferInput(name, [n, 1], datatype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    result = client.infer("penguins", inputs)
    predicted = [p.decode() for p in result.as_numpy("predicted")]
    accuracy = np.mean([p == t for p, t in zip(predicted, rows["species"], strict=True)])
    assert accuracy > 0.9
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (n, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)


def test_bad_requests_get_json_errors_and_the_server_keeps_serving(demo: Path, server: str) -> None:
    base = f"http://{server}/v2/models/penguins/infer"
    good = {
        "inputs": [
            {"name": "island", "shape": [1], "datatype": "BYTES", "data": ["Biscoe"]},
            {"name": "bill_length_mm", "shape": [1], "datatype": "FP64", "data": [47.5]},
            {"name": "bill_depth_mm", "shape": [1], "datatype": "FP64", "data": [15.0]},
            {"name": "flipper_length_mm", "shape": [1], "datatype": "FP64", "data": [217.0]},
            {"name": "body_mass_g", "shape": [1], "datatype": "FP64", "data": [5200.0]},
            {"name": "sex", "shape": [1], "datatype": "BYTES", "data": ["female"]},
            {"name": "year", "shape": [1], "datatype": "FP64", "data": [2009]},
        ]
    }
    missing = {"inputs": good["inputs"][1:]}
    response = httpx.post(base, json=missing)
    assert response.status_code == 400 and "island" in response.json()["error"]
    wrong_type = json.loads(json.dumps(good))
    wrong_type["inputs"][1] = {
        "name": "bill_length_mm",
        "shape": [1],
        "datatype": "BYTES",
        "data": ["long"],
    }
    response = httpx.post(base, json=wrong_type)
    assert response.status_code == 400 and "bill_length_mm" in response.json()["error"]
    response = httpx.post(
        base, content=b'{"inputs": [', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400 and "JSON" in response.json()["error"]
    response = httpx.post(f"http://{server}/v2/models/pinguins/infer", json=good)
    assert response.status_code == 404 and "did you mean 'penguins'" in response.json()["error"]
    response = httpx.post(base, json=good)
    assert response.status_code == 200
    (predicted,) = [o for o in response.json()["outputs"] if o["name"] == "predicted"]
    assert predicted["data"] == ["Gentoo"]


def test_cli_errors_are_one_line_with_a_hint_and_verbose_adds_the_traceback(tmp_path: Path) -> None:
    result = lockgate("run", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and "is not a lockgate project" in lines[0]
    assert lines[1].startswith("hint: ") and len(lines) == 2
    verbose = lockgate("--verbose", "run", cwd=tmp_path)
    assert "Traceback (most recent call last)" in verbose.stderr


def test_the_pipeline_runs_against_postgresql(
    penguins_project_with_infra: Path, empty_postgres: str
) -> None:
    penguins_project = penguins_project_with_infra
    env = {**os.environ, "LOCKGATE_STORE_URL": empty_postgres}
    first = lockgate("run", cwd=penguins_project, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    second = lockgate("run", cwd=penguins_project, env=env)  # reads the schema.yaml written
    assert step_statuses(second.stdout) == dict.fromkeys(STEPS, "cached") | {
        "infer_schema": "complete"
    }
    third = lockgate("run", cwd=penguins_project, env=env)
    assert step_statuses(third.stdout) == dict.fromkeys(STEPS, "cached")
    assert not (penguins_project / ".lockgate" / "metadata.db").exists()
    lineage = lockgate("lineage", "penguins", cwd=penguins_project, env=env)
    assert "step 'ingest'" in lineage.stdout
