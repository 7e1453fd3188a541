"""Check the built book as a reader sees it: every page opened in headless Chromium, screenshot, and checked.

``python -m equinb.bookcheck [_build/html] [--screenshots _build/screenshots]`` (``make check-book``) opens every
HTML page of the built book in headless Chromium, offline, saves a screenshot of each, and reports a page that

* shows an **error output**: a cell's traceback or error output, or a stderr output that mentions an error;
* has a **missing image**: an ``<img>`` (or a stylesheet or script) whose local file does not exist, is empty
  or is not an image, or that points off the machine (the book must render offline);
* has **unrendered math**: after MathJax ran (in Chromium), a math element without a rendered
  ``<mjx-container>``, a MathJax error, or raw ``$$``, ``\\(``, ``\\[`` left in the text;
* has a **broken link**: a relative ``href`` to a file that does not exist, or an anchor the target page lacks.

The checks (:func:`check_html`) work on HTML text, so they are tested on small synthetic pages without a browser;
:func:`check_book` adds Chromium: it renders each page (``--dump-dom`` after a virtual-time budget, so MathJax has
run) and checks the rendered DOM for math. Exit code 0: no problem; 1: problems (one line each); 2: no book or
no Chromium.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

#: Stylesheet (``_static/`` of the book) that spaces the columns of cell-output tables; pages with such tables
#: must load it.
TABLE_STYLESHEET = "tables.css"
#: Executables tried, in order, to find Chromium (``$EQUINB_CHROMIUM`` first when set).
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Flags for an offline headless Chromium that touches nothing outside its temporary profile.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
)
#: Virtual time a page gets to load and run its scripts (MathJax) before the DOM is dumped, in milliseconds.
VIRTUAL_TIME_MS = 20_000
#: Screenshot size (the top of each page).
WINDOW = (1280, 1600)
#: Seconds before a Chromium process is given up.
CHROMIUM_TIMEOUT_S = 120
#: Folders of a Sphinx build that hold assets, not pages.
ASSET_FOLDERS = frozenset({"_static", "_sources", "_images", "_downloads", "_sphinx_design_static"})
#: Text in a stderr output that makes it an error output.
ERROR_WORDS = ("Error", "Traceback")
#: Raw TeX delimiters that must not survive MathJax.
RAW_MATH = ("$$", "\\(", "\\[", "\\begin{")
#: Elements whose text is code, not prose (raw delimiters there are fine).
CODE_TAGS = frozenset({"script", "style", "pre", "code", "textarea", "noscript", "mjx-assistive-mml"})
#: URL schemes that are not files of the book.
EXTERNAL_SCHEMES = frozenset({"http", "https", "mailto", "javascript", "ftp", "tel"})
#: File signatures of the image formats a book page may show.
IMAGE_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"<svg", b"<?xml", b"RIFF")
#: Elements without a closing tag.
VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
                       "track", "wbr"})


@dataclass(frozen=True)
class Problem:
    """One problem of one page."""

    page: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.page}: {self.kind}: {self.detail}"


@dataclass
class PageScan:
    """What :class:`_Scanner` found in one HTML document."""

    ids: set[str] = field(default_factory=set)
    links: list[str] = field(default_factory=list)
    resources: list[tuple[str, str]] = field(default_factory=list)
    error_outputs: list[str] = field(default_factory=list)
    math_elements: int = 0
    math_rendered: int = 0
    math_errors: int = 0
    raw_math: list[str] = field(default_factory=list)
    output_tables: int = 0


class _Scanner(HTMLParser):
    """Collects ids, links, resources, error outputs and the state of the math of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scan = PageScan()
        self._stack: list[tuple[str, set[str]]] = []
        self._output_text: list[list[str]] = []  # text of the error outputs being read
        self._math_open: list[bool] = []  # per open math element: has it an mjx-container yet?

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        classes = set(values.get("class", "").split())
        anchors = [values.get("id"), values.get("name") if tag == "a" else None]
        self.scan.ids.update(anchor for anchor in anchors if anchor)
        if tag == "a" and "href" in values:
            self.scan.links.append(values["href"])
        elif tag in ("img", "script") and values.get("src"):
            self.scan.resources.append((tag, values["src"]))
        elif tag == "link" and "stylesheet" in values.get("rel", "").split() and values.get("href"):
            self.scan.resources.append((tag, values["href"]))
        if tag == "table" and any("cell_output" in open_classes for _, open_classes in self._stack):
            self.scan.output_tables += 1
        if tag == "mjx-container" and self._math_open:
            self._math_open[-1] = True
        if tag == "mjx-merror":
            self.scan.math_errors += 1
        if tag in VOID_TAGS:
            return
        self._stack.append((tag, classes))
        if _is_error_output(classes):
            self._output_text.append([])
        if "math" in classes:
            self._math_open.append(False)

    def handle_endtag(self, tag: str) -> None:
        if all(open_tag != tag for open_tag, _ in self._stack):
            return  # a stray end tag closes nothing
        while self._stack:
            open_tag, classes = self._stack.pop()
            if _is_error_output(classes):
                self.scan.error_outputs.append("".join(self._output_text.pop()).strip())
            if "math" in classes:
                self.scan.math_elements += 1
                self.scan.math_rendered += self._math_open.pop()
            if open_tag == tag:
                break

    def close_all(self) -> None:
        """Close the elements left open at the end of the document."""
        while self._stack:
            self.handle_endtag(self._stack[-1][0])

    def handle_data(self, data: str) -> None:
        for text in self._output_text:
            text.append(data)
        if any(tag in CODE_TAGS for tag, _ in self._stack):
            return
        for delimiter in RAW_MATH:
            if delimiter in data:
                at = data.index(delimiter)
                self.scan.raw_math.append(" ".join(data[max(0, at - 20):at + 40].split()))
                break


def _is_error_output(classes: set[str]) -> bool:
    """Whether an element's classes mark a cell output that may be an error (traceback, error, stderr)."""
    return "output" in classes and bool(classes & {"traceback", "error", "stderr"})


def scan_html(text: str) -> PageScan:
    """Scan an HTML document (a built page or a DOM rendered by Chromium)."""
    scanner = _Scanner()
    scanner.feed(text)
    scanner.close()
    scanner.close_all()
    return scanner.scan


def _local_target(url: str, page: Path) -> tuple[Path | None, str]:
    """The file a relative URL points to (None for the page itself) and its fragment."""
    parts = urlsplit(url)
    target = (page.parent / unquote(parts.path)).resolve() if parts.path else None
    return target, unquote(parts.fragment)


def _is_external(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in EXTERNAL_SCHEMES or bool(parts.netloc)


def _looks_like_image(path: Path) -> bool:
    with path.open("rb") as file:
        head = file.read(256).lstrip()
    return any(head.startswith(signature) for signature in IMAGE_SIGNATURES) or b"<svg" in head


class _IdCache:
    """Ids of the pages of a book, parsed once per page."""

    def __init__(self) -> None:
        self._ids: dict[Path, set[str]] = {}

    def ids(self, page: Path) -> set[str]:
        if page not in self._ids:
            self._ids[page] = scan_html(page.read_text(errors="replace")).ids
        return self._ids[page]


def link_problems(page: Path, scan: PageScan, name: str, cache: _IdCache | None = None) -> list[Problem]:
    """Relative links to missing files or to anchors their target page lacks."""
    cache = cache or _IdCache()
    problems = []
    for url in dict.fromkeys(scan.links):
        if not url or _is_external(url) or url.startswith("data:"):
            continue
        target, fragment = _local_target(url, page)
        target = target or page.resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            problems.append(Problem(name, "broken link", f"{url} (no such file)"))
        elif fragment and target.suffix == ".html":
            ids = scan.ids if target == page.resolve() else cache.ids(target)
            if fragment not in ids:
                problems.append(Problem(name, "broken link", f"{url} (no anchor #{fragment})"))
    return problems


def resource_problems(page: Path, scan: PageScan, name: str) -> list[Problem]:
    """Images, scripts and stylesheets that are missing, empty, not images, or not on this machine."""
    problems = []
    for tag, url in dict.fromkeys(scan.resources):
        kind = "missing image" if tag == "img" else f"missing {'script' if tag == 'script' else 'stylesheet'}"
        if url.startswith("data:"):
            continue
        if _is_external(url):
            problems.append(Problem(name, kind, f"{url} (off this machine: the book must render offline)"))
            continue
        target, _ = _local_target(url, page)
        if target is None or not target.is_file() or target.stat().st_size == 0:
            problems.append(Problem(name, kind, f"{url} (no such file, or empty)"))
        elif tag == "img" and not _looks_like_image(target):
            problems.append(Problem(name, kind, f"{url} (not an image file)"))
    return problems


def output_problems(scan: PageScan, name: str) -> list[Problem]:
    """Cell outputs that are tracebacks or errors, and stderr outputs that mention an error."""
    problems = []
    for text in scan.error_outputs:
        if any(word in text for word in ERROR_WORDS):
            first = next((line for line in text.splitlines() if any(w in line for w in ERROR_WORDS)), text)
            problems.append(Problem(name, "error output", first.strip()[:160]))
    return problems


def table_problems(scan: PageScan, name: str) -> list[Problem]:
    """Cell-output tables on a page that does not load :data:`TABLE_STYLESHEET` (their cells would touch)."""
    styled = any(tag == "link" and url.split("?")[0].endswith(TABLE_STYLESHEET) for tag, url in scan.resources)
    if scan.output_tables and not styled:
        return [Problem(name, "unpadded tables", f"{scan.output_tables} output table(s) without {TABLE_STYLESHEET}")]
    return []


def math_problems(scan: PageScan, name: str) -> list[Problem]:
    """Math that MathJax did not render, MathJax errors and raw TeX delimiters (on a rendered DOM)."""
    problems = []
    if scan.math_rendered < scan.math_elements:
        problems.append(Problem(name, "unrendered math",
                                f"{scan.math_elements - scan.math_rendered} of {scan.math_elements} math "
                                "elements have no <mjx-container>"))
    if scan.math_errors:
        problems.append(Problem(name, "unrendered math", f"{scan.math_errors} MathJax error(s) (mjx-merror)"))
    problems.extend(Problem(name, "unrendered math", f"raw TeX: {snippet!r}") for snippet in scan.raw_math[:5])
    return problems


def check_html(page: Path, root: Path, rendered: str | None = None, cache: _IdCache | None = None) -> list[Problem]:
    """Every check on one page.

    Parameters
    ----------
    page
        The built HTML file.
    root
        The book's HTML folder (page names in the problems are relative to it).
    rendered
        The page's DOM after the browser ran its scripts; math is checked on it (on the file when None,
        which fails for any page with math, since only a browser runs MathJax).
    cache
        Ids of other pages, shared between the pages of a book.
    """
    name = page.resolve().relative_to(root.resolve()).as_posix()
    scan = scan_html(page.read_text(errors="replace"))
    dom = scan if rendered is None else scan_html(rendered)
    return [*output_problems(scan, name), *table_problems(scan, name), *resource_problems(page, scan, name),
            *link_problems(page, scan, name, cache), *math_problems(dom, name)]


def book_pages(root: Path) -> list[Path]:
    """The HTML pages of a built book (assets and Sphinx's own folders excluded), sorted."""
    return sorted(path for path in root.rglob("*.html")
                  if not ASSET_FOLDERS & set(path.relative_to(root).parts[:-1]))


def find_chromium() -> str | None:
    """Path of a Chromium executable: ``$EQUINB_CHROMIUM``, else the first of :data:`CHROMIUM_NAMES` found."""
    names = [os.environ["EQUINB_CHROMIUM"]] if os.environ.get("EQUINB_CHROMIUM") else list(CHROMIUM_NAMES)
    return next((found for found in map(shutil.which, names) if found), None)


def _chromium(chromium: str, url: str, extra: Sequence[str]) -> str:
    with tempfile.TemporaryDirectory(prefix="equinb-chromium-") as profile:
        command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                   f"--virtual-time-budget={VIRTUAL_TIME_MS}", *extra, url]
        done = subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"chromium failed on {url} (exit {done.returncode}): {done.stderr.strip()[-300:]}")
    return done.stdout


def render_page(chromium: str, page: Path, screenshot: Path) -> str:
    """Open a page in headless Chromium: save a screenshot of its top and return its DOM after scripts ran."""
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    url = page.resolve().as_uri()
    _chromium(chromium, url, [f"--screenshot={screenshot.resolve()}", f"--window-size={WINDOW[0]},{WINDOW[1]}"])
    if not screenshot.is_file():
        raise RuntimeError(f"chromium wrote no screenshot of {page}")
    return _chromium(chromium, url, ["--dump-dom"])


def check_book(root: Path, screenshots: Path, chromium: str) -> dict[str, list[Problem]]:
    """Render, screenshot and check every page of a built book.

    Parameters
    ----------
    root
        The HTML folder (``_build/html``).
    screenshots
        Folder for the screenshots, one ``<page path with / as __>.png`` per page.
    chromium
        The Chromium executable (see :func:`find_chromium`).

    Returns
    -------
    dict
        Problems of each page (an empty list for a page without problems), in page order.
    """
    cache = _IdCache()
    results = {}
    for page in book_pages(root):
        name = page.relative_to(root).as_posix()
        shot = screenshots / (name.removesuffix(".html").replace("/", "__") + ".png")
        results[name] = check_html(page, root, render_page(chromium, page, shot), cache)
    return results


def main(argv: Iterable[str] | None = None) -> int:
    """Command line; returns the exit code (0 clean, 1 problems, 2 nothing to check or no Chromium)."""
    parser = argparse.ArgumentParser(prog="python -m equinb.bookcheck", description=__doc__.splitlines()[0])
    parser.add_argument("html", nargs="?", default="_build/html", help="built HTML folder (default _build/html)")
    parser.add_argument("--screenshots", default="_build/screenshots", help="where to save the screenshots")
    args = parser.parse_args(None if argv is None else list(argv))
    root = Path(args.html)
    chromium = find_chromium()
    if not (root / "index.html").is_file():
        print(f"error: no built book at {root} (run `make book` first)", file=sys.stderr)
        return 2
    if chromium is None:
        print("error: no Chromium found (apt-get install chromium, or set EQUINB_CHROMIUM)", file=sys.stderr)
        return 2
    results = check_book(root, Path(args.screenshots), chromium)
    for name, problems in results.items():
        print(f"{'ok  ' if not problems else 'FAIL'} {name}")
        for problem in problems:
            print(f"     {problem.kind}: {problem.detail}")
    failed = sum(bool(problems) for problems in results.values())
    print(f"{len(results) - failed} of {len(results)} pages clean; screenshots in {args.screenshots}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
