"""The on-disk QM9 cache: where it lives, its validation, atomic writes under a file lock, and :func:`load_qm9`.

``<cache dir>/qm9.npz`` (``qm9_limit<N>.npz`` for the test-only ``limit``), where the cache dir is the
``cache_dir`` argument, else ``$EQUINB_CACHE``, else ``$XDG_CACHE_HOME/equinb``, else ``~/.cache/equinb``.
An uncompressed ``.npz`` without pickles, written atomically (temporary file + ``os.replace``) under a file lock,
validated on every load (format version, limit, count, array shapes and consistency) and rebuilt from
:func:`~equinb.data.qm9.parse_qm9` with a printed message when it is missing, corrupt or from another format
version. Arrays: metadata ``format_version``, ``limit`` (-1 for the full set), ``n_molecules``,
``qm9pack_version``; data ``z``, ``pos``, ``atom_offsets``, ``bonds``, ``bond_offsets``, ``qm9_index``,
``smiles``, ``u0_hartree``, ``connectivity_failed`` (as in :class:`~equinb.data.molecules.QM9Arrays`). The
atomization energy is not stored: it is computed on load from U0
(:func:`~equinb.data.molecules.atomization_energy`). The first load parses qm9pack (about a minute); later loads
take about 0.2 s.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from .constants import ATOM_REF_HARTREE, CACHE_ENV_VAR, CACHE_FORMAT_VERSION, N_QM9
from .molecules import QM9Arrays, atomization_energy
from .npz import read_npz, write_npz
from .qm9 import parse_qm9

#: The arrays of a cache file (bump :data:`~equinb.data.constants.CACHE_FORMAT_VERSION` when they change).
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


def default_cache_dir() -> Path:
    """The default cache directory: ``$EQUINB_CACHE`` if set, else ``$XDG_CACHE_HOME/equinb``, else
    ``~/.cache/equinb``.

    Returns
    -------
    pathlib.Path
        The directory (not created here).
    """
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "equinb"
    return Path.home() / ".cache" / "equinb"


def cache_path(cache_dir: str | os.PathLike | None = None, limit: int | None = None) -> Path:
    """Path of the cache file: ``qm9.npz`` for the full data, ``qm9_limit<N>.npz`` for a limited build.

    Parameters
    ----------
    cache_dir
        Cache directory; None for :func:`default_cache_dir`.
    limit
        The limit of a test-only cache; None for the full data set.

    Returns
    -------
    pathlib.Path
        The cache file (it may not exist yet).
    """
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
        The file's molecules, as read-only arrays, with ``limit`` recorded.

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
        raw = read_npz(path)
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


def write_cache(path: str | os.PathLike, raw: Mapping[str, np.ndarray]) -> None:
    """Write raw cache arrays atomically (temporary file in the same directory, then ``os.replace``).

    Parameters
    ----------
    path
        The ``.npz`` cache file; its folder is created if needed.
    raw
        The arrays, as from :func:`~equinb.data.qm9.parse_qm9` (check them with :func:`validate_cache` first).
    """
    write_npz(path, raw)


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
    cache_dir: str | os.PathLike | None = None, *, limit: int | None = None, progress: bool | None = None
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
        A progress bar on stderr while parsing: ``None`` (default) only on a terminal (never on a book
        page), ``True``/``False`` always/never.

    Returns
    -------
    QM9Arrays
        All 130,831 molecules (or the first ``limit``), as read-only arrays.

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

