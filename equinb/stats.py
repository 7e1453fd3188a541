"""Statistics for the book's verdicts: a t interval and t test over seeds, a percentile bootstrap over
molecules, and Holm's family-wise control.

The intervals return ``(estimate, low, high)``; ``low`` and ``high`` are NaN where the data cannot give an interval
(fewer than two values). The rules that turn them into verdicts live in :mod:`equinb.verdicts`; no verdict is
read off the direction of two numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

#: Default confidence level of every interval in the book.
LEVEL = 0.95
#: Default number of bootstrap resamples.
N_BOOT = 2000


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")


def t_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float, float]:
    """Mean of ``values`` and its Student-t interval (NaNs dropped).

    Parameters
    ----------
    values
        One number per independent replicate (for example one per seed, or a seed-paired difference).
    level
        Confidence level.

    Returns
    -------
    tuple of float
        ``(mean, low, high)``; all NaN for no values, ``low, high`` NaN for one value.
    """
    from scipy import stats

    _check_level(level)
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


def bootstrap_interval(values: Sequence[float] | np.ndarray, level: float = LEVEL, n_boot: int = N_BOOT,
                       seed: int = 0,
                       statistic: Callable[[np.ndarray], float] | None = None) -> tuple[float, float, float]:
    """A statistic of ``values`` (default: the mean) and its percentile-bootstrap interval, resampling items
    with replacement.

    For a paired comparison pass the per-item differences (for example, per molecule, the absolute error with
    an order ablated minus the intact one): the interval is then that of the mean difference.

    Parameters
    ----------
    values
        ``(n,)`` per-item values, or ``(n, k)`` rows of a ``statistic`` (items with a NaN are dropped).
    level
        Confidence level.
    n_boot
        Resamples.
    seed
        Seed of the resampling.
    statistic
        Function of an ``(m, ...)`` array of resampled items to a number (default: the mean of 1-D values).

    Returns
    -------
    tuple of float
        ``(statistic, low, high)``; all NaN for no items, ``low, high`` NaN for one item.
    """
    _check_level(level)
    if n_boot < 1:
        raise ValueError(f"n_boot must be positive, got {n_boot}")
    x = np.asarray(values, dtype=np.float64)
    x = x.ravel() if statistic is None else x
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    x = x[np.isfinite(x).reshape(len(x), -1).all(axis=1)]
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    estimate = float(x.mean()) if statistic is None else float(statistic(x))
    if len(x) < 2:
        return estimate, math.nan, math.nan
    picks = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    resampled = x[picks].mean(axis=1) if statistic is None else np.array([statistic(x[p]) for p in picks])
    low, high = np.quantile(resampled, [0.5 - level / 2, 0.5 + level / 2])
    return estimate, float(low), float(high)


def t_p_value(values: Sequence[float], null: float = 0.0) -> float:
    """Two-sided p-value of the one-sample t test that the mean of ``values`` is ``null`` (NaNs dropped).

    Parameters
    ----------
    values
        One number per independent replicate (for example a seed-paired log ratio).
    null
        The mean under the null hypothesis.

    Returns
    -------
    float
        The p-value; NaN for fewer than two values; 0 or 1 when the values do not vary (equal to or away from
        ``null``).
    """
    from scipy import stats

    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return math.nan
    sd = float(x.std(ddof=1))
    if sd == 0:
        return 1.0 if float(x.mean()) == null else 0.0
    t = (float(x.mean()) - null) / (sd / math.sqrt(len(x)))
    return float(2 * stats.t.sf(abs(t), len(x) - 1))


def holm(p_values: Sequence[float], level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down control of the family-wise error, and the confidence level of each hypothesis' interval
    that agrees with it.

    The ``m`` finite p-values are sorted, ``p_(1) <= ... <= p_(m)``; the adjusted p-value of rank ``k`` is
    ``max over j <= k of min(1, (m - j + 1) p_(j))`` and a hypothesis is rejected when it is below
    ``alpha = 1 - level``. The interval of rank ``k`` is drawn at level ``1 - alpha / (m - min(k, s) + 1)``,
    where ``s`` is the rank of the first hypothesis not rejected (``m + 1`` if all are): a t interval at that level
    excludes the null exactly for the rejected hypotheses, so the intervals shown and the verdicts agree.

    Parameters
    ----------
    p_values
        One p-value per hypothesis of the family; NaN for a hypothesis that is not tested (it is not counted in
        ``m``, and gets NaN back).
    level
        Family-wise confidence level (``alpha = 1 - level``).

    Returns
    -------
    tuple of numpy.ndarray
        ``(adjusted p-values, levels)``, in the order of ``p_values``.
    """
    _check_level(level)
    p = np.asarray(p_values, dtype=np.float64).ravel()
    adjusted, levels = np.full(len(p), math.nan), np.full(len(p), math.nan)
    tested = np.flatnonzero(np.isfinite(p))
    m, alpha = len(tested), 1 - level
    order = tested[np.argsort(p[tested], kind="stable")]
    running, stop = 0.0, m + 1
    for k, index in enumerate(order, start=1):
        running = max(running, min(1.0, (m - k + 1) * p[index]))
        adjusted[index] = running
        if running >= alpha and stop > m:
            stop = k
        levels[index] = 1 - alpha / (m - min(k, stop) + 1)
    return adjusted, levels
