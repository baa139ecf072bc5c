"""Helpers of the transform library tests: a streaming fit and a generated table with
dates, numbers, text and bools, each with missing values."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from lockgate import transforms as T
from lockgate.training.transform import TransformGraph
from lockgate.training.transform_fit import fit_library


def fit(
    table: pa.Table,
    transforms: Sequence[Any],
    *,
    label: str = "species",
    features: list[str] | None = None,
    rows: int = 37,
) -> TransformGraph:
    """Fit streaming batches of ``rows`` rows, so that every analyzer merges many; a
    timestamp column no step reads is left out (it has no default encoding)."""
    if features is None:
        read = {name for spec in transforms for name in T.spec_from_dict(spec).inputs}
        features = [
            f.name
            for f in table.schema
            if f.name != label and (f.name in read or not pa.types.is_timestamp(f.type))
        ]
    graph, _ = fit_library(
        lambda: table.to_batches(max_chunksize=rows),
        table.schema,
        label=label,
        features=features,
        transforms=transforms,
        task=None,
    )
    return graph


def column(graph: TransformGraph, table: pa.Table, name: str) -> np.ndarray:
    return graph.apply(table)[:, graph.feature_names_out.index(name)]


def floats(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_pandas(), dtype=np.float64)


def generated(n: int = 300, seed: int = 3) -> pa.Table:
    """Dates, numbers, text and bools, each with missing values."""
    rng = np.random.default_rng(seed)
    start = dt.datetime(2023, 1, 1)
    missing = rng.random(n) < 0.1
    return pa.table(
        {
            "x": pa.array(np.where(missing, np.nan, rng.normal(5, 2, n)), from_pandas=True),
            "amount": pa.array(rng.lognormal(3, 1, n)),
            "count": pa.array(
                [
                    None if m else int(v)
                    for m, v in zip(rng.random(n) < 0.1, rng.integers(0, 9, n), strict=True)
                ],
                pa.int64(),
            ),
            "city": pa.array(
                [
                    None if m else c
                    for m, c in zip(
                        rng.random(n) < 0.1,
                        rng.choice(
                            ["paris", "rome", "oslo", "lima", "kyiv"],
                            n,
                            p=[0.4, 0.3, 0.15, 0.1, 0.05],
                        ),
                        strict=True,
                    )
                ]
            ),
            "flag": pa.array(
                [
                    None if m else bool(b)
                    for m, b in zip(rng.random(n) < 0.1, rng.integers(0, 2, n), strict=True)
                ]
            ),
            "ts": pa.array(
                [
                    None if m else start + dt.timedelta(minutes=int(k))
                    for m, k in zip(rng.random(n) < 0.1, rng.integers(0, 800_000, n), strict=True)
                ],
                pa.timestamp("us"),
            ),
            "y": pa.array(rng.choice(["a", "b"], n).tolist()),
        }
    )
