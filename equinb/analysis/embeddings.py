"""Graph embeddings of a finished run, split per order ``l``, as raw components or rotation invariants.

A layer's features are laid out as ``h x L`` (:func:`equinb.so3.irreps_for`): for every ``l`` a block of
``h * (2l + 1)`` columns, ``h`` copies of a ``(2l + 1)``-vector, copy-major. The split per ``l`` follows
``Irreps.slices()`` (:func:`equinb.so3.feature_slices`). The study cut the columns into chunks of ``h``
(:func:`multiplicity_split`), so its panels labelled ``l > 0`` held pieces of whichever blocks those columns
happen to fall in; :func:`split_sources` says which.

Two views of each ``l``:

* **raw**: the ``h * (2l + 1)`` components, what the study projected. For ``l > 0`` they rotate with the
  molecule (Wigner-D matrices), so distances between molecules depend on how each molecule happens to be
  oriented in its QM9 frame.
* **invariant**: for ``l = 0`` the ``h`` scalars themselves (already invariant); for ``l > 0`` the norm over
  ``m`` of each of the ``h`` channels, or, with ``gram=True``, the upper triangle of the ``h x h`` Gram matrix of
  inner products between channels (its diagonal holds the squared norms). Both are unchanged when the molecule
  is rotated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from e3nn import o3

from .. import data
from ..model import EquivariantModel
from ..runs import RunFolder
from ..so3 import feature_slices
from ..target import Target
from ..trained import load_model, run_data

#: Views of an order's features accepted by :meth:`LayerEmbeddings.view`.
VIEWS = ("raw", "invariant")


def check_layer(model: EquivariantModel, layer: str) -> str:
    """Return ``layer`` if ``model`` has a block of that name.

    Raises
    ------
    ValueError
        Naming the layer and the layers the model has.
    """
    if layer not in model.layer_names:
        raise ValueError(f"the model has no layer {layer!r}; its layers are {list(model.layer_names)}")
    return layer


def check_orders(irreps: o3.Irreps, orders: Iterable[int]) -> list[int]:
    """Return ``orders`` as a list if every one occurs in ``irreps``.

    Raises
    ------
    ValueError
        Naming the first order the irreps lack.
    """
    have = sorted(feature_slices(irreps))
    orders = [int(l) for l in orders]
    for l in orders:
        if l not in have:
            raise ValueError(f"the features {irreps} have no order l={l}; their orders are {have}")
    return orders


def default_layer(model: EquivariantModel) -> str:
    """The layer to analyse by default: the second-to-last block, the last one whose ``l > 0`` outputs train.

    Under the scalar readout the last block's ``l > 0`` outputs get no gradient (see :mod:`equinb.model`).
    """
    return model.layer_names[-2]


def split_by_l(features: np.ndarray, irreps: o3.Irreps) -> dict[int, np.ndarray]:
    """Split ``(n, irreps.dim)`` features into ``{l: (n, mul, 2l + 1)}`` blocks, following ``Irreps.slices()``.

    Raises
    ------
    ValueError
        If the number of columns is not ``irreps.dim``.
    """
    irreps = o3.Irreps(irreps)
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[1] != irreps.dim:
        raise ValueError(f"features of shape {features.shape} do not match {irreps} (dim {irreps.dim})")
    out = {}
    for (mul, ir), (l, columns) in zip(irreps, feature_slices(irreps).items()):
        out[l] = features[:, columns].reshape(len(features), mul, 2 * l + 1)
    return out


def multiplicity_split(irreps: o3.Irreps) -> dict[int, slice]:
    """The study's split: the ``k``-th order of ``irreps`` gets columns ``k*mul .. (k+1)*mul``.

    This is what cutting the columns at the cumulative multiplicities does; it agrees with the true split only
    for ``l = 0``. Kept to show what the study's panels contained (:func:`split_sources`), not for analysis.
    """
    irreps = o3.Irreps(irreps)
    out, start = {}, 0
    for mul, ir in irreps:
        out[ir.l] = slice(start, start + mul)
        start += mul
    return out


def split_sources(irreps: o3.Irreps, columns: dict[int, slice]) -> list[dict]:
    """Which true orders, channels and components the column ranges ``columns`` hold.

    Parameters
    ----------
    irreps
        Layout of the features.
    columns
        ``{label: slice}``, e.g. :func:`multiplicity_split`.

    Returns
    -------
    list of dict
        One row per label and true order it touches: ``label``, ``columns`` (``"a-b"``, inclusive), ``true_l``,
        ``channels`` (the channel range, inclusive) and ``n_columns``.
    """
    true = feature_slices(irreps)
    rows = []
    for label, cols in columns.items():
        for l, block in true.items():
            lo, hi = max(cols.start, block.start), min(cols.stop, block.stop)
            if lo >= hi:
                continue
            width = 2 * l + 1
            rows.append({
                "label": label,
                "columns": f"{lo}-{hi - 1}",
                "true_l": l,
                "channels": f"{(lo - block.start) // width}-{(hi - 1 - block.start) // width}",
                "n_columns": hi - lo,
            })
    return rows


def invariant_features(block: np.ndarray, l: int, gram: bool = False) -> np.ndarray:
    """Rotation-invariant features of one order's ``(n, mul, 2l + 1)`` block.

    Parameters
    ----------
    block
        Features of order ``l``, as from :func:`split_by_l`.
    l
        The order.
    gram
        For ``l > 0``: return the upper triangle (diagonal included) of the ``mul x mul`` Gram matrix
        ``G[u, v] = sum_m x[u, m] x[v, m]`` instead of the ``mul`` norms.

    Returns
    -------
    numpy.ndarray
        ``(n, mul)`` for ``l = 0`` (the scalars) or norms; ``(n, mul * (mul + 1) / 2)`` for the Gram view.
    """
    block = np.asarray(block)
    if block.ndim != 3 or block.shape[2] != 2 * l + 1:
        raise ValueError(f"a block of order {l} must have shape (n, mul, {2 * l + 1}), got {block.shape}")
    if l == 0:
        return block[:, :, 0]
    if not gram:
        return np.linalg.norm(block, axis=2)
    g = np.einsum("num,nvm->nuv", block, block)
    upper = np.triu_indices(block.shape[1])
    return g[:, upper[0], upper[1]]


@dataclass(frozen=True, eq=False)
class LayerEmbeddings:
    """Graph embeddings (sums over atoms) of one layer for a set of molecules.

    Attributes
    ----------
    layer
        Name of the layer (``"initial"``, ``"conv_0"``, ...).
    irreps
        Layout of the feature columns.
    features
        ``(n, irreps.dim)`` float64.
    rows
        ``(n,)`` QM9 rows of the molecules (see :class:`equinb.data.QM9Arrays`).
    """

    layer: str
    irreps: o3.Irreps
    features: np.ndarray
    rows: np.ndarray

    @property
    def orders(self) -> list[int]:
        """The orders ``l`` present, ascending."""
        return sorted(feature_slices(self.irreps))

    def block(self, l: int) -> np.ndarray:
        """``(n, mul, 2l + 1)`` features of order ``l``; ValueError if the layer has no such order."""
        check_orders(self.irreps, [l])
        return split_by_l(self.features, self.irreps)[l]

    def view(self, l: int | None, view: str = "raw", gram: bool = False) -> np.ndarray:
        """Features of order ``l`` (``None``: all orders jointly) in the given view.

        Parameters
        ----------
        l
            The order, or None for the joint embedding (all orders, concatenated in order).
        view
            ``"raw"`` (the components) or ``"invariant"`` (see :func:`invariant_features`).
        gram
            Gram-matrix invariants instead of norms (``view="invariant"`` only).

        Returns
        -------
        numpy.ndarray
            ``(n, k)``.
        """
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}; choose one of {VIEWS}")
        orders = self.orders if l is None else [l]
        blocks = [self.block(order) for order in orders]
        if view == "raw":
            return np.concatenate([b.reshape(len(b), -1) for b in blocks], axis=1)
        return np.concatenate([invariant_features(b, o, gram) for b, o in zip(blocks, orders)], axis=1)


@dataclass(frozen=True, eq=False)
class TestSet:
    """A finished run's trained model and the first molecules of its own test split.

    Attributes
    ----------
    run
        The run folder.
    model
        The trained model, in eval mode.
    target
        The run's label transform (:class:`equinb.target.Target`).
    arrays
        QM9.
    rows
        ``(n,)`` QM9 rows of the molecules, in test-split order.
    graphs
        Their graphs, built as the run built them.
    """

    run: RunFolder
    model: EquivariantModel
    target: Target
    arrays: data.QM9Arrays
    rows: np.ndarray
    graphs: list

    @property
    def smiles(self) -> list[str]:
        """SMILES of the molecules."""
        return [str(self.arrays.smiles[row]) for row in self.rows]

    @property
    def energy(self) -> np.ndarray:
        """``(n,)`` U0 atomization energies in eV."""
        return np.asarray(self.arrays.energy[self.rows], dtype=np.float64)


def load_test_set(run: RunFolder, n_molecules: int | None = None, device: str | torch.device = "cpu") -> TestSet:
    """The trained model of a finished run and the first ``n_molecules`` of its test split.

    Raises
    ------
    ValueError
        If the folder is missing or not a finished run (the message names it), or ``n_molecules < 1``.
    """
    run.require_finished()
    if n_molecules is not None and n_molecules < 1:
        raise ValueError(f"n_molecules must be positive or None, got {n_molecules}")
    model, target = load_model(run, device)
    loaded = run_data(run, ["test"], limit=n_molecules)
    rows = np.asarray(loaded.split["test"][:n_molecules], dtype=np.int64)
    return TestSet(run, model, target, loaded.arrays, rows, loaded.graphs["test"])


def block_outputs(model: EquivariantModel) -> tuple[dict[str, torch.Tensor], list]:
    """Forward hooks that keep every block's latest output: ``(outputs by layer, handles to remove)``."""
    outputs: dict[str, torch.Tensor] = {}
    handles = [
        block.register_forward_hook(lambda module, inputs, output, name=name: outputs.__setitem__(name, output))
        for name, block in model.blocks.items()
    ]
    return outputs, handles


@torch.no_grad()
def embed_graphs(model: EquivariantModel, graphs: Sequence, layers: Iterable[str] | None = None,
                 batch_size: int = 64) -> dict[str, np.ndarray]:
    """Graph features (sums over atoms) of ``graphs`` at ``layers`` (default: all), as float64 arrays.

    Raises
    ------
    ValueError
        For a layer the model does not have.
    """
    layers = list(model.layer_names if layers is None else layers)
    for layer in layers:
        check_layer(model, layer)
    device = next(model.parameters()).device
    parts: dict[str, list[np.ndarray]] = {layer: [] for layer in layers}
    for batch in data.make_loader(graphs, batch_size=batch_size, shuffle=False):
        for out in model.embed(batch.to(device)):
            if out.name in parts:
                parts[out.name].append(out.graph_features.double().cpu().numpy())
    width = model.irreps_hidden.dim
    return {layer: np.concatenate(p) if p else np.zeros((0, width)) for layer, p in parts.items()}


def embed(test: TestSet, layers: Iterable[str] | None = None,
          model: EquivariantModel | None = None) -> dict[str, LayerEmbeddings]:
    """:class:`LayerEmbeddings` of the test molecules at ``layers`` (default: all).

    Parameters
    ----------
    test
        From :func:`load_test_set`.
    layers
        Layer names.
    model
        Another model of the same architecture to embed with (e.g. :func:`~equinb.analysis.initial_model`);
        default ``test.model``.
    """
    model = test.model if model is None else model
    features = embed_graphs(model, test.graphs, layers)
    return {
        layer: LayerEmbeddings(layer, model.irreps_hidden, values, test.rows) for layer, values in features.items()
    }
