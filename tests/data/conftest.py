from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def testdata() -> Path:
    return ROOT / "tests" / "testdata" / "data"


@pytest.fixture
def penguins_csv() -> Path:
    return ROOT / "lockgate" / "templates" / "penguins" / "data" / "penguins.csv"
