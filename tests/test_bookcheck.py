"""The book check: each rule on a small page that breaks only it (tests/bookcheck_pages/), one clean page, and
the file checks on synthetic pages.

The reader rules need Chromium. Where none is installed these tests FAIL with the install hint: a skipped
browser test would pass a check that never ran.
"""

from __future__ import annotations

import shutil
import zlib
from pathlib import Path

import pytest

from equinb import bookcheck
from equinb.bookcheck import browser as browser_module
from equinb.bookcheck.files import TABLE_STYLESHEET

PAGES = Path(__file__).parent / "bookcheck_pages"


def _png(width: int = 1, height: int = 1) -> bytes:
    """A valid grey PNG of the given size."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    rows = b"".join(b"\0" + b"\x80" * width for _ in range(height))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.fixture
def chromium():
    """A headless Chromium (one per test: Playwright's sync API cannot nest, and the command line opens its own);
    fails, not skips, where none is installed."""
    try:
        with bookcheck.open_browser() as browser:
            yield browser
    except bookcheck.NoChromium as error:
        pytest.fail(f"the book check needs Chromium: {browser_module.INSTALL_HINT} ({error})", pytrace=False)


@pytest.fixture
def pages(tmp_path: Path) -> Path:
    """The fixture pages, with their images: one shown at its natural width, one at a third of it."""
    site = tmp_path / "html"
    shutil.copytree(PAGES, site)
    (site / "_images").mkdir()
    (site / "_images" / "fit.png").write_bytes(_png(600, 40))
    (site / "_images" / "wide.png").write_bytes(_png(2000, 40))  # shown at 688 px: 34 %
    return site


def _check(chromium, site: Path, page: str) -> list[bookcheck.Problem]:
    path = site / page
    return [*bookcheck.file_problems(path, site),
            *bookcheck.reader_problems(bookcheck.view_page(chromium, path), page)]


def test_the_clean_page_passes(chromium, pages):
    view = bookcheck.view_page(chromium, pages / "clean.html")
    assert view.column == 688
    assert len(view.outputs) == 3 and len(view.images) == 1 and view.math == 1  # an image is no .output
    assert _check(chromium, pages, "clean.html") == []


@pytest.mark.parametrize(("page", "kind", "detail"), [
    ("too_wide.html", "too wide", 'table.dataframe "verdict claim holds l = 1 gains structure" is 1,200 px in the '
                                  '688 px column, under "Results" (cell 1)'),
    ("stderr.html", "stderr output", '"something went to stderr", under "Results" (cell 1)'),
    ("traceback.html", "traceback", '"ValueError: boom"'),
    ("warning.html", "warning", '"UserWarning: the fit did not converge"'),
    ("machine_path.html", "machine path", "/work/main/runs/"),
    ("raw_math.html", "raw math", '"the tensor product of $L = [0,\\dots,4]$ at $h = 16$"'),
    ("unrendered_math.html", "raw math", "1 of 1 math elements not rendered by MathJax"),
    ("small_image.html", "image too small", "wide.png shown at 688 of its 2,000 px (34%)"),
    ("timing.html", "timing noise", '"elapsed 12 s"'),
    ("progress_bar.html", "timing noise", "100%|##########| 54/54"),
])
def test_each_rule_fails_its_page(chromium, pages, page, kind, detail):
    problems = _check(chromium, pages, page)
    assert {problem.kind for problem in problems} == {kind}, problems
    assert any(detail in problem.detail for problem in problems), problems
    assert {problem.page for problem in problems} == {page}


def test_a_wide_code_line_is_too_wide_even_inside_its_scroll_box(chromium, pages):
    page = pages / "clean.html"
    page.write_text(page.read_text().replace("run = train(config)", "run = train(config)" + " " * 60 + "# x" * 20))
    problems = _check(chromium, pages, "clean.html")
    assert [problem.kind for problem in problems] == ["too wide"]
    assert problems[0].detail.startswith('pre "run = train(config)')


def test_the_command_line_checks_every_page_and_saves_screenshots(pages, tmp_path, capsys):
    site = tmp_path / "book"
    site.mkdir()
    for name in ("clean.html", "stderr.html", "_static"):
        (shutil.copytree if (pages / name).is_dir() else shutil.copy)(pages / name, site / name)
    shutil.copytree(pages / "_images", site / "_images")
    (site / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=clean.html">')
    shots = tmp_path / "shots"
    assert bookcheck.main([str(site), "--screenshots", str(shots)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == ['stderr.html: stderr output: "something went to stderr", under "Results" (cell 1)',
                   "2 of 3 pages clean, 1 problem(s); screenshots in " + str(shots)]
    assert sorted(path.name for path in shots.iterdir()) == ["clean.png", "stderr.png"]  # a redirect shows nothing
    assert (shots / "clean.png").read_bytes().startswith(b"\x89PNG")
    (site / "stderr.html").unlink()
    assert bookcheck.main([str(site)]) == 0


def test_without_chromium_the_command_line_says_how_to_install_it(pages, monkeypatch, capsys):
    monkeypatch.setattr(browser_module, "find_chromium", lambda: None)
    monkeypatch.setattr(browser_module, "_downloaded_chromium", lambda playwright: None)
    (pages / "index.html").write_text("<p>book</p>")
    assert bookcheck.main([str(pages)]) == 2
    assert capsys.readouterr().err.strip() == f"error: no Chromium found: {browser_module.INSTALL_HINT}"


def test_cli_without_a_book_exits_2(tmp_path, capsys):
    assert bookcheck.main([str(tmp_path)]) == 2
    assert "no built book" in capsys.readouterr().err


# --- the file checks (no browser) -------------------------------------------------------------------------------

def _page(body: str) -> str:
    return f"<!DOCTYPE html><html><head><title>t</title></head><body>{body}</body></html>"


@pytest.fixture
def book(tmp_path: Path) -> Path:
    """A clean two-page book: links with anchors, an image, an asset folder whose pages are not checked."""
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "plot.png").write_bytes(_png())
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "asset.html").write_text(_page('<a href="nowhere.html">not a page</a>'))
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "chapter.html").write_text(_page(
        '<h1 id="top">Chapter</h1><a href="../index.html#intro">back</a><a href="#top">top</a>'
        '<img src="../_images/plot.png">'))
    (tmp_path / "index.html").write_text(_page(
        '<section id="intro"><a href="book/chapter.html#top">chapter</a><a href="book/">folder</a>'
        '<a href="https://example.org/paper">external</a></section>'))
    (tmp_path / "book" / "index.html").write_text(_page("<p>folder index</p>"))
    return tmp_path


def _file_problems(book: Path, body: str) -> list[bookcheck.Problem]:
    page = book / "book" / "bad.html"
    page.write_text(_page(body))
    return bookcheck.file_problems(page, book)


def test_clean_pages_pass_the_file_checks(book):
    assert [page.relative_to(book).as_posix() for page in bookcheck.book_pages(book)] == [
        "book/chapter.html", "book/index.html", "index.html"]
    for page in bookcheck.book_pages(book):
        assert bookcheck.file_problems(page, book) == []


@pytest.mark.parametrize(("body", "kind", "detail"), [
    ('<a href="missing.html">x</a>', "broken link", "missing.html (no such file)"),
    ('<a href="chapter.html#nope">x</a>', "broken link", "no anchor #nope"),
    ('<a href="#gone">x</a>', "broken link", "no anchor #gone"),
    ('<img src="../_images/none.png">', "missing image", "none.png (no such file, or empty)"),
    ('<img src="chapter.html">', "missing image", "not an image file"),
    ('<img src="https://example.org/x.png">', "missing image", "off this machine"),
    ('<script src="https://cdn.example.org/mathjax/tex-chtml.js"></script>', "missing script", "off this machine"),
    ('<div class="cell_output docutils container"><div><table><tr><td>5.77e-01</td><td>3.71e-02</td></tr>'
     '</table></div></div>', "unpadded tables", "1 output table(s) without tables.css"),
])
def test_each_file_problem_is_detected(book, body, kind, detail):
    problems = _file_problems(book, body)
    assert {problem.kind for problem in problems} == {kind}, problems
    assert any(detail in problem.detail for problem in problems), problems
    assert {problem.page for problem in problems} == {"book/bad.html"}


def test_output_tables_pass_with_the_table_stylesheet(book):
    (book / "_static" / TABLE_STYLESHEET).write_text("td { padding: 0 1em; }")
    table = '<div class="cell_output"><table><tr><td>1</td><td>2</td></tr></table></div>'
    styled = f'<link rel="stylesheet" href="../_static/{TABLE_STYLESHEET}?v=1">'
    assert _file_problems(book, styled + table) == []
    assert _file_problems(book, "<table><tr><td>prose tables need no stylesheet</td></tr></table>") == []


def test_the_books_table_stylesheet_spaces_output_cells():
    css = (Path(__file__).parents[1] / "_static" / TABLE_STYLESHEET).read_text()
    assert "div.cell_output table td" in css and "padding" in css


def test_math_renders_with_the_books_offline_mathjax(chromium, pages):
    """The MathJax the book ships (sphinx-mathjax-offline) renders inline and display math in Chromium."""
    import importlib.util

    spec = importlib.util.find_spec("sphinx-mathjax-offline")  # the package's folder has hyphens in its name
    assert spec is not None, "sphinx-mathjax-offline is a dependency of the book (pyproject.toml)"
    mathjax = Path(spec.origin).parent / "static" / "mathjax" / "tex-chtml.js"
    page = pages / "math.html"
    page.write_text((pages / "unrendered_math.html").read_text().replace(
        "</head>", f'<script defer src="{mathjax.as_uri()}"></script></head>').replace(
        "in prose.</p>", 'in prose.</p><div class="math notranslate nohighlight">\\[\\sum_l (2l + 1) = L^2\\]</div>'))
    view = bookcheck.view_page(chromium, page)
    assert (view.math, view.math_unrendered, view.math_errors) == (2, 0, 0)
    assert _check(chromium, pages, "math.html") == []
