"""equinb.so3.orders: the one order validator, its exact messages, and that every module uses it."""

import re

import numpy as np
import pytest

from equinb.so3 import (
    L_MAX,
    check_order,
    check_orders,
    complex_to_real,
    evaluate_harmonics,
    irreps_for,
    path_count,
    real_spherical_harmonic,
    spherical_harmonics_exact,
    tensor_product_paths,
    validate_L,
)
from equinb.so3.plots import plot_harmonics_grid
from equinb.sph.api import parse_orders

#: (bad request, exact message) for every mistake, each with one message.
MISTAKES = [
    ([0, 1.5], "order 1.5 is not an integer"),
    ([0, "2"], "order '2' is not an integer"),
    ([0, True], "order True is not an integer"),
    ([0, None], "order None is not an integer"),
    ([0, -1], "order -1 is negative"),
    ([np.int64(-3)], "order -3 is negative"),
    ([0, L_MAX + 1], f"order {L_MAX + 1} is above the highest supported order {L_MAX}"),
    ([], "no orders given: ask for at least one, e.g. [0, 1, 2]"),
    (range(0), "no orders given: ask for at least one, e.g. [0, 1, 2]"),
    ("012", "orders must be an int or an iterable of ints, got '012'"),
    (None, "orders must be an int or an iterable of ints, got None"),
    (2.0, "orders must be an int or an iterable of ints, got 2.0"),
]


@pytest.mark.parametrize(("bad", "message"), MISTAKES, ids=str)
def test_each_mistake_has_one_exact_message(bad, message):
    for validate in (lambda L: check_orders(L, L_MAX), validate_L):
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            validate(bad)


def test_repeats_are_a_mistake_only_for_model_sets():
    assert check_orders([2, 0, 2]) == (2, 0, 2)
    for validate in (lambda L: check_orders(L, distinct=True), validate_L, path_count):
        with pytest.raises(ValueError, match=r"^order 2 is given more than once$"):
            validate([0, 2, 2])


@pytest.mark.parametrize(
    "request_", [[2, 0, 1], (2, 0, 1), range(3), np.array([2, 0, 1]), [np.int64(2), np.int32(0), 1],
                 (l for l in (2, 0, 1))], ids=lambda r: type(r).__name__)
def test_any_iterable_of_integral_orders_is_accepted(request_):
    values = list(request_) if not hasattr(request_, "__next__") else None
    orders = check_orders(request_ if values is None else values)
    assert sorted(orders) == [0, 1, 2] and all(type(l) is int for l in orders)
    if values is not None:
        assert validate_L(values) == (0, 1, 2)
        assert parse_orders(values) == list(orders)
    assert check_order(np.int64(7)) == 7 and type(check_order(np.uint8(7))) is int
    assert check_orders(np.int16(4)) == (4,)


@pytest.mark.parametrize(("bad", "message"), [(1.0, "order 1.0 is not an integer"), (-2, "order -2 is negative"),
                                              (True, "order True is not an integer")])
def test_every_module_raises_the_same_message(bad, message):
    """Each entry point of equinb.so3 and equinb.sph that takes an order goes through the one validator."""
    exact = f"^{re.escape(message)}$"
    calls = [
        lambda: check_order(bad),
        lambda: real_spherical_harmonic(bad, 0),
        lambda: spherical_harmonics_exact(bad),
        lambda: evaluate_harmonics(bad, np.zeros((1, 3))),
        lambda: complex_to_real(bad),
        lambda: plot_harmonics_grid(bad),
        lambda: tensor_product_paths([0, bad]),
        lambda: irreps_for([bad], 2),
        lambda: parse_orders([0, bad]),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=exact):
            call()


def test_numpy_orders_reach_the_exact_harmonics():
    assert real_spherical_harmonic(np.int64(2), 0) == real_spherical_harmonic(2, 0)
    assert len(spherical_harmonics_exact(np.int32(3))) == 7


def test_no_upper_bound_unless_asked():
    assert check_order(40) == 40
    assert check_orders(range(30)) == tuple(range(30))
    with pytest.raises(ValueError, match=r"^order 5 is above the highest supported order 4$"):
        check_order(5, 4)
