"""QM9 offline: cached arrays, molecular graphs, seeded persisted splits and label normalisation.

The data come from the PyPI package ``qm9pack`` (``pip install qm9pack==1.0.3``), which ships all 130,831
characterised QM9 molecules as CSV files. They are parsed once (about 40 s on one core) into a compact cache
of concatenated arrays (:class:`QM9Arrays`, read-only numpy arrays), which later loads in about 0.2 s.

Target
    The U0 atomization energy in eV: ``U0 - sum of the atomic reference energies`` (Hartree), times
    :data:`HARTREE_TO_EV`. Graphs keep the **raw eV** in ``Data.y``; normalisation is a separate, fitted
    :class:`Normalizer` (fitted on the training split only) that the training code applies to ``y`` and to the
    model output. Nothing normalised is ever stored, so a split, a cache and a normaliser can't disagree.

Graphs
    ``graph="bonds"`` (default, the study's setting): the chemical bonds, as directed edges both ways, from
    RDKit's connectivity perception on the 3D geometry, computed once and cached. ``graph="radius"``: all
    ordered pairs of distinct atoms closer than ``cutoff`` Å, computed per molecule with plain torch.

Bond perception
    RDKit's default connect-the-dots rule on the geometry (a bond where the distance is below the sum of the
    covalent radii plus a tolerance; ``DetermineConnectivity``'s ``covFactor`` only applies to its van der
    Waals method). In 6,810 molecules (5.2 %, all strained small-ring cages) it adds one long cross-ring contact
    (about 1.8-1.9 Å) that the molecule's SMILES has no bond for; it never misses a SMILES bond. Every
    molecule's bond graph is connected.

Connectivity failures
    If RDKit cannot perceive the connectivity of a molecule, the molecule is **kept** with no bonds (its bond
    graph has no edges, its radius graph is unaffected), flagged in :attr:`QM9Arrays.connectivity_failed`, and
    the build prints how many failed. With ``qm9pack==1.0.3`` and RDKit 2026.9 none fail.

Cache
    ``<cache dir>/qm9.npz`` (``qm9_limit<N>.npz`` for the test-only ``limit``), where the cache dir is the
    ``cache_dir`` argument, else ``$EQUINB_CACHE``, else ``$XDG_CACHE_HOME/equinb``, else ``~/.cache/equinb``.
    An uncompressed ``.npz`` without pickles, written atomically (temporary file + ``os.replace``) under a
    file lock, validated on every load (format version, limit, count, array shapes and consistency) and rebuilt
    with a printed message when it is missing, corrupt or from another format version. Arrays: metadata
    ``format_version``, ``limit`` (-1 for the full set), ``n_molecules``, ``qm9pack_version``; data ``z``,
    ``pos``, ``atom_offsets``, ``bonds``, ``bond_offsets``, ``qm9_index``, ``smiles``, ``u0_hartree``,
    ``connectivity_failed`` (as in :class:`QM9Arrays`). The atomization energy is computed on load from U0, so
    the reference energies and the unit conversion live only in this module's constants.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.metadata
import importlib.util
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

# ------------------------------------------------------------------------------------------------------------
# Constants (the only place they are defined)
# ------------------------------------------------------------------------------------------------------------

#: CODATA 2018 Hartree energy in eV.
HARTREE_TO_EV = 27.211386246

#: U0 of the isolated atoms (Hartree), B3LYP/6-31G(2df,p), from QM9's atomref table.
ATOM_REF_HARTREE: dict[int, float] = {
    1: -0.500273,  # H
    6: -37.846772,  # C
    7: -54.583861,  # N
    8: -75.064579,  # O
    9: -99.718730,  # F
}

#: Element symbol -> atomic number for the elements of QM9.
ELEMENTS: dict[str, int] = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}

#: Number of molecules in QM9 as shipped by qm9pack (the 3,054 "uncharacterized" ones excluded).
N_QM9 = 130_831

#: The pinned data package, used in error messages.
QM9PACK_REQUIREMENT = "qm9pack==1.0.3"

#: Format version of the cache file; bump it whenever the cache's content or layout changes.
CACHE_FORMAT_VERSION = 1

#: Environment variable that overrides the cache directory.
CACHE_ENV_VAR = "EQUINB_CACHE"

#: Seed, split fractions and radius cutoff of the study.
DEFAULT_SEED = 21616
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
DEFAULT_CUTOFF = 6.0

#: Names of the splits, in the order of the fractions.
SPLIT_NAMES = ("train", "val", "test")

#: Graph kinds accepted by :func:`build_graph`.
GRAPH_KINDS = ("bonds", "radius")

_CSV_FILES = ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv")
_CSV_COLUMNS = ["Index", "SMILES", "N_atoms", "Elements", "XYZ_Ang", "InternalEnergy_0K_au"]
_CACHE_KEYS = (
    "format_version",
    "limit",
    "n_molecules",
    "qm9pack_version",
    "z",
    "pos",
    "atom_offsets",
    "bonds",
    "bond_offsets",
    "qm9_index",
    "smiles",
    "u0_hartree",
    "connectivity_failed",
)


class CacheError(ValueError):
    """A cache file that is unreadable, inconsistent, limited differently or of another format version."""


# ------------------------------------------------------------------------------------------------------------
# The arrays
# ------------------------------------------------------------------------------------------------------------


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
    :func:`load_qm9` are read-only (copy before modifying).
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


# ------------------------------------------------------------------------------------------------------------
# Parsing qm9pack
# ------------------------------------------------------------------------------------------------------------


def qm9pack_data_dir() -> Path:
    """Directory holding qm9pack's CSV files, found without importing the package.

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


def read_qm9_csv(limit: int | None = None):
    """Read the needed columns of qm9pack's CSV files, in QM9-index order.

    Parameters
    ----------
    limit
        Read only the first ``limit`` rows (for tests); None reads all.

    Returns
    -------
    pandas.DataFrame
        Columns ``Index, SMILES, N_atoms, Elements, XYZ_Ang, InternalEnergy_0K_au`` (the last two as strings).
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


def parse_qm9(limit: int | None = None, progress: bool = True) -> dict[str, np.ndarray]:
    """Parse qm9pack into the raw cache arrays (the slow step, about a minute for all molecules).

    Parameters
    ----------
    limit
        Parse only the first ``limit`` molecules (for tests); None parses all.
    progress
        Show a tqdm progress bar.

    Returns
    -------
    dict of str to numpy.ndarray
        The arrays stored in the cache (see "Cache" in the module docstring).

    Raises
    ------
    ImportError
        If qm9pack is missing.
    RuntimeError
        If the CSV content is not what this code expects (unknown element, atom counts that disagree).
    """
    from tqdm.auto import tqdm

    table = read_qm9_csv(limit)
    n = len(table)
    z_parts, pos_parts, bond_parts = [], [], []
    n_atoms = np.empty(n, dtype=np.int64)
    n_bonds = np.empty(n, dtype=np.int64)
    failed = np.zeros(n, dtype=bool)
    rows = zip(table["Index"], table["N_atoms"], table["Elements"], table["XYZ_Ang"])
    bar = tqdm(rows, total=n, desc="QM9: parsing", unit="mol", mininterval=2.0, disable=not progress)
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


# ------------------------------------------------------------------------------------------------------------
# The cache
# ------------------------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$EQUINB_CACHE`` if set, else ``$XDG_CACHE_HOME/equinb``, else ``~/.cache/equinb``."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "equinb"
    return Path.home() / ".cache" / "equinb"


def cache_path(cache_dir: str | os.PathLike | None = None, limit: int | None = None) -> Path:
    """Path of the cache file: ``qm9.npz`` for the full data, ``qm9_limit<N>.npz`` for a limited build."""
    directory = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return directory / ("qm9.npz" if limit is None else f"qm9_limit{limit}.npz")


def _check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"limit must be None or a positive integer, got {limit!r}")
    if limit is not None and limit > N_QM9:
        raise ValueError(f"limit={limit} exceeds the {N_QM9} molecules of QM9")


def validate_cache(raw: Mapping[str, np.ndarray], limit: int | None = None) -> None:
    """Check raw cache arrays: format version, limit, molecule count, shapes, dtypes, offsets and ranges.

    Parameters
    ----------
    raw
        The arrays of a cache file.
    limit
        The limit the cache must have been built with (None: the full data set).

    Raises
    ------
    CacheError
        Naming the first problem found.
    """
    missing = [key for key in _CACHE_KEYS if key not in raw]
    if missing:
        raise CacheError(f"missing arrays {missing}")
    version = int(raw["format_version"])
    if version != CACHE_FORMAT_VERSION:
        raise CacheError(f"format version {version}, expected {CACHE_FORMAT_VERSION}")
    stored_limit = int(raw["limit"])
    if stored_limit != (-1 if limit is None else limit):
        what = "the full data set" if stored_limit == -1 else f"the first {stored_limit} molecules"
        wanted = "the full data set" if limit is None else f"the first {limit} molecules"
        raise CacheError(f"built from {what}, expected {wanted}")
    n = int(raw["n_molecules"])
    expected_n = N_QM9 if limit is None else min(limit, N_QM9)
    if n != expected_n:
        raise CacheError(f"{n} molecules, expected {expected_n}")
    z, pos, atom_offsets = raw["z"], raw["pos"], raw["atom_offsets"]
    bonds, bond_offsets = raw["bonds"], raw["bond_offsets"]
    n_atoms_total = len(z)
    shapes = {
        "z": (z.shape, (n_atoms_total,), np.uint8),
        "pos": (pos.shape, (n_atoms_total, 3), np.float64),
        "atom_offsets": (atom_offsets.shape, (n + 1,), np.int64),
        "bonds": (bonds.shape, (len(bonds), 2), np.uint8),
        "bond_offsets": (bond_offsets.shape, (n + 1,), np.int64),
        "qm9_index": (raw["qm9_index"].shape, (n,), np.int64),
        "smiles": (raw["smiles"].shape, (n,), None),
        "u0_hartree": (raw["u0_hartree"].shape, (n,), np.float64),
        "connectivity_failed": (raw["connectivity_failed"].shape, (n,), np.bool_),
    }
    for key, (shape, expected, dtype) in shapes.items():
        if shape != expected:
            raise CacheError(f"array {key!r} has shape {shape}, expected {expected}")
        if dtype is not None and raw[key].dtype != dtype:
            raise CacheError(f"array {key!r} has dtype {raw[key].dtype}, expected {np.dtype(dtype)}")
    if raw["smiles"].dtype.kind != "U":
        raise CacheError(f"array 'smiles' has dtype {raw['smiles'].dtype}, expected str")
    for key, total in (("atom_offsets", n_atoms_total), ("bond_offsets", len(bonds))):
        offsets = raw[key]
        if offsets[0] != 0 or offsets[-1] != total or np.any(np.diff(offsets) < 0):
            raise CacheError(f"array {key!r} is not a valid offset array for {total} rows")
    if np.any(np.diff(atom_offsets) < 1):
        raise CacheError("a molecule has no atoms")
    if not np.isin(z, list(ATOM_REF_HARTREE)).all():
        raise CacheError("atomic numbers outside H, C, N, O, F")
    if not (np.isfinite(pos).all() and np.isfinite(raw["u0_hartree"]).all()):
        raise CacheError("non-finite positions or energies")
    if np.any(np.diff(raw["qm9_index"]) <= 0):
        raise CacheError("QM9 indices are not strictly increasing")
    if len(bonds):
        owner = np.repeat(np.arange(n), np.diff(bond_offsets))
        size = np.diff(atom_offsets)[owner]
        if np.any(bonds[:, 0] >= bonds[:, 1]) or np.any(bonds[:, 1] >= size):
            raise CacheError("bond atom indices out of range or not ordered i < j")


def read_cache(path: str | os.PathLike, limit: int | None = None) -> QM9Arrays:
    """Load and validate a cache file.

    Parameters
    ----------
    path
        The ``.npz`` cache file.
    limit
        The limit it must have been built with (None: the full data set).

    Returns
    -------
    QM9Arrays

    Raises
    ------
    FileNotFoundError
        If there is no file.
    CacheError
        If the file is unreadable or fails :func:`validate_cache`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no QM9 cache at {path}")
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            raw = {key: archive[key] for key in archive.files}
    except Exception as err:  # garbage, truncation, pickled content: all mean "rebuild"
        raise CacheError(f"unreadable ({type(err).__name__}: {err})") from err
    validate_cache(raw, limit)
    return _arrays_from_raw(raw, limit)


def _arrays_from_raw(raw: Mapping[str, np.ndarray], limit: int | None) -> QM9Arrays:
    energy = atomization_energy(raw["z"], raw["atom_offsets"], raw["u0_hartree"])
    for array in (*raw.values(), energy):
        array.setflags(write=False)  # shared by every user of the arrays: no accidental edits
    return QM9Arrays(
        z=raw["z"],
        pos=raw["pos"],
        atom_offsets=raw["atom_offsets"],
        bonds=raw["bonds"],
        bond_offsets=raw["bond_offsets"],
        qm9_index=raw["qm9_index"],
        smiles=raw["smiles"],
        u0_hartree=raw["u0_hartree"],
        energy=energy,
        connectivity_failed=raw["connectivity_failed"],
        limit=limit,
    )


def _atomic_savez(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache/split is ordinary readable data
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_cache(path: str | os.PathLike, raw: Mapping[str, np.ndarray]) -> None:
    """Write raw cache arrays atomically (temporary file in the same directory, then ``os.replace``)."""
    _atomic_savez(Path(path), raw)


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock next to ``path`` so concurrent processes build the cache once (POSIX only)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock, the atomic write still keeps the file whole
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_qm9(
    cache_dir: str | os.PathLike | None = None, *, limit: int | None = None, progress: bool = True
) -> QM9Arrays:
    """Load QM9 from the cache, building (or rebuilding) the cache first when needed.

    Parameters
    ----------
    cache_dir
        Cache directory; default :func:`default_cache_dir` (``$EQUINB_CACHE`` or ``~/.cache/equinb``).
    limit
        Test-only: build/load a separate cache of the first ``limit`` molecules (``qm9_limit<N>.npz``, with
        the limit recorded inside, so it is never taken for the full data set). None: all 130,831 molecules.
    progress
        Show a progress bar while parsing.

    Returns
    -------
    QM9Arrays

    Raises
    ------
    ImportError
        If the cache must be built and qm9pack is not installed (the message gives the install command).
    ValueError
        If ``limit`` is not None or a positive integer up to 130,831.
    """
    _check_limit(limit)
    path = cache_path(cache_dir, limit)
    try:
        return read_cache(path, limit)
    except (FileNotFoundError, CacheError):
        pass  # reported below, once this process holds the build lock
    with _exclusive_lock(path):
        try:  # another process may have built it while this one waited for the lock
            return read_cache(path, limit)
        except FileNotFoundError:
            print(f"equinb.data: no QM9 cache at {path}; building it once (about a minute)", file=sys.stderr)
        except CacheError as err:
            print(f"equinb.data: the QM9 cache at {path} is invalid ({err}); rebuilding it", file=sys.stderr)
        raw = parse_qm9(limit, progress=progress)
        validate_cache(raw, limit)
        write_cache(path, raw)
    return _arrays_from_raw(raw, limit)


# ------------------------------------------------------------------------------------------------------------
# Subsets, splits and normalisation
# ------------------------------------------------------------------------------------------------------------


def subset_indices(n_total: int, n_molecules: int | None = None, seed: int = DEFAULT_SEED) -> np.ndarray:
    """A deterministic random subset of rows, sorted ascending.

    Parameters
    ----------
    n_total
        Number of molecules available (``len(arrays)``).
    n_molecules
        Size of the subset; None takes all rows.
    seed
        Seed of the subset (same seed, same subset).

    Returns
    -------
    numpy.ndarray
        ``(n_molecules,)`` int64 rows.

    Raises
    ------
    ValueError
        If ``n_molecules`` is not an integer in ``1 .. n_total``.
    """
    if n_molecules is None:
        return np.arange(n_total, dtype=np.int64)
    if isinstance(n_molecules, bool) or not isinstance(n_molecules, (int, np.integer)):
        raise ValueError(f"n_molecules must be an integer or None, got {n_molecules!r}")
    if not 1 <= n_molecules <= n_total:
        raise ValueError(f"n_molecules={n_molecules} is outside 1 .. {n_total} (the molecules available)")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_total, size=int(n_molecules), replace=False)).astype(np.int64)


def split_sizes(n: int, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> tuple[int, ...]:
    """Sizes of the splits of ``n`` items: floors of ``n * fraction``, the remainder given to the largest
    fractional parts (ties to the earlier split), so the sizes sum to ``n``.

    Raises
    ------
    ValueError
        If there are not three fractions, one is negative or not finite, they do not sum to 1, or a split
        would be empty.
    """
    values = [float(f) for f in fractions]
    if len(values) != len(SPLIT_NAMES):
        raise ValueError(f"fractions must be three numbers (train, val, test), got {tuple(fractions)!r}")
    if any(not np.isfinite(f) or f < 0 for f in values):
        raise ValueError(f"fractions must be non-negative, got {tuple(values)!r}")
    if abs(sum(values) - 1.0) > 1e-9:
        raise ValueError(f"fractions must sum to 1, got {tuple(values)!r} (sum {sum(values)!r})")
    exact = np.array(values) * n
    sizes = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - sizes), kind="stable")
    sizes[order[: n - int(sizes.sum())]] += 1
    empty = [name for name, size in zip(SPLIT_NAMES, sizes) if size == 0]
    if empty:
        raise ValueError(f"fractions {tuple(values)!r} of {n} molecules leave the split(s) {empty} empty")
    return tuple(int(s) for s in sizes)


def split_indices(
    indices: np.ndarray, fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = DEFAULT_SEED
) -> dict[str, np.ndarray]:
    """Split rows at random into train/val/test.

    Parameters
    ----------
    indices
        Rows to split (e.g. from :func:`subset_indices`); must be unique.
    fractions
        Fractions of (train, val, test); default (0.8, 0.1, 0.1).
    seed
        Seed of the permutation (same seed and rows, same split).

    Returns
    -------
    dict of str to numpy.ndarray
        ``{"train": rows, "val": rows, "test": rows}``, int64, each sorted ascending, disjoint, together
        ``indices``; sizes from :func:`split_sizes`.

    Raises
    ------
    ValueError
        For bad fractions (see :func:`split_sizes`) or repeated indices.
    """
    indices = np.asarray(indices, dtype=np.int64).ravel()
    if len(np.unique(indices)) != len(indices):
        raise ValueError("indices to split contain repeated rows")
    sizes = split_sizes(len(indices), fractions)
    permuted = indices[np.random.default_rng(seed).permutation(len(indices))]
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    return {name: np.sort(permuted[bounds[k] : bounds[k + 1]]) for k, name in enumerate(SPLIT_NAMES)}


def save_split(path: str | os.PathLike, split: Mapping[str, np.ndarray]) -> None:
    """Write a split to ``path`` (``.npz`` with arrays ``train``, ``val``, ``test``), atomically.

    Raises
    ------
    ValueError
        If the split lacks one of the three names or its parts overlap.
    """
    clean = _check_split(split)
    _atomic_savez(Path(path), clean)


def load_split(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a split written by :func:`save_split`.

    Returns
    -------
    dict of str to numpy.ndarray
        ``{"train": rows, "val": rows, "test": rows}``, int64.

    Raises
    ------
    FileNotFoundError
        If there is no file.
    ValueError
        If the file lacks a part or its parts overlap.
    """
    with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
        split = {name: archive[name] for name in archive.files}
    return _check_split(split)


def _check_split(split: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    missing = [name for name in SPLIT_NAMES if name not in split]
    if missing:
        raise ValueError(f"split lacks {missing}; it needs {list(SPLIT_NAMES)}")
    clean = {}
    for name in SPLIT_NAMES:
        part = np.asarray(split[name])
        if part.ndim != 1 or (part.size and part.dtype.kind not in "iu"):
            raise ValueError(f"split part {name!r} must be a 1-D integer array, got {part.dtype} {part.shape}")
        clean[name] = part.astype(np.int64)
    union = np.concatenate(list(clean.values()))
    if len(np.unique(union)) != len(union):
        raise ValueError("split parts overlap or repeat rows")
    return clean


@dataclass(frozen=True)
class Normalizer:
    """Affine label normalisation ``(y - mean) / std``, fitted on training labels only.

    Works on floats, numpy arrays and torch tensors alike. Store it with a run via :meth:`to_dict`.
    """

    mean: float
    std: float

    @classmethod
    def fit(cls, values: np.ndarray) -> Normalizer:
        """Mean and sample standard deviation (``ddof=1``) of ``values``, e.g. ``arrays.energy[split["train"]]``.

        Raises
        ------
        ValueError
            If there are fewer than two values, a non-finite value, or zero spread.
        """
        values = np.asarray(values, dtype=np.float64).ravel()
        if len(values) < 2:
            raise ValueError(f"need at least 2 values to fit a normaliser, got {len(values)}")
        if not np.isfinite(values).all():
            raise ValueError("cannot fit a normaliser on non-finite values")
        std = float(values.std(ddof=1))
        if std == 0.0:
            raise ValueError("cannot fit a normaliser on values without spread (std 0)")
        return cls(mean=float(values.mean()), std=std)

    def normalize(self, y):
        """``(y - mean) / std``."""
        return (y - self.mean) / self.std

    def denormalize(self, y):
        """``y * std + mean``, the inverse of :meth:`normalize`."""
        return y * self.std + self.mean

    def to_dict(self) -> dict[str, float]:
        """``{"mean": ..., "std": ...}`` for a run's JSON files."""
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, values: Mapping[str, float]) -> Normalizer:
        """Inverse of :meth:`to_dict`."""
        return cls(mean=float(values["mean"]), std=float(values["std"]))


def fit_normalizer(energy: np.ndarray, split: Mapping[str, np.ndarray]) -> Normalizer:
    """Fit a :class:`Normalizer` on the training rows only: ``Normalizer.fit(energy[split["train"]])``.

    Parameters
    ----------
    energy
        ``(N,)`` labels of all rows, e.g. ``arrays.energy``.
    split
        Rows per split; only ``split["train"]`` is read.

    Raises
    ------
    ValueError
        If there is no ``"train"`` part (or it is too small, see :meth:`Normalizer.fit`).
    """
    if "train" not in split:
        raise ValueError(f"split needs a 'train' part, has {list(split)}")
    return Normalizer.fit(np.asarray(energy)[np.asarray(split["train"], dtype=np.int64)])


# ------------------------------------------------------------------------------------------------------------
# Graphs and loaders
# ------------------------------------------------------------------------------------------------------------


def _check_graph(graph: str, cutoff: float) -> None:
    if graph not in GRAPH_KINDS:
        raise ValueError(f"unknown graph kind {graph!r}; choose one of {GRAPH_KINDS}")
    if graph == "radius" and not (np.isfinite(cutoff) and cutoff > 0):
        raise ValueError(f"cutoff must be a positive number of Å, got {cutoff!r}")


def bond_edges(bonds: np.ndarray) -> torch.Tensor:
    """Directed edges both ways from undirected bonds.

    Parameters
    ----------
    bonds
        ``(n_bonds, 2)`` local atom indices.

    Returns
    -------
    torch.Tensor
        ``(2, 2 * n_bonds)`` long ``edge_index`` (row 0 source, row 1 target), sorted by source then target.
    """
    b = np.asarray(bonds, dtype=np.int64).reshape(-1, 2)
    both = np.concatenate([b, b[:, ::-1]])
    both = both[np.lexsort((both[:, 1], both[:, 0]))]
    return torch.from_numpy(np.ascontiguousarray(both.T))


def radius_edges(pos: torch.Tensor, cutoff: float = DEFAULT_CUTOFF) -> torch.Tensor:
    """All ordered pairs of distinct atoms closer than ``cutoff`` (strictly), with plain torch.

    Distances are computed directly from coordinate differences (not ``torch.cdist``'s matrix-product shortcut),
    in the dtype of ``pos``; fine for molecules (QM9 has at most 29 atoms).

    Parameters
    ----------
    pos
        ``(n, 3)`` positions in Å.
    cutoff
        Radius in Å.

    Returns
    -------
    torch.Tensor
        ``(2, n_edges)`` long ``edge_index``, sorted by source then target, both directions present.
    """
    dist = (pos[:, None, :] - pos[None, :, :]).norm(dim=-1)
    mask = dist < cutoff
    mask.fill_diagonal_(False)
    return mask.nonzero().T.contiguous()


def build_graph(arrays: QM9Arrays, i: int, graph: str = "bonds", cutoff: float = DEFAULT_CUTOFF) -> Data:
    """The PyG graph of molecule row ``i``.

    Parameters
    ----------
    arrays
        The data.
    i
        Row of the molecule.
    graph
        ``"bonds"`` (chemical bonds, both directions; the study's graph) or ``"radius"``.
    cutoff
        Radius in Å for ``graph="radius"`` (ignored for bonds).

    Returns
    -------
    torch_geometric.data.Data
        ``z`` (long, ``(n,)``), ``pos`` (float32, ``(n, 3)``, Å), ``edge_index`` (long, ``(2, E)``), ``y``
        (float32, ``(1,)``, the **raw** U0 atomization energy in eV, not normalised), ``idx`` (long, ``(1,)``,
        QM9 index), ``row`` (long, ``(1,)``, row in ``arrays``, what splits refer to), ``smiles`` (str).

    Raises
    ------
    ValueError
        For an unknown graph kind or a non-positive cutoff.
    """
    _check_graph(graph, cutoff)
    mol = arrays.molecule(i)
    pos64 = torch.from_numpy(np.array(mol.pos, dtype=np.float64))
    edge_index = bond_edges(mol.bonds) if graph == "bonds" else radius_edges(pos64, cutoff)
    return Data(
        z=torch.from_numpy(mol.z.astype(np.int64)),
        pos=pos64.float(),
        edge_index=edge_index,
        y=torch.tensor([mol.energy], dtype=torch.float32),
        idx=torch.tensor([mol.qm9_index], dtype=torch.long),
        row=torch.tensor([mol.row], dtype=torch.long),
        smiles=mol.smiles,
    )


def make_dataset(
    arrays: QM9Arrays, indices: np.ndarray, graph: str = "bonds", cutoff: float = DEFAULT_CUTOFF
) -> list[Data]:
    """Graphs of the molecules at ``indices`` (rows), in that order; see :func:`build_graph`.

    Raises
    ------
    ValueError
        For an unknown graph kind or a non-positive cutoff (checked before any work).
    IndexError
        For a row out of range.
    """
    _check_graph(graph, cutoff)
    return [build_graph(arrays, int(i), graph=graph, cutoff=cutoff) for i in np.asarray(indices).ravel()]


def make_loader(
    dataset: Sequence[Data], batch_size: int = 32, shuffle: bool = False, seed: int = DEFAULT_SEED
) -> DataLoader:
    """A PyG ``DataLoader``; with ``shuffle`` its order comes from a ``torch.Generator`` seeded with ``seed``,
    so the same seed gives the same batches, independent of the global torch RNG.

    Raises
    ------
    ValueError
        If ``batch_size`` is not a positive integer.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    generator = torch.Generator().manual_seed(int(seed)) if shuffle else None
    return DataLoader(list(dataset), batch_size=int(batch_size), shuffle=shuffle, generator=generator)
