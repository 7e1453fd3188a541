"""Running a Table 1 sweep: papermill executions of the training chapter, one run folder and one CSV line each.

A sweep executes the training chapter (``book/04_model_and_training.md``) through
:func:`equinb.runner.run_chapter` once per row and seed, at a :class:`~equinb.sweep.table.Scale`:

* every run has its own run folder ``<runs_dir>/table1/<scale>/<row>_s<seed>/``, and its executed notebook is
  written inside it (``04_model_and_training.ipynb``);
* a run whose folder has finished (``metrics.json``) is skipped, and an unfinished one resumes from its last
  checkpoint, so an interrupted sweep continues where it stopped;
* after every run one progress line (with the time spent and an estimate of the time left) is printed and the
  run's line is appended to the results CSV (:data:`CSV_COLUMNS`) and its learning curve to the history CSV,
  both by :func:`record_run`, the one place results are written.

The command line is ``python -m equinb sweep table1 [--profile NAME] [--seeds K] [--only ROW ...] [--out CSV]``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..runner import find_chapter, run_chapter
from ..runs import RunFolder, atomic_write_bytes, runs_dir
from .table import ROWS, SCALES, SWEEP_FOLDER, TABLES, WITHOUT, WITHOUT_PARENTS, Scale, SweepError, Table1Row, \
    scale_for, select_rows

#: The chapter every sweep run executes.
TRAINING_CHAPTER = "04_model_and_training"
#: Default results file of ``python -m equinb sweep table1`` (``{profile}`` and the scale's ``{slug}`` filled in).
DEFAULT_CSV = "results/{table}_{profile}_{slug}.csv"


class SweepFailed(RuntimeError):
    """A run of the sweep executed without error but left no finished run folder."""


@dataclass(frozen=True)
class SweepRun:
    """One execution of the training chapter: a row at a scale with one seed, and where it lives.

    One trajectory per (configuration, seed): rows of the same configuration with fewer epochs (``shorter``) are
    read from this run's snapshots at their epoch counts, never trained again.
    """

    row: Table1Row
    scale: Scale
    seed: int
    folder: Path
    shorter: tuple[Table1Row, ...] = ()

    @property
    def rows(self) -> tuple[Table1Row, ...]:
        """Every row this run gives a result for: its own, then the shorter ones."""
        return (self.row, *self.shorter)

    @property
    def notebook(self) -> Path:
        """The executed chapter, kept inside the run folder."""
        return self.folder / f"{TRAINING_CHAPTER}.ipynb"

    @property
    def finished(self) -> bool:
        """Whether the run folder holds a finished run."""
        return RunFolder(self.folder).finished

    def parameters(self) -> dict[str, Any]:
        """Parameters injected into the training chapter."""
        return {
            "L": list(self.row.L), "h": self.scale.h(self.row), "epochs": self.scale.epochs(self.row),
            "n_molecules": self.scale.n_molecules, "seed": self.seed, "compile": self.scale.compile,
            "run_name": self.folder.name, "runs_dir": str(self.folder.parent), "count_table1": False,
            "target": self.scale.target,
            "eval_epochs": sorted({self.scale.epochs(row) for row in self.shorter}),
        }


def plan_sweep(rows: Sequence[Table1Row], scale: Scale, seeds: int, parent: Path, first_seed: int) -> list[SweepRun]:
    """Every run of a sweep, seeds ``first_seed, first_seed + 1, ...``, one trajectory per configuration and seed.

    Rows that run the same orders at the same width at this scale share one run, trained to the longest of their
    epoch counts and named after that row; the others are its ``shorter`` rows. Each configuration gets the most
    seeds any of its rows asks for (:meth:`Scale.seeds`).

    Raises
    ------
    SweepError
        If there are no rows or ``seeds`` is not a positive integer.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise SweepError(f"seeds must be a positive integer, got {seeds!r}")
    if not rows:
        raise SweepError("no rows of Table 1 to run")
    folder = parent.resolve() / SWEEP_FOLDER / scale.slug
    groups: dict[tuple, list[Table1Row]] = {}
    for row in rows:
        groups.setdefault((row.L, scale.h(row)), []).append(row)
    plan = []
    for group in groups.values():
        longest = max(group, key=scale.epochs)  # the first of the longest, in the table's order
        shorter = tuple(sorted((row for row in group if row is not longest), key=scale.epochs))
        plan += [SweepRun(longest, scale, first_seed + k, folder / f"{longest.name}_s{first_seed + k}", shorter)
                 for k in range(max(scale.seeds(row, seeds) for row in group))]
    return plan


def relative_cost(L: Sequence[int], h: int) -> float:
    """Rough per-edge cost of one interaction block, used only to share out time estimates between rows.

    Per path ``(l1, l2, l3)`` the tensor product contracts ``(2l1+1)(2l2+1)(2l3+1)`` coupling coefficients,
    ``h`` channels of the input and ``h^2`` weights per output component; the radial MLP emits ``h^3`` weights
    per path. Against step times measured on two cores this is right to within a factor of about two.
    """
    from ..so3.paths import tensor_product_paths  # here, not above: it loads torch, which the CLI's checks need not

    paths = tensor_product_paths(list(L))
    work = sum((2 * a + 1) * (2 * b + 1) * (2 * c + 1) + h * (2 * a + 1) * (2 * c + 1) + h * h * (2 * c + 1)
               for a, b, c in paths)
    return float(work + len(paths) * h**3)


def run_work(run: SweepRun) -> float:
    """Relative cost of a whole run: epochs times the per-edge cost of its configuration."""
    return run.scale.epochs(run.row) * relative_cost(run.row.L, run.scale.h(run.row))


def notebook_seconds(path: Path) -> float:
    """Execution time papermill recorded in an executed notebook (NaN if there is none)."""
    try:
        return float(json.loads(path.read_text())["metadata"]["papermill"]["duration"])
    except (OSError, KeyError, TypeError, ValueError):
        return math.nan


#: Columns of the results CSV, in order.
CSV_COLUMNS = (
    "row", "L", "h", "epochs", "study_h", "study_epochs", "seed", "n_parameters", "n_train", "n_val", "n_test",
    "test_mae_ev", "test_rmse_ev", "test_mse_ev2", "baseline_test_mae_ev", "train_seconds", "wall_seconds",
    "device", "scale", "run", "tp_backend", "target", "baseline_test_rmse_ev",
)


def result_row(run: SweepRun, relative_to: Path, row: Table1Row | None = None) -> dict[str, Any]:
    """The CSV line of a finished run (paths relative to ``relative_to``) for ``row``: the run's own row (default)
    or one of its ``shorter`` rows, read from the run's snapshot at that row's epochs.

    Raises
    ------
    SweepFailed
        If the run kept no snapshot at a shorter row's epochs.
    """
    row = run.row if row is None else row
    folder = RunFolder(run.folder)
    metrics, config = folder.metrics, folder.config
    epochs = run.scale.epochs(row)
    history = folder.history()[:epochs]
    if epochs < config["epochs"]:
        at = metrics.get("at_epochs", {}).get(str(epochs))
        if at is None:
            raise SweepFailed(f"{run.folder} kept no snapshot at epoch {epochs} for {row.name}")
        metrics = metrics | {"test": at["test"], "train_seconds": sum(float(e["seconds"]) for e in history)}
    return {
        "row": row.name, "L": json.dumps(config["L"]), "h": config["h"], "epochs": epochs,
        "study_h": row.h, "study_epochs": row.epochs, "seed": config["seed"],
        "n_parameters": metrics["n_parameters"], "n_train": metrics["n_molecules"]["train"],
        "n_val": metrics["n_molecules"]["val"], "n_test": metrics["n_molecules"]["test"],
        "test_mae_ev": metrics["test"]["mae_ev"], "test_rmse_ev": metrics["test"]["rmse_ev"],
        "test_mse_ev2": metrics["test"]["mse_ev2"], "baseline_test_mae_ev": metrics["baseline_test"]["mae_ev"],
        "train_seconds": metrics["train_seconds"],
        "wall_seconds": notebook_seconds(run.notebook) if row is run.row else math.nan,
        "device": metrics["device"], "scale": run.scale.slug,
        "run": os.path.relpath(run.folder, relative_to.resolve()),
        # runs made before the tensor-product backends ran e3nn's module
        "tp_backend": metrics.get("tp_backend", config.get("tp_backend", "e3nn")),
        "target": config.get("target", "atomization"),
        "baseline_test_rmse_ev": metrics["baseline_test"]["rmse_ev"],
    }


def write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str] = CSV_COLUMNS) -> None:
    """Write a results (or history) CSV atomically (header only when there are no rows)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buffer.getvalue().encode())


def format_seconds(seconds: float) -> str:
    """``"1h02m"``, ``"4m05s"`` or ``"12s"``."""
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def _estimate(done_seconds: float, done_work: float, work: float) -> str:
    """Time for ``work``, at the rate of the runs timed so far."""
    return format_seconds(done_seconds / done_work * work) if done_work > 0 else "unknown yet"


def _execute(run: SweepRun) -> float:
    """Execute the training chapter for one run; returns the wall time in seconds."""
    tic = time.perf_counter()
    run_chapter(TRAINING_CHAPTER, run.parameters(), out=run.notebook, progress_bar=False)
    if not run.finished:
        raise SweepFailed(f"{run.notebook} ran without error but {run.folder} has no metrics.json")
    return time.perf_counter() - tic


#: Columns of the learning-curve file kept beside the results CSV (one line per run and epoch).
HISTORY_COLUMNS = ("row", "seed", "scale", "epoch", "train_loss", "val_mae_ev", "val_rmse_ev", "seconds")


def history_path(results_csv: str | os.PathLike) -> Path:
    """The learning-curve file of a results CSV: ``<stem>_history.csv`` beside it."""
    path = Path(results_csv)
    return path.with_name(f"{path.stem}_history.csv")


def read_csv(path: str | os.PathLike, columns: Sequence[str] = CSV_COLUMNS) -> list[dict[str, str]]:
    """The lines of a results (or history) CSV, empty when there is no file; missing columns read as ``""``."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(newline="") as file:
        return [{column: line.get(column) or "" for column in columns} for line in csv.DictReader(file)]


def record_run(run: SweepRun, out: Path, rows: Sequence[Table1Row] | None = None) -> list[dict[str, Any]]:
    """Append a finished run's lines (one per row of ``rows``, default :attr:`SweepRun.rows`) to the results CSV
    ``out`` and their epochs to the history CSV beside it.

    This is the one place a sweep writes results: each file is read, extended and rewritten atomically, so a
    reader never sees half a file and the lines of other runs are kept.

    Returns
    -------
    list of dict
        The results lines (:func:`result_row`, paths relative to ``out``'s folder).
    """
    rows = run.rows if rows is None else rows
    lines = [result_row(run, out.parent, row) for row in rows]
    history = RunFolder(run.folder).history()
    curves = [{"row": row.name, "seed": run.seed, "scale": run.scale.slug,
               **{k: epoch.get(k, "") for k in HISTORY_COLUMNS[3:]}}
              for row in rows for epoch in history[:run.scale.epochs(row)]]
    write_csv(history_path(out), read_csv(history_path(out), HISTORY_COLUMNS) + curves, HISTORY_COLUMNS)
    write_csv(out, read_csv(out) + lines)
    return lines


def _key(row: str, seed: int | str, scale: str) -> tuple[str, int, str]:
    return row, int(seed), scale


def run_sweep(
    rows: Sequence[Table1Row],
    scale: Scale,
    seeds: int = 1,
    parent: str | os.PathLike | None = None,
    out_csv: str | os.PathLike | None = None,
    report: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Run (or resume, or skip) every run of a sweep, appending each finished run to the results CSV.

    The CSV is the record that travels: a run whose rows are all in it (same row, seed and scale) is skipped even
    when its run folder is not on this machine, so a sweep stopped on one machine continues on another from the
    committed file. Every finished run appends its lines at once (the file is rewritten atomically), lines of other
    runs are kept. Rows of one configuration share one trajectory (:func:`plan_sweep`): the shorter rows are read
    from the longest run's snapshots.

    Parameters
    ----------
    rows
        Rows of :data:`TABLE1` to run (see :func:`select_rows`).
    scale
        How far to scale the study's setting down (see :data:`SCALES`).
    seeds
        Runs per row (the key rows get at least ``scale.key_seeds``); seeds start at the training chapter's
        default seed (the study's, 21616).
    parent
        Runs folder (default ``$EQUINB_RUNS`` or ``./runs``); runs go to ``<parent>/table1/<scale.slug>/``.
    out_csv
        Results file (default ``<parent>/table1/<scale.slug>/table1.csv``).
    report
        Receives one progress line per run, with the time spent and an estimate of the time left.

    Returns
    -------
    list of dict
        The CSV's lines after the sweep (the runs of this sweep and any others the file held).

    Raises
    ------
    SweepError
        For a bad request (nothing is executed).
    equinb.runner.ChapterFailed
        If the training chapter fails; finished runs stay recorded, so running the sweep again continues.
    SweepFailed
        If the chapter ran but its run folder did not finish.
    """
    first_seed = find_chapter(TRAINING_CHAPTER).defaults["seed"]
    plan = plan_sweep(rows, scale, seeds, runs_dir(parent), first_seed)
    out = Path(out_csv) if out_csv is not None else plan[0].folder.parent / "table1.csv"
    lines: list[dict[str, Any]] = read_csv(out)
    recorded = {_key(line["row"], line["seed"], line["scale"]): line for line in lines}
    started = time.perf_counter()
    done_seconds, done_work = 0.0, 0.0
    for index, run in enumerate(plan):
        also = "".join(f", {scale.epochs(row)} for {row.name}" for row in run.shorter)
        head = (f"[{index + 1}/{len(plan)}] {run.row.name} seed {run.seed} "
                f"(h={scale.h(run.row)}, {scale.epochs(run.row)} epochs{also})")
        missing = [row for row in run.rows if _key(row.name, run.seed, scale.slug) not in recorded]
        line = recorded.get(_key(run.row.name, run.seed, scale.slug))
        if not missing:
            seconds, what = float(line["wall_seconds"] or "nan"), "recorded before, skipped"
        else:
            if run.finished:
                seconds, what = notebook_seconds(run.notebook), "finished before, recorded"
            else:
                report(f"{head}: running, expected {_estimate(done_seconds, done_work, run_work(run))}")
                seconds = _execute(run)
                what = f"trained in {format_seconds(seconds)}"
            new = record_run(run, out, missing)
            lines += new
            recorded.update({_key(added["row"], run.seed, scale.slug): added for added in new})
            line = recorded[_key(run.row.name, run.seed, scale.slug)]
        if not math.isnan(seconds):  # recorded runs calibrate the estimates too, when a sweep continues
            done_seconds, done_work = done_seconds + seconds, done_work + run_work(run)
        waiting = [later for later in plan[index + 1:]
                   if any(_key(row.name, later.seed, scale.slug) not in recorded for row in later.rows)]
        left = _estimate(done_seconds, done_work, sum(run_work(later) for later in waiting))
        elapsed = format_seconds(time.perf_counter() - started)
        report(f"{head}: {what}, test MAE {float(line['test_mae_ev']):.3f} eV | {len(waiting)} runs to go, "
               f"elapsed {elapsed}, left {left}")
    report(f"results: {out}")
    return lines


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add the ``sweep`` command to the command line's sub-commands."""
    sweep = commands.add_parser("sweep", help="run the training chapter over the study's Table 1 (or retrain "
                                               "its key configurations without one order at a time)")
    sweep.add_argument("table", choices=list(TABLES), help="table1: the study's table; without: each of "
                       f"{', '.join(WITHOUT_PARENTS)} without one order (at least the scale's key seeds)")
    sweep.add_argument("--profile", default="cpu", help=f"scale: {', '.join(SCALES)} (default cpu)")
    sweep.add_argument("--seeds", type=int, default=1, help="runs per row, seeds 21616, 21617, ... (default 1)")
    sweep.add_argument("--only", nargs="+", metavar="ROW", help=f"rows to run (default all): {', '.join(ROWS)}; "
                       f"without: {', '.join(WITHOUT)}")
    sweep.add_argument("--runs", help="runs folder (default $EQUINB_RUNS or ./runs)")
    sweep.add_argument("--out", help=f"results CSV (default {DEFAULT_CSV})")


def command(args: argparse.Namespace) -> Path:
    """Run the ``sweep`` command; returns the results CSV.

    Raises
    ------
    SweepError
        For a bad request, before anything runs.
    """
    rows = select_rows(args.only, args.table)
    scale = scale_for(args.profile)
    out = Path(args.out or DEFAULT_CSV.format(table=args.table, profile=args.profile, slug=scale.slug))
    seeds = max(args.seeds, scale.key_seeds) if args.table == "without" else args.seeds
    run_sweep(rows, scale, seeds, args.runs, out)
    return out
