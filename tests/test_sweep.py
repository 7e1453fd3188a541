"""The Table 1 sweep: the table, scales, row selection, claims, and a real smoke sweep that skips finished runs."""

from __future__ import annotations

import csv
import math

import pandas as pd
import pytest

from equinb import sweep
from equinb.__main__ import main
from equinb.model import TABLE1_PARAMETERS

ROW = "L0-1-2_h32_e100"


def test_table1_has_the_studys_rows_and_counts():
    assert len(sweep.TABLE1) == 11 and len(sweep.ROWS) == 11
    for row in sweep.TABLE1:
        if (row.L, row.h) in TABLE1_PARAMETERS:  # the published millions agree with the exact counts
            assert round(TABLE1_PARAMETERS[(row.L, row.h)] / 1e6, 1) == row.parameters_m
    assert sweep.ROWS["L0-3-4-5-6_h16_e100"].test_mse == 0.01
    for claim in sweep.CLAIMS:
        assert claim.better in sweep.ROWS and claim.worse in sweep.ROWS


def test_scales_keep_L_and_scale_h_and_epochs():
    cpu, row = sweep.SCALES["cpu"], sweep.ROWS["L0-3-4-5-6_h16_e30"]
    assert (cpu.h(row), cpu.epochs(row)) == (4, 3)
    assert (sweep.SCALES["paper"].h(row), sweep.SCALES["paper"].epochs(row)) == (16, 30)
    assert sweep.SCALES["smoke"].epochs(sweep.ROWS[ROW]) == 1 and sweep.SCALES["smoke"].h(row) == 1
    assert cpu.slug == "n2000_epochs0.1_hdiv4" and sweep.SCALES["paper"].slug.startswith("nall_")
    with pytest.raises(sweep.SweepError, match="h_divisor"):
        sweep.Scale(100, 0.5, 0)


def test_select_rows_keeps_table_order_and_rejects_unknown_names():
    names = [row.name for row in sweep.select_rows(["L0-3-4-5-6_h16_e30", ROW])]
    assert names == [ROW, "L0-3-4-5-6_h16_e30"]
    assert len(sweep.select_rows(None)) == 11
    with pytest.raises(sweep.SweepError, match="unknown Table 1 row"):
        sweep.select_rows(["L0-1-2"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--only", "L0-1-2", ROW], "unknown Table 1 row(s) L0-1-2"),
        (["--profile", "gpu"], "unknown sweep profile 'gpu'"),
        (["--seeds", "0"], "seeds must be a positive integer"),
    ],
)
def test_cli_bad_requests_exit_2_with_one_line(argv, message, capsys, tmp_path):
    assert main(["sweep", "table1", "--runs", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


def _results(values: dict[str, list[float]]) -> pd.DataFrame:
    lines = [{"row": name, "h": 8, "epochs": 3, "n_parameters": 1, "n_train": 10, "test_mse_ev2": mse,
              "test_mae_ev": math.sqrt(mse), "train_seconds": 1.0} for name, seeds in values.items() for mse in seeds]
    return pd.DataFrame(lines)


def test_summary_and_claims_from_synthetic_results():
    summary = sweep.summarize(_results({"L0-3-4-5-6_h16_e30": [0.4, 0.6], "L0-1-2-3-4_h16_e30": [1.5, 1.7],
                                        ROW: [0.3]}))
    assert list(summary.index) == [ROW, "L0-1-2-3-4_h16_e30", "L0-3-4-5-6_h16_e30"]  # the table's order
    assert summary.loc["L0-3-4-5-6_h16_e30", "mse_mean"] == pytest.approx(0.5)
    assert summary.loc["L0-3-4-5-6_h16_e30", "mse_std"] == pytest.approx(math.sqrt(0.02))
    assert math.isnan(summary.loc[ROW, "mse_std"])
    verdicts = sweep.judge_claims(summary)
    sparse = verdicts.loc[sweep.CLAIMS[0].text]
    assert sparse[["direction", "margin", "beyond spread", "verdict"]].tolist() == ["yes", "yes", "yes", "reproduced"]
    assert verdicts.loc[sweep.CLAIMS[1].text, "verdict"] == "not run"
    close = sweep.judge_claims(sweep.summarize(_results({"L0-3-4-5-6_h16_e30": [0.9, 1.1],
                                                         "L0-1-2-3-4_h16_e30": [1.0, 1.2]})))
    assert close.loc[sweep.CLAIMS[0].text, "verdict"] == "same direction, within the seed spread"
    canonical = sweep.judge_claims(sweep.summarize(_results({ROW: [0.3], "L0-1-2-4_h32_e100": [0.2],
                                                             "L0-1-2-6_h32_e100": [0.4]})))
    assert canonical.loc[sweep.CLAIMS[3].text, ["direction", "verdict"]].tolist() == ["no", "not reproduced"]
    assert canonical.loc[sweep.CLAIMS[4].text, "verdict"] == "same direction, one seed only"


def test_smoke_sweep_writes_csv_and_skips_finished_runs(tmp_path, monkeypatch, capsys):
    out = tmp_path / "table1.csv"
    argv = ["sweep", "table1", "--profile", "smoke", "--only", ROW, "--runs", str(tmp_path / "runs"),
            "--out", str(out)]
    assert main(argv) == 0
    with out.open(newline="") as file:
        lines = list(csv.DictReader(file))
    assert list(lines[0]) == list(sweep.CSV_COLUMNS) and len(lines) == 1
    assert (lines[0]["row"], lines[0]["h"], lines[0]["epochs"], lines[0]["seed"]) == (ROW, "2", "1", "21616")
    run = tmp_path / lines[0]["run"]
    assert (run / "metrics.json").is_file() and (run / f"{sweep.TRAINING_CHAPTER}.ipynb").is_file()
    assert float(lines[0]["test_mse_ev2"]) == pytest.approx(float(lines[0]["test_rmse_ev"]) ** 2)
    stamp = (run / "metrics.json").stat().st_mtime_ns
    assert "trained in" in capsys.readouterr().out

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was executed again")

    monkeypatch.setattr(sweep, "run_chapter", no_training)
    assert main(argv) == 0
    assert "finished before, skipped" in capsys.readouterr().out
    assert (run / "metrics.json").stat().st_mtime_ns == stamp
    with out.open(newline="") as file:
        assert list(csv.DictReader(file)) == lines
