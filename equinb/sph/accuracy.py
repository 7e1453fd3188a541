"""Numerical accuracy of spherical-harmonic implementations against a 50-digit ground truth.

For every input dtype, the vectors are first rounded to that dtype; the ground truth is then the exact function
of those rounded inputs: ``Y_l(v / |v|)`` and the vector-Jacobian product ``g^T dY_l(v / |v|)/dv``, evaluated
with mpmath at 50 significant digits from the exact sympy polynomials of :mod:`equinb.so3.harmonics` (expanded
monomials, independent of the factored forms the kernels use). Errors are measured per point and order as

* ``abs``: ``max_m |Y_lm - Y*_lm|`` (for gradients ``max_i |G_i - G*_i|`` over the three coordinates),
* ``rel``: ``abs`` divided by ``max_m |Y*_lm|`` (resp. ``max_i |G*_i|``), a normwise relative error that stays
  meaningful where single components vanish,

then summarised by their maximum and median over the points. A non-finite result counts as an infinite error,
except where the exact value itself exceeds the dtype's range (the gradient of a very short vector in float16):
no implementation can return it, and the point is left out (``NaN`` when no point remains).

Input families (all with ``normalize=True``): ``sphere`` (random directions, lengths 0.5..2), ``near_pole``
(within 1e-6..1e-2 rad of the polar axis ±y, where the azimuthal factors vanish) and ``short`` (random directions,
lengths 1e-5..1e-3, where squaring underflows in half precision).
"""

from __future__ import annotations

import importlib.util
import math
import os
from functools import lru_cache

import mpmath
import numpy as np
import pandas as pd
import sympy as sp
import torch

from equinb.so3.harmonics import spherical_harmonics_exact, x, y, z

from .api import spherical_harmonics

#: Significant digits of the ground truth.
DIGITS = 50

#: Input families of the study.
KINDS = ("sphere", "near_pole", "short")

#: Dtypes of the study, by name.
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64}


def available_backends() -> list[str]:
    """Implementations that can run here: ours (PyTorch; Triton on CUDA or under ``TRITON_INTERPRET=1``), e3nn,
    and sphericart when it is installed."""
    backends = ["torch"]
    if torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1":
        backends.append("triton")
    backends.append("e3nn")
    if importlib.util.find_spec("sphericart") is not None:
        backends.append("sphericart")
    return backends


def sample_vectors(kind: str, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` float64 vectors of one input family (see the module docstring).

    Parameters
    ----------
    kind
        One of :data:`KINDS`.
    n
        Number of vectors.
    seed
        Seed of the generator.

    Returns
    -------
    torch.Tensor
        Shape ``(n, 3)``, float64.
    """
    rng = np.random.default_rng(seed)
    if kind == "near_pole":
        theta = 10.0 ** rng.uniform(-6, -2, n)
        phi = rng.uniform(0, 2 * math.pi, n)
        sign = rng.choice([-1.0, 1.0], n)
        v = np.stack([np.sin(theta) * np.cos(phi), sign * np.cos(theta), np.sin(theta) * np.sin(phi)], axis=1)
    elif kind in ("sphere", "short"):
        v = rng.normal(size=(n, 3))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        low, high = (0.5, 2.0) if kind == "sphere" else (1e-5, 1e-3)
        v *= np.exp(rng.uniform(math.log(low), math.log(high), (n, 1)))
    else:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return torch.from_numpy(v)


@lru_cache(maxsize=None)
def _exact_terms(l: int) -> tuple[list, list]:
    """Monomials ``(i, j, k, coefficient)`` of each component of order ``l`` and of its three partials."""
    with mpmath.workdps(DIGITS):
        def terms(expr: sp.Expr) -> list[tuple[int, int, int, mpmath.mpf]]:
            poly = sp.Poly(sp.expand(expr), x, y, z)
            return [(i, j, k, mpmath.mpf(sp.N(c, DIGITS + 10))) for (i, j, k), c in poly.terms()]

        components = spherical_harmonics_exact(l)
        values = [terms(e) for e in components]
        partials = [[terms(sp.diff(e, v)) for v in (x, y, z)] for e in components]
    return values, partials


def _polynomial(terms: list, powers: list) -> mpmath.mpf:
    """``sum c x^i y^j z^k`` over monomial ``terms`` with precomputed ``powers[axis][exponent]``."""
    return mpmath.fsum(c * powers[0][i] * powers[1][j] * powers[2][k] for i, j, k, c in terms)


def ground_truth(l: int, vectors: torch.Tensor, upstream: torch.Tensor) -> tuple[list, list]:
    """Exact ``Y_l(v/|v|)`` and ``upstream^T dY_l(v/|v|)/dv`` for each row, as mpmath numbers.

    Parameters
    ----------
    l
        Order.
    vectors
        Shape ``(n, 3)``; each entry is taken as the exact binary number it holds.
    upstream
        Shape ``(n, 2l + 1)``, the upstream gradient (exact binary numbers).

    Returns
    -------
    tuple
        ``values[p][m]`` and ``gradients[p][i]`` (mpmath ``mpf``), for point ``p``.
    """
    value_terms, partial_terms = _exact_terms(l)
    rows, grads = vectors.double().tolist(), upstream.double().tolist()
    values, gradients = [], []
    with mpmath.workdps(DIGITS):
        for v, g in zip(rows, grads):
            v = [mpmath.mpf(c) for c in v]
            r = mpmath.sqrt(sum(c * c for c in v))
            n = [c / r for c in v]
            powers = [[mpmath.mpf(1)] for _ in range(3)]
            for axis in range(3):
                for _ in range(l):
                    powers[axis].append(powers[axis][-1] * n[axis])
            values.append([_polynomial(t, powers) for t in value_terms])
            grad_n = [
                mpmath.fsum(mpmath.mpf(gm) * _polynomial(t[axis], powers) for gm, t in zip(g, partial_terms))
                for axis in range(3)
            ]
            radial = mpmath.fsum(a * b for a, b in zip(n, grad_n))
            gradients.append([(grad_n[axis] - n[axis] * radial) / r for axis in range(3)])
    return values, gradients


def _sphericart(l: int, vectors: torch.Tensor) -> torch.Tensor:
    """sphericart's order-``l`` harmonics in e3nn's layout and integral normalisation.

    sphericart uses ``z`` as the polar axis; feeding it ``(z, x, y)`` reproduces e3nn's components one for one
    (checked to 1e-14 for every ``l <= 10``).
    """
    import sphericart.torch

    out = sphericart.torch.SphericalHarmonics(l)(vectors[:, [2, 0, 1]])
    return out[:, l * l : (l + 1) * (l + 1)]


def evaluate(
    backend: str, l: int, vectors: torch.Tensor, upstream: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Values (component normalisation) and vector-Jacobian product of one implementation, in float64.

    Parameters
    ----------
    backend
        ``"torch"``, ``"triton"``, ``"e3nn"`` or ``"sphericart"``.
    l
        Order.
    vectors
        Shape ``(n, 3)`` in the dtype under study.
    upstream
        Shape ``(n, 2l + 1)``, same dtype.

    Returns
    -------
    tuple of torch.Tensor
        ``(values, gradient)`` converted to float64.
    """
    leaf = vectors.detach().clone().requires_grad_(True)
    if backend == "sphericart":
        out = _sphericart(l, leaf) * math.sqrt(4 * math.pi)
    else:
        out = spherical_harmonics(l, leaf, True, "component", backend)
    if not out.requires_grad:  # e3nn's l = 0 is a constant, detached from the input
        return out.detach().double(), torch.zeros_like(leaf, dtype=torch.float64)
    out.backward(upstream)
    return out.detach().double(), leaf.grad.double()


def _errors(ours: torch.Tensor, truth: list, largest: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-point normwise absolute and relative errors of ``ours`` against mpmath rows ``truth``; points whose
    exact values exceed ``largest`` (the dtype's largest finite number) are skipped."""
    absolute, relative = [], []
    with mpmath.workdps(DIGITS):
        for row, exact in zip(ours.tolist(), truth):
            if max(abs(b) for b in exact) > largest:
                continue
            if not all(math.isfinite(value) for value in row):
                absolute.append(math.inf)
                relative.append(math.inf)
                continue
            error = max(abs(mpmath.mpf(a) - b) for a, b in zip(row, exact))
            scale = max(abs(b) for b in exact)
            absolute.append(float(error))
            relative.append(float(error / scale) if scale else (0.0 if error == 0 else math.inf))
    return np.array(absolute or [math.nan]), np.array(relative or [math.nan])


def accuracy_study(
    orders=range(11),
    dtypes=tuple(DTYPES),
    backends: list[str] | None = None,
    n_points: int = 64,
    kinds=KINDS,
    seed: int = 0,
) -> pd.DataFrame:
    """Errors of every backend, dtype, input family and order against the 50-digit ground truth.

    Parameters
    ----------
    orders
        Orders ``l`` to study.
    dtypes
        Names of dtypes (keys of :data:`DTYPES`).
    backends
        Implementations (default: :func:`available_backends`); sphericart is skipped for half precision,
        which it does not support.
    n_points
        Vectors per input family.
    kinds
        Input families (:data:`KINDS`).
    seed
        Seed of the inputs and upstream gradients.

    Returns
    -------
    pandas.DataFrame
        One row per (backend, dtype, kind, l, quantity) with ``quantity`` in ``{"value", "gradient"}`` and
        columns ``max_abs``, ``median_abs``, ``max_rel``, ``median_rel``.
    """
    backends = available_backends() if backends is None else list(backends)
    rows = []
    for dtype_name in dtypes:
        dtype = DTYPES[dtype_name]
        for kind_index, kind in enumerate(kinds):
            vectors = sample_vectors(kind, n_points, seed + kind_index).to(dtype)
            generator = torch.Generator().manual_seed(seed + 100 + kind_index)
            for l in orders:
                upstream = torch.randn(n_points, 2 * l + 1, generator=generator, dtype=torch.float64).to(dtype)
                values, gradients = ground_truth(l, vectors, upstream)
                for backend in backends:
                    if backend == "sphericart" and dtype not in (torch.float32, torch.float64):
                        continue
                    ours, grad = evaluate(backend, l, vectors, upstream)
                    for quantity, result, truth in (("value", ours, values), ("gradient", grad, gradients)):
                        absolute, relative = _errors(result, truth, torch.finfo(dtype).max)
                        rows.append(
                            {
                                "backend": backend,
                                "dtype": dtype_name,
                                "kind": kind,
                                "l": l,
                                "quantity": quantity,
                                "max_abs": absolute.max(),
                                "median_abs": float(np.median(absolute)),
                                "max_rel": relative.max(),
                                "median_rel": float(np.median(relative)),
                            }
                        )
    return pd.DataFrame(rows)


def error_ratios(
    table: pd.DataFrame, backend: str = "torch", reference: str = "e3nn", dtypes=("float32", "float64")
) -> pd.DataFrame:
    """Errors of ``backend`` over those of ``reference`` per quantity, dtype and order (worst input family).

    Parameters
    ----------
    table
        Output of :func:`accuracy_study` holding both implementations.
    backend, reference
        The two implementations compared (by default the decoupled polynomials against e3nn's recursion).
    dtypes
        Dtypes kept.

    Returns
    -------
    pandas.DataFrame
        Index ``(quantity, dtype, l)``; columns ``max_rel`` and ``median_rel`` of both implementations (each the
        largest over the input families) and ``ratio_max``, ``ratio_median`` (``backend / reference``; ``NaN``
        where either error is zero, as for the constant ``Y_0``).
    """
    data = table[table.dtype.isin(dtypes) & table.backend.isin([backend, reference])]
    worst = data.groupby(["quantity", "dtype", "l", "backend"])[["max_rel", "median_rel"]].max().unstack("backend")
    out = pd.DataFrame(index=worst.index)
    for statistic, name in (("max_rel", "max"), ("median_rel", "median")):
        ours, theirs = worst[statistic][backend], worst[statistic][reference]
        out[f"{backend}_{statistic}"], out[f"{reference}_{statistic}"] = ours, theirs
        out[f"ratio_{name}"] = (ours / theirs).where((ours > 0) & (theirs > 0))
    return out


def orders_beyond(ratios: pd.DataFrame, factor: float = 2.0, column: str = "ratio_max") -> dict[tuple, list[int]]:
    """Orders where one implementation's error exceeds the other's by more than ``factor``.

    Returns
    -------
    dict
        ``{(quantity, dtype, "worse" | "better"): [l, ...]}``: ``worse`` where ``ratio > factor``, ``better``
        where ``ratio < 1 / factor``.
    """
    result = {}
    for (quantity, dtype), block in ratios[column].groupby(level=["quantity", "dtype"]):
        block = block.droplevel(["quantity", "dtype"])
        result[(quantity, dtype, "worse")] = [int(l) for l in block.index[block > factor]]
        result[(quantity, dtype, "better")] = [int(l) for l in block.index[block < 1 / factor]]
    return result
