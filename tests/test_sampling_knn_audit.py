"""Audit of the pure-torch neighbour sampler and the k-NN / radius graphs against their references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors
from torch_geometric.data import Data
from torch_geometric.sampler import NodeSamplerInput
from torch_geometric.utils import sort_edge_index

import graphdl.graphs.knn as knn_module
from graphdl.errors import ValidationError
from graphdl.graphs import knn_graph, radius_graph
from graphdl.sampling import TorchNeighborSampler


# ---------------------------------------------------------------- sampler: is_sorted


def test_is_sorted_with_edges_not_sorted_by_destination_is_refused():
    # colptr was read off the destinations as given: node 1's in-edge slot held edge 0 -> 2, a non-edge
    edge_index = torch.tensor([[1, 2, 0, 3], [0, 0, 2, 1]])
    data = Data(edge_index=edge_index, num_nodes=4)
    with pytest.raises(ValidationError, match=r"data.edge_index: is_sorted=True but the edges are not sorted by "
                                              r"destination \(edge_index\[1\]\); pass is_sorted=False"):
        TorchNeighborSampler(data, [-1], is_sorted=True)


def test_is_sorted_on_sorted_edges_samples_what_the_unsorted_path_samples():
    torch.manual_seed(0)
    edge_index = sort_edge_index(torch.randint(40, (2, 200)), sort_by_row=False)
    data = Data(edge_index=edge_index, num_nodes=40)
    seeds = NodeSamplerInput(None, torch.tensor([3, 7, 11]))
    outs = []
    for is_sorted in (False, True):
        torch.manual_seed(1)
        outs.append(TorchNeighborSampler(data, [3, 2], is_sorted=is_sorted).sample_from_nodes(seeds))
    for name in ("node", "row", "col", "edge"):
        assert torch.equal(getattr(outs[0], name), getattr(outs[1], name))
    out = outs[1]
    assert torch.equal(edge_index[:, out.edge], torch.stack([out.node[out.row], out.node[out.col]]))


# ---------------------------------------------------------------- knn_graph: precision


def _wrong_neighbour_sets(x: torch.Tensor, edge_index: torch.Tensor, k: int, cosine: bool) -> int:
    """Nodes whose k neighbours' distances (in float64 on x's values) differ from scikit-learn's k nearest."""
    pts = x.double().numpy()
    nn = NearestNeighbors(n_neighbors=k + 1, metric="cosine" if cosine else "euclidean").fit(pts)
    dist, idx = nn.kneighbors(pts)
    if cosine:
        unit = pts / np.linalg.norm(pts, axis=1, keepdims=True)
    wrong = 0
    for i in range(len(pts)):
        js = edge_index[0][edge_index[1] == i].numpy()
        got = 1 - unit[js] @ unit[i] if cosine else np.linalg.norm(pts[js] - pts[i], axis=1)
        expected = [d for d, j in zip(dist[i], idx[i]) if j != i][:k]
        wrong += not np.allclose(np.sort(got), expected, rtol=0, atol=1e-12)
    return wrong


def test_cosine_knn_graph_of_bfloat16_points_is_that_of_their_values():
    # The unit vectors were computed in bfloat16 (8 bits): 8 of these 300 nodes got a wrong neighbour
    torch.manual_seed(0)
    x = torch.randn(300, 8).to(torch.bfloat16)
    assert _wrong_neighbour_sets(x, knn_graph(x, 5, cosine=True), 5, cosine=True) == 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("cosine", [False, True])
def test_all_pairs_search_takes_half_precision(monkeypatch, dtype, cosine):
    # The all-pairs search (that of GPU tensors) failed in torch.cdist, which has no float16/bfloat16 kernel
    monkeypatch.setattr(knn_module, "_kd_tree", lambda *args: knn_module._all_pairs(*args[:-1]))
    torch.manual_seed(0)
    x = torch.randn(60, 4).to(dtype)
    assert _wrong_neighbour_sets(x, knn_graph(x, 4, cosine=cosine), 4, cosine) == 0
    pairs = set(zip(*radius_graph(x, 1.0).tolist()))
    d = torch.cdist(x.double(), x.double())
    assert pairs == {(j, i) for i, j in (d <= 1.0).nonzero().tolist() if i != j}


# ---------------------------------------------------------------- radius_graph: r


def test_radius_graph_takes_a_numpy_radius():
    # np.float32(1.5) was refused as "not a finite distance > 0"
    torch.manual_seed(0)
    x = torch.randn(40, 2)
    assert torch.equal(radius_graph(x, np.float32(1.5)), radius_graph(x, 1.5))
    for bad in (True, np.float32("nan"), -1.0, "1.5"):
        with pytest.raises(ValidationError, match="radius_graph: r must be a finite distance > 0"):
            radius_graph(x, bad)
