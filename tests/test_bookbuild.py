"""The book built from chapters executed with a profile: staged, built by Jupyter Book, clean in the book check."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
import yaml

from equinb import bookbuild, bookcheck
from equinb.profiles import PROFILES
from equinb.runner import RunnerError

ROOT = Path(__file__).resolve().parents[1]
TOC = {"format": "jb-book", "root": "book/intro", "parts": [
    {"caption": "Chapters", "chapters": [{"file": "book/one"}, {"file": "book/results/two", "title": "Two, as run"}]},
    {"caption": "Back matter", "chapters": [{"file": "book/three"}]},
]}
HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""


def _chapter(title: str, code: str) -> str:
    return (f"{HEADER}\n# {title}\n\n```{{code-cell}} ipython3\n:tags: [parameters]\n\nn = 1\n```\n\n"
            f"Prose with math $E = n^2$.\n\n```{{code-cell}} ipython3\n{code}\n```\n")


@pytest.fixture
def tiny_book(tmp_path: Path, monkeypatch) -> Path:
    """A three-chapter book with the real configuration and one executed results notebook."""
    root = tmp_path / "checkout"
    (root / "book" / "results").mkdir(parents=True)
    shutil.copy(ROOT / "_config.yml", root / "_config.yml")
    shutil.copytree(ROOT / "_static", root / "_static")
    shutil.copy(ROOT / "book" / "references.bib", root / "book" / "references.bib")
    (root / "_toc.yml").write_text(yaml.safe_dump(TOC, sort_keys=False))
    (root / "book" / "intro.md").write_text(_chapter("Intro", 'print(f"n is {n}")'))
    (root / "book" / "one.md").write_text(_chapter("One", 'print(f"one has n = {n}")'))
    (root / "book" / "three.md").write_text(_chapter("Three", "print(n + 2)"))
    ran = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Two"), nbformat.v4.new_code_cell(
        "print('stored')", outputs=[nbformat.v4.new_output("stream", name="stdout", text="stored output\n")])])
    ran.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(ran, root / "book" / "results" / "two.ipynb")
    monkeypatch.chdir(root)
    monkeypatch.setitem(PROFILES, "tiny", {"intro": {"n": 7}, "one": {"n": 8}})
    return root


def test_filter_toc_keeps_the_root_and_the_named_entries():
    kept = bookbuild.filter_toc(TOC, {"two"})
    assert kept == {"format": "jb-book", "root": "book/intro", "parts": [
        {"caption": "Chapters", "chapters": [{"file": "book/results/two", "title": "Two, as run"}]}]}
    assert bookbuild.filter_toc(TOC, {"one", "three"})["parts"][1] == TOC["parts"][1]


@pytest.mark.parametrize(("profile", "only", "message"), [
    ("nope", None, "unknown profile 'nope'"),
    ("tiny", ["one", "four"], "not in"),
])
def test_a_bad_request_executes_nothing(tiny_book, tmp_path, profile, only, message):
    with pytest.raises(RunnerError, match=message):
        bookbuild.stage_book(tiny_book, tmp_path / "staged", profile, only)
    assert not (tmp_path / "staged").exists()


def test_the_command_line_refuses_to_write_over_the_book(tiny_book, capsys):
    assert bookbuild.main(["--out", str(tiny_book)]) == 2
    assert "would hold the book itself" in capsys.readouterr().err


def test_the_book_is_built_from_the_profile_and_passes_the_book_check(tiny_book, tmp_path, capsys):
    out = tmp_path / "smoke"
    assert bookbuild.main(["--profile", "tiny", "--out", str(out), "--only", "one", "two"]) == 0
    html = out / "src" / "_build" / "html"
    assert capsys.readouterr().out.strip() == str(html)
    staged = yaml.safe_load((out / "src" / "_config.yml").read_text())
    assert staged["execute"]["execute_notebooks"] == "off"
    assert sorted(path.name for path in (out / "src" / "book").rglob("*.ipynb")) == ["intro.ipynb", "one.ipynb",
                                                                                   "two.ipynb"]
    pages = {path.relative_to(html).as_posix(): path.read_text() for path in bookcheck.book_pages(html)}
    assert "n is 7" in pages["book/intro.html"] and "one has n = 8" in pages["book/one.html"]  # the profile's n
    assert "stored output" in pages["book/results/two.html"]  # shown as it ran
    assert "book/three.html" not in pages
    results = bookcheck.check_pages(html, bookcheck.book_pages(html))
    assert results and all(problems == [] for problems in results.values()), results
