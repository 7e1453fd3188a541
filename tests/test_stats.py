"""Intervals against scipy's closed forms and, for the bootstrap, coverage on synthetic data with a known mean."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from equinb.stats import bootstrap_interval, t_interval


def test_t_interval_matches_scipy():
    values = np.random.default_rng(3).normal(0.4, 2.0, size=7)
    mean, low, high = t_interval(values, 0.9)
    expected = scipy_stats.t.interval(0.9, len(values) - 1, loc=values.mean(), scale=scipy_stats.sem(values))
    assert mean == pytest.approx(values.mean(), abs=1e-15)
    assert (low, high) == pytest.approx(expected, abs=1e-12)


def test_intervals_of_too_few_values_are_nan_not_zero_width():
    for interval in (t_interval, bootstrap_interval):
        assert all(math.isnan(v) for v in interval([]))
        mean, low, high = interval([2.5, math.nan])
        assert mean == 2.5 and math.isnan(low) and math.isnan(high)


@pytest.mark.parametrize("interval", [t_interval, bootstrap_interval])
def test_bad_level_is_a_clear_error(interval):
    with pytest.raises(ValueError, match="level must lie strictly between 0 and 1, got 95"):
        interval([1.0, 2.0], 95)


def test_bootstrap_covers_a_known_mean_at_the_stated_rate():
    # 400 samples of 60 from a skewed law with mean 1: a correct 90 % interval covers ~90 % of the time; one built
    # from the spread of the values instead of the spread of their mean would cover ~100 %, one too narrow far less
    rng = np.random.default_rng(7)
    hits = 0
    trials = 400
    for trial in range(trials):
        sample = rng.exponential(1.0, size=60)
        _, low, high = bootstrap_interval(sample, level=0.9, n_boot=800, seed=trial)
        hits += low <= 1.0 <= high
    rate = hits / trials
    assert 0.84 <= rate <= 0.95, rate


def test_bootstrap_of_paired_differences_excludes_zero_for_a_real_shift():
    rng = np.random.default_rng(1)
    base = rng.normal(0, 5, size=200)  # large shared variation
    shifted = base + 0.3 + rng.normal(0, 0.1, size=200)
    mean, low, high = bootstrap_interval(shifted - base, seed=0)
    assert 0.26 < low < mean < high < 0.34
    _, low_unpaired, high_unpaired = bootstrap_interval(shifted, seed=0)
    assert high_unpaired - low_unpaired > 10 * (high - low)


def test_bootstrap_is_reproducible_and_rejects_bad_resamples():
    values = np.arange(10.0)
    assert bootstrap_interval(values, seed=4) == bootstrap_interval(values, seed=4)
    with pytest.raises(ValueError, match="n_boot must be positive, got 0"):
        bootstrap_interval(values, n_boot=0)


def test_bootstrap_of_a_statistic_of_rows():
    # the correlation of (x, 2x + small noise) is near 1: its interval must sit just below 1 and contain the estimate
    rng = np.random.default_rng(2)
    x = rng.normal(size=300)
    rows = np.stack([x, 2 * x + rng.normal(scale=0.1, size=300)], axis=1)
    rows[5, 1] = np.nan  # a row with a NaN is dropped, not the whole column

    def corr(r):
        return float(np.corrcoef(r[:, 0], r[:, 1])[0, 1])

    estimate, low, high = bootstrap_interval(rows, n_boot=300, statistic=corr)
    assert estimate == pytest.approx(corr(np.delete(rows, 5, axis=0)))
    assert 0.99 < low <= estimate <= high < 1.0
