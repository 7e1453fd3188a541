"""Benchmark cases of a training step of the study's model: its throughput, and its split into spherical
harmonics, tensor products and the rest.

``benchmarks/train_bench.py`` times whole steps (:func:`step_times`) for the study's Table 1 configurations;
``benchmarks/step_share.py`` and chapter 3 split one step into its pieces (:func:`step_share`). The step is the
same in both (:func:`training_step`): forward, the mean squared output as the loss, backward, an AdamW update.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
from e3nn import o3
from e3nn.math import soft_one_hot_linspace

from ..model import EquivariantModel, ModelConfig, sum_rows, edge_vectors
from ..sph import spherical_harmonics
from .harness import median_time, set_label, synchronize
from .sph import output_width


def training_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: Any) -> None:
    """One step as timed here: forward, the mean squared output as the loss, backward, the optimizer's update.

    Parameters
    ----------
    model
        The model (eager or compiled).
    optimizer
        Over the model's parameters.
    batch
        A PyG batch of molecules on the model's device.
    """
    loss = model(batch).square().mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def step_times(model: torch.nn.Module, batches: Sequence[Any], steps: int, device: torch.device,
               warmup: int = 2) -> list[float]:
    """Seconds of each of ``steps`` training steps (AdamW, lr 1e-3, no weight decay: the study's optimiser) after
    ``warmup`` untimed ones.

    Parameters
    ----------
    model
        The model (eager or compiled), on ``device``.
    batches
        Batches on ``device``, taken in turn.
    steps
        Timed steps.
    device
        Synchronised around every step when it is a GPU.
    warmup
        Untimed steps first (compilation, allocator caches).

    Returns
    -------
    list of float
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    times = []
    for i in range(steps + warmup):
        synchronize(device)
        start = time.perf_counter()
        training_step(model, optimizer, batches[i % len(batches)])
        synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def _tensor_product_time(tp: torch.nn.Module, inputs: tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]],
                         repeats: int, device: torch.device) -> float:
    """Forward and backward of one tensor product on captured ``(args, kwargs)``, with gradients for the node
    features and the per-edge weights or their factors (the edge harmonics need none)."""
    args, kwargs = inputs
    x, edge_sh, *weights = (t.detach() for t in args)
    factors = {name: t.detach().requires_grad_(True) for name, t in kwargs.items()}  # features, matrix
    x.requires_grad_(True)
    weights = [w.requires_grad_(True) for w in weights]
    leaves = (x, *weights, *factors.values())
    upstream = torch.randn(x.shape[0], tp.irreps_out.dim, device=device)
    return median_time(lambda: torch.autograd.grad(tp(x, edge_sh, *weights, **factors), leaves, upstream),
                       repeats, device)


def _harmonics_times(config: ModelConfig, vectors: torch.Tensor, repeats: int,
                     device: torch.device) -> tuple[float, float, float]:
    """Forward and forward+backward of the model's harmonics backend, and e3nn's forward, on ``vectors``."""
    orders, normalization = list(config.L), config.sh_normalization
    leaf = vectors.clone().requires_grad_(True)
    upstream = torch.randn(vectors.shape[0], output_width(orders), device=device)

    def ours(v: torch.Tensor) -> torch.Tensor:
        return spherical_harmonics(orders, v, True, normalization, backend=config.sh_backend)

    forward = median_time(lambda: ours(vectors), repeats, device)
    forward_backward = median_time(lambda: torch.autograd.grad(ours(leaf), leaf, upstream), repeats, device)
    e3nn_forward = median_time(lambda: o3.spherical_harmonics(orders, vectors, True, normalization), repeats,
                               device)
    return forward, forward_backward, e3nn_forward


def step_share(config: ModelConfig, batch: Any, repeats: int = 3, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Split an eager training step of the study's model into spherical harmonics, tensor products and the rest.

    The step (forward, backward, AdamW update) is timed whole; the pieces are timed alone on the inputs the
    model gives them in that step (captured with forward hooks):

    * harmonics forward (``sh_s``) — all that training on energies needs: positions carry no gradient, so the
      harmonics have no backward; ``sh_fwd_bwd_s`` adds the input gradient that force training would need;
      ``sh_e3nn_s`` is the forward of ``e3nn.o3.spherical_harmonics`` on the same edges;
    * tensor products (``tp_s``) — forward and backward of every block's ``FullyConnectedTensorProduct``, with
      gradients for the node features and the per-edge weights, summed over blocks (with the ``torch`` backend
      the weights arrive as the radial MLP's last hidden layer and matrix, so its last layer is counted here);
    * the radial MLPs' hidden layers (``radial_s``), the sums of messages onto atoms (``scatter_s``), both forward
      and backward and summed over blocks, and one AdamW update (``optimizer_s``).

    Parameters
    ----------
    config
        The model; its ``sh_backend`` gives the harmonics timed as ``sh_s``.
    batch
        A PyG batch of molecules.
    repeats
        Timed repetitions of each piece (median taken).
    device
        Where to run.

    Returns
    -------
    dict
        ``L, h, sh_backend, tp_backend, graphs, edges, step_s, sh_s, sh_fwd_bwd_s, sh_e3nn_s, tp_s, radial_s,
        scatter_s, optimizer_s`` and the shares of ``step_s``: ``sh_share, tp_share, radial_share,
        scatter_share, optimizer_share, other_share`` (``other``: gathers, embedding, readout, autograd).
    """
    device = torch.device(device)
    torch.manual_seed(0)
    model = EquivariantModel.from_config(config).to(device)
    batch = batch.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    step = median_time(lambda: training_step(model, optimizer, batch), repeats, device)
    captured: dict[str, tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]] = {}
    hooks = [block.tp.register_forward_hook(
        lambda module, args, kwargs, out, name=name: captured.__setitem__(name, (args, kwargs)), with_kwargs=True)
        for name, block in model.blocks.items()]
    with torch.no_grad():
        model(batch)
    for hook in hooks:
        hook.remove()
    vectors = edge_vectors(batch.pos, batch.edge_index).detach()
    sh, sh_fwd_bwd, sh_e3nn = _harmonics_times(config, vectors, repeats, device)
    tp = sum(_tensor_product_time(block.tp, captured[name], repeats, device) for name, block in model.blocks.items())
    radial = sum(_radial_time(block, batch, config, repeats, device) for block in model.blocks.values())
    scatter = _scatter_time(model, batch, repeats, device) * len(model.blocks)
    optimizer.zero_grad(set_to_none=True)
    model(batch).square().mean().backward()
    update = median_time(optimizer.step, repeats, device)
    parts = {"sh": sh, "tp": tp, "radial": radial, "scatter": scatter, "optimizer": update}
    return {
        "L": set_label(config.L), "h": config.h, "sh_backend": config.sh_backend, "tp_backend": config.tp_backend,
        "graphs": int(batch.num_graphs), "edges": int(batch.edge_index.shape[1]), "step_s": step,
        "sh_fwd_bwd_s": sh_fwd_bwd, "sh_e3nn_s": sh_e3nn, **{f"{k}_s": v for k, v in parts.items()},
        **{f"{k}_share": v / step for k, v in parts.items()},
        "other_share": max(0.0, 1 - sum(parts.values()) / step),
    }


def _radial_time(block: torch.nn.Module, batch: Any, config: ModelConfig, repeats: int, device: torch.device) -> float:
    """Forward and backward of a block's radial MLP without its last (linear) layer, which the tensor product
    receives as a factor (``tp_s`` counts it), on the batch's edge lengths."""
    lengths = torch.linalg.vector_norm(edge_vectors(batch.pos, batch.edge_index), dim=-1)
    basis = soft_one_hot_linspace(lengths, 0.0, config.cutoff, config.num_basis, basis="bessel", cutoff=True)
    *layers, _ = block.radial
    hidden = torch.nn.Sequential(*layers)
    parameters = list(hidden.parameters())
    upstream = torch.randn(basis.shape[0], layers[-1].h_out if layers else basis.shape[1], device=device)
    return median_time(lambda: torch.autograd.grad(hidden(basis), parameters, upstream), repeats, device)


def _scatter_time(model: EquivariantModel, batch: Any, repeats: int, device: torch.device) -> float:
    """Forward and backward of one block's sum of per-edge messages onto target atoms (the model's own sum)."""
    width, target = model.irreps_hidden.dim, batch.edge_index[1]
    messages = torch.randn(target.shape[0], width, device=device, requires_grad=True)
    upstream = torch.randn(batch.num_nodes, width, device=device)
    return median_time(lambda: torch.autograd.grad(sum_rows(messages, target, batch.num_nodes), messages, upstream),
                       repeats, device)
