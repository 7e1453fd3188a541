"""Tests of equinb.data.cache and equinb.data.qm9: building, validating and rebuilding the cache, its location,
parse failures and a missing qm9pack. Tests that build or rebuild a cache use a temporary directory and a small
``limit``; the comparison with the full data set uses the shared cache at the default location.
"""

from __future__ import annotations

import importlib.util
import pathlib
import shutil

import numpy as np
import pytest

from equinb import data
from equinb.data import qm9


@pytest.fixture(scope="module")
def arrays() -> data.QM9Arrays:
    return data.load_qm9()


@pytest.fixture()
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EQUINB_CACHE", str(tmp_path))
    return tmp_path


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

    monkeypatch.setattr(qm9, "perceive_bonds", flaky)  # where parse_qm9 looks it up
    small = data.load_qm9(limit=5, progress=False)
    assert "could not perceive the bonds of 1 molecule" in capsys.readouterr().err
    assert small.connectivity_failed.tolist() == [False, True, False, False, False]
    assert data.build_graph(small, 1).edge_index.shape == (2, 0)  # ammonia: kept, no bond edges
    assert data.build_graph(small, 1, graph="radius").edge_index.shape == (2, 12)
    assert data.build_graph(small, 0).edge_index.shape == (2, 8)
    assert data.read_cache(data.cache_path(limit=5), limit=5).connectivity_failed[1]


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
