"""Test-wide settings: Triton kernels run through its interpreter on the CPU (set before triton is imported)."""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
