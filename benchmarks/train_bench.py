"""Throughput of a training step (forward + backward + AdamW) for the study's Table 1 configurations.

Writes one CSV row per (configuration, mode) with molecules per second, plus a JSON header describing the
machine. Example (CPU, the smallest configurations, 2 threads):

    .venv/bin/python benchmarks/train_bench.py --threads 2 --steps 5 --only "0,1,2/16" "0,3,4,5,6/16"

Before/after the tensor-product backends, same process and allocator:

    .venv/bin/python benchmarks/train_bench.py --threads 2 --modes eager --tp-backends torch e3nn

Full Table 1 on a GPU:

    .venv/bin/python benchmarks/train_bench.py --device cuda --steps 50
"""

from __future__ import annotations

import argparse
import platform
import statistics

import pandas as pd
import torch

from equinb import data
from equinb.bench.harness import add_allocator_option, apply_allocator, configure_threads, write_results
from equinb.bench.step import step_times
from equinb.bench.tp import TABLE1_SHAPES, shape_argument
from equinb.model import EquivariantModel, ModelConfig, count_parameters


def main() -> None:
    """Parse the options, time the steps of every configuration, write the CSV and its JSON header."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--modes", nargs="+", default=["eager", "compiled"], choices=["eager", "compiled"])
    parser.add_argument("--only", nargs="+", type=shape_argument, help='configurations like "0,1,2/32"')
    parser.add_argument("--tp-backends", nargs="+", default=["auto"], choices=["auto", "torch", "e3nn", "cueq"])
    add_allocator_option(parser, default="keep")
    parser.add_argument("--out", default="benchmarks/results/train_bench")
    args = parser.parse_args()
    apply_allocator(parser, args.allocator)

    configure_threads(args.threads)
    device = torch.device(args.device)
    arrays = data.load_qm9()
    graphs = data.make_dataset(arrays, data.subset_indices(len(arrays), 32 * 8, seed=0))
    batches = [b.to(device) for b in data.make_loader(graphs, batch_size=args.batch_size)]
    rows = []
    for L, h in args.only or TABLE1_SHAPES:
        for mode, tp_backend in [(m, b) for m in args.modes for b in args.tp_backends]:
            torch.manual_seed(0)
            model = EquivariantModel.from_config(ModelConfig(L=L, h=h, sh_backend="auto", tp_backend=tp_backend))
            model = model.to(device)
            step_model = torch.compile(model, dynamic=True) if mode == "compiled" else model
            median = statistics.median(step_times(step_model, batches, args.steps, device))
            rows.append({"L": " ".join(map(str, L)), "h": h, "mode": mode, "tp_backend": tp_backend,
                         "allocator": args.allocator, "parameters": count_parameters(model),
                         "batch_size": args.batch_size, "steps": args.steps, "median_step_s": median,
                         "molecules_per_s": args.batch_size / median})
            print(rows[-1], flush=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    header = {"device": name, "threads": args.threads, "torch": torch.__version__, "python": platform.python_version(),
              "machine": platform.machine(), "dtype": "float32"}
    write_results(pd.DataFrame(rows), header, args.out)


if __name__ == "__main__":
    main()
