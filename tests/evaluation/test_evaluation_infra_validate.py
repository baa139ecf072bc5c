"""infra_validate against a real ``lockgate serve``: a trained penguins model of each
framework passes; a model served differently from in process, one that does not load in
the server, a server too slow to come up, and limits that do not hold are refused with
their reason; the server never outlives the validation."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.csv
import pyarrow.parquet as pq
import pytest

from lockgate.core.artifacts import Examples, InfraBlessing, Model, TransformGraph
from lockgate.evaluation import infra_sandbox
from lockgate.evaluation.infra_validate import (
    InfraLimits,
    InfraVerdict,
    infra_validate,
    validate_in_server,
)
from lockgate.training.model_files import save_model
from lockgate.training.trainers import train_model
from lockgate.training.transform import TransformGraph as Graph
from lockgate.training.transform import drop_missing_label

PENGUINS = Path(__file__).parents[2] / "lockgate/templates/penguins/data/penguins.csv"

#: A row function that looks at whether it runs inside ``lockgate serve`` (at call time, so
#: the transform's code fingerprint is the same in both processes): honest code that
#: answers differently in the server, as a dependency that differs there would.
DIFFERS = """
import sys

import numpy as np


def bill_ratio(columns):
    with np.errstate(invalid="ignore"):
        ratio = columns["bill_length_mm"] / columns["bill_depth_mm"]
    return {"bill_ratio": -ratio if "serve" in sys.argv[1:] else ratio}
"""

#: A row function whose module cannot be imported inside ``lockgate serve``.
REFUSES = """
import sys

import numpy as np

if "serve" in sys.argv[1:]:
    raise ImportError("this module is missing on the server")


def bill_ratio(columns):
    with np.errstate(invalid="ignore"):
        return {"bill_ratio": columns["bill_length_mm"] / columns["bill_depth_mm"]}
"""


def make_candidate(
    folder: Path, trainer: str, *, module: str | None = None, label: str = "species"
) -> tuple[Model, TransformGraph, Examples]:
    """The penguins data split, a fitted transform (with ``module``'s ``bill_ratio`` as a
    row function when given) and a trained model, as the pipeline's artifacts."""
    options = pyarrow.csv.ConvertOptions(null_values=["NA", ""], strings_can_be_null=True)
    table = drop_missing_label(pyarrow.csv.read_csv(PENGUINS, convert_options=options), label)
    order = np.random.default_rng(11).permutation(table.num_rows)
    train, evaluation = table.take(order[:240]), table.take(order[240:])
    for split, rows in (("train", train), ("eval", evaluation)):
        (folder / "examples" / split).mkdir(parents=True)
        pq.write_table(rows, folder / "examples" / split / "part-0.parquet")
    if module is None:
        graph = Graph.fit(train, label=label)
    else:
        from lockgate.training.transform_fit import fit_library
        from lockgate.transforms import row_function, zscore

        functions = __import__(module)
        steps = [
            row_function(
                functions.bill_ratio,
                inputs=["bill_length_mm", "bill_depth_mm"],
                outputs=["bill_ratio"],
            ),
            zscore("bill_ratio"),
        ]
        graph, _ = fit_library(
            lambda: train.to_batches(),
            train.schema,
            label="species",
            features=["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "sex"],
            transforms=[dict(step) for step in steps],
            task=None,
        )
    graph.save(folder / "transform")
    fitted = train_model(
        graph.apply(train), graph.encode_label(train), spec=trainer, task=graph.task
    )
    info = save_model(fitted, folder / "model")
    model = Model(
        uri=str(folder / "model"),
        properties={"sha256": info.sha256, "framework": info.framework, "trusted_types": []},
    )
    return (
        model,
        TransformGraph(uri=str(folder / "transform")),
        Examples(uri=str(folder / "examples")),
    )


@pytest.fixture
def sandboxes(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every sandbox a validation makes, to look at its server afterwards."""
    made: list[Any] = []
    real = infra_sandbox.make_sandbox

    def recording(*args: Any, **kwargs: Any) -> Any:
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(infra_sandbox, "make_sandbox", recording)
    return made


def assert_server_gone(sandbox: Any) -> None:
    assert sandbox.process is not None and sandbox.process.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(sandbox.process.pid, 0)
    assert not sandbox.folder.exists()


def failed(verdict: InfraVerdict) -> dict[str, str]:
    return {c["check"]: c["detail"] for c in verdict.checks if not c["passed"]}


@pytest.mark.parametrize(
    ("trainer", "label"),
    [
        ("lightgbm", "species"),
        ("xgboost", "body_mass_g"),
        ("logistic_regression", "species"),
        ("torch_mlp", "species"),
    ],
)
def test_a_trained_model_passes_in_a_real_server_which_is_stopped_afterwards(
    tmp_path: Path, trainer: str, label: str, sandboxes: list[Any]
) -> None:
    model, transform, examples = make_candidate(tmp_path, trainer, label=label)
    verdict = validate_in_server(model, transform, examples, model_name="penguins")
    assert verdict.blessed, verdict.reasons
    assert [c["check"] for c in verdict.checks] == [
        "loads",
        "signature",
        "answers_200",
        "predictions_match",
    ]
    assert verdict.load_time_s is not None and 0 < verdict.load_time_s < 60
    assert verdict.p50_ms is not None and verdict.p99_ms is not None
    assert 0 < verdict.p50_ms <= verdict.p99_ms
    assert verdict.peak_rss_mb is not None and verdict.peak_rss_mb > 20
    (sandbox,) = sandboxes
    assert_server_gone(sandbox)


def test_the_component_writes_the_infra_blessing(tmp_path: Path) -> None:
    model, transform, examples = make_candidate(tmp_path, "lightgbm")
    out = tmp_path / "infra_blessing"
    out.mkdir()
    blessing = InfraBlessing(uri=str(out))
    infra_validate.fn(
        model=model,
        transform=transform,
        examples=examples,
        infra_blessing=blessing,
        model_name="penguins",
        n_requests=6,
        max_p99_latency_ms=0.001,
        max_rss_mb=1.0,
    )
    doc = json.loads((out / "infra_blessing.json").read_text())
    assert set(doc) == {
        "blessed",
        "checks",
        "reasons",
        "load_time_s",
        "p50_ms",
        "p99_ms",
        "peak_rss_mb",
    }
    assert doc["blessed"] is False and blessing.properties["blessed"] is False
    assert blessing.properties["reasons"] == doc["reasons"]
    assert any(
        r.startswith("p99_latency: p99 ") and "max_p99_latency_ms 0.001" in r
        for r in doc["reasons"]
    )
    assert any(r.startswith("peak_rss: peak RSS ") and "max_rss_mb 1" in r for r in doc["reasons"])
    passed = {c["check"] for c in doc["checks"] if c["passed"]}
    assert passed == {"loads", "signature", "answers_200", "predictions_match"}


@pytest.fixture
def project_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """``write(source) -> module name``: a module of the project, importable here and (by
    the path infra-validation hands on) in the server."""
    folder = tmp_path / "project_code"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    names: list[str] = []

    def write(source: str) -> str:
        name = f"infra_features_{len(names)}_{os.getpid()}"
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)


def test_a_model_served_differently_from_in_process_is_not_blessed(
    tmp_path: Path, project_module: Any, sandboxes: list[Any]
) -> None:
    module = project_module(DIFFERS)
    model, transform, examples = make_candidate(tmp_path, "lightgbm", module=module)
    verdict = validate_in_server(model, transform, examples, model_name="penguins")
    assert not verdict.blessed
    problems = failed(verdict)
    assert set(problems) == {"predictions_match"}, verdict.checks
    assert "output 'probabilities' differs from in process on" in problems["predictions_match"]
    assert "served [" in problems["predictions_match"]
    assert verdict.reasons[0].startswith("predictions_match: request 0 (v2-json)")
    assert_server_gone(sandboxes[0])


def test_a_model_that_does_not_load_in_the_server_is_not_blessed(
    tmp_path: Path, project_module: Any, sandboxes: list[Any]
) -> None:
    module = project_module(REFUSES)
    model, transform, examples = make_candidate(tmp_path, "lightgbm", module=module)
    verdict = validate_in_server(model, transform, examples, model_name="penguins")
    assert not verdict.blessed and list(failed(verdict)) == ["loads"]
    reason = verdict.reasons[0]
    assert reason.startswith("loads: the server exited (code ")
    assert "does not load in lockgate serve" in reason
    assert "no model could be loaded" in reason and "cannot be imported" in reason
    assert_server_gone(sandboxes[0])


def test_a_server_slower_than_max_loading_time_is_not_blessed(
    tmp_path: Path, sandboxes: list[Any]
) -> None:
    model, transform, examples = make_candidate(tmp_path, "lightgbm")
    limits = InfraLimits(max_loading_time=0.2)
    verdict = validate_in_server(model, transform, examples, model_name="penguins", limits=limits)
    assert not verdict.blessed and list(failed(verdict)) == ["loads"]
    assert "did not become ready within max_loading_time 0.2 s" in verdict.reasons[0]
    assert_server_gone(sandboxes[0])


def test_the_server_is_stopped_when_the_validation_is_interrupted(
    tmp_path: Path, sandboxes: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lockgate.evaluation import infra_validate as module

    model, transform, examples = make_candidate(tmp_path, "lightgbm")

    def interrupted(*args: Any) -> None:
        assert sandboxes[0].wait(60).ready  # the server is up when the interrupt comes
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "_check_served", interrupted)
    with pytest.raises(KeyboardInterrupt):
        validate_in_server(model, transform, examples, model_name="penguins")
    assert_server_gone(sandboxes[0])


def test_a_model_whose_file_changed_after_training_is_refused_before_serving(
    tmp_path: Path,
) -> None:
    model, transform, examples = make_candidate(tmp_path, "lightgbm")
    (Path(model.uri) / "model.txt").write_text("tree\n")
    verdict = validate_in_server(model, transform, examples, model_name="penguins")
    assert not verdict.blessed and list(failed(verdict)) == ["packaged"]
    assert "the candidate cannot be packaged to serve" in verdict.reasons[0]
    assert "sha256" in verdict.reasons[0]


def test_the_sandbox_gets_no_setting_of_the_project() -> None:
    env = infra_sandbox.child_environment(
        {"LOCKGATE_STORE_URL": "postgresql://prod", "LOCKGATE_SERVE_AUTH_TOKEN": "t", "HOME": "/h"}
    )
    assert not [k for k in env if k.startswith("LOCKGATE_")] and env["HOME"] == "/h"
    assert all(p in env["PYTHONPATH"].split(os.pathsep) for p in sys.path if p and os.path.isdir(p))


KILLED_PARENT = """
import sys, time
sys.path.insert(0, {tests!r})
from pathlib import Path
from test_evaluation_infra_validate import make_candidate
from lockgate.evaluation import infra_sandbox

model, transform, _ = make_candidate(Path({folder!r}), "lightgbm")
sandbox = infra_sandbox.make_sandbox(model, transform, "penguins", root=Path({folder!r}))
sandbox.start()
assert sandbox.wait(60).ready, sandbox.log_tail()
print(sandbox.process.pid, flush=True)
time.sleep(600)
"""


def test_the_server_ends_when_the_validating_process_is_killed(tmp_path: Path) -> None:
    """kill -9 of the process running a validation (no finally, no atexit runs): the
    sandbox server sees its standard input close and stops by itself."""
    import subprocess
    import sys
    import time

    script = KILLED_PARENT.format(tests=str(Path(__file__).parent), folder=str(tmp_path))
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line.strip().isdigit(), f"the validating process printed {line!r}"
        server_pid = int(line)
        os.kill(server_pid, 0)  # the server runs
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(server_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(server_pid, 9)
        raise AssertionError("the sandbox server outlived the process that started it")
