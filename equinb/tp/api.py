"""``FullyConnectedTensorProduct``: a drop-in for e3nn's class with per-sample weights, on several backends.

Backends:

* ``"fused"`` — :mod:`equinb.tp.fused`: on the CPU (float32, float64) one C++ pass over the edges, forward and
  backward, with no per-path arrays; on any other device or dtype, or where the kernel cannot be built (a
  warning says why, once), the ``"torch"`` path. Second derivatives come from the ``"torch"`` path, exactly.
* ``"torch"`` — :mod:`equinb.tp.contraction`: exact sparse coefficients grouped into a few batched matrix
  products; CPU and CUDA; derivatives of every order exact (autograd's own).
* ``"e3nn"`` — delegates to ``e3nn.o3.FullyConnectedTensorProduct`` (the reference).
* ``"cueq"`` — NVIDIA's cuEquivariance (``cuequivariance-torch``, optional), which takes e3nn's weight layout
  as it is (:mod:`equinb.tp.cueq`).
* ``"auto"`` — :func:`resolve_backend`: ``"fused"``, proven equal to e3nn and the fastest on CPU here.

The plan's constant tensors (coupling coefficients, weight-block indices, the fused kernel's tables) are
non-persistent buffers: they move with ``.to(device)``, so ``forward`` copies nothing between devices. Their
floating-point values are stored as integer bit patterns (``float64`` as ``int64``, ``float32`` as ``int32``,
read back with a zero-copy ``Tensor.view(dtype)``), so ``.to(dtype)``/``.double()`` of a model leaves the
coefficients exact in both precisions.

Whatever the backend, the module has e3nn's interface and state: ``weight_numel``, the weight layout and order,
``instructions``, and the state-dict entries ``weight`` (empty) and ``output_mask``, so a model's parameter
counts and checkpoints do not depend on it. e3nn's own module may also store its constant coupling tensors
(``_compiled_main_*`` entries); loading ignores them, and a plain e3nn module loads our state dicts with
``strict=False``.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch
from e3nn import o3
from torch import nn

from .contraction import ContractionPlan, GroupedWeights, contract
from .fused import FUSED_DTYPES, FusedFactoredProduct, FusedProduct, Workspace, fused_tables
from .instructions import as_irreps, fully_connected_paths, weight_numel
from .kernel import fused_ops, unavailable_reason

#: Prefix of the constant buffers e3nn's module keeps in its state dict (ignored when loading).
E3NN_CONSTANTS_PREFIX = "_compiled_main"
#: Names accepted by ``backend``.
TP_BACKENDS = ("auto", "fused", "torch", "e3nn", "cueq")
_warned_unfused = False


def cueq_available() -> bool:
    """Whether ``cuequivariance_torch`` can be imported."""
    try:
        import cuequivariance_torch  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: str) -> str:
    """The concrete backend ``backend`` names; ``"auto"`` becomes one.

    ``"auto"`` picks ``"fused"``: it equals e3nn (tests) and is the fastest measured on CPU
    (``benchmarks/tp_bench.py``); off the CPU it runs the ``"torch"`` path. No GPU measurement has chosen
    otherwise yet (none was available).

    Raises
    ------
    ValueError
        If ``backend`` is not in :data:`TP_BACKENDS`, or is ``"cueq"`` without ``cuequivariance-torch``.
    """
    if backend not in TP_BACKENDS:
        raise ValueError(f"tp backend must be one of {TP_BACKENDS}, got {backend!r}")
    if backend == "cueq" and not cueq_available():
        raise ValueError("tp backend 'cueq' needs cuequivariance-torch: pip install 'equinb[cueq]'")
    return "fused" if backend == "auto" else backend


class Instruction(NamedTuple):
    """One path as e3nn's ``Instruction`` describes it (same field names)."""

    i_in1: int
    i_in2: int
    i_out: int
    connection_mode: str
    has_weight: bool
    path_weight: float
    path_shape: tuple[int, int, int]


def _flatten(batch: torch.Size, *tensors: torch.Tensor) -> list[torch.Tensor]:
    """Broadcast ``tensors`` to the batch shape ``batch`` and flatten it: ``(prod(batch), last dim)`` each."""
    count = batch.numel()
    return [tensor.expand(*batch, tensor.shape[-1]).reshape(count, tensor.shape[-1]) for tensor in tensors]


class FullyConnectedTensorProduct(nn.Module):
    """Fully connected tensor product ``irreps_in1 x irreps_in2 -> irreps_out`` with per-sample weights.

    Same paths, ``weight_numel``, weight layout and normalisation as ``e3nn.o3.FullyConnectedTensorProduct(...,
    shared_weights=False)``.

    Parameters
    ----------
    irreps_in1, irreps_in2, irreps_out
        Irreps (or strings), taken as given, as e3nn does.
    shared_weights
        Must be ``False``: weights come with every sample (the model's per-edge radial weights).
    irrep_normalization, path_normalization
        e3nn's options (defaults ``"component"`` and ``"element"``, e3nn's defaults).
    backend
        One of :data:`TP_BACKENDS`.

    Raises
    ------
    ValueError
        On irreps that do not parse, an unknown normalisation or backend, or ``shared_weights=True``.
    """

    def __init__(
        self,
        irreps_in1: o3.Irreps | str,
        irreps_in2: o3.Irreps | str,
        irreps_out: o3.Irreps | str,
        *,
        shared_weights: bool = False,
        irrep_normalization: str = "component",
        path_normalization: str = "element",
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if shared_weights:
            raise ValueError(
                "equinb.tp supports per-sample weights only (shared_weights=False); "
                "use e3nn.o3.FullyConnectedTensorProduct for shared weights"
            )
        self.irreps_in1 = as_irreps(irreps_in1, "irreps_in1")
        self.irreps_in2 = as_irreps(irreps_in2, "irreps_in2")
        self.irreps_out = as_irreps(irreps_out, "irreps_out")
        self.irrep_normalization = irrep_normalization
        self.path_normalization = path_normalization
        self.paths = fully_connected_paths(
            self.irreps_in1, self.irreps_in2, self.irreps_out, irrep_normalization, path_normalization
        )
        self.weight_numel = weight_numel(self.paths)
        self.backend = resolve_backend(backend)
        self.shared_weights = False
        self.internal_weights = False
        self.register_buffer("weight", torch.Tensor())
        self.register_buffer("output_mask", self._output_mask())
        self._plan = ContractionPlan(self.irreps_in1, self.irreps_in2, self.irreps_out, self.paths)
        self._register_plan()
        self._workspace = Workspace()
        self._delegate = self._make_delegate()

    def _register_plan(self) -> None:
        """The plan's arrays as non-persistent buffers (floats as integer bit patterns; module docstring)."""
        for g, matrix in enumerate(self._plan.coefficients):
            exact = torch.from_numpy(matrix)
            self.register_buffer(f"_coupling64_{g}", exact.view(torch.int64), persistent=False)
            self.register_buffer(f"_coupling32_{g}", exact.float().view(torch.int32), persistent=False)
        for g, group in enumerate(self._plan.by_out):
            self.register_buffer(f"_blocks_{g}", torch.from_numpy(group.weight_blocks), persistent=False)
        for name, array in fused_tables(self._plan).items():
            tensor = torch.from_numpy(array)
            self.register_buffer(f"_fused_{name}", tensor.view(torch.int64) if name == "nnz_value" else tensor,
                                 persistent=False)

    def _coefficients(self, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        """The coupling matrices of the torch path in ``dtype`` (views of the buffers for float64 and float32)."""
        count = len(self._plan.coefficients)
        if dtype == torch.float64:
            return tuple(getattr(self, f"_coupling64_{g}").view(torch.float64) for g in range(count))
        single = tuple(getattr(self, f"_coupling32_{g}").view(torch.float32) for g in range(count))
        return single if dtype == torch.float32 else tuple(matrix.to(dtype) for matrix in single)

    def _blocks(self) -> tuple[torch.Tensor, ...]:
        return tuple(getattr(self, f"_blocks_{g}") for g in range(len(self._plan.by_out)))

    def _fused_kernel(self, x: torch.Tensor):
        """The fused kernel's ops when this call runs fused (backend, device, dtype, a path to run), else None."""
        if self.backend != "fused" or x.device.type != "cpu" or x.dtype not in FUSED_DTYPES or not self._plan.by_out:
            return None
        ops = fused_ops()
        if ops is None:
            global _warned_unfused
            if not _warned_unfused:
                warnings.warn(f"{unavailable_reason()}; tp backend 'fused' runs the 'torch' path", RuntimeWarning,
                              stacklevel=3)
                _warned_unfused = True
        return ops

    def _fused_tables(self) -> tuple[torch.Tensor, ...]:
        return (self._fused_path, self._fused_nnz_ijk, self._fused_nnz_value.view(torch.float64),
                self._fused_groups, self._fused_in1)

    def _torch_product(self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """The torch path on flat inputs, weights in e3nn's layout (differentiable to every order)."""
        blocks = self._blocks()
        weights = GroupedWeights.apply(weight, blocks, self._plan.weight_block) if blocks else ()
        return contract(self._plan, x1, x2, weights, self._coefficients(x1.dtype))

    def _output_mask(self) -> torch.Tensor:
        reached = {path.io for path in self.paths if path.weight_size > 0}
        return torch.cat(
            [torch.ones(mul * ir.dim) if io in reached else torch.zeros(mul * ir.dim)
             for io, (mul, ir) in enumerate(self.irreps_out)]
        ) if len(self.irreps_out) else torch.ones(0)

    def _make_delegate(self) -> nn.Module | None:
        if self.backend == "e3nn":
            module = o3.FullyConnectedTensorProduct(
                self.irreps_in1, self.irreps_in2, self.irreps_out, shared_weights=False,
                irrep_normalization=self.irrep_normalization, path_normalization=self.path_normalization,
            )
        elif self.backend == "cueq":
            from .cueq import CueqTensorProduct

            module = CueqTensorProduct(self.irreps_in1, self.irreps_in2, self.irreps_out, self.paths)
        else:
            return None
        # its buffers are derived from the irreps: keep them out of the state dict, which is e3nn's either way
        module._non_persistent_buffers_set.update(name for name, _ in module.named_buffers(recurse=False))
        for child in module.modules():
            child._non_persistent_buffers_set.update(name for name, _ in child.named_buffers(recurse=False))
        return module

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: D401 - torch hook
        # e3nn's module stores its constant coupling tensors under "_compiled_main_*" (derived from the irreps);
        # accept and ignore them, so checkpoints of e3nn-built models load on every backend
        for key in [key for key in state_dict if key.startswith(prefix + E3NN_CONSTANTS_PREFIX)]:
            del state_dict[key]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def delegate(self) -> nn.Module | None:
        """The e3nn or cuEquivariance module doing the work, ``None`` for the ``torch`` backend."""
        return self._delegate

    @property
    def instructions(self) -> list[Instruction]:
        """e3nn's instructions (same fields and values), in path order."""
        return [Instruction(p.i1, p.i2, p.io, "uvw", True, p.alpha, (p.mul1, p.mul2, p.mulo)) for p in self.paths]

    def weight_views(self, weight: torch.Tensor) -> list[torch.Tensor]:
        """Per-path views of ``weight`` (``(..., weight_numel)``), each ``(..., mul1, mul2, mul_out)``, as e3nn's
        ``weight_views``."""
        batch = weight.shape[:-1]
        return [
            weight[..., p.weight_offset : p.weight_offset + p.weight_size].reshape(*batch, p.mul1, p.mul2, p.mulo)
            for p in self.paths
        ]

    def extra_repr(self) -> str:
        return (
            f"{self.irreps_in1} x {self.irreps_in2} -> {self.irreps_out} | {len(self.paths)} paths | "
            f"{self.weight_numel} weights | backend={self.backend}"
        )

    def _check(self, *inputs: tuple[str, torch.Tensor, int, str]) -> torch.Size:
        """Validate ``(name, tensor, expected last size, what fixes it)`` inputs; return their broadcast batch."""
        for name, tensor, size, what in inputs:
            if not isinstance(tensor, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
            if not tensor.is_floating_point():
                raise TypeError(f"{name} must be a floating-point tensor, got {tensor.dtype}")
            if tensor.dim() < 1 or tensor.shape[-1] != size:
                got = "a scalar" if tensor.dim() < 1 else f"{tensor.shape[-1]} entries in its last dimension"
                raise ValueError(f"{name} has {got}, expected {size} ({what})")
        names = ", ".join(name for name, *_ in inputs)
        dtypes = [tensor.dtype for _, tensor, *_ in inputs]
        if len(set(dtypes)) > 1:
            raise TypeError(f"{names} must share one dtype, got {', '.join(map(str, dtypes))}")
        devices = [tensor.device for _, tensor, *_ in inputs]
        if len(set(devices)) > 1:
            raise ValueError(f"{names} must be on one device, got {', '.join(map(str, devices))}")
        shapes = [tuple(tensor.shape[:-1]) for _, tensor, *_ in inputs]
        try:
            return torch.broadcast_shapes(*shapes)
        except RuntimeError:
            raise ValueError(
                "batch shapes do not broadcast: " + ", ".join(f"{n} {s}" for (n, *_), s in zip(inputs, shapes))
            ) from None

    def _inputs(self, x1: torch.Tensor, x2: torch.Tensor) -> list[tuple[str, torch.Tensor, int, str]]:
        return [
            ("x1", x1, self.irreps_in1.dim, f"irreps_in1 = {self.irreps_in1}"),
            ("x2", x2, self.irreps_in2.dim, f"irreps_in2 = {self.irreps_in2}"),
        ]

    def forward(
        self,
        x1: torch.Tensor,
        x2: torch.Tensor,
        weight: torch.Tensor | None = None,
        *,
        features: torch.Tensor | None = None,
        matrix: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The tensor product of ``x1`` and ``x2`` with per-sample weights.

        The weights are either ``weight`` (e3nn's call) or ``features @ matrix`` given as its two factors
        (:meth:`_forward_factored`: the model's radial MLP passes its last hidden layer and last matrix).

        Parameters
        ----------
        x1
            ``(..., irreps_in1.dim)``.
        x2
            ``(..., irreps_in2.dim)``.
        weight
            ``(..., weight_numel)`` in e3nn's layout. Batch dimensions of the three broadcast.
        features, matrix
            Instead of ``weight``: ``(..., k)`` and ``(k, weight_numel)``.

        Returns
        -------
        torch.Tensor
            ``(..., irreps_out.dim)``, the broadcast batch shape.

        Raises
        ------
        ValueError, TypeError
            One line naming what was expected: feature sizes, dtypes, devices, batch shapes, which weights.
        """
        factors = (features, matrix)
        if (weight is None and None in factors) or (weight is not None and factors != (None, None)):
            raise ValueError("give either weight, or both features and matrix (weights = features @ matrix)")
        if weight is None:
            return self._forward_factored(x1, x2, features, matrix)
        batch = self._check(*self._inputs(x1, x2), ("weight", weight, self.weight_numel, "weight_numel"))
        flat = _flatten(batch, x1, x2, weight)
        if self._delegate is not None:
            return self._delegate(*flat).reshape(*batch, self.irreps_out.dim)
        ops = self._fused_kernel(flat[0])
        if ops is None:
            out = self._torch_product(*flat)
        else:
            out = FusedProduct.apply(*(t.contiguous() for t in flat), ops, self._fused_tables(),
                                     self.irreps_out.dim, self._workspace, self._torch_product)
        return out.reshape(*batch, self.irreps_out.dim)

    def _forward_factored(
        self, x1: torch.Tensor, x2: torch.Tensor, features: torch.Tensor, matrix: torch.Tensor
    ) -> torch.Tensor:
        """``forward(x1, x2, features @ matrix)`` without forming the weights in e3nn's order.

        Per-sample weights made by a linear layer (the last layer of a radial MLP) are produced directly in
        the grouped order the contraction reads, one matrix product per output irrep: this skips the gather
        of ``(E, weight_numel)`` weights forward and the scatter of their gradient backward.

        Parameters
        ----------
        x1, x2
            As in :meth:`forward`.
        features
            ``(..., k)``, e.g. the radial MLP's last hidden layer.
        matrix
            ``(k, weight_numel)``, the layer's matrix, columns in e3nn's weight layout.

        Returns
        -------
        torch.Tensor
            ``(..., irreps_out.dim)``, equal to ``forward(x1, x2, features @ matrix)``.

        Raises
        ------
        ValueError, TypeError
            As :meth:`forward`, and if ``matrix`` is not ``(features.shape[-1], weight_numel)``.
        """
        if not isinstance(matrix, torch.Tensor) or matrix.dim() != 2 or matrix.shape[1] != self.weight_numel:
            got = f"shape {tuple(matrix.shape)}" if isinstance(matrix, torch.Tensor) else type(matrix).__name__
            raise ValueError(f"matrix must be (k, weight_numel = {self.weight_numel}), got {got}")
        batch = self._check(
            *self._inputs(x1, x2),
            ("features", features, matrix.shape[0], "the rows of matrix"),
        )
        if matrix.dtype != features.dtype or matrix.device != features.device:
            raise ValueError(
                f"matrix must match features in dtype and device ({features.dtype} on {features.device}), "
                f"got {matrix.dtype} on {matrix.device}"
            )
        if self._delegate is not None or not self._plan.by_out:
            return self.forward(x1, x2, features @ matrix)
        flat = _flatten(batch, x1, x2, features)
        ops = self._fused_kernel(flat[0])
        if ops is not None:
            out = FusedFactoredProduct.apply(*(t.contiguous() for t in flat), matrix, ops, self._fused_tables(),
                                             self.irreps_out.dim, self._workspace, self._torch_product)
            return out.reshape(*batch, self.irreps_out.dim)
        block = self._plan.weight_block
        rows = matrix.shape[0]
        runs = matrix.reshape(rows, self.weight_numel // block, block)
        weights = tuple(
            flat[2] @ runs.index_select(1, index).reshape(rows, len(index) * block) for index in self._blocks()
        )
        out = contract(self._plan, flat[0], flat[1], weights, self._coefficients(flat[0].dtype))
        return out.reshape(*batch, self.irreps_out.dim)
