"""Link-path input checks of graphdl.sampling (``link_neighbor_loader``, ``sample_from_edges``).

The link metadata itself is compared with PyG's ``edge_sample`` in tests/test_sampling_semantics.py;
here: inputs that PyG's ``LinkLoader`` takes without a check and that used to give wrong batches or
fail mid-epoch with an unrelated error, now refused up front with a ValidationError naming the fix.
"""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.sampler import EdgeSamplerInput, NegativeSampling

from graphdl.errors import ValidationError
from graphdl.sampling import TorchNeighborSampler, link_neighbor_loader

N = 20
E = 60


@pytest.fixture(scope="module")
def graph() -> Data:
    gen = torch.Generator().manual_seed(3)
    return Data(x=torch.randn(N, 3, generator=gen), edge_index=torch.randint(N, (2, E), generator=gen),
                num_nodes=N)


# --- edge_label without edge_label_index: one label per edge of the graph -------------------------


@pytest.mark.parametrize(
    ("edge_label", "message"),
    [
        # more labels than edges: LinkLoader silently used the first E (labels misaligned, no error)
        (torch.arange(E + 40.0), rf"^edge_label: expected one label per link \({E}, one per edge of "
                                 r"data.edge_index as edge_label_index is None\), got 100\.$"),
        # fewer: the first batches came out, then an IndexError mid-epoch
        (torch.ones(5), r"expected one label per link \(60, .*\), got 5\.$"),
        # a list: AttributeError 'list' object has no attribute 'min' inside LinkLoader
        ([1.0] * E, r"^edge_label: expected a tensor of one label per link, got list"),
        # a 0-d tensor: IndexError from the length check itself
        (torch.tensor(1.0), r"expected one label per link \(60, .*\), got a 0-d tensor\.$"),
    ],
    ids=["too_many", "too_few", "list", "0d"],
)
def test_edge_label_must_match_every_edge_when_edge_label_index_is_none(graph, edge_label, message):
    with pytest.raises(ValidationError, match=message):
        link_neighbor_loader(graph, [2], edge_label=edge_label, neg_sampling_ratio=1.0, batch_size=8)


def test_edge_label_for_every_edge_is_still_taken(graph):
    label = torch.arange(E) % 2
    loader = link_neighbor_loader(graph, [2], edge_label=label, batch_size=16)
    seen = torch.cat([b.edge_label for b in loader])
    assert torch.equal(seen, label)  # in order, one per edge


def test_a_0d_edge_label_with_edge_label_index_is_refused(graph):
    message = r"^edge_label: expected one label per link \(3\), got a 0-d tensor\.$"
    with pytest.raises(ValidationError, match=message):
        link_neighbor_loader(graph, [2], edge_label_index=graph.edge_index[:, :3], edge_label=torch.tensor(1))


def test_no_edge_index_and_no_edge_label_index_is_refused():
    data = Data(x=torch.randn(5, 2), num_nodes=5)  # was TypeError: 'NoneType' object is not subscriptable
    with pytest.raises(ValidationError, match=r"^edge_label_index: None takes every edge of data.edge_index"):
        link_neighbor_loader(data, [2], batch_size=2)


# --- neg_sampling weights ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weight", "message"),
    [
        # [N, 1]: multinomial drew per row, then torch.cat failed on 1-D vs 2-D
        (torch.ones(N, 1), rf"^neg_sampling.dst_weight: expected a 1-D tensor of one weight per node "
                           rf"\({N}\), got shape \({N}, 1\)\.$"),
        (torch.ones(3), r"got shape \(3,\)\.$"),
        ([1.0] * N, r"got list\.$"),
        # RuntimeError "invalid multinomial distribution", the NaN one claiming "entry < 0"
        (-torch.ones(N), r"must be finite and >= 0 with a positive sum"),
        (torch.zeros(N), r"must be finite and >= 0 with a positive sum"),
        (torch.full((N,), float("nan")), r"must be finite and >= 0 with a positive sum"),
    ],
    ids=["2d", "too_short", "list", "negative", "zero_sum", "nan"],
)
def test_bad_negative_sampling_weights_are_refused(graph, weight, message):
    sampler = TorchNeighborSampler(graph, [2])
    inputs = EdgeSamplerInput(None, graph.edge_index[0, :4], graph.edge_index[1, :4])
    for mode in ("binary", "triplet"):
        with pytest.raises(ValidationError, match=message):
            sampler.sample_from_edges(inputs, NegativeSampling(mode, 2, dst_weight=weight))


def test_negative_sampling_weights_choose_the_negatives(graph):
    sampler = TorchNeighborSampler(graph, [2])
    inputs = EdgeSamplerInput(None, graph.edge_index[0, :4], graph.edge_index[1, :4])
    weight = torch.zeros(N, dtype=torch.float64)
    weight[[3, 11]] = 1.0  # only nodes 3 and 11 may be drawn
    neg = NegativeSampling("binary", 5, src_weight=weight, dst_weight=weight)
    out = sampler.sample_from_edges(inputs, neg)
    negatives = out.node[out.metadata[1][:, 4:]]
    assert set(negatives.unique().tolist()) <= {3, 11}


def test_seed_times_are_refused_when_the_loader_is_built(graph):
    """Temporal sampling is not implemented: the loader was built and the error came at the first batch."""
    from graphdl.sampling import neighbor_loader

    with pytest.raises(ValidationError, match=r"^edge_label_time: temporal sampling is not implemented"):
        link_neighbor_loader(graph, [2], edge_label_time=torch.zeros(graph.num_edges), backend="torch")
    with pytest.raises(ValidationError, match=r"^input_time: temporal sampling is not implemented"):
        neighbor_loader(graph, [2], input_time=torch.zeros(graph.num_nodes), backend="torch")
