"""Tests of :mod:`equinb.bench.tp`: the FLOP model against counts taken from e3nn, the summary arithmetic on
constructed timings, shape parsing and the study's shapes."""

from __future__ import annotations

import argparse

import pandas as pd
import pytest
import torch
from e3nn import o3

from equinb.bench.tp import TABLE1_SHAPES, case_call, case_inputs, flop_model, parse_shape, shape_argument, summarize


def test_flop_model_counts_from_e3nn():
    """nnz of e3nn's own Wigner-3j tensors, e3nn's weight_numel and path count, the issue's published floor."""
    L, h = (0, 1, 2), 32
    irreps = o3.Irreps("32x0e+32x1o+32x2e")
    reference = o3.FullyConnectedTensorProduct(irreps, "1x0e+1x1o+1x2e", irreps, shared_weights=False)
    nnz = sum(int((o3.wigner_3j(irreps[i.i_in1].ir.l, [0, 1, 2][i.i_in2], irreps[i.i_out].ir.l).abs() > 1e-12)
                   .sum()) for i in reference.instructions)
    model = flop_model(L, h)
    assert model["paths"] == len(reference.instructions) == 11
    assert model["weight_numel"] == reference.weight_numel
    assert model["coupling_macs"] == h * nnz
    assert model["weight_macs"] == h * h * 35  # sum of 2 lo + 1 over the 11 paths
    # the floor for this shape: 45 us per edge at 53 GFLOP/s
    assert model["fwd_bwd_flops"] / 53e9 * 1e6 == pytest.approx(45, abs=0.5)
    # the tensor product alone (no radial layer): the 2.7 us floor for this shape at ~80 GFLOP/s
    assert model["tp_fwd_bwd_flops"] == 6 * (h * nnz + h * h * 35)
    assert model["tp_fwd_bwd_flops"] / 80e9 * 1e6 == pytest.approx(2.7, rel=0.1)


def test_summary_ratios_on_constructed_timings():
    rows = [{"L": "0-2", "h": 4, "backend": b, "status": "ok", "us_per_edge": t, "fwd_bwd_flops": 6e6,
             "tp_fwd_bwd_flops": 2e6}
            for b, t in [("equinb", 10.0), ("equinb_fused", 12.0), ("equinb_torch", 40.0), ("e3nn", 50.0),
                         ("radial", 3.0)]]
    rows.append({"L": "0-2", "h": 4, "backend": "cueq", "status": "skipped", "fwd_bwd_flops": 6e6,
                 "tp_fwd_bwd_flops": 2e6})
    table = summarize(pd.DataFrame(rows), flops_per_second=1e12).iloc[0]
    assert table["floor"] == pytest.approx(6.0)
    assert table["e3nn_over_equinb"] == pytest.approx(5.0)
    assert table["e3nn_with_radial"] == pytest.approx(53.0)
    assert table["equinb_fused_over_floor"] == pytest.approx(2.0)
    assert table["tp_floor"] == pytest.approx(2.0) and table["equinb_over_tp_floor"] == pytest.approx(5.0)
    assert table["equinb_torch_over_equinb"] == pytest.approx(4.0)
    assert "cueq" not in table


def test_parse_shape():
    assert parse_shape("0,3-6/16") == ((0, 3, 4, 5, 6), 16)
    with pytest.raises(ValueError, match=r"^a shape is orders/h such as 0,1,2/32, got '0,1,2'$"):
        parse_shape("0,1,2")
    assert shape_argument("0-2/32") == ((0, 1, 2), 32)
    with pytest.raises(argparse.ArgumentTypeError, match=r"^order 13 is above the highest supported order 12$"):
        shape_argument("0,13/4")


def test_table1_shapes_are_the_studys_conv_blocks():
    """The (L, h) of the study's Table 1 (arXiv:2410.08131), each once, in the table's order."""
    assert TABLE1_SHAPES == (
        ((0, 1, 2), 32), ((0, 1, 2, 4), 32), ((0, 1, 2, 6), 32), ((0, 1, 2, 8), 32), ((0, 1, 2, 10), 32),
        ((0, 1, 2, 3, 4), 16), ((0, 1, 2, 3, 4, 5, 6), 16), ((0, 1, 2, 3, 4, 5, 6, 7, 8), 16), ((0, 3, 4, 5, 6), 16),
    )


def test_cases_compute_gradients_of_every_input():
    tensors = case_inputs((0, 1), 2, edges=5)
    for backend in ("equinb", "equinb_fused", "equinb_torch", "e3nn", "radial"):
        grads = case_call(backend, (0, 1), 2, {k: v.clone() for k, v in tensors.items()})()
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
    with pytest.raises(ValueError, match=r"unknown tensor-product benchmark backend 'fast'"):
        case_call("fast", (0, 1), 2, tensors)
