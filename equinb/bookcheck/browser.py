"""A built page as a reader sees it: opened in headless Chromium (through Playwright), offline, and measured.

:func:`open_browser` starts the system Chromium (``$EQUINB_CHROMIUM``, else the first of :data:`CHROMIUM_NAMES`
on the ``PATH``, else a Chromium that ``playwright install chromium`` downloaded). :func:`view_page` loads a page
in a :data:`WINDOW`-wide window, lets MathJax finish and every image decode, optionally saves a full-page
screenshot, and returns a :class:`PageView`: the width of the text column, the elements wider than it, every
image's natural and shown width, the text of every cell output, the prose text, and the state of the math.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Executables tried, in order, to find Chromium (``$EQUINB_CHROMIUM`` first when set).
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Flags for an offline headless Chromium.
CHROMIUM_FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run")
#: How to get Chromium where none is found (the one-line hint of every "no Chromium" error).
INSTALL_HINT = "apt-get install chromium (or set EQUINB_CHROMIUM to a Chromium executable)"
#: Window size (width, height) in CSS pixels; screenshots cover the full page.
WINDOW = (1280, 900)
#: Milliseconds a page gets to load, and then MathJax and the images get to finish.
LOAD_TIMEOUT_MS = 60_000
SETTLE_TIMEOUT_MS = 20_000

#: Waits for MathJax's first typesetting (where the page has MathJax) and for every image to decode.
_SETTLE_JS = """async (timeout) => {
  const limit = new Promise(resolve => setTimeout(resolve, timeout));
  const math = window.MathJax && MathJax.startup && MathJax.startup.promise;
  const images = [...document.images].map(img => { img.loading = 'eager'; return img.decode().catch(() => null); });
  await Promise.race([Promise.all([math || null, ...images]), limit]);
}"""

#: Measures the page (see :class:`PageView`). The text column is the content box of the theme's article
#: (``article.bd-article``; ``main`` or the body where there is none). An element is too wide when its box, or
#: the content it scrolls or hides, is wider than the column; of nested wide elements the content element
#: (table, pre, img, svg, figure, canvas, iframe, video, math) is named, or else the innermost one. Math and
#: svg are measured whole (MathJax's inner parts clip themselves).
_MEASURE_JS = """() => {
  const CONTENT = new Set(['TABLE', 'PRE', 'IMG', 'SVG', 'CANVAS', 'IFRAME', 'VIDEO', 'MJX-CONTAINER', 'FIGURE']);
  const NOT_PROSE = 'script, style, pre, code, textarea, noscript, svg, mjx-container, .math, .cell_input, '
    + '.highlight, a.headerlink';
  const BLOCK = 'p, li, dt, dd, td, th, caption, figcaption, h1, h2, h3, h4, h5, h6, blockquote, div, section';
  const article = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const style = getComputedStyle(article);
  const column = article.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const cells = [...article.querySelectorAll('.cell')];
  const clean = text => text.replace(/\\s+/g, ' ').replace(/#$/, '').trim();
  const place = el => {
    const section = el.closest('section');
    const heading = section && section.querySelector(':scope > h1, :scope > h2, :scope > h3, :scope > h4');
    const cell = el.closest('.cell');
    const where = heading ? `under "${clean(heading.textContent).slice(0, 60)}"` : 'at the top';
    return cell ? `${where} (cell ${cells.indexOf(cell) + 1})` : where;
  };
  const shown = el => {
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && getComputedStyle(el).visibility !== 'hidden';
  };
  const widthOf = el => {
    const box = el.getBoundingClientRect();
    const scrolls = ['auto', 'scroll', 'hidden'].includes(getComputedStyle(el).overflowX) && el.clientWidth > 0;
    return scrolls ? box.width + Math.max(0, el.scrollWidth - el.clientWidth) : box.width;
  };
  const name = el => {
    const tag = el.tagName.toLowerCase();
    const classes = [...el.classList].slice(0, 2).map(c => '.' + c).join('');
    const label = tag === 'img' ? (el.getAttribute('src') || '').split('/').pop()
      : clean(el.innerText || el.textContent || '').slice(0, 50);
    return `${tag}${classes}` + (label ? ` "${label}"` : '');
  };
  const wideSet = new Map();
  for (const el of article.querySelectorAll('*')) {
    if (!shown(el) || (el.parentElement && el.parentElement.closest('mjx-container, svg'))) continue;
    const width = widthOf(el);
    if (width > column + 1) wideSet.set(el, width);
  }
  const wide = [];
  for (const [el, width] of wideSet) {
    let covered = false;
    for (let up = el.parentElement; up && up !== article; up = up.parentElement) {
      if (wideSet.has(up) && CONTENT.has(up.tagName.toUpperCase())) { covered = true; break; }
    }
    if (covered) continue;
    if (!CONTENT.has(el.tagName.toUpperCase()) && [...el.querySelectorAll('*')].some(d => wideSet.has(d))) continue;
    wide.push({element: name(el), width, place: place(el)});
  }
  const images = [...article.querySelectorAll('img')].filter(shown).map(img => ({
    src: img.getAttribute('src') || '', natural: img.naturalWidth, shown: img.getBoundingClientRect().width,
    place: place(img)}));
  const outputs = [...article.querySelectorAll('.output')].filter(el => !el.parentElement.closest('.output'))
    .map(el => ({classes: [...el.classList], text: el.innerText || el.textContent || '', place: place(el)}));
  const blocks = new Map();
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest(NOT_PROSE) || !node.textContent.trim()) continue;
    const block = parent.closest(BLOCK) || article;
    blocks.set(block, (blocks.get(block) || '') + node.textContent);
  }
  const prose = [...blocks].map(([block, text]) => ({
    text: clean(text), place: place(block), output: !!block.closest('.cell_output, .output')}));
  const maths = [...article.querySelectorAll('.math')];
  return {
    column, wide, images, outputs, prose,
    math: maths.length, math_unrendered: maths.filter(m => !m.querySelector('mjx-container')).length,
    math_errors: article.querySelectorAll('mjx-merror').length,
  };
}"""


@dataclass(frozen=True)
class Wide:
    """An element wider than the text column."""

    element: str
    width: float
    place: str


@dataclass(frozen=True)
class Image:
    """An image with its natural width (its file's pixels) and the width it is shown at, in CSS pixels."""

    src: str
    natural: float
    shown: float
    place: str


@dataclass(frozen=True)
class Text:
    """The text of a cell output (with its classes, e.g. ``stderr``) or of a block of prose outside code.

    ``in_output`` marks prose that a cell printed (rendered Markdown or HTML of an output).
    """

    text: str
    place: str
    classes: tuple[str, ...] = ()
    in_output: bool = False


@dataclass(frozen=True)
class PageView:
    """What :func:`view_page` measured on one page (widths in CSS pixels)."""

    column: float
    wide: tuple[Wide, ...]
    images: tuple[Image, ...]
    outputs: tuple[Text, ...]
    prose: tuple[Text, ...]
    math: int
    math_unrendered: int
    math_errors: int

    @classmethod
    def from_measure(cls, values: dict[str, Any]) -> PageView:
        """The view from what :data:`_MEASURE_JS` returned."""
        return cls(
            column=float(values["column"]),
            wide=tuple(Wide(w["element"], float(w["width"]), w["place"]) for w in values["wide"]),
            images=tuple(Image(i["src"], float(i["natural"]), float(i["shown"]), i["place"]) for i in values["images"]),
            outputs=tuple(Text(o["text"], o["place"], tuple(o["classes"])) for o in values["outputs"]),
            prose=tuple(Text(p["text"], p["place"], in_output=p["output"]) for p in values["prose"]),
            math=int(values["math"]), math_unrendered=int(values["math_unrendered"]),
            math_errors=int(values["math_errors"]),
        )


class NoChromium(RuntimeError):
    """No Chromium to open the pages with; the message says how to install one."""


def find_chromium() -> str | None:
    """Path of a Chromium executable: ``$EQUINB_CHROMIUM``, else the first of :data:`CHROMIUM_NAMES` found."""
    names = [os.environ["EQUINB_CHROMIUM"]] if os.environ.get("EQUINB_CHROMIUM") else list(CHROMIUM_NAMES)
    return next((found for found in map(shutil.which, names) if found), None)


def _downloaded_chromium(playwright: Any) -> str | None:
    """The Chromium that ``playwright install chromium`` put in Playwright's cache, if it is there."""
    path = playwright.chromium.executable_path
    return path if Path(path).is_file() else None


@contextmanager
def open_browser() -> Iterator[Any]:
    """A headless Chromium, as a Playwright ``Browser``, closed on exit.

    Raises
    ------
    NoChromium
        If neither a system Chromium nor Playwright's own is installed.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        executable = find_chromium() or _downloaded_chromium(playwright)
        if executable is None:
            raise NoChromium(f"no Chromium found: {INSTALL_HINT}")
        browser = playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_FLAGS))
        try:
            yield browser
        finally:
            browser.close()


def view_page(browser: Any, page: Path, screenshot: Path | None = None) -> PageView:
    """Open one page, let its scripts and images finish, and measure it.

    Parameters
    ----------
    browser
        From :func:`open_browser`.
    page
        The HTML file.
    screenshot
        Where to save a full-page PNG screenshot (none when None).

    Returns
    -------
    PageView
        The measurements of the page.
    """
    tab = browser.new_page(viewport={"width": WINDOW[0], "height": WINDOW[1]})
    try:
        tab.route("http*://**", lambda route: route.abort())  # offline: nothing leaves the machine
        tab.goto(page.resolve().as_uri(), wait_until="load", timeout=LOAD_TIMEOUT_MS)
        tab.evaluate(_SETTLE_JS, SETTLE_TIMEOUT_MS)
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(screenshot), full_page=True)
        return PageView.from_measure(tab.evaluate(_MEASURE_JS))
    finally:
        tab.close()
