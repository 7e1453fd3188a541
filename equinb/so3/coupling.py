r"""Clebsch–Gordan and Wigner-3j coefficients for e3nn's real spherical harmonics, in exact arithmetic.

Route. The textbook coefficients are defined for the complex harmonics ``Y_l^m`` with the Condon–Shortley
phase; sympy computes those Wigner 3j symbols exactly (:func:`sympy.physics.wigner.wigner_3j`). The real
harmonics of :mod:`equinb.so3.harmonics` (e3nn's convention, polar axis ``y``) are a unitary recombination of the
complex ones taken in the same frame ``(X, Y, Z) = (z, x, y)``: with both sets orthonormal on the sphere,

.. math::

    R_{l0} = Y_l^0,\qquad
    R_{lm} = \frac{(-1)^m Y_l^m + Y_l^{-m}}{\sqrt 2},\qquad
    R_{l,-m} = i\,\frac{Y_l^{-m} - (-1)^m Y_l^m}{\sqrt 2}\qquad (m > 0),

i.e. ``R = U Y`` with the matrix ``U`` of :func:`complex_to_real` (rows: e3nn component index ``l + m``,
columns: complex ``m = -l..l``). e3nn's "component" harmonics are ``sqrt(4 pi) R``.

Carrying the rotation-invariant 3j tensor to the real basis gives

.. math::

    C^{l_1 l_2 l_3}_{abc} = i^{\,l_1 + l_2 + l_3}
    \sum_{m_1 m_2 m_3} \overline{U^{l_1}_{a m_1}}\;\overline{U^{l_2}_{b m_2}}\;\overline{U^{l_3}_{c m_3}}
    \begin{pmatrix} l_1 & l_2 & l_3 \\ m_1 & m_2 & m_3 \end{pmatrix}.

Without the phase the sum is real for even ``l1 + l2 + l3`` and imaginary for odd; ``i**(l1 + l2 + l3)`` makes it
real in both cases. Its properties:

* invariance: ``C_abc D1_ai D2_bj D3_ck = C_ijk`` for every rotation, with e3nn's real Wigner-D matrices;
* unit Frobenius norm, ``sum C_abc**2 = 1``, inherited from the orthogonality of the 3j symbols
  (``sum_{m1 m2} 3j**2 = 1 / (2 l3 + 1)``), so no renormalisation is needed;
* **equal, entry by entry and sign included, to** ``e3nn.o3.wigner_3j(l1, l2, l3)`` (e3nn normalises its
  tensor to unit Frobenius norm, which this one already has). The other phase that makes the sum real,
  ``i**-(l1 + l2 + l3)``, gives ``(-1)**(l1 + l2 + l3)`` times e3nn's tensor. Example:
  ``C^{111}_{abc} = epsilon_abc / sqrt(6)`` in e3nn's ``(x, y, z)`` order. Checked in
  ``tests/test_so3_coupling.py`` for all triples with orders ``<= 4`` and spot checks up to 10.

The real Clebsch–Gordan coefficients, the coupling matrix of ``l1 x l2 -> l3`` in the real bases, are

.. math::

    G^{l_1 l_2 l_3}_{abc} = \sqrt{2 l_3 + 1}\, C^{l_1 l_2 l_3}_{abc}
    = i^{\,l_3 - l_1 - l_2} \sum \overline{U^{l_1}_{a m_1}}\;\overline{U^{l_2}_{b m_2}}\;U^{l_3}_{c M}
    \langle l_1 m_1\, l_2 m_2 | l_3 M \rangle,

orthonormal in both directions: ``sum_ab G_abc G_abc' = delta_cc'`` and
``sum_{l3, c} G_abc G_a'b'c = delta_aa' delta_bb'``.

Cost (measured on 2 shared CPU cores): an exact tensor with ``l1 = l2 = 10`` takes under a second the first time;
every function here is cached per triple (``lru_cache(typed=True)``, so ``1.0`` or ``True`` are validated, not
mistaken for ``1``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy as sp
from sympy.physics.wigner import wigner_3j

from .orders import check_order
from .paths import triangle_allowed


@lru_cache(maxsize=None, typed=True)
def complex_to_real(l: int) -> sp.ImmutableMatrix:
    """Exact unitary ``U`` with ``R = U Y``: real (e3nn order) from complex (Condon–Shortley) harmonics.

    Parameters
    ----------
    l
        Order, ``l >= 0``.

    Returns
    -------
    sympy.ImmutableMatrix
        ``(2l + 1, 2l + 1)``; row ``l + m`` is e3nn's component ``m``, column ``l + k`` the complex ``Y_l^k``,
        both harmonics taken in the frame ``(X, Y, Z) = (z, x, y)`` (polar axis ``y``).

    Examples
    --------
    >>> complex_to_real(1)
    Matrix([
    [sqrt(2)*I/2, 0, sqrt(2)*I/2],
    [          0, 1,           0],
    [  sqrt(2)/2, 0,  -sqrt(2)/2]])
    """
    l = check_order(l)
    u = sp.zeros(2 * l + 1, 2 * l + 1)
    half = 1 / sp.sqrt(2)
    u[l, l] = 1
    for m in range(1, l + 1):
        sign = (-1) ** m
        u[l + m, l + m] = sign * half  # cos-type: ((-1)^m Y^m + Y^-m) / sqrt 2
        u[l + m, l - m] = half
        u[l - m, l - m] = sp.I * half  # sin-type: i (Y^-m - (-1)^m Y^m) / sqrt 2
        u[l - m, l + m] = -sp.I * sign * half
    return sp.ImmutableMatrix(u)


def _check_triple(l1: int, l2: int, l3: int) -> tuple[int, int, int]:
    if not triangle_allowed(l1, l2, l3):
        raise ValueError(f"({l1}, {l2}, {l3}) violates the triangle rule |l1 - l2| <= l3 <= l1 + l2")
    return int(l1), int(l2), int(l3)


@lru_cache(maxsize=None, typed=True)
def _wigner_3j_entries(l1: int, l2: int, l3: int) -> tuple[tuple[tuple[int, int, int], sp.Expr], ...]:
    """The non-zero exact entries of :func:`wigner_3j_real` as ``((a, b, c), value)`` pairs, sorted by index."""
    l1, l2, l3 = _check_triple(l1, l2, l3)
    u1, u2, u3 = (complex_to_real(l).conjugate() for l in (l1, l2, l3))
    phase = sp.I ** (l1 + l2 + l3)
    sums: dict[tuple[int, int, int], sp.Expr] = {}
    for m1 in range(-l1, l1 + 1):
        for m2 in range(-l2, l2 + 1):
            m3 = -m1 - m2
            if abs(m3) > l3:
                continue
            symbol = wigner_3j(l1, l2, l3, m1, m2, m3)
            if symbol == 0:
                continue
            # column l + m of U is non-zero only in rows l + m and l - m
            for a in {l1 + m1, l1 - m1}:
                for b in {l2 + m2, l2 - m2}:
                    for c in {l3 + m3, l3 - m3}:
                        term = u1[a, l1 + m1] * u2[b, l2 + m2] * u3[c, l3 + m3] * symbol
                        sums[(a, b, c)] = sums.get((a, b, c), sp.Integer(0)) + term
    entries = []
    for index in sorted(sums):
        entry = sp.expand(phase * sums[index])
        if not entry.is_real:
            raise ArithmeticError(f"non-real 3j entry {entry} at {index} for ({l1}, {l2}, {l3})")
        if entry != 0:
            entries.append((index, entry))
    return tuple(entries)


@lru_cache(maxsize=None, typed=True)
def wigner_3j_real(l1: int, l2: int, l3: int) -> sp.ImmutableDenseNDimArray:
    """Exact real Wigner-3j tensor ``C[a, b, c]``, equal to ``e3nn.o3.wigner_3j(l1, l2, l3)``.

    See the module docstring for the definition, the phase ``i**(l1 + l2 + l3)`` and the sign rule.

    Parameters
    ----------
    l1, l2, l3
        Orders obeying the triangle rule ``|l1 - l2| <= l3 <= l1 + l2``. Parity is not required: for odd
        ``l1 + l2 + l3`` the tensor changes sign under inversion (e.g. the cross product for ``(1, 1, 1)``).

    Returns
    -------
    sympy.ImmutableDenseNDimArray
        Shape ``(2l1 + 1, 2l2 + 1, 2l3 + 1)``, indices in e3nn's component order, entries exact real numbers
        (signed square roots of rationals), unit Frobenius norm.

    Raises
    ------
    ValueError
        If an order is not a non-negative integer or the triangle rule fails.

    Examples
    --------
    >>> wigner_3j_real(1, 1, 0)[0, 0, 0]
    sqrt(3)/3
    >>> wigner_3j_real(1, 1, 1)[0, 1, 2]
    sqrt(6)/6
    """
    l1, l2, l3 = _check_triple(l1, l2, l3)
    tensor = sp.MutableDenseNDimArray.zeros(2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1)
    for index, entry in _wigner_3j_entries(l1, l2, l3):
        tensor[index] = entry
    return sp.ImmutableDenseNDimArray(tensor)


@lru_cache(maxsize=None, typed=True)
def wigner_3j_sparse(l1: int, l2: int, l3: int) -> tuple[np.ndarray, np.ndarray]:
    """The non-zero entries of :func:`wigner_3j_real`, each exact value correctly rounded to float64.

    Real coupling tensors are sparse (only ``m``-combinations allowed by the selection rules survive), so this is
    the form the tensor product (:mod:`equinb.tp`) reads; it avoids building the dense sympy array.

    Parameters
    ----------
    l1, l2, l3
        Orders obeying the triangle rule.

    Returns
    -------
    indices : numpy.ndarray
        ``(nnz, 3)`` int64 rows ``(a, b, c)`` in e3nn's component order, sorted; read-only.
    values : numpy.ndarray
        ``(nnz,)`` float64; read-only.
    """
    entries = _wigner_3j_entries(*_check_triple(l1, l2, l3))
    indices = np.array([index for index, _ in entries], dtype=np.int64).reshape(-1, 3)
    values = np.array([float(value) for _, value in entries], dtype=np.float64)
    for array in (indices, values):
        array.setflags(write=False)
    return indices, values


@lru_cache(maxsize=None, typed=True)
def clebsch_gordan_real(l1: int, l2: int, l3: int) -> sp.ImmutableDenseNDimArray:
    """Exact real Clebsch–Gordan coefficients ``G[a, b, c] = sqrt(2 l3 + 1) * wigner_3j_real(l1, l2, l3)``.

    ``G[:, :, c]`` expresses the coupled real state ``(l3, c)`` in products of real states of ``l1`` and
    ``l2``; see the module docstring for its relation to the Condon–Shortley ``<l1 m1 l2 m2 | l3 M>``.

    Parameters
    ----------
    l1, l2, l3
        Orders obeying the triangle rule.

    Returns
    -------
    sympy.ImmutableDenseNDimArray
        Shape ``(2l1 + 1, 2l2 + 1, 2l3 + 1)``, exact real entries;
        ``sum_ab G[a, b, c] G[a, b, c'] = delta_cc'``.
    """
    return sp.sqrt(2 * l3 + 1) * wigner_3j_real(l1, l2, l3)


def _as_float(tensor: sp.NDimArray) -> np.ndarray:
    values = np.array(tensor.tolist(), dtype=np.float64)
    values.setflags(write=False)
    return values


@lru_cache(maxsize=None, typed=True)
def wigner_3j_numeric(l1: int, l2: int, l3: int) -> np.ndarray:
    """:func:`wigner_3j_real` as a read-only float64 array (each entry the exact value correctly rounded).

    Returns
    -------
    numpy.ndarray
        Shape ``(2l1 + 1, 2l2 + 1, 2l3 + 1)``, not writeable (it is cached; copy it to modify it). For torch use
        ``torch.from_numpy(wigner_3j_numeric(l1, l2, l3).copy())``.
    """
    l1, l2, l3 = _check_triple(l1, l2, l3)
    indices, values = wigner_3j_sparse(l1, l2, l3)
    dense = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1))
    dense[tuple(indices.T)] = values
    dense.setflags(write=False)
    return dense


@lru_cache(maxsize=None, typed=True)
def clebsch_gordan_numeric(l1: int, l2: int, l3: int) -> np.ndarray:
    """:func:`clebsch_gordan_real` as a read-only float64 array (cached like :func:`wigner_3j_numeric`)."""
    return _as_float(clebsch_gordan_real(l1, l2, l3))
