"""Decoupled real spherical harmonics: sympy derivation, generated PyTorch and Triton kernels, drop-in API.

:mod:`.derive` builds the factored polynomials and their gradients, :mod:`.ladder` writes each gradient in the
harmonics one order down (the PyTorch backward), :mod:`.opcount` counts their operations
against e3nn's recursion, :mod:`.codegen` prints them as code (``_generated_torch.py``,
``_generated_triton.py``), :mod:`.api` exposes :func:`spherical_harmonics` and :class:`SphericalHarmonics`,
and :mod:`.accuracy` measures errors against a 50-digit reference.
"""

from .api import SphericalHarmonics, spherical_harmonics

__all__ = ["SphericalHarmonics", "spherical_harmonics"]
