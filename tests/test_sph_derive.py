"""equinb.sph.derive and equinb.sph.opcount: exact identities of the decoupled forms, and operation counts."""

from __future__ import annotations

import matplotlib
import pytest
import sympy as sp

matplotlib.use("Agg")

from equinb.so3.harmonics import real_spherical_harmonic, x, y, z
from equinb.sph.derive import (
    XYZ,
    component_gradient,
    decoupled_component,
    expand_shared,
    order_program,
    shared_terms,
)
from equinb.sph.opcount import component_counts, count_ops, e3nn_component, order_counts
from equinb.sph.plots import plot_operation_counts

TESTED_L_MAX = 12


def test_shared_terms_match_their_polynomials_and_gradients():
    terms = shared_terms(TESTED_L_MAX)
    defined: dict[sp.Symbol, sp.Expr] = {}
    for term in terms:
        assert term.definition.free_symbols <= {x, y, z, *defined}, f"{term.symbol} uses a later term"
        value = sp.expand(term.definition.xreplace(defined))
        assert value == sp.expand(term.polynomial), term.symbol
        for variable, gradient in zip(XYZ, term.gradient):
            assert expand_shared(gradient, TESTED_L_MAX) == sp.diff(term.polynomial, variable), term.symbol
        defined[term.symbol] = term.polynomial


@pytest.mark.parametrize("l", range(TESTED_L_MAX + 1))
def test_decoupled_components_and_gradients_are_exact(l):
    for m in range(-l, l + 1):
        exact = sp.expand(real_spherical_harmonic(l, m))
        assert sp.expand(expand_shared(decoupled_component(l, m), l) - exact) == 0, (l, m)
        for variable, gradient in zip(XYZ, component_gradient(l, m)):
            assert sp.expand(expand_shared(gradient, l) - sp.diff(exact, variable)) == 0, (l, m, variable)


@pytest.mark.parametrize("l", [0, 1, 2, 5, 10])
def test_cse_programs_reproduce_the_components(l):
    program = order_program(l)
    temporaries, outputs = program.forward
    values: dict[sp.Symbol, sp.Expr] = dict(program.constants)
    for symbol, expr in temporaries:
        values[symbol] = expr.xreplace(values)
    for m, output in zip(range(-l, l + 1), outputs):
        assert sp.expand(expand_shared(output.xreplace(values), l) - real_spherical_harmonic(l, m)) == 0
    temporaries, gradients = program.backward
    values = dict(program.constants)
    for symbol, expr in temporaries:
        values[symbol] = expr.xreplace(values)
    for m, gradient in zip(range(-l, l + 1), gradients):
        exact = real_spherical_harmonic(l, m)
        for variable, partial in zip(XYZ, gradient):
            assert sp.expand(expand_shared(partial.xreplace(values), l) - sp.diff(exact, variable)) == 0


def test_all_constants_are_positive_exact_numbers():
    for l in range(11):
        for _, value in order_program(l).constants:
            assert value.is_number and value.is_positive and value.is_algebraic


def test_count_ops_rule():
    assert count_ops(x) == 0
    assert count_ops(3 * x) == 1
    assert count_ops(-x * y) == 1
    assert count_ops(x + y - z) == 2
    assert count_ops(sp.sqrt(2) / 3 * x * y) == 2
    assert count_ops(x**2) == 1
    assert count_ops(x**5) == 3  # x2 = x*x, x4 = x2*x2, x5 = x4*x
    k = sp.Symbol("k")
    assert count_ops(k * x, frozenset({k})) == 1
    unevaluated = sp.Mul(sp.Mul(sp.Rational(1, 6), sp.sqrt(42), evaluate=False), x + y, evaluate=False)
    assert count_ops(unevaluated) == 2


@pytest.mark.parametrize("l", [0, 1, 2, 3, 4])
def test_parsed_e3nn_recursion_equals_the_exact_harmonics(l):
    for m in range(-l, l + 1):
        assert sp.expand(e3nn_component(l, m) - real_spherical_harmonic(l, m)) == 0


def test_parsed_e3nn_recursion_at_l10():
    assert sp.expand(e3nn_component(10, 3) - real_spherical_harmonic(10, 3)) == 0


def test_decoupled_cost_is_far_below_the_recursion():
    counts = component_counts(10)
    assert set(counts.columns) >= {"l", "m", "recursive", "expanded", "decoupled"}
    assert len(counts) == sum(2 * l + 1 for l in range(11))
    top = counts[counts.l == 10]
    assert top.decoupled.max() < 60
    assert top.recursive.max() > 10 * top.decoupled.max()
    for l in range(6, 11):
        block = counts[counts.l == l]
        assert block.decoupled.sum() * 5 < block.recursive.sum()
    assert len(plot_operation_counts(counts).collections) == 3
    totals = order_counts(10).set_index("l")
    assert totals.loc[10, "decoupled_forward"] * 5 < totals.loc[10, "recursive"]
    assert (totals.decoupled_backward >= totals.decoupled_forward).all()
