"""The "without" table: key configurations retrained without one order, and the seed-paired verdict on each."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from equinb import sweep
from equinb.__main__ import main


def test_without_rows_remove_one_nonzero_order_and_keep_width_and_epochs():
    names = sorted(sweep.WITHOUT)
    assert names == sorted([
        "L0-2_h32_e100", "L0-1_h32_e100",
        "L0-2-3-4_h16_e30", "L0-1-3-4_h16_e30", "L0-1-2-4_h16_e30", "L0-1-2-3_h16_e30",
        "L0-4-5-6_h16_e30", "L0-3-5-6_h16_e30", "L0-3-4-6_h16_e30", "L0-3-4-5_h16_e30",
    ])
    without = sweep.WITHOUT["L0-3-4-6_h16_e30"]
    assert (without.parent, without.removed, without.row.L) == ("L0-3-4-5-6_h16_e30", 5, (0, 3, 4, 6))
    assert not set(sweep.WITHOUT) & set(sweep.ROWS)
    assert [row.name for row in sweep.select_rows(["L0-1_h32_e100"], "without")] == ["L0-1_h32_e100"]
    with pytest.raises(sweep.SweepError, match="unknown table 'table2'"):
        sweep.select_rows(None, "table2")


def test_cli_rejects_unknown_without_rows_before_running(capsys, tmp_path):
    assert main(["sweep", "without", "--only", "L0-1-2-3-4_h16_e30", "--runs", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown 'without' table row(s) L0-1-2-3-4_h16_e30" in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


def _runs(maes: dict[str, list[float]], factor: float = 4.0) -> pd.DataFrame:
    return pd.DataFrame([{"row": row, "seed": seed, "test_mae_ev": mae, "test_mse_ev2": 2 * mae**2,
                          "baseline_test_mae_ev": factor * mae, "h": 16, "epochs": 6, "n_parameters": 10 * len(row)}
                         for row, values in maes.items() for seed, mae in enumerate(values, start=1)])


def test_without_effect_verdicts_on_constructed_runs():
    parent = "L0-1-2-3-4_h16_e30"
    runs = _runs({parent: [0.30, 0.40, 0.35],
                  "L0-2-3-4_h16_e30": [0.45, 0.61, 0.52],   # removing 1 hurts on every seed: used
                  "L0-1-3-4_h16_e30": [0.20, 0.27, 0.23],   # removing 2 helps on every seed: not needed
                  "L0-1-2-4_h16_e30": [0.40, 0.30, 0.36],   # mixed: inconclusive
                  "L0-1-2-3_h16_e30": [0.31]})              # one seed: not judged, whatever its direction
    table = sweep.without_effects(runs).set_index("removed")
    assert table.loc[1, "verdict"] == "used" and table.loc[1, "low"] > 1
    assert table.loc[2, "verdict"] == "not needed" and table.loc[2, "high"] < 1
    assert table.loc[3, "verdict"] == "inconclusive"
    assert table.loc[4, "verdict"] == "one seed: not judged" and table.loc[4, "seeds"] == 1
    expected = math.exp(sum(math.log(a / b) for a, b in zip([0.45, 0.61, 0.52], [0.30, 0.40, 0.35])) / 3)
    assert table.loc[1, "ratio"] == pytest.approx(expected)
    assert set(table["configuration"]) == {"[0..4] h16, 6 ep (study 30)"}
    # the MSE beside (here 2 MAE^2 per run): its ratio is the square of the MAE ratio
    assert table.loc[1, "mse ratio"] == pytest.approx(expected**2)
    assert (table.loc[1, "parameters with"], table.loc[1, "parameters without"]) == (180, 160)
    # Holm over the three cells with seeds: the adjusted interval contains the unadjusted one
    assert table.loc[1, "adj_low"] < table.loc[1, "low"] and table.loc[1, "adj_high"] > table.loc[1, "high"]


def test_without_effect_is_untestable_below_the_baseline_factor():
    runs = _runs({"L0-1-2_h32_e100": [0.3, 0.4], "L0-1_h32_e100": [0.6, 0.8]}, factor=1.5)
    assert sweep.without_effects(runs)["verdict"].tolist() == ["untestable at this scale"]
    assert sweep.without_effects(_runs({"L0-1-2_h32_e100": [0.3]})).empty
