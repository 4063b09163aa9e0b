"""Point-cloud graphs and layers against references: the k-NN and radius graphs against scikit-learn in the
corners the graph-by-graph tests leave out, and dynamic_edgeconv against PyG's own DynamicEdgeConv, whose
k-NN search (pyg-lib's, absent here) is replaced by a brute-force one."""

from __future__ import annotations

import pytest
import torch
import torch_geometric.typing
from sklearn.neighbors import NearestNeighbors
from torch_geometric.nn import DynamicEdgeConv as PyGDynamicEdgeConv

import graphdl
import graphdl.graphs.knn as knn_module
from graphdl.errors import ConfigError
from graphdl.graphs import knn_graph, radius_graph
from graphdl.layers.knn import DynamicEdgeConv


@pytest.fixture(params=["kd_tree", "all_pairs"])
def search(request, monkeypatch):
    """CPU tensors take the k-d tree; the all-pairs search (that of GPU tensors) is run here by substitution."""
    if request.param == "all_pairs":
        monkeypatch.setattr(knn_module, "_kd_tree", lambda *args: knn_module._all_pairs(*args[:-1]))
    return request.param


def _pairs(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return set(zip(*edge_index.tolist()))


# ---------------------------------------------------------------- knn_graph / radius_graph
# 5 points in the plane, distances between 1 and 9 with no ties among each node's 3 nearest
BASE = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [3.0, 2.5], [-4.0, 6.0]])


@pytest.mark.parametrize("exponent,dtype", [(70, torch.float32), (-80, torch.float32), (600, torch.float64),
                                            (-600, torch.float64)])
def test_knn_and_radius_graphs_do_not_depend_on_the_scale(search, exponent, dtype):
    # Scaling by 2^e is exact, so the graphs must be those of BASE. The squared differences used to overflow
    # (every edge dropped: 2^70 in float32 on the all-pairs search, 2^600 in float64 on the k-d tree) or
    # underflow (2^-80 in float32: pairs tied at distance 0, the wrong neighbours).
    scale = 2.0 ** exponent
    x = BASE.to(dtype) * scale
    for k in (1, 2, 3):
        assert _pairs(knn_graph(x, k)) == _pairs(knn_graph(BASE, k))
    assert _pairs(knn_graph(BASE, 2)) == {(1, 0), (2, 0), (0, 1), (2, 1), (1, 2), (3, 2), (2, 3), (1, 3),
                                         (0, 4), (1, 4)}
    for r in (1.5, 2.5, 7.5):
        assert _pairs(radius_graph(x, r * scale)) == _pairs(radius_graph(BASE, r))
    assert len(_pairs(radius_graph(BASE, 2.5))) == 6  # 0-1, 1-2, 2-3 within 2.5 (2-3 exactly at it)


def test_cosine_zero_vector_is_at_distance_one(search):
    # A zero vector has cosine similarity 0 with every vector (scikit-learn's convention). It was taken as
    # the origin of the unit sphere, at cosine distance 1/2 from all: nearer than vectors over 60 degrees away.
    x = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.3, 1.0], [1.0, 0.1], [-1.0, -0.2]])
    got = knn_graph(x, 2, cosine=True)
    _, idx = NearestNeighbors(n_neighbors=3, metric="cosine").fit(x.numpy()).kneighbors(x.numpy())
    for i in (0, 2, 3, 4):
        want = {int(j) for j in idx[i] if j != i}
        assert {j for j, t in _pairs(got) if t == i} == want, i
    assert (got[1] == 1).sum() == 2  # the zero vector: all others are at distance 1, any two
    assert _pairs(knn_graph(x, 2, cosine=True)) == {(3, 0), (2, 0), (3, 2), (0, 2), (0, 3), (2, 3),
                                                    (1, 4), (2, 4)} | {(j, 1) for j in got[0, got[1] == 1].tolist()}


def test_cosine_graph_of_tiny_and_huge_vectors_is_that_of_their_directions(search):
    # F.normalize divided tiny vectors by its eps (1e-12) instead of their norm, and float32 norms of huge ones
    # overflowed to infinity: both became near-zero vectors
    directions = torch.tensor([[1.0, 1.0], [1.0, 2.0], [-1.0, 1.0], [2.0, -1.0]])
    want = _pairs(knn_graph(directions, 1, cosine=True))
    assert want == {(1, 0), (0, 1), (1, 2), (0, 3)}
    for scale in (1e-30, 1e25):
        assert _pairs(knn_graph(directions * scale, 1, cosine=True)) == want


def test_points_without_features_are_all_at_distance_zero(search):
    # R^0: every pair of points at distance 0. The k-d tree failed inside SciPy with an IndexError.
    x = torch.empty(4, 0)
    edge_index = knn_graph(x, 2)
    assert edge_index[1].tolist() == [0, 0, 1, 1, 2, 2, 3, 3] and bool((edge_index[0] != edge_index[1]).all())
    assert _pairs(radius_graph(x, 1.0)) == {(j, i) for i in range(4) for j in range(4) if i != j}


# ---------------------------------------------------------------- dynamic_edgeconv against PyG
def _brute_force_knn(x, y, ptr_x, ptr_y, k, cosine, num_workers):
    """pyg-lib's ``knn``: for each row of ``y``, its ``k`` nearest rows of ``x`` of the same graph (itself
    included when ``x`` is ``y``), as (row of y, row of x) pairs."""
    def graphs(ptr, n):
        return torch.zeros(n, dtype=torch.long) if ptr is None else torch.repeat_interleave(ptr.diff())

    dist = torch.cdist(y.double(), x.double())
    dist[graphs(ptr_y, y.size(0)).view(-1, 1) != graphs(ptr_x, x.size(0)).view(1, -1)] = float("inf")
    value, col = dist.topk(min(k, x.size(0)), dim=-1, largest=False)
    row = torch.arange(y.size(0)).view(-1, 1).expand_as(col)
    keep = value.isfinite()
    return torch.stack([row[keep], col[keep]])


@pytest.fixture
def pyg_dynamic_edgeconv(monkeypatch):
    monkeypatch.setattr(torch_geometric.typing, "WITH_KNN", True)
    monkeypatch.setattr(torch.ops.pyg, "knn", _brute_force_knn, raising=False)
    return PyGDynamicEdgeConv


@pytest.mark.parametrize("aggr", ["max", "mean", "add"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dynamic_edgeconv_equals_pyg(pyg_dynamic_edgeconv, aggr, dtype):
    torch.manual_seed(0)
    layer = graphdl.layers.create("dynamic_edgeconv", 3, 5, k=5, aggr=aggr, hidden_channels=7).to(dtype)
    ref = pyg_dynamic_edgeconv(layer.conv.nn, k=5, aggr=aggr)  # the same MLP, so the same weights
    batch = torch.tensor([0] * 12 + [1] * 3 + [3] * 9)  # graph 1 smaller than k, graph 2 empty
    x = torch.randn(len(batch), 3, dtype=dtype)
    twins = x.clone()
    twins[5], twins[20] = x[2], x[16]  # duplicate points: which twin is a neighbour is arbitrary, not the output
    torch.testing.assert_close(layer(twins, batch), ref(twins, batch))
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    out, want = layer(x1, batch), ref(x2, batch)
    torch.testing.assert_close(out, want)
    weights = torch.randn_like(out)
    grads = torch.autograd.grad((out * weights).sum(), [x1, *layer.parameters()])
    want_grads = torch.autograd.grad((want * weights).sum(), [x2, *layer.parameters()])
    for got, expected in zip(grads, want_grads):
        torch.testing.assert_close(got, expected)
    torch.testing.assert_close(layer(x), ref(x))  # one graph
    perm = torch.randperm(len(batch))  # unsorted batch: PyG needs it sorted, graphdl takes it as it is
    torch.testing.assert_close(layer(x[perm], batch[perm]), want[perm])


def test_dynamic_edgeconv_checks_its_widths():
    # hidden_channels=-2 failed inside torch ("negative dimension"), 2.5 with a TypeError, and 0 silently
    # became out_channels; out_channels is checked by layers.create but not when the class is built directly
    for hidden in (-2, 0, 2.5):
        with pytest.raises(ConfigError, match=rf"dynamic_edgeconv's hidden_channels must be an int >= 1, "
                                              rf"got {hidden}"):
            graphdl.layers.create("dynamic_edgeconv", 3, 5, hidden_channels=hidden)
    with pytest.raises(ConfigError, match=r"dynamic_edgeconv's out_channels must be an int >= 1, got -1"):
        DynamicEdgeConv(3, -1)
    assert DynamicEdgeConv(3, 5, hidden_channels=2).conv.nn[0].out_features == 2
