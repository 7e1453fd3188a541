"""Keep freed memory in the process on Linux (glibc), so large tensors do not pay page faults every step.

By default glibc serves every allocation above a threshold (at most 32 MiB) with a fresh ``mmap`` and returns it
to the system when freed; PyTorch's CPU allocator goes through ``malloc``, so each new large tensor (a training
step makes hundreds: per-edge weights, products, gradients) is first touched page by page — a page fault every
4 KiB. Measured here (``benchmarks/tp_bench.py``, 1 thread, 1,216 edges) this alone made e3nn's tensor product
2-3x slower. :func:`keep_freed_memory` raises the mmap threshold and the trim threshold with ``mallopt`` so freed
blocks stay in the heap and are reused; it is what ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``
do when set before Python starts. The process keeps its peak memory instead of returning it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameters (glibc malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4

_applied = False


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse (idempotent); ``False`` where not on glibc (macOS, Windows, musl).

    Returns
    -------
    bool
        Whether the setting is in effect.
    """
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    # no mmap for large blocks (served from the heap instead), and never trim the heap's top
    ok = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    ok = ok and mallopt(_M_TOP_PAD, 64 * 2**20) == 1
    _applied = bool(ok)
    return _applied
