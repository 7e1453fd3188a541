"""Graphs and loaders: the PyG ``Data`` of a molecule (bond or radius edges) and seeded ``DataLoader`` objects.

``graph="bonds"`` (default, the study's setting): the chemical bonds, as directed edges both ways, from RDKit's
connectivity perception on the 3D geometry (:func:`~equinb.data.molecules.perceive_bonds`), computed once and
cached. ``graph="radius"``: all ordered pairs of distinct atoms closer than ``cutoff`` Å, computed per molecule
with plain torch. Graphs keep the **raw eV** in ``Data.y``; normalisation is applied by the training code
(:class:`~equinb.data.splits.Normalizer`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from .constants import DEFAULT_CUTOFF, DEFAULT_SEED, GRAPH_KINDS
from .molecules import QM9Arrays


def check_graph(graph: str, cutoff: float) -> None:
    """Check a graph kind and, for ``"radius"``, its cutoff.

    Raises
    ------
    ValueError
        For a kind not in :data:`GRAPH_KINDS`, or a radius cutoff that is not a positive finite number of Å.
    """
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
    check_graph(graph, cutoff)
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

    Parameters
    ----------
    arrays
        The data.
    indices
        Rows of the molecules, e.g. one part of a split.
    graph
        ``"bonds"`` or ``"radius"``.
    cutoff
        Radius in Å for ``graph="radius"`` (ignored for bonds).

    Returns
    -------
    list of torch_geometric.data.Data

    Raises
    ------
    ValueError
        For an unknown graph kind or a non-positive cutoff (checked before any work).
    IndexError
        For a row out of range.
    """
    check_graph(graph, cutoff)
    return [build_graph(arrays, int(i), graph=graph, cutoff=cutoff) for i in np.asarray(indices).ravel()]


def make_loader(
    dataset: Sequence[Data], batch_size: int = 32, shuffle: bool = False, seed: int = DEFAULT_SEED
) -> DataLoader:
    """A PyG ``DataLoader``; with ``shuffle`` its order comes from a ``torch.Generator`` seeded with ``seed``,
    so the same seed gives the same batches, independent of the global torch RNG.

    Parameters
    ----------
    dataset
        Graphs, e.g. from :func:`make_dataset`.
    batch_size
        Graphs per batch (the last batch may be smaller).
    shuffle
        Shuffle the order (anew for each pass over the loader, from one seeded generator).
    seed
        Seed of the shuffling; ignored without ``shuffle``.

    Returns
    -------
    torch_geometric.loader.DataLoader

    Raises
    ------
    ValueError
        If ``batch_size`` is not a positive integer.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    generator = torch.Generator().manual_seed(int(seed)) if shuffle else None
    return DataLoader(list(dataset), batch_size=int(batch_size), shuffle=shuffle, generator=generator)
