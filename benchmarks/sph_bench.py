"""Time the spherical harmonics of equinb against e3nn and sphericart (a CLI over :mod:`equinb.bench`).

Writes ``benchmarks/results/sph_<device>.csv`` (one row per backend, order set, mode and N) and a JSON header
beside it (machine, CPU model, threads, versions, dtype, device name, measured copy bandwidth, skipped
backends with their reasons). Full sweep on the machine's CPU, all cores:

    .venv/bin/python benchmarks/sph_bench.py

on a GPU:

    .venv/bin/python benchmarks/sph_bench.py --device cuda

the compiled-path check (prints, per set, mode and N, our compiled time against our eager path and compiled e3nn
with quartile bands, ties within 10 %, and the compile time; needs an idle machine):

    .venv/bin/python benchmarks/sph_bench.py --sets 10 0,3-6 0-10 0-12 --sizes 10000 100000 \\
        --backends torch torch-compile e3nn e3nn-compile sphericart --out benchmarks/results/sph_compiled_cpu

a quick look (1 thread, two sizes, the sparse sets, eager backends):

    .venv/bin/python benchmarks/sph_bench.py --threads 1 --sizes 1000 10000 --sets 10 0,3-6 \\
        --backends torch e3nn sphericart --repeats 5 --out /tmp/sph_quick

Order sets are written like ``10``, ``0-10`` or ``0,3-6``; ``singles`` stands for every single order 0..12 and
``key`` for ``0-10 0-12 0-2 0,3-6``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import torch

from equinb import bench
from equinb.trained import resolve_device

ROOT = Path(__file__).resolve().parents[1]


def parse_sets(words: list[str]) -> list[tuple[int, ...]]:
    """Order sets from the command line (``singles`` and ``key`` expand to groups)."""
    sets: list[tuple[int, ...]] = []
    for word in words:
        if word == "singles":
            sets += [(l,) for l in range(bench.L_MAX + 1)]
        elif word == "key":
            sets += list(bench.KEY_SETS)
        else:
            sets.append(bench.parse_set(word))
    return list(dict.fromkeys(sets))


def main(argv: list[str] | None = None) -> None:
    """Parse the options, run the sweep, write the CSV and its JSON header."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=list(bench.SIZES), help="numbers of points N")
    parser.add_argument("--sets", nargs="+", default=["singles", "key"], help="order sets (see above)")
    parser.add_argument("--backends", nargs="+", default=list(bench.BACKENDS), choices=bench.BACKENDS,
                        metavar="BACKEND", help=f"any of {' '.join(bench.BACKENDS)} (default: all)")
    parser.add_argument("--modes", nargs="+", default=list(bench.MODES), choices=bench.MODES)
    parser.add_argument("--repeats", type=int, default=10, help="timed samples per case")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per case (compilation included)")
    parser.add_argument("--min-time", type=float, default=0.005, help="least seconds per timed sample")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (auto: cuda if available)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads (torch and OpenMP)")
    parser.add_argument("--static-compile", action="store_true",
                        help="compile once per N (dynamic=False) instead of once for all N")
    parser.add_argument("--out", default=None,
                        help="output stem (default benchmarks/results/sph_<device>; .csv and .json are added)")
    args = parser.parse_args(argv)

    threads = bench.configure_threads(args.threads)  # before sphericart loads its own OpenMP runtime
    device = resolve_device(args.device)
    dtype = getattr(torch, args.dtype)
    backends = list(dict.fromkeys(args.backends))
    try:
        sets = parse_sets(args.sets)
    except ValueError as error:
        parser.error(str(error))
    print(f"device {device}, {args.dtype}, {threads} threads, sizes {args.sizes}, "
          f"{len(sets)} order sets, backends {' '.join(backends)}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    bandwidth = bench.measure_copy_bandwidth(device)
    results = bench.run_benchmark(
        sizes=args.sizes, sets=sets, backends=backends, modes=args.modes, repeats=args.repeats, device=device,
        dtype=dtype, warmup=args.warmup, min_time=args.min_time, compile_dynamic=not args.static_compile,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    timing = {"repeats": args.repeats, "warmup": args.warmup, "min_time_s": args.min_time,
              "statistic": "median and quartiles of per-call seconds over the repeats",
              "duration_s": round(time.perf_counter() - started, 1)}
    compile_settings = {"dynamic_points": not args.static_compile, "mode": "default", "backend": "inductor"}
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    header = bench.machine_header(device, dtype, timing, compile_settings, bandwidth,
                                  bench.skipped_cases(results), command)
    stem = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"sph_{device.type}"
    csv_path, json_path = bench.write_results(results, header, stem)
    print(f"wrote {csv_path} and {json_path} ({timing['duration_s']} s)", file=sys.stderr)
    compiled = bench.compiled_path_table(results, sets=[bench.set_label(orders) for orders in sets])
    if len(compiled):  # is torch.compile of our path slower than our eager path or than compiled e3nn?
        print(compiled.to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
