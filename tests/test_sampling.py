"""Tests of graphdl.sampling: the pure-torch neighbour sampler and its loaders.

References: the original graph (every sampled edge must exist, with its id),
``torch_geometric.utils.k_hop_subgraph`` (full neighbourhoods), a full-graph
SAGEConv forward (exact outputs on the seeds with full fan-out), and the
exact distribution of uniform k-subsets.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter

import pytest
import torch
import torch_geometric.typing
from torch_geometric.data import Data, HeteroData
from torch_geometric.loader import LinkLoader, NeighborLoader, NodeLoader
from torch_geometric.nn import SAGEConv
from torch_geometric.sampler import NegativeSampling, NodeSamplerInput
from torch_geometric.utils import coalesce, k_hop_subgraph

from graphdl.errors import ValidationError
from graphdl.sampling import (
    TorchNeighborSampler,
    _uniform_subsets,
    link_neighbor_loader,
    neighbor_loader,
)

N = 300


@pytest.fixture(scope="module")
def graph() -> Data:
    """Directed graph, no duplicate edges, in-degrees 0 .. ~30 plus a hub of 150."""
    gen = torch.Generator().manual_seed(12345)
    src = torch.randint(N, (3000,), generator=gen)
    dst = (torch.rand(3000, generator=gen) ** 2 * N).long()  # skewed in-degrees
    hub = torch.stack([torch.randperm(N, generator=gen)[:150], torch.full((150,), 7)])
    edge_index = coalesce(torch.cat([torch.stack([src, dst]), hub], dim=1), num_nodes=N)
    edge_index = edge_index[:, torch.randperm(edge_index.size(1), generator=gen)]  # unsorted
    num_edges = edge_index.size(1)
    return Data(
        x=torch.randn(N, 6, generator=gen),
        y=torch.randint(4, (N,), generator=gen),
        edge_index=edge_index,
        edge_attr=torch.randn(num_edges, 3, generator=gen),
        num_nodes=N,
    )


def in_degree(data: Data) -> torch.Tensor:
    return torch.bincount(data.edge_index[1], minlength=data.num_nodes)


def check_edges(batch: Data, data: Data, reverse_ok: bool = False) -> None:
    """Every sampled edge exists in ``data`` with the id given in ``e_id``.

    With ``reverse_ok`` (bidirectional subgraphs) an edge may also be the
    reverse of edge ``e_id``, which PyG gives the same id and features.
    """
    sampled, original = batch.n_id[batch.edge_index], data.edge_index[:, batch.e_id]
    same = (sampled == original).all(0)
    if reverse_ok:
        same |= (sampled == original.flip(0)).all(0)
    assert bool(same.all())
    assert torch.equal(batch.edge_attr, data.edge_attr[batch.e_id])


@pytest.mark.parametrize("replace", [False, True])
@pytest.mark.parametrize("disjoint", [False, True])
@pytest.mark.parametrize("subgraph_type", ["directional", "bidirectional"])
def test_sampled_edges_exist_and_features_sliced(graph, replace, disjoint, subgraph_type):
    seeds = torch.randperm(N)[:120]
    loader = neighbor_loader(graph, [6, 4], input_nodes=seeds, batch_size=50,
                             replace=replace, disjoint=disjoint, subgraph_type=subgraph_type)
    assert isinstance(loader, NodeLoader)
    for i, batch in enumerate(loader):
        check_edges(batch, graph, reverse_ok=subgraph_type == "bidirectional")
        chunk = seeds[i * 50:(i + 1) * 50]
        assert batch.batch_size == chunk.numel()
        assert torch.equal(batch.n_id[:batch.batch_size], chunk)
        assert torch.equal(batch.input_id, torch.arange(i * 50, i * 50 + chunk.numel()))
        assert torch.equal(batch.x, graph.x[batch.n_id])
        assert torch.equal(batch.y, graph.y[batch.n_id])
        if disjoint:  # every edge stays inside one seed's tree
            assert torch.equal(batch.batch[:batch.batch_size], torch.arange(batch.batch_size))
            assert torch.equal(batch.batch[batch.edge_index[0]], batch.batch[batch.edge_index[1]])
        else:
            assert batch.n_id.unique().numel() == batch.n_id.numel()


@pytest.mark.parametrize("replace", [False, True])
def test_fan_out_per_hop(graph, replace):
    fanout = [5, 3, 2]
    deg = in_degree(graph)
    torch.manual_seed(1)
    loader = neighbor_loader(graph, fanout, batch_size=64, shuffle=True, replace=replace)
    for batch in loader:
        nsn, nse = batch.num_sampled_nodes, batch.num_sampled_edges
        assert len(nsn) == len(fanout) + 1 and len(nse) == len(fanout)
        assert sum(nsn) == batch.num_nodes and sum(nse) == batch.num_edges
        node_ptr = [0, *itertools.accumulate(nsn)]
        edge_ptr = [0, *itertools.accumulate(nse)]
        for hop, k in enumerate(fanout):
            src, dst = batch.edge_index[:, edge_ptr[hop]:edge_ptr[hop + 1]]
            e_id = batch.e_id[edge_ptr[hop]:edge_ptr[hop + 1]]
            lo, hi = node_ptr[hop], node_ptr[hop + 1]  # the frontier of this hop
            assert bool(((dst >= lo) & (dst < hi)).all())
            counts = torch.bincount(dst - lo, minlength=hi - lo)
            frontier_deg = deg[batch.n_id[lo:hi]]
            if replace:
                assert torch.equal(counts, torch.where(frontier_deg > 0, k, 0))
            else:
                assert torch.equal(counts, frontier_deg.clamp(max=k))
                # distinct edges (the graph has no multi-edges: distinct neighbours)
                pairs = dst * N + src
                assert pairs.unique().numel() == pairs.numel()
                assert e_id.unique().numel() == e_id.numel()
            # nodes added in this hop: sources not seen before, in first-seen order
            new = batch.n_id[node_ptr[hop + 1]:node_ptr[hop + 2]]
            seen = set(batch.n_id[:node_ptr[hop + 1]].tolist())
            first_seen = list(dict.fromkeys(v for v in batch.n_id[src].tolist() if v not in seen))
            assert new.tolist() == first_seen


@pytest.mark.parametrize("replace", [False, True])
def test_neighbours_drawn_uniformly(graph, replace):
    # 2000 copies of the hub (~165 in-neighbours) as seeds, 5 draws each:
    # every neighbour is expected 2000 * 5 / 165 = ~61 times (sd ~8)
    torch.manual_seed(0)
    sampler = TorchNeighborSampler(graph, [5], replace=replace)
    out = sampler.sample_from_nodes(NodeSamplerInput(None, torch.full((2000,), 7)))
    assert torch.equal(torch.bincount(out.col, minlength=2000), torch.full((2000,), 5))
    counts = Counter(graph.edge_index[0, out.edge].tolist())
    deg = int(in_degree(graph)[7])
    assert len(counts) == deg  # no multi-edges: one count per in-neighbour
    expected = 10_000 / deg
    assert max(abs(c - expected) for c in counts.values()) < 40


def test_full_neighbourhood_matches_k_hop_subgraph(graph):
    seeds = torch.tensor([7, 0, 299, 150, 42, 3])
    subset, _, _, edge_mask = k_hop_subgraph(seeds, 1, graph.edge_index, num_nodes=N)
    directional = edge_mask & torch.isin(graph.edge_index[1], seeds)
    batch = next(iter(neighbor_loader(graph, [-1], input_nodes=seeds, batch_size=6)))
    assert sorted(batch.n_id.tolist()) == subset.tolist()
    assert sorted(batch.e_id.tolist()) == directional.nonzero().view(-1).tolist()

    # two hops: same nodes; 'induced' returns every edge between them
    subset2, _, _, edge_mask2 = k_hop_subgraph(seeds, 2, graph.edge_index, num_nodes=N)
    for subgraph_type in ("directional", "induced"):
        loader = neighbor_loader(graph, [-1, -1], input_nodes=seeds, batch_size=6,
                                 subgraph_type=subgraph_type)
        batch = next(iter(loader))
        check_edges(batch, graph)
        assert sorted(batch.n_id.tolist()) == subset2.tolist()
        if subgraph_type == "induced":
            assert sorted(batch.e_id.tolist()) == edge_mask2.nonzero().view(-1).tolist()
        else:  # directional: only edges into the seeds and their 1-hop nodes
            into = torch.isin(graph.edge_index[1], subset)
            assert sorted(batch.e_id.tolist()) == into.nonzero().view(-1).tolist()


def test_reproducible_under_manual_seed(graph):
    def run(seed: int) -> list[tuple[torch.Tensor, ...]]:
        torch.manual_seed(seed)
        loader = neighbor_loader(graph, [4, 4], batch_size=64, shuffle=True)
        return [(b.n_id, b.edge_index, b.e_id) for b in loader]

    first, again, other = run(0), run(0), run(1)
    assert all(torch.equal(a, b) for x, y in zip(first, again) for a, b in zip(x, y))
    assert not all(
        x[0].shape == y[0].shape and torch.equal(x[0], y[0]) for x, y in zip(first, other)
    )


def test_pygs_directed_false_and_a_prebuilt_neighbor_sampler_are_taken_as_pyg_takes_them(graph):
    """NeighborLoader's deprecated ``directed=False`` (an induced subgraph) and its ``neighbor_sampler`` argument
    reached torch's DataLoader and failed there with a TypeError."""
    def batches(**kwargs) -> list[tuple[torch.Tensor, ...]]:
        torch.manual_seed(0)
        return [(b.n_id, b.edge_index, b.e_id) for b in neighbor_loader(graph, [3, 3], batch_size=64, **kwargs)]

    def same(a, b) -> bool:
        return len(a) == len(b) and all(torch.equal(u, v) for x, y in zip(a, b) for u, v in zip(x, y))

    induced = batches(subgraph_type="induced")
    with pytest.warns(UserWarning, match=r"The usage of the 'directed' argument in 'TorchNeighborSampler' is "
                                         r"deprecated\. Use `subgraph_type='induced'` instead\."):
        assert same(batches(directed=False), induced)
    assert not same(batches(), induced)
    sampler = TorchNeighborSampler(graph, [3, 3], subgraph_type="induced")
    assert same(batches(neighbor_sampler=sampler), induced)
    torch.manual_seed(0)
    link = next(iter(link_neighbor_loader(graph, [3], batch_size=16, neighbor_sampler=sampler)))
    check_edges(link, graph)


class SAGE(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = SAGEConv(6, 16, aggr="mean")
        self.conv2 = SAGEConv(16, 5, aggr="mean")

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x, edge_index).relu(), edge_index)


@pytest.mark.parametrize("disjoint", [False, True])
def test_sage_on_full_fanout_batch_equals_full_graph(graph, disjoint):
    torch.manual_seed(0)
    model = SAGE().eval()
    with torch.no_grad():
        full = model(graph.x, graph.edge_index)
        loader = neighbor_loader(graph, [-1, -1], batch_size=40, shuffle=True,
                                 disjoint=disjoint)
        for batch in loader:
            out = model(batch.x, batch.edge_index)[:batch.batch_size]
            torch.testing.assert_close(out, full[batch.n_id[:batch.batch_size]])
        # and the check is sharp: a truncated fan-out changes the hub's output
        batch = next(iter(neighbor_loader(graph, [3, 3], input_nodes=[7], batch_size=1)))
        out = model(batch.x, batch.edge_index)[:1]
        assert not torch.allclose(out, full[7:8], atol=1e-4)


@pytest.mark.parametrize("method", ["floyd", "sort"])
def test_uniform_subsets_are_uniform(method):
    torch.manual_seed(0)
    trials, d, k = 35_000, 7, 3
    out = _uniform_subsets(torch.full((trials,), d), k, method=method)
    assert bool(((out >= 0) & (out < d)).all())
    subsets = Counter(tuple(sorted(r)) for r in out.tolist())
    assert all(len(s) == k for s in subsets)  # distinct offsets
    expected = trials / math.comb(d, k)  # 1000 per subset, sd ~31
    assert len(subsets) == math.comb(d, k)
    assert max(abs(c - expected) for c in subsets.values()) < 150
    # varying degrees: offsets stay in range and distinct
    deg = torch.randint(k + 1, 40, (500,))
    out = _uniform_subsets(deg, k, method=method)
    assert bool((out < deg[:, None]).all())
    assert bool((out.sort(1).values.diff(dim=1) > 0).all())


def test_link_loader_binary_negatives(graph):
    torch.manual_seed(0)
    pos = graph.edge_index[:, :90]
    loader = link_neighbor_loader(graph, [4, 2], edge_label_index=pos, neg_sampling_ratio=2.0,
                                  batch_size=30)
    assert isinstance(loader, LinkLoader)
    for i, batch in enumerate(loader):
        check_edges(batch, graph)
        assert batch.edge_label_index.shape == (2, 90)
        assert torch.equal(batch.edge_label, torch.cat([torch.ones(30), torch.zeros(60)]))
        assert torch.equal(batch.n_id[batch.edge_label_index[:, :30]], pos[:, batch.input_id])
        assert torch.equal(batch.input_id, torch.arange(i * 30, (i + 1) * 30))
        # the endpoints of every link (negatives too) are sampled nodes
        assert int(batch.edge_label_index.max()) < batch.num_nodes

    # given labels: LinkLoader shifts 0/1 to 1/2 so that 0 means "negative"
    label = torch.randint(2, (90,))
    loader = link_neighbor_loader(graph, [2], edge_label_index=pos, edge_label=label,
                                  neg_sampling=NegativeSampling("binary", 0.5), batch_size=30)
    batch = next(iter(loader))
    assert batch.edge_label.shape == (45,)
    assert torch.equal(batch.edge_label[:30], label[:30] + 1)
    assert bool((batch.edge_label[30:] == 0).all())


def test_link_loader_without_negatives_and_triplet(graph):
    pos = graph.edge_index[:, 10:40]
    batch = next(iter(link_neighbor_loader(graph, [3], edge_label_index=pos, batch_size=30)))
    assert "edge_label" not in batch  # no labels given, none sampled
    assert torch.equal(batch.n_id[batch.edge_label_index], pos)

    for disjoint in (False, True):
        loader = link_neighbor_loader(graph, [3], edge_label_index=pos, batch_size=10,
                                      neg_sampling=NegativeSampling("triplet", 3),
                                      disjoint=disjoint)
        batch = next(iter(loader))
        check_edges(batch, graph)
        assert torch.equal(batch.n_id[batch.src_index], pos[0, :10])
        assert torch.equal(batch.n_id[batch.dst_pos_index], pos[1, :10])
        assert batch.dst_neg_index.shape == (10, 3)
        if disjoint:  # each negative lives in the tree of its own link
            assert torch.equal(batch.batch[batch.dst_neg_index],
                               torch.arange(10).view(-1, 1).expand(-1, 3))


def test_link_loader_disjoint_binary(graph):
    pos = graph.edge_index[:, :20]
    loader = link_neighbor_loader(graph, [3, 2], edge_label_index=pos, neg_sampling_ratio=1,
                                  batch_size=20, disjoint=True)
    batch = next(iter(loader))
    check_edges(batch, graph)
    src, dst = batch.edge_label_index
    assert torch.equal(batch.batch[src], torch.arange(40))  # batch = link example
    assert torch.equal(batch.batch[dst], torch.arange(40))
    assert torch.equal(batch.n_id[batch.edge_label_index[:, :20]], pos)


def test_duplicate_seeds_each_get_their_neighbours(graph):
    seeds = torch.tensor([7, 7, 3])
    batch = next(iter(neighbor_loader(graph, [-1], input_nodes=seeds, batch_size=3)))
    assert torch.equal(batch.n_id[:3], seeds)
    counts = torch.bincount(batch.edge_index[1], minlength=3)[:3]
    assert torch.equal(counts, in_degree(graph)[seeds])
    check_edges(batch, graph)


def test_sampler_used_directly_and_bool_mask(graph):
    sampler = TorchNeighborSampler(graph, [3])
    out = sampler.sample_from_nodes(NodeSamplerInput(None, torch.tensor([1, 2])))
    assert torch.equal(out.metadata[0], torch.arange(2))
    assert sampler.edge_permutation is None
    mask = torch.zeros(N, dtype=torch.bool)
    mask[[5, 9, 11]] = True
    batch = next(iter(neighbor_loader(graph, [2], input_nodes=mask, batch_size=8)))
    assert batch.n_id[:3].tolist() == [5, 9, 11]
    assert batch.input_id.tolist() == [5, 9, 11]


@pytest.mark.parametrize(
    ("num_neighbors", "message"),
    [
        ([], "num_neighbors: expected at least one hop, got an empty list"),
        ([10, -2], "every entry must be an int >= -1 (-1 = all neighbours, 0 = none), "
                   "got [10, -2] (invalid: [-2])"),
        ([2.5], "invalid: [2.5]"),
        (5, "expected a list of ints such as [10, 5], got 5"),
    ],
)
def test_bad_num_neighbors(graph, num_neighbors, message):
    with pytest.raises(ValidationError) as err:
        TorchNeighborSampler(graph, num_neighbors)
    assert message in str(err.value)
    with pytest.raises(ValidationError) as err:
        neighbor_loader(graph, num_neighbors, batch_size=4)
    assert message in str(err.value)


def test_bad_inputs(graph):
    message = f"input_nodes: node indices must lie in [0, {N - 1}] (the graph has {N} nodes), " \
              f"got 1 out of range, e.g. {N}"
    with pytest.raises(ValidationError) as err:
        neighbor_loader(graph, [2], input_nodes=torch.tensor([0, N]), batch_size=4)
    assert message in str(err.value)

    sampler = TorchNeighborSampler(graph, [2])
    with pytest.raises(ValidationError, match=r"input nodes: node indices must lie in \[0, 299\]"):
        sampler.sample_from_nodes(NodeSamplerInput(None, torch.tensor([-1, 3])))

    with pytest.raises(ValidationError, match="a boolean mask needs one entry per node"):
        neighbor_loader(graph, [2], input_nodes=torch.ones(5, dtype=torch.bool))

    bad_links = torch.tensor([[0, 1], [2, 400]])
    with pytest.raises(ValidationError, match=r"edge_label_index: node indices must lie in"):
        link_neighbor_loader(graph, [2], edge_label_index=bad_links)
    links = torch.tensor([[0, 1], [2, 3]])
    with pytest.raises(ValidationError, match=r"^edge_label: expected a tensor of one label per link, got list; "
                                              r"convert it with torch.as_tensor\(edge_label\)\.$"):
        link_neighbor_loader(graph, [2], edge_label_index=links, edge_label=[1, 0])  # was an AttributeError

    with pytest.raises(ValidationError, match="samples homogeneous graphs"):
        TorchNeighborSampler(HeteroData(), [2])
    with pytest.raises(ValidationError, match="subgraph_type: expected one of"):
        TorchNeighborSampler(graph, [2], subgraph_type="khop")
    with pytest.raises(ValidationError, match="temporal and weighted sampling"):
        TorchNeighborSampler(graph, [2], time_attr="time")


def test_backend_dispatch(graph, monkeypatch):
    monkeypatch.setattr(torch_geometric.typing, "WITH_PYG_LIB", False)
    monkeypatch.setattr(torch_geometric.typing, "WITH_TORCH_SPARSE", False)
    with pytest.raises(ValidationError, match="backend='pyg'.*needs pyg-lib or torch-sparse"):
        neighbor_loader(graph, [2], backend="pyg")
    loader = neighbor_loader(graph, [2])  # auto without the extras: ours
    assert not isinstance(loader, NeighborLoader)
    assert isinstance(loader.node_sampler, TorchNeighborSampler)

    monkeypatch.setattr(torch_geometric.typing, "WITH_PYG_LIB", True)  # auto: PyG's own
    assert isinstance(neighbor_loader(graph, [2], batch_size=8), NeighborLoader)
    link = link_neighbor_loader(graph, [2], neg_sampling_ratio=1.0, batch_size=8)
    assert type(link).__name__ == "LinkNeighborLoader"
    loader = neighbor_loader(graph, [2], backend="torch")
    assert isinstance(loader.node_sampler, TorchNeighborSampler)
