"""Contrastive and inductive tasks: encoders called as their forward takes a graph, split checks, and held-out
losses (inductive and graph tasks) that do not depend on the evaluation batch size when targets are missing."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch_geometric.data import Data

import graphdl
from graphdl.errors import ValidationError
from graphdl.train import Trainer
from graphdl.train.inductive import InductiveNodeTask


def _graph(n: int = 12, features: int = 6, seed: int = 0) -> Data:
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, n, (2, 3 * n), generator=gen)
    mask = torch.zeros(n, dtype=torch.bool)
    mask[: n // 2] = True
    return Data(x=torch.randn(n, features, generator=gen), edge_index=edge_index,
                y=torch.randint(0, 2, (n,), generator=gen), train_mask=mask, val_mask=~mask, test_mask=~mask)


# ----------------------------------------------------------------------------- contrastive
class _FeaturesOnly(nn.Module):
    """An encoder of the node features alone, ``forward(x)`` (an MLP baseline)."""

    def __init__(self, features: int = 6) -> None:
        super().__init__()
        self.lin = nn.Linear(features, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


class _WholeGraph(nn.Module):
    """An encoder that takes the whole graph, ``forward(data)`` (OGB's example style), with edge weights."""

    def __init__(self, features: int = 6) -> None:
        super().__init__()
        self.lin = nn.Linear(features, 4)

    def forward(self, data: Data) -> torch.Tensor:
        h = self.lin(data.x)
        src, dst = data.edge_index
        return h.index_add(0, dst, h[src] * data.edge_weight.unsqueeze(-1))


@pytest.mark.parametrize("loss", ["grace", "dgi"])
def test_contrastive_training_calls_the_encoder_as_its_forward_takes_the_graph(loss: str) -> None:
    """Training called model(x, edge_index, ...) whatever the forward: TypeError for forward(x) and forward(data),
    whose predictions (Trainer.predict, the k-NN scores) the task computed all the same."""
    graph = _graph()
    graph.edge_weight = torch.rand(graph.num_edges, generator=torch.Generator().manual_seed(1))
    before = {k: v.clone() for k, v in graph.to_dict().items()}
    for encoder in (_FeaturesOnly(), _WholeGraph()):
        graphdl.seed_everything(0)
        kwargs = {"hidden_channels": 4} if loss == "dgi" else {}
        trainer = Trainer(encoder, graphdl.losses.create(loss, **kwargs), "contrastive", epochs=2, seed=0,
                          progress=False)
        result = trainer.fit(graph)
        data = trainer.task.data  # the task's graph, which each view shallow-copies
        assert torch.equal(data.edge_index, graph.edge_index) and torch.equal(data.edge_weight, graph.edge_weight)
        assert len(result.history) == 2 and all(torch.isfinite(torch.tensor(h["train_loss"]))
                                                for h in result.history)
    # the views are new tensors: the graph's edges, weights and features are untouched
    assert all(torch.equal(before[k], graph[k]) for k in before)


def test_grace_views_drop_the_dropped_edges_weights_for_a_whole_graph_encoder() -> None:
    """The view passed to forward(data) holds the view's edges, their own weights and other per-edge fields, and the
    masked features."""
    seen = []

    class Recorder(_WholeGraph):
        def forward(self, data: Data) -> torch.Tensor:
            if self.training:
                seen.append((data.x.clone(), data.edge_index.clone(), data.edge_weight.clone()))
                assert torch.equal(data.edge_type, data.edge_weight.long() % 3)  # any per-edge field follows
            return super().forward(data)

    graph = _graph()
    graph.edge_weight = torch.arange(graph.num_edges, dtype=torch.float)  # weight i marks edge i
    graph.edge_type = torch.arange(graph.num_edges) % 3
    Trainer(Recorder(), "grace", "contrastive", epochs=1, seed=0, task_kwargs={"drop_edge": 0.5, "mask_feature": 0.5},
            progress=False).fit(graph)
    assert len(seen) == 2
    for x, edge_index, weight in seen:
        assert edge_index.size(1) == weight.numel() < graph.num_edges
        assert torch.equal(edge_index, graph.edge_index[:, weight.long()])  # each kept edge with its own weight
        kept_columns = (x != 0).any(0)
        assert torch.equal(x[:, kept_columns], graph.x[:, kept_columns])


# ----------------------------------------------------------------------------- inductive_node
def _graphs(count: int = 4, n: int = 5) -> list[Data]:
    gen = torch.Generator().manual_seed(0)
    return [Data(x=torch.randn(n, 3, generator=gen), edge_index=torch.randint(0, n, (2, 8), generator=gen),
                 y=torch.randint(0, 2, (n,), generator=gen)) for _ in range(count)]


def test_inductive_index_splits_that_share_graphs_with_train_warn() -> None:
    """The node and graph tasks warn when the test split shares items with train (its scores measure fit); the
    inductive_node task scored overlapping index splits silently."""
    graphs = _graphs()
    with pytest.warns(UserWarning, match=r"the 'train' and 'test' splits share 1 graphs, so the 'test' scores "
                                         r"measure fit rather than generalisation; pass disjoint splits"):
        InductiveNodeTask().setup(graphs, {"train": torch.tensor([0, 1]), "val": torch.tensor([2]),
                                           "test": torch.tensor([1, 3])})


def test_inductive_graph_splits_beside_a_dataset_are_refused_by_name() -> None:
    """With a dataset as data, a split given as a list of graphs failed inside torch ("could not determine the shape
    of object type 'Data'")."""
    graphs = _graphs()
    with pytest.raises(ValidationError, match=r"^splits\['train'\] holds graphs, but with a dataset as data the "
                                              r"splits are indices into it; pass data=None with splits of graphs, "
                                              r"or index tensors"):
        InductiveNodeTask().setup(graphs, {"train": graphs[:2], "val": graphs[2:]})


def test_inductive_split_loss_with_missing_targets_does_not_depend_on_the_eval_batch_size() -> None:
    """NaN targets are left out of each batch's loss, but the batches were weighted by their nodes: with one graph
    per batch, a graph with 1 labelled node of 6 weighed as much as one with 6 (0.7457 against 0.7891)."""
    from torch_geometric.data import Batch

    gen = torch.Generator().manual_seed(0)

    def graph(nan_rows: int) -> Data:
        y = torch.randint(0, 2, (6, 2), generator=gen).float()
        y[:nan_rows] = float("nan")
        return Data(x=torch.randn(6, 3, generator=gen), edge_index=torch.randint(0, 6, (2, 8), generator=gen), y=y)

    val = [graph(5), graph(0), graph(6)]  # the last one wholly unlabelled: its batch loss is NaN
    torch.manual_seed(0)
    model = graphdl.models.create("gnn", layer="gcn", in_channels=3, hidden_channels=4, out_channels=2).eval()
    loss = nn.BCEWithLogitsLoss()
    batch = Batch.from_data_list(val)
    with torch.no_grad():
        out, labelled = model(batch.x, batch.edge_index), ~torch.isnan(batch.y)
        expected = loss(out[labelled], batch.y[labelled]).item()
    for eval_batch_size in (1, 2, 3):
        task = InductiveNodeTask(eval_batch_size=eval_batch_size)
        task.setup(None, {"train": val[:2], "val": val})
        assert task.split_loss(model, "val", loss) == pytest.approx(expected, rel=1e-6)


def test_graph_split_loss_with_missing_targets_does_not_depend_on_the_eval_batch_size() -> None:
    """The graph task's held-out loss weighed its batches by their graphs while OGB's NaN labels are left out of
    each batch's loss: molecules with few labelled tasks weighed as much as fully labelled ones."""
    from torch_geometric.data import Batch

    gen = torch.Generator().manual_seed(1)

    def molecule(nan_tasks: int) -> Data:
        y = torch.randint(0, 2, (1, 4), generator=gen).float()
        y[0, :nan_tasks] = float("nan")
        return Data(x=torch.randn(5, 3, generator=gen), edge_index=torch.randint(0, 5, (2, 8), generator=gen), y=y)

    graphs = [molecule(3), molecule(0), molecule(4), molecule(1)]  # the third wholly unlabelled
    torch.manual_seed(0)
    model = graphdl.models.create("graph_gnn", layer="gcn", in_channels=3, hidden_channels=4, out_channels=4).eval()
    loss = nn.BCEWithLogitsLoss()
    batch = Batch.from_data_list(graphs)
    with torch.no_grad():
        out, labelled = model(batch.x, batch.edge_index, batch=batch.batch), ~torch.isnan(batch.y)
        expected = loss(out[labelled], batch.y[labelled]).item()
    for eval_batch_size in (1, 2, 4):
        task = graphdl.train.GraphTask(eval_batch_size=eval_batch_size)
        task.setup(graphs, {"train": torch.tensor([0, 1]), "val": torch.arange(4)})
        assert task.split_loss(model, "val", loss) == pytest.approx(expected, rel=1e-6)


def test_a_split_given_as_a_python_list_keeps_its_kind() -> None:
    """A list was converted with dtype=long: booleans became indices 0/1 and 1.5 became graph 1, silently."""
    graphs = [Data(x=torch.randn(3, 2), edge_index=torch.tensor([[0, 1], [1, 2]]), y=torch.tensor([i % 2]))
              for i in range(5)]
    task = graphdl.train.GraphTask()
    task.setup(graphs, {"train": [True, False, True, True, False], "val": [1, 4]})
    assert [int(g.y) for g in task.subsets["train"]] == [0, 0, 1]  # graphs 0, 2 and 3
    with pytest.raises(ValidationError, match=r"splits\['train'\] must be a boolean mask or integer indices, got "
                                              r"dtype torch.float32"):
        graphdl.train.GraphTask().setup(graphs, {"train": [0.5, 1.5]})
    with pytest.raises(ValidationError, match=r"splits\['train'\] must be a boolean mask or integer indices, got a "
                                              r"list that is neither"):
        graphdl.train.GraphTask().setup(graphs, {"train": ["a", "b"]})


def test_the_node_task_reads_its_splits_as_the_graph_task_does() -> None:
    """The node task had checks of its own: it refused a list or a NumPy array that the graph task takes, and its
    float mask hint and counts differed."""
    data = Data(x=torch.randn(5, 2), edge_index=torch.tensor([[0, 1], [1, 2]]), y=torch.tensor([0, 1, 0, 1, 1]))
    task = graphdl.train.NodeTask()
    task.setup(data, {"train": [True, False, True, True, False], "val": torch.tensor([1, 4]).numpy()})
    assert task.splits["train"].tolist() == [0, 2, 3] and task.splits["val"].tolist() == [1, 4]
    with pytest.raises(ValidationError, match=r"^split 'train' must be a boolean mask or integer indices, got dtype "
                                              r"torch.float32; a 0/1 float mask becomes one with .bool\(\)$"):
        graphdl.train.NodeTask().setup(data, {"train": [1.0, 0.0, 1.0, 0.0, 0.0]})
    with pytest.raises(ValidationError, match=r"^splits\['train'\] mask has 3 entries but there are 5 graphs; a mask "
                                              r"needs one entry per graph$"):
        graphdl.train.GraphTask().setup([data] * 5, {"train": [True, False, True]})


def test_inductive_task_refuses_a_logit_metric_for_a_metric_losss_embeddings() -> None:
    """As the node and graph tasks: f1 would read the embedding dimensions of a metric loss as class logits."""
    model = graphdl.models.create("gnn", layer="gcn", in_channels=3, hidden_channels=4, out_channels=4)
    with pytest.raises(graphdl.errors.ConfigError, match=r"'triplet' is a metric loss: the model outputs node "
                                                         r"embeddings, which 'f1' cannot score; use metric='acc'"):
        Trainer(model, "triplet", InductiveNodeTask(metric="f1"))
    assert Trainer(model, "triplet", InductiveNodeTask()).task.metric.name == "knn_acc"


def test_a_column_boolean_mask_splits_graphs_as_the_flat_mask() -> None:
    """An (N, 1) mask (from OGB's (N, 1) labels) failed with an IndexError in the overlap check."""
    graphs = [Data(x=torch.randn(3, 2), edge_index=torch.tensor([[0, 1], [1, 2]]), y=torch.tensor([i % 2]))
              for i in range(5)]
    mask = torch.tensor([True, False, True, True, False])
    flat, column = graphdl.train.GraphTask(), graphdl.train.GraphTask()
    flat.setup(graphs, {"train": mask, "test": ~mask})
    column.setup(graphs, {"train": mask.view(-1, 1), "test": (~mask).view(-1, 1)})
    assert [int(g.y) for g in column.subsets["train"]] == [int(g.y) for g in flat.subsets["train"]] == [0, 0, 1]


def test_train_loss_weighs_batches_by_their_labelled_targets_as_the_held_out_loss() -> None:
    """train_loss was the plain mean of batch means: a last batch of one graph counted as much as a full one,
    so train_loss and val_loss were not comparable."""
    gen = torch.Generator().manual_seed(0)
    graphs = []
    for i in range(7):
        y = torch.randn(1, 2, generator=gen)
        if i % 3 == 0:
            y[0, 1] = float("nan")  # OGB-style missing target
        graphs.append(Data(x=torch.randn(4, 3, generator=gen), edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]), y=y))
    torch.manual_seed(0)
    model = graphdl.models.create("graph_gnn", layer="gcn", in_channels=3, hidden_channels=4, out_channels=2,
                                  dropout=0.0)
    task = graphdl.train.GraphTask(batch_size=3, metric="rmse")
    trainer = Trainer(model, "mse", task, optimizer="sgd", lr=1e-30, epochs=1, seed=0, progress=False,
                      monitor="val_loss")  # weights do not move: every batch sees the same model
    history = trainer.fit(graphs, {"train": torch.arange(7), "val": torch.arange(7)}).history
    assert history[0]["train_loss"] == pytest.approx(history[0]["val_loss"], rel=1e-6)


def test_a_graph_objective_refused_by_the_node_task_is_named_with_its_call_forms() -> None:
    """link_bce's forward is (input, target), names that stand for two call forms: the message said it "takes
    (input, target)", the very call the node task makes."""
    model = graphdl.models.create("gnn", layer="gcn", in_channels=4, hidden_channels=8, out_channels=2)
    with pytest.raises(graphdl.errors.ConfigError, match=r"'link_bce' is a graph objective that takes \(pos_score, "
                                                         r"neg_score\) or \(z, pos_edge_index, neg_edge_index\): "):
        Trainer(model, "link_bce", "node")
