from __future__ import annotations

import pytest

from lockgate.errors import ConfigError
from lockgate.evaluation.blessing import Threshold, decide_blessing

CANDIDATE = {"accuracy": 0.95, "f1_macro": 0.94, "log_loss": 0.20, "example_count": 100.0}


def test_absolute_pass_and_fail() -> None:
    decision = decide_blessing(CANDIDATE, None, [Threshold("accuracy", lower_bound=0.9)])
    assert decision.blessed and decision.reasons == []
    assert decision.checks[0]["kind"] == "absolute" and decision.checks[0]["passed"]
    decision = decide_blessing(
        CANDIDATE,
        None,
        [Threshold("accuracy", lower_bound=0.97), Threshold("log_loss", upper_bound=0.3)],
    )
    assert not decision.blessed
    assert decision.reasons == ["accuracy 0.95 < lower bound 0.97"]
    assert [c["passed"] for c in decision.checks] == [False, True]


def test_no_baseline_runs_only_absolute_checks() -> None:
    decision = decide_blessing(CANDIDATE, None, {"accuracy": {"max_regression": 0.0}})
    assert decision.blessed and decision.checks == []


def test_regression_against_baseline() -> None:
    thresholds = {"accuracy": {"lower_bound": 0.9, "max_regression": 0.01}}
    ok = decide_blessing(CANDIDATE, {"accuracy": 0.955}, thresholds)
    assert ok.blessed
    assert [c["kind"] for c in ok.checks] == ["absolute", "regression"]
    worse = decide_blessing(CANDIDATE, {"accuracy": 0.97}, thresholds)
    assert not worse.blessed
    assert worse.reasons == [
        "accuracy 0.95 is 0.02 worse than the baseline 0.97; at most 0.01 is allowed"
    ]
    check = worse.checks[1]
    assert check["baseline"] == 0.97 and check["value"] == 0.95 and check["passed"] is False


def test_lower_is_better_metrics() -> None:
    thresholds = [Threshold("log_loss", max_regression=0.05)]
    assert decide_blessing(CANDIDATE, {"log_loss": 0.16}, thresholds).blessed
    assert not decide_blessing(CANDIDATE, {"log_loss": 0.10}, thresholds).blessed
    assert decide_blessing(CANDIDATE, {"log_loss": 0.90}, thresholds).blessed  # improved


def test_unavailable_values() -> None:
    decision = decide_blessing({"r2": None}, None, {"r2": {"lower_bound": 0.5}})
    assert not decision.blessed and "r2 is not available" in decision.reasons[0]
    decision = decide_blessing(CANDIDATE, {}, {"accuracy": {"max_regression": 0.01}})
    assert decision.blessed and "baseline has no accuracy" in decision.checks[0]["message"]


def test_configuration_errors() -> None:
    with pytest.raises(
        ConfigError, match=r"metric 'acuracy'.*metrics are \[.*did you mean 'accuracy'"
    ):
        decide_blessing(CANDIDATE, None, {"acuracy": {"lower_bound": 0.9}})
    with pytest.raises(
        ConfigError, match="unknown threshold setting 'lower'.*did you mean 'lower_bound'"
    ):
        decide_blessing(CANDIDATE, None, {"accuracy": {"lower": 0.9}})
    with pytest.raises(ConfigError, match="whether higher 'example_count' is better"):
        Threshold("example_count", max_regression=1)
    assert Threshold("example_count", max_regression=1, higher_is_better=True).direction_higher
    with pytest.raises(ConfigError, match="must be >= 0"):
        Threshold("accuracy", max_regression=-0.1)


def test_to_dict_is_json_ready() -> None:
    import json

    decision = decide_blessing(
        CANDIDATE, {"accuracy": 0.99}, {"accuracy": {"max_regression": 0.01}}
    )
    data = json.loads(json.dumps(decision.to_dict()))
    assert data["blessed"] is False and len(data["reasons"]) == 1
