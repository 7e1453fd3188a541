"""``spherical_harmonics``: a drop-in for ``e3nn.o3.spherical_harmonics`` on the generated kernels.

Backends:

* ``"torch"`` — the generated PyTorch code (:mod:`._generated_torch`) inside an autograd Function whose
  backward is the generated analytic gradient (itself written in differentiable torch operations, so double
  backward works); runs anywhere and under ``torch.compile``.
* ``"triton"`` — the generated Triton kernels (:mod:`._generated_triton`): one launch evaluates every requested
  order into one output; one launch accumulates the whole gradient. CUDA tensors, or CPU tensors when the
  environment has ``TRITON_INTERPRET=1`` (set before ``triton`` is first imported). Not twice differentiable.
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

import numbers
import os
from functools import lru_cache

import torch
from e3nn import o3

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


def _input_parity(irreps: o3.Irreps) -> int:
    """Parity of the input e3nn infers from requested irreps: a pseudovector (+1) if an odd order is even."""
    return 1 if any(ir.l % 2 == 1 and ir.p == 1 for _, ir in irreps) else -1


def parse_orders(L: int | list[int] | str | o3.Irreps, l_max: int = KERNEL_L_MAX) -> list[int]:
    """Orders requested by ``L``, in output order, as e3nn reads them.

    Parameters
    ----------
    L
        An int ``l``; a list or tuple of ints (any order, repeats allowed); an ``Irreps`` or its string, each
        ``mul x l`` contributing ``l`` ``mul`` times. Irreps parities must be those of the spherical harmonics
        of a vector (``(-1)**l``) or, when some odd order is even, of a pseudovector (all even), as in e3nn.
    l_max
        Highest order accepted.

    Returns
    -------
    list of int
        One entry per output block; block ``i`` has ``2 * orders[i] + 1`` columns.

    Raises
    ------
    ValueError
        For an empty request, a non-integer or negative order, an order above ``l_max`` or inconsistent
        parities.
    """
    if isinstance(L, str):
        try:
            L = o3.Irreps(L)
        except (ValueError, AssertionError) as error:
            raise ValueError(f"L={L!r} is not a valid irreps string: {error}") from None
    if isinstance(L, o3.Irreps):
        input_parity = _input_parity(L)
        orders = []
        for mul, ir in L:
            if ir.p != input_parity**ir.l:
                raise ValueError(
                    f"L={L} asks for l={ir.l} with parity {ir.p}; spherical harmonics of a "
                    f"{'pseudo' if input_parity == 1 else ''}vector have parity {input_parity**ir.l} there"
                )
            orders += [ir.l] * mul
    elif isinstance(L, numbers.Integral) and not isinstance(L, bool):
        orders = [int(L)]
    elif isinstance(L, (list, tuple)):
        orders = list(L)
    else:
        raise ValueError(f"L must be an int, a list of ints, an Irreps or its string, got {L!r}")
    if not orders:
        raise ValueError("L is empty: ask for at least one order")
    for l in orders:
        if isinstance(l, bool) or not isinstance(l, numbers.Integral) or l < 0:
            raise ValueError(f"L holds {l!r}, which is not a non-negative integer order")
        if l > l_max:
            raise ValueError(f"L holds the order {l}; this backend supports orders up to {l_max}")
    return [int(l) for l in orders]


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


def _triton_launch(ctx, v: torch.Tensor) -> tuple[tuple[int], tuple, dict]:
    """Grid, leading kernel arguments after the tensors, and constexpr/column keywords for a call."""
    from . import _generated_triton

    n = v.shape[0]
    block = TRITON_BLOCK if v.is_cuda else min(INTERPRETER_BLOCK, max(16, 1 << (n - 1).bit_length()))
    constants, params = _triton_tables(ctx.normalization, compute_dtype(v.dtype), v.device)
    keywords = {f"col{l}": ctx.columns.get(l, 0) for l in range(_generated_triton.L_MAX + 1)}
    keywords.update({f"H{l}": l in ctx.columns for l in range(_generated_triton.L_MAX + 1)})
    keywords.update(MAXL=max(ctx.columns), NORMALIZE=ctx.normalize, BLOCK=block)
    return ((n + block - 1) // block,), (constants, params, n, v.stride(0), v.stride(1)), keywords


class _DecoupledSphericalHarmonics(torch.autograd.Function):
    """``(N, 3) -> (N, sum(2l + 1))`` for distinct orders, with the generated analytic backward."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, orders: tuple[int, ...], normalize: bool, normalization: str, backend: str):
        ctx.columns = _layout(orders)
        ctx.normalize, ctx.normalization, ctx.backend = normalize, normalization, backend
        ctx.save_for_backward(v)
        out = v.new_empty((v.shape[0], sum(2 * l + 1 for l in orders)))
        if v.shape[0] == 0:
            return out
        if backend == "torch":
            x, y, z = (v[:, i].to(compute_dtype(v.dtype)) for i in range(3))
            _generated_torch.forward(x, y, z, normalize, NORMALIZE_EPS, ctx.columns, _scales(normalization), out)
            return out
        from . import _generated_triton

        grid, (constants, params, n, s0, s1), keywords = _triton_launch(ctx, v)
        _generated_triton.forward_kernel[grid](v, out, constants, params, n, s0, s1, out.stride(0), **keywords)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (v,) = ctx.saved_tensors
        if v.shape[0] == 0:
            return torch.zeros_like(v), None, None, None, None
        if ctx.backend == "torch":
            cdt = compute_dtype(v.dtype)
            x, y, z = (v[:, i].to(cdt) for i in range(3))
            grads = _generated_torch.backward(
                x, y, z, ctx.normalize, NORMALIZE_EPS, ctx.columns, _scales(ctx.normalization), grad_out.to(cdt)
            )
            return torch.stack(grads, dim=-1).to(v.dtype), None, None, None, None
        from . import _generated_triton

        grid, (constants, params, n, s0, s1), keywords = _triton_launch(ctx, v)
        grad_v = torch.empty((n, 3), dtype=v.dtype, device=v.device)
        _generated_triton.backward_kernel[grid](
            v, grad_out, grad_v, constants, params, n, s0, s1, grad_out.stride(0), grad_out.stride(1), **keywords
        )
        return grad_v, None, None, None, None


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
        Orders: an int, a list of ints (any order, repeats allowed), an ``Irreps`` or its string.
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
    _check_vectors(vectors)
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    backend = _resolve_backend(backend, vectors.device)
    if backend == "e3nn":
        parse_orders(L, E3NN_L_MAX)
        return o3.spherical_harmonics(L, vectors, normalize, normalization)
    orders = parse_orders(L)
    distinct = tuple(dict.fromkeys(orders))
    flat = vectors.reshape(-1, 3)
    out = _DecoupledSphericalHarmonics.apply(flat, distinct, bool(normalize), normalization, backend)
    if len(distinct) < len(orders):  # repeated orders: gather the columns of each block
        columns = _layout(distinct)
        index = [columns[l] + i for l in orders for i in range(2 * l + 1)]
        out = out[:, torch.tensor(index, device=out.device)]
    return out.reshape(*vectors.shape[:-1], out.shape[-1])


class SphericalHarmonics(torch.nn.Module):
    """Module form of :func:`spherical_harmonics` (a drop-in for ``e3nn.o3.SphericalHarmonics``).

    Parameters
    ----------
    L
        Orders, as for :func:`spherical_harmonics` (checked here, once).
    normalize
        Project inputs onto the unit sphere first.
    normalization
        ``"integral"``, ``"component"`` or ``"norm"``.
    backend
        ``"auto"``, ``"triton"``, ``"torch"`` or ``"e3nn"``.

    Attributes
    ----------
    irreps_out : e3nn.o3.Irreps
        Irreps of the output, as e3nn's module reports them.
    """

    def __init__(
        self,
        L: int | list[int] | str | o3.Irreps,
        normalize: bool = True,
        normalization: str = "integral",
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        orders = parse_orders(L, E3NN_L_MAX if backend == "e3nn" else KERNEL_L_MAX)
        parity = _input_parity(o3.Irreps(L)) if isinstance(L, (str, o3.Irreps)) else -1
        self.L = L
        self.orders = orders
        self.normalize = bool(normalize)
        self.normalization = normalization
        self.backend = backend
        self.irreps_out = o3.Irreps([(1, (l, parity**l)) for l in orders]).simplify()

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        """Spherical harmonics of ``vectors`` (shape ``(..., 3)``)."""
        return spherical_harmonics(self.L, vectors, self.normalize, self.normalization, self.backend)

    def extra_repr(self) -> str:
        return (
            f"L={self.orders}, normalize={self.normalize}, normalization={self.normalization!r}, "
            f"backend={self.backend!r}"
        )
