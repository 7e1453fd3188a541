"""Tests of the composition baseline: exact recovery on synthetic data, counts against qm9pack's own
stoichiometry column, and the real fit on the default split of the full data set."""

from __future__ import annotations

import csv
import importlib.util
import json
import os

import numpy as np
import pytest

from equinb import baseline, data


def synthetic_arrays(counts: np.ndarray, energy: np.ndarray, numbers=(1, 6, 7, 8, 9)) -> data.QM9Arrays:
    """Molecules with the given per-element counts (columns in the order of ``numbers``) and labels."""
    z = np.concatenate([np.repeat(np.array(numbers, dtype=np.uint8), row) for row in counts])
    sizes = counts.sum(axis=1)
    n = len(counts)
    return data.QM9Arrays(
        z=z,
        pos=np.zeros((len(z), 3)),
        atom_offsets=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        bonds=np.zeros((0, 2), dtype=np.uint8),
        bond_offsets=np.zeros(n + 1, dtype=np.int64),
        qm9_index=np.arange(1, n + 1),
        smiles=np.array(["?"] * n),
        u0_hartree=np.zeros(n),
        energy=np.asarray(energy, dtype=float),
        connectivity_failed=np.zeros(n, dtype=bool),
    )


def test_recovers_known_linear_coefficients():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 9, size=(300, 5))
    counts[:, 1] += 1  # at least one carbon: no empty molecule
    truth = np.array([-2.5, -6.0, -4.5, -4.25, -4.0])
    energy = 1.75 + counts @ truth
    arrays = synthetic_arrays(counts, energy)
    np.testing.assert_array_equal(baseline.composition_features(arrays, np.arange(300)), counts)
    split = data.split_indices(np.arange(300), seed=3)
    fit = baseline.fit_composition_baseline(arrays, split)
    assert fit.intercept == pytest.approx(1.75, abs=1e-9)
    assert [fit.coefficients[e] for e in "HCNOF"] == pytest.approx(truth, abs=1e-9)
    assert list(fit.metrics) == ["train", "val", "test"]
    for name, m in fit.metrics.items():
        assert m["mae"] < 1e-9 and m["rmse"] < 1e-9 and m["n"] == len(split[name])


def test_fit_uses_the_training_split_only():
    rng = np.random.default_rng(1)
    counts = rng.integers(1, 6, size=(60, 5))
    energy = counts @ np.array([-1.0, -2.0, -3.0, -4.0, -5.0])
    energy[40:] += 100.0  # val/test labels that a leak would pull the fit towards
    split = {"train": np.arange(40), "val": np.arange(40, 50), "test": np.arange(50, 60)}
    fit = baseline.fit_composition_baseline(synthetic_arrays(counts, energy), split)
    assert fit.metrics["train"]["mae"] < 1e-9
    assert fit.metrics["test"]["mae"] == pytest.approx(100.0)
    assert fit.metrics["test"]["rmse"] == pytest.approx(100.0)


def test_errors():
    arrays = synthetic_arrays(np.array([[1, 1, 0]]), [0.0], numbers=(1, 3, 6))  # lithium
    with pytest.raises(ValueError, match=r"\[3\]"):
        baseline.composition_features(arrays, [0])
    good = synthetic_arrays(np.array([[4, 1, 0, 0, 0]]), [0.0])
    with pytest.raises(ValueError, match="train"):
        baseline.fit_composition_baseline(good, {"test": np.array([0])})


def test_counts_match_qm9pack_stoichiometry(arrays):
    # qm9pack's "Stoichiometry" column holds the counts of H, C, N, O, F of each molecule
    root = os.path.join(importlib.util.find_spec("qm9pack").submodule_search_locations[0], "data")
    with open(os.path.join(root, "qm9_part1.csv"), newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [next(reader) for _ in range(200)]
    indices = [arrays.row_of(int(r["Index"])) for r in rows]
    expected = np.array([json.loads(r["Stoichiometry"]) for r in rows])
    np.testing.assert_array_equal(baseline.composition_features(arrays, indices), expected)


@pytest.fixture(scope="module")
def arrays() -> data.QM9Arrays:
    return data.load_qm9()


def test_real_baseline_on_the_default_split(arrays):
    split = data.split_indices(data.subset_indices(len(arrays)), seed=data.DEFAULT_SEED)
    fit = baseline.fit_composition_baseline(arrays, split)
    std = arrays.energy[split["test"]].std()
    test = fit.metrics["test"]
    assert np.isfinite(test["mae"]) and np.isfinite(test["rmse"])
    assert test["mae"] < 0.1 * std and test["rmse"] < 0.15 * std  # 0.87 / 1.10 eV against 10.3 eV
    assert test["mae"] == pytest.approx(0.8687, abs=1e-3)  # measured, pins the data + split + fit
    # per-atom contributions are bound (negative) and carbon binds most
    assert all(c < 0 for c in fit.coefficients.values())
    assert min(fit.coefficients, key=fit.coefficients.get) == "C"


def test_real_baseline_on_a_cpu_subset(arrays):
    split = data.split_indices(data.subset_indices(len(arrays), 2000, seed=0), seed=0)
    test = baseline.fit_composition_baseline(arrays, split).metrics["test"]
    assert np.isfinite(test["mae"]) and test["mae"] < 0.15 * arrays.energy.std()
