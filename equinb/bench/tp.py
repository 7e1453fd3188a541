"""Benchmark cases of the per-edge tensor product: equinb's backends beside e3nn (eager and compiled) and
cuEquivariance, forward + backward per edge, with the FLOP floor measured in the same run.

Cases are the conv-block tensor products of the study's Table 1, ``h x L (x) Y(L) -> h x L`` with per-edge
weights, on ``E`` random edges (float32, signed inputs, a random upstream gradient, gradients for all three
inputs). ``benchmarks/tp_bench.py`` is the command line; chapter 3 and the GPU check (:mod:`equinb.gpucheck`) call
:func:`measure` directly.

FLOP model (per edge, forward; see ``../shared/DESIGN.md`` §7): the sparse coupling ``h * nnz(C)`` per path, the
per-edge weights ``h**2 * (2 lo + 1)`` per path, and the radial MLP's last layer ``h * weight_numel``; two FLOPs
per multiply–add, forward + backward three times the forward. The floor divides that by the sgemm rate measured
at the start of the run on the same threads (:func:`equinb.bench.harness.sgemm_rate`).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from e3nn import o3

from ..so3 import irreps_for, sh_irreps, wigner_3j_sparse
from ..sweep import TABLE1
from ..tp import FullyConnectedTensorProduct, cueq_available, fully_connected_paths, weight_numel
from .harness import parse_set, set_label, time_samples

#: (L, h) of the conv blocks of the study's Table 1 (:data:`equinb.sweep.TABLE1`), each once, in the table's order.
TABLE1_SHAPES: tuple[tuple[tuple[int, ...], int], ...] = tuple(dict.fromkeys((row.L, row.h) for row in TABLE1))
#: Shapes whose e3nn ``torch.compile`` case runs by default (compiling takes 10-60 s each).
COMPILED_SHAPES = (((0, 1, 2), 32), ((0, 1, 2, 3, 4), 16), ((0, 3, 4, 5, 6), 16))
#: Backends timed: ``equinb`` (tp_backend "auto", the fused C++ kernel on CPU; weights given, e3nn's call),
#: ``equinb_fused`` (the same with the radial last layer included, the model's call), ``equinb_torch`` (the
#: pure-torch contraction, weights given), ``e3nn``, ``e3nn_compiled``, ``cueq`` (cuEquivariance), ``radial`` (the
#: last layer alone).
BACKENDS = ("equinb", "equinb_fused", "equinb_torch", "e3nn", "e3nn_compiled", "cueq", "radial")
#: Edges per call: 32 QM9 molecules with bond graphs.
EDGES = 1216


def parse_shape(text: str) -> tuple[tuple[int, ...], int]:
    """``"0,3-6/16"`` -> ``((0, 3, 4, 5, 6), 16)``: a model's orders and multiplicity.

    Parameters
    ----------
    text
        ``orders/h``, the orders as :func:`equinb.bench.harness.parse_set` reads them.

    Returns
    -------
    (tuple of int, int)
        The orders and ``h``.

    Raises
    ------
    ValueError
        If ``text`` is not ``orders/h`` with orders as :func:`equinb.bench.harness.parse_set` reads them.
    """
    orders, _, h = text.partition("/")
    if not h.isdigit() or int(h) < 1:
        raise ValueError(f"a shape is orders/h such as 0,1,2/32, got {text!r}")
    return parse_set(orders), int(h)


def shape_argument(text: str) -> tuple[tuple[int, ...], int]:
    """:func:`parse_shape` as an ``argparse`` type: a malformed shape is a usage error that says why.

    Parameters
    ----------
    text
        ``orders/h`` from the command line.

    Returns
    -------
    (tuple of int, int)

    Raises
    ------
    argparse.ArgumentTypeError
        With :func:`parse_shape`'s message.
    """
    try:
        return parse_shape(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def flop_model(L: Sequence[int], h: int) -> dict[str, float]:
    """Per edge: paths, weights, forward multiply–adds (coupling ``h * nnz``, weights, radial last layer), the
    non-zero fraction of the coupling tensors, and forward + backward FLOPs.

    Parameters
    ----------
    L
        The orders of the node features and of the harmonics.
    h
        Multiplicity of every order.

    Returns
    -------
    dict
        ``paths, weight_numel, coupling_macs, weight_macs, radial_macs, nnz_fraction, fwd_bwd_flops`` and
        ``tp_fwd_bwd_flops`` (the tensor product alone: 2 FLOPs a multiply–add, three passes).
    """
    paths = fully_connected_paths(irreps_for(L, h), sh_irreps(L), irreps_for(L, h))
    nnz = sum(len(wigner_3j_sparse(p.l1, p.l2, p.lo)[1]) for p in paths)
    dense = sum((2 * p.l1 + 1) * (2 * p.l2 + 1) * (2 * p.lo + 1) for p in paths)
    weights = sum(h * h * (2 * p.lo + 1) for p in paths)
    numel = weight_numel(paths)
    return {"paths": len(paths), "weight_numel": numel, "coupling_macs": h * nnz, "weight_macs": weights,
            "radial_macs": h * numel, "nnz_fraction": nnz / dense,
            "fwd_bwd_flops": 6 * (h * nnz + weights + h * numel), "tp_fwd_bwd_flops": 6 * (h * nnz + weights)}


def case_inputs(
    L: Sequence[int], h: int, edges: int, seed: int = 0, device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """Random signed float32 inputs of one case on ``device``: ``x1, x2, weight, features, matrix, upstream``.

    Parameters
    ----------
    L, h
        The shape (see :func:`flop_model`).
    edges
        Rows of the per-edge tensors.
    seed
        Of the CPU generator the inputs are drawn from.
    device
        Where the tensors go.

    Returns
    -------
    dict of str to torch.Tensor
    """
    generator = torch.Generator().manual_seed(seed)
    irreps, sh = irreps_for(L, h), sh_irreps(L)
    numel = FullyConnectedTensorProduct(irreps, sh, irreps, backend="torch").weight_numel
    make = lambda *shape: torch.randn(*shape, generator=generator)  # noqa: E731
    tensors = {"x1": make(edges, irreps.dim), "x2": make(edges, sh.dim), "weight": make(edges, numel),
               "features": make(edges, h), "matrix": make(h, numel) / h**0.5, "upstream": make(edges, irreps.dim)}
    return {name: tensor.to(device) for name, tensor in tensors.items()}


def case_call(backend: str, L: Sequence[int], h: int, tensors: dict[str, torch.Tensor]) -> Callable[[], Any]:
    """A closure running forward + backward of ``backend`` on ``tensors`` (gradients of every input), on the
    tensors' device.

    Parameters
    ----------
    backend
        One of :data:`BACKENDS`.
    L, h
        The shape (see :func:`flop_model`).
    tensors
        From :func:`case_inputs`; the inputs are made leaves that require gradients.

    Returns
    -------
    callable
        Returns the gradients.

    Raises
    ------
    ValueError
        For an unknown backend.
    """
    irreps, sh = irreps_for(L, h), sh_irreps(L)
    device = tensors["x1"].device
    x1, x2 = (tensors[k].requires_grad_() for k in ("x1", "x2"))
    upstream = tensors["upstream"]
    if backend == "radial":
        features, matrix = (tensors[k].requires_grad_() for k in ("features", "matrix"))
        return lambda: torch.autograd.grad(features @ matrix, (features, matrix), tensors["weight"])
    if backend == "equinb_fused":
        tp = FullyConnectedTensorProduct(irreps, sh, irreps, backend="auto").to(device)
        features, matrix = (tensors[k].requires_grad_() for k in ("features", "matrix"))
        leaves = (x1, x2, features, matrix)
        return lambda: torch.autograd.grad(tp(x1, x2, features=features, matrix=matrix), leaves, upstream)
    if backend in ("equinb", "equinb_torch"):
        tp: torch.nn.Module = FullyConnectedTensorProduct(irreps, sh, irreps,
                                                          backend="auto" if backend == "equinb" else "torch")
    elif backend == "cueq":
        tp = FullyConnectedTensorProduct(irreps, sh, irreps, backend="cueq")
    elif backend in ("e3nn", "e3nn_compiled"):
        tp = o3.FullyConnectedTensorProduct(irreps, sh, irreps, shared_weights=False)
    else:
        raise ValueError(f"unknown tensor-product benchmark backend {backend!r}; choose one of {BACKENDS}")
    tp = tp.to(device)
    if backend == "e3nn_compiled":
        tp = torch.compile(tp)
    weight = tensors["weight"].requires_grad_()
    return lambda: torch.autograd.grad(tp(x1, x2, weight), (x1, x2, weight), upstream)


def measure(
    shapes: Sequence[tuple[tuple[int, ...], int]],
    backends: Sequence[str],
    repeats: int = 7,
    edges: int = EDGES,
    compiled_shapes: Sequence[tuple[tuple[int, ...], int]] = COMPILED_SHAPES,
    progress: Callable[[dict[str, Any]], None] | None = None,
    device: str | torch.device = "cpu",
) -> pd.DataFrame:
    """Time every (shape, backend) case on ``device``; one row per case with per-edge microseconds and their
    spread (a GPU is synchronised around every sample).

    Parameters
    ----------
    shapes
        ``(L, h)`` pairs.
    backends
        Any of :data:`BACKENDS`; one that cannot run here gives a ``skipped`` row with the reason.
    repeats
        Timed calls per case, after one warm-up call (which compiles where compiled).
    edges
        Edges per call.
    compiled_shapes
        The shapes that get an ``e3nn_compiled`` case.
    progress
        Called with every finished row.
    device
        Where to time.

    Returns
    -------
    pandas.DataFrame
        ``L, h, backend, status, reason, edges, repeats, setup_s, us_per_edge`` (median), ``us_min``,
        ``us_max``, ``paths``, ``weight_numel``, ``fwd_bwd_flops``.
    """
    rows = []
    for L, h in shapes:
        model = flop_model(L, h)
        for backend in backends:
            row: dict[str, Any] = {"L": set_label(L), "h": h, "backend": backend, "status": "ok", "reason": "",
                                   "edges": edges, "repeats": repeats, **{k: model[k] for k in
                                   ("paths", "weight_numel", "fwd_bwd_flops", "tp_fwd_bwd_flops")}}
            reason = _skip_reason(backend, (tuple(L), h), compiled_shapes)
            if reason:
                row.update(status="skipped", reason=reason)
            else:
                tensors = case_inputs(L, h, edges, device=device)
                started = time.perf_counter()
                call = case_call(backend, L, h, tensors)
                call()  # warm-up (compiles where compiled)
                row["setup_s"] = time.perf_counter() - started
                samples, _ = time_samples(call, repeats, torch.device(device), min_time=0.0)
                per_edge = samples / edges * 1e6
                row.update(us_per_edge=float(np.median(per_edge)), us_min=float(per_edge.min()),
                           us_max=float(per_edge.max()))
            rows.append(row)
            if progress is not None:
                progress(row)
    return pd.DataFrame(rows)


def _skip_reason(backend: str, shape: tuple[tuple[int, ...], int],
                 compiled_shapes: Sequence[tuple[tuple[int, ...], int]]) -> str:
    if backend == "cueq" and not cueq_available():
        return "cuequivariance-torch not installed"
    if backend == "e3nn_compiled" and shape not in {(tuple(L), h) for L, h in compiled_shapes}:
        return "compiled only for the shapes of --compiled (compile time)"
    return ""


def summarize(results: pd.DataFrame, flops_per_second: float) -> pd.DataFrame:
    """One row per shape: per-edge times of every backend, the FLOP floor, and the ratios that the targets use.

    ``*_with_radial`` adds the radial last layer's time to the backends that do not include it, so that every
    backend is compared on the same work as ``equinb_fused`` and the floor.

    Parameters
    ----------
    results
        Rows of one thread count from :func:`measure`.
    flops_per_second
        The machine's rate for the floor (:func:`equinb.bench.harness.sgemm_rate`).

    Returns
    -------
    pandas.DataFrame
    """
    ok = results[results["status"] == "ok"]
    table = ok.pivot_table(index=["L", "h"], columns="backend", values="us_per_edge", sort=False)
    flops = results.groupby(["L", "h"], sort=False)["fwd_bwd_flops"].first()
    table["floor"] = flops / flops_per_second * 1e6
    if "tp_fwd_bwd_flops" in results:
        tp_flops = results.groupby(["L", "h"], sort=False)["tp_fwd_bwd_flops"].first()
        table["tp_floor"] = tp_flops / flops_per_second * 1e6
        if "equinb" in table:
            table["equinb_over_tp_floor"] = table["equinb"] / table["tp_floor"]
    for name in ("e3nn", "e3nn_compiled", "cueq", "equinb_torch"):
        if name in table:
            table[f"{name}_over_equinb"] = table[name] / table["equinb"]
    if "radial" in table:
        for name in ("e3nn", "e3nn_compiled", "cueq", "equinb"):
            if name in table:
                table[f"{name}_with_radial"] = table[name] + table["radial"]
        if "equinb_fused" in table:
            table["equinb_fused_over_floor"] = table["equinb_fused"] / table["floor"]
    return table.reset_index()


def peak_memory_bytes(backend: str, L: Sequence[int], h: int, edges: int = EDGES) -> int:
    """Peak resident memory added by one forward + backward of ``backend``, measured in a fresh process.

    The child builds the module and inputs, records its peak RSS, runs the case once and reports the increase
    (``ru_maxrss``), so allocations of other cases cannot hide it.

    Parameters
    ----------
    backend
        One of :data:`BACKENDS`.
    L, h
        The shape.
    edges
        Edges of the call.

    Returns
    -------
    int
        Bytes (Linux reports ``ru_maxrss`` in KiB).
    """
    code = (
        "import resource, torch\n"
        "from equinb.bench.tp import case_inputs, case_call\n"
        f"tensors = case_inputs({tuple(L)!r}, {h}, {edges})\n"
        f"call = case_call({backend!r}, {tuple(L)!r}, {h}, tensors)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "call()\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return int(output.strip().splitlines()[-1]) * 1024  # ru_maxrss is in KiB on Linux

