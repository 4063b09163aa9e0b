"""Audit of the link task (graphdl.train.tasks.LinkTask) and of OGBLinkTask (graphdl.bench.ogbl)."""

from __future__ import annotations

import re

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.transforms import RandomLinkSplit
from torch_geometric.utils import to_undirected

from graphdl.bench.ogbl import OGBLinkGNN, OGBLinkTask
from graphdl.errors import ConfigError, ValidationError
from graphdl.models.gnn import LinkGNN
from graphdl.train.tasks import LinkTask
from test_bench import _small_ddi  # a small graph in ogbl-ddi's split format


def test_ogb_link_task_refuses_a_metric_of_labels_and_predictions() -> None:
    """evaluate hands the metric (positive, negative) scores: rocauc read them as (labels, predictions) and
    failed after the first epoch with a shape error, or scored garbage when the counts matched."""
    with pytest.raises(ConfigError, match=re.escape(
            "OGBLinkTask ranks positive pair scores against negative ones (an ogbl-* dataset's evaluator, hits@K "
            "or mrr), but metric 'rocauc' takes labels and predictions; use metric='ogbl-ddi' (or hits@K), or "
            "LinkTask(metric='rocauc')")):
        OGBLinkTask(metric="rocauc")
    OGBLinkTask(metric="hits@10")  # pair metrics stay


def test_ogb_link_task_refuses_per_source_negative_targets_before_training() -> None:
    """ogbl-citation2's split format set up fine and failed with a KeyError in the first evaluation."""
    n = 30
    src, gen = torch.arange(n), torch.Generator().manual_seed(0)
    dst = (src + 1) % n
    data = Data(edge_index=torch.stack([src, dst]), num_nodes=n)
    splits = {"train": {"source_node": src[:20], "target_node": dst[:20]},
              "valid": {"source_node": src[20:25], "target_node": dst[20:25],
                        "target_node_neg": torch.randint(0, n, (5, 10), generator=gen)}}
    with pytest.raises(ValidationError, match=re.escape(
            "OGBLinkTask scores one shared pool of negative pairs per split (edge_neg: ogbl-ddi, ogbl-collab), but "
            "the 'val', 'train' split gives each positive its own negative targets (ogbl-citation2's format); "
            "train on those splits with LinkTask")):
        OGBLinkTask(metric="mrr").setup(data, splits)


def test_ogb_link_task_sparse_adjacency_keeps_the_graphs_edge_weights() -> None:
    """The unit sparse adjacency dropped edge_weight (ogbl-collab's), which edge_index passes to a GCN: the
    embeddings differed from sparse_adj=False (by 0.04 here) and from the model on the weighted graph."""
    data, splits = _small_ddi()
    data.edge_weight = torch.rand(data.edge_index.size(1), generator=torch.Generator().manual_seed(1)) + 0.5
    torch.manual_seed(0)
    model = OGBLinkGNN(layer="gcn", in_channels=None, num_nodes=data.num_nodes, hidden_channels=16,
                       num_layers=2).eval()
    sparse, dense = OGBLinkTask(), OGBLinkTask(sparse_adj=False)
    sparse.setup(data, splits)
    dense.setup(data, splits)
    expected = model(None, data.edge_index, edge_weight=data.edge_weight)
    torch.testing.assert_close(sparse.predict(model), expected)
    torch.testing.assert_close(dense.predict(model), expected)
    del data.edge_weight  # without per-edge inputs the sparse adjacency gives the unweighted embeddings
    sparse.setup(data, splits)
    torch.testing.assert_close(sparse.predict(model), model(None, data.edge_index), rtol=1e-5, atol=1e-5)


def test_ogb_link_task_predict_on_a_new_graph_passes_messages_over_its_edges() -> None:
    """predict_on's copy of the task kept the fitted graph's sparse adjacency: the new graph's features went
    through the old graph's edges (0.92 off here)."""
    data, splits = _small_ddi()
    data.x = torch.randn(data.num_nodes, 8, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    model = LinkGNN(layer="sage", in_channels=8, hidden_channels=16, num_layers=2).eval()
    task = OGBLinkTask()
    task.setup(data, splits)
    other = Data(x=data.x.flip(0), edge_index=torch.tensor([[0, 1, 2], [1, 0, 0]]), num_nodes=data.num_nodes)
    torch.testing.assert_close(task.predict_on(model, other), model(other.x, other.edge_index), rtol=1e-5,
                               atol=1e-5)
    # the task still scores its own graph
    torch.testing.assert_close(task.predict(model), model(data.x, data.edge_index), rtol=1e-5, atol=1e-5)


def test_link_task_takes_ogbs_numpy_split_arrays_as_tensors() -> None:
    """OGB's LinkPropPredDataset gives its edge splits as numpy arrays: they failed with AttributeError
    ('numpy.ndarray' object has no attribute 'dim')."""
    data, splits = _small_ddi()
    data.x = torch.randn(data.num_nodes, 8, generator=torch.Generator().manual_seed(3))
    arrays = {k: {kk: vv.numpy() for kk, vv in v.items()} for k, v in splits.items()}
    torch.manual_seed(0)
    model = LinkGNN(layer="gcn", in_channels=8, hidden_channels=16, num_layers=2).eval()
    a, b = LinkTask(), LinkTask()
    a.setup(data, splits)
    b.setup(data, arrays)
    assert a.evaluate(model, ["train", "val", "test"]) == b.evaluate(model, ["train", "val", "test"])
    with pytest.raises(ValidationError, match=re.escape("splits['valid']['edge'] must hold node pairs of shape "
                                                        "(2, P) or (P, 2), got (40, 3)")):
        LinkTask().setup(data, {**arrays, "valid": {"edge": arrays["valid"]["edge"].repeat(2, 1)[:, :3],
                                                    "edge_neg": arrays["valid"]["edge_neg"]}})


def _graph_with_edge_classes() -> Data:
    torch.manual_seed(0)
    edge_index = to_undirected(torch.randint(0, 40, (2, 120)), num_nodes=40)
    return Data(x=torch.randn(40, 4), edge_index=edge_index, edge_label=torch.randint(0, 3, (edge_index.size(1),)))


@pytest.mark.parametrize("add_negatives", [True, False])
def test_random_link_split_of_a_graph_with_its_own_edge_labels_is_refused(add_negatives: bool) -> None:
    """RandomLinkSplit keeps a graph's own edge_label (edge classes), shifted by 1 when it adds negatives:
    the task read class 1 (or class 0) as the positive edges and class 0 as non-edges, silently."""
    data = _graph_with_edge_classes()
    splits = RandomLinkSplit(num_val=0.1, num_test=0.1, add_negative_train_samples=add_negatives)(data)
    with pytest.raises(ValidationError, match=re.escape(
            "the train graph's edge_label (shape (") + r"\d+" + re.escape(
            ",)) holds values other than 1 (edge) and 0 (sampled non-edge): the graph's own edge labels, which "
            "RandomLinkSplit keeps; delete them before splitting (del data.edge_label), or split with "
            "RandomLinkSplit(..., split_labels=True)")):
        LinkTask().setup(None, splits)
    # The advice works: split_labels=True keeps every positive edge, whatever its class.
    train, val, test = RandomLinkSplit(num_val=0.1, num_test=0.1, split_labels=True,
                                       add_negative_train_samples=add_negatives)(data)
    task = LinkTask()
    task.setup(None, (train, val, test))
    assert torch.equal(task.pos["val"], val.pos_edge_label_index)
    assert torch.equal(task.pos["train"], train.pos_edge_label_index)
