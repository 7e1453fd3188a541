"""equinb.sph.accuracy: format and sanity of the accuracy study on a tiny input."""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import math

import matplotlib
import mpmath
import pandas as pd
import pytest
import torch

matplotlib.use("Agg")

from equinb.sph.accuracy import (
    KINDS,
    accuracy_study,
    available_backends,
    error_ratios,
    ground_truth,
    orders_beyond,
    sample_vectors,
)
from equinb.sph.plots import plot_accuracy, plot_error_ratios


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


def test_error_ratios_and_the_orders_where_one_implementation_loses():
    rows = []
    for backend, factor in (("torch", {0: 0.0, 1: 1.0, 2: 3.0, 3: 0.25}), ("e3nn", {0: 0.0, 1: 1.0, 2: 1.0, 3: 1.0})):
        for kind, worst in (("sphere", 1.0), ("near_pole", 0.5)):  # the worst family is the one kept
            for l, f in factor.items():
                for quantity in ("value", "gradient"):
                    rows.append({"backend": backend, "dtype": "float32", "kind": kind, "l": l, "quantity": quantity,
                                 "max_abs": 0.0, "median_abs": 0.0, "max_rel": f * worst * 1e-6,
                                 "median_rel": f * worst * 1e-7})
    table = pd.concat([pd.DataFrame(rows), pd.DataFrame(rows).assign(backend="sphericart")])
    ratios = error_ratios(table, dtypes=("float32",))
    assert ratios.loc[("value", "float32", 2), "ratio_max"] == pytest.approx(3.0)
    assert ratios.loc[("value", "float32", 2), "torch_max_rel"] == pytest.approx(3e-6)
    assert math.isnan(ratios.loc[("value", "float32", 0), "ratio_median"])  # 0 / 0: no verdict
    beyond = orders_beyond(ratios)
    assert beyond[("value", "float32", "worse")] == [2] and beyond[("gradient", "float32", "better")] == [3]
    assert len(plot_error_ratios(ratios).axes) == 2
