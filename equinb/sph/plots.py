"""Figures of chapter 2: operation counts per component (the study's Figure 3) and accuracy by dtype."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

#: Colours of the series, shared by every figure of the chapter.
COLORS = {
    "recursive": "tab:red",
    "decoupled": "tab:blue",
    "expanded": "0.6",
    "torch": "tab:blue",
    "triton": "tab:cyan",
    "e3nn": "tab:red",
    "sphericart": "tab:green",
}


def plot_operation_counts(counts: pd.DataFrame, ax: plt.Axes | None = None, expanded: bool = True) -> plt.Axes:
    """Scatter of the operations each ``Y_lm`` costs, one column of points per order.

    Parameters
    ----------
    counts
        Output of :func:`equinb.sph.opcount.component_counts`.
    ax
        Axes to draw on (a new figure when ``None``).
    expanded
        Also draw the unrefactored expanded polynomials.

    Returns
    -------
    matplotlib.axes.Axes
        The axes; points of order ``l`` spread over ``[l - 0.35, l + 0.35]`` by ``m``.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    position = counts.l + 0.35 * counts.m / counts.l.clip(lower=1)
    series = ["recursive", "decoupled"] + (["expanded"] if expanded else [])
    labels = {
        "recursive": "recursive (e3nn, lower orders included)",
        "decoupled": "decoupled and refactored (ours)",
        "expanded": "decoupled, expanded monomials",
    }
    for name in series:
        ax.scatter(position, counts[name], s=14, color=COLORS[name], label=labels[name], alpha=0.85)
    ax.set_yscale("symlog", linthresh=10)
    ax.set_xticks(sorted(counts.l.unique()))
    ax.set_xlabel("order $l$ (points spread by $m$)")
    ax.set_ylabel("arithmetic operations for one $Y_{lm}$")
    ax.legend(frameon=False)
    return ax


def plot_accuracy(
    table: pd.DataFrame, quantity: str = "value", statistic: str = "max_rel", title: str | None = None
) -> plt.Figure:
    """Error against the order, one panel per dtype, one line per backend (worst input family).

    Parameters
    ----------
    table
        Output of :func:`equinb.sph.accuracy.accuracy_study`.
    quantity
        ``"value"`` or ``"gradient"``.
    statistic
        Column to plot (``max_rel``, ``median_rel``, ``max_abs``, ``median_abs``).
    title
        Title above the panels.

    Returns
    -------
    matplotlib.figure.Figure
        Logarithmic error axes; infinite errors are drawn at the top edge as crosses.
    """
    data = table[table.quantity == quantity]
    dtypes = list(dict.fromkeys(data.dtype))
    fig, axes = plt.subplots(1, len(dtypes), figsize=(3.2 * len(dtypes), 3.2), squeeze=False, sharex=True)
    for ax, dtype in zip(axes[0], dtypes):
        block = data[data.dtype == dtype]
        worst = block.groupby(["backend", "l"])[statistic].max().unstack("backend")
        finite = worst.replace([np.inf, 0.0], np.nan)  # exact (zero) errors have no place on a log axis
        top = finite.max().max() * 10 if finite.notna().any().any() else 1.0
        for backend in worst.columns:
            ax.plot(finite.index, finite[backend], marker="o", ms=3, color=COLORS.get(backend), label=backend)
            bad = worst.index[np.isinf(worst[backend])]
            ax.scatter(bad, [top] * len(bad), marker="x", color=COLORS.get(backend))
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(dtype)
        ax.set_xlabel("order $l$")
    axes[0, 0].set_ylabel(f"{statistic.replace('_', ' ')} error ({quantity}s)")
    axes[0, -1].legend(frameon=False, fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_error_ratios(ratios: pd.DataFrame, label: str = "decoupled / e3nn recursion") -> plt.Figure:
    """Ratio of two implementations' errors against the order, one panel per quantity, one line per dtype.

    Parameters
    ----------
    ratios
        Output of :func:`equinb.sph.accuracy.error_ratios`.
    label
        What the ratio compares (y-axis label).

    Returns
    -------
    matplotlib.figure.Figure
        Solid lines: ratio of the largest errors; dashed: of the median errors; a grey band marks a factor of 2
        either way.
    """
    quantities = list(dict.fromkeys(ratios.index.get_level_values("quantity")))
    fig, axes = plt.subplots(1, len(quantities), figsize=(4.2 * len(quantities), 3.2), squeeze=False, sharey=True)
    colours = {"float32": "tab:orange", "float64": "tab:purple"}
    for ax, quantity in zip(axes[0], quantities):
        for dtype, block in ratios.loc[quantity].groupby(level="dtype"):
            block = block.droplevel("dtype")
            colour = colours.get(dtype)
            ax.plot(block.index, block.ratio_max, marker="o", ms=3, color=colour, label=f"{dtype}, largest")
            ax.plot(block.index, block.ratio_median, ls="--", color=colour, label=f"{dtype}, median")
        ax.axhspan(0.5, 2.0, color="0.9", zorder=0)
        ax.axhline(1.0, color="0.5", lw=0.8)
        ax.set_yscale("log", base=2)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{quantity}s")
        ax.set_xlabel("order $l$")
    axes[0, 0].set_ylabel(f"relative error, {label}")
    axes[0, -1].legend(frameon=False, fontsize="small")
    fig.tight_layout()
    return fig
