"""resolve_span: latest, given, missing, and a plain path."""

from __future__ import annotations

from pathlib import Path

import pytest

from lockgate.data.spans import find_spans, resolve_span
from lockgate.errors import ConfigError, DataFileError


@pytest.fixture
def spans(tmp_path: Path) -> Path:
    for n in (1, 2, 10):
        (tmp_path / "data" / f"span-{n}").mkdir(parents=True)
        (tmp_path / "data" / f"trips-{n}.csv").write_text("a\n1\n")
    (tmp_path / "data" / "span-x").mkdir()
    (tmp_path / "data" / "trips-3.csv.bak").write_text("")
    return tmp_path / "data"


def test_latest_span_is_the_highest_number(spans: Path) -> None:
    assert resolve_span(f"{spans}/span-{{SPAN}}/") == (spans / "span-10", 10)
    assert resolve_span(f"{spans}/trips-{{SPAN}}.csv") == (spans / "trips-10.csv", 10)


def test_given_span(spans: Path) -> None:
    assert resolve_span(f"{spans}/span-{{SPAN}}", 2) == (spans / "span-2", 2)
    assert sorted(find_spans(f"{spans}/trips-{{SPAN}}.csv")) == [1, 2, 10]


def test_missing_span_lists_the_spans(spans: Path) -> None:
    with pytest.raises(DataFileError, match=r"span 5 of .* does not exist; spans are \[1, 2, 10\]"):
        resolve_span(f"{spans}/span-{{SPAN}}/", 5)
    with pytest.raises(DataFileError, match="no span matches"):
        resolve_span(f"{spans}/other-{{SPAN}}/")


def test_plain_path_is_span_zero_or_the_given_label(spans: Path) -> None:
    assert resolve_span(spans / "trips-1.csv") == (spans / "trips-1.csv", 0)
    assert resolve_span(spans / "trips-1.csv", 7) == (spans / "trips-1.csv", 7)
    with pytest.raises(ConfigError, match="non-negative int"):
        resolve_span(f"{spans}/span-{{SPAN}}", -1)
