"""What the irreps learn: per-order embeddings of a finished run, their PHATE projections, nSPS, utilisation
measures and the figures of Chapter 5.

Everything reads run folders (:mod:`equinb.runs`) through :mod:`equinb.trained`, or the CSVs made from them;
nothing here trains.

* :mod:`~equinb.analysis.embeddings` — test-split graph embeddings of any layer, split per ``l`` with
  ``Irreps.slices()``, as raw components or rotation invariants; the study's split by multiplicity, to show what
  it held.
* :mod:`~equinb.analysis.projection` — PHATE projections (joint and per ``l``), subsampling, nSPS.
* :mod:`~equinb.analysis.utilisation` — knockout, feature energy, gradients, radial-weight drift from the
  initialisation, predictability of properties.
* :mod:`~equinb.analysis.usage` — per-molecule usage measures with bootstrap intervals: mean-ablation (one
  block, every block), gradient-times-input attribution, feature-energy share, loss gradient.
* :mod:`~equinb.analysis.collect` — those measures for every trained run of a sweep, into one CSV
  (``python -m equinb usage``), summarised over seeds, with a verdict per order.
* :mod:`~equinb.analysis.figures` — the study's figure layouts and bar charts.
"""

from .collect import summarize_usage, usage_verdicts
from .embeddings import (
    VIEWS,
    LayerEmbeddings,
    TestSet,
    check_layer,
    check_orders,
    default_layer,
    embed,
    embed_graphs,
    invariant_features,
    load_test_set,
    multiplicity_split,
    split_by_l,
    split_sources,
)
from .figures import (
    molecule_image,
    panel_title,
    plot_by_layer,
    plot_projection_rows,
    plot_usage,
    plot_quadrant_molecules,
    quadrant_extremes,
)
from .projection import KNN, NSPS, PHATE_SEED, molecule_from_smiles, nsps, phate_projection, project_layer, subsample
from .usage import features_trained
from .utilisation import (
    feature_energy,
    gradient_norms,
    initial_model,
    knocked_out,
    knockout,
    message_share,
    predictability,
    radial_drift,
    radial_paths,
)

__all__ = [
    "KNN",
    "NSPS",
    "PHATE_SEED",
    "VIEWS",
    "LayerEmbeddings",
    "TestSet",
    "check_layer",
    "check_orders",
    "default_layer",
    "embed",
    "embed_graphs",
    "feature_energy",
    "features_trained",
    "gradient_norms",
    "initial_model",
    "invariant_features",
    "knocked_out",
    "knockout",
    "load_test_set",
    "message_share",
    "molecule_from_smiles",
    "molecule_image",
    "multiplicity_split",
    "nsps",
    "panel_title",
    "phate_projection",
    "plot_by_layer",
    "plot_projection_rows",
    "plot_usage",
    "plot_quadrant_molecules",
    "predictability",
    "project_layer",
    "quadrant_extremes",
    "radial_drift",
    "radial_paths",
    "split_by_l",
    "split_sources",
    "subsample",
    "summarize_usage",
    "usage_verdicts",
]
