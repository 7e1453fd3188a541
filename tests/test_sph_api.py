"""equinb.sph.spherical_harmonics against e3nn, for the PyTorch and Triton backends (Triton interpreted on CPU).

Each check is one call per backend covering many points and, where possible, many orders at once: under the
Triton interpreter a call is one launch, costing ~40 us per operation and program whatever the block size.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported anywhere

import math
import re

import numpy as np
import pytest
import torch
from e3nn import o3

from equinb.so3 import L_MAX
from equinb.sph import SphericalHarmonics, spherical_harmonics
from equinb.sph.verify import (
    compare_gradients,
    compare_values,
    equivariance_error,
    norm_identity_error,
    parity_error,
)

BACKENDS = ["torch", "triton"]
ALL = list(range(L_MAX + 1))
SPARSE_SETS = [[0, 3, 4, 5, 6], [L_MAX], [0, 1, 2, 8], ALL]
NORMALIZATIONS = ["integral", "component", "norm"]


def float32_tolerance(l: int) -> float:
    """Bound on float32 errors at order ``l``: they grow with ``l`` (chapter 2's accuracy study), 5.8e-6 at 12."""
    return 5e-6 if l <= 10 else 1e-6 * l


def sample(n: int, dtype=torch.float64, kind: str = "signed", seed: int = 0) -> torch.Tensor:
    """``unit``: on the sphere; ``signed``: standard normal; ``scaled``: lengths spread over 1e-2..1e2."""
    generator = torch.Generator().manual_seed(seed)
    v = torch.randn(n, 3, generator=generator, dtype=torch.float64)
    if kind == "unit":
        v = v / v.norm(dim=-1, keepdim=True)
    elif kind == "scaled":
        v = v * torch.exp(4.6 * (2 * torch.rand(n, 1, generator=generator, dtype=torch.float64) - 1))
    return v.to(dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_every_single_order_matches_e3nn(backend, dtype):
    v = sample(64, dtype, "unit", seed=1)
    for l in ALL:
        error = compare_values(l, v, backend, normalization="component")
        if dtype == torch.float64:
            assert error["max_rel"] < 1e-12, (l, error)
        else:
            assert error["max_abs"] < float32_tolerance(l), (l, error)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("L", SPARSE_SETS, ids=str)
def test_sparse_sets_all_normalisations_fp64(backend, L):
    for normalize, kind in [(True, "signed"), (True, "scaled"), (False, "signed"), (False, "scaled")]:
        v = sample(48, torch.float64, kind, seed=2)
        for normalization in NORMALIZATIONS:
            error = compare_values(L, v, backend, normalize, normalization)
            assert error["max_rel"] < 1e-12, (normalize, kind, normalization, error)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("L", SPARSE_SETS, ids=str)
def test_sparse_sets_fp32_on_unit_vectors(backend, L):
    for normalization in NORMALIZATIONS:
        error = compare_values(L, sample(256, torch.float32, "unit", 3), backend, True, normalization)
        assert error["max_abs"] < float32_tolerance(max(L)), (normalization, error)
    error = compare_values(L, sample(64, torch.float32, "signed", 4), backend, False, "component")
    assert error["max_rel"] < float32_tolerance(max(L)), error


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("L", [[0, 3, 4, 5, 6], [L_MAX], ALL], ids=str)
def test_gradients_match_e3nn(backend, L):
    v = sample(32, torch.float64, "signed", seed=5)
    width = sum(2 * l + 1 for l in L)
    upstream = torch.randn(32, width, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    for normalize in (True, False):
        for normalization in NORMALIZATIONS:
            error = compare_gradients(L, v, upstream, backend, normalize, normalization)
            assert error["max_rel"] < 1e-12, (normalize, normalization, error)
    assert compare_gradients(L, v, None, backend)["max_rel"] < 1e-12  # out.sum(): stride-0 upstream gradient
    wide = torch.randn(width, 64, dtype=torch.float64)
    transposed = wide.T[::2]  # non-contiguous: strides (2, 64)
    assert compare_gradients(L, v, transposed, backend)["max_rel"] < 1e-12
    sliced = torch.randn(32, 2 * width + 3, dtype=torch.float64)[:, 3 : 3 + 2 * width : 2]
    assert compare_gradients(L, v, sliced, backend)["max_rel"] < 1e-12
    inputs = torch.randn(3, 64, dtype=torch.float64).T[::2]  # non-contiguous input
    assert compare_values(L, inputs, backend)["max_rel"] < 1e-12
    assert compare_gradients(L, inputs, upstream, backend)["max_rel"] < 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_fp64(backend):
    v = sample(3, torch.float64, "signed", seed=7).requires_grad_(True)
    for normalize in (True, False):
        def function(t, normalize=normalize):
            return spherical_harmonics([0, 2, 5, L_MAX], t, normalize, "integral", backend)

        # fast mode checks random projections: two backward launches instead of one per output column
        assert torch.autograd.gradcheck(function, (v,), fast_mode=backend == "triton")


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradgradcheck_fp64(backend):
    v = sample(2, torch.float64, "signed", seed=8).requires_grad_(True)
    for normalize in (True, False):
        def function(t, normalize=normalize):
            return spherical_harmonics([1, 3, 6, L_MAX], t, normalize, "norm", backend)

        assert torch.autograd.gradgradcheck(function, (v,), fast_mode=backend == "triton")


def _force_loss_gradients(L, positions, weights, backend, normalize):
    """Forces ``-dE/dpositions`` (create_graph) of an energy built on the harmonics of every pair's vector,
    a loss on the forces, and that loss's gradients with respect to the positions and the weights."""
    positions = positions.detach().requires_grad_(True)
    weights = weights.detach().requires_grad_(True)
    n = positions.shape[0]
    src, dst = torch.tensor([(i, j) for i in range(n) for j in range(n) if i != j]).T
    edges = positions[dst] - positions[src]
    edges = edges.T.contiguous().T  # non-contiguous: strides (1, E)
    if backend == "e3nn":
        sh = o3.spherical_harmonics(L, edges, normalize, "integral")
    else:
        sh = spherical_harmonics(L, edges, normalize, "integral", backend)
    radial = torch.exp(-edges.pow(2).sum(-1, keepdim=True))
    energy = ((sh * weights).sum(-1) ** 2 * radial.squeeze(-1)).sum() + (sh * radial).sum()
    forces = -torch.autograd.grad(energy, positions, create_graph=True)[0]
    target = torch.linspace(-1.0, 1.0, forces.numel(), dtype=forces.dtype).reshape(forces.shape)
    loss = (forces - target).pow(2).sum()
    return forces.detach(), torch.autograd.grad(loss, (positions, weights))


@pytest.mark.parametrize("backend", BACKENDS)
def test_force_loss_second_derivatives_match_e3nn(backend):
    """Training on forces differentiates the gradient: our double backward against e3nn's autograd."""
    generator = torch.Generator().manual_seed(19)
    positions = torch.randn(5, 3, generator=generator, dtype=torch.float64)
    for L, normalize in (([0, 1, 2, 5, L_MAX], True), ([2, 0, 3], False)):
        width = sum(2 * l + 1 for l in L)
        weights = torch.randn(width, generator=generator, dtype=torch.float64)
        forces, (d_positions, d_weights) = _force_loss_gradients(L, positions, weights, backend, normalize)
        ref_forces, (ref_positions, ref_weights) = _force_loss_gradients(L, positions, weights, "e3nn", normalize)
        torch.testing.assert_close(forces, ref_forces, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(d_positions, ref_positions, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(d_weights, ref_weights, rtol=1e-10, atol=1e-12)
        assert d_positions.abs().max() > 1e-3 and d_weights.abs().max() > 1e-3  # not trivially zero


@pytest.mark.parametrize("backend", BACKENDS)
def test_equivariance_parity_and_norm_identity(backend):
    torch.manual_seed(9)
    v = sample(32, torch.float64, "signed", seed=9)
    for _ in range(2):
        rotation = o3.rand_matrix(dtype=torch.float64)
        assert max(equivariance_error(ALL, v, rotation, backend).values()) < 1e-12
    assert max(parity_error(ALL, v, backend).values()) < 1e-12
    assert max(norm_identity_error(ALL, v, backend).values()) < 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
def test_interleaved_calls_keep_their_own_metadata(backend):
    v = sample(16, torch.float64, "signed", seed=10)
    a_leaf, b_leaf = v.clone().requires_grad_(True), v.clone().requires_grad_(True)
    a = spherical_harmonics([0, 3, 4], a_leaf, True, "integral", backend)
    b = spherical_harmonics([L_MAX, 1], b_leaf, False, "norm", backend)
    (a.pow(2).sum() + b.sum()).backward()
    ea, eb = v.clone().requires_grad_(True), v.clone().requires_grad_(True)
    (o3.spherical_harmonics([0, 3, 4], ea, True, "integral").pow(2).sum()
     + o3.spherical_harmonics([L_MAX, 1], eb, False, "norm").sum()).backward()
    torch.testing.assert_close(a_leaf.grad, ea.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(b_leaf.grad, eb.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_form_of_L_and_batch_shapes(backend):
    v = sample(24, torch.float64, "signed", seed=11).reshape(2, 4, 3, 3)
    for L in [3, [2, 0, 2], [5, 1], (4,), "0e+1o+2x2e", o3.Irreps("1x0e+2x3o"), "1e+2e", o3.Irreps("3e")]:
        ours = spherical_harmonics(L, v, True, "integral", backend)
        reference = o3.spherical_harmonics(L, v, True, "integral")
        assert ours.shape == reference.shape
        torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-13)
        module = SphericalHarmonics(L, True, "integral", backend=backend)
        torch.testing.assert_close(module(v), reference, rtol=1e-12, atol=1e-13)
        e3nn_module = o3.SphericalHarmonics(L, True, "integral")
        assert module.irreps_out == e3nn_module.irreps_out and module.irreps_in == e3nn_module.irreps_in
    for L in [range(4), np.array([3, 1]), (np.int64(2), 0)]:  # any iterable of integral orders, as e3nn
        torch.testing.assert_close(spherical_harmonics(L, v, True, "integral", backend),
                                   o3.spherical_harmonics([int(l) for l in L], v, True), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("irreps_in", ["1o", "1x1e", o3.Irreps("1e")])
@pytest.mark.parametrize("L", [[0, 1, 2], 3, "0e+1e+2e", o3.Irreps("1o+2e")], ids=str)
def test_module_irreps_in_as_e3nn(L, irreps_in):
    v = sample(8, torch.float64, "signed", seed=16)
    try:
        reference = o3.SphericalHarmonics(L, True, "norm", irreps_in=irreps_in)
    except ValueError as error:  # inconsistent parities: ours must refuse too
        with pytest.raises(ValueError, match="asks for l="):
            SphericalHarmonics(L, True, "norm", irreps_in=irreps_in, backend="torch")
        assert "inconsistent" in str(error)
        return
    module = SphericalHarmonics(L, True, "norm", irreps_in=irreps_in, backend="torch")
    assert module.irreps_in == reference.irreps_in and module.irreps_out == reference.irreps_out
    torch.testing.assert_close(module(v), reference(v), rtol=1e-12, atol=1e-13)


def test_module_parses_its_request_once(monkeypatch):
    module = SphericalHarmonics("2x1o+0e", True, "component", backend="torch")
    assert module.orders == (1, 1, 0)
    from equinb.sph import api

    def fail(*args, **kwargs):
        raise AssertionError("parsed again on call")

    monkeypatch.setattr(api, "_parse", fail)
    monkeypatch.setattr(api, "check_orders", fail)
    v = sample(5, torch.float64, "signed", seed=17)
    torch.testing.assert_close(module(v), o3.spherical_harmonics("2x1o+0e", v, True, "component"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_inputs(backend):
    for shape in [(0, 3), (2, 0, 3)]:
        v = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
        out = spherical_harmonics([0, 3], v, backend=backend)
        assert out.shape == (*shape[:-1], 8)
        out.sum().backward()
        assert v.grad.shape == v.shape


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_zero_vectors_behave_as_in_e3nn(backend, dtype):
    v = torch.tensor([[0.0, 0.0, 0.0], [1e-20, 0.0, 0.0], [0.3, -0.2, 0.9]], dtype=dtype)
    assert compare_values(ALL, v, backend, True, "integral")["max_rel"] < 1e-6
    upstream = torch.randn(3, (L_MAX + 1) ** 2, dtype=dtype)
    error = compare_gradients(ALL, v, upstream, backend, True, "component")
    assert error["max_rel"] < 1e-6
    leaf = v.clone().requires_grad_(True)
    out = spherical_harmonics(ALL, leaf, True, "component", backend)
    out.backward(upstream)
    assert torch.isfinite(out).all() and torch.isfinite(leaf.grad).all()
    assert out[0, 0] == 1 and (out[0, 1:] == 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_rounded_from_float32(backend, dtype):
    v64 = sample(64, torch.float64, "signed", seed=12)
    v = v64.to(dtype)
    leaf = v.clone().requires_grad_(True)
    out = spherical_harmonics(ALL, leaf, True, "integral", backend)
    out.sum().backward()
    assert out.dtype == dtype and leaf.grad.dtype == dtype
    error = compare_values(ALL, v, backend)  # against fp64 arithmetic on the same rounded inputs
    assert error["max_rel"] <= torch.finfo(dtype).eps
    zero = spherical_harmonics(ALL, torch.zeros(1, 3, dtype=dtype), True, "integral", backend)
    assert torch.isfinite(zero).all()


def test_auto_and_e3nn_backends_on_cpu():
    v = sample(8, torch.float64, "signed", seed=13)
    assert torch.equal(spherical_harmonics(ALL, v), spherical_harmonics(ALL, v, backend="torch"))
    assert torch.equal(spherical_harmonics(11, v, backend="e3nn"), o3.spherical_harmonics(11, v, True))


def test_torch_backend_compiles_without_graph_breaks():
    compiled = torch.compile(lambda t: spherical_harmonics([0, 3, 4], t, True, "integral", "torch"),
                             backend="eager", fullgraph=True)
    v = sample(8, torch.float64, "signed", seed=14).requires_grad_(True)
    out = compiled(v)
    torch.testing.assert_close(out, o3.spherical_harmonics([0, 3, 4], v, True, "integral"))
    out.sum().backward()
    assert torch.isfinite(v.grad).all()


@pytest.mark.parametrize(
    "args, error, message",
    [
        ((2, torch.zeros(4, 2)), ValueError, "vectors must have shape (..., 3), got (4, 2)"),
        ((2, torch.zeros(4, 3, dtype=torch.int64)), TypeError,
         "vectors must be float16, bfloat16, float32 or float64, got torch.int64"),
        ((2, [[0.0, 0.0, 1.0]]), TypeError, "vectors must be a torch.Tensor, got list"),
        ((L_MAX + 1, torch.zeros(4, 3)), ValueError,
         f"order {L_MAX + 1} is above the highest supported order {L_MAX}"),
        ((-1, torch.zeros(4, 3)), ValueError, "order -1 is negative"),
        (([], torch.zeros(4, 3)), ValueError, "no orders given: ask for at least one, e.g. [0, 1, 2]"),
        (([1, 2.5], torch.zeros(4, 3)), ValueError, "order 2.5 is not an integer"),
        (("1x2o", torch.zeros(4, 3)), ValueError,
         "L=1x2o asks for l=2 with parity -1; spherical harmonics of a vector have parity 1 there"),
        (("1o+1e", torch.zeros(4, 3)), ValueError,
         "L=1x1o+1x1e asks for l=1 with parity -1; spherical harmonics of a pseudovector have parity 1 there"),
        (("not irreps", torch.zeros(4, 3)), ValueError, "L='not irreps' is not a valid irreps string"),
    ],
)
def test_bad_inputs_raise_clear_errors(args, error, message):
    for backend in ("torch", "e3nn"):
        with pytest.raises(error, match=f"^{re.escape(message)}$"):
            spherical_harmonics(*args, backend=backend)
    assert spherical_harmonics(2, torch.zeros(3)).shape == (5,)


def test_bad_options_raise_clear_errors(monkeypatch):
    v = torch.zeros(2, 3)
    normalizations = "normalization must be one of ('integral', 'component', 'norm'), got 'unit'"
    backends = "backend must be one of ('auto', 'triton', 'torch', 'e3nn'), got {!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(normalizations)}$"):
        spherical_harmonics(1, v, normalization="unit")
    with pytest.raises(ValueError, match=f"^{re.escape(normalizations)}$"):
        SphericalHarmonics(1, normalization="unit")
    with pytest.raises(ValueError, match=f"^{re.escape(backends.format('cuda'))}$"):
        spherical_harmonics(1, v, backend="cuda")
    with pytest.raises(ValueError, match=f"^{re.escape(backends.format('jax'))}$"):
        SphericalHarmonics(1, backend="jax")
    for irreps_in in ("2e", "1o+1o", "nonsense", 7):
        with pytest.raises(ValueError, match=re.escape(
                f"irreps_in must be a vector (1x1o) or a pseudovector (1x1e), got {irreps_in!r}") + "$"):
            SphericalHarmonics(1, irreps_in=irreps_in)
    monkeypatch.delenv("TRITON_INTERPRET")
    triton_message = (
        "backend='triton' needs CUDA tensors, or TRITON_INTERPRET=1 in the environment (set before triton "
        "is imported) to run the kernels on the CPU through Triton's interpreter; use backend='torch' here"
    )
    with pytest.raises(RuntimeError, match=f"^{re.escape(triton_message)}$"):
        spherical_harmonics(1, v, backend="triton")


def test_integral_normalisation_constant():
    v = sample(4, torch.float64, "unit", seed=15)
    out = spherical_harmonics(0, v, True, "integral", "torch")
    torch.testing.assert_close(out, torch.full((4, 1), 1 / math.sqrt(4 * math.pi), dtype=torch.float64))
