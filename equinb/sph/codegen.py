"""Generate the PyTorch and Triton spherical-harmonic kernels from the sympy programs of :mod:`.derive`.

Run ``python -m equinb.sph.codegen`` to rewrite ``_generated_torch.py`` and ``_generated_triton.py`` next to
this file; ``tests/test_sph_codegen.py`` regenerates both in memory and fails when the committed files are
stale. Nothing in the generated files is written by hand: every expression is printed from
:func:`equinb.sph.derive.order_program` or :func:`equinb.sph.ladder.ladder_coefficients`.

Both files share one layout. A call evaluates any set of orders at once:

1. load ``x, y, z`` (in the compute dtype) and, with ``normalize``, divide by ``max(|v|, eps)`` exactly as
   :func:`torch.nn.functional.normalize` does;
2. compute the shared terms up to the highest requested order (``yy{a}``, ``hh{b}``, their products,
   ``c{m}, s{m}``), each block guarded by the order that first needs it;
3. for every requested order, its ``cse`` temporaries and ``2l + 1`` outputs, times the order's normalisation
   scale: Triton stores them at that order's output columns; PyTorch returns them, one tensor per component, and
   the caller stacks them once (written column by column into a buffer, they became a chain of scatters under
   ``torch.compile`` and the compiled forward was slower than the eager one).

One emitter, :func:`emit_program`, prints the forward for both languages and the Triton backward; a
:class:`Target` holds the few lines that differ between them. In PyTorch the requested orders are a
``{l: column}`` dict; in Triton they are ``tl.constexpr`` flags ``H{l}`` with runtime column offsets ``col{l}``,
so one launch serves any set.

The Triton backward recomputes 1–2 and, per requested order, accumulates ``g_m * dY_m/dx_i`` (the derivative
programs of :func:`~equinb.sph.derive.order_program`) into ``dL/dx, dL/dy, dL/dz``, then applies the chain rule
of the normalisation. The PyTorch backward (:func:`ladder_backward_lines`) evaluates the forward of the orders
``l - 1`` instead and accumulates ``g_m * sum_m' C[m][i][m'] Y_{l-1,m'}`` (:mod:`equinb.sph.ladder`, at most two
terms each): the same function, fewer operations, and a graph that :func:`torch.compile` lowers in about the
time of the forward (inductor's compile time of the derivative programs grew steeply with ``l``: ~100 s for
order 8 alone, ~340 s for ``[0..8]`` on a shared 2-core CPU).

Constants: a coefficient exactly representable in float32 (small integers, dyadic fractions) is printed as a
literal. Every other one is printed as a Python float literal in PyTorch (double precision, applied in the
tensor's dtype) and, in Triton, read from a table in the compute dtype (``k_ptr``, built from
:data:`CONSTANTS`), because Triton's float literals are float32 and would cap float64 results at float32
accuracy.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import sympy as sp

from .conventions import GENERATED_HEADER, KERNEL_L_MAX
from .derive import order_program, shared_terms
from .ladder import ladder_coefficients

HERE = Path(__file__).resolve().parent
TORCH_FILE = HERE / "_generated_torch.py"
TRITON_FILE = HERE / "_generated_triton.py"


def as_double(value: sp.Expr) -> float:
    """``value`` rounded once to the nearest double (evaluated with 40 significant digits first)."""
    return float(sp.Float(value.evalf(40), 40))


def float32_literal(value: sp.Expr) -> str | None:
    """The literal of ``value`` when float32 holds it exactly (e.g. ``2``, ``0.5``, ``15/4``), else ``None``."""
    if not value.is_Rational:
        return None
    q = int(value.q)
    if q & (q - 1) or abs(int(value.p)) >= 2**24 or q > 2**60:
        return None
    return repr(float(value))


def constant_table() -> tuple[sp.Expr, ...]:
    """Exact values of every coefficient that needs a table entry (not float32-exact), in table order."""
    table: dict[sp.Expr, None] = {}
    for l in range(KERNEL_L_MAX + 1):
        for _, value in order_program(l).constants:
            if float32_literal(value) is None:
                table.setdefault(value, None)
    return tuple(table)


def render(expr: sp.Expr, names: Mapping[sp.Symbol, str]) -> str:
    """Print ``expr`` as a Python/Triton expression (``+ - *`` and parentheses only).

    Parameters
    ----------
    expr
        Sum of products of symbols, integers and integer powers.
    names
        Replacement text for some symbols (constant placeholders); other symbols print as their names.

    Returns
    -------
    str
        Source text; negative terms become subtractions, integer powers repeated products.
    """

    def negative(e: sp.Expr) -> bool:
        return bool(e.is_Mul and e.args[0].is_number and e.args[0].is_negative) or bool(e.is_number and e < 0)

    def factor(e: sp.Expr) -> str:
        text = emit(e)
        return f"({text})" if e.is_Add or e.is_Pow else text

    def emit(e: sp.Expr) -> str:
        if e.is_Symbol:
            return names.get(e, e.name)
        if e.is_Integer:
            return repr(float(e))
        if e.is_Add:
            terms = list(e.args)
            text = emit(terms[0])
            for term in terms[1:]:
                text += f" - {emit(-term)}" if negative(term) else f" + {emit(term)}"
            return text
        if e.is_Mul:
            if negative(e):
                return f"-{factor(-e)}" if not (-e).is_Add else f"-({emit(-e)})"
            return " * ".join(factor(a) for a in e.args)
        if e.is_Pow and e.exp.is_Integer and e.exp > 0:
            return " * ".join([factor(e.base)] * int(e.exp))
        raise ValueError(f"cannot print {e!r}")

    return emit(expr)


def _shared_blocks(direction: str, guard: Callable[[int], str], indent: str) -> list[str]:
    """Assignments of the shared terms the ``"forward"`` or ``"backward"`` programs read, grouped under one guard
    per lowest order that reads them (a call computes those its highest requested order may need)."""
    first_use: dict[sp.Symbol, int] = {}
    for l in range(KERNEL_L_MAX, -1, -1):
        for term in getattr(order_program(l), f"{direction}_shared"):
            first_use[term.symbol] = l
    position = {term.symbol: i for i, term in enumerate(shared_terms(KERNEL_L_MAX))}
    lines: list[str] = []
    current = None
    for term in sorted(
        (t for t in shared_terms(KERNEL_L_MAX) if t.symbol in first_use),
        key=lambda t: (first_use[t.symbol], position[t.symbol]),
    ):
        if first_use[term.symbol] != current:
            current = first_use[term.symbol]
            lines.append(f"{indent}if {guard(current)}:")
        lines.append(f"{indent}    {term.symbol.name} = {render(term.definition, {})}")
    return lines


def _coefficient(value: sp.Expr) -> str:
    """A coefficient as a literal: exact when float32 holds it, else the double nearest to it."""
    return float32_literal(value) or repr(as_double(value))


def _constant_names(l: int, table_index: Mapping[sp.Expr, int] | None) -> tuple[dict[sp.Symbol, str], list[str]]:
    """How order ``l``'s constants print: literals, or (Triton) names loaded from the table."""
    names: dict[sp.Symbol, str] = {}
    loads: list[str] = []
    for symbol, value in order_program(l).constants:
        if float32_literal(value) is not None or table_index is None:
            names[symbol] = _coefficient(value)
        else:
            names[symbol] = symbol.name
            loads.append(f"{symbol.name} = tl.load(k_ptr + {table_index[value]})")
    return names, loads


def _used_constant_loads(loads: list[str], body: list[str]) -> list[str]:
    """The table loads whose names ``body`` reads."""
    used = set(re.findall(r"\bk\d+_\d+\b", "\n".join(body)))
    return [line for line in loads if line.split(" = ", 1)[0] in used]


@dataclass(frozen=True)
class Target:
    """How one target language spells the parts of a program that differ between PyTorch and Triton.

    Format fields: ``{l}`` order, ``{i}`` component index, ``{value}`` expression text.
    """

    name: str
    guard: str  #: condition of the shared-term block first needed by order ``{l}``
    order: tuple[str, ...]  #: lines opening the forward block of order ``{l}`` (guard, scale, ...)
    constant: str  #: an output that is the bare scale (``Y_00``)
    store: str  #: write output ``{i}`` of order ``{l}``
    table: bool  #: constants that float32 cannot hold come from the ``k_ptr`` table (else double literals)
    order_backward: tuple[str, ...] = ()  #: lines opening the backward block of order ``{l}`` (none: no backward)
    upstream: str = ""  #: read ``g`` = scale times the upstream gradient of output ``{i}`` of order ``{l}``


TORCH = Target(
    name="torch",
    guard="l_max >= {l}",
    order=("    if {l} in columns:", "        scale = scales[{l}]", "        block = out[{l}] = []"),
    constant="torch.full_like(x, scale)",
    store="        block.append({value})",
    table=False,
)  # its backward is the ladder form (ladder_backward_lines), not a derivative program

TRITON = Target(
    name="triton",
    guard="MAXL >= {l}",
    order=("    if H{l}:", "        scale = tl.load(p_ptr + {l})"),
    order_backward=("    if H{l}:", "        scale = tl.load(p_ptr + {l})"),
    constant="tl.zeros_like(x) + scale",
    store="        tl.store(orow + col{l} + {i}, ({value}).to(out_ptr.dtype.element_ty), mask=mask)",
    upstream=(
        "        g = scale * tl.load(grow + (col{l} + {i}) * g_s1, mask=mask, other=0.0).to(k_ptr.dtype.element_ty)"
    ),
    table=True,
)


def emit_program(target: Target, direction: str) -> list[str]:
    """The body of a ``"forward"`` or ``"backward"`` pass in one target language, after its prologue.

    Shared terms first (:func:`_shared_blocks`), then one guarded block per order: the table loads it reads
    (Triton), its ``cse`` temporaries, and either its scaled outputs (forward) or the accumulation of
    ``g_m * dY_m/dx_i`` into ``gx, gy, gz`` (backward; order 0 is constant and contributes nothing).
    """
    if direction not in ("forward", "backward"):
        raise ValueError(f"direction must be 'forward' or 'backward', got {direction!r}")
    if direction == "backward" and not target.order_backward:
        raise ValueError(f"the {target.name} target has no derivative-program backward")
    index = {value: i for i, value in enumerate(constant_table())} if target.table else None
    lines = _shared_blocks(direction, lambda k: target.guard.format(l=k), "    ")
    for l in range(0 if direction == "forward" else 1, KERNEL_L_MAX + 1):
        names, loads = _constant_names(l, index)
        temporaries, results = getattr(order_program(l), direction)
        body = [f"        {s.name} = {render(e, names)}" for s, e in temporaries]
        for i, result in enumerate(results):
            if direction == "forward":
                value = target.constant if result == 1 else f"scale * ({render(result, names)})"
                body.append(target.store.format(l=l, i=i, value=value))
                continue
            body.append(target.upstream.format(l=l, i=i))
            for axis, partial in zip("xyz", result):
                if partial != 0:
                    body.append(f"        g{axis} = g{axis} + g * ({render(partial, names)})")
        lines += [line.format(l=l) for line in (target.order if direction == "forward" else target.order_backward)]
        lines += [f"        {line}" for line in _used_constant_loads(loads, body)]
        lines += body
    return lines


# ----------------------------------------------------------------------------------------------- PyTorch


def ladder_backward_lines() -> list[str]:
    """The PyTorch backward's per-order blocks: ``g_i += g_m * sum_m' C[m][i][m'] p[:, m']`` with ``p`` the
    harmonics of order ``l - 1`` (:func:`equinb.sph.ladder.ladder_coefficients`), stacked into one buffer so that
    compiled code reads each component there rather than inlining its expression into each of its uses."""
    lines = []
    for l in range(1, KERNEL_L_MAX + 1):
        lines += [f"    if {l} in columns:", f"        col = columns[{l}]", f"        scale = scales[{l}]",
                  f"        p = torch.stack(below[{l - 1}], dim=-1)"]
        for m, row in enumerate(ladder_coefficients(l)):
            lines.append(f"        g = scale * grad_out[:, col + {m}]")
            for axis, coefficients in zip("xyz", row):
                terms = " ".join(f"{'-' if c < 0 else '+'} {_coefficient(abs(c))} * p[:, {k}]"
                                 for k, c in enumerate(coefficients) if c != 0)
                if terms:  # "+ a * p - b * q" -> "a * p - b * q", "- a * p" -> "-a * p"
                    text = terms[2:] if terms[0] == "+" else "-" + terms[2:]
                    lines.append(f"        g{axis} = g{axis} + g * ({text})")
    return lines


def torch_source() -> str:
    """Source of ``_generated_torch.py``."""
    out = [
        GENERATED_HEADER,
        '"""Decoupled real spherical harmonics in PyTorch, orders 0..L_MAX (see equinb.sph.codegen)."""',
        "",
        "import torch",
        "",
        f"L_MAX = {KERNEL_L_MAX}",
        "#: Scales of the unscaled harmonics the backward reads.",
        "UNIT_SCALES = (1.0,) * (L_MAX + 1)",
        "",
        "",
        "def normalized(x, y, z, eps):",
        '    """``(x, y, z) / max(|v|, eps)``, ``|v|`` and ``1 / max(|v|, eps)``."""',
        "    r = torch.sqrt(x * x + y * y + z * z)",
        "    length = torch.clamp_min(r, eps)",
        "    return x / length, y / length, z / length, r, 1.0 / length",
        "",
        "",
        "def forward(x, y, z, normalize, eps, columns, scales):",
        '    """``{l: [scales[l] * Y_lm(v) for m]}`` for each l in ``columns``: one tensor per component, for the',
        "    caller to stack once (a compiler then computes each component once, instead of rewriting a buffer",
        '    column by column)."""',
        "    if normalize:",
        "        x, y, z, _, _ = normalized(x, y, z, eps)",
        "    l_max = max(columns)",
        "    out = {}",
    ]
    out += emit_program(TORCH, "forward")
    out += [
        "    return out",
        "",
        "",
        "def backward(x, y, z, normalize, eps, columns, scales, grad_out):",
        '    """``sum_l sum_m scales[l] * grad_out[:, columns[l] + m] * dY_lm(v)/dv`` as three tensors, by the ladder',
        "    ``dY_lm/dx_i = sum_m' C[l][m][i][m'] Y_{l-1,m'}`` (equinb.sph.ladder) on the forward of the orders below",
        '    (differentiable torch operations only: autograd differentiates it again)."""',
        "    if normalize:",
        "        x, y, z, r, inv = normalized(x, y, z, eps)",
        "    below = forward(x, y, z, False, eps, {l - 1: 0 for l in columns if l > 0} or {0: 0}, UNIT_SCALES)",
        "    gx = torch.zeros_like(x)",
        "    gy = torch.zeros_like(x)",
        "    gz = torch.zeros_like(x)",
    ]
    out += ladder_backward_lines()
    out += [
        "    if normalize:",
        "        dot = torch.where(r >= eps, x * gx + y * gy + z * gz, 0.0)",
        "        gx, gy, gz = inv * (gx - x * dot), inv * (gy - y * dot), inv * (gz - z * dot)",
        "    return gx, gy, gz",
        "",
    ]
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------ Triton

#: Integer arguments of the kernels that multiply a row or column index: widened to int64 on entry, so that no
#: offset wraps at 2**31 whatever the strides (Triton passes integers below 2**31 as int32).
TRITON_STRIDES = {
    "forward_kernel": ("v_s0", "v_s1", "out_s0"),
    "backward_kernel": ("v_s0", "v_s1", "g_s0", "g_s1"),
}


def _triton_signature(name: str, leading: str) -> list[str]:
    """``@triton.jit def name(...)`` with the runtime column offsets and the constexpr flags, one group a line."""
    columns = ", ".join(f"col{l}" for l in range(KERNEL_L_MAX + 1))
    flags = ", ".join(f"H{l}: tl.constexpr" for l in range(KERNEL_L_MAX + 1))
    return [
        "@triton.jit",
        f"def {name}(",
        f"    {leading},",
        f"    {columns},",
        f"    {flags},",
        "    MAXL: tl.constexpr, NORMALIZE: tl.constexpr, BLOCK: tl.constexpr,",
        "):",
    ]


def _triton_prologue(name: str) -> list[str]:
    """64-bit strides, row indices, the loads of ``x, y, z`` and their normalisation (keeping ``1/length`` for
    the backward)."""
    return [
        *(f"    {stride} = tl.cast({stride}, tl.int64)" for stride in TRITON_STRIDES[name]),
        "    rows = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)",
        "    mask = rows < N",
        "    vrow = v_ptr + rows * v_s0",
        "    x = tl.load(vrow, mask=mask, other=0.0).to(k_ptr.dtype.element_ty)",
        "    y = tl.load(vrow + v_s1, mask=mask, other=0.0).to(k_ptr.dtype.element_ty)",
        "    z = tl.load(vrow + 2 * v_s1, mask=mask, other=0.0).to(k_ptr.dtype.element_ty)",
        "    if NORMALIZE:",
        f"        eps = tl.load(p_ptr + {KERNEL_L_MAX + 1})",
        "        r = tl.sqrt(x * x + y * y + z * z)",
        "        length = tl.maximum(r, eps)",
        *(["        inv = 1.0 / length"] if name == "backward_kernel" else []),
        "        x = x / length",
        "        y = y / length",
        "        z = z / length",
    ]


def triton_source() -> str:
    """Source of ``_generated_triton.py``."""
    out = [
        GENERATED_HEADER,
        '"""Decoupled real spherical harmonics as Triton kernels, orders 0..L_MAX (see equinb.sph.codegen).',
        "",
        "``k_ptr`` points to CONSTANTS in the compute dtype; ``p_ptr`` to the per-order normalisation scales",
        "followed by the normalize epsilon, in the compute dtype. Strides are widened to int64 on entry.",
        '"""',
        "",
        "import triton",
        "import triton.language as tl",
        "",
        f"L_MAX = {KERNEL_L_MAX}",
        "",
        "#: Coefficients that float32 cannot hold exactly (doubles; exact values in the comments).",
        "CONSTANTS = (",
    ]
    out += [f"    {as_double(value)!r},  # {value}" for value in constant_table()]
    out += [
        ")",
        "",
        "",
    ]
    out += _triton_signature("forward_kernel", "v_ptr, out_ptr, k_ptr, p_ptr, N, v_s0, v_s1, out_s0")
    out += _triton_prologue("forward_kernel")
    out += ["    orow = out_ptr + rows * out_s0"]
    out += emit_program(TRITON, "forward")
    out += [
        "",
        "",
    ]
    out += _triton_signature("backward_kernel", "v_ptr, g_ptr, gv_ptr, k_ptr, p_ptr, N, v_s0, v_s1, g_s0, g_s1")
    out += _triton_prologue("backward_kernel")
    out += [
        "    gx = tl.zeros_like(x)",
        "    gy = tl.zeros_like(x)",
        "    gz = tl.zeros_like(x)",
        "    grow = g_ptr + rows * g_s0",
    ]
    out += emit_program(TRITON, "backward")
    out += [
        "    if NORMALIZE:",
        "        dot = tl.where(r >= eps, x * gx + y * gy + z * gz, 0.0)",
        "        gx = inv * (gx - x * dot)",
        "        gy = inv * (gy - y * dot)",
        "        gz = inv * (gz - z * dot)",
        "    gvrow = gv_ptr + rows * 3",
        "    tl.store(gvrow, gx.to(gv_ptr.dtype.element_ty), mask=mask)",
        "    tl.store(gvrow + 1, gy.to(gv_ptr.dtype.element_ty), mask=mask)",
        "    tl.store(gvrow + 2, gz.to(gv_ptr.dtype.element_ty), mask=mask)",
        "",
    ]
    return "\n".join(out)


def generated_sources() -> dict[Path, str]:
    """Every generated file and its content."""
    return {TORCH_FILE: torch_source(), TRITON_FILE: triton_source()}


def main() -> int:
    """Write the generated files (``python -m equinb.sph.codegen``)."""
    for path, text in generated_sources().items():
        path.write_text(text)
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
