"""Tests for equinb.so3.paths: selection rules, path enumeration, P(L) and weight counts, against e3nn."""

import itertools

import pytest
from e3nn import o3

from equinb.so3 import irreps_for, sh_irreps
from equinb.so3.paths import (
    Path,
    parity_allowed,
    path_allowed,
    path_count,
    tensor_product_paths,
    tp_weight_count,
)

# P(L) for the study's L sets and the full L_MAX range (values given by the study's configurations)
PATH_COUNTS = {
    (0, 1, 2): 11,
    (0, 1, 2, 4): 21,
    (0, 1, 2, 6): 18,
    (0, 1, 2, 3, 4): 42,
    (0, 1, 2, 3, 4, 5, 6): 106,
    (0, 1, 2, 3, 4, 5, 6, 7, 8): 215,
    (0, 3, 4, 5, 6): 45,
    tuple(range(11)): 381,
}


@pytest.mark.parametrize(("L", "count"), PATH_COUNTS.items(), ids=str)
def test_path_counts(L, count):
    assert path_count(L) == count
    assert path_count(list(reversed(L))) == count


def test_selection_rules_match_e3nn_irrep_products():
    """path_allowed(l1, l2, l3) iff e3nn lists l3 (natural parity) among the irreps of l1 x l2."""
    for l1, l2, l3 in itertools.product(range(7), repeat=3):
        ir = [o3.Irrep(l, (-1) ** l) for l in (l1, l2, l3)]
        assert path_allowed(l1, l2, l3) == (ir[2] in list(ir[0] * ir[1])), (l1, l2, l3)


def test_parity_rule_truth_table():
    for p1, p2, p3 in itertools.product((1, -1), repeat=3):
        assert parity_allowed(p1, p2, p3) == (o3.Irrep(0, p3) in list(o3.Irrep(0, p1) * o3.Irrep(0, p2)))
    with pytest.raises(ValueError, match="0"):
        parity_allowed(1, 0, 1)


def _e3nn_paths(tp: o3.TensorProduct) -> list[tuple[int, int, int]]:
    return [(tp.irreps_in1[i.i_in1].ir.l, tp.irreps_in2[i.i_in2].ir.l, tp.irreps_out[i.i_out].ir.l)
            for i in tp.instructions]


@pytest.mark.parametrize("L", [(0, 1, 2), (0, 1, 2, 4), (0, 1, 2, 6), (0, 3, 4, 5, 6), (1, 3), (2,)], ids=str)
def test_paths_equal_e3nn_instructions(L):
    tp = o3.FullyConnectedTensorProduct(irreps_for(L, 1), sh_irreps(L), irreps_for(L, 1))
    assert tensor_product_paths(L) == _e3nn_paths(tp)


def test_paths_with_different_sets_equal_e3nn_instructions():
    L_in, L_sh, L_out = [0], [0, 1, 2, 4], [0, 1, 2, 3, 4]
    tp = o3.FullyConnectedTensorProduct(irreps_for(L_in, 1), sh_irreps(L_sh), irreps_for(L_out, 1))
    paths = tensor_product_paths(L_in, L_sh, L_out)
    assert paths == _e3nn_paths(tp) == [Path(0, 0, 0), Path(0, 1, 1), Path(0, 2, 2), Path(0, 4, 4)]


@pytest.mark.parametrize(("L", "h", "L_in", "h_in"),
                         [((0, 1, 2), 4, None, None), ((0, 3, 4, 5, 6), 3, None, None), ((0, 1, 2, 4), 5, (0,), 7),
                          ((0, 1, 2, 6), 2, (0, 1), 3)], ids=str)
def test_weight_count_equals_e3nn_weight_numel(L, h, L_in, h_in):
    irreps_in = irreps_for(L if L_in is None else L_in, h if h_in is None else h_in)
    tp = o3.FullyConnectedTensorProduct(irreps_in, sh_irreps(L), irreps_for(L, h), shared_weights=False)
    assert tp_weight_count(L, h, L_in=L_in, h_in=h_in) == tp.weight_numel


def test_weight_count_closed_form():
    assert tp_weight_count([0, 1, 2], 32) == 32 * 32 * 11
    assert tp_weight_count([0, 3, 4, 5, 6], 16, L_in=[0], h_in=64) == 64 * 16 * 5  # 0e x Y_l -> l, each l


def test_bad_inputs():
    with pytest.raises(ValueError, match="^order -2 is negative$"):
        path_allowed(1, -2, 1)
    with pytest.raises(ValueError, match="^order 2 is given more than once$"):
        tensor_product_paths([0, 2, 2])
    with pytest.raises(ValueError, match="multiplicity"):
        tp_weight_count([0, 1], 0)
