"""Mean-ablation, attribution and per-molecule measures on a tiny trained run, against answers known by construction."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from equinb import analysis
from equinb.analysis import usage
from equinb.data import Normalizer
from equinb.so3 import feature_slices
from equinb.target import Target
from equinb.train import TrainConfig, train
from equinb.trained import predict
from test_analysis import _rotated, _rotation

TINY = dict(L=[0, 1, 2], h=2, num_layers=1, epochs=2, n_molecules=80, batch_size=16, sh_backend="e3nn",
            fractions=(0.6, 0.1, 0.3))


@pytest.fixture(scope="module")
def test_set(tmp_path_factory):
    run = train(TrainConfig(**TINY), runs_parent=tmp_path_factory.mktemp("runs"), progress=False)
    return analysis.load_test_set(run)


@pytest.fixture(scope="module")
def means(test_set):
    return usage.feature_means(test_set.model, test_set.graphs)


def _block_outputs(model, graphs):
    """Every block's node features, captured by forward hooks (not through ``model.embed``)."""
    captured = {name: [] for name in model.layer_names}
    handles = [block.register_forward_hook(lambda m, i, out, name=name: captured[name].append(out.detach()))
               for name, block in model.blocks.items()]
    try:
        predict(model, graphs, Target("atomization", Normalizer(0.0, 1.0)), batch_size=7)
    finally:
        for handle in handles:
            handle.remove()
    return {name: torch.cat(parts).double() for name, parts in captured.items()}


def test_feature_means_are_means_over_atoms(test_set, means):
    outputs = _block_outputs(test_set.model, test_set.graphs)
    for layer, features in outputs.items():
        torch.testing.assert_close(means[layer], features.mean(0), rtol=1e-6, atol=1e-8)


def test_mean_ablating_the_last_blocks_l_above_0_changes_nothing(test_set, means):
    last = test_set.model.layer_names[-1]
    table = usage.mean_ablation(test_set, means, layers=[last], orders=[1, 2], all_blocks=False, n_boot=50)
    assert (table[["value", "ci_low", "ci_high"]].to_numpy() == 0).all()
    assert not table["features_trained"].any()


def test_mean_ablating_l0_at_the_last_block_gives_the_closed_form(test_set, means):
    model, last = test_set.model, test_set.model.layer_names[-1]
    with usage.mean_ablated(model, [last], 0, means):
        _, predicted = predict(model, test_set.graphs, test_set.target)
    # readout of the mean features, times the number of atoms, through the output head, back to eV
    per_atom = model.readout(means[last].float()[None]).double().squeeze()
    n_atoms = torch.tensor([g.num_nodes for g in test_set.graphs], dtype=torch.float64)
    output = model.head.weight.double().squeeze() * n_atoms * per_atom + model.head.bias.double().squeeze()
    references = torch.cat([test_set.target.reference(g) for g in test_set.graphs])
    expected = test_set.target.normalizer.denormalize(output) + references
    np.testing.assert_allclose(predicted, expected.detach().numpy(), rtol=1e-5, atol=1e-4)


def test_mean_ablation_is_a_no_op_where_features_equal_their_mean_and_zeroing_is_not(test_set):
    # H2: a rotation by pi about an axis across the bond swaps the atoms, so both carry the same l = 0 features
    h2 = Data(z=torch.tensor([1, 1]), pos=torch.tensor([[0.0, 0.0, 0.0], [0.3, -0.2, 0.62]]),
              edge_index=torch.tensor([[0, 1], [1, 0]]), y=torch.tensor([-4.5]))
    graphs = [h2, h2.clone()]
    model = test_set.model
    means = usage.feature_means(model, graphs)
    _, intact = predict(model, graphs, test_set.target)
    for layer in model.layer_names:
        with usage.mean_ablated(model, [layer], 0, means):
            _, mean_ablated = predict(model, graphs, test_set.target)
        with analysis.knocked_out(model, layer, 0):
            _, zeroed = predict(model, graphs, test_set.target)
        np.testing.assert_allclose(mean_ablated, intact, rtol=0, atol=1e-5)
        assert np.abs(zeroed - intact).max() > 1e-3


def test_mean_ablation_at_all_blocks_and_the_table(test_set, means):
    table = usage.mean_ablation(test_set, means, n_boot=200)
    layers = [*test_set.model.layer_names, "all"]
    assert sorted(set(table["layer"])) == sorted(layers)
    assert len(table) == len(layers) * 3
    assert (table["ci_low"] <= table["value"]).all() and (table["value"] <= table["ci_high"]).all()
    assert (table["n_molecules"] == len(test_set.graphs)).all()
    all_l0 = table[(table["layer"] == "all") & (table["l"] == 0)].iloc[0]
    assert all_l0["features_trained"] and all_l0["value"] != 0


def test_unknown_layers_and_missing_means_are_clear_errors(test_set, means):
    model = test_set.model
    with pytest.raises(ValueError, match="the model has no layer 'conv_9'"):
        with usage.mean_ablated(model, ["conv_9"], 0, means):
            pass
    with pytest.raises(ValueError, match=r"no feature means for layer\(s\) \['initial'\]"):
        with usage.mean_ablated(model, ["initial"], 0, {}):
            pass
    with pytest.raises(ValueError, match=r"have no order l=5; their orders are \[0, 1, 2\]"):
        usage.mean_ablation(test_set, means, orders=[5])


def test_attribution_closed_forms(test_set):
    model, target = test_set.model, test_set.target
    values = usage.gradient_measures(model, test_set.graphs, target)
    last = model.layer_names[-1]
    for l in (1, 2):
        assert (values[last, l]["attribution_ev"] == 0).all()
    # the readout and the head are linear: the signed attribution of the last block's scalars is the output less
    # the head's bias, in eV
    outputs = torch.cat([model(g) for g in test_set.graphs]).detach().double()
    expected = target.normalizer.std * (outputs - model.head.bias.double().detach())
    np.testing.assert_allclose(values[last, 0]["attribution_signed_ev"], expected.numpy(), rtol=1e-4, atol=1e-5)
    assert all(len(v) == len(test_set.graphs) for measures in values.values() for v in measures.values())
    assert all((m["attribution_ev"] >= np.abs(m["attribution_signed_ev"]) - 1e-9).all() for m in values.values())


def test_gradient_measures_are_rotation_invariant(test_set):
    model, target = test_set.model, test_set.target
    graphs = test_set.graphs[:8]
    plain = usage.gradient_measures(model, graphs, target)
    rotated = usage.gradient_measures(model, _rotated(graphs, _rotation(5)), target)
    for key, measures in plain.items():
        for name, values in measures.items():
            np.testing.assert_allclose(values, rotated[key][name], rtol=2e-3, atol=1e-5, err_msg=f"{key} {name}")


def test_gradient_measures_against_single_graph_autograd(test_set):
    model, target = test_set.model, test_set.target
    graphs = test_set.graphs[:5]
    measures = usage.gradient_measures(model, graphs, target, batch_size=2)
    slices = feature_slices(model.irreps_hidden)
    for layer in model.layer_names:
        shares = sum(measures[layer, l]["feature_energy_share"] for l in slices)
        np.testing.assert_allclose(shares, 1.0, rtol=1e-12)
    graph = graphs[3]
    for layer in ("initial", model.layer_names[1]):
        captured = {}
        handle = model.blocks[layer].register_forward_hook(lambda m, i, out: captured.setdefault("x", out))
        try:
            prediction = model(graph)
            loss = (prediction - target.encode(graph)).pow(2).sum()
            loss_grad, energy_grad = (torch.autograd.grad(y, [captured["x"]], retain_graph=True)[0]
                                      for y in (loss, prediction.sum() * target.normalizer.std))
        finally:
            handle.remove()
        x = captured["x"].detach()
        for l, columns in slices.items():
            expected = float(loss_grad[:, columns].double().norm())
            assert measures[layer, l]["loss_gradient_norm"][3] == pytest.approx(expected, rel=1e-5, abs=1e-12)
            product = (energy_grad[:, columns] * x[:, columns]).double().reshape(len(x), -1, 2 * l + 1).sum(-1)
            assert measures[layer, l]["attribution_ev"][3] == pytest.approx(float(product.abs().sum()), rel=1e-5,
                                                                           abs=1e-12)
    last = model.layer_names[-1]
    assert (measures[last, 1]["loss_gradient_norm"] == 0).all()


def test_usage_table_has_every_measure_with_intervals(test_set, means):
    table = usage.usage_table(test_set, means, n_boot=100)
    assert set(table["measure"]) == {"mean_ablation_mae_increase_ev", "attribution_ev", "feature_energy_share",
                                     "loss_gradient_norm"}
    assert list(table.columns) == ["layer", "l", "measure", "value", "ci_low", "ci_high", "n_molecules",
                                   "features_trained"]
    finite = table.dropna()
    assert len(finite) == len(table)
    assert ((finite["ci_low"] <= finite["value"] + 1e-12) & (finite["value"] <= finite["ci_high"] + 1e-12)).all()


def _z_of(graphs):
    return torch.cat([graph.z for graph in graphs])


def test_element_means_are_means_over_each_elements_atoms(test_set):
    element = usage.element_feature_means(test_set.model, test_set.graphs)
    outputs = _block_outputs(test_set.model, test_set.graphs)
    z = _z_of(test_set.graphs)
    for layer, features in outputs.items():
        for element_z in torch.unique(z).tolist():
            torch.testing.assert_close(element[layer][element_z], features[z == element_z].mean(0), rtol=1e-6,
                                       atol=1e-8)
        absent = 2  # helium: no atoms, so the mean over all atoms
        torch.testing.assert_close(element[layer][absent], features.mean(0), rtol=1e-6, atol=1e-8)


def test_element_mean_ablation_keeps_a_per_element_contribution(test_set):
    """Known answer: make the initial block's l = 1 features a function of the element only. Replacing them by
    their per-element mean then changes nothing, while replacing them by the mean over all atoms removes their
    (per-element) energy contribution and changes the test error."""
    model, layer = test_set.model, "initial"
    columns = feature_slices(model.irreps_hidden)[1]
    offsets = torch.linspace(-3.0, 3.0, model.atom_embedding.num_embeddings)
    atoms = {}

    def per_element(module, inputs, output):
        output = output.clone()
        output[:, columns] = offsets[atoms["z"]][:, None].to(output)
        return output

    handles = [model.register_forward_pre_hook(lambda m, inputs: atoms.__setitem__("z", inputs[0].z)),
               model.blocks[layer].register_forward_hook(per_element)]
    try:
        # the embed() path used for the means does not call forward: feed z to the hook from the graphs
        atoms["z"] = _z_of(test_set.graphs)
        element = usage.element_feature_means(model, test_set.graphs, layers=[layer], batch_size=len(test_set.graphs))
        overall = usage.feature_means(model, test_set.graphs, layers=[layer], batch_size=len(test_set.graphs))
        kept = usage.mean_ablation(test_set, element, layers=[layer], orders=[1], all_blocks=False, n_boot=50)
        removed = usage.mean_ablation(test_set, overall, layers=[layer], orders=[1], all_blocks=False, n_boot=50)
    finally:
        for handle in handles:
            handle.remove()
    assert kept["measure"].tolist() == ["element_mean_ablation_mae_increase_ev"]
    assert abs(kept["value"].iloc[0]) < 1e-6 and abs(kept["ci_high"].iloc[0]) < 1e-6
    assert removed["measure"].tolist() == ["mean_ablation_mae_increase_ev"]
    assert abs(removed["value"].iloc[0]) > 1e-3


def test_per_element_means_need_the_forward_pass(test_set):
    element = usage.element_feature_means(test_set.model, test_set.graphs[:4])
    batch = next(iter(__import__("equinb").data.make_loader(test_set.graphs[:4], batch_size=4, shuffle=False)))
    with usage.mean_ablated(test_set.model, ["initial"], 1, element):
        with pytest.raises(ValueError, match="per-element means need the atomic numbers"):
            test_set.model.embed(batch)
