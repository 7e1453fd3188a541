"""PHATE projections of embeddings and the normalised spacial score (nSPS) that colours them.

PHATE (Moon et al., 2019) turns distances into a diffusion between neighbours and embeds the diffusion
potentials in two dimensions; we call it as the study did (``knn=10``), with a fixed ``random_state`` so a
projection is reproducible. nSPS (Krzyzanowski et al., 2023) is RDKit's
``rdkit.Chem.SpacialScore.SPS(mol, normalize=True)`` on the molecule built (and sanitised) from its SMILES; a
SMILES RDKit rejects gets NaN and is counted, never dropped silently.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .embeddings import LayerEmbeddings

#: PHATE's neighbourhood size, as in the study.
KNN = 10
#: Default ``random_state`` of the projections.
PHATE_SEED = 21616


def subsample(n: int, size: int | None, seed: int = PHATE_SEED) -> np.ndarray:
    """Sorted indices of a seeded random subset of ``size`` out of ``n`` items (all of them if ``size`` is None
    or at least ``n``).

    Raises
    ------
    ValueError
        If ``size`` is below 1.
    """
    if size is not None and size < 1:
        raise ValueError(f"subsample size must be positive or None, got {size}")
    if size is None or size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Within the block, the named logger passes on errors only (a filter: PHATE resets the levels itself)."""
    logger = logging.getLogger(logger_name)
    logger.addFilter(_errors_only)
    try:
        yield
    finally:
        logger.removeFilter(_errors_only)


def phate_projection(features: np.ndarray, knn: int = KNN, seed: int = PHATE_SEED, quiet: bool = True) -> np.ndarray:
    """Two-dimensional PHATE projection of ``(n, d)`` features.

    With ``quiet`` the warnings of PHATE's SGD-MDS step (logged through ``graphtools``) are silenced: at a few
    hundred points its stress typically still changes by a few percent over the last iterations, so read the
    layouts as approximate.

    Raises
    ------
    ValueError
        If there are not more points than ``knn`` or the features are not finite.
    """
    import phate

    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) <= knn:
        raise ValueError(f"PHATE with knn={knn} needs more than {knn} points as an (n, d) array, got {features.shape}")
    if not np.isfinite(features).all():
        raise ValueError("the features hold NaN or infinite values")
    operator = phate.PHATE(n_components=2, knn=knn, random_state=seed, verbose=0)
    if not quiet:
        return np.asarray(operator.fit_transform(features))
    with _quiet("graphtools"):
        return np.asarray(operator.fit_transform(features))


def project_layer(embeddings: LayerEmbeddings, view: str = "raw", indices: np.ndarray | None = None,
                  knn: int = KNN, seed: int = PHATE_SEED, gram: bool = False) -> dict[str | int, np.ndarray]:
    """PHATE projections of the joint embedding and of each order, the panels of the study's figures.

    Parameters
    ----------
    embeddings
        One layer's embeddings.
    view
        ``"raw"`` (as the study) or ``"invariant"`` (see :meth:`LayerEmbeddings.view`).
    indices
        Rows of ``embeddings`` to project (e.g. from :func:`subsample`); default all.
    knn, seed
        PHATE's neighbourhood size and ``random_state``.
    gram
        Gram-matrix invariants (``view="invariant"`` only).

    Returns
    -------
    dict
        ``{"joint": (m, 2), l: (m, 2) for each order}``, in that order.
    """
    keep = np.arange(len(embeddings.rows)) if indices is None else np.asarray(indices)
    panels: dict[str | int, np.ndarray] = {
        "joint": phate_projection(embeddings.view(None, view, gram)[keep], knn, seed)
    }
    for l in embeddings.orders:
        panels[l] = phate_projection(embeddings.view(l, view, gram)[keep], knn, seed)
    return panels


@dataclass(frozen=True)
class NSPS:
    """nSPS of a list of molecules.

    Attributes
    ----------
    values
        ``(n,)`` float64; NaN where RDKit rejected the SMILES.
    failed
        Positions (in the input order) of the rejected SMILES.
    """

    values: np.ndarray
    failed: tuple[int, ...]

    @property
    def n_failed(self) -> int:
        """How many SMILES RDKit rejected."""
        return len(self.failed)


def molecule_from_smiles(smiles: str):
    """The sanitised RDKit molecule of ``smiles``, or None if RDKit rejects it (quietly)."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    try:
        return Chem.MolFromSmiles(smiles)
    finally:
        RDLogger.EnableLog("rdApp.*")


def nsps(smiles: Sequence[str]) -> NSPS:
    """Normalised spacial score of each SMILES (RDKit ``SPS(mol, normalize=True)``), NaN for rejected ones."""
    from rdkit.Chem import SpacialScore

    values = np.full(len(smiles), np.nan)
    failed = []
    for i, text in enumerate(smiles):
        mol = molecule_from_smiles(text)
        if mol is None:
            failed.append(i)
        else:
            values[i] = SpacialScore.SPS(mol, normalize=True)
    return NSPS(values, tuple(failed))
