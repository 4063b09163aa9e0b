"""k-NN graphs in pure torch against scikit-learn's NearestNeighbors, and DGCNN's dynamic edge convolution."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

import graphdl
import graphdl.graphs.knn as knn_module
from graphdl.errors import ConfigError, ValidationError
from graphdl.graphs import knn_graph, radius_graph


@pytest.fixture(params=["kd_tree", "all_pairs"])
def search(request, monkeypatch):
    """CPU tensors take the k-d tree; the all-pairs search (that of GPU tensors) is run here by substitution."""
    if request.param == "all_pairs":
        monkeypatch.setattr(knn_module, "_kd_tree", lambda *args: knn_module._all_pairs(*args[:-1]))  # no workers
    return request.param


def _reference(x: torch.Tensor, k: int, batch: torch.Tensor, loop: bool, cosine: bool) -> set[tuple[int, int]]:
    """(neighbour, node) pairs by scikit-learn, graph by graph."""
    pairs = set()
    for g in batch.unique().tolist():
        nodes = (batch == g).nonzero().view(-1).numpy()
        pts = x[nodes].double().numpy()
        want = min(k + (0 if loop else 1), len(nodes))
        nn = NearestNeighbors(n_neighbors=want, metric="cosine" if cosine else "euclidean").fit(pts)
        _, idx = nn.kneighbors(pts)
        for i, row in enumerate(idx):
            row = [j for j in row if loop or j != i][:k]
            pairs.update((int(nodes[j]), int(nodes[i])) for j in row)
    return pairs


@pytest.mark.parametrize("loop", [False, True])
@pytest.mark.parametrize("cosine", [False, True])
def test_knn_graph_equals_sklearn_graph_by_graph(search, loop, cosine):
    torch.manual_seed(0)
    batch = torch.tensor([0] * 30 + [1] * 4 + [3] * 25)  # graph 2 is empty, graph 1 smaller than k
    x = torch.randn(len(batch), 3)
    edge_index = knn_graph(x, 6, batch, loop=loop, cosine=cosine)
    got = list(zip(*edge_index.tolist()))
    assert len(got) == len(set(got))
    assert set(got) == _reference(x, 6, batch, loop, cosine)
    assert torch.equal(edge_index[1], edge_index[1].sort().values)  # sorted by node, as torch-cluster's
    assert bool((batch[edge_index[0]] == batch[edge_index[1]]).all())


def test_knn_graph_unsorted_batch_flow_and_blocks(search, monkeypatch):
    torch.manual_seed(1)
    batch = torch.tensor([1, 0, 1, 0, 0, 1, 1, 0, 1, 0] * 3)
    x = torch.randn(len(batch), 2)
    edge_index = knn_graph(x, 3, batch)
    assert set(zip(*edge_index.tolist())) == _reference(x, 3, batch, False, False)
    assert torch.equal(knn_graph(x, 3, batch, flow="target_to_source"), edge_index.flip(0))
    monkeypatch.setattr(knn_module, "_CHUNK", 7)  # all pairs: a few query rows of one graph at a time
    assert torch.equal(knn_graph(x, 3, batch), edge_index)


def test_knn_graph_without_loops_on_equal_points_keeps_k(search):
    x = torch.tensor([[0.0], [0.0], [0.0], [5.0]])  # three equal points: self may rank after the others
    edge_index = knn_graph(x, 2, loop=False)
    assert torch.equal(edge_index[1], torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    assert bool((edge_index[0] != edge_index[1]).all())
    assert set(edge_index[0, :6].tolist()) == {0, 1, 2}


def test_knn_graph_small_inputs(search):
    assert knn_graph(torch.empty(0, 3), 2).shape == (2, 0)
    assert knn_graph(torch.randn(1, 3), 2).shape == (2, 0)  # no other node
    assert knn_graph(torch.randn(1, 3), 2, loop=True).tolist() == [[0], [0]]
    assert knn_graph(torch.tensor([0.0, 1.0, 3.0]), 1).tolist() == [[1, 0, 1], [0, 1, 2]]  # 1-d: one feature


def test_knn_graph_names_bad_input():
    x = torch.randn(4, 2)
    with pytest.raises(ValidationError, match=r"knn_graph: x must be a float tensor \(num_nodes, num_features\), "
                                              r"got torch.int64 of shape \(4, 2\)"):
        knn_graph(x.long(), 2)
    with pytest.raises(ConfigError, match=r"knn_graph's k must be an int >= 1, got 0"):
        knn_graph(x, 0)
    with pytest.raises(ValidationError, match=r"knn_graph: batch has 3 entries but x has 4 nodes"):
        knn_graph(x, 2, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValidationError, match=r"knn_graph: x holds NaN or infinite values"):
        knn_graph(torch.tensor([[0.0], [float("nan")]]), 1)
    with pytest.raises(ValidationError, match=r"knn_graph: flow must be 'source_to_target' or 'target_to_source'"):
        knn_graph(x, 2, flow="both")
    with pytest.raises(ConfigError, match=r"knn_graph's num_workers must be an int >= 1, got 0"):
        knn_graph(x, 2, num_workers=0)
    with pytest.raises(ValidationError, match=r"radius_graph: batch holds graph index 1, but batch_size=1 graphs; "
                                              r"pass the number of graphs \(batch.max\(\) \+ 1\)"):
        radius_graph(x, 1.0, torch.tensor([0, 0, 1, 1]), batch_size=1)


def test_pyg_keyword_arguments_are_taken():
    """Code written for PyG's knn_graph/radius_graph passes num_workers and batch_size; the result is the same."""
    torch.manual_seed(0)
    x, batch = torch.randn(40, 3), torch.arange(4).repeat_interleave(10)
    for build, size in ((knn_graph, 3), (radius_graph, 1.5)):
        assert torch.equal(build(x, size, batch, num_workers=2, batch_size=4), build(x, size, batch))


def _radius_reference(x: torch.Tensor, r: float, batch: torch.Tensor, loop: bool) -> set[tuple[int, int]]:
    pairs = set()
    for g in batch.unique().tolist():
        nodes = (batch == g).nonzero().view(-1).numpy()
        _, idx = NearestNeighbors(radius=r).fit(x[nodes].numpy()).radius_neighbors(x[nodes].numpy())
        pairs.update((int(nodes[j]), int(nodes[i])) for i, row in enumerate(idx) for j in row if loop or j != i)
    return pairs


@pytest.mark.parametrize("loop", [False, True])
def test_radius_graph_equals_sklearn_and_keeps_the_nearest(search, loop):
    torch.manual_seed(3)
    batch = torch.tensor([0] * 40 + [2] * 30)
    x = torch.rand(len(batch), 3)
    edge_index = radius_graph(x, 0.3, batch, loop=loop, max_num_neighbors=100)
    assert set(zip(*edge_index.tolist())) == _radius_reference(x, 0.3, batch, loop)
    assert torch.equal(edge_index[1], edge_index[1].sort().values)
    # capped: each node keeps its nearest ones within r, i.e. the k-NN edges that are within r
    capped = set(zip(*radius_graph(x, 0.3, batch, loop=loop, max_num_neighbors=3).tolist()))
    near = set(zip(*knn_graph(x, 3, batch, loop=loop).tolist()))
    assert capped == {(j, i) for j, i in near if float((x[j] - x[i]).norm()) <= 0.3}
    with pytest.raises(ValidationError, match=r"radius_graph: r must be a finite distance > 0, got 0"):
        radius_graph(x, 0)
    with pytest.raises(ConfigError, match=r"radius_graph's max_num_neighbors must be an int >= 1, got 0"):
        radius_graph(x, 0.3, max_num_neighbors=0)


def test_dynamic_edgeconv_equals_a_dense_reference():
    torch.manual_seed(2)
    layer = graphdl.layers.create("dynamic_edgeconv", 3, 5, k=4)
    batch = torch.tensor([0] * 9 + [1] * 7)
    x = torch.randn(len(batch), 3)
    out = layer(x, batch)
    mlp = layer.conv.nn
    for i in range(len(x)):  # max over the 4 nearest of i's graph, i included, of h([x_i, x_j - x_i])
        same = (batch == batch[i]).nonzero().view(-1)
        near = same[(x[same] - x[i]).norm(dim=-1).topk(4, largest=False).indices]
        messages = mlp(torch.cat([x[i].expand(4, -1), x[near] - x[i]], dim=-1))
        torch.testing.assert_close(out[i], messages.max(dim=0).values)
    perm = torch.randperm(len(x))  # the graph is rebuilt from the features: permuting nodes permutes outputs
    torch.testing.assert_close(layer(x[perm], batch[perm]), out[perm])
    out.sum().backward()
    assert all(p.grad is not None for p in layer.parameters())


def test_dynamic_edgeconv_names_bad_input_and_is_no_gnn_layer():
    layer = graphdl.layers.create("dynamic_edgeconv", 3, 5, k=4)
    with pytest.raises(ValidationError, match=r"dynamic_edgeconv: x has 2 features per node but in_channels=3; "
                                              r"build it with in_channels=2"):
        layer(torch.randn(6, 2))
    with pytest.raises(ValidationError, match=r"dynamic_edgeconv: x has dtype torch.float64 but the parameters are "
                                              r"torch.float32"):
        layer(torch.randn(6, 3, dtype=torch.float64))
    with pytest.raises(ConfigError, match=r"layer 'dynamic_edgeconv' runs on the k-NN graph it builds from its "
                                          r"input features"):
        graphdl.models.create("gnn", layer="dynamic_edgeconv", in_channels=3, hidden_channels=8, out_channels=2)
    assert np.isfinite(layer.double()(torch.randn(6, 3, dtype=torch.float64)).detach().numpy()).all()
