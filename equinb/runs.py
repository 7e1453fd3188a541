"""Run folders: one folder per training run, written atomically, found again by its configuration.

A run folder holds ``config.json`` (everything needed to rebuild the run), ``split.npz`` (the molecules of each
split), ``checkpoint.pt`` (model, optimiser and history after the last finished epoch), ``history.csv`` (one row
per epoch), a model snapshot ``checkpoint_e<N>.pt`` at each epoch a trajectory is evaluated at and, once the run
has finished, ``metrics.json``. Every file is written to a temporary name and
renamed into place, so an interrupted process never leaves a half-written file behind. Training writes run
folders; analysis and sweeps only read them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: Default parent folder of run folders (relative to the working directory), overridable by ``EQUINB_RUNS``.
DEFAULT_RUNS_DIR = "runs"

CONFIG = "config.json"
SPLIT = "split.npz"
CHECKPOINT = "checkpoint.pt"
HISTORY = "history.csv"
METRICS = "metrics.json"


def epoch_checkpoint(epoch: int) -> str:
    """File name of the model snapshot kept at an intermediate epoch of a trajectory, e.g. ``checkpoint_e6.pt``."""
    return f"checkpoint_e{int(epoch)}.pt"


def runs_dir(path: str | os.PathLike | None = None) -> Path:
    """The folder holding run folders: ``path``, else ``$EQUINB_RUNS``, else ``./runs``."""
    return Path(path if path is not None else os.environ.get("EQUINB_RUNS", DEFAULT_RUNS_DIR))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(handle, 0o666 & ~umask)  # mkstemp creates owner-only files; give the usual permissions
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def config_key(config: dict[str, Any]) -> str:
    """Short stable hash of a configuration (canonical JSON), used in run names."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


class RunFolder:
    """One run's folder and the files in it.

    Parameters
    ----------
    path
        The folder (created on first write).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def file(self, name: str) -> Path:
        """Path of a file of this run."""
        return self.path / name

    @property
    def name(self) -> str:
        """The folder's name."""
        return self.path.name

    @property
    def config(self) -> dict[str, Any]:
        """The run's configuration (``config.json``)."""
        return json.loads(self.file(CONFIG).read_text())

    @property
    def finished(self) -> bool:
        """Whether the run completed (its ``metrics.json`` exists)."""
        return self.file(METRICS).is_file()

    @property
    def metrics(self) -> dict[str, Any]:
        """Final metrics of a finished run.

        Raises
        ------
        ValueError
            If the run has not finished.
        """
        if not self.finished:
            raise ValueError(f"run {self.path} has not finished: it has no {METRICS}")
        return json.loads(self.file(METRICS).read_text())

    def history(self) -> list[dict[str, str]]:
        """Rows of ``history.csv`` (empty before the first epoch finished)."""
        path = self.file(HISTORY)
        if not path.is_file():
            return []
        with path.open(newline="") as file:
            return list(csv.DictReader(file))

    def write_config(self, config: dict[str, Any]) -> None:
        """Write ``config.json``."""
        atomic_write_json(self.file(CONFIG), config)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        """Write ``metrics.json``, which marks the run finished."""
        atomic_write_json(self.file(METRICS), metrics)

    def write_history(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite ``history.csv`` from all rows so far (columns from the first row)."""
        if not rows:
            return
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(self.file(HISTORY), buffer.getvalue().encode())

    def require_finished(self) -> RunFolder:
        """Return ``self`` if the run finished.

        Raises
        ------
        ValueError
            If the folder does not exist or the run has not finished.
        """
        if not self.file(CONFIG).is_file():
            raise ValueError(f"{self.path} is not a run folder (no {CONFIG})")
        if not self.finished:
            raise ValueError(f"run {self.path} has not finished (no {METRICS}); resume it by training again")
        return self


def iter_runs(parent: str | os.PathLike | None = None) -> Iterator[RunFolder]:
    """Run folders (folders with a ``config.json``) under ``parent``, sorted by name."""
    parent = runs_dir(parent)
    if parent.is_dir():
        for path in sorted(parent.iterdir()):
            if (path / CONFIG).is_file():
                yield RunFolder(path)


def find_run(config: dict[str, Any], parent: str | os.PathLike | None = None,
             finished: bool = True) -> RunFolder | None:
    """The run folder whose configuration equals ``config``, if any.

    Parameters
    ----------
    config
        The configuration to look for (compared as JSON).
    parent
        Folder holding run folders (see :func:`runs_dir`).
    finished
        Only return a finished run.
    """
    wanted = json.loads(json.dumps(config, sort_keys=True))
    for run in iter_runs(parent):
        if run.config == wanted and (run.finished or not finished):
            return run
    return None
