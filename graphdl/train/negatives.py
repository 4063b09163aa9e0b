r"""Uniform negative edges of a fixed graph, sampled on the graph's device.

PyG's ``negative_sampling(edge_index, num_nodes, k)`` draws ``k`` node pairs
uniformly without replacement among the pairs :math:`(i, j)`, :math:`i \ne j`,
that are not edges. Every call rebuilds the graph's edge set and tests the
draws against it with ``np.isin`` on the CPU, whatever the device: on ogbl-ddi
(2.1M directed edges) one call for 64K negatives took 1.3 s on an idle CPU
(``benchmarks/results/negative_sampling.md``), 17 calls per epoch; with this
sampler a one-thread CPU epoch went from 62.9 s to 36 s.

:class:`NegativeSampler` draws from the same distribution, but sorts the edge
set once and tests membership with ``torch.searchsorted`` on the graph's
device; its random numbers come from torch's generator of that device, so
``seed_everything`` makes a run repeatable.

Pairs are numbered as in PyG (``edge_index_to_vector``): the off-diagonal pair
:math:`(i, j)` of an :math:`N`-node graph is
:math:`i (N - 1) + j - [j > i]`, so the population has :math:`N (N - 1)` pairs.
"""

from __future__ import annotations

import numbers

import torch
from torch import Tensor

from graphdl.errors import ValidationError
from graphdl.validate import check_edge_index

__all__ = ["NegativeSampler"]


def _pair_ids(edge_index: Tensor, num_nodes: int) -> Tensor:
    """Off-diagonal pair numbers of ``edge_index`` (self-loops dropped)."""
    row, col = edge_index
    keep = row != col
    row, col = row[keep], col[keep]
    return row * (num_nodes - 1) + col - (col > row).long()


def _pairs_of(ids: Tensor, num_nodes: int) -> Tensor:
    row = torch.div(ids, num_nodes - 1, rounding_mode="floor")
    col = ids % (num_nodes - 1)
    col = col + (col >= row).long()
    return torch.stack([row, col])


class NegativeSampler:
    """Samples node pairs that are neither edges of ``edge_index`` nor self-loops.

    Args:
        edge_index: The graph's edges, ``[2, E]``; the sampler keeps a sorted
            copy of their pair numbers on the same device.
        num_nodes: Number of nodes :math:`N`.

    Calling ``sampler(k)`` returns ``[2, k]`` distinct pairs, drawn uniformly
    without replacement from the :math:`N (N - 1) - |E|` non-edges (fewer
    only when fewer exist), in random order.
    """

    def __init__(self, edge_index: Tensor, num_nodes: int) -> None:
        if isinstance(num_nodes, bool) or not isinstance(num_nodes, numbers.Integral) or num_nodes < 2:
            raise ValidationError(f"negative sampling needs num_nodes as an int >= 2 (a graph of at least 2 nodes), "
                                  f"got {type(num_nodes).__name__} {num_nodes!r}")
        num_nodes = int(num_nodes)
        # a float index or one past num_nodes would number other pairs than its edges: nothing or the wrong
        # pairs would be excluded
        check_edge_index(edge_index, num_nodes)
        self.num_nodes = num_nodes
        self.population = self.num_nodes * (self.num_nodes - 1)
        self.edges = torch.unique(_pair_ids(edge_index, self.num_nodes))  # sorted
        self.num_negatives = self.population - self.edges.numel()

    def is_edge(self, ids: Tensor) -> Tensor:
        """Whether each pair number in ``ids`` is an edge."""
        if self.edges.numel() == 0:
            return torch.zeros_like(ids, dtype=torch.bool)
        pos = torch.searchsorted(self.edges, ids).clamp_(max=self.edges.numel() - 1)
        return self.edges[pos] == ids

    def __call__(self, num_samples: int) -> Tensor:
        if isinstance(num_samples, bool) or not isinstance(num_samples, numbers.Integral):
            raise ValidationError(f"the number of negatives must be an int, got {type(num_samples).__name__} "
                                  f"{num_samples!r}")
        if num_samples < 0:  # it returned no pairs; PyG's negative_sampling raises too
            raise ValidationError(f"the number of negatives must be >= 0, got {num_samples}")
        device = self.edges.device
        want = min(int(num_samples), self.num_negatives)
        if want <= 0:
            return torch.empty(2, 0, dtype=torch.long, device=device)
        if want * 4 > self.num_negatives:  # a large share: permute all non-edges
            all_ids = torch.arange(self.population, device=device)
            pool = all_ids[~self.is_edge(all_ids)]
            ids = pool[torch.randperm(pool.numel(), device=device)[:want]]
            return _pairs_of(ids, self.num_nodes)
        # Rejection sampling: draw with replacement, drop edges and repeats (keeping the
        # first draw of each pair, which leaves a uniform sample without replacement).
        ids = torch.empty(0, dtype=torch.long, device=device)
        accept = self.num_negatives / self.population
        while ids.numel() < want:
            extra = int(1.1 * (want - ids.numel()) / accept) + 16
            draw = torch.cat([ids, torch.randint(self.population, (extra,), device=device)])
            draw = draw[~self.is_edge(draw)]
            uniq, inverse = torch.unique(draw, return_inverse=True)
            order = torch.arange(draw.numel(), device=device)
            first = torch.full_like(uniq, draw.numel()).scatter_reduce_(0, inverse, order, "amin")
            ids = draw[first.sort().values]
        return _pairs_of(ids[:want], self.num_nodes)
