"""Collecting usage over a sweep's runs: baseline gate, atomic append and resume, seed summaries against scipy."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
from scipy import stats as scipy_stats

from equinb.__main__ import main
from equinb.analysis import collect
from equinb.train import TrainConfig, train

TINY = dict(L=[0, 1], h=2, num_layers=0, epochs=1, n_molecules=40, batch_size=16, sh_backend="e3nn",
            fractions=(0.5, 0.2, 0.3))


@pytest.fixture(scope="module")
def sweep_csv(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    (root / "results").mkdir()
    lines = []
    for seed, baseline in ((1, 1e6), (2, 1e6), (3, 0.0)):  # the third run does not beat the baseline
        run = train(TrainConfig(**TINY, seed=seed), runs_parent=root / "runs", progress=False)
        lines.append({"row": "L0-1_h2_e1", "L": json.dumps([0, 1]), "target": "atomization", "seed": seed,
                      "epochs": 1, "scale": "tiny", "test_mae_ev": 1.0, "baseline_test_mae_ev": baseline,
                      "run": os.path.relpath(run.path, root / "results")})
    path = root / "results" / "table1_tiny.csv"
    pd.DataFrame(lines).to_csv(path, index=False)
    return path


def test_collects_trained_runs_skips_the_rest_and_resumes(sweep_csv, tmp_path):
    out = tmp_path / "usage.csv"
    logged = []
    table = collect.collect_usage(sweep_csv, out, n_boot=20, log=logged.append)
    assert list(table.columns) == list(collect.USAGE_COLUMNS)
    assert sorted(table["seed"].unique()) == [1, 2]
    assert any("seed 3: skipped, only 0.00x better than the composition baseline" in line for line in logged)
    assert pd.read_csv(out).shape == table.shape
    # a second call measures nothing new
    logged.clear()
    again = collect.collect_usage(sweep_csv, out, n_boot=20, log=logged.append)
    assert len(again) == len(table) and not any("measured" in line for line in logged)


def test_summary_over_seeds_is_the_t_interval(sweep_csv, tmp_path):
    usage = collect.collect_usage(sweep_csv, tmp_path / "usage.csv", n_boot=20, log=lambda line: None)
    summary = collect.summarize_usage(usage, level=0.9)
    line = summary[(summary["layer"] == "initial") & (summary["l"] == 1)
                   & (summary["measure"] == "attribution_ev")].iloc[0]
    values = usage[(usage["layer"] == "initial") & (usage["l"] == 1) & (usage["measure"] == "attribution_ev")]
    low, high = scipy_stats.t.interval(0.9, 1, loc=values["value"].mean(), scale=scipy_stats.sem(values["value"]))
    assert line["seeds"] == 2
    assert (line["seed_low"], line["seed_high"]) == pytest.approx((low, high))
    assert line["bootstrap_low"] == values["ci_low"].min()


def test_bad_requests_are_one_line_errors(tmp_path, capsys):
    assert main(["usage", "--results", str(tmp_path / "none.csv")]) == 2
    assert capsys.readouterr().err.strip() == f"error: no sweep results at {tmp_path / 'none.csv'}"
    assert main(["usage", "--results", "x.csv", "--n-boot", "0"]) == 2
    assert "--n-boot positive, got 0, 1000, 0" in capsys.readouterr().err
