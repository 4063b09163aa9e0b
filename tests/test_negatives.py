"""NegativeSampler against PyG's negative_sampling: same support, numbering and distribution."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import chisquare
from torch_geometric.utils import negative_sampling
from torch_geometric.utils._negative_sampling import edge_index_to_vector

from graphdl.errors import ValidationError
from graphdl.train.negatives import NegativeSampler, _pair_ids


def _graph(n: int = 12, m: int = 40, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    edges = torch.randint(0, n, (2, m), generator=gen)
    return torch.cat([edges, edges.flip(0), torch.tensor([[3], [3]])], dim=1)  # with a self-loop


def test_pair_numbering_is_pygs() -> None:
    edge_index, n = _graph(), 12
    no_loops = edge_index[:, edge_index[0] != edge_index[1]]
    ours = _pair_ids(edge_index, n)
    theirs, population = edge_index_to_vector(no_loops, (n, n), bipartite=False)
    assert torch.equal(ours, theirs)
    assert NegativeSampler(edge_index, n).population == population


@pytest.mark.parametrize("num", [1, 7, 30, 60])  # 60 of 74: a large share, sampled by permuting all non-edges
def test_samples_are_distinct_non_edges_of_the_asked_number(num: int) -> None:
    edge_index, n = _graph(), 12
    torch.manual_seed(num)
    neg = NegativeSampler(edge_index, n)(num)
    existing = set(map(tuple, edge_index.t().tolist()))
    pairs = list(map(tuple, neg.t().tolist()))
    assert neg.shape == (2, num) and neg.dtype == torch.long
    assert len(set(pairs)) == num
    assert all(i != j and (i, j) not in existing for i, j in pairs)


def test_support_equals_pygs_and_asking_too_many_returns_every_non_edge() -> None:
    edge_index, n = _graph(), 12
    sampler = NegativeSampler(edge_index, n)
    everything = sampler(10**6)
    assert everything.size(1) == sampler.num_negatives
    # PyG's dense method returns every non-edge when asked for the whole population.
    pyg = negative_sampling(edge_index, num_nodes=n, num_neg_samples=n * n, method="dense")
    assert set(map(tuple, everything.t().tolist())) == set(map(tuple, pyg.t().tolist()))


def test_draws_are_uniform_over_non_edges() -> None:
    edge_index, n = _graph(n=8, m=10), 8
    sampler = NegativeSampler(edge_index, n)
    torch.manual_seed(0)
    counts = torch.zeros(n * n, dtype=torch.long)
    for _ in range(3000):
        neg = sampler(3)
        counts += torch.bincount(neg[0] * n + neg[1], minlength=n * n)
    observed = counts[counts > 0]
    assert observed.numel() == sampler.num_negatives  # every non-edge was drawn
    assert chisquare(observed.numpy()).pvalue > 1e-3


def test_seeded_runs_repeat_and_graph_size_is_checked() -> None:
    edge_index = _graph()
    sampler = NegativeSampler(edge_index, 12)
    torch.manual_seed(5)
    first = sampler(20)
    torch.manual_seed(5)
    assert torch.equal(first, sampler(20))
    with pytest.raises(ValidationError, match=r"edge_index must have shape \(2, num_edges\), got \(3, 4\)"):
        NegativeSampler(torch.zeros(3, 4, dtype=torch.long), 12)
    # a float index excluded no edge at all, and one past num_nodes excluded another pair than its own
    with pytest.raises(ValidationError, match=r"edge_index must have dtype torch.long, got torch.float32"):
        NegativeSampler(edge_index.float(), 12)
    with pytest.raises(ValidationError, match=r"edge_index holds node indices in \[0, 12\] but the graph has 12 "
                                              r"nodes"):
        NegativeSampler(torch.tensor([[0], [12]]), 12)
    assert NegativeSampler(edge_index, np.int64(12)).num_nodes == 12
    with pytest.raises(ValidationError, match=r"negative sampling needs num_nodes as an int >= 2 \(a graph of at "
                                              r"least 2 nodes\), got int 1"):
        NegativeSampler(torch.zeros(2, 0, dtype=torch.long), 1)
    with pytest.raises(ValidationError, match=r"needs num_nodes as an int >= 2 .*got Tensor tensor\(12\)"):
        NegativeSampler(edge_index, torch.tensor(12))  # data.num_nodes is an int; a tensor is named as such
    with pytest.raises(ValidationError, match=r"the number of negatives must be an int, got float 2\.5"):
        NegativeSampler(edge_index, 12)(2.5)  # it drew 2 pairs
