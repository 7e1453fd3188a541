"""The study's Table 1 and the scales a sweep runs it at: rows, the "without one order" rows, scales, labels.

:data:`TABLE1` holds the study's eleven configurations with the numbers it published (parameter counts in
millions, test error as printed: a mean squared error in eV², under the heading "test error (eV)"). A
:class:`Scale` says how far a sweep scales the study's setting down (:data:`SCALES` names the book's), and
:func:`run_label` says what a run actually was beside what the study ran (e.g.
``"[0,1,2] h16 (study 32), 20 ep (study 100)"``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..runner import RunnerError

#: Sub-folder of the runs folder that holds the sweeps' run folders.
SWEEP_FOLDER = "table1"


class SweepError(RunnerError):
    """A sweep request refused before anything runs (unknown row or profile, bad seed count)."""


def orders_label(L: Sequence[int]) -> str:
    """Orders as the book writes them: ``"[0,1,2]"``, ``"[0,3,4,5,6]"``, and ``"[0..4]"`` for four or more
    consecutive orders from 0."""
    L = [int(l) for l in L]
    if len(L) >= 4 and L == list(range(len(L))):
        return f"[0..{L[-1]}]"
    return f"[{','.join(str(l) for l in L)}]"


def run_label(L: Sequence[int], h: int, epochs: int, study_h: int, study_epochs: int) -> str:
    """What a run was, beside what the study ran where they differ.

    Examples: ``"[0,1,2] h16 (study 32), 20 ep (study 100)"``; ``"[0..4] h16, 30 ep"`` at the study's setting.

    Parameters
    ----------
    L, h, epochs
        The orders, width and epochs of the run.
    study_h, study_epochs
        The study's width and epochs for the same row of Table 1.
    """
    width = f"h{h}" + ("" if h == study_h else f" (study {study_h})")
    length = f"{epochs} ep" + ("" if epochs == study_epochs else f" (study {study_epochs})")
    return f"{orders_label(L)} {width}, {length}"


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
        """The study's configuration, e.g. ``"[0,3,4,5,6] h16, 30 ep"`` (what ran is :meth:`Scale.label`)."""
        return f"{orders_label(self.L)} h{self.h}, {self.epochs} ep"


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
        from ..target import TARGETS  # here, not above: it loads torch, which the CLI's checks need not

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

    def label(self, row: Table1Row) -> str:
        """What a row runs as at this scale, beside the study's setting (:func:`run_label`)."""
        return run_label(row.L, self.h(row), self.epochs(row), row.h, row.epochs)

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

