"""The ladder ``dY_lm/dx_i = sum_m' C Y_{l-1,m'}`` (:mod:`equinb.sph.ladder`): exact against sympy's derivatives of
the exact harmonics, numerically against e3nn's autograd, and its sparsity."""

from __future__ import annotations

import pytest
import sympy as sp
import torch
from e3nn import o3

from equinb.sph.conventions import KERNEL_L_MAX
from equinb.sph.derive import XYZ
from equinb.sph.ladder import ladder_coefficients
from equinb.so3.harmonics import real_spherical_harmonic


@pytest.mark.parametrize("l", [1, 2, 3, 5, 8, KERNEL_L_MAX])
def test_ladder_is_exact(l):
    below = [real_spherical_harmonic(l - 1, m) for m in range(-(l - 1), l)]
    rows = ladder_coefficients(l)
    ms = range(-l, l + 1) if l <= 8 else (-l, -3, 0, 1, l)
    for m in ms:
        for i, v in enumerate(XYZ):
            combination = sum(c * y for c, y in zip(rows[m + l][i], below))
            assert sp.expand(sp.diff(real_spherical_harmonic(l, m), v) - combination) == 0, (l, m, v)


def test_ladder_matches_e3nn_gradients():
    torch.manual_seed(3)
    v = torch.randn(64, 3, dtype=torch.float64, requires_grad=True)
    for l in range(1, KERNEL_L_MAX + 1):
        y = o3.spherical_harmonics(l, v, normalize=False, normalization="component")
        below = o3.spherical_harmonics(l - 1, v, normalize=False, normalization="component").detach()
        c = torch.tensor([[[float(value) for value in axis] for axis in row] for row in ladder_coefficients(l)],
                         dtype=torch.float64)
        for m in range(2 * l + 1):
            (grad,) = torch.autograd.grad(y[:, m].sum(), v, retain_graph=True)
            expected = torch.einsum("ik,nk->ni", c[m], below)
            torch.testing.assert_close(grad, expected, rtol=1e-10, atol=1e-10 * float(grad.abs().max()))


def test_at_most_two_terms_per_derivative_and_clear_errors():
    for l in range(1, KERNEL_L_MAX + 1):
        rows = ladder_coefficients(l)
        assert len(rows) == 2 * l + 1 and all(len(axis) == 2 * l - 1 for row in rows for axis in row)
        assert max(sum(c != 0 for c in axis) for row in rows for axis in row) <= 2
    with pytest.raises(ValueError, match=r"^the ladder starts at order 1, got 0$"):
        ladder_coefficients(0)
