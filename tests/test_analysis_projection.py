"""PHATE projections, nSPS against RDKit called directly, and the figure helpers."""

from __future__ import annotations

import logging

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from e3nn import o3  # noqa: E402

from equinb import analysis  # noqa: E402

SMILES = ["CCO", "c1ccccc1", "CC(C)(C)O", "N#CC1CC1", "C[C@H](N)C(=O)O", "OC1COC1C#C"]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _layer(n=40, seed=0):
    irreps = o3.Irreps("3x0e+3x1o+3x2e")
    features = np.random.default_rng(seed).normal(size=(n, irreps.dim))
    return analysis.LayerEmbeddings("conv_0", irreps, features, np.arange(n))


def test_phate_shape_and_determinism():
    features = np.random.default_rng(0).normal(size=(50, 8))
    filters = list(logging.getLogger("graphtools").filters)
    first = analysis.phate_projection(features, knn=5, seed=3)
    assert first.shape == (50, 2) and np.isfinite(first).all()
    np.testing.assert_array_equal(analysis.phate_projection(features, knn=5, seed=3), first)
    assert not np.allclose(analysis.phate_projection(features, knn=5, seed=4), first)
    assert logging.getLogger("graphtools").filters == filters  # silenced only during the call
    with pytest.raises(ValueError, match="more than 10 points"):
        analysis.phate_projection(features[:10])
    with pytest.raises(ValueError, match="NaN"):
        analysis.phate_projection(np.full((20, 2), np.nan), knn=5)


def test_project_layer_panels_and_subsample():
    layer = _layer()
    keep = analysis.subsample(40, 25, seed=1)
    panels = analysis.project_layer(layer, "invariant", indices=keep, knn=5)
    assert list(panels) == ["joint", 0, 1, 2]
    assert all(p.shape == (25, 2) for p in panels.values())
    np.testing.assert_array_equal(panels[1], analysis.phate_projection(layer.view(1, "invariant")[keep], knn=5))


def test_subsample():
    picked = analysis.subsample(100, 30, seed=5)
    assert len(np.unique(picked)) == 30 and (np.diff(picked) > 0).all() and picked.max() < 100
    np.testing.assert_array_equal(analysis.subsample(100, 30, seed=5), picked)
    np.testing.assert_array_equal(analysis.subsample(10, None), np.arange(10))
    np.testing.assert_array_equal(analysis.subsample(10, 50), np.arange(10))
    with pytest.raises(ValueError, match="positive"):
        analysis.subsample(10, 0)


def test_nsps_matches_rdkit_and_counts_rejected_smiles():
    from rdkit import Chem
    from rdkit.Chem import SpacialScore

    result = analysis.nsps([*SMILES, "C1CC", "not a molecule"])
    expected = [SpacialScore.SPS(Chem.MolFromSmiles(s), normalize=True) for s in SMILES]
    np.testing.assert_allclose(result.values[: len(SMILES)], expected)
    assert result.failed == (len(SMILES), len(SMILES) + 1) and result.n_failed == 2
    assert np.isnan(result.values[len(SMILES):]).all()
    assert result.values[0] != result.values[2]  # a branched sp3 centre scores differently from ethanol


def _panel_axes(block):
    """The visible scatter panels of one block (its colour bar excluded)."""
    return [ax for ax in block.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def test_projection_rows_figure():
    layer = _layer()
    panels = analysis.project_layer(layer, knn=5)
    short = {k: v for k, v in panels.items() if k != 2}
    colour = np.linspace(0, 1, 40)
    colour[0] = np.nan
    fig = analysis.plot_projection_rows([("a", panels), ("b", short)], [colour, colour], untrained=[{1, 2}, ()])
    assert fig.get_figwidth() == analysis.figures.FIGURE_WIDTH
    first, second = fig.subfigs
    assert first._suptitle.get_text() == "a" and first._suptitle.get_rotation() == 0  # horizontal block title
    assert [ax.get_title() for ax in _panel_axes(first)] == ["joint", "l = 0", "l = 1 (no gradient)",
                                                            "l = 2 (no gradient)"]
    assert [ax.get_title() for ax in _panel_axes(second)] == ["joint", "l = 0", "l = 1"]
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 2 and all(bar.get_ylabel() == "nSPS" for bar in bars)


def test_projection_rows_wrap_at_four_panels():
    coords = np.random.default_rng(0).normal(size=(10, 2))
    panels = {"joint": coords} | {l: coords for l in range(7)}  # eight panels: two lines of four
    fig = analysis.plot_projection_rows([("L = [0..6]", panels)], [np.arange(10.0)])
    drawn = _panel_axes(fig.subfigs[0])
    assert len(drawn) == 8
    lefts = sorted({round(ax.get_position().x0, 3) for ax in drawn})
    assert len(lefts) == 4  # never more than four panels side by side
    fig = analysis.plot_projection_rows([("x", {"6 epochs": coords, "20 epochs": coords})], [np.arange(10.0)])
    assert [ax.get_title() for ax in _panel_axes(fig.subfigs[0])] == ["6 epochs", "20 epochs"]


def test_projection_rows_refuses_bad_input():
    coords = np.zeros((3, 2))
    colour = np.zeros(3)
    with pytest.raises(ValueError, match="colour arrays"):
        analysis.plot_projection_rows([("a", {0: coords})], [colour, colour])
    with pytest.raises(ValueError, match=r"^2 rows but 1 sets of untrained orders$"):
        analysis.plot_projection_rows([("a", {0: coords}), ("b", {0: coords})], [colour, colour], untrained=[()])
    with pytest.raises(ValueError, match="n_cols must be in 1..4"):
        analysis.plot_projection_rows([("a", {0: coords})], [colour], n_cols=5)
    with pytest.raises(ValueError, match="at least one panel"):
        analysis.plot_projection_rows([("a", {})], [colour])


def test_quadrant_extremes_and_molecule_figure():
    coords = np.array([[0, 0], [10, 0], [0, 1], [10, 1], [5, 0.5], [9, 0.9]])
    assert analysis.quadrant_extremes(coords) == {"NW": 2, "NE": 3, "SW": 0, "SE": 1}
    fig, extremes = analysis.plot_quadrant_molecules(coords, SMILES, np.arange(6.0), title="l = 4")
    assert extremes == analysis.quadrant_extremes(coords)
    titles = sorted(ax.get_title() for ax in fig.axes if ax.images)
    assert titles == sorted(f"{name}: {SMILES[i]}" for name, i in extremes.items())
    assert analysis.molecule_image("CCO").ndim == 3
    with pytest.raises(ValueError, match="cannot read"):
        analysis.molecule_image("not a molecule")


def test_plot_by_layer():
    table = pd.DataFrame({"layer": ["initial", "initial", "conv_0", "conv_0"], "l": [0, 1, 0, 1],
                          "share": [0.4, 0.6, 0.3, 0.7]})
    fig = analysis.plot_by_layer({"A": table, "B": table}, "share", "share")
    assert len(fig.axes) == 2 and fig.get_figwidth() == analysis.figures.FIGURE_WIDTH
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["initial", "conv_0"]
    fig = analysis.plot_by_layer({name: table for name in "ABC"}, "share", "share")  # wraps: 2 + 1
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["A", "B", "C"]
    assert len({round(ax.get_position().y0, 3) for ax in fig.axes if ax.get_visible()}) == 2


def test_study_figure_names_the_figure_of_a_configuration():
    # from the study's captions: Figure 1a [0..6] and 1b [0,3,4,5,6] at 30 epochs, Figure 5 [0..4] at 30,
    # Figure 6a/6b the same two at 100 epochs, Figure 4 [0,1,2] and [0,1,2,l] for even l at 100 epochs
    assert analysis.figures.study_figure([0, 1, 2, 3, 4, 5, 6], 30) == "1a"
    assert analysis.figures.study_figure([6, 5, 4, 3, 0], 30) == "1b"
    assert analysis.figures.study_figure([0, 1, 2, 3, 4], 30) == "5"
    assert analysis.figures.study_figure([0, 1, 2, 3, 4], 100) == "6a"
    assert analysis.figures.study_figure([0, 3, 4, 5, 6], 100) == "6b"
    assert analysis.figures.study_figure([0, 1, 2, 8], 100) == "4"
    assert analysis.figures.study_figure([0, 1, 2, 3], 30) is None  # not in any figure
    assert analysis.figures.study_figure([0, 1, 2], None) is None


def test_book_table_rounds_to_significant_digits_and_wraps_cells():
    table = pd.DataFrame({"ratio": [1.23456, float("nan")], "name": ["a", "b"]}, index=["x", "y"])
    html = analysis.figures.book_table(table, digits=2).to_html()
    assert ">1.2<" in html and "–" in html and "1.23" not in html
    assert "white-space: normal" in html and analysis.figures.CELL_MAX_WIDTH in html
