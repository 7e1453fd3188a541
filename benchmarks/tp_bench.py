"""Per-edge tensor product, forward + backward: equinb beside e3nn (eager, compiled) and cuEquivariance.

Writes ``<out>.csv`` (one row per shape, backend and thread count: median, min and max microseconds per edge over
the repeats) and ``<out>.json`` (machine, versions, measured sgemm rate, the per-shape summary with the FLOP
floor and the ratios). The allocator setting applies to the whole process, every backend alike:
``--allocator keep`` keeps freed memory in the heap (:mod:`equinb.allocator`), ``default`` is glibc's.

    .venv/bin/python benchmarks/tp_bench.py --threads 1 2 --allocator default
    .venv/bin/python benchmarks/tp_bench.py --threads 1 2 --allocator keep --out benchmarks/results/tp_cpu_keep
    .venv/bin/python benchmarks/tp_bench.py --memory   # peak memory of the largest shape, per backend
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd
import torch
from tqdm import tqdm

from equinb.bench.harness import (
    add_allocator_option, apply_allocator, configure_threads, machine_header, sgemm_rate, write_results,
)
from equinb.bench.tp import (
    BACKENDS, COMPILED_SHAPES, EDGES, TABLE1_SHAPES, measure, peak_memory_bytes, shape_argument, summarize,
)


def main() -> None:
    """Parse the options, time every case (or the peak memory), write the CSV and its JSON header."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--shapes", type=shape_argument, nargs="+", default=list(TABLE1_SHAPES))
    parser.add_argument("--compiled", type=shape_argument, nargs="*", default=list(COMPILED_SHAPES),
                        help="shapes that also get an e3nn torch.compile case")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--edges", type=int, default=EDGES)
    add_allocator_option(parser, default="default")
    parser.add_argument("--memory", action="store_true", help="peak memory of the largest shape instead")
    parser.add_argument("--out", default=None, help="output stem (default benchmarks/results/tp_cpu_<allocator>)")
    args = parser.parse_args()
    apply_allocator(parser, args.allocator)
    out = args.out or f"benchmarks/results/tp_cpu_{'memory' if args.memory else args.allocator}"
    command = " ".join(["python", *sys.argv])

    if args.memory:
        L, h = max(args.shapes, key=lambda s: len(s[0]))
        rows = []
        for backend in [b for b in args.backends if b not in ("e3nn_compiled", "radial")]:
            peak = peak_memory_bytes(backend, L, h, args.edges)
            rows.append({"L": ",".join(map(str, L)), "h": h, "backend": backend, "edges": args.edges,
                         "peak_mib": peak / 2**20})
            print(rows[-1], flush=True)
        header = machine_header("cpu", torch.float32, {"peak": "ru_maxrss increase in a fresh process"},
                                command=command)
        write_results(pd.DataFrame(rows), header, out)
        return

    frames, summaries, rates = [], {}, {}
    total = len(args.threads) * len(args.shapes) * len(args.backends)
    with tqdm(total=total, desc="tensor-product cases", unit="case") as bar:
        for threads in args.threads:
            configure_threads(threads)
            rates[threads] = sgemm_rate()
            report = lambda row: (bar.update(1), bar.set_postfix_str(  # noqa: E731
                f"{threads}t {row['L']}/{row['h']} {row['backend']} {row.get('us_per_edge', float('nan')):.0f} us"))
            frame = measure(args.shapes, args.backends, args.repeats, args.edges, args.compiled, report)
            frame.insert(0, "threads", threads)
            frame.insert(1, "allocator", args.allocator)
            frames.append(frame)
            summaries[threads] = summarize(frame, rates[threads]).round(3).to_dict("records")
    results = pd.concat(frames, ignore_index=True)
    header = machine_header(
        "cpu", torch.float32, {"repeats": args.repeats, "edges": args.edges, "statistic": "median per edge",
                               "allocator": args.allocator},
        compile_settings={"e3nn_compiled": "torch.compile(module), default mode", "shapes": [
            f"{','.join(map(str, L))}/{h}" for L, h in args.compiled]},
        command=command,
    )
    header["sgemm_flops_per_s"] = rates
    header["summary"] = summaries
    paths = write_results(results, header, out)
    for threads, summary in summaries.items():
        print(f"\n{threads} thread(s), sgemm {rates[threads] / 1e9:.1f} GFLOP/s")
        print(pd.DataFrame(summary).to_string(index=False))
    print("wrote", *paths)


if __name__ == "__main__":
    main()
