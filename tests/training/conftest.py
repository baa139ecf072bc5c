"""Penguins, split once into train and eval, shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv
import pytest

PENGUINS = Path(__file__).parents[2] / "lockgate/templates/penguins/data/penguins.csv"


def read_penguins() -> pa.Table:
    options = pyarrow.csv.ConvertOptions(null_values=["NA", ""], strings_can_be_null=True)
    return pyarrow.csv.read_csv(PENGUINS, convert_options=options)


@pytest.fixture(scope="session")
def penguins() -> pa.Table:
    return read_penguins()


@pytest.fixture(scope="session")
def penguins_split(penguins: pa.Table) -> tuple[pa.Table, pa.Table]:
    order = np.random.default_rng(7).permutation(penguins.num_rows)
    cut = int(0.7 * penguins.num_rows)
    return penguins.take(np.sort(order[:cut])), penguins.take(np.sort(order[cut:]))
