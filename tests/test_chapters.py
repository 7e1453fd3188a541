"""Every page of the book executes through the runner with the `smoke` profile, without a failing cell."""

from __future__ import annotations

from pathlib import Path

import pytest

from equinb.runner import find_chapter, run_chapter, toc_files

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("chapter", toc_files(ROOT), ids=lambda path: path.stem)
def test_chapter_executes(chapter, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    defaults = find_chapter(chapter, ROOT).defaults
    parameters = {"runs_dir": str(tmp_path / "runs")} if "runs_dir" in defaults else {}  # no stale runs reused
    out = run_chapter(chapter, parameters, profile="smoke", out=tmp_path / f"{chapter.stem}.ipynb",
                      progress_bar=False)
    assert out.stat().st_size > 0
