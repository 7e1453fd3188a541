"""Benchmarks: timing of the spherical harmonics, the tensor product and a training step, written as CSV + JSON.

One module per job; nothing below :mod:`equinb.bench` imports it.

* :mod:`~equinb.bench.harness` — process settings (threads, ``--allocator``), order-set labels, timing with
  repeats, machine rates (copy bandwidth, sgemm), the machine header, results files;
* :mod:`~equinb.bench.sph` — spherical-harmonic cases (equinb, e3nn, sphericart) and their memory floor;
* :mod:`~equinb.bench.tp` — tensor-product cases (equinb, e3nn, cuEquivariance) and their FLOP floor;
* :mod:`~equinb.bench.step` — training steps of the study's model: throughput, and the share of each piece;
* :mod:`~equinb.bench.targets` — speed-ups and the project's performance targets;
* :mod:`~equinb.bench.plots` — figures of the spherical-harmonic results.

The command lines are ``benchmarks/*.py``; chapter 3 calls these functions directly. The names below are the
spherical-harmonic sweep's and the harness's, as ``from equinb import bench`` gives them; the tensor-product
cases live in :mod:`equinb.bench.tp`.
"""

from .harness import (
    HEADER_KEYS,
    INTEGER_COLUMNS,
    L_MAX,
    PREALLOCATION_NOTE,
    configure_threads,
    cpu_model,
    machine_header,
    measure_copy_bandwidth,
    parse_set,
    read_results,
    set_label,
    time_samples,
    write_results,
)
from .plots import plot_vs_order, plot_vs_size
from .sph import (
    BACKENDS,
    CHECK_ROWS,
    COLUMNS,
    CONSTANT_ORDER_NOTE,
    KEY_SETS,
    MODES,
    SIZES,
    backend_function,
    bytes_per_point,
    default_sets,
    measure_case,
    output_width,
    roofline_ns_per_point,
    run_benchmark,
    skipped_cases,
    unavailable_reason,
)
from .step import step_share
from .targets import (
    COMPILED_SETS,
    compiled_path_table,
    evaluate_targets,
    ratio_table,
    set_cost_ratio,
    single_order_ratios,
)

__all__ = [
    "BACKENDS",
    "CHECK_ROWS",
    "COLUMNS",
    "COMPILED_SETS",
    "CONSTANT_ORDER_NOTE",
    "HEADER_KEYS",
    "INTEGER_COLUMNS",
    "KEY_SETS",
    "L_MAX",
    "MODES",
    "PREALLOCATION_NOTE",
    "SIZES",
    "backend_function",
    "bytes_per_point",
    "compiled_path_table",
    "configure_threads",
    "cpu_model",
    "default_sets",
    "evaluate_targets",
    "machine_header",
    "measure_case",
    "measure_copy_bandwidth",
    "output_width",
    "parse_set",
    "plot_vs_order",
    "plot_vs_size",
    "ratio_table",
    "read_results",
    "roofline_ns_per_point",
    "run_benchmark",
    "set_cost_ratio",
    "set_label",
    "single_order_ratios",
    "skipped_cases",
    "step_share",
    "time_samples",
    "unavailable_reason",
    "write_results",
]
