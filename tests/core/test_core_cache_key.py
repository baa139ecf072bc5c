"""The cache key covers the code a step really runs: the project modules its function reaches
(transitively, through imports at module level and in the body) and the libraries under it."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from lockgate import Examples, Input, Output, Pipeline, Statistics, component, run_pipeline
from lockgate.core import launcher
from lockgate.core.project_code import ProjectCode, library_version, library_versions
from lockgate.metadata.store import SqlMetadataStore


@pytest.fixture
def package() -> Iterator[str]:
    """A package name no other test uses (modules stay in sys.modules), forgotten after."""
    name = f"helpers_{uuid.uuid4().hex[:8]}"
    yield name
    for loaded in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[loaded]


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def load(path: Path) -> ModuleType:
    """Import a file as `lockgate run` imports pipeline.py: its folder on sys.path meanwhile."""
    name = f"steps_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def project_with_helpers(root: Path, package: str) -> ModuleType:
    """steps.py -> {package} -> {package}/trees.py -> {package}/depth.py (relative import)."""
    write(
        root,
        {
            f"{package}/__init__.py": "from .trees import build\n",
            f"{package}/trees.py": "from .depth import depth\n\ndef build():\n    return depth()\n",
            f"{package}/depth.py": "def depth():\n    return 3\n",
            f"{package}/unused.py": "X = 1\n",
            "input.txt": "abc",
            "steps.py": f"""
                from pathlib import Path

                from lockgate import Examples, Input, Output, Statistics, component
                from {package} import build


                @component(path_params=("path",))
                def read(examples: Output[Examples], *, path: str) -> None:
                    Path(examples.uri, "data.txt").write_text(Path(path).read_text())


                @component
                def fit(examples: Input[Examples], statistics: Output[Statistics]) -> None:
                    statistics.properties["depth"] = build()
            """,
        },
    )
    return load(root / "steps.py")


def test_the_code_of_a_step_is_every_project_file_its_function_reaches(
    tmp_path: Path, package: str
) -> None:
    steps = project_with_helpers(tmp_path, package)
    code = ProjectCode(tmp_path).fingerprint([steps.fit.fn])
    assert sorted(code) == [f"{package}/__init__.py", f"{package}/depth.py", f"{package}/trees.py"]
    assert ProjectCode(tmp_path).fingerprint([steps.read.fn]) == {}  # uses no helper


def test_imports_inside_the_body_count_without_being_imported(tmp_path: Path, package: str) -> None:
    write(
        tmp_path,
        {
            f"{package}/__init__.py": "",
            f"{package}/io.py": "import json\nfrom . import fmt\n",
            f"{package}/fmt.py": "WIDTH = 3\n",
            "steps.py": f"""
                def step():
                    from {package}.io import fmt  # noqa: F401
                    import {package}.io as helper_io
                    return helper_io
            """,
        },
    )
    steps = load(tmp_path / "steps.py")
    assert f"{package}.io" not in sys.modules  # found by reading, not by importing
    code = ProjectCode(tmp_path).fingerprint([steps.step])
    assert sorted(code) == [f"{package}/__init__.py", f"{package}/fmt.py", f"{package}/io.py"]


def test_a_library_inside_the_project_folder_is_not_project_code() -> None:
    """A virtual environment inside the project folder: numpy lies under it, but the name
    `numpy` does not map to <folder>/numpy.py, so it stays out (its version counts)."""

    def uses_numpy() -> object:
        return np.zeros(1)

    assert Path(np.__file__).resolve().is_relative_to(Path(sys.prefix).resolve())
    assert ProjectCode(sys.prefix).fingerprint([uses_numpy]) == {}


def test_a_helper_edited_two_imports_away_reruns_the_step(
    store: SqlMetadataStore, tmp_path: Path, package: str
) -> None:
    steps = project_with_helpers(tmp_path, package)
    first = steps.read(path="input.txt")
    pipeline = Pipeline("helpers", [first, steps.fit(examples=first.outputs.examples)])

    def run() -> dict[str, tuple[str, str | None]]:
        result = run_pipeline(
            pipeline, store=store, artifact_root=tmp_path / "artifacts", project_dir=tmp_path
        )
        assert result.ok, result.error
        return {name: (s.status, s.reason) for name, s in result.steps.items()}

    run()
    assert run() == {"read": ("cached", None), "fit": ("cached", None)}
    (tmp_path / package / "unused.py").write_text("X = 2\n")  # reached by nothing
    assert run()["fit"] == ("cached", None)
    (tmp_path / package / "depth.py").write_text("def depth():\n    return 4  # deeper\n")
    assert run() == {
        "read": ("cached", None),
        "fit": ("complete", f"code changed: {package}/depth.py"),
    }
    execution = store.run_executions(store.list_runs(limit=1)[0].id)[-1]
    assert execution.cache_parts is not None
    assert sorted(execution.cache_parts["code"]) == [
        "function fit",
        f"{package}/__init__.py",
        f"{package}/depth.py",
        f"{package}/trees.py",
    ]


def test_library_versions_are_the_installed_ones_and_a_component_may_add_its_own() -> None:
    versions = library_versions(["pytest"])
    assert versions["numpy"] == np.__version__
    assert versions["pytest"] == pytest.__version__
    assert "lockgate" in versions and "scikit-learn" in versions
    assert library_version("surely-not-installed-lockgate-dist") is None


def test_a_library_version_change_reruns_the_step(
    store: SqlMetadataStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The version lookup is replaced (installing another scikit-learn in a test is not an
    option); tests/cli/test_cli_cache.py changes a real installed distribution instead."""
    (tmp_path / "input.txt").write_text("abc")

    @component(path_params=("path",))
    def read_text(examples: Output[Examples], *, path: str) -> None:
        Path(examples.uri, "data.txt").write_text(Path(path).read_text())

    @component
    def measure(examples: Input[Examples], statistics: Output[Statistics]) -> None:
        statistics.properties["chars"] = len(Path(examples.uri, "data.txt").read_text())

    first = read_text(path="input.txt")
    pipeline = Pipeline("libs", [first, measure(examples=first.outputs.examples)])
    real = launcher.library_versions

    def run(sklearn: str) -> dict[str, str | None]:
        monkeypatch.setattr(
            launcher,
            "library_versions",
            lambda extra=(): {**real(extra), "scikit-learn": sklearn},
        )
        result = run_pipeline(
            pipeline, store=store, artifact_root=tmp_path / "artifacts", project_dir=tmp_path
        )
        assert result.ok, result.error
        return {name: step.reason for name, step in result.steps.items()}

    run("1.8.0")
    assert run("1.8.0") == {"read_text": None, "measure": None}
    assert run("1.9.0") == {
        "read_text": "library changed: scikit-learn 1.8.0 → 1.9.0",
        "measure": "library changed: scikit-learn 1.8.0 → 1.9.0",
    }
