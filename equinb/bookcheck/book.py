"""Check every page of a built book: its files (:mod:`.files`) and what a reader sees (:mod:`.reader`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from .browser import NoChromium, open_browser, view_page
from .files import IdCache, file_problems, scan_html
from .problem import Problem
from .reader import reader_problems

#: Folders of a Sphinx build that hold assets, not pages.
ASSET_FOLDERS = frozenset({"_static", "_sources", "_images", "_downloads", "_sphinx_design_static"})


def book_pages(root: Path) -> list[Path]:
    """The HTML pages of a built book (assets and Sphinx's own folders excluded), sorted."""
    return sorted(path for path in root.rglob("*.html")
                  if not ASSET_FOLDERS & set(path.relative_to(root).parts[:-1]))


def check_pages(root: Path, pages: Iterable[Path], screenshots: Path | None = None) -> dict[str, list[Problem]]:
    """Check pages of a built book, each opened in headless Chromium.

    Parameters
    ----------
    root
        The book's HTML folder (``_build/html``); page names are relative to it.
    pages
        HTML files under ``root``.
    screenshots
        Folder for full-page screenshots, one ``<page path with / as __>.png`` per page; none when None.

    Returns
    -------
    dict
        The problems of each page (an empty list for a clean page), in the order of ``pages``.

    Raises
    ------
    NoChromium
        If no Chromium is installed.
    """
    cache = IdCache()
    results = {}
    with open_browser() as browser:
        for page in pages:
            name = page.resolve().relative_to(root.resolve()).as_posix()
            shot = None if screenshots is None else screenshots / (name.removesuffix(".html").replace("/", "__")
                                                                   + ".png")
            problems = file_problems(page, root, cache)
            if not scan_html(page.read_text(errors="replace")).redirect:  # a redirect shows nothing to read
                problems += reader_problems(view_page(browser, page, shot), name)
            results[name] = problems
    return results


def main(argv: Iterable[str] | None = None) -> int:
    """Command line; returns the exit code (0 clean, 1 problems, 2 no book or no Chromium)."""
    parser = argparse.ArgumentParser(prog="python -m equinb.bookcheck",
                                     description="Check the built book as a reader sees it, in headless Chromium.")
    parser.add_argument("html", nargs="?", default="_build/html", help="built HTML folder (default _build/html)")
    parser.add_argument("--screenshots", metavar="DIR", help="save a full-page screenshot of every page here")
    args = parser.parse_args(None if argv is None else list(argv))
    root = Path(args.html)
    if not (root / "index.html").is_file():
        print(f"error: no built book at {root} (run `make book` first)", file=sys.stderr)
        return 2
    try:
        results = check_pages(root, book_pages(root), None if args.screenshots is None else Path(args.screenshots))
    except NoChromium as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for problems in results.values():
        for problem in problems:
            print(problem)
    failed = sum(bool(problems) for problems in results.values())
    total = sum(map(len, results.values()))
    where = f"; screenshots in {args.screenshots}" if args.screenshots else ""
    print(f"{len(results) - failed} of {len(results)} pages clean, {total} problem(s){where}")
    return 1 if failed else 0
