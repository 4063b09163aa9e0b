"""Tasks tell the shared Trainer how to batch, score and evaluate a kind of problem.

A :class:`Task` is set up once with the data and its splits, then the Trainer
asks it for training batches, a training loss per batch and an evaluation of
named splits. Three tasks ship (registered in :data:`TASKS`): ``node``
(full-batch with masks, or mini-batches with neighbour sampling), ``link``
(negative sampling) and ``graph`` (a DataLoader over many graphs). Subclass
:class:`Task` for anything else (a VGAE objective, a forecaster, ...).

Distributed training: under ``torch.distributed`` the Trainer calls
``task.shard(rank, world_size, seed)`` after ``setup`` and ``task.set_epoch(epoch)``
before each epoch. ``graph`` and mini-batch ``node`` tasks then draw each
epoch's order as ``torch.randperm(n)`` seeded with ``seed + epoch`` (PyTorch's
``DistributedSampler``) and give rank ``r`` the positions ``r, r + W, r + 2W,
...``; so batch ``i`` of all ranks together is positions ``[i*b*W, (i+1)*b*W)``
of the permutation: the batch ``i`` that one process with ``shuffle_seed`` set
and ``batch_size=b*W`` trains on. Other tasks train every rank on all the data
(correct, as DDP averages identical gradients, but no faster).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import ConcatDataset
from torch_geometric.data import Batch, Data
from torch_geometric.data import Dataset as PyGDataset
from torch_geometric.data.data import BaseData
from torch_geometric.loader import DataLoader

from graphdl import validate as _validate
from graphdl.errors import ConfigError, UnknownNameError, ValidationError
from graphdl.losses.base import first_fractional, fractional_labels_advice
from graphdl.losses.classification import (BCEWithLogitsLoss, CrossEntropyLoss, check_binary_targets,
                                           refuse_multi_label)
from graphdl.models.gnn import hadamard
from graphdl.registry import Registry
from graphdl.train.metrics import Metric, is_pair_metric, resolve_metric
from graphdl.train.negatives import NegativeSampler

__all__ = ["Task", "NodeTask", "LinkTask", "GraphTask", "TASKS", "model_inputs", "canonical_split", "to_device",
           "random_link_split_pairs", "random_link_split_train_graph", "link_split_graphs", "with_graph",
           "unwrap_model"]

TASKS = Registry("tasks", entry_point_group="graphdl.tasks")

_SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def canonical_split(name: str) -> str:
    """``valid``/``validation`` -> ``val``; other names pass through unchanged."""
    return _SPLIT_ALIASES.get(name, name)


_INPUT_FIELDS = ("edge_weight", "edge_attr", "batch", "n_id")
#: the number of graphs of a ``Batch`` (``num_graphs``), for a forward that names ``batch_size`` (PyG's models,
#: graphdl's ``gnn``/``graph_gnn``): pooling by ``batch`` alone gives no row to graphs without nodes at the end of a
#: batch. Only to a forward that names it (a ``**kwargs`` one may pass it on where it is not taken), and only from a
#: ``Batch`` (a neighbour loader's ``batch_size`` counts seed nodes, not graphs).
_NUM_GRAPHS_FIELD = "batch_size"


def to_device(data: Data, device: torch.device) -> Data:
    """``data`` with its tensors on ``device``, leaving the caller's object where it was.

    PyG's ``Data.to`` moves the tensors of the object it is called on (and returns it), so a task
    that called it directly would leave a user's graph on the GPU after ``fit``. A shallow copy
    shares every tensor already on ``device``; only the moved ones are new.
    """
    return copy.copy(data).to(device)


def model_inputs(model: nn.Module, data: Data) -> dict[str, Any]:
    """Keyword inputs for ``model(x, edge_index, **kw)`` taken from ``data``.

    Only the optional fields that the model's ``forward`` names (or all of
    them when it takes ``**kwargs``) and that ``data`` holds are passed; and
    to a ``forward`` that names ``batch_size``, a ``Batch``'s number of graphs.
    """
    fields = _forward_spec(model)[1]
    inputs = {f: data[f] for f in fields if f != _NUM_GRAPHS_FIELD and f in data and data[f] is not None}
    if _NUM_GRAPHS_FIELD in fields and isinstance(data, Batch):
        inputs[_NUM_GRAPHS_FIELD] = data.num_graphs
    return inputs


def unwrap_model(model: nn.Module) -> nn.Module:
    """The user's model inside a ``DistributedDataParallel`` wrapper or ``torch.compile``'s ``OptimizedModule``,
    in either order (for its ``forward`` signature, its ``decode``, ``mu``, ...)."""
    from torch.nn.parallel import DistributedDataParallel

    while True:
        if isinstance(model, DistributedDataParallel):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):  # torch.compile(model)
            model = model._orig_mod
        else:
            return model


#: names of a forward's one parameter that mean "the whole graph" (PyG's and OGB's example models)
_GRAPH_PARAMS = ("data", "batch", "batched_data", "graph")
_forward_specs: dict[type, tuple[str, tuple[str, ...]]] = {}


def _forward_spec(model: nn.Module) -> tuple[str, tuple[str, ...]]:
    """How ``model``'s ``forward`` takes a graph, read once per class from its signature: the call style,
    ``"graph"`` (``forward(data)``, as OGB's example models), ``"features"`` (``forward(x)``: a model of the
    node features alone, such as an MLP baseline) or ``"x_edge_index"``; and the optional ``data`` fields it
    names (all of :data:`_INPUT_FIELDS` when it takes ``**kwargs``; ``batch_size`` only when named)."""
    inner = unwrap_model(model)
    cls = type(inner)
    if cls not in _forward_specs:
        params = inspect.signature(inner.forward).parameters
        required = [p for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                    and p.default is p.empty]  # PyG's MLP is forward(x, batch=None): one required
        one = len(required) == 1 and not any(p.kind is p.VAR_POSITIONAL for p in params.values())
        style = ("graph" if one and required[0].name in _GRAPH_PARAMS else
                 "features" if one and "edge_index" not in params else "x_edge_index")
        var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
        _forward_specs[cls] = style, (tuple(f for f in _INPUT_FIELDS if var_kw or f in params)
                                      + ((_NUM_GRAPHS_FIELD,) if _NUM_GRAPHS_FIELD in params else ()))
    return _forward_specs[cls]


def _call(model: nn.Module, data: Data) -> Tensor:
    """``model``'s outputs on ``data``, called the way its ``forward`` takes them (:func:`_forward_spec`)."""
    if _validate.DEBUG:
        _validate.check_graph(data)
    style = _forward_spec(model)[0]
    if style == "graph":
        return model(data)
    if style == "features":
        return model(data.x)
    return model(data.x, data.edge_index, **model_inputs(model, data))


def one_row_each(out: Any, count: int, task: str, per: str, model: nn.Module | None = None) -> Tensor:
    """``out``, checked to hold one row per node or per graph (``per``) for the ``task`` task (``model``, when
    given, is named in the errors)."""
    from graphdl.models.anomaly import AEOutput

    if isinstance(out, AEOutput):  # "return only the predictions from forward" cannot be done to a built-in model
        who = type(unwrap_model(model)).__name__ if model is not None else "the model"
        raise ValidationError(f"the {task} task takes one tensor of outputs from the model, one row per {per}, but "
                              f"{who} returned an AEOutput (x_hat, s_hat, z): it is an anomaly detector (dominant, "
                              f"latent_distance, mlp_ae); train it with task='anomaly', or for the {task} task use "
                              f"a {per}-level model such as {'gnn' if per == 'node' else 'graph_gnn'}")
    if not isinstance(out, Tensor):
        raise ValidationError(f"the {task} task takes one tensor of outputs from the model, one row per {per}, but "
                              f"it returned a {type(out).__name__}; return only the predictions from forward (keep "
                              f"extras such as attention weights out of its return value)")
    if out.dim() == 0 or out.size(0) != count:
        got = f"shape {tuple(out.shape)}"
        hint = ("a model that pools (graph_gnn) gives one row per graph; use a node-level model such as gnn"
                if per == "node" else "pool the node embeddings into one row per graph: graph_gnn, or "
                "torch_geometric.nn.global_mean_pool(x, batch, size=batch_size) in your model, taking batch_size "
                "(the number of graphs) in forward")
        raise ValidationError(f"the {task} task needs one output row per {per}, but the model gave {got} for "
                              f"{count} {per}s; {hint}")
    return out


def graph_rows(out: Any, batch: Data, model: nn.Module) -> Tensor:
    """``out``, checked to hold one row per graph of ``batch`` for the graph task; too few rows in a batch with graphs
    without nodes are blamed on pooling without the number of graphs (PyG's pooling by ``batch`` alone gives graphs
    without nodes at the end of a batch no row, so the rows after them would misalign with the targets)."""
    count = batch.num_graphs
    if isinstance(out, Tensor) and out.dim() > 0 and out.size(0) < count:
        ptr = batch.get("ptr")
        sizes = ptr.diff() if isinstance(ptr, Tensor) else torch.bincount(batch.batch, minlength=count)
        empty = (sizes == 0).nonzero().view(-1).tolist()
        if empty:
            listed = ", ".join(map(str, empty[:5])) + (", ..." if len(empty) > 5 else "")
            raise ValidationError(f"the graph task needs one output row per graph, but the model gave shape "
                                  f"{tuple(out.shape)} for {count} graphs, and graph(s) {listed} of this batch have "
                                  f"no nodes: pooling by the batch vector alone gives graphs without nodes at the end "
                                  f"of a batch no row. Pool with the number of graphs, e.g. global_mean_pool(x, "
                                  f"batch, size=batch_size), taking batch_size in forward (the graph task passes "
                                  f"data.num_graphs to a forward that names it, as to graph_gnn), or drop the "
                                  f"graphs without nodes")
    return one_row_each(out, count, "graph", "graph", model)


# ---------------------------------------------------------------------------- losses by kind
def batch_mean_loss(task: Task, model: nn.Module, batches: Iterable[Data], loss_fn: Any, count: str) -> float:
    """``task.train_loss`` over ``batches``, averaged with each batch weighted by its ``count``
    (``num_graphs``, ``num_nodes``), or with float targets by its labelled ones (each batch's loss leaves NaN
    targets, OGB's missing labels, out): the loss of a held-out split that is evaluated in batches, whatever the
    batch size. NaN when no target of the split is labelled."""
    total, items = 0.0, 0
    for batch in batches:
        weight = labelled_items(batch, count)
        if weight:  # a batch without labelled targets has a NaN loss and no weight
            total += float(task.train_loss(model, batch, loss_fn)) * weight
            items += weight
    return total / items if items else float("nan")


def labelled_items(batch: Data, count: str) -> int:
    """What a batch's mean loss averages over: its labelled float targets (NaN ones are left out), else its
    ``count`` (``num_graphs``, ``num_nodes``)."""
    return _labelled(batch.y, getattr(batch, count))


def _labelled(y: Any, items: int) -> int:
    """The labelled entries of float targets ``y`` (NaN ones are OGB's missing labels), else ``items``."""
    return int((~torch.isnan(y)).sum()) if isinstance(y, Tensor) and y.is_floating_point() else int(items)


def loss_name(loss_fn: Any) -> str:
    """``'name'`` of a registered loss class, else the class or function name."""
    from graphdl import losses

    entry = losses.entry_of(loss_fn)
    return repr(entry.name) if entry else getattr(loss_fn, "__name__", type(loss_fn).__name__)


def _forward_args(loss_fn: Any) -> str:
    """``(a, b)``: the inputs ``loss_fn`` takes, as its ``call_forms`` name them, else its forward's required
    parameters."""
    forms = getattr(loss_fn, "call_forms", None)
    if forms:
        return " or ".join(forms)
    forward = getattr(loss_fn, "forward", loss_fn)
    try:
        params = inspect.signature(forward).parameters
    except (TypeError, ValueError):
        return "inputs of its own"
    return "(" + ", ".join(n for n, p in params.items() if p.default is p.empty
                           and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)) + ")"


def link_inputs(loss_fn: Any) -> str | None:
    """How the link task calls ``loss_fn``: its ``link_inputs``; torch's ``MarginRankingLoss`` is ``"ranked"``."""
    declared = getattr(loss_fn, "link_inputs", None)
    return declared or ("ranked" if isinstance(loss_fn, nn.MarginRankingLoss) else None)


def check_link_loss(task: str, loss_fn: Any, kind: str | None) -> None:
    """Refuse a loss that :func:`link_loss` cannot call, for the ``task`` task."""
    name = loss_name(loss_fn)
    if isinstance(loss_fn, (CrossEntropyLoss, nn.CrossEntropyLoss, nn.NLLLoss, nn.MultiMarginLoss)):
        raise ConfigError(f"{name} needs one logit per class, but the {task} task scores each node pair with one "
                          f"logit; use 'bce_with_logits', 'focal', 'margin_ranking' or 'link_bce'")
    if _takes_probabilities(loss_fn):
        raise ConfigError(f"{name} takes probabilities in [0, 1], but the {task} task scores each node pair with "
                          f"a logit (the decoder's raw score); use 'bce_with_logits', the same loss on logits")
    if link_inputs(loss_fn) == "ranked" and getattr(loss_fn, "margin", None) == 0:
        raise ConfigError(f"{name} with margin 0 costs nothing once each positive pair scores as high as its "
                          f"negatives, so scoring every pair alike minimises it (on ogbl-ddi Hits@20 stayed 0); "
                          f"give it a positive margin, e.g. loss_kwargs={{'margin': 1.0}}")
    if link_inputs(loss_fn) in ("pos_neg", "ranked") or kind not in ("metric", "divergence", "ranking", "graph"):
        return  # (logits, labels), as classification losses
    why = {"metric": "a metric loss learns embeddings from class labels, which node pairs do not have",
           "divergence": "a divergence compares distributions over classes, and the task predicts one "
                         "probability per pair",
           }.get(kind, f"the task gives its loss the scores of positive pairs and of sampled non-edges, but {name} "
                       f"takes {_forward_args(loss_fn)}")
    raise ConfigError(f"loss {name} (kind {kind!r}) cannot train the {task} task: {why}. Use 'bce_with_logits', "
                      f"'focal', 'margin_ranking' or 'link_bce', or a loss class with link_inputs = 'pos_neg' "
                      f"(loss(pos, neg)) or 'ranked' (loss(pos, neg, ones))")


def link_loss(loss_fn: Any, pos: Tensor, neg: Tensor, num_negatives: int) -> Tensor:
    """The loss of positive pair scores ``pos`` and of ``num_negatives`` times as many negative ones, as its
    :func:`link_inputs` say: ``loss(pos, neg)``, ``loss(pos repeated, neg, ones)`` or ``loss(logits, 0/1 labels)``."""
    inputs = link_inputs(loss_fn)
    if inputs == "pos_neg":
        return loss_fn(pos, neg)
    if inputs == "ranked":  # a sampler returns fewer negatives only when the graph has fewer non-edges
        pos = pos.repeat(num_negatives)[: neg.numel()]
        return loss_fn(pos, neg[: pos.numel()], torch.ones_like(pos))
    logits = torch.cat([pos, neg])
    labels = torch.cat([pos.new_ones(pos.numel()), neg.new_zeros(neg.numel())])
    return loss_fn(logits, labels)


def refuse_untrained_discriminator(task: str, model: nn.Module, instead: str | None = None) -> None:
    """A model with a discriminator (ARGA, ARGVA) needs the adversarial step, which only its own task takes;
    ``instead``: the other model to suggest."""
    inner = unwrap_model(model)
    if hasattr(inner, "discriminator_loss"):
        raise ConfigError(f"{type(inner).__name__} is an adversarial auto-encoder: the {task} task would train its "
                          f"encoder alone and leave its discriminator untrained; train it with "
                          f"task='adversarial_autoencoder'" + (f", or {instead}" if instead else ""))


def refuse_variational(task: str, model: nn.Module, instead: str | None = None) -> None:
    """A variational model (VGAE, ARGVA) needs the KL term of the ``vgae`` loss, which the ``task`` task's loss
    lacks; ``instead``: the other model to suggest."""
    inner = unwrap_model(model)
    if getattr(inner, "variational", False):
        raise ConfigError(f"{type(inner).__name__} is variational, and the {task} task's loss has no KL term (its "
                          f"outputs would be samples of an unregularised posterior); train it with "
                          f"task='autoencoder' and loss='vgae' (reconstruction + KL/N)"
                          + (f", or {instead}" if instead else ""))


def _fails_inside_on_nodes(model: nn.Module) -> bool:
    """Whether ``model`` is a registered graph-level model (one output row per graph) whose forward fails inside
    on a node-level task's graph, before :func:`one_row_each` can name the mismatch: LeNet on pixel grids, the
    chain forecaster on chains, and a graph_gnn (ogb_mol) with a virtual node, whose BatchNorm refuses one graph
    with advice for a node-level GNN. A subclass with a forward of its own may do otherwise."""
    from graphdl.models.forecast import ChainForecaster
    from graphdl.models.gnn import GraphGNN
    from graphdl.models.lenet import LeNetGrid

    if isinstance(model, GraphGNN) and type(model).forward is GraphGNN.forward:
        return model.encoder.virtual_node is not None
    return any(isinstance(model, cls) and type(model).forward is cls.forward for cls in (LeNetGrid, ChainForecaster))


def refuse_model(task: str, model: nn.Module, per: str, objectives: bool = True, instead: str | None = None) -> None:
    """Refuse (from :meth:`Task.check_model`, when the Trainer is built) a model that the ``task`` task (one output
    row per ``per``, ``node`` or ``graph``) would train without its own objective, unless ``objectives`` is off
    (a task that trains auto-encoders checks them itself): an adversarial auto-encoder
    (:func:`refuse_untrained_discriminator`) or a variational one (:func:`refuse_variational`); and, for a
    node-level task, a graph-level model that would fail inside (:func:`_fails_inside_on_nodes`). Other models with
    the wrong rows reach :func:`one_row_each`, which names the mismatch. ``instead``: the model to suggest."""
    inner = unwrap_model(model)
    name = type(inner).__name__
    instead = instead or (f"for {per}-level predictions use a {per}-level model such as "
                          f"{'gnn' if per == 'node' else 'graph_gnn'}")
    if objectives:
        refuse_untrained_discriminator(task, inner, instead)
        refuse_variational(task, inner, instead)
    if per == "node" and _fails_inside_on_nodes(inner):
        raise ConfigError(f"{name} gives one output row per graph, but the {task} task needs one row per node; "
                          f"train {name} with task='graph', or {instead}")


def _refuse_pair_losses(task: str, loss_fn: Any, kind: str | None) -> None:
    """The node and graph tasks call ``loss(output, target)``: refuse ranking and graph objectives."""
    if kind == "ranking":
        where = ("task='link', which ranks each positive edge above sampled non-edges"
                 if link_inputs(loss_fn) == "ranked" else "a Task of your own that forms them")
        raise ConfigError(f"the {task} task calls its loss as loss(output, target), but {loss_name(loss_fn)} is a "
                          f"ranking loss over explicit pairs or triplets {_forward_args(loss_fn)}: use it with "
                          f"{where}, or learn {task} embeddings from labels with a metric loss ('triplet', "
                          f"'supcon', 'contrastive', ...)")
    if kind == "graph":
        raise ConfigError(f"the {task} task calls its loss as loss(output, target), but {loss_name(loss_fn)} is a "
                          f"graph objective that takes {_forward_args(loss_fn)}: train it with a task that forms "
                          f"those inputs ('link' for link_bce, 'autoencoder' for vgae, 'anomaly' for dominant, "
                          f"'contrastive' for grace and dgi) or a Task subclass of your own")


#: losses that take one 0/1 (or float) target per output, not class labels
_ONE_TARGET_PER_OUTPUT = (BCEWithLogitsLoss, nn.BCEWithLogitsLoss, nn.BCELoss, nn.MultiLabelSoftMarginLoss)


def _shape_target(loss_fn: Any, kind: str | None, out: Tensor, y: Tensor, items: str) -> Tensor:
    """The target as the loss takes it: class indices ``[B]`` for a metric loss or for integer labels beside one
    output per class, else ``y`` in the output's shape and dtype (regression, binary and multi-label targets)."""
    if kind == "metric":
        if y.numel() != out.size(0):  # the loss would get every column's entries as labels of other items
            raise ValidationError(f"{loss_name(loss_fn)} is a metric loss, which learns embeddings from one class "
                                  f"label per item, but the targets have shape {tuple(y.shape)} for {out.size(0)} "
                                  f"{items}; give one class label per item, or for multi-label targets use "
                                  f"'bce_with_logits'")
        return y.view(-1)
    if not y.is_floating_point() and out.dim() == 2 and out.size(-1) > 1 and y.numel() == out.size(0):
        if kind == "regression":
            raise ValidationError(f"{loss_name(loss_fn)} is a regression loss, but the targets are class labels "
                                  f"({y.dtype}) beside {out.size(-1)} outputs per item; use a classification loss "
                                  f"such as 'cross_entropy', or give float targets")
        if isinstance(loss_fn, _ONE_TARGET_PER_OUTPUT):
            raise ValidationError(f"{loss_name(loss_fn)} takes one 0/1 target per output (binary and multi-label "
                                  f"tasks, as OGB's; the graph task's default), but the targets are class labels "
                                  f"beside {out.size(-1)} outputs per item; pass loss='cross_entropy'")
        # int32 labels (NumPy's) as int64, which torch's CrossEntropyLoss and NLLLoss need (bool ones are refused)
        return y.view(-1) if y.dtype == torch.bool else y.view(-1).long()
    if (kind == "classification" and y.is_floating_point() and out.dim() == 2 and out.size(-1) > 1
            and y.numel() == out.size(0) and not isinstance(loss_fn, _ONE_TARGET_PER_OUTPUT)):
        fractional = first_fractional(y)
        if fractional is not None:
            raise ValidationError(f"{loss_name(loss_fn)} takes class labels as integers, but the targets hold "
                                  f"{y.dtype} " + fractional_labels_advice(fractional, "data.y.long()",
                                                                           "integer class ids (data.y)"))
        raise ValidationError(f"{loss_name(loss_fn)} takes class labels as integers, but the targets are "
                              f"{y.dtype} of shape {tuple(y.shape)} beside {out.size(-1)} outputs per item; cast "
                              f"them with data.y = data.y.long()")
    if y.numel() != out.numel():
        raise ValidationError(f"the model gives outputs of shape {tuple(out.shape)} for {out.size(0)} {items} whose "
                              f"targets have shape {tuple(y.shape)}; give the model one output per target, or for "
                              f"class labels use a classification loss such as 'cross_entropy'")
    y = y.view(out.shape).to(out.dtype)
    if isinstance(loss_fn, nn.CrossEntropyLoss):  # graphdl's losses check their own targets
        refuse_multi_label(loss_name(loss_fn), y)
    return y


def _takes_probabilities(loss_fn: Any) -> bool:
    """Whether ``loss_fn`` is torch's binary cross-entropy of probabilities (not of logits)."""
    return isinstance(loss_fn, nn.BCELoss) or loss_fn is F.binary_cross_entropy


def _check_output_range(loss_fn: Any, out: Tensor) -> None:
    """torch's losses of probabilities, given a model's raw outputs: ``NLLLoss`` of logits has no minimum (it
    trains by growing the true class's logit without bound), ``BCELoss`` fails inside torch."""
    nll = isinstance(loss_fn, nn.NLLLoss) or loss_fn is F.nll_loss
    if not (nll or _takes_probabilities(loss_fn)):
        return
    out = out.detach()
    if not out.numel() or not bool(torch.isfinite(out).all()):
        return
    if nll:
        total = torch.logsumexp(out.float(), dim=1 if out.dim() > 1 else 0)  # classes on dim 1, as torch
        if not bool((total.abs() < 1e-3).all()):
            raise ValidationError(f"{loss_name(loss_fn)} takes log-probabilities, but the model's outputs are not "
                                  f"(their exp sums to {float(total.exp().max()):.4g} in some row, not 1); end the "
                                  f"model with F.log_softmax(out, dim=-1), or use 'cross_entropy' on its raw outputs")
    else:
        low, high = float(out.min()), float(out.max())
        if low < 0 or high > 1:
            raise ValidationError(f"{loss_name(loss_fn)} takes probabilities in [0, 1], but the model's outputs "
                                  f"range over [{low:.4g}, {high:.4g}]; end the model with a sigmoid, or use "
                                  f"'bce_with_logits' on its raw outputs (numerically safer)")


def _output_target_loss(loss_fn: Any, kind: str | None, out: Tensor, y: Tensor, items: str) -> Tensor:
    r"""``loss(output, target)`` as the node and graph tasks call it, shaped for the loss's kind
    (:func:`_shape_target`); NaN targets (OGB's missing labels) are left out, and a batch with none labelled
    costs 0 with zero gradients (it weighs 0 in :func:`labelled_items`).

    A divergence gets log-probabilities :math:`\log\mathrm{softmax}(\text{out})` against the
    target distributions: float targets of the output's shape as given, class labels as one-hot
    rows (for which :math:`\mathrm{KL}(\mathrm{onehot}(y) \,\|\, q) = -\log q_y`, the cross-entropy).
    """
    y = _shape_target(loss_fn, kind, out, y, items)
    _check_output_range(loss_fn, out)
    if y.is_floating_point() and y.shape == out.shape and kind != "divergence":
        labelled = ~torch.isnan(y)
        if not bool(labelled.any()):  # no labelled target in the batch: 0 with zero gradients (the reference's
            return out[labelled].sum()  # mean of no entries is NaN, which made the epoch's train_loss NaN)
        if not bool(labelled.all()):
            out, y = out[labelled], y[labelled]
    if isinstance(loss_fn, _ONE_TARGET_PER_OUTPUT) and not isinstance(loss_fn, BCEWithLogitsLoss):
        check_binary_targets(loss_name(loss_fn), y)  # torch's; graphdl's checks its own (NaN targets left out)
    if kind == "divergence":
        if out.dim() != 2 or out.size(-1) < 2:
            raise ValidationError(f"{loss_name(loss_fn)} compares distributions over classes, but the model gives "
                                  f"outputs of shape {tuple(out.shape)}; give it one output per class (for binary "
                                  f"targets use 'bce_with_logits')")
        out = torch.log_softmax(out, dim=-1)
        if y.is_floating_point() and y.shape == out.shape and not bool(
                ((y >= 0).all(dim=-1) & ((y.sum(dim=-1) - 1).abs() < 1e-4)).all()):
            raise ValidationError(f"{loss_name(loss_fn)} takes float targets as class distributions, but some rows "
                                  f"are negative or do not sum to 1 (multi-label 0/1 targets?); give probabilities "
                                  f"per row, class labels as integers, or use 'bce_with_logits' for multi-label")
        if not y.is_floating_point():
            y = y.view(-1)
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= out.size(-1)):
                raise ValidationError(f"{loss_name(loss_fn)} compares distributions over the model's "
                                      f"{out.size(-1)} outputs, but the targets hold class labels in "
                                      f"[{int(y.min())}, {int(y.max())}]; give the model one output per class")
            y = F.one_hot(y.long(), out.size(-1)).to(out.dtype)
    return loss_fn(out, y)


def _knn_acc(train_emb: Tensor, train_y: Tensor, parts: Mapping[str, tuple[Tensor, Tensor]],
             k: int) -> dict[str, float]:
    """``{f"{split}_knn_acc"}``: a k-NN classifier on the L2-normalised training embeddings, scored on each part."""
    from sklearn.neighbors import KNeighborsClassifier

    def norm(emb: Tensor) -> Any:
        return F.normalize(emb, dim=-1).cpu().numpy()

    def labels(y: Tensor) -> Any:  # one class label per row (OGB keeps them as a column)
        y = y.reshape(len(y), -1).squeeze(-1)
        fractional = first_fractional(y)
        if fractional is not None:  # sklearn failed inside
            raise ValidationError(f"knn_acc predicts the class labels of items from their nearest training items, "
                                  f"but the targets hold values that are not class labels ({y.dtype}, e.g. "
                                  f"{fractional:g}); give class labels, or score regression targets with metric "
                                  f"'rmse' or 'mae'")
        return y.cpu().numpy()

    knn = KNeighborsClassifier(n_neighbors=min(k, len(train_y))).fit(norm(train_emb), labels(train_y))
    return {f"{split}_knn_acc": float(knn.score(norm(emb), labels(y))) for split, (emb, y) in parts.items()}


def _refuse_pair_metric(task: str, metric: Metric) -> None:
    if is_pair_metric(metric):
        raise ConfigError(f"metric {metric.name!r} ranks positive pairs against negatives, a link-task metric; the "
                          f"{task} task takes acc, rocauc, ap, f1, rmse, mae or an OGB dataset's name for its "
                          f"evaluator")


def _score_regression_by_rmse(task: Task, kind: str | None) -> None:
    """A regression loss's outputs are values, which the default ``acc``/``rocauc`` cannot score: use ``rmse``."""
    if kind == "regression" and not task.metric_given:
        task.metric = resolve_metric("rmse")


def _distributed_sampler(size: int, rank: int, world_size: int, seed: int) -> Any:
    from torch.utils.data import DistributedSampler

    return DistributedSampler(range(size), num_replicas=world_size, rank=rank, shuffle=True, seed=seed)


def _not_implemented(task: Any, method: str) -> NotImplementedError:
    return NotImplementedError(f"{type(task).__name__} must implement Task.{method}() to be trained by the Trainer "
                               f"(see the Task docstring)")


class Task:
    """Base class: how the Trainer trains and evaluates one kind of problem.

    Attributes:
        level: ``"node"``, ``"link"``, ``"graph"`` or a custom name.
        metric: The :class:`Metric` reported per split (``<split>_<metric>``).
        default_metric: The metric when none is given (the node and graph tasks
            score a regression loss by ``rmse`` instead).
        default_loss: Registered loss name used when the Trainer gets none.
    """

    level = "custom"
    default_metric = "acc"
    default_loss = "cross_entropy"

    def __init__(self, metric: str | Metric | None = None) -> None:
        self.metric_given = metric is not None
        self.metric = resolve_metric(self.default_metric if metric is None else metric)
        self.constructed_metric = self.metric  # check_loss may adapt self.metric to one Trainer's loss
        self.device = torch.device("cpu")
        self.loss_kind: str | None = None

    # --- set by the Trainer -------------------------------------------------
    def setup(self, data: Any, splits: Any = None, device: torch.device | str = "cpu") -> None:
        """Prepare ``data`` and ``splits`` on ``device`` (called by ``Trainer.fit``)."""
        raise _not_implemented(self, "setup")

    def split_names(self) -> Sequence[str]:
        """The splits that :meth:`evaluate` can score, e.g. ``("train", "val", "test")``."""
        return ("train", "val", "test")

    def check_model(self, model: nn.Module) -> None:
        """Called by the Trainer with its model when it is built: refuse (``ConfigError``) a model this task
        cannot train (default: any model is taken)."""

    def check_loss(self, loss_fn: Any, kind: str | None) -> None:
        """Called by the Trainer with its loss and the loss's kind, before any training.

        Refuse (``ConfigError``) a loss this task cannot call; with a metric loss
        (``kind="metric"``) the model outputs embeddings, scored by ``knn_acc`` (a metric given
        other than ``acc`` is refused: it would read the embeddings as class logits).
        """
        if kind == "divergence" and getattr(loss_fn, "log_target", False):
            raise ConfigError(f"{loss_name(loss_fn)} is built with log_target=True, but the {type(self).__name__} "
                              f"gives divergences probability targets (class distributions, or one-hot class "
                              f"labels); build it with log_target=False")
        if kind == "metric" and self.metric.name != "knn_acc":
            if self.metric.name != "acc" and self.metric_given:  # f1, rocauc, ... would read embeddings as logits
                raise ConfigError(f"{loss_name(loss_fn)} is a metric loss: the model outputs {self.level} "
                                  f"embeddings, which {self.metric.name!r} cannot score; use metric='acc' (k-NN "
                                  f"accuracy on the embeddings)")
            self.metric = Metric("knn_acc", self.metric.fn, True)
        if _takes_probabilities(loss_fn) and self.metric.name in ("acc", "f1"):
            # they threshold one output at 0, a logit; p > 1/2 is logit(p) > 0 (argmax is unchanged)
            fn = self.metric.fn
            self.metric = dataclasses.replace(self.metric, fn=lambda y_true, y_pred: fn(y_true, torch.logit(y_pred)))

    # --- distributed training (called by the Trainer under torch.distributed) ---
    rank, world_size = 0, 1

    def shard(self, rank: int, world_size: int, seed: int = 0) -> None:
        """Train on shard ``rank`` of ``world_size`` from now on (after :meth:`setup`).

        The default keeps every rank on all the training data.
        """
        self.rank, self.world_size = rank, world_size

    def set_epoch(self, epoch: int) -> None:
        """Called before each training epoch (reseeds the distributed samplers)."""

    def train_batches(self) -> Iterable[Any]:
        """The batches of one training epoch."""
        raise _not_implemented(self, "train_batches")

    def train_loss(self, model: nn.Module, batch: Any, loss_fn: nn.Module) -> Tensor:
        """The scalar loss of one training batch."""
        raise _not_implemented(self, "train_loss")

    def batch_weight(self, batch: Any) -> float:
        """How much a training batch counts in the epoch's ``train_loss``: the items its loss averages over
        (graphs, seed nodes, labelled targets), as PyG's example loops weigh it; 1 by default."""
        return 1.0

    @torch.no_grad()
    def evaluate(self, model: nn.Module, splits: Sequence[str]) -> dict[str, float]:
        """``{f"{split}_{metric}": value}`` for each requested split."""
        raise _not_implemented(self, "evaluate")

    def split_loss(self, model: nn.Module, split: str, loss_fn: Any) -> float:
        """The training loss on held-out ``split``, the model in eval mode: the Trainer logs it as
        ``<split>_loss`` when it is monitored (``monitor="val_loss"``). Tasks that do not define it
        cannot monitor a held-out loss."""
        raise _not_implemented(self, "split_loss")

    @torch.no_grad()
    def predict(self, model: nn.Module) -> Tensor:
        """Model outputs on all the data (eval mode)."""
        raise _not_implemented(self, "predict")

    def predict_on(self, model: nn.Module, data: Any, splits: Any = None,
                   device: torch.device | str = "cpu") -> Tensor:
        """Model outputs on new ``data``, leaving the data this task was set up with in place.

        The default sets up a shallow copy of the task on ``data`` and calls its
        :meth:`predict`; the node, link, autoencoder and graph tasks need no
        splits or labels here.
        """
        task = copy.copy(self)
        task.setup(data, splits, device)
        return task.predict(model)

    def state_dict(self) -> dict[str, Any]:
        """What the task carries from epoch to epoch (e.g. an optimiser of its own), for checkpoints."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; ``Trainer.load_checkpoint`` calls it after :meth:`setup`."""
        if state:
            raise ConfigError(f"{type(self).__name__} keeps no state, but the checkpoint holds task state "
                              f"{sorted(state)}; it was written by another task")

    def check_splits(self, splits: Sequence[str]) -> None:
        unknown = [s for s in splits if canonical_split(s) not in self.split_names()]
        if unknown:
            raise UnknownNameError(f"unknown split {unknown[0]!r}; this task has splits "
                                   f"{', '.join(self.split_names())}")

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(metric={self.metric.name!r})"


def with_graph(task: Task, data: Any, device: torch.device | str) -> Any:
    """A shallow copy of ``task`` whose ``data`` is the checked graph ``data`` on ``device``: for predictions on
    a new graph, which need none of the splits or labels that :meth:`Task.setup` asks for."""
    if not isinstance(data, Data):
        raise ValidationError(f"the {task.level} task predicts on one torch_geometric.data.Data graph, got "
                              f"{type(data).__name__}")
    _validate.check_graph(data)
    task = copy.copy(task)
    task.data = to_device(data, torch.device(device))
    return task


# ---------------------------------------------------------------------------- node level
def _index(split: Any, num_nodes: int, name: str) -> Tensor:
    """The node indices of a split given as a mask or as indices (a tensor, list or array); see
    :func:`graphdl.validate.check_split_index`."""
    if isinstance(split, Tensor) and split.dim() == 2 and split.size(0) == num_nodes and split.size(1) > 1:
        raise ValidationError(f"{name} has shape {tuple(split.shape)}: {split.size(1)} splits, one per column (the "
                              f"layout of PyG's WebKB, WikipediaNetwork and Actor masks); train on one of them, e.g. "
                              f"splits={{'train': data.train_mask[:, 0], 'val': data.val_mask[:, 0], "
                              f"'test': data.test_mask[:, 0]}}")
    split = _validate.check_split_index(split, num_nodes, name, "node")
    return split.nonzero().view(-1) if split.dtype == torch.bool else split.reshape(-1).long()


@TASKS.register("node", summary="Node classification or regression (full batch or neighbour sampling)")
class NodeTask(Task):
    """Node-level prediction on one graph.

    Splits come from ``data.train_mask``/``val_mask``/``test_mask`` or a dict of
    masks or index tensors (OGB's ``get_idx_split()``). With ``num_neighbors``
    training runs in mini-batches of ``batch_size`` (default 512) seed nodes with
    neighbour sampling; evaluation stays full-batch.

    With a metric-learning loss (``kind="metric"``) the model outputs
    embeddings, and ``knn_acc`` scores them with a k-NN classifier fit on the
    training nodes.

    Float targets that are NaN (unlabelled nodes) are left out of the loss,
    as the graph task does with OGB's missing labels.

    ``shuffle_seed`` draws the mini-batch order from ``torch.randperm`` seeded
    with ``shuffle_seed + epoch`` instead of the global RNG (the order
    distributed runs use; see the module docstring). Under torch.distributed
    each rank samples around its share of the seed nodes; ``batch_size`` is
    per process.
    """

    level = "node"

    def __init__(self, metric: str | Metric | None = None, num_neighbors: Sequence[int] | None = None,
                 batch_size: int | None = None, knn_k: int = 5, shuffle_seed: int | None = None) -> None:
        super().__init__(metric)
        _refuse_pair_metric("node", self.metric)
        if batch_size is not None:
            _validate.require_int("the node task", "batch_size", batch_size)
            if num_neighbors is None:  # full-batch training would ignore it
                raise ConfigError(f"the node task's batch_size={batch_size} sets the seed nodes of each neighbour-"
                                  f"sampled mini-batch; give num_neighbors too (e.g. [10, 5]), or leave batch_size "
                                  f"out for full-batch training")
        _validate.require_int("the node task", "knn_k", knn_k)
        if num_neighbors is not None:
            from graphdl.sampling import _check_num_neighbors

            num_neighbors = _check_num_neighbors(num_neighbors)
        self.num_neighbors = num_neighbors
        self.batch_size = 512 if batch_size is None else batch_size
        self.knn_k = knn_k
        self.shuffle_seed = shuffle_seed
        self._sampler: Any = None

    def setup(self, data: Data, splits: Mapping[str, Tensor] | None = None,
              device: torch.device | str = "cpu") -> None:
        if not isinstance(data, Data):
            _validate.refuse_hetero(data, "node")
            raise ValidationError(f"the node task needs one torch_geometric.data.Data graph, got "
                                  f"{type(data).__name__}; for a dataset of one graph pass dataset[0], for node "
                                  f"targets on several graphs (PPI-style) use task='inductive_node'")
        _validate.check_graph(data, require_y=True)
        self.device = torch.device(device)
        n = data.num_nodes
        if splits is None:
            splits = {name: data[f"{name}_mask"] for name in ("train", "val", "test")
                      if f"{name}_mask" in data}
            if "train" not in splits:
                raise ValidationError("the graph has no train_mask; pass splits={'train': idx, "
                                      "'val': idx, 'test': idx} (masks or index tensors)")
        self.splits = {canonical_split(k): _index(v, n, f"split {k!r}").to(self.device) for k, v in splits.items()}
        if "train" not in self.splits:
            raise ValidationError(f"splits need a 'train' entry, got {', '.join(map(repr, splits)) or 'none'}")
        empty = [k for k, idx in self.splits.items() if idx.numel() == 0]
        if empty:  # its loss or metric would be NaN
            raise ValidationError(f"the {empty[0]!r} split holds no node (an all-False mask or an empty index); "
                                  f"give it nodes, or pass splits without it")
        _validate.warn_if_train_overlaps(self.splits, n, "nodes")
        if data.y.size(0) != n:
            raise ValidationError(f"data.y has {data.y.size(0)} rows but the graph has {n} nodes; "
                                  f"the node task needs one target per node")
        self._graph = data
        self.data = to_device(data, self.device)
        y = self.data.y
        self.y = y.view(-1) if y.dim() > 1 and y.size(-1) == 1 and not y.is_floating_point() else y
        self._loader = None
        self._sampler = None
        if self.num_neighbors:
            if self.shuffle_seed is not None:
                self.shard(0, 1, self.shuffle_seed)
            else:
                self._loader = self._neighbor_loader(shuffle=True)

    def _neighbor_loader(self, **kwargs: Any) -> Any:
        from graphdl.sampling import neighbor_loader

        return neighbor_loader(self._graph, self.num_neighbors, input_nodes=self.splits["train"].cpu(),
                               batch_size=self.batch_size, **kwargs)

    def shard(self, rank: int, world_size: int, seed: int = 0) -> None:
        """Mini-batch training: rank ``rank`` takes every ``world_size``-th seed node of each epoch's
        permutation (seeded ``shuffle_seed`` or ``seed``, plus the epoch). Full-batch training is
        not split: every rank computes the full-graph loss."""
        super().shard(rank, world_size, seed)
        if not self.num_neighbors:
            return
        seed = self.shuffle_seed if self.shuffle_seed is not None else seed
        self._sampler = _distributed_sampler(self.splits["train"].numel(), rank, world_size, seed)
        self._loader = self._neighbor_loader(sampler=self._sampler)

    def set_epoch(self, epoch: int) -> None:
        if self._sampler is not None:
            self._sampler.set_epoch(epoch)

    def split_names(self) -> Sequence[str]:
        return tuple(self.splits)

    def check_loss(self, loss_fn: Any, kind: str | None) -> None:
        _refuse_pair_losses("node", loss_fn, kind)
        _score_regression_by_rmse(self, kind)
        super().check_loss(loss_fn, kind)

    def train_batches(self) -> Iterable[Any]:
        return [self.data] if self._loader is None else self._loader

    def batch_weight(self, batch: Any) -> float:
        if self._loader is None:
            return 1.0
        # a sampled batch's seed nodes, or with float targets their labelled ones (NaN ones are left out of its loss)
        return float(_labelled(batch.y[: batch.batch_size], batch.batch_size))

    def check_model(self, model: nn.Module) -> None:
        refuse_model("node", model, "node")

    def train_loss(self, model: nn.Module, batch: Data, loss_fn: nn.Module) -> Tensor:
        if batch.num_nodes == 1 and model.training and GraphTask._has_batchnorm(model):
            seeds = self.splits["train"].numel()
            fix = ("a larger graph" if self._loader is None else
                   f"a batch_size that leaves no last batch of one seed without neighbours ({seeds} training "
                   f"nodes, batch_size={self.batch_size})")
            raise ValidationError(f"a training batch of one node cannot pass BatchNorm (it needs more than one "
                                  f"value per channel); use a model without BatchNorm or {fix}")
        if self._loader is None:
            idx = self.splits["train"]
            out, y = one_row_each(_call(model, batch), batch.num_nodes, "node", "node", model)[idx], self.y[idx]
        else:
            batch = batch.to(self.device)
            out = one_row_each(_call(model, batch), batch.num_nodes, "node", "node", model)[: batch.batch_size]
            y = batch.y[: batch.batch_size]
        return _output_target_loss(loss_fn, self.loss_kind, out, y, "nodes")

    @torch.no_grad()
    def predict(self, model: nn.Module) -> Tensor:
        return one_row_each(_call(model, self.data), self.data.num_nodes, "node", "node", model)

    @torch.no_grad()
    def predict_on(self, model: nn.Module, data: Data, splits: Any = None,
                   device: torch.device | str = "cpu") -> Tensor:
        """One output row per node of ``data`` (no masks or labels needed)."""
        return with_graph(self, data, device).predict(model)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, splits: Sequence[str]) -> dict[str, float]:
        if not splits:  # an unlabelled graph (the contrastive task) has none to score
            return {}
        out = self.predict(model)
        if self.metric.name == "knn_acc":
            return self._knn(out, splits)
        name = self.metric.name
        return {f"{canonical_split(s)}_{name}": self.metric(self.y[self.splits[canonical_split(s)]],
                                                            out[self.splits[canonical_split(s)]])
                for s in splits}

    @torch.no_grad()
    def split_loss(self, model: nn.Module, split: str, loss_fn: Any) -> float:
        idx = self.splits[canonical_split(split)]
        y = self.y[idx]
        if y.is_floating_point() and bool(torch.isnan(y).all()):  # no labelled node: no loss to average
            return float("nan")
        return float(_output_target_loss(loss_fn, self.loss_kind, self.predict(model)[idx], y, "nodes"))

    def _knn(self, emb: Tensor, splits: Sequence[str]) -> dict[str, float]:
        train = self.splits["train"]
        parts = {canonical_split(s): (emb[self.splits[canonical_split(s)]], self.y[self.splits[canonical_split(s)]])
                 for s in splits}
        return _knn_acc(emb[train], self.y[train], parts, self.knn_k)


# ---------------------------------------------------------------------------- link level
def _pairs(edges: Any, name: str) -> Tensor:
    """Node pairs as a ``(2, P)`` long tensor from OGB's ``(P, 2)`` (or PyG's ``(2, P)``), a tensor or an array
    (OGB's ``LinkPropPredDataset`` splits). Two pairs, ``(2, 2)``, are read as OGB's rows, the layout of the split
    dicts this takes."""
    edges = torch.as_tensor(edges)
    if edges.dim() != 2 or 2 not in edges.shape:
        raise ValidationError(f"{name} must hold node pairs of shape (2, P) or (P, 2), got {tuple(edges.shape)}")
    return (edges.t() if edges.size(1) == 2 else edges).long()


def source_target_pairs(part: Mapping[str, Any], name: str) -> tuple[Tensor, Tensor | None]:
    """One split in OGB's per-source format (ogbl-citation2): positive pairs ``(source_node, target_node)`` and
    the ``(P, K)`` negative targets ``target_node_neg`` (the negative pairs are ``(source_node[i],
    target_node_neg[i, k])``), or ``None`` without them."""
    source, target = (torch.as_tensor(part[key]).long() for key in ("source_node", "target_node"))
    if source.dim() != 1 or source.shape != target.shape:
        raise ValidationError(f"splits[{name!r}]: source_node and target_node must be 1-D node ids of one length, "
                              f"got shapes {tuple(source.shape)} and {tuple(target.shape)}")
    pos = torch.stack([source, target])
    if "target_node_neg" not in part:
        return pos, None
    neg_targets = torch.as_tensor(part["target_node_neg"]).long()
    if neg_targets.dim() != 2 or len(neg_targets) != len(source) or neg_targets.size(1) == 0:
        raise ValidationError(f"splits[{name!r}]['target_node_neg'] must hold one row of negative target nodes per "
                              f"source node, shape ({len(source)}, K), got {tuple(neg_targets.shape)}")
    return pos, neg_targets


def random_link_split_pairs(part: Data, name: str) -> tuple[Tensor, Tensor | None]:
    """Positive and negative pairs of one graph made by PyG's ``RandomLinkSplit``.

    ``split_labels=True`` gives ``pos_/neg_edge_label_index``; otherwise
    ``edge_label_index`` is split by ``edge_label``. No negatives: ``None``.
    """
    if "pos_edge_label_index" in part:
        neg = part["neg_edge_label_index"] if "neg_edge_label_index" in part else None
        pos = part.pos_edge_label_index
    elif "edge_label_index" in part and "edge_label" in part:
        label = part.edge_label
        if label.dim() != 1 or not bool(((label == 0) | (label == 1)).all()):
            # RandomLinkSplit adds 1 to an edge_label the graph already had (edge classes), or keeps it as it is
            # when it samples no negatives: label == 1 would then be one class, and class 0 read as non-edges
            raise ValidationError(f"the {name} graph's edge_label (shape {tuple(label.shape)}) holds values other "
                                  f"than 1 (edge) and 0 (sampled non-edge): the graph's own edge labels, which "
                                  f"RandomLinkSplit keeps; delete them before splitting (del data.edge_label), or "
                                  f"split with RandomLinkSplit(..., split_labels=True)")
        neg = part.edge_label_index[:, label == 0]
        pos, neg = part.edge_label_index[:, label == 1], (neg if neg.numel() else None)
    else:
        pos = None
    if pos is not None and pos.numel() == 0 and name != "train":
        raise ValidationError(f"the {name} graph of RandomLinkSplit holds no {name} edges to score; split with "
                              f"num_{name} > 0, e.g. RandomLinkSplit(num_val=0.05, num_test=0.1)")
    if pos is not None:
        return pos, neg
    raise ValidationError(f"the {name} graph holds no edge labels (pos_edge_label_index or "
                          f"edge_label_index/edge_label); make the splits with "
                          f"torch_geometric.transforms.RandomLinkSplit")


def random_link_split_train_graph(data: Data | None, splits: Sequence[Data]) -> Data:
    """The graph messages pass over with ``RandomLinkSplit`` splits: the training graph ``splits[0]``."""
    if data is not None and data is not splits[0]:
        raise ValidationError("with RandomLinkSplit splits messages pass over the training graph splits[0]; "
                              "the full graph would leak the held-out edges into the embeddings. Call "
                              "fit(None, splits)")
    return splits[0]


def link_split_graphs(splits: Any) -> Any:
    """RandomLinkSplit's three graphs given as a dict by name (``train``, ``val``/``valid``, ``test``) as the
    ``(train, val, test)`` tuple; any other ``splits`` unchanged."""
    if not (isinstance(splits, Mapping) and splits and all(isinstance(p, Data) for p in splits.values())):
        return splits
    by_name = {canonical_split(k): v for k, v in splits.items()}
    if sorted(by_name) != ["test", "train", "val"]:
        raise ValidationError(f"a dict of RandomLinkSplit graphs needs exactly the keys 'train', 'val' and 'test', "
                              f"got {', '.join(map(repr, splits))}")
    return by_name["train"], by_name["val"], by_name["test"]


@TASKS.register("link", summary="Link prediction with negative sampling (AUC, AP or OGB Hits@K)")
class LinkTask(Task):
    """Link prediction: score node pairs with ``model.decode(z, pairs)``.

    The model's ``forward(x, edge_index)`` gives node embeddings ``z`` from the
    training graph ``data.edge_index``; pairs are scored by ``model.decode``
    (a dot product when the model has none). Splits are OGB's edge split dict
    (``{"train": {"edge"}, "valid": {"edge", "edge_neg"}, ...}``) or the three
    graphs of PyG's ``RandomLinkSplit`` (either ``split_labels`` setting; a tuple,
    or a dict by split name), whose
    training graph ``splits[0]`` is then the one messages pass over. OGB's
    per-source format (ogbl-citation2: ``source_node``, ``target_node`` and
    ``target_node_neg``, one row of negative targets per positive) is scored
    per row, by ``mrr`` or ``hits@K``; its train split, which has no
    negatives, is scored as OGB's example scores it: a fixed sample of training
    edges (``torch.randperm`` seeded 12345), as many as the validation split
    has, each ranked against the validation rows' negative targets. (A train
    split without negatives borrows those of ``val``, else of the first
    held-out split, in either format.)
    Each training batch scores ``batch_size`` positive training edges and
    ``num_negatives`` times as many negatives, drawn on the graph's device as
    ``negative_sampling`` says: ``"pairs"``, uniformly sampled non-edges
    (:class:`~graphdl.train.negatives.NegativeSampler`: PyG's ``negative_sampling``
    distribution), or ``"targets"``, each positive's source with a uniformly random
    target node (OGB's ogbl-citation2 example; not filtered against the graph's
    edges, as there: on a sparse graph a drawn target is almost never a true one).
    The default is ``"targets"`` for splits in the per-source format, which rank
    each source's true target among corrupted ones, else ``"pairs"``. The loss's ``link_inputs`` says
    how it takes them: classification and regression losses get
    ``loss_fn(logits, labels)`` (1 for edges, 0 for non-edges), ``"pos_neg"``
    losses (``link_bce``) ``loss_fn(pos, neg)``, ``"ranked"`` losses
    (``margin_ranking``) ``loss_fn(pos.repeat(num_negatives), neg, ones)``, each
    positive ranked above its own negatives.
    """

    level = "link"
    default_loss = "bce_with_logits"

    def __init__(self, metric: str | Metric = "rocauc", batch_size: int | None = None,
                 num_negatives: int = 1, negative_sampling: str | None = None) -> None:
        super().__init__(metric)
        if batch_size is not None:
            _validate.require_int("the link task", "batch_size", batch_size)
        _validate.require_int("the link task", "num_negatives", num_negatives)
        if negative_sampling not in (None, "pairs", "targets"):
            raise ConfigError(f"the link task's negative_sampling must be 'pairs' (uniform non-edges) or 'targets' "
                              f"(each positive's source with a random target), got {negative_sampling!r}")
        self.batch_size = batch_size
        self.num_negatives = num_negatives
        self.negative_sampling = negative_sampling

    def setup(self, data: Data, splits: Any = None, device: torch.device | str = "cpu") -> None:
        from graphdl.validate import check_graph

        self.device = torch.device(device)
        self.pos: dict[str, Tensor] = {}
        self.neg: dict[str, Tensor] = {}  # a shared pool of negative pairs per split
        self.neg_targets: dict[str, Tensor] = {}  # or (P, K) negative targets, a row per positive's source
        self.scored_pos: dict[str, Tensor] = {}  # positives scored in place of all of the split's own
        splits = link_split_graphs(splits)
        _validate.refuse_hetero(data, "link")
        if isinstance(splits, (tuple, list)) and len(splits) == 3:  # RandomLinkSplit output
            for name, part in zip(("train", "val", "test"), splits):
                _validate.refuse_hetero(part, "link")
                self.pos[name], neg = random_link_split_pairs(part, name)
                if neg is not None:
                    self.neg[name] = neg
            data = random_link_split_train_graph(data, splits)
        elif isinstance(splits, Mapping):
            for name, part in splits.items():
                key = canonical_split(name)
                if isinstance(part, Mapping) and "source_node" in part and "target_node" in part:
                    self.pos[key], neg_targets = source_target_pairs(part, name)
                    if neg_targets is not None:
                        self.neg_targets[key] = neg_targets
                    continue
                if not isinstance(part, Mapping) or "edge" not in part:
                    held = f"keys {', '.join(map(str, part))}" if isinstance(part, Mapping) else type(part).__name__
                    raise ValidationError(f"splits[{name!r}] holds {held}, but the link task takes OGB's edge split "
                                          f"format, {{'edge': [num_edges, 2] pairs, 'edge_neg': ...}} or "
                                          f"{{'source_node', 'target_node', 'target_node_neg'}} per split, or the "
                                          f"train, val and test graphs of RandomLinkSplit")
                self.pos[key] = _pairs(part["edge"], f"splits[{name!r}]['edge']")
                if "edge_neg" in part:
                    self.neg[key] = _pairs(part["edge_neg"], f"splits[{name!r}]['edge_neg']")
        else:
            raise ValidationError("the link task needs splits: OGB's get_edge_split() dict or the "
                                  "(train, val, test) graphs of torch_geometric.transforms.RandomLinkSplit")
        check_graph(data, task="link")
        self._check_node_ids(data.num_nodes)
        self.data = to_device(data, self.device)
        self.pos = {k: v.to(self.device) for k, v in self.pos.items()}
        self.neg = {k: v.to(self.device) for k, v in self.neg.items()}
        self.neg_targets = {k: v.to(self.device) for k, v in self.neg_targets.items()}
        if "train" not in self.pos:
            raise ValidationError("splits hold no 'train' edges")
        empty = [k for k, v in (*self.pos.items(), *self.neg.items(), *self.neg_targets.items()) if v.numel() == 0]
        if empty:  # each would score nan or fail inside the metric
            what = "negative pairs" if empty[0] in self.neg and self.pos[empty[0]].numel() else "positive edges"
            raise ValidationError(f"the {empty[0]!r} split holds no {what}; give it some, or pass the splits "
                                  f"without it")
        held_out = [k for k in self.pos if k != "train"]
        unscored = [k for k in held_out if k not in self.neg and k not in self.neg_targets]
        if unscored or not (self.neg or self.neg_targets):
            raise ValidationError(f"the {', '.join(map(repr, unscored or held_out or ['val']))} split has positive "
                                  f"edges but no negative pairs to score them against; give each held-out split "
                                  f"its 'edge_neg' (OGB's get_edge_split() has them), or split the graph with "
                                  f"RandomLinkSplit, which samples them")
        if "train" not in self.neg and "train" not in self.neg_targets:
            borrowed = self._borrowed()
            if borrowed in self.neg_targets:
                self._sample_train_rows(borrowed)
        if self.metric.name == "mrr":  # the metric's own checks, before any training rather than after
            shared = list(self.neg)
            if shared:
                raise ValidationError(f"mrr ranks each positive among its own negatives, but the "
                                      f"{', '.join(map(repr, shared))} split has one shared pool of negative pairs "
                                      f"(edge_neg); give each positive its own negative targets (OGB's "
                                      f"ogbl-citation2 split format: source_node, target_node, target_node_neg), or "
                                      f"score the pool with hits@K or rocauc")
        if self.metric.name.startswith("hits@"):
            k = int(self.metric.name[5:])
            fewest = min([neg.size(1) for neg in self.neg.values()] + [t.size(1) for t in self.neg_targets.values()])
            if fewest < k:
                raise ValidationError(f"{self.metric.name} needs at least {k} negative pairs per split, but a split "
                                      f"has {fewest}; use a K of at most {fewest}, more negatives, or "
                                      f"metric='rocauc'")
        self.negatives = NegativeSampler(self.data.edge_index, self.data.num_nodes)
        self.corrupt_targets = (self.negative_sampling == "targets" if self.negative_sampling is not None
                                else bool(self.neg_targets))

    def _check_node_ids(self, num_nodes: int) -> None:
        """Every split's node ids index the graph's ``num_nodes`` nodes (decoding would fail deep inside
        torch on a larger id, and a ``decode`` that indexes ``z[pairs]`` read a negative one from the end)."""
        for what, parts in (("positive pairs", self.pos), ("negative pairs", self.neg),
                            ("negative targets", self.neg_targets)):
            for name, ids in parts.items():
                if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= num_nodes):
                    raise ValidationError(f"the {name!r} split's {what} hold node ids in [{int(ids.min())}, "
                                          f"{int(ids.max())}], but the graph has {num_nodes} nodes (ids 0.."
                                          f"{num_nodes - 1}); give the splits of this graph (its dataset's "
                                          f"get_edge_split()), with the node ids it uses")

    def _borrowed(self) -> str:
        """The held-out split whose negatives score the train split when it has none: ``val``, else the first."""
        held = [k for k in (*self.neg, *self.neg_targets) if k != "train"]
        return "val" if "val" in held else held[0]

    def _sample_train_rows(self, source: str) -> None:
        """Per-row negatives for the train split: a fixed sample of its edges, as many as the ``source`` split
        (validation) has, each with that split's negative targets (OGB's ogbl-citation2 example)."""
        train, rows = self.pos["train"], self.pos[source].size(1)
        gen = torch.Generator().manual_seed(12345)
        picked = train[:, torch.randperm(train.size(1), generator=gen)[:rows].to(train.device)]
        self.scored_pos["train"] = picked
        self.neg_targets["train"] = self.neg_targets[source][:picked.size(1)]  # fewer for a smaller train split

    def split_names(self) -> Sequence[str]:
        return tuple(k for k in self.pos if k == "train" or k in self.neg or k in self.neg_targets)

    def check_model(self, model: nn.Module) -> None:
        refuse_untrained_discriminator("link", model)
        refuse_variational("link", model)
        refuse_model("link", model, "node", objectives=False)

    def check_loss(self, loss_fn: Any, kind: str | None) -> None:
        check_link_loss("link", loss_fn, kind)
        if kind == "regression" and getattr(self.metric, "name", None) in ("acc", "f1"):
            # trained toward the 0/1 labels, the scores sit around 0..1, and a cut at logit 0 counts nearly
            # every pair as an edge
            raise ConfigError(f"{loss_name(loss_fn)} is a regression loss, which trains each pair's score toward "
                              f"its 0/1 label, but metric {self.metric.name!r} reads the scores as logits, an edge "
                              f"where the score is above 0; score it with 'rocauc' or 'ap' (which need no "
                              f"threshold), or train with 'bce_with_logits' or 'link_bce'")
        super().check_loss(loss_fn, kind)

    def train_batches(self) -> Iterable[Tensor]:
        pos = self.pos["train"]
        perm = torch.randperm(pos.size(1), device=self.device)
        size = self.batch_size or pos.size(1)
        return [pos[:, perm[i:i + size]] for i in range(0, pos.size(1), size)]

    def batch_weight(self, batch: Tensor) -> float:
        return float(batch.size(-1))  # its positive pairs (the examples' num_examples)

    @staticmethod
    def _decode(model: nn.Module, z: Tensor, pairs: Tensor) -> Tensor:
        model = unwrap_model(model)
        if hasattr(model, "decode"):
            return model.decode(z, pairs)
        return hadamard(z, pairs).sum(dim=-1)

    def _embed(self, model: nn.Module) -> Tensor:
        """Node embeddings of the training graph (subclasses may encode it differently)."""
        return _call(model, self.data)

    def _embeddings(self, model: nn.Module) -> Tensor:
        """:meth:`_embed`, checked to give one row per node."""
        return one_row_each(self._embed(model), self.data.num_nodes, "link", "node", model)

    def train_loss(self, model: nn.Module, batch: Tensor, loss_fn: nn.Module) -> Tensor:
        z = self._embeddings(model)
        pos = self._decode(model, z, batch)
        neg = self._decode(model, z, self._negative_pairs(batch))
        return link_loss(loss_fn, pos, neg, self.num_negatives)

    def _negative_pairs(self, batch: Tensor) -> Tensor:
        """``num_negatives`` negative pairs per positive pair of ``batch``, as ``negative_sampling`` says."""
        if not self.corrupt_targets:
            return self.negatives(batch.size(1) * self.num_negatives)
        source = batch[0].repeat(self.num_negatives)  # in the order link_loss repeats the positives
        return torch.stack([source, torch.randint(0, self.data.num_nodes, source.shape, device=source.device)])

    @torch.no_grad()
    def predict(self, model: nn.Module) -> Tensor:
        return self._embeddings(model)

    @torch.no_grad()
    def predict_on(self, model: nn.Module, data: Any, splits: Any = None,
                   device: torch.device | str = "cpu") -> Tensor:
        """Node embeddings of the whole graph ``data`` (no splits needed); with ``splits``, of the training
        graph they define."""
        if splits is not None:
            return super().predict_on(model, data, splits, device)
        return with_graph(self, data, device)._embeddings(model)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, splits: Sequence[str]) -> dict[str, float]:
        z = self.predict(model)
        out = {}
        chunk = 65536  # pairs decoded at once
        for split in map(canonical_split, splits):
            pos_pairs = self.scored_pos.get(split, self.pos[split])
            pos = torch.cat([self._decode(model, z, p) for p in pos_pairs.split(chunk, dim=1)])
            if split in self.neg_targets:  # (P, K) scores: source i against each of its K negative targets
                targets = self.neg_targets[split]
                rows = max(1, chunk // targets.size(1))
                neg = torch.cat([self._decode(model, z, torch.stack([s.repeat_interleave(t.size(1)), t.reshape(-1)]))
                                 .view(t.shape) for s, t in zip(pos_pairs[0].split(rows), targets.split(rows))])
                if not is_pair_metric(self.metric):
                    neg = neg.reshape(-1)
            else:
                neg_pairs = self.neg[split if split in self.neg else self._borrowed()]
                neg = torch.cat([self._decode(model, z, p) for p in neg_pairs.split(chunk, dim=1)])
            if is_pair_metric(self.metric):
                value = self.metric(pos, neg)
            else:  # acc and f1 threshold logits at 0 (probability 1/2), rocauc and ap rank them (sigmoid would
                # tie every logit above ~17 at 1.0); rmse and mae score probabilities
                logits = torch.cat([pos, neg])
                value = self.metric(torch.cat([torch.ones_like(pos), torch.zeros_like(neg)]),
                                    logits.sigmoid() if self.metric.name in ("rmse", "mae") else logits)
            out[f"{split}_{self.metric.name}"] = value
        return out


# ---------------------------------------------------------------------------- graph level
@TASKS.register("graph", summary="Graph classification or regression over a DataLoader of graphs")
class GraphTask(Task):
    """Graph-level prediction over a dataset of graphs.

    Splits are a dict of index tensors (OGB's ``get_idx_split()``, used when
    the dataset has it and none are given), or of the graphs themselves (PyG's
    ``{"train": dataset[:150], "test": dataset[150:]}``; with ``data=None``,
    :meth:`predict` goes split after split). Targets with NaN (OGB's missing
    labels) are left out of the loss and the metric. The metric is ``rocauc``
    unless given; with a metric-learning loss the model outputs graph
    embeddings, scored by ``knn_acc`` (a k-NN classifier fit on the training graphs).

    The training order comes from the global torch RNG (PyG's DataLoader with
    ``shuffle=True``; checkpoints hold that RNG, so a resumed run sees the same
    batches), or with ``shuffle_seed`` from ``torch.randperm`` seeded with
    ``shuffle_seed + epoch``, the order distributed runs use: under
    torch.distributed each rank loads its share through a
    ``DistributedSampler``; ``batch_size`` is per process.
    """

    level = "graph"
    default_metric = "rocauc"
    default_loss = "bce_with_logits"

    def __init__(self, metric: str | Metric | None = None, batch_size: int = 32, num_workers: int = 0,
                 eval_batch_size: int | None = None, shuffle_seed: int | None = None, knn_k: int = 5) -> None:
        super().__init__(metric)
        _refuse_pair_metric("graph", self.metric)
        _validate.require_int("the graph task", "batch_size", batch_size)
        if eval_batch_size is not None:
            _validate.require_int("the graph task", "eval_batch_size", eval_batch_size)
        _validate.require_int("the graph task", "num_workers", num_workers, 0)
        _validate.require_int("the graph task", "knn_k", knn_k)
        self.knn_k = knn_k
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.shuffle_seed = shuffle_seed
        self._sampler: Any = None

    def setup(self, data: Any, splits: Mapping[str, Tensor] | None = None,
              device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        if splits is None:
            if not hasattr(data, "get_idx_split"):
                raise ValidationError("pass splits={'train': idx, 'val': idx, 'test': idx} for a dataset "
                                      "without get_idx_split()")
            splits = data.get_idx_split()
        if not isinstance(splits, Mapping):
            raise ValidationError(f"splits must be a dict of split name -> graph indices, got "
                                  f"{type(splits).__name__}")
        if "train" not in {canonical_split(k) for k in splits}:
            raise ValidationError(f"splits need a 'train' entry, got {', '.join(map(repr, splits)) or 'none'}")
        if all(_holds_graphs(part) for part in splits.values()):
            self.subsets, self._graphs = _graphs_by_split(data, splits)
        else:
            _validate.check_dataset(data, require_y=True, require_nodes=True)
            indices = {canonical_split(k): _validate.check_split_index(v, len(data), f"splits[{k!r}]", "graph")
                       for k, v in splits.items()}
            _validate.warn_if_train_overlaps(indices, len(data), "graphs")
            self.subsets, self._graphs = {k: _subset(data, v) for k, v in indices.items()}, data
        empty = [k for k, subset in self.subsets.items() if len(subset) == 0]
        if empty:
            raise ValidationError(f"the {empty[0]!r} split is empty; give it graphs, or pass splits without it")
        self._sampler = None
        self._train_loader = DataLoader(self.subsets["train"], batch_size=self.batch_size, shuffle=True,
                                        num_workers=self.num_workers)
        if self.shuffle_seed is not None:
            self.shard(0, 1, self.shuffle_seed)
        self._eval_loaders = {k: DataLoader(v, batch_size=self.eval_batch_size, num_workers=self.num_workers)
                              for k, v in self.subsets.items()}

    def split_names(self) -> Sequence[str]:
        return tuple(self.subsets)

    def shard(self, rank: int, world_size: int, seed: int = 0) -> None:
        """Rank ``rank`` trains on every ``world_size``-th graph of each epoch's permutation
        (``DistributedSampler`` seeded with ``shuffle_seed`` or ``seed``, plus the epoch)."""
        super().shard(rank, world_size, seed)
        seed = self.shuffle_seed if self.shuffle_seed is not None else seed
        self._sampler = _distributed_sampler(len(self.subsets["train"]), rank, world_size, seed)
        self._train_loader = DataLoader(self.subsets["train"], batch_size=self.batch_size, sampler=self._sampler,
                                        num_workers=self.num_workers)

    def set_epoch(self, epoch: int) -> None:
        if self._sampler is not None:
            self._sampler.set_epoch(epoch)

    def train_batches(self) -> Iterable[Any]:
        return self._train_loader

    def batch_weight(self, batch: Any) -> float:
        return float(labelled_items(batch, "num_graphs"))

    def check_loss(self, loss_fn: Any, kind: str | None) -> None:
        _refuse_pair_losses("graph", loss_fn, kind)
        _score_regression_by_rmse(self, kind)
        super().check_loss(loss_fn, kind)

    def check_model(self, model: nn.Module) -> None:
        refuse_model("graph", model, "graph")

    def train_loss(self, model: nn.Module, batch: Data, loss_fn: nn.Module) -> Tensor:
        batch = batch.to(self.device)
        if batch.x is not None and batch.x.size(0) == 1 and model.training and self._has_batchnorm(model):
            raise self._one_graph_batch("one node")
        try:
            out = _call(model, batch)
        except ValueError as exc:  # BatchNorm over pooled graph rows, in a last batch of one graph
            if batch.num_graphs == 1 and model.training and "more than 1 value per channel" in str(exc):
                raise self._one_graph_batch("one graph") from exc
            raise
        out = graph_rows(out, batch, model)
        return _output_target_loss(loss_fn, self.loss_kind, out, batch.y, "graphs")

    def _one_graph_batch(self, what: str) -> ValidationError:
        """The error for a training batch of one graph (or one node) that the model's BatchNorm cannot take."""
        graphs = len(self._sampler) if self._sampler is not None else len(self.subsets["train"])  # this rank's
        fits = next((b for b in range(self.batch_size + 1, graphs + 1) if graphs % b != 1), None)
        why = (f"{graphs} training graphs in batches of {self.batch_size} leave a last batch of one graph; use a "
               f"batch_size that does not (e.g. batch_size={fits})" if fits else
               f"the training split holds {graphs} graph; give it more graphs")
        return ValidationError(f"a training batch of {what} cannot pass the model's BatchNorm (it needs more than one "
                               f"value per channel): {why}, or use a model without BatchNorm")

    @torch.no_grad()
    def split_loss(self, model: nn.Module, split: str, loss_fn: Any) -> float:
        """The mean over the split's graphs of the loss of each evaluation batch, computed as in training."""
        return batch_mean_loss(self, model, self._eval_loaders[canonical_split(split)], loss_fn, "num_graphs")

    @staticmethod
    def _has_batchnorm(model: nn.Module) -> bool:
        return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())

    @torch.no_grad()
    def _outputs(self, model: nn.Module, split: str) -> tuple[Tensor, Tensor]:
        preds, ys = [], []
        for batch in self._eval_loaders[split]:
            batch = batch.to(self.device)
            out = graph_rows(_call(model, batch), batch, model)
            preds.append(out)
            # class labels beside one logit per class as one label per graph; any other target (0/1 multi-label
            # integers, floats, beside a 1-D output too) as a row per graph, whatever the size of the batch
            y = batch.y
            labels = not y.is_floating_point() and out.dim() == 2 and out.size(-1) > 1 and y.numel() == len(out)
            ys.append(y.view(-1) if labels else y.view(len(out), -1))
        return torch.cat(ys), torch.cat(preds)

    @torch.no_grad()
    def predict(self, model: nn.Module) -> Tensor:
        """One output row per graph of the data set up, in its order (not split by split)."""
        return self._graph_outputs(model, self._graphs, self.device)

    @torch.no_grad()
    def predict_on(self, model: nn.Module, data: Any, splits: Any = None,
                   device: torch.device | str = "cpu") -> Tensor:
        """One output row per graph of ``data``, in its order (no splits or labels needed)."""
        _validate.check_dataset(data, require_nodes=True)
        return self._graph_outputs(model, data, torch.device(device))

    def _graph_outputs(self, model: nn.Module, graphs: Any, device: torch.device) -> Tensor:
        loader = DataLoader(graphs, batch_size=self.eval_batch_size, num_workers=self.num_workers)
        outs = []
        for batch in loader:
            batch = batch.to(device)
            outs.append(graph_rows(_call(model, batch), batch, model))
        return torch.cat(outs)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, splits: Sequence[str]) -> dict[str, float]:
        if self.metric.name == "knn_acc":
            parts = {split: self._outputs(model, split)[::-1] for split in map(canonical_split, splits)}
            train = parts["train"] if "train" in parts else self._outputs(model, "train")[::-1]
            return _knn_acc(*train, parts, self.knn_k)
        out = {}
        for split in map(canonical_split, splits):
            y, pred = self._outputs(model, split)
            out[f"{split}_{self.metric.name}"] = self.metric(y, pred)
        return out


def _holds_graphs(part: Any) -> bool:
    """Whether a split is a collection of graphs (a PyG dataset or a slice of one, a list of Data), not indices."""
    if isinstance(part, PyGDataset):
        return True
    return isinstance(part, (list, tuple)) and len(part) > 0 and isinstance(part[0], BaseData)


def _graphs_by_split(data: Any, splits: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """The graphs of each split as given (PyG's ``dataset[:150]`` idiom), and the graphs that ``predict`` scores:
    ``data`` when given, else all the splits' graphs, split after split."""
    if data is not None:
        _validate.check_dataset(data, require_nodes=True)
    subsets = {}
    for name, part in splits.items():
        try:
            _validate.check_dataset(part, require_y=True, require_nodes=True)
        except ValidationError as exc:
            raise ValidationError(f"splits[{name!r}]: {exc}") from None
        subsets[canonical_split(name)] = part
    return subsets, ConcatDataset(list(subsets.values())) if data is None else data


def _subset(data: Any, index: Tensor) -> Any:
    """``data[index]``; a plain list or tuple of graphs is indexed element by element."""
    if isinstance(data, (list, tuple)):
        index = index.nonzero().view(-1) if index.dtype == torch.bool else index.view(-1)
        return [data[i] for i in index.tolist()]
    return data[index]


def resolve_task(task: str | Task, **kwargs: Any) -> Task:
    """A :class:`Task` from a registered name (with constructor kwargs) or an instance."""
    if isinstance(task, type) and issubclass(task, Task):
        raise ConfigError(f"task is the class {task.__name__}; pass an instance, task={task.__name__}(...)")
    if not isinstance(task, (str, Task)):
        raise ConfigError(f"task must be a registered task name (graphdl list tasks: node, link, graph, ...) or a "
                          f"Task instance, got {type(task).__name__}")
    if isinstance(task, Task):
        if kwargs:
            raise ConfigError(f"task arguments {sorted(kwargs)} given with a Task instance; "
                              f"pass them to its constructor instead")
        return task
    return TASKS.create(task, **kwargs)
