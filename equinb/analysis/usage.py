"""Is an order used? Per-molecule measures with intervals, for trained runs.

Three measures the zero-knockout of :mod:`~equinb.analysis.utilisation` cannot replace:

Mean-ablation (:func:`mean_ablation`)
    The order-``l`` columns of a block's output are replaced by their mean over the training molecules' atoms
    (:func:`feature_means`), at one block or at every block at once. Zeroing ``l = 0`` also removes a mean (a
    bias the next layer relies on) and so overstates its use; replacing by the mean removes only what varies
    between atoms. Knocking out one block cannot show an order unused when earlier blocks already wrote it into
    the scalars of the residual stream; ablating it at every block (``layer = "all"``) can. The measure is the
    increase of the test MAE, per molecule ``|error ablated| - |error intact|`` averaged, with a bootstrap
    interval over the test molecules.
Per-element mean-ablation (:func:`element_feature_means`, the same :func:`mean_ablation`)
    Replacing an order by its mean over all atoms also removes its mean energy contribution per element (an
    order can carry a per-element offset that a composition fit would absorb), which overstates its use. Replacing
    each atom's order-``l`` features by their mean over the training atoms *of the same element* keeps that
    contribution and removes only what varies between atoms of an element: measure
    ``element_mean_ablation_mae_increase_ev``, reported beside the all-atom one.
Input-gradient attribution (:func:`gradient_measures`)
    Gradient times input, per order, of the predicted energy with respect to a block's output features
    (saliency in the sense of Simonyan et al., the study's suggestion in its A.5.2): for molecule ``n``,
    ``sum over atoms and channels of |sum_m dE/dx * x|``, in eV. Summing over ``m`` first makes it a rotation
    invariant. For the last block's ``l = 0`` the signed sum equals the predicted energy less the references
    and the output bias exactly (the readout is linear).
Feature energy and loss gradient (:func:`gradient_measures`, the same pass)
    Per molecule, the share of the feature energy (squared norm) in each order and the norm of the gradient of
    the molecule's squared error with respect to the order's features, both with bootstrap intervals.

The last block's ``l > 0`` outputs are never read by the readout, so they receive no gradient: every row says
whether the features it reads were trained (``features_trained``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch

from .. import data
from ..model import EquivariantModel, sum_rows
from ..so3 import feature_slices
from ..stats import LEVEL, N_BOOT, bootstrap_interval
from ..target import Target
from ..trained import predict
from .embeddings import TestSet, block_outputs, check_layer, check_orders

#: Name of the ablation that replaces an order at every block at once.
ALL_BLOCKS = "all"
#: Measures of the ablation by the mean over all atoms and by the mean over the atoms of each element.
MEAN_ABLATION = "mean_ablation_mae_increase_ev"
ELEMENT_MEAN_ABLATION = "element_mean_ablation_mae_increase_ev"


def features_trained(model: EquivariantModel, layer: str, l: int) -> bool:
    """Whether a layer's order-``l`` outputs receive a training gradient: all but the last block's ``l > 0``."""
    return not (layer == model.layer_names[-1] and l > 0)


@torch.no_grad()
def feature_means(model: EquivariantModel, graphs: Sequence, layers: Iterable[str] | None = None,
                  batch_size: int = 64) -> dict[str, torch.Tensor]:
    """Mean over all atoms of ``graphs`` of every block's output features, per column.

    Returns
    -------
    dict
        ``{layer: (irreps_hidden.dim,) float64 tensor}`` for ``layers`` (default: all).

    Raises
    ------
    ValueError
        For an unknown layer or no atoms.
    """
    layers = [check_layer(model, layer) for layer in (model.layer_names if layers is None else layers)]
    device = next(model.parameters()).device
    sums = {layer: torch.zeros(model.irreps_hidden.dim, dtype=torch.float64) for layer in layers}
    n_atoms = 0
    for batch in data.make_loader(graphs, batch_size=batch_size, shuffle=False):
        n_atoms += batch.num_nodes
        for out in model.embed(batch.to(device)):
            if out.name in sums:
                sums[out.name] += out.node_features.double().sum(dim=0).cpu()
    if n_atoms == 0:
        raise ValueError("feature_means needs at least one atom")
    return {layer: total / n_atoms for layer, total in sums.items()}


@torch.no_grad()
def element_feature_means(model: EquivariantModel, graphs: Sequence, layers: Iterable[str] | None = None,
                          batch_size: int = 64) -> dict[str, torch.Tensor]:
    """Mean of every block's output features over the atoms of each element of ``graphs``, per column.

    Returns
    -------
    dict
        ``{layer: (n_elements, irreps_hidden.dim) float64 tensor}``, row ``z`` for atomic number ``z`` (the rows
        of the model's atom embedding); an element without atoms in ``graphs`` gets the mean over all atoms.

    Raises
    ------
    ValueError
        For an unknown layer or no atoms.
    """
    layers = [check_layer(model, layer) for layer in (model.layer_names if layers is None else layers)]
    device = next(model.parameters()).device
    n_elements = model.atom_embedding.num_embeddings
    sums = {layer: torch.zeros(n_elements, model.irreps_hidden.dim, dtype=torch.float64) for layer in layers}
    counts = torch.zeros(n_elements, dtype=torch.float64)
    for batch in data.make_loader(graphs, batch_size=batch_size, shuffle=False):
        z = batch.z.cpu()
        counts += torch.bincount(z, minlength=n_elements).double()
        for out in model.embed(batch.to(device)):
            if out.name in sums:
                sums[out.name].index_add_(0, z, out.node_features.double().cpu())
    if counts.sum() == 0:
        raise ValueError("element_feature_means needs at least one atom")
    present = counts > 0
    means = {}
    for layer, total in sums.items():
        mean = total.sum(0) / counts.sum()
        means[layer] = torch.where(present[:, None], total / counts.clamp(min=1)[:, None], mean)
    return means


@contextmanager
def mean_ablated(model: EquivariantModel, layers: Iterable[str], l: int,
                 means: Mapping[str, torch.Tensor]) -> Iterator[None]:
    """Within the block, the order-``l`` outputs of every block in ``layers`` are replaced by ``means[layer]``:
    one mean for all atoms (``(dim,)``, :func:`feature_means`) or one per element (``(n_elements, dim)``,
    :func:`element_feature_means`, read at each atom's atomic number in the forward pass).

    Raises
    ------
    ValueError
        For an unknown layer or order, a layer without means, or per-element means outside ``model(batch)``.
    """
    columns = feature_slices(model.irreps_hidden)[check_orders(model.irreps_hidden, [l])[0]]
    handles = []
    atoms: dict[str, torch.Tensor] = {}

    def hook_for(mean: torch.Tensor):
        def replace(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
            output = output.clone()
            if mean.dim() == 1:
                output[:, columns] = mean.to(output)
            elif "z" not in atoms:
                raise ValueError("per-element means need the atomic numbers: call model(batch) inside mean_ablated")
            else:
                output[:, columns] = mean.to(output)[atoms["z"]]
            return output
        return replace

    layers = [check_layer(model, layer) for layer in layers]
    missing = [layer for layer in layers if layer not in means]
    if missing:
        raise ValueError(f"no feature means for layer(s) {missing}; compute them with feature_means")
    try:
        handles.append(model.register_forward_pre_hook(lambda module, inputs: atoms.__setitem__("z", inputs[0].z)))
        for layer in layers:
            handles.append(model.blocks[layer].register_forward_hook(hook_for(means[layer][..., columns])))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _row(layer: str, l: int, measure: str, values: np.ndarray, trained: bool, level: float, n_boot: int,
         seed: int) -> dict:
    value, low, high = bootstrap_interval(values, level, n_boot, seed)
    return {"layer": layer, "l": l, "measure": measure, "value": value, "ci_low": low, "ci_high": high,
            "n_molecules": int(np.isfinite(values).sum()), "features_trained": trained}


def mean_ablation(test: TestSet, means: Mapping[str, torch.Tensor], layers: Iterable[str] | None = None,
                  orders: Iterable[int] | None = None, all_blocks: bool = True, level: float = LEVEL,
                  n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Increase of the test MAE when an order is replaced by its training mean, with a bootstrap interval.

    Parameters
    ----------
    test
        Trained model and test molecules.
    means
        From :func:`feature_means` on the run's training molecules (measure
        ``mean_ablation_mae_increase_ev``), or from :func:`element_feature_means` (per element:
        ``element_mean_ablation_mae_increase_ev``).
    layers, orders
        Blocks to ablate one at a time and orders (default: all).
    all_blocks
        Also ablate each order at every block at once (``layer = "all"``).
    level, n_boot, seed
        Bootstrap interval over test molecules.

    Returns
    -------
    pandas.DataFrame
        One row per (layer, l): ``measure`` (see ``means``), ``value``, ``ci_low``,
        ``ci_high``, ``n_molecules``, ``features_trained``, plus ``intact_mae_ev``.
    """
    model = test.model
    layers = [check_layer(model, layer) for layer in (model.layer_names if layers is None else layers)]
    orders = check_orders(model.irreps_hidden, model.config.L if orders is None else orders)
    true, intact = predict(model, test.graphs, test.target)
    intact_error = np.abs(intact - true)
    plan = [([layer], layer) for layer in layers] + ([(list(model.layer_names), ALL_BLOCKS)] if all_blocks else [])
    per_element = next(iter(means.values())).dim() == 2
    measure = ELEMENT_MEAN_ABLATION if per_element else MEAN_ABLATION
    rows = []
    for ablate, name in plan:
        for l in orders:
            with mean_ablated(model, ablate, l, means):
                _, predicted = predict(model, test.graphs, test.target)
            trained = any(features_trained(model, layer, l) for layer in ablate)
            rows.append(_row(name, l, measure, np.abs(predicted - true) - intact_error,
                             trained, level, n_boot, seed) | {"intact_mae_ev": float(intact_error.mean())})
    return pd.DataFrame(rows)


def gradient_measures(model: EquivariantModel, graphs: Sequence, target: Target,
                      layers: Iterable[str] | None = None,
                      batch_size: int = 32) -> dict[tuple[str, int], dict[str, np.ndarray]]:
    """Per molecule and per (layer, l): attribution, feature-energy share and loss-gradient norm, in one pass.

    One forward and one backward per batch: the gradient ``g`` of the predicted energies (normalised units) with
    respect to each block's output gives the attribution ``scale * g * x`` and, because a molecule's features
    reach only its own prediction, the gradient of its squared error ``2 (prediction - label) g``.

    Returns
    -------
    dict
        ``{(layer, l): {name: (n,) array}}`` with names ``attribution_ev`` (gradient times input, in eV:
        ``sum over atoms and channels of |sum_m dE/dx * x|``), ``attribution_signed_ev`` (the same without the
        absolute value), ``feature_energy_share`` (the order's share of the squared feature norm) and
        ``loss_gradient_norm`` (norm of the gradient of the molecule's squared error in the run's normalised
        units, its share of the training loss).
    """
    layers = [check_layer(model, layer) for layer in (model.layer_names if layers is None else layers)]
    slices = feature_slices(model.irreps_hidden)
    device = next(model.parameters()).device
    scale = float(target.normalizer.std)
    parts: dict[tuple[str, int], dict[str, list]] = {(layer, l): {} for layer in layers for l in slices}
    outputs, handles = block_outputs(model)
    try:
        for batch in data.make_loader(graphs, batch_size=batch_size, shuffle=False):
            batch = batch.to(device)
            with torch.enable_grad():
                prediction = model(batch)
                grads = torch.autograd.grad(prediction.sum(), [outputs[layer] for layer in layers])
            residual = 2 * (prediction.detach() - target.encode(batch)).double().abs()
            for layer, grad in zip(layers, grads):
                x, grad = outputs[layer].detach().double(), grad.double()
                energy = {l: sum_rows(x[:, c].pow(2).sum(1), batch.batch, batch.num_graphs) for l, c in slices.items()}
                total = sum(energy.values())
                for l, columns in slices.items():
                    product = scale * (grad[:, columns] * x[:, columns]).reshape(len(x), -1, 2 * l + 1).sum(-1)
                    values = {
                        "attribution_ev": sum_rows(product.abs().sum(1), batch.batch, batch.num_graphs),
                        "attribution_signed_ev": sum_rows(product.sum(1), batch.batch, batch.num_graphs),
                        "feature_energy_share": energy[l] / total,
                        "loss_gradient_norm": residual * sum_rows(grad[:, columns].pow(2).sum(1), batch.batch,
                                                                  batch.num_graphs).sqrt(),
                    }
                    for name, value in values.items():
                        parts[layer, l].setdefault(name, []).append(value.cpu().numpy())
    finally:
        for handle in handles:
            handle.remove()
    return {key: {name: np.concatenate(v) for name, v in value.items()} for key, value in parts.items()}


def usage_table(test: TestSet, means: Mapping[str, torch.Tensor], layers: Iterable[str] | None = None,
                level: float = LEVEL, n_boot: int = N_BOOT, seed: int = 0,
                element_means: Mapping[str, torch.Tensor] | None = None) -> pd.DataFrame:
    """Every per-molecule measure of one trained run, one row per (layer, l, measure), with intervals.

    Measures: ``mean_ablation_mae_increase_ev`` (each block and ``"all"``), with ``element_means``
    (:func:`element_feature_means`) also ``element_mean_ablation_mae_increase_ev``, ``attribution_ev`` (gradient
    times input, absolute), ``feature_energy_share`` and ``loss_gradient_norm``.

    Returns
    -------
    pandas.DataFrame
        Columns ``layer``, ``l``, ``measure``, ``value``, ``ci_low``, ``ci_high``, ``n_molecules``,
        ``features_trained``.
    """
    model = test.model
    layers = [check_layer(model, layer) for layer in (model.layer_names if layers is None else layers)]
    rows = mean_ablation(test, means, layers, level=level, n_boot=n_boot, seed=seed).drop(columns="intact_mae_ev")
    if element_means is not None:
        per_element = mean_ablation(test, element_means, layers, level=level, n_boot=n_boot, seed=seed)
        rows = pd.concat([rows, per_element.drop(columns="intact_mae_ev")], ignore_index=True)
    extra = [
        _row(layer, l, name, values, features_trained(model, layer, l), level, n_boot, seed)
        for (layer, l), measures in gradient_measures(model, test.graphs, test.target, layers).items()
        for name, values in measures.items() if name != "attribution_signed_ev"
    ]
    return pd.concat([rows, pd.DataFrame(extra)], ignore_index=True)
