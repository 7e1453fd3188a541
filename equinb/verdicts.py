"""The book's verdict rules, in one place: which metric decides, how a family of tests is controlled, what a
verdict says.

Every verdict of the book — the study's Table 1 claims, retraining without one order, irrep usage — is read off
:func:`judge_family`:

* **Primary metric, named in advance** (:data:`PRIMARY`); the other metric of the family (:data:`SECONDARY`) is
  reported beside it and never decides.
* **Seed-level variation only.** A test's replicates are independent training runs (one value per seed, paired
  by seed where two configurations are compared). A test with fewer than two seeds gets :data:`ONE_SEED` and
  does not enter its family.
* **Family-wise control** (Holm, :func:`equinb.stats.holm`) within each family; both the unadjusted t interval
  and the Holm-adjusted one are shown, and the direction verdict follows the adjusted one.
* **Two answers for a claim with a factor**: the direction (``above`` / ``below`` / :data:`INCONCLUSIVE`) and
  the factor (:data:`CONSISTENT` when the adjusted interval reaches the claimed factor, :data:`REJECTED` when
  it lies wholly short of it).
* **A gate**: a test whose runs have not passed the composition baseline by
  :data:`~equinb.baseline.BASELINE_FACTOR` is :data:`UNTESTABLE` and does not enter its family.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import pandas as pd

from .stats import LEVEL, holm, t_interval, t_p_value

#: Primary metric of each family, fixed before any result was read.
PRIMARY: dict[str, str] = {
    "claims": "test_mse_ev2",  # the study's Table 1 reports a mean squared error, and its factors are MSE ratios
    "without": "test_mae_ev",
    "usage": "mean_ablation_mae_increase_ev",
}
#: The metric reported beside the primary one in each family.
SECONDARY: dict[str, str] = {
    "claims": "test_mae_ev",
    "without": "test_mse_ev2",
    "usage": "element_mean_ablation_mae_increase_ev",
}
#: Verdict of a test with fewer than two seeds.
ONE_SEED = "one seed: not judged"
#: Verdict of a test whose models have not passed the composition baseline.
UNTESTABLE = "untestable at this scale"
#: Verdict of a test whose adjusted interval contains the null.
INCONCLUSIVE = "inconclusive"
#: Factor verdicts.
CONSISTENT, REJECTED = "consistent", "rejected"

#: Columns of :func:`family_table`.
FAMILY_COLUMNS = ("seeds", "estimate", "low", "high", "p", "p_holm", "holm_level", "adj_low", "adj_high")


def family_table(samples: Mapping[Hashable, Sequence[float]], level: float = LEVEL,
                 log: bool = False) -> pd.DataFrame:
    """Unadjusted and Holm-adjusted t intervals of a family of tests, one line per test.

    Parameters
    ----------
    samples
        Test name -> one value per seed (NaNs dropped). Tests with fewer than two values get intervals and
        p-values of NaN and are not counted in the family.
    level
        Confidence level of each unadjusted interval, and family-wise level of the adjusted ones.
    log
        The values are log ratios: the null is a ratio of 1 and estimates and bounds are exponentiated (the
        estimate is then the geometric mean ratio).

    Returns
    -------
    pandas.DataFrame
        Indexed by test, columns :data:`FAMILY_COLUMNS`: ``seeds``, ``estimate``, ``low``/``high`` (unadjusted),
        ``p`` (two-sided t test of the null), ``p_holm``, ``holm_level`` (the level of the adjusted interval) and
        ``adj_low``/``adj_high``.
    """
    keys = list(samples)
    values = [np.asarray(samples[key], dtype=np.float64).ravel() for key in keys]
    values = [x[np.isfinite(x)] for x in values]
    p = [t_p_value(x) for x in values]
    adjusted, levels = holm(p, level)
    lines = []
    for x, p_value, p_holm, holm_level in zip(values, p, adjusted, levels):
        estimate, low, high = t_interval(x, level)
        adj_low, adj_high = (t_interval(x, holm_level)[1:] if math.isfinite(holm_level) else (math.nan, math.nan))
        lines.append({"seeds": len(x), "estimate": estimate, "low": low, "high": high, "p": p_value,
                      "p_holm": p_holm, "holm_level": holm_level, "adj_low": adj_low, "adj_high": adj_high})
    table = pd.DataFrame(lines, index=pd.Index(keys), columns=list(FAMILY_COLUMNS))
    if log:
        for column in ("estimate", "low", "high", "adj_low", "adj_high"):
            table[column] = np.exp(table[column].astype(float))
    return table


def direction(low: float, high: float, null: float, above: str, below: str) -> str:
    """``above`` / ``below`` when the interval ``[low, high]`` lies wholly above / below ``null``, else
    :data:`INCONCLUSIVE` (also for no interval)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return INCONCLUSIVE
    return above if low > null else below if high < null else INCONCLUSIVE


def factor_verdict(factor: float, high: float) -> str:
    """A claimed ratio of at least ``factor`` against the upper bound ``high`` of our interval:
    :data:`REJECTED` when ``high < factor``, :data:`CONSISTENT` otherwise, ``""`` for no factor (1 or NaN) or no
    interval."""
    if not (math.isfinite(factor) and factor > 1 and math.isfinite(high)):
        return ""
    return REJECTED if high < factor else CONSISTENT


def judge_family(samples: Mapping[Hashable, Sequence[float]], above: str, below: str, level: float = LEVEL,
                 log: bool = False, untestable: Mapping[Hashable, bool] | None = None,
                 factors: Mapping[Hashable, float] | None = None) -> pd.DataFrame:
    """Verdicts on a family of tests: :func:`family_table` with a direction and, where claimed, a factor.

    Parameters
    ----------
    samples
        Test name -> one value per seed (see :func:`family_table`).
    above, below
        Words for an adjusted interval wholly above / below the null (0, or a ratio of 1 with ``log``).
    level
        Family-wise confidence level.
    log
        The values are log ratios (see :func:`family_table`).
    untestable
        Test name -> True where the runs have not passed the composition baseline: such tests are
        :data:`UNTESTABLE` and left out of the family.
    factors
        Test name -> the claimed ratio (``log``) or difference; judged by :func:`factor_verdict` on the adjusted
        interval.

    Returns
    -------
    pandas.DataFrame
        Indexed by test: ``verdict`` (first), ``factor verdict``, then :data:`FAMILY_COLUMNS`.
    """
    untestable = untestable or {}
    tested = {key: (values if not untestable.get(key, False) else []) for key, values in samples.items()}
    table = family_table(tested, level, log)
    null = 1.0 if log else 0.0
    verdicts, factor_verdicts = [], []
    for key, line in table.iterrows():
        if untestable.get(key, False):
            verdicts.append(UNTESTABLE)
        elif line["seeds"] < 2:
            verdicts.append(ONE_SEED)
        else:
            verdicts.append(direction(line["adj_low"], line["adj_high"], null, above, below))
        factor = (factors or {}).get(key, math.nan)
        factor_verdicts.append(factor_verdict(factor, line["adj_high"]) if verdicts[-1] != UNTESTABLE else "")
    table.insert(0, "factor verdict", factor_verdicts)
    table.insert(0, "verdict", verdicts)
    table["seeds"] = [int(np.isfinite(np.asarray(samples[key], dtype=np.float64)).sum()) for key in table.index]
    return table
