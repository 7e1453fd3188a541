"""Tests of equinb.data.graphs: bond graphs against the stored bonds, radius graphs against brute-force
distances, loader batching and seeding, and argument errors. They use the shared full-data cache.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from equinb import data


@pytest.fixture(scope="module")
def arrays() -> data.QM9Arrays:
    return data.load_qm9()


def subset(arrays, n, seed):
    return data.subset_indices(len(arrays), n, seed=seed).tolist()


def test_bond_graphs_are_symmetric_without_self_loops(arrays):
    for i in subset(arrays, 50, seed=1):
        g = data.build_graph(arrays, i, graph="bonds")
        pairs = g.edge_index.T.tolist()
        assert len(pairs) == 2 * len(arrays.molecule(i).bonds)
        assert len(set(map(tuple, pairs))) == len(pairs)
        assert all(a != b for a, b in pairs)
        assert {(b, a) for a, b in pairs} == set(map(tuple, pairs))


@pytest.mark.parametrize("cutoff", [1.2, 2.0, 3.5, 6.0])
def test_radius_graph_equals_brute_force(arrays, cutoff):
    for i in subset(arrays, 15, seed=2) + [0]:
        pos = arrays.molecule(i).pos
        expected = {
            (a, b)
            for a in range(len(pos))
            for b in range(len(pos))
            if a != b and math.dist(pos[a].tolist(), pos[b].tolist()) < cutoff
        }
        g = data.build_graph(arrays, i, graph="radius", cutoff=cutoff)
        got = list(map(tuple, g.edge_index.T.tolist()))
        assert len(got) == len(set(got))
        assert set(got) == expected


def test_loader_batches_and_is_seeded(arrays):
    dataset = data.make_dataset(arrays, np.arange(20))
    batch = next(iter(data.make_loader(dataset, batch_size=4)))
    assert batch.num_graphs == 4 and batch.y.shape == (4,) and batch.idx.tolist() == [1, 2, 3, 4]
    assert batch.smiles == ["C", "N", "O", "C#C"]

    def order(seed):
        return [i for b in data.make_loader(dataset, batch_size=6, shuffle=True, seed=seed) for i in b.idx.tolist()]

    assert order(7) == order(7)
    assert order(7) != order(8)
    assert sorted(order(7)) == list(range(1, 21))


def test_graph_and_loader_errors(arrays):
    with pytest.raises(ValueError, match="'knn'"):
        data.make_dataset(arrays, [0], graph="knn")
    with pytest.raises(ValueError, match="-1.0"):
        data.build_graph(arrays, 0, graph="radius", cutoff=-1.0)
    with pytest.raises(ValueError, match="0"):
        data.make_loader([], batch_size=0)
