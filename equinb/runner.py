"""Execute the book's chapters through papermill, with checked parameters.

A chapter is a MyST-markdown notebook listed in ``_toc.yml``. Its parameters are the literal assignments of the
code cell tagged ``parameters``; their default values fix each parameter's type. :func:`run_chapter` reads the
chapter with jupytext (in memory), checks every requested parameter against those defaults, and executes it with
papermill in the chapter's own folder, writing the executed ``.ipynb``.

User errors (a chapter not in the table of contents, an unknown parameter or profile, a value of the wrong type)
raise :class:`RunnerError` before anything runs; the command line turns them into one line and exit code 2.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .profiles import PROFILES, profile_parameters

#: Jupyter kernel registered by ``make setup`` for the project's virtual environment.
KERNEL_NAME = "equinb"


class RunnerError(ValueError):
    """A request the runner refuses before executing anything; the message names the problem."""


class ChapterFailed(RuntimeError):
    """A chapter raised an error in one of its cells; the executed notebook was still written."""


@dataclass(frozen=True)
class Chapter:
    """A chapter of the book: its source file and the defaults of its parameters cell."""

    path: Path
    defaults: dict[str, Any]

    @property
    def name(self) -> str:
        """The chapter's file stem, e.g. ``"intro"``."""
        return self.path.stem


def find_book_root(start: Path | None = None) -> Path:
    """Folder holding ``_toc.yml``: ``start`` (default: the working directory) or a parent of it, else the
    checkout this package was installed from.

    Raises
    ------
    RunnerError
        If no ``_toc.yml`` can be found.
    """
    start = Path.cwd() if start is None else Path(start)
    for folder in [start.resolve(), *start.resolve().parents, Path(__file__).resolve().parents[1]]:
        if (folder / "_toc.yml").is_file():
            return folder
    raise RunnerError(f"no _toc.yml found in {start} or its parents: run from the book's checkout")


def toc_entries(root: Path) -> list[str]:
    """The ``root`` and ``file`` entries of ``root/_toc.yml`` (paths without suffix), in reading order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    entries: list[str] = [toc["root"]]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "file" in node:
                entries.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({key: value for key, value in toc.items() if key != "root"})
    return entries


def toc_files(root: Path) -> list[Path]:
    """Source files of every entry of ``root/_toc.yml``, in reading order (``.md`` resolved)."""
    sources = [(root / entry).with_suffix(".md") for entry in toc_entries(root)]
    # an entry with only an executed notebook (book/results/*.ipynb) is shown as it ran, not a chapter to run
    return [path for path in sources if path.is_file() or not path.with_suffix(".ipynb").is_file()]


def read_parameters(path: Path) -> dict[str, Any]:
    """Defaults of the chapter's ``parameters`` cell (empty if it has none).

    Raises
    ------
    RunnerError
        If the parameters cell holds anything but ``NAME = literal`` assignments.
    """
    import jupytext

    notebook = jupytext.read(path)
    cells = [c for c in notebook.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if not cells:
        return {}
    defaults: dict[str, Any] = {}
    for statement in ast.parse(cells[0].source).body:
        if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)):
            raise RunnerError(f"{path.name}: the parameters cell may hold only NAME = literal assignments")
        try:
            defaults[statement.targets[0].id] = ast.literal_eval(statement.value)
        except ValueError:
            raise RunnerError(f"{path.name}: parameter {statement.targets[0].id} has a non-literal default") from None
    return defaults


def find_chapter(chapter: str | os.PathLike, root: Path | None = None) -> Chapter:
    """Resolve a chapter given as a path (``book/intro.md``) or a name (``intro``) among the toc's entries.

    Raises
    ------
    RunnerError
        If the chapter is not listed in ``_toc.yml``.
    """
    root = find_book_root() if root is None else root
    files = toc_files(root)
    text = str(chapter)
    by_path = [f for f in files if Path(text).with_suffix(".md").resolve() == f.resolve()]
    by_name = [f for f in files if f.stem == Path(text).stem] if Path(text).suffix in ("", ".md") else []
    matches = by_path or by_name
    if len(matches) != 1:
        names = ", ".join(f.stem for f in files)
        raise RunnerError(f"chapter {text!r} is not in {root / '_toc.yml'} (chapters: {names})")
    return Chapter(matches[0], read_parameters(matches[0]))


def _type_name(value: Any) -> str:
    return type(value).__name__


def coerce_value(name: str, value: Any, default: Any) -> Any:
    """Check ``value`` against the type of ``default`` and convert it where that is lossless.

    ``value`` may be a Python object or, from the command line, a string: strings are read as Python
    literals (``3``, ``0.5``, ``[0, 3, 4]``, ``True``) unless the default is itself a string. An ``int`` is
    accepted for a ``float``; ``true``/``false`` for a ``bool``; list elements are checked against the
    default's elements.

    Raises
    ------
    RunnerError
        If the value does not have the default's type.
    """
    if isinstance(value, str) and not isinstance(default, str):
        if isinstance(default, bool) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        else:
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                pass
    bad = RunnerError(f"parameter {name} expects {_type_name(default)}, got {value!r}")
    if default is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise bad
        kinds = {type(item) for item in default}
        if len(kinds) == 1:
            (kind,) = kinds
            return [coerce_value(f"{name}[{i}]", item, kind()) for i, item in enumerate(value)]
        return list(value)
    if not isinstance(value, type(default)):
        raise bad
    return value


def resolve_parameters(chapter: Chapter, overrides: dict[str, Any], profile: str | None) -> dict[str, Any]:
    """Parameters to inject: the profile's for this chapter, then ``overrides``, all checked against defaults.

    Raises
    ------
    RunnerError
        For an unknown profile, an unknown parameter name or a value of the wrong type.
    """
    if profile is not None and profile not in PROFILES:
        raise RunnerError(f"unknown profile {profile!r} (profiles: {', '.join(PROFILES)})")
    requested = profile_parameters(profile, chapter.name) if profile else {}
    requested.update(overrides)
    resolved = {}
    for name, value in requested.items():
        if name not in chapter.defaults:
            known = ", ".join(chapter.defaults) or "none"
            raise RunnerError(f"chapter {chapter.name} has no parameter {name!r} (parameters: {known})")
        resolved[name] = coerce_value(name, value, chapter.defaults[name])
    return resolved


def kernel_name() -> str:
    """The project's kernel if registered, else the running interpreter's own ``python3`` kernel."""
    from jupyter_client.kernelspec import KernelSpecManager

    return KERNEL_NAME if KERNEL_NAME in KernelSpecManager().find_kernel_specs() else "python3"


def run_chapter(
    chapter: str | os.PathLike,
    parameters: dict[str, Any] | None = None,
    profile: str | None = None,
    out: str | os.PathLike | None = None,
    log_output: bool = False,
    progress_bar: bool = True,
) -> Path:
    """Execute one chapter with papermill and write the executed notebook.

    Parameters
    ----------
    chapter
        Path to the chapter's ``.md`` or its name; it must be listed in ``_toc.yml``.
    parameters
        Values for the chapter's parameters (names and types checked against its parameters cell).
    profile
        Named parameter set from :data:`equinb.profiles.PROFILES`, applied before ``parameters``.
    out
        Where to write the executed ``.ipynb``; default ``_build/executed/<name>.ipynb`` in the book root.
    log_output, progress_bar
        Passed to papermill.

    Returns
    -------
    pathlib.Path
        The executed notebook.

    Raises
    ------
    RunnerError
        For a bad request (nothing is executed).
    ChapterFailed
        If a cell raised; the message names the cell and the error.
    """
    import jupytext
    import papermill

    root = find_book_root()
    found = find_chapter(chapter, root)
    values = resolve_parameters(found, dict(parameters or {}), profile)
    out_path = Path(out) if out is not None else root / "_build" / "executed" / f"{found.name}.ipynb"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    notebook = jupytext.read(found.path)
    try:
        papermill.execute_notebook(
            notebook,
            str(out_path),
            parameters=values,
            kernel_name=kernel_name(),
            cwd=str(found.path.parent),
            log_output=log_output,
            progress_bar=progress_bar,
        )
    except papermill.PapermillExecutionError as error:
        raise ChapterFailed(
            f"chapter {found.name} failed in cell {error.exec_count}: {error.ename}: {error.evalue} "
            f"(executed notebook: {out_path})"
        ) from None
    return out_path
