"""Table 1 of the study, reproduced by papermill sweeps over the training chapter.

:data:`TABLE1` holds the study's eleven configurations with the numbers it published (parameter counts in
millions, test error as printed: a mean squared error in eV², under the heading "test error (eV)"). A sweep
executes the training chapter (``book/04_model_and_training.md``) through :func:`equinb.runner.run_chapter` once
per row and seed, at a :class:`Scale` (a named one from :data:`SCALES` or any other):

* every run has its own run folder ``<runs_dir>/table1/<scale>/<row>_s<seed>/``, and its executed notebook is
  written inside it (``04_model_and_training.ipynb``);
* a run whose folder has finished (``metrics.json``) is skipped, and an unfinished one resumes from its last
  checkpoint, so an interrupted sweep continues where it stopped;
* after every run one progress line (with the time spent and an estimate of the time left) is printed and the
  results CSV is rewritten, one line per finished run (:data:`CSV_COLUMNS`).

:func:`summarize` and :func:`judge_claims` turn the CSV into the table and the verdicts of chapter 6. The command
line is ``python -m equinb sweep table1 [--profile NAME] [--seeds K] [--only ROW ...] [--out CSV]``.
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

import pandas as pd

from .baseline import BASELINE_FACTOR
from .runner import RunnerError, find_chapter, run_chapter
from .runs import RunFolder, atomic_write_bytes, runs_dir
from .stats import LEVEL, t_interval

#: The chapter every sweep run executes.
TRAINING_CHAPTER = "04_model_and_training"
#: Sub-folder of the runs folder that holds the sweeps' run folders.
SWEEP_FOLDER = "table1"
#: Default results file of ``python -m equinb sweep table1`` (``{profile}`` and the scale's ``{slug}`` filled in).
DEFAULT_CSV = "results/{table}_{profile}_{slug}.csv"


class SweepError(RunnerError):
    """A sweep request refused before anything runs (unknown row or profile, bad seed count)."""


class SweepFailed(RuntimeError):
    """A run of the sweep executed without error but left no finished run folder."""


@dataclass(frozen=True)
class Table1Row:
    """One line of the study's Table 1: the configuration and the numbers published for it.

    Parameters
    ----------
    L
        Orders of the harmonics and hidden features.
    h
        Hidden multiplicity.
    epochs
        Training epochs.
    parameters_m
        Published parameter count, in millions (rounded to one decimal as printed).
    test_mse
        Published test error: the mean squared error of the atomization energy, in eV².
    """

    L: tuple[int, ...]
    h: int
    epochs: int
    parameters_m: float
    test_mse: float

    @property
    def name(self) -> str:
        """Unique name, e.g. ``"L0-3-4-5-6_h16_e30"`` (used by ``--only`` and in run-folder names)."""
        return f"L{'-'.join(str(l) for l in self.L)}_h{self.h}_e{self.epochs}"

    @property
    def label(self) -> str:
        """Short label for tables, e.g. ``"[0,3,4,5,6] h16 e30"``."""
        return f"[{','.join(str(l) for l in self.L)}] h{self.h} e{self.epochs}"


#: The study's Table 1 (arXiv:2410.08131), top half (h = 32, 100 epochs) then bottom half (h = 16).
TABLE1: tuple[Table1Row, ...] = (
    Table1Row((0, 1, 2), 32, 100, 1.6, 0.12),
    Table1Row((0, 1, 2, 4), 32, 100, 3.0, 0.15),
    Table1Row((0, 1, 2, 6), 32, 100, 2.6, 0.21),
    Table1Row((0, 1, 2, 8), 32, 100, 2.6, 0.19),
    Table1Row((0, 1, 2, 10), 32, 100, 2.6, 0.19),
    Table1Row((0, 1, 2, 3, 4), 16, 30, 0.8, 1.24),
    Table1Row((0, 1, 2, 3, 4), 16, 100, 0.8, 0.22),
    Table1Row((0, 1, 2, 3, 4, 5, 6), 16, 30, 1.9, 0.73),
    Table1Row((0, 1, 2, 3, 4, 5, 6, 7, 8), 16, 30, 3.7, 1.02),
    Table1Row((0, 3, 4, 5, 6), 16, 30, 0.8, 0.52),
    Table1Row((0, 3, 4, 5, 6), 16, 100, 0.8, 0.01),
)
ROWS: dict[str, Table1Row] = {row.name: row for row in TABLE1}
#: The rows the study's main claims compare: they get :attr:`Scale.key_seeds` seeds.
KEY_ROWS = ("L0-1-2_h32_e100", "L0-1-2-3-4_h16_e30", "L0-1-2-3-4_h16_e100", "L0-3-4-5-6_h16_e30",
            "L0-3-4-5-6_h16_e100")
#: Configurations retrained without one order at a time, at their own width and epochs: the direct test of whether
#: an order is used. Order 0 is never removed (the readout reads only scalars).
WITHOUT_PARENTS = ("L0-1-2_h32_e100", "L0-1-2-3-4_h16_e30", "L0-3-4-5-6_h16_e30")


@dataclass(frozen=True)
class WithoutRow:
    """A configuration of :data:`WITHOUT_PARENTS` with one order removed."""

    parent: str
    removed: int
    row: Table1Row


def _without_rows() -> dict[str, WithoutRow]:
    rows = {}
    for name in WITHOUT_PARENTS:
        parent = ROWS[name]
        for l in parent.L[1:]:
            row = Table1Row(tuple(k for k in parent.L if k != l), parent.h, parent.epochs, math.nan, math.nan)
            rows[row.name] = WithoutRow(name, l, row)
    return rows


#: The "without" table: row name -> :class:`WithoutRow` (published numbers NaN: the study ran none of these).
WITHOUT: dict[str, WithoutRow] = _without_rows()
#: Tables a sweep can run: name -> rows by name.
TABLES: dict[str, dict[str, Table1Row]] = {"table1": ROWS, "without": {k: v.row for k, v in WITHOUT.items()}}
#: Standard deviation of the U0 atomization energy over all of QM9 (eV) by which the study normalised its labels;
#: its logged "test error" is a mean squared error in these units.
STUDY_LABEL_STD = 10.3238


@dataclass(frozen=True)
class Scale:
    """How far a sweep scales the study's setting down; the orders ``L`` are never changed.

    Parameters
    ----------
    n_molecules
        Seeded random subset of QM9 (0: all 130,831 molecules).
    epochs_factor
        Each row's epochs are multiplied by this and rounded (at least 1): 0.1 turns 30/100 into 3/10.
    h_divisor
        Each row's ``h`` is divided by this (integer division, at least 1): 4 turns 32/16 into 8/4.
    compile
        Train through ``torch.compile`` (pays off on a GPU; compilation costs 10-30 s per run on a CPU).
    h_cap
        If positive, no row is wider than this (after ``h_divisor``): 16 keeps the ``h = 16`` rows and halves the
        ``h = 32`` ones.
    target
        ``"atomization"`` (the study's) or ``"residual"`` (after per-element references; :mod:`equinb.target`).
    key_seeds
        Seeds of each of :data:`KEY_ROWS` (at least; ``--seeds`` may ask for more).
    """

    n_molecules: int
    epochs_factor: float
    h_divisor: int
    compile: bool = False
    h_cap: int = 0
    target: str = "atomization"
    key_seeds: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.n_molecules, bool) or not isinstance(self.n_molecules, int) or self.n_molecules < 0:
            raise SweepError(f"n_molecules must be a non-negative integer, got {self.n_molecules!r}")
        if not (isinstance(self.epochs_factor, (int, float)) and 0 < self.epochs_factor <= 1):
            raise SweepError(f"epochs_factor must be in (0, 1], got {self.epochs_factor!r}")
        if isinstance(self.h_divisor, bool) or not isinstance(self.h_divisor, int) or self.h_divisor < 1:
            raise SweepError(f"h_divisor must be a positive integer, got {self.h_divisor!r}")
        if isinstance(self.h_cap, bool) or not isinstance(self.h_cap, int) or self.h_cap < 0:
            raise SweepError(f"h_cap must be a non-negative integer (0: no cap), got {self.h_cap!r}")
        from .target import TARGETS  # here, not above: it loads torch, which the CLI's checks need not

        if self.target not in TARGETS:
            raise SweepError(f"target must be one of {TARGETS}, got {self.target!r}")
        if isinstance(self.key_seeds, bool) or not isinstance(self.key_seeds, int) or self.key_seeds < 1:
            raise SweepError(f"key_seeds must be a positive integer, got {self.key_seeds!r}")

    def epochs(self, row: Table1Row) -> int:
        """Epochs a row trains for at this scale."""
        return max(1, round(row.epochs * self.epochs_factor))

    def h(self, row: Table1Row) -> int:
        """Hidden multiplicity of a row at this scale."""
        h = max(1, row.h // self.h_divisor)
        return min(h, self.h_cap) if self.h_cap else h

    def seeds(self, row: Table1Row, seeds: int = 1) -> int:
        """Runs of a row: ``seeds``, and at least :attr:`key_seeds` for the rows of :data:`KEY_ROWS`."""
        return max(seeds, self.key_seeds) if row.name in KEY_ROWS else seeds

    @property
    def slug(self) -> str:
        """Folder name of this scale's runs, e.g. ``"n2000_epochs0.1_hdiv4"``."""
        slug = f"n{self.n_molecules or 'all'}_epochs{self.epochs_factor:g}_hdiv{self.h_divisor}"
        return slug + (f"_hcap{self.h_cap}" if self.h_cap else "") + ("" if self.target == "atomization" else
                                                                          f"_{self.target}")

    def describe(self) -> str:
        """One line for readers, e.g. ``"2,000 molecules, epochs x 0.1, h / 4"``."""
        molecules = "all of QM9" if self.n_molecules == 0 else f"{self.n_molecules:,} molecules"
        text = f"{molecules}, epochs x {self.epochs_factor:g}, h / {self.h_divisor}"
        text += f", h at most {self.h_cap}" if self.h_cap else ""
        text += f", {self.key_seeds} seeds of the key rows" if self.key_seeds > 1 else ""
        return text + f", target: {self.target}"


#: Named scales of ``python -m equinb sweep table1 --profile NAME``.
#:
#: * ``paper``: the study's setting (all of QM9, its epochs and widths), for a GPU (eager, like chapter 4's
#:   ``paper`` profile; a :class:`Scale` with ``compile=True`` trains through ``torch.compile``).
#: * ``cpu``: 4,000 molecules, a fifth of the epochs, ``h`` at most 16 (the ``h = 16`` rows keep their width), the
#:   residual target (the study's target does not pass the composition baseline at CPU budgets), three seeds of
#:   the key rows; chosen from training throughput measured with equinb's tensor product
#:   (``benchmarks/results/train_bench_tp_torch.csv``).
#: * ``cpu_atomization``: the same scale on the study's target, one seed: its learning curves beside the ``cpu``
#:   ones.
#: * ``cpu_v1``: the first CPU scale (2,000 molecules, a tenth of the epochs, a quarter of the widths, the study's
#:   target): every model stayed 3-6x worse than the composition baseline (``results/table1_cpu.csv``).
#: * ``smoke``: seconds of training per run (plus the chapter's start-up), for the test suite.
SCALES: dict[str, Scale] = {
    "paper": Scale(n_molecules=0, epochs_factor=1.0, h_divisor=1, key_seeds=3),
    "cpu": Scale(n_molecules=4000, epochs_factor=0.2, h_divisor=1, h_cap=16, target="residual", key_seeds=3),
    "cpu_atomization": Scale(n_molecules=4000, epochs_factor=0.2, h_divisor=1, h_cap=16),
    "cpu_v1": Scale(n_molecules=2000, epochs_factor=0.1, h_divisor=4),
    "smoke": Scale(n_molecules=60, epochs_factor=0.01, h_divisor=16),
}


def select_rows(names: Sequence[str] | None = None, table: str = "table1") -> list[Table1Row]:
    """Rows of a table of :data:`TABLES` by name, in the table's order (all rows when ``names`` is empty or None).

    Raises
    ------
    SweepError
        For an unknown table, or a name that is not a row of the table (the message lists the valid names).
    """
    if table not in TABLES:
        raise SweepError(f"unknown table {table!r} (tables: {', '.join(TABLES)})")
    rows = TABLES[table]
    if not names:
        return list(rows.values())
    unknown = [name for name in names if name not in rows]
    if unknown:
        title = "Table 1" if table == "table1" else f"{table!r} table"
        raise SweepError(f"unknown {title} row(s) {', '.join(unknown)} (rows: {', '.join(rows)})")
    return [row for name, row in rows.items() if name in names]


def scale_for(profile: str) -> Scale:
    """The :class:`Scale` of a named profile.

    Raises
    ------
    SweepError
        For an unknown profile.
    """
    if profile not in SCALES:
        raise SweepError(f"unknown sweep profile {profile!r} (profiles: {', '.join(SCALES)})")
    return SCALES[profile]


@dataclass(frozen=True)
class SweepRun:
    """One execution of the training chapter: a row at a scale with one seed, and where it lives."""

    row: Table1Row
    scale: Scale
    seed: int
    folder: Path

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
        }


def plan_sweep(rows: Sequence[Table1Row], scale: Scale, seeds: int, parent: Path, first_seed: int) -> list[SweepRun]:
    """Every run of a sweep, row by row, seeds ``first_seed, first_seed + 1, ...`` for each row.

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
    return [SweepRun(row, scale, first_seed + k, folder / f"{row.name}_s{first_seed + k}")
            for row in rows for k in range(scale.seeds(row, seeds))]


def relative_cost(L: Sequence[int], h: int) -> float:
    """Rough per-edge cost of one interaction block, used only to share out time estimates between rows.

    Per path ``(l1, l2, l3)`` the tensor product contracts ``(2l1+1)(2l2+1)(2l3+1)`` coupling coefficients,
    ``h`` channels of the input and ``h^2`` weights per output component; the radial MLP emits ``h^3`` weights
    per path. Against step times measured on two cores this is right to within a factor of about two.
    """
    from .so3.paths import tensor_product_paths  # here, not above: it loads torch, which the CLI's checks need not

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


def result_row(run: SweepRun, relative_to: Path) -> dict[str, Any]:
    """The CSV line of a finished run (paths relative to ``relative_to``)."""
    folder = RunFolder(run.folder)
    metrics, config = folder.metrics, folder.config
    return {
        "row": run.row.name, "L": json.dumps(config["L"]), "h": config["h"], "epochs": config["epochs"],
        "study_h": run.row.h, "study_epochs": run.row.epochs, "seed": config["seed"],
        "n_parameters": metrics["n_parameters"], "n_train": metrics["n_molecules"]["train"],
        "n_val": metrics["n_molecules"]["val"], "n_test": metrics["n_molecules"]["test"],
        "test_mae_ev": metrics["test"]["mae_ev"], "test_rmse_ev": metrics["test"]["rmse_ev"],
        "test_mse_ev2": metrics["test"]["mse_ev2"], "baseline_test_mae_ev": metrics["baseline_test"]["mae_ev"],
        "train_seconds": metrics["train_seconds"], "wall_seconds": notebook_seconds(run.notebook),
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

    The CSV is the record that travels: a run already in it (same row, seed and scale) is skipped even when its run
    folder is not on this machine, so a sweep stopped on one machine continues on another from the committed
    file. Every finished run appends its line at once (the file is rewritten atomically), lines of other runs are
    kept.

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
        head = (f"[{index + 1}/{len(plan)}] {run.row.name} seed {run.seed} "
                f"(h={scale.h(run.row)}, {scale.epochs(run.row)} epochs)")
        line = recorded.get(_key(run.row.name, run.seed, scale.slug))
        if line is not None:
            seconds, what = float(line["wall_seconds"] or "nan"), "recorded before, skipped"
        else:
            if run.finished:
                seconds, what = notebook_seconds(run.notebook), "finished before, recorded"
            else:
                report(f"{head}: running, expected {_estimate(done_seconds, done_work, run_work(run))}")
                seconds = _execute(run)
                what = f"trained in {format_seconds(seconds)}"
            line = result_row(run, out.parent)
            curves = read_csv(history_path(out), HISTORY_COLUMNS) + [
                {"row": run.row.name, "seed": run.seed, "scale": scale.slug, **{k: epoch.get(k, "") for k in
                                                                                 HISTORY_COLUMNS[3:]}}
                for epoch in RunFolder(run.folder).history()
            ]
            write_csv(history_path(out), curves, HISTORY_COLUMNS)
            lines.append(line)
            recorded[_key(run.row.name, run.seed, scale.slug)] = line
            write_csv(out, lines)
        if not math.isnan(seconds):  # recorded runs calibrate the estimates too, when a sweep continues
            done_seconds, done_work = done_seconds + seconds, done_work + run_work(run)
        waiting = [later for later in plan[index + 1:] if _key(later.row.name, later.seed, scale.slug) not in recorded]
        left = _estimate(done_seconds, done_work, sum(run_work(later) for later in waiting))
        elapsed = format_seconds(time.perf_counter() - started)
        report(f"{head}: {what}, test MAE {float(line['test_mae_ev']):.3f} eV | {len(waiting)} runs to go, "
               f"elapsed {elapsed}, left {left}")
    report(f"results: {out}")
    return lines



def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """One line per row of Table 1 that was run: our errors (mean and spread over seeds) beside the study's.

    Parameters
    ----------
    results
        The results CSV (:data:`CSV_COLUMNS`) as a data frame.

    Returns
    -------
    pandas.DataFrame
        Indexed by row name, in the table's order, with the study's configuration and numbers, ours at the
        scale run (``h``, ``epochs``, parameters, molecules), the number of seeds, the test MSE (eV²) and MAE (eV)
        as mean and sample standard deviation over seeds (NaN for one seed), the MSE in the study's normalised
        units (``mse_norm_mean``: eV² / :data:`STUDY_LABEL_STD`²), the composition baseline's MAE (eV) and MSE in
        eV² and normalised, and ``baseline_factor_min``, the smallest ratio baseline MAE / model MAE over the row's seeds.
    """
    frame = results.copy()
    frame["baseline_factor"] = frame["baseline_test_mae_ev"] / frame["test_mae_ev"]
    if "baseline_test_rmse_ev" in frame:
        frame["baseline_mse_ev2"] = pd.to_numeric(frame["baseline_test_rmse_ev"], errors="coerce") ** 2
    else:
        frame["baseline_mse_ev2"] = math.nan
    grouped = frame.groupby("row")
    summary = pd.DataFrame({
        "seeds": grouped.size(),
        "h": grouped["h"].first(), "epochs": grouped["epochs"].first(),
        "parameters": grouped["n_parameters"].first(), "train molecules": grouped["n_train"].first(),
        "mse_mean": grouped["test_mse_ev2"].mean(), "mse_std": grouped["test_mse_ev2"].std(ddof=1),
        "mae_mean": grouped["test_mae_ev"].mean(), "mae_std": grouped["test_mae_ev"].std(ddof=1),
        "baseline_mae_ev": grouped["baseline_test_mae_ev"].mean(),
        "baseline_mse_ev2": grouped["baseline_mse_ev2"].mean(),
        "baseline_factor_min": grouped["baseline_factor"].min(),
        "train_seconds": grouped["train_seconds"].mean(),
    })
    summary["mse_norm_mean"] = summary["mse_mean"] / STUDY_LABEL_STD**2
    summary["baseline_mse_norm"] = summary["baseline_mse_ev2"] / STUDY_LABEL_STD**2
    study = pd.DataFrame([{"row": row.name, "config": row.label, "study parameters (M)": row.parameters_m,
                           "study test MSE (eV²)": row.test_mse, "study epochs": row.epochs} for row in TABLE1])
    return study.set_index("row").join(summary, how="inner")


@dataclass(frozen=True)
class Claim:
    """A comparison the study makes: ``better`` has a lower test error than ``worse``, by ``factor`` or more."""

    text: str
    better: str
    worse: str
    factor: float = 1.0


#: The study's claims about Table 1 (its §3.1), as comparisons of two rows each.
CLAIMS: tuple[Claim, ...] = (
    Claim("[0,3,4,5,6] beats [0,1,2,3,4] at 30 epochs, over two times", "L0-3-4-5-6_h16_e30",
          "L0-1-2-3-4_h16_e30", 2.0),
    Claim("[0,3,4,5,6] beats [0,1,2,3,4] at 100 epochs", "L0-3-4-5-6_h16_e100", "L0-1-2-3-4_h16_e100"),
    Claim("[0,3,4,5,6] (100 epochs) beats the canonical [0,1,2] by an order of magnitude",
          "L0-3-4-5-6_h16_e100", "L0-1-2_h32_e100", 10.0),
    *(Claim(f"the canonical [0,1,2] beats [0,1,2,{l}] (h=32, 100 epochs)", "L0-1-2_h32_e100",
            f"L0-1-2-{l}_h32_e100") for l in (4, 6, 8, 10)),
    Claim("at 30 epochs the error improves from [0..4] to [0..6]", "L0-1-2-3-4-5-6_h16_e30", "L0-1-2-3-4_h16_e30"),
    Claim("... and degrades again from [0..6] to [0..8]", "L0-1-2-3-4-5-6_h16_e30",
          "L0-1-2-3-4-5-6-7-8_h16_e30"),
    Claim("[0,1,2,3,4]: 100 epochs beat 30", "L0-1-2-3-4_h16_e100", "L0-1-2-3-4_h16_e30"),
    Claim("[0,3,4,5,6]: 100 epochs beat 30", "L0-3-4-5-6_h16_e100", "L0-3-4-5-6_h16_e30"),
)
#: The claims chapter 6 singles out: the sparse set beats the dense one at equal epochs.
KEY_CLAIMS = (CLAIMS[0].text, CLAIMS[1].text)


def paired_log_ratios(results: pd.DataFrame, better: str, worse: str, value: str = "test_mse_ev2") -> pd.Series:
    """``log(value of worse / value of better)`` (default: test MSE) for every seed both rows ran with, by seed.

    Runs that share a seed share their molecules, split and data order, so the per-seed ratio removes most of
    the variation the two rows have in common.
    """
    mse = results.pivot_table(index="seed", columns="row", values=value, aggfunc="mean")
    if better not in mse or worse not in mse:
        return pd.Series(dtype=float)
    pairs = mse[[better, worse]].dropna()
    return (pairs[worse] / pairs[better]).map(math.log)


def ratio_interval(log_ratios: Sequence[float], level: float = LEVEL) -> tuple[float, float, float]:
    """Geometric mean of paired ratios and its t interval: ``(ratio, low, high)``; ``low, high`` NaN for n < 2."""
    return tuple(math.exp(value) for value in t_interval(log_ratios, level))


def ratio_verdict(factor: float, low: float, high: float, above: str, below: str) -> str:
    """The verdict on a seed-paired ratio interval ``[low, high]`` of runs at best ``factor`` times better than the
    composition baseline: ``untestable at this scale`` below :data:`BASELINE_FACTOR`, ``above`` / ``below`` when
    the interval lies above / below 1, ``inconclusive`` otherwise (including no interval)."""
    if factor < BASELINE_FACTOR:
        return "untestable at this scale"
    if math.isnan(low):
        return "inconclusive"
    return above if low > 1 else below if high < 1 else "inconclusive"


def judge_claim(claim: Claim, results: pd.DataFrame, level: float = LEVEL) -> dict[str, Any]:
    """Verdict on one claim from the per-run results, on the test MSE (the study's measure), seed-paired.

    Verdicts:

    * ``not run`` — a row of the claim has no runs;
    * ``untestable at this scale`` — a run of either row does not beat the composition baseline's test MAE by
      :data:`BASELINE_FACTOR` (such a model has not learned more than composition, so it cannot say which
      orders matter);
    * ``reproduced`` / ``contradicted`` — the ``level`` t interval of the seed-paired ratio (worse / better) lies
      above / below 1;
    * ``inconclusive`` — otherwise, including fewer than two shared seeds (whatever the direction).

    ``margin`` says whether the interval also clears the study's factor (``yes``), falls short of it (``no``) or
    straddles it (``unclear``); it is empty for claims without a factor.

    Returns
    -------
    dict
        ``claim``, ``study`` (published ratio), ``ours`` (ratio with interval), ``seeds`` (paired),
        ``baseline factor`` (the smallest over both rows' runs), ``margin``, ``verdict``.
    """
    better, worse = ROWS[claim.better], ROWS[claim.worse]
    verdict: dict[str, Any] = {"claim": claim.text, "study": f"x{worse.test_mse / better.test_mse:.3g}"}
    runs = results[results["row"].isin([claim.better, claim.worse])]
    if not {claim.better, claim.worse} <= set(runs["row"]):
        return verdict | {"ours": "", "seeds": 0, "baseline factor": math.nan, "margin": "", "verdict": "not run"}
    factor = float((runs["baseline_test_mae_ev"] / runs["test_mae_ev"]).min())
    logs = paired_log_ratios(results, claim.better, claim.worse)
    ratio, low, high = ratio_interval(logs, level)
    ours = "" if math.isnan(ratio) else f"x{ratio:.3g}" + ("" if math.isnan(low) else f" [{low:.3g}, {high:.3g}]")
    margin = ""
    if claim.factor > 1 and not math.isnan(low):
        margin = "yes" if low >= claim.factor else "no" if high < claim.factor else "unclear"
    text = ratio_verdict(factor, low, high, "reproduced", "contradicted")
    return verdict | {"ours": ours, "seeds": len(logs), "baseline factor": factor, "margin": margin, "verdict": text}


def judge_claims(results: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """:func:`judge_claim` for every claim of :data:`CLAIMS`, one line each, indexed by the claim."""
    return pd.DataFrame([judge_claim(claim, results, level) for claim in CLAIMS]).set_index("claim")


def without_effects(results: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """What retraining without each order does to the test MAE, seed-paired against the full configuration.

    Parameters
    ----------
    results
        Lines of both the Table 1 sweep and the ``without`` sweep at one scale (concatenated).

    Returns
    -------
    pandas.DataFrame
        One line per row of :data:`WITHOUT` that ran: ``configuration`` (the parent's label), ``removed``,
        ``seeds`` (paired), ``ratio`` (geometric mean of MAE without / MAE with), ``low``, ``high`` and
        ``verdict``: ``used`` (interval above 1: removing the order hurts), ``not needed`` (below 1: the
        configuration trains better without it), ``inconclusive``, or ``untestable at this scale`` when a run of
        either configuration is not :data:`BASELINE_FACTOR` better than the composition baseline.
    """
    lines = []
    for name, without in WITHOUT.items():
        runs = results[results["row"].isin([name, without.parent])]
        if not {name, without.parent} <= set(runs["row"]):
            continue
        logs = paired_log_ratios(results, without.parent, name, "test_mae_ev")
        ratio, low, high = ratio_interval(logs, level)
        factor = float((runs["baseline_test_mae_ev"] / runs["test_mae_ev"]).min())
        lines.append({"configuration": ROWS[without.parent].label, "removed": without.removed, "seeds": len(logs),
                      "ratio": ratio, "low": low, "high": high,
                      "verdict": ratio_verdict(factor, low, high, "used", "not needed")})
    return pd.DataFrame(lines, columns=["configuration", "removed", "seeds", "ratio", "low", "high", "verdict"])


def rank_agreement(summary: pd.DataFrame) -> pd.DataFrame:
    """Spearman rank correlation of the study's test errors and ours, within each group of the study's epochs
    (30 and 100: rows trained for different lengths are not comparable), from :func:`summarize`'s table."""
    from scipy import stats

    lines = []
    for epochs, group in summary.groupby("study epochs"):
        rho = stats.spearmanr(group["study test MSE (eV²)"], group["mse_mean"]).statistic if len(group) > 2 else math.nan
        lines.append({"study epochs": epochs, "rows": len(group), "spearman rho": rho})
    return pd.DataFrame(lines).set_index("study epochs")


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
