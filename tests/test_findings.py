"""The main finding from the committed CSVs, against the raw lines computed by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from equinb import findings

ROOT = Path(__file__).resolve().parents[1]


def _geometric_mean_ratio(results: pd.DataFrame, without: pd.DataFrame, parent: str, child: str) -> float:
    a = results[results["row"] == parent].set_index("seed")["test_mae_ev"]
    b = without[without["row"] == child].set_index("seed")["test_mae_ev"]
    seeds = sorted(set(a.index) & set(b.index))
    return float(np.exp(np.mean([math.log(b[s] / a[s]) for s in seeds])))


def test_finding_numbers_match_the_raw_csv_lines():
    table = findings.main_finding(ROOT).set_index(["configuration", "l"])
    results = pd.read_csv(ROOT / findings.CPU_RESULTS)
    without = pd.read_csv(ROOT / findings.CPU_WITHOUT)
    usage = pd.read_csv(ROOT / "results/irrep_usage_cpu.csv")
    canonical = "[0,1,2] h16 (study 32), 20 ep (study 100)"
    # retraining [0,1,2] without l = 1 ([0,2]) and without l = 2 ([0,1]): x1.17 and x1.46 in the issue
    for l, child in ((1, "L0-2_h32_e100"), (2, "L0-1_h32_e100")):
        line = table.loc[(canonical, l)]
        assert line["MAE ratio without / with"] == pytest.approx(
            _geometric_mean_ratio(results, without, "L0-1-2_h32_e100", child), rel=1e-12)
        assert line["ratio low"] < line["MAE ratio without / with"] < line["ratio high"]
        assert line["ratio adj_low"] <= line["ratio low"] and line["retrained"]
    assert round(table.loc[(canonical, 1), "MAE ratio without / with"], 2) == 1.17
    assert round(table.loc[(canonical, 2), "MAE ratio without / with"], 2) == 1.46
    # the mean-ablation increase at every block, averaged over the seeds of the usage CSV
    for row, label in (("L0-1-2_h32_e100", canonical), ("L0-1-2-3-4_h16_e100", "[0..4] h16, 20 ep (study 100)")):
        for l in (1, 2):
            values = usage[(usage["row"] == row) & (usage["l"] == l) & (usage["layer"] == "all")
                           & (usage["measure"] == "mean_ablation_mae_increase_ev")]["value"]
            line = table.loc[(label, l)]
            assert line["MAE increase (eV)"] == pytest.approx(values.mean(), rel=1e-12)
            assert line["seeds positive"] == f"{int((values > 0).sum())}/{len(values)}"
    assert not table.loc[("[0..4] h16, 20 ep (study 100)", 1), "retrained"]  # retrained only at 6 epochs


def test_sentence_states_the_numbers_and_the_strength_of_the_evidence():
    table = findings.main_finding(ROOT)
    text = findings.finding_sentence(table)
    ratio = table.loc[table["retrained"], "MAE ratio without / with"].iloc[0]
    assert f"x{ratio:.3g}" in text and "[0,1,2] h16 (study 32), 20 ep (study 100)" in text
    assert "Holm" in text
    # turn one interval below zero: the headline no longer says "used"
    weaker = table.copy()
    weaker.loc[0, "low"] = -0.1
    assert "evidence on l = 1, 2 is mixed" in findings.finding_sentence(weaker)


def test_missing_results_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="main_finding needs the committed results"):
        findings.main_finding(tmp_path)
