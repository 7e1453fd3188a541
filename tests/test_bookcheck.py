"""The book check: each problem it looks for, on small synthetic pages; and the Chromium part where installed."""

from __future__ import annotations

import importlib.util
import zlib
from pathlib import Path

import pytest

from equinb import bookcheck

RENDERED_MATH = '<span class="math notranslate nohighlight"><mjx-container jax="CHTML">x</mjx-container></span>'


def _png() -> bytes:
    """A valid 1x1 PNG."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    header = (1).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0\0\0\0")) + \
        chunk(b"IEND", b"")


def _page(body: str) -> str:
    return f"<!DOCTYPE html><html><head><title>t</title></head><body>{body}</body></html>"


@pytest.fixture
def book(tmp_path: Path) -> Path:
    """A clean two-page book: links with anchors, an image, rendered math, a harmless stderr output."""
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "plot.png").write_bytes(_png())
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "asset.html").write_text(_page('<a href="nowhere.html">not a page</a>'))
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "chapter.html").write_text(_page(
        '<h1 id="top">Chapter</h1><a href="../index.html#intro">back</a><a href="#top">top</a>'
        '<img src="../_images/plot.png"><p>Energy ' + RENDERED_MATH + '</p>'
        '<div class="output stderr"><pre>UserWarning: a harmless warning</pre></div>'
        '<pre>code may show \\( and $$ as they are</pre>'))
    (tmp_path / "index.html").write_text(_page(
        '<section id="intro"><a href="book/chapter.html#top">chapter</a><a href="book/">folder</a>'
        '<a href="https://example.org/paper">external</a></section>'))
    (tmp_path / "book" / "index.html").write_text(_page("<p>folder index</p>"))
    return tmp_path


def _problems(book: Path, body: str) -> list[bookcheck.Problem]:
    page = book / "book" / "bad.html"
    page.write_text(_page(body))
    return bookcheck.check_html(page, book)


def test_clean_pages_pass(book):
    assert [page.relative_to(book).as_posix() for page in bookcheck.book_pages(book)] == [
        "book/chapter.html", "book/index.html", "index.html"]
    for page in bookcheck.book_pages(book):
        assert bookcheck.check_html(page, book) == []


@pytest.mark.parametrize(
    ("body", "kind", "detail"),
    [
        ('<a href="missing.html">x</a>', "broken link", "missing.html (no such file)"),
        ('<a href="chapter.html#nope">x</a>', "broken link", "no anchor #nope"),
        ('<a href="#gone">x</a>', "broken link", "no anchor #gone"),
        ('<img src="../_images/none.png">', "missing image", "none.png (no such file, or empty)"),
        ('<img src="chapter.html">', "missing image", "not an image file"),
        ('<img src="https://example.org/x.png">', "missing image", "off this machine"),
        ('<script src="https://cdn.example.org/mathjax/tex-chtml.js"></script>', "missing script", "off this machine"),
        ('<div class="cell_output"><div class="output traceback"><pre>Traceback (most recent call last)\n'
         'ValueError: boom</pre></div></div>', "error output", "Traceback"),
        ('<div class="output stderr"><pre>RuntimeError: the kernel died</pre></div>', "error output",
         "RuntimeError: the kernel died"),
        ('<p>The energy <span class="math notranslate nohighlight">\\(E = mc^2\\)</span></p>', "unrendered math",
         "1 of 1 math elements have no <mjx-container>"),
        ('<p>raw display math $$x^2$$ in prose</p>', "unrendered math", "raw TeX"),
        ('<span class="math">' '<mjx-container><mjx-merror>x</mjx-merror></mjx-container></span>', "unrendered math",
         "MathJax error"),
        ('<div class="cell_output docutils container"><div><table><tr><td>5.77e-01</td><td>3.71e-02</td></tr>'
         '</table></div></div>', "unpadded tables", "1 output table(s) without tables.css"),
    ],
)
def test_each_problem_is_detected(book, body, kind, detail):
    problems = _problems(book, body)
    assert {problem.kind for problem in problems} == {kind}, problems
    assert any(detail in problem.detail for problem in problems), problems
    assert {problem.page for problem in problems} == {"book/bad.html"}


def test_output_tables_pass_with_the_table_stylesheet(book):
    (book / "_static" / bookcheck.TABLE_STYLESHEET).write_text("td { padding: 0 1em; }")
    table = '<div class="cell_output"><table><tr><td>1</td><td>2</td></tr></table></div>'
    styled = f'<link rel="stylesheet" href="../_static/{bookcheck.TABLE_STYLESHEET}?v=1">'
    assert _problems(book, styled + table) == []
    assert _problems(book, "<table><tr><td>prose tables need no stylesheet</td></tr></table>") == []


def test_the_books_table_stylesheet_spaces_output_cells():
    css = (Path(__file__).parents[1] / "_static" / bookcheck.TABLE_STYLESHEET).read_text()
    assert "div.cell_output table td" in css and "padding" in css


def test_math_is_checked_on_the_rendered_dom(book):
    page = book / "book" / "bad.html"
    page.write_text(_page('<span class="math notranslate nohighlight">\\(x\\)</span>'))
    assert bookcheck.check_html(page, book, rendered=_page(RENDERED_MATH)) == []


def test_cli_without_a_book_exits_2(tmp_path, capsys):
    assert bookcheck.main([str(tmp_path)]) == 2
    assert "no built book" in capsys.readouterr().err


CHROMIUM = bookcheck.find_chromium()
MATHJAX = importlib.util.find_spec("sphinx-mathjax-offline")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_chromium_screenshots_every_page_and_runs_its_scripts(tmp_path):
    site = tmp_path / "html"
    (site / "_images").mkdir(parents=True)
    (site / "_images" / "plot.png").write_bytes(_png())
    (site / "index.html").write_text(_page(
        '<h1 id="top">Book</h1><img src="_images/plot.png"><a href="#top">top</a><p id="target">before</p>'
        '<script>document.getElementById("target").id = "after-script";</script>'))
    shots = tmp_path / "shots"
    dom = bookcheck.render_page(CHROMIUM, site / "index.html", shots / "first.png")
    assert 'id="after-script"' in dom
    assert (shots / "first.png").read_bytes().startswith(b"\x89PNG")
    assert bookcheck.check_book(site, shots, CHROMIUM) == {"index.html": []}
    assert (shots / "index.png").is_file()


@pytest.mark.skipif(CHROMIUM is None or MATHJAX is None,
                    reason="needs chromium and the sphinx-mathjax-offline package (offline MathJax)")
def test_chromium_renders_math_with_the_offline_mathjax(book, tmp_path):
    mathjax = Path(MATHJAX.origin).parent / "static" / "mathjax" / "tex-chtml.js"
    page = book / "book" / "math.html"
    page.write_text(_page(f'<script defer src="{mathjax.as_uri()}"></script>'
                          '<p>Energy <span class="math notranslate nohighlight">\\(E = mc^2\\)</span></p>'
                          '<div class="math notranslate nohighlight">\\[\\sum_{l} (2l + 1) = L^2\\]</div>'))
    assert bookcheck.check_html(page, book)  # unrendered in the file ...
    dom = bookcheck.render_page(CHROMIUM, page, tmp_path / "math.png")
    assert bookcheck.check_html(page, book, rendered=dom) == []  # ... rendered by MathJax in the browser
    assert dom.count("<mjx-container") == 2
