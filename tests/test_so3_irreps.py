"""Tests for equinb.so3.irreps: validation of L sets, irreps strings, feature slices."""

import pytest
from e3nn import o3

from equinb.so3 import L_MAX, feature_slices, irreps_for, parity, sh_irreps, validate_L


def test_validate_sorts_and_accepts_an_int():
    assert validate_L([4, 0, 2, 1]) == (0, 1, 2, 4)
    assert validate_L(3) == (3,)
    assert validate_L(range(L_MAX + 1)) == tuple(range(L_MAX + 1))
    assert validate_L([12], l_max=12) == (12,)


def test_parity_alternates():
    assert [parity(l) for l in range(6)] == [1, -1, 1, -1, 1, -1]


@pytest.mark.parametrize(
    ("L", "h", "expected"),
    [
        ([0, 1, 2], 32, "32x0e+32x1o+32x2e"),
        ([0, 1, 2, 4], 32, "32x0e+32x1o+32x2e+32x4e"),
        ([6, 0, 4, 5, 3], 16, "16x0e+16x3o+16x4e+16x5o+16x6e"),
        (7, 2, "2x7o"),
    ],
)
def test_irreps_strings(L, h, expected):
    assert irreps_for(L, h) == o3.Irreps(expected)
    assert str(irreps_for(L, h)) == expected


def test_sh_irreps_match_e3nn_spherical_harmonics_irreps():
    for L in ([0, 1, 2], [0, 3, 4, 5, 6], list(range(L_MAX + 1))):
        assert sh_irreps(L) == o3.Irreps.spherical_harmonics(max(L)).filter(keep=[f"{l}{'eo'[l % 2]}" for l in L])


@pytest.mark.parametrize("h", [0, -3, 1.5, True, "4"])
def test_bad_multiplicity(h):
    with pytest.raises(ValueError, match="multiplicity"):
        irreps_for([0, 1], h)


@pytest.mark.parametrize(("L", "h"), [([0, 1, 2], 32), ([0, 3, 4, 5, 6], 16), ([0, 1, 2, 6], 3), ([5], 1)])
def test_feature_slices_sizes_and_gaps(L, h):
    slices = feature_slices(irreps_for(L, h))
    assert list(slices) == sorted(L)
    start = 0
    for l in sorted(L):  # contiguous, ascending, h * (2l + 1) each: d = sum_l h (2l + 1) as in the paper
        assert (slices[l].start, slices[l].stop) == (start, start + h * (2 * l + 1))
        start = slices[l].stop
    assert start == irreps_for(L, h).dim == sum(h * (2 * l + 1) for l in L)


def test_feature_slices_rejects_repeated_order():
    with pytest.raises(ValueError, match="order 1"):
        feature_slices(o3.Irreps("2x1o+3x0e+1x1o"))
