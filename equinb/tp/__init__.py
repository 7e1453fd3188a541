"""The per-sample fully connected tensor product: exact sparse coefficients, grouped batched products, e3nn's API."""

from .api import TP_BACKENDS, FullyConnectedTensorProduct, cueq_available, resolve_backend
from .instructions import IRREP_NORMALIZATIONS, PATH_NORMALIZATIONS, PathSpec, fully_connected_paths, weight_numel

__all__ = [
    "IRREP_NORMALIZATIONS",
    "PATH_NORMALIZATIONS",
    "TP_BACKENDS",
    "FullyConnectedTensorProduct",
    "PathSpec",
    "cueq_available",
    "fully_connected_paths",
    "resolve_backend",
    "weight_numel",
]
