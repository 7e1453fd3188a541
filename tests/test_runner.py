"""The papermill runner: parameter checking, chapter lookup, command-line errors, execution."""

from __future__ import annotations

import json
import textwrap

import pytest

from equinb.__main__ import main
from equinb.runner import ChapterFailed, RunnerError, coerce_value, find_chapter, run_chapter

HEADER = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""

CHAPTER = HEADER + textwrap.dedent(
    """
    # A chapter

    ```{code-cell} ipython3
    :tags: [parameters]

    epochs = 2  # an int
    rate = 0.5  # a float
    L = [0, 1, 2]  # a list of ints
    name = "run"  # a string
    verbose = False  # a bool
    ```

    ```{code-cell} ipython3
    import json, pathlib
    assert epochs >= 0, "epochs must be non-negative"
    pathlib.Path("result.json").write_text(json.dumps({"epochs": epochs, "rate": rate, "L": L, "name": name,
                                                       "verbose": verbose}))
    ```
    """
)


@pytest.fixture
def book(tmp_path, monkeypatch):
    """A two-page book in a temporary folder, made the working directory."""
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: pages/intro\nchapters:\n  - file: pages/chapter\n")
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "intro.md").write_text("# Intro\n")
    (tmp_path / "pages" / "chapter.md").write_text(CHAPTER)
    (tmp_path / "pages" / "orphan.md").write_text(CHAPTER)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("raw", "default", "expected"),
    [
        ("3", 1, 3),
        ("3", 1.0, 3.0),
        ("2.5", 1.0, 2.5),
        ("true", False, True),
        ("False", True, False),
        ("[0, 3, 4]", [0, 1], [0, 3, 4]),
        ("123", "name", "123"),
        ("anything", None, "anything"),
        (7, 1, 7),
    ],
)
def test_coerce_accepts_matching_types(raw, default, expected):
    value = coerce_value("p", raw, default)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("raw", "default"),
    [("abc", 1), ("2.5", 1), ("True", 1), ("yes", False), ("3", [0]), ("[0, 'a']", [0, 1]), ("x", 1.0)],
)
def test_coerce_rejects_wrong_types(raw, default):
    with pytest.raises(RunnerError, match="parameter p"):
        coerce_value("p", raw, default)


def test_find_chapter_by_name_and_path(book):
    by_name = find_chapter("chapter")
    by_path = find_chapter("pages/chapter.md")
    assert by_name == by_path
    assert by_name.defaults == {"epochs": 2, "rate": 0.5, "L": [0, 1, 2], "name": "run", "verbose": False}
    with pytest.raises(RunnerError, match="not in"):
        find_chapter("pages/orphan.md")


def test_run_injects_parameters(book, tmp_path):
    out = run_chapter("pages/chapter.md", {"epochs": "5", "L": "[0, 3]"}, out=tmp_path / "x.ipynb",
                      progress_bar=False)
    result = json.loads((book / "pages" / "result.json").read_text())  # working directory = chapter folder
    assert result == {"epochs": 5, "rate": 0.5, "L": [0, 3], "name": "run", "verbose": False}
    assert json.loads(out.read_text())["cells"]  # executed notebook written


def test_failing_cell_names_the_error(book, tmp_path):
    with pytest.raises(ChapterFailed, match="AssertionError: epochs must be non-negative"):
        run_chapter("chapter", {"epochs": -1}, out=tmp_path / "x.ipynb", progress_bar=False)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "missing"], "chapter 'missing' is not in"),
        (["run", "pages/orphan.md"], "is not in"),
        (["run", "chapter", "-p", "epoch", "3"], "chapter chapter has no parameter 'epoch'"),
        (["run", "chapter", "-p", "epochs", "three"], "parameter epochs expects int, got 'three'"),
        (["run", "chapter", "-p", "epochs", "1", "-p", "epochs", "2"], "given twice"),
        (["run", "chapter", "--profile", "gpu"], "unknown profile 'gpu'"),
        (["run", "intro", "-p", "epochs", "1"], "has no parameter 'epochs' (parameters: none)"),
    ],
)
def test_cli_bad_requests_exit_2_with_one_line(book, capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_cli_failing_chapter_exits_1(book, capsys, tmp_path):
    assert main(["run", "chapter", "-p", "epochs", "-1", "--out", str(tmp_path / "x.ipynb")]) == 1
    assert "AssertionError" in capsys.readouterr().err


def test_every_profile_entry_is_valid_for_its_chapter():
    """Profiles name existing chapters and parameters with values of the right type."""
    from pathlib import Path

    from equinb.profiles import PROFILES
    from equinb.runner import resolve_parameters

    root = Path(__file__).resolve().parents[1]
    for profile, chapters in PROFILES.items():
        for name in chapters:
            resolve_parameters(find_chapter(name, root), {}, profile)
