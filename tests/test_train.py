"""Training runs: resume after interruption gives the uninterrupted result; reuse; NaN handling; errors."""

from __future__ import annotations

import pytest
import torch

from equinb import train as train_module
from equinb.train import TrainConfig, TrainingDiverged, train
from equinb.trained import load_checkpoint, load_model, predict, run_data

TINY = dict(L=[0, 1], h=2, num_layers=0, epochs=3, n_molecules=60, batch_size=16, sh_backend="e3nn")


def _history(run):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in run.history()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted tiny run."""
    return train(TinyConfig(), runs_parent=tmp_path_factory.mktemp("ref"), progress=False)


def TinyConfig(**changes):
    return TrainConfig(**{**TINY, **changes})


class Interrupt(Exception):
    pass


def test_finished_run_has_metrics_and_history(reference):
    metrics = reference.metrics
    assert set(metrics["test"]) == {"mae_ev", "rmse_ev", "mse_ev2"}
    assert metrics["test"]["mse_ev2"] == pytest.approx(metrics["test"]["rmse_ev"] ** 2)
    assert metrics["n_molecules"] == {"train": 48, "val": 6, "test": 6}
    assert [row["epoch"] for row in reference.history()] == ["1", "2", "3"]
    assert metrics["baseline_test"]["mae_ev"] > 0


def test_resume_after_interrupt_between_epochs_equals_uninterrupted(reference, tmp_path):
    def stop_after_two(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TinyConfig(), runs_parent=tmp_path, progress=False, on_epoch_end=stop_after_two)
    run = train(TinyConfig(), runs_parent=tmp_path, progress=False)
    assert _history(run) == _history(reference)
    assert run.metrics["test"] == reference.metrics["test"]
    ours, theirs = load_checkpoint(run)["model"], load_checkpoint(reference)["model"]
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)


def test_resume_after_interrupt_inside_an_epoch(reference, tmp_path, monkeypatch):
    calls = {"n": 0}
    original = train_module.predict

    def predict_then_die(*args, **kwargs):  # dies in epoch 2, after its training steps, before its checkpoint
        calls["n"] += 1
        if calls["n"] == 2:
            raise Interrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(train_module, "predict", predict_then_die)
    with pytest.raises(Interrupt):
        train(TinyConfig(), runs_parent=tmp_path, progress=False)
    monkeypatch.setattr(train_module, "predict", original)
    run = train(TinyConfig(), runs_parent=tmp_path, progress=False)
    assert _history(run) == _history(reference)
    assert run.metrics["test"] == reference.metrics["test"]


def test_finished_run_is_reused_not_retrained(reference):
    calls = []
    again = train(TinyConfig(), runs_parent=reference.path.parent, progress=False, on_epoch_end=calls.append)
    assert again.path == reference.path and calls == []


def test_loaded_model_reproduces_test_metrics(reference):
    model, target = load_model(reference, device="cpu")
    graphs = run_data(reference, parts=["test"]).graphs["test"]
    true, predicted = predict(model, graphs, target)
    assert abs(true - predicted).mean() == pytest.approx(reference.metrics["test"]["mae_ev"], rel=1e-6)


def test_nan_loss_stops_with_message_and_keeps_checkpoint(tmp_path, monkeypatch):
    original = torch.nn.functional.mse_loss
    calls = {"n": 0}

    def poisoned(a, b):
        calls["n"] += 1
        loss = original(a, b)
        return loss * float("nan") if calls["n"] > 4 else loss  # 3 batches per epoch: dies in epoch 2

    monkeypatch.setattr(torch.nn.functional, "mse_loss", poisoned)
    with pytest.raises(TrainingDiverged, match="loss became nan in epoch 2"):
        train(TinyConfig(), runs_parent=tmp_path, progress=False)
    (run_path,) = tmp_path.iterdir()
    from equinb.runs import RunFolder

    run = RunFolder(run_path)
    assert not run.finished and len(load_checkpoint(run)["history"]) == 1


def test_name_of_another_config_is_refused(reference):
    with pytest.raises(ValueError, match="another configuration"):
        train(TinyConfig(seed=1), runs_parent=reference.path.parent, name=reference.name, progress=False)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 0}, "epochs"),
        ({"lr": -1.0}, "lr"),
        ({"graph": "knn"}, "knn"),
        ({"graph": "radius", "graph_cutoff": -1.0}, r"^cutoff must be a positive number of Å, got -1.0$"),
        ({"L": [0, 13]}, "order 13 is above the highest supported order 12"),
        ({"h": 0}, "h"),
        ({"fractions": (0.5, 0.1, 0.1)}, "fractions|sum"),
        ({"n_molecules": 200_000}, "200000"),
        ({"n_molecules": 5}, "empty|split|5"),
        ({"weight_decay": -0.1}, r"^weight_decay must be a non-negative number, got -0.1$"),
        ({"target": "energy"}, r"^target must be one of \('atomization', 'residual'\), got 'energy'$"),
        ({"tp_backend": "fast"}, r"^tp_backend must be one of"),
    ],
)
def test_bad_configs(changes, message):
    with pytest.raises(ValueError, match=message):
        TinyConfig(**changes)


def test_unknown_config_key():
    with pytest.raises(ValueError, match="unknown training configuration keys"):
        TrainConfig.from_dict({**TINY, "epoch": 3})


def test_study_optimiser_defaults_recorded(reference):
    """Weight decay 0.0 (the study's; torch's AdamW would use 0.01), recorded in the run and in the optimiser."""
    assert reference.config["weight_decay"] == 0.0 and reference.config["target"] == "atomization"
    assert reference.config["tp_backend"] == "auto" and reference.metrics["tp_backend"] == "fused"
    groups = load_checkpoint(reference)["optimizer"]["param_groups"]
    assert all(group["weight_decay"] == 0.0 for group in groups)


def test_weight_decay_reaches_the_optimiser(tmp_path):
    run = train(TinyConfig(epochs=1, weight_decay=0.05), runs_parent=tmp_path, progress=False)
    assert all(g["weight_decay"] == 0.05 for g in load_checkpoint(run)["optimizer"]["param_groups"])


def test_residual_target_run_reports_ev(tmp_path):
    """A residual-target run: references stored with the run, predictions in eV that round-trip through loading."""
    run = train(TinyConfig(target="residual"), runs_parent=tmp_path, progress=False)
    model, target = load_model(run, "cpu")
    assert target.kind == "residual" and run.metrics["target"]["kind"] == "residual"
    graphs = run_data(run, ["test"]).graphs["test"]
    true, predicted = predict(model, graphs, target)
    assert abs(abs(predicted - true).mean() - run.metrics["test"]["mae_ev"]) < 1e-9


def test_trajectory_a_short_run_read_from_a_longer_one(reference, tmp_path):
    """One trajectory per (configuration, seed): the 3-epoch result read from a 5-epoch run is the 3-epoch run."""
    longer = train(TinyConfig(epochs=5), runs_parent=tmp_path, progress=False, eval_epochs=[3, 5])
    at = longer.metrics["at_epochs"]
    assert set(at) == {"3"}  # the last epoch's metrics are the run's own
    assert at["3"]["test"] == reference.metrics["test"] and at["3"]["val"] == reference.metrics["val"]
    assert _history(longer)[:3] == _history(reference)
    snapshot, _ = load_model(longer, "cpu", epoch=3)
    final, _ = load_model(reference, "cpu")
    for name, tensor in final.state_dict().items():
        assert torch.equal(snapshot.state_dict()[name], tensor), name
    assert longer.metrics["test"] != at["3"]["test"]  # and the longer run went on training
    with pytest.raises(ValueError, match="kept no snapshot at epoch 2"):
        load_model(longer, "cpu", epoch=2)
    with pytest.raises(ValueError, match=r"finished without snapshots at epochs \[2\]; it kept \['3'\]"):
        train(TinyConfig(epochs=5), runs_parent=tmp_path, progress=False, eval_epochs=[2])
    with pytest.raises(ValueError, match=r"eval_epochs must lie in 1..5"):
        train(TinyConfig(epochs=5), runs_parent=tmp_path, progress=False, eval_epochs=[6])
