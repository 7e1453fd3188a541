"""``make gpu-check``: one short script for the minutes a GPU is lent.

Four parts, each written to ``<out>/<part>.csv`` as soon as it finishes (so a check cut short keeps what ran),
then a one-screen ``summary.txt``:

* ``triton`` — the Triton kernel tests compiled for the GPU (``TRITON_INTERPRET`` unset), pass/fail and pytest's
  last line;
* ``sph`` — spherical harmonics at ``N = 10^4 .. 10^6`` for ``[10]``, ``[0,3,4,5,6]``, ``[0..10]`` and ``[0..12]`` (last:
  its compiles are the longest, untimed on a GPU so far): equinb's
  Triton and PyTorch paths, e3nn eager and compiled, sphericart where installed (:func:`equinb.bench.run_benchmark`);
* ``tp`` — the tensor product of every Table 1 shape: equinb, equinb with the radial layer fused, e3nn eager and
  compiled, cuEquivariance where installed (:func:`equinb.bench.tp.measure`);
* ``train`` — training steps of the study's model, every Table 1 configuration, molecules per second.

On a machine without CUDA it prints one line and does nothing (exit 0). ``benchmarks/gpu_check.py`` is the
command line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import torch

from . import bench, data
from .bench import tp as tpbench
from .bench.step import step_times
from .model import EquivariantModel, ModelConfig, count_parameters

#: Parts of the check, in the order they run.
PARTS = ("triton", "sph", "tp", "train")
#: Where results go by default.
DEFAULT_OUT = Path("benchmarks/results/gpu")
#: Order sets of the harmonics part.
SPH_SETS = ((10,), (0, 3, 4, 5, 6), tuple(range(11)), tuple(range(bench.L_MAX + 1)))
#: Numbers of points of the harmonics part.
SPH_SIZES = (10_000, 100_000, 1_000_000)
#: Backends of the harmonics part (unavailable ones are recorded as skipped).
SPH_BACKENDS = ("triton", "torch", "e3nn", "e3nn-compile", "sphericart")
#: Backends of the tensor-product part.
TP_BACKENDS = ("equinb", "equinb_fused", "e3nn", "e3nn_compiled", "cueq")
#: Columns of ``triton.csv`` and ``train.csv``.
TRITON_COLUMNS = ("passed", "returncode", "summary", "seconds")
TRAIN_COLUMNS = ("L", "h", "tp_backend", "parameters", "batch_size", "steps", "median_step_s", "molecules_per_s")


def cuda_missing_reason() -> str | None:
    """One line saying why there is nothing to check here, or None when a CUDA device is present."""
    if not torch.cuda.is_available():
        return "gpu-check: no CUDA device here (torch.cuda.is_available() is False); nothing to do"
    return None


def triton_tests(repository: Path) -> pd.DataFrame:
    """Run ``tests/test_sph_triton.py`` with the kernels compiled for the GPU; one row."""
    environment = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "tests/test_sph_triton.py"], cwd=repository,
                          env=environment, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return pd.DataFrame([{"passed": done.returncode == 0, "returncode": done.returncode,
                          "summary": lines[-1] if lines else done.stderr.strip()[-200:],
                          "seconds": time.perf_counter() - started}], columns=list(TRITON_COLUMNS))


def sph_timings(repeats: int = 10) -> pd.DataFrame:
    """Spherical-harmonic timings on the GPU (:data:`SPH_SETS`, :data:`SPH_SIZES`, both modes)."""
    return bench.run_benchmark(SPH_SIZES, SPH_SETS, SPH_BACKENDS, bench.MODES, repeats, "cuda")


def tp_timings(repeats: int = 10, edges: int = 8 * tpbench.EDGES) -> pd.DataFrame:
    """Tensor-product timings of every Table 1 shape on the GPU (e3nn compiled on :data:`tpbench.COMPILED_SHAPES`)."""
    return tpbench.measure(tpbench.TABLE1_SHAPES, TP_BACKENDS, repeats, edges, device="cuda")


def train_throughput(steps: int = 30, batch_size: int = 32, tp_backends: Sequence[str] = ("torch", "e3nn"),
                     device: str = "cuda") -> pd.DataFrame:
    """Molecules per second of training steps (after two warm-up steps) for every Table 1 configuration."""
    arrays = data.load_qm9(progress=False)
    graphs = data.make_dataset(arrays, data.subset_indices(len(arrays), batch_size * 8, seed=0))
    batches = [b.to(device) for b in data.make_loader(graphs, batch_size=batch_size)]
    rows = []
    for L, h in tpbench.TABLE1_SHAPES:
        for backend in tp_backends:
            torch.manual_seed(0)
            model = EquivariantModel.from_config(ModelConfig(L=L, h=h, tp_backend=backend)).to(device)
            times = step_times(model, batches, steps, torch.device(device))
            median = float(pd.Series(times).median())
            rows.append({"L": bench.set_label(L), "h": h, "tp_backend": backend,
                         "parameters": count_parameters(model), "batch_size": batch_size, "steps": steps,
                         "median_step_s": median, "molecules_per_s": batch_size / median})
    return pd.DataFrame(rows, columns=list(TRAIN_COLUMNS))


def summary_lines(results: dict[str, pd.DataFrame]) -> list[str]:
    """The one-screen summary of whatever parts ran."""
    lines = []
    if "triton" in results:
        row = results["triton"].iloc[0]
        lines.append(f"triton tests compiled: {'PASSED' if row['passed'] else 'FAILED'} ({row['summary']})")
    if "sph" in results:
        ok = results["sph"][results["sph"]["status"] == "ok"]
        table = ok.pivot_table(index=["set", "mode", "n"], columns="backend", values="ns_per_point", sort=False)
        lines += ["spherical harmonics, ns per point:", table.round(2).to_string()]
    if "tp" in results:
        ok = results["tp"][results["tp"]["status"] == "ok"]
        table = ok.pivot_table(index=["L", "h"], columns="backend", values="us_per_edge", sort=False)
        lines += ["tensor product fwd+bwd, us per edge:", table.round(2).to_string()]
    if "train" in results:
        table = results["train"].pivot_table(index=["L", "h"], columns="tp_backend", values="molecules_per_s",
                                             sort=False)
        lines += ["training, molecules per second:", table.round(1).to_string()]
    return lines


def run(parts: Sequence[str] = PARTS, out: Path = DEFAULT_OUT, repository: Path = Path("."),
        report: Callable[[str], None] = print) -> dict[str, pd.DataFrame]:
    """Run the parts in order on the GPU, writing each part's CSV as soon as it finishes, then ``summary.txt``.

    Raises
    ------
    ValueError
        For an unknown part (before anything runs).
    """
    unknown = [part for part in parts if part not in PARTS]
    if unknown:
        raise ValueError(f"unknown gpu-check part(s) {', '.join(unknown)}; parts are {', '.join(PARTS)}")
    out.mkdir(parents=True, exist_ok=True)
    work: dict[str, Callable[[], pd.DataFrame]] = {
        "triton": lambda: triton_tests(repository), "sph": sph_timings, "tp": tp_timings, "train": train_throughput,
    }
    results: dict[str, pd.DataFrame] = {}
    for part in parts:
        started = time.perf_counter()
        results[part] = work[part]()
        results[part].to_csv(out / f"{part}.csv", index=False)
        report(f"gpu-check: {part} done in {time.perf_counter() - started:.0f} s -> {out / f'{part}.csv'}")
    header = bench.machine_header("cuda", torch.float32, {"parts": list(parts)})
    text = "\n".join([f"{header['device_name']}, torch {header['torch']}, {header['created']}",
                      *summary_lines(results)])
    (out / "summary.txt").write_text(text + "\n")
    report(text)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python benchmarks/gpu_check.py [--parts ...] [--out DIR]``; exit 0 without CUDA."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS, help="parts to run, in order")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"results folder (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    reason = cuda_missing_reason()
    if reason:
        print(reason)
        return 0
    run(args.parts, args.out)
    return 0

