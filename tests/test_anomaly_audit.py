"""Audit of the anomaly detectors and outlier injectors against their definitions and PyGOD's reference code."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, to_undirected

import graphdl
from graphdl.errors import ConfigError, ValidationError
from graphdl.models import anomaly
from graphdl.models.outliers import inject_contextual_outliers, inject_structural_outliers


def _graph(n: int = 40, features: int = 5, seed: int = 0) -> Data:
    gen = torch.Generator().manual_seed(seed)
    upper = torch.triu(torch.rand(n, n, generator=gen) < 0.3, diagonal=1)
    return Data(x=torch.randn(n, features, generator=gen),
                edge_index=to_undirected(upper.nonzero().t(), num_nodes=n), num_nodes=n)


def test_neighbor_distance_counts_a_duplicated_edge_once() -> None:
    """N(i) is a set (as the adjacency rows are): a repeated edge 1 -> 0 weighed z_1 twice in node 0's mean."""
    z = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    edge_index = torch.tensor([[1, 1, 2], [0, 0, 0]])  # 1 -> 0 twice, 2 -> 0 once
    d = anomaly.neighbor_distance(z, edge_index)
    torch.testing.assert_close(d[0], torch.linalg.vector_norm(z[0] - (z[1] + z[2]) / 2))  # 2.1213, not 2.3570
    # clique edges injected on top of existing ones: the scores are those of the graph without the repeats
    graph, _ = inject_structural_outliers(_graph(), m=8, n=2, seed=0)
    assert coalesce(graph.edge_index).size(1) < graph.edge_index.size(1)  # some clique edges existed already
    codes = torch.randn(graph.num_nodes, 3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(anomaly.neighbor_distance(codes, graph.edge_index),
                               anomaly.neighbor_distance(codes, coalesce(graph.edge_index)))


@pytest.mark.parametrize("k", [0, -2, 2.5, True])
def test_knn_distance_refuses_k_below_one(k) -> None:
    """k=0 returned all-zero scores without complaint; 2.5 failed inside topk."""
    with pytest.raises(ValidationError, match=rf"^knn_distance: k \(the number of nearest nodes averaged\) must be "
                                              rf"an int >= 1, got {k!r}$"):
        anomaly.knn_distance(torch.randn(6, 2), k)


@pytest.mark.parametrize("dropout", [1.0, -0.1, "0.5"])
def test_mlp_autoencoder_dropout_is_checked_when_built(dropout) -> None:
    """dropout=1.0 zeroed every hidden unit in training (the decoder learnt its bias alone); "0.5" failed at the
    first forward with "'<' not supported between instances of 'str' and 'float'"."""
    with pytest.raises(ConfigError, match=rf"^MLPAutoEncoder's dropout must lie in \[0, 1\), got {dropout!r}$"):
        anomaly.MLPAutoEncoder(4, dropout=dropout)
    anomaly.MLPAutoEncoder(4, dropout=0.5)  # still accepted


def test_anomaly_task_refuses_a_graph_without_nodes() -> None:
    """Before: "training loss became nan at epoch 0" (the mean of no node scores)."""
    empty = Data(x=torch.zeros(0, 4), edge_index=torch.zeros(2, 0, dtype=torch.long), num_nodes=0)
    with pytest.raises(ValidationError, match=r"^the anomaly task trains on the graph's nodes, but the graph has "
                                              r"none \(num_nodes=0\)"):
        anomaly.AnomalyTask().setup(empty)
    with pytest.raises(ValidationError, match=r"num_nodes=0"):
        graphdl.Trainer(anomaly.DOMINANT(4, hidden_channels=8), loss="dominant", task="anomaly", epochs=1,
                        progress=False).fit(empty)


def _pygod_contextual(x: torch.Tensor, n: int, k: int, seed: int) -> torch.Tensor:
    """PyGOD's gen_contextual_outlier loop (distances in x's own dtype) after torch.manual_seed(seed)."""
    x = x.clone()
    torch.manual_seed(seed)
    outlier_idx = torch.randperm(x.size(0))[:n]
    for idx in outlier_idx:
        candidate_idx = torch.randperm(x.size(0))[:k]
        dist = torch.cdist(x[idx].unsqueeze(0), x[candidate_idx])
        x[idx] = x[candidate_idx[torch.argmax(dist, dim=1)]]
    return x


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_contextual_outliers_measure_distances_in_the_features_precision(dtype: torch.dtype) -> None:
    """float64 features 1 + i*1e-9 all round to 1.0 in float32: the float32 distances tied at 0 and every outlier
    copied its first candidate instead of the farthest (PyGOD measures in float64)."""
    n_nodes = 30
    x = (1.0 + 1e-9 * torch.arange(n_nodes, dtype=torch.float64)).view(-1, 1).to(dtype)
    x = torch.cat([x, torch.zeros_like(x)], dim=1)
    for seed in (1, 2, 3):
        out, y = inject_contextual_outliers(Data(x=x, edge_index=torch.zeros(2, 0, dtype=torch.long)), n=6, k=10,
                                            seed=seed)
        assert out.x.dtype == dtype and int(y.sum()) == 6
        assert torch.equal(out.x, _pygod_contextual(x, 6, 10, seed))
