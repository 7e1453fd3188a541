"""Irrep usage of every trained run of a sweep, one CSV for the book: ``python -m equinb usage``.

Reads a sweep's results CSV (:mod:`equinb.sweep`), and for every finished run whose test MAE beats the composition
baseline by :data:`~equinb.baseline.BASELINE_FACTOR` computes :func:`~equinb.analysis.usage.usage_table` on its
test split (feature means from its training split) and appends the rows to the usage CSV, atomically, one run at
a time: an interrupted collection continues where it stopped, and runs already in the CSV are skipped. Runs
below the factor are listed as skipped: they have learned little beyond composition, so they cannot say which
orders are used.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..baseline import BASELINE_FACTOR
from ..runs import RunFolder, atomic_write_bytes
from ..stats import LEVEL, N_BOOT, t_interval
from ..verdicts import PRIMARY, judge_family
from ..trained import run_data
from .embeddings import load_test_set
from .usage import element_feature_means, feature_means, usage_table

#: Where the book's usage results live.
DEFAULT_CSV = "results/irrep_usage_cpu.csv"
#: Columns naming the run of a usage row, before the measure columns.
RUN_COLUMNS = ("row", "L", "target", "seed", "epochs", "scale", "trained_factor")
#: Columns of the usage CSV, in order.
USAGE_COLUMNS = (*RUN_COLUMNS, "layer", "l", "measure", "value", "ci_low", "ci_high", "n_molecules",
                 "features_trained")


class UsageError(ValueError):
    """A bad ``usage`` request, raised before anything is measured."""


def _run_key(row: dict | pd.Series) -> tuple[str, int, str]:
    return str(row["row"]), int(row["seed"]), str(row["scale"])


def run_usage(folder: RunFolder, n_test: int | None = None, n_means: int | None = 1000, level: float = LEVEL,
              n_boot: int = N_BOOT) -> pd.DataFrame:
    """:func:`~equinb.analysis.usage.usage_table` of one finished run, with the per-element mean-ablation beside
    the all-atom one.

    Parameters
    ----------
    folder
        The run.
    n_test
        First test molecules measured (None: the whole test split).
    n_means
        First training molecules the feature means are taken over (None: all).
    level, n_boot
        Bootstrap intervals over the test molecules.
    """
    test = load_test_set(folder, n_test)
    train = run_data(folder, ["train"], limit=n_means, arrays=test.arrays).graphs["train"]
    return usage_table(test, feature_means(test.model, train), level=level, n_boot=n_boot,
                       element_means=element_feature_means(test.model, train))


def collect_usage(results_csv: str | os.PathLike, out_csv: str | os.PathLike = DEFAULT_CSV,
                  rows: Sequence[str] | None = None, n_test: int | None = None, n_means: int | None = 1000,
                  n_boot: int = N_BOOT, log=print) -> pd.DataFrame:
    """Append the usage rows of every trained run of ``results_csv`` not yet in ``out_csv``.

    Parameters
    ----------
    results_csv
        A sweep's results (its ``run`` column holds run folders relative to the CSV's folder).
    out_csv
        The usage CSV (created if missing).
    rows
        Table rows to measure (default: all).
    n_test, n_means, n_boot
        See :func:`run_usage`.
    log
        Progress lines (one per run, with an estimate of the time left).

    Returns
    -------
    pandas.DataFrame
        Every row of ``out_csv`` after the collection.

    Raises
    ------
    UsageError
        If ``results_csv`` is missing or has no runs of ``rows``.
    """
    results_csv, out_csv = Path(results_csv), Path(out_csv)
    if not results_csv.is_file():
        raise UsageError(f"no sweep results at {results_csv}")
    runs = pd.read_csv(results_csv)
    if rows:
        runs = runs[runs["row"].isin(rows)]
    if runs.empty:
        raise UsageError(f"{results_csv} has no runs of the rows {list(rows or [])}")
    done = pd.read_csv(out_csv) if out_csv.is_file() else pd.DataFrame(columns=USAGE_COLUMNS)
    seen = {_run_key(r) for _, r in done.iterrows()}
    todo = [r for _, r in runs.iterrows() if _run_key(r) not in seen]
    started, measured = time.perf_counter(), 0
    for index, run in enumerate(todo, 1):
        name = f"[{index}/{len(todo)}] {run['row']} seed {run['seed']}"
        factor = float(run["baseline_test_mae_ev"]) / float(run["test_mae_ev"])
        folder = RunFolder(results_csv.parent / run["run"])
        if factor < BASELINE_FACTOR:
            log(f"{name}: skipped, only {factor:.2f}x better than the composition baseline")
            continue
        if not folder.path.is_dir():
            log(f"{name}: skipped, its run folder {folder.path} is not on this machine")
            continue
        table = run_usage(folder, n_test, n_means, n_boot=n_boot)
        meta = {"row": run["row"], "L": json.dumps(json.loads(run["L"])), "target": run["target"],
                "seed": int(run["seed"]), "epochs": int(run["epochs"]), "scale": run["scale"],
                "trained_factor": factor}
        table = table.assign(**meta)[list(USAGE_COLUMNS)]
        done = pd.concat([done, table], ignore_index=True) if len(done) else table
        atomic_write_bytes(out_csv, done.to_csv(index=False).encode())
        measured += 1
        elapsed = time.perf_counter() - started
        left = elapsed / measured * (len(todo) - index)
        log(f"{name}: measured ({factor:.2f}x the baseline), elapsed {elapsed:.0f} s, about {left:.0f} s left")
    return done


def summarize_usage(usage: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """Mean over seeds of every measure, with the t interval over seeds and the widest per-seed bootstrap.

    Returns
    -------
    pandas.DataFrame
        One line per (row, target, layer, l, measure): ``mean``, ``seed_low``, ``seed_high`` (NaN with one
        seed), ``seeds``, ``seeds_positive`` (how many seeds' values are above 0), ``bootstrap_low``/
        ``bootstrap_high`` (the lowest and highest per-seed bound), ``features_trained`` and ``seed_values`` (the
        per-seed values, a tuple, for :func:`usage_verdicts`).
    """
    keys = ["row", "target", "layer", "l", "measure"]
    lines = []
    for key, group in usage.groupby(keys, sort=False):
        mean, low, high = t_interval(group["value"], level)
        lines.append(dict(zip(keys, key)) | {
            "mean": mean, "seed_low": low, "seed_high": high, "seeds": group["seed"].nunique(),
            "seeds_positive": int((group["value"] > 0).sum()),
            "bootstrap_low": float(group["ci_low"].min()), "bootstrap_high": float(group["ci_high"].max()),
            "features_trained": bool(group["features_trained"].all()),
            "seed_values": tuple(float(v) for v in group["value"])})
    return pd.DataFrame(lines)


#: Verdict of an order whose features never received a training gradient.
UNTRAINED = "untrained features"
#: Columns of :func:`usage_verdicts`.
VERDICT_COLUMNS = ("verdict", "row", "target", "l", "seeds", "seeds positive", "mean", "low", "high", "adj_low",
                   "adj_high", "p_holm")


def usage_verdicts(summary: pd.DataFrame, measure: str = PRIMARY["usage"], layer: str = "all",
                   level: float = LEVEL) -> pd.DataFrame:
    """Is each order used? One Holm family over the (row, target, l) cells of one measure at one layer.

    By the rules of :mod:`equinb.verdicts`: seed-level variation only (the t interval over seeds; the bootstrap
    over one seed's molecules never decides), cells with one seed :data:`~equinb.verdicts.ONE_SEED`, Holm over the
    cells judged. Verdicts: ``used`` (adjusted interval above 0), ``ablation helps`` (below 0), ``inconclusive``,
    ``one seed: not judged``, ``untrained features`` (the features read never received a gradient; not in the
    family).

    Parameters
    ----------
    summary
        From :func:`summarize_usage`.
    measure, layer
        The measure (default the family's primary one, :data:`equinb.verdicts.PRIMARY`) and the layer read.
    level
        Family-wise confidence level.

    Returns
    -------
    pandas.DataFrame
        :data:`VERDICT_COLUMNS`: ``low``/``high`` unadjusted, ``adj_low``/``adj_high`` Holm-adjusted, ``seeds
        positive`` as ``"k/n"``.
    """
    cells = summary[(summary["measure"] == measure) & (summary["layer"] == layer)].reset_index(drop=True)
    if cells.empty:
        return pd.DataFrame(columns=list(VERDICT_COLUMNS))
    trained = cells["features_trained"].astype(bool)
    table = judge_family({k: (list(v) if trained[k] else []) for k, v in cells["seed_values"].items()}, "used",
                         "ablation helps", level)
    verdict = table["verdict"].where(trained, UNTRAINED)
    return pd.DataFrame({
        "verdict": verdict, "row": cells["row"], "target": cells["target"], "l": cells["l"],
        "seeds": cells["seeds"], "seeds positive": [f"{k}/{n}" for k, n in zip(cells["seeds_positive"],
                                                                              cells["seeds"])],
        "mean": cells["mean"], "low": table["low"], "high": table["high"], "adj_low": table["adj_low"],
        "adj_high": table["adj_high"], "p_holm": table["p_holm"],
    }, columns=list(VERDICT_COLUMNS))


def add_parser(commands: argparse._SubParsersAction) -> None:
    """The ``usage`` command's arguments."""
    usage = commands.add_parser("usage", help="measure irrep usage of a sweep's trained runs into one CSV")
    usage.add_argument("--results", required=True, help="a sweep's results CSV (results/table1_*.csv)")
    usage.add_argument("--out", default=DEFAULT_CSV, help=f"usage CSV, appended (default {DEFAULT_CSV})")
    usage.add_argument("--only", nargs="+", metavar="ROW", help="table rows to measure (default all)")
    usage.add_argument("--n-test", type=int, default=0, help="test molecules per run (default 0: all)")
    usage.add_argument("--n-means", type=int, default=1000, help="training molecules for the feature means")
    usage.add_argument("--n-boot", type=int, default=N_BOOT, help=f"bootstrap resamples (default {N_BOOT})")


def command(args: argparse.Namespace) -> Path:
    """Run the ``usage`` command; returns the usage CSV."""
    if min(args.n_test, args.n_means) < 0 or args.n_boot < 1:
        raise UsageError(f"--n-test and --n-means must be non-negative and --n-boot positive, got {args.n_test}, "
                         f"{args.n_means}, {args.n_boot}")
    collect_usage(args.results, args.out, args.only, args.n_test or None, args.n_means or None, args.n_boot)
    return Path(args.out)


__all__ = ["DEFAULT_CSV", "UNTRAINED", "USAGE_COLUMNS", "UsageError", "VERDICT_COLUMNS", "collect_usage", "run_usage",
           "summarize_usage", "usage_verdicts"]
