r"""Self-supervised node embeddings: the ``contrastive`` task trains GRACE and DGI objectives.

Training never sees labels. A loss says what it contrasts by its ``contrastive_inputs``:

* ``"two_views"`` (``grace``): two views of the graph, each with a share of its
  edges dropped (PyG's ``dropout_edge``) and of its feature columns zeroed
  (``mask_feature``), are encoded, and the loss pulls a node's two embeddings
  together: ``loss(model(view_1), model(view_2))`` (Zhu et al., 2020);
* ``"corrupted"`` (``dgi``): the graph and a corruption of it, its node features
  shuffled across nodes, are encoded: ``loss(model(x, A), model(x[perm], A))``
  (Veličković et al., 2019).

Each epoch is one full-batch step, as in PyG's ``examples/dgi.py`` and the
GRACE reference code. Evaluation embeds the unchanged graph (eval mode) and
scores the embeddings with ``knn_acc``: a k-NN classifier fit on the training
nodes' labels, scored on each split, as the node task does for metric losses.
A graph without labels (``data.y`` unset) trains all the same, with nothing to
score: fit it with ``monitor="train_loss"`` and take the embeddings from
``Trainer.predict()``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.utils import dropout_edge, mask_feature

from graphdl import validate as _validate
from graphdl.errors import ConfigError, UnknownNameError, ValidationError
from graphdl.train.tasks import TASKS, NodeTask, Task, _call, loss_name, one_row_each, refuse_model, to_device

__all__ = ["ContrastiveTask"]


def _rates(name: str, value: float | Sequence[float]) -> tuple[float, float]:
    """Two rates, one per view; one number serves both views."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    rates = (value, value) if is_number else tuple(value) if isinstance(value, Sequence) else (value,)
    if len(rates) != 2 or not all(isinstance(r, (int, float)) and not isinstance(r, bool) and 0 <= r < 1
                                  for r in rates):
        raise ConfigError(f"the contrastive task's {name} must be a rate in [0, 1) or two of them, one per "
                          f"view, got {value!r}")
    return float(rates[0]), float(rates[1])


@TASKS.register("contrastive", aliases=("self_supervised",),
                summary="Self-supervised node embeddings (GRACE views, DGI corruption); k-NN accuracy on labels")
class ContrastiveTask(NodeTask):
    """Self-supervised node embeddings on one graph; see the module docstring.

    Args:
        drop_edge: The share of edges each view drops (GRACE's Cora setting: 0.2, 0.4); one number for
            both views.
        mask_feature: The share of feature columns each view zeroes (GRACE's Cora setting: 0.3, 0.4); one
            number for both views.
        knn_k: Neighbours of the k-NN classifier that scores the embeddings.
    """

    default_loss = "grace"

    def __init__(self, drop_edge: float | Sequence[float] = (0.2, 0.4),
                 mask_feature: float | Sequence[float] = (0.3, 0.4),
                 knn_k: int = 5) -> None:
        super().__init__(metric="knn_acc", knn_k=knn_k)
        self.drop_edge = _rates("drop_edge", drop_edge)
        self.mask_feature = _rates("mask_feature", mask_feature)

    # a self-supervised loss has no held-out counterpart (its views are random); the node task's is a label loss
    split_loss = Task.split_loss

    def check_loss(self, loss_fn: Any, kind: str | None) -> None:
        if getattr(loss_fn, "contrastive_inputs", None) not in ("two_views", "corrupted"):
            raise ConfigError(f"the contrastive task trains self-supervised objectives: 'grace' (two views) or "
                              f"'dgi' (a corrupted graph), but {loss_name(loss_fn)} is not one; for a loss of your "
                              f"own set contrastive_inputs = 'two_views' (loss(z1, z2)) or 'corrupted' "
                              f"(loss(z, z_corrupted))")

    def setup(self, data: Data, splits: Mapping[str, Tensor] | None = None,
              device: torch.device | str = "cpu") -> None:
        if not isinstance(data, Data):  # the node task's message would name the node task
            _validate.refuse_hetero(data, "contrastive")
            raise ValidationError(f"the contrastive task needs one torch_geometric.data.Data graph, got "
                                  f"{type(data).__name__}; for a dataset of one graph pass dataset[0]")
        if data.y is None and splits is None:  # no labels: train, nothing to score
            _validate.check_graph(data)
            self.device = torch.device(device)
            self.splits, self.y, self._loader, self._sampler = {}, None, None, None
            self._graph, self.data = data, to_device(data, self.device)
        else:
            super().setup(data, splits, device)
        if self.data.x is None or not self.data.x.is_floating_point():
            raise ConfigError("the contrastive task needs floating-point node features data.x to mask or shuffle")

    def check_splits(self, splits: Sequence[str]) -> None:
        if splits and getattr(self, "data", None) is not None and self.y is None:  # set up on an unlabelled graph
            # the generic message, "unknown split 'test'; this task has splits ", named none
            raise UnknownNameError(f"the contrastive task has no split {splits[0]!r} to score on this graph: it has "
                                   f"no labels (data.y unset), and the k-NN accuracy needs them; give the graph "
                                   f"labels and splits (data.y and train/val/test masks), or take the embeddings "
                                   f"from Trainer.predict()")
        super().check_splits(splits)

    @torch.no_grad()
    def predict_on(self, model: nn.Module, data: Data, splits: Any = None,
                   device: torch.device | str = "cpu") -> Tensor:
        if not isinstance(data, Data):  # with_graph would name the task by its level ("node")
            raise ValidationError(f"the contrastive task predicts on one torch_geometric.data.Data graph, got "
                                  f"{type(data).__name__}; for a dataset of one graph pass dataset[0]")
        return super().predict_on(model, data, splits, device)

    def _embed(self, model: nn.Module, x: Tensor, edge_index: Tensor, kept: Tensor | None = None) -> Tensor:
        # a shallow copy of the graph with the view's features and edges, called as the model's forward takes a
        # graph (forward(x, edge_index, ...), forward(x) or forward(data)), as predict and the k-NN scores call it
        view = copy.copy(self.data)
        if kept is not None:  # the dropped edges' weights, attributes and types go with them
            for key in self.data.keys():
                value = self.data[key]
                if key != "edge_index" and self.data.is_edge_attr(key) and isinstance(value, Tensor):
                    # along the edge axis, the last for a pair list such as edge_label_index ([2, E])
                    dim = self.data.__cat_dim__(key, value) % value.dim()
                    view[key] = value[(slice(None),) * dim + (kept,)]
        view.x, view.edge_index = x, edge_index
        return one_row_each(_call(model, view), self.data.num_nodes, "contrastive", "node", model)

    def _view(self, model: nn.Module, view: int) -> Tensor:
        x, _ = mask_feature(self.data.x, p=self.mask_feature[view], mode="col")
        edge_index, kept = dropout_edge(self.data.edge_index, p=self.drop_edge[view])
        return self._embed(model, x, edge_index, kept)

    def check_model(self, model: nn.Module) -> None:
        refuse_model("contrastive", model, "node")

    def train_loss(self, model: nn.Module, batch: Data, loss_fn: nn.Module) -> Tensor:
        if loss_fn.contrastive_inputs == "two_views":
            return loss_fn(self._view(model, 0), self._view(model, 1))
        perm = torch.randperm(self.data.num_nodes, device=self.device)
        return loss_fn(self._embed(model, self.data.x, self.data.edge_index),
                       self._embed(model, self.data.x[perm], self.data.edge_index))
