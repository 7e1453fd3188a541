"""Tests of equinb.data.molecules (and the full data set as loaded) against references computed here
independently: CSV rows read with the csv module, constants retyped, energies summed in a loop. The full-data
tests use the shared cache at the default location (built once, about a minute, if missing).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os

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


def test_unknown_rows_and_indices_raise(arrays):
    with pytest.raises(IndexError):
        arrays.molecule(len(arrays))
    with pytest.raises(KeyError):
        arrays.row_of(0)
    gap = int(np.flatnonzero(np.diff(arrays.qm9_index) > 1)[0])  # an excluded ("uncharacterized") index
    with pytest.raises(KeyError):
        arrays.row_of(int(arrays.qm9_index[gap]) + 1)


def test_perceive_bonds_reports_failure_as_none():
    assert data.perceive_bonds(["Xx", "H"], np.zeros((2, 3))) is None
    water = data.perceive_bonds(["O", "H", "H"], np.array([[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]))
    assert water.tolist() == [[0, 1], [0, 2]]
