"""Node-level prediction over several graphs: the ``inductive_node`` task (PyG's PPI setting).

The node task trains on one graph whose nodes are split by masks. Here each
split is a set of whole graphs (PPI: 20 training, 2 validation and 2 test
protein graphs), so the model is scored on graphs it never saw:

>>> trainer = Trainer(model, "bce_with_logits", "inductive_node", task_kwargs={"metric": "f1"})
>>> trainer.fit(None, {"train": train_dataset, "val": val_dataset, "test": test_dataset})

Each training step is one mini-batch of ``batch_size`` graphs (PyG's
``DataLoader``), its loss taken over all their nodes; evaluation scores every
node of a split's graphs at once, as PyG's ``examples/ppi.py`` does. Under
torch.distributed every rank trains on all the training graphs (they are not
sharded), so a distributed run computes what a single process does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from graphdl import validate as _validate
from graphdl.errors import ValidationError
from graphdl.train.metrics import Metric
from graphdl.train.tasks import (
    TASKS,
    Task,
    _call,
    _holds_graphs,
    _knn_acc,
    _output_target_loss,
    _refuse_pair_losses,
    _refuse_pair_metric,
    _score_regression_by_rmse,
    _subset,
    batch_mean_loss,
    canonical_split,
    labelled_items,
    one_row_each,
    refuse_model,
)

__all__ = ["InductiveNodeTask"]


@TASKS.register("inductive_node", aliases=("node_graphs",),
                summary="Node-level prediction over several graphs, each split its own graphs (PPI-style)")
class InductiveNodeTask(Task):
    """Node targets on several graphs; each split holds whole graphs (see the module docstring).

    Splits are ``{"train": graphs, "val": graphs, "test": graphs}``, each a PyG
    dataset or a list of ``Data`` whose ``y`` has one row per node; or, with a
    dataset as ``data``, index tensors into it. Targets are used as the node
    task uses them: class labels beside one output per class, or 0/1
    multi-label and regression targets in the output's shape (NaN left out of
    the loss). The metric is ``acc`` unless given (``f1``, micro-F1, is PPI's);
    a regression loss is scored by ``rmse``, a metric loss by ``knn_acc``.

    Args:
        metric: Metric name or :class:`Metric`.
        batch_size: Training graphs per step (PPI's example: 1).
        eval_batch_size: Graphs per evaluation batch (default ``batch_size``).
        knn_k: Neighbours of the k-NN classifier for a metric loss.
    """

    level = "node"

    def __init__(self, metric: str | Metric | None = None, batch_size: int = 1, eval_batch_size: int | None = None,
                 knn_k: int = 5) -> None:
        super().__init__(metric)
        _refuse_pair_metric("inductive_node", self.metric)
        _validate.require_int("the inductive_node task", "batch_size", batch_size)
        if eval_batch_size is not None:
            _validate.require_int("the inductive_node task", "eval_batch_size", eval_batch_size)
        _validate.require_int("the inductive_node task", "knn_k", knn_k)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.knn_k = knn_k

    def setup(self, data: Any, splits: Mapping[str, Any] | None = None,
              device: torch.device | str = "cpu") -> None:
        if not isinstance(splits, Mapping) or not splits:
            raise ValidationError("the inductive_node task needs splits={'train': graphs, 'val': graphs, "
                                  "'test': graphs} (PyG datasets or lists of Data), or index tensors into a "
                                  "dataset passed as data")
        self.device = torch.device(device)
        self.subsets: dict[str, Any] = {}
        indices: dict[str, Tensor] = {}
        if data is not None:
            _validate.check_dataset(data, task="inductive_node")
        for name, part in splits.items():  # graphs, or indices into the dataset ``data``
            if data is None:
                graphs = part
            else:
                if _holds_graphs(part):  # check_split_index would fail inside torch.as_tensor
                    raise ValidationError(f"splits[{name!r}] holds graphs, but with a dataset as data the splits "
                                          f"are indices into it; pass data=None with splits of graphs, or index "
                                          f"tensors into data")
                index = indices[canonical_split(name)] = _validate.check_split_index(part, len(data),
                                                                                    f"splits[{name!r}]", "graph")
                graphs = _subset(data, index)
            _check_node_targets(graphs, f"splits[{name!r}]")
            self.subsets[canonical_split(name)] = graphs
        if "train" not in self.subsets:
            raise ValidationError(f"splits need a 'train' entry, got {', '.join(map(repr, splits))}")
        if indices:  # as the node and graph tasks: held-out graphs that are also trained on measure fit
            _validate.warn_if_train_overlaps(indices, len(data), "graphs")

    def split_names(self) -> Sequence[str]:
        return tuple(self.subsets)

    def check_loss(self, loss_fn: Any, kind: str | None) -> None:
        _refuse_pair_losses("inductive_node", loss_fn, kind)
        _score_regression_by_rmse(self, kind)
        super().check_loss(loss_fn, kind)

    def train_batches(self) -> Iterable[Any]:
        return DataLoader(self.subsets["train"], batch_size=self.batch_size, shuffle=True)

    def batch_weight(self, batch: Any) -> float:
        return float(labelled_items(batch, "num_nodes"))

    def check_model(self, model: nn.Module) -> None:
        refuse_model("inductive_node", model, "node")

    def train_loss(self, model: nn.Module, batch: Data, loss_fn: nn.Module) -> Tensor:
        batch = batch.to(self.device)
        out = one_row_each(_call(model, batch), batch.num_nodes, "inductive_node", "node", model)
        return _output_target_loss(loss_fn, self.loss_kind, out, batch.y, "nodes")

    @torch.no_grad()
    def split_loss(self, model: nn.Module, split: str, loss_fn: Any) -> float:
        """The mean over the split's labelled targets of the loss of each evaluation batch, computed as in
        training."""
        graphs = self.subsets[canonical_split(split)]
        return batch_mean_loss(self, model, DataLoader(graphs, batch_size=self.eval_batch_size), loss_fn, "num_nodes")

    @torch.no_grad()
    def _outputs(self, model: nn.Module, graphs: Any, device: torch.device) -> tuple[Tensor, Tensor | None]:
        """Every node's output and target, graph after graph (targets ``None`` for unlabelled graphs)."""
        outs, ys = [], []
        for batch in DataLoader(graphs, batch_size=self.eval_batch_size):
            batch = batch.to(device)
            outs.append(one_row_each(_call(model, batch), batch.num_nodes, "inductive_node", "node", model))
            ys.append(batch.get("y"))
        return torch.cat(outs), (torch.cat(ys) if all(y is not None for y in ys) else None)

    @torch.no_grad()
    def predict(self, model: nn.Module) -> Tensor:
        """One output row per node of every split's graphs, split after split."""
        return torch.cat([self._outputs(model, graphs, self.device)[0] for graphs in self.subsets.values()])

    @torch.no_grad()
    def predict_on(self, model: nn.Module, data: Any, splits: Any = None,
                   device: torch.device | str = "cpu") -> Tensor:
        """One output row per node of the graphs ``data`` (a dataset or a list of Data), in their order."""
        _validate.check_dataset(data, task="inductive_node")
        return self._outputs(model, data, torch.device(device))[0]

    @torch.no_grad()
    def evaluate(self, model: nn.Module, splits: Sequence[str]) -> dict[str, float]:
        parts = {split: self._outputs(model, self.subsets[split], self.device)
                 for split in map(canonical_split, splits)}
        if self.metric.name == "knn_acc":
            train = parts["train"] if "train" in parts else self._outputs(model, self.subsets["train"], self.device)
            return _knn_acc(train[0], _labels(train[1]), {k: (z, _labels(y)) for k, (z, y) in parts.items()},
                            self.knn_k)
        return {f"{split}_{self.metric.name}": self.metric(_labels(y), out) for split, (out, y) in parts.items()}


def _labels(y: Tensor | None) -> Tensor:
    """Class labels ``[N, 1]`` as ``[N]``, as the metrics take them; other targets unchanged."""
    assert y is not None  # set up splits are checked to hold targets
    return y.view(-1) if y.dim() == 2 and y.size(-1) == 1 and not y.is_floating_point() else y


def _check_node_targets(graphs: Any, name: str) -> None:
    """Graphs whose ``y`` has one row per node (and batches: one shape after the first axis)."""
    if isinstance(graphs, Data):
        raise ValidationError(f"{name} is one graph; the inductive_node task takes a dataset or a list of graphs per "
                              f"split (for one graph split by node masks use task='node')")
    try:
        _validate.check_dataset(graphs, require_y=True, task="inductive_node")
    except ValidationError as exc:
        raise ValidationError(f"{name}: {exc}") from None
    slices = getattr(graphs, "slices", None)
    if (isinstance(slices, dict) and "y" in slices and "x" in slices and hasattr(graphs, "indices")
            and getattr(graphs, "transform", None) is None):
        # a collated dataset: compare the offsets of the stored graphs, then read them in the dataset's order (a
        # shuffled or sliced dataset indexes them); a transform may change y or the nodes, so read those graphs
        bad_stored = slices["y"].diff() != slices["x"].diff()
        order = torch.as_tensor(list(graphs.indices()), dtype=torch.long)
        bad = bad_stored[order].nonzero().view(-1)
        rows = [int(bad[0])] if bad.numel() else []
    else:
        rows = [i for i in range(min(len(graphs), 10_000)) if graphs[i].y.size(0) != graphs[i].num_nodes][:1]
    if rows:
        graph = graphs[rows[0]]
        raise ValidationError(f"{name}: graph {rows[0]} has y with {graph.y.size(0)} rows but {graph.num_nodes} "
                              f"nodes; the inductive_node task needs one target row per node (graph-level "
                              f"targets: task='graph')")
