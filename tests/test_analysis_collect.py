"""Collecting usage over a sweep's runs: baseline gate, atomic append and resume, seed summaries against scipy."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from equinb.__main__ import main
from equinb.analysis import collect
from equinb.stats import t_interval, t_p_value
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


def _summary_line(l, mean, low, high, seeds=3, trained=True, b_low=-9.0, b_high=9.0, values=()):
    return {"row": "L0-1-2_h32_e100", "target": "residual", "layer": "all", "l": l,
            "measure": "mean_ablation_mae_increase_ev", "mean": mean, "seed_low": low, "seed_high": high,
            "seeds": seeds, "seeds_positive": sum(v > 0 for v in values), "bootstrap_low": b_low,
            "bootstrap_high": b_high, "features_trained": trained, "seed_values": tuple(values)}


def _line(l, values, trained=True, b_low=-9.0, b_high=9.0):
    mean, low, high = t_interval(values)
    return _summary_line(l, mean, low, high, len(values), trained, b_low, b_high, values)


def test_usage_verdicts_from_seeds_only_holm_over_the_cells():
    summary = pd.DataFrame([
        _line(0, [0.50, 0.52, 0.51]),                   # well above 0 over seeds: used, even after Holm
        _line(1, [0.02, 0.08, 0.05]),                   # positive on every seed but 0 inside: inconclusive
        _line(2, [-0.050, -0.052, -0.051]),             # well below 0: the model does better without it
        _line(3, [0.02], b_low=0.01, b_high=0.03),      # one seed: its bootstrap above 0 does not decide
        _line(4, [0.0, 0.0, 0.0], trained=False),
    ])
    verdicts = collect.usage_verdicts(summary).set_index("l")
    assert list(verdicts.columns)[0] == "verdict"
    assert verdicts["verdict"].tolist() == ["used", "inconclusive", "ablation helps", "one seed: not judged",
                                            "untrained features"]
    assert verdicts.loc[1, "seeds positive"] == "3/3" and math.isnan(verdicts.loc[3, "low"])
    # the family is the three judged cells: Holm-adjusted p of the smallest is 3 p
    judged = verdicts["p_holm"].notna()
    assert judged.sum() == 3
    p0 = t_p_value([0.50, 0.52, 0.51])
    p2 = t_p_value([-0.050, -0.052, -0.051])
    (first, p_first), (second, p_second) = sorted([(0, p0), (2, p2)], key=lambda item: item[1])
    assert verdicts.loc[first, "p_holm"] == pytest.approx(3 * p_first)  # cell 1's p is the largest
    assert verdicts.loc[second, "p_holm"] == pytest.approx(max(3 * p_first, 2 * p_second))
    assert verdicts.loc[0, "adj_low"] < verdicts.loc[0, "low"]


def test_summary_carries_the_seed_values(sweep_csv, tmp_path):
    usage = collect.collect_usage(sweep_csv, tmp_path / "usage.csv", n_boot=20, log=lambda line: None)
    summary = collect.summarize_usage(usage)
    line = summary.iloc[0]
    values = usage[(usage["layer"] == line["layer"]) & (usage["l"] == line["l"])
                   & (usage["measure"] == line["measure"])]["value"]
    assert line["seed_values"] == tuple(values) and line["seeds_positive"] == int((values > 0).sum())


def test_plot_usage_draws_one_dot_and_interval_per_order_and_layer():
    import matplotlib

    matplotlib.use("Agg")
    from equinb.analysis import plot_usage

    summary = pd.DataFrame([_summary_line(l, 0.1 * l, 0.0, 0.2 * l + 0.1, trained=l < 2) for l in range(3)])
    summary = pd.concat([summary, summary.assign(layer="conv_0"), summary.assign(row="L0-1-2-3-4_h16_e30")],
                        ignore_index=True)
    fig = plot_usage(summary, "mean_ablation_mae_increase_ev", ["all", "conv_0"], "MAE increase (eV)",
                     labels={"L0-1-2-3-4_h16_e30": "[0..4] h16, 6 ep"})
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2 and axes[1].get_title() == "[0..4] h16\n6 ep · 3 seeds"
    first = axes[0]
    interval = first.collections[0].get_segments()  # layer "all": one vertical interval per order
    assert [tuple(np.round(seg[:, 1], 6)) for seg in interval] == [(0.0, 0.1), (0.0, 0.3), (0.0, 0.5)]
    filled, hollow = first.lines[0], first.lines[1]
    assert len(filled.get_xdata()) == 2 and len(hollow.get_xdata()) == 1  # l = 2 never received a gradient
    assert hollow.get_markerfacecolor() == "white"
    offsets = first.lines[0].get_xdata()[0], first.lines[2].get_xdata()[0]  # the two layers side by side at l = 0
    assert offsets[0] < 0 < offsets[1]
    assert {t.get_text() for t in fig.legends[0].get_texts()} == {"all", "all (no gradient)", "conv_0",
                                                                   "conv_0 (no gradient)"}


def test_run_data_limit_builds_only_the_first_graphs(sweep_csv, monkeypatch):
    from equinb.runs import RunFolder
    from equinb.trained import run_data

    folder = RunFolder(sweep_csv.parent / pd.read_csv(sweep_csv)["run"].iloc[0])
    whole, first = run_data(folder, ["train"]), run_data(folder, ["train"], limit=3)
    assert len(first.graphs["train"]) == 3 and len(first.split["train"]) == len(whole.split["train"]) > 3
    for a, b in zip(first.graphs["train"], whole.graphs["train"]):
        assert int(a.row) == int(b.row) and a.edge_index.equal(b.edge_index)
    import equinb.data

    def no_second_load(*args, **kwargs):
        raise AssertionError("QM9 loaded again although the arrays were given")

    monkeypatch.setattr(equinb.data, "load_qm9", no_second_load)
    reused = run_data(folder, ["train"], limit=3, arrays=whole.arrays)
    assert reused.arrays is whole.arrays
    assert [int(g.row) for g in reused.graphs["train"]] == [int(g.row) for g in first.graphs["train"]]
    with pytest.raises(ValueError, match="limit must be positive or None, got 0"):
        run_data(folder, ["train"], limit=0)
