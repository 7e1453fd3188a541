"""equinb.sph.spherical_harmonics against e3nn, for the PyTorch and Triton backends (Triton interpreted on CPU).

Each check is one call per backend covering many points and, where possible, many orders at once: under the
Triton interpreter a call is one launch, costing ~40 us per operation and program whatever the block size.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported anywhere

import math

import pytest
import torch
from e3nn import o3

from equinb.sph import SphericalHarmonics, spherical_harmonics
from equinb.sph.verify import (
    compare_gradients,
    compare_values,
    equivariance_error,
    norm_identity_error,
    parity_error,
)

BACKENDS = ["torch", "triton"]
ALL = list(range(11))
SPARSE_SETS = [[0, 3, 4, 5, 6], [10], [0, 1, 2, 8], ALL]
NORMALIZATIONS = ["integral", "component", "norm"]


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
            assert error["max_abs"] < 5e-6, (l, error)


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
        assert compare_values(L, sample(256, torch.float32, "unit", 3), backend, True, normalization)["max_abs"] < 5e-6
    assert compare_values(L, sample(64, torch.float32, "signed", 4), backend, False, "component")["max_rel"] < 5e-6


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("L", [[0, 3, 4, 5, 6], [10], ALL], ids=str)
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
            return spherical_harmonics([0, 2, 5, 10], t, normalize, "integral", backend)

        # fast mode checks random projections: two backward launches instead of one per output column
        assert torch.autograd.gradcheck(function, (v,), fast_mode=backend == "triton")


def test_gradgradcheck_torch_backend():
    v = sample(2, torch.float64, "signed", seed=8).requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda t: spherical_harmonics([1, 3, 6], t, True, "norm", "torch"), (v,))


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
    b = spherical_harmonics([10, 1], b_leaf, False, "norm", backend)
    (a.pow(2).sum() + b.sum()).backward()
    ea, eb = v.clone().requires_grad_(True), v.clone().requires_grad_(True)
    (o3.spherical_harmonics([0, 3, 4], ea, True, "integral").pow(2).sum()
     + o3.spherical_harmonics([10, 1], eb, False, "norm").sum()).backward()
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
        module = SphericalHarmonics(L, True, "integral", backend)
        torch.testing.assert_close(module(v), reference, rtol=1e-12, atol=1e-13)
        assert module.irreps_out == o3.SphericalHarmonics(L, True, "integral").irreps_out


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
    upstream = torch.randn(3, 121, dtype=dtype)
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
    "args, error",
    [
        ((2, torch.zeros(4, 2)), ValueError),
        ((2, torch.zeros(3)), None),
        ((2, torch.zeros(4, 3, dtype=torch.int64)), TypeError),
        ((2, [[0.0, 0.0, 1.0]]), TypeError),
        ((11, torch.zeros(4, 3)), ValueError),
        ((-1, torch.zeros(4, 3)), ValueError),
        (([], torch.zeros(4, 3)), ValueError),
        (([1, 2.5], torch.zeros(4, 3)), ValueError),
        (("1x2o", torch.zeros(4, 3)), ValueError),
        (("not irreps", torch.zeros(4, 3)), ValueError),
    ],
)
def test_bad_inputs_raise_clear_errors(args, error):
    if error is None:
        assert spherical_harmonics(*args).shape == (5,)
    else:
        with pytest.raises(error):
            spherical_harmonics(*args)


def test_bad_options_raise_clear_errors(monkeypatch):
    v = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="normalization"):
        spherical_harmonics(1, v, normalization="unit")
    with pytest.raises(ValueError, match="backend"):
        spherical_harmonics(1, v, backend="cuda")
    with pytest.raises(ValueError, match="backend"):
        SphericalHarmonics(1, backend="jax")
    monkeypatch.delenv("TRITON_INTERPRET")
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
        spherical_harmonics(1, v, backend="triton")


def test_integral_normalisation_constant():
    v = sample(4, torch.float64, "unit", seed=15)
    out = spherical_harmonics(0, v, True, "integral", "torch")
    torch.testing.assert_close(out, torch.full((4, 1), 1 / math.sqrt(4 * math.pi), dtype=torch.float64))
