"""Tests for equinb.so3.harmonics: exact polynomials against e3nn and closed-form identities."""

import numpy as np
import pytest
import sympy as sp
import torch
from e3nn import o3

from equinb.so3 import real_spherical_harmonic, spherical_harmonics_exact
from equinb.so3.harmonics import x, y, z

L_CHECKED = 12


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    """Random signed, unnormalised vectors with lengths spread over [0.2, 2]."""
    rng = np.random.default_rng(1234)
    v = rng.normal(size=(64, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True) * rng.uniform(0.2, 2.0, size=(64, 1))


@pytest.mark.parametrize("l", range(L_CHECKED + 1))
def test_exact_polynomials_equal_e3nn(l, vectors):
    f = sp.lambdify((x, y, z), spherical_harmonics_exact(l), modules="numpy")
    ours = np.stack([np.broadcast_to(np.asarray(c, dtype=float), len(vectors)) for c in f(*vectors.T)], -1)
    ref = o3.spherical_harmonics(l, torch.from_numpy(vectors), normalize=False, normalization="component")
    scale = np.sqrt(2 * l + 1) * np.linalg.norm(vectors, axis=1, keepdims=True) ** l  # the size of Y_l(v)
    assert np.max(np.abs(ours - ref.numpy()) / scale) < 1e-12


@pytest.mark.parametrize("l", [0, 1, 2, 3, 6])
def test_norm_identity_is_exact(l):
    total = sum(Y**2 for Y in spherical_harmonics_exact(l))
    assert sp.expand(total - (2 * l + 1) * (x**2 + y**2 + z**2) ** l) == 0


@pytest.mark.parametrize("l", range(L_CHECKED + 1))
def test_homogeneous_of_degree_l(l):
    for Y in spherical_harmonics_exact(l):
        assert sp.Poly(Y, x, y, z).homogeneous_order() == l


@pytest.mark.parametrize("l", range(7))
def test_y_is_the_polar_axis(l):
    """On the polar axis only m = 0 survives, with value sqrt(2l + 1) P_l(1) = sqrt(2l + 1)."""
    values = [Y.subs({x: 0, y: 1, z: 0}) for Y in spherical_harmonics_exact(l)]
    assert values == [sp.sqrt(2 * l + 1) if m == 0 else 0 for m in range(-l, l + 1)]
    # Y_l0 is the Legendre polynomial of cos(theta) = y / r, scaled by sqrt(2l + 1) r^l
    r = sp.sqrt(x**2 + y**2 + z**2)
    legendre = sp.sqrt(2 * l + 1) * r**l * sp.legendre(l, y / r)
    assert sp.simplify(sp.expand(legendre) - real_spherical_harmonic(l, 0)) == 0


def test_docstring_values():
    assert real_spherical_harmonic(1, -1) == sp.sqrt(3) * x
    assert spherical_harmonics_exact(1) == [sp.sqrt(3) * x, sp.sqrt(3) * y, sp.sqrt(3) * z]
    assert sp.expand(real_spherical_harmonic(2, 0) - sp.sqrt(5) * (y**2 - (x**2 + z**2) / 2)) == 0


@pytest.mark.parametrize(("l", "m"), [(-1, 0), (2, 3), (2, -3), (1.5, 0), (2, 0.5)])
def test_bad_orders(l, m):
    with pytest.raises(ValueError):
        real_spherical_harmonic(l, m)


@pytest.mark.parametrize("l", [1.0, True])
def test_cache_does_not_bypass_validation(l):
    real_spherical_harmonic(1, 0)
    with pytest.raises(ValueError):
        real_spherical_harmonic(l, 0)
