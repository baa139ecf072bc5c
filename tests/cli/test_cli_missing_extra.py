"""An optional dependency that is not installed: the error names the extra that installs it
(``pip install "lockgate[postgres]"``), never "unexpected ModuleNotFoundError".

Each case runs the real command in a fresh interpreter whose import system refuses the
dependency, as a venv without it would (a meta path finder first on ``sys.meta_path``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support import lockgate

_REFUSE = """
import sys

class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _NotInstalled())
"""


def _without(blocked: set[str], code: str, *, cwd: Path, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-c", _REFUSE.format(blocked=blocked) + code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def _cli(blocked: set[str], *args: str, cwd: Path, env: dict[str, str] | None = None):
    code = f"from lockgate.cli.main import cli\ncli(args={list(args)!r}, prog_name='lockgate')\n"
    return _without(blocked, code, cwd=cwd, env=env)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    made = lockgate("init", "p", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    return tmp_path / "p"


def _env(url: str) -> dict[str, str]:
    import os

    return {**os.environ, "LOCKGATE_STORE_URL": url}


def test_a_postgresql_store_without_psycopg_names_the_extra(project: Path) -> None:
    url = "postgresql+psycopg://user:secret@db.example:5432/lockgate"
    done = _cli({"psycopg"}, "runs", cwd=project, env=_env(url))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "unexpected" not in done.stderr
    assert "needs the driver 'psycopg', which is not installed" in done.stderr
    assert 'hint: pip install "lockgate[postgres]"' in done.stderr
    assert "secret" not in done.stderr  # the password is not printed


def test_a_plain_postgresql_url_without_its_driver_names_the_extra(project: Path) -> None:
    # SQLAlchemy picks the default driver of postgresql:// (psycopg2 or psycopg by version)
    done = _cli(
        {"psycopg", "psycopg2"}, "models", "list", cwd=project, env=_env("postgresql://u@h/db")
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "needs the driver 'psycopg" in done.stderr
    assert "lockgate[postgres]" in done.stderr


def test_an_ingest_query_without_psycopg_names_the_extra(tmp_path: Path) -> None:
    code = (
        "from lockgate.data.sql import read_sql_batches\n"
        "from lockgate.errors import ConfigError\n"
        "try:\n"
        "    next(read_sql_batches('postgresql+psycopg://u@h/db', 'SELECT 1'))\n"
        "except ConfigError as exc:\n"
        "    print(exc, '|', exc.hint)\n"
    )
    done = _without({"psycopg"}, code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "needs the driver 'psycopg'" in done.stdout
    assert 'pip install "lockgate[postgres]"' in done.stdout


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 120)
    return np.column_stack([y + rng.normal(0, 0.3, 120), rng.normal(0, 1, 120)]), y


def test_an_onnx_model_without_onnxruntime_names_the_extra(project: Path) -> None:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    X, y = _data()
    model = LogisticRegression().fit(X, np.array(["no", "yes"])[y])
    (project / "clf.onnx").write_bytes(to_onnx(model, X[:1].astype(np.float32)).SerializeToString())
    done = _cli(
        {"onnxruntime", "onnx"},
        *("models", "import", "clf.onnx", "--name", "clf", "--features", "a,b"),
        cwd=project,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "unexpected" not in done.stderr
    assert 'pip install "lockgate[onnx]"' in done.stderr


def test_an_xgboost_model_without_xgboost_names_the_extra(project: Path) -> None:
    import xgboost

    X, y = _data()
    xgboost.XGBClassifier(n_estimators=5).fit(X, y).save_model(str(project / "clf.json"))
    done = _cli(
        {"xgboost"},
        *("models", "import", "clf.json", "--name", "clf", "--features", "a,b"),
        *("--classes", "no,yes"),
        cwd=project,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "unexpected" not in done.stderr
    assert 'pip install "lockgate[xgboost]"' in done.stderr
