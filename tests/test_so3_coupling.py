"""Tests for equinb.so3.coupling: exact real 3j / Clebsch-Gordan tensors.

References are independent of the code under test: e3nn's own ``wigner_3j`` and Wigner-D matrices, sympy's
``Ynm`` and Condon-Shortley ``CG``, closed forms, and products of spherical harmonics.
"""

import itertools

import numpy as np
import pytest
import sympy as sp
import torch
from e3nn import o3
from sympy.physics.quantum.cg import CG

from equinb.so3.coupling import (
    clebsch_gordan_numeric,
    clebsch_gordan_real,
    complex_to_real,
    wigner_3j_numeric,
    wigner_3j_real,
    wigner_3j_sparse,
)
from equinb.so3.harmonics import real_spherical_harmonic, x, y, z

TRIPLES_4 = [t for t in itertools.product(range(5), repeat=3) if abs(t[0] - t[1]) <= t[2] <= t[0] + t[1]]
HIGH_TRIPLES = [(10, 10, 10), (10, 10, 20), (10, 9, 5), (7, 10, 4), (10, 10, 0)]


pytestmark = pytest.mark.usefixtures("float64_default")


def _rotation(seed: int) -> torch.Tensor:
    angles = torch.rand(3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 * np.pi
    return o3.angles_to_matrix(*angles)


def _D(l: int, R: torch.Tensor) -> np.ndarray:
    return o3.Irrep(l, (-1) ** l).D_from_matrix(R).numpy()


@pytest.mark.parametrize("l", range(5))
def test_change_of_basis_is_unitary(l):
    U = complex_to_real(l)
    assert sp.simplify(U * U.H - sp.eye(2 * l + 1)) == sp.zeros(2 * l + 1)


@pytest.mark.parametrize("l", range(4))
def test_change_of_basis_maps_sympy_Ynm_to_the_real_harmonics(l):
    """R = U Y with sympy's Condon-Shortley Ynm in the frame (X, Y, Z) = (z, x, y); e3nn's R is sqrt(4 pi) R."""
    theta, phi = sp.symbols("theta phi", real=True)
    U = np.array(complex_to_real(l).evalf(30).tolist(), dtype=complex)
    rng = np.random.default_rng(l)
    for _ in range(3):
        t, p = rng.uniform(0.1, 3.0), rng.uniform(-3.1, 3.1)
        n = (np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p))  # (x, y, z)
        Y = np.array([complex(sp.Ynm(l, k, theta, phi).expand(func=True).subs({theta: t, phi: p}).evalf())
                      for k in range(-l, l + 1)])
        real = np.array([float(real_spherical_harmonic(l, m).subs(dict(zip((x, y, z), n)))) for m in range(-l, l + 1)])
        np.testing.assert_allclose(U @ Y * np.sqrt(4 * np.pi), real, atol=1e-12)


@pytest.mark.parametrize("triple", TRIPLES_4, ids=str)
def test_equals_e3nn_wigner_3j_up_to_order_4(triple):
    ref = o3.wigner_3j(*triple, dtype=torch.float64).numpy()
    np.testing.assert_allclose(wigner_3j_numeric(*triple), ref, rtol=0, atol=1e-14)


@pytest.mark.parametrize("triple", HIGH_TRIPLES, ids=str)
def test_equals_e3nn_wigner_3j_high_orders(triple):
    ref = o3.wigner_3j(*triple, dtype=torch.float64).numpy()
    np.testing.assert_allclose(wigner_3j_numeric(*triple), ref, rtol=0, atol=1e-13)


@pytest.mark.parametrize("triple", [(2, 2, 2), (3, 3, 4), (1, 2, 3), (4, 3, 2), (10, 9, 5)], ids=str)
def test_entries_are_exact_signed_square_roots_of_rationals_with_unit_norm(triple):
    C = wigner_3j_real(*triple)
    entries = list(sp.flatten(C))
    assert all((v**2).is_Rational for v in entries)
    assert sum(v**2 for v in entries) == 1


def test_closed_forms():
    for l in range(5):  # scalar coupling: delta / sqrt(2l + 1), in both positions
        expected = sp.eye(2 * l + 1) / sp.sqrt(2 * l + 1)
        assert sp.Matrix(wigner_3j_real(l, l, 0)[:, :, 0]) == expected
        assert sp.Matrix(wigner_3j_real(0, l, l)[0, :, :]) == expected
    epsilon = sp.Array([[[sp.LeviCivita(i, j, k) for k in range(3)] for j in range(3)] for i in range(3)])
    assert wigner_3j_real(1, 1, 1) == epsilon / sp.sqrt(6)  # the cross product, in e3nn's (x, y, z) order


@pytest.mark.parametrize("triple", [(1, 1, 1), (1, 2, 2), (2, 2, 3), (3, 2, 4), (4, 4, 4), (5, 6, 7)], ids=str)
def test_invariance_under_rotations_and_parity(triple):
    """C is invariant under D1 x D2 x D3; under inversion it picks up (-1)**(l1 + l2 + l3) (parity rule)."""
    C = wigner_3j_numeric(*triple)
    for R in (_rotation(11), -_rotation(12)):
        rotated = np.einsum("abc,ai,bj,ck->ijk", C, *(_D(l, R) for l in triple))
        sign = (-1) ** sum(triple) if torch.det(R) < 0 else 1
        np.testing.assert_allclose(rotated, sign * C, atol=1e-12)


@pytest.mark.parametrize("triple", [(1, 2, 2), (2, 3, 4), (3, 1, 3)], ids=str)
def test_swap_symmetry(triple):
    """Exchanging the first two orders multiplies a 3j symbol by (-1)**(l1 + l2 + l3)."""
    l1, l2, l3 = triple
    swapped = wigner_3j_numeric(l2, l1, l3).transpose(1, 0, 2)
    np.testing.assert_allclose(swapped, (-1) ** sum(triple) * wigner_3j_numeric(*triple), atol=1e-15)


@pytest.mark.parametrize(("l1", "l2"), [(1, 1), (1, 2), (2, 2)])
def test_clebsch_gordan_orthogonality_exact(l1, l2):
    blocks = [sp.Matrix(sp.Array(clebsch_gordan_real(l1, l2, l3)).reshape((2 * l1 + 1) * (2 * l2 + 1), 2 * l3 + 1))
              for l3 in range(abs(l1 - l2), l1 + l2 + 1)]
    for G in blocks:  # coupled states are orthonormal
        assert sp.simplify(G.T * G) == sp.eye(G.shape[1])
    full = sp.Matrix.hstack(*blocks)  # and complete: the change of basis is orthogonal
    assert sp.simplify(full * full.T) == sp.eye(full.shape[0])


def test_clebsch_gordan_orthogonality_numeric_high_orders():
    l1, l2 = 4, 6
    blocks = [clebsch_gordan_numeric(l1, l2, l3).reshape(-1, 2 * l3 + 1) for l3 in range(2, 11)]
    full = np.hstack(blocks)
    np.testing.assert_allclose(full @ full.T, np.eye(full.shape[0]), atol=1e-13)
    np.testing.assert_allclose(full.T @ full, np.eye(full.shape[0]), atol=1e-13)


@pytest.mark.parametrize("triple", [(1, 1, 0), (1, 1, 1), (1, 2, 2), (2, 2, 1), (2, 1, 3)], ids=str)
def test_clebsch_gordan_relation_to_condon_shortley(triple):
    """G = i**(l3 - l1 - l2) sum conj(U1) conj(U2) U3 <l1 m1 l2 m2 | l3 M>, with sympy's CG."""
    l1, l2, l3 = triple
    U1, U2, U3 = (complex_to_real(l) for l in triple)
    G = clebsch_gordan_real(*triple)
    for a, b, c in itertools.product(range(2 * l1 + 1), range(2 * l2 + 1), range(2 * l3 + 1)):
        total = sum(
            sp.conjugate(U1[a, l1 + m1]) * sp.conjugate(U2[b, l2 + m2]) * U3[c, l3 + m1 + m2]
            * CG(l1, m1, l2, m2, l3, m1 + m2).doit()
            for m1 in range(-l1, l1 + 1)
            for m2 in range(-l2, l2 + 1)
            if abs(m1 + m2) <= l3
        )
        assert sp.expand(sp.I ** (l3 - l1 - l2) * total - G[a, b, c]) == 0


@pytest.mark.parametrize(("l1", "l2"), [(1, 1), (2, 3), (3, 3)])
def test_products_of_harmonics_couple_to_harmonics(l1, l2):
    """sum_ab C_abc Y1_a(n) Y2_b(n) is proportional to Y3_c(n) for even l1 + l2 + l3 and vanishes for odd."""
    n = torch.nn.functional.normalize(torch.randn(20, 3, generator=torch.Generator().manual_seed(5),
                                                  dtype=torch.float64), dim=1)
    Y1, Y2 = (o3.spherical_harmonics(l, n, normalize=False, normalization="component").numpy() for l in (l1, l2))
    for l3 in range(abs(l1 - l2), l1 + l2 + 1):
        coupled = np.einsum("abc,na,nb->nc", wigner_3j_numeric(l1, l2, l3), Y1, Y2)
        Y3 = o3.spherical_harmonics(l3, n, normalize=False, normalization="component").numpy()
        if (l1 + l2 + l3) % 2:
            np.testing.assert_allclose(coupled, 0, atol=1e-13)
        else:
            ratio = np.sum(coupled * Y3) / np.sum(Y3 * Y3)
            assert abs(ratio) > 1e-3
            np.testing.assert_allclose(coupled, ratio * Y3, atol=1e-12)


def test_errors_and_caching():
    with pytest.raises(ValueError, match="triangle"):
        wigner_3j_real(1, 1, 3)
    with pytest.raises(ValueError, match="-1"):
        wigner_3j_real(-1, 1, 1)
    wigner_3j_real(1, 1, 1)
    with pytest.raises(ValueError, match="1.0"):
        wigner_3j_real(1.0, 1, 1)
    first = wigner_3j_numeric(2, 2, 2)
    assert first is wigner_3j_numeric(2, 2, 2) and not first.flags.writeable


@pytest.mark.parametrize("triple", [(0, 0, 0), (1, 1, 1), (2, 3, 4), (4, 4, 6), (6, 5, 3), (8, 2, 7), (10, 10, 2)])
def test_sparse_entries_rebuild_e3nn_wigner_3j(triple):
    """The sparse non-zero list, scattered into a dense tensor, is e3nn's tensor; nothing non-zero is left out."""
    indices, values = wigner_3j_sparse(*triple)
    reference = o3.wigner_3j(*triple, dtype=torch.float64).numpy()
    dense = np.zeros_like(reference)
    dense[tuple(indices.T)] = values
    np.testing.assert_allclose(dense, reference, atol=1e-13)
    assert len(values) == int((np.abs(reference) > 1e-12).sum()) and np.all(values != 0)
    assert not indices.flags.writeable and not values.flags.writeable
