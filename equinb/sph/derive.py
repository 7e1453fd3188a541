"""Decoupled spherical harmonics: exact sympy polynomials refactored for evaluation, with analytic gradients.

Starting point is the exact polynomial ``Y_lm(x, y, z)`` of :func:`equinb.so3.real_spherical_harmonic`
(e3nn's convention: ``y`` is the polar axis, component normalisation). Every such polynomial factors as

.. math::

    Y_{lm} = A_m(z, x)\\; y^{p}\\; R_{lm}(y^2, h^2),\\qquad h^2 = x^2 + z^2,

where the azimuthal factor ``A_m`` is ``Re (z + i x)^m`` for ``m > 0``, ``Im (z + i x)^|m|`` for ``m < 0`` and
``1`` for ``m = 0``; ``p = (l - |m|) mod 2``; and ``R_lm`` is a homogeneous polynomial of degree
``K = (l - |m| - p) / 2`` in ``y^2`` and ``h^2`` with the normalisation constant folded into its coefficients.
The factorisation is *derived*, not assumed: :func:`decoupled_component` divides the exact polynomial by
``A_m`` (the remainder must vanish), checks that the quotient depends on ``x, z`` only through ``x^2 + z^2``,
and reads ``R_lm``'s coefficients off it.

Each component is then a direct function of ``x, y, z`` — no term of order ``l`` depends on an order below
it — written over a small set of *shared terms* that any order may reuse (:class:`SharedTerm`):

* ``yy{a} = y^(2a)`` and ``hh{b} = (x^2 + z^2)^b``, one multiplication each from the previous power;
* ``yy{a}hh{b} = yy{a} * hh{b}``, the monomials of ``R``;
* ``c{m}, s{m} = Re, Im (z + i x)^m`` from the complex recurrence ``(c, s)_m = (c, s)_{m-1} (z + i x)``
  (``c1 = z``, ``s1 = x``), which is better conditioned than the expanded binomial (no cancellation: it is
  a rotation-scaling of the previous pair).

Gradients ``dY_lm / d(x, y, z)`` follow from ``sympy.diff`` and the chain rule through the shared terms,
whose derivatives are again shared terms (``d c_m / dz = m c_{m-1}``, ``d hh{b} / dx = 2 b x hh{b-1}``, ...).
Per order, :func:`order_program` collects the components and gradients and runs ``sympy.cse`` over them;
code generators (:mod:`equinb.sph.codegen`) print these straight-line programs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from equinb.so3.harmonics import real_spherical_harmonic, x, y, z

#: The Cartesian symbols, in the order gradients are listed.
XYZ = (x, y, z)

_t = sp.Symbol("t", nonnegative=True)  # stands for h^2 = x^2 + z^2 while reading off R's coefficients


@dataclass(frozen=True)
class SharedTerm:
    """An intermediate that any component of any order may use.

    Attributes
    ----------
    symbol
        Its name in the generated code (``yy2``, ``hh1``, ``yy1hh2``, ``c3``, ...).
    definition
        How it is computed from ``x, y, z`` and earlier shared terms (one or a few operations).
    polynomial
        The same quantity as an expanded polynomial in ``x, y, z``.
    gradient
        ``(d/dx, d/dy, d/dz)`` of it, written over ``x, y, z`` and shared terms.
    """

    symbol: sp.Symbol
    definition: sp.Expr
    polynomial: sp.Expr
    gradient: tuple[sp.Expr, sp.Expr, sp.Expr]


def _yy(a: int) -> sp.Expr:
    return sp.Integer(1) if a == 0 else sp.Symbol(f"yy{a}")


def _monomial(a: int, b: int) -> sp.Expr:
    """The shared term holding ``y^(2a) (x^2 + z^2)^b``."""
    if a == 0 and b == 0:
        return sp.Integer(1)
    return sp.Symbol(("" if a == 0 else f"yy{a}") + ("" if b == 0 else f"hh{b}"))


_MONOMIAL_NAME = re.compile(r"^(?:yy(\d+))?(?:hh(\d+))?$")


def _monomial_exponents(symbol: sp.Symbol) -> tuple[int, int] | None:
    """``(a, b)`` of a shared monomial ``yy{a}hh{b}``, or ``None`` for any other symbol."""
    match = _MONOMIAL_NAME.match(symbol.name)
    if match is None or not symbol.name:
        return None
    return int(match.group(1) or 0), int(match.group(2) or 0)


def _fold_even_y_powers(expr: sp.Expr) -> sp.Expr:
    """Absorb ``y**(2j)`` factors of each term into its shared monomial (``y**2 * yy1hh2 -> yy2hh2``)."""
    folded = sp.Integer(0)
    for term in sp.Add.make_args(sp.expand(expr)):
        j = sp.degree(term, y) // 2
        if j:
            monomials = [(s, _monomial_exponents(s)) for s in term.free_symbols if _monomial_exponents(s)]
            (symbol, (a, b)), = monomials or [(sp.Integer(1), (0, 0))]
            term = term / (y ** (2 * j) * symbol) * _monomial(a + j, b)
        folded += term
    return folded


def _azimuthal(m: int) -> tuple[sp.Expr, sp.Expr]:
    """``(c_m, s_m)`` as the symbols (or ``x, z, 1, 0`` for ``m <= 1``) the generated code uses."""
    if m == 0:
        return sp.Integer(1), sp.Integer(0)
    if m == 1:
        return z, x
    return sp.Symbol(f"c{m}"), sp.Symbol(f"s{m}")


@lru_cache(maxsize=None)
def shared_terms(l_max: int) -> tuple[SharedTerm, ...]:
    """All shared terms the components of orders ``0..l_max`` use, in a valid evaluation order.

    Parameters
    ----------
    l_max
        Highest order.

    Returns
    -------
    tuple of SharedTerm
        Each term's definition only refers to ``x, y, z`` and terms listed before it.
    """
    terms: list[SharedTerm] = []
    h2 = x**2 + z**2
    for a in range(1, l_max // 2 + 1):  # y^(2a)
        definition = y * y if a == 1 else _yy(a - 1) * _yy(1)
        grad = (sp.Integer(0), 2 * a * y * _yy(a - 1), sp.Integer(0))
        terms.append(SharedTerm(_yy(a), definition, y ** (2 * a), grad))
    for b in range(1, l_max // 2 + 1):  # (x^2 + z^2)^b
        definition = x * x + z * z if b == 1 else _monomial(0, b - 1) * _monomial(0, 1)
        grad = (2 * b * x * _monomial(0, b - 1), sp.Integer(0), 2 * b * z * _monomial(0, b - 1))
        terms.append(SharedTerm(_monomial(0, b), definition, sp.expand(h2**b), grad))
    for degree in range(2, l_max // 2 + 1):  # mixed monomials y^(2a) (x^2 + z^2)^b, a, b >= 1
        for a in range(1, degree):
            b = degree - a
            grad = (
                2 * b * x * _monomial(a, b - 1),
                2 * a * y * _monomial(a - 1, b),
                2 * b * z * _monomial(a, b - 1),
            )
            terms.append(SharedTerm(_monomial(a, b), _yy(a) * _monomial(0, b), sp.expand(y ** (2 * a) * h2**b), grad))
    for m in range(2, l_max + 1):  # (c_m, s_m) = Re, Im (z + i x)^m
        (c_prev, s_prev), (c_m, s_m) = _azimuthal(m - 1), _azimuthal(m)
        power = sp.expand((z + sp.I * x) ** m)
        terms.append(SharedTerm(c_m, c_prev * z - s_prev * x, sp.re(power), (-m * s_prev, sp.Integer(0), m * c_prev)))
        terms.append(SharedTerm(s_m, c_prev * x + s_prev * z, sp.im(power), (m * c_prev, sp.Integer(0), m * s_prev)))
    return tuple(terms)


@lru_cache(maxsize=None)
def _shared_by_symbol(l_max: int) -> dict[sp.Symbol, SharedTerm]:
    return {term.symbol: term for term in shared_terms(l_max)}


def expand_shared(expr: sp.Expr, l_max: int) -> sp.Expr:
    """Replace every shared term in ``expr`` by its polynomial and expand.

    Parameters
    ----------
    expr
        Expression over ``x, y, z`` and shared terms of orders up to ``l_max``.
    l_max
        Highest order the shared terms were built for.

    Returns
    -------
    sympy.Expr
        Expanded polynomial in ``x, y, z``.
    """
    table = _shared_by_symbol(l_max)
    return sp.expand(expr.xreplace({s: table[s].polynomial for s in expr.free_symbols if s in table}))


@lru_cache(maxsize=None)
def decoupled_component(l: int, m: int) -> sp.Expr:
    """``Y_lm`` factored as ``A_m * y^p * R_lm`` over shared terms (see the module docstring).

    Parameters
    ----------
    l
        Order, ``l >= 0``.
    m
        Component, ``-l <= m <= l`` (e3nn's index ``l + m``).

    Returns
    -------
    sympy.Expr
        Equal to :func:`equinb.so3.real_spherical_harmonic` once shared terms are expanded.

    Raises
    ------
    ArithmeticError
        If the exact polynomial does not have the expected structure (never for genuine harmonics).
    """
    exact = real_spherical_harmonic(l, m)
    am = abs(m)
    power = sp.expand((z + sp.I * x) ** am)
    azimuthal_poly = sp.re(power) if m >= 0 else sp.im(power)
    azimuthal = _azimuthal(am)[0 if m >= 0 else 1]
    quotient = sp.cancel(exact / azimuthal_poly)
    if not quotient.is_polynomial(x, y, z):
        raise ArithmeticError(f"Y_{l},{m} is not divisible by its azimuthal factor {azimuthal_poly}")
    polar = sp.expand(quotient.xreplace({x: sp.sqrt(_t), z: sp.Integer(0)}))  # depends on x, z via x^2 + z^2
    if sp.expand(polar.xreplace({_t: x**2 + z**2}) - quotient) != 0:
        raise ArithmeticError(f"Y_{l},{m} / A_m is not a function of y and x^2 + z^2")
    parity = (l - am) % 2
    total = sp.Integer(0)
    for (power_y, power_t), coeff in sp.Poly(polar, y, _t).terms():
        total += coeff * _monomial((power_y - parity) // 2, power_t)
    return azimuthal * y**parity * total


def total_derivative(expr: sp.Expr, variable: sp.Symbol, l_max: int) -> sp.Expr:
    """``d expr / d variable`` through the shared terms (chain rule), written over shared terms.

    Parameters
    ----------
    expr
        Expression over ``x, y, z`` and shared terms.
    variable
        One of ``x, y, z``.
    l_max
        Highest order the shared terms were built for.

    Returns
    -------
    sympy.Expr
        ``sympy.diff(expr, variable) + sum_s sympy.diff(expr, s) * ds/dvariable``, expanded, even powers of
        ``y`` absorbed into the shared monomials, common factors pulled out (``sympy.factor_terms``).
    """
    table = _shared_by_symbol(l_max)
    axis = XYZ.index(variable)
    result = sp.diff(expr, variable)
    for symbol in expr.free_symbols:
        if symbol in table:
            result += sp.diff(expr, symbol) * table[symbol].gradient[axis]
    return sp.factor_terms(_fold_even_y_powers(result))


@lru_cache(maxsize=None)
def component_gradient(l: int, m: int) -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """``(dY_lm/dx, dY_lm/dy, dY_lm/dz)`` over shared terms (see :func:`total_derivative`)."""
    component = decoupled_component(l, m)
    return tuple(total_derivative(component, v, l) for v in XYZ)  # type: ignore[return-value]


@dataclass(frozen=True)
class OrderProgram:
    """Straight-line programs evaluating one order ``l`` and its gradient, after ``sympy.cse``.

    Numeric coefficients appear as placeholder symbols ``k{l}_{i}`` (listed in ``constants`` with their exact,
    positive values) so that ``cse`` treats each as one atom and code generators decide how to materialise them
    (a literal, or an entry of a constants table in the input's dtype).

    Attributes
    ----------
    l
        Order.
    constants
        ``(placeholder, exact value)`` pairs.
    forward
        ``(temporaries, outputs)``: temporaries are ``(symbol, expr)`` pairs evaluated in order, then the
        ``2l + 1`` outputs ``Y_l,-l .. Y_l,l``.
    backward
        ``(temporaries, gradients)``: ``gradients[i]`` is ``(dY_i/dx, dY_i/dy, dY_i/dz)`` for component
        index ``i = l + m``.
    forward_shared, backward_shared
        The shared terms each program reads (directly or through other shared terms), in evaluation order.
    """

    l: int
    constants: tuple[tuple[sp.Symbol, sp.Expr], ...]
    forward: tuple[tuple[tuple[sp.Symbol, sp.Expr], ...], tuple[sp.Expr, ...]]
    backward: tuple[tuple[tuple[sp.Symbol, sp.Expr], ...], tuple[tuple[sp.Expr, sp.Expr, sp.Expr], ...]]
    forward_shared: tuple[SharedTerm, ...]
    backward_shared: tuple[SharedTerm, ...]


class _ConstantNamer:
    """Replaces the numeric coefficient of every product by a placeholder symbol (one per distinct value)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.symbols: dict[sp.Expr, sp.Symbol] = {}

    def _name(self, value: sp.Expr) -> sp.Expr:
        if value in (0, 1, -1):
            return value
        sign = -1 if value.is_negative else 1
        magnitude = sign * value
        if magnitude not in self.symbols:
            self.symbols[magnitude] = sp.Symbol(f"{self.prefix}{len(self.symbols)}")
        return sign * self.symbols[magnitude]

    def __call__(self, expr: sp.Expr) -> sp.Expr:
        if expr.is_number:
            return self._name(expr)
        if expr.is_Atom:
            return expr
        if expr.is_Mul:
            numeric = sp.Mul(*[a for a in expr.args if a.is_number])
            return self._name(numeric) * sp.Mul(*[self(a) for a in expr.args if not a.is_number])
        if expr.is_Pow:
            return sp.Pow(self(expr.base), expr.exp)
        return expr.func(*[self(a) for a in expr.args])


def _shared_closure(exprs: list[sp.Expr], l: int) -> tuple[SharedTerm, ...]:
    """Shared terms ``exprs`` read, directly or through the definitions of other shared terms."""
    table = _shared_by_symbol(l)
    needed = set().union(*(e.free_symbols for e in exprs)) & set(table)
    for term in reversed(shared_terms(l)):  # definitions only refer to earlier terms: one backward sweep closes
        if term.symbol in needed:
            needed |= term.definition.free_symbols & set(table)
    return tuple(term for term in shared_terms(l) if term.symbol in needed)


def _cse(exprs: list[sp.Expr], prefix: str) -> tuple[tuple[tuple[sp.Symbol, sp.Expr], ...], list[sp.Expr]]:
    temporaries, reduced = sp.cse(exprs, symbols=sp.numbered_symbols(prefix), order="none")
    return tuple(temporaries), reduced


@lru_cache(maxsize=None)
def order_program(l: int) -> OrderProgram:
    """Forward and backward programs of order ``l`` (common sub-expressions shared across its components).

    Parameters
    ----------
    l
        Order, ``l >= 0``.

    Returns
    -------
    OrderProgram
        Temporaries are named ``f{l}_{i}`` (forward) and ``b{l}_{i}`` (backward), constants ``k{l}_{i}``.
    """
    namer = _ConstantNamer(f"k{l}_")
    components = [namer(decoupled_component(l, m)) for m in range(-l, l + 1)]
    gradients = [namer(g) for m in range(-l, l + 1) for g in component_gradient(l, m)]
    fwd_temps, fwd_out = _cse(components, f"f{l}_")
    bwd_temps, bwd_flat = _cse(gradients, f"b{l}_")
    bwd_out = tuple(tuple(bwd_flat[3 * i : 3 * i + 3]) for i in range(2 * l + 1))
    constants = tuple((symbol, value) for value, symbol in namer.symbols.items())
    return OrderProgram(
        l,
        constants,
        (fwd_temps, tuple(fwd_out)),  # type: ignore[arg-type]
        (bwd_temps, bwd_out),  # type: ignore[arg-type]
        _shared_closure(components, l),
        _shared_closure(gradients, l),
    )
