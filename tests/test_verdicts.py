"""Verdict rules on constructed data: Holm by hand, adjusted intervals that agree with Holm, direction and
factor answers, the baseline gate and one-seed tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from equinb import verdicts
from equinb.stats import holm, t_interval, t_p_value


def test_holm_by_hand():
    # sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04, raised to 0.06)
    adjusted, levels = holm([0.01, 0.04, math.nan, 0.03, 0.005], level=0.95)
    assert adjusted[[0, 1, 3, 4]] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert math.isnan(adjusted[2]) and math.isnan(levels[2])  # not tested: not counted in m = 4
    # ranks 1, 2 rejected at 0.05/4, 0.05/3; the first not rejected is rank 3 (0.05/2), and rank 4 keeps its level
    assert levels[[4, 0, 3, 1]] == pytest.approx([1 - 0.05 / 4, 1 - 0.05 / 3, 1 - 0.05 / 2, 1 - 0.05 / 2])


def test_holm_is_bonferroni_for_one_and_never_below_raw():
    assert holm([0.02])[0][0] == pytest.approx(0.02)
    p = np.random.default_rng(0).uniform(size=9)
    adjusted, _ = holm(p)
    assert (adjusted >= p - 1e-15).all() and (adjusted <= 1).all()
    order = np.argsort(p)
    assert (np.diff(adjusted[order]) >= 0).all()  # monotone in the raw p-values


def test_p_value_matches_scipy():
    x = np.random.default_rng(1).normal(0.3, 1.0, size=5)
    assert t_p_value(x) == pytest.approx(scipy_stats.ttest_1samp(x, 0.0).pvalue, rel=1e-12)
    assert t_p_value(x, 0.3) == pytest.approx(scipy_stats.ttest_1samp(x, 0.3).pvalue, rel=1e-12)
    assert math.isnan(t_p_value([1.0]))


def test_adjusted_intervals_agree_with_holm_decisions():
    rng = np.random.default_rng(2)
    for trial in range(40):
        samples = {k: rng.normal(rng.choice([0.0, 0.5, 1.5]), 0.4, size=3) for k in range(6)}
        table = verdicts.family_table(samples)
        rejected = table["p_holm"] < 0.05
        excludes = (table["adj_low"] > 0) | (table["adj_high"] < 0)
        assert (rejected == excludes).all(), trial
        # the adjusted interval is never narrower than the unadjusted one
        assert (table["adj_low"] <= table["low"] + 1e-12).all() and (table["adj_high"] >= table["high"] - 1e-12).all()


def test_unadjusted_interval_is_the_t_interval_and_logs_are_exponentiated():
    logs = [math.log(2.0), math.log(2.2), math.log(1.8)]
    line = verdicts.family_table({"a": logs}, log=True).loc["a"]
    mean, low, high = t_interval(logs)
    assert (line["estimate"], line["low"], line["high"]) == pytest.approx((math.exp(mean), math.exp(low),
                                                                          math.exp(high)))
    # a family of one: the adjusted interval is the unadjusted one
    assert (line["adj_low"], line["adj_high"]) == pytest.approx((line["low"], line["high"]))


def test_family_control_turns_a_lone_pass_inconclusive():
    """A test that passes alone (p ~ 0.03) fails once it is one of five with nothing else to reject."""
    alone = [0.40, 0.55, 0.70]  # mean 0.55, p ~ 0.024
    assert 0.01 < t_p_value(alone) < 0.05
    assert verdicts.judge_family({"x": alone}, "used", "harmful").loc["x", "verdict"] == "used"
    family = {"x": alone} | {f"null{k}": [-0.1 + 0.05 * k, 0.1, -0.05] for k in range(4)}
    assert verdicts.judge_family(family, "used", "harmful").loc["x", "verdict"] == verdicts.INCONCLUSIVE


def test_direction_and_factor_are_two_answers():
    tight_15 = [math.log(r) for r in (1.45, 1.5, 1.55)]
    wide_15 = [math.log(r) for r in (1.1, 1.5, 2.4)]
    opposite = [math.log(r) for r in (0.5, 0.55, 0.6)]
    table = verdicts.judge_family({"tight": tight_15, "wide": wide_15, "opposite": opposite}, "reproduced",
                                  "contradicted", log=True, factors={"tight": 2.0, "wide": 2.0, "opposite": 2.0})
    assert table.columns[0] == "verdict"
    # right direction, but the study's factor of 2 lies above our interval: direction reproduced, factor rejected
    assert tuple(table.loc["tight", ["verdict", "factor verdict"]]) == ("reproduced", verdicts.REJECTED)
    # an interval that reaches 2: the factor is consistent with our data
    assert table.loc["wide", "factor verdict"] == verdicts.CONSISTENT
    assert tuple(table.loc["opposite", ["verdict", "factor verdict"]]) == ("contradicted", verdicts.REJECTED)


def test_one_seed_is_not_judged_and_not_counted():
    samples = {"one": [math.log(5.0)], "two": [math.log(1.5), math.log(1.6), math.log(1.55)]}
    table = verdicts.judge_family(samples, "reproduced", "contradicted", log=True)
    assert table.loc["one", "verdict"] == verdicts.ONE_SEED and table.loc["one", "seeds"] == 1
    assert math.isnan(table.loc["one", "p_holm"])
    # the one-seed test does not enlarge the family: "two" is adjusted as a family of one
    assert table.loc["two", "p_holm"] == pytest.approx(table.loc["two", "p"])


def test_untestable_gate_leaves_the_family():
    samples = {"weak": [1.0, 1.1, 1.2], "good": [0.40, 0.55, 0.70]}
    table = verdicts.judge_family(samples, "used", "harmful", untestable={"weak": True})
    assert table.loc["weak", "verdict"] == verdicts.UNTESTABLE and table.loc["weak", "seeds"] == 3
    assert table.loc["good", "verdict"] == "used"  # m = 1: "weak" is not counted
