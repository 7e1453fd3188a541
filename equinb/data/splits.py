"""Subsets, splits and label normalisation: which molecules a run uses, how they are split, how labels are scaled.

Subsets and splits are rows of :class:`~equinb.data.molecules.QM9Arrays`, drawn with seeded generators (same
seed, same rows) and persisted with a run (:func:`save_split`, :func:`load_split`). Normalisation is a separate,
fitted :class:`Normalizer` (fitted on the training split only) that the training code applies to ``y`` and to
the model output; graphs keep the raw eV. Nothing normalised is ever stored, so a split, a cache and a
normaliser can't disagree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .constants import DEFAULT_FRACTIONS, DEFAULT_SEED, SPLIT_NAMES
from .npz import read_npz, write_npz

if TYPE_CHECKING:
    import torch


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

    Parameters
    ----------
    n
        Number of items to split.
    fractions
        Fractions of (train, val, test); default (0.8, 0.1, 0.1).

    Returns
    -------
    tuple of int
        ``(n_train, n_val, n_test)``, each at least 1, summing to ``n``.

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

    Parameters
    ----------
    path
        The file to write, e.g. a run folder's ``split.npz``; its folder is created if needed.
    split
        Rows per split, as from :func:`split_indices`; stored as int64.

    Raises
    ------
    ValueError
        If the split lacks one of the three names or its parts overlap.
    """
    write_npz(path, _check_split(split))


def load_split(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a split written by :func:`save_split`.

    Parameters
    ----------
    path
        A split file, e.g. a run folder's ``split.npz``.

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
    return _check_split(read_npz(path))


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

        Parameters
        ----------
        values
            The training labels (any shape; flattened).

        Returns
        -------
        Normalizer
            ``mean`` and ``std`` of ``values``.

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

    def normalize(self, y: float | np.ndarray | torch.Tensor) -> float | np.ndarray | torch.Tensor:
        """``(y - mean) / std``.

        Parameters
        ----------
        y
            Labels in their own unit (eV for the energy).

        Returns
        -------
        float, numpy.ndarray or torch.Tensor
            Normalised labels, of the type of ``y``.
        """
        return (y - self.mean) / self.std

    def denormalize(self, y: float | np.ndarray | torch.Tensor) -> float | np.ndarray | torch.Tensor:
        """``y * std + mean``, the inverse of :meth:`normalize`.

        Parameters
        ----------
        y
            Normalised labels (e.g. a model's output).

        Returns
        -------
        float, numpy.ndarray or torch.Tensor
            Labels in their own unit, of the type of ``y``.
        """
        return y * self.std + self.mean

    def to_dict(self) -> dict[str, float]:
        """``{"mean": ..., "std": ...}`` for a run's JSON files.

        Returns
        -------
        dict of str to float
        """
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, values: Mapping[str, float]) -> Normalizer:
        """Inverse of :meth:`to_dict`.

        Parameters
        ----------
        values
            A mapping with ``"mean"`` and ``"std"``.

        Returns
        -------
        Normalizer
        """
        return cls(mean=float(values["mean"]), std=float(values["std"]))


def fit_normalizer(energy: np.ndarray, split: Mapping[str, np.ndarray]) -> Normalizer:
    """Fit a :class:`Normalizer` on the training rows only: ``Normalizer.fit(energy[split["train"]])``.

    Parameters
    ----------
    energy
        ``(N,)`` labels of all rows, e.g. ``arrays.energy``.
    split
        Rows per split; only ``split["train"]`` is read.

    Returns
    -------
    Normalizer
        The training rows' mean and standard deviation.

    Raises
    ------
    ValueError
        If there is no ``"train"`` part (or it is too small, see :meth:`Normalizer.fit`).
    """
    if "train" not in split:
        raise ValueError(f"split needs a 'train' part, has {list(split)}")
    return Normalizer.fit(np.asarray(energy)[np.asarray(split["train"], dtype=np.int64)])

