"""equinb: the package behind the book *Deconstructing equivariant representations*.

Modules (imports flow one way): :mod:`equinb.so3` (orders, irreps, exact harmonics, coupling) at the bottom;
:mod:`equinb.sph` (generated spherical-harmonic kernels) on it; the model, data, run, training and analysis
modules above; :mod:`equinb.runner` executes the book's chapters through papermill.
"""

__version__ = "0.1.0"
