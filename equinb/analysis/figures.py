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


#: The study's PHATE figures by the run they show, ``(orders, study epochs)``: Figure 1 the two best models of
#: Table 1's second half at 30 epochs, Figure 4 the canonical set and one added even order (100 epochs), Figure 5
#: the contiguous [0..4] at 30 epochs, Figure 6 [0..4] and [0,3,4,5,6] at 100 epochs (Figure 7 reads 6b).
STUDY_FIGURES: dict[tuple[tuple[int, ...], int], str] = {
    ((0, 1, 2, 3, 4, 5, 6), 30): "1a", ((0, 3, 4, 5, 6), 30): "1b",
    ((0, 1, 2), 100): "4, first row", ((0, 1, 2, 4), 100): "4", ((0, 1, 2, 6), 100): "4",
    ((0, 1, 2, 8), 100): "4", ((0, 1, 2, 10), 100): "4",
    ((0, 1, 2, 3, 4), 30): "5", ((0, 1, 2, 3, 4), 100): "6a", ((0, 3, 4, 5, 6), 100): "6b",
}


def study_figure(L: Sequence[int], study_epochs: int | None) -> str | None:
    """The study's figure that shows a run of orders ``L`` trained for ``study_epochs`` (None: no figure)."""
    if study_epochs is None:
        return None
    return STUDY_FIGURES.get((tuple(sorted(int(l) for l in L)), int(study_epochs)))


#: Width of every figure, in inches: at the inline backend's 100 dpi it fills the book's 688 px text column.
FIGURE_WIDTH = 7.0
#: Most panels side by side in one figure row (each stays at least ~150 px wide in the column).
MAX_COLUMNS = 4


#: Widest a table cell grows before its text wraps (the book's text column is 688 px).
CELL_MAX_WIDTH = "11em"


def book_table(table: pd.DataFrame, digits: int = 3):
    """A table styled for the book's text column: numbers to ``digits`` significant digits, ``–`` for missing
    values, and header and body cells that wrap their text beyond :data:`CELL_MAX_WIDTH`.

    Returns
    -------
    pandas.io.formats.style.Styler
        The styled table (displayed as HTML by a notebook).
    """
    numbers = table.select_dtypes("number").columns
    cells = f"white-space: normal; max-width: {CELL_MAX_WIDTH}; overflow-wrap: break-word;"
    return (table.style.format({column: f"{{:.{digits}g}}" for column in numbers}, na_rep="–")
            .set_table_styles([{"selector": "th", "props": cells}, {"selector": "td", "props": cells}]))


def panel_title(key: str | int) -> str:
    """``"l = 3"`` for an order, any other key (``"joint"``, ``"6 epochs"``) as it is."""
    return f"l = {key}" if isinstance(key, (int, np.integer)) else str(key)


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


def _grid_shape(n_panels: int, n_cols: int) -> tuple[int, int]:
    columns = max(1, min(n_cols, n_panels))
    return -(-n_panels // columns), columns


def plot_projection_rows(rows: Sequence[tuple[str, Mapping[str | int, np.ndarray]]], colours: Sequence[np.ndarray],
                         colour_label: str = "nSPS", cmap: str = "viridis", n_cols: int = MAX_COLUMNS,
                         point_size: float = 5.0, untrained: Sequence[Collection[int]] | None = None) -> Figure:
    """Blocks of projection panels, one per row, in the study's layout (its Figures 1, 4-6).

    Each row becomes a block with a horizontal title above its panels (the joint projection, then one panel per
    order), wrapped at ``n_cols`` panels per line, so the figure keeps :data:`FIGURE_WIDTH` whatever the number
    of orders. One colour scale (1st to 99th percentile of all colours) and one labelled colour bar.

    Parameters
    ----------
    rows
        ``(block title, panels)`` with ``panels`` as from :func:`~equinb.analysis.project_layer` (integer keys
        are orders; other keys are shown as they are, e.g. ``"joint"``).
    colours
        Per row, the colour value of each point (NaN points are drawn grey).
    colour_label
        Label of the colour bar.
    cmap, point_size
        Colour map and marker size.
    n_cols
        Panels per line, at most :data:`MAX_COLUMNS`.
    untrained
        Per row, the orders whose features never received a gradient (e.g. the last block's ``l > 0``): their
        panel titles say ``no gradient``.

    Raises
    ------
    ValueError
        If ``rows`` and ``colours`` (or ``untrained``) differ in length, a row has no panels, or ``n_cols`` is
        not in 1..MAX_COLUMNS.
    """
    if len(rows) != len(colours):
        raise ValueError(f"{len(rows)} rows but {len(colours)} colour arrays")
    untrained = [()] * len(rows) if untrained is None else untrained
    if len(untrained) != len(rows):
        raise ValueError(f"{len(rows)} rows but {len(untrained)} sets of untrained orders")
    if not 1 <= n_cols <= MAX_COLUMNS:
        raise ValueError(f"n_cols must be in 1..{MAX_COLUMNS}, got {n_cols}")
    if any(not panels for _, panels in rows):
        raise ValueError("every row needs at least one panel")
    shapes = [_grid_shape(len(panels), n_cols) for _, panels in rows]
    panel = (FIGURE_WIDTH - 0.9) / n_cols
    heights = [lines * (panel + 0.25) + 0.3 for lines, _ in shapes]
    fig = plt.figure(figsize=(FIGURE_WIDTH, sum(heights)), layout="constrained")
    blocks = fig.subfigures(len(rows), 1, height_ratios=heights, squeeze=False)[:, 0]
    norm = _colour_norm(colours)
    for block, (label, panels), colour, dead, (lines, _) in zip(blocks, rows, colours, untrained, shapes):
        block.suptitle(label, fontsize=10, ha="left", x=0.01)
        axes = block.subplots(lines, n_cols, squeeze=False).ravel()
        for ax, (key, coords) in zip(axes, panels.items()):
            points = _scatter(ax, np.asarray(coords), colour, norm, cmap, point_size)
            ax.set_title(panel_title(key) + (" (no gradient)" if key in dead else ""), fontsize=9)
            ax.set_box_aspect(1)
        for ax in axes[len(panels):]:
            ax.set_visible(False)
        bar = block.colorbar(points, ax=list(axes[: len(panels)]), shrink=0.8, aspect=25)
        bar.set_label(colour_label, fontsize=9)
        bar.ax.tick_params(labelsize=8)
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
    fig = plt.figure(figsize=(FIGURE_WIDTH, 5.4))
    grid = fig.add_gridspec(2, 3, width_ratios=[1, 1.6, 1])
    main = fig.add_subplot(grid[:, 1])
    points = _scatter(main, coords, colour, _colour_norm([colour]), cmap, 10)
    main.set_title(title, fontsize=10)
    bar = fig.colorbar(points, ax=main, orientation="horizontal", pad=0.03)
    bar.set_label(colour_label, fontsize=9)
    for name, x, y in CORNERS:
        index = extremes[name]
        ax = fig.add_subplot(grid[1 - y, 2 * x])
        ax.imshow(molecule_image(smiles[index]))
        ax.set_axis_off()
        ax.set_title(f"{name}: {smiles[index]}", fontsize=9, wrap=True)
        main.scatter(*coords[index], s=60, facecolors="none", edgecolors="red")
        fig.add_artist(ConnectionPatch(xyA=(1 - x, 0.5), coordsA=ax.transAxes, xyB=tuple(coords[index]),
                                       coordsB=main.transData, color="red", lw=0.8))
    return fig, extremes


def plot_by_layer(tables: Mapping[str, pd.DataFrame], value: str, ylabel: str, log: bool = False,
                  n_cols: int = 2) -> Figure:
    """Grouped bars of ``value`` per layer (x) and order (bar colour), one panel per configuration.

    Parameters
    ----------
    tables
        ``{configuration label: table}`` with columns ``layer``, ``l`` and ``value``.
    value, ylabel
        Column to plot and its axis label.
    log
        Logarithmic y axis (non-positive values are not drawn).
    n_cols
        Panels per line (the figure keeps :data:`FIGURE_WIDTH`).
    """
    lines, columns = _grid_shape(len(tables), n_cols)
    fig, axes = plt.subplots(lines, columns, figsize=(FIGURE_WIDTH, 2.8 * lines), squeeze=False,
                             sharey=True, layout="constrained")
    axes = axes.ravel()
    for ax, (label, table) in zip(axes, tables.items()):
        wide = table.pivot(index="layer", columns="l", values=value)
        wide = wide.loc[list(dict.fromkeys(table["layer"]))]
        wide.plot.bar(ax=ax, logy=log, rot=0, width=0.8)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("")
        ax.set_ylabel(ylabel, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.legend(title="l", fontsize=8, title_fontsize=8, ncol=2)
    for ax in axes[len(tables):]:
        ax.set_visible(False)
    return fig


#: Marker of each layer in :func:`plot_usage` (cycled).
USAGE_MARKERS = ("o", "s", "^", "D")


def plot_usage(summary: pd.DataFrame, measure: str, layers: Sequence[str], ylabel: str,
               labels: Mapping[str, str] | None = None, n_cols: int = 3) -> Figure:
    """Dots and intervals: the mean over seeds of one usage measure per order, one panel per configuration.

    Each layer is one marker, offset side by side at each order; the interval is the t interval over seeds
    (the widest per-seed bootstrap interval where there is one seed). Features that never received a gradient
    are drawn as open markers.

    Parameters
    ----------
    summary
        From :func:`~equinb.analysis.collect.summarize_usage`.
    measure
        Which measure.
    layers
        Layers to show (``"all"``: the ablation at every block at once), one marker each.
    ylabel
        Axis label.
    labels
        Panel title of each configuration (its ``row``; default: the row name).
    n_cols
        Panels per line (the figure keeps :data:`FIGURE_WIDTH`).
    """
    rows = list(dict.fromkeys(summary["row"]))
    labels = labels or {}
    lines, columns = _grid_shape(len(rows), n_cols)
    fig, axes = plt.subplots(lines, columns, figsize=(FIGURE_WIDTH, 2.4 * lines + 0.4), squeeze=False,
                             layout="constrained")
    axes = axes.ravel()
    width = 0.6 / max(1, len(layers))
    for i, (ax, row) in enumerate(zip(axes, rows)):
        orders = sorted(summary.loc[summary["row"] == row, "l"].unique())
        position = {l: j for j, l in enumerate(orders)}  # orders side by side, gaps in L not drawn
        seeds = 0
        for k, layer in enumerate(layers):
            part = summary[(summary["row"] == row) & (summary["measure"] == measure) & (summary["layer"] == layer)]
            part = part.sort_values("l")
            several = part["seeds"] >= 2
            low = np.where(several, part["seed_low"], part["bootstrap_low"])
            high = np.where(several, part["seed_high"], part["bootstrap_high"])
            x = part["l"].map(position).to_numpy() + (k - (len(layers) - 1) / 2) * width
            colour = f"C{k}"
            ax.errorbar(x, part["mean"], yerr=[part["mean"] - low, high - part["mean"]], fmt="none",
                        ecolor=colour, lw=1.2)
            trained = part["features_trained"].to_numpy(dtype=bool)
            marker = USAGE_MARKERS[k % len(USAGE_MARKERS)]
            ax.plot(x[trained], part["mean"][trained], marker, color=colour, ms=5, ls="none",
                    label=layer)
            ax.plot(x[~trained], part["mean"][~trained], marker, mfc="white", mec=colour, ms=5, ls="none",
                    label=f"{layer} (no gradient)" if (~trained).any() else None)
            seeds = max(seeds, int(part["seeds"].max()) if len(part) else 0)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(range(len(orders)), [str(l) for l in orders])
        title = labels.get(row, row).replace(", ", "\n", 1)
        ax.set_title(f"{title} · {seeds} seed{'s' if seeds != 1 else ''}", fontsize=9)
        ax.set_xlabel("l", fontsize=9)
        if i % columns == 0:
            ax.set_ylabel(ylabel, fontsize=9)
        ax.tick_params(labelsize=8)
    for ax in axes[len(rows):]:
        ax.set_visible(False)
    legend = {}
    for ax in axes[: len(rows)]:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(name, handle)
    fig.legend(list(legend.values()), list(legend), loc="outside lower center", ncol=len(legend), fontsize=8,
               frameon=False)
    return fig
