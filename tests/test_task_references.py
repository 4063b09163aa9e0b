"""The node, link and graph tasks against references: the official OGB evaluator and scikit-learn on the rows the
task scores, invariance to the evaluation batch size, and named errors for inputs that torch would refuse deep
inside (or read wrongly)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ogb.graphproppred import Evaluator as GraphEvaluator
from sklearn.metrics import roc_auc_score
from torch import nn
from torch_geometric.data import Data
from torch_geometric.nn import global_mean_pool

from graphdl.errors import ConfigError, ValidationError
from graphdl.train import GraphTask, LinkTask, NodeTask, Trainer
from graphdl.train.metrics import resolve_metric


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class _Pooled(nn.Module):
    """One row per graph: a linear map of the mean node features (``squeeze`` gives a 1-D output of one value)."""

    def __init__(self, out: int, squeeze: bool = False) -> None:
        super().__init__()
        self.lin, self.squeeze = nn.Linear(3, out), squeeze
        torch.nn.init.normal_(self.lin.weight, generator=_gen(5))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor | None = None) -> torch.Tensor:
        out = global_mean_pool(self.lin(x), batch)
        return out.squeeze(-1) if self.squeeze else out


def _graphs(y: torch.Tensor) -> list[Data]:
    """One small graph per row of ``y`` (each graph's target a row, as OGB's molecules hold them)."""
    x = torch.randn(len(y), 4, 3, generator=_gen(1))
    return [Data(x=x[i], edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]), y=y[i:i + 1]) for i in range(len(y))]


# ---------------------------------------------------------------------------- graph task
def test_graph_task_scores_integer_multi_label_targets_as_the_ogb_evaluator() -> None:
    """Integer 0/1 targets of several tasks (one logit each) are scored per task, not flattened into one column."""
    y = torch.randint(0, 2, (24, 3), generator=_gen(0))
    graphs, model = _graphs(y), _Pooled(3).eval()
    task = GraphTask(metric="rocauc", batch_size=5)
    task.setup(graphs, {"train": torch.arange(12), "val": torch.arange(12, 24)})
    with torch.no_grad():
        pred = torch.cat([model(g.x, g.edge_index) for g in graphs[12:]])
    evaluator = GraphEvaluator("ogbg-moltox21")
    evaluator.num_tasks = 3
    expected = evaluator.eval({"y_true": y[12:].numpy(), "y_pred": pred.numpy()})["rocauc"]
    assert task.evaluate(model, ["val"]) == {"val_rocauc": pytest.approx(expected)}
    assert expected == pytest.approx(np.mean([roc_auc_score(y[12:, i], pred[:, i]) for i in range(3)]))


@pytest.mark.parametrize("eval_batch_size", [1, 4, 11, 12])
def test_graph_task_score_of_a_one_dimensional_output_does_not_depend_on_the_eval_batch_size(
        eval_batch_size: int) -> None:
    """A model giving one value per graph as a 1-D tensor: a last evaluation batch of one graph (11 + 1) is no
    special case."""
    y = torch.tensor([0, 1] * 12)
    graphs, model = _graphs(y), _Pooled(1, squeeze=True).eval()
    task = GraphTask(metric="rocauc", batch_size=4, eval_batch_size=eval_batch_size)
    task.setup(graphs, {"train": torch.arange(12), "val": torch.arange(12, 24)})
    with torch.no_grad():
        pred = torch.cat([model(g.x, g.edge_index) for g in graphs[12:]])
    assert task.evaluate(model, ["val"]) == {"val_rocauc": pytest.approx(roc_auc_score(y[12:], pred))}


# ---------------------------------------------------------------------------- node task
def _node_graph(n: int = 30) -> Data:
    mask = torch.arange(n) < n // 2
    return Data(x=torch.randn(n, 5, generator=_gen(2)), edge_index=torch.randint(0, n, (2, 80), generator=_gen(3)),
                y=torch.arange(n) % 3, train_mask=mask, val_mask=~mask, test_mask=~mask)


class _Linear(nn.Module):
    def __init__(self, out: int) -> None:
        super().__init__()
        self.lin = nn.Linear(5, out)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


@pytest.mark.parametrize("metric", ["f1", "rocauc", "ap"])
def test_node_task_refuses_a_metric_of_class_logits_for_a_metric_losss_embeddings(metric: str) -> None:
    """As the graph task does: embedding dimensions are no class logits, so f1 or rocauc of them means nothing."""
    with pytest.raises(ConfigError, match=rf"metric loss: the model outputs node embeddings, which '{metric}' "
                                          r"cannot score; use metric='acc'"):
        Trainer(_Linear(8), loss="triplet", task=NodeTask(metric=metric), epochs=1, progress=False)


def test_node_task_still_scores_a_metric_losss_embeddings_by_knn_accuracy() -> None:
    trainer = Trainer(_Linear(8), loss="triplet", task=NodeTask(metric="acc"), epochs=1, progress=False)
    assert set(trainer.fit(_node_graph()).test) == {"test_knn_acc"}


def test_node_task_reads_a_column_boolean_mask_as_the_flat_mask() -> None:
    """A (N, 1) boolean mask (a comparison of OGB's (N, 1) labels) selects the nodes its flat version selects."""
    data = _node_graph()
    flat = {name: data[f"{name}_mask"] for name in ("train", "val", "test")}
    column, task = NodeTask(), NodeTask()
    column.setup(data, {k: v.view(-1, 1) for k, v in flat.items()})
    task.setup(data, flat)
    assert all(torch.equal(column.splits[k], task.splits[k]) for k in flat)
    model = _Linear(3).eval()
    assert column.evaluate(model, ["train", "val"]) == task.evaluate(model, ["train", "val"])


# ---------------------------------------------------------------------------- link task
def _link_splits(n: int, shift: dict[str, int]) -> dict:
    """OGB-style splits of a graph of ``n`` nodes, one part's node ids shifted by ``shift``."""
    edges = torch.randint(0, n, (2, 80), generator=_gen(4))
    neg = torch.randint(0, n, (30, 2), generator=_gen(6))
    return {"train": {"edge": edges.t()[:60] + shift.get("train", 0)},
            "valid": {"edge": edges.t()[60:70] + shift.get("edge", 0), "edge_neg": neg + shift.get("edge_neg", 0)}}


@pytest.mark.parametrize("part, shift, what, ids", [
    ("train", -3, "'train' split's positive pairs", r"\[-3, \d+\]"),
    ("edge", 5, "'val' split's positive pairs", r"\[\d+, 3\d\]"),
    ("edge_neg", 2, "'val' split's negative pairs", r"\[\d+, 3\d\]"),
])
def test_link_task_names_split_node_ids_outside_the_graph(part: str, shift: int, what: str, ids: str) -> None:
    n = 30
    data = Data(x=torch.randn(n, 5, generator=_gen(2)), edge_index=torch.randint(0, n, (2, 80), generator=_gen(4)))
    with pytest.raises(ValidationError, match=rf"the {what} hold node ids in {ids}, but the graph has 30 nodes "
                                              r"\(ids 0..29\)"):
        LinkTask().setup(data, _link_splits(n, {part: shift}))


def test_link_task_names_per_source_negative_targets_outside_the_graph() -> None:
    n = 30
    edges = torch.randint(0, n, (2, 70), generator=_gen(4))
    data = Data(x=torch.randn(n, 5, generator=_gen(2)), edge_index=edges[:, :60])
    splits = {"train": {"source_node": edges[0, :60], "target_node": edges[1, :60]},
              "valid": {"source_node": edges[0, 60:], "target_node": edges[1, 60:],
                        "target_node_neg": torch.full((10, 4), n)}}
    with pytest.raises(ValidationError, match=r"the 'val' split's negative targets hold node ids in \[30, 30\]"):
        LinkTask(metric="mrr").setup(data, splits)


# ---------------------------------------------------------------------------- metrics
@pytest.mark.parametrize("metric", ["rocauc", "ap"])
@pytest.mark.parametrize("labels, held", [([0, 1, 3, 2], r"\[0, 3\]"), ([0, -1, 2, 1], r"\[-1, 2\]")])
def test_class_labels_beyond_the_outputs_are_named(metric: str, labels: list[int], held: str) -> None:
    """Not torch's one_hot error: which labels, and how many outputs the model gives."""
    with pytest.raises(ValidationError, match=rf"class labels in {held}, but the predictions have 3 outputs per "
                                              r"item \(classes 0..2\)"):
        resolve_metric(metric)(torch.tensor(labels), torch.randn(4, 3, generator=_gen(0)))
