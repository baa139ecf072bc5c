"""The public API is what __all__ says, sorted, and importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

import lockgate
import lockgate.components


def test_all_is_sorted_and_importable() -> None:
    for module in (lockgate, lockgate.components):
        assert module.__all__ == sorted(module.__all__)
        for name in module.__all__:
            assert hasattr(module, name), name
    assert "InferenceResult" in lockgate.__all__ and "bulk_infer" in lockgate.components.__all__


def test_importing_lockgate_loads_no_heavy_library() -> None:
    code = (
        "import sys, lockgate, lockgate.components, lockgate.cli.main; "
        "print(sorted(m for m in ('sklearn', 'lightgbm', 'polars', 'sqlalchemy', 'starlette') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
