"""Figures in the study's layouts: rows of projection panels coloured by nSPS, molecules at the quadrant
extremes of one panel (its Figure 7), grouped bar charts of the utilisation measures, and usage measures with
their intervals over seeds."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import ConnectionPatch

from .projection import molecule_from_smiles

#: Corners of a panel, as (name, x side, y side) with 0 = low and 1 = high.
CORNERS = (("NW", 0, 1), ("NE", 1, 1), ("SW", 0, 0), ("SE", 1, 0))


def panel_title(key: str | int) -> str:
    """``"joint"`` or ``"l = 3"``."""
    return "joint" if key == "joint" else f"l = {key}"


def _colour_norm(colours: Sequence[np.ndarray]) -> Normalize:
    finite = np.concatenate([np.asarray(c, dtype=float).ravel() for c in colours])
    finite = finite[np.isfinite(finite)]
    return Normalize(*(np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)))


def _scatter(ax: plt.Axes, coords: np.ndarray, colour: np.ndarray, norm: Normalize, cmap: str, size: float):
    colour = np.asarray(colour, dtype=float)
    bad = ~np.isfinite(colour)
    ax.scatter(*coords[bad].T, s=size, c="0.75", linewidths=0)
    points = ax.scatter(*coords[~bad].T, s=size, c=colour[~bad], norm=norm, cmap=cmap, linewidths=0)
    ax.set_xticks([])
    ax.set_yticks([])
    return points


def plot_projection_rows(rows: Sequence[tuple[str, Mapping[str | int, np.ndarray]]], colours: Sequence[np.ndarray],
                         colour_label: str = "nSPS", cmap: str = "viridis", panel_size: float = 2.0,
                         point_size: float = 6.0, untrained: Sequence[Collection[int]] | None = None) -> Figure:
    """One row per configuration: the joint projection, then one panel per order (the study's Figures 1, 4-6).

    Parameters
    ----------
    rows
        ``(row label, panels)`` with ``panels`` as from :func:`~equinb.analysis.project_layer`.
    colours
        Per row, the colour value of each point (NaN points are drawn grey); one shared scale (1st to 99th
        percentile) and one colour bar.
    colour_label
        Label of the colour bar.
    cmap, panel_size, point_size
        Colour map, panel edge in inches, marker size.
    untrained
        Per row, the orders whose features never received a gradient (e.g. the last block's ``l > 0``): their
        panel titles say ``no gradient``.

    Raises
    ------
    ValueError
        If ``rows`` and ``colours`` (or ``untrained``) differ in length.
    """
    if len(rows) != len(colours):
        raise ValueError(f"{len(rows)} rows but {len(colours)} colour arrays")
    untrained = [()] * len(rows) if untrained is None else untrained
    if len(untrained) != len(rows):
        raise ValueError(f"{len(rows)} rows but {len(untrained)} sets of untrained orders")
    n_cols = max(len(panels) for _, panels in rows)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(panel_size * n_cols + 0.8, panel_size * len(rows)),
                             squeeze=False, constrained_layout=True)
    norm = _colour_norm(colours)
    points = None
    for (label, panels), colour, row_axes, dead in zip(rows, colours, axes, untrained):
        for ax, (key, coords) in zip(row_axes, panels.items()):
            points = _scatter(ax, np.asarray(coords), colour, norm, cmap, point_size)
            ax.set_title(panel_title(key) + (" (no gradient)" if key in dead else ""), fontsize=9)
        row_axes[0].set_ylabel(label, fontsize=9)
        for ax in row_axes[len(panels):]:
            ax.set_visible(False)
    fig.colorbar(points, ax=axes, label=colour_label, shrink=0.8)
    return fig


def quadrant_extremes(coords: np.ndarray) -> dict[str, int]:
    """Index of the point nearest to each corner of the projection's bounding box (axes scaled to [0, 1]).

    Returns
    -------
    dict
        ``{"NW": i, "NE": j, "SW": k, "SE": m}``.
    """
    coords = np.asarray(coords, dtype=float)
    low, high = coords.min(axis=0), coords.max(axis=0)
    scaled = (coords - low) / np.where(high > low, high - low, 1.0)
    return {name: int(np.argmin(np.hypot(scaled[:, 0] - x, scaled[:, 1] - y))) for name, x, y in CORNERS}


def molecule_image(smiles: str, size: int = 220) -> np.ndarray:
    """RGB image of a molecule drawn by RDKit (``Draw.MolToImage``) from its SMILES.

    Raises
    ------
    ValueError
        If RDKit rejects the SMILES.
    """
    from rdkit.Chem import Draw

    mol = molecule_from_smiles(smiles)
    if mol is None:
        raise ValueError(f"RDKit cannot read the SMILES {smiles!r}")
    return np.asarray(Draw.MolToImage(mol, size=(size, size)))


def plot_quadrant_molecules(coords: np.ndarray, smiles: Sequence[str], colour: np.ndarray, title: str = "",
                            colour_label: str = "nSPS", cmap: str = "viridis") -> tuple[Figure, dict[str, int]]:
    """A projection with the molecules nearest its four corners drawn around it (the study's Figure 7).

    Parameters
    ----------
    coords
        ``(n, 2)`` projection.
    smiles
        SMILES of the ``n`` molecules.
    colour
        Colour value per point (e.g. nSPS).
    title, colour_label, cmap
        Panel title, colour-bar label, colour map.

    Returns
    -------
    tuple
        The figure and :func:`quadrant_extremes` (which points were drawn).
    """
    coords = np.asarray(coords, dtype=float)
    extremes = quadrant_extremes(coords)
    fig = plt.figure(figsize=(9, 7))
    grid = fig.add_gridspec(2, 3, width_ratios=[1, 1.8, 1])
    main = fig.add_subplot(grid[:, 1])
    points = _scatter(main, coords, colour, _colour_norm([colour]), cmap, 10)
    main.set_title(title, fontsize=10)
    fig.colorbar(points, ax=main, label=colour_label, orientation="horizontal", pad=0.03)
    for name, x, y in CORNERS:
        index = extremes[name]
        ax = fig.add_subplot(grid[1 - y, 2 * x])
        ax.imshow(molecule_image(smiles[index]))
        ax.set_axis_off()
        ax.set_title(f"{name}: {smiles[index]}", fontsize=8)
        main.scatter(*coords[index], s=60, facecolors="none", edgecolors="red")
        fig.add_artist(ConnectionPatch(xyA=(1 - x, 0.5), coordsA=ax.transAxes, xyB=tuple(coords[index]),
                                       coordsB=main.transData, color="red", lw=0.8))
    return fig, extremes


def plot_by_layer(tables: Mapping[str, pd.DataFrame], value: str, ylabel: str, log: bool = False,
                  panel_width: float = 4.5) -> Figure:
    """Grouped bars of ``value`` per layer (x) and order (bar colour), one panel per configuration.

    Parameters
    ----------
    tables
        ``{configuration label: table}`` with columns ``layer``, ``l`` and ``value``.
    value, ylabel
        Column to plot and its axis label.
    log
        Logarithmic y axis (non-positive values are not drawn).
    panel_width
        Width of each panel in inches.
    """
    fig, axes = plt.subplots(1, len(tables), figsize=(panel_width * len(tables), 3.2), squeeze=False,
                             sharey=True, constrained_layout=True)
    for ax, (label, table) in zip(axes[0], tables.items()):
        wide = table.pivot(index="layer", columns="l", values=value)
        wide = wide.loc[list(dict.fromkeys(table["layer"]))]
        wide.plot.bar(ax=ax, logy=log, rot=0, width=0.8)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("")
        ax.set_ylabel(ylabel)
        ax.legend(title="l", fontsize=7, ncol=2)
    return fig


def plot_usage(summary: pd.DataFrame, measure: str, layers: Sequence[str], ylabel: str,
               panel_width: float = 3.6) -> Figure:
    """Mean over seeds of one usage measure per order, with its interval, one panel per configuration and layer.

    Error bars are the t interval over seeds (the widest per-seed bootstrap interval where there is one seed);
    bars of features that never received a gradient are hatched.

    Parameters
    ----------
    summary
        From :func:`~equinb.analysis.collect.summarize_usage`.
    measure
        Which measure.
    layers
        Layers to show, one row of panels each (``"all"``: the ablation at every block at once).
    ylabel
        Axis label.
    panel_width
        Width of each panel in inches.
    """
    rows = list(dict.fromkeys(summary["row"]))
    fig, axes = plt.subplots(len(layers), len(rows), figsize=(panel_width * len(rows), 2.6 * len(layers)),
                             squeeze=False, sharey="row", constrained_layout=True)
    for i, layer in enumerate(layers):
        for ax, row in zip(axes[i], rows):
            part = summary[(summary["row"] == row) & (summary["measure"] == measure) & (summary["layer"] == layer)]
            part = part.sort_values("l")
            several = part["seeds"] >= 2
            low = np.where(several, part["seed_low"], part["bootstrap_low"])
            high = np.where(several, part["seed_high"], part["bootstrap_high"])
            x = np.arange(len(part))
            bars = ax.bar(x, part["mean"], color="tab:blue", alpha=0.8)
            for bar, trained in zip(bars, part["features_trained"]):
                if not trained:
                    bar.set_hatch("//")
                    bar.set_facecolor("white")
            ax.errorbar(x, part["mean"], yerr=[part["mean"] - low, high - part["mean"]], fmt="none", color="k",
                        capsize=3, lw=1)
            ax.axhline(0, color="grey", lw=0.8)
            ax.set_xticks(x, [str(l) for l in part["l"]])
            seeds = int(part["seeds"].max()) if len(part) else 0
            ax.set_title(f"{row}\n{layer}, {seeds} seed{'s' if seeds != 1 else ''}", fontsize=9)
            ax.set_xlabel("l")
        axes[i][0].set_ylabel(ylabel)
    return fig
