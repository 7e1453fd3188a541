"""Build the book's HTML from chapters executed with a named profile, in a folder of its own.

``python -m equinb.bookbuild --profile smoke --out _build/smoke [--only NAME ...]`` executes every chapter of the
table of contents through :func:`equinb.runner.run_chapter` with the profile (each chapter's ``runs_dir``, where
it has one, inside ``--out``, so no earlier run is reused), copies the executed notebooks the toc shows as they
ran (``book/results/*.ipynb``), the configuration with notebook execution turned off, the toc and the static
files into ``OUT/src``, and builds ``OUT/src/_build/html`` with Jupyter Book as ``make book`` does (warnings are
errors). CI checks that HTML with :mod:`equinb.bookcheck`: the pages a reader gets, at smoke size, in minutes.
``--only`` keeps the root page and the named entries (file stems) and drops the rest from the toc.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from .profiles import PROFILES
from .runner import ChapterFailed, RunnerError, find_book_root, find_chapter, run_chapter, toc_entries

#: Files and folders of the book root that a build needs besides the pages.
BOOK_FILES = ("_static", "book/references.bib")
#: Jupyter Book's command line, run with this interpreter.
JUPYTER_BOOK = (sys.executable, "-c", "from jupyter_book.cli.main import main; main()")
#: Options of the build, as in the Makefile's ``book`` target.
BUILD_OPTIONS = ("--all", "--warningiserror", "--keep-going")


class BookBuildError(RuntimeError):
    """The book could not be staged or built; the message names the step."""


def filter_toc(toc: dict[str, Any], keep: set[str]) -> dict[str, Any]:
    """A copy of a parsed ``_toc.yml`` with only the root and the ``file`` entries whose stem is in ``keep``.

    Parameters
    ----------
    toc
        The parsed table of contents (``format: jb-book``).
    keep
        File stems to keep (``"01_angular_momentum"``); parts left without a chapter are dropped.

    Returns
    -------
    dict
        The filtered table of contents.
    """
    def prune(node: Any) -> Any:
        if isinstance(node, list):
            kept = [prune(item) for item in node]
            return [item for item in kept if item is not None]
        if not isinstance(node, dict):
            return node
        if "file" in node and Path(node["file"]).stem not in keep:
            return None
        pruned = {key: prune(value) for key, value in node.items()}
        if "chapters" in node and not pruned["chapters"]:
            return None
        return pruned

    return {key: value if key == "root" else prune(value) for key, value in toc.items()}


def stage_book(root: Path, source: Path, profile: str, only: Iterable[str] | None = None) -> list[str]:
    """Execute the chapters with ``profile`` and lay out a book that Jupyter Book builds without executing.

    Parameters
    ----------
    root
        The book's checkout (holding ``_toc.yml``).
    source
        Empty or missing folder for the staged book.
    profile
        Parameter profile of the chapters (:data:`equinb.profiles.PROFILES`).
    only
        File stems of the entries to keep (the root page is always kept); None keeps all.

    Returns
    -------
    list of str
        The toc entries staged, in reading order.

    Raises
    ------
    RunnerError
        For an unknown profile, or an entry of ``only`` that is not in the toc (nothing is executed).
    BookBuildError
        If a chapter fails.
    """
    if profile not in PROFILES:
        raise RunnerError(f"unknown profile {profile!r} (profiles: {', '.join(PROFILES)})")
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    entries = toc_entries(root)
    if only is not None:
        keep = set(only) | {Path(toc["root"]).stem}
        unknown = sorted(keep - {Path(entry).stem for entry in entries})
        if unknown:
            raise RunnerError(f"not in {root / '_toc.yml'}: {', '.join(unknown)}")
        toc = filter_toc(toc, keep)
        entries = [entry for entry in entries if Path(entry).stem in keep]
    source.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((root / "_config.yml").read_text())
    config.setdefault("execute", {})["execute_notebooks"] = "off"  # executed below, with the profile
    (source / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    (source / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    for name in BOOK_FILES:
        origin, target = root / name, source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, target, dirs_exist_ok=True)
        elif origin.is_file():
            shutil.copy2(origin, target)
    for entry in entries:
        out = (source / entry).with_suffix(".ipynb")
        if (root / entry).with_suffix(".md").is_file():
            chapter = find_chapter(root / f"{entry}.md", root)
            runs = {"runs_dir": str(source.parent / "runs")} if "runs_dir" in chapter.defaults else {}
            try:
                run_chapter(chapter.path, runs, profile=profile, out=out, progress_bar=False)
            except ChapterFailed as error:
                raise BookBuildError(str(error)) from None
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2((root / entry).with_suffix(".ipynb"), out)
    return entries


def build_html(source: Path) -> Path:
    """Build a staged book with Jupyter Book; returns its HTML folder.

    Raises
    ------
    BookBuildError
        If the build fails (the last lines of its output are in the message).
    """
    done = subprocess.run([*JUPYTER_BOOK, "build", *BUILD_OPTIONS, str(source)], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise BookBuildError(f"jupyter-book build of {source} failed (exit {done.returncode}):\n{tail}")
    return source / "_build" / "html"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; returns the exit code (0 built, 1 a chapter or the build failed, 2 a bad request)."""
    parser = argparse.ArgumentParser(prog="python -m equinb.bookbuild", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke", help="parameter profile of the chapters (default smoke)")
    parser.add_argument("--out", default="_build/smoke", help="folder for the staged book (emptied first)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="keep only these toc entries (and the root)")
    args = parser.parse_args(None if argv is None else list(argv))
    out = Path(args.out).resolve()
    try:
        root = find_book_root()
        if out == root or root.is_relative_to(out):
            raise RunnerError(f"--out {out} would hold the book itself; choose a folder of its own")
        shutil.rmtree(out, ignore_errors=True)
        stage_book(root, out / "src", args.profile, args.only)
        html = build_html(out / "src")
    except RunnerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BookBuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(html)
    return 0


if __name__ == "__main__":
    sys.exit(main())
