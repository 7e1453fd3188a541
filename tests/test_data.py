"""Tests of equinb.data against references computed here independently (CSV rows read with the csv module,
constants retyped, brute-force distances). The full-data tests use the shared cache at the default location
(built once, about a minute, if missing); tests that build or rebuild a cache use a temporary directory and a
small ``limit``.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import os
import pathlib
import shutil

import numpy as np
import pytest
import torch

from equinb import data

HARTREE_EV = 27.211386246  # retyped, not imported: an independent reference
REF_HARTREE = {"H": -0.500273, "C": -37.846772, "N": -54.583861, "O": -75.064579, "F": -99.718730}
Z = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}


def csv_row(which: str) -> dict[str, str]:
    """The first row of qm9_part1.csv or the last row of qm9_part3.csv, read with the csv module."""
    root = os.path.join(importlib.util.find_spec("qm9pack").submodule_search_locations[0], "data")
    if which == "first":
        with open(os.path.join(root, "qm9_part1.csv"), newline="") as handle:
            reader = csv.reader(handle)
            header, row = next(reader), next(reader)
    else:
        path = os.path.join(root, "qm9_part3.csv")
        with open(path, newline="") as handle:
            header = next(csv.reader(handle))
        with open(path, "rb") as handle:
            handle.seek(-20000, os.SEEK_END)
            tail = handle.read().decode().strip().splitlines()[-1]
        row = next(csv.reader(io.StringIO(tail)))
    return dict(zip(header, row))


def reference_energy(symbols: list[str], u0: float) -> float:
    return (u0 - sum(REF_HARTREE[s] for s in symbols)) * HARTREE_EV


@pytest.fixture(scope="module")
def arrays() -> data.QM9Arrays:
    return data.load_qm9()


@pytest.fixture()
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EQUINB_CACHE", str(tmp_path))
    return tmp_path


# ---------------------------------------------------------------------------------------------- full data set


def test_full_dataset_statistics(arrays):
    assert len(arrays) == 130_831
    assert arrays.limit is None
    assert arrays.energy.mean() == pytest.approx(-76.1160, abs=5e-5)
    assert arrays.energy.std(ddof=1) == pytest.approx(10.32375, abs=5e-6)
    assert len(np.unique(arrays.qm9_index)) == len(arrays)
    assert arrays.n_atoms.max() == 29 and arrays.n_atoms.min() == 3


def test_connectivity_failures_are_counted_and_bondless(arrays):
    failed = arrays.connectivity_failed
    # none with qm9pack 1.0.3 and RDKit 2026.9 (a change here means a new failure to look at)
    assert int(failed.sum()) == 0
    assert np.all(np.diff(arrays.bond_offsets)[failed] == 0)
    # every other molecule has at least a spanning tree of bonds
    assert np.all(np.diff(arrays.bond_offsets)[~failed] >= arrays.n_atoms[~failed] - 1)


@pytest.mark.parametrize("which", ["first", "last"])
def test_molecule_matches_csv_row(arrays, which):
    row = csv_row(which)
    symbols = json.loads(row["Elements"].replace("'", '"'))
    numbers = row["XYZ_Ang"].replace("[", " ").replace("]", " ").split(",")
    coords = np.array([float(x) for x in numbers]).reshape(-1, 3)
    mol = arrays.molecule(arrays.row_of(int(row["Index"])))
    assert mol.qm9_index == int(row["Index"])
    assert mol.smiles == row["SMILES"]
    assert mol.z.tolist() == [Z[s] for s in symbols]
    np.testing.assert_array_equal(mol.pos, coords)
    assert mol.u0_hartree == float(row["InternalEnergy_0K_au"])
    assert mol.energy == pytest.approx(reference_energy(symbols, float(row["InternalEnergy_0K_au"])), abs=1e-9)


def test_methane_by_hand(arrays):
    row = csv_row("first")
    assert row["Index"] == "1" and row["SMILES"] == "C"
    expected = (float(row["InternalEnergy_0K_au"]) - (-37.846772 + 4 * -0.500273)) * HARTREE_EV
    assert expected == pytest.approx(-17.1722, abs=1e-4)  # U0 = -40.47893 Ha
    mol = arrays.molecule(arrays.row_of(1))
    assert mol.row == 0 and len(mol.z) == 5
    assert mol.bonds.tolist() == [[0, 1], [0, 2], [0, 3], [0, 4]]  # carbon is atom 0, four C-H bonds
    g = data.build_graph(arrays, mol.row)
    assert g.z.dtype == torch.long and g.z.tolist() == [6, 1, 1, 1, 1]
    assert g.pos.dtype == torch.float32 and g.pos.shape == (5, 3)
    assert g.edge_index.dtype == torch.long and g.edge_index.shape == (2, 8)
    pairs = set(map(tuple, g.edge_index.T.tolist()))
    assert pairs == {(0, k) for k in range(1, 5)} | {(k, 0) for k in range(1, 5)}
    assert g.y.dtype == torch.float32 and g.y.shape == (1,)
    assert g.y.item() == pytest.approx(expected, abs=1e-5)  # raw eV, not normalised
    assert g.idx.tolist() == [1] and g.row.tolist() == [0] and g.smiles == "C"


def test_atomization_energy_matches_loop(arrays):
    symbol = {v: k for k, v in Z.items()}
    for i in (0, 17, 5000, 90000, len(arrays) - 1):
        mol = arrays.molecule(i)
        expected = reference_energy([symbol[int(z)] for z in mol.z], mol.u0_hartree)
        assert arrays.energy[i] == pytest.approx(expected, abs=1e-9)


def test_bond_graphs_are_symmetric_without_self_loops(arrays):
    for i in subset(arrays, 50, seed=1):
        g = data.build_graph(arrays, i, graph="bonds")
        pairs = g.edge_index.T.tolist()
        assert len(pairs) == 2 * len(arrays.molecule(i).bonds)
        assert len(set(map(tuple, pairs))) == len(pairs)
        assert all(a != b for a, b in pairs)
        assert {(b, a) for a, b in pairs} == set(map(tuple, pairs))


def subset(arrays, n, seed):
    return data.subset_indices(len(arrays), n, seed=seed).tolist()


@pytest.mark.parametrize("cutoff", [1.2, 2.0, 3.5, 6.0])
def test_radius_graph_equals_brute_force(arrays, cutoff):
    for i in subset(arrays, 15, seed=2) + [0]:
        pos = arrays.molecule(i).pos
        expected = {
            (a, b)
            for a in range(len(pos))
            for b in range(len(pos))
            if a != b and math.dist(pos[a].tolist(), pos[b].tolist()) < cutoff
        }
        g = data.build_graph(arrays, i, graph="radius", cutoff=cutoff)
        got = list(map(tuple, g.edge_index.T.tolist()))
        assert len(got) == len(set(got))
        assert set(got) == expected


# ---------------------------------------------------------------------------------------------- subsets, splits


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


# ---------------------------------------------------------------------------------------------- graphs, loaders


def test_loader_batches_and_is_seeded(arrays):
    dataset = data.make_dataset(arrays, np.arange(20))
    batch = next(iter(data.make_loader(dataset, batch_size=4)))
    assert batch.num_graphs == 4 and batch.y.shape == (4,) and batch.idx.tolist() == [1, 2, 3, 4]
    assert batch.smiles == ["C", "N", "O", "C#C"]

    def order(seed):
        return [i for b in data.make_loader(dataset, batch_size=6, shuffle=True, seed=seed) for i in b.idx.tolist()]

    assert order(7) == order(7)
    assert order(7) != order(8)
    assert sorted(order(7)) == list(range(1, 21))


def test_graph_and_loader_errors(arrays):
    with pytest.raises(ValueError, match="'knn'"):
        data.make_dataset(arrays, [0], graph="knn")
    with pytest.raises(ValueError, match="-1.0"):
        data.build_graph(arrays, 0, graph="radius", cutoff=-1.0)
    with pytest.raises(ValueError, match="0"):
        data.make_loader([], batch_size=0)
    with pytest.raises(IndexError):
        arrays.molecule(len(arrays))
    with pytest.raises(KeyError):
        arrays.row_of(0)
    gap = int(np.flatnonzero(np.diff(arrays.qm9_index) > 1)[0])  # an excluded ("uncharacterized") index
    with pytest.raises(KeyError):
        arrays.row_of(int(arrays.qm9_index[gap]) + 1)


# ---------------------------------------------------------------------------------------------- the cache


def test_limited_cache_is_built_once_and_agrees_with_the_full_cache(arrays, tmp_cache, capsys):
    small = data.load_qm9(limit=30, progress=False)
    assert "building" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_cache.iterdir()) == ["qm9_limit30.npz", "qm9_limit30.npz.lock"]
    again = data.load_qm9(limit=30)
    assert capsys.readouterr().err == ""
    assert len(small) == len(again) == 30 and small.limit == 30
    a30 = arrays.atom_offsets[30]
    b30 = arrays.bond_offsets[30]
    np.testing.assert_array_equal(again.z, arrays.z[:a30])
    np.testing.assert_array_equal(again.pos, arrays.pos[:a30])
    np.testing.assert_array_equal(again.bonds, arrays.bonds[:b30])
    np.testing.assert_array_equal(again.energy, arrays.energy[:30])
    np.testing.assert_array_equal(again.smiles, arrays.smiles[:30])


def rewrite(path, **changes):
    with np.load(path) as archive:
        raw = {k: archive[k] for k in archive.files}
    raw.update(changes)
    with open(path, "wb") as handle:
        np.savez(handle, **raw)


@pytest.mark.parametrize(
    ("corrupt", "reason"),
    [
        (lambda p: p.write_bytes(b"this is not a zip file"), "unreadable"),
        (lambda p: p.write_bytes(p.read_bytes()[:1000]), "unreadable"),
        (lambda p: rewrite(p, format_version=np.array(0)), "format version 0"),
        (lambda p: rewrite(p, pos=np.zeros((3, 3))), "'pos' has shape"),
        (lambda p: rewrite(p, atom_offsets=np.arange(21, dtype=np.int64)), "offset"),
        (lambda p: rewrite(p, n_molecules=np.array(19)), "19 molecules"),
    ],
    ids=["garbage", "truncated", "old-version", "bad-shape", "bad-offsets", "bad-count"],
)
def test_corrupt_cache_is_rebuilt_with_a_message(tmp_cache, capsys, corrupt, reason):
    data.load_qm9(limit=20, progress=False)
    path = data.cache_path(limit=20)
    assert path.parent == tmp_cache
    corrupt(path)
    capsys.readouterr()
    rebuilt = data.load_qm9(limit=20, progress=False)
    err = capsys.readouterr().err
    assert "rebuilding" in err and reason in err
    assert len(rebuilt) == 20
    assert len(data.read_cache(path, limit=20)) == 20  # the file on disk is whole again


def test_limited_cache_is_never_taken_for_the_full_one(tmp_cache, capsys):
    data.load_qm9(limit=12, progress=False)
    limited = data.cache_path(limit=12)
    assert data.cache_path() != limited
    shutil.copy(limited, data.cache_path())
    with pytest.raises(data.CacheError, match="first 12 molecules"):
        data.read_cache(data.cache_path())
    shutil.copy(limited, data.cache_path(limit=10))
    capsys.readouterr()
    assert len(data.load_qm9(limit=10, progress=False)) == 10
    assert "rebuilding" in capsys.readouterr().err


def test_connectivity_failure_keeps_the_molecule_without_bonds(tmp_cache, monkeypatch, capsys):
    real = data.perceive_bonds
    calls = []

    def flaky(symbols, coords):
        calls.append(1)
        return None if len(calls) == 2 else real(symbols, coords)

    monkeypatch.setattr(data, "perceive_bonds", flaky)
    small = data.load_qm9(limit=5, progress=False)
    assert "could not perceive the bonds of 1 molecule" in capsys.readouterr().err
    assert small.connectivity_failed.tolist() == [False, True, False, False, False]
    assert data.build_graph(small, 1).edge_index.shape == (2, 0)  # ammonia: kept, no bond edges
    assert data.build_graph(small, 1, graph="radius").edge_index.shape == (2, 12)
    assert data.build_graph(small, 0).edge_index.shape == (2, 8)
    assert data.read_cache(data.cache_path(limit=5), limit=5).connectivity_failed[1]


def test_perceive_bonds_reports_failure_as_none():
    assert data.perceive_bonds(["Xx", "H"], np.zeros((2, 3))) is None
    water = data.perceive_bonds(["O", "H", "H"], np.array([[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]))
    assert water.tolist() == [[0, 1], [0, 2]]


def test_missing_qm9pack_names_the_install_command(tmp_cache, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "qm9pack" else real(name, *a))
    with pytest.raises(ImportError, match=r"pip install qm9pack==1\.0\.3"):
        data.load_qm9(limit=5)


@pytest.mark.parametrize("limit", [0, -3, 10**7, 1.5])
def test_bad_limit(tmp_cache, limit):
    with pytest.raises(ValueError, match="limit"):
        data.load_qm9(limit=limit)


def test_cache_location(tmp_path, monkeypatch):
    monkeypatch.setenv("EQUINB_CACHE", str(tmp_path / "c"))
    assert data.cache_path() == tmp_path / "c" / "qm9.npz"
    assert data.cache_path(tmp_path, limit=7) == tmp_path / "qm9_limit7.npz"
    monkeypatch.delenv("EQUINB_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert data.cache_path() == pathlib.Path.home() / ".cache" / "equinb" / "qm9.npz"


def test_loaded_arrays_are_read_only(arrays):
    with pytest.raises(ValueError, match="read-only"):
        arrays.energy[0] = 0.0
    with pytest.raises(ValueError, match="read-only"):
        arrays.molecule(0).pos[0, 0] = 1.0
