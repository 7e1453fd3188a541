"""Correctness checks of a backend against e3nn and against the symmetries of spherical harmonics.

Each function evaluates one backend of :func:`equinb.sph.spherical_harmonics` in as few calls as possible (one
call covers every requested order; under Triton's interpreter each call is one launch) and returns the largest
deviation, so tests assert on it and the book tabulates it.

The reference is e3nn evaluated in float64 on the very same (already rounded) inputs, i.e. e3nn's value for
those inputs up to float64 round-off: comparing against e3nn run in float32 would add e3nn's own float32 error
(about 3e-6 at l = 10) to ours.
"""

from __future__ import annotations

import math

import torch
from e3nn import o3

from .api import spherical_harmonics


def _errors(ours: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
    """Largest absolute and largest per-row relative deviation.

    The relative error of a row is its largest absolute deviation divided by the row's largest reference
    magnitude, so every row is held to the same relative standard: a kernel that returns garbage (or zeros) for
    the rows with small values fails even when other rows are large. A row whose reference is exactly zero
    counts as exact only if ours is exactly zero there too (otherwise its relative error is infinite).
    """
    ours, reference = ours.double(), reference.double()
    if ours.shape != reference.shape:
        raise ValueError(f"shapes differ: {tuple(ours.shape)} against the reference's {tuple(reference.shape)}")
    if ours.numel() == 0:
        return {"max_abs": 0.0, "max_rel": 0.0}
    diff = (ours - reference).abs().reshape(-1, ours.shape[-1]).amax(dim=-1)
    scale = reference.abs().reshape(-1, ours.shape[-1]).amax(dim=-1)
    relative = torch.where(scale > 0, diff / scale.clamp_min(torch.finfo(torch.float64).tiny),
                           torch.where(diff > 0, math.inf, 0.0))
    return {"max_abs": float(diff.max()), "max_rel": float(relative.max())}


def compare_values(
    L, vectors: torch.Tensor, backend: str, normalize: bool = True, normalization: str = "integral"
) -> dict[str, float]:
    """Largest deviation of a backend's values from e3nn's (computed in float64 from the same inputs).

    Parameters
    ----------
    L, vectors, normalize, normalization
        As for :func:`equinb.sph.spherical_harmonics`.
    backend
        Backend under test.

    Returns
    -------
    dict
        ``max_abs``: largest absolute difference; ``max_rel``: largest per-row relative difference (a row's
        largest absolute difference over e3nn's largest magnitude in that row).
    """
    ours = spherical_harmonics(L, vectors, normalize, normalization, backend)
    reference = o3.spherical_harmonics(L, vectors.double(), normalize, normalization)
    return _errors(ours, reference)


def compare_gradients(
    L,
    vectors: torch.Tensor,
    upstream: torch.Tensor | None,
    backend: str,
    normalize: bool = True,
    normalization: str = "integral",
) -> dict[str, float]:
    """Largest deviation of ``dL/dvectors`` from e3nn's autograd (float64, same inputs) for ``upstream``.

    Parameters
    ----------
    L, vectors, normalize, normalization
        As for :func:`equinb.sph.spherical_harmonics`.
    upstream
        ``dL/dY`` (any strides), or ``None`` for the loss ``Y.sum()`` (whose gradient has stride 0).
    backend
        Backend under test.

    Returns
    -------
    dict
        ``max_abs`` and ``max_rel`` (per row of ``vectors``: relative to e3nn's largest gradient magnitude in
        that row).
    """
    grads = []
    for name, dtype in ((backend, vectors.dtype), ("e3nn", torch.float64)):
        leaf = vectors.detach().to(dtype).requires_grad_(True)
        out = spherical_harmonics(L, leaf, normalize, normalization, name)
        if upstream is None:
            out.sum().backward()
        else:
            out.backward(upstream.to(dtype))
        grads.append(leaf.grad)
    return _errors(*grads)


def _wigner_d(l: int, rotation: torch.Tensor) -> torch.Tensor:
    """e3nn's ``D_l(R)``, built in float64 (e3nn builds its generators in the default dtype)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return o3.Irrep(l, (-1) ** l).D_from_matrix(rotation.double())
    finally:
        torch.set_default_dtype(previous)


def equivariance_error(
    orders: list[int], vectors: torch.Tensor, rotation: torch.Tensor, backend: str
) -> dict[int, float]:
    """``max |Y_l(R v) - D_l(R) Y_l(v)|`` per order, from one call on ``[v; R v]``.

    Parameters
    ----------
    orders
        Distinct orders to check.
    vectors
        Shape ``(N, 3)``.
    rotation
        A ``3 x 3`` rotation matrix (same dtype as ``vectors``).
    backend
        Backend under test.

    Returns
    -------
    dict
        Order to largest deviation (component normalisation).
    """
    n = vectors.shape[0]
    both = spherical_harmonics(orders, torch.cat([vectors, vectors @ rotation.T]), True, "component", backend)
    result, start = {}, 0
    for l in orders:
        block = both[:, start : start + 2 * l + 1]
        wigner = _wigner_d(l, rotation).to(block.dtype)
        result[l] = float((block[n:] - block[:n] @ wigner.T).abs().max())
        start += 2 * l + 1
    return result


def parity_error(orders: list[int], vectors: torch.Tensor, backend: str) -> dict[int, float]:
    """``max |Y_l(-v) - (-1)^l Y_l(v)|`` per order, from one call on ``[v; -v]`` (component normalisation)."""
    n = vectors.shape[0]
    both = spherical_harmonics(orders, torch.cat([vectors, -vectors]), True, "component", backend)
    result, start = {}, 0
    for l in orders:
        block = both[:, start : start + 2 * l + 1]
        result[l] = float((block[n:] - (-1) ** l * block[:n]).abs().max())
        start += 2 * l + 1
    return result


def norm_identity_error(orders: list[int], vectors: torch.Tensor, backend: str) -> dict[int, float]:
    """``max |sum_m Y_lm(v)^2 - (2l + 1)|`` per order on the unit sphere (component normalisation)."""
    out = spherical_harmonics(orders, vectors, True, "component", backend)
    result, start = {}, 0
    for l in orders:
        block = out[:, start : start + 2 * l + 1].double()
        result[l] = float((block.pow(2).sum(-1) - (2 * l + 1)).abs().max())
        start += 2 * l + 1
    return result
