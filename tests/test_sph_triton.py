"""The Triton kernels themselves (run by Triton's interpreter on the CPU): launches, grids, strides, dtypes.

Value and gradient agreement with e3nn for every order, set, normalisation and upstream-gradient layout is in
``test_sph_api.py`` (parametrised over both backends); this module checks what is specific to the kernels.
"""

from __future__ import annotations

import ast
import os
import re

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported anywhere

import pytest
import torch
from e3nn import o3

from equinb.so3 import L_MAX
from equinb.sph import _generated_triton, api, codegen, spherical_harmonics
from equinb.sph.verify import compare_gradients, compare_values


class LaunchCounter:
    """Wraps a kernel; counts launches and records their grids, keyword and positional arguments."""

    def __init__(self, kernel):
        self.kernel, self.launches, self.args = kernel, [], []

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            self.launches.append((grid, kwargs))
            self.args.append(args)
            return self.kernel[grid](*args, **kwargs)

        return launch


@pytest.fixture
def counted(monkeypatch):
    forward = LaunchCounter(_generated_triton.forward_kernel)
    backward = LaunchCounter(_generated_triton.backward_kernel)
    monkeypatch.setattr(_generated_triton, "forward_kernel", forward)
    monkeypatch.setattr(_generated_triton, "backward_kernel", backward)
    return forward, backward


def test_one_launch_each_way_for_any_set(counted):
    forward, backward = counted
    v = torch.randn(40, 3, dtype=torch.float64, requires_grad=True)
    out = spherical_harmonics([6, 0, 3, 5, 4], v, backend="triton")  # unsorted: written at its own offsets
    torch.testing.assert_close(out, o3.spherical_harmonics([6, 0, 3, 5, 4], v, True), rtol=1e-12, atol=1e-13)
    out.sum().backward()
    assert len(forward.launches) == 1 and len(backward.launches) == 1
    grid, keywords = forward.launches[0]
    assert grid == (1,)
    assert [keywords[f"H{l}"] for l in range(L_MAX + 1)] == [l in (0, 3, 4, 5, 6) for l in range(L_MAX + 1)]
    columns = [keywords[f"col{l}"] for l in (6, 0, 3, 5, 4)]
    assert columns == [0, 13, 14, 21, 32]
    assert keywords["MAXL"] == 6


def test_several_programs_with_a_ragged_last_block(counted, monkeypatch):
    forward, backward = counted
    monkeypatch.setattr(api, "INTERPRETER_BLOCK", 16)
    v = torch.randn(50, 3, dtype=torch.float64)
    assert compare_values([1, 7], v, "triton")["max_rel"] < 1e-12
    assert compare_gradients([1, 7], v, torch.randn(50, 18, dtype=torch.float64), "triton")["max_rel"] < 1e-12
    assert forward.launches[0][0] == (4,) and forward.launches[0][1]["BLOCK"] == 16
    assert backward.launches[0][0] == (4,)


def test_strided_inputs_and_gradients_are_read_in_place(counted):
    forward, backward = counted
    storage = torch.randn(3, 64, dtype=torch.float64)
    v = storage.T[::2]  # strides (1, 64) after the transpose, every other row: (2, 64)
    leaf = v.detach().requires_grad_(True)
    out = spherical_harmonics([2, 9], leaf, backend="triton")
    upstream = torch.randn(24, 64, dtype=torch.float64).T[::2]  # strides (2, 64)
    out.backward(upstream)
    reference_leaf = v.detach().requires_grad_(True)
    o3.spherical_harmonics([2, 9], reference_leaf, True).backward(upstream)
    torch.testing.assert_close(leaf.grad, reference_leaf.grad, rtol=1e-12, atol=1e-12)
    kernel_input = forward.args[0][0]
    assert kernel_input.data_ptr() == storage.data_ptr() and kernel_input.stride() == (2, 64)
    kernel_upstream = backward.args[0][1]
    assert kernel_upstream.stride() == (2, 64)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_constant_tables_follow_the_compute_dtype(dtype):
    constants, params = api._triton_tables("norm", api.compute_dtype(dtype), torch.device("cpu"))
    assert constants.dtype == params.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert len(constants) == len(_generated_triton.CONSTANTS) and len(params) == _generated_triton.L_MAX + 2


def test_float64_is_float64_accurate_at_the_top_order(monkeypatch):
    v = torch.randn(256, 3, dtype=torch.float64)
    assert compare_values(L_MAX, v, "triton", normalization="component")["max_rel"] < 1e-14
    # the check above catches constants below float64 precision: the same kernels with the table rounded
    # through float32 (what float literals in Triton would give) are off by far more
    tables = api._triton_tables

    def float32_constants(normalization, dtype, device):
        constants, params = tables(normalization, dtype, device)
        return constants.float().to(dtype), params

    monkeypatch.setattr(api, "_triton_tables", float32_constants)
    assert compare_values(L_MAX, v, "triton", normalization="component")["max_rel"] > 1e-9


def test_stride_zero_upstream_gradient_of_sum(counted):
    forward, backward = counted
    v = torch.randn(30, 3, dtype=torch.float64)
    assert compare_gradients([0, 1, 2, 8], v, None, "triton")["max_rel"] < 1e-12
    assert len(backward.launches) == 1 and backward.args[0][1].stride() == (0, 0)


def test_kernels_widen_every_stride_to_int64_on_entry():
    """Triton passes integers below 2**31 as int32: an int32 ``column * stride`` wraps past 2**31 - 1 (from 12.8 M
    rows on for a transposed upstream gradient of L = 0..12). Every stride argument must be cast before any use."""
    tree = ast.parse(codegen.TRITON_FILE.read_text())  # the committed kernels (fresh: test_sph_codegen)
    kernels = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert set(kernels) == set(codegen.TRITON_STRIDES)
    for name, kernel in kernels.items():
        strides = {a.arg for a in kernel.args.args if re.fullmatch(r"\w+_s\d", a.arg)}
        assert strides == set(codegen.TRITON_STRIDES[name]) and strides
        entry = [ast.unparse(statement) for statement in kernel.body[: len(strides)]]
        assert sorted(entry) == sorted(f"{s} = tl.cast({s}, tl.int64)" for s in strides), name


def test_huge_strides_do_not_wrap(tmp_path):
    """Input and upstream gradient with a column stride of 2**30 + 8 (products up to 2**31 + 16): views of a
    sparse 8 GiB file, of which only a few pages are ever touched. Where an int32 offset would wrap, the file
    holds decoys, so a kernel with 32-bit offsets returns wrong numbers (checked on the kernels before the fix)."""
    stride, offset, n = 2**30 + 8, 2**31, 4
    path = tmp_path / "sparse.bin"
    size = offset + 2 * stride + 2048
    with open(path, "wb") as handle:
        handle.truncate(2 * size)
    storage = torch.from_file(str(path), shared=True, size=size, dtype=torch.float16)
    generator = torch.Generator().manual_seed(18)
    values, upstream = torch.randn(2, n, 3, generator=generator).half()
    v = storage.as_strided((n, 3), (1, stride), offset)
    g = storage.as_strided((n, 3), (1, stride), offset + 1024)
    v.copy_(values)
    g.copy_(upstream)
    wrapped = 2 * stride - 2**32  # where 2 * stride lands in int32
    storage[offset + wrapped : offset + wrapped + n] = 100.0
    storage[offset + 1024 + wrapped : offset + 1024 + wrapped + n] = -100.0
    leaf = v.detach().requires_grad_(True)
    out = spherical_harmonics(1, leaf, True, "component", "triton")
    out.backward(g)
    reference_leaf = values.double().requires_grad_(True)
    o3.spherical_harmonics(1, reference_leaf, True, "component").backward(upstream.double())
    torch.testing.assert_close(out.double(), o3.spherical_harmonics(1, values.double(), True, "component"),
                               rtol=2e-3, atol=2e-3)
    torch.testing.assert_close(leaf.grad.double(), reference_leaf.grad, rtol=5e-3, atol=5e-3)
