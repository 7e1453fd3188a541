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

from .runner import RunnerError, find_chapter, run_chapter
from .runs import RunFolder, atomic_write_bytes, runs_dir

#: The chapter every sweep run executes.
TRAINING_CHAPTER = "04_model_and_training"
#: Sub-folder of the runs folder that holds the sweeps' run folders.
SWEEP_FOLDER = "table1"
#: Default results file of ``python -m equinb sweep table1`` (``{profile}`` is filled in).
DEFAULT_CSV = "results/table1_{profile}.csv"


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
    """

    n_molecules: int
    epochs_factor: float
    h_divisor: int
    compile: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.n_molecules, bool) or not isinstance(self.n_molecules, int) or self.n_molecules < 0:
            raise SweepError(f"n_molecules must be a non-negative integer, got {self.n_molecules!r}")
        if not (isinstance(self.epochs_factor, (int, float)) and 0 < self.epochs_factor <= 1):
            raise SweepError(f"epochs_factor must be in (0, 1], got {self.epochs_factor!r}")
        if isinstance(self.h_divisor, bool) or not isinstance(self.h_divisor, int) or self.h_divisor < 1:
            raise SweepError(f"h_divisor must be a positive integer, got {self.h_divisor!r}")

    def epochs(self, row: Table1Row) -> int:
        """Epochs a row trains for at this scale."""
        return max(1, round(row.epochs * self.epochs_factor))

    def h(self, row: Table1Row) -> int:
        """Hidden multiplicity of a row at this scale."""
        return max(1, row.h // self.h_divisor)

    @property
    def slug(self) -> str:
        """Folder name of this scale's runs, e.g. ``"n2000_epochs0.1_hdiv4"``."""
        return f"n{self.n_molecules or 'all'}_epochs{self.epochs_factor:g}_hdiv{self.h_divisor}"

    def describe(self) -> str:
        """One line for readers, e.g. ``"2,000 molecules, epochs x 0.1, h / 4"``."""
        molecules = "all of QM9" if self.n_molecules == 0 else f"{self.n_molecules:,} molecules"
        return f"{molecules}, epochs x {self.epochs_factor:g}, h / {self.h_divisor}"


#: Named scales of ``python -m equinb sweep table1 --profile NAME``.
#:
#: * ``paper``: the study's setting (all of QM9, its epochs and widths), for a GPU (eager, like chapter 4's
#:   ``paper`` profile; a :class:`Scale` with ``compile=True`` trains through ``torch.compile``).
#: * ``cpu``: a quarter of the widths, a tenth of the epochs, 2,000 molecules: the eleven rows took 65 minutes on
#:   two shared cores with one torch thread (costs per row in chapter 6), the ``[0..8]`` row alone 19 of them.
#: * ``smoke``: seconds of training per run (plus the chapter's start-up), for the test suite.
SCALES: dict[str, Scale] = {
    "paper": Scale(n_molecules=0, epochs_factor=1.0, h_divisor=1),
    "cpu": Scale(n_molecules=2000, epochs_factor=0.1, h_divisor=4),
    "smoke": Scale(n_molecules=60, epochs_factor=0.01, h_divisor=16),
}


def select_rows(names: Sequence[str] | None = None) -> list[Table1Row]:
    """Rows of :data:`TABLE1` by name, in the table's order (all rows when ``names`` is empty or None).

    Raises
    ------
    SweepError
        If a name is not a row of the table (the message lists the valid names).
    """
    if not names:
        return list(TABLE1)
    unknown = [name for name in names if name not in ROWS]
    if unknown:
        raise SweepError(f"unknown Table 1 row(s) {', '.join(unknown)} (rows: {', '.join(ROWS)})")
    return [row for row in TABLE1 if row.name in names]


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
            for row in rows for k in range(seeds)]


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
    "device", "scale", "run", "tp_backend",
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
        "tp_backend": config.get("tp_backend", "e3nn"),
    }


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write the results CSV atomically (header only when there are no rows)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
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


def run_sweep(
    rows: Sequence[Table1Row],
    scale: Scale,
    seeds: int = 1,
    parent: str | os.PathLike | None = None,
    out_csv: str | os.PathLike | None = None,
    report: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Run (or resume, or skip) every run of a sweep and write the results CSV.

    Parameters
    ----------
    rows
        Rows of :data:`TABLE1` to run (see :func:`select_rows`).
    scale
        How far to scale the study's setting down (see :data:`SCALES`).
    seeds
        Runs per row; seeds start at the training chapter's default seed (the study's, 21616).
    parent
        Runs folder (default ``$EQUINB_RUNS`` or ``./runs``); runs go to ``<parent>/table1/<scale.slug>/``.
    out_csv
        Results file (default ``<parent>/table1/<scale.slug>/table1.csv``), rewritten after every run.
    report
        Receives one progress line per run.

    Returns
    -------
    list of dict
        One :data:`CSV_COLUMNS` record per run, in the order of the sweep.

    Raises
    ------
    SweepError
        For a bad request (nothing is executed).
    equinb.runner.ChapterFailed
        If the training chapter fails; finished runs stay finished, so running the sweep again continues.
    SweepFailed
        If the chapter ran but its run folder did not finish.
    """
    first_seed = find_chapter(TRAINING_CHAPTER).defaults["seed"]
    plan = plan_sweep(rows, scale, seeds, runs_dir(parent), first_seed)
    out = Path(out_csv) if out_csv is not None else plan[0].folder.parent / "table1.csv"
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    done_seconds, done_work = 0.0, 0.0
    for index, run in enumerate(plan):
        head = (f"[{index + 1}/{len(plan)}] {run.row.name} seed {run.seed} "
                f"(h={scale.h(run.row)}, {scale.epochs(run.row)} epochs)")
        if run.finished:
            seconds, what = notebook_seconds(run.notebook), "finished before, skipped"
        else:
            report(f"{head}: running, expected {_estimate(done_seconds, done_work, run_work(run))}")
            seconds = _execute(run)
            what = f"trained in {format_seconds(seconds)}"
        if not math.isnan(seconds):  # skipped runs calibrate the estimates too, when a sweep continues
            done_seconds, done_work = done_seconds + seconds, done_work + run_work(run)
        results.append(result_row(run, out.parent))
        write_csv(out, results)
        left = _estimate(done_seconds, done_work, sum(run_work(later) for later in plan[index + 1:]
                                                      if not later.finished))
        elapsed = format_seconds(time.perf_counter() - started)
        report(f"{head}: {what}, test MAE {results[-1]['test_mae_ev']:.3f} eV | elapsed {elapsed}, left {left}")
    report(f"results: {out}")
    return results


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
        scale run (``h``, ``epochs``, parameters, molecules), the number of seeds and, for the test MSE (eV²)
        and MAE (eV), the mean and the sample standard deviation over seeds (NaN for one seed).
    """
    grouped = results.groupby("row")
    summary = pd.DataFrame({
        "seeds": grouped.size(),
        "h": grouped["h"].first(), "epochs": grouped["epochs"].first(),
        "parameters": grouped["n_parameters"].first(), "train molecules": grouped["n_train"].first(),
        "mse_mean": grouped["test_mse_ev2"].mean(), "mse_std": grouped["test_mse_ev2"].std(ddof=1),
        "mae_mean": grouped["test_mae_ev"].mean(), "mae_std": grouped["test_mae_ev"].std(ddof=1),
        "train_seconds": grouped["train_seconds"].mean(),
    })
    study = pd.DataFrame([{"row": row.name, "config": row.label, "study parameters (M)": row.parameters_m,
                           "study test MSE (eV²)": row.test_mse} for row in TABLE1]).set_index("row")
    return study.join(summary, how="inner")


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
#: The claim chapter 6 singles out: the sparse set beats the dense one at equal epochs.
KEY_CLAIMS = (CLAIMS[0].text, CLAIMS[1].text)


def _pair(mean_a: float, mean_b: float, std_a: float = math.nan, std_b: float = math.nan) -> str:
    spread = "" if math.isnan(std_a) else f" ± {std_a:.3g}"
    spread_b = "" if math.isnan(std_b) else f" ± {std_b:.3g}"
    return f"{mean_a:.3g}{spread} vs {mean_b:.3g}{spread_b} (x{mean_b / mean_a:.3g})"


def _verdict(direction: str, margin: str, separated: str) -> str:
    """One phrase from the three tests of a claim."""
    if direction == "no":
        return "not reproduced"
    if separated == "one seed":
        return "same direction, one seed only"
    if separated == "no":
        return "same direction, within the seed spread"
    return "reproduced" if margin == "yes" else "reproduced, by a smaller margin"


def judge_claim(claim: Claim, summary: pd.DataFrame) -> dict[str, str]:
    """Verdict on one claim from :func:`summarize`'s table (compared on the test MSE, the study's measure).

    Returns
    -------
    dict
        ``claim``; ``study`` and ``ours`` (better vs worse, and the ratio); ``direction`` ("yes"/"no": is the
        better row better), ``margin`` (by the study's factor too?), ``beyond spread`` ("yes"/"no" when the
        means differ by more than the two seed spreads added, "one seed" otherwise) and ``verdict``: "reproduced"
        only when the direction holds beyond the seed spread; all "not run" when a row is missing.
    """
    better, worse = ROWS[claim.better], ROWS[claim.worse]
    verdict = {"claim": claim.text, "study": _pair(better.test_mse, worse.test_mse)}
    if claim.better not in summary.index or claim.worse not in summary.index:
        return verdict | dict.fromkeys(("ours", "direction", "margin", "beyond spread", "verdict"), "not run")
    a, b = summary.loc[claim.better], summary.loc[claim.worse]
    ratio = b["mse_mean"] / a["mse_mean"]
    if math.isnan(a["mse_std"]) or math.isnan(b["mse_std"]):
        separated = "one seed"
    else:
        separated = "yes" if a["mse_mean"] + a["mse_std"] < b["mse_mean"] - b["mse_std"] else "no"
    direction, margin = ("yes" if ratio > 1 else "no"), ("yes" if ratio >= claim.factor else "no")
    return verdict | {
        "ours": _pair(a["mse_mean"], b["mse_mean"], a["mse_std"], b["mse_std"]),
        "direction": direction, "margin": margin, "beyond spread": separated,
        "verdict": _verdict(direction, margin, separated),
    }


def judge_claims(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`judge_claim` for every claim of :data:`CLAIMS`, one line each."""
    return pd.DataFrame([judge_claim(claim, summary) for claim in CLAIMS]).set_index("claim")


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add the ``sweep`` command to the command line's sub-commands."""
    sweep = commands.add_parser("sweep", help="run the training chapter over the study's Table 1")
    sweep.add_argument("table", choices=["table1"], help="the table to reproduce")
    sweep.add_argument("--profile", default="cpu", help=f"scale: {', '.join(SCALES)} (default cpu)")
    sweep.add_argument("--seeds", type=int, default=1, help="runs per row, seeds 21616, 21617, ... (default 1)")
    sweep.add_argument("--only", nargs="+", metavar="ROW", help=f"rows to run (default all): {', '.join(ROWS)}")
    sweep.add_argument("--runs", help="runs folder (default $EQUINB_RUNS or ./runs)")
    sweep.add_argument("--out", help=f"results CSV (default {DEFAULT_CSV})")


def command(args: argparse.Namespace) -> Path:
    """Run the ``sweep`` command; returns the results CSV.

    Raises
    ------
    SweepError
        For a bad request, before anything runs.
    """
    rows = select_rows(args.only)
    scale = scale_for(args.profile)
    out = Path(args.out or DEFAULT_CSV.format(profile=args.profile))
    run_sweep(rows, scale, args.seeds, args.runs, out)
    return out
