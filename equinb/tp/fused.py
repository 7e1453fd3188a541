r"""The fused tensor product (the ``fused`` backend on the CPU): one pass over the edges in C++.

The grouped matrix products of :mod:`equinb.tp.contraction` spend their time outside arithmetic: every path's
intermediate is materialised for all edges, concatenated, and multiplied in batches of tiny matrices. Here each
edge is finished before the next begins (``csrc/fused.cpp``, built by :mod:`equinb.tp.kernel`): per path the
coupled matrix ``T[k][u, v]`` lives in a per-thread buffer of a few kilobytes, and the only arrays of the size
of the problem are the inputs, the output, and the weights' gradient. The loops over multiplicities have unit
stride and are vectorised; edges are spread over torch's intra-op threads.

Derivatives. The backward of the forward pass is fused as well (gradients of ``x1``, ``x2`` and the weights,
only those requested). When autograd is building a graph of the backward (``create_graph=True``, e.g. forces
through the energy's gradient), the backward is instead recomputed through the differentiable torch path, so
derivatives of every order are exact, never approximated.

Memory. The weights' gradient is an ``(E, weight_numel)`` array, tens of megabytes: allocated afresh at every
step, glibc's allocator would map and page-fault it every time (its default returns blocks over 32 MB to the
system). The module keeps it in a :class:`Workspace` and reuses it whenever nothing else still holds it, so the
speed does not depend on the process's allocator settings.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..so3 import wigner_3j_sparse
from .contraction import ContractionPlan

#: Columns of the per-path table read by the kernel, in the order of ``enum Column`` in ``csrc/fused.cpp``.
PATH_COLUMNS = ("d1", "d2", "do", "mul1", "mul2", "mulo", "x1_off", "x2_off", "w_off", "out_off", "nnz_begin",
                "nnz_end")
#: Dtypes the kernel computes in.
FUSED_DTYPES = (torch.float32, torch.float64)


def fused_tables(plan: ContractionPlan) -> dict[str, np.ndarray]:
    """The kernel's plan: per-path table, the non-zero coupling entries, output groups and first-input irreps.

    Parameters
    ----------
    plan
        The contraction plan (its paths with weights).

    Returns
    -------
    dict of str to numpy.ndarray
        ``path`` (P, 12) int64 with :data:`PATH_COLUMNS`, rows grouped by output irrep; ``nnz_ijk`` (N, 3)
        int64 and ``nnz_value`` (N,) float64 (the Wigner-3j entry times the path's ``alpha``); ``groups``
        (G + 1,) int64, each output group's first row and then P; ``in1`` (I, 3) int64, offset, multiplicity
        and dimension of every irrep of the first input.
    """
    offsets = {name: np.concatenate([[0], np.cumsum(dims)])[:-1]
               for name, dims in (("x1", plan.in1_dims), ("x2", plan.in2_dims), ("out", plan.out_dims))}
    rows, ijk, values, groups = [], [], [], [0]
    for group in plan.by_out:
        for p in group.paths:
            path = plan.paths[p]
            indices, entries = wigner_3j_sparse(path.l1, path.l2, path.lo)
            begin = len(values)
            ijk.extend(np.asarray(indices, dtype=np.int64).tolist())
            values.extend((path.alpha * np.asarray(entries, dtype=np.float64)).tolist())
            rows.append([2 * path.l1 + 1, 2 * path.l2 + 1, 2 * path.lo + 1, path.mul1, path.mul2, path.mulo,
                         offsets["x1"][path.i1], offsets["x2"][path.i2], path.weight_offset,
                         offsets["out"][path.io], begin, len(values)])
        groups.append(len(rows))
    in1 = [[offsets["x1"][group.index], group.mul, group.dim] for group in plan.by_in1]
    return {
        "path": np.asarray(rows, dtype=np.int64).reshape(-1, len(PATH_COLUMNS)),
        "nnz_ijk": np.asarray(ijk, dtype=np.int64).reshape(-1, 3),
        "nnz_value": np.asarray(values, dtype=np.float64),
        "groups": np.asarray(groups, dtype=np.int64),
        "in1": np.asarray(in1, dtype=np.int64).reshape(-1, 3),
    }


def _storage_users(tensor: torch.Tensor) -> int:
    return torch._C._storage_Use_Count(tensor.untyped_storage()._cdata)


#: What :func:`_storage_users` reports for a storage that only one tensor holds.
_ALONE = _storage_users(torch.empty(1))


class Workspace:
    """Large per-step arrays kept between calls and reused when nothing else holds them.

    :meth:`take` hands out a view of a kept flat buffer when no tensor made from an earlier :meth:`take` is
    still alive (a gradient the caller kept, a saved tensor of a pending backward), and a fresh buffer
    otherwise; the buffer grows to the largest size asked for. Contents are undefined: callers overwrite them.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}

    def take(self, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """An uninitialised ``shape`` tensor of ``like``'s dtype and device, from the buffer called ``name``.

        Parameters
        ----------
        name
            Which kept buffer (one per role).
        shape
            The tensor's shape.
        like
            Gives dtype and device.

        Returns
        -------
        torch.Tensor
            Contiguous, not shared with any live tensor.
        """
        numel = int(np.prod(shape))
        kept = self._buffers.get(name)
        if (kept is None or kept.numel() < numel or kept.dtype != like.dtype or kept.device != like.device
                or _storage_users(kept) > _ALONE):
            kept = like.new_empty(numel)
            self._buffers[name] = kept
        return kept[:numel].view(shape)


def _gradients(reference: Callable[..., torch.Tensor], inputs: tuple[torch.Tensor, ...],
               needs: tuple[bool, ...], grad_out: torch.Tensor) -> list[torch.Tensor | None]:
    """The gradients of ``reference(*inputs)`` through the differentiable torch path, with a graph."""
    wanted = [tensor for tensor, need in zip(inputs, needs) if need]
    with torch.enable_grad():
        out = reference(*inputs)
        grads = iter(torch.autograd.grad(out, wanted, grad_out, create_graph=True, allow_unused=True))
    return [next(grads) if need else None for need in needs]


def _empty(like: torch.Tensor) -> torch.Tensor:
    return like.new_empty(0)


class FusedProduct(torch.autograd.Function):
    """``out = TP(x1, x2, weight)`` with weights in e3nn's layout, forward and backward fused."""

    @staticmethod
    def forward(ctx, x1, x2, weight, ops, tables, dim_out, workspace, reference):
        ctx.save_for_backward(x1, x2, weight)
        ctx.ops, ctx.tables, ctx.workspace, ctx.reference = ops, tables, workspace, reference
        return ops.fused_forward(x1, x2, weight, *tables, dim_out)

    @staticmethod
    def backward(ctx, grad_out):
        x1, x2, weight = ctx.saved_tensors
        needs = ctx.needs_input_grad[:3]
        if torch.is_grad_enabled():  # a graph of the backward is being built: exact, through the torch path
            return (*_gradients(ctx.reference, (x1, x2, weight), needs, grad_out), None, None, None, None, None)
        grad_x1 = torch.empty_like(x1) if needs[0] else _empty(x1)
        grad_x2 = torch.empty_like(x2) if needs[1] else _empty(x2)
        grad_weight = ctx.workspace.take("grad_weight", weight.shape, weight) if needs[2] else _empty(weight)
        ctx.ops.fused_backward(grad_out.contiguous(), x1, x2, weight, *ctx.tables, grad_x1, grad_x2, grad_weight)
        grads = [g if need else None for g, need in zip((grad_x1, grad_x2, grad_weight), needs)]
        return (*grads, None, None, None, None, None)


class FusedFactoredProduct(torch.autograd.Function):
    """``out = TP(x1, x2, features @ matrix)``: the weights made in the workspace, never seen by autograd."""

    @staticmethod
    def forward(ctx, x1, x2, features, matrix, ops, tables, dim_out, workspace, reference):
        weight = workspace.take("weight", (features.shape[0], matrix.shape[1]), features)
        torch.mm(features, matrix, out=weight)
        ctx.save_for_backward(x1, x2, features, matrix)
        ctx.weight, ctx.ops, ctx.tables, ctx.workspace, ctx.reference = weight, ops, tables, workspace, reference
        return ops.fused_forward(x1, x2, weight, *tables, dim_out)

    @staticmethod
    def backward(ctx, grad_out):
        x1, x2, features, matrix = ctx.saved_tensors
        needs = ctx.needs_input_grad[:4]
        if torch.is_grad_enabled():
            grads = _gradients(lambda a, b, f, m: ctx.reference(a, b, f @ m), (x1, x2, features, matrix), needs,
                               grad_out)
            return (*grads, None, None, None, None, None)
        # the forward's weights are released to the workspace by the first backward; a second one (retain_graph)
        # makes them again
        weight, ctx.weight = (ctx.weight if ctx.weight is not None else features @ matrix), None
        grad_x1 = torch.empty_like(x1) if needs[0] else _empty(x1)
        grad_x2 = torch.empty_like(x2) if needs[1] else _empty(x2)
        factors = needs[2] or needs[3]
        grad_weight = ctx.workspace.take("grad_weight", weight.shape, weight) if factors else _empty(weight)
        ctx.ops.fused_backward(grad_out.contiguous(), x1, x2, weight, *ctx.tables, grad_x1, grad_x2, grad_weight)
        grad_features = grad_weight @ matrix.T if needs[2] else None
        grad_matrix = features.T @ grad_weight if needs[3] else None
        return (grad_x1 if needs[0] else None, grad_x2 if needs[1] else None, grad_features, grad_matrix,
                None, None, None, None, None)
