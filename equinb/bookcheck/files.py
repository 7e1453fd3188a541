"""The checks a built page's HTML file answers without a browser: links, resources and the table stylesheet.

* a **broken link**: a relative ``href`` to a file that does not exist, or an anchor the target page lacks;
* a **missing image** (or script, or stylesheet): its local file does not exist, is empty or is not an image, or
  it points off the machine (the book must render offline);
* **unpadded tables**: cell-output tables on a page that does not load :data:`TABLE_STYLESHEET`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .problem import Problem

#: Stylesheet (``_static/`` of the book) that spaces the columns of cell-output tables; pages with such tables
#: must load it.
TABLE_STYLESHEET = "tables.css"
#: URL schemes that are not files of the book.
EXTERNAL_SCHEMES = frozenset({"http", "https", "mailto", "javascript", "ftp", "tel"})
#: File signatures of the image formats a book page may show.
IMAGE_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"<svg", b"<?xml", b"RIFF")
#: Elements without a closing tag.
VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
                       "track", "wbr"})


@dataclass
class PageScan:
    """What :class:`_Scanner` found in one HTML document."""

    ids: set[str] = field(default_factory=set)
    links: list[str] = field(default_factory=list)
    resources: list[tuple[str, str]] = field(default_factory=list)
    output_tables: int = 0
    redirect: bool = False  # a ``<meta http-equiv="refresh">`` page (the book's index.html)


class _Scanner(HTMLParser):
    """Collects the ids, links and resources of a page and counts its cell-output tables."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scan = PageScan()
        self._stack: list[tuple[str, set[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        anchors = [values.get("id"), values.get("name") if tag == "a" else None]
        self.scan.ids.update(anchor for anchor in anchors if anchor)
        if tag == "a" and "href" in values:
            self.scan.links.append(values["href"])
        elif tag in ("img", "script") and values.get("src"):
            self.scan.resources.append((tag, values["src"]))
        elif tag == "link" and "stylesheet" in values.get("rel", "").split() and values.get("href"):
            self.scan.resources.append((tag, values["href"]))
        if tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
            self.scan.redirect = True
        if tag == "table" and any("cell_output" in open_classes for _, open_classes in self._stack):
            self.scan.output_tables += 1
        if tag not in VOID_TAGS:
            self._stack.append((tag, set(values.get("class", "").split())))

    def handle_endtag(self, tag: str) -> None:
        if all(open_tag != tag for open_tag, _ in self._stack):
            return  # a stray end tag closes nothing
        while self._stack and self._stack.pop()[0] != tag:
            pass


def scan_html(text: str) -> PageScan:
    """Scan an HTML document for its ids, links, resources and cell-output tables."""
    scanner = _Scanner()
    scanner.feed(text)
    scanner.close()
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


class IdCache:
    """Ids of the pages of a book, parsed once per page."""

    def __init__(self) -> None:
        self._ids: dict[Path, set[str]] = {}

    def ids(self, page: Path) -> set[str]:
        """The ids (and ``<a name>``) of one page."""
        if page not in self._ids:
            self._ids[page] = scan_html(page.read_text(errors="replace")).ids
        return self._ids[page]


def link_problems(page: Path, scan: PageScan, name: str, cache: IdCache) -> list[Problem]:
    """Relative links to missing files or to anchors their target page lacks."""
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


def table_problems(scan: PageScan, name: str) -> list[Problem]:
    """Cell-output tables on a page that does not load :data:`TABLE_STYLESHEET` (their cells would touch)."""
    styled = any(tag == "link" and url.split("?")[0].endswith(TABLE_STYLESHEET) for tag, url in scan.resources)
    if scan.output_tables and not styled:
        return [Problem(name, "unpadded tables", f"{scan.output_tables} output table(s) without {TABLE_STYLESHEET}")]
    return []


def file_problems(page: Path, root: Path, cache: IdCache | None = None) -> list[Problem]:
    """Every file check on one page.

    Parameters
    ----------
    page
        The built HTML file.
    root
        The book's HTML folder (page names in the problems are relative to it).
    cache
        Ids of other pages, shared between the pages of a book.

    Returns
    -------
    list of Problem
        Broken links, missing resources and unpadded tables, in that order.
    """
    name = page.resolve().relative_to(root.resolve()).as_posix()
    scan = scan_html(page.read_text(errors="replace"))
    return [*table_problems(scan, name), *resource_problems(page, scan, name),
            *link_problems(page, scan, name, cache or IdCache())]
