"""What a model is trained to predict: the study's whole atomization energy, or its residual after composition.

Two targets, both normalised with statistics of the training split only and both reported in eV:

* ``"atomization"`` (the study's): ``(E - mean) / std`` of the U0 atomization energy ``E``. Its spread over QM9
  (10.3 eV) is mostly composition: a linear fit on atom counts already explains all but ~1.1 eV RMSE of it.
* ``"residual"``: per-element reference energies ``E_ref = b + sum_atoms c_Z`` fitted by least squares on the
  training split (exactly :func:`equinb.baseline.fit_composition_baseline`) are subtracted first, as interatomic
  potentials do; the model learns ``(E - E_ref - mean) / std`` and predictions add ``E_ref`` back. A model that
  predicts a zero residual scores exactly the composition baseline.

A :class:`Target` is stored with a run (:meth:`Target.to_dict`); a run saved before targets existed holds only
``{"mean", "std"}`` and reads back as the atomization target.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .baseline import FEATURE_ELEMENTS, composition_features, fit_composition_baseline
from .data import ELEMENTS, Normalizer, QM9Arrays

#: Targets a run can train on (the study's first).
TARGETS = ("atomization", "residual")


@dataclass(frozen=True)
class Target:
    """A fitted target: the label transform of one run.

    Attributes
    ----------
    kind
        One of :data:`TARGETS`.
    normalizer
        Mean and standard deviation of the (residual) label on the training split.
    intercept
        ``b`` of the references in eV (0 for ``"atomization"``).
    references
        ``c_Z`` in eV per atom, by element symbol (all 0 for ``"atomization"``).
    """

    kind: str
    normalizer: Normalizer
    intercept: float = 0.0
    references: dict[str, float] = field(default_factory=lambda: dict.fromkeys(FEATURE_ELEMENTS, 0.0))

    def __post_init__(self) -> None:
        if self.kind not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.kind!r}")

    @classmethod
    def fit(cls, kind: str, arrays: QM9Arrays, split: Mapping[str, np.ndarray]) -> Target:
        """Fit ``kind`` on ``split["train"]`` of ``arrays`` (references, then the normaliser of what remains).

        Raises
        ------
        ValueError
            For an unknown kind or a split without a training part.
        """
        if kind not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {kind!r}")
        if "train" not in split:
            raise ValueError(f"split needs a 'train' part, has {list(split)}")
        train = np.asarray(split["train"])
        if kind == "atomization":
            return cls(kind, Normalizer.fit(arrays.energy[train]))
        baseline = fit_composition_baseline(arrays, {"train": train})
        residual = arrays.energy[train] - baseline.predict(composition_features(arrays, train))
        return cls(kind, Normalizer.fit(residual), baseline.intercept, dict(baseline.coefficients))

    def reference(self, batch: Any) -> torch.Tensor:
        """``E_ref`` in eV of every graph of a PyG batch (zeros for ``"atomization"``), float64."""
        z, num_graphs = batch.z, int(getattr(batch, "num_graphs", 1))
        graph = getattr(batch, "batch", None)
        graph = torch.zeros_like(z) if graph is None else graph
        table = torch.zeros(int(max(ELEMENTS.values())) + 1, dtype=torch.float64, device=z.device)
        for symbol, value in self.references.items():
            table[ELEMENTS[symbol]] = value
        per_graph = torch.zeros(num_graphs, dtype=torch.float64, device=z.device).index_add_(0, graph, table[z])
        return per_graph + self.intercept

    def encode(self, batch: Any) -> torch.Tensor:
        """The training label of every graph: ``normalize(y - E_ref)``, in the dtype of ``batch.y``."""
        return self.normalizer.normalize(batch.y.double() - self.reference(batch)).to(batch.y.dtype)

    def decode(self, output: torch.Tensor, batch: Any) -> torch.Tensor:
        """Energies in eV (float64) from model outputs: ``denormalize(output) + E_ref``."""
        return self.normalizer.denormalize(output.double()) + self.reference(batch)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``kind``, ``mean``, ``std``, ``intercept``, ``references``."""
        return {"kind": self.kind, **self.normalizer.to_dict(), "intercept": self.intercept,
                "references": dict(self.references)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Target:
        """Inverse of :meth:`to_dict`; a bare ``{"mean", "std"}`` (runs before targets) is the atomization target."""
        normalizer = Normalizer.from_dict(values)
        if "kind" not in values:
            return cls("atomization", normalizer)
        return cls(values["kind"], normalizer, float(values["intercept"]),
                   {k: float(v) for k, v in values["references"].items()})
