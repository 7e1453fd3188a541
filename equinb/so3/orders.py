"""The one validator of spherical-harmonic orders, used by every module of the package.

An *order* is a non-negative integer ``l``: a built-in ``int`` or any other integral type (``numpy.int64``,
...), never a ``bool``. A *request* of orders is an int or any iterable of them (a list, tuple, ``range``, numpy
array, generator), as e3nn accepts. Each mistake has exactly one message, built here:

======================  ==============================================================================
mistake                 message
======================  ==============================================================================
not an integer          ``order 1.5 is not an integer``
negative                ``order -1 is negative``
above a maximum         ``order 13 is above the highest supported order 12``
repeated (model sets)   ``order 2 is given more than once``
empty request           ``no orders given: ask for at least one, e.g. [0, 1, 2]``
not a collection        ``orders must be an int or an iterable of ints, got '012'``
======================  ==============================================================================

:func:`check_order` checks one order, :func:`check_orders` a request (keeping its order, repeats allowed unless
``distinct``), :func:`validate_L` a model's set (sorted, unique, at most :data:`L_MAX`).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

#: Highest order the generated kernels and the model support (as e3nn's own implementation).
L_MAX = 12


def check_order(l, l_max: int | None = None) -> int:
    """Validate one order and return it as a built-in ``int``.

    Parameters
    ----------
    l
        The order: any integral type except ``bool``.
    l_max
        Highest allowed order; ``None`` for no bound.

    Raises
    ------
    ValueError
        If ``l`` is not an integer, is negative or exceeds ``l_max`` (messages in the module docstring).
    """
    if isinstance(l, bool) or not isinstance(l, numbers.Integral):
        raise ValueError(f"order {l!r} is not an integer")
    if l < 0:
        raise ValueError(f"order {int(l)} is negative")
    if l_max is not None and l > l_max:
        raise ValueError(f"order {int(l)} is above the highest supported order {l_max}")
    return int(l)


def check_orders(L: Iterable[int] | int, l_max: int | None = None, distinct: bool = False) -> tuple[int, ...]:
    """Validate a request of orders and return it as a tuple of ``int`` in the order given.

    Parameters
    ----------
    L
        An order, or any iterable of orders (``[2, 0, 2]``, ``range(3)``, a numpy array, ...).
    l_max
        Highest allowed order; ``None`` for no bound.
    distinct
        Reject repeated orders.

    Raises
    ------
    ValueError
        For an empty request, something that is neither an order nor an iterable of orders (strings included),
        or any order :func:`check_order` rejects; with ``distinct``, for a repeated order.
    """
    if isinstance(L, numbers.Integral) and not isinstance(L, bool):
        L = (L,)
    if isinstance(L, (str, bytes)) or not isinstance(L, Iterable):
        raise ValueError(f"orders must be an int or an iterable of ints, got {L!r}")
    orders = tuple(check_order(l, l_max) for l in L)
    if not orders:
        raise ValueError("no orders given: ask for at least one, e.g. [0, 1, 2]")
    if distinct:
        seen: set[int] = set()
        for l in orders:
            if l in seen:
                raise ValueError(f"order {l} is given more than once")
            seen.add(l)
    return orders


def validate_L(L: Iterable[int] | int, l_max: int = L_MAX) -> tuple[int, ...]:
    """A model's set of orders: distinct, at most ``l_max``, returned ascending.

    Parameters
    ----------
    L
        Orders, e.g. ``[0, 1, 2]``, ``(0, 3, 4, 5, 6)`` or ``range(5)``, in any order; a single int ``l`` means
        the one order ``[l]`` (as in e3nn).
    l_max
        Largest allowed order.

    Returns
    -------
    tuple of int
        The orders, ascending.

    Raises
    ------
    ValueError
        As :func:`check_orders` with ``distinct=True``.
    """
    return tuple(sorted(check_orders(L, l_max, distinct=True)))
