"""Where thresholds apply (overall, every slice, named and crossed slices, ungated slices) and
the forms they are given in, on hand-made point estimates (no engine)."""

from __future__ import annotations

from typing import Any

import pytest

from lockgate.errors import ConfigError
from lockgate.evaluation.blessing import decide_blessing
from lockgate.evaluation.results import OVERALL, MetricEstimate, ModelScores, SliceMetrics
from lockgate.evaluation.thresholds import Threshold, parse_thresholds, resolve_slices

DIRECTIONS = {"accuracy": True, "log_loss": False}
KEYS = [
    OVERALL,
    (("island", "Biscoe"),),
    (("island", "Dream"),),
    (("island", "Torgersen"),),
    (("island", "Biscoe"), ("sex", "male")),
    (("island", "Biscoe"), ("sex", None)),
]


def scores(accuracy: list[float], *, ungated: tuple[int, ...] = ()) -> ModelScores:
    """One accuracy per slice of KEYS; slices at the ``ungated`` positions are too small."""
    return ModelScores(
        [
            SliceMetrics(
                key,
                3 if i in ungated else 100,
                {"accuracy": MetricEstimate(value), "log_loss": MetricEstimate(1 - value)},
                gated=i not in ungated,
                note="3 examples < min_slice_size 30: reported, not gated"
                if i in ungated
                else None,
            )
            for i, (key, value) in enumerate(zip(KEYS, accuracy, strict=True))
        ]
    )


BASELINE = scores([0.90, 0.92, 0.87, 0.90, 0.93, 0.90])
CANDIDATE = scores([0.90, 0.93, 0.81, 0.89, 0.90, 0.80])


def decide(spec: Any, *, candidate: ModelScores = CANDIDATE) -> Any:
    return decide_blessing(candidate, BASELINE, spec, directions=DIRECTIONS)


def test_overall_is_the_default() -> None:
    decision = decide({"accuracy": {"max_regression": 0.02}})
    assert decision.blessed
    (check,) = decision.checks
    assert check["slice"] == [] and check["slice_label"] == "Overall"


def test_every_slice_names_the_failing_slices_first() -> None:
    decision = decide([{"metric": "accuracy", "max_regression": 0.02, "slices": "every"}])
    assert [c["slice_label"] for c in decision.checks] == [
        "Overall",
        "island=Biscoe",
        "island=Dream",
        "island=Torgersen",
        "island=Biscoe, sex=male",
        "island=Biscoe, sex=null",
    ]
    assert not decision.blessed
    assert decision.reasons == [
        "accuracy on island=Dream: 0.81 is 0.06 worse than the baseline 0.87; at most 0.02 is"
        " allowed",
        "accuracy on island=Biscoe, sex=male: 0.9 is 0.03 worse than the baseline 0.93; at most"
        " 0.02 is allowed",
        "accuracy on island=Biscoe, sex=null: 0.8 is 0.1 worse than the baseline 0.9; at most"
        " 0.02 is allowed",
    ]
    assert [c["slice"] for c in decision.decided_by] == [
        [["island", "Dream"]],
        [["island", "Biscoe"], ["sex", "male"]],
        [["island", "Biscoe"], ["sex", None]],
    ]
    assert all(c["passed"] is False for c in decision.decided_by)


def test_named_slices_as_dicts_labels_and_crossed_in_any_order() -> None:
    by_dict = decide({"accuracy": {"max_regression": 0.02, "slices": {"island": "Dream"}}})
    assert [c["slice_label"] for c in by_dict.checks] == ["island=Dream"]
    assert not by_dict.blessed
    crossed = Threshold(
        "accuracy",
        max_regression=0.05,
        slices=[{"sex": "male", "island": "Biscoe"}, "island=Torgersen", {"island": "Biscoe"}],
    )
    decision = decide([crossed])
    assert [c["slice_label"] for c in decision.checks] == [
        "island=Biscoe, sex=male",
        "island=Torgersen",
        "island=Biscoe",
    ]
    assert decision.blessed
    missing_value = decide(
        {"accuracy": {"lower_bound": 0.85, "slices": {"island": "Biscoe", "sex": None}}}
    )
    assert missing_value.reasons == ["accuracy on island=Biscoe, sex=null: 0.8 < lower bound 0.85"]
    overall = resolve_slices(Threshold("accuracy", lower_bound=0.1, slices=["Overall"]), CANDIDATE)
    assert [s.key for s in overall] == [OVERALL]
    every = resolve_slices(Threshold("accuracy", lower_bound=0.1, slices="every"), CANDIDATE)
    assert len(every) == len(KEYS)


def test_a_named_slice_that_is_not_there_lists_the_slices() -> None:
    with pytest.raises(
        ConfigError,
        match=r"names slice 'island=Drem', which the evaluation does not have; slices are"
        r" \['Overall', 'island=Biscoe', .*\]; did you mean 'island=Dream'\?",
    ) as info:
        decide({"accuracy": {"max_regression": 0.02, "slices": {"island": "Drem"}}})
    assert info.value.hint is not None and "slice_by" in info.value.hint
    with pytest.raises(ConfigError, match="names slice 'island=Biscoe, sex=female'"):
        decide(
            {"accuracy": {"max_regression": 0.02, "slices": {"island": "Biscoe", "sex": "female"}}}
        )
    with pytest.raises(ConfigError, match="names slice 'evry'.*did you mean 'every'"):
        decide({"accuracy": {"max_regression": 0.02, "slices": "evry"}})
    with pytest.raises(ConfigError, match="slices of the threshold on 'accuracy' must be"):
        Threshold("accuracy", lower_bound=0.5, slices=[])
    with pytest.raises(ConfigError, match="must be a dict of feature to value or a slice label"):
        Threshold("accuracy", lower_bound=0.5, slices=[("island", "Dream")])  # type: ignore[list-item]


def test_ungated_slices_are_skipped_with_their_note() -> None:
    candidate = scores([0.90, 0.93, 0.81, 0.89, 0.90, 0.80], ungated=(2, 5))
    decision = decide(
        {"accuracy": {"lower_bound": 0.85, "max_regression": 0.02, "slices": "every"}},
        candidate=candidate,
    )
    skipped = [c for c in decision.checks if c["skipped"]]
    assert [(c["slice_label"], c["kind"]) for c in skipped] == [
        ("island=Dream", "lower_bound"),
        ("island=Dream", "max_regression"),
        ("island=Biscoe, sex=null", "lower_bound"),
        ("island=Biscoe, sex=null", "max_regression"),
    ]
    assert skipped[0]["message"] == (
        "accuracy on island=Dream: 3 examples < min_slice_size 30: reported, not gated;"
        " lower_bound not checked"
    )
    assert all(c["passed"] is None for c in skipped)
    assert skipped[1]["value"] == 0.81  # shown, not judged
    # the only failure left is the gated crossed slice
    assert decision.reasons == [
        "accuracy on island=Biscoe, sex=male: 0.9 is 0.03 worse than the baseline 0.93; at"
        " most 0.02 is allowed"
    ]
    named = decide(
        {"accuracy": {"max_regression": 0.02, "slices": {"island": "Dream"}}}, candidate=candidate
    )
    assert named.blessed and named.checks[0]["skipped"] is True
    assert (
        "no check could run (3 examples < min_slice_size 30: reported, not gated;"
        in named.reasons[0]
    )


def test_the_forms_thresholds_are_given_in() -> None:
    objects = [
        Threshold("accuracy", lower_bound=0.9),
        Threshold("accuracy", max_regression=0.02, slices="every", significant=False),
        Threshold("log_loss", upper_bound=0.2),
    ]
    as_dicts = [t.to_dict() for t in objects]
    assert as_dicts[0] == {"metric": "accuracy", "lower_bound": 0.9}
    assert as_dicts[1] == {"metric": "accuracy", "max_regression": 0.02, "slices": "every"}
    assert parse_thresholds(as_dicts) == objects
    per_metric: dict[str, Any] = {
        "accuracy": [{"lower_bound": 0.9}, {"max_regression": 0.02, "slices": "every"}],
        "log_loss": {"upper_bound": 0.2},
    }
    assert parse_thresholds(per_metric) == objects
    assert parse_thresholds(objects[0]) == objects[:1]
    assert parse_thresholds([*as_dicts[:2], objects[2]]) == objects
    named = Threshold("accuracy", lower_bound=0.5, slices=[{"island": "Dream"}, "island=Biscoe"])
    assert parse_thresholds([named.to_dict()]) == [named]
    with pytest.raises(ConfigError, match="must be a dict of settings"):
        parse_thresholds({"accuracy": 0.9})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="thresholds must be a dict"):
        parse_thresholds("accuracy")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="under 'accuracy' names another metric, 'log_loss'"):
        parse_thresholds({"accuracy": {"metric": "log_loss", "lower_bound": 0.1}})
    with pytest.raises(
        ConfigError, match="unknown threshold setting 'slice' .*did you mean 'slices'"
    ):
        parse_thresholds({"accuracy": {"lower_bound": 0.1, "slice": "every"}})
