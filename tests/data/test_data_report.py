"""The visual report: the HTML page and the terminal table, on penguins' real statistics and
on hand-made statistics with every field of the contract (docs/architecture.md)."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lockgate.data.report import render_html, render_terminal
from lockgate.data.statistics import compute_statistics
from lockgate.errors import DataError

PENGUINS = Path(__file__).resolve().parents[2] / "lockgate/templates/penguins/data/penguins.csv"

SEX_MISSING = {
    "feature": "sex",
    "kind": "presence",
    "severity": "error",
    "expected": 0.99,
    "seen": 0.968,
    "count": 11,
    "message": "feature 'sex': 11 of 344 rows missing (3.2%); expected at most 1%",
}
ISLAND_VALUE = {
    "feature": "island",
    "kind": "unexpected_value",
    "severity": "warning",
    "expected": ["Biscoe", "Torgersen"],
    "seen": ["Dream"],
    "count": 124,
    "message": "feature 'island': unexpected value 'Dream' in 124 rows",
}


@pytest.fixture(scope="module")
def penguins() -> dict[str, Any]:
    return compute_statistics([PENGUINS])


def _hist(low: float, high: float, counts: list[int]) -> list[dict[str, float]]:
    step = (high - low) / len(counts)
    return [
        {"low": low + i * step, "high": low + (i + 1) * step, "count": c}
        for i, c in enumerate(counts)
    ]


def contract_stats() -> dict[str, Any]:
    """Every optional field of the statistics contract, written by hand."""
    days = ["2024-01-01T00:00:00+00:00", "2024-01-08T00:00:00+00:00", "2024-01-15T00:00:00+00:00"]
    return {
        "num_rows": 100,
        "weighted_num_rows": 250.5,
        "features": {
            "fare": {
                "type": "float",
                "count": 95,
                "missing": 5,
                "mean": 12.5,
                "std": 3.25,
                "min": 1.0,
                "max": 40.0,
                "zeros": 0,
                "median": 11.0,
                "quantiles": {"0.01": 1.5, "0.5": 11.0, "0.99": 38.0, "rank_error": 0.01},
                "histogram": _hist(1.0, 40.0, [10, 30, 25, 20, 10]),
                "quantile_histogram": _hist(1.0, 40.0, [19, 19, 19, 19, 19]),
                "weighted": {"count": 240.0, "mean": 13.75, "std": 3.5},
            },
            "pickup": {
                "type": "timestamp",
                "count": 98,
                "missing": 2,
                "min": days[0],
                "max": days[2],
                "histogram": [
                    {"low": days[0], "high": days[1], "count": 40},
                    {"low": days[1], "high": days[2], "count": 58},
                ],
            },
            "tags": {
                "type": "list",
                "count": 90,
                "missing": 10,
                "value_count": {
                    "min": 0,
                    "max": 3,
                    "mean": 1.5,
                    "histogram": _hist(0, 3, [5, 40, 30, 15]),
                },
                "values": {
                    "type": "string",
                    "count": 135,
                    "missing": 0,
                    "distinct": 4,
                    "top_values": [["night", 60], ["airport", 50], ["rain", 20], ["toll", 5]],
                },
            },
            "paid": {
                "type": "bool",
                "count": 100,
                "missing": 0,
                "top_values": [[True, 70], [False, 30]],
            },
            "zone": {
                "type": "string",
                "count": 100,
                "missing": 0,
                "distinct": 1200,
                "distinct_is_estimate": True,
                "rank_histogram": [
                    {"rank": 0, "label": "Midtown", "count": 20},
                    {"rank": 1, "label": "Harlem", "count": 9},
                ],
            },
            "note": {"type": "null", "count": 0, "missing": 100},
        },
        "slices": {
            "paid=true": {
                "num_rows": 70,
                "features": {
                    "fare": {"type": "float", "count": 68, "missing": 2, "mean": 13.0, "std": 3.0}
                },
            },
            "paid=false": {
                "num_rows": 30,
                "features": {
                    "fare": {"type": "float", "count": 27, "missing": 3, "mean": 11.25, "std": 2.0}
                },
            },
        },
    }


def feature_section(html: str, name: str) -> str:
    """The HTML of one feature's card, found by its heading."""
    for part in html.split('<section class="feature')[1:]:
        if f"<h3>{name}</h3>" in part:
            return part.split("</section>")[0]
    raise AssertionError(f"no section for {name!r}")


def test_html_shows_every_feature_with_top_values_and_missing_rate(
    penguins: dict[str, Any],
) -> None:
    html = render_html(penguins, title="Penguins")
    assert html.startswith("<!DOCTYPE html>")
    for name in penguins["features"]:
        assert f"<h3>{name}</h3>" in html
    species = feature_section(html, "species")
    assert re.findall(r">(Adelie|Gentoo|Chinstrap)</text>", species) == [
        "Adelie",
        "Gentoo",
        "Chinstrap",
    ]
    assert re.findall(r">(\d+)</text>", species)[:3] == ["152", "124", "68"]
    assert "top 3 values" in species
    sex = feature_section(html, "sex")
    assert "11 (3.2%)" in sex  # 11 of 344 rows
    assert 'style="width: 3.2%"' in sex  # the missing-rate bar
    body_mass = feature_section(html, "body_mass_g")
    for text in ("mean", "4202", "std", "800.8", "median", "4000", "min", "2700", "max", "6300"):
        assert f">{text}<" in body_mass
    assert "histogram, 10 equal-width buckets" in body_mass and "<svg" in body_mass
    assert "344</b> rows" in html and "8</b> features" in html


def test_html_highlights_anomalies_and_links_them(penguins: dict[str, Any]) -> None:
    html = render_html(penguins, title="Penguins", anomalies=[SEX_MISSING, ISLAND_VALUE])
    anomalies = html.split('<section id="anomalies"')[1].split("</section>")[0]
    anchor = re.search(r'id="(f\d+)" data-name="sex"', html)
    assert anchor is not None
    assert f'<a href="#{anchor.group(1)}">sex</a>' in anomalies
    assert "feature &#39;sex&#39;: 11 of 344 rows missing (3.2%); expected at most 1%" in anomalies
    assert '<section class="feature error" id="' + anchor.group(1) in html
    assert re.search(r'<section class="feature warning" id="f\d+" data-name="island"', html)
    assert '<section class="feature " id="f0" data-name="species"' in html  # not flagged
    assert "2</b> anomalies</a> (1 error, 1 warning)" in html


def test_html_compares_two_spans_side_by_side(penguins: dict[str, Any]) -> None:
    later = copy.deepcopy(penguins)
    later["features"]["bill_length_mm"]["mean"] = 50.0
    later["features"]["sex"]["missing"] = 40
    del later["features"]["year"]
    later["features"]["colour"] = {
        "type": "string",
        "count": 344,
        "missing": 0,
        "top_values": [["blue", 344]],
    }
    drift = {
        "kind": "drift",
        "passed": False,
        "features": [
            {
                "feature": "bill_length_mm",
                "type": "float",
                "measure": "jensen_shannon",
                "distance": 0.31,
                "threshold": 0.1,
                "passed": False,
            },
            {
                "feature": "species",
                "type": "string",
                "measure": "linf",
                "distance": 0.02,
                "threshold": 0.1,
                "passed": True,
            },
        ],
    }
    html = render_html(
        later, title="Drift", label="span-2", compare=penguins, compare_label="span-1", drift=drift
    )
    bill = feature_section(html, "bill_length_mm")
    assert '<th title="span-2"><span class="swatch s0"></span>span-2</th>' in bill
    assert '<th title="span-1"><span class="swatch s1"></span>span-1</th>' in bill
    assert "<td>50</td><td>43.92</td>" in bill  # the mean of both spans, in two columns
    assert bill.count("<path") > 2 and "density" in bill  # both spans in one chart
    assert "jensen_shannon 0.31 &gt; 0.1" in bill
    assert '<section class="feature error" id="f2" data-name="bill_length_mm"' in html
    assert 'ok">linf 0.02 ≤ 0.1' in feature_section(html, "species")
    assert "failed" in html and "1 of 2 features over their threshold" in html
    assert "absent" in feature_section(html, "year")  # only in the compared span
    assert "<h3>colour</h3>" in html  # only in the current span
    sex = feature_section(html, "sex")
    assert "40 (10.7%)" in sex and "11 (3.2%)" in sex


def test_html_renders_every_field_of_the_contract() -> None:
    html = render_html(contract_stats(), title="Trips")
    assert "250.5</b> weighted rows" in html
    pickup = feature_section(html, "pickup")
    assert "2024-01-01T00:00:00+00:00" in pickup and "<svg" in pickup
    tags = feature_section(html, "tags")
    assert "values per row, mean" in tags and "tags (values)" in tags
    assert ">night</text>" in tags and "top 4 values" in tags
    assert "values per row</figcaption>" in tags
    fare = feature_section(html, "fare")
    assert "weighted mean" in fare and "13.75" in fare
    assert "quantiles within ±1.0% rank" in fare
    zone = feature_section(html, "zone")
    assert "≈1200" in zone and ">Midtown</text>" in zone and "top 2 values of 1200" in zone
    assert ">True</text>" in feature_section(html, "paid")
    assert "100 (100.0%)" in feature_section(html, "note")
    slices = html.split('<section id="slices"')[1].split("</section>")[0]
    assert "<b>paid=true</b>" in slices and "70 rows" in slices and "13 ± 3" in slices
    assert "<details>" in slices


def test_html_draws_degenerate_and_extreme_features() -> None:
    stamp = "2024-03-01T12:00:00"
    stats = {
        "num_rows": 3,
        "features": {
            "constant": {
                "type": "float",
                "count": 3,
                "missing": 0,
                "histogram": [{"low": 5.0, "high": 5.0, "count": 3}],
            },
            "huge": {
                "type": "int",
                "count": 3,
                "missing": 0,
                "histogram": _hist(-1e9, 1e9, [1, 2]),
            },
            "one_moment": {
                "type": "timestamp",
                "count": 3,
                "missing": 0,
                "histogram": [{"low": stamp, "high": stamp, "count": 3}],
            },
            "企鹅 🐧": {
                "type": "string",
                "count": 3,
                "missing": 0,
                "top_values": [["ペンギン", 2], ["", 1]],
            },
            "empty": {"type": "string", "count": 0, "missing": 3, "top_values": []},
        },
    }
    html = render_html(stats, title="edges", compare={"num_rows": 0, "features": {}})
    assert html.count("<svg") == 4
    assert ">1G</text>" in feature_section(html, "huge")  # no offset text to clip
    assert ">ペンギン</text>" in html and '>""</text>' in html
    assert "<svg" not in feature_section(html, "empty")
    assert render_html({"num_rows": 0, "features": {}}, title="nothing").count("<section") == 1


def test_html_escapes_names_and_values_from_the_data() -> None:
    evil = "<script>alert('name')</script>"
    stats = {
        "num_rows": 2,
        "features": {
            evil: {"type": "string", "count": 2, "missing": 0, "top_values": [["<img src=x>", 2]]},
            "$price$ [bold]": {
                "type": "string",
                "count": 2,
                "missing": 0,
                "top_values": [["$x^2$", 1], ["</svg><script>", 1]],
            },
        },
    }
    anomaly = {
        "feature": evil,
        "kind": "new_column",
        "severity": "warning",
        "message": f"new column {evil}",
    }
    html = render_html(stats, title="<b>title</b>", anomalies=[anomaly], label="<i>now</i>")
    assert "<script>alert" not in html and "<img" not in html and "<b>title" not in html
    assert "</svg><script>" not in html
    assert "&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;" in html
    assert ">&lt;img src=x&gt;</text>" in html
    assert ">$x^2$</text>" in html  # shown as typed, not as mathtext
    assert html.count("<script>") == 1  # the page's own filter


def test_html_is_self_contained(penguins: dict[str, Any]) -> None:
    html = render_html(penguins, title="Penguins", anomalies=[SEX_MISSING], compare=penguins)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert (
        "<link" not in html and "@import" not in html and not re.search(r"url\(\s*['\"]?http", html)
    )
    assert "<!DOCTYPE svg" not in html and "<?xml" not in html
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))  # the inline SVGs' ids do not collide


def test_html_draws_charts_for_flagged_features_first() -> None:
    features = {
        f"x{i}": {
            "type": "int",
            "count": 10,
            "missing": 0,
            "mean": 1.0,
            "histogram": _hist(0, 10, [1] * 10),
        }
        for i in range(12)
    }
    anomaly = {
        "feature": "x11",
        "kind": "out_of_range",
        "severity": "error",
        "message": "x11 out of range",
    }
    html = render_html(
        {"num_rows": 10, "features": features}, title="t", anomalies=[anomaly], max_charts=3
    )
    assert html.count("<svg") == 3
    assert "<svg" in feature_section(html, "x11") and "<svg" in feature_section(html, "x0")
    assert "<svg" not in feature_section(html, "x5")
    assert "Charts are drawn for 3 of 12 features" in html


def test_html_charts_all_twenty_features_when_no_limit_is_set(penguins: dict[str, Any]) -> None:
    features = {}
    for i in range(20):
        source = list(penguins["features"].values())[i % 8]
        features[f"feature_{i}"] = source
    stats = {"num_rows": 344, "features": features}
    html = render_html(stats, title="20 features", max_charts=None)
    assert html.count("<svg") == 20
    assert all(f"feature_{i}" in html for i in range(20))


def test_render_html_rejects_what_is_not_statistics() -> None:
    with pytest.raises(
        DataError, match=r"The 'stats' parameter must be statistics .* Got \['rows'\] instead"
    ):
        render_html({"rows": 3}, title="t")
    with pytest.raises(DataError, match="The 'compare' parameter must be statistics"):
        render_html({"features": {}}, title="t", compare=[])  # type: ignore[arg-type]


def test_importing_the_report_imports_no_plotting_and_drawing_leaves_pyplot_alone() -> None:
    code = (
        "import sys, lockgate.data.report as r\n"
        "assert not {'matplotlib', 'jinja2', 'rich'} & set(sys.modules), sorted(sys.modules)\n"
        "s = {'num_rows': 2, 'features': {'a': {'type': 'int', 'count': 2, 'missing': 0,"
        " 'histogram': [{'low': 0, 'high': 1, 'count': 2}]}}}\n"
        "assert '<svg' in r.render_html(s, title='t')\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True, timeout=120)


def test_terminal_table_lists_every_feature_and_the_anomalies(penguins: dict[str, Any]) -> None:
    text = render_terminal(penguins, anomalies=[SEX_MISSING, ISLAND_VALUE], width=120)
    lines = text.splitlines()
    assert lines[0] == "344 rows, 8 features, 19 missing cells"
    for name in penguins["features"]:
        assert any(line.split()[:1] == [name] for line in lines), name
    (sex,) = [line for line in lines if line.split()[:1] == ["sex"]]
    assert "333" in sex and "3.2%" in sex and "male (168)" in sex and sex.endswith("ERROR")
    (mass,) = [line for line in lines if line.split()[:1] == ["body_mass_g"]]
    assert mass.split()[2:8] == ["342", "0.6%", "4202", "800.8", "2700", "6300"]
    assert (
        "ERROR   sex: presence: feature 'sex': 11 of 344 rows missing (3.2%); expected at most 1%"
        in text
    )
    assert "WARNING island: unexpected_value:" in text
    assert "\x1b" not in text


@pytest.mark.parametrize("width", [60, 80, 100, 160])
def test_terminal_table_fits_the_width(penguins: dict[str, Any], width: int) -> None:
    text = render_terminal(penguins, anomalies=[SEX_MISSING], compare=penguins, width=width)
    assert max(len(line) for line in text.splitlines()) <= width
    for name in penguins["features"]:  # names up to 20 characters are never folded
        assert any(line.split()[:1] == [name] for line in text.splitlines()), name
    assert "11of344rowsmissing" in "".join(text.split())


def test_terminal_table_compares_and_shows_drift() -> None:
    stats = contract_stats()
    drift = {
        "kind": "skew",
        "passed": False,
        "features": [
            {
                "feature": "fare",
                "type": "float",
                "measure": "jensen_shannon",
                "distance": 0.4,
                "threshold": 0.1,
                "passed": False,
            }
        ],
    }
    text = render_terminal(stats, compare=stats, compare_label="training", drift=drift, width=160)
    assert "training: missing, mean / top" in text
    assert "0.4 > 0.1" in text
    assert "SKEW    fare: skew, jensen_shannon 0.4 > 0.1" in text
    for name in ("fare", "pickup", "tags", "paid", "zone", "note"):
        assert name in text
    assert "2024-01-01" in text and "≈1200" in text and "Midtown (20)" in text


def test_terminal_prints_names_as_they_are_and_colours_only_when_asked() -> None:
    stats = {
        "num_rows": 1,
        "features": {"[bold]x[/bold] :smile:": {"type": "int", "count": 1, "missing": 0}},
    }
    plain = render_terminal(stats, width=80)
    assert "[bold]x[/bold] :smile:" in plain and "\x1b" not in plain
    anomaly = {
        "feature": "[bold]x[/bold] :smile:",
        "kind": "presence",
        "severity": "error",
        "message": "m",
    }
    assert "\x1b[" in render_terminal(stats, anomalies=[anomaly], width=80, color=True)
