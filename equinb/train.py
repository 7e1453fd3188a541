"""Training on QM9 U0 atomization energies, in run folders that survive interruption.

:func:`train` is the one entry point. For a configuration it returns the finished run if one exists (so later
chapters never retrain by accident), resumes an unfinished one from its last checkpoint, or starts a new one.
Every epoch ends with an atomic checkpoint (model, optimiser, history), so a run killed at any moment resumes
from the last finished epoch, and — the data order of every epoch depends only on the seed and the epoch
number — ends with the same history and the same final model as an uninterrupted run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch
from . import data, progress as terminal
from .allocator import keep_freed_memory
from .baseline import fit_composition_baseline, regression_metrics
from .model import count_parameters
from .runs import SPLIT, RunFolder, config_key, epoch_checkpoint, find_run, runs_dir
from .target import TARGETS, Target
from .trained import initial_model, load_checkpoint, model_config, predict, resolve_device, save_checkpoint

#: Learning rate of the study (AdamW).
LEARNING_RATE = 1e-3
#: Batch size of the study.
BATCH_SIZE = 32


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the run keeps its last good checkpoint."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (the contents of its ``config.json``).

    The defaults are the study's full-scale setting; the book's chapters pass smaller CPU settings.

    Parameters
    ----------
    L, h, num_layers, sh_backend, gate, tp_backend
        The model (see :class:`equinb.model.ModelConfig`).
    epochs
        Number of passes over the training split.
    weight_decay
        AdamW's decoupled weight decay; the study ran 0.0 (torch's AdamW defaults to 0.01).
    target
        ``"atomization"`` (the study's: the whole U0 atomization energy, normalised) or ``"residual"`` (after
        per-element references fitted on the training split; :mod:`equinb.target`). Errors are in eV either way.
    n_molecules
        Size of the seeded random subset of QM9 to use (None: all 130,831).
    batch_size, lr
        AdamW mini-batch size and learning rate.
    seed
        Seed of the subset, the split, the initial weights and the data order.
    graph, graph_cutoff
        ``"bonds"`` (the study) or ``"radius"`` edges with ``graph_cutoff`` Å.
    fractions
        Train/validation/test fractions.
    """

    L: Sequence[int] = (0, 1, 2)
    h: int = 32
    num_layers: int = 3
    sh_backend: str = "auto"
    gate: bool = False
    tp_backend: str = "auto"
    epochs: int = 100
    weight_decay: float = 0.0
    target: str = "atomization"
    n_molecules: int | None = None
    batch_size: int = BATCH_SIZE
    lr: float = LEARNING_RATE
    seed: int = data.DEFAULT_SEED
    graph: str = "bonds"
    graph_cutoff: float = data.DEFAULT_CUTOFF
    fractions: Sequence[float] = field(default=data.DEFAULT_FRACTIONS)

    def __post_init__(self) -> None:
        model_config(self.to_dict())  # validates L, h, num_layers, sh_backend, gate, tp_backend
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        decay = self.weight_decay
        if isinstance(decay, bool) or not (isinstance(decay, (int, float)) and math.isfinite(decay) and decay >= 0):
            raise ValueError(f"weight_decay must be a non-negative number, got {decay!r}")
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")
        data.check_graph(self.graph, self.graph_cutoff)
        data.subset_indices(data.N_QM9, self.n_molecules)  # validates n_molecules
        data.split_sizes(self.n_molecules or data.N_QM9, self.fractions)  # validates fractions, no empty part

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists for sequences)."""
        out = asdict(self)
        out["L"] = sorted(int(l) for l in self.L)
        out["fractions"] = [float(f) for f in self.fractions]
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown training configuration keys {unknown}")
        return cls(**values)

    def run_name(self) -> str:
        """Readable, unique folder name, e.g. ``L0-3-4-5-6_h16_e30_n2000_s21616_<hash>``."""
        n = "all" if self.n_molecules is None else self.n_molecules
        orders = "-".join(str(l) for l in sorted(self.L))
        return f"L{orders}_h{self.h}_e{self.epochs}_n{n}_s{self.seed}_{config_key(self.to_dict())}"


def _prepare_split(run: RunFolder, config: TrainConfig, arrays: data.QM9Arrays) -> dict[str, np.ndarray]:
    if run.file(SPLIT).is_file():
        return data.load_split(run.file(SPLIT))
    rows = data.subset_indices(len(arrays), config.n_molecules, seed=config.seed)
    split = data.split_indices(rows, config.fractions, seed=config.seed)
    data.save_split(run.file(SPLIT), split)
    return split


def _metrics(true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    values = regression_metrics(predicted, true)
    return {"mae_ev": values["mae"], "rmse_ev": values["rmse"], "mse_ev2": values["rmse"] ** 2}


def train(
    config: TrainConfig | dict[str, Any],
    runs_parent: str | None = None,
    name: str | None = None,
    device: str | torch.device = "auto",
    compile: bool = False,
    progress: bool | None = None,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
    eval_epochs: Sequence[int] = (),
) -> RunFolder:
    """Return the finished run of ``config``, training (or resuming) it first if needed.

    Parameters
    ----------
    config
        The run's :class:`TrainConfig` (or its dict).
    runs_parent
        Folder holding run folders (default ``$EQUINB_RUNS`` or ``./runs``).
    name
        Folder name for a new run (default :meth:`TrainConfig.run_name`).
    device
        ``"auto"`` (CUDA if available, else CPU), or a torch device.
    compile
        Train through ``torch.compile`` (same weights, faster steps after compilation).
    progress
        A progress bar per epoch with the running loss and one line per finished epoch, on stderr:
        ``None`` (default) only when stderr is a terminal (never on a book page), ``True``/``False`` always/never.
    on_epoch_end
        Called with each epoch's history row after its checkpoint is written.
    eval_epochs
        Earlier epochs of the trajectory to evaluate (one run per configuration and seed serves every epoch count
        of a study: with no learning-rate schedule and the data order fixed by the seed, the first ``k`` epochs of
        a longer run are the ``k``-epoch run). At each ``k`` before the last epoch, the model is kept as
        ``checkpoint_e<k>.pt`` and its test and validation metrics go to ``metrics.json`` under ``"at_epochs"``
        (keyed by ``str(k)``); the last epoch's are the run's own metrics.

    Returns
    -------
    RunFolder
        A finished run: ``metrics.json`` holds test MAE/RMSE/MSE in eV and the composition baseline's errors.

    Raises
    ------
    ValueError
        For an invalid configuration, or a folder ``name`` that holds a run of another configuration.
    TrainingDiverged
        If the loss becomes NaN or infinite (the last good checkpoint is kept).
    """
    config = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    settings = config.to_dict()
    parent = runs_dir(runs_parent)
    run = find_run(settings, parent, finished=False) or RunFolder(parent / (name or config.run_name()))
    if run.file("config.json").is_file() and run.config != settings:
        raise ValueError(f"{run.path} holds a run of another configuration; choose another name")
    eval_epochs = sorted({int(k) for k in eval_epochs})
    if any(k < 1 or k > config.epochs for k in eval_epochs):
        raise ValueError(f"eval_epochs must lie in 1..{config.epochs} (the run's epochs), got {eval_epochs}")
    if run.finished:
        kept = set(run.metrics.get("at_epochs", {}))
        if not {str(k) for k in eval_epochs if k < config.epochs} <= kept:
            raise ValueError(f"{run.path} finished without snapshots at epochs {eval_epochs}; it kept "
                             f"{sorted(kept, key=int) or 'none'}")
        return run
    run.write_config(settings)

    device = resolve_device(device)
    keep_freed_memory()  # large per-edge tensors reuse freed memory instead of page-faulting every step
    arrays = data.load_qm9(progress=progress)
    split = _prepare_split(run, config, arrays)
    target = Target.fit(config.target, arrays, split)
    graphs = {part: data.make_dataset(arrays, split[part], config.graph, config.graph_cutoff) for part in split}

    model = initial_model(settings).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history: list[dict[str, Any]] = []
    at_epochs: dict[str, dict[str, Any]] = {}
    state = load_checkpoint(run, map_location=device)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = state["history"]
        at_epochs = state.get("at_epochs", {})
    step = torch.compile(model, dynamic=True) if compile else model

    for epoch in range(len(history), config.epochs):
        started = time.perf_counter()
        model.train()
        loader = data.make_loader(graphs["train"], config.batch_size, shuffle=True, seed=config.seed + epoch)
        bar = terminal.bar(loader, progress, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False)
        total, count = 0.0, 0
        for batch in bar:
            batch = batch.to(device)
            loss = torch.nn.functional.mse_loss(step(batch), target.encode(batch))
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {loss.item()} in epoch {epoch + 1} of {run.path}; the checkpoint of epoch "
                    f"{epoch} is kept (try a lower lr)"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, count = total + loss.item() * batch.num_graphs, count + batch.num_graphs
            bar.set_postfix(loss=f"{total / count:.4f}")
        model.eval()
        val = _metrics(*predict(model, graphs["val"], target))
        row = {"epoch": epoch + 1, "train_loss": total / count, "val_mae_ev": val["mae_ev"],
               "val_rmse_ev": val["rmse_ev"], "seconds": time.perf_counter() - started}
        history.append(row)
        if epoch + 1 in eval_epochs and epoch + 1 < config.epochs:
            at_epochs[str(epoch + 1)] = {"test": _metrics(*predict(model, graphs["test"], target)), "val": val}
            save_checkpoint(run, {"model": model.state_dict(), "target": target.to_dict()},
                            epoch_checkpoint(epoch + 1))
        save_checkpoint(run, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                              "history": history, "normalizer": target.normalizer.to_dict(),
                              "target": target.to_dict(), "at_epochs": at_epochs})
        run.write_history(history)
        terminal.note(f"epoch {epoch + 1}/{config.epochs}: train loss {row['train_loss']:.4f}, "
                      f"val MAE {row['val_mae_ev']:.3f} eV ({row['seconds']:.1f} s)", progress)
        if on_epoch_end is not None:
            on_epoch_end(row)

    model.eval()
    baseline = fit_composition_baseline(arrays, split)
    run.write_metrics({
        "test": _metrics(*predict(model, graphs["test"], target)),
        "val": _metrics(*predict(model, graphs["val"], target)),
        "baseline_test": {"mae_ev": baseline.metrics["test"]["mae"], "rmse_ev": baseline.metrics["test"]["rmse"]},
        "n_parameters": count_parameters(model),
        "n_molecules": {part: int(len(rows)) for part, rows in split.items()},
        "normalizer": target.normalizer.to_dict(),
        "target": target.to_dict(),
        "train_seconds": float(sum(row["seconds"] for row in history)),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "tp_backend": next(iter(model.blocks.values())).tp.backend,  # what "auto" resolved to
        "torch_threads": torch.get_num_threads(),
        **({"at_epochs": at_epochs} if at_epochs else {}),
    })
    return run
