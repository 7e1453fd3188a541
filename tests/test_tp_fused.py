"""Tests of the fused backend (:mod:`equinb.tp.fused`, :mod:`equinb.tp.kernel`) against e3nn itself.

The shapes of the study's Table 1 at their own multiplicities (the kernel's unrolled paths, h = 16 and 32, in
float64 and float32), odd ones outside the model's form, the workspace that keeps the weights' gradient, the
rule that ``forward`` copies no plan tensor, and the fallback when the kernel cannot be built.
"""

from __future__ import annotations

import pytest
import torch
from e3nn import o3
from torch.profiler import ProfilerActivity, profile

import equinb.tp.api as tp_api
from equinb.sweep import TABLE1
from equinb.tp import FullyConnectedTensorProduct
from equinb.tp.kernel import fused_ops, unavailable_reason


def hidden(L, h):
    return o3.Irreps("+".join(f"{h}x{l}{'e' if l % 2 == 0 else 'o'}" for l in L))


def relative_error(actual, expected):
    return ((actual - expected).abs().max() / expected.abs().max().clamp_min(1e-300)).item()


def compare(irreps, dtype, edges, rtol, seed=0):
    """Values and the three gradients (random signed inputs and cotangent) of ours and of e3nn."""
    ours = FullyConnectedTensorProduct(*irreps, backend="fused")
    reference = o3.FullyConnectedTensorProduct(*irreps, shared_weights=False).to(dtype)
    generator = torch.Generator().manual_seed(seed)
    make = lambda n: torch.randn(edges, n, generator=generator, dtype=dtype)  # noqa: E731
    tensors = (make(ours.irreps_in1.dim), make(ours.irreps_in2.dim), make(ours.weight_numel))
    cotangent = make(ours.irreps_out.dim)
    results = []
    for module in (ours, reference):
        leaves = [t.clone().requires_grad_() for t in tensors]
        out = module(*leaves)
        results.append((out, *torch.autograd.grad(out, leaves, cotangent)))
    for name, a, b in zip(("out", "x1", "x2", "weight"), *results):
        assert relative_error(a, b) <= rtol, (name, relative_error(a, b))


def test_the_kernel_is_built_here():
    """CI has a compiler: the fused path must really run, not fall back (a fallback would pass every other test)."""
    assert fused_ops() is not None, unavailable_reason()


TABLE1_SHAPES = sorted({(row.L, row.h) for row in TABLE1}, key=lambda shape: (len(shape[0]), shape))


@pytest.mark.parametrize("L, h", TABLE1_SHAPES)
def test_table1_shapes_equal_e3nn_float64(L, h, float64_default):
    compare((hidden(L, h), hidden(L, 1), hidden(L, h)), torch.float64, edges=3, rtol=1e-13)


@pytest.mark.parametrize("L, h", [((0, 1, 2), 32), ((0, 1, 2, 3, 4), 16), ((0, 1, 2), 8)])
def test_unrolled_multiplicities_float32(L, h, float64_default):
    """float32 at h = 8, 16, 32 (the kernel's vector tiles), e3nn's constants exact (float64 default)."""
    compare((hidden(L, h), hidden(L, 1), hidden(L, h)), torch.float32, edges=40, rtol=2e-6)


@pytest.mark.parametrize("irreps", [
    (hidden((0, 2, 7), 3), hidden((0, 2, 7), 1), hidden((0, 2, 7), 3)),  # gaps, l = 7
    ("4x0e+2x2e+3x7o", "1x0e+1x2e+1x7o", "5x0e+1x2e+2x7o"),  # multiplicities that differ per irrep
    ("3x1o+2x1o", "2x1o", "1x0e+2x1e+2x2e"),  # repeated irreps, mul2 > 1
])
def test_odd_shapes_equal_e3nn(irreps, float64_default):
    compare(irreps, torch.float64, edges=5, rtol=1e-13)


def test_kept_gradient_is_never_overwritten(float64_default):
    """The weights' gradient comes from a kept workspace: one the caller still holds must not be reused."""
    tp = FullyConnectedTensorProduct(hidden((0, 1), 16), hidden((0, 1), 1), hidden((0, 1), 16), backend="fused")
    generator = torch.Generator().manual_seed(1)
    x1, x2 = torch.randn(6, tp.irreps_in1.dim, generator=generator), torch.randn(6, 4, generator=generator)
    w = torch.randn(6, tp.weight_numel, generator=generator, requires_grad=True)
    first = torch.autograd.grad(tp(x1, x2, w).sum(), w)[0]
    kept = first.clone()
    second = torch.autograd.grad((2 * tp(x1, x2, w)).sum(), w)[0]
    assert torch.equal(first, kept) and torch.allclose(second, 2 * kept)
    assert first.data_ptr() != second.data_ptr()
    del first, second  # now nothing holds it: the next call reuses the same memory
    third = torch.autograd.grad(tp(x1, x2, w).sum(), w)[0]
    fourth_ptr = torch.autograd.grad(tp(x1, x2, w).sum(), w)[0].data_ptr()
    assert torch.allclose(third, kept)
    assert fourth_ptr != third.data_ptr()  # `third` is alive, so the fourth got its own buffer


def copies_in_forward(tp, *args, **kwargs):
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        tp(*args, **kwargs)
    # a layout copy (reshape of a transposed view, aten::clone) is the torch path's arithmetic, not a cast
    return [event.name for event in prof.events() if event.name == "aten::_to_copy"
            or (event.name == "aten::copy_" and (event.cpu_parent is None or event.cpu_parent.name != "aten::clone"))]


@pytest.mark.parametrize("backend", ["fused", "torch"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_copies_nothing(backend, dtype):
    """Plan tensors are buffers in both precisions: no cast or device copy inside forward, either call."""
    tp = FullyConnectedTensorProduct(hidden((0, 1, 2), 4), hidden((0, 1, 2), 1), hidden((0, 1, 2), 4),
                                     backend=backend)
    x1, x2 = torch.randn(5, tp.irreps_in1.dim, dtype=dtype), torch.randn(5, 9, dtype=dtype)
    w = torch.randn(5, tp.weight_numel, dtype=dtype, requires_grad=True)
    features, matrix = torch.randn(5, 3, dtype=dtype), torch.randn(3, tp.weight_numel, dtype=dtype)
    assert copies_in_forward(tp, x1, x2, w) == []
    assert copies_in_forward(tp, x1, x2, features=features, matrix=matrix) == []


def test_plan_buffers_move_and_keep_their_precision(float64_default):
    """On the meta device the module runs the torch path with its buffers there; .double() leaves them exact."""
    tp = FullyConnectedTensorProduct(hidden((0, 1, 2), 2), hidden((0, 1, 2), 1), hidden((0, 1, 2), 2))
    meta = FullyConnectedTensorProduct(hidden((0, 1, 2), 2), hidden((0, 1, 2), 1), hidden((0, 1, 2), 2)).to("meta")
    assert all(buffer.device.type == "meta" for buffer in meta.buffers())
    x1, x2, w = (torch.empty(4, n, device="meta") for n in (tp.irreps_in1.dim, 9, tp.weight_numel))
    assert meta(x1, x2, w).shape == (4, tp.irreps_out.dim) and meta(x1, x2, w).device.type == "meta"
    before = [b.clone() for b in tp.buffers()]
    tp.float().double()
    assert all(torch.equal(a, b) for a, b in zip(before, tp.buffers()))
    reference = o3.FullyConnectedTensorProduct(tp.irreps_in1, tp.irreps_in2, tp.irreps_out, shared_weights=False)
    x1, x2, w = torch.randn(3, tp.irreps_in1.dim), torch.randn(3, 9), torch.randn(3, tp.weight_numel)
    assert relative_error(tp(x1, x2, w), reference(x1, x2, w)) < 1e-13


def test_without_the_kernel_warns_once_and_stays_exact(monkeypatch, float64_default):
    monkeypatch.setattr(tp_api, "fused_ops", lambda: None)
    monkeypatch.setattr(tp_api, "unavailable_reason", lambda: "the fused CPU kernel could not be built (no g++)")
    monkeypatch.setattr(tp_api, "_warned_unfused", False)
    irreps = (hidden((0, 1), 2), hidden((0, 1), 1), hidden((0, 1), 2))
    tp = FullyConnectedTensorProduct(*irreps, backend="fused")
    reference = o3.FullyConnectedTensorProduct(*irreps, shared_weights=False)
    x1, x2, w = torch.randn(3, tp.irreps_in1.dim), torch.randn(3, 4), torch.randn(3, tp.weight_numel)
    with pytest.warns(RuntimeWarning, match=r"could not be built \(no g\+\+\); tp backend 'fused' runs the 'torch'"):
        out = tp(x1, x2, w)
    assert relative_error(out, reference(x1, x2, w)) < 1e-13
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tp(x1, x2, w)  # once per process
