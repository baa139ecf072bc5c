"""The cache through the real `lockgate run`: a helper edited two imports away re-runs
train, a step body imports a module of the project, and every step that runs says why, in
the run summary and in `lockgate runs --run N`."""

from __future__ import annotations

import os
import re
import shutil
import textwrap
from pathlib import Path

import pytest
from conftest import without_infra
from support import lockgate

STEP_LINE = re.compile(
    r"^\s+(\S+)\s+(complete|cached|failed|blocked|skipped)\s+[\d.]+ s\s+(hit|miss|-)\s*(.*)$"
)


def why(output: str) -> dict[str, tuple[str, str]]:
    """{step: (status, reason)} from the run summary's step table ("" when none)."""
    found = {}
    for line in output.splitlines():
        match = STEP_LINE.match(line)
        if match:
            found[match[1]] = (match[2], match[4])
    return found


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def run(project: Path, *args: str, env: dict[str, str] | None = None) -> dict:  # type: ignore[type-arg]
    """`lockgate run --project` from the folder above: `python -m` puts the working folder on
    sys.path, which must not be what makes the project importable (the console script and
    a run from elsewhere have no such entry)."""
    result = lockgate("run", "--project", str(project), *args, cwd=project.parent, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return why(result.stdout)


# --- a helper two imports away, in the penguins project -----------------------------------

HELPERS = {
    "trainers.py": """
        from helpers import build_forest


        def forest(X, y, params):
            return build_forest(params["n_estimators"]).fit(X, y)
    """,
    "helpers/__init__.py": "from helpers.trees import build_forest\n",
    "helpers/trees.py": """
        from sklearn.ensemble import RandomForestClassifier

        from helpers.depth import MAX_DEPTH


        def build_forest(n):
            return RandomForestClassifier(n_estimators=n, max_depth=MAX_DEPTH, random_state=0)
    """,
    "helpers/depth.py": "MAX_DEPTH = 3\n",
}


@pytest.fixture
def penguins_with_helpers(tmp_path: Path) -> Path:
    """`lockgate init`, then train with the project's own trainer: pipeline.py imports
    trainers.py, which imports helpers/, which imports helpers/depth.py. (Without the
    infra-validation step: what is cached here does not depend on it, and each of its
    real servers costs seconds.)"""
    assert lockgate("init", "shop", cwd=tmp_path).returncode == 0
    project = tmp_path / "shop"
    pipeline = project / "pipeline.py"
    text = without_infra(pipeline.read_text())
    for old, new in [
        (
            "from lockgate import Pipeline\n",
            "from lockgate import Pipeline\nfrom trainers import forest\n",
        ),
        ('trainer="lightgbm",', "trainer=forest,"),
        (
            'params={"n_estimators": 100, "learning_rate": 0.1, "num_leaves": 15}',
            'params={"n_estimators": 30}',
        ),
    ]:
        assert old in text, old
        text = text.replace(old, new)
    pipeline.write_text(text)
    write(project, HELPERS)
    return project


def test_a_helper_edited_two_imports_away_reruns_train(penguins_with_helpers: Path) -> None:
    project = penguins_with_helpers
    first = lockgate("run", cwd=project)
    assert first.returncode == 0, first.stdout + first.stderr
    assert why(lockgate("run", cwd=project).stdout)["train"][0] == "cached"
    (project / "helpers" / "depth.py").write_text("MAX_DEPTH = 4  # deeper trees\n")
    after = lockgate("run", cwd=project)
    assert after.returncode == 0, after.stdout + after.stderr
    steps = why(after.stdout)
    assert steps["train"][0] == "complete"  # the old key held train's own source only
    assert steps["train"] == ("complete", "code changed: helpers/depth.py")
    assert why(first.stdout)["train"] == ("complete", "no earlier run")
    assert steps["fit_transform"] == ("cached", "")
    assert steps["evaluate"][0] == "complete" and steps["evaluate"][1].startswith("input")
    run_id = re.search(r"Run (\d+) of pipeline", after.stdout)[1]  # type: ignore[index]
    shown = lockgate("runs", "--run", run_id, cwd=project)
    assert re.search(r"train\s+complete\s+[\d.]+ s\s+code changed: helpers/depth.py", shown.stdout)


# --- a small project: every reason, and a module imported in a step's body -----------------

SMALL_PIPELINE = """
    from pathlib import Path

    from lockgate import Examples, Input, Output, Pipeline, Statistics, component
    from lockgate.components import ingest


    @component
    def summarize(
        examples: Input[Examples], statistics: Output[Statistics], *, column: str = "species"
    ) -> None:
        import rowcount  # a module of the project that pipeline.py never imports

        statistics.properties["files"] = rowcount.count(examples.uri)
        statistics.properties["column"] = column


    def pipeline() -> Pipeline:
        examples = ingest(path="data/penguins.csv", eval_fraction=0.25)
        return Pipeline("small", [examples, summarize(examples=examples.outputs.examples)])
"""

ROWCOUNT = """
    from pathlib import Path


    def count(uri):
        return sum(1 for _ in Path(uri).rglob("*.parquet"))
"""


@pytest.fixture
def small(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A project (from `lockgate init`) whose step imports `rowcount` in its body, run once;
    with a real distribution, `lockgate-test-dep` (a .dist-info folder on PYTHONPATH) whose
    version a test changes."""
    assert lockgate("init", "small", cwd=tmp_path).returncode == 0
    project = tmp_path / "small"
    write(project, {"pipeline.py": SMALL_PIPELINE, "rowcount.py": ROWCOUNT})
    site = tmp_path / "site"
    write(site, {"lockgate_test_dep-1.0.dist-info/METADATA": METADATA.format(version="1.0")})
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    }
    assert run(project, env=env) == {
        "ingest": ("complete", "no earlier run"),
        "summarize": ("complete", "no earlier run"),
    }
    return project, env


METADATA = "Metadata-Version: 2.1\nName: lockgate-test-dep\nVersion: {version}\n"


def test_a_step_body_imports_a_module_of_the_project(small: tuple[Path, dict[str, str]]) -> None:
    project, env = small
    assert run(project, env=env) == {"ingest": ("cached", ""), "summarize": ("cached", "")}
    rowcount = textwrap.dedent(ROWCOUNT).replace("*.parquet", "*")
    (project / "rowcount.py").write_text(rowcount + "# every file, not only Parquet\n")
    assert run(project, env=env)["summarize"] == ("complete", "code changed: rowcount.py")


def test_a_changed_parameter_is_named_old_to_new(small: tuple[Path, dict[str, str]]) -> None:
    project, env = small
    assert run(project, "--set", "summarize.column=island", env=env) == {
        "ingest": ("cached", ""),
        "summarize": ("complete", 'parameter column: "species" → "island"'),
    }


def test_an_outside_file_and_the_new_input_it_makes(small: tuple[Path, dict[str, str]]) -> None:
    project, env = small
    csv = project / "data" / "penguins.csv"
    csv.write_text("".join(csv.read_text().splitlines(keepends=True)[:-5]))
    steps = run(project, env=env)
    assert steps["ingest"] == ("complete", "outside file changed: data/penguins.csv")
    assert re.fullmatch(r"input examples is new \(artifact \d+, was \d+\)", steps["summarize"][1])


def test_the_step_function_edited_in_pipeline_py(small: tuple[Path, dict[str, str]]) -> None:
    project, env = small
    pipeline = project / "pipeline.py"
    pipeline.write_text(
        pipeline.read_text().replace('["column"] = column', '["column"] = column.upper()')
    )
    assert run(project, env=env) == {
        "ingest": ("cached", ""),
        "summarize": ("complete", "code changed: function summarize"),
    }


def test_a_library_version_that_changed(small: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    """A real distribution's version changes between two runs (its .dist-info renamed)."""
    project, env = small
    pipeline = project / "pipeline.py"
    declared = '@component(libraries=("lockgate-test-dep",))'
    pipeline.write_text(pipeline.read_text().replace("@component\n", declared + "\n"))
    assert run(project, env=env)["summarize"] == (
        "complete",
        "library changed: lockgate-test-dep none → 1.0 (and 1 more)",  # and the decorator line
    )
    old = tmp_path / "site" / "lockgate_test_dep-1.0.dist-info"
    new = old.rename(tmp_path / "site" / "lockgate_test_dep-1.1.dist-info")
    (new / "METADATA").write_text(METADATA.format(version="1.1"))
    assert run(project, env=env) == {
        "ingest": ("cached", ""),
        "summarize": ("complete", "library changed: lockgate-test-dep 1.0 → 1.1"),
    }


def test_no_cache_and_outputs_that_are_gone(small: tuple[Path, dict[str, str]]) -> None:
    project, env = small
    assert run(project, "--no-cache", env=env) == {
        "ingest": ("complete", "--no-cache"),
        "summarize": ("complete", "--no-cache"),
    }
    for folder in (project / ".lockgate" / "artifacts" / "small" / "summarize").iterdir():
        shutil.rmtree(folder)
    assert run(project, env=env) == {
        "ingest": ("cached", ""),
        "summarize": ("complete", "earlier outputs are gone"),
    }
    shown = lockgate("runs", "--run", "3", cwd=project, env=env)
    assert re.search(r"summarize\s+complete\s+[\d.]+ s\s+earlier outputs are gone", shown.stdout)
    assert re.search(r"ingest\s+cached\s+[\d.]+ s\s*$", shown.stdout, re.MULTILINE)
