"""Test-wide settings: Triton kernels run through its interpreter on the CPU (set before triton is imported)."""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture
def float64_default():
    """Float64 as torch's default dtype for one test: e3nn builds its Wigner-D generators and coupling constants
    in the default dtype, and float32 would limit them to ~1e-8."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)
