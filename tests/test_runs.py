"""Run folders: atomic writes, history, lookup by configuration."""

from __future__ import annotations

import os

import pytest

from equinb import runs


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "a.json"
    runs.atomic_write_json(target, {"v": 1})

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        runs.atomic_write_json(target, {"v": 2})
    monkeypatch.undo()
    assert target.read_text().strip().endswith("}") and '"v": 1' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary file left behind


def test_history_roundtrip_and_finished(tmp_path):
    run = runs.RunFolder(tmp_path / "r")
    run.write_config({"L": [0, 1], "h": 4})
    assert not run.finished and run.history() == []
    with pytest.raises(ValueError, match="has not finished"):
        run.require_finished()
    rows = [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25}]
    run.write_history(rows)
    assert run.history() == [{"epoch": "1", "loss": "0.5"}, {"epoch": "2", "loss": "0.25"}]
    run.write_metrics({"test_mae_ev": 0.1})
    assert run.require_finished() is run and run.metrics == {"test_mae_ev": 0.1}


def test_not_a_run_folder(tmp_path):
    with pytest.raises(ValueError, match="not a run folder"):
        runs.RunFolder(tmp_path).require_finished()


def test_find_run_matches_config_exactly(tmp_path):
    a, b = runs.RunFolder(tmp_path / "a"), runs.RunFolder(tmp_path / "b")
    a.write_config({"L": [0, 1, 2], "h": 4, "seed": 1})
    b.write_config({"L": [0, 3, 4], "h": 4, "seed": 1})
    b.write_metrics({})
    assert runs.find_run({"seed": 1, "h": 4, "L": [0, 3, 4]}, tmp_path).path == b.path
    assert runs.find_run({"L": [0, 1, 2], "h": 4, "seed": 1}, tmp_path) is None  # unfinished
    assert runs.find_run({"L": [0, 1, 2], "h": 4, "seed": 1}, tmp_path, finished=False).path == a.path
    assert runs.find_run({"L": [0, 1, 2], "h": 4, "seed": 2}, tmp_path, finished=False) is None


def test_config_key_is_order_independent():
    assert runs.config_key({"a": 1, "b": [1, 2]}) == runs.config_key({"b": [1, 2], "a": 1})
    assert runs.config_key({"a": 1}) != runs.config_key({"a": 2})


def test_runs_dir_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("EQUINB_RUNS", str(tmp_path))
    assert runs.runs_dir() == tmp_path
    assert runs.runs_dir("x") == runs.Path("x")
