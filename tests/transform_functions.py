"""Row functions for the transform library tests: importable by name, as the server needs."""

from __future__ import annotations

import numpy as np


def bill_ratio(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"bill_ratio": columns["bill_length_mm"] / columns["bill_depth_mm"]}


def text_and_time(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Length of a text column (missing: NaN) and the days since 2020 of a time column."""
    text = columns["city"]
    length = np.array([np.nan if v is None else len(v) for v in text], dtype=np.float64)
    days = (columns["ts"] - np.datetime64("2020-01-01", "us")) / np.timedelta64(1, "D")
    return {"city_length": length, "days": days}
