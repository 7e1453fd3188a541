"""Speed-ups and the project's performance targets, read from spherical-harmonic results tables
(:func:`equinb.bench.sph.run_benchmark` or :func:`equinb.bench.harness.read_results`).

Every ratio compares two backends within the same run (their time over ours), so machine noise shared by the
run cancels; a case that was not measured gives NaN, and a target on it is ``"not measured"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from .harness import L_MAX, parse_set
from .sph import BACKENDS, MODES, roofline_ns_per_point


def _median_ns(results: pd.DataFrame, device: str, backend: str, label: str, mode: str, n: int,
               dtype: str) -> float:
    """Median ns per point of one case, NaN when it was not measured."""
    ok = results[(results["status"] == "ok") & (results["device"] == device) & (results["backend"] == backend)
                 & (results["set"] == label) & (results["mode"] == mode) & (results["n"] == n)
                 & (results["dtype"] == dtype)]
    return float(ok["ns_per_point"].iloc[0]) if len(ok) else math.nan


def ratio_table(
    results: pd.DataFrame, ours: str = "torch-compile", others: Sequence[str] | None = None
) -> pd.DataFrame:
    """ns per point of every backend and the speed-up of ``ours`` over each (their time / our time).

    Parameters
    ----------
    results
        Results rows (any mix of devices and dtypes).
    ours
        The backend compared against the others.
    others
        Backends to compare with (default: every other one of :data:`equinb.bench.sph.BACKENDS` measured).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(device, dtype, mode, set, n)``; columns are backends (ns per point) and
        ``<other> / <ours>`` ratios (above 1: ``ours`` is faster).
    """
    ok = results[results["status"] == "ok"]
    table = ok.pivot_table(index=["device", "dtype", "mode", "set", "n"], columns="backend",
                           values="ns_per_point", aggfunc="first")
    others = [b for b in (others or BACKENDS) if b != ours and b in table.columns]
    if ours in table.columns:
        for other in others:
            table[f"{other} / {ours}"] = table[other] / table[ours]
    return table


def single_order_ratios(
    results: pd.DataFrame, pairs: Sequence[tuple[str, str]], mode: str = "fwd"
) -> pd.DataFrame:
    """Time of ``other`` over time of ``ours`` for each single order ``l``, at the largest ``N`` both measured.

    Parameters
    ----------
    results
        Rows of one device.
    pairs
        ``(ours, other)`` backend pairs; a pair with no common measurement is left out.
    mode
        ``"fwd"`` or ``"fwd+bwd"``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``l``, one column ``"<other> / <ours> (N = n)"`` per pair.
    """
    singles = results[(results["status"] == "ok") & (results["mode"] == mode)
                      & results["set"].isin([str(l) for l in range(L_MAX + 1)])]
    table = singles.assign(l=singles["set"].astype(int)).pivot_table(
        index=["n", "l"], columns="backend", values="ns_per_point")
    columns = {}
    for ours, other in pairs:
        if ours in table and other in table:
            both = table[[ours, other]].dropna()
            if len(both):
                n = int(both.index.get_level_values("n").max())
                columns[f"{other} / {ours} (N = {n:,})"] = (both[other] / both[ours]).xs(n, level="n")
    return pd.DataFrame(columns)


def set_cost_ratio(results: pd.DataFrame, part: str, whole: str = "0-10") -> pd.DataFrame:
    """Time of the order set ``part`` over the time of ``whole``, per backend and mode (rows) and ``N`` (columns),
    where both were measured.

    Parameters
    ----------
    results
        Results rows of one device.
    part, whole
        Order-set labels (:func:`equinb.bench.harness.set_label`).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(backend, mode)``, one column per ``N``; empty when either set was not measured.

    Examples
    --------
    ``set_cost_ratio(results, "10")`` near 1 means computing ``[10]`` alone costs as much as all of ``[0..10]``.
    """
    ok = results[results["status"] == "ok"]
    table = ok.pivot_table(index=["backend", "mode", "n"], columns="set", values="ns_per_point")
    if part not in table or whole not in table:
        return pd.DataFrame()
    return (table[part] / table[whole]).dropna().rename(f"[{part}] / [{whole}]").unstack("n")


def _target(description: str, measured: float, threshold: float, strict: bool, **case: Any) -> dict[str, Any]:
    met = "not measured" if math.isnan(measured) else (
        "yes" if (measured > threshold if strict else measured >= threshold) else "no")
    return {"target": description, **case, "measured": measured,
            "threshold": f"{'>' if strict else '>='} {threshold:.3g}", "met": met}


def evaluate_targets(results: pd.DataFrame, gpu_bandwidth: float | None = None, dtype: str = "float32") -> pd.DataFrame:
    """The project's performance targets, measured as ratios within the same run.

    CPU (``N = 10**4`` and ``10**6``): for ``[0,3,4,5,6]`` and ``[10]``, compiled PyTorch path faster than compiled
    e3nn and than sphericart, forward and forward+backward; for ``[0..10]`` at least as fast as compiled e3nn
    (both modes) and within 1.5x of sphericart (forward). GPU (``N = 10**6``, ``[0..10]``, forward): Triton
    reaches half the memory-bandwidth bound and beats compiled e3nn and sphericart.

    Parameters
    ----------
    results
        Rows from :func:`equinb.bench.sph.run_benchmark` (any mix of devices).
    gpu_bandwidth
        Peak (or measured copy) GPU memory bandwidth, bytes/s, for the roofline target; None leaves it
        unmeasured.
    dtype
        Precision the targets are evaluated in.

    Returns
    -------
    pandas.DataFrame
        One row per target with ``target, device, set, mode, n, measured, threshold, met`` (``met`` is ``yes``,
        ``no`` or ``not measured``). ``measured`` is a speed-up (their time / ours) or, for the roofline, the
        fraction of the bound reached (bound time / measured time).
    """
    rows = []
    ours = "torch-compile"
    for n in (10_000, 1_000_000):
        for label in ("0,3-6", "10"):
            for mode in MODES:
                for other in ("e3nn-compile", "sphericart"):
                    ratio = _median_ns(results, "cpu", other, label, mode, n, dtype) / _median_ns(
                        results, "cpu", ours, label, mode, n, dtype)
                    rows.append(_target(f"{ours} faster than {other}", ratio, 1.0, True, device="cpu", set=label,
                                        mode=mode, n=n))
        full = "0-10"
        for mode in MODES:
            ratio = _median_ns(results, "cpu", "e3nn-compile", full, mode, n, dtype) / _median_ns(
                results, "cpu", ours, full, mode, n, dtype)
            rows.append(_target(f"{ours} at least as fast as e3nn-compile", ratio, 1.0, False, device="cpu",
                                set=full, mode=mode, n=n))
        ratio = _median_ns(results, "cpu", "sphericart", full, "fwd", n, dtype) / _median_ns(
            results, "cpu", ours, full, "fwd", n, dtype)
        rows.append(_target(f"{ours} within 1.5x of sphericart", ratio, 1 / 1.5, False, device="cpu", set=full,
                            mode="fwd", n=n))
    n, full = 1_000_000, "0-10"
    triton = _median_ns(results, "cuda", "triton", full, "fwd", n, dtype)
    bound = roofline_ns_per_point(parse_set(full), gpu_bandwidth, dtype, "fwd") if gpu_bandwidth else math.nan
    rows.append(_target("triton reaches half the memory-bandwidth bound", bound / triton, 0.5, False,
                        device="cuda", set=full, mode="fwd", n=n))
    for other in ("e3nn-compile", "sphericart"):
        ratio = _median_ns(results, "cuda", other, full, "fwd", n, dtype) / triton
        rows.append(_target(f"triton faster than {other}", ratio, 1.0, True, device="cuda", set=full, mode="fwd",
                            n=n))
    return pd.DataFrame(rows, columns=["target", "device", "set", "mode", "n", "measured", "threshold", "met"])


#: Order sets of the compiled-path check: a single high order, the study's pruned set, the dense sets.
COMPILED_SETS = ("10", "0,3-6", "0-10", f"0-{L_MAX}")
#: Ratios within this factor of 1 are ties (shared machines are noisy).
TIE = 1.1


def compiled_path_table(results: pd.DataFrame, sets: Sequence[str] = COMPILED_SETS, ours: str = "torch-compile",
                        others: Sequence[str] = ("torch", "e3nn-compile"), tie: float = TIE) -> pd.DataFrame:
    """Is the compiled path slower than our eager path or than compiled e3nn? One row per comparison.

    The ratio is their median time over ours (above 1: ours is faster), with a band from the quartiles
    (``their q1 / our q3`` to ``their q3 / our q1``). The verdict is ``faster`` when the whole band is above 1 and
    the ratio above ``tie``, ``slower`` when the band is below 1 and the ratio below ``1 / tie``, else ``tie``.

    Parameters
    ----------
    results
        Rows of one device (:func:`equinb.bench.sph.run_benchmark`).
    sets
        Order-set labels to compare.
    ours, others
        The compiled backend and what it must not be slower than.
    tie
        Factor within which a ratio is a tie.

    Returns
    -------
    pandas.DataFrame
        Columns ``set, mode, n, other, ours_ns, other_ns, ratio, ratio_low, ratio_high, verdict,
        compile_s`` (``compile_s``: our first call less a timed call, the compile time, on the first ``N`` of each
        (set, mode) only: later sizes reuse the dynamic-shape graph), one row per measured (set, mode, n, other).

    Raises
    ------
    ValueError
        If a (backend, dtype, set, mode, n) case appears twice (results of several runs mixed).
    """
    ok = results[(results["status"] == "ok") & results["set"].isin(list(sets))]
    key = ["dtype", "set", "mode", "n"]
    repeated = ok.duplicated(subset=["backend", *key])
    if repeated.any():
        raise ValueError(f"{int(repeated.sum())} repeated (backend, dtype, set, mode, n) rows: pass one run's results "
                         "(one device and thread count)")
    mine = ok[ok["backend"] == ours].set_index(key)
    first_n = mine.reset_index().groupby(["dtype", "set", "mode"])["n"].min()
    rows = []
    for other in others:
        theirs = ok[ok["backend"] == other].set_index(key)
        for index in mine.index.intersection(theirs.index):
            a, b = mine.loc[index], theirs.loc[index]
            ratio = b["median_s"] / a["median_s"]
            low, high = b["q1_s"] / a["q3_s"], b["q3_s"] / a["q1_s"]
            verdict = ("faster" if low > 1 and ratio > tie else "slower" if high < 1 and ratio < 1 / tie
                       else "tie")
            rows.append({"set": index[1], "mode": index[2], "n": index[3], "other": other,
                         "ours_ns": a["ns_per_point"], "other_ns": b["ns_per_point"], "ratio": ratio,
                         "ratio_low": low, "ratio_high": high, "verdict": verdict,
                         "compile_s": (a["first_call_s"] - a["median_s"]
                                       if index[3] == first_n[index[:3]] else math.nan)})
    columns = ["set", "mode", "n", "other", "ours_ns", "other_ns", "ratio", "ratio_low", "ratio_high", "verdict",
               "compile_s"]
    order = {label: i for i, label in enumerate(sets)}
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["set", "mode", "n", "other"], key=lambda c: c.map(order) if c.name == "set" else c,
                             ignore_index=True)
