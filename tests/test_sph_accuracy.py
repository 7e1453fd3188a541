"""equinb.sph.accuracy: format and sanity of the accuracy study on a tiny input."""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import math

import matplotlib
import mpmath
import torch

matplotlib.use("Agg")

from equinb.sph.accuracy import KINDS, accuracy_study, available_backends, ground_truth, sample_vectors
from equinb.sph.plots import plot_accuracy


def test_sample_families():
    for kind in KINDS:
        v = sample_vectors(kind, 16, seed=1)
        assert v.shape == (16, 3) and v.dtype == torch.float64
    lengths = sample_vectors("short", 16).norm(dim=1)
    assert (lengths < 2e-3).all()
    pole = sample_vectors("near_pole", 16)
    assert (pole[:, 1].abs() > 0.9999).all()


def test_ground_truth_of_l1():
    v = torch.tensor([[3.0, 4.0, 12.0]], dtype=torch.float64)
    g = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    values, gradients = ground_truth(1, v, g)
    with mpmath.workdps(50):
        assert abs(values[0][0] - mpmath.sqrt(3) * 3 / 13) < mpmath.mpf(10) ** -45
    # d/dv sqrt(3) x/|v| = sqrt(3) (e_x - n n_x) / |v|
    expected = [math.sqrt(3) * (1 - 9 / 169) / 13, -math.sqrt(3) * 12 / 169 / 13, -math.sqrt(3) * 36 / 169 / 13]
    assert all(abs(float(a) - b) < 1e-15 for a, b in zip(gradients[0], expected))


def test_study_format_and_float64_accuracy():
    backends = [b for b in available_backends() if b in ("torch", "triton", "e3nn")]
    table = accuracy_study(orders=[0, 4], dtypes=["float64", "float32"], backends=backends, n_points=6)
    assert list(table.columns) == [
        "backend", "dtype", "kind", "l", "quantity", "max_abs", "median_abs", "max_rel", "median_rel"
    ]
    assert len(table) == len(backends) * 2 * len(KINDS) * 2 * 2
    assert set(table.quantity) == {"value", "gradient"}
    assert (table.max_abs >= table.median_abs).all() and (table.max_rel >= table.median_rel).all()
    fp64 = table[table.dtype == "float64"]
    assert (fp64.max_rel < 1e-12).all()
    fp32 = table[table.dtype == "float32"]
    assert (fp32.max_rel < 1e-5).all()
    figure = plot_accuracy(table, quantity="gradient", title="smoke")
    assert len(figure.axes) == 2
