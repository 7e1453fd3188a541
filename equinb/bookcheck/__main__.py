"""``python -m equinb.bookcheck [_build/html] [--screenshots DIR]``: see :mod:`equinb.bookcheck`."""

import sys

from .book import main

sys.exit(main())
