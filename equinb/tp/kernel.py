"""Build and load the fused CPU kernel (``csrc/fused.cpp``) once per machine, on first use.

The C++ source is compiled with ``torch.utils.cpp_extension`` for the CPU it runs on (``-march=native``) into
torch's extension cache (``$TORCH_EXTENSIONS_DIR``, by default ``~/.cache/torch_extensions``), under a name that
hashes the source, the flags, torch's version and the CPU's instruction sets: a changed source or another
machine sharing the cache gets its own build. A build takes ~30 s; later processes load it in milliseconds.

OpenMP: ``at::parallel_for`` in the kernel is torch's inline OpenMP loop, so the source is compiled with
``-fopenmp`` but not linked against an OpenMP runtime: its symbols resolve to the one torch already loaded, and
the kernel runs on torch's intra-op threads (``torch.set_num_threads``).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import torch

#: The kernel's source.
SOURCE = Path(__file__).with_name("csrc") / "fused.cpp"
#: Compiler flags of the build.
CFLAGS = ("-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-fno-trapping-math", "-fno-signed-zeros",
          "-fassociative-math")


def _cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    return next((line for line in text.splitlines() if line.startswith("flags")), "")


def extension_name() -> str:
    """The build's name: ``equinb_tp_`` and a hash of the source, flags, torch version and CPU features."""
    digest = hashlib.sha256()
    for part in (SOURCE.read_bytes(), " ".join(CFLAGS).encode(), torch.__version__.encode(), _cpu_flags().encode()):
        digest.update(part)
    return f"equinb_tp_{digest.hexdigest()[:12]}"


@functools.cache
def _load() -> tuple[Any, str]:
    from torch.utils import cpp_extension

    path = os.environ.get("PATH", "")
    try:
        if shutil.which("ninja") is None:  # the `ninja` wheel's binary, when the venv's bin is not on PATH
            import ninja

            os.environ["PATH"] = f"{ninja.BIN_DIR}{os.pathsep}{path}"
        cpp_extension.load(extension_name(), [str(SOURCE)], extra_cflags=list(CFLAGS), is_python_module=False,
                           verbose=False)
    except Exception as error:  # noqa: BLE001 - any build failure means: use the torch path, and say why
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return None, f"the fused CPU kernel could not be built ({first})"
    finally:
        os.environ["PATH"] = path
    return torch.ops.equinb_tp, ""


def fused_ops() -> Any | None:
    """``torch.ops.equinb_tp`` (``fused_forward``, ``fused_backward``), building it on first call; ``None`` if
    it cannot be built here (:func:`unavailable_reason` says why)."""
    return _load()[0]


def unavailable_reason() -> str:
    """Why :func:`fused_ops` is ``None`` (one line), or ``""`` when the kernel is loaded."""
    return _load()[1]
