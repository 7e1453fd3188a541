"""Sets of spherical-harmonic orders ``L`` and the e3nn irreps they induce.

A model's ``L`` is a sorted set of unique orders, gaps allowed (``[0, 3, 4, 5, 6]``). Each order ``l`` carries
parity ``(-1)**l`` (``0e, 1o, 2e, 3o, ...``), the parity of the spherical harmonic ``Y_l``. Features of a layer
with multiplicity ``h`` are laid out as e3nn lays them out: for every ``l`` in ascending order a block of
``h * (2l + 1)`` numbers (``h`` copies of a ``(2l + 1)``-vector, copy-major). Split them with
:func:`feature_slices`, never by multiplicity alone.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

from e3nn import o3

from .orders import L_MAX, validate_L  # noqa: F401  (re-exported)


def parity(l: int) -> int:
    """Parity ``(-1)**l`` of the order-``l`` spherical harmonic."""
    return -1 if l % 2 else 1


def irreps_for(L: Iterable[int] | int, h: int) -> o3.Irreps:
    """Irreps ``h x l`` with parity ``(-1)**l`` for every ``l`` in ``L``, ascending.

    Parameters
    ----------
    L
        Set of orders (validated with :func:`validate_L`).
    h
        Multiplicity (hidden channels per order), a positive integer.

    Returns
    -------
    e3nn.o3.Irreps
        For example ``irreps_for([0, 3], 16)`` is ``16x0e+16x3o``.
    """
    orders = validate_L(L)
    if isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 1:
        raise ValueError(f"multiplicity h must be a positive integer, got {h!r}")
    return o3.Irreps([(int(h), (l, parity(l))) for l in orders])


def sh_irreps(L: Iterable[int] | int) -> o3.Irreps:
    """Irreps of the spherical harmonics of the orders ``L``: ``1x0e + 1x1o + ...``."""
    return irreps_for(L, 1)


def feature_slices(irreps: o3.Irreps) -> dict[int, slice]:
    """Column slice of each order ``l`` in a feature tensor laid out as ``irreps``.

    Parameters
    ----------
    irreps
        Irreps with at most one entry per order (as built by :func:`irreps_for`).

    Returns
    -------
    dict
        ``{l: slice}``; the slice spans ``mul * (2l + 1)`` columns.

    Raises
    ------
    ValueError
        If an order occurs in more than one entry (the split by ``l`` would be ambiguous).
    """
    irreps = o3.Irreps(irreps)
    out: dict[int, slice] = {}
    for (mul, ir), sl in zip(irreps, irreps.slices()):
        if ir.l in out:
            raise ValueError(f"order {ir.l} occurs more than once in {irreps}; simplify() it first")
        out[ir.l] = sl
    return out
