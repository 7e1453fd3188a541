"""The gradient of a spherical harmonic of order ``l`` as a combination of the harmonics of order ``l - 1``, exactly.

``Y_lm`` (e3nn's convention, component normalisation, :func:`equinb.so3.real_spherical_harmonic`) is a
homogeneous harmonic polynomial of degree ``l`` in ``x, y, z`` (a solid harmonic), so each of its partial
derivatives is a homogeneous harmonic polynomial of degree ``l - 1``, a combination of the ``Y_{l-1,m'}``:

.. math::

    \\frac{\\partial Y_{lm}}{\\partial x_i} = \\sum_{m'} C^{l}_{m i m'}\\, Y_{l-1,m'}.

:func:`ladder_coefficients` derives ``C`` by exact linear algebra: every polynomial is an irrational
normalisation times a polynomial with rational coefficients; the rational system is solved once per order for
all ``(m, i)`` and the residual checked to be exactly zero (a derivative outside the span raises). Each
``(m, i)`` has at most two nonzero ``m'``.

The generated PyTorch backward (:mod:`equinb.sph.codegen`) is built on it: the gradient of order ``l`` costs the
forward of order ``l - 1`` and at most two products per ``(m, i)``. Written this way it compiles like the forward
under :func:`torch.compile`; the direct derivative programs of :func:`equinb.sph.derive.order_program` (which the
Triton kernels use) made inductor's compile time grow steeply with ``l``.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp
from sympy.polys.matrices import DomainMatrix

from ..so3.harmonics import real_spherical_harmonic
from .derive import XYZ


def _rational_form(expr: sp.Expr) -> tuple[sp.Expr, sp.Poly]:
    """``expr = scale * poly`` with ``poly`` of rational coefficients (its leading coefficient 1)."""
    poly = sp.Poly(sp.expand(expr), *XYZ)
    scale = poly.coeffs()[0]
    terms = {monomial: coefficient / scale for monomial, coefficient in poly.terms()}
    if not all(c.is_Rational for c in terms.values()):
        raise ValueError(f"{expr} is not a number times a polynomial with rational coefficients")
    return scale, sp.Poly(terms, *XYZ)


def _qq(value: sp.Expr):
    value = sp.Rational(value)
    return sp.QQ(int(value.p), int(value.q))


@lru_cache(maxsize=None)
def ladder_coefficients(l: int) -> tuple[tuple[tuple[sp.Expr, ...], ...], ...]:
    """Exact ``C[m + l][i][m' + l - 1]`` with ``dY_lm/dx_i = sum_m' C Y_{l-1,m'}``, shape ``(2l + 1, 3, 2l - 1)``.

    Parameters
    ----------
    l
        Order, at least 1.

    Returns
    -------
    tuple
        Nested tuples of exact sympy numbers (zero where ``m'`` does not contribute).

    Raises
    ------
    ValueError
        For ``l < 1``, or (never, for true solid harmonics) a derivative outside the span of order ``l - 1``.
    """
    if l < 1:
        raise ValueError(f"the ladder starts at order 1, got {l}")
    basis = [_rational_form(real_spherical_harmonic(l - 1, m)) for m in range(-(l - 1), l)]
    targets = []
    for m in range(-l, l + 1):
        scale, poly = _rational_form(real_spherical_harmonic(l, m))
        targets += [(scale, poly.diff(v)) for v in XYZ]
    monomials = sorted({mono for _, p in basis for mono in p.monoms()}
                       | {mono for _, p in targets for mono in p.monoms()})
    a = DomainMatrix([[_qq(p.coeff_monomial(mono)) for _, p in basis] for mono in monomials],
                     (len(monomials), len(basis)), sp.QQ)
    b = DomainMatrix([[_qq(p.coeff_monomial(mono)) for _, p in targets] for mono in monomials],
                     (len(monomials), len(targets)), sp.QQ)
    solution = (a.transpose() * a).lu_solve(a.transpose() * b)
    if a * solution != b:
        raise ValueError(f"a derivative of order {l} is not a combination of the harmonics of order {l - 1}")
    rational = solution.to_Matrix()
    coefficients = [
        tuple(sp.radsimp(scale / basis[k][0] * rational[k, j]) for k in range(len(basis)))
        for j, (scale, _) in enumerate(targets)
    ]
    return tuple(tuple(coefficients[3 * row:3 * row + 3]) for row in range(2 * l + 1))
