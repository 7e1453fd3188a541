"""The Table 1 sweep: the table, scales, row selection, claims, and a real smoke sweep that skips finished runs."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from equinb import sweep, verdicts
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
        assert set(claim.rows) <= set(sweep.ROWS)


def test_scales_keep_L_and_scale_h_and_epochs():
    old, row = sweep.SCALES["cpu_v1"], sweep.ROWS["L0-3-4-5-6_h16_e30"]
    assert (old.h(row), old.epochs(row)) == (4, 3)
    assert (sweep.SCALES["paper"].h(row), sweep.SCALES["paper"].epochs(row)) == (16, 30)
    assert sweep.SCALES["smoke"].epochs(sweep.ROWS[ROW]) == 1 and sweep.SCALES["smoke"].h(row) == 1
    assert old.slug == "n2000_epochs0.1_hdiv4" and sweep.SCALES["paper"].slug.startswith("nall_")
    assert sweep.SCALES["cpu"].h(sweep.ROWS[ROW]) == 16 == sweep.SCALES["cpu"].h(row)
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


def _results(values: dict[str, list[float]], mae_factor: float = 4.0) -> pd.DataFrame:
    """Synthetic runs: per row, one test MSE per seed (seeds 1, 2, ...); the baseline's MAE is ``mae_factor`` times
    the run's."""
    lines = [{"row": name, "h": 8, "epochs": 3, "n_parameters": 1, "n_train": 10, "seed": seed,
              "test_mse_ev2": mse, "test_mae_ev": math.sqrt(mse), "baseline_test_mae_ev": mae_factor * math.sqrt(mse),
              "baseline_test_rmse_ev": 1.1, "train_seconds": 1.0}
             for name, values_ in values.items() for seed, mse in enumerate(values_, start=1)]
    return pd.DataFrame(lines)


SPARSE, DENSE = "L0-3-4-5-6_h16_e30", "L0-1-2-3-4_h16_e30"


def test_summary_in_both_units_and_table_order():
    summary = sweep.summarize(_results({SPARSE: [0.4, 0.6], DENSE: [1.5, 1.7], ROW: [0.3]}))
    assert list(summary.index) == [ROW, DENSE, SPARSE]  # the table's order
    assert summary.loc[SPARSE, "mse_mean"] == pytest.approx(0.5)
    assert summary.loc[SPARSE, "mse_std"] == pytest.approx(math.sqrt(0.02))
    assert summary.loc[SPARSE, "mse_norm_mean"] == pytest.approx(0.5 / 10.3238**2)
    assert summary.loc[SPARSE, "baseline_mse_norm"] == pytest.approx(1.21 / 10.3238**2)  # 0.0113, the study's unit
    assert summary.loc[SPARSE, "baseline_factor_min"] == pytest.approx(4.0)
    assert math.isnan(summary.loc[ROW, "mse_std"])


def test_paired_interval_on_known_data():
    """Paired t interval of the log ratio, by hand: ratios 2, 2.2, 1.8 -> geometric mean and scipy-free bounds."""
    logs = [math.log(2.0), math.log(2.2), math.log(1.8)]
    ratio, low, high = verdicts.family_table({"claim": logs}, log=True).loc["claim", ["estimate", "low", "high"]]
    mean = sum(logs) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / 2)
    half = 4.302652729911275 * sd / math.sqrt(3)  # t(0.975, 2 d.o.f.)
    assert (ratio, low, high) == pytest.approx((math.exp(mean), math.exp(mean - half), math.exp(mean + half)))
    assert math.isnan(verdicts.family_table({"claim": [0.3]}, log=True).loc["claim", "low"])


def test_verdicts_from_constructed_results():
    claim = sweep.CLAIMS[0].text  # sparse beats dense at 30 epochs, over two times
    # clearly better on every seed, paired: reproduced, and the study's factor is consistent with our interval
    clear = sweep.judge_claims(_results({SPARSE: [0.4, 0.5, 0.45], DENSE: [1.5, 1.7, 1.6]})).loc[claim]
    assert (clear["verdict"], clear["factor verdict"], clear["seeds"]) == ("reproduced", "consistent", 3)
    assert list(sweep.judge_claims(_results({SPARSE: [0.4], DENSE: [1.5]})).columns[:2]) == ["verdict",
                                                                                           "factor verdict"]
    # same direction on average but inside the spread of the paired ratios: inconclusive
    close = sweep.judge_claims(_results({SPARSE: [0.9, 1.1, 1.0], DENSE: [1.0, 1.0, 1.05]})).loc[claim]
    assert close["verdict"] == "inconclusive"
    # pairing matters: seed effects shared by both rows cancel; the direction holds, the factor of 2 does not
    paired = sweep.judge_claims(_results({SPARSE: [0.5, 1.0, 2.0], DENSE: [0.6, 1.2, 2.3]})).loc[claim]
    assert (paired["verdict"], paired["factor verdict"]) == ("reproduced", "rejected")
    # the opposite direction, clearly: contradicted
    opposite = sweep.judge_claims(_results({SPARSE: [1.5, 1.7, 1.6], DENSE: [0.4, 0.5, 0.45]})).loc[claim]
    assert opposite["verdict"] == "contradicted"
    # one seed: not judged, whatever the direction
    one = sweep.judge_claims(_results({SPARSE: [0.1], DENSE: [5.0]})).loc[claim]
    assert one["verdict"] == "one seed: not judged" and one["factor verdict"] == ""
    # models that do not beat the composition baseline twice cannot judge orders
    weak = sweep.judge_claims(_results({SPARSE: [0.4, 0.5, 0.45], DENSE: [1.5, 1.7, 1.6]}, mae_factor=1.5))
    assert weak.loc[claim, "verdict"] == "untestable at this scale"
    assert weak.loc[sweep.CLAIMS[1].text, "verdict"] == "not run"


def test_claims_are_one_holm_family():
    """Two claims with the same paired ratios: alone each is reproduced; with a second claim in the family that
    has nothing to show, the adjusted interval widens (Holm over the tested claims only)."""
    sparse100, dense100 = "L0-3-4-5-6_h16_e100", "L0-1-2-3-4_h16_e100"
    alone = sweep.claim_tests(_results({SPARSE: [0.40, 0.52, 0.45], DENSE: [0.44, 0.60, 0.50]}))
    both = sweep.claim_tests(_results({SPARSE: [0.40, 0.52, 0.45], DENSE: [0.44, 0.60, 0.50],
                                       sparse100: [0.1, 0.2, 0.3], dense100: [0.12, 0.18, 0.3]}))
    first = sweep.CLAIMS[0].text
    assert alone.loc[first, "p_holm"] == pytest.approx(alone.loc[first, "p"])
    assert both.loc[first, "p"] == pytest.approx(alone.loc[first, "p"])
    # tested: the two "beats" claims and the interaction of the four rows; the first has the smallest p
    assert both["p"].notna().sum() == 3 and both["p"].idxmin() == first
    assert both.loc[first, "p_holm"] == pytest.approx(3 * both.loc[first, "p"])
    assert both.loc[first, "adj_low"] < alone.loc[first, "adj_low"]
    assert (both.loc[first, "low"], both.loc[first, "high"]) == pytest.approx((alone.loc[first, "low"],
                                                                               alone.loc[first, "high"]))


def test_no_claim_holds_by_construction_and_the_interaction_is_a_ratio_of_ratios():
    for claim in sweep.CLAIMS:  # no claim compares a configuration with itself trained longer
        configurations = [(sweep.ROWS[row].L, sweep.ROWS[row].h) for row in claim.rows]
        assert len(set(configurations)) == len(configurations) or len(claim.rows) == 4, claim.text
    sparse100, dense100 = "L0-3-4-5-6_h16_e100", "L0-1-2-3-4_h16_e100"
    interaction = next(claim for claim in sweep.CLAIMS if len(claim.rows) == 4)
    # the study: sparse 0.52 -> 0.01 (x52), dense 1.24 -> 0.22 (x5.6): the sparse set gains 9.2x more
    assert interaction.ratio({row: sweep.ROWS[row].test_mse for row in interaction.rows}) == pytest.approx(
        (0.52 / 0.01) / (1.24 / 0.22))
    # by seed: sparse gains x2, x2.2, x1.8, dense x4 on each -> ratios 0.5, 0.55, 0.45 (contradicted)
    runs = _results({SPARSE: [0.2, 0.22, 0.18], sparse100: [0.1, 0.1, 0.1], DENSE: [0.4, 0.4, 0.4],
                     dense100: [0.1, 0.1, 0.1]})
    line = sweep.claim_tests(runs).loc[interaction.text]
    expected = math.exp(sum(math.log(r) for r in (0.5, 0.55, 0.45)) / 3)
    assert line["estimate"] == pytest.approx(expected) and line["seeds"] == 3
    assert line["verdict"] == "contradicted"
    assert line["study"] == pytest.approx((0.52 / 0.01) / (1.24 / 0.22))


def test_labels_say_what_ran():
    scale, row = sweep.SCALES["cpu"], sweep.ROWS[ROW]
    assert scale.label(row) == "[0,1,2] h16 (study 32), 20 ep (study 100)"
    assert sweep.SCALES["paper"].label(sweep.ROWS[DENSE]) == "[0..4] h16, 30 ep"
    assert row.label == "[0,1,2] h32, 100 ep" and sweep.orders_label((0, 3, 4, 5, 6)) == "[0,3,4,5,6]"
    for name in (ROW, DENSE, SPARSE):  # the label carries what the chapter is told to train
        for profile in ("cpu", "smoke", "paper"):
            params = sweep.SweepRun(sweep.ROWS[name], sweep.SCALES[profile], 1, Path("x")).parameters()
            label = sweep.SCALES[profile].label(sweep.ROWS[name])
            assert label.startswith(f"{sweep.orders_label(params['L'])} h{params['h']}")
            assert f", {params['epochs']} ep" in label


def test_rank_agreement_within_epoch_groups():
    rows = {name: [sweep.ROWS[name].test_mse] for name in ("L0-1-2_h32_e100", "L0-1-2-4_h32_e100",
                                                           "L0-1-2-6_h32_e100", DENSE, SPARSE, "L0-1-2-3-4-5-6_h16_e30")}
    agreement = sweep.rank_agreement(sweep.summarize(_results(rows)))
    assert agreement.loc[100, "spearman rho"] == pytest.approx(1.0) and agreement.loc[30, "rows"] == 3


def test_key_rows_get_their_seeds_and_scales_name_their_options():
    scale = sweep.Scale(100, 0.5, 1, h_cap=16, target="residual", key_seeds=3)
    assert scale.h(sweep.ROWS[ROW]) == 16 and scale.h(sweep.ROWS[SPARSE]) == 16
    assert scale.seeds(sweep.ROWS[SPARSE]) == 3 and scale.seeds(sweep.ROWS["L0-1-2-4_h32_e100"]) == 1
    assert scale.slug == "n100_epochs0.5_hdiv1_hcap16_residual"
    with pytest.raises(sweep.SweepError, match=r"^target must be one of"):
        sweep.Scale(100, 0.5, 1, target="energy")


def test_smoke_sweep_writes_csv_and_skips_finished_runs(tmp_path, monkeypatch, capsys):
    out = tmp_path / "table1.csv"
    argv = ["sweep", "table1", "--profile", "smoke", "--only", ROW, "--runs", str(tmp_path / "runs"),
            "--out", str(out)]
    assert main(argv) == 0
    with out.open(newline="") as file:
        lines = list(csv.DictReader(file))
    assert list(lines[0]) == list(sweep.CSV_COLUMNS) and len(lines) == 1
    assert (lines[0]["row"], lines[0]["h"], lines[0]["epochs"], lines[0]["seed"]) == (ROW, "2", "1", "21616")
    ran = sweep.run_label(json.loads(lines[0]["L"]), *(int(lines[0][k]) for k in ("h", "epochs", "study_h",
                                                                                  "study_epochs")))
    assert ran == sweep.SCALES["smoke"].label(sweep.ROWS[ROW]) == "[0,1,2] h2 (study 32), 1 ep (study 100)"
    run = tmp_path / lines[0]["run"]
    assert (run / "metrics.json").is_file() and (run / f"{sweep.TRAINING_CHAPTER}.ipynb").is_file()
    assert float(lines[0]["test_mse_ev2"]) == pytest.approx(float(lines[0]["test_rmse_ev"]) ** 2)
    curves = pd.read_csv(sweep.history_path(out))
    assert curves["epoch"].tolist() == [1] and curves["row"].tolist() == [ROW]
    assert curves["val_mae_ev"].iloc[0] == pytest.approx(float((run / "history.csv").read_text().split("\n")[1]
                                                              .split(",")[2]))
    stamp = (run / "metrics.json").stat().st_mtime_ns
    assert "trained in" in capsys.readouterr().out

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was executed again")

    monkeypatch.setattr(sweep.run, "run_chapter", no_training)
    assert main(argv) == 0
    assert "recorded before, skipped" in capsys.readouterr().out
    assert (run / "metrics.json").stat().st_mtime_ns == stamp
    with out.open(newline="") as file:
        assert list(csv.DictReader(file)) == lines
    # another machine: a fresh, empty runs folder and the committed CSV -> nothing runs, the CSV is kept
    fresh = ["sweep", "table1", "--profile", "smoke", "--only", ROW, "--runs", str(tmp_path / "elsewhere"),
             "--out", str(out)]
    assert main(fresh) == 0
    assert "recorded before, skipped" in capsys.readouterr().out and not (tmp_path / "elsewhere").exists()
    with out.open(newline="") as file:
        assert list(csv.DictReader(file)) == lines
    # a finished run folder missing from the CSV is recorded without training
    out.unlink()
    assert main(argv) == 0
    assert "finished before, recorded" in capsys.readouterr().out
    with out.open(newline="") as file:
        assert [line["run"] for line in csv.DictReader(file)] == [lines[0]["run"]]


def test_one_trajectory_per_configuration_and_seed():
    dense100 = "L0-1-2-3-4_h16_e100"
    scale = sweep.SCALES["cpu"]
    plan = sweep.plan_sweep(sweep.select_rows([DENSE, dense100, SPARSE]), scale, 1, Path("/runs"), 7)
    by_row = {}
    for run in plan:
        by_row.setdefault(run.row.name, []).append(run)
    # [0..4] at 6 and 20 epochs: one run of 20 epochs that also gives the 6-epoch row; key rows: three seeds
    assert set(by_row) == {dense100, SPARSE} and [run.seed for run in by_row[dense100]] == [7, 8, 9]
    run = by_row[dense100][0]
    assert [row.name for row in run.shorter] == [DENSE] and run.parameters()["eval_epochs"] == [6]
    assert run.parameters()["epochs"] == 20 and run.folder.name == f"{dense100}_s7"
    assert by_row[SPARSE][0].parameters()["eval_epochs"] == []


def test_sweep_reads_the_shorter_row_from_the_longer_run(tmp_path, capsys):
    dense100 = "L0-1-2-3-4_h16_e100"
    scale = sweep.Scale(n_molecules=60, epochs_factor=0.05, h_divisor=16)  # 30 -> 2 epochs, 100 -> 5
    out = tmp_path / "table1.csv"
    lines = sweep.run_sweep(sweep.select_rows([DENSE, dense100]), scale, 1, tmp_path / "runs", out)
    assert [(line["row"], int(line["epochs"])) for line in lines] == [(dense100, 5), (DENSE, 2)]
    assert lines[0]["run"] == lines[1]["run"]  # one run folder, trained once
    metrics = json.loads((tmp_path / lines[0]["run"] / "metrics.json").read_text())
    assert float(lines[1]["test_mae_ev"]) == pytest.approx(metrics["at_epochs"]["2"]["test"]["mae_ev"], abs=0)
    assert float(lines[0]["test_mae_ev"]) == pytest.approx(metrics["test"]["mae_ev"], abs=0)
    curves = pd.read_csv(sweep.history_path(out))
    assert curves.groupby("row")["epoch"].max().to_dict() == {dense100: 5, DENSE: 2}
    assert capsys.readouterr().out.count("trained in") == 1
    sweep.run_sweep(sweep.select_rows([DENSE, dense100]), scale, 1, tmp_path / "runs", out)
    assert "recorded before, skipped" in capsys.readouterr().out and len(pd.read_csv(out)) == 2
