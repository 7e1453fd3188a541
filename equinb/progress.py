"""Progress for the terminal only: bars and progress lines go to a terminal's stderr, never onto a book page.

A chapter executed by Jupyter Book or papermill runs in a kernel whose stderr is not a terminal, so nothing here
reaches the page (the page shows results, e.g. the learning curve); ``python -m equinb ...`` or a script run in
a terminal shows a tqdm bar with its rate and time left. Every function takes ``enabled``: ``None`` (the default)
means "only when stderr is a terminal", ``True`` forces progress, ``False`` silences it.

Plain ``tqdm`` is used on purpose: ``tqdm.auto`` picks the widget bar inside a kernel and, without ipywidgets,
warns (``TqdmWarning: IProgress not found``) with the path of the installed tqdm, on every page that imports it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def on_terminal() -> bool:
    """Whether this process's stderr is an interactive terminal (False in a notebook kernel or under CI)."""
    stream = sys.stderr
    return bool(stream is not None and getattr(stream, "isatty", None) and stream.isatty())


def wanted(enabled: bool | None) -> bool:
    """Whether to show progress: ``enabled`` when it is a bool, else :func:`on_terminal`."""
    return on_terminal() if enabled is None else bool(enabled)


def bar(iterable: Iterable[T], enabled: bool | None = None, **options: Any) -> tqdm:
    """A tqdm bar over ``iterable`` on stderr, shown only if :func:`wanted`.

    Parameters
    ----------
    iterable
        What to iterate over.
    enabled
        ``None``: only on a terminal; ``True``/``False``: always/never.
    **options
        Passed to ``tqdm`` (``desc``, ``total``, ``unit``, ``leave``, ``mininterval``, ...).

    Returns
    -------
    tqdm.tqdm
        The bar; iterate over it (``set_postfix`` works whether or not it is shown).
    """
    return tqdm(iterable, file=sys.stderr, disable=not wanted(enabled), dynamic_ncols=True, **options)


def note(message: str, enabled: bool | None = None) -> None:
    """Write one progress line to stderr (above any open bar), only if :func:`wanted`.

    Parameters
    ----------
    message
        The line, without a newline.
    enabled
        ``None``: only on a terminal; ``True``/``False``: always/never.
    """
    if wanted(enabled):
        tqdm.write(message, file=sys.stderr)
