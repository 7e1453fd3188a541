r"""The paths of a fully connected tensor product, in e3nn's order, with their weights and normalisation.

A fully connected tensor product couples every irrep ``i1`` of the first input with every irrep ``i2`` of the
second into every irrep ``io`` of the output that the selection rules allow (triangle rule and parity,
``ir_out in ir1 * ir2``). Each such *path* carries a block of ``mul1 * mul2 * mul_out`` weights; per sample,

.. math::

    \mathrm{out}_{io}[w, k] = \sum_{p \to io} \alpha_p \sum_{u v} W_p[u, v, w]
        \sum_{i j} C^{l_1 l_2 l_3}_{ijk}\, x_1[u, i]\, x_2[v, j],

with ``C`` the real Wigner-3j tensor (unit Frobenius norm, :func:`equinb.so3.wigner_3j_sparse`). This module fixes
everything that must agree with e3nn's ``FullyConnectedTensorProduct`` for checkpoints to be interchangeable:

* the path order: ``i1`` outermost, then ``i2``, then ``io``, each in the order the irreps were given;
* the weight layout: per path a block ``[u, v, w]`` flattened row-major, blocks concatenated in path order;
* the normalisation ``alpha_p = sqrt(a_p / x_p)``: ``a_p = 2 l_out + 1`` ("component"), ``(2 l1 + 1)(2 l2 + 1)``
  ("norm") or ``1`` ("none"); ``x_p`` the number of ``(u, v)`` pairs summed into the output irrep over all its
  paths ("element"), over this path times the number of paths into that output ("path"), or ``1`` ("none").

It knows nothing of how the sum is computed; :mod:`equinb.tp.contraction` does that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from e3nn import o3

#: Normalisations of the output irreps, as e3nn names them (e3nn's default first).
IRREP_NORMALIZATIONS = ("component", "norm", "none")
#: Normalisations over the paths into one output irrep, as e3nn names them (e3nn's default first).
PATH_NORMALIZATIONS = ("element", "path", "none")


@dataclass(frozen=True)
class PathSpec:
    """One path ``i1 x i2 -> io`` of a fully connected tensor product.

    Attributes
    ----------
    i1, i2, io
        Indices into ``irreps_in1``, ``irreps_in2`` and ``irreps_out`` (entries of the irreps lists, not orders).
    l1, l2, lo
        Their orders.
    mul1, mul2, mulo
        Their multiplicities; the path owns ``mul1 * mul2 * mulo`` weights.
    weight_offset
        Where the path's weight block starts in a weight vector of e3nn's layout.
    alpha
        The normalisation coefficient multiplying the path (e3nn's ``Instruction.path_weight``).
    """

    i1: int
    i2: int
    io: int
    l1: int
    l2: int
    lo: int
    mul1: int
    mul2: int
    mulo: int
    weight_offset: int
    alpha: float

    @property
    def weight_size(self) -> int:
        """Number of weights of the path, ``mul1 * mul2 * mulo``."""
        return self.mul1 * self.mul2 * self.mulo


def as_irreps(value: o3.Irreps | str, name: str) -> o3.Irreps:
    """Parse ``value`` as :class:`e3nn.o3.Irreps`, with a one-line error naming the argument.

    Raises
    ------
    ValueError
        If ``value`` is not irreps or a string e3nn parses as irreps.
    """
    try:
        return o3.Irreps(value)
    except (ValueError, TypeError, AssertionError) as error:
        raise ValueError(f"{name} must be irreps such as '16x0e+16x1o', got {value!r}") from error


def fully_connected_paths(
    irreps_in1: o3.Irreps,
    irreps_in2: o3.Irreps,
    irreps_out: o3.Irreps,
    irrep_normalization: str = "component",
    path_normalization: str = "element",
) -> tuple[PathSpec, ...]:
    """Every path of ``FullyConnectedTensorProduct(irreps_in1, irreps_in2, irreps_out)`` in e3nn's order.

    Parameters
    ----------
    irreps_in1, irreps_in2, irreps_out
        The irreps, taken as given (not simplified or sorted), as e3nn does.
    irrep_normalization
        One of :data:`IRREP_NORMALIZATIONS`.
    path_normalization
        One of :data:`PATH_NORMALIZATIONS`.

    Returns
    -------
    tuple of PathSpec
        Paths in e3nn's instruction order, with weight offsets in e3nn's layout and e3nn's ``path_weight``.

    Raises
    ------
    ValueError
        If a normalisation is not one of the names above.

    Examples
    --------
    >>> [(p.l1, p.l2, p.lo) for p in fully_connected_paths(o3.Irreps("2x0e+2x1o"), o3.Irreps("1x1o"),
    ...                                                      o3.Irreps("2x0e+2x1o"))]
    [(0, 1, 1), (1, 1, 0)]
    """
    if irrep_normalization not in IRREP_NORMALIZATIONS:
        raise ValueError(f"irrep_normalization must be one of {IRREP_NORMALIZATIONS}, got {irrep_normalization!r}")
    if path_normalization not in PATH_NORMALIZATIONS:
        raise ValueError(f"path_normalization must be one of {PATH_NORMALIZATIONS}, got {path_normalization!r}")
    triples = [
        (i1, i2, io)
        for i1, (_, ir1) in enumerate(irreps_in1)
        for i2, (_, ir2) in enumerate(irreps_in2)
        for io, (_, iro) in enumerate(irreps_out)
        if iro in ir1 * ir2
    ]
    pairs = {(i1, i2, io): irreps_in1[i1].mul * irreps_in2[i2].mul for i1, i2, io in triples}
    pairs_into = {io: 0 for io in range(len(irreps_out))}
    paths_into = {io: 0 for io in range(len(irreps_out))}
    for (_, _, io), count in pairs.items():
        pairs_into[io] += count
        paths_into[io] += 1

    paths = []
    offset = 0
    for i1, i2, io in triples:
        (mul1, ir1), (mul2, ir2), (mulo, iro) = irreps_in1[i1], irreps_in2[i2], irreps_out[io]
        a = {"component": iro.dim, "norm": ir1.dim * ir2.dim, "none": 1}[irrep_normalization]
        x = {
            "element": pairs_into[io],
            "path": pairs[(i1, i2, io)] * paths_into[io],
            "none": 1,
        }[path_normalization]
        alpha = math.sqrt(a / x) if x > 0 else math.sqrt(a)
        paths.append(PathSpec(i1, i2, io, ir1.l, ir2.l, iro.l, mul1, mul2, mulo, offset, alpha))
        offset += mul1 * mul2 * mulo
    return tuple(paths)


def weight_numel(paths: tuple[PathSpec, ...]) -> int:
    """Length of a weight vector of e3nn's layout for these paths."""
    return sum(path.weight_size for path in paths)
