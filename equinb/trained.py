"""A run's data and trained model, rebuilt from its folder: what evaluation and analysis read.

Training (:mod:`equinb.train`) writes run folders; everything that only reads them — test metrics, parity plots,
the per-irrep analysis — goes through these functions, so no analysis depends on the training loop.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, fields

import numpy as np
import torch

from . import data
from .model import EquivariantModel, ModelConfig
from .runs import CHECKPOINT, SPLIT, RunFolder, atomic_write_bytes, epoch_checkpoint
from .target import Target



def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: the first CUDA device if there is one, else the CPU; anything else as given."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def model_config(config: dict) -> ModelConfig:
    """The :class:`~equinb.model.ModelConfig` part of a run configuration."""
    model_keys = {f.name for f in fields(ModelConfig)}
    return ModelConfig(**{key: value for key, value in config.items() if key in model_keys})


def initial_model(config: dict) -> EquivariantModel:
    """The model of a run configuration as initialised before training: built right after seeding torch with
    ``config["seed"]``, without touching the global random state (training and analysis both call this)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config["seed"])
        return EquivariantModel.from_config(model_config(config))


def save_checkpoint(run: RunFolder, state: dict, name: str = CHECKPOINT) -> None:
    """Write ``checkpoint.pt`` (or another file ``name`` of the run) atomically: serialised in memory, then renamed
    into place."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(run.file(name), buffer.getvalue())


def load_checkpoint(run: RunFolder, map_location: str | torch.device = "cpu", epoch: int | None = None) -> dict | None:
    """The last checkpoint of a run (or its snapshot at ``epoch``), or None if it has none."""
    path = run.file(CHECKPOINT if epoch is None else epoch_checkpoint(epoch))
    if not path.is_file():
        return None
    return torch.load(path, map_location=map_location, weights_only=False)


def load_model(run: RunFolder, device: str | torch.device = "auto",
               epoch: int | None = None) -> tuple[EquivariantModel, Target]:
    """The trained model of a finished run (in eval mode) and its target (label transform).

    Parameters
    ----------
    run
        A finished run.
    device
        Where to load it (``"auto"``: CUDA if available).
    epoch
        An epoch the run kept a snapshot at (``train(..., eval_epochs=...)``); None: the final model.

    Raises
    ------
    ValueError
        If the folder is not a finished run, or has no snapshot at ``epoch``.
    """
    run.require_finished()
    device = resolve_device(device)
    state = load_checkpoint(run, map_location=device, epoch=epoch)
    if state is None:
        raise ValueError(f"run {run.path} kept no snapshot at epoch {epoch}; train it with eval_epochs=[{epoch}]")
    model = EquivariantModel.from_config(model_config(run.config)).to(device)
    model.load_state_dict(state["model"])
    model.eval()
    return model, Target.from_dict(state["target"] if "target" in state else state["normalizer"])


@dataclass(frozen=True)
class RunData:
    """A run's molecules: the QM9 arrays, its persisted split and the graphs of the requested parts."""

    arrays: data.QM9Arrays
    split: dict[str, np.ndarray]
    graphs: dict[str, list]


def run_data(run: RunFolder, parts: Iterable[str] = ("train", "val", "test"), progress: bool = False,
             limit: int | None = None, arrays: data.QM9Arrays | None = None) -> RunData:
    """Graphs of a run's split parts, built exactly as the run built them (same graph kind and cutoff).

    Parameters
    ----------
    run
        A run folder with its persisted split.
    parts
        Which parts to build graphs of.
    progress
        Show QM9's loading progress.
    limit
        Build graphs of only the first ``limit`` molecules of each part (None: all); ``split`` stays whole.
    arrays
        QM9 already loaded (e.g. a :class:`RunData`'s ``arrays``); default: load it.

    Raises
    ------
    ValueError
        If the run has no persisted split, a part is unknown or ``limit`` is below 1.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be positive or None, got {limit}")
    if not run.file(SPLIT).is_file():
        raise ValueError(f"run {run.path} has no {SPLIT}")
    config = run.config
    arrays = data.load_qm9(progress=progress) if arrays is None else arrays
    split = data.load_split(run.file(SPLIT))
    graphs = {}
    for part in parts:
        if part not in split:
            raise ValueError(f"unknown split part {part!r}; the run has {sorted(split)}")
        graphs[part] = data.make_dataset(arrays, split[part][:limit], graph=config["graph"],
                                         cutoff=config["graph_cutoff"])
    return RunData(arrays, split, graphs)


@torch.no_grad()
def predict(model: EquivariantModel, graphs: list, target: Target, batch_size: int = 64,
            device: str | torch.device | None = None) -> tuple[np.ndarray, np.ndarray]:
    """True and predicted energies (eV) of ``graphs``, in their order.

    Returns
    -------
    tuple of numpy.ndarray
        ``(true, predicted)``, each ``(len(graphs),)`` float64.
    """
    device = next(model.parameters()).device if device is None else torch.device(device)
    true, predicted = [], []
    for batch in data.make_loader(graphs, batch_size=batch_size, shuffle=False):
        batch = batch.to(device)
        predicted.append(target.decode(model(batch), batch).cpu())
        true.append(batch.y.double().cpu())
    if not true:
        return np.zeros(0), np.zeros(0)
    return torch.cat(true).numpy(), torch.cat(predicted).numpy()
