"""Selection rules and the tensor-product paths of sets of orders ``L``.

Coupling an irrep ``l1`` (parity ``p1``) with an irrep ``l2`` (parity ``p2``) can produce ``l3`` (parity ``p3``)
only if

* the triangle rule holds, ``|l1 - l2| <= l3 <= l1 + l2`` (conservation of angular momentum: the
  Clebsch–Gordan coefficients vanish otherwise), and
* parity is conserved, ``p1 * p2 == p3``.

Every order of a model's set ``L`` carries the parity ``(-1)**l`` of ``Y_l`` (:func:`equinb.so3.parity`), so
for such irreps the parity rule is ``l1 + l2 + l3`` even. A *path* is one allowed triple
``(l_in, l_sh, l_out)`` of a fully connected tensor product ``features(L_in) x Y(L_sh) -> features(L_out)``;
each path carries its own block of ``mul_in * mul_out`` learnable weights (one per pair of input and output
channels, the spherical harmonics having multiplicity 1). ``P(L)`` is the number of paths when the three sets are
the same ``L``, as in every convolution block of the study after the first.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import NamedTuple

from .irreps import parity
from .orders import check_order, validate_L


class Path(NamedTuple):
    """One allowed coupling ``l_in x l_sh -> l_out`` of a tensor product."""

    l_in: int
    l_sh: int
    l_out: int


def triangle_allowed(l1: int, l2: int, l3: int) -> bool:
    """Triangle rule ``|l1 - l2| <= l3 <= l1 + l2`` (symmetric in the three orders).

    Parameters
    ----------
    l1, l2, l3
        Non-negative integer orders.

    Returns
    -------
    bool
        Whether ``l1 x l2`` can couple to ``l3``.

    Raises
    ------
    ValueError
        If an order is not a non-negative integer.
    """
    for l in (l1, l2, l3):
        check_order(l)
    return abs(l1 - l2) <= l3 <= l1 + l2


def parity_allowed(p1: int, p2: int, p3: int) -> bool:
    """Parity rule ``p1 * p2 == p3`` for parities ``+1`` (even) and ``-1`` (odd).

    Raises
    ------
    ValueError
        If a parity is not ``+1`` or ``-1``.
    """
    for p in (p1, p2, p3):
        if p not in (1, -1):
            raise ValueError(f"a parity must be +1 or -1, got {p!r}")
    return p1 * p2 == p3


def path_allowed(l_in: int, l_sh: int, l_out: int) -> bool:
    """Both selection rules for orders with their natural parity ``(-1)**l``.

    Parameters
    ----------
    l_in, l_sh, l_out
        Orders of the input feature, the spherical harmonic and the output feature.

    Returns
    -------
    bool
        ``triangle_allowed(l_in, l_sh, l_out)`` and parity conserved, i.e. ``l_in + l_sh + l_out`` even.
    """
    return triangle_allowed(l_in, l_sh, l_out) and parity_allowed(parity(l_in), parity(l_sh), parity(l_out))


def tensor_product_paths(
    L_in: Iterable[int] | int,
    L_sh: Iterable[int] | int | None = None,
    L_out: Iterable[int] | int | None = None,
) -> list[Path]:
    """All allowed paths of the tensor product ``features(L_in) x Y(L_sh) -> features(L_out)``.

    Parameters
    ----------
    L_in
        Orders of the input features (validated with :func:`equinb.so3.validate_L`).
    L_sh
        Orders of the spherical harmonics; ``None`` means ``L_in``.
    L_out
        Orders of the output features; ``None`` means ``L_in``.

    Returns
    -------
    list of Path
        In e3nn's instruction order of ``FullyConnectedTensorProduct``: ``l_in`` outermost, then ``l_sh``, then
        ``l_out``, each ascending.

    Examples
    --------
    >>> tensor_product_paths([0, 1], [1], [0, 1])
    [Path(l_in=0, l_sh=1, l_out=1), Path(l_in=1, l_sh=1, l_out=0)]
    """
    orders_in = validate_L(L_in)
    orders_sh = orders_in if L_sh is None else validate_L(L_sh)
    orders_out = orders_in if L_out is None else validate_L(L_out)
    return [
        Path(l_in, l_sh, l_out)
        for l_in in orders_in
        for l_sh in orders_sh
        for l_out in orders_out
        if path_allowed(l_in, l_sh, l_out)
    ]


def path_count(L: Iterable[int] | int) -> int:
    """``P(L)``: the number of paths when input, spherical harmonics and output all use the orders ``L``.

    Examples
    --------
    >>> path_count([0, 1, 2])
    11
    >>> path_count([0, 3, 4, 5, 6])
    45
    """
    return len(tensor_product_paths(L))


def tp_weight_count(
    L: Iterable[int] | int,
    h: int,
    L_in: Iterable[int] | int | None = None,
    h_in: int | None = None,
) -> int:
    """Weights of ``FullyConnectedTensorProduct(irreps_for(L_in, h_in), sh_irreps(L), irreps_for(L, h))``.

    Each path ``(l_in, l_sh, l_out)`` owns ``h_in * h`` weights (input channels times output channels; the
    spherical harmonics have multiplicity one).

    Parameters
    ----------
    L
        Orders of the spherical harmonics and of the output features.
    h
        Output multiplicity.
    L_in
        Orders of the input features; ``None`` means ``L`` (a block after the first). The study's first block
        has ``L_in = [0]``.
    h_in
        Input multiplicity; ``None`` means ``h``.

    Returns
    -------
    int
        ``h_in * h * len(tensor_product_paths(L_in, L, L))``; with the defaults ``h**2 * P(L)``.
    """
    h_in = h if h_in is None else h_in
    for value in (h, h_in):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"a multiplicity must be a positive integer, got {value!r}")
    orders = validate_L(L)
    paths = tensor_product_paths(orders if L_in is None else L_in, orders, orders)
    return int(h_in) * int(h) * len(paths)
