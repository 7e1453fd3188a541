"""The GPU check (``make gpu-check``): compiled Triton tests, spherical harmonics, tensor products and training
throughput on a CUDA device, into ``benchmarks/results/gpu/`` (see :mod:`equinb.gpucheck`). Without CUDA it says so
in one line and exits 0.

    .venv/bin/python benchmarks/gpu_check.py                 # everything, about 5-8 minutes on one GPU
    .venv/bin/python benchmarks/gpu_check.py --parts tp train
"""

import sys

from equinb.gpucheck import main

if __name__ == "__main__":
    sys.exit(main())
