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
import csv
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from equinb import data
from equinb.allocator import keep_freed_memory
from equinb.model import EquivariantModel, ModelConfig, count_parameters

#: (L, h) of the study's Table 1 (epochs do not matter for a step).
TABLE1 = [((0, 1, 2), 32), ((0, 1, 2, 4), 32), ((0, 1, 2, 6), 32), ((0, 1, 2, 8), 32), ((0, 1, 2, 10), 32),
          ((0, 1, 2, 3, 4), 16), ((0, 1, 2, 3, 4, 5, 6), 16), ((0, 1, 2, 3, 4, 5, 6, 7, 8), 16),
          ((0, 3, 4, 5, 6), 16)]


def parse_config(text: str) -> tuple[tuple[int, ...], int]:
    """``"0,3,4/16"`` -> ``((0, 3, 4), 16)``."""
    orders, h = text.split("/")
    return tuple(int(l) for l in orders.split(",")), int(h)


def time_steps(model, batches, steps: int, device: torch.device) -> list[float]:
    """Seconds of each of ``steps`` training steps (after two warm-up steps)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    times = []
    for i in range(steps + 2):
        batch = batches[i % len(batches)]
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss = model(batch).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--modes", nargs="+", default=["eager", "compiled"], choices=["eager", "compiled"])
    parser.add_argument("--only", nargs="+", type=parse_config, help='configurations like "0,1,2/32"')
    parser.add_argument("--tp-backends", nargs="+", default=["auto"], choices=["auto", "torch", "e3nn", "cueq"])
    parser.add_argument("--allocator", choices=["default", "keep"], default="keep",
                        help="keep: freed memory stays in the heap (equinb.allocator; what training uses)")
    parser.add_argument("--out", default="benchmarks/results/train_bench")
    args = parser.parse_args()
    if args.allocator == "keep" and not keep_freed_memory():
        parser.error("--allocator keep needs glibc (Linux)")

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    arrays = data.load_qm9()
    graphs = data.make_dataset(arrays, data.subset_indices(len(arrays), 32 * 8, seed=0))
    batches = [b.to(device) for b in data.make_loader(graphs, batch_size=args.batch_size)]
    rows = []
    for L, h in args.only or TABLE1:
        for mode, tp_backend in [(m, b) for m in args.modes for b in args.tp_backends]:
            torch.manual_seed(0)
            model = EquivariantModel.from_config(ModelConfig(L=L, h=h, sh_backend="auto", tp_backend=tp_backend))
            model = model.to(device)
            step_model = torch.compile(model, dynamic=True) if mode == "compiled" else model
            times = time_steps(step_model, batches, args.steps, device)
            median = statistics.median(times)
            rows.append({"L": " ".join(map(str, L)), "h": h, "mode": mode, "tp_backend": tp_backend,
                         "allocator": args.allocator, "parameters": count_parameters(model),
                         "batch_size": args.batch_size, "steps": args.steps, "median_step_s": median,
                         "molecules_per_s": args.batch_size / median})
            print(rows[-1], flush=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({
        "device": name, "threads": args.threads, "torch": torch.__version__, "python": platform.python_version(),
        "machine": platform.machine(), "dtype": "float32"}, indent=2) + "\n")
    with out.with_suffix(".csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
