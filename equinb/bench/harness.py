"""What every benchmark shares: process settings, order-set labels, timing, machine rates, the machine header and
the results files.

Timing (:func:`time_samples`): the work is warmed up by the caller; one calibration call picks ``inner``, the
number of calls in a row that makes a sample last at least ``min_time`` seconds; each of ``repeats`` samples then
runs ``inner`` calls, with a device synchronisation before and after on a GPU, and gives seconds per call. The
cases turn the samples into their spread (quartiles for the harmonics, minimum and maximum for the tensor
product).

Results (:func:`write_results`): ``<stem>.csv`` with one row per case and ``<stem>.json`` beside it, a header
from :func:`machine_header` (machine, CPU model, threads, versions, how the run was timed), both written
atomically; :func:`read_results` reads the pair back with the column types of the writer.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..allocator import keep_freed_memory
from ..so3 import L_MAX, check_orders

#: Settings of ``--allocator``: ``keep`` keeps freed memory in the heap (:mod:`equinb.allocator`), ``default``
#: leaves glibc's.
ALLOCATORS = ("default", "keep")
#: Integer columns of the results tables (nullable: skipped rows leave them empty).
INTEGER_COLUMNS = ("threads", "l_max", "outputs", "computed_outputs", "n", "repeats", "inner")
#: Columns read back as text (an order-set label such as ``10`` would otherwise become a number).
TEXT_COLUMNS = ("set", "orders", "reason")
#: Keys of the JSON header written beside the CSV.
HEADER_KEYS = (
    "machine", "platform", "cpu_model", "cpu_count", "threads", "device", "device_name", "dtype", "python",
    "torch", "e3nn", "triton", "sphericart", "compile", "timing", "preallocated", "copy_bandwidth_Bps",
    "skipped", "command", "created",
)
#: Why no output buffer is preallocated (recorded in the header).
PREALLOCATION_NOTE = (
    "no: none of the timed public APIs (equinb.sph.spherical_harmonics, e3nn.o3.spherical_harmonics, "
    "sphericart.torch.e3nn_spherical_harmonics) takes an output buffer, so every timed call allocates its output"
)


# ------------------------------------------------------------------------------------------------------------
# Process settings
# ------------------------------------------------------------------------------------------------------------


def configure_threads(threads: int) -> int:
    """Fix the CPU threads of torch and of OpenMP libraries loaded later (sphericart ships its own OpenMP).

    Call before the first sphericart call: its OpenMP runtime reads ``OMP_NUM_THREADS`` once, when loaded.

    Parameters
    ----------
    threads
        Number of threads, at least 1.

    Returns
    -------
    int
        The thread count torch now uses.

    Raises
    ------
    ValueError
        If ``threads`` is not a positive integer.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    return torch.get_num_threads()


def add_allocator_option(parser: argparse.ArgumentParser, default: str) -> None:
    """Add ``--allocator {default,keep}`` to a benchmark's command line; :func:`apply_allocator` applies it.

    Parameters
    ----------
    parser
        The command line.
    default
        One of :data:`ALLOCATORS`.
    """
    parser.add_argument("--allocator", choices=ALLOCATORS, default=default,
                        help="keep: freed memory stays in the heap (equinb.allocator, what training uses); "
                             f"default: glibc's (default here: {default})")


def apply_allocator(parser: argparse.ArgumentParser, allocator: str) -> None:
    """Put the ``--allocator`` setting in effect for the whole process, every backend alike.

    Parameters
    ----------
    parser
        The command line, which reports a setting this platform cannot apply (and exits).
    allocator
        One of :data:`ALLOCATORS`.
    """
    if allocator == "keep" and not keep_freed_memory():
        parser.error("--allocator keep needs glibc (Linux)")


# ------------------------------------------------------------------------------------------------------------
# Labels of order sets
# ------------------------------------------------------------------------------------------------------------


def set_label(orders: Iterable[int]) -> str:
    """Short label of an order set, runs of consecutive orders written ``a-b``.

    Parameters
    ----------
    orders
        The orders, ascending.

    Returns
    -------
    str
        The label, read back by :func:`parse_set`.

    Examples
    --------
    >>> set_label([0, 3, 4, 5, 6])
    '0,3-6'
    >>> set_label([10])
    '10'
    """
    orders = list(orders)
    parts, start = [], 0
    for i in range(1, len(orders) + 1):
        if i == len(orders) or orders[i] != orders[i - 1] + 1:
            run = orders[start:i]
            parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
            start = i
    return ",".join(parts)


def parse_set(text: str) -> tuple[int, ...]:
    """Inverse of :func:`set_label`: ``"0,3-6"`` -> ``(0, 3, 4, 5, 6)``.

    Parameters
    ----------
    text
        Comma-separated orders or ``a-b`` ranges.

    Returns
    -------
    tuple of int
        The orders.

    Raises
    ------
    ValueError
        If the text is not comma-separated orders or ``a-b`` ranges, or an order is repeated or above
        :data:`equinb.so3.L_MAX` (the messages of :func:`equinb.so3.check_orders`).
    """
    orders: list[int] = []
    try:
        for part in text.split(","):
            low, _, high = part.partition("-")
            orders += range(int(low), int(high or low) + 1)
    except ValueError:
        raise ValueError(f"order set {text!r} is not like '10', '0-10' or '0,3-6'") from None
    return check_orders(orders, l_max=L_MAX, distinct=True)


# ------------------------------------------------------------------------------------------------------------
# Timing
# ------------------------------------------------------------------------------------------------------------


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` when it is a GPU; nothing on the CPU.

    Parameters
    ----------
    device
        The device timed.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_samples(
    call: Callable[[], Any], repeats: int, device: torch.device, min_time: float = 0.005
) -> tuple[np.ndarray, int]:
    """Seconds per call of ``repeats`` timed samples of a warmed-up ``call``.

    Parameters
    ----------
    call
        The work to time, already warmed up (compiled, caches filled).
    repeats
        Number of timed samples.
    device
        Synchronised before and after every sample when it is a GPU.
    min_time
        Each sample runs ``call`` ``inner`` times in a row, ``inner`` chosen from one calibration call so a
        sample lasts at least this long (at most 10,000 calls).

    Returns
    -------
    (numpy.ndarray, int)
        Per-call seconds of each sample, and ``inner``.
    """
    synchronize(device)
    start = time.perf_counter()
    call()
    synchronize(device)
    once = time.perf_counter() - start
    inner = int(min(10_000, max(1, math.ceil(min_time / max(once, 1e-9)))))
    samples = np.empty(repeats)
    for i in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(inner):
            call()
        synchronize(device)
        samples[i] = (time.perf_counter() - start) / inner
    return samples, inner


def median_time(call: Callable[[], Any], repeats: int, device: torch.device) -> float:
    """Median seconds of ``repeats`` single calls after one warm-up call.

    Parameters
    ----------
    call
        The work to time.
    repeats
        Number of timed calls.
    device
        Synchronised around every call when it is a GPU.

    Returns
    -------
    float
    """
    call()
    samples, _ = time_samples(call, repeats, device, min_time=0.0)
    return float(statistics.median(samples))


# ------------------------------------------------------------------------------------------------------------
# Machine rates
# ------------------------------------------------------------------------------------------------------------


def measure_copy_bandwidth(
    device: str | torch.device = "cpu", n_bytes: int = 1 << 28, repeats: int = 5
) -> float:
    """Memory bandwidth of a large tensor copy, in bytes per second (read plus write, as STREAM counts).

    Parameters
    ----------
    device
        Where to copy; on the CPU, with torch's current thread count.
    n_bytes
        Size of the copied buffer (default 256 MiB, well beyond any cache).
    repeats
        Timed copies after one warm-up; the median is used.

    Returns
    -------
    float
    """
    device = torch.device(device)
    source = torch.ones(n_bytes // 4, dtype=torch.float32, device=device)
    target = torch.empty_like(source)
    samples, _ = time_samples(lambda: target.copy_(source), repeats, device, min_time=0.0)
    return 2 * source.numel() * 4 / float(np.median(samples))


def sgemm_rate(size: int = 2048, repeats: int = 3) -> float:
    """FLOP/s of a ``size x size`` float32 matrix product on the CPU's current threads (best of ``repeats``).

    Parameters
    ----------
    size
        Side of the square matrices.
    repeats
        Timed products after one warm-up.

    Returns
    -------
    float
    """
    a, b = torch.randn(size, size), torch.randn(size, size)
    samples, _ = time_samples(lambda: a @ b, repeats, torch.device("cpu"), min_time=0.0)
    return 2 * size**3 / float(samples.min())


# ------------------------------------------------------------------------------------------------------------
# Machine header and results files
# ------------------------------------------------------------------------------------------------------------


def package_version(distribution: str) -> str | None:
    """Installed version of a distribution, or None when it is not installed.

    Parameters
    ----------
    distribution
        Its name on PyPI, e.g. ``"sphericart-torch"``.

    Returns
    -------
    str or None
    """
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`).

    Returns
    -------
    str
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_header(
    device: str | torch.device,
    dtype: torch.dtype,
    timing: dict[str, Any],
    compile_settings: dict[str, Any] | None = None,
    copy_bandwidth: float | None = None,
    skipped: Sequence[dict[str, str]] = (),
    command: str = "",
) -> dict[str, Any]:
    """The JSON header of a results file (keys :data:`HEADER_KEYS`).

    Parameters
    ----------
    device, dtype
        Of the run.
    timing
        How cases were timed (e.g. repeats, warm-up, minimum sample time).
    compile_settings
        How :func:`torch.compile` was used, if at all.
    copy_bandwidth
        Measured copy bandwidth (bytes/s), if measured.
    skipped
        What was not timed and why (:func:`equinb.bench.sph.skipped_cases`).
    command
        How the run was started (provenance).

    Returns
    -------
    dict
    """
    device = torch.device(device)
    return {
        "machine": f"{platform.system()} {platform.machine()}",
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
        "dtype": str(dtype).removeprefix("torch."),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "e3nn": package_version("e3nn"),
        "triton": package_version("triton"),
        "sphericart": package_version("sphericart-torch"),
        "compile": compile_settings,
        "timing": timing,
        "preallocated": PREALLOCATION_NOTE,
        "copy_bandwidth_Bps": copy_bandwidth,
        "skipped": list(skipped),
        "command": command,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_results(results: pd.DataFrame, header: dict[str, Any], stem: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``<stem>.csv`` and ``<stem>.json`` (each atomically: temporary file, then rename).

    Parameters
    ----------
    results
        One row per case.
    header
        The JSON header (usually :func:`machine_header`, with whatever the run adds).
    stem
        Path without suffix; missing folders are created.

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        The CSV and JSON paths.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = stem.with_suffix(".csv"), stem.with_suffix(".json")
    texts = results.to_csv(index=False), json.dumps(header, indent=2) + "\n"
    for path, text in zip(paths, texts):
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(text)
        temporary.replace(path)
    return paths


def read_results(csv_path: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A results CSV and its JSON header (empty dict if the header is missing).

    Parameters
    ----------
    csv_path
        The CSV written by :func:`write_results`.

    Returns
    -------
    (pandas.DataFrame, dict)
        The rows (:data:`TEXT_COLUMNS` as text, :data:`INTEGER_COLUMNS` as nullable integers) and the header.
    """
    csv_path = Path(csv_path)
    header_path = csv_path.with_suffix(".json")
    header = json.loads(header_path.read_text()) if header_path.is_file() else {}
    types = {**dict.fromkeys(TEXT_COLUMNS, str), **dict.fromkeys(INTEGER_COLUMNS, "Int64")}
    return pd.read_csv(csv_path, dtype=types), header
