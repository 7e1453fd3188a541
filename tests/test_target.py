"""Tests of :mod:`equinb.target`: references fitted on the training split only, the baseline reproduced exactly by
a model that predicts zero residual, eV round trips, and old runs' normalisers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from equinb import data
from equinb.baseline import composition_features, fit_composition_baseline
from equinb.target import Target


@pytest.fixture(scope="module")
def qm9():
    arrays = data.load_qm9(progress=False)
    rows = data.subset_indices(len(arrays), 600, seed=5)
    split = data.split_indices(rows, seed=5)
    return arrays, split


def batch_of(arrays, rows):
    graphs = data.make_dataset(arrays, rows)
    return Batch.from_data_list(graphs)


def test_residual_references_come_from_the_training_split_only(qm9):
    arrays, split = qm9
    target = Target.fit("residual", arrays, split)
    # an independent least-squares fit on the training rows, with numpy
    train = split["train"]
    design = np.hstack([np.ones((len(train), 1)), composition_features(arrays, train)])
    solution = np.linalg.lstsq(design, arrays.energy[train], rcond=None)[0]
    assert target.intercept == pytest.approx(solution[0], abs=1e-8)
    assert [target.references[e] for e in "HCNOF"] == pytest.approx(solution[1:], abs=1e-8)
    # changing test labels does not move the fit
    altered = arrays.energy.copy()
    altered[split["test"]] += 100.0
    refit = Target.fit("residual", dataclasses.replace(arrays, energy=altered), split)
    assert refit == target


def test_zero_residual_scores_exactly_the_composition_baseline(qm9):
    arrays, split = qm9
    target = Target.fit("residual", arrays, split)
    baseline = fit_composition_baseline(arrays, split)
    batch = batch_of(arrays, split["test"])
    zero_residual = torch.full((batch.num_graphs,), -target.normalizer.mean / target.normalizer.std)
    predicted = target.decode(zero_residual, batch).numpy()
    mae = np.abs(predicted - arrays.energy[split["test"]]).mean()
    assert mae == pytest.approx(baseline.metrics["test"]["mae"], rel=1e-12)


@pytest.mark.parametrize("kind", ["atomization", "residual"])
def test_encode_decode_round_trip_in_ev(qm9, kind):
    arrays, split = qm9
    target = Target.fit(kind, arrays, split)
    batch = batch_of(arrays, split["val"][:20])
    decoded = target.decode(target.encode(batch), batch)
    np.testing.assert_allclose(decoded.numpy(), arrays.energy[split["val"][:20]], rtol=0, atol=1e-4)  # float32 label
    encoded = target.encode(batch_of(arrays, split["train"])).double()
    assert abs(float(encoded.mean())) < 1e-5 and float(encoded.std()) == pytest.approx(1.0, abs=1e-5)


def test_atomization_target_is_the_plain_normaliser_and_reads_old_runs(qm9):
    arrays, split = qm9
    target = Target.fit("atomization", arrays, split)
    assert target.normalizer == data.fit_normalizer(arrays.energy, split)
    single = Data(z=torch.tensor([6, 1, 1, 1, 1]), pos=torch.zeros(5, 3), y=torch.tensor([-17.0]))
    assert float(target.reference(single)) == 0.0
    old = Target.from_dict({"mean": -76.0, "std": 10.0})
    assert old.kind == "atomization" and old.normalizer.mean == -76.0
    assert Target.from_dict(target.to_dict()) == target
    with pytest.raises(ValueError, match=r"^target must be one of \('atomization', 'residual'\), got 'x'$"):
        Target.fit("x", arrays, split)
