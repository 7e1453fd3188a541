"""Figures for the angular-momentum chapter: tensor-product path diagrams and real spherical harmonics.

Plotting only: the paths come from :mod:`equinb.so3.paths`, the harmonic values from
:mod:`equinb.so3.evaluate`.
"""

from __future__ import annotations

from collections.abc import Iterable

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.path import Path as MplPath
from matplotlib.patches import PathPatch
from mpl_toolkits.mplot3d.axes3d import Axes3D

from .evaluate import evaluate_harmonics
from .irreps import parity
from .orders import check_order, validate_L
from .paths import tensor_product_paths

#: Colour map for path curves (one colour per output order) and for harmonic values (diverging).
PATH_CMAP = "viridis"
HARMONIC_CMAP = "RdBu_r"


def _irrep_label(l: int) -> str:
    return f"{l}{'e' if parity(l) == 1 else 'o'}"


def _spread(n: int, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """``n`` points evenly along the segment ``start -> stop`` (its midpoint when ``n == 1``)."""
    t = np.array([0.5]) if n == 1 else np.linspace(0.0, 1.0, n)
    return start + t[:, None] * (stop - start)


def plot_tensor_product_paths(
    L: Iterable[int] | int,
    L_sh: Iterable[int] | int | None = None,
    L_out: Iterable[int] | int | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Diagram of the tensor-product paths of a set of orders (the layout of the paper's Figure 2).

    Input irreps sit on the top left, spherical-harmonic irreps on the right, output irreps at the bottom. Each
    allowed path ``l_in x l_sh -> l_out`` is a curve from its input to its output, joined half-way by a line
    from its spherical harmonic; curves are coloured by ``l_out``.

    Parameters
    ----------
    L
        Orders of the input features.
    L_sh, L_out
        Orders of the spherical harmonics and of the outputs; ``None`` means ``L``.
    ax
        Axes to draw on; a new 4 x 4 inch figure when ``None``.

    Returns
    -------
    matplotlib.axes.Axes
        The axes, titled with ``L`` and the number of paths.
    """
    orders_in = validate_L(L)
    orders_sh = orders_in if L_sh is None else validate_L(L_sh)
    orders_out = orders_in if L_out is None else validate_L(L_out)
    paths = tensor_product_paths(orders_in, orders_sh, orders_out)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))

    pos_in = dict(zip(orders_in, _spread(len(orders_in), np.array([0.0, 1.0]), np.array([0.55, 1.0]))))
    pos_sh = dict(zip(orders_sh, _spread(len(orders_sh), np.array([1.0, 0.95]), np.array([1.0, 0.4]))))
    pos_out = dict(zip(orders_out, _spread(len(orders_out), np.array([0.1, 0.0]), np.array([0.9, 0.0]))))

    cmap = plt.get_cmap(PATH_CMAP)
    colour = {l: cmap(i / max(len(orders_out) - 1, 1)) for i, l in enumerate(orders_out)}
    for path in paths:
        start, sh, end = pos_in[path.l_in], pos_sh[path.l_sh], pos_out[path.l_out]
        control = (start + sh + 2 * end) / 4
        curve = MplPath([start, control, end], [MplPath.MOVETO, MplPath.CURVE3, MplPath.CURVE3])
        ax.add_patch(PathPatch(curve, facecolor="none", edgecolor=colour[path.l_out], lw=1.2, alpha=0.8))
        middle = 0.25 * start + 0.5 * control + 0.25 * end  # the curve's point at t = 1/2
        ax.plot(*np.stack([sh, middle]).T, color=colour[path.l_out], lw=0.6, alpha=0.5)

    for positions, face, offset in ((pos_in, "tab:blue", (0, 10)), (pos_sh, "tab:orange", (12, 0)),
                                    (pos_out, "tab:green", (0, -12))):
        for l, (px, py) in positions.items():
            ax.plot(px, py, "o", ms=7, color=face, zorder=3)
            ax.annotate(_irrep_label(l), (px, py), textcoords="offset points", xytext=offset,
                        ha="center", va="center", fontsize=10)
    ax.set_xlim(-0.1, 1.15)
    ax.set_ylim(-0.15, 1.12)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"L = {list(orders_in)}: {len(paths)} paths", fontsize=11)
    return ax


def _sphere_grid(resolution: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Polar angle from ``y``, azimuth from ``z`` towards ``x``, and the unit vectors ``(x, y, z)``."""
    theta, phi = np.meshgrid(np.linspace(0.0, np.pi, resolution), np.linspace(-np.pi, np.pi, 2 * resolution),
                             indexing="ij")
    unit = np.stack([np.sin(theta) * np.sin(phi), np.cos(theta), np.sin(theta) * np.cos(phi)], axis=-1)
    return theta, phi, unit


def plot_harmonics_grid(l_max: int, resolution: int = 60) -> Figure:
    """Equirectangular maps of every real ``Y_lm`` with ``l <= l_max`` (rows ``l``, columns ``m``).

    Parameters
    ----------
    l_max
        Highest order shown.
    resolution
        Grid points along the polar angle (twice as many along the azimuth).

    Returns
    -------
    matplotlib.figure.Figure
        Polar angle ``theta`` measured from ``y`` (e3nn's polar axis) on the vertical axis, azimuth ``phi``
        from ``z`` towards ``x`` on the horizontal axis; colour is ``Y_lm`` in component normalisation, on one
        symmetric scale per row.
    """
    l_max = check_order(l_max)
    theta, phi, unit = _sphere_grid(resolution)
    fig, axes = plt.subplots(l_max + 1, 2 * l_max + 1, figsize=(1.3 * (2 * l_max + 1), 0.9 * (l_max + 1) + 0.4),
                             squeeze=False)
    extent = (-180.0, 180.0, 180.0, 0.0)
    for l in range(l_max + 1):
        values = evaluate_harmonics(l, unit)
        scale = np.abs(values).max()
        for column in range(2 * l_max + 1):
            ax = axes[l, column]
            ax.set_xticks([])
            ax.set_yticks([])
            m = column - l_max
            if abs(m) > l:
                ax.axis("off")
                continue
            ax.imshow(values[..., l + m], extent=extent, cmap=HARMONIC_CMAP, vmin=-scale, vmax=scale, aspect="auto")
            ax.set_title(f"$Y_{{{l},{m}}}$", fontsize=8)
    fig.supxlabel(r"azimuth $\phi$ (from $z$ towards $x$)", fontsize=9)
    fig.supylabel(r"polar angle $\theta$ (from $y$)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_harmonic_surface(l: int, m: int, ax: Axes3D | None = None, resolution: int = 60) -> Axes3D:
    """3-D polar plot of one real ``Y_lm``: radius ``|Y_lm|``, colour the sign (red positive, blue negative).

    Parameters
    ----------
    l, m
        Order and component (``-l <= m <= l``, e3nn's index ``l + m``).
    ax
        3-D axes to draw on; a new figure when ``None``.
    resolution
        Grid points along the polar angle (twice as many along the azimuth).

    Returns
    -------
    mpl_toolkits.mplot3d.axes3d.Axes3D
        Axes labelled with the Cartesian names; e3nn's polar axis ``y`` points up (plot axes ``z, x, y``).
    """
    l = check_order(l)
    if not -l <= m <= l:
        raise ValueError(f"m must satisfy |m| <= l = {l}, got {m!r}")
    _, _, unit = _sphere_grid(resolution)
    values = evaluate_harmonics(l, unit)[..., l + m]
    radius = np.abs(values)
    points = unit * radius[..., None]
    if ax is None:
        ax = plt.figure(figsize=(3, 3)).add_subplot(projection="3d")
    colours = plt.get_cmap(HARMONIC_CMAP)(np.where(values >= 0, 0.85, 0.15))
    # draw e3nn's polar axis y upwards with a right-handed frame: plot axes (z, x, y), a cyclic relabelling
    ax.plot_surface(points[..., 2], points[..., 0], points[..., 1], facecolors=colours, linewidth=0,
                    antialiased=False, shade=True)
    lim = radius.max()
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), zlim=(-lim, lim), xlabel="z", ylabel="x", zlabel="y")
    ax.set_box_aspect((1, 1, 1))
    ax.set_title(f"$Y_{{{l},{m}}}$", fontsize=9)
    return ax
