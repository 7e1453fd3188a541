"""Check the built book as a reader meets it: every page opened in headless Chromium, measured and checked.

``python -m equinb.bookcheck [_build/html] [--screenshots DIR]`` (``make check-book``) opens every HTML page of a
built book in headless Chromium (Playwright driving the system Chromium, offline) at a 1,280 px window and prints
one line per problem, ``<page>: <kind>: <element and where it is>``:

* from the page's file (:mod:`.files`): broken links, missing or off-machine images, scripts and stylesheets,
  output tables without the table stylesheet;
* from what Chromium shows (:mod:`.reader`): elements wider than the text column, stderr outputs, tracebacks,
  warnings and machine paths in outputs, raw ``$...$`` or unrendered math, images shown below 40 % of their
  natural width, and timing noise.

Exit code 0: no problem; 1: problems; 2: no built book, or no Chromium (the message says how to install it).
"""

from .book import book_pages, check_pages, main
from .browser import NoChromium, PageView, find_chromium, open_browser, view_page
from .files import file_problems
from .problem import Problem
from .reader import reader_problems

__all__ = ["NoChromium", "PageView", "Problem", "book_pages", "check_pages", "file_problems", "find_chromium",
           "main", "open_browser", "reader_problems", "view_page"]
