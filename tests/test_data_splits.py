"""Tests of equinb.data.splits: seeded subsets and splits, their sizes and files, and the normaliser fitted on
the training split only. No QM9 needed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from equinb import data


def test_subset_is_deterministic_sorted_and_sized():
    a = data.subset_indices(1000, 100, seed=5)
    assert len(a) == 100 and len(np.unique(a)) == 100 and np.all(np.diff(a) > 0)
    assert a.min() >= 0 and a.max() < 1000
    np.testing.assert_array_equal(a, data.subset_indices(1000, 100, seed=5))
    assert not np.array_equal(a, data.subset_indices(1000, 100, seed=6))
    np.testing.assert_array_equal(data.subset_indices(7, None), np.arange(7))


@pytest.mark.parametrize("n", [0, -1, 1001, 2.5])
def test_subset_rejects_bad_sizes(n):
    with pytest.raises(ValueError, match=str(n)):
        data.subset_indices(1000, n)


def test_split_sizes_disjoint_and_deterministic():
    indices = data.subset_indices(5000, 1000, seed=3)
    split = data.split_indices(indices, seed=21616)
    assert {k: len(v) for k, v in split.items()} == {"train": 800, "val": 100, "test": 100}
    union = np.concatenate(list(split.values()))
    assert len(np.unique(union)) == 1000
    np.testing.assert_array_equal(np.sort(union), indices)
    again = data.split_indices(indices, seed=21616)
    other = data.split_indices(indices, seed=1)
    for name in data.SPLIT_NAMES:
        np.testing.assert_array_equal(split[name], again[name])
    assert not np.array_equal(split["test"], other["test"])


def test_split_sizes_of_the_full_data_sum_up():
    assert data.split_sizes(130_831) == (104_665, 13_083, 13_083)
    assert data.split_sizes(10, (0.5, 0.25, 0.25)) == (5, 3, 2)


@pytest.mark.parametrize(
    ("fractions", "message"),
    [
        ((0.9, 0.2, -0.1), "-0.1"),
        ((0.8, 0.1, 0.05), "0.05"),
        ((0.8, 0.2), "0.8, 0.2"),
        ((1.0, 0.0, 0.0), "empty"),
    ],
)
def test_split_rejects_bad_fractions(fractions, message):
    with pytest.raises(ValueError, match=message):
        data.split_indices(np.arange(100), fractions)


def test_split_rejects_an_empty_split_and_repeats():
    with pytest.raises(ValueError, match="test"):
        data.split_indices(np.arange(5))  # 4 / 1 / 0
    with pytest.raises(ValueError, match="repeated"):
        data.split_indices(np.array([1, 2, 2, 3, 4, 5, 6, 7, 8, 9]))


def test_split_save_load_roundtrip(tmp_path):
    split = data.split_indices(np.arange(50), seed=4)
    path = tmp_path / "run" / "split.npz"
    data.save_split(path, split)
    assert sorted(p.name for p in path.parent.iterdir()) == ["split.npz"]  # no temporary file left
    loaded = data.load_split(path)
    for name in data.SPLIT_NAMES:
        np.testing.assert_array_equal(loaded[name], split[name])
        assert loaded[name].dtype == np.int64
    with pytest.raises(ValueError, match="overlap"):
        data.save_split(path, {"train": np.arange(5), "val": np.arange(4, 6), "test": np.arange(6, 8)})
    np.savez(tmp_path / "bad.npz", train=np.arange(3), val=np.arange(3, 5))
    with pytest.raises(ValueError, match="test"):
        data.load_split(tmp_path / "bad.npz")


def test_normalizer_uses_the_training_split_only():
    energy = np.concatenate([np.linspace(-80.0, -70.0, 80), np.full(20, -400.0)])
    split = {"train": np.arange(80), "val": np.arange(80, 90), "test": np.arange(90, 100)}
    norm = data.fit_normalizer(energy, split)
    assert norm.mean == pytest.approx(-75.0)
    assert norm.std == pytest.approx(np.std(np.linspace(-80.0, -70.0, 80), ddof=1))
    assert norm.mean != pytest.approx(energy.mean())
    z = norm.normalize(energy[:80])
    assert z.mean() == pytest.approx(0.0, abs=1e-12) and z.std(ddof=1) == pytest.approx(1.0)
    t = torch.tensor([-76.0, -10.0], dtype=torch.float64)
    torch.testing.assert_close(norm.denormalize(norm.normalize(t)), t)
    assert data.Normalizer.from_dict(norm.to_dict()) == norm
    with pytest.raises(ValueError, match="2 values"):
        data.Normalizer.fit([1.0])
    with pytest.raises(ValueError, match="spread"):
        data.Normalizer.fit([1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="train"):
        data.fit_normalizer(energy, {"val": np.arange(3)})
