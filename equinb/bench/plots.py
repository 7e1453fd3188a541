"""Figures of spherical-harmonic results: ns per point against ``N`` and against the order ``l``, one line per
backend (each keeps its colour in every panel), the quartiles as error bars and the memory floor dashed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from .harness import L_MAX, parse_set
from .sph import BACKENDS, roofline_ns_per_point

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _plot_backends(ax: Axes, frame: pd.DataFrame, x: str) -> None:
    """One line per backend of ``ns_per_point`` against column ``x``, the quartiles as error bars; each backend
    keeps its colour in every panel."""
    for index, backend in enumerate(BACKENDS):
        part = frame[(frame["backend"] == backend) & (frame["status"] == "ok")].sort_values(x)
        if len(part):
            per_point = 1e9 / part["n"].astype(float)
            spread = [part["ns_per_point"] - part["q1_s"] * per_point, part["q3_s"] * per_point - part["ns_per_point"]]
            ax.errorbar(part[x], part["ns_per_point"], yerr=spread, marker="o", ms=4, capsize=2, label=backend,
                        color=f"C{index}")


def _new_axes() -> Axes:
    """Axes of a new figure sized for one panel."""
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(5, 3.5))[1]


def plot_vs_size(results: pd.DataFrame, label: str, mode: str, bandwidth: float | None = None,
                 ax: Axes | None = None) -> Axes:
    """ns per point against ``N`` for one order set and mode, one line per backend (quartiles as error bars), with
    the memory-bandwidth floor for ``bandwidth`` bytes/s as a dashed line.

    Parameters
    ----------
    results
        Results rows of one device.
    label
        Order-set label (:func:`equinb.bench.harness.set_label`).
    mode
        ``"fwd"`` or ``"fwd+bwd"``.
    bandwidth
        Memory bandwidth in bytes/s for the floor; None or 0 draws none.
    ax
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = ax or _new_axes()
    frame = results[(results["set"] == label) & (results["mode"] == mode)]
    _plot_backends(ax, frame, "n")
    if bandwidth:
        dtype = frame["dtype"].dropna().iloc[0] if frame["dtype"].notna().any() else "float32"
        ax.axhline(roofline_ns_per_point(parse_set(label), bandwidth, dtype, mode), color="k", ls="--", lw=1,
                   label="memory floor")
    ax.set(xscale="log", yscale="log", xlabel="N (points)", ylabel="ns per point", title=f"L = [{label}], {mode}")
    ax.legend(fontsize=8)
    return ax


def plot_vs_order(results: pd.DataFrame, n: int, mode: str, bandwidth: float | None = None,
                 ax: Axes | None = None) -> Axes:
    """ns per point against the single order ``l`` at ``N = n``, one line per backend, with the memory floor.

    Parameters
    ----------
    results
        Results rows of one device.
    n
        Number of points.
    mode, bandwidth, ax
        As for :func:`plot_vs_size`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = ax or _new_axes()
    singles = results[results["set"].isin([str(l) for l in range(L_MAX + 1)]) & (results["n"] == n)
                      & (results["mode"] == mode)].assign(l=lambda f: f["set"].astype(int))
    _plot_backends(ax, singles, "l")
    if bandwidth and len(singles):
        orders = sorted(singles["l"].unique())
        dtype = singles["dtype"].iloc[0]
        ax.plot(orders, [roofline_ns_per_point([l], bandwidth, dtype, mode) for l in orders], "k--", lw=1,
                label="memory floor")
    ax.set(yscale="log", xlabel="order l (alone)", ylabel="ns per point", title=f"N = {n:,}, {mode}")
    ax.legend(fontsize=8)
    return ax
