"""The package's layers import only downwards (cli > evaluation > serving > training > data >
metadata > core), as the import-linter contract in pyproject.toml states."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_are_kept() -> None:
    command = shutil.which("lint-imports")
    assert command is not None, "import-linter is in the test extras"
    result = subprocess.run(
        [command, "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout
