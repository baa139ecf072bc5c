"""The gate's verdict: every threshold kind, the first model, no thresholds, undefined
metrics and bad settings, on hand-made scores (no engine)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from lockgate.errors import ConfigError
from lockgate.evaluation import blessing, thresholds
from lockgate.evaluation.blessing import Threshold, decide_blessing
from lockgate.evaluation.results import (
    OVERALL,
    MetricEstimate,
    ModelScores,
    SliceKey,
    SliceMetrics,
)

DIRECTIONS = {"accuracy": True, "f1_macro": True, "log_loss": False, "r2": True}


def scores(overall: dict[str, float | None], **by_island: dict[str, float | None]) -> ModelScores:
    """Point estimates only (as with n_resamples=0): overall, then one slice per island."""
    values: dict[SliceKey, dict[str, float | None]] = {OVERALL: overall}
    values.update({(("island", island),): metrics for island, metrics in by_island.items()})
    return ModelScores(
        [
            SliceMetrics(key, 100, {name: MetricEstimate(v) for name, v in metrics.items()})
            for key, metrics in values.items()
        ]
    )


CANDIDATE = scores({"accuracy": 0.95, "f1_macro": 0.94, "log_loss": 0.20, "r2": None})


def decide(candidate: ModelScores, baseline: ModelScores | None, spec: Any, **kw: Any) -> Any:
    return decide_blessing(candidate, baseline, spec, directions=DIRECTIONS, **kw)


def test_value_bounds_pass_and_fail() -> None:
    decision = decide(CANDIDATE, None, [Threshold("accuracy", lower_bound=0.9)])
    assert decision.blessed and decision.reasons == []
    (check,) = decision.checks
    assert check["kind"] == "lower_bound" and check["passed"] is True
    assert check["message"] == "accuracy on Overall: 0.95 >= lower bound 0.9"
    assert decision.decided_by == [check]
    decision = decide(
        CANDIDATE,
        None,
        [Threshold("accuracy", lower_bound=0.97), Threshold("log_loss", upper_bound=0.3)],
    )
    assert not decision.blessed
    assert decision.reasons == ["accuracy on Overall: 0.95 < lower bound 0.97"]
    assert [(c["kind"], c["passed"]) for c in decision.checks] == [
        ("lower_bound", False),
        ("upper_bound", True),
    ]
    assert decision.decided_by == [decision.checks[0]]
    failing = decide(CANDIDATE, None, {"log_loss": {"upper_bound": 0.1}})
    assert failing.reasons == ["log_loss on Overall: 0.2 > upper bound 0.1"]


def test_max_regression_against_the_baseline_in_todays_dict_form() -> None:
    spec = {"accuracy": {"lower_bound": 0.9, "max_regression": 0.01}}
    ok = decide(CANDIDATE, scores({"accuracy": 0.955}), spec)
    assert ok.blessed
    assert [c["kind"] for c in ok.checks] == ["lower_bound", "max_regression"]
    worse = decide(CANDIDATE, scores({"accuracy": 0.97}), spec)
    assert not worse.blessed
    assert worse.reasons == [
        "accuracy on Overall: 0.95 is 0.02 worse than the baseline 0.97; at most 0.01 is allowed"
    ]
    check = worse.checks[1]
    assert check["baseline"] == 0.97 and check["value"] == 0.95 and check["passed"] is False
    assert check["bound"] == check["allowed"] == 0.01 and check["higher_is_better"] is True
    assert check["diff"] == pytest.approx(-0.02) and check["worse_by"] == pytest.approx(0.02)
    assert check["diff_lower"] is None and check["diff_upper"] is None  # no resamples
    exactly = decide(CANDIDATE, scores({"accuracy": 0.96}), spec)
    assert exactly.blessed, exactly.reasons  # at the limit passes despite float rounding


def test_lower_is_better_metrics_regress_upwards() -> None:
    spec = [Threshold("log_loss", max_regression=0.05)]
    assert decide(CANDIDATE, scores({"log_loss": 0.16}), spec).blessed
    worse = decide(CANDIDATE, scores({"log_loss": 0.10}), spec)
    assert worse.reasons == [
        "log_loss on Overall: 0.2 is 0.1 worse than the baseline 0.1; at most 0.05 is allowed"
    ]
    improved = decide(CANDIDATE, scores({"log_loss": 0.90}), spec)
    assert improved.blessed
    assert (
        improved.checks[0]["message"]
        == "log_loss on Overall: 0.2 is 0.7 better than the baseline 0.9"
    )


def test_max_relative_regression_is_a_fraction_of_the_baseline() -> None:
    spec = {"accuracy": {"max_relative_regression": 0.05}}
    within = decide(CANDIDATE, scores({"accuracy": 0.99}), spec)  # 0.04 < 5% of 0.99
    assert within.blessed
    assert within.checks[0]["allowed"] == pytest.approx(0.0495)
    worse = decide(
        CANDIDATE, scores({"accuracy": 1.0}), {"accuracy": {"max_relative_regression": 0.04}}
    )
    assert worse.reasons == [
        "accuracy on Overall: 0.95 is 0.05 (5.0%) worse than the baseline 1; at most 4% of the"
        " baseline (0.04) is allowed"
    ]
    check = worse.checks[0]
    assert check["kind"] == "max_relative_regression" and check["bound"] == 0.04
    # lower is better: 0.2 against 0.19 is 5.3% worse
    assert not decide(
        CANDIDATE, scores({"log_loss": 0.19}), {"log_loss": {"max_relative_regression": 0.05}}
    ).blessed
    assert decide(
        CANDIDATE, scores({"log_loss": 0.195}), {"log_loss": {"max_relative_regression": 0.05}}
    ).blessed


def test_first_model_skips_change_checks_and_runs_the_bounds() -> None:
    spec = {"accuracy": {"lower_bound": 0.97, "max_regression": 0.0}}
    decision = decide(CANDIDATE, None, spec)
    assert not decision.blessed
    bound, change = decision.checks
    assert bound["passed"] is False and bound["skipped"] is False
    assert change["skipped"] is True and change["passed"] is None
    assert change["message"] == (
        "accuracy on Overall: no baseline: first model; max_regression not checked"
    )
    assert decision.reasons == ["accuracy on Overall: 0.95 < lower bound 0.97"]


def test_first_model_with_only_change_thresholds_is_blessed_and_says_why() -> None:
    decision = decide(CANDIDATE, None, {"accuracy": {"max_regression": 0.0}})
    assert decision.blessed and decision.decided_by == []
    assert decision.reasons == [
        "no check could run (no baseline: first model; max_regression not checked);"
        " blessed as none failed"
    ]


@pytest.mark.parametrize("empty", [None, {}, []])
def test_no_thresholds_is_not_blessed_unless_asked_explicitly(empty: Any) -> None:
    decision = decide(CANDIDATE, scores({"accuracy": 0.5}), empty)
    assert not decision.blessed and decision.checks == []
    (reason,) = decision.reasons
    assert reason.startswith("no thresholds were set: ")
    assert "pass bless_without_thresholds=True to bless without a gate" in reason
    opted_out = decide(CANDIDATE, None, empty, bless_without_thresholds=True)
    assert opted_out.blessed
    assert opted_out.reasons == [
        "no thresholds were set; blessed because bless_without_thresholds=True"
    ]


def test_undefined_metrics_fail_bounds_and_changes_say_so() -> None:
    decision = decide(CANDIDATE, None, {"r2": {"lower_bound": 0.5}})
    assert not decision.blessed
    assert decision.reasons == [
        "r2 on Overall: undefined (cannot be computed on these rows), so the lower bound 0.5"
        " is not met"
    ]
    # undefined for the candidate but not for the baseline: the change cannot be judged
    decision = decide(CANDIDATE, scores({"r2": 0.7}), {"r2": {"max_regression": 0.1}})
    assert not decision.blessed and "undefined for the candidate" in decision.reasons[0]
    # undefined for the baseline: nothing to compare with, recorded as skipped
    defined = scores({"r2": 0.6})
    decision = decide(defined, scores({"r2": None}), {"r2": {"max_regression": 0.1}})
    assert decision.blessed and decision.checks[0]["skipped"] is True
    assert decision.checks[0]["message"] == (
        "r2 on Overall: undefined for the baseline; max_regression not checked"
    )
    nan = scores({"accuracy": float("nan")})
    assert not decide(nan, None, {"accuracy": {"lower_bound": 0.1}}).blessed


def test_bad_settings_are_config_errors_with_did_you_mean() -> None:
    with pytest.raises(
        ConfigError, match=r"metric 'acuracy'.*metrics are \[.*did you mean 'accuracy'"
    ):
        decide(CANDIDATE, None, {"acuracy": {"lower_bound": 0.9}})
    with pytest.raises(
        ConfigError, match="unknown threshold setting 'lower' .*did you mean 'lower_bound'"
    ):
        decide(CANDIDATE, None, {"accuracy": {"lower": 0.9}})
    with pytest.raises(
        ConfigError,
        match="unknown threshold setting 'max_relative_regresion'.*did you mean 'max_relative_regression'",
    ):
        decide(CANDIDATE, None, [{"metric": "accuracy", "max_relative_regresion": 0.1}])
    with pytest.raises(ConfigError, match="a threshold given as a dict needs 'metric'"):
        decide(CANDIDATE, None, [{"lower_bound": 0.9}])
    with pytest.raises(ConfigError, match="must be >= 0; got -0.1"):
        Threshold("accuracy", max_regression=-0.1)
    with pytest.raises(ConfigError, match="max_relative_regression .* must be >= 0"):
        Threshold("accuracy", max_relative_regression=-0.05)
    with pytest.raises(
        ConfigError, match="lower_bound of the threshold on 'accuracy' must be a number; got '0.9'"
    ):
        Threshold("accuracy", lower_bound="0.9")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="sets no bound; set at least one of"):
        Threshold("accuracy")
    with pytest.raises(ConfigError, match="lower_bound 0.9 > upper_bound 0.8"):
        Threshold("accuracy", lower_bound=0.9, upper_bound=0.8)
    with pytest.raises(ConfigError, match="significant=True but no change threshold"):
        Threshold("accuracy", lower_bound=0.9, significant=True)
    with pytest.raises(ConfigError, match="confidence_level must be in"):
        decide(CANDIDATE, None, {"accuracy": {"lower_bound": 0.9}}, confidence_level=95)


def test_direction_comes_from_the_engine_or_the_threshold() -> None:
    custom = scores({"accuracy": 0.95, "profit": 10.0})
    with pytest.raises(
        ConfigError, match="whether higher 'profit' is better; set higher_is_better"
    ):
        decide(custom, scores({"profit": 12.0}), {"profit": {"max_regression": 1.0}})
    spec = {"profit": {"max_regression": 1.0, "higher_is_better": True}}
    assert not decide(custom, scores({"profit": 12.0}), spec).blessed
    spec = {"profit": {"max_regression": 1.0, "higher_is_better": False}}
    assert decide(custom, scores({"profit": 12.0}), spec).blessed
    # a misspelt metric is named as such, not as one of unknown direction
    with pytest.raises(ConfigError, match="metric 'proft', which the evaluation does not compute"):
        decide(custom, None, {"proft": {"max_regression": 1.0}})
    # a bound needs no direction
    assert decide(custom, None, {"profit": {"lower_bound": 5}}).blessed
    with pytest.raises(
        ConfigError, match="higher_is_better=False, but higher 'accuracy' is better"
    ):
        decide(CANDIDATE, None, {"accuracy": {"max_regression": 0.1, "higher_is_better": False}})


def test_significant_without_resamples_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match="significant=True, which needs bootstrap resamples.*n_resamples=0"
    ) as info:
        decide(CANDIDATE, None, {"accuracy": {"max_regression": 0.02, "significant": True}})
    assert info.value.hint == "set n_resamples > 0, or drop significant=True"


def test_to_dict_is_json_ready() -> None:
    key: SliceKey = (("year", np.int64(2008)),)
    candidate = ModelScores(
        [
            SliceMetrics(OVERALL, 10, {"accuracy": MetricEstimate(0.9)}),
            SliceMetrics(key, 5, {"accuracy": MetricEstimate(float("nan"))}),
        ]
    )
    decision = decide(
        candidate,
        candidate,
        {"accuracy": {"lower_bound": 0.5, "max_regression": 0.0, "slices": "every"}},
    )
    data = json.loads(json.dumps(decision.to_dict(), allow_nan=False))
    assert data["blessed"] is False and len(data["reasons"]) == 1
    assert set(data) == {"blessed", "reasons", "checks", "decided_by"}
    assert data["checks"][2]["slice"] == [["year", 2008]] and data["checks"][2]["value"] is None
    assert set(data["checks"][0]) == {
        "metric", "slice", "slice_label", "kind", "value", "baseline", "bound", "allowed",
        "worse_by", "higher_is_better", "diff", "diff_lower", "diff_upper", "significant",
        "passed", "skipped", "message",
    }  # fmt: skip


def test_the_names_stay_importable_from_blessing() -> None:
    assert blessing.Threshold is thresholds.Threshold
    assert blessing.parse_thresholds is thresholds.parse_thresholds
    assert callable(blessing.decide_blessing) and isinstance(blessing.BlessingDecision, type)
