"""The study's equivariant graph-convolution model, over any set of orders ``L``.

This is the model of Lee, Galkin & Miret (arXiv:2410.08131, §2 and Appendix A.3) as its code actually ran
(the EquiTriton repository the paper links to), rebuilt on e3nn:

* an atom embedding ``nn.Embedding(100, 64)`` (row 0, atomic number 0, is the padding row, as in the study)
  gives ``64x0e`` node features;
* every edge carries a Bessel radial basis of its length (20 functions, cutoff 6 A, multiplied by
  ``sqrt(20)``) and the spherical harmonics ``Y_l`` (``l`` in ``L``) of its direction;
* an *interaction block* forms, per edge, the fully connected tensor product of the source node's features with
  the edge's harmonics, weighted per edge by a radial MLP ``FullyConnectedNet([20, h, weight_numel], silu)``
  (e3nn's: no biases), sums the messages onto the target node and divides by the degree norm 6.0828
  (``sqrt(37)``);
* one *initial* block maps ``64x0e`` to ``h x L``; ``num_layers + 1`` *conv* blocks map ``h x L`` to itself, each
  with a residual connection (the paper's "3 interaction blocks" ran as 1 + 4: ``num_layers=3``);
* the readout ``o3.Linear(h x L -> 1x0e)`` gives a scalar per atom; the sum over each graph's atoms goes through
  ``nn.Linear(1, 1)`` (the study's output head) to the energy, in normalised units.

The parameter counts of the paper's Table 1 follow exactly from this structure (:data:`TABLE1_PARAMETERS`, the
seven known to the unit reproduced exactly; all nine distinct ``(L, h)`` of the table match its printed
millions). With ``W0`` and ``W`` the path-weight counts of the initial (``64x0e``) and conv (``h x L``) tensor
products, the count is ``100*64 + (20*h + h*W0) + (num_layers + 1)*(20*h + h*W) + h + 2``:
the embedding table, per block a bias-free radial MLP of hidden width ``h`` (the tensor products themselves
have no weights of their own), the bias-free readout (``h`` weights on the ``0e`` channels) and the 1 -> 1
output head with its bias.

Conventions
-----------
* Edges are directed, ``edge_index[0]`` the source and ``edge_index[1]`` the target; messages flow from source
  to target. The edge vector is ``pos[target] - pos[source]`` (:func:`edge_vectors`). The study's code used the
  opposite sign, ``pos[source] - pos[target]``; the two give the same family of functions (flipping the vector
  flips the sign of every odd-``l`` harmonic, which the sign of the radial MLP's last-layer weights of those
  paths absorbs, and their initial distribution is symmetric), so only the random draw differs.
* Spherical harmonics are taken with ``normalize=True`` and, by default, ``"integral"`` normalisation, which is
  what the study ran: its harmonic module defaulted to ``normalization="integral"`` (its Triton kernels compute
  e3nn's ``"component"`` values and divide by ``sqrt(4 pi)``) and no configuration overrode it. NequIP's
  ``"component"`` is available as ``sh_normalization="component"``.
* The harmonics and the radial basis depend on the edges only, so they are computed once per forward pass and
  shared by all blocks (the study recomputed the same values in each block).
* Scalar readout pitfall: the readout reads only the ``l = 0`` part of the last block, so that block's
  ``l > 0`` outputs get exactly zero gradient and stay at their initialisation during training. The study took
  its per-irrep embeddings from there; analyses should say which layer they read.

Options on top of the faithful defaults are constructor parameters: ``sh_backend``, ``tp_backend``, ``sh_normalization``,
``cutoff``, ``num_basis``, ``num_layers``, ``atom_embedding_dim``, ``degree_norm`` and ``gate`` (an e3nn gated
nonlinearity after every block but the last).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from e3nn import o3
from e3nn.math import soft_one_hot_linspace
from e3nn.nn import FullyConnectedNet, Gate
from torch import nn

from equinb.so3 import irreps_for, sh_irreps, validate_L
from equinb.tp import TP_BACKENDS, FullyConnectedTensorProduct

__all__ = [
    "ATOM_EMBEDDING_DIM",
    "CUTOFF",
    "DEGREE_NORM",
    "NUM_BASIS",
    "NUM_ELEMENTS",
    "NUM_LAYERS",
    "REQUIRED_FIELDS",
    "SH_BACKEND",
    "SH_BACKENDS",
    "SH_NORMALIZATION",
    "SH_NORMALIZATIONS",
    "TABLE1_PARAMETERS",
    "TP_BACKEND",
    "TP_BACKENDS",
    "EquivariantModel",
    "InteractionBlock",
    "LayerEmbedding",
    "ModelConfig",
    "count_parameters",
    "edge_vectors",
    "sum_rows",
]

# The study's hyperparameters (paper Table 2 and its model configurations).
#: Rows of the atom-embedding table (atomic numbers 0..99; row 0 is the padding row).
NUM_ELEMENTS = 100
#: Width of the initial atom embedding (``64x0e``).
ATOM_EMBEDDING_DIM = 64
#: Number of Bessel radial basis functions.
NUM_BASIS = 20
#: Radial cutoff in Angstrom.
CUTOFF = 6.0
#: Degree normalisation dividing the summed messages (``sqrt(37)``, paper Table 2).
DEGREE_NORM = 6.0828
#: ``num_layers`` of the study: 1 initial block plus ``num_layers + 1 = 4`` conv blocks.
NUM_LAYERS = 3
#: Spherical-harmonic normalisation the study ran.
SH_NORMALIZATION = "integral"
#: Default spherical-harmonic backend: the study ran its own kernels (Triton on GPU); ``"auto"`` picks
#: :mod:`equinb.sph`'s Triton kernels on GPU and its PyTorch path on CPU.
SH_BACKEND = "auto"

#: Default tensor-product backend (:mod:`equinb.tp`): ``"auto"`` picks the fastest backend proven equal to e3nn.
TP_BACKEND = "auto"

#: Backends accepted for the harmonics: ``"e3nn"`` (``e3nn.o3.SphericalHarmonics``) or one of
#: :func:`equinb.sph.spherical_harmonics`.
SH_BACKENDS = ("auto", "triton", "torch", "e3nn")
#: Normalisations accepted for the harmonics (e3nn's names).
SH_NORMALIZATIONS = ("integral", "component", "norm")
#: Fields a graph batch must carry.
REQUIRED_FIELDS = ("z", "pos", "edge_index")

#: Parameter counts of the paper's Table 1, ``(L, h): count``, for the default configuration.
TABLE1_PARAMETERS: dict[tuple[tuple[int, ...], int], int] = {
    ((0, 1, 2), 32): 1_648_034,
    ((0, 1, 2, 4), 32): 3_024_290,
    ((0, 1, 2, 6), 32): 2_631_074,
    ((0, 1, 2, 3, 4), 16): 778_066,
    ((0, 1, 2, 3, 4, 5, 6), 16): 1_859_410,
    ((0, 1, 2, 3, 4, 5, 6, 7, 8), 16): 3_678_034,
    ((0, 3, 4, 5, 6), 16): 827_218,
}


def _int_at_least(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _positive_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild an :class:`EquivariantModel`; validated on creation.

    Parameters
    ----------
    L
        Orders of the harmonics and of the hidden features (sorted, unique, ``0 <= l <= 12``, i.e.
        :data:`equinb.so3.L_MAX`; must contain 0, which the scalar readout reads).
    h
        Hidden multiplicity: every block outputs ``h x l`` for each ``l`` in ``L``.
    num_layers
        The study's ``num_layers``: the model has 1 initial and ``num_layers + 1`` conv blocks.
    atom_embedding_dim
        Width of the atom embedding (``atom_embedding_dim x 0e``).
    num_basis
        Number of Bessel radial basis functions.
    cutoff
        Radial cutoff in Angstrom (the basis vanishes smoothly there and beyond).
    degree_norm
        Divisor of the summed messages.
    sh_backend
        ``"e3nn"`` or a backend of :func:`equinb.sph.spherical_harmonics` (``"auto"``, ``"triton"``,
        ``"torch"``); all give the same numbers to float tolerance.
    sh_normalization
        ``"integral"`` (the study), ``"component"`` (NequIP) or ``"norm"``.
    gate
        Apply an e3nn gated nonlinearity after every block except the last.
    tp_backend
        Backend of the tensor products, one of :data:`equinb.tp.TP_BACKENDS`; all give the same numbers to float
        tolerance, the same parameters and interchangeable checkpoints.

    Raises
    ------
    ValueError
        For an invalid ``L`` (see :func:`equinb.so3.validate_L`), ``L`` without 0, ``h < 1``, ``num_layers < 0``
        or any other out-of-range value.
    """

    L: tuple[int, ...] = (0, 1, 2)
    h: int = 32
    num_layers: int = NUM_LAYERS
    atom_embedding_dim: int = ATOM_EMBEDDING_DIM
    num_basis: int = NUM_BASIS
    cutoff: float = CUTOFF
    degree_norm: float = DEGREE_NORM
    sh_backend: str = SH_BACKEND
    sh_normalization: str = SH_NORMALIZATION
    gate: bool = False
    tp_backend: str = TP_BACKEND

    def __post_init__(self) -> None:
        orders = validate_L(self.L)
        if 0 not in orders:
            raise ValueError(f"L = {list(orders)} lacks the order 0, which the scalar readout needs")
        object.__setattr__(self, "L", orders)
        object.__setattr__(self, "h", _int_at_least("h", self.h, 1))
        object.__setattr__(self, "num_layers", _int_at_least("num_layers", self.num_layers, 0))
        object.__setattr__(
            self, "atom_embedding_dim", _int_at_least("atom_embedding_dim", self.atom_embedding_dim, 1)
        )
        object.__setattr__(self, "num_basis", _int_at_least("num_basis", self.num_basis, 1))
        object.__setattr__(self, "cutoff", _positive_float("cutoff", self.cutoff))
        object.__setattr__(self, "degree_norm", _positive_float("degree_norm", self.degree_norm))
        if self.sh_backend not in SH_BACKENDS:
            raise ValueError(f"sh_backend must be one of {SH_BACKENDS}, got {self.sh_backend!r}")
        if self.sh_normalization not in SH_NORMALIZATIONS:
            raise ValueError(f"sh_normalization must be one of {SH_NORMALIZATIONS}, got {self.sh_normalization!r}")
        if not isinstance(self.gate, bool):
            raise ValueError(f"gate must be True or False, got {self.gate!r}")
        if self.tp_backend not in TP_BACKENDS:
            raise ValueError(f"tp_backend must be one of {TP_BACKENDS}, got {self.tp_backend!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (``L`` as a list)."""
        out = asdict(self)
        out["L"] = list(self.L)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Rebuild from :meth:`to_dict` output; missing keys take the defaults, unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig keys {unknown}; known keys are {sorted(known)}")
        return cls(**dict(data))


@dataclass(frozen=True)
class LayerEmbedding:
    """Features of one layer, as returned by :meth:`EquivariantModel.embed`.

    Attributes
    ----------
    name
        ``"initial"``, ``"conv_0"``, ..., ``"conv_{num_layers}"``.
    irreps
        Layout of the feature columns (``h x L``); split per ``l`` with :func:`equinb.so3.feature_slices`.
    node_features
        ``(num_nodes, irreps.dim)``.
    graph_features
        ``(num_graphs, irreps.dim)``, the sum of ``node_features`` over each graph's atoms.
    """

    name: str
    irreps: o3.Irreps
    node_features: torch.Tensor
    graph_features: torch.Tensor


def edge_vectors(pos: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """Vector of every directed edge, ``pos[target] - pos[source]`` (``edge_index[1]`` minus ``edge_index[0]``)."""
    return pos[edge_index[1]] - pos[edge_index[0]]


def sum_rows(values: torch.Tensor, index: torch.Tensor, num_rows: int) -> torch.Tensor:
    """``out[i] = sum of values[j] over j with index[j] == i``, for ``i < num_rows`` (any trailing shape)."""
    out = values.new_zeros((num_rows, *values.shape[1:]))
    return out.index_add_(0, index, values)


def _gate_for(irreps: o3.Irreps) -> Gate:
    """Gated nonlinearity whose output is ``irreps`` (silu on scalars, a sigmoid gate per non-scalar copy)."""
    scalars = o3.Irreps([(mul, ir) for mul, ir in irreps if ir.l == 0])
    gated = o3.Irreps([(mul, ir) for mul, ir in irreps if ir.l > 0])
    gates = o3.Irreps([(gated.num_irreps, "0e")]) if gated else o3.Irreps("")
    return Gate(
        scalars,
        [nn.functional.silu],
        gates,
        [torch.sigmoid] if gated else [],
        gated,
    )


class InteractionBlock(nn.Module):
    """One equivariant graph convolution: edge tensor products, summed onto targets.

    For an edge ``s -> t`` the message is ``TP(x[s], Y(edge), w(r))`` with the fully connected tensor product of
    ``irreps_in`` and the harmonics into ``irreps_out`` and per-edge weights ``w`` from the radial MLP
    ``FullyConnectedNet([num_basis, h, weight_numel], silu)``. Node ``t`` receives the sum of its messages divided
    by ``degree_norm``, then the optional gate, then (if ``residual``) its input.

    Parameters
    ----------
    irreps_in
        Input node irreps.
    irreps_sh
        Irreps of the edge harmonics.
    irreps_out
        Output node irreps.
    num_basis
        Radial basis size.
    radial_hidden
        Hidden width of the radial MLP (the study used ``h``).
    degree_norm
        Divisor of the summed messages.
    gate
        Whether to apply an e3nn gate to the summed messages.
    residual
        Whether to add the input (requires ``irreps_in == irreps_out``).
    tp_backend
        Backend of the tensor product (:data:`equinb.tp.TP_BACKENDS`).

    Notes
    -----
    The radial MLP's last layer is linear (no bias, no activation), so the tensor product receives it as two
    factors, the last hidden layer and the layer's matrix (``tp(x, Y, features=..., matrix=...)``): the
    ``torch`` backend then forms each output irrep's weights directly, never the ``(edges, weight_numel)``
    matrix in e3nn's order. Same numbers, same parameters (``radial`` is e3nn's ``FullyConnectedNet``).
    """

    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_sh: o3.Irreps,
        irreps_out: o3.Irreps,
        num_basis: int,
        radial_hidden: int,
        degree_norm: float,
        gate: bool = False,
        residual: bool = False,
        tp_backend: str = TP_BACKEND,
    ) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_out = o3.Irreps(irreps_out)
        if residual and self.irreps_in != self.irreps_out:
            raise ValueError(f"a residual block needs equal irreps in and out: {self.irreps_in}, {self.irreps_out}")
        self.gate = _gate_for(self.irreps_out) if gate else None
        tp_out = self.gate.irreps_in if self.gate is not None else self.irreps_out
        self.tp = FullyConnectedTensorProduct(self.irreps_in, irreps_sh, tp_out, backend=tp_backend)
        self.radial = FullyConnectedNet([num_basis, radial_hidden, self.tp.weight_numel], nn.functional.silu)
        self.degree_norm = degree_norm
        self.residual = residual

    def forward(
        self, x: torch.Tensor, edge_sh: torch.Tensor, edge_basis: torch.Tensor, edge_index: torch.Tensor
    ) -> torch.Tensor:
        """Node features ``(num_nodes, irreps_in.dim)`` to ``(num_nodes, irreps_out.dim)``."""
        source, target = edge_index[0], edge_index[1]
        *layers, last = self.radial
        features = edge_basis
        for layer in layers:
            features = layer(features)
        # the last layer is linear: its matrix is its image of the identity (normalisation included)
        matrix = last(torch.eye(features.shape[-1], dtype=features.dtype, device=features.device))
        messages = self.tp(x[source], edge_sh, features=features, matrix=matrix)
        out = sum_rows(messages, target, x.shape[0]) / self.degree_norm
        if self.gate is not None:
            out = self.gate(out)
        if self.residual:
            out = out + x
        return out


class EquivariantModel(nn.Module):
    """The study's model (module docstring) over the orders ``L`` with multiplicity ``h``.

    Parameters
    ----------
    L, h, num_layers, atom_embedding_dim, num_basis, cutoff, degree_norm, sh_backend, sh_normalization, gate,
    tp_backend
        See :class:`ModelConfig`; the defaults are the study's settings.

    Attributes
    ----------
    config : ModelConfig
        The configuration; ``EquivariantModel.from_config(model.config)`` rebuilds the architecture.
    irreps_hidden : e3nn.o3.Irreps
        ``h x L``, the output irreps of every block.
    layer_names : tuple of str
        ``("initial", "conv_0", ..., "conv_{num_layers}")``, the keys of ``blocks``.

    Notes
    -----
    Inputs are PyG ``Data``/``Batch`` objects with ``z`` (long, atomic numbers below 100), ``pos`` (float,
    Angstrom, the model's dtype), ``edge_index`` (long, ``(2, num_edges)``, source then target, no self-loops:
    a zero-length edge makes the Bessel basis 0/0) and, for a batch of several graphs, ``batch``.
    """

    def __init__(
        self,
        L: Iterable[int] = (0, 1, 2),
        h: int = 32,
        *,
        num_layers: int = NUM_LAYERS,
        atom_embedding_dim: int = ATOM_EMBEDDING_DIM,
        num_basis: int = NUM_BASIS,
        cutoff: float = CUTOFF,
        degree_norm: float = DEGREE_NORM,
        sh_backend: str = SH_BACKEND,
        sh_normalization: str = SH_NORMALIZATION,
        gate: bool = False,
        tp_backend: str = TP_BACKEND,
    ) -> None:
        super().__init__()
        config = ModelConfig(
            L=L,
            h=h,
            num_layers=num_layers,
            atom_embedding_dim=atom_embedding_dim,
            num_basis=num_basis,
            cutoff=cutoff,
            degree_norm=degree_norm,
            sh_backend=sh_backend,
            sh_normalization=sh_normalization,
            gate=gate,
            tp_backend=tp_backend,
        )
        self.config = config
        self.irreps_hidden = irreps_for(config.L, config.h)
        self.irreps_sh = sh_irreps(config.L)
        self.atom_embedding = nn.Embedding(NUM_ELEMENTS, config.atom_embedding_dim, padding_idx=0)
        if config.sh_backend == "e3nn":
            self.e3nn_sh = o3.SphericalHarmonics(
                self.irreps_sh, normalize=True, normalization=config.sh_normalization
            )
        names = ["initial"] + [f"conv_{i}" for i in range(config.num_layers + 1)]
        self.layer_names = tuple(names)
        blocks = {}
        for index, name in enumerate(names):
            blocks[name] = InteractionBlock(
                o3.Irreps(f"{config.atom_embedding_dim}x0e") if index == 0 else self.irreps_hidden,
                self.irreps_sh,
                self.irreps_hidden,
                num_basis=config.num_basis,
                radial_hidden=config.h,
                degree_norm=config.degree_norm,
                gate=config.gate and index < len(names) - 1,
                residual=index > 0,
                tp_backend=config.tp_backend,
            )
        self.blocks = nn.ModuleDict(blocks)
        self.readout = o3.Linear(self.irreps_hidden, o3.Irreps("1x0e"))
        self.head = nn.Linear(1, 1)

    @classmethod
    def from_config(cls, config: ModelConfig | Mapping[str, Any]) -> EquivariantModel:
        """Build a model from a :class:`ModelConfig` or its :meth:`ModelConfig.to_dict`."""
        if not isinstance(config, ModelConfig):
            config = ModelConfig.from_dict(config)
        return cls(**{f.name: getattr(config, f.name) for f in fields(ModelConfig)})

    def _edge_harmonics(self, vectors: torch.Tensor) -> torch.Tensor:
        if self.config.sh_backend == "e3nn":
            return self.e3nn_sh(vectors)
        from equinb.sph import spherical_harmonics

        return spherical_harmonics(
            list(self.config.L),
            vectors,
            normalize=True,
            normalization=self.config.sh_normalization,
            backend=self.config.sh_backend,
        )

    def _node_features(self, z: torch.Tensor, pos: torch.Tensor, edge_index: torch.Tensor) -> list[torch.Tensor]:
        """Output of every block, in order."""
        vectors = edge_vectors(pos, edge_index)
        edge_sh = self._edge_harmonics(vectors)
        lengths = torch.linalg.vector_norm(vectors, dim=-1)
        edge_basis = soft_one_hot_linspace(
            lengths, 0.0, self.config.cutoff, self.config.num_basis, basis="bessel", cutoff=True
        ) * math.sqrt(self.config.num_basis)
        x = self.atom_embedding(z)
        outputs = []
        for block in self.blocks.values():
            x = block(x, edge_sh, edge_basis, edge_index)
            outputs.append(x)
        return outputs

    def forward(self, batch: Any) -> torch.Tensor:
        """Energies of the graphs in ``batch``, shape ``(num_graphs,)``, in normalised units."""
        z, pos, edge_index, graph_index, num_graphs = _graph_tensors(batch)
        x = self._node_features(z, pos, edge_index)[-1]
        per_graph = sum_rows(self.readout(x), graph_index, num_graphs)
        return self.head(per_graph).squeeze(-1)

    def embed(self, batch: Any) -> list[LayerEmbedding]:
        """Node and graph (sum over atoms) features of every block, with their irreps.

        Gradients are tracked as usual: call under ``torch.no_grad()`` for analysis.
        """
        z, pos, edge_index, graph_index, num_graphs = _graph_tensors(batch)
        layers = self._node_features(z, pos, edge_index)
        return [
            LayerEmbedding(name, self.irreps_hidden, x, sum_rows(x, graph_index, num_graphs))
            for name, x in zip(self.layer_names, layers)
        ]


def _graph_tensors(batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """``z, pos, edge_index, graph index per node, number of graphs`` of a PyG ``Data`` or ``Batch``.

    Raises
    ------
    ValueError
        If a required field is missing or has the wrong shape or dtype.
    """
    missing = [name for name in REQUIRED_FIELDS if getattr(batch, name, None) is None]
    if missing:
        raise ValueError(f"the graph batch lacks the field(s) {missing}; the model needs {list(REQUIRED_FIELDS)}")
    z, pos, edge_index = batch.z, batch.pos, batch.edge_index
    if z.dim() != 1 or z.dtype.is_floating_point:
        raise ValueError(f"z must be a 1-d integer tensor of atomic numbers, got shape {tuple(z.shape)} {z.dtype}")
    if pos.shape != (z.shape[0], 3) or not pos.dtype.is_floating_point:
        raise ValueError(f"pos must be a float tensor of shape ({len(z)}, 3), got {tuple(pos.shape)} {pos.dtype}")
    if edge_index.dim() != 2 or edge_index.shape[0] != 2 or edge_index.dtype.is_floating_point:
        raise ValueError(f"edge_index must be an integer tensor of shape (2, E), got {tuple(edge_index.shape)}")
    graph_index = getattr(batch, "batch", None)
    if graph_index is None:
        return z, pos, edge_index, torch.zeros_like(z), 1
    num_graphs = getattr(batch, "num_graphs", None)
    if num_graphs is None:
        num_graphs = int(graph_index.max()) + 1 if graph_index.numel() else 0
    return z, pos, edge_index, graph_index, int(num_graphs)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of ``model`` (all of them, as the paper's Table 1 counts)."""
    return sum(p.numel() for p in model.parameters())
