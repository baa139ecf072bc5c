"""Report charts are drawn under their own style, whatever the process's matplotlib style
is, and leave that style as it was, also when several threads draw at once (before, two
reports drawn at once left one's style behind, and later reports came out different)."""

from __future__ import annotations

import threading

import matplotlib
import pytest

from lockgate.data.report.charts import bars_svg, histogram_svg
from lockgate.evaluation.report_plots import roc_svg

BUCKETS = [{"low": 0.0, "high": 1.0, "count": 3}, {"low": 1.0, "high": 2.0, "count": 5}]
ROC = {"roc": [{"fpr": [0.0, 0.5, 1.0], "tpr": [0.0, 0.8, 1.0], "auc": 0.75}]}


def _charts() -> tuple[str, str, str]:
    return (
        histogram_svg([BUCKETS], ident="h"),
        bars_svg(["a", "b"], [[1.0, 2.0]], ident="b", notes=["1", "2"]),
        roc_svg([("candidate", ROC)], ident="r"),
    )


@pytest.fixture
def restore_style() -> object:
    with matplotlib.rc_context():
        yield


def test_a_style_set_by_the_process_changes_no_chart_and_survives(restore_style: object) -> None:
    before = _charts()
    matplotlib.style.use("ggplot")  # as optuna's matplotlib plots do
    matplotlib.rcParams["xtick.major.size"] = 9.0
    assert _charts() == before
    assert matplotlib.rcParams["xtick.major.size"] == 9.0  # the process's own, as it was
    assert matplotlib.rcParams["axes.facecolor"] == "#E5E5E5"


def test_charts_drawn_in_threads_at_once_leave_no_style_behind(restore_style: object) -> None:
    expected = _charts()
    untouched = dict(matplotlib.rcParams)
    found: list[tuple[str, str, str]] = []
    threads = [threading.Thread(target=lambda: found.append(_charts())) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == [expected] * 6
    assert dict(matplotlib.rcParams) == untouched
