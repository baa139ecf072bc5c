"""What starting lockgate loads: `import lockgate`, `lockgate --help` and a fully cached
`lockgate run` stay clear of the heavy libraries, which load only when a step computes.

Each check runs in a fresh interpreter (what a user's command pays) and asserts which
modules are loaded, not how long it took: timings are bench/startup.py's business.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import import_module
from pathlib import Path

from support import lockgate

#: the data and model libraries, and the database toolkit: none loads before it is used
HEAVY = ("numpy", "pandas", "polars", "pyarrow", "sklearn", "sqlalchemy")
#: what a run whose every step is a cache hit never needs (the store needs SQLAlchemy)
COMPUTE = ("lightgbm", "numpy", "pandas", "polars", "pyarrow", "scipy", "sklearn", "xgboost")
STATUSES = ("cached", "complete", "failed", "blocked", "skipped")
REPORT = "import json, sys; print(json.dumps(sorted(m for m in {names!r} if m in sys.modules)))"


def run_fresh(code: str, names: tuple[str, ...], cwd: Path | None = None) -> tuple[str, list[str]]:
    """Run ``code`` in a fresh interpreter: (what it printed, which of ``names`` it had
    loaded by its end)."""
    script = f"{code}\n{REPORT.format(names=names)}"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    *printed, report = done.stdout.splitlines()
    return "\n".join(printed), list(json.loads(report))


def loaded_after(code: str, names: tuple[str, ...]) -> list[str]:
    return run_fresh(code, names)[1]


def cli_code(*args: str) -> str:
    """``lockgate ARGS`` run in this interpreter, as the console script runs it."""
    return (
        f"import sys\nfrom lockgate.cli.main import main\nsys.argv = ['lockgate', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert exc.code in (0, None), exc.code"
    )


def test_import_lockgate_loads_no_heavy_library() -> None:
    assert loaded_after("import lockgate", HEAVY) == []


def test_the_public_names_load_no_heavy_library() -> None:
    code = "import lockgate\nfor name in lockgate.__all__: getattr(lockgate, name)"
    assert loaded_after(code, HEAVY) == []


def test_the_cli_and_its_help_load_no_heavy_library() -> None:
    assert loaded_after("import lockgate.cli.main", HEAVY) == []
    printed, loaded = run_fresh(cli_code("--help"), HEAVY)
    assert "Commands:" in printed and "validate" in printed
    assert loaded == []


def test_every_command_is_in_the_lazy_table_and_loads_from_it() -> None:
    """``lockgate.cli.main.COMMANDS`` names each command of each module's ``COMMANDS``."""
    from lockgate.cli.main import COMMANDS, cli

    defined = {}
    for name in ("data", "demo", "lineage", "models", "run", "runs", "serve", "show"):
        for command in import_module(f"lockgate.cli.{name}").COMMANDS:
            defined[command.name] = command
    assert sorted(defined) == sorted(COMMANDS)
    with cli.make_context("lockgate", ["--help"], resilient_parsing=True) as ctx:
        assert cli.list_commands(ctx) == sorted(COMMANDS)
        for name, command in defined.items():
            assert cli.get_command(ctx, name) is command
        assert cli.get_command(ctx, "nope") is None


def test_a_fully_cached_run_loads_no_compute_library(penguins_project: Path) -> None:
    for _ in range(2):  # the first run writes schema.yaml, which the second reads
        earlier = lockgate("run", cwd=penguins_project)
        assert earlier.returncode == 0, earlier.stdout + earlier.stderr
    printed, loaded = run_fresh(cli_code("run"), COMPUTE, cwd=penguins_project)
    table = [line.split() for line in printed.splitlines() if line.startswith("  ")]
    statuses = {row[0]: row[1] for row in table if len(row) > 1 and row[1] in STATUSES}
    assert len(statuses) >= 8 and set(statuses.values()) == {"cached"}, printed
    assert loaded == []
