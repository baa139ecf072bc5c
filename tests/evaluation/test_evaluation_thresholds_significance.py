"""The significance rule on paired resamples: built from per-row correctness of two models on
the same rows, resampled with shared Poisson weights (TFMA's bootstrap), without the engine."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lockgate.errors import ConfigError
from lockgate.evaluation.blessing import BlessingDecision, decide_blessing
from lockgate.evaluation.results import OVERALL, MetricEstimate, ModelScores, SliceMetrics

DIRECTIONS = {"accuracy": True, "log_loss": False}

# island -> (rows, wrong for both, wrong for the candidate only, wrong for the baseline only)
GOOD = {"Biscoe": (400, 20, 4, 8), "Dream": (300, 15, 3, 3), "Torgersen": (20, 1, 3, 1)}
BAD = {"Biscoe": (400, 20, 44, 4), "Dream": (300, 15, 3, 3), "Torgersen": (20, 1, 3, 1)}


def paired_scores(
    groups: dict[str, tuple[int, int, int, int]], *, n_resamples: int = 400, seed: int = 0
) -> tuple[ModelScores, ModelScores]:
    """(candidate, baseline): accuracy and a log loss (0.1 per right row, 1.5 per wrong one)
    overall and per island, with their percentile intervals and paired resamples."""
    rng = np.random.default_rng(seed)
    island, candidate, baseline = [], [], []
    for name, (rows, both, cand_only, base_only) in groups.items():
        c, b = np.ones(rows), np.ones(rows)
        c[:both] = b[:both] = 0
        c[both : both + cand_only] = 0
        b[both + cand_only : both + cand_only + base_only] = 0
        order = rng.permutation(rows)
        island += [name] * rows
        candidate.append(c[order])
        baseline.append(b[order])
    islands = np.array(island)
    weights = rng.poisson(1.0, size=(n_resamples, islands.size)).astype(np.float64)

    def model(correct: np.ndarray) -> ModelScores:
        slices = []
        keys = [OVERALL] + [(("island", name),) for name in groups]
        for key in keys:
            rows = np.ones(islands.size, bool) if not key else islands == key[0][1]
            metrics = {}
            for name, per_row in (("accuracy", correct), ("log_loss", 1.5 - 1.4 * correct)):
                w = weights[:, rows]
                total = w.sum(axis=1)
                samples = np.full(n_resamples, np.nan)
                np.divide(w @ per_row[rows], total, out=samples, where=total > 0)
                lower, upper = np.nanquantile(samples, [0.025, 0.975])
                metrics[name] = MetricEstimate(float(per_row[rows].mean()), lower, upper, samples)
            slices.append(SliceMetrics(key, int(rows.sum()), metrics))
        return ModelScores(slices)

    return model(np.concatenate(candidate)), model(np.concatenate(baseline))


def decide(groups: dict[str, tuple[int, int, int, int]], spec: Any) -> BlessingDecision:
    candidate, baseline = paired_scores(groups)
    return decide_blessing(candidate, baseline, spec, directions=DIRECTIONS)


def by_label(decision: BlessingDecision) -> dict[str, dict[str, Any]]:
    return {c["slice_label"]: c for c in decision.checks}


def every(significant: bool, metric: str = "accuracy", limit: float = 0.02) -> list[Any]:
    return [
        {"metric": metric, "max_regression": limit, "slices": "every", "significant": significant}
    ]


def test_a_small_noisy_slice_does_not_block_a_good_model_with_significance() -> None:
    # Torgersen: 20 rows, the candidate 0.1 worse by its point estimate (2 rows of 20)
    strict = decide(GOOD, every(significant=False))
    assert not strict.blessed
    assert strict.reasons[0].startswith(
        "accuracy on island=Torgersen: 0.8 is 0.1 worse than the baseline 0.9; at most 0.02 is"
        " allowed (difference -0.1, 95% interval ["
    )
    assert [c["slice_label"] for c in strict.decided_by] == ["island=Torgersen"]

    lenient = decide(GOOD, every(significant=True))
    assert lenient.blessed, lenient.reasons
    torgersen = by_label(lenient)["island=Torgersen"]
    assert torgersen["passed"] is True and torgersen["significant"] is True
    assert torgersen["worse_by"] == pytest.approx(0.1)
    assert torgersen["diff_lower"] < -0.02 < torgersen["diff_upper"]  # reaches inside the limit
    assert (
        "more than the allowed 0.02 but not significantly: the 95% interval of the"
        in (torgersen["message"])
    )
    assert lenient.reasons == [torgersen["message"]]  # the pass it granted is visible


def test_a_large_clearly_worse_slice_fails_either_way() -> None:
    expected = {
        False: ["Overall", "island=Biscoe", "island=Torgersen"],
        True: ["Overall", "island=Biscoe"],  # Torgersen is noise, see the test above
    }
    for significant, failing in expected.items():
        decision = decide(BAD, every(significant))
        assert not decision.blessed
        assert [c["slice_label"] for c in decision.decided_by] == failing, decision.reasons
    biscoe = by_label(decision)["island=Biscoe"]
    assert biscoe["worse_by"] == pytest.approx(0.1)
    assert -biscoe["diff_upper"] > 0.02  # the whole interval of the worsening is beyond
    assert biscoe["message"].startswith(
        "accuracy on island=Biscoe: 0.84 is 0.1 worse than the baseline 0.94; at most 0.02 is"
        " allowed, and the 95% interval of the worsening ["
    )
    assert biscoe["message"].endswith("] lies entirely beyond it")
    # the noisy small slice still passes, and says why
    assert by_label(decision)["island=Torgersen"]["passed"] is True


def test_lower_is_better_metrics_use_the_same_rule() -> None:
    good = decide(GOOD, every(True, metric="log_loss", limit=0.05))
    assert good.blessed, good.reasons
    bad = decide(BAD, every(True, metric="log_loss", limit=0.05))
    assert [c["slice_label"] for c in bad.decided_by] == ["Overall", "island=Biscoe"]
    biscoe = by_label(bad)["island=Biscoe"]
    assert biscoe["higher_is_better"] is False and biscoe["diff_lower"] > 0.05
    assert not decide(GOOD, every(False, metric="log_loss", limit=0.05)).blessed


def test_relative_regression_with_significance() -> None:
    spec = [
        {
            "metric": "accuracy",
            "max_relative_regression": 0.05,
            "slices": [{"island": "Biscoe"}, {"island": "Torgersen"}],
            "significant": True,
        }
    ]
    bad = decide(BAD, spec)
    assert [c["slice_label"] for c in bad.decided_by] == ["island=Biscoe"]
    assert bad.reasons[0].startswith(
        "accuracy on island=Biscoe: 0.84 is 0.1 (10.6%) worse than the baseline 0.94; at most"
        " 5% of the baseline (0.047) is allowed, and the 95% interval"
    )
    assert decide(GOOD, spec).blessed


def test_pairing_catches_a_model_whose_own_interval_overlaps_the_baselines() -> None:
    """The other half: comparing the two models' own intervals would let this one through."""
    groups = {"Dream": (150, 10, 12, 0)}
    candidate, baseline = paired_scores(groups)
    own, base = candidate.slices[1].metrics["accuracy"], baseline.slices[1].metrics["accuracy"]
    assert own.upper is not None and base.lower is not None and own.upper > base.lower
    spec = {"accuracy": {"max_regression": 0.0, "slices": {"island": "Dream"}, "significant": True}}
    decision = decide_blessing(candidate, baseline, spec, directions=DIRECTIONS)
    assert not decision.blessed and "lies entirely beyond it" in decision.reasons[0]


def test_every_change_check_records_the_paired_interval() -> None:
    decision = decide(GOOD, {"accuracy": {"max_regression": 0.5, "slices": "every"}})
    assert decision.blessed
    for check in decision.checks:
        assert check["significant"] is False
        assert check["diff_lower"] <= check["diff"] <= check["diff_upper"]
        assert "95% interval" in check["message"]
    narrow = decide_blessing(
        *paired_scores(GOOD),
        {"accuracy": {"max_regression": 0.5, "slices": "every"}},
        directions=DIRECTIONS,
        confidence_level=0.5,
    )
    for wide, half in zip(decision.checks, narrow.checks, strict=True):
        assert wide["diff_upper"] - wide["diff_lower"] > half["diff_upper"] - half["diff_lower"]
        assert "50% interval" in half["message"]


def estimate(value: float, samples: list[float]) -> MetricEstimate:
    return MetricEstimate(value, None, None, np.array(samples))


def one_slice(value: float, samples: list[float]) -> ModelScores:
    return ModelScores([SliceMetrics(OVERALL, 10, {"accuracy": estimate(value, samples)})])


def test_nan_resamples_are_ignored_and_too_few_fall_back_to_the_point_estimate() -> None:
    spec = {"accuracy": {"max_regression": 0.02, "significant": True}}
    nan = float("nan")
    # 6 of 10 resamples defined: their differences (all 0.1 worse) decide
    candidate = one_slice(0.8, [0.8, 0.8, 0.8, 0.8, 0.8, 0.8, nan, nan, nan, nan])
    baseline = one_slice(0.9, [0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, nan, 0.9])
    decision = decide_blessing(candidate, baseline, spec, directions=DIRECTIONS)
    (check,) = decision.checks
    assert check["diff_lower"] == pytest.approx(-0.1) == check["diff_upper"]
    assert not decision.blessed and "lies entirely beyond it" in decision.reasons[0]
    # 3 of 10 defined, all of them equal: not enough to trust, the point estimate decides
    candidate = one_slice(0.8, [0.9, 0.9, 0.9, nan, nan, nan, nan, nan, nan, nan])
    decision = decide_blessing(candidate, baseline, spec, directions=DIRECTIONS)
    (check,) = decision.checks
    assert check["diff_lower"] is None and check["diff_upper"] is None
    assert not decision.blessed
    assert (
        "too few resamples are defined (3 of 10) for an interval, so the point estimate"
        in (decision.reasons[0])
    )


def test_unpaired_resamples_are_an_error() -> None:
    candidate = one_slice(0.8, [0.8, 0.8, 0.8])
    baseline = one_slice(0.9, [0.9, 0.9])
    with pytest.raises(ConfigError, match="resamples of 'accuracy' are not paired"):
        decide_blessing(
            candidate, baseline, {"accuracy": {"max_regression": 0.0}}, directions=DIRECTIONS
        )
