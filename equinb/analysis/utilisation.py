"""Does the model use its orders? Four measures, per layer and per order ``l``.

Knockout (:func:`knockout`)
    Test MAE when the ``l`` columns of one block's output are set to zero (a forward hook on the block), against
    the intact model. Zeroing at a block also removes what later blocks would have computed from those features.
Feature energy (:func:`feature_energy`)
    The share of the mean squared norm of the per-atom features carried by each ``l``, next to its share of the
    columns, ``h (2l + 1) / dim``.
Training signal (:func:`gradient_norms`, :func:`radial_drift`, :func:`message_share`)
    The norm of the loss gradient with respect to each block's ``l`` outputs on one batch, and how far each
    tensor-product path's radial-MLP output weights moved from their initialisation. Training builds the model
    right after ``torch.manual_seed(config["seed"])`` (:func:`equinb.train.train`), so :func:`initial_model`
    rebuilds the initial weights exactly. AdamW's decoupled weight decay shrinks every weight by
    ``1 - lr * weight_decay`` per step even where the gradient is zero, so besides the plain relative change the
    drift reports the change beyond that shrinkage (``rel_learned``), which is exactly zero for a path that never
    received a gradient. A conv block's output is its input plus its messages (a residual connection), so even the
    last block's ``l > 0`` outputs carry trained features; :func:`message_share` measures how much of them the
    block itself (untrained, for the last block's ``l > 0``) added.
Predictability (:func:`predictability`)
    Cross-validated R² of a ridge regression from each order's invariant embedding to a molecular property
    (nSPS, the energy).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch

from .. import data, trained
from ..model import EquivariantModel, InteractionBlock
from ..runs import RunFolder
from ..so3 import feature_slices
from ..stats import LEVEL, bootstrap_interval
from ..target import Target
from ..trained import load_checkpoint, load_model, predict
from .embeddings import LayerEmbeddings, TestSet, block_outputs, check_layer, check_orders

#: Ridge penalties searched (by generalised cross-validation inside each training fold).
RIDGE_ALPHAS = np.logspace(-3, 3, 13)


def _layers_and_orders(model: EquivariantModel, layers: Iterable[str] | None,
                       orders: Iterable[int] | None) -> tuple[list[str], list[int]]:
    layers = [check_layer(model, layer) for layer in (model.layer_names if layers is None else layers)]
    orders = check_orders(model.irreps_hidden, model.config.L if orders is None else orders)
    return layers, orders


@contextmanager
def knocked_out(model: EquivariantModel, layer: str, l: int) -> Iterator[None]:
    """Within the block, the output columns of order ``l`` of block ``layer`` are zero.

    Raises
    ------
    ValueError
        For a layer or an order the model does not have.
    """
    check_layer(model, layer)
    columns = feature_slices(model.irreps_hidden)[check_orders(model.irreps_hidden, [l])[0]]

    def zero(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        output[:, columns] = 0
        return output

    handle = model.blocks[layer].register_forward_hook(zero)
    try:
        yield
    finally:
        handle.remove()


def knockout(test: TestSet, layers: Iterable[str] | None = None, orders: Iterable[int] | None = None) -> pd.DataFrame:
    """Test MAE with each order knocked out at each layer.

    Parameters
    ----------
    test
        Trained model and molecules (:func:`~equinb.analysis.load_test_set`).
    layers, orders
        Which to knock out (default: all).

    Returns
    -------
    pandas.DataFrame
        One row per (layer, l): ``layer``, ``l``, ``mae_ev`` (knocked out), ``intact_mae_ev``,
        ``mae_increase_ev`` and ``max_change_ev`` (largest change of a prediction).
    """
    layers, orders = _layers_and_orders(test.model, layers, orders)
    true, intact = predict(test.model, test.graphs, test.target)
    intact_mae = float(np.mean(np.abs(intact - true)))
    rows = []
    for layer in layers:
        for l in orders:
            with knocked_out(test.model, layer, l):
                _, pred = predict(test.model, test.graphs, test.target)
            mae = float(np.mean(np.abs(pred - true)))
            rows.append({"layer": layer, "l": l, "mae_ev": mae, "intact_mae_ev": intact_mae,
                         "mae_increase_ev": mae - intact_mae, "max_change_ev": float(np.max(np.abs(pred - intact)))})
    return pd.DataFrame(rows)


@torch.no_grad()
def feature_energy(model: EquivariantModel, graphs: Sequence, layers: Iterable[str] | None = None,
                   batch_size: int = 64) -> pd.DataFrame:
    """Share of the per-atom feature energy (mean squared norm) in each order.

    Returns
    -------
    pandas.DataFrame
        One row per (layer, l): ``mean_sq_norm`` (per atom, summed over the order's columns), ``share`` (of the
        layer's total) and ``column_share`` (``h (2l + 1) / dim``, the share if every column carried the same).
    """
    layers, orders = _layers_and_orders(model, layers, None)
    slices = feature_slices(model.irreps_hidden)
    device = next(model.parameters()).device
    sums = {(layer, l): 0.0 for layer in layers for l in orders}
    n_atoms = 0
    for batch in data.make_loader(graphs, batch_size=batch_size, shuffle=False):
        n_atoms += batch.num_nodes
        for out in model.embed(batch.to(device)):
            if out.name in layers:
                for l in orders:
                    sums[out.name, l] += float(out.node_features[:, slices[l]].double().pow(2).sum())
    dim = model.irreps_hidden.dim
    rows = []
    for layer in layers:
        total = sum(sums[layer, l] for l in orders)
        for l in orders:
            rows.append({"layer": layer, "l": l, "mean_sq_norm": sums[layer, l] / max(n_atoms, 1),
                         "share": sums[layer, l] / total if total > 0 else float("nan"),
                         "column_share": (slices[l].stop - slices[l].start) / dim})
    return pd.DataFrame(rows)


def gradient_norms(model: EquivariantModel, graphs: Sequence, target: Target,
                   batch_size: int = 32) -> pd.DataFrame:
    """Norm of the training loss's gradient with respect to each block's output, per order, on one batch.

    The loss is the training loss (MSE on the run's normalised target) of the first ``batch_size`` graphs. The model's
    parameter gradients are left untouched.

    Returns
    -------
    pandas.DataFrame
        One row per (layer, l): ``grad_norm`` (Frobenius norm over the batch's atoms and the order's columns).
    """
    slices = feature_slices(model.irreps_hidden)
    outputs, handles = block_outputs(model)
    batch = next(iter(data.make_loader(graphs, batch_size=batch_size, shuffle=False)))
    batch = batch.to(next(model.parameters()).device)
    try:
        with torch.enable_grad():
            loss = torch.nn.functional.mse_loss(model(batch), target.encode(batch))
            names = list(model.layer_names)
            grads = torch.autograd.grad(loss, [outputs[name] for name in names])
    finally:
        for handle in handles:
            handle.remove()
    return pd.DataFrame([
        {"layer": name, "l": l, "grad_norm": float(grad[:, columns].double().norm())}
        for name, grad in zip(names, grads)
        for l, columns in slices.items()
    ])


def initial_model(run: RunFolder) -> EquivariantModel:
    """The run's model as it was before its first training step (eval mode), rebuilt from its seed.

    The global torch random state is left as it was.

    Raises
    ------
    ValueError
        If the folder is missing or not a finished run.
    """
    return trained.initial_model(run.require_finished().config).eval()


def _decayed(weight: torch.Tensor, steps: int, lr: float, weight_decay: float) -> torch.Tensor:
    """``weight`` after ``steps`` AdamW steps with zero gradient: the optimiser's own multiplications, repeated."""
    out = weight.detach().clone()
    for _ in range(steps):
        out.mul_(1 - lr * weight_decay)
    return out


def _optimizer_decay(optimizer_state: Mapping, index: int) -> tuple[int, float, float]:
    """``(steps, lr, weight_decay)`` of parameter ``index`` in a saved optimiser state."""
    group = next(g for g in optimizer_state["param_groups"] if index in g["params"])
    state = optimizer_state["state"].get(index, {})
    steps = int(state["step"]) if "step" in state else 0
    return steps, float(group["lr"]), float(group["weight_decay"])


def radial_paths(block: InteractionBlock) -> list[dict]:
    """The weighted paths of a block's tensor product, in the order of its weights.

    Returns
    -------
    list of dict
        ``path`` (instruction index), ``l_in``, ``l_sh``, ``l_out``, ``n_weights`` (radial-MLP output columns).
    """
    tp = block.tp
    return [
        {"path": i, "l_in": tp.irreps_in1[ins.i_in1].ir.l, "l_sh": tp.irreps_in2[ins.i_in2].ir.l,
         "l_out": tp.irreps_out[ins.i_out].ir.l, "n_weights": int(np.prod(ins.path_shape))}
        for i, ins in enumerate(tp.instructions) if ins.has_weight
    ]


def radial_drift(run: RunFolder) -> pd.DataFrame:
    """How far each path's radial-MLP output weights moved from initialisation during training.

    Each path ``(l_in, l_sh) -> l_out`` of a block's tensor product owns a set of columns of the radial MLP's
    last weight matrix (``h x weight_numel``). Initial weights come from :func:`initial_model`; the number of
    optimiser steps, ``lr`` and ``weight_decay`` from the run's checkpoint.

    Returns
    -------
    pandas.DataFrame
        One row per (layer, path): the :func:`radial_paths` fields, ``rel_change`` (``|W - W0| / |W0|``) and
        ``rel_learned`` (``|W - W0_decayed| / |W0|``, the change beyond weight decay; exactly 0 for a path that
        never had a gradient, when the run trained on the CPU).
    """
    trained, _ = load_model(run, "cpu")
    initial = initial_model(run)
    optimizer_state = load_checkpoint(run)["optimizer"]
    index_of = {id(p): i for i, p in enumerate(trained.parameters())}
    rows = []
    for name in trained.layer_names:
        block, start = trained.blocks[name], initial.blocks[name]
        weight, weight0 = block.radial[-1].weight.detach(), start.radial[-1].weight.detach()
        decayed = _decayed(weight0, *_optimizer_decay(optimizer_state, index_of[id(block.radial[-1].weight)]))
        views = zip(block.tp.weight_views(weight), start.tp.weight_views(weight0), start.tp.weight_views(decayed))
        for path, (w, w0, wd) in zip(radial_paths(block), views):
            scale = float(w0.double().norm())
            rows.append({"layer": name, **path,
                         "rel_change": float((w - w0).double().norm()) / scale,
                         "rel_learned": float((w - wd).double().norm()) / scale})
    return pd.DataFrame(rows)


def message_share(previous: LayerEmbeddings, current: LayerEmbeddings) -> pd.DataFrame:
    """Share of a residual block's output energy, per order, that the block itself added.

    A conv block outputs its input (the residual) plus its summed messages, so ``current - previous`` is what the
    block computed. For the last block under the scalar readout that part is untrained for ``l > 0``.

    Parameters
    ----------
    previous, current
        Embeddings of the same molecules at a block's input (the previous block) and at its output.

    Returns
    -------
    pandas.DataFrame
        One row per order: ``layer`` (of ``current``), ``l``, ``share`` (``|current - previous|^2 / |current|^2``
        over all molecules).

    Raises
    ------
    ValueError
        If the two do not hold the same molecules with the same layout.
    """
    if not np.array_equal(previous.rows, current.rows) or previous.irreps != current.irreps:
        raise ValueError(f"{previous.layer} and {current.layer} hold different molecules or layouts")
    rows = []
    for l in current.orders:
        out, added = current.block(l), current.block(l) - previous.block(l)
        rows.append({"layer": current.layer, "l": l, "share": float((added**2).sum() / (out**2).sum())})
    return pd.DataFrame(rows)


def _r2(pairs: np.ndarray) -> float:
    """R² of predictions ``pairs[:, 1]`` of values ``pairs[:, 0]``."""
    residual = np.sum((pairs[:, 0] - pairs[:, 1]) ** 2)
    total = np.sum((pairs[:, 0] - pairs[:, 0].mean()) ** 2)
    return float(1 - residual / total) if total > 0 else math.nan


def predictability(embeddings: LayerEmbeddings, targets: Mapping[str, np.ndarray], gram: bool = False,
                   n_splits: int = 5, seed: int = 0, level: float = LEVEL, n_boot: int = 1000) -> pd.DataFrame:
    """Cross-validated R² of ridge regressions from invariant embeddings to molecular properties, with intervals.

    For the joint embedding and each order ``l``: standardised invariant features
    (:meth:`~equinb.analysis.LayerEmbeddings.view`), ridge regression with its penalty chosen inside each
    training fold; every molecule is predicted by the fold that held it out, and R² is that of the pooled
    held-out predictions, with a bootstrap interval over molecules.

    Parameters
    ----------
    embeddings
        One layer's embeddings.
    targets
        ``{name: (n,) values}``; molecules with a NaN target are left out of that target's fits (the count used
        is reported).
    gram
        Use Gram-matrix invariants instead of norms.
    n_splits, seed
        Cross-validation folds and their shuffling seed (also the bootstrap's seed).
    level, n_boot
        The R² interval.

    Returns
    -------
    pandas.DataFrame
        One row per (target, order): ``layer``, ``target``, ``l`` (``"joint"`` or the order), ``r2``, ``r2_low``,
        ``r2_high``, ``n_molecules``, ``n_features``.
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folds = KFold(n_splits=n_splits, shuffle=True, random_state=seed)
    rows = []
    for target, values in targets.items():
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (len(embeddings.rows),):
            raise ValueError(f"target {target!r} has shape {values.shape}, expected ({len(embeddings.rows)},)")
        keep = np.isfinite(values)
        for l in ["joint", *embeddings.orders]:
            features = embeddings.view(None if l == "joint" else l, "invariant", gram)[keep]
            model = make_pipeline(StandardScaler(), RidgeCV(alphas=RIDGE_ALPHAS))
            held_out = cross_val_predict(model, features, values[keep], cv=folds)
            r2, low, high = bootstrap_interval(np.stack([values[keep], held_out], axis=1), level, n_boot, seed,
                                               statistic=_r2)
            rows.append({"layer": embeddings.layer, "target": target, "l": l, "r2": r2, "r2_low": low,
                         "r2_high": high, "n_molecules": int(keep.sum()), "n_features": features.shape[1]})
    return pd.DataFrame(rows)
