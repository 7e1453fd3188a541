"""The rules a page must meet as a reader sees it, applied to a :class:`~equinb.bookcheck.browser.PageView`.

A page fails on

* **too wide**: an element (table, code, figure, math, ...) wider than the text column; tables must fit, so
  a horizontal scroll bar does not excuse one;
* **stderr output** and **traceback**: a cell output on stderr, or an error with its traceback;
* **warning**: warning text (``UserWarning:``, ``Warning:``) in any cell output;
* **machine path**: a path of the machine that built the book (:data:`MACHINE_PATHS`) in a cell output;
* **raw math**: ``$...$`` or TeX delimiters left in rendered prose, math elements MathJax did not render, or
  MathJax errors;
* **image too small**: an image shown below :data:`MIN_IMAGE_SCALE` of its natural width (its text would be
  too small to read);
* **timing noise**: "elapsed N s", "executed in N s" or progress-bar remnants ("N it/s", "45%|####|").
"""

from __future__ import annotations

import re

from .browser import PageView, Text
from .problem import Problem

#: Smallest shown/natural width ratio of an image (matplotlib's text at 10 pt and 100 dpi is ~14 px: at 0.4
#: scale it is shown ~5.5 px high).
MIN_IMAGE_SCALE = 0.4
#: Pixels an element may exceed the column by (sub-pixel rounding).
WIDTH_TOLERANCE = 1.0
#: Machine paths that must not appear in cell outputs.
MACHINE_PATHS = re.compile(r"/work/|/home/|/tmp/|site-packages|\.venv\b")
#: Warning text in an output.
WARNING = re.compile(r"\b\w*Warning:")
#: Start of a Python traceback.
TRACEBACK = "Traceback (most recent call last)"
#: ``$...$`` left by a Markdown renderer that did not parse dollar math.
RAW_DOLLAR = re.compile(r"(?<![\\$\w])\$(?=\S)[^$\n]{1,300}?(?<=\S)\$(?![\w$])")
#: TeX delimiters that must not survive MathJax.
RAW_TEX = re.compile(r"\$\$|\\\(|\\\[|\\begin\{")
#: Timing lines and progress-bar remnants.
TIMING = re.compile(
    r"\belapsed\b\D{0,20}\d+(?:\.\d+)?\s*(?:ms|s|sec|seconds|min|minutes|h)\b"
    r"|\bexecuted in \d+(?:\.\d+)?\s*(?:ms|s|sec|seconds|min|minutes|h)\b"
    r"|\d+(?:\.\d+)?\s*(?:it/s|s/it)\b"
    r"|\d+%\|[^|\n]{0,100}\|",
    re.IGNORECASE,
)


def _line(text: str, at: int = 0, width: int = 100) -> str:
    """The line of ``text`` around position ``at``, whitespace collapsed, at most ``width`` characters."""
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at)
    line = " ".join(text[start:None if end < 0 else end].split())
    return line if len(line) <= width else line[:width - 1] + "…"


def _quote(text: str, match: re.Match[str], around: int = 30) -> str:
    """A match with a little of its context, on one line, in double quotes."""
    return '"' + " ".join(text[max(0, match.start() - around):match.end() + around].split()) + '"'


def width_problems(view: PageView, name: str) -> list[Problem]:
    """Elements wider than the text column."""
    return [Problem(name, "too wide", f"{wide.element} is {wide.width:,.0f} px in the {view.column:,.0f} px "
                                      f"column, {wide.place}")
            for wide in view.wide if wide.width > view.column + WIDTH_TOLERANCE]


def _output_problem(output: Text, name: str) -> list[Problem]:
    problems = []
    text = output.text
    if "traceback" in output.classes or "error" in output.classes or TRACEBACK in text:
        last = next((line for line in reversed(text.strip().splitlines()) if line.strip()), "")
        problems.append(Problem(name, "traceback", f'"{_line(last)}", {output.place}'))
    elif "stderr" in output.classes or "output_stderr" in output.classes:
        problems.append(Problem(name, "stderr output", f'"{_line(text.strip())}", {output.place}'))
    warning = WARNING.search(text)
    if warning:
        problems.append(Problem(name, "warning", f'"{_line(text, warning.start())}", {output.place}'))
    path = MACHINE_PATHS.search(text)
    if path:
        problems.append(Problem(name, "machine path", f"{_quote(text, path)}, {output.place}"))
    return problems


def output_problems(view: PageView, name: str) -> list[Problem]:
    """Stderr outputs, tracebacks, warnings and machine paths in cell outputs."""
    return [problem for output in view.outputs for problem in _output_problem(output, name)]


def math_problems(view: PageView, name: str) -> list[Problem]:
    """Raw ``$...$`` or TeX delimiters in prose, math MathJax did not render, and MathJax errors."""
    problems = []
    for block in view.prose:
        raw = RAW_DOLLAR.search(block.text) or RAW_TEX.search(block.text)
        if raw:
            problems.append(Problem(name, "raw math", f"{_quote(block.text, raw)}, {block.place}"))
    if view.math_unrendered:
        problems.append(Problem(name, "raw math", f"{view.math_unrendered} of {view.math} math elements not "
                                                  "rendered by MathJax"))
    if view.math_errors:
        problems.append(Problem(name, "raw math", f"{view.math_errors} MathJax error(s) (mjx-merror)"))
    return problems


def image_problems(view: PageView, name: str) -> list[Problem]:
    """Images shown below :data:`MIN_IMAGE_SCALE` of their natural width."""
    return [Problem(name, "image too small", f"{image.src.split('/')[-1]} shown at {image.shown:,.0f} of its "
                                             f"{image.natural:,.0f} px ({image.shown / image.natural:.0%}), "
                                             f"{image.place}")
            for image in view.images if image.natural > 0 and image.shown < MIN_IMAGE_SCALE * image.natural]


def timing_problems(view: PageView, name: str) -> list[Problem]:
    """Timing lines and progress-bar remnants in outputs and in prose."""
    texts = [*view.outputs, *(block for block in view.prose if not block.in_output)]
    problems = []
    for text in texts:
        found = TIMING.search(text.text)
        if found:
            problems.append(Problem(name, "timing noise", f'"{_line(text.text, found.start())}", {text.place}'))
    return problems


def reader_problems(view: PageView, name: str) -> list[Problem]:
    """Every rule of this module on one page, in the order of the module's list."""
    return [*width_problems(view, name), *output_problems(view, name), *math_problems(view, name),
            *image_problems(view, name), *timing_problems(view, name)]
