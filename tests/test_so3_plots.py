"""Tests for equinb.so3.plots: the figures draw what the package computes (smoke tests, Agg backend)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import PathPatch  # noqa: E402

from equinb.so3.paths import path_count  # noqa: E402
from equinb.so3.plots import plot_harmonic_surface, plot_harmonics_grid, plot_tensor_product_paths  # noqa: E402


@pytest.mark.parametrize("L", [[0, 1, 2], [0, 3, 4, 5, 6]])
def test_path_diagram_draws_one_curve_per_path(L):
    ax = plot_tensor_product_paths(L)
    curves = [p for p in ax.patches if isinstance(p, PathPatch)]
    assert len(curves) == path_count(L)
    assert ax.get_title() == f"L = {L}: {path_count(L)} paths"
    labels = {t.get_text() for t in ax.texts}
    assert labels == {f"{l}{'eo'[l % 2]}" for l in L}
    plt.close(ax.figure)


def test_harmonics_grid_layout():
    fig = plot_harmonics_grid(2, resolution=8)
    visible = [ax for ax in fig.axes if ax.axison]
    assert len(fig.axes) == 3 * 5 and len(visible) == 1 + 3 + 5
    plt.close(fig)


def test_harmonic_surface():
    ax = plot_harmonic_surface(2, -1, resolution=8)
    assert ax.get_title() == "$Y_{2,-1}$"
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="3"):
        plot_harmonic_surface(2, 3)
