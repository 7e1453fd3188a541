"""Angular-momentum helpers: sets of orders, irreps, exact real spherical harmonics, coupling and paths."""

from .harmonics import real_spherical_harmonic, spherical_harmonics_exact
from .orders import L_MAX, check_order, check_orders, validate_L
from .irreps import feature_slices, irreps_for, parity, sh_irreps
from .coupling import (
    clebsch_gordan_numeric,
    clebsch_gordan_real,
    complex_to_real,
    wigner_3j_numeric,
    wigner_3j_real,
    wigner_3j_sparse,
)
from .evaluate import evaluate_harmonics
from .paths import (
    Path,
    parity_allowed,
    path_allowed,
    path_count,
    tensor_product_paths,
    tp_weight_count,
    triangle_allowed,
)

__all__ = [
    "L_MAX",
    "feature_slices",
    "irreps_for",
    "parity",
    "real_spherical_harmonic",
    "sh_irreps",
    "spherical_harmonics_exact",
    "validate_L",
    "Path",
    "check_order",
    "check_orders",
    "clebsch_gordan_numeric",
    "clebsch_gordan_real",
    "complex_to_real",
    "evaluate_harmonics",
    "parity_allowed",
    "path_allowed",
    "path_count",
    "tensor_product_paths",
    "tp_weight_count",
    "triangle_allowed",
    "wigner_3j_numeric",
    "wigner_3j_real",
    "wigner_3j_sparse",
]
