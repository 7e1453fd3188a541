"""Progress reaches a terminal only: nothing on a non-terminal stderr (a notebook kernel, CI) unless forced."""

from __future__ import annotations

import io
import sys

import pytest

from equinb import progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("stream", "enabled", "shown"), [
    (io.StringIO, None, False), (_Terminal, None, True), (io.StringIO, True, True), (_Terminal, False, False),
])
def test_bar_and_note_follow_the_terminal_unless_told(monkeypatch, stream, enabled, shown):
    err = stream()
    monkeypatch.setattr(sys, "stderr", err)
    assert list(progress.bar(range(3), enabled, desc="work", mininterval=0)) == [0, 1, 2]
    progress.note("epoch 1/1: done", enabled)
    text = err.getvalue()
    assert ("work" in text and "3/3" in text and "epoch 1/1: done" in text) if shown else text == ""


def test_a_closed_or_missing_stderr_counts_as_no_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", None)
    assert not progress.on_terminal()
    assert not progress.wanted(None) and progress.wanted(True)


def test_importing_the_package_in_a_kernel_writes_no_stderr(tmp_path):
    """In a kernel without ipywidgets, importing tqdm.auto (as torch_geometric does) printed a TqdmWarning with
    the path of the installed tqdm onto every page; the page must get nothing on stderr."""
    import nbformat
    import papermill

    from equinb.runner import kernel_name

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import equinb.train, equinb.data, equinb.progress\n"
        "list(equinb.progress.bar(range(3)))\nequinb.progress.note('not on the page')")])
    done = papermill.execute_notebook(notebook, str(tmp_path / "out.ipynb"), kernel_name=kernel_name(),
                                      progress_bar=False, cwd=str(tmp_path))
    outputs = done.cells[0].outputs
    assert [output for output in outputs if output.get("name") == "stderr"] == [], outputs
