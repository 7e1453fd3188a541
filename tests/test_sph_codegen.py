"""equinb.sph.codegen: the committed generated files are fresh, and the printer is faithful."""

from __future__ import annotations

import ast

import sympy as sp

from equinb.so3.harmonics import x, y, z
from equinb.sph import codegen
from equinb.sph.conventions import GENERATED_HEADER


def test_committed_generated_files_are_fresh():
    for path, text in codegen.generated_sources().items():
        committed = path.read_text()
        assert committed.splitlines()[0] == GENERATED_HEADER
        assert committed == text, f"{path.name} is stale: run python -m equinb.sph.codegen"
        ast.parse(committed)


def test_render_prints_sums_products_and_powers():
    k = sp.Symbol("k")
    text = codegen.render(-k * x * (y + z) + x**2 - 3 * z, {k: "K[0]"})
    namespace = {"x": 2.0, "y": 3.0, "z": 5.0, "K": [7.0]}
    assert "**" not in text
    assert eval(text, namespace) == -7.0 * 2.0 * 8.0 + 4.0 - 15.0


def test_float32_literals_only_for_exact_values():
    assert codegen.float32_literal(sp.Integer(20)) == "20.0"
    assert codegen.float32_literal(sp.Rational(15, 4)) == "3.75"
    assert codegen.float32_literal(sp.Rational(1, 3)) is None
    assert codegen.float32_literal(sp.sqrt(2)) is None
    assert codegen.float32_literal(sp.Integer(2**24 + 1)) is None


def test_constant_table_is_correctly_rounded():
    table = codegen.constant_table()
    assert len(table) == len(set(table))
    for value in table:
        assert codegen.float32_literal(value) is None
        double = codegen.as_double(value)
        assert abs(sp.Float(double, 40) - value.evalf(40)) <= abs(value.evalf(40)) * 2**-53


def test_triton_kernels_take_runtime_sizes_and_constexpr_flags():
    source = codegen.triton_source()
    for kernel in ("forward_kernel", "backward_kernel"):
        signature = source.split(f"def {kernel}(", 1)[1].split("):", 1)[0]
        for runtime in ("N", "v_s0", "v_s1", "col0", "col10"):
            assert f" {runtime}," in signature and f"{runtime}: tl.constexpr" not in signature
        for flag in ("H0", "H10", "MAXL", "NORMALIZE", "BLOCK"):
            assert f"{flag}: tl.constexpr" in signature
