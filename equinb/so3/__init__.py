"""Angular-momentum helpers: sets of orders, irreps, exact real spherical harmonics, coupling and paths."""

from .harmonics import real_spherical_harmonic, spherical_harmonics_exact
from .irreps import L_MAX, feature_slices, irreps_for, parity, sh_irreps, validate_L

__all__ = [
    "L_MAX",
    "feature_slices",
    "irreps_for",
    "parity",
    "real_spherical_harmonic",
    "sh_irreps",
    "spherical_harmonics_exact",
    "validate_L",
]
