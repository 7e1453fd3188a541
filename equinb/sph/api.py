"""``spherical_harmonics``: a drop-in for ``e3nn.o3.spherical_harmonics`` on the generated kernels.

Backends:

* ``"torch"`` — the generated PyTorch code (:mod:`._generated_torch`) inside an autograd Function whose
  backward is the generated analytic gradient (itself written in differentiable torch operations, so double
  backward works); runs anywhere and under ``torch.compile``.
* ``"triton"`` — the generated Triton kernels (:mod:`._generated_triton`): one launch evaluates every requested
  order into one output; one launch accumulates the whole gradient. CUDA tensors, or CPU tensors when the
  environment has ``TRITON_INTERPRET=1`` (set before ``triton`` is first imported). The gradient is
  differentiable: second derivatives (a loss on forces) differentiate the generated PyTorch backward, exactly.
* ``"e3nn"`` — ``e3nn.o3.spherical_harmonics`` itself (reference).
* ``"auto"`` — ``"triton"`` for CUDA tensors, ``"torch"`` otherwise.

Dtypes: float64 is computed in float64; float32, float16 and bfloat16 in float32 with one rounding to the input
dtype at the end (:func:`equinb.sph.conventions.compute_dtype`). For half precision this is more accurate
than e3nn, which computes in the input dtype; in particular a zero vector with ``normalize=True`` gives NaN in
e3nn's float16 (its ``eps = 1e-12`` underflows) and the float32 result here.

Zero-length vectors with ``normalize=True`` behave as in e3nn, which divides by ``max(|v|, 1e-12)``
(:func:`torch.nn.functional.normalize`): ``Y_0`` is its constant, every higher order is zero, and the gradient is
finite (``dY_1/dv = sqrt(3) / 1e-12`` per unit upstream gradient, as in e3nn).
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import NamedTuple

import torch
from e3nn import o3

from equinb.so3.orders import check_orders

from . import _generated_torch
from .conventions import (
    BACKENDS,
    INTERPRETER_BLOCK,
    KERNEL_L_MAX,
    NORMALIZATIONS,
    NORMALIZE_EPS,
    TRITON_BLOCK,
    compute_dtype,
    normalization_scale,
)

#: Highest order e3nn's own implementation provides (its ``"e3nn"`` backend accepts up to this).
E3NN_L_MAX = 12

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _input_parity(L, irreps_in) -> int:
    """Parity of the input: ``irreps_in``'s (``1o`` or ``1e``) or, without it, what e3nn infers from ``L``: a
    pseudovector (+1) when an ``Irreps`` request has an odd order with even parity, a vector (-1) otherwise."""
    if irreps_in is not None:
        try:
            parsed = o3.Irreps(irreps_in)
        except (ValueError, AssertionError, TypeError):
            parsed = None
        if parsed not in (o3.Irreps("1x1o"), o3.Irreps("1x1e")):
            raise ValueError(f"irreps_in must be a vector (1x1o) or a pseudovector (1x1e), got {irreps_in!r}")
        return parsed[0].ir.p
    if isinstance(L, o3.Irreps):
        return 1 if any(ir.l % 2 == 1 and ir.p == 1 for _, ir in L) else -1
    return -1


def _parse(L, l_max: int, irreps_in=None) -> tuple[list[int], int]:
    """Orders requested by ``L`` (see :func:`parse_orders`) and the parity of the input."""
    if isinstance(L, str):
        try:
            L = o3.Irreps(L)
        except (ValueError, AssertionError):
            raise ValueError(f"L={L!r} is not a valid irreps string") from None
    parity = _input_parity(L, irreps_in)
    if isinstance(L, o3.Irreps):
        for _, ir in L:
            if ir.p != parity**ir.l:
                raise ValueError(
                    f"L={L} asks for l={ir.l} with parity {ir.p}; spherical harmonics of a "
                    f"{'pseudo' if parity == 1 else ''}vector have parity {parity**ir.l} there"
                )
        L = [ir.l for mul, ir in L for _ in range(mul)]
    return list(check_orders(L, l_max)), parity


def parse_orders(L: int | list[int] | str | o3.Irreps, l_max: int = KERNEL_L_MAX) -> list[int]:
    """Orders requested by ``L``, in output order, as e3nn reads them.

    Parameters
    ----------
    L
        An int ``l``; any iterable of ints (a list, tuple, ``range``, numpy array; any order, repeats allowed);
        an ``Irreps`` or its string, each ``mul x l`` contributing ``l`` ``mul`` times. Irreps parities must be
        those of the spherical harmonics of a vector (``(-1)**l``) or, when some odd order is even, of a
        pseudovector (all even), as in e3nn.
    l_max
        Highest order accepted.

    Returns
    -------
    list of int
        One entry per output block; block ``i`` has ``2 * orders[i] + 1`` columns.

    Raises
    ------
    ValueError
        For an invalid irreps string or inconsistent parities; for the order mistakes of
        :func:`equinb.so3.check_orders` (empty request, non-integer, negative, above ``l_max``), with its
        messages.
    """
    return _parse(L, l_max)[0]


def _check_vectors(vectors: torch.Tensor) -> None:
    if not isinstance(vectors, torch.Tensor):
        raise TypeError(f"vectors must be a torch.Tensor, got {type(vectors).__name__}")
    if vectors.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"vectors must be float16, bfloat16, float32 or float64, got {vectors.dtype}")
    if vectors.ndim == 0 or vectors.shape[-1] != 3:
        raise ValueError(f"vectors must have shape (..., 3), got {tuple(vectors.shape)}")


def _resolve_backend(backend: str, device: torch.device) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "triton" if device.type == "cuda" else "torch"
    if backend == "triton" and device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError(
            "backend='triton' needs CUDA tensors, or TRITON_INTERPRET=1 in the environment (set before triton "
            "is imported) to run the kernels on the CPU through Triton's interpreter; use backend='torch' here"
        )
    return backend


def _layout(orders: tuple[int, ...]) -> dict[int, int]:
    """First column of each order when ``orders`` (distinct) are laid out one after another."""
    columns, offset = {}, 0
    for l in orders:
        columns[l] = offset
        offset += 2 * l + 1
    return columns


def _scales(normalization: str) -> list[float]:
    return [normalization_scale(l, normalization) for l in range(KERNEL_L_MAX + 1)]


@lru_cache(maxsize=None)
def _triton_tables(normalization: str, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Constants table and (scales, eps) table of the Triton kernels, in the compute dtype on ``device``."""
    from . import _generated_triton

    constants = torch.tensor(_generated_triton.CONSTANTS, dtype=torch.float64).to(dtype=dtype, device=device)
    params = torch.tensor([*_scales(normalization), NORMALIZE_EPS], dtype=torch.float64)
    return constants, params.to(dtype=dtype, device=device)


class _Call(NamedTuple):
    """What one call evaluates: ``{l: first column}`` of its distinct orders, and its options."""

    columns: dict[int, int]
    normalize: bool
    normalization: str
    backend: str


def _triton_launch(call: _Call, v: torch.Tensor) -> tuple[tuple[int], tuple, dict]:
    """Grid, leading kernel arguments after the tensors, and constexpr/column keywords for a call."""
    from . import _generated_triton

    n = v.shape[0]
    block = TRITON_BLOCK if v.is_cuda else min(INTERPRETER_BLOCK, max(16, 1 << (n - 1).bit_length()))
    constants, params = _triton_tables(call.normalization, compute_dtype(v.dtype), v.device)
    keywords = {f"col{l}": call.columns.get(l, 0) for l in range(_generated_triton.L_MAX + 1)}
    keywords.update({f"H{l}": l in call.columns for l in range(_generated_triton.L_MAX + 1)})
    keywords.update(MAXL=max(call.columns), NORMALIZE=call.normalize, BLOCK=block)
    return ((n + block - 1) // block,), (constants, params, n, v.stride(0), v.stride(1)), keywords


def _torch_gradient(call: _Call, v: torch.Tensor, grad_out: torch.Tensor) -> torch.Tensor:
    """``grad_out^T dY/dv`` by the generated PyTorch backward: differentiable operations only, so autograd
    differentiates it again (exact second and higher derivatives)."""
    cdt = compute_dtype(v.dtype)
    x, y, z = (v[:, i].to(cdt) for i in range(3))
    grads = _generated_torch.backward(
        x, y, z, call.normalize, NORMALIZE_EPS, call.columns, _scales(call.normalization), grad_out.to(cdt)
    )
    return torch.stack(grads, dim=-1).to(v.dtype)


class _TritonGradient(torch.autograd.Function):
    """``(v, grad_out) -> grad_out^T dY/dv`` by the Triton backward kernel, itself differentiable.

    Its backward (the second derivatives, e.g. of a loss on forces) differentiates the generated PyTorch
    backward (the ladder form, :mod:`equinb.sph.ladder`), which computes the same function exactly in
    differentiable operations; so
    the first derivative runs in one Triton launch, and double backward is exact rather than silently wrong.
    """

    @staticmethod
    def forward(ctx, v: torch.Tensor, grad_out: torch.Tensor, call: _Call) -> torch.Tensor:
        from . import _generated_triton

        ctx.call = call
        ctx.save_for_backward(v, grad_out)
        grid, (constants, params, n, s0, s1), keywords = _triton_launch(call, v)
        grad_v = torch.empty((n, 3), dtype=v.dtype, device=v.device)
        if n:
            _generated_triton.backward_kernel[grid](
                v, grad_out, grad_v, constants, params, n, s0, s1, grad_out.stride(0), grad_out.stride(1),
                **keywords,
            )
        return grad_v

    @staticmethod
    def backward(ctx, grad_grad_v: torch.Tensor):
        v, grad_out = ctx.saved_tensors
        # torch.func.vjp differentiates at its own level: it stops at v and grad_out (autograd.grad would also run
        # the caller's graph behind grad_out), and its result stays differentiable for higher orders.
        _, vjp = torch.func.vjp(lambda v_, g_: _torch_gradient(ctx.call, v_, g_), v, grad_out)
        grad_v, grad_grad_out = vjp(grad_grad_v)
        return grad_v, grad_grad_out, None


class _DecoupledSphericalHarmonics(torch.autograd.Function):
    """``(N, 3) -> (N, sum(2l + 1))`` for distinct orders, with the generated analytic backward (itself
    differentiable on both backends)."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, orders: tuple[int, ...], normalize: bool, normalization: str, backend: str):
        call = ctx.call = _Call(_layout(orders), normalize, normalization, backend)
        ctx.save_for_backward(v)
        if v.shape[0] == 0:
            return v.new_empty((0, sum(2 * l + 1 for l in orders)))
        if backend == "torch":
            x, y, z = (v[:, i].to(compute_dtype(v.dtype)) for i in range(3))
            blocks = _generated_torch.forward(x, y, z, normalize, NORMALIZE_EPS, call.columns, _scales(normalization))
            return torch.stack([c for l in orders for c in blocks[l]], dim=-1).to(v.dtype)
        from . import _generated_triton

        out = v.new_empty((v.shape[0], sum(2 * l + 1 for l in orders)))
        grid, (constants, params, n, s0, s1), keywords = _triton_launch(call, v)
        _generated_triton.forward_kernel[grid](v, out, constants, params, n, s0, s1, out.stride(0), **keywords)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (v,) = ctx.saved_tensors
        if v.shape[0] == 0:
            grad_v = torch.zeros_like(v)
        elif ctx.call.backend == "torch":
            grad_v = _torch_gradient(ctx.call, v, grad_out)
        else:
            grad_v = _TritonGradient.apply(v, grad_out, ctx.call)
        return grad_v, None, None, None, None


def _check_options(normalization: str, backend: str) -> None:
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def _gather_index(orders: tuple[int, ...]) -> list[int] | None:
    """Columns of the distinct-order output that make up the requested layout (``None``: no repeats)."""
    distinct = tuple(dict.fromkeys(orders))
    if len(distinct) == len(orders):
        return None
    columns = _layout(distinct)
    return [columns[l] + i for l in orders for i in range(2 * l + 1)]


def _evaluate(orders: tuple[int, ...], vectors: torch.Tensor, normalize: bool, normalization: str, backend: str):
    """Spherical harmonics of already validated ``orders`` (the shared body of the function and the module)."""
    _check_vectors(vectors)
    backend = _resolve_backend(backend, vectors.device)
    if backend == "e3nn":
        return o3.spherical_harmonics(list(orders), vectors, normalize, normalization)
    distinct = tuple(dict.fromkeys(orders))
    flat = vectors.reshape(-1, 3)
    out = _DecoupledSphericalHarmonics.apply(flat, distinct, bool(normalize), normalization, backend)
    index = _gather_index(orders)
    if index is not None:  # repeated orders: gather the columns of each block
        out = out[:, torch.tensor(index, device=out.device)]
    return out.reshape(*vectors.shape[:-1], out.shape[-1])


def spherical_harmonics(
    L: int | list[int] | str | o3.Irreps,
    vectors: torch.Tensor,
    normalize: bool = True,
    normalization: str = "integral",
    backend: str = "auto",
) -> torch.Tensor:
    """Real spherical harmonics of ``vectors``, laid out as ``e3nn.o3.spherical_harmonics`` lays them out.

    Parameters
    ----------
    L
        Orders: an int, any iterable of ints (any order, repeats allowed), an ``Irreps`` or its string.
    vectors
        Tensor of shape ``(..., 3)``, float16/bfloat16/float32/float64, on any device.
    normalize
        Project the vectors onto the unit sphere first (``v / max(|v|, 1e-12)``, as e3nn).
    normalization
        ``"integral"`` (default, as e3nn), ``"component"`` or ``"norm"``.
    backend
        ``"auto"``, ``"triton"``, ``"torch"`` or ``"e3nn"`` (see the module docstring).

    Returns
    -------
    torch.Tensor
        Shape ``(..., sum(2l + 1))``, dtype and device of ``vectors``; differentiable with respect to them.

    Raises
    ------
    TypeError
        If ``vectors`` is not a floating-point tensor.
    ValueError
        For a bad shape, order set, normalisation or backend name.
    RuntimeError
        For ``backend="triton"`` on CPU tensors without ``TRITON_INTERPRET=1``.
    """
    _check_options(normalization, backend)
    orders = parse_orders(L, E3NN_L_MAX if backend == "e3nn" else KERNEL_L_MAX)
    return _evaluate(tuple(orders), vectors, normalize, normalization, backend)


class SphericalHarmonics(torch.nn.Module):
    """Module form of :func:`spherical_harmonics`, a drop-in for ``e3nn.o3.SphericalHarmonics``.

    The request is parsed and validated once, here; calls only check the input tensor.

    Parameters
    ----------
    irreps_out
        Orders, as for :func:`spherical_harmonics` (``L``).
    normalize
        Project inputs onto the unit sphere first.
    normalization
        ``"integral"``, ``"component"`` or ``"norm"``.
    irreps_in
        ``"1x1o"`` (a vector) or ``"1x1e"`` (a pseudovector), as in e3nn; ``None`` infers it from ``irreps_out``
        (a pseudovector when an ``Irreps`` request has an odd order with even parity). It sets the parities of
        :attr:`irreps_out` and, for an ``Irreps`` request, which parities are consistent; values do not depend
        on it.
    backend
        ``"auto"``, ``"triton"``, ``"torch"`` or ``"e3nn"`` (keyword only).

    Attributes
    ----------
    irreps_in, irreps_out : e3nn.o3.Irreps
        Irreps of the input and of the output, as e3nn's module reports them.
    orders : tuple of int
        One order per output block, in output order.
    """

    def __init__(
        self,
        irreps_out: int | list[int] | str | o3.Irreps,
        normalize: bool = True,
        normalization: str = "integral",
        irreps_in=None,
        *,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        _check_options(normalization, backend)
        orders, parity = _parse(irreps_out, E3NN_L_MAX if backend == "e3nn" else KERNEL_L_MAX, irreps_in)
        self.orders = tuple(orders)
        self.normalize = bool(normalize)
        self.normalization = normalization
        self.backend = backend
        self.irreps_in = o3.Irreps([(1, (1, parity))])
        self.irreps_out = o3.Irreps([(1, (l, parity**l)) for l in orders]).simplify()

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        """Spherical harmonics of ``vectors`` (shape ``(..., 3)``)."""
        return _evaluate(self.orders, vectors, self.normalize, self.normalization, self.backend)

    def extra_repr(self) -> str:
        return (
            f"orders={list(self.orders)}, normalize={self.normalize}, normalization={self.normalization!r}, "
            f"backend={self.backend!r}"
        )
