"""Tests for equinb.so3.evaluate: float64 evaluation of the exact harmonics."""

import numpy as np
import pytest
import torch
from e3nn import o3

from equinb.so3.evaluate import evaluate_harmonics


pytestmark = pytest.mark.usefixtures("float64_default")


@pytest.mark.parametrize("l", [0, 1, 3, 5])
def test_matches_e3nn_with_batch_dimensions(l):
    rng = np.random.default_rng(l)
    v = rng.normal(size=(2, 5, 3)) * 1.7
    ref = o3.spherical_harmonics(l, torch.from_numpy(v), normalize=False, normalization="component").numpy()
    ours = evaluate_harmonics(l, v)
    assert ours.shape == (2, 5, 2 * l + 1) and ours.dtype == np.float64
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def test_rotation_acts_through_wigner_D():
    """Y(R v) = D(R) Y(v) with e3nn's Wigner-D matrices."""
    rng = np.random.default_rng(7)
    v = rng.normal(size=(10, 3))
    R = o3.angles_to_matrix(*torch.tensor([0.3, 1.9, -2.4], dtype=torch.float64))
    D = o3.Irrep(4, 1).D_from_matrix(R).numpy()
    np.testing.assert_allclose(evaluate_harmonics(4, v @ R.numpy().T), evaluate_harmonics(4, v) @ D.T, atol=1e-12)


def test_rejects_bad_shape_and_order():
    with pytest.raises(ValueError, match="shape"):
        evaluate_harmonics(1, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="-1"):
        evaluate_harmonics(-1, np.zeros((4, 3)))
