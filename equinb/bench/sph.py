"""Benchmark cases of the spherical harmonics: equinb's kernels against e3nn and sphericart.

Chapter 3 of the book runs a reduced sweep live; ``benchmarks/sph_bench.py`` runs the full one and writes
``benchmarks/results/sph_<device>.csv`` with a JSON header beside it.

Backends (:data:`BACKENDS`), all called with ``normalize=True`` and e3nn's ``"integral"`` normalisation:

* ``torch`` / ``torch-compile`` — :func:`equinb.sph.spherical_harmonics` with ``backend="torch"`` (the generated
  PyTorch code), eager and under :func:`torch.compile`;
* ``triton`` — the same function with ``backend="triton"``; CUDA only (the CPU interpreter is never timed);
* ``e3nn`` / ``e3nn-compile`` — :func:`e3nn.o3.spherical_harmonics`, eager and compiled;
* ``sphericart`` — ``sphericart.torch.e3nn_spherical_harmonics`` (optional ``bench`` extra), which computes
  every order up to ``max(L)`` and then keeps the requested ones.

Method: every case (backend, order set, mode, ``N``) is warmed up (compilation included) outside the timed
region, then timed by :func:`equinb.bench.harness.time_samples`. Reported: median and quartiles over the samples,
per call and per point. ``fwd`` times the forward on inputs that do not require gradients; ``fwd+bwd`` times the
forward and ``torch.autograd.grad`` with a fixed random upstream gradient. No backend's public API takes an output
buffer, so every timed call allocates its output (``preallocated`` is False for all rows); the random input and
upstream gradient are made once, outside.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from e3nn import o3

from ..sph import spherical_harmonics
from .harness import INTEGER_COLUMNS, L_MAX, package_version, set_label, synchronize, time_samples

#: Backends the sweep knows, in plotting order.
BACKENDS = ("torch", "torch-compile", "triton", "e3nn", "e3nn-compile", "sphericart")
#: Timed modes: forward only, and forward plus the gradient with respect to the input vectors.
MODES = ("fwd", "fwd+bwd")
#: Numbers of points of the full sweep.
SIZES = (1_000, 10_000, 100_000, 1_000_000)
#: Order sets of the full sweep besides the single orders (``[10]`` is the single order 10).
KEY_SETS = (tuple(range(11)), tuple(range(L_MAX + 1)), (0, 1, 2), (0, 3, 4, 5, 6))
#: Columns of the results table, in order.
COLUMNS = (
    "device", "dtype", "threads", "backend", "compiled", "mode", "set", "orders", "l_max", "outputs",
    "computed_outputs", "n", "repeats", "inner", "first_call_s", "median_s", "q1_s", "q3_s", "iqr_s",
    "ns_per_point", "iqr_ns_per_point", "max_abs_err", "preallocated", "status", "reason",
)
#: Why ``[0]`` has no ``fwd+bwd`` case.
CONSTANT_ORDER_NOTE = "Y_0 is a constant: there is no gradient to time"
#: Rows of the input compared against e3nn's eager result in every case.
CHECK_ROWS = 1024


def default_sets() -> list[tuple[int, ...]]:
    """Order sets of the full sweep: each single order 0..L_MAX (:data:`equinb.so3.L_MAX`), then :data:`KEY_SETS`.

    Returns
    -------
    list of tuple of int
    """
    return [(l,) for l in range(L_MAX + 1)] + list(KEY_SETS)


def output_width(orders: Iterable[int]) -> int:
    """Number of output columns, ``sum(2l + 1)``.

    Parameters
    ----------
    orders
        The order set.

    Returns
    -------
    int
    """
    return sum(2 * l + 1 for l in orders)


def unavailable_reason(backend: str, device: torch.device) -> str | None:
    """Why ``backend`` cannot be timed on ``device``, or None when it can.

    Parameters
    ----------
    backend
        One of :data:`BACKENDS`.
    device
        Where it would run.

    Returns
    -------
    str or None

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
        if package_version("triton") is None:
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

    Returns
    -------
    callable

    Raises
    ------
    ValueError
        For an unknown backend name.
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
        See :func:`equinb.bench.harness.time_samples`.
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

    Raises
    ------
    ValueError
        For an unknown mode.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    generator = torch.Generator(device).manual_seed(n)
    vectors = torch.randn((n, 3), dtype=dtype, device=device, generator=generator)
    call, upstream = _case_call(function, vectors, mode, output_width(orders), dynamic_points)
    synchronize(device)
    start = time.perf_counter()
    result = call()
    synchronize(device)
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
        Where and in which precision to time. Threads are whatever torch is set to
        (:func:`equinb.bench.harness.configure_threads`).
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

    Returns
    -------
    int

    Raises
    ------
    ValueError
        For an unknown mode.

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
    """Memory-bound floor in ns per point: :func:`bytes_per_point` divided by ``bandwidth`` (bytes/s).

    Parameters
    ----------
    orders, dtype, mode
        See :func:`bytes_per_point`.
    bandwidth
        Memory bandwidth in bytes per second.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``bandwidth`` is not positive.
    """
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be positive (bytes per second), got {bandwidth!r}")
    return bytes_per_point(orders, dtype, mode) / bandwidth * 1e9


def skipped_cases(results: pd.DataFrame) -> list[dict[str, str]]:
    """Backend, set, mode and reason of each distinct skip in a results table.

    Parameters
    ----------
    results
        Rows from :func:`run_benchmark`.

    Returns
    -------
    list of dict
        One per distinct (backend, reason), for :func:`equinb.bench.harness.machine_header`.
    """
    skipped = results.loc[results["status"] == "skipped", ["backend", "set", "mode", "reason"]]
    return skipped.drop_duplicates(["backend", "reason"]).astype(object).fillna("").to_dict("records")
