"""Timing of the spherical-harmonic kernels against e3nn and sphericart, and of a training step's pieces.

Chapter 3 of the book runs a reduced sweep live; ``benchmarks/sph_bench.py`` runs the full one and writes
``benchmarks/results/sph_<device>.csv`` with a JSON header beside it; ``benchmarks/step_share.py`` splits a
training step of the study's model into spherical harmonics, tensor products and the rest.

Backends (:data:`BACKENDS`), all called with ``normalize=True`` and e3nn's ``"integral"`` normalisation:

* ``torch`` / ``torch-compile`` — :func:`equinb.sph.spherical_harmonics` with ``backend="torch"`` (the generated
  PyTorch code), eager and under :func:`torch.compile`;
* ``triton`` — the same function with ``backend="triton"``; CUDA only (the CPU interpreter is never timed);
* ``e3nn`` / ``e3nn-compile`` — :func:`e3nn.o3.spherical_harmonics`, eager and compiled;
* ``sphericart`` — ``sphericart.torch.e3nn_spherical_harmonics`` (optional ``bench`` extra), which computes
  every order up to ``max(L)`` and then keeps the requested ones.

Method: every case (backend, order set, mode, ``N``) is warmed up (compilation included) outside the timed
region; each of ``repeats`` timed samples runs the call ``inner`` times back to back, ``inner`` chosen so a
sample lasts at least ``min_time`` seconds, with a device synchronisation before and after on a GPU. Reported:
median and quartiles over the samples, per call and per point. ``fwd`` times the forward on inputs that do not
require gradients; ``fwd+bwd`` times the forward and ``torch.autograd.grad`` with a fixed random upstream
gradient. No backend's public API takes an output buffer, so every timed call allocates its output
(``preallocated`` is False for all rows); the random input and upstream gradient are made once, outside.
"""

from __future__ import annotations

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
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from e3nn import o3
from e3nn.math import soft_one_hot_linspace

from equinb.model import EquivariantModel, ModelConfig, edge_vectors
from equinb.sph import spherical_harmonics

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Backends the sweep knows, in plotting order.
BACKENDS = ("torch", "torch-compile", "triton", "e3nn", "e3nn-compile", "sphericart")
#: Timed modes: forward only, and forward plus the gradient with respect to the input vectors.
MODES = ("fwd", "fwd+bwd")
#: Numbers of points of the full sweep.
SIZES = (1_000, 10_000, 100_000, 1_000_000)
#: Order sets of the full sweep besides the single orders 0..10 (``[10]`` is the single order 10).
KEY_SETS = ((0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10), (0, 1, 2), (0, 3, 4, 5, 6))
#: Highest single order of the sweep.
L_MAX = 10
#: Columns of the results table, in order.
COLUMNS = (
    "device", "dtype", "threads", "backend", "compiled", "mode", "set", "orders", "l_max", "outputs",
    "computed_outputs", "n", "repeats", "inner", "first_call_s", "median_s", "q1_s", "q3_s", "iqr_s",
    "ns_per_point", "iqr_ns_per_point", "max_abs_err", "preallocated", "status", "reason",
)
#: Integer columns (nullable: skipped rows leave them empty).
INTEGER_COLUMNS = ("threads", "l_max", "outputs", "computed_outputs", "n", "repeats", "inner")
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
#: Why ``[0]`` has no ``fwd+bwd`` case.
CONSTANT_ORDER_NOTE = "Y_0 is a constant: there is no gradient to time"
#: Rows of the input compared against e3nn's eager result in every case.
CHECK_ROWS = 1024


def default_sets() -> list[tuple[int, ...]]:
    """Order sets of the full sweep: each single order 0..10, then :data:`KEY_SETS`."""
    return [(l,) for l in range(L_MAX + 1)] + list(KEY_SETS)


def set_label(orders: Iterable[int]) -> str:
    """Short label of an order set, runs of consecutive orders written ``a-b``.

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

    Raises
    ------
    ValueError
        If the text is not comma-separated orders or ``a-b`` ranges within 0..10.
    """
    orders: list[int] = []
    try:
        for part in text.split(","):
            low, _, high = part.partition("-")
            orders += range(int(low), int(high or low) + 1)
    except ValueError:
        raise ValueError(f"order set {text!r} is not like '10', '0-10' or '0,3-6'") from None
    if not orders or min(orders) < 0 or max(orders) > L_MAX:
        raise ValueError(f"order set {text!r} must hold orders between 0 and {L_MAX}")
    return tuple(orders)


def output_width(orders: Iterable[int]) -> int:
    """Number of output columns, ``sum(2l + 1)``."""
    return sum(2 * l + 1 for l in orders)


def configure_threads(threads: int) -> int:
    """Fix the CPU threads of torch and of OpenMP libraries loaded later (sphericart ships its own OpenMP).

    Call before the first sphericart call: its OpenMP runtime reads ``OMP_NUM_THREADS`` once, when loaded.

    Returns
    -------
    int
        The thread count torch now uses.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    return torch.get_num_threads()


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def unavailable_reason(backend: str, device: torch.device) -> str | None:
    """Why ``backend`` cannot be timed on ``device``, or None when it can.

    Raises
    ------
    ValueError
        For an unknown backend name.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    if backend == "triton":
        if device.type != "cuda":
            return ("Triton kernels need a CUDA device; on the CPU they run only in Triton's interpreter "
                    "(TRITON_INTERPRET=1), a debugging aid that is never timed")
        if _version("triton") is None:
            return "triton is not installed"
    if backend == "sphericart":
        try:
            import sphericart.torch  # noqa: F401
        except ImportError as error:
            return (f"sphericart[torch] is not importable ({error}); install the optional extra: "
                    "pip install 'sphericart[torch]'")
    return None


def backend_function(
    backend: str, orders: Sequence[int], compile_dynamic: bool = True
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``vectors (N, 3) -> harmonics (N, sum(2l + 1))`` for one backend and order set.

    Parameters
    ----------
    backend
        One of :data:`BACKENDS` (check :func:`unavailable_reason` first).
    orders
        The order set, e.g. ``(0, 3, 4, 5, 6)``.
    compile_dynamic
        For the ``*-compile`` backends: False compiles with ``dynamic=False`` (one graph per ``N``); True leaves
        torch's default, and :func:`measure_case` marks the number of points dynamic (one graph for every ``N``,
        the order set and every other integer still specialised).
    """
    orders = list(orders)
    if backend in ("torch", "torch-compile", "triton"):
        kernel = "triton" if backend == "triton" else "torch"

        def function(vectors: torch.Tensor) -> torch.Tensor:
            return spherical_harmonics(orders, vectors, True, "integral", backend=kernel)

    elif backend in ("e3nn", "e3nn-compile"):

        def function(vectors: torch.Tensor) -> torch.Tensor:
            return o3.spherical_harmonics(orders, vectors, True, "integral")

    elif backend == "sphericart":
        from sphericart.torch import e3nn_spherical_harmonics

        def function(vectors: torch.Tensor) -> torch.Tensor:
            return e3nn_spherical_harmonics(orders, vectors, True, "integral")

    else:
        raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    if backend.endswith("-compile"):
        return torch.compile(function, dynamic=None if compile_dynamic else False)
    return function


def _synchronize(device: torch.device) -> None:
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
    _synchronize(device)
    start = time.perf_counter()
    call()
    _synchronize(device)
    once = time.perf_counter() - start
    inner = int(min(10_000, max(1, math.ceil(min_time / max(once, 1e-9)))))
    samples = np.empty(repeats)
    for i in range(repeats):
        _synchronize(device)
        start = time.perf_counter()
        for _ in range(inner):
            call()
        _synchronize(device)
        samples[i] = (time.perf_counter() - start) / inner
    return samples, inner


def _case_call(
    function: Callable[[torch.Tensor], torch.Tensor], vectors: torch.Tensor, mode: str, width: int,
    dynamic_points: bool
) -> tuple[Callable[[], torch.Tensor], torch.Tensor | None]:
    """The timed work of one case, and the upstream gradient it uses (None for ``fwd``).

    ``fwd`` returns the harmonics; ``fwd+bwd`` returns the gradient with respect to the vectors for a fixed
    random upstream gradient. With ``dynamic_points`` the tensor passed to ``function`` has its first dimension
    marked dynamic for :func:`torch.compile`.
    """
    leaf = vectors.detach().requires_grad_(mode == "fwd+bwd")
    if dynamic_points:
        torch._dynamo.mark_dynamic(leaf, 0)
    if mode == "fwd":
        return (lambda: function(leaf)), None
    upstream = torch.randn((vectors.shape[0], width), dtype=vectors.dtype, device=vectors.device,
                           generator=torch.Generator(vectors.device).manual_seed(1))

    def forward_backward() -> torch.Tensor:
        (grad,) = torch.autograd.grad(function(leaf), leaf, upstream)
        return grad

    return forward_backward, upstream


def _reference_error(
    result: torch.Tensor, orders: Sequence[int], vectors: torch.Tensor, upstream: torch.Tensor | None
) -> float:
    """Largest absolute difference from e3nn's eager result (harmonics, or the input gradient for the given
    upstream gradient) on the first :data:`CHECK_ROWS` rows."""
    rows = min(CHECK_ROWS, vectors.shape[0])
    head = vectors[:rows].detach().requires_grad_(upstream is not None)
    reference = o3.spherical_harmonics(list(orders), head, True, "integral")
    if upstream is not None:
        (reference,) = torch.autograd.grad(reference, head, upstream[:rows])
    return float((result[:rows] - reference).abs().max())


def _row(**values: Any) -> dict[str, Any]:
    row = dict.fromkeys(COLUMNS, np.nan)
    row.update(values)
    return row


def measure_case(
    function: Callable[[torch.Tensor], torch.Tensor],
    orders: Sequence[int],
    n: int,
    mode: str,
    dtype: torch.dtype,
    device: torch.device,
    repeats: int,
    warmup: int = 2,
    min_time: float = 0.005,
    dynamic_points: bool = False,
) -> dict[str, Any]:
    """Time one case and return its timing fields (see :data:`COLUMNS`).

    Parameters
    ----------
    function
        From :func:`backend_function`.
    orders
        The order set the function computes.
    n
        Number of random points (standard normal, seeded; direction uniform on the sphere).
    mode
        ``"fwd"`` or ``"fwd+bwd"``.
    dtype, device
        Of the input points.
    repeats, min_time
        See :func:`time_samples`.
    warmup
        Untimed calls first (the first compiles a ``*-compile`` backend); at least 1.
    dynamic_points
        Mark the number of points as a dynamic dimension for :func:`torch.compile`
        (:func:`torch._dynamo.mark_dynamic`), so a compiled function is not recompiled for a new ``N``.

    Returns
    -------
    dict
        ``n, repeats, inner, first_call_s, median_s, q1_s, q3_s, iqr_s, ns_per_point, iqr_ns_per_point,
        max_abs_err``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    generator = torch.Generator(device).manual_seed(n)
    vectors = torch.randn((n, 3), dtype=dtype, device=device, generator=generator)
    call, upstream = _case_call(function, vectors, mode, output_width(orders), dynamic_points)
    _synchronize(device)
    start = time.perf_counter()
    result = call()
    _synchronize(device)
    first_call = time.perf_counter() - start
    for _ in range(max(0, warmup - 1)):
        result = call()
    error = _reference_error(result, orders, vectors, upstream)
    del result
    samples, inner = time_samples(call, repeats, device, min_time)
    q1, median, q3 = np.percentile(samples, [25, 50, 75])
    return {
        "n": n, "repeats": repeats, "inner": inner, "first_call_s": first_call, "median_s": median,
        "q1_s": q1, "q3_s": q3, "iqr_s": q3 - q1, "ns_per_point": median / n * 1e9,
        "iqr_ns_per_point": (q3 - q1) / n * 1e9, "max_abs_err": error,
    }


def run_benchmark(
    sizes: Sequence[int] = SIZES,
    sets: Sequence[Sequence[int]] | None = None,
    backends: Sequence[str] = BACKENDS,
    modes: Sequence[str] = MODES,
    repeats: int = 10,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    warmup: int = 2,
    min_time: float = 0.005,
    compile_dynamic: bool = True,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Time every (backend, order set, mode, N) and return one row per case, in :data:`COLUMNS`.

    A backend that cannot run here (:func:`unavailable_reason`) gives one row with ``status="skipped"`` and the
    reason; so does a (backend, set, mode) group whose call raises (e.g. a compiler failure), and ``fwd+bwd`` of
    the set ``[0]``, whose output does not depend on the input. Compiled backends
    are compiled once per (set, mode) group (once per ``N`` too with ``compile_dynamic=False``), after a
    :func:`torch._dynamo.reset` so that groups never share compile caches or recompile limits.

    Parameters
    ----------
    sizes
        Numbers of points.
    sets
        Order sets; default :func:`default_sets`.
    backends, modes
        Subsets of :data:`BACKENDS` and :data:`MODES`.
    repeats, warmup, min_time
        See :func:`measure_case`.
    device, dtype
        Where and in which precision to time. Threads are whatever torch is set to (:func:`configure_threads`).
    compile_dynamic
        See :func:`backend_function`.
    progress
        Called with one line per finished case (e.g. ``print``).

    Returns
    -------
    pandas.DataFrame
    """
    device = torch.device(device)
    sets = default_sets() if sets is None else [tuple(s) for s in sets]
    common = {"device": device.type, "dtype": str(dtype).removeprefix("torch."), "threads": torch.get_num_threads(),
              "preallocated": False}
    rows = []
    for backend in backends:
        reason = unavailable_reason(backend, device)
        if reason is not None:
            rows.append(_row(**common, backend=backend, compiled=backend.endswith("-compile"), status="skipped",
                             reason=reason))
            if progress:
                progress(f"{backend}: skipped ({reason})")
            continue
        for orders in sets:
            for mode in modes:
                if mode == "fwd+bwd" and max(orders) == 0:
                    rows.append(_row(**common, backend=backend, compiled=backend.endswith("-compile"), mode=mode,
                                     set="0", status="skipped", reason=CONSTANT_ORDER_NOTE))
                    if progress:
                        progress(f"{backend} 0 {mode}: skipped ({CONSTANT_ORDER_NOTE})")
                    continue
                if backend.endswith("-compile"):
                    torch._dynamo.reset()
                function = backend_function(backend, orders, compile_dynamic)
                group = {**common, "backend": backend, "compiled": backend.endswith("-compile"), "mode": mode,
                         "set": set_label(orders), "orders": " ".join(map(str, orders)), "l_max": max(orders),
                         "outputs": output_width(orders),
                         "computed_outputs": (max(orders) + 1) ** 2 if backend == "sphericart"
                         else output_width(orders)}
                for n in sizes:
                    try:
                        timing = measure_case(function, orders, n, mode, dtype, device, repeats, warmup, min_time,
                                              dynamic_points=compile_dynamic and group["compiled"])
                    except Exception as error:  # a failing backend is recorded, not fatal to the sweep
                        failure = f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0][:300]}"
                        rows.append(_row(**group, n=n, status="skipped", reason=failure))
                        if progress:
                            progress(f"{backend} {group['set']} {mode}: skipped ({failure})")
                        break
                    rows.append(_row(**group, **timing, status="ok", reason=""))
                    if progress:
                        progress(f"{backend:>13} {group['set']:>6} {mode:>7} N={n:>8,}: "
                                 f"{timing['ns_per_point']:9.1f} ns/point (IQR {timing['iqr_ns_per_point']:.1f})")
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.astype(dict.fromkeys(INTEGER_COLUMNS, "Int64"))


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
    """
    device = torch.device(device)
    source = torch.ones(n_bytes // 4, dtype=torch.float32, device=device)
    target = torch.empty_like(source)
    samples, _ = time_samples(lambda: target.copy_(source), repeats, device, min_time=0.0)
    return 2 * source.numel() * 4 / float(np.median(samples))


def bytes_per_point(orders: Iterable[int], dtype: torch.dtype | str = torch.float32, mode: str = "fwd") -> int:
    """Least memory traffic per point: the forward reads 3 inputs and writes ``sum(2l + 1)`` outputs; the
    backward also reads the inputs and the upstream gradient and writes 3 input gradients.

    Parameters
    ----------
    orders
        The order set.
    dtype
        Element type (a torch dtype or its name, e.g. ``"float32"``).
    mode
        ``"fwd"`` (``3 + S`` elements) or ``"fwd+bwd"`` (``(3 + S) + (3 + S + 3)`` elements), ``S = sum(2l+1)``.

    Examples
    --------
    >>> bytes_per_point([10], "float32", "fwd")
    96
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    width = output_width(orders)
    elements = 3 + width if mode == "fwd" else 2 * width + 9
    return elements * dtype.itemsize


def roofline_ns_per_point(
    orders: Iterable[int], bandwidth: float, dtype: torch.dtype | str = torch.float32, mode: str = "fwd"
) -> float:
    """Memory-bound floor in ns per point: :func:`bytes_per_point` divided by ``bandwidth`` (bytes/s)."""
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be positive (bytes per second), got {bandwidth!r}")
    return bytes_per_point(orders, dtype, mode) / bandwidth * 1e9


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def skipped_cases(results: pd.DataFrame) -> list[dict[str, str]]:
    """Backend, set, mode and reason of each distinct skip in a results table."""
    skipped = results.loc[results["status"] == "skipped", ["backend", "set", "mode", "reason"]]
    return skipped.drop_duplicates(["backend", "reason"]).astype(object).fillna("").to_dict("records")


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
        What was not timed and why (:func:`skipped_cases`).
    command
        How the run was started (provenance).
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
        "e3nn": _version("e3nn"),
        "triton": _version("triton"),
        "sphericart": _version("sphericart-torch"),
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
    """A results CSV and its JSON header (empty dict if the header is missing)."""
    csv_path = Path(csv_path)
    header_path = csv_path.with_suffix(".json")
    header = json.loads(header_path.read_text()) if header_path.is_file() else {}
    types = {"set": str, "orders": str, "reason": str, **dict.fromkeys(INTEGER_COLUMNS, "Int64")}
    return pd.read_csv(csv_path, dtype=types), header


# ------------------------------------------------------------------------------------------------------------
# Ratios and targets
# ------------------------------------------------------------------------------------------------------------


def _median_ns(results: pd.DataFrame, device: str, backend: str, label: str, mode: str, n: int,
               dtype: str) -> float:
    """Median ns per point of one case, NaN when it was not measured."""
    ok = results[(results["status"] == "ok") & (results["device"] == device) & (results["backend"] == backend)
                 & (results["set"] == label) & (results["mode"] == mode) & (results["n"] == n)
                 & (results["dtype"] == dtype)]
    return float(ok["ns_per_point"].iloc[0]) if len(ok) else math.nan


def ratio_table(
    results: pd.DataFrame, ours: str = "torch-compile", others: Sequence[str] | None = None
) -> pd.DataFrame:
    """ns per point of every backend and the speed-up of ``ours`` over each (their time / our time).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(device, dtype, mode, set, n)``; columns are backends (ns per point) and
        ``<other> / <ours>`` ratios (above 1: ``ours`` is faster).
    """
    ok = results[results["status"] == "ok"]
    table = ok.pivot_table(index=["device", "dtype", "mode", "set", "n"], columns="backend",
                           values="ns_per_point", aggfunc="first")
    others = [b for b in (others or BACKENDS) if b != ours and b in table.columns]
    if ours in table.columns:
        for other in others:
            table[f"{other} / {ours}"] = table[other] / table[ours]
    return table


def single_order_ratios(
    results: pd.DataFrame, pairs: Sequence[tuple[str, str]], mode: str = "fwd"
) -> pd.DataFrame:
    """Time of ``other`` over time of ``ours`` for each single order ``l``, at the largest ``N`` both measured.

    Parameters
    ----------
    results
        Rows of one device.
    pairs
        ``(ours, other)`` backend pairs; a pair with no common measurement is left out.
    mode
        ``"fwd"`` or ``"fwd+bwd"``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``l``, one column ``"<other> / <ours> (N = n)"`` per pair.
    """
    singles = results[(results["status"] == "ok") & (results["mode"] == mode)
                      & results["set"].isin([str(l) for l in range(L_MAX + 1)])]
    table = singles.assign(l=singles["set"].astype(int)).pivot_table(
        index=["n", "l"], columns="backend", values="ns_per_point")
    columns = {}
    for ours, other in pairs:
        if ours in table and other in table:
            both = table[[ours, other]].dropna()
            if len(both):
                n = int(both.index.get_level_values("n").max())
                columns[f"{other} / {ours} (N = {n:,})"] = (both[other] / both[ours]).xs(n, level="n")
    return pd.DataFrame(columns)


def set_cost_ratio(results: pd.DataFrame, part: str, whole: str = "0-10") -> pd.DataFrame:
    """Time of the order set ``part`` over the time of ``whole``, per backend and mode (rows) and ``N`` (columns),
    where both were measured.

    Examples
    --------
    ``set_cost_ratio(results, "10")`` near 1 means computing ``[10]`` alone costs as much as all of ``[0..10]``.
    """
    ok = results[results["status"] == "ok"]
    table = ok.pivot_table(index=["backend", "mode", "n"], columns="set", values="ns_per_point")
    if part not in table or whole not in table:
        return pd.DataFrame()
    return (table[part] / table[whole]).dropna().rename(f"[{part}] / [{whole}]").unstack("n")


def _target(description: str, measured: float, threshold: float, strict: bool, **case: Any) -> dict[str, Any]:
    met = "not measured" if math.isnan(measured) else (
        "yes" if (measured > threshold if strict else measured >= threshold) else "no")
    return {"target": description, **case, "measured": measured,
            "threshold": f"{'>' if strict else '>='} {threshold:.3g}", "met": met}


def evaluate_targets(results: pd.DataFrame, gpu_bandwidth: float | None = None, dtype: str = "float32") -> pd.DataFrame:
    """The project's performance targets, measured as ratios within the same run.

    CPU (``N = 10**4`` and ``10**6``): for ``[0,3,4,5,6]`` and ``[10]``, compiled PyTorch path faster than compiled
    e3nn and than sphericart, forward and forward+backward; for ``[0..10]`` at least as fast as compiled e3nn
    (both modes) and within 1.5x of sphericart (forward). GPU (``N = 10**6``, ``[0..10]``, forward): Triton
    reaches half the memory-bandwidth bound and beats compiled e3nn and sphericart.

    Parameters
    ----------
    results
        Rows from :func:`run_benchmark` (any mix of devices).
    gpu_bandwidth
        Peak (or measured copy) GPU memory bandwidth, bytes/s, for the roofline target; None leaves it
        unmeasured.
    dtype
        Precision the targets are evaluated in.

    Returns
    -------
    pandas.DataFrame
        One row per target with ``target, device, set, mode, n, measured, threshold, met`` (``met`` is ``yes``,
        ``no`` or ``not measured``). ``measured`` is a speed-up (their time / ours) or, for the roofline, the
        fraction of the bound reached (bound time / measured time).
    """
    rows = []
    ours = "torch-compile"
    for n in (10_000, 1_000_000):
        for label in ("0,3-6", "10"):
            for mode in MODES:
                for other in ("e3nn-compile", "sphericart"):
                    ratio = _median_ns(results, "cpu", other, label, mode, n, dtype) / _median_ns(
                        results, "cpu", ours, label, mode, n, dtype)
                    rows.append(_target(f"{ours} faster than {other}", ratio, 1.0, True, device="cpu", set=label,
                                        mode=mode, n=n))
        full = "0-10"
        for mode in MODES:
            ratio = _median_ns(results, "cpu", "e3nn-compile", full, mode, n, dtype) / _median_ns(
                results, "cpu", ours, full, mode, n, dtype)
            rows.append(_target(f"{ours} at least as fast as e3nn-compile", ratio, 1.0, False, device="cpu",
                                set=full, mode=mode, n=n))
        ratio = _median_ns(results, "cpu", "sphericart", full, "fwd", n, dtype) / _median_ns(
            results, "cpu", ours, full, "fwd", n, dtype)
        rows.append(_target(f"{ours} within 1.5x of sphericart", ratio, 1 / 1.5, False, device="cpu", set=full,
                            mode="fwd", n=n))
    n, full = 1_000_000, "0-10"
    triton = _median_ns(results, "cuda", "triton", full, "fwd", n, dtype)
    bound = roofline_ns_per_point(parse_set(full), gpu_bandwidth, dtype, "fwd") if gpu_bandwidth else math.nan
    rows.append(_target("triton reaches half the memory-bandwidth bound", bound / triton, 0.5, False,
                        device="cuda", set=full, mode="fwd", n=n))
    for other in ("e3nn-compile", "sphericart"):
        ratio = _median_ns(results, "cuda", other, full, "fwd", n, dtype) / triton
        rows.append(_target(f"triton faster than {other}", ratio, 1.0, True, device="cuda", set=full, mode="fwd",
                            n=n))
    return pd.DataFrame(rows, columns=["target", "device", "set", "mode", "n", "measured", "threshold", "met"])


# ------------------------------------------------------------------------------------------------------------
# Plots
# ------------------------------------------------------------------------------------------------------------


def _plot_backends(ax: Axes, frame: pd.DataFrame, x: str) -> None:
    """One line per backend of ``ns_per_point`` against column ``x``, the quartiles as error bars; each backend
    keeps its colour in every panel."""
    for index, backend in enumerate(BACKENDS):
        part = frame[(frame["backend"] == backend) & (frame["status"] == "ok")].sort_values(x)
        if len(part):
            per_point = 1e9 / part["n"].astype(float)
            spread = [part["ns_per_point"] - part["q1_s"] * per_point, part["q3_s"] * per_point - part["ns_per_point"]]
            ax.errorbar(part[x], part["ns_per_point"], yerr=spread, marker="o", ms=4, capsize=2, label=backend,
                        color=f"C{index}")


def plot_vs_size(results: pd.DataFrame, label: str, mode: str, bandwidth: float | None = None,
                 ax: Axes | None = None) -> Axes:
    """ns per point against ``N`` for one order set and mode, one line per backend (quartiles as error bars), with
    the memory-bandwidth floor for ``bandwidth`` bytes/s as a dashed line.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(5, 3.5))[1]
    frame = results[(results["set"] == label) & (results["mode"] == mode)]
    _plot_backends(ax, frame, "n")
    if bandwidth:
        dtype = frame["dtype"].dropna().iloc[0] if frame["dtype"].notna().any() else "float32"
        ax.axhline(roofline_ns_per_point(parse_set(label), bandwidth, dtype, mode), color="k", ls="--", lw=1,
                   label="memory floor")
    ax.set(xscale="log", yscale="log", xlabel="N (points)", ylabel="ns per point", title=f"L = [{label}], {mode}")
    ax.legend(fontsize=7)
    return ax


def plot_vs_order(results: pd.DataFrame, n: int, mode: str, bandwidth: float | None = None,
                 ax: Axes | None = None) -> Axes:
    """ns per point against the single order ``l`` at ``N = n``, one line per backend, with the memory floor.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(5, 3.5))[1]
    singles = results[results["set"].isin([str(l) for l in range(L_MAX + 1)]) & (results["n"] == n)
                      & (results["mode"] == mode)].assign(l=lambda f: f["set"].astype(int))
    _plot_backends(ax, singles, "l")
    if bandwidth and len(singles):
        orders = sorted(singles["l"].unique())
        dtype = singles["dtype"].iloc[0]
        ax.plot(orders, [roofline_ns_per_point([l], bandwidth, dtype, mode) for l in orders], "k--", lw=1,
                label="memory floor")
    ax.set(yscale="log", xlabel="order l (alone)", ylabel="ns per point", title=f"N = {n:,}, {mode}")
    ax.legend(fontsize=7)
    return ax


# ------------------------------------------------------------------------------------------------------------
# Share of a training step
# ------------------------------------------------------------------------------------------------------------


def _median_time(call: Callable[[], Any], repeats: int, device: torch.device) -> float:
    """Median seconds of ``repeats`` calls after one warm-up call."""
    call()
    samples, _ = time_samples(call, repeats, device, min_time=0.0)
    return float(statistics.median(samples))


def _tensor_product_time(tp: torch.nn.Module, inputs: tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]],
                         repeats: int, device: torch.device) -> float:
    """Forward and backward of one tensor product on captured ``(args, kwargs)``, with gradients for the node
    features and the per-edge weights or their factors (the edge harmonics need none)."""
    args, kwargs = inputs
    x, edge_sh, *weights = (t.detach() for t in args)
    factors = {name: t.detach().requires_grad_(True) for name, t in kwargs.items()}  # features, matrix
    x.requires_grad_(True)
    weights = [w.requires_grad_(True) for w in weights]
    leaves = (x, *weights, *factors.values())
    upstream = torch.randn(x.shape[0], tp.irreps_out.dim, device=device)
    return _median_time(lambda: torch.autograd.grad(tp(x, edge_sh, *weights, **factors), leaves, upstream),
                        repeats, device)


def _harmonics_times(config: ModelConfig, vectors: torch.Tensor, repeats: int,
                     device: torch.device) -> tuple[float, float, float]:
    """Forward and forward+backward of the model's harmonics backend, and e3nn's forward, on ``vectors``."""
    orders, normalization = list(config.L), config.sh_normalization
    leaf = vectors.clone().requires_grad_(True)
    upstream = torch.randn(vectors.shape[0], output_width(orders), device=device)

    def ours(v: torch.Tensor) -> torch.Tensor:
        return spherical_harmonics(orders, v, True, normalization, backend=config.sh_backend)

    forward = _median_time(lambda: ours(vectors), repeats, device)
    forward_backward = _median_time(lambda: torch.autograd.grad(ours(leaf), leaf, upstream), repeats, device)
    e3nn_forward = _median_time(lambda: o3.spherical_harmonics(orders, vectors, True, normalization), repeats,
                                device)
    return forward, forward_backward, e3nn_forward


def step_share(config: ModelConfig, batch: Any, repeats: int = 3, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Split an eager training step of the study's model into spherical harmonics, tensor products and the rest.

    The step (forward, backward, AdamW update) is timed whole; the pieces are timed alone on the inputs the
    model gives them in that step (captured with forward hooks):

    * harmonics forward (``sh_s``) — all that training on energies needs: positions carry no gradient, so the
      harmonics have no backward; ``sh_fwd_bwd_s`` adds the input gradient that force training would need;
      ``sh_e3nn_s`` is the forward of ``e3nn.o3.spherical_harmonics`` on the same edges;
    * tensor products (``tp_s``) — forward and backward of every block's ``FullyConnectedTensorProduct``, with
      gradients for the node features and the per-edge weights, summed over blocks (with the ``torch`` backend
      the weights arrive as the radial MLP's last hidden layer and matrix, so its last layer is counted here);
    * the radial MLPs' hidden layers (``radial_s``), the sums of messages onto atoms (``scatter_s``), both forward
      and backward and summed over blocks, and one AdamW update (``optimizer_s``).

    Parameters
    ----------
    config
        The model; its ``sh_backend`` gives the harmonics timed as ``sh_s``.
    batch
        A PyG batch of molecules.
    repeats
        Timed repetitions of each piece (median taken).
    device
        Where to run.

    Returns
    -------
    dict
        ``L, h, sh_backend, tp_backend, graphs, edges, step_s, sh_s, sh_fwd_bwd_s, sh_e3nn_s, tp_s, radial_s,
        scatter_s, optimizer_s`` and the shares of ``step_s``: ``sh_share, tp_share, radial_share,
        scatter_share, optimizer_share, other_share`` (``other``: gathers, embedding, readout, autograd).
    """
    device = torch.device(device)
    torch.manual_seed(0)
    model = EquivariantModel.from_config(config).to(device)
    batch = batch.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def training_step() -> None:
        loss = model(batch).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step = _median_time(training_step, repeats, device)
    captured: dict[str, tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]] = {}
    hooks = [block.tp.register_forward_hook(
        lambda module, args, kwargs, out, name=name: captured.__setitem__(name, (args, kwargs)), with_kwargs=True)
        for name, block in model.blocks.items()]
    with torch.no_grad():
        model(batch)
    for hook in hooks:
        hook.remove()
    vectors = edge_vectors(batch.pos, batch.edge_index).detach()
    sh, sh_fwd_bwd, sh_e3nn = _harmonics_times(config, vectors, repeats, device)
    tp = sum(_tensor_product_time(block.tp, captured[name], repeats, device) for name, block in model.blocks.items())
    radial = sum(_radial_time(block, batch, config, repeats, device) for block in model.blocks.values())
    scatter = _scatter_time(model, batch, repeats, device) * len(model.blocks)
    optimizer.zero_grad(set_to_none=True)
    model(batch).square().mean().backward()
    update = _median_time(optimizer.step, repeats, device)
    parts = {"sh": sh, "tp": tp, "radial": radial, "scatter": scatter, "optimizer": update}
    return {
        "L": set_label(config.L), "h": config.h, "sh_backend": config.sh_backend, "tp_backend": config.tp_backend,
        "graphs": int(batch.num_graphs), "edges": int(batch.edge_index.shape[1]), "step_s": step,
        "sh_fwd_bwd_s": sh_fwd_bwd, "sh_e3nn_s": sh_e3nn, **{f"{k}_s": v for k, v in parts.items()},
        **{f"{k}_share": v / step for k, v in parts.items()},
        "other_share": max(0.0, 1 - sum(parts.values()) / step),
    }


def _radial_time(block: torch.nn.Module, batch: Any, config: ModelConfig, repeats: int, device: torch.device) -> float:
    """Forward and backward of a block's radial MLP without its last (linear) layer, which the tensor product
    receives as a factor (``tp_s`` counts it), on the batch's edge lengths."""
    lengths = torch.linalg.vector_norm(edge_vectors(batch.pos, batch.edge_index), dim=-1)
    basis = soft_one_hot_linspace(lengths, 0.0, config.cutoff, config.num_basis, basis="bessel", cutoff=True)
    *layers, _ = block.radial
    hidden = torch.nn.Sequential(*layers)
    parameters = list(hidden.parameters())
    upstream = torch.randn(basis.shape[0], layers[-1].h_out if layers else basis.shape[1], device=device)
    return _median_time(lambda: torch.autograd.grad(hidden(basis), parameters, upstream), repeats, device)


def _scatter_time(model: EquivariantModel, batch: Any, repeats: int, device: torch.device) -> float:
    """Forward and backward of one block's sum of per-edge messages onto target atoms."""
    width, target = model.irreps_hidden.dim, batch.edge_index[1]
    messages = torch.randn(target.shape[0], width, device=device, requires_grad=True)
    upstream = torch.randn(batch.num_nodes, width, device=device)

    def call() -> None:
        summed = messages.new_zeros(batch.num_nodes, width).index_add(0, target, messages)
        torch.autograd.grad(summed, messages, upstream)

    return _median_time(call, repeats, device)
