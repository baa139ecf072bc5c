from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser

import pytest
from evaluation_fixtures import (
    HOSTILE,
    classification_evaluation,
    format_1_evaluation,
    regression_evaluation,
)
from rich.console import Console

from lockgate.errors import ConfigError, DataError
from lockgate.evaluation.report import render_html, render_terminal
from lockgate.evaluation.report_view import fmt_estimate, main_metrics, ordered_checks


def terminal(evaluation: dict, width: int = 160, **kwargs) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    render_terminal(evaluation, console, **kwargs)
    return console.file.getvalue()  # type: ignore[attr-defined]


class _Tags(HTMLParser):
    """Every start tag and its attributes: to find scripts, links and sources in the page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def test_interval_format() -> None:
    assert fmt_estimate({"value": 0.9123, "lower": 0.8871, "upper": 0.9339}) == (
        "0.912 [0.887, 0.934]"
    )
    assert fmt_estimate({"value": -0.03, "lower": -0.05, "upper": 0.01}, signed=True) == (
        "-0.030 [-0.050, +0.010]"
    )
    assert fmt_estimate({"value": 12345.6, "lower": None, "upper": None}) == "1.235e+04"
    assert fmt_estimate({"value": None, "lower": None, "upper": None}) == "–"
    assert fmt_estimate(None) == "–"


def test_checks_are_ordered_failing_then_skipped_then_passing() -> None:
    checks = ordered_checks(classification_evaluation(baseline=True))
    assert [c["metric"] for c in checks] == ["f1_macro", "brier_score", "accuracy"]


def test_main_metrics_start_with_the_thresholds_then_the_tasks_own() -> None:
    evaluation = classification_evaluation(baseline=True)
    assert main_metrics(evaluation) == [
        "f1_macro",
        "brier_score",
        "accuracy",
        "roc_auc",
        "log_loss",
    ]
    assert main_metrics(evaluation, ["recall[Adelie]"]) == ["recall[Adelie]"]
    with pytest.raises(ConfigError, match="metric 'acuracy' is not in this evaluation.*'accuracy'"):
        main_metrics(evaluation, ["acuracy"])
    assert main_metrics(regression_evaluation(baseline=False)) == ["rmse", "mae", "r2"]


def test_html_classification_with_baseline() -> None:
    html = render_html(classification_evaluation(baseline=True))
    assert html.startswith("<!doctype html>")
    assert "NOT BLESSED" in html
    # the failing check is listed before the skipped and the passing ones
    failing = html.index("f1_macro on island=Dream is 0.03 worse")
    assert (
        failing
        < html.index("has 12 examples &lt; min_slice_size 20")
        < html.index("accuracy 0.912 &gt;= lower bound 0.8")
    )
    assert re.search(r'<li class="failed"><span class="status">FAILED</span>', html)
    # slice rows with the candidate's interval, the baseline and the difference
    assert "<td>island=Biscoe" in html and "<td>island=Dream" in html
    assert "0.912 [0.883, 0.941]" in html  # accuracy, overall, candidate
    assert "baseline 0.942 [0.913, 0.971]" in html
    assert "Δ -0.030 [-0.059, -0.001]" in html
    assert '<td class="fail"><div class="cand">0.900 [0.856, 0.944]</div>' in html  # f1 on Dream
    assert "not gated: 12 examples &lt; min_slice_size 20" in html
    # the curves: ROC, PR, calibration and a confusion matrix for each model
    charts = re.findall(r'data-chart="([^"]+)"', html)
    assert charts == [
        "roc",
        "pr",
        "calibration",
        "confusion-candidate",
        "confusion-baseline",
    ]
    assert html.count("<svg ") == 5
    assert ">Adelie<" in html and ">Gentoo<" in html  # class names as SVG text


def test_html_is_self_contained() -> None:
    for evaluation in (
        classification_evaluation(baseline=True),
        regression_evaluation(baseline=True),
    ):
        html = render_html(evaluation)
        assert "http://" not in html and "https://" not in html
        for tag, attrs in _tags(html):
            assert tag not in {"script", "link", "img", "iframe"}, tag
            for name in ("src", "href"):
                value = attrs.get(name)
                assert value is None or value.startswith("#"), (tag, attrs)


def test_html_escapes_hostile_class_names_and_slice_values() -> None:
    html = render_html(
        classification_evaluation(baseline=True, classes=[HOSTILE, "Gentoo", "Adelie"])
    )
    assert HOSTILE not in html
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # slice value in the table
    assert not any(tag == "script" for tag, _ in _tags(html))
    # multiclass: one-vs-rest curves per class, legend names escaped in the SVG
    assert "candidate &lt;script&gt;alert(1)&lt;/scrip… · AUC" in html  # shortened
    assert "<td>recall[&lt;script&gt;alert(1)&lt;/script&gt;]</td>" in html  # a per-class metric


def test_html_classification_without_baseline() -> None:
    html = render_html(classification_evaluation(baseline=False))
    assert "BLESSED" in html and "NOT BLESSED" not in html
    assert "no baseline" in html and "baseline 0." not in html and "Δ" not in html
    assert re.findall(r'data-chart="([^"]+)"', html) == [
        "roc",
        "pr",
        "calibration",
        "confusion-candidate",
    ]


@pytest.mark.parametrize("baseline", [True, False])
def test_html_regression(baseline: bool) -> None:
    html = render_html(regression_evaluation(baseline=baseline))
    assert "NOT BLESSED" in html and "rmse 20.2 &gt; upper bound 18 on sex=M" in html
    assert re.findall(r'data-chart="([^"]+)"', html) == ["residuals", "histogram"]
    assert "Residual quantiles" in html and "<th>p50</th>" in html
    assert "90% intervals from 200 bootstrap resamples" in html
    assert '<td class="fail"><div class="cand">20.200 [20.174, 20.226]</div>' in html
    assert ("baseline 19.200" in html) is baseline


def test_html_of_a_format_1_evaluation() -> None:
    html = render_html(format_1_evaluation())
    assert "NO VERDICT RECORDED" in html and "Blessing artifact" in html
    assert "<td>island=Biscoe" in html and "<td>island=null" in html
    assert "0.950" in html and "baseline 0.900" in html
    assert "<svg" not in html


def test_unknown_format_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="format_version 3; this lockgate reads 1 and 2"):
        render_html({"format_version": 3})


def test_the_evaluation_survives_a_json_round_trip() -> None:
    evaluation = json.loads(json.dumps(classification_evaluation(baseline=True)))
    assert render_html(evaluation) == render_html(classification_evaluation(baseline=True))


def test_terminal_shows_the_verdict_and_the_failing_slice_first() -> None:
    out = terminal(classification_evaluation(baseline=True), width=200)
    assert out.splitlines()[0] == "Model evaluation: NOT BLESSED"
    fail = out.index("FAIL  island=Dream · f1_macro")
    assert (
        fail
        < out.index("SKIP  island=<script>alert(1)</script>")
        < out.index("pass  Overall · accuracy")
    )
    assert "0.912 [0.883, 0.941]" in out
    assert "base 0.942 [0.913, 0.971]" in out and "Δ -0.030 [-0.059, -0.001]" in out
    assert "not gated: 12 examples <" in out  # the note wraps in the slice column
    assert "1 more metrics" in out  # recall[Adelie] is left out by default


def test_terminal_narrow_stacks_intervals_and_splits_the_table() -> None:
    out = terminal(classification_evaluation(baseline=False), width=80)
    assert max(len(line) for line in out.splitlines() if "│" not in line) <= 80
    # 5 metrics, 2 to a table, each table with the slice column
    assert len(re.findall(r"^ slice +n ", out, re.MULTILINE)) == 3
    assert "[0.883, 0.941]" in out and "…" not in out


def test_terminal_regression_and_chosen_metrics() -> None:
    out = terminal(regression_evaluation(baseline=False), metrics=["r2"])
    assert "Model evaluation: NOT BLESSED" in out and "FAIL  sex=M · rmse" in out
    table = out[out.index("slice") :]
    assert "r2" in table and "mae" not in table and "0.740 [0.722, 0.758]" in table
    with pytest.raises(ConfigError, match="did you mean 'rmse'"):
        terminal(regression_evaluation(baseline=False), metrics=["rmsee"])


def test_terminal_format_1() -> None:
    out = terminal(format_1_evaluation())
    assert "no verdict recorded (format 1; see the Blessing artifact)" in out
    assert "island=null" in out and "base 0.900" in out


def test_many_passing_checks_are_folded_and_a_reason_without_a_check_comes_first() -> None:
    evaluation = classification_evaluation(baseline=True)
    passing = [
        {
            "metric": "accuracy",
            "slice": [["island", f"isle {i}"]],
            "kind": "value",
            "passed": True,
            "message": f"accuracy on isle {i} is fine",
        }
        for i in range(12)
    ]
    evaluation["blessing"]["checks"] += passing
    evaluation["blessing"]["reasons"].insert(0, "a reason that no check states")
    html = render_html(evaluation)
    assert html.index("a reason that no check states") < html.index("f1_macro on island=Dream")
    assert "<summary>13 checks pass</summary>" in html and "accuracy on isle 11 is fine" in html
    out = terminal(evaluation, width=200)
    assert out.index("NOTE  a reason that no check states") < out.index("FAIL  island=Dream")
    assert "pass  13 checks pass (listed in --html)" in out
    assert "isle 11" not in out


def test_no_thresholds_not_blessed() -> None:
    evaluation = regression_evaluation(baseline=False)
    evaluation["blessing"] = {
        "blessed": False,
        "checks": [],
        "reasons": ["no thresholds: a model is blessed only against thresholds"],
    }
    html = render_html(evaluation)
    assert "NOT BLESSED" in html and "no thresholds: a model is blessed" in html
    out = terminal(evaluation)
    assert "NOTE  no thresholds: a model is blessed" in out
    assert main_metrics(evaluation) == ["mae", "rmse", "r2"]


def test_terminal_prints_markup_in_the_data_as_text() -> None:
    evaluation = regression_evaluation(baseline=False)
    evaluation["candidate"][1]["label"] = "sex=[bold red]F[/bold red]"
    out = terminal(evaluation)
    assert "sex=[bold red]F[/bold red]" in out
