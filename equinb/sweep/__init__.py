"""Table 1 of the study, reproduced by papermill sweeps over the training chapter.

Three modules, one job each; every public name is importable from here (``from equinb import sweep``):

* :mod:`~equinb.sweep.table` — the study's rows (:data:`TABLE1`, the "without one order" rows :data:`WITHOUT`),
  the :class:`Scale` a sweep runs them at (:data:`SCALES`) and labels that say what ran (:func:`run_label`).
* :mod:`~equinb.sweep.run` — running a sweep (:func:`run_sweep`): one papermill execution of the training chapter
  per row and seed, each finished run appended to the results CSV by :func:`record_run`; the ``sweep`` command.
* :mod:`~equinb.sweep.claims` — the CSV turned into chapter 6's table and verdicts (:func:`summarize`,
  :func:`judge_claims`, :func:`without_effects`), by the rules of :mod:`equinb.verdicts`.
"""

from .claims import (
    CLAIMS,
    KEY_CLAIMS,
    Claim,
    claim_tests,
    format_ratio,
    judge_claims,
    paired_log_ratios,
    rank_agreement,
    summarize,
    without_effects,
)
from .run import (
    CSV_COLUMNS,
    DEFAULT_CSV,
    HISTORY_COLUMNS,
    TRAINING_CHAPTER,
    SweepFailed,
    SweepRun,
    add_parser,
    command,
    format_seconds,
    history_path,
    notebook_seconds,
    plan_sweep,
    read_csv,
    record_run,
    relative_cost,
    result_row,
    run_sweep,
    run_work,
    write_csv,
)
from .table import (
    KEY_ROWS,
    ROWS,
    SCALES,
    STUDY_LABEL_STD,
    SWEEP_FOLDER,
    TABLE1,
    TABLES,
    WITHOUT,
    WITHOUT_PARENTS,
    Scale,
    SweepError,
    Table1Row,
    WithoutRow,
    orders_label,
    run_label,
    scale_for,
    select_rows,
)

__all__ = [
    "CLAIMS", "CSV_COLUMNS", "DEFAULT_CSV", "HISTORY_COLUMNS", "KEY_CLAIMS", "KEY_ROWS", "ROWS", "SCALES",
    "STUDY_LABEL_STD", "SWEEP_FOLDER", "TABLE1", "TABLES", "TRAINING_CHAPTER", "WITHOUT", "WITHOUT_PARENTS", "Claim",
    "Scale", "SweepError", "SweepFailed", "SweepRun", "Table1Row", "WithoutRow", "add_parser", "claim_tests",
    "command", "format_ratio", "format_seconds", "history_path", "judge_claims", "notebook_seconds",
    "orders_label", "paired_log_ratios", "plan_sweep", "rank_agreement", "read_csv", "record_run", "relative_cost",
    "result_row", "run_label", "run_sweep", "run_work", "scale_for", "select_rows", "summarize",
    "without_effects", "write_csv",
]
