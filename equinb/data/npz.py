"""Reading and writing ``.npz`` archives: written atomically, read without pickles (the cache and split files)."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping

import numpy as np

from ..runs import atomic_write_bytes


def write_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed ``.npz`` to ``path``, atomically (:func:`equinb.runs.atomic_write_bytes`).

    Parameters
    ----------
    path
        The file to write; its folder is created if needed.
    arrays
        Name -> array; stored under these names.
    """
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` file, refusing pickled content.

    Parameters
    ----------
    path
        The ``.npz`` file.

    Returns
    -------
    dict of str to numpy.ndarray
        Name -> array, in the archive's order.

    Raises
    ------
    FileNotFoundError
        If there is no file.
    ValueError
        If an array holds pickled objects; other errors for a file that is not a valid archive.
    """
    with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}
