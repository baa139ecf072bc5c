"""End to end: a pipeline whose fit_transform uses the transform library (and a row function
of the project) trains, evaluates, pushes, and `lockgate serve` answers a request with it."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyarrow.csv as pacsv
import pytest
from support import lockgate, served

TEMPLATE = Path(__file__).resolve().parents[2] / "lockgate" / "templates" / "penguins"

FEATURES_MODULE = '''
"""Features of the penguins project: row-wise functions the transform stores by name."""

import numpy as np


def bill_shape(columns):
    length, depth = columns["bill_length_mm"], columns["bill_depth_mm"]
    return {"bill_ratio": length / depth, "bill_area": length * depth}
'''

TRANSFORMS = """
    transforms=[
        row_function(bill_shape, inputs=["bill_length_mm", "bill_depth_mm"], outputs=["bill_ratio", "bill_area"]),
        impute("bill_ratio", strategy="median"),
        zscore("bill_ratio"),
        min_max("bill_area"),
        impute("body_mass_g", strategy="mean", indicator=False),
        log("body_mass_g"),
        zscore("body_mass_g"),
        bucketize("flipper_length_mm", buckets=5),
        one_hot("flipper_length_mm"),
        cross(["island", "sex"], buckets=8),
        one_hot("island_x_sex"),
        vocabulary("island", top_k=2),
        one_hot("island"),
        hashing("sex", buckets=4),
        clip("year", lower=2007, upper=2009),
    ],
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The penguins template with the transform library in its fit_transform, run once."""
    target = tmp_path_factory.mktemp("library") / "project"
    shutil.copytree(TEMPLATE, target, ignore=shutil.ignore_patterns("__pycache__"))
    (target / "penguin_features.py").write_text(FEATURES_MODULE)
    pipeline = target / "pipeline.py"
    source = pipeline.read_text()
    source = source.replace(
        "MODEL_NAME = ",
        "from lockgate.transforms import (bucketize, clip, cross, hashing, impute, log, min_max,\n"
        "    one_hot, row_function, vocabulary, zscore)\n"
        "from penguin_features import bill_shape\n\nMODEL_NAME = ",
    )
    marker = 'schema=schema.outputs.schema, label="species"'
    assert marker in source
    source = source.replace(marker, marker + "," + textwrap.indent(TRANSFORMS, ""))
    pipeline.write_text(source)
    result = lockgate("run", cwd=target)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Pushed: yes" in result.stdout, result.stdout
    return target


def test_the_pipeline_fits_the_library_graph_and_pushes_it(project: Path) -> None:
    pushed = sorted(
        (project / ".lockgate" / "artifacts").glob("*/push/*/*/transform/transform.json")
    )
    assert pushed, "the pushed model holds its transform"
    doc = json.loads(pushed[0].read_text())
    assert doc["format_version"] == 2
    ops = [step["op"] for step in doc["steps"]]
    assert ops[0] == "row_function" and "bucketize" in ops and "cross" in ops
    assert doc["steps"][0]["function"] == "penguin_features:bill_shape"
    names = doc["feature_names_out"]
    assert {"bill_ratio", "island=Biscoe", "island=<other>", "island_x_sex__hash3"} <= set(names)
    assert "flipper_length_mm__bucket4" in names
    assert doc["features"] == []  # every feature is named by a step
    again = lockgate("run", cwd=project)  # nothing changed: the library step is cached
    assert again.returncode == 0, again.stdout + again.stderr
    assert any(
        line.split()[:2] == ["fit_transform", "cached"] for line in again.stdout.splitlines()
    )


@pytest.fixture(scope="module")
def server(project: Path) -> Iterator[str]:
    with served(project) as url:
        yield url


def test_the_served_model_answers_with_the_library_transform(project: Path, server: str) -> None:
    table = pacsv.read_csv(
        project / "data" / "penguins.csv",
        convert_options=pacsv.ConvertOptions(null_values=["NA"], strings_can_be_null=True),
    )
    rows = table.slice(0, 60).to_pydict()
    rows["island"][0] = "Atlantis"  # unseen category
    rows["bill_length_mm"][1] = None  # missing value
    meta = httpx.get(f"{server}/v2/models/penguins").json()
    inputs = []
    for spec in meta["inputs"]:
        values = rows[spec["name"]]
        inputs.append(
            {
                "name": spec["name"],
                "datatype": spec["datatype"],
                "shape": [len(values)],
                "data": values,
            }
        )
    answer = httpx.post(f"{server}/v2/models/penguins/infer", json={"inputs": inputs}, timeout=30)
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: o["data"] for o in answer.json()["outputs"]}
    predicted = np.array(outputs["predicted"])
    assert len(predicted) == 60
    assert np.mean(predicted == np.array(rows["species"])) > 0.9
