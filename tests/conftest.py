"""Shared fixtures: metadata stores on SQLite and, when LOCKGATE_TEST_POSTGRES_URL is set,
on a real PostgreSQL (a fresh database per test session, emptied before each test)."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from lockgate.metadata.store import SqlMetadataStore

POSTGRES_URL = os.environ.get("LOCKGATE_TEST_POSTGRES_URL")
TEMPLATE = Path(__file__).resolve().parents[1] / "lockgate" / "templates" / "penguins"
PENGUINS_CSV = TEMPLATE / "data" / "penguins.csv"


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL tests need LOCKGATE_TEST_POSTGRES_URL (set by .ci/run)")
    name = f"lockgate_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def empty_postgres(postgres_database: str) -> str:
    """The session's PostgreSQL database, emptied: no test sees another's runs or models."""
    engine = sa.create_engine(postgres_database)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    return postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metadata.db'}"
    return str(request.getfixturevalue("empty_postgres"))


@pytest.fixture
def store(store_url: str) -> Iterator[SqlMetadataStore]:
    opened = SqlMetadataStore(store_url)
    yield opened
    opened.close()


@pytest.fixture
def penguins_project_with_infra(tmp_path: Path) -> Path:
    """A fresh copy of the penguins project template, as shipped."""
    target = tmp_path / "project"
    shutil.copytree(TEMPLATE, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture
def penguins_project(penguins_project_with_infra: Path) -> Path:
    """The penguins template without its infra_validate step (push then needs the
    evaluator's blessing only): for the many tests of other things, which would each pay
    a server's start. Infra-validation's own tests use ``penguins_project_with_infra``."""
    pipeline = penguins_project_with_infra / "pipeline.py"
    pipeline.write_text(without_infra(pipeline.read_text()))
    return penguins_project_with_infra


def without_infra(source: str) -> str:
    """The template's pipeline.py with the infra_validate step taken out."""
    source, steps = re.subn(
        r"\n    infra = infra_validate\(.*?\n    \)\n", "\n", source, flags=re.S
    )
    source, inputs = re.subn(
        r"\n        infra_blessing=infra\.outputs\.infra_blessing,", "", source
    )
    source, listed = re.subn(r"\(evaluation, infra, pushed\)", "(evaluation, pushed)", source)
    if (steps, inputs, listed) != (1, 1, 1):
        raise AssertionError("the template's pipeline.py changed: update without_infra()")
    return source
