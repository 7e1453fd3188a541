"""The QM9 source: qm9pack's CSV files, found without importing the package, read and parsed into raw arrays.

The data come from the PyPI package ``qm9pack`` (``pip install qm9pack==1.0.3``), which ships all 130,831
characterised QM9 molecules as CSV files. :func:`parse_qm9` reads them once (about 40 s on one core), perceives
every molecule's bonds (:func:`~equinb.data.molecules.perceive_bonds`) and returns the arrays that
:mod:`equinb.data.cache` stores; if RDKit cannot perceive a molecule's bonds, the molecule is kept without bonds
and the parse prints how many failed.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import progress as terminal
from .constants import CACHE_FORMAT_VERSION, ELEMENTS, QM9PACK_REQUIREMENT
from .molecules import perceive_bonds

if TYPE_CHECKING:
    import pandas as pd

_CSV_FILES = ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv")
_CSV_COLUMNS = ["Index", "SMILES", "N_atoms", "Elements", "XYZ_Ang", "InternalEnergy_0K_au"]


def qm9pack_data_dir() -> Path:
    """Directory holding qm9pack's CSV files, found without importing the package.

    Returns
    -------
    pathlib.Path
        The folder ``qm9pack/data`` of the installed package, holding ``qm9_part{1,2,3}.csv``.

    Raises
    ------
    ImportError
        If qm9pack is not installed or lacks its data files; the message gives the install command.
    """
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"QM9 comes from the package qm9pack, which is not installed: pip install {QM9PACK_REQUIREMENT}"
        )
    data_dir = Path(list(spec.submodule_search_locations)[0]) / "data"
    missing = [name for name in _CSV_FILES if not (data_dir / name).is_file()]
    if missing:
        raise ImportError(
            f"qm9pack at {data_dir.parent} lacks {', '.join(missing)}; reinstall it: "
            f"pip install --force-reinstall {QM9PACK_REQUIREMENT}"
        )
    return data_dir


def _qm9pack_version() -> str:
    try:
        return importlib.metadata.version("qm9pack")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def read_qm9_csv(limit: int | None = None) -> pd.DataFrame:
    """Read the needed columns of qm9pack's CSV files, in QM9-index order.

    Parameters
    ----------
    limit
        Read only the first ``limit`` rows (for tests); None reads all.

    Returns
    -------
    pandas.DataFrame
        Columns ``Index, SMILES, N_atoms, Elements, XYZ_Ang, InternalEnergy_0K_au`` (``Elements`` and
        ``XYZ_Ang`` as strings).
    """
    import pandas as pd

    data_dir = qm9pack_data_dir()
    frames = []
    remaining = limit
    for name in _CSV_FILES:
        if remaining is not None and remaining <= 0:
            break
        frame = pd.read_csv(data_dir / name, usecols=_CSV_COLUMNS, nrows=remaining)
        frames.append(frame)
        if remaining is not None:
            remaining -= len(frame)
    table = pd.concat(frames, ignore_index=True).sort_values("Index", kind="stable", ignore_index=True)
    return table


def parse_qm9(limit: int | None = None, progress: bool | None = None) -> dict[str, np.ndarray]:
    """Parse qm9pack into the raw cache arrays (the slow step, about a minute for all molecules).

    Parameters
    ----------
    limit
        Parse only the first ``limit`` molecules (for tests); None parses all.
    progress
        A progress bar on stderr: ``None`` (default) only on a terminal, ``True``/``False`` always/never.

    Returns
    -------
    dict of str to numpy.ndarray
        The arrays stored in the cache (see :mod:`equinb.data.cache`).

    Raises
    ------
    ImportError
        If qm9pack is missing.
    RuntimeError
        If the CSV content is not what this code expects (unknown element, atom counts that disagree).
    """
    table = read_qm9_csv(limit)
    n = len(table)
    z_parts, pos_parts, bond_parts = [], [], []
    n_atoms = np.empty(n, dtype=np.int64)
    n_bonds = np.empty(n, dtype=np.int64)
    failed = np.zeros(n, dtype=bool)
    rows = zip(table["Index"], table["N_atoms"], table["Elements"], table["XYZ_Ang"])
    bar = terminal.bar(rows, progress, total=n, desc="QM9: parsing", unit="mol", mininterval=2.0)
    for i, (index, count, elements, xyz) in enumerate(bar):
        symbols = ast.literal_eval(elements)
        coords = np.asarray(ast.literal_eval(xyz), dtype=np.float64).reshape(-1, 3)
        if not len(symbols) == len(coords) == count:
            raise RuntimeError(
                f"QM9 index {index}: {len(symbols)} elements, {len(coords)} positions, N_atoms={count}"
            )
        try:
            z_parts.append(np.array([ELEMENTS[s] for s in symbols], dtype=np.uint8))
        except KeyError as err:
            raise RuntimeError(f"QM9 index {index}: unknown element {err.args[0]!r}") from None
        pos_parts.append(coords)
        bonds = perceive_bonds(symbols, coords)
        if bonds is None:
            failed[i] = True
            bonds = np.zeros((0, 2), dtype=np.int64)
        bond_parts.append(bonds.astype(np.uint8))
        n_atoms[i] = count
        n_bonds[i] = len(bonds)
    if failed.any():
        print(
            f"equinb.data: RDKit could not perceive the bonds of {int(failed.sum())} molecule(s); they are kept "
            "with no bonds and flagged in QM9Arrays.connectivity_failed",
            file=sys.stderr,
        )
    return {
        "format_version": np.array(CACHE_FORMAT_VERSION, dtype=np.int64),
        "limit": np.array(-1 if limit is None else limit, dtype=np.int64),
        "n_molecules": np.array(n, dtype=np.int64),
        "qm9pack_version": np.array(_qm9pack_version()),
        "z": np.concatenate(z_parts),
        "pos": np.concatenate(pos_parts),
        "atom_offsets": np.concatenate([[0], np.cumsum(n_atoms)]).astype(np.int64),
        "bonds": np.concatenate(bond_parts).reshape(-1, 2),
        "bond_offsets": np.concatenate([[0], np.cumsum(n_bonds)]).astype(np.int64),
        "qm9_index": table["Index"].to_numpy(dtype=np.int64),
        "smiles": table["SMILES"].to_numpy(dtype=str),
        "u0_hartree": table["InternalEnergy_0K_au"].to_numpy(dtype=np.float64),
        "connectivity_failed": failed,
    }
