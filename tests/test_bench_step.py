"""Training-step cases (:mod:`equinb.bench.step`) on a tiny batch: the split of a step and the step timer.

Nothing here measures speed; the timings are only checked for shape and consistency.
"""

from __future__ import annotations

import torch
from torch_geometric.data import Batch, Data

from equinb import bench
from equinb.bench.step import step_times
from equinb.model import EquivariantModel, ModelConfig


def tiny_batch() -> Batch:
    """Two four-atom molecules, bonds from the first atom to the others (12 directed edges)."""
    generator = torch.Generator().manual_seed(0)
    molecules = [Data(z=torch.tensor([6, 1, 1, 8]), pos=torch.randn(4, 3, generator=generator),
                      edge_index=torch.tensor([[0, 1, 0, 2, 0, 3], [1, 0, 2, 0, 3, 0]])) for _ in range(2)]
    return Batch.from_data_list(molecules)


def test_step_share_on_a_tiny_batch():
    share = bench.step_share(ModelConfig(L=(0, 1, 2), h=2, num_layers=0, sh_backend="torch"), tiny_batch(),
                             repeats=1)
    assert share["edges"] == 12 and share["graphs"] == 2 and share["L"] == "0-2"
    assert share["step_s"] > 0 and share["sh_s"] > 0 and share["tp_s"] > 0
    assert 0 <= share["sh_share"] and 0 <= share["other_share"] <= 1


def test_step_times_trains_and_times_every_step():
    torch.manual_seed(0)
    model = EquivariantModel.from_config(ModelConfig(L=(0, 1), h=2, num_layers=0, sh_backend="torch"))
    before = [p.detach().clone() for p in model.parameters()]
    times = step_times(model, [tiny_batch()], steps=2, device=torch.device("cpu"), warmup=1)
    assert len(times) == 2 and all(t > 0 for t in times)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))  # the optimizer stepped
