"""Evaluation metrics, by name or through an official OGB ``Evaluator``.

A metric maps ``(y_true, y_pred)`` to a float. Names: ``acc``, ``rocauc``,
``ap``, ``f1`` (micro-F1, as PyG's PPI example scores), ``rmse``, ``mae``,
``hits@K`` and ``mrr`` (``y_pred`` is then a pair of positive and negative scores),
``knn_acc`` (embeddings scored by a k-NN classifier fit on the training split;
handled by the node task). An OGB dataset name (``ogbg-*``,
``ogbl-*``, ``ogbn-*``) uses the official evaluator of that dataset.

As OGB's evaluators do, ``acc``, ``rocauc``, ``ap``, ``rmse`` and ``mae`` leave
NaN targets (unlabelled entries) out and average over the targets (labels,
tasks) of multi-target data, each scored on its own labelled entries. A NaN prediction (a diverged model)
makes the score NaN, which the Trainer ranks worst, rather than a class read off NaN logits or a top rank; empty
inputs are refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from graphdl.errors import ConfigError, ValidationError, did_you_mean

__all__ = ["Metric", "resolve_metric", "is_pair_metric", "METRIC_NAMES"]


@dataclass(frozen=True)
class Metric:
    """A named metric, its direction, and whether it takes ``(positive scores, negative scores)`` (a link
    metric: ``hits@K``, ``mrr``, every OGB link evaluator) rather than ``(y_true, y_pred)``."""

    name: str
    fn: Callable[..., float]
    higher_is_better: bool = True
    pairs: bool = False

    def __call__(self, *args: object) -> float:
        return float(self.fn(*args))


def _upcast(t: Tensor) -> Tensor:
    """``t`` detached, half and bfloat16 as float32 (numpy has no bfloat16)."""
    t = t.detach()
    return t.float() if t.is_floating_point() and t.dtype not in (torch.float32, torch.float64) else t


def _nonempty(name: str, y_true: Tensor) -> None:
    if y_true.numel() == 0:
        raise ValidationError(f"{name} got no items to score (targets of shape {tuple(y_true.shape)}, as an empty "
                              f"split gives); evaluate a split that holds items")


def _diverged(*scores: Tensor) -> bool:
    """Whether any score is NaN: a NaN logit would otherwise be read as a class (argmax, ``> 0``) or rank first."""
    return any(bool(_nan(s).any()) for s in scores)


def _nan(values: Tensor) -> Tensor:
    """The NaN entries of ``values`` (OGB's missing labels in targets, a diverged model's scores); none for integer
    ones."""
    return torch.isnan(values) if values.is_floating_point() else torch.zeros_like(values, dtype=torch.bool)


def _check_classes(y_true: Tensor, outputs: int, name: str) -> None:
    """Class labels ``y_true`` (NaN left out) are in ``0..outputs-1``, one model output per class."""
    labels = y_true[~_nan(y_true)]
    if labels.numel() == 0:
        return
    low, high = labels.min().item(), labels.max().item()
    if low < 0 or high >= outputs:
        raise ValidationError(f"{name}: the targets hold class labels in [{low:g}, {high:g}], but the predictions have "
                              f"{outputs} outputs per item (classes 0..{outputs - 1}); give the model one output per "
                              f"class, or remap the labels")


def _acc(y_true: Tensor, y_pred: Tensor) -> float:
    """Accuracy, NaN targets (unlabelled entries) left out as OGB's evaluators leave them. Multi-label 0/1 targets
    (float or integer, one logit each) against ``logit > 0``, per label, averaged over the labels (OGB's mean over
    tasks); class distributions or one-hot rows against the argmax; class labels against the argmax over one
    logit per class, or one logit against ``logit > 0``."""
    _nonempty("acc", y_true)
    y_true, y_pred = _upcast(y_true), _upcast(y_pred)
    if y_true.dim() == 2 and y_true.shape == y_pred.shape and y_true.size(-1) > 1:
        missing = _nan(y_true)
        rows = ~missing.all(dim=-1)  # a row of NaN is an unlabelled item of any target kind
        labelled = y_true[rows]
        sums = labelled.sum(dim=-1).double()
        if missing[rows].any() or not torch.allclose(sums, torch.ones_like(sums)):
            _check_binary(y_true[~missing])
            correct = (y_pred > 0).to(y_true.dtype) == y_true  # multi-label 0/1: per label
            scores = [correct[~missing[:, i], i].float().mean() for i in range(y_true.size(-1))
                      if not bool(missing[:, i].all())]
            if scores and bool((_nan(y_pred) & ~missing).any()):  # a labelled entry's logit is NaN
                return math.nan
            return _mean_of(scores, "acc")
        y_true, y_pred = labelled.argmax(dim=-1), y_pred[rows]  # class distributions (soft or one-hot labels)
    classes = y_pred.dim() > 1 and y_pred.size(-1) > 1
    pred = y_pred.argmax(dim=-1) if classes else (y_pred.reshape(-1) > 0).long()
    truth = y_true.reshape(-1)
    if pred.numel() != truth.numel():
        raise ValidationError(f"acc compares one prediction per target, but the predictions have shape "
                              f"{tuple(y_pred.shape)} for targets of shape {tuple(y_true.shape)}; give class labels "
                              f"one logit per class, 0/1 (multi-label) targets one logit each")
    if classes:  # a label no output stands for would count as a silent miss
        _check_classes(truth, y_pred.size(-1), "acc")
    else:  # logit > 0 is a 0/1 label: other targets (regression values, class ids) would score as silent misses
        _check_binary(truth[~_nan(truth)])
    labelled = ~_nan(truth)
    if bool((_nan(y_pred).reshape(len(truth), -1).any(dim=-1) & labelled).any()):  # argmax would read NaN as a class
        return math.nan
    return _mean_of([(pred[labelled] == truth[labelled]).float().mean()] if bool(labelled.any()) else [], "acc")


def _check_binary(labels: Tensor) -> None:
    """Targets that ``acc`` compares with ``logit > 0`` (one logit each) hold only 0 and 1."""
    other = labels[(labels != 0) & (labels != 1)]
    if other.numel():
        raise ValidationError(f"acc compares one logit per target with 0/1 labels (logit > 0 is 1), but the targets "
                              f"hold {', '.join(f'{v:g}' for v in other.unique()[:4].tolist())}; score regression "
                              f"targets with metric 'rmse' or 'mae', and give class labels one output per class")


def _mean_of(scores: Sequence[Tensor | float], name: str) -> float:
    """The mean of per-target ``scores``; none (every target NaN) is refused."""
    if not scores:
        raise ValidationError(f"{name} got only NaN targets (unlabelled entries), so there is nothing to score; "
                              f"evaluate a split with labelled items")
    return float(np.mean([float(v) for v in scores]))


def _per_task(y_true: Tensor, y_pred: Tensor, score: Callable[[np.ndarray, np.ndarray], float],
              name: str) -> float:
    """Mean of ``score`` over the columns that hold both classes (OGB's convention); NaN where a scored column's
    predictions hold NaN (sklearn would refuse them)."""
    _check_one_per_target(name, y_true, y_pred)
    yt = _upcast(y_true).cpu().numpy().reshape(len(y_true), -1)
    yp = _upcast(y_pred).cpu().numpy().reshape(yt.shape)
    scores = []
    for i in range(yt.shape[1]):
        labelled = ~np.isnan(yt[:, i])
        col = yt[labelled, i]
        if not np.isin(col, (0, 1)).all():
            raise ValidationError(f"{name} scores 0/1 targets, one score each, but the targets hold "
                                  f"{', '.join(f'{v:g}' for v in np.unique(col)[:6])}; class labels need one output "
                                  f"per class (scored one class against the rest)")
        if (col == 1).any() and (col == 0).any():
            scores.append(math.nan if np.isnan(yp[labelled, i]).any() else score(col, yp[labelled, i]))
    if not scores:
        raise ConfigError("no task has both positive and negative labels in this split, so the "
                          "ranking metric is undefined; use a larger split or another metric")
    return float(np.mean(scores))


def _class_labels(y_true: Tensor, y_pred: Tensor) -> bool:
    """Whether ``y_true`` holds integer class labels, one per row of ``y_pred``'s logits (one per class)."""
    return (not y_true.is_floating_point() and y_pred.dim() == 2 and y_pred.size(-1) > 1
            and y_true.numel() == len(y_pred))


def _one_vs_rest(y_true: Tensor, y_pred: Tensor) -> tuple[Tensor, Tensor]:
    """Class labels beside one logit per class become one binary task per class (one-hot labels against
    softmax probabilities, as sklearn's ``multi_class="ovr"``); binary labels beside two logits one task, the
    positive class scored by its logit margin (which ranks as its softmax probability does, as sklearn's
    ``average_precision_score(y, p[:, 1])``); other targets pass unchanged."""
    if _class_labels(y_true, y_pred):
        y_pred = _upcast(y_pred).float()
        low, high = (int(y_true.min()), int(y_true.max())) if y_true.numel() else (0, 0)
        if low < 0 or high >= y_pred.size(-1):  # torch's one_hot would fail with no word of which output is missing
            raise ValidationError(f"the targets hold class labels in [{low}, {high}], but the predictions have "
                                  f"{y_pred.size(-1)} outputs per item (classes 0..{y_pred.size(-1) - 1}); give the "
                                  f"model one output per class, or remap the labels")
        if y_pred.size(-1) == 2:
            return y_true.reshape(-1, 1), (y_pred[:, 1] - y_pred[:, 0]).unsqueeze(-1)
        return torch.nn.functional.one_hot(y_true.view(-1).long(), y_pred.size(-1)).float(), y_pred.softmax(-1)
    return y_true, y_pred


def _rocauc(y_true: Tensor, y_pred: Tensor) -> float:
    from sklearn.metrics import roc_auc_score

    _nonempty("rocauc", y_true)
    return _per_task(*_one_vs_rest(y_true, y_pred), roc_auc_score, "rocauc")


def _ap(y_true: Tensor, y_pred: Tensor) -> float:
    from sklearn.metrics import average_precision_score

    _nonempty("ap", y_true)
    return _per_task(*_one_vs_rest(y_true, y_pred), average_precision_score, "ap")


def _check_one_per_target(name: str, y_true: Tensor, y_pred: Tensor) -> None:
    """One prediction per target; predictions of two or more dimensions hold one row per item (a transposed
    ``(targets, items)`` matrix would pair each item with another item's scores)."""
    if y_pred.numel() != y_true.numel():
        raise ValidationError(f"{name} compares one prediction per target, but the predictions have shape "
                              f"{tuple(y_pred.shape)} for targets of shape {tuple(y_true.shape)}; for class labels "
                              f"use metric 'acc'")
    if y_pred.dim() > 1 and y_true.dim() >= 1 and len(y_pred) != len(y_true):
        raise ValidationError(f"{name} reads one row of predictions per item, but the predictions have shape "
                              f"{tuple(y_pred.shape)} for targets of shape {tuple(y_true.shape)}; give them as "
                              f"({len(y_true)}, targets) (transpose them?)")


def _f1(y_true: Tensor, y_pred: Tensor) -> float:
    r"""Micro-F1 of logits: 0/1 targets (binary or multi-label, one logit each) against ``logit > 0``, pooled
    over labels, :math:`F_1 = 2\,TP / (2\,TP + FP + FN)` (PyG's PPI example); binary labels beside two logits,
    the positive class's F1 of the argmax; class labels against the argmax over one logit per class (which,
    micro-averaged over classes, equals accuracy)."""
    from sklearn.metrics import f1_score

    _nonempty("f1", y_true)
    if _class_labels(y_true, y_pred):
        _check_classes(y_true, y_pred.size(-1), "f1")
        if _diverged(y_pred):
            return math.nan
        truth, pred = y_true.reshape(-1).cpu().numpy(), y_pred.argmax(-1).cpu().numpy()
        if y_pred.size(-1) == 2:  # binary: class 1 is the positive class, as with one logit
            return float(f1_score(truth, pred, zero_division=0.0))
        return float(f1_score(truth, pred, average="micro"))
    _check_one_per_target("f1", y_true, y_pred)
    truth = y_true.reshape(len(y_true), -1)
    if truth.is_floating_point() and bool(torch.isnan(truth).any()):
        raise ValidationError("f1 got NaN targets (unlabelled entries), which it cannot score; use 'rocauc' or "
                              "'ap', which leave them out")
    if not bool(((truth == 0) | (truth == 1)).all()):
        raise ValidationError("f1 scores 0/1 targets (binary or multi-label) or class labels beside one logit per "
                              "class; these targets hold other values")
    if _diverged(y_pred):
        return math.nan
    truth, pred = truth.long().cpu().numpy(), (y_pred.reshape(truth.shape) > 0).long().cpu().numpy()
    if truth.shape[1] == 1:  # sklearn reads one column as binary, where "micro" would mean accuracy
        return float(f1_score(truth[:, 0], pred[:, 0], zero_division=0.0))
    return float(f1_score(truth, pred, average="micro", zero_division=0.0))


def _per_target(y_true: Tensor, y_pred: Tensor, name: str, error: Callable[[Tensor], Tensor]) -> float:
    """Mean over the target columns of ``error`` of each column's residuals, its NaN targets left out (OGB's
    ``rmse`` of several tasks; sklearn's ``multioutput="uniform_average"``); one target is scored as it is."""
    _nonempty(name, y_true)
    _check_one_per_target(name, y_true, y_pred)
    truth = _upcast(y_true).double().reshape(len(y_true), -1)
    residual = truth - _upcast(y_pred).double().reshape(truth.shape)
    labelled = ~torch.isnan(truth)
    return _mean_of([error(residual[labelled[:, i], i]) for i in range(truth.size(1)) if bool(labelled[:, i].any())],
                    name)


def _rmse(y_true: Tensor, y_pred: Tensor) -> float:
    return _per_target(y_true, y_pred, "rmse", lambda r: r.pow(2).mean().sqrt())


def _mae(y_true: Tensor, y_pred: Tensor) -> float:
    return _per_target(y_true, y_pred, "mae", lambda r: r.abs().mean())


def _check_pairs(pos: Tensor, neg: Tensor, metric: str) -> None:
    """Some positive and some negative scores: with none the mean is NaN, or a ranking empty of negatives a
    perfect score."""
    if pos.numel() == 0 or neg.numel() == 0:
        raise ValidationError(f"{metric} ranks positive pair scores against negative ones, but it got "
                              f"{pos.numel()} positive and {neg.numel()} negative scores (negatives of shape "
                              f"{tuple(neg.shape)}); evaluate a split that holds both")


def _check_rows(pos: Tensor, neg: Tensor, metric: str) -> None:
    """``neg`` holds one row of negative scores per positive score, as the per-positive metrics take them."""
    if neg.dim() != 2 or len(neg) != pos.numel():
        raise ValidationError(f"{metric} ranks each positive pair among its own negatives, a ({pos.numel()}, K) "
                              f"score matrix, but the negatives have shape {tuple(neg.shape)}; give each positive "
                              f"its own negative targets (OGB's ogbl-citation2 split: source_node, target_node, "
                              f"target_node_neg), or score one shared pool of negatives with hits@K or rocauc")
    _check_pairs(pos, neg, metric)


def _ranks(pos: Tensor, neg: Tensor, metric: str) -> Tensor:
    r"""The rank of each positive score ``pos[i]`` among its own negatives ``neg[i]`` (a ``(P, K)`` matrix),
    ties counted half, as OGB ranks them:
    :math:`r_i = 1 + \tfrac12\big(|\{k: n_{ik} > p_i\}| + |\{k: n_{ik} \ge p_i\}|\big)`."""
    _check_rows(pos, neg, metric)
    pos = pos.view(-1, 1)
    return 1 + 0.5 * ((neg > pos).sum(dim=1) + (neg >= pos).sum(dim=1)).float()


def _mrr(pos: Tensor, neg: Tensor) -> float:
    r"""Mean reciprocal rank :math:`\frac1P \sum_i 1 / r_i` of the positives among their own negatives
    (:func:`_ranks`; OGB's ``mrr`` of ogbl-citation2); NaN where a score is NaN (it would rank first)."""
    ranks = _ranks(pos, neg, "mrr")
    return math.nan if _diverged(pos, neg) else ranks.reciprocal().mean().item()


def _hits(k: int) -> Callable[[Tensor, Tensor], float]:
    def hits(pos: Tensor, neg: Tensor) -> float:
        # One shared pool: the fraction of positive scores above the k-th highest negative score (OGB's
        # ogbl-ddi/collab definition). A row of negatives per positive: the fraction ranked k or better among
        # their own row (OGB's hits@k_list of ogbl-citation2).
        per_row = neg.dim() == 2
        if not per_row:
            _check_pairs(pos, neg, f"hits@{k}")
        pool = neg.size(1) if per_row else neg.numel()
        if pool < k:  # OGB's evaluator returns 1.0 here, a score that selects nothing
            where = "each positive has" if per_row else "this split has"
            raise ValidationError(f"hits@{k} counts the positive pairs scored above the {k} highest-scored "
                                  f"negative pairs, but {where} only {pool} negatives; use a K of at "
                                  f"most {pool}, more negatives, or metric='rocauc'")
        if per_row:
            ranks = _ranks(pos, neg, f"hits@{k}")
            return math.nan if _diverged(pos, neg) else (ranks <= k).float().mean().item()
        if _diverged(pos, neg):  # NaN positives would miss, NaN negatives outrank every positive
            return math.nan
        kth = torch.topk(neg.view(-1), k).values[-1]
        return (pos.view(-1) > kth).float().mean().item()

    return hits


_BUILTIN: dict[str, tuple[Callable, bool]] = {
    "acc": (_acc, True),
    "rocauc": (_rocauc, True),
    "ap": (_ap, True),
    "f1": (_f1, True),
    "rmse": (_rmse, False),
    "mae": (_mae, False),
    "knn_acc": (_acc, True),
    "mrr": (_mrr, True),
}
METRIC_NAMES = (*_BUILTIN, "hits@K")


def _ogb_metric(name: str) -> Metric:
    """The official OGB evaluator of dataset ``name`` (one registered with
    :func:`graphdl.datasets.register_ogb_dataset` too), as a Metric."""
    from graphdl import datasets

    level = {"ogbg": "graphproppred", "ogbl": "linkproppred", "ogbn": "nodeproppred"}[name[:4]]
    evaluator = datasets.evaluator(name)
    metric = evaluator.eval_metric
    higher = metric not in ("rmse", "mae")

    if level == "linkproppred":
        key = metric  # e.g. "hits@20" or "mrr"
        k = int(metric.split("@")[1]) if metric.startswith("hits@") else None

        def fn(pos: Tensor, neg: Tensor) -> float:
            if metric == "mrr":  # one row of negatives per positive
                _check_rows(pos, neg, f"the {name} evaluator's mrr")
            elif neg.dim() == 2 and k is not None:
                raise ValidationError(f"the {name} evaluator's {metric} ranks the positives against one shared pool "
                                      f"of negatives, but these splits give each positive its own negatives; score "
                                      f"them with metric '{metric}' (per positive) or 'mrr'")
            else:
                neg = neg.reshape(-1)
                _check_pairs(pos, neg, f"the {name} evaluator's {metric}")
            if k is not None:
                if neg.numel() < k:  # the evaluator returns 1.0 here, a score that selects nothing
                    raise ValidationError(f"the {name} evaluator's {metric} counts the positive pairs scored above "
                                          f"the {k} highest-scored negative pairs, but this split has only "
                                          f"{neg.numel()} negatives; give it at least {k} negatives")
                evaluator.K = k
            if _diverged(pos, neg):  # a NaN positive would rank first (mrr 1.0)
                return math.nan
            out = evaluator.eval({"y_pred_pos": _upcast(pos).view(-1).cpu(), "y_pred_neg": _upcast(neg).cpu()})
            return float(out[key] if key in out else out[f"{key}_list"].mean())
    else:
        def fn(y_true: Tensor, y_pred: Tensor) -> float:
            _nonempty(f"the {name} evaluator's {metric}", y_true)
            yt, yp = _upcast(y_true).cpu(), _upcast(y_pred).cpu()
            nan = _nan(yp)  # before argmax, which reads a NaN logit as the predicted class
            if metric == "acc" and yp.dim() > 1 and yp.size(-1) > 1 and yt.numel() == len(yt):
                # one logit per class against class ids (ogbn-arxiv, ogbg-ppa): the predicted class, as
                # OGB's examples hand it to the evaluator
                nan = nan.any(dim=-1)
                yp = yp.argmax(dim=-1, keepdim=True)
            elif metric in ("rocauc", "ap") and yp.dim() == 2 and yp.size(-1) == 2 and yt.numel() == len(yt):
                # two logits for one binary task (a cross-entropy model): the positive class's logit margin,
                # which ranks as its softmax probability does
                nan = nan.any(dim=-1)
                yp = (yp[:, 1] - yp[:, 0]).unsqueeze(-1)
            elif metric == "acc" and yp.is_floating_point() and yp.numel() == yt.numel():
                # one logit per binary target: the predicted label is logit > 0, as the built-in acc reads it (the
                # evaluator would compare the raw logits with the 0/1 labels)
                yp = (yp > 0).long()
            yt, yp = yt.view(len(yt), -1), yp.view(len(yp), -1)
            if yt.shape == yp.shape and bool((nan.reshape(yp.shape) & ~_nan(yt)).any()):
                return math.nan  # a labelled item's score is NaN (sklearn would refuse it)
            try:
                return float(evaluator.eval({"y_true": yt, "y_pred": yp})[metric])
            except (RuntimeError, ValueError) as exc:  # the evaluator's own shape and type checks
                raise ValidationError(f"the {name} evaluator ({metric}) refused predictions of shape "
                                      f"{tuple(yp.shape)} for targets of shape {tuple(yt.shape)}: {exc}. Score with "
                                      f"the evaluator of the dataset you train on") from None

    return Metric(metric, fn, higher, pairs=level == "linkproppred")


def is_pair_metric(metric: Metric) -> bool:
    """Whether ``metric`` takes positive and negative pair scores (``hits@K``, ``mrr``, OGB link evaluators)."""
    return metric.pairs


def resolve_metric(name: str | Metric) -> Metric:
    """A :class:`Metric` from a name, an OGB dataset name or a Metric."""
    if isinstance(name, Metric):
        return name
    key = name.lower()
    if key[:5] in ("ogbg-", "ogbl-", "ogbn-"):
        return _ogb_metric(key)
    if key.startswith("hits@"):
        k = key[5:]
        if not k.isdecimal() or int(k) < 1:  # isdigit also takes '²', which int() refuses
            raise ConfigError(f"metric {name!r}: write hits@K with an integer K >= 1, e.g. hits@20")
        return Metric(key, _hits(int(k)), True, pairs=True)
    if key not in _BUILTIN:
        raise ConfigError(f"unknown metric {name!r}.{did_you_mean(key, _BUILTIN)} "
                          f"Known: {', '.join(METRIC_NAMES)}, or an OGB dataset name.")
    fn, higher = _BUILTIN[key]
    return Metric(key, fn, higher, pairs=key == "mrr")
