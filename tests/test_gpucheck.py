"""The GPU check on a machine without a GPU: one line and exit 0, argument handling, and the summary of results
in the CSV schemas the parts write."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from equinb import gpucheck


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA path")
def test_without_cuda_one_line_and_exit_0(capsys, tmp_path):
    assert gpucheck.main(["--out", str(tmp_path / "gpu")]) == 0
    out = capsys.readouterr().out
    assert out == "gpu-check: no CUDA device here (torch.cuda.is_available() is False); nothing to do\n"
    assert not (tmp_path / "gpu").exists()


def test_bad_arguments_are_refused(capsys):
    with pytest.raises(SystemExit) as stop:
        gpucheck.main(["--parts", "kernels"])
    assert stop.value.code == 2 and "invalid choice: 'kernels'" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"^unknown gpu-check part\(s\) kernels; parts are triton, sph, tp, train$"):
        gpucheck.run(["kernels"])


def test_summary_reads_every_part():
    results = {
        "triton": pd.DataFrame([{"passed": True, "returncode": 0, "summary": "12 passed", "seconds": 3.0}]),
        "sph": pd.DataFrame([{"set": "10", "mode": "fwd", "n": 10_000, "backend": b, "ns_per_point": v,
                              "status": "ok"} for b, v in [("triton", 0.5), ("e3nn", 2.0)]]),
        "tp": pd.DataFrame([{"L": "0-2", "h": 32, "backend": b, "us_per_edge": v, "status": "ok"}
                            for b, v in [("equinb", 1.5), ("e3nn", 6.0)]]),
        "train": pd.DataFrame([{"L": "0-2", "h": 32, "tp_backend": b, "molecules_per_s": v}
                               for b, v in [("torch", 900.0), ("e3nn", 300.0)]]),
    }
    text = "\n".join(gpucheck.summary_lines(results))
    assert "triton tests compiled: PASSED (12 passed)" in text
    for needle in ("ns per point", "us per edge", "molecules per second", "900.0", "6.0"):
        assert needle in text
    assert list(results["triton"].columns) == list(gpucheck.TRITON_COLUMNS)
