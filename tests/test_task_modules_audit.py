"""Audit of the negative sampler, the contrastive task and the inductive node task against PyG's behaviour."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn
from torch_geometric.data import Data, InMemoryDataset
from torch_geometric.utils import negative_sampling

import graphdl
from graphdl.errors import UnknownNameError, ValidationError
from graphdl.train import Trainer
from graphdl.train.inductive import InductiveNodeTask
from graphdl.train.negatives import NegativeSampler


# ----------------------------------------------------------------------------- negatives
def test_negative_sampler_refuses_a_negative_count_as_pyg_does() -> None:
    """A negative count returned no pairs at all (shape (2, 0)); PyG's negative_sampling raises."""
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 0]])
    with pytest.raises(ValueError):
        negative_sampling(edge_index, num_nodes=4, num_neg_samples=-3)
    sampler = NegativeSampler(edge_index, 4)
    with pytest.raises(ValidationError, match=r"^the number of negatives must be >= 0, got -3$"):
        sampler(-3)
    assert sampler(0).shape == (2, 0)  # none asked, none drawn


# ----------------------------------------------------------------------------- inductive_node
class _Graphs(InMemoryDataset):
    def __init__(self, graphs: list[Data], transform=None) -> None:
        super().__init__(None, transform=transform)
        self.data, self.slices = self.collate(graphs)


def _node_graphs() -> list[Data]:
    gen = torch.Generator().manual_seed(0)
    return [Data(x=torch.randn(n, 3, generator=gen), edge_index=torch.randint(0, n, (2, 8), generator=gen),
                 y=torch.randint(0, 2, (n,), generator=gen)) for n in (5, 6, 7, 8)]


def test_inductive_target_check_names_the_bad_graph_of_a_shuffled_dataset() -> None:
    """The collated offsets were read in storage order but reported by dataset position: a shuffled dataset's error
    named another graph, "graph 2 has y with 8 rows but 8 nodes"."""
    graphs = _node_graphs()
    graphs[2].y = graphs[2].y[:3]
    torch.manual_seed(0)
    shuffled = _Graphs(graphs).shuffle()
    bad = [i for i in range(len(shuffled)) if shuffled[i].y.size(0) != shuffled[i].num_nodes]
    assert bad != [2]  # the shuffle moved the bad graph
    graph = shuffled[bad[0]]
    with pytest.raises(ValidationError, match=rf"^splits\['train'\]: graph {bad[0]} has y with {graph.y.size(0)} rows "
                                              rf"but {graph.num_nodes} nodes; "):
        InductiveNodeTask().setup(None, {"train": shuffled})
    InductiveNodeTask().setup(None, {"train": _Graphs(_node_graphs()).shuffle()})  # well-formed: accepted


def test_inductive_target_check_reads_graphs_through_the_dataset_transform() -> None:
    """A transform that leaves one target per graph passed the check (the stored offsets matched) and failed only
    inside training."""
    def graph_level(data: Data) -> Data:
        data = data.clone()
        data.y = data.y[:1]
        return data

    with pytest.raises(ValidationError, match=r"^splits\['train'\]: graph 0 has y with 1 rows but 5 nodes; the "
                                              r"inductive_node task needs one target row per node"):
        InductiveNodeTask().setup(None, {"train": _Graphs(_node_graphs(), transform=graph_level)})


# ----------------------------------------------------------------------------- contrastive
def _graph(n: int = 12) -> Data:
    gen = torch.Generator().manual_seed(0)
    return Data(x=torch.randn(n, 6, generator=gen), edge_index=torch.randint(0, n, (2, 3 * n), generator=gen))


def test_grace_views_keep_an_edge_pair_list_along_its_edge_axis() -> None:
    """A [2, E] per-edge field (PyG concatenates *_index along the last axis) was indexed by the kept-edge mask on
    its first axis: IndexError inside torch."""
    seen = []

    class Recorder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(6, 4)

        def forward(self, data: Data) -> torch.Tensor:
            if self.training:
                seen.append((data.edge_index.clone(), data.edge_weight.clone(), data.edge_label_index.clone()))
            return self.lin(data.x)

    graph = _graph()
    graph.edge_weight = torch.arange(graph.num_edges, dtype=torch.float)  # weight i marks edge i
    graph.edge_label_index = graph.edge_index.flip(0)
    Trainer(Recorder(), "grace", "contrastive", epochs=1, seed=0, monitor="train_loss",
            task_kwargs={"drop_edge": 0.5}, progress=False).fit(graph)
    assert len(seen) == 2
    for edge_index, weight, label_index in seen:
        kept = weight.long()
        assert kept.numel() < graph.num_edges
        assert torch.equal(edge_index, graph.edge_index[:, kept])
        assert torch.equal(label_index, graph.edge_label_index[:, kept])


def test_contrastive_evaluate_on_an_unlabelled_graph_names_the_missing_labels() -> None:
    """evaluate() on a graph without labels said "unknown split 'test'; this task has splits " and named none."""
    graph = _graph()
    model = graphdl.models.create("gnn", layer="gcn", in_channels=6, hidden_channels=8, out_channels=4)
    trainer = Trainer(model, "grace", "contrastive", epochs=1, seed=0, monitor="train_loss", progress=False)
    trainer.fit(graph)
    message = ("the contrastive task has no split 'test' to score on this graph: it has no labels (data.y unset), and "
               "the k-NN accuracy needs them; give the graph labels and splits (data.y and train/val/test masks), or "
               "take the embeddings from Trainer.predict()")
    with pytest.raises(UnknownNameError, match="^" + re.escape(message) + "$"):
        trainer.evaluate(graph)
    assert trainer.predict().shape == (graph.num_nodes, 4)
