"""The label column checked before anything is fitted on it: a label that cannot teach a
model anything (absent from every row, or one value throughout) is named here, with the
split and the row count, instead of failing later inside a library."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from lockgate.errors import DataError


def check_label_present(train: pa.Table, label: str, *, rows_before: int) -> None:
    """Refuse a train split whose ``label`` is null in every row (``train`` has those rows
    dropped already; ``rows_before`` counts them)."""
    if train.num_rows == 0:
        raise DataError(
            f"label '{label}' is missing in all {rows_before} row(s) of the train split;"
            " there is nothing to learn from",
            hint="check the label column's name and the data source (lockgate show the"
            " statistics artifact lists its missing values)",
        )


def check_label_varies(train: pa.Table, label: str, *, task: str) -> None:
    """Refuse a regression label with a single value (a classifier's one-class label is
    refused with its class list when the transform is fitted)."""
    if task != "regression":
        return
    column = train.column(label)
    low, high = pc.min_max(column).values()
    if low.as_py() == high.as_py():
        raise DataError(
            f"label '{label}' has the single value {low.as_py()!r} in all {train.num_rows}"
            " row(s) of the train split; a regression on a constant learns nothing",
            hint="check the label column, or the rows the data source selects",
        )
