"""Tests of :mod:`equinb.tp`: the tensor product against e3nn itself — values, the three gradients, second
derivatives, equivariance, layouts, backends and errors.

The reference is always ``e3nn.o3.FullyConnectedTensorProduct(..., shared_weights=False)`` with the same
arguments and weights, never our own code.
"""

from __future__ import annotations

import random

import pytest
import torch
from e3nn import o3

from equinb.tp import TP_BACKENDS, FullyConnectedTensorProduct, cueq_available, resolve_backend


def hidden(L, h):
    return o3.Irreps("+".join(f"{h}x{l}{'e' if l % 2 == 0 else 'o'}" for l in L))


def harmonics(L):
    return hidden(L, 1)


def random_sets(count, seed=7):
    """Random L sets of the model's form (0 included, as the scalar readout needs): contiguous, gapped, with l up
    to 10, and h from 1 to 4."""
    rng = random.Random(seed)
    sets = [((0, 1, 2), 3), ((0, 3, 4, 5, 6), 2), ((0, 1, 2, 10), 1), ((0, 7, 10), 2)]
    while len(sets) < count:
        L = tuple(sorted({0, *rng.sample(range(1, 9), rng.randint(1, 3))}))
        sets.append((L, rng.randint(1, 4)))
    return sets


GENERAL = [  # irreps beyond the model's form: mixed parities, repeats, mul2 > 1, multiplicity 0, unreachable
    ("2x1e+3x0o+1x1o", "2x1o+1x0e", "1x0e+2x1e+3x2o+1x0e"),
    ("2x0e+0x1o+2x2e", "1x0e+1x2e", "2x0e+0x1o+2x2e"),
    ("2x1o", "1x1o", "3x1e+2x3o"),
    ("5x0e", "1x0e+1x1o+1x2e", "2x0e+3x1o+1x2e"),
]


@pytest.fixture(params=["fused", "torch"])
def backend(request):
    """Both of our implementations: the fused CPU kernel and the grouped torch path."""
    return request.param


def pair(in1, in2, out, backend="fused", **kwargs):
    ours = FullyConnectedTensorProduct(in1, in2, out, backend=backend, **kwargs)
    reference = o3.FullyConnectedTensorProduct(in1, in2, out, shared_weights=False, **kwargs)
    assert ours.weight_numel == reference.weight_numel
    return ours, reference


def inputs(tp, batch=(7,), dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    make = lambda n: torch.randn(*batch, n, generator=generator, dtype=dtype)  # noqa: E731
    return make(tp.irreps_in1.dim), make(tp.irreps_in2.dim), make(tp.weight_numel)


def assert_close(actual, expected, rtol):
    scale = expected.abs().max().clamp_min(1e-300)
    assert (actual - expected).abs().max() <= rtol * scale, (actual - expected).abs().max() / scale


def check_against_e3nn(ours, reference, batch=(7,), rtol=1e-12, dtype=torch.float64, seed=0):
    x1, x2, w = inputs(ours, batch, dtype, seed)
    leaves = [t.clone().requires_grad_() for t in (x1, x2, w)]
    leaves_ref = [t.clone().requires_grad_() for t in (x1, x2, w)]
    out, out_ref = ours(*leaves), reference(*leaves_ref)
    assert out.shape == out_ref.shape
    assert_close(out, out_ref, rtol)
    cotangent = torch.randn(out.shape, dtype=dtype, generator=torch.Generator().manual_seed(seed + 1))
    grads = torch.autograd.grad(out, leaves, cotangent, allow_unused=True)
    grads_ref = torch.autograd.grad(out_ref, leaves_ref, cotangent, allow_unused=True)
    for name, g, g_ref in zip(("x1", "x2", "weight"), grads, grads_ref):
        g = torch.zeros_like(g_ref) if g is None else g
        assert_close(g, g_ref, rtol), name


@pytest.mark.parametrize("L, h", random_sets(10))
def test_model_form_equals_e3nn_float64(L, h, backend, float64_default):
    ours, reference = pair(hidden(L, h), harmonics(L), hidden(L, h), backend=backend)
    check_against_e3nn(ours, reference)


@pytest.mark.parametrize("irreps", GENERAL)
def test_general_irreps_equal_e3nn(irreps, backend, float64_default):
    ours, reference = pair(*irreps, backend=backend)
    check_against_e3nn(ours, reference, batch=(3, 4))


@pytest.mark.parametrize("irrep_normalization", ["component", "norm", "none"])
@pytest.mark.parametrize("path_normalization", ["element", "path", "none"])
def test_normalisations_equal_e3nn(irrep_normalization, path_normalization, backend, float64_default):
    ours, reference = pair(
        "3x0e+2x1o+2x2e", "1x0e+1x1o+1x2e", "2x0e+3x1o+1x2e",
        irrep_normalization=irrep_normalization, path_normalization=path_normalization, backend=backend,
    )
    check_against_e3nn(ours, reference)


def test_first_block_form_float32(backend):
    """The model's first block, 64x0e in, float32: equal to e3nn to float32 precision."""
    ours, reference = pair("8x0e", harmonics((0, 1, 2)), hidden((0, 1, 2), 4), backend=backend)
    check_against_e3nn(ours, reference, batch=(50,), rtol=2e-6, dtype=torch.float32)
    ours, reference = pair(hidden((0, 3, 4, 5, 6), 4), harmonics((0, 3, 4, 5, 6)), hidden((0, 3, 4, 5, 6), 4),
                           backend=backend)
    check_against_e3nn(ours, reference, batch=(50,), rtol=5e-6, dtype=torch.float32)


def test_non_contiguous_and_broadcast_inputs(backend, float64_default):
    """Transposed storage, a sliced weight, stride-0 batch dims and a stride-0 cotangent."""
    ours, reference = pair(hidden((0, 1, 2), 2), harmonics((0, 1, 2)), hidden((0, 1, 2), 2), backend=backend)
    generator = torch.Generator().manual_seed(3)
    x1 = torch.randn(ours.irreps_in1.dim, 6, generator=generator).T  # non-contiguous
    x2 = torch.randn(1, ours.irreps_in2.dim, generator=generator).expand(6, -1)  # stride 0
    w = torch.randn(6, 2 * ours.weight_numel, generator=generator)[:, ::2]  # strided
    assert not x1.is_contiguous() and not w.is_contiguous()
    leaves = [t.clone().requires_grad_() if i == 2 else t.detach().requires_grad_() for i, t in enumerate((x1, x2, w))]
    out = ours(x1, x2, w)
    assert_close(out, reference(x1, x2, w), 1e-12)
    cotangent = torch.randn(1, out.shape[1], generator=generator).expand_as(out)  # stride 0
    leaves = [t.detach().clone().requires_grad_() for t in (x1, x2, w)]
    leaves_ref = [t.detach().clone().requires_grad_() for t in (x1, x2, w)]
    grads = torch.autograd.grad(ours(*leaves), leaves, cotangent)
    grads_ref = torch.autograd.grad(reference(*leaves_ref), leaves_ref, cotangent)
    for g, g_ref in zip(grads, grads_ref):
        assert_close(g, g_ref, 1e-12)
    # batch dims broadcast: one x2 per row of a (2, 5) batch, weights shared over the first dim
    x1, x2, w = (torch.randn(*shape, generator=generator) for shape in
                 [(2, 5, ours.irreps_in1.dim), (5, ours.irreps_in2.dim), (1, 5, ours.weight_numel)])
    assert ours(x1, x2, w).shape == (2, 5, ours.irreps_out.dim)
    assert_close(ours(x1, x2, w), reference(x1, x2, w), 1e-12)


def test_no_path_gives_zeros():
    ours = FullyConnectedTensorProduct("2x1o", "1x1o", "2x1o")  # 1o x 1o has no 1o part
    x1, x2, w = inputs(ours, dtype=torch.float32)
    assert ours.weight_numel == 0 and torch.equal(ours(x1, x2, w), torch.zeros(7, 6))


def test_empty_batch():
    ours = FullyConnectedTensorProduct(hidden((0, 1), 2), harmonics((0, 1)), hidden((0, 1), 2))
    x1, x2, w = inputs(ours, batch=(0,), dtype=torch.float32)
    assert ours(x1, x2, w).shape == (0, ours.irreps_out.dim)


def test_second_derivatives_exact(backend, float64_default):
    """gradgradcheck, and a force-loss style probe (a loss on input gradients) against e3nn."""
    ours, reference = pair(hidden((0, 1, 2), 2), harmonics((0, 1, 2)), hidden((0, 1, 2), 2), backend=backend)
    x1, x2, w = (t.requires_grad_() for t in inputs(ours, batch=(3,)))
    assert torch.autograd.gradgradcheck(ours, (x1, x2, w))

    def probe(module):
        leaves = [t.detach().clone().requires_grad_() for t in (x1, x2, w)]
        energy = (module(*leaves) ** 2).sum()
        force = torch.autograd.grad(energy, leaves[1], create_graph=True)[0]
        return torch.autograd.grad((force**2).sum(), leaves)

    for g, g_ref in zip(probe(ours), probe(reference)):
        assert_close(g, g_ref, 1e-11)


@pytest.mark.parametrize("L", [(0, 1, 2), (0, 3, 4)])
def test_equivariant_under_rotation_and_inversion(L, backend, float64_default):
    """TP(D1 x1, D2 x2) = D_out TP(x1, x2) with e3nn's D-matrices, for a random rotation and for inversion."""
    ours = FullyConnectedTensorProduct(hidden(L, 2), harmonics(L), hidden(L, 2), backend=backend)
    x1, x2, w = inputs(ours, batch=(5,))
    for parity in (1, -1):
        angles = o3.rand_angles()
        D = [irreps.D_from_angles(*angles, torch.tensor(1 if parity == -1 else 0))
             for irreps in (ours.irreps_in1, ours.irreps_in2, ours.irreps_out)]
        rotated = ours(x1 @ D[0].T, x2 @ D[1].T, w)
        assert_close(rotated, ours(x1, x2, w) @ D[2].T, 1e-12)


def test_factored_weights_equal_e3nn(backend, float64_default):
    """tp(x1, x2, features=f, matrix=A) == e3nn(x1, x2, f @ A), values and gradients (homogeneous and not), and a
    second backward through the same graph (retain_graph) gives the same gradients again."""
    for irreps in [(hidden((0, 1, 2), 2), harmonics((0, 1, 2)), hidden((0, 1, 2), 2)), GENERAL[0]]:
        tp = FullyConnectedTensorProduct(*irreps, backend=backend)
        reference = o3.FullyConnectedTensorProduct(*irreps, shared_weights=False)
        x1, x2, _ = inputs(tp, batch=(4,))
        features = torch.randn(4, 3)
        matrix = torch.randn(3, tp.weight_numel)
        leaves = [t.clone().requires_grad_() for t in (x1, x2, features, matrix)]
        leaves_ref = [t.clone().requires_grad_() for t in (x1, x2, features, matrix)]
        out = tp(leaves[0], leaves[1], features=leaves[2], matrix=leaves[3])
        out_ref = reference(leaves_ref[0], leaves_ref[1], leaves_ref[2] @ leaves_ref[3])
        assert_close(out, out_ref, 1e-13)
        cotangent = torch.randn_like(out)
        expected = torch.autograd.grad(out_ref, leaves_ref, cotangent)
        for _ in range(2):
            for g, g_ref in zip(torch.autograd.grad(out, leaves, cotangent, retain_graph=True), expected):
                assert_close(g, g_ref, 1e-12)


def test_e3nn_backend_delegates_and_state_dicts_match(float64_default):
    irreps = (hidden((0, 1, 2), 2), harmonics((0, 1, 2)), hidden((0, 1, 2), 2))
    ours = FullyConnectedTensorProduct(*irreps, backend="torch")
    delegating = FullyConnectedTensorProduct(*irreps, backend="e3nn")
    reference = o3.FullyConnectedTensorProduct(*irreps, shared_weights=False)
    assert isinstance(delegating.delegate, o3.FullyConnectedTensorProduct) and ours.delegate is None
    x1, x2, w = inputs(ours)
    assert_close(delegating(x1, x2, w), ours(x1, x2, w), 1e-12)
    assert set(ours.state_dict()) == {"weight", "output_mask"} == set(delegating.state_dict())
    assert torch.equal(ours.state_dict()["output_mask"], reference.state_dict()["output_mask"].to(torch.float64))
    # e3nn keeps constants (Wigner-3j tensors of its paths) in its state dict: loading ignores them
    assert any(key.startswith("_compiled_main") for key in reference.state_dict())
    for module in (ours, delegating):
        module.load_state_dict(reference.state_dict())
    assert reference.load_state_dict(ours.state_dict(), strict=False).unexpected_keys == []


def test_output_mask_marks_unreachable_outputs():
    ours = FullyConnectedTensorProduct("2x1o", "1x1o", "1x1e+1x3o", backend="torch")
    reference = o3.FullyConnectedTensorProduct("2x1o", "1x1o", "1x1e+1x3o", shared_weights=False)
    assert ours.output_mask.tolist() == reference.output_mask.tolist() == [1.0] * 3 + [0.0] * 7
    x1, x2, w = inputs(ours, dtype=torch.float32)
    assert torch.all(ours(x1, x2, w)[:, 3:] == 0)


def test_instructions_match_e3nn():
    ours = FullyConnectedTensorProduct("2x0e+2x1o", "1x0e+1x1o", "3x0e+1x1o")
    reference = o3.FullyConnectedTensorProduct("2x0e+2x1o", "1x0e+1x1o", "3x0e+1x1o", shared_weights=False)
    assert [tuple(i) for i in ours.instructions] == [tuple(i) for i in reference.instructions]
    weight = torch.randn(3, ours.weight_numel)
    for view, view_ref in zip(ours.weight_views(weight), reference.weight_views(weight), strict=True):
        assert torch.equal(view, view_ref)
    assert "backend=fused" in repr(ours) and f"{ours.weight_numel} weights" in repr(ours)


def test_errors_name_what_was_expected():
    tp = FullyConnectedTensorProduct("2x0e+2x1o", "1x0e+1x1o", "2x0e+2x1o")
    x1, x2, w = inputs(tp, dtype=torch.float32)
    with pytest.raises(ValueError, match=r"^x1 has 7 entries in its last dimension, expected 8 \(irreps_in1 = 2x0e\+2x1o\)$"):
        tp(x1[:, :7], x2, w)
    with pytest.raises(ValueError, match=rf"^weight has 3 entries in its last dimension, expected {tp.weight_numel} \(weight_numel\)$"):
        tp(x1, x2, w[:, :3])
    with pytest.raises(TypeError, match=r"^x1, x2, weight must share one dtype, got torch.float64, torch.float32, torch.float32$"):
        tp(x1.double(), x2, w)
    with pytest.raises(TypeError, match=r"^x2 must be a floating-point tensor, got torch.int64$"):
        tp(x1, x2.long(), w)
    with pytest.raises(TypeError, match=r"^weight must be a torch.Tensor, got list$"):
        tp(x1, x2, [1.0])
    with pytest.raises(ValueError, match=r"^batch shapes do not broadcast: x1 \(7,\), x2 \(6,\), weight \(7,\)$"):
        tp(x1, x2[:6], w)
    with pytest.raises(ValueError, match=r"^x2 has a scalar, expected 4"):
        tp(x1, torch.tensor(1.0), w)
    with pytest.raises(ValueError, match=r"^matrix must be \(k, weight_numel = 16\), got shape \(3, 5\)$"):
        tp(x1, x2, features=torch.randn(7, 3), matrix=torch.randn(3, 5))
    with pytest.raises(ValueError, match=r"^features has 4 entries in its last dimension, expected 3 \(the rows of matrix\)$"):
        tp(x1, x2, features=torch.randn(7, 4), matrix=torch.randn(3, 16))
    with pytest.raises(ValueError, match=r"^give either weight, or both features and matrix"):
        tp(x1, x2, w, features=torch.randn(7, 4))
    with pytest.raises(ValueError, match=r"^give either weight, or both features and matrix"):
        tp(x1, x2, features=torch.randn(7, 4))
    with pytest.raises(ValueError, match=r"^irreps_out must be irreps such as"):
        FullyConnectedTensorProduct("1x0e", "1x0e", "1xq")
    with pytest.raises(ValueError, match=r"^equinb.tp supports per-sample weights only \(shared_weights=False\)"):
        FullyConnectedTensorProduct("1x0e", "1x0e", "1x0e", shared_weights=True)
    with pytest.raises(ValueError, match=r"^tp backend must be one of \('auto', 'fused', 'torch', 'e3nn', 'cueq'\), got 'fast'$"):
        FullyConnectedTensorProduct("1x0e", "1x0e", "1x0e", backend="fast")


def test_auto_backend_resolves():
    assert TP_BACKENDS[0] == "auto"
    assert resolve_backend("auto") == "fused"
    if not cueq_available():
        with pytest.raises(ValueError, match=r"needs cuequivariance-torch"):
            resolve_backend("cueq")


@pytest.mark.skipif(not cueq_available(), reason="cuequivariance-torch not installed (optional extra 'cueq')")
@pytest.mark.parametrize("irreps", [
    (hidden((0, 1, 2), 2), harmonics((0, 1, 2)), hidden((0, 1, 2), 2)),
    (hidden((0, 3, 4), 2), harmonics((0, 3, 4)), hidden((0, 3, 4), 2)),
    ("3x0e", harmonics((0, 1, 2)), hidden((0, 1, 2), 2)),
    GENERAL[0],
])
def test_cueq_backend_equals_e3nn(irreps, float64_default):
    ours = FullyConnectedTensorProduct(*irreps, backend="cueq")
    reference = o3.FullyConnectedTensorProduct(*irreps, shared_weights=False)
    assert set(ours.state_dict()) == {"weight", "output_mask"}
    ours.load_state_dict(reference.state_dict())
    check_against_e3nn(ours, reference, rtol=1e-10)
