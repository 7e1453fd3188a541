"""Tests of :mod:`equinb.tp.instructions`: paths, weight layout and normalisation, against e3nn's own instructions."""

from __future__ import annotations

import itertools

import pytest
from e3nn import o3

from equinb.tp.instructions import (
    IRREP_NORMALIZATIONS,
    PATH_NORMALIZATIONS,
    as_irreps,
    fully_connected_paths,
    weight_numel,
)

CASES = [
    ("3x0e+3x1o+3x2e", "1x0e+1x1o+1x2e", "3x0e+3x1o+3x2e"),
    ("2x0e+2x3o+2x4e", "1x0e+1x3o+1x4e", "2x0e+2x3o+2x4e"),
    ("2x1e+3x0o+1x1o", "2x1o+1x0e", "1x0e+2x1e+3x2o+1x0e"),  # mixed parity, repeats, mul2 > 1
    ("4x0e", "1x0e+1x1o+1x2e", "2x0e+2x1o+2x2e"),  # the model's first block
    ("2x0e+0x1o+2x2e", "1x0e+1x2e", "2x0e+0x1o+2x2e"),  # a multiplicity 0
    ("2x1o", "1x1o", "3x1e+2x3o"),  # 3o unreachable
]


@pytest.mark.parametrize("irreps", CASES)
@pytest.mark.parametrize(
    "irrep_normalization, path_normalization", list(itertools.product(IRREP_NORMALIZATIONS, PATH_NORMALIZATIONS))
)
def test_paths_are_e3nn_instructions(irreps, irrep_normalization, path_normalization):
    in1, in2, out = (o3.Irreps(x) for x in irreps)
    reference = o3.FullyConnectedTensorProduct(
        in1, in2, out, shared_weights=False,
        irrep_normalization=irrep_normalization, path_normalization=path_normalization,
    )
    paths = fully_connected_paths(in1, in2, out, irrep_normalization, path_normalization)
    assert [(p.i1, p.i2, p.io) for p in paths] == [(i.i_in1, i.i_in2, i.i_out) for i in reference.instructions]
    assert [(p.mul1, p.mul2, p.mulo) for p in paths] == [i.path_shape for i in reference.instructions]
    for path, instruction in zip(paths, reference.instructions):
        assert path.alpha == pytest.approx(instruction.path_weight, rel=1e-14)
        assert (path.l1, path.l2, path.lo) == (
            in1[path.i1].ir.l, in2[path.i2].ir.l, out[path.io].ir.l
        )
    assert weight_numel(paths) == reference.weight_numel
    offsets = [p.weight_offset for p in paths]
    sizes = [p.weight_size for p in paths]
    assert offsets == [sum(sizes[:k]) for k in range(len(sizes))]


def test_bad_normalisations_and_irreps_are_named():
    irreps = o3.Irreps("1x0e")
    with pytest.raises(ValueError, match=r"irrep_normalization must be one of .*got 'unit'"):
        fully_connected_paths(irreps, irreps, irreps, irrep_normalization="unit")
    with pytest.raises(ValueError, match=r"path_normalization must be one of .*got 'paths'"):
        fully_connected_paths(irreps, irreps, irreps, path_normalization="paths")
    with pytest.raises(ValueError, match=r"irreps_in2 must be irreps such as '16x0e\+16x1o', got '3y1o'"):
        as_irreps("3y1o", "irreps_in2")
