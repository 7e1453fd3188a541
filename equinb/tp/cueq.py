"""The ``cueq`` backend: NVIDIA's cuEquivariance (``cuequivariance-torch``, optional), with e3nn's weight layout.

``cuequivariance_torch.FullyConnectedTensorProduct`` over ``O3`` irreps with the ``mul_ir`` layout (e3nn's: each
irrep block ``[mul, 2l + 1]``) has e3nn's paths in e3nn's order, the same per-path weight blocks ``[u, v, w]``
and the same normalisation: the weight mapping from e3nn's layout is the identity. ``tests/test_tp_api.py``
proves it against e3nn (through cuEquivariance's PyTorch fallback on CPU), path by path, for the model's irreps and
for general ones. On CUDA cuEquivariance picks its own kernels.
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from .instructions import PathSpec, weight_numel


class CueqTensorProduct(nn.Module):
    """cuEquivariance's fully connected tensor product taking e3nn-layout inputs and per-sample weights.

    Parameters
    ----------
    irreps_in1, irreps_in2, irreps_out
        e3nn irreps.
    paths
        The paths of :func:`equinb.tp.instructions.fully_connected_paths` (e3nn's default normalisations).

    Raises
    ------
    ValueError
        If cuEquivariance's module does not have e3nn's number of weights for these irreps.
    """

    def __init__(
        self, irreps_in1: o3.Irreps, irreps_in2: o3.Irreps, irreps_out: o3.Irreps, paths: tuple[PathSpec, ...]
    ) -> None:
        super().__init__()
        import cuequivariance as cue
        import cuequivariance_torch as cuet

        self.module = cuet.FullyConnectedTensorProduct(
            *(cue.Irreps("O3", str(irreps)) for irreps in (irreps_in1, irreps_in2, irreps_out)),
            layout=cue.mul_ir,
            shared_weights=False,
            internal_weights=False,
        )
        if self.module.weight_numel != weight_numel(paths):
            raise ValueError(
                f"cuEquivariance has {self.module.weight_numel} weights for {irreps_in1} x {irreps_in2} -> "
                f"{irreps_out}, e3nn {weight_numel(paths)}: use backend='torch'"
            )

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """e3nn's ``forward(x1, x2, weight)`` on flat ``(E, dim)`` inputs (the module broadcasts and flattens)."""
        return self.module(x1, x2, weight)
