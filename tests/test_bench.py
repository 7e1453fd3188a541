"""The benchmark harness and the spherical-harmonic sweep (:mod:`equinb.bench`, through the names it exports, and
:mod:`equinb.bench.harness`): output format on a tiny run, roofline and targets on known data, the allocator
option.

Nothing here measures speed; the timings of the tiny run are only checked for shape and consistency.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import torch

from equinb import bench
from equinb.allocator import keep_freed_memory
from equinb.bench import harness


@pytest.fixture(scope="module")
def tiny_run() -> Iterator[pd.DataFrame]:
    """N = 100, one order set, eager backends, 2 repeats; triton asked for on the CPU (must be skipped)."""
    threads, omp = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    bench.configure_threads(1)
    try:
        yield bench.run_benchmark(sizes=[100], sets=[(0, 3, 4, 5, 6)], backends=["torch", "e3nn", "triton"],
                                  repeats=2, device="cpu", min_time=0.0, warmup=1)
    finally:
        torch.set_num_threads(threads)
        if omp is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = omp


def test_run_columns_and_statistics(tiny_run):
    assert list(tiny_run.columns) == list(bench.COLUMNS)
    ok = tiny_run[tiny_run["status"] == "ok"]
    assert sorted(ok["backend"].unique()) == ["e3nn", "torch"]
    assert set(ok["mode"]) == set(bench.MODES) and set(ok["set"]) == {"0,3-6"}
    assert (ok["ns_per_point"] > 0).all()
    assert (ok["q1_s"] <= ok["median_s"]).all() and (ok["median_s"] <= ok["q3_s"]).all()
    np.testing.assert_allclose(ok["iqr_s"], ok["q3_s"] - ok["q1_s"])
    assert (ok["iqr_s"] >= 0).all()
    np.testing.assert_allclose(ok["ns_per_point"], ok["median_s"] / ok["n"].astype(float) * 1e9)
    assert (ok["outputs"] == 1 + 7 + 9 + 11 + 13).all()
    assert (ok["max_abs_err"] < 1e-3).all()  # same harmonics and gradients as e3nn
    assert not ok["preallocated"].any()


def test_unavailable_backend_is_a_skipped_row(tiny_run):
    skipped = tiny_run[tiny_run["status"] == "skipped"]
    assert list(skipped["backend"]) == ["triton"]
    assert "CUDA" in skipped["reason"].iloc[0]


def test_missing_sphericart_and_constant_order_are_skipped(monkeypatch):
    monkeypatch.setitem(sys.modules, "sphericart.torch", None)  # as if the optional extra were not installed
    frame = bench.run_benchmark(sizes=[50], sets=[(0,)], backends=["sphericart", "torch"], repeats=1, min_time=0.0)
    sphericart = frame[frame["backend"] == "sphericart"]
    assert list(sphericart["status"]) == ["skipped"] and "pip install" in sphericart["reason"].iloc[0]
    torch_rows = frame[frame["backend"] == "torch"].set_index("mode")
    assert torch_rows.loc["fwd", "status"] == "ok"
    assert torch_rows.loc["fwd+bwd", "status"] == "skipped"
    assert torch_rows.loc["fwd+bwd", "reason"] == bench.CONSTANT_ORDER_NOTE


def test_results_files_round_trip(tiny_run, tmp_path):
    header = bench.machine_header("cpu", torch.float32, {"repeats": 2}, {"dynamic_points": True},
                                  copy_bandwidth=1e10, skipped=bench.skipped_cases(tiny_run), command="test")
    assert set(header) == set(bench.HEADER_KEYS)
    assert header["threads"] == 1 and header["dtype"] == "float32" and header["device"] == "cpu"
    assert header["skipped"][0]["backend"] == "triton"
    csv_path, json_path = bench.write_results(tiny_run, header, tmp_path / "sph_cpu")
    assert csv_path.name == "sph_cpu.csv" and json_path.name == "sph_cpu.json"
    frame, read_header = bench.read_results(csv_path)
    assert list(frame.columns) == list(bench.COLUMNS) and len(frame) == len(tiny_run)
    assert read_header == header
    assert frame.loc[frame["status"] == "ok", "set"].eq("0,3-6").all()


def test_set_labels_round_trip():
    for orders in bench.default_sets():
        assert bench.parse_set(bench.set_label(orders)) == orders
    assert bench.set_label(range(11)) == "0-10" and bench.set_label([0, 3, 4, 5, 6]) == "0,3-6"
    assert bench.parse_set("0-12") == tuple(range(13))
    with pytest.raises(ValueError, match=r"^order 13 is above the highest supported order 12$"):
        bench.parse_set("0,13")
    with pytest.raises(ValueError, match=r"^order 2 is given more than once$"):
        bench.parse_set("0-2,2")
    with pytest.raises(ValueError, match=r"^order set 'a,b' is not like '10', '0-10' or '0,3-6'$"):
        bench.parse_set("a,b")


def test_roofline_bytes_and_time():
    assert bench.bytes_per_point([10], "float32", "fwd") == (3 + 21) * 4
    assert bench.bytes_per_point(range(11), "float32", "fwd") == (3 + 121) * 4
    assert bench.bytes_per_point([10], torch.float64, "fwd+bwd") == (3 + 21 + 3 + 21 + 3) * 8
    assert bench.roofline_ns_per_point([10], 96e9, "float32", "fwd") == pytest.approx(1.0)
    with pytest.raises(ValueError):
        bench.roofline_ns_per_point([10], 0.0)


def _synthetic(times: dict[tuple[str, str, str, str, int], float]) -> pd.DataFrame:
    """Results rows with the given ns per point for ``(device, backend, set, mode, n)``."""
    rows = [{**dict.fromkeys(bench.COLUMNS, math.nan), "device": device, "dtype": "float32", "backend": backend,
             "set": label, "mode": mode, "n": n, "ns_per_point": ns, "status": "ok"}
            for (device, backend, label, mode, n), ns in times.items()]
    return pd.DataFrame(rows, columns=list(bench.COLUMNS))


def test_targets_on_known_ratios():
    times = {}
    for n in (10_000, 1_000_000):
        for label in ("0,3-6", "10"):
            for mode in bench.MODES:
                times |= {("cpu", "torch-compile", label, mode, n): 100.0,
                          ("cpu", "e3nn-compile", label, mode, n): 200.0, ("cpu", "sphericart", label, mode, n): 50.0}
        for mode in bench.MODES:
            times |= {("cpu", "torch-compile", "0-10", mode, n): 100.0,
                      ("cpu", "e3nn-compile", "0-10", mode, n): 100.0}
        times[("cpu", "sphericart", "0-10", "fwd", n)] = 70.0
    bandwidth = 1e12
    bound = bench.roofline_ns_per_point(range(11), bandwidth, "float32", "fwd")  # 0.496 ns
    times[("cuda", "triton", "0-10", "fwd", 1_000_000)] = 2 * bound
    times[("cuda", "e3nn-compile", "0-10", "fwd", 1_000_000)] = 4 * bound
    targets = bench.evaluate_targets(_synthetic(times), gpu_bandwidth=bandwidth)

    assert len(targets) == 25
    sparse = targets[(targets["device"] == "cpu") & targets["set"].isin(["0,3-6", "10"])]
    assert len(sparse) == 16
    against_e3nn = sparse[sparse["target"].str.endswith("e3nn-compile")]
    assert (against_e3nn["measured"] == 2.0).all() and (against_e3nn["met"] == "yes").all()
    against_sphericart = sparse[sparse["target"].str.endswith("sphericart")]
    assert (against_sphericart["measured"] == 0.5).all() and (against_sphericart["met"] == "no").all()
    full = targets[(targets["device"] == "cpu") & (targets["set"] == "0-10")]
    assert (full.loc[full["target"].str.contains("e3nn"), "met"] == "yes").all()  # equal time is "at least as fast"
    within = full[full["target"].str.contains("1.5x")]
    np.testing.assert_allclose(within["measured"], 0.7)
    assert (within["met"] == "yes").all()
    gpu = targets[targets["device"] == "cuda"].set_index("target")
    assert gpu.loc["triton reaches half the memory-bandwidth bound", "measured"] == pytest.approx(0.5)
    assert gpu.loc["triton reaches half the memory-bandwidth bound", "met"] == "yes"
    assert gpu.loc["triton faster than e3nn-compile", "met"] == "yes"
    assert gpu.loc["triton faster than sphericart", "met"] == "not measured"


def test_ratio_table():
    frame = _synthetic({("cpu", "torch-compile", "10", "fwd", 1000): 50.0, ("cpu", "e3nn", "10", "fwd", 1000): 150.0})
    table = bench.ratio_table(frame)
    assert table["e3nn / torch-compile"].iloc[0] == pytest.approx(3.0)


def test_single_order_and_set_cost_ratios():
    times = {("cpu", backend, str(l), "fwd", n): (10.0 + l) * (1 if backend == "torch" else l + 1)
             for backend in ("torch", "e3nn") for l in range(11) for n in (100, 1000)}
    times |= {("cpu", "torch", "0-10", "fwd", 1000): 100.0, ("cpu", "e3nn", "0-10", "fwd", 1000): 220.0}
    frame = _synthetic(times)
    ratios = bench.single_order_ratios(frame, [("torch", "e3nn"), ("torch", "sphericart")])
    assert list(ratios.columns) == ["e3nn / torch (N = 1,000)"]
    np.testing.assert_allclose(ratios.iloc[:, 0], np.arange(1, 12))
    costs = bench.set_cost_ratio(frame, "10")
    assert costs.loc[("torch", "fwd"), 1000] == pytest.approx(0.2)
    assert costs.loc[("e3nn", "fwd"), 1000] == pytest.approx(1.0)
    assert bench.set_cost_ratio(frame, "0,3-6").empty


def test_allocator_option_default_and_failure(monkeypatch):
    parser = argparse.ArgumentParser()
    harness.add_allocator_option(parser, default="keep")
    args = parser.parse_args([])
    assert args.allocator == "keep" and parser.parse_args(["--allocator", "default"]).allocator == "default"
    harness.apply_allocator(parser, args.allocator)
    assert keep_freed_memory() is keep_freed_memory() is True  # Linux with glibc, as on CI; idempotent
    monkeypatch.setattr(harness, "keep_freed_memory", lambda: False)  # as on macOS, Windows or musl
    with pytest.raises(SystemExit):
        harness.apply_allocator(parser, "keep")
    harness.apply_allocator(parser, "default")  # glibc's default needs nothing


def test_compiled_path_verdicts_on_known_timings():
    # (set, mode) -> (ours, eager torch, e3nn-compile) median seconds; quartiles at +-2 % except where noted
    cases = {("10", "fwd"): (1.0, 2.0, 3.0), ("0,3-6", "fwd"): (1.0, 1.05, 0.5), ("0-12", "fwd+bwd"): (2.0, 1.0, 2.5)}
    rows = []
    for (label, mode), times in cases.items():
        for backend, median in zip(("torch-compile", "torch", "e3nn-compile"), times):
            spread = 0.3 if (label, backend) == ("0-12", "e3nn-compile") else 0.02
            rows.append({**dict.fromkeys(bench.COLUMNS, math.nan), "device": "cpu", "dtype": "float32",
                         "backend": backend, "set": label, "mode": mode, "n": 1000, "status": "ok",
                         "median_s": median, "q1_s": median * (1 - spread), "q3_s": median * (1 + spread),
                         "ns_per_point": median / 1000 * 1e9, "first_call_s": median + 7.0})
    table = bench.compiled_path_table(pd.DataFrame(rows, columns=list(bench.COLUMNS)))
    assert list(table["set"]) == ["10", "10", "0,3-6", "0,3-6", "0-12", "0-12"]  # the order of COMPILED_SETS
    verdicts = {(r.set, r.other): r.verdict for r in table.itertuples()}
    assert verdicts == {("10", "torch"): "faster", ("10", "e3nn-compile"): "faster",
                        ("0,3-6", "torch"): "tie",  # 1.05: inside the tie factor
                        ("0,3-6", "e3nn-compile"): "slower",
                        ("0-12", "torch"): "slower",
                        ("0-12", "e3nn-compile"): "tie"}  # 1.25, but the quartile band reaches below 1
    row = table[(table["set"] == "10") & (table["other"] == "e3nn-compile")].iloc[0]
    assert row["ratio"] == pytest.approx(3.0) and row["compile_s"] == pytest.approx(7.0)
    assert row["ratio_low"] == pytest.approx(3.0 * 0.98 / 1.02)
    assert row["ratio_high"] == pytest.approx(3.0 * 1.02 / 0.98)
    assert bench.COMPILED_SETS == ("10", "0,3-6", "0-10", "0-12")
    frame = pd.DataFrame(rows, columns=list(bench.COLUMNS))
    larger = frame[frame["set"] == "10"].assign(n=10_000)
    table = bench.compiled_path_table(pd.concat([frame, larger], ignore_index=True))
    compile_s = table[table["set"] == "10"].set_index(["n", "other"])["compile_s"]
    assert compile_s[1000].eq(7.0).all() and compile_s[10_000].isna().all()  # one dynamic graph: compiled once
    with pytest.raises(ValueError, match=r"^3 repeated \(backend, dtype, set, mode, n\) rows"):
        bench.compiled_path_table(pd.concat([frame, frame[frame["set"] == "10"]], ignore_index=True))
