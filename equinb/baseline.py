"""Composition baseline: the atomization energy as a linear function of the atom-type counts.

``E ≈ b + sum_e c_e n_e`` over the elements ``e`` of QM9 (H, C, N, O, F), fitted by least squares on the
training split. It knows the molecular formula and nothing about structure, so every model's error has a
reference point: a model must beat this by a wide margin to have learned anything geometric.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from equinb.data import ELEMENTS, SPLIT_NAMES, QM9Arrays

#: A model says something about which orders matter only if its test MAE beats the baseline's by this factor.
BASELINE_FACTOR = 2.0

#: Elements of the features, in column order.
FEATURE_ELEMENTS: tuple[str, ...] = tuple(ELEMENTS)  # ("H", "C", "N", "O", "F")


def composition_features(arrays: QM9Arrays, indices: np.ndarray) -> np.ndarray:
    """Atom-type counts of the molecules at ``indices`` (rows).

    Parameters
    ----------
    arrays
        The data.
    indices
        Rows of the molecules.

    Returns
    -------
    numpy.ndarray
        ``(len(indices), 5)`` float64 counts of H, C, N, O, F (columns as :data:`FEATURE_ELEMENTS`).

    Raises
    ------
    ValueError
        If the data hold an element outside H, C, N, O, F.
    """
    rows = np.asarray(indices, dtype=np.int64).ravel()
    z = np.asarray(arrays.z, dtype=np.int64)
    column_of = np.full(max(int(z.max(initial=0)), max(ELEMENTS.values())) + 1, -1, dtype=np.int64)
    for column, symbol in enumerate(FEATURE_ELEMENTS):
        column_of[ELEMENTS[symbol]] = column
    columns = column_of[z]
    if np.any(columns < 0):
        raise ValueError(f"atomic numbers {sorted(set(z[columns < 0].tolist()))} are outside {FEATURE_ELEMENTS}")
    # counts of every molecule at once (vectorised over all atoms), then the requested rows
    molecule_of_atom = np.repeat(np.arange(len(arrays)), arrays.n_atoms)
    n_columns = len(FEATURE_ELEMENTS)
    flat = np.bincount(molecule_of_atom * n_columns + columns, minlength=len(arrays) * n_columns)
    counts = flat.reshape(len(arrays), n_columns).astype(np.float64)[rows]
    return counts


@dataclass(frozen=True)
class CompositionBaseline:
    """A fitted composition baseline.

    Attributes
    ----------
    intercept
        ``b`` in eV.
    coefficients
        ``c_e`` in eV per atom, by element symbol.
    metrics
        ``{split: {"mae": eV, "rmse": eV, "n": count}}`` for every split it was given.
    """

    intercept: float
    coefficients: dict[str, float]
    metrics: dict[str, dict[str, float]]

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Energies (eV) for ``(n, 5)`` composition features."""
        weights = np.array([self.coefficients[e] for e in FEATURE_ELEMENTS])
        return self.intercept + np.asarray(features, dtype=np.float64) @ weights


def fit_linear(features: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Least squares with an intercept: ``targets ≈ b + features @ c``.

    Returns
    -------
    tuple of (float, numpy.ndarray)
        ``b`` and ``c`` (minimum-norm solution if the columns are collinear).

    Raises
    ------
    ValueError
        If there are no rows or the shapes disagree.
    """
    features = np.asarray(features, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64).ravel()
    if features.ndim != 2 or len(features) != len(targets) or len(targets) == 0:
        raise ValueError(f"need (n, k) features and n targets, n >= 1; got {features.shape} and {targets.shape}")
    design = np.hstack([np.ones((len(features), 1)), features])
    solution, *_ = np.linalg.lstsq(design, targets, rcond=None)
    return float(solution[0]), solution[1:]


def regression_metrics(predicted: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """``{"mae": ..., "rmse": ..., "n": ...}`` of ``predicted - target``."""
    err = np.asarray(predicted, dtype=np.float64) - np.asarray(target, dtype=np.float64)
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err**2).mean())), "n": int(len(err))}


def fit_composition_baseline(arrays: QM9Arrays, split: Mapping[str, np.ndarray]) -> CompositionBaseline:
    """Fit the composition baseline on ``split["train"]`` and evaluate it on every split given.

    Parameters
    ----------
    arrays
        The data (targets: ``arrays.energy``, U0 atomization energy in eV).
    split
        Rows per split, at least ``"train"`` (e.g. from :func:`equinb.data.split_indices`).

    Returns
    -------
    CompositionBaseline
        Coefficients and MAE/RMSE (eV) per split, in the order train, val, test, then any others.

    Raises
    ------
    ValueError
        If there is no training split.
    """
    if "train" not in split:
        raise ValueError(f"split needs a 'train' part, has {list(split)}")
    train = np.asarray(split["train"])
    intercept, weights = fit_linear(composition_features(arrays, train), arrays.energy[train])
    model = CompositionBaseline(
        intercept=intercept,
        coefficients={e: float(w) for e, w in zip(FEATURE_ELEMENTS, weights)},
        metrics={},
    )
    names = [n for n in SPLIT_NAMES if n in split] + [n for n in split if n not in SPLIT_NAMES]
    for name in names:
        rows = np.asarray(split[name])
        model.metrics[name] = regression_metrics(
            model.predict(composition_features(arrays, rows)), arrays.energy[rows]
        )
    return model
