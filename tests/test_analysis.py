"""Per-irrep embeddings and utilisation measures, checked against independent facts on a tiny trained run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from e3nn import o3

from equinb import analysis
from equinb.runs import RunFolder
from equinb.train import TrainConfig, train
from equinb.trained import predict

EPOCHS, N_TRAIN, BATCH = 2, 48, 16
# weight decay 0.01 (not the study's 0.0), so that the drift analysis must separate decay from learning
TINY = dict(L=[0, 1, 2], h=2, num_layers=1, epochs=EPOCHS, n_molecules=80, batch_size=BATCH, sh_backend="e3nn",
            fractions=(0.6, 0.1, 0.3), weight_decay=0.01)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train(TrainConfig(**TINY), runs_parent=tmp_path_factory.mktemp("runs"), progress=False)


@pytest.fixture(scope="module")
def test_set(run):
    return analysis.load_test_set(run)


def _rotation(seed):
    """A random rotation matrix (float32) from seeded Euler angles."""
    alpha, beta, gamma = np.random.default_rng(seed).uniform(0, 2 * np.pi, size=3)
    return o3.angles_to_matrix(*(torch.tensor(a, dtype=torch.float32) for a in (alpha, beta, gamma)))


def _rotated(graphs, rotation):
    out = []
    for graph in graphs:
        graph = graph.clone()
        graph.pos = graph.pos @ rotation.T
        out.append(graph)
    return out


# ---- the split per l ----------------------------------------------------------------------------------------


def test_split_by_l_follows_irreps_slices_not_multiplicity():
    irreps = o3.Irreps("4x0e+4x3o+4x4e")
    features = np.arange(5 * irreps.dim, dtype=float).reshape(5, irreps.dim)
    blocks = analysis.split_by_l(features, irreps)
    chunks = np.split(features, np.cumsum([mul for mul, _ in irreps]), axis=1)  # the study's cut
    for (mul, ir), columns, chunk in zip(irreps, irreps.slices(), chunks):
        expected = features[:, columns].reshape(5, mul, 2 * ir.l + 1)
        np.testing.assert_array_equal(blocks[ir.l], expected)
        if ir.l == 0:
            np.testing.assert_array_equal(blocks[0].reshape(5, -1), chunk)
        else:
            assert blocks[ir.l].size != chunk.size
    with pytest.raises(ValueError, match="do not match"):
        analysis.split_by_l(features[:, :-1], irreps)


def test_multiplicity_split_reproduces_the_study_and_its_panels_sources():
    skipped = o3.Irreps("16x0e+16x3o+16x4e+16x5o+16x6e")
    study = {l: slice(16 * k, 16 * (k + 1)) for k, l in enumerate([0, 3, 4, 5, 6])}
    assert analysis.multiplicity_split(skipped) == study
    sources = analysis.split_sources(skipped, analysis.multiplicity_split(skipped))
    assert {row["true_l"] for row in sources if row["label"] != 0} == {3}  # every "l > 0" panel is l = 3
    contiguous = o3.Irreps("16x0e+16x1o+16x2e+16x3o+16x4e+16x5o+16x6e")
    sources = analysis.split_sources(contiguous, analysis.multiplicity_split(contiguous))
    assert {row["label"]: row["true_l"] for row in sources} == {0: 0, 1: 1, 2: 1, 3: 1, 4: 2, 5: 2, 6: 2}
    correct = analysis.split_sources(contiguous, {l: s for l, s in zip(contiguous.ls[::16], contiguous.slices())})
    assert all(row["label"] == row["true_l"] for row in correct)


def test_invariant_features_of_a_block():
    rng = np.random.default_rng(1)
    block = rng.normal(size=(7, 3, 5))
    rotation = _rotation(3).double()
    wigner = o3.Irrep(2, 1).D_from_matrix(rotation).numpy()
    turned = block @ wigner.T
    assert not np.allclose(turned, block)
    norms = analysis.invariant_features(block, 2)
    np.testing.assert_allclose(analysis.invariant_features(turned, 2), norms, atol=1e-12)
    gram = analysis.invariant_features(block, 2, gram=True)
    assert gram.shape == (7, 6)
    np.testing.assert_allclose(gram[:, [0, 3, 5]], np.linalg.norm(block, axis=2) ** 2)
    np.testing.assert_allclose(analysis.invariant_features(turned, 2, gram=True), gram, atol=1e-12)
    np.testing.assert_array_equal(analysis.invariant_features(block[:, :, :1], 0), block[:, :, 0])  # signs kept
    with pytest.raises(ValueError, match="order 1"):
        analysis.invariant_features(block, 1)


# ---- embeddings of a run ------------------------------------------------------------------------------------


def test_test_set_is_the_runs_test_split(run, test_set):
    split = np.load(run.file("split.npz"))
    np.testing.assert_array_equal(test_set.rows, split["test"])
    assert [int(g.row) for g in test_set.graphs] == list(test_set.rows)
    assert len(analysis.load_test_set(run, n_molecules=5).graphs) == 5


def test_embeddings_match_model_embed(test_set):
    embeddings = analysis.embed(test_set, ["conv_0"])
    assert list(embeddings) == ["conv_0"]
    layer = embeddings["conv_0"]
    with torch.no_grad():
        direct = [out for out in test_set.model.embed(test_set.graphs[3]) if out.name == "conv_0"][0]
    np.testing.assert_allclose(layer.features[3], direct.graph_features[0].double().numpy(), rtol=1e-6)
    assert layer.orders == [0, 1, 2]
    assert layer.view(None, "raw").shape == (len(test_set.rows), 2 * (1 + 3 + 5))
    assert layer.view(None, "invariant").shape == (len(test_set.rows), 6)


def test_invariant_view_is_rotation_invariant_and_raw_view_rotates(test_set):
    rotation = _rotation(7)
    model, layers = test_set.model, ["conv_0", "conv_1"]
    before = analysis.embed_graphs(model, test_set.graphs, layers)
    after = analysis.embed_graphs(model, _rotated(test_set.graphs, rotation), layers)
    for name in layers:
        a = analysis.LayerEmbeddings(name, model.irreps_hidden, before[name], test_set.rows)
        b = analysis.LayerEmbeddings(name, model.irreps_hidden, after[name], test_set.rows)
        scale = np.abs(a.features).max()
        for l in a.orders:
            for gram in (False, True):
                np.testing.assert_allclose(b.view(l, "invariant", gram), a.view(l, "invariant", gram),
                                           atol=2e-5 * scale)
            wigner = o3.Irrep(l, (-1) ** l).D_from_matrix(rotation).double().numpy()
            np.testing.assert_allclose(b.block(l), a.block(l) @ wigner.T, atol=2e-5 * scale)
            if l > 0:
                assert np.abs(b.view(l, "raw") - a.view(l, "raw")).max() > 1e-2 * scale


# ---- errors ---------------------------------------------------------------------------------------------------


def test_missing_or_unfinished_run_is_a_clear_error(tmp_path):
    missing = RunFolder(tmp_path / "no_such_run")
    with pytest.raises(ValueError, match="no_such_run"):
        analysis.load_test_set(missing)
    unfinished = RunFolder(tmp_path / "half_done")
    unfinished.path.mkdir()
    unfinished.file("config.json").write_text(json.dumps(TrainConfig(**TINY).to_dict()))
    for call in (analysis.load_test_set, analysis.radial_drift, analysis.initial_model):
        with pytest.raises(ValueError, match="half_done.*not finished"):
            call(unfinished)


def test_unknown_layer_or_order_is_a_clear_error(test_set):
    with pytest.raises(ValueError, match="'conv_7'"):
        analysis.embed(test_set, ["conv_7"])
    with pytest.raises(ValueError, match="l=5"):
        analysis.embed(test_set, ["conv_0"])["conv_0"].block(5)
    with pytest.raises(ValueError, match="l=3"):
        analysis.knockout(test_set, ["conv_1"], [3])
    with pytest.raises(ValueError, match="'last'"):
        analysis.knockout(test_set, ["last"], [0])
    assert analysis.default_layer(test_set.model) == "conv_0"


# ---- utilisation ----------------------------------------------------------------------------------------------


def test_knockout_of_l_above_0_in_the_last_block_changes_nothing(test_set):
    model, last = test_set.model, test_set.model.layer_names[-1]
    _, intact = predict(model, test_set.graphs, test_set.target)
    for l in (1, 2):
        with analysis.knocked_out(model, last, l):
            _, pred = predict(model, test_set.graphs, test_set.target)
        np.testing.assert_array_equal(pred, intact)  # the readout reads only the 0e channels
    with analysis.knocked_out(model, last, 0):
        _, pred = predict(model, test_set.graphs, test_set.target)
    assert np.abs(pred - intact).max() > 1e-3
    _, again = predict(model, test_set.graphs, test_set.target)
    np.testing.assert_array_equal(again, intact)  # the hook is gone
    table = analysis.knockout(test_set)
    assert len(table) == 3 * 3
    last_rows = table[table.layer == last].set_index("l")
    assert last_rows.loc[1, "max_change_ev"] == 0 and last_rows.loc[2, "max_change_ev"] == 0
    assert last_rows.loc[0, "max_change_ev"] > 0
    earlier = table[(table.layer == "conv_0") & (table.l > 0)]
    assert (earlier.max_change_ev > 0).all()  # earlier l > 0 features reach the readout through later blocks


def test_feature_energy_shares(test_set):
    table = analysis.feature_energy(test_set.model, test_set.graphs, ["initial", "conv_1"])
    assert table.groupby("layer").share.sum().to_numpy() == pytest.approx([1.0, 1.0])
    irreps = test_set.model.irreps_hidden
    with torch.no_grad():
        nodes = [o for o in test_set.model.embed(_batch(test_set.graphs)) if o.name == "conv_1"][0].node_features
    for (mul, ir), columns in zip(irreps, irreps.slices()):
        row = table[(table.layer == "conv_1") & (table.l == ir.l)].iloc[0]
        assert row.mean_sq_norm == pytest.approx(float(nodes[:, columns].double().pow(2).sum(1).mean()), rel=1e-5)
        assert row.column_share == pytest.approx(mul * (2 * ir.l + 1) / irreps.dim)


def _batch(graphs):
    from torch_geometric.data import Batch

    return Batch.from_data_list(graphs)


def test_gradient_is_exactly_zero_only_for_the_last_blocks_l_above_0(test_set):
    table = analysis.gradient_norms(test_set.model, test_set.graphs, test_set.target).set_index(["layer", "l"])
    assert table.loc[("conv_1", 1), "grad_norm"] == 0 and table.loc[("conv_1", 2), "grad_norm"] == 0
    assert table.loc[("conv_1", 0), "grad_norm"] > 0
    assert (table.loc["conv_0", "grad_norm"] > 0).all() and (table.loc["initial", "grad_norm"] > 0).all()
    assert all(p.grad is None for p in test_set.model.parameters())


def test_radial_drift_is_exactly_zero_for_last_block_paths_into_l_above_0(run):
    table = analysis.radial_drift(run)
    last = table[table.layer == "conv_1"]
    untrained = last[last.l_out > 0]
    assert len(untrained) > 0 and (untrained.rel_learned == 0).all()
    steps = EPOCHS * math.ceil(N_TRAIN / BATCH)
    shrink = 1 - (1 - 1e-3 * 0.01) ** steps  # the run's weight decay 0.01 at lr 1e-3, nothing else
    assert untrained.rel_change.to_numpy() == pytest.approx(shrink, rel=2e-2)  # float32 rounding of the factor
    assert (last[last.l_out == 0].rel_learned > 10 * shrink).all()
    assert (table[table.layer != "conv_1"].rel_learned > 10 * shrink).all()
    paths = analysis.radial_paths(analysis.initial_model(run).blocks["conv_1"])
    assert sum(p["n_weights"] for p in paths) == analysis.initial_model(run).blocks["conv_1"].tp.weight_numel


def test_initial_model_leaves_the_global_rng_alone(run):
    state = torch.random.get_rng_state()
    analysis.initial_model(run)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_predictability(test_set):
    layer = analysis.embed(test_set, ["conv_0"])["conv_0"]
    linear = layer.view(0, "invariant") @ np.array([1.0, -2.0])
    noise = np.random.default_rng(0).normal(size=len(linear))
    noise[:2] = np.nan
    table = analysis.predictability(layer, {"linear": linear, "noise": noise}, n_splits=3).set_index(["target", "l"])
    assert table.loc[("linear", 0), "r2"] > 0.99 and table.loc[("linear", "joint"), "r2"] > 0.9
    assert table.loc[("noise", 0), "r2"] < 0.5
    assert table.loc[("noise", 0), "n_molecules"] == len(linear) - 2
    assert table.loc[("linear", "joint"), "n_features"] == 6
    assert (table["r2_low"] <= table["r2"]).all() and (table["r2"] <= table["r2_high"]).all()
    assert table.loc[("noise", 0), "r2_low"] < 0 and table.loc[("linear", 0), "r2_low"] > 0.98
    with pytest.raises(ValueError, match="shape"):
        analysis.predictability(layer, {"short": linear[:-1]})


def test_message_share():
    irreps = o3.Irreps("2x0e+2x1o")
    rng = np.random.default_rng(2)
    before = rng.normal(size=(9, irreps.dim))
    added = np.zeros_like(before)
    added[:, 2:] = rng.normal(size=(9, 6))  # the block adds to l = 1 only
    previous = analysis.LayerEmbeddings("conv_0", irreps, before, np.arange(9))
    current = analysis.LayerEmbeddings("conv_1", irreps, before + added, np.arange(9))
    table = analysis.message_share(previous, current).set_index("l")
    assert table.loc[0, "share"] == 0
    assert table.loc[1, "share"] == pytest.approx((added[:, 2:] ** 2).sum() / ((before + added)[:, 2:] ** 2).sum())
    with pytest.raises(ValueError, match="different molecules"):
        analysis.message_share(previous, analysis.LayerEmbeddings("conv_1", irreps, before, np.arange(1, 10)))
