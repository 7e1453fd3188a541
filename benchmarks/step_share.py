"""Share of a training step of the study's model spent in spherical harmonics and in tensor products.

For each configuration, one QM9 batch (bond graphs, seeded) goes through an eager training step (forward,
backward, AdamW) and through its pieces alone (:func:`equinb.bench.step_share`). Writes
``benchmarks/results/sph_step_share_<device>.csv`` and a JSON header. The study's Table 1 configurations on the
CPU, 2 threads:

    .venv/bin/python benchmarks/step_share.py --threads 2

a quick look:

    .venv/bin/python benchmarks/step_share.py --threads 1 --configs 0,1,2/8 --batch-size 8 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from equinb import bench, data
from equinb.bench.tp import TABLE1_SHAPES, shape_argument
from equinb.model import ModelConfig
from equinb.trained import resolve_device

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    """Parse the options, time every configuration, write the CSV and its JSON header."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", type=shape_argument, default=list(TABLE1_SHAPES),
                        help='configurations "L/h" like "0,1,2/32" or "0,3-6/16" (default: the study\'s Table 1)')
    parser.add_argument("--batch-size", type=int, default=32, help="molecules per batch (the study: 32)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions of the step and of each piece")
    parser.add_argument("--sh-backend", default="auto", choices=["auto", "torch", "triton", "e3nn"])
    parser.add_argument("--device", default="auto", help="cpu, cuda, ... (auto: cuda if available)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads")
    parser.add_argument("--out", default=None, help="output stem (default benchmarks/results/sph_step_share_<device>)")
    args = parser.parse_args(argv)
    bench.configure_threads(args.threads)
    device = resolve_device(args.device)
    arrays = data.load_qm9()
    graphs = data.make_dataset(arrays, data.subset_indices(len(arrays), args.batch_size, seed=0))
    batch = next(iter(data.make_loader(graphs, batch_size=args.batch_size)))
    started = time.perf_counter()
    rows = []
    for orders, h in args.configs:
        rows.append(bench.step_share(ModelConfig(L=orders, h=h, sh_backend=args.sh_backend), batch,
                                     args.repeats, device))
        print(", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[-1].items()),
              file=sys.stderr, flush=True)
    timing = {"repeats": args.repeats, "batch_size": args.batch_size, "statistic": "median seconds",
              "duration_s": round(time.perf_counter() - started, 1)}
    header = bench.machine_header(device, torch.float32, timing,
                                  command=shlex.join([Path(sys.executable).name, *sys.argv]))
    stem = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"sph_step_share_{device.type}"
    csv_path, json_path = bench.write_results(pd.DataFrame(rows), header, stem)
    print(f"wrote {csv_path} and {json_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
