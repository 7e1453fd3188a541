"""Arithmetic-operation counts: e3nn's recursive spherical harmonics against the decoupled forms.

The counting rule (:func:`count_ops`) charges what a kernel executes on tensors, after constant folding:

* an ``Add`` of ``n`` terms costs ``n - 1`` additions (a subtraction is an addition; a negation is folded into
  it and free);
* a ``Mul`` costs one multiplication per extra non-constant factor, plus one if it has a numeric coefficient
  other than ``+-1`` (all numeric factors of a product fold into one constant, as e3nn's Python floats do);
* ``b**e`` with a positive integer ``e`` costs the multiplications of binary exponentiation
  (``bit_length(e) + popcount(e) - 2``); any other power (a division, a square root) costs one operation;
* numbers, symbols and constant placeholders cost nothing.

A straight-line program costs the sum over its assignments. The cost of one component *computed alone* is the
cost of its own expression plus every assignment it depends on, transitively: for e3nn's recursion
(:func:`e3nn_program`, parsed from e3nn's own source) that includes all lower orders it is built from; for the
decoupled form it includes the shared powers and azimuthal terms it reads. These are the quantities of the
study's Figure 3.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Iterable, Sequence
from functools import lru_cache

import pandas as pd
import sympy as sp

from equinb.so3.harmonics import real_spherical_harmonic, x, y, z

from .derive import decoupled_component, order_program, shared_terms

Assignment = tuple[sp.Symbol, sp.Expr]


def count_ops(expr: sp.Expr, constants: frozenset[sp.Symbol] = frozenset()) -> int:
    """Arithmetic operations needed to evaluate ``expr`` (see the module docstring for the rule).

    Parameters
    ----------
    expr
        A sympy expression, evaluated or built with ``evaluate=False`` (its tree is counted as written).
    constants
        Symbols standing for numbers (constant placeholders); they count like numbers.

    Returns
    -------
    int
        Number of additions, multiplications and other operations.

    Examples
    --------
    >>> count_ops(3 * x * y + z**4)
    5
    """

    def is_constant(e: sp.Expr) -> bool:
        return bool(e.is_number) or e in constants or (e.is_Mul and all(is_constant(a) for a in e.args))

    def cost(e: sp.Expr) -> int:
        if is_constant(e) or e.is_Atom:
            return 0
        if e.is_Add:
            return sum(cost(a) for a in e.args) + len(e.args) - 1
        if e.is_Mul:
            numeric = [a for a in e.args if is_constant(a)]
            factors = [a for a in e.args if not is_constant(a)]
            scaled = bool(numeric) and sp.Mul(*numeric).xreplace({c: 2 for c in constants}) not in (1, -1)
            return sum(cost(a) for a in factors) + len(factors) - 1 + int(scaled)
        if e.is_Pow:
            exponent = e.exp
            if exponent.is_Integer and exponent > 0:
                k = int(exponent)
                return cost(e.base) + k.bit_length() + bin(k).count("1") - 2
            return cost(e.base) + 1
        return sum(cost(a) for a in e.args) + 1

    return cost(expr)


def program_cost(assignments: Iterable[Assignment], constants: frozenset[sp.Symbol] = frozenset()) -> int:
    """Total :func:`count_ops` of a straight-line program's right-hand sides."""
    return sum(count_ops(rhs, constants) for _, rhs in assignments)


def dependency_closure(targets: Iterable[sp.Expr], assignments: Sequence[Assignment]) -> list[Assignment]:
    """The assignments ``targets`` need, transitively, in program order.

    Parameters
    ----------
    targets
        Expressions whose free symbols may be assigned names.
    assignments
        The program, each name assigned once, before its use.

    Returns
    -------
    list
        The needed subset of ``assignments``.
    """
    by_name = dict(assignments)
    needed: set[sp.Symbol] = set()
    stack = [s for t in targets for s in t.free_symbols if s in by_name]
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(s for s in by_name[name].free_symbols if s in by_name)
    return [(name, rhs) for name, rhs in assignments if name in needed]


def _to_sympy(node: ast.AST) -> sp.Expr:
    """One expression of e3nn's generated source as an unevaluated sympy tree."""
    if isinstance(node, ast.Name):
        return {"x": x, "y": y, "z": z}.get(node.id, sp.Symbol(node.id))
    if isinstance(node, ast.Constant):
        value = node.value
        return sp.Integer(int(value)) if float(value).is_integer() else sp.Rational(str(value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return sp.Mul(-1, _to_sympy(node.operand), evaluate=False)
    if isinstance(node, ast.BinOp):
        left, right = _to_sympy(node.left), _to_sympy(node.right)
        if isinstance(node.op, ast.Add):
            return sp.Add(left, right, evaluate=False)
        if isinstance(node.op, ast.Sub):
            return sp.Add(left, sp.Mul(-1, right, evaluate=False), evaluate=False)
        if isinstance(node.op, ast.Mult):
            return sp.Mul(left, right, evaluate=False)
        if isinstance(node.op, ast.Div):
            return sp.Mul(left, sp.Pow(right, -1, evaluate=False), evaluate=False)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        name = node.func.attr
        if name == "sqrt":  # math.sqrt(constant)
            return sp.sqrt(_to_sympy(node.args[0]), evaluate=False)
        if name == "pow":  # tensor.pow(k)
            return sp.Pow(_to_sympy(node.func.value), _to_sympy(node.args[0]), evaluate=False)
        if name == "ones_like":
            return sp.Integer(1)
    raise ValueError(f"unexpected construct in e3nn's source: {ast.dump(node)}")


@lru_cache(maxsize=None)
def e3nn_program() -> tuple[Assignment, ...]:
    """e3nn's recursive spherical harmonics as a straight-line sympy program.

    Parses the source of ``e3nn.o3._spherical_harmonics._spherical_harmonics`` (e3nn's generated polynomial
    code) and turns every assignment ``sh_l_m = ...`` (and helpers such as ``y2``) into an unevaluated sympy
    expression over ``x, y, z`` and earlier names.

    Returns
    -------
    tuple
        ``(name, expression)`` pairs in source order; component ``(l, m)`` is named ``sh_{l}_{l+m}``.
    """
    from e3nn.o3 import _spherical_harmonics

    source = textwrap.dedent(inspect.getsource(_spherical_harmonics._spherical_harmonics))
    function = ast.parse(source).body[0]
    program: list[Assignment] = []
    for statement in ast.walk(function):
        if isinstance(statement, ast.Assign) and isinstance(statement.targets[0], ast.Name):
            program.append((sp.Symbol(statement.targets[0].id), _to_sympy(statement.value)))
    return tuple(program)


def e3nn_component(l: int, m: int) -> sp.Expr:
    """e3nn's component ``(l, m)`` as a polynomial in ``x, y, z`` (its recursion substituted and expanded)."""
    closure = dependency_closure([sp.Symbol(f"sh_{l}_{l + m}")], e3nn_program())
    values: dict[sp.Symbol, sp.Expr] = {}
    for name, rhs in closure:
        values[name] = sp.expand(rhs.doit().xreplace(values))
    return values[sp.Symbol(f"sh_{l}_{l + m}")]


def component_counts(l_max: int) -> pd.DataFrame:
    """Cost of every component ``Y_lm`` (``l <= l_max``) computed alone: the study's Figure 3.

    Parameters
    ----------
    l_max
        Highest order, at most the highest order e3nn implements (12).

    Returns
    -------
    pandas.DataFrame
        One row per ``(l, m)`` with columns ``recursive`` (e3nn's recursion, every lower-order term it needs
        included), ``expanded`` (the exact polynomial as a sum of monomials, no refactoring) and
        ``decoupled`` (our factored form with the shared terms it reads).
    """
    e3nn = e3nn_program()
    rows = []
    for l in range(l_max + 1):
        shared = [(t.symbol, t.definition) for t in shared_terms(l)]
        for m in range(-l, l + 1):
            name = sp.Symbol(f"sh_{l}_{l + m}")
            component = decoupled_component(l, m)
            rows.append(
                {
                    "l": l,
                    "m": m,
                    "recursive": program_cost(dependency_closure([name], e3nn)),
                    "expanded": count_ops(sp.expand(real_spherical_harmonic(l, m))),
                    "decoupled": count_ops(component) + program_cost(dependency_closure([component], shared)),
                }
            )
    return pd.DataFrame(rows)


def order_counts(l_max: int) -> pd.DataFrame:
    """Cost of evaluating whole orders, components sharing their work.

    Parameters
    ----------
    l_max
        Highest order (at most 12).

    Returns
    -------
    pandas.DataFrame
        One row per order ``l`` with columns ``recursive`` (e3nn: every assignment the order's components
        need, i.e. all lower orders), ``decoupled_forward`` and ``decoupled_backward`` (shared terms the order
        reads plus its ``cse``-reduced program; backward counts the ``3 (2l + 1)`` partial derivatives and the
        ``2 * 3 (2l + 1)`` operations accumulating ``g_m dY_m/dx_i``).
    """
    e3nn = e3nn_program()
    rows = []
    for l in range(l_max + 1):
        program = order_program(l)
        constants = frozenset(symbol for symbol, _ in program.constants)
        temporaries, outputs = program.forward
        forward = program_cost([(t.symbol, t.definition) for t in program.forward_shared])
        forward += program_cost(temporaries, constants) + sum(count_ops(o, constants) for o in outputs)
        temporaries, gradients = program.backward
        partials = [g for grad in gradients for g in grad if g != 0]
        backward = program_cost([(t.symbol, t.definition) for t in program.backward_shared])
        backward += program_cost(temporaries, constants)
        backward += sum(count_ops(g, constants) for g in partials) + 2 * len(partials)
        names = [sp.Symbol(f"sh_{l}_{i}") for i in range(2 * l + 1)]
        rows.append(
            {
                "l": l,
                "recursive": program_cost(dependency_closure(names, e3nn)),
                "decoupled_forward": forward,
                "decoupled_backward": backward,
            }
        )
    return pd.DataFrame(rows)
