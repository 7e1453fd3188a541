"""equinb.sph.codegen: the committed generated files are fresh, and the printer is faithful."""

from __future__ import annotations

import ast
import re

import pytest
import sympy as sp

from equinb.so3.harmonics import x, y, z
from equinb.sph import codegen
from equinb.sph.conventions import GENERATED_HEADER, KERNEL_L_MAX


def test_committed_generated_files_are_fresh():
    for path, text in codegen.generated_sources().items():
        committed = path.read_text()
        assert committed.splitlines()[0] == GENERATED_HEADER
        assert committed == text, f"{path.name} is stale: run python -m equinb.sph.codegen"
        ast.parse(committed)


def test_emit_program_rejects_a_target_without_a_derivative_backward():
    with pytest.raises(ValueError, match=r"^the torch target has no derivative-program backward$"):
        codegen.emit_program(codegen.TORCH, "backward")
    with pytest.raises(ValueError, match=r"^direction must be 'forward' or 'backward', got 'sideways'$"):
        codegen.emit_program(codegen.TRITON, "sideways")


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


def _order_blocks(function: ast.FunctionDef) -> dict[int, ast.If]:
    """The top-level ``if H{l}:`` (Triton) or ``if {l} in columns:`` (PyTorch) block of each order."""
    blocks = {}
    for statement in function.body:
        if isinstance(statement, ast.If):
            match = re.fullmatch(r"H(\d+)|(\d+) in columns", ast.unparse(statement.test))
            if match:
                blocks[int(match.group(1) or match.group(2))] = statement
    return blocks


def _reads_before_writes(statements: list[ast.stmt], known: set[str]) -> set[str]:
    """Names a straight-line block reads that it has not assigned itself before (nor are in ``known``)."""
    missing, assigned = set(), set(known)
    for statement in statements:
        value = statement.value if isinstance(statement, ast.Assign) else statement
        missing |= {n.id for n in ast.walk(value) if isinstance(n, ast.Name) and n.id not in assigned}
        if isinstance(statement, ast.Assign):
            assigned |= {n.id for t in statement.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return missing


def test_generated_orders_depend_on_no_other_order():
    """Decoupled, in the generated code itself: the block of order l reads only the inputs, the shared terms
    and its own temporaries, never a temporary, constant or output of another order (no recursion in l). Read
    from the committed files, which the freshness test above ties to the generator. (The PyTorch backward's
    blocks read ``below``, the forward of the orders ``l - 1`` computed once before them: the ladder.)"""
    for source in (codegen.TORCH_FILE.read_text(), codegen.TRITON_FILE.read_text()):
        for function in (node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)):
            blocks = _order_blocks(function)
            if not blocks:
                continue
            assert set(blocks) >= set(range(1, KERNEL_L_MAX + 1)), function.name
            outside = {a.arg for a in function.args.args} | {"tl", "torch"}
            for statement in function.body:
                if statement not in blocks.values():  # prologue and shared terms, incl. their guarded blocks
                    outside |= {n.id for n in ast.walk(statement) if isinstance(n, ast.Name)
                                and isinstance(n.ctx, ast.Store)}
            for l, block in blocks.items():
                foreign = _reads_before_writes(block.body, outside)
                assert not foreign, (function.name, l, foreign)
                for node in ast.walk(block):  # outputs are written, never read back
                    assert not (isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load)
                                and ast.unparse(node.value) == "out"), (function.name, l)
                    if isinstance(node, ast.Call) and ast.unparse(node.func) == "tl.load":
                        assert "orow" not in ast.unparse(node.args[0]), (function.name, l)
