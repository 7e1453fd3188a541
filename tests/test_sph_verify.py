"""equinb.sph.verify: its error metric holds every row to the same relative standard."""

from __future__ import annotations

import math

import pytest
import torch
from e3nn import o3

from equinb.sph import verify


def _spread_vectors(n: int = 64) -> torch.Tensor:
    """Random signed vectors with lengths over 1e-2..1e2: unnormalised harmonics span many decades per row."""
    generator = torch.Generator().manual_seed(20)
    v = torch.randn(n, 3, generator=generator, dtype=torch.float64)
    return v * torch.exp(4.6 * (2 * torch.rand(n, 1, generator=generator, dtype=torch.float64) - 1))


def test_a_kernel_returning_zeros_for_small_rows_fails(monkeypatch):
    """Dividing by the batch maximum would pass this broken kernel (error ~1e-20 of the largest row)."""
    v = _spread_vectors()
    short = v.norm(dim=-1) < 1.0
    assert 10 < short.sum() < len(v) - 10

    def broken(L, vectors, normalize, normalization, backend):
        out = o3.spherical_harmonics(L, vectors.double(), normalize, normalization)
        return torch.where(short[:, None], 0.0, out)

    monkeypatch.setattr(verify, "spherical_harmonics", broken)
    error = verify.compare_values([0, 6], v, "torch", normalize=False, normalization="component")
    assert error["max_rel"] == 1.0  # a zeroed row is wrong by all of itself
    reference = o3.spherical_harmonics([0, 6], v, False, "component")
    assert error["max_abs"] / reference.abs().max() < 1e-6  # what the batch-maximum metric would have reported


def test_per_row_errors_and_zero_rows():
    reference = torch.tensor([[1e-30, -2e-30], [3.0, 4.0], [0.0, 0.0]], dtype=torch.float64)
    ours = reference + torch.tensor([[1e-31, 0.0], [0.0, 4e-16], [0.0, 0.0]], dtype=torch.float64)
    error = verify._errors(ours, reference)
    assert error["max_rel"] == pytest.approx(0.05) and error["max_abs"] == pytest.approx(4e-16)
    ours[2, 1] = 1e-300  # a row whose reference is exactly zero must be exactly zero
    assert verify._errors(ours, reference)["max_rel"] == math.inf
    assert verify._errors(reference[:0], reference[:0]) == {"max_abs": 0.0, "max_rel": 0.0}
    with pytest.raises(ValueError, match=r"^shapes differ: \(3, 1\) against the reference's \(3, 2\)$"):
        verify._errors(reference[:, :1], reference)


def test_batched_shapes_are_rows_of_the_last_axis():
    reference = torch.ones(2, 3, 4, dtype=torch.float64)
    ours = reference.clone()
    ours[1, 2, 0] = 1.5
    assert verify._errors(ours, reference)["max_rel"] == 0.5
