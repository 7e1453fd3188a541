"""Real spherical harmonics in e3nn's convention as exact sympy polynomials.

Each ``Y_lm`` is returned as a homogeneous polynomial of degree ``l`` in ``x, y, z`` with exact (rational times
square-root) coefficients: on the unit sphere it is the real spherical harmonic in e3nn's "component"
normalisation (``sum_m Y_lm**2 = 2l + 1``), and for a vector of length ``r`` it equals ``r**l Y_lm(r_hat)``,
which is what ``e3nn.o3.spherical_harmonics(..., normalize=False)`` computes.

Construction (closed form, no recursion over ``l``). In a frame ``(X, Y, Z)`` with polar axis ``Z``,

.. math::

    r^l P_l^m(\\cos\\theta) \\cos m\\phi = \\operatorname{Re}(X + iY)^m \\, r^{l-m} P_l^{(m)}(Z / r),

with ``P_l^{(m)}`` the ``m``-th derivative of the Legendre polynomial (no Condon–Shortley phase); ``sin`` gives
the imaginary part. ``r^{l-m} P_l^{(m)}(Z/r)`` is a polynomial because ``P_l^{(m)}`` has parity ``l - m``. The
real harmonics are

.. math::

    Y_{l0} = \\sqrt{2l+1}\\, r^l P_l(Z/r),\\qquad
    Y_{l,\\pm m} = \\sqrt{2l+1}\\sqrt{2\\,(l-m)!/(l+m)!}\\; r^l P_l^m \\{\\cos, \\sin\\}(m\\phi).

e3nn's convention takes ``y`` as the polar axis and orders components ``m = -l..l`` so that ``Y_1 = sqrt(3)
(x, y, z)``: that is the cyclic relabelling ``(X, Y, Z) = (z, x, y)`` (a proper rotation) of the frame above.
Component ``m`` (index ``l + m``) is the ``cos`` harmonic for ``m > 0`` and the ``sin`` harmonic of ``|m|`` for
``m < 0``; with this relabelling no extra signs are needed (``tests/test_so3_harmonics.py`` checks every
component against e3nn numerically for ``l <= 12``).
"""

from __future__ import annotations

import numbers
from functools import lru_cache

import sympy as sp

from .orders import check_order

#: The Cartesian symbols every expression of this package is written in.
x, y, z = sp.symbols("x y z", real=True)


def _check_lm(l: int, m: int) -> tuple[int, int]:
    l = check_order(l)
    if isinstance(m, bool) or not isinstance(m, numbers.Integral) or abs(m) > l:
        raise ValueError(f"m must be an integer with |m| <= l = {l}, got {m!r}")
    return l, int(m)


def _polar_factor(l: int, m: int, polar: sp.Symbol, r2: sp.Expr) -> sp.Expr:
    """``r**(l-m) * P_l^{(m)}(polar / r)`` as a polynomial, with ``r2 = r**2``."""
    t = sp.Symbol("t")
    derivative = sp.Poly(sp.diff(sp.legendre(l, t), t, m), t)
    total = sp.Integer(0)
    for (k,), coeff in derivative.terms():
        total += coeff * polar**k * r2 ** ((l - m - k) // 2)
    return total


def real_spherical_harmonic(l: int, m: int) -> sp.Expr:
    """Exact ``Y_lm(x, y, z)`` in e3nn's convention, component normalisation, as an expanded polynomial.

    Parameters
    ----------
    l
        Order, ``l >= 0``.
    m
        Component, ``-l <= m <= l``; e3nn's component index is ``l + m``.

    Returns
    -------
    sympy.Expr
        Homogeneous polynomial of degree ``l`` in the symbols :data:`x`, :data:`y`, :data:`z`.

    Examples
    --------
    >>> real_spherical_harmonic(1, -1)
    sqrt(3)*x
    >>> real_spherical_harmonic(2, 0)
    sqrt(5)*(-x**2/2 + y**2 - z**2/2)
    """
    return _real_spherical_harmonic(*_check_lm(l, m))


@lru_cache(maxsize=None)
def _real_spherical_harmonic(l: int, m: int) -> sp.Expr:
    X, Y, Z = z, x, y  # e3nn: y is the polar axis; (X, Y, Z) -> (z, x, y) is a cyclic (proper) relabelling
    r2 = X**2 + Y**2 + Z**2
    am = abs(m)
    if am == 0:
        azimuthal, scale = sp.Integer(1), sp.sqrt(2 * l + 1)
    else:
        power = sp.expand((X + sp.I * Y) ** am)
        azimuthal = sp.re(power) if m > 0 else sp.im(power)
        scale = sp.sqrt(2 * l + 1) * sp.sqrt(sp.Rational(2 * sp.factorial(l - am), sp.factorial(l + am)))
    expr = sp.expand(azimuthal * _polar_factor(l, am, Z, r2))
    return sp.factor_terms(sp.expand(scale * expr))


def spherical_harmonics_exact(l: int) -> list[sp.Expr]:
    """All ``2l + 1`` components of order ``l``, in e3nn's order (``m = -l .. l``).

    Parameters
    ----------
    l
        Order, ``l >= 0``.

    Returns
    -------
    list of sympy.Expr
        ``[Y_{l,-l}, ..., Y_{l,l}]`` as in :func:`real_spherical_harmonic`.
    """
    l = check_order(l)
    return [real_spherical_harmonic(l, m) for m in range(-l, l + 1)]
