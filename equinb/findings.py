"""The book's main finding, computed from the committed results: are l = 1, 2 used by the models that train?

The study's central claim is that a scalar-trained equivariant model ignores its l = 1, 2 features. At the cpu
scale (:data:`~equinb.sweep.SCALES` ``"cpu"``) two measurements answer it for [0,1,2] and [0..4] at 20 epochs:
mean-ablation of each order at every block (the usage family, :func:`equinb.analysis.collect.usage_verdicts`)
and retraining without the order (:func:`equinb.sweep.without_effects`). :func:`main_finding` returns their
numbers with unadjusted and Holm-adjusted intervals; :func:`finding_sentence` states them in one paragraph, so no
chapter types a number in.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

from .analysis.collect import DEFAULT_CSV as USAGE_CSV
from .analysis.collect import summarize_usage, usage_verdicts
from .stats import LEVEL
from .sweep import DEFAULT_CSV, ROWS, SCALES, format_ratio, run_label, without_effects

#: The committed results of the cpu scale (paths relative to the repository root).
CPU_RESULTS = DEFAULT_CSV.format(table="table1", profile="cpu", slug=SCALES["cpu"].slug)
CPU_WITHOUT = DEFAULT_CSV.format(table="without", profile="cpu", slug=SCALES["cpu"].slug)
#: The configurations and orders the finding is about: [0,1,2] and [0..4] at the study's 100-epoch rows.
FINDING_ROWS = ("L0-1-2_h32_e100", "L0-1-2-3-4_h16_e100")
FINDING_ORDERS = (1, 2)
#: Columns of :func:`main_finding`.
FINDING_COLUMNS = (
    "configuration", "l", "usage verdict", "MAE increase (eV)", "low", "high", "adj_low", "adj_high",
    "seeds positive", "retrained", "retrain verdict", "MAE ratio without / with", "ratio low", "ratio high",
    "ratio adj_low", "ratio adj_high",
)


def main_finding(root: str | os.PathLike = ".", level: float = LEVEL) -> pd.DataFrame:
    """Usage and retraining cost of l = 1, 2 in [0,1,2] and [0..4] at 20 epochs, from the committed CSVs.

    Parameters
    ----------
    root
        The repository root (the CSVs are :data:`CPU_RESULTS`, :data:`CPU_WITHOUT` and the usage CSV under it).
    level
        Confidence level (unadjusted) and family-wise level (Holm-adjusted intervals, each over its whole family:
        every usage cell, every retrain-without cell).

    Returns
    -------
    pandas.DataFrame
        One line per (configuration, l), columns :data:`FINDING_COLUMNS`: the mean-ablation increase of the test
        MAE (eV, mean over seeds) with its t interval over seeds and its Holm interval, how many seeds are
        positive, and where the configuration was retrained without the order (``retrained``) the MAE ratio
        without / with and both its intervals (NaN where it was not).

    Raises
    ------
    FileNotFoundError
        If a committed CSV is missing (the message names it).
    """
    root = Path(root)
    paths = [root / CPU_RESULTS, root / CPU_WITHOUT, root / USAGE_CSV]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"main_finding needs the committed results: {', '.join(missing)} not found")
    results, without, usage = (pd.read_csv(path) for path in paths)
    usage = usage[usage["scale"] == SCALES["cpu"].slug]
    used = usage_verdicts(summarize_usage(usage, level), level=level).set_index(["row", "l"])
    effects = without_effects(pd.concat([results, without], ignore_index=True), level)
    first = results.drop_duplicates("row").set_index("row")
    lines = []
    for name in FINDING_ROWS:
        row = ROWS[name]
        label = run_label(row.L, int(first.loc[name, "h"]), int(first.loc[name, "epochs"]), row.h, row.epochs)
        retrained = effects[effects["configuration"] == label].set_index("removed")
        for l in FINDING_ORDERS:
            u = used.loc[(name, l)]
            r = retrained.loc[l] if l in retrained.index else None
            lines.append({
                "configuration": label, "l": l, "usage verdict": u["verdict"], "MAE increase (eV)": u["mean"],
                "low": u["low"], "high": u["high"], "adj_low": u["adj_low"], "adj_high": u["adj_high"],
                "seeds positive": u["seeds positive"], "retrained": r is not None,
                "retrain verdict": "" if r is None else r["verdict"],
                **{key: (math.nan if r is None else r[column]) for key, column in (
                    ("MAE ratio without / with", "ratio"), ("ratio low", "low"), ("ratio high", "high"),
                    ("ratio adj_low", "adj_low"), ("ratio adj_high", "adj_high"))},
            })
    return pd.DataFrame(lines, columns=list(FINDING_COLUMNS))


def _increase(line: pd.Series) -> str:
    return f"+{line['MAE increase (eV)']:.2g} eV [{line['low']:.2g}, {line['high']:.2g}]"


def finding_sentence(finding: pd.DataFrame, level: float = LEVEL) -> str:
    """The finding in words (Markdown), every number read from :func:`main_finding`'s table.

    Says which intervals exclude no effect before and after the family-wise (Holm) correction, so the strength of
    the evidence is stated with the finding.
    """
    parts = []
    for configuration, group in finding.groupby("configuration", sort=False):
        group = group.set_index("l")
        ablation = " and ".join(f"l = {l}: {_increase(line)} ({line['seeds positive']} seeds positive)"
                                for l, line in group.iterrows())
        text = f"in {configuration}, removing an order's variation at every block raises the test MAE ({ablation})"
        retrained = group[group["retrained"]]
        if len(retrained):
            ratios = retrained[["MAE ratio without / with", "ratio low", "ratio high"]]
            costs = " and ".join(f"without l = {l} {format_ratio(*values)}" for l, values in
                                 zip(retrained.index, ratios.to_numpy()))
            text += f", and retraining it costs {costs} in test MAE"
        parts.append(text)
    above = (finding["low"] > 0).all() and (~finding["retrained"] | (finding["ratio low"] > 1)).all()
    adjusted = (finding["usage verdict"].eq("used").all()
                and finding.loc[finding["retrained"], "retrain verdict"].eq("used").all())
    strength = (f"Every one of these {level:.0%} intervals over seeds lies above no effect"
                if above else f"Not every one of these {level:.0%} intervals over seeds lies above no effect")
    strength += ("; they still do after Holm's correction over each family." if adjusted else
                 "; after Holm's correction over each whole family (every usage cell, every retrain-without cell, "
                 f"at {int(finding['seeds positive'].str.split('/').str[1].astype(int).max())} seeds) they no "
                 "longer all do, so the evidence is of the models at this scale, not yet family-wise.")
    head = ("**At this scale l = 1, 2 are used**, the opposite of the study's central claim: " if above else
            "**At this scale the evidence on l = 1, 2 is mixed**: ")
    return head + "; ".join(parts) + ". " + strength
