"""One QM9 molecule and all of them as concatenated arrays, the atomization energy, and bond perception.

Target
    The U0 atomization energy in eV: ``U0 - sum of the atomic reference energies`` (Hartree), times
    :data:`~equinb.data.constants.HARTREE_TO_EV` (:func:`atomization_energy`). It is computed from U0 whenever the
    arrays are loaded, so the reference energies and the unit conversion live only in
    :mod:`equinb.data.constants`.

Bond perception
    RDKit's default connect-the-dots rule on the geometry (a bond where the distance is below the sum of the
    covalent radii plus a tolerance; ``DetermineConnectivity``'s ``covFactor`` only applies to its van der
    Waals method). In 6,810 molecules (5.2 %, all strained small-ring cages) it adds one long cross-ring contact
    (about 1.8-1.9 Å) that the molecule's SMILES has no bond for; it never misses a SMILES bond. Every
    molecule's bond graph is connected.

Connectivity failures
    If RDKit cannot perceive the connectivity of a molecule, :func:`perceive_bonds` returns None; the molecule is
    then **kept** with no bonds (its bond graph has no edges, its radius graph is unaffected) and flagged in
    :attr:`QM9Arrays.connectivity_failed`. With ``qm9pack==1.0.3`` and RDKit 2026.9 none fail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .constants import ATOM_REF_HARTREE, HARTREE_TO_EV


@dataclass(frozen=True)
class Molecule:
    """One QM9 molecule, as views into :class:`QM9Arrays` (see there for the fields' meaning)."""

    row: int
    qm9_index: int
    smiles: str
    z: np.ndarray
    pos: np.ndarray
    bonds: np.ndarray
    u0_hartree: float
    energy: float
    connectivity_failed: bool


@dataclass(frozen=True, eq=False)
class QM9Arrays:
    """QM9 as concatenated arrays: molecule ``i`` owns atoms ``atom_offsets[i]:atom_offsets[i + 1]``.

    Attributes
    ----------
    z
        ``(A,)`` uint8, atomic numbers of all atoms, molecule after molecule.
    pos
        ``(A, 3)`` float64, positions in Å, as in the CSV.
    atom_offsets
        ``(N + 1,)`` int64, start of each molecule's atoms; ``atom_offsets[-1] == A``.
    bonds
        ``(B, 2)`` uint8, undirected bonds ``(i, j)`` with ``i < j``, as atom indices *local to the molecule*,
        sorted; molecule ``i`` owns rows ``bond_offsets[i]:bond_offsets[i + 1]``.
    bond_offsets
        ``(N + 1,)`` int64, start of each molecule's bonds; ``bond_offsets[-1] == B``.
    qm9_index
        ``(N,)`` int64, QM9's own molecule index (``dsgdb9nsd_<index>``), strictly increasing.
    smiles
        ``(N,)`` str, the SMILES given in qm9pack.
    u0_hartree
        ``(N,)`` float64, total internal energy at 0 K (Hartree).
    energy
        ``(N,)`` float64, U0 atomization energy in eV (see :func:`atomization_energy`).
    connectivity_failed
        ``(N,)`` bool, True where RDKit could not perceive the bonds (the molecule then has no bonds).
    limit
        None for the full data set; an int for a cache built from the first ``limit`` rows (tests only).

    Rows ``0 .. N - 1`` are the positions that subsets, splits and ``Data.row`` refer to. The arrays loaded by
    :func:`~equinb.data.cache.load_qm9` are read-only (copy before modifying).
    """

    z: np.ndarray
    pos: np.ndarray
    atom_offsets: np.ndarray
    bonds: np.ndarray
    bond_offsets: np.ndarray
    qm9_index: np.ndarray
    smiles: np.ndarray
    u0_hartree: np.ndarray
    energy: np.ndarray
    connectivity_failed: np.ndarray
    limit: int | None = None

    def __len__(self) -> int:
        return len(self.qm9_index)

    @property
    def n_atoms(self) -> np.ndarray:
        """``(N,)`` int64, number of atoms of each molecule."""
        return np.diff(self.atom_offsets)

    def molecule(self, i: int) -> Molecule:
        """Return molecule ``i`` (a row, ``0 <= i < len(self)``; negative rows count from the end).

        Parameters
        ----------
        i
            Row of the molecule.

        Returns
        -------
        Molecule
            Views into these arrays (read-only when the arrays are).

        Raises
        ------
        IndexError
            If ``i`` is out of range.
        """
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"molecule row {i} out of range for {n} molecules")
        i = int(i) % n
        a0, a1 = self.atom_offsets[i], self.atom_offsets[i + 1]
        b0, b1 = self.bond_offsets[i], self.bond_offsets[i + 1]
        return Molecule(
            row=i,
            qm9_index=int(self.qm9_index[i]),
            smiles=str(self.smiles[i]),
            z=self.z[a0:a1],
            pos=self.pos[a0:a1],
            bonds=self.bonds[b0:b1],
            u0_hartree=float(self.u0_hartree[i]),
            energy=float(self.energy[i]),
            connectivity_failed=bool(self.connectivity_failed[i]),
        )

    def row_of(self, qm9_index: int) -> int:
        """Return the row of the molecule with QM9 index ``qm9_index``.

        Parameters
        ----------
        qm9_index
            QM9's own index of the molecule (``dsgdb9nsd_<index>``).

        Returns
        -------
        int
            The row, ``0 <= row < len(self)``.

        Raises
        ------
        KeyError
            If no molecule has that index.
        """
        row = int(np.searchsorted(self.qm9_index, qm9_index))
        if row >= len(self) or self.qm9_index[row] != qm9_index:
            raise KeyError(f"no molecule with QM9 index {qm9_index}")
        return row


def atomization_energy(z: np.ndarray, atom_offsets: np.ndarray, u0_hartree: np.ndarray) -> np.ndarray:
    """U0 atomization energy in eV: ``(U0 - sum of atomic reference energies) * HARTREE_TO_EV``.

    Parameters
    ----------
    z
        ``(A,)`` atomic numbers of all atoms, concatenated.
    atom_offsets
        ``(N + 1,)`` start of each molecule's atoms (every molecule has at least one atom).
    u0_hartree
        ``(N,)`` total energies U0 in Hartree.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` float64 atomization energies in eV (negative: bound molecules).
    """
    table = np.full(max(ATOM_REF_HARTREE) + 1, np.nan)
    for number, ref in ATOM_REF_HARTREE.items():
        table[number] = ref
    per_atom = table[np.asarray(z, dtype=np.int64)]
    refs = np.add.reduceat(per_atom, np.asarray(atom_offsets[:-1], dtype=np.int64))
    return (np.asarray(u0_hartree, dtype=np.float64) - refs) * HARTREE_TO_EV


def _xyz_block(symbols: Sequence[str], coords: np.ndarray) -> str:
    # RDKit's XYZ reader rejects scientific notation (e.g. -7.70322e-05): fixed decimals only.
    lines = [str(len(symbols)), ""]
    lines += [f"{s} {x:.10f} {y:.10f} {w:.10f}" for s, (x, y, w) in zip(symbols, coords)]
    return "\n".join(lines) + "\n"


def perceive_bonds(symbols: Sequence[str], coords: np.ndarray) -> np.ndarray | None:
    """Bonds of one molecule from its 3D geometry (RDKit ``DetermineConnectivity``, default settings).

    Parameters
    ----------
    symbols
        Element symbols of the atoms.
    coords
        ``(n, 3)`` positions in Å.

    Returns
    -------
    numpy.ndarray or None
        ``(n_bonds, 2)`` int64 local atom indices ``(i, j)``, ``i < j``, sorted; None if RDKit failed.
    """
    from rdkit import Chem, RDLogger
    from rdkit.Chem import rdDetermineBonds

    RDLogger.DisableLog("rdApp.*")
    try:
        mol = Chem.MolFromXYZBlock(_xyz_block(symbols, coords))
        if mol is None:
            return None
        rdDetermineBonds.DetermineConnectivity(mol)
    except Exception:  # RDKit raises various errors (ValueError, RuntimeError) for hopeless input
        return None
    pairs = [sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx())) for b in mol.GetBonds()]
    if not pairs:
        return np.zeros((0, 2), dtype=np.int64)
    pairs_arr = np.asarray(pairs, dtype=np.int64)
    return pairs_arr[np.lexsort((pairs_arr[:, 1], pairs_arr[:, 0]))]

