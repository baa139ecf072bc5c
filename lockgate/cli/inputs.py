"""How to read a data path, as flags shared by ``stats``, ``validate``, ``schema infer``,
``drift``, ``skew`` and ``init --data``: ``--format``, ``--delimiter``, ``--no-header`` and
``--column-names``. Without them the format comes from the suffix (``.csv``, ``.jsonl``,
``.parquet``, each optionally ``.gz``, ``.bz2`` or ``.zst``) and a CSV file has a header."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from lockgate.data.readers import CsvOptions

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("csv", "jsonl", "parquet")


@dataclass(frozen=True)
class InputOptions:
    """The flags' values; ``csv`` is None when no CSV flag was given (the defaults)."""

    format: str | None = None
    delimiter: str | None = None
    header: bool = True
    column_names: tuple[str, ...] | None = None

    @property
    def csv(self) -> CsvOptions | None:
        if self.delimiter is None and self.header and self.column_names is None:
            return None
        from lockgate.data.readers import CsvOptions

        return CsvOptions(
            delimiter=self.delimiter or ",", header=self.header, column_names=self.column_names
        )

    def ingest_params(self) -> dict[str, Any]:
        """The same options as keyword arguments of the ``ingest`` component."""
        params: dict[str, Any] = {}
        if self.format is not None:
            params["format"] = self.format
        if self.delimiter is not None:
            params["delimiter"] = self.delimiter
        if not self.header:
            params["header"] = False
        if self.column_names is not None:
            params["column_names"] = list(self.column_names)
        return params


def _delimiter(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    value = {"\\t": "\t", "tab": "\t"}.get(value, value)
    if len(value) != 1:
        raise click.BadParameter(f"must be one character (\\t or tab for a tab); got {value!r}")
    return value


def _names(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = tuple(name.strip() for name in value.split(","))
    if not all(names) or len(set(names)) != len(names):
        raise click.BadParameter(
            f"must be distinct, non-empty names separated by commas; got {value!r}"
        )
    return names


def input_options(fn: F) -> F:
    """Add the four flags; the command receives them as one ``read: InputOptions``."""
    import functools

    @functools.wraps(fn)
    def wrapper(
        *args: Any,
        format: str | None,
        delimiter: str | None,
        no_header: bool,
        column_names: tuple[str, ...] | None,
        **kwargs: Any,
    ) -> Any:
        read = InputOptions(format, delimiter, not no_header, column_names)
        if read.format == "parquet" and read.csv is not None:
            raise click.UsageError("--delimiter, --no-header and --column-names are for CSV")
        return fn(*args, read=read, **kwargs)

    options = [
        click.option(
            "--format",
            type=click.Choice(FORMATS),
            default=None,
            help="The data's format, when its suffix does not say (a folder: its files').",
        ),
        click.option(
            "--delimiter",
            default=None,
            callback=_delimiter,
            help="CSV field separator (default ','; '\\t' or 'tab' for a tab).",
        ),
        click.option("--no-header", is_flag=True, help="The CSV files have no header line."),
        click.option(
            "--column-names",
            default=None,
            callback=_names,
            help="Column names, comma-separated (with --no-header; else they replace the header).",
        ),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]
