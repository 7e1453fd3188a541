"""Tests of :mod:`equinb.model`: the paper's parameter counts, symmetry, readout, options and errors.

References are independent of the model code: the paper's Table 1 numbers, e3nn's Wigner D-matrices, explicit
rotations, inversions, translations and permutations, and the message formula written out with e3nn.
"""

from __future__ import annotations

import json
import math

import e3nn
import pytest
import torch
from e3nn import o3
from e3nn.math import soft_one_hot_linspace
from torch_geometric.data import Batch, Data

from equinb.model import (
    TABLE1_PARAMETERS,
    EquivariantModel,
    ModelConfig,
    count_parameters,
    edge_vectors,
)
from equinb.so3 import feature_slices

BACKENDS = [
    "e3nn",
    "torch",
]
# (L, h): a contiguous and a gapped set, tiny multiplicities.
SMALL = [((0, 1, 2), 3), ((0, 3, 4), 2)]


@pytest.fixture(autouse=True, scope="module")
def _e3nn_settings():
    """Float64 by default, since e3nn computes constants (coupling coefficients, the generators behind
    ``D_from_matrix``) in the default dtype; and no einsum-path optimisation while building models (same
    numbers, ~30x faster construction)."""
    saved_dtype, saved_opt = torch.get_default_dtype(), e3nn.get_optimization_defaults()
    torch.set_default_dtype(torch.float64)
    e3nn.set_optimization_defaults(optimize_einsums=False)
    yield
    e3nn.set_optimization_defaults(**saved_opt)
    torch.set_default_dtype(saved_dtype)


def molecule(num_atoms: int, seed: int, dtype: torch.dtype = torch.float64) -> Data:
    """Random molecule: Gaussian positions (std 1.2 A, inside the 6 A cutoff), fully connected directed graph."""
    gen = torch.Generator().manual_seed(seed)
    pos = (torch.randn(num_atoms, 3, generator=gen) * 1.2).to(dtype)
    z = torch.tensor([1, 6, 7, 8, 9])[torch.randint(0, 5, (num_atoms,), generator=gen)]
    pairs = [(i, j) for i in range(num_atoms) for j in range(num_atoms) if i != j]
    return Data(z=z, pos=pos, edge_index=torch.tensor(pairs).T.contiguous())


def build(config, dtype: torch.dtype = torch.float64) -> EquivariantModel:
    """Model built in ``dtype``: e3nn computes its coupling constants in the default dtype, and ``.double()`` of a
    float32-built model keeps their float32 rounding (equivariance errors ~1e-7)."""
    saved = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        return EquivariantModel.from_config(config)
    finally:
        torch.set_default_dtype(saved)


def small_model(L, h, seed: int = 0, dtype: torch.dtype = torch.float64, **options) -> EquivariantModel:
    """Tiny model (e3nn harmonics and 1 + 2 blocks unless ``options`` say otherwise)."""
    torch.manual_seed(seed)
    options = {"sh_backend": "e3nn", "num_layers": 1, **options}
    return build(ModelConfig(L=L, h=h, **options), dtype)


def moved(data: Data, pos: torch.Tensor) -> Data:
    return Data(z=data.z, pos=pos, edge_index=data.edge_index)


# --- the paper's parameter counts ---


#: "# of parameters (M)" of the study's Table 1 (Lee, Galkin & Miret 2024, arXiv:2410.08131) for each (L, h), in
#: the table's row order; the rows that repeat a configuration with other epochs are left out.
PUBLISHED_MILLIONS = [
    ((0, 1, 2), 32, 1.6),
    ((0, 1, 2, 4), 32, 3.0),
    ((0, 1, 2, 6), 32, 2.6),
    ((0, 1, 2, 8), 32, 2.6),
    ((0, 1, 2, 10), 32, 2.6),
    ((0, 1, 2, 3, 4), 16, 0.8),
    ((0, 1, 2, 3, 4, 5, 6), 16, 1.9),
    ((0, 1, 2, 3, 4, 5, 6, 7, 8), 16, 3.7),
    ((0, 3, 4, 5, 6), 16, 0.8),
]


@pytest.mark.parametrize(("L", "h", "millions"), PUBLISHED_MILLIONS)
def test_parameter_counts_match_table1(L, h, millions):
    count = count_parameters(EquivariantModel(L, h))
    assert round(count / 1e6, 1) == millions
    if (L, h) in TABLE1_PARAMETERS:  # the exact counts the model module states are the model's
        assert TABLE1_PARAMETERS[(L, h)] == count


def test_structure_and_defaults():
    config = ModelConfig()
    assert (config.num_layers, config.atom_embedding_dim, config.num_basis) == (3, 64, 20)
    assert (config.cutoff, config.degree_norm, config.sh_normalization) == (6.0, 6.0828, "integral")
    assert (config.sh_backend, config.gate) == ("auto", False)
    model = EquivariantModel((0, 3, 4), 2, num_layers=2, sh_backend="e3nn")
    assert model.layer_names == ("initial", "conv_0", "conv_1", "conv_2")
    blocks = list(model.blocks.values())
    assert blocks[0].irreps_in == o3.Irreps("64x0e") and not blocks[0].residual
    assert all(b.residual and b.irreps_in == o3.Irreps("2x0e+2x3o+2x4e") for b in blocks[1:])
    assert all(b.irreps_out == o3.Irreps("2x0e+2x3o+2x4e") and b.gate is None for b in blocks)
    assert model.atom_embedding.num_embeddings == 100 and model.atom_embedding.embedding_dim == 64


def test_gate_option_sits_between_blocks():
    model = EquivariantModel((0, 1, 2), 2, num_layers=1, gate=True, sh_backend="e3nn")
    gates = [block.gate for block in model.blocks.values()]
    assert all(g is not None for g in gates[:-1]) and gates[-1] is None
    assert all(g.irreps_out == o3.Irreps("2x0e+2x1o+2x2e") for g in gates[:-1])


# --- configuration and errors ---


def test_config_round_trip_rebuilds_the_same_model():
    model = small_model((0, 3, 4), 2, gate=True)
    stored = json.loads(json.dumps(model.config.to_dict()))
    assert stored["L"] == [0, 3, 4]
    rebuilt = build(stored)
    assert rebuilt.config == model.config
    rebuilt.load_state_dict(model.state_dict())
    data = molecule(4, seed=1)
    torch.testing.assert_close(rebuilt(data), model(data), rtol=0, atol=0)


@pytest.mark.parametrize(
    "options",
    [
        {"L": (0, 0, 1)},
        {"L": (0, 13)},
        {"L": ()},
        {"L": (1, 2)},
        {"L": (0, -1)},
        {"h": 0},
        {"h": 1.5},
        {"num_layers": -1},
        {"cutoff": 0.0},
        {"degree_norm": -1.0},
        {"num_basis": 0},
        {"sh_backend": "cuda"},
        {"sh_normalization": "seminorm"},
        {"gate": "yes"},
    ],
)
def test_invalid_options_raise(options):
    with pytest.raises(ValueError):
        ModelConfig(**options)
    kwargs = {"L": (0, 1), "h": 2, **options}
    with pytest.raises(ValueError):
        EquivariantModel(kwargs.pop("L"), kwargs.pop("h"), **kwargs)


def test_unknown_config_key_raises():
    with pytest.raises(ValueError, match="hidden"):
        ModelConfig.from_dict({"L": [0, 1], "hidden": 8})


def test_bad_batches_raise_clear_errors():
    model = small_model((0, 1), 2, num_layers=0)
    data = molecule(3, seed=2)
    with pytest.raises(ValueError, match="pos"):
        model(Data(z=data.z, edge_index=data.edge_index))
    with pytest.raises(ValueError, match="edge_index"):
        model.embed(Data(z=data.z, pos=data.pos))
    with pytest.raises(ValueError, match="pos"):
        model(Data(z=data.z, pos=data.pos[:, :2], edge_index=data.edge_index))
    with pytest.raises(ValueError, match="z"):
        model(Data(z=data.z.double(), pos=data.pos, edge_index=data.edge_index))


# --- the message formula and edge direction ---


def test_edge_vectors_point_from_source_to_target():
    pos = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]])
    edge_index = torch.tensor([[0, 2], [1, 0]])
    expected = torch.tensor([[1.0, 2.0, 3.0], [1.0, -0.5, 0.0]])
    torch.testing.assert_close(edge_vectors(pos, edge_index), expected)


def test_initial_block_message_written_out():
    """One edge 0 -> 1: node 1 gets TP(emb[z0], Y(pos1 - pos0), MLP(bessel(r))) / 6.0828; node 0 gets nothing."""
    model = small_model((0, 1, 2), 2)
    pos = torch.tensor([[0.1, -0.2, 0.3], [0.9, 0.7, -0.4]], dtype=torch.float64)
    data = Data(z=torch.tensor([6, 8]), pos=pos, edge_index=torch.tensor([[0], [1]]))
    initial = model.embed(data)[0].node_features
    vector = (pos[1] - pos[0])[None]
    sh = o3.spherical_harmonics([0, 1, 2], vector, normalize=True, normalization="integral")
    basis = soft_one_hot_linspace(vector.norm(dim=-1), 0.0, 6.0, 20, basis="bessel", cutoff=True) * math.sqrt(20)
    block = model.blocks["initial"]
    reference = o3.FullyConnectedTensorProduct(block.tp.irreps_in1, block.tp.irreps_in2, block.tp.irreps_out,
                                               shared_weights=False)
    expected = reference(model.atom_embedding(data.z[:1]), sh, block.radial(basis)) / 6.0828
    torch.testing.assert_close(initial[1:], expected)
    assert torch.count_nonzero(initial[0]) == 0


# --- symmetry ---


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("L", "h", "gate"), [(*SMALL[0], False), (*SMALL[1], False), (*SMALL[1], True)])
def test_rotation_and_inversion_equivariance(L, h, gate, backend):
    model = small_model(L, h, gate=gate, sh_backend=backend)
    data = molecule(5, seed=3)
    with torch.no_grad():
        reference = model.embed(data)
        energy = model(data)
        torch.manual_seed(4)
        rotation = o3.rand_matrix(dtype=torch.float64)
        for R in (rotation, -rotation):  # proper, then improper (rotation times inversion)
            turned = moved(data, data.pos @ R.T)
            torch.testing.assert_close(model(turned), energy, rtol=1e-10, atol=1e-10)
            for before, after in zip(reference, model.embed(turned)):
                D = before.irreps.D_from_matrix(R)
                torch.testing.assert_close(after.node_features, before.node_features @ D.T, rtol=1e-9, atol=1e-10)
                torch.testing.assert_close(after.graph_features, before.graph_features @ D.T, rtol=1e-9, atol=1e-9)
        # pure inversion, checked without D-matrices: order l picks up (-1)**l
        inverted = model.embed(moved(data, -data.pos))
        for before, after in zip(reference, inverted):
            slices = feature_slices(before.irreps)
            for l, columns in slices.items():
                expected = (-1) ** l * before.node_features[:, columns]
                torch.testing.assert_close(after.node_features[:, columns], expected)
            assert any(torch.count_nonzero(before.node_features[:, s]) for l, s in slices.items() if l % 2)


@pytest.mark.parametrize(("L", "h"), SMALL)
def test_translation_and_permutation_invariance(L, h):
    model = small_model(L, h)
    data = molecule(5, seed=5)
    with torch.no_grad():
        reference = model.embed(data)
        energy = model(data)
        shifted = moved(data, data.pos + torch.tensor([3.0, -1.5, 0.25], dtype=torch.float64))
        for before, after in zip(reference, model.embed(shifted)):
            torch.testing.assert_close(after.node_features, before.node_features, rtol=1e-9, atol=1e-10)
        perm = torch.tensor([3, 0, 4, 1, 2])  # new atom i is old atom perm[i]
        inverse = torch.argsort(perm)
        permuted = Data(z=data.z[perm], pos=data.pos[perm], edge_index=inverse[data.edge_index])
        torch.testing.assert_close(model(permuted), energy, rtol=1e-10, atol=1e-10)
        for before, after in zip(reference, model.embed(permuted)):
            torch.testing.assert_close(after.node_features, before.node_features[perm], rtol=1e-9, atol=1e-10)
            torch.testing.assert_close(after.graph_features, before.graph_features, rtol=1e-9, atol=1e-10)


# --- backends ---


@pytest.mark.parametrize(("dtype", "rtol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize(("L", "h"), SMALL)
def test_equinb_and_e3nn_harmonics_give_the_same_energies(L, h, dtype, rtol):
    reference = small_model(L, h, dtype=dtype)
    model = build({**reference.config.to_dict(), "sh_backend": "torch"}, dtype)
    model.load_state_dict(reference.state_dict())
    batch = Batch.from_data_list([molecule(4, seed=6, dtype=dtype), molecule(3, seed=7, dtype=dtype)])
    with torch.no_grad():
        expected = reference(batch)
        torch.testing.assert_close(model(batch), expected, rtol=rtol, atol=rtol * expected.abs().max().item())


def test_sh_normalization_option_changes_the_model():
    integral = small_model((0, 1, 2), 2)
    component = small_model((0, 1, 2), 2, sh_normalization="component")
    component.load_state_dict(integral.state_dict())
    data = molecule(4, seed=8)
    with torch.no_grad():
        a, b = integral.embed(data)[0].node_features, component.embed(data)[0].node_features
    torch.testing.assert_close(b, a * math.sqrt(4 * math.pi))  # the initial block is linear in the harmonics


# --- readout ---


def test_batch_equals_separate_molecules():
    model = small_model((0, 1, 2), 3)
    first, second = molecule(4, seed=9), molecule(6, seed=10)
    with torch.no_grad():
        batched = model(Batch.from_data_list([first, second]))
        separate = torch.cat([model(first), model(second)])
        assert batched.shape == (2,)
        torch.testing.assert_close(batched, separate, rtol=1e-10, atol=1e-12)
        layers = model.embed(Batch.from_data_list([first, second]))
        last = model.embed(second)[-1]
    assert [layer.name for layer in layers] == ["initial", "conv_0", "conv_1"]
    for layer in layers:
        assert layer.irreps == o3.Irreps("3x0e+3x1o+3x2e")
        assert layer.node_features.shape == (10, 27) and layer.graph_features.shape == (2, 27)
        torch.testing.assert_close(layer.graph_features[0], layer.node_features[:4].sum(0))
    torch.testing.assert_close(layers[-1].graph_features[1], last.graph_features[0])


def test_readout_sums_atom_contributions():
    """Energy = head(sum over atoms of readout(node features)) for the last layer."""
    model = small_model((0, 3, 4), 2)
    data = molecule(5, seed=11)
    with torch.no_grad():
        last = model.embed(data)[-1].node_features
        expected = model.head(model.readout(last).sum(0, keepdim=True)).squeeze(-1)
        torch.testing.assert_close(model(data), expected)


def test_last_block_nonscalar_outputs_get_zero_gradient():
    """The scalar readout leaves the last block's l > 0 outputs, and the weights of its paths there, untrained."""
    model = small_model((0, 1, 2), 3)
    outputs = {}

    def keep(name):
        def hook(module, inputs, output):
            output.retain_grad()
            outputs[name] = output

        return hook

    for name, block in model.blocks.items():
        block.register_forward_hook(keep(name))
    model(Batch.from_data_list([molecule(4, seed=12), molecule(5, seed=13)])).sum().backward()
    slices = feature_slices(model.irreps_hidden)
    last, previous = outputs["conv_1"].grad, outputs["conv_0"].grad
    assert torch.count_nonzero(last[:, slices[0]]) > 0
    for l in (1, 2):
        assert torch.count_nonzero(last[:, slices[l]]) == 0
        assert torch.count_nonzero(previous[:, slices[l]]) > 0  # earlier blocks do feed the energy
    # weights of the last block's tensor-product paths, laid out in instruction order
    tp = model.blocks["conv_1"].tp
    weight_grad = model.blocks["conv_1"].radial.layer1.weight.grad
    start = 0
    for ins in tp.instructions:
        width = math.prod(ins.path_shape)
        columns = weight_grad[:, start : start + width]
        if tp.irreps_out[ins.i_out].ir.l > 0:
            assert torch.count_nonzero(columns) == 0
        else:
            assert torch.count_nonzero(columns) > 0
        start += width
    assert start == tp.weight_numel


# --- tensor-product backends ---


@pytest.mark.parametrize(("L", "h"), SMALL)
def test_tp_backends_share_checkpoints_and_predictions(L, h):
    """A model on the torch backend loads the e3nn-backend model's state dict (and e3nn's own constant entries)
    and gives the same energies and parameter gradients; parameter counts do not depend on the backend."""
    reference = small_model(L, h, seed=3, tp_backend="e3nn")
    ours = small_model(L, h, seed=4, tp_backend="torch")
    assert count_parameters(ours) == count_parameters(reference)
    state = reference.state_dict()
    # a checkpoint written with e3nn's own module also holds its Wigner-3j constants: they are ignored
    raw = o3.FullyConnectedTensorProduct(reference.irreps_hidden, reference.irreps_sh, reference.irreps_hidden,
                                         shared_weights=False)
    constants = {f"blocks.conv_0.tp.{k}": v for k, v in raw.state_dict().items() if k.startswith("_compiled")}
    assert constants
    ours.load_state_dict({**state, **constants})
    batch = Batch.from_data_list([molecule(5, 1), molecule(4, 2)])
    energies = [model(batch) for model in (reference, ours)]
    torch.testing.assert_close(energies[1], energies[0], rtol=1e-10, atol=1e-12)
    grads = [torch.autograd.grad(e.sum(), list(m.parameters())) for e, m in zip(energies, (reference, ours))]
    for g, g_ref in zip(grads[1], grads[0]):
        torch.testing.assert_close(g, g_ref, rtol=1e-9, atol=1e-12)
    reference.load_state_dict(ours.state_dict())


def test_unknown_tp_backend_is_named():
    with pytest.raises(ValueError, match=r"^tp_backend must be one of \('auto', 'fused', 'torch', 'e3nn', 'cueq'\), got 'fast'$"):
        ModelConfig(tp_backend="fast")
