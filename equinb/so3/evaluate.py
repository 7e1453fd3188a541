"""Float64 evaluation of the exact real spherical harmonics of :mod:`equinb.so3.harmonics`.

The exact polynomials are compiled once per order with :func:`sympy.lambdify` (numpy backend) and cached. This
is a reference evaluator for plots, demonstrations and tests, not a fast kernel (those live in ``equinb.sph``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import sympy as sp

from .harmonics import spherical_harmonics_exact, x, y, z
from .orders import check_order


@lru_cache(maxsize=None, typed=True)
def _compiled(l: int) -> Callable[..., list]:
    return sp.lambdify((x, y, z), spherical_harmonics_exact(l), modules="numpy")


def evaluate_harmonics(l: int, vectors: np.ndarray) -> np.ndarray:
    """``Y_l`` at the given vectors, as ``e3nn.o3.spherical_harmonics(l, vectors, normalize=False)``.

    Parameters
    ----------
    l
        Order, ``l >= 0``.
    vectors
        Array of shape ``(..., 3)`` (``x, y, z``); not normalised, so the result scales as ``|v|**l``.

    Returns
    -------
    numpy.ndarray
        Shape ``(..., 2l + 1)``, float64, components in e3nn's order (``m = -l .. l``), "component"
        normalisation (``sum_m Y_lm**2 = (2l + 1) |v|**(2l)``).
    """
    l = check_order(l)
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.shape[-1:] != (3,):
        raise ValueError(f"vectors must have shape (..., 3), got {vectors.shape}")
    components = _compiled(l)(vectors[..., 0], vectors[..., 1], vectors[..., 2])
    # constant components (l = 0) come back as Python scalars: broadcast them to the batch shape
    return np.stack([np.broadcast_to(np.asarray(c, dtype=np.float64), vectors.shape[:-1]) for c in components], -1)
