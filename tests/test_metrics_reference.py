"""The built-in metrics against their references: scikit-learn and the official OGB evaluators
(``ogb.graphproppred.Evaluator``, ``ogb.nodeproppred.Evaluator``), including NaN (unlabelled) targets,
multi-target regression, binary labels beside two logits, integer multi-label targets, bfloat16 predictions,
and the link task's threshold metrics (scored on its pair logits)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ogb.graphproppred import Evaluator as GraphEvaluator
from ogb.nodeproppred import Evaluator as NodeEvaluator
from sklearn.metrics import average_precision_score, f1_score, mean_absolute_error, roc_auc_score
from torch_geometric.data import Data

from graphdl.errors import ValidationError
from graphdl.models.gnn import GNN
from graphdl.train import LinkTask, Trainer
from graphdl.train.metrics import resolve_metric


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _with_nan(y: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """``y`` as float with about ``fraction`` of its entries unlabelled (NaN), as OGB's molecule targets."""
    y = y.float().clone()
    y[torch.rand(y.shape, generator=_gen(seed)) < fraction] = float("nan")
    return y


def _ogb_graph_evaluator(metric: str, num_tasks: int) -> GraphEvaluator:
    """The official graph-property evaluator with ``num_tasks`` tasks scored by ``metric`` (OGB lists no
    multi-task dataset for every metric; its ``_eval_<metric>`` code is the same for any task count)."""
    evaluator = GraphEvaluator({"rmse": "ogbg-molesol", "acc": "ogbg-ppa", "ap": "ogbg-molpcba",
                                "rocauc": "ogbg-moltox21"}[metric])
    evaluator.num_tasks = num_tasks
    return evaluator


# ---------------------------------------------------------------------------- 1. link task thresholds
class _Embed(torch.nn.Module):
    """Node embeddings from the features alone, so pair logits (dot products) take both signs."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 8)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


def _link_graph() -> tuple[Data, dict, torch.Tensor, torch.Tensor]:
    """A small graph, OGB-style splits, the validation pairs (positives then negatives) and their labels."""
    n = 40
    edge_index = torch.randint(0, n, (2, 160), generator=_gen(1))
    data = Data(x=torch.randn(n, 4, generator=_gen(2)), edge_index=edge_index)
    neg = torch.randint(0, n, (60, 2), generator=_gen(3))
    splits = {"train": {"edge": edge_index[:, :120].t()},
              "valid": {"edge": edge_index[:, 120:].t(), "edge_neg": neg}}
    pairs = torch.cat([edge_index[:, 120:], neg.t()], dim=1)
    return data, splits, pairs, torch.cat([torch.ones(40), torch.zeros(60)])


def _pair_logits(model: torch.nn.Module, data: Data, pairs: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        z = model.eval()(data.x, data.edge_index)
    return (z[pairs[0]] * z[pairs[1]]).sum(-1)


@pytest.mark.parametrize("metric", ["f1", "acc"])
def test_link_task_thresholds_its_pair_probabilities_at_one_half(metric: str) -> None:
    """The link task hands rocauc/ap sigmoid probabilities; f1 thresholded those at 0 (a logit threshold), so
    every pair counted as an edge."""
    from sklearn.metrics import accuracy_score

    torch.manual_seed(0)
    data, splits, pairs, labels = _link_graph()
    model = _Embed()
    task = LinkTask(metric=metric)
    task.setup(data, splits)
    predicted = (_pair_logits(model, data, pairs).sigmoid() > 0.5).numpy()
    assert 0 < predicted.sum() < len(predicted)  # the check is sharp: some pairs score below 1/2
    reference = (f1_score if metric == "f1" else accuracy_score)(labels.numpy(), predicted)
    assert reference != pytest.approx(f1_score(labels.numpy(), np.ones_like(predicted)))
    assert task.evaluate(model, ["val"])[f"val_{metric}"] == pytest.approx(reference, abs=1e-6)


def test_link_task_ranking_metrics_score_the_pair_probabilities() -> None:
    torch.manual_seed(0)
    data, splits, pairs, labels = _link_graph()
    model = _Embed()
    probs = _pair_logits(model, data, pairs).sigmoid().numpy()
    for metric, score in (("rocauc", roc_auc_score), ("ap", average_precision_score)):
        task = LinkTask(metric=metric)
        task.setup(data, splits)
        assert task.evaluate(model, ["val"])[f"val_{metric}"] == pytest.approx(score(labels.numpy(), probs))


def test_link_task_ranks_saturated_logits_without_ties() -> None:
    """Logits beyond ~17 all have sigmoid 1.0 in float32: rocauc and ap rank the logits themselves."""
    torch.manual_seed(0)
    data, splits, pairs, labels = _link_graph()
    model = _Embed()
    with torch.no_grad():
        model.lin.weight.mul_(30)
    logits = _pair_logits(model, data, pairs)
    assert int((logits.sigmoid() == 1).sum()) > 1  # the probabilities tie
    for metric, score in (("rocauc", roc_auc_score), ("ap", average_precision_score)):
        task = LinkTask(metric=metric)
        task.setup(data, splits)
        assert task.evaluate(model, ["val"])[f"val_{metric}"] == pytest.approx(score(labels.numpy(), logits.numpy()))


def test_link_trainer_reports_sklearns_f1_of_its_model() -> None:
    data, splits, pairs, labels = _link_graph()
    torch.manual_seed(0)
    model = _Embed()
    trainer = Trainer(model, task="link", task_kwargs={"metric": "f1"}, epochs=2, seed=0, progress=False)
    result = trainer.fit(data, splits)  # the model ends at its best validation epoch
    predicted = (_pair_logits(model, data, pairs).sigmoid() > 0.5).numpy()
    assert 0 < predicted.sum() < len(predicted)
    expected = f1_score(labels.numpy(), predicted)
    assert trainer.task.evaluate(model, ["val"])["val_f1"] == pytest.approx(expected, abs=1e-6)
    assert result.best["val_f1"] == pytest.approx(expected, abs=1e-6)


# ---------------------------------------------------------------------------- 2, 3. acc
def test_acc_leaves_out_nan_targets_as_the_ogb_node_evaluator() -> None:
    """Class labels with unlabelled (NaN) nodes: OGB's ogbn-arxiv evaluator scores the labelled ones only."""
    y = _with_nan(torch.randint(0, 5, (200, 1), generator=_gen(0)), 0.3, seed=1)
    logits = torch.randn(200, 5, generator=_gen(2))
    official = NodeEvaluator("ogbn-arxiv").eval({"y_true": y, "y_pred": logits.argmax(-1, keepdim=True)})["acc"]
    assert resolve_metric("acc")(y, logits) == pytest.approx(official)
    assert resolve_metric("acc")(y.view(-1), logits) == pytest.approx(official)
    # one logit per binary target
    yb = _with_nan(torch.randint(0, 2, (200,), generator=_gen(3)), 0.3, seed=4)
    lb = torch.randn(200, generator=_gen(5))
    official = NodeEvaluator("ogbn-arxiv").eval({"y_true": yb.view(-1, 1),
                                                 "y_pred": (lb > 0).float().view(-1, 1)})["acc"]
    assert resolve_metric("acc")(yb, lb) == pytest.approx(official)


@pytest.mark.parametrize("fraction", [0.0, 0.25])
def test_multi_label_acc_is_the_ogb_per_task_mean_with_nan_targets_left_out(fraction: float) -> None:
    y = _with_nan((torch.rand(150, 6, generator=_gen(0)) < 0.4), fraction, seed=1)
    y[:, 2] = float("nan")  # a task without any label in this split is left out
    y[0] = float("nan")  # so is an unlabelled item
    logits = torch.randn(150, 6, generator=_gen(2))
    kept = [i for i in range(6) if i != 2]
    official = _ogb_graph_evaluator("acc", 5).eval({"y_true": y[:, kept], "y_pred": (logits[:, kept] > 0).float()})
    assert resolve_metric("acc")(y, logits) == pytest.approx(official["acc"])


def test_acc_of_integer_multi_label_targets_is_per_label() -> None:
    """Long 0/1 targets of shape (N, C) (a node task with bce_with_logits) crashed: their argmax was compared with
    all N * C targets."""
    y = (torch.rand(120, 4, generator=_gen(0)) < 0.5).long()
    logits = torch.randn(120, 4, generator=_gen(1))
    official = _ogb_graph_evaluator("acc", 4).eval({"y_true": y, "y_pred": (logits > 0).long()})["acc"]
    assert resolve_metric("acc")(y, logits) == pytest.approx(official)
    assert resolve_metric("acc")(y, logits) == pytest.approx(resolve_metric("acc")(y.float(), logits))


def test_node_task_with_integer_multi_label_targets_reports_per_label_acc() -> None:
    n = 60
    data = Data(x=torch.randn(n, 5, generator=_gen(0)), edge_index=torch.randint(0, n, (2, 200), generator=_gen(1)),
                y=(torch.rand(n, 3, generator=_gen(2)) < 0.5).long())
    data.train_mask = torch.arange(n) < 40
    data.val_mask = (torch.arange(n) >= 40) & (torch.arange(n) < 50)
    data.test_mask = torch.arange(n) >= 50
    torch.manual_seed(0)
    model = GNN("gcn", 5, 8, 3, num_layers=2)
    trainer = Trainer(model, "bce_with_logits", "node", task_kwargs={"metric": "acc"}, epochs=2, seed=0,
                      progress=False)
    result = trainer.fit(data)
    pred = trainer.predict()[data.test_mask]
    official = _ogb_graph_evaluator("acc", 3).eval({"y_true": data.y[data.test_mask], "y_pred": (pred > 0).long()})
    assert result.test == {"test_acc": pytest.approx(official["acc"])}


def test_acc_names_mismatched_shapes() -> None:
    with pytest.raises(ValidationError, match=r"^acc compares one prediction per target, but the predictions have "
                                              r"shape \(10, 3\) for targets of shape \(10, 2\)"):
        resolve_metric("acc")(torch.zeros(10, 2), torch.randn(10, 3))
    with pytest.raises(ValidationError, match=r"^acc got only NaN targets \(unlabelled entries\)"):
        resolve_metric("acc")(torch.full((10,), float("nan")), torch.randn(10))


# ---------------------------------------------------------------------------- 4. regression
@pytest.mark.parametrize("fraction", [0.0, 0.2])
def test_rmse_of_several_targets_is_the_ogb_graph_evaluators_mean_over_tasks(fraction: float) -> None:
    gen = _gen(0)
    scale = torch.tensor([0.1, 1.0, 10.0])  # targets of different scales: pooling and averaging differ
    y = _with_nan(torch.randn(100, 3, generator=gen) * scale, fraction, seed=1)
    pred = y.nan_to_num() + torch.randn(100, 3, generator=gen) * scale
    official = _ogb_graph_evaluator("rmse", 3).eval({"y_true": y, "y_pred": pred})["rmse"]
    assert resolve_metric("rmse")(y, pred) == pytest.approx(official, rel=1e-5)
    # one target scores as before: the official ogbg-molesol evaluator
    esol = GraphEvaluator("ogbg-molesol").eval({"y_true": y[:, 1:2], "y_pred": pred[:, 1:2]})["rmse"]
    assert resolve_metric("rmse")(y[:, 1], pred[:, 1]) == pytest.approx(esol, rel=1e-5)
    assert resolve_metric("ogbg-molesol")(y[:, 1:2], pred[:, 1:2]) == pytest.approx(esol, rel=1e-5)


@pytest.mark.parametrize("fraction", [0.0, 0.2])
def test_mae_of_several_targets_is_sklearns_uniform_average(fraction: float) -> None:
    gen = _gen(3)
    scale = torch.tensor([0.1, 1.0, 10.0, 3.0])
    y = _with_nan(torch.randn(80, 4, generator=gen) * scale, fraction, seed=4)
    pred = torch.randn(80, 4, generator=gen) * scale
    yt, yp = y.numpy(), pred.numpy()
    if fraction == 0:
        expected = mean_absolute_error(yt, yp, multioutput="uniform_average")
    else:  # sklearn refuses NaN: each target's MAE over its labelled entries, as OGB's per-task metrics
        expected = np.mean([mean_absolute_error(yt[~np.isnan(yt[:, i]), i], yp[~np.isnan(yt[:, i]), i])
                            for i in range(4)])
    assert resolve_metric("mae")(y, pred) == pytest.approx(float(expected), rel=1e-5)
    assert resolve_metric("mae")(y[:, 0], pred[:, 0]) == pytest.approx(
        float(mean_absolute_error(yt[:, 0][~np.isnan(yt[:, 0])], yp[:, 0][~np.isnan(yt[:, 0])])), rel=1e-5)


# ---------------------------------------------------------------------------- 5. binary labels, two logits
def test_binary_labels_beside_two_logits_score_the_positive_class() -> None:
    """ap averaged the AP of class 0 and class 1 (one-vs-rest); sklearn scores the positive class's
    probability."""
    y = torch.randint(0, 2, (200,), generator=_gen(0))
    logits = torch.randn(200, 2, generator=_gen(1)) + torch.nn.functional.one_hot(y, 2) * 0.7
    p1 = logits.softmax(-1)[:, 1].numpy()
    assert resolve_metric("ap")(y, logits) == pytest.approx(average_precision_score(y.numpy(), p1))
    assert resolve_metric("rocauc")(y, logits) == pytest.approx(roc_auc_score(y.numpy(), p1))
    assert resolve_metric("f1")(y, logits) == pytest.approx(f1_score(y.numpy(), (p1 > 0.5)))
    # the official evaluator path scores them alike
    assert resolve_metric("ogbg-molhiv")(y, logits) == pytest.approx(roc_auc_score(y.numpy(), p1))
    # more classes keep sklearn's one-vs-rest macro average
    yc = torch.randint(0, 3, (200,), generator=_gen(2))
    lc = torch.randn(200, 3, generator=_gen(3))
    assert resolve_metric("rocauc")(yc, lc) == pytest.approx(
        roc_auc_score(yc.numpy(), lc.softmax(-1).numpy(), multi_class="ovr"))


# ---------------------------------------------------------------------------- 6. bfloat16 predictions
def _cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    gen = _gen(7)
    multi = _with_nan(torch.rand(64, 3, generator=gen) < 0.5, 0.1, seed=8)
    classes = torch.randint(0, 4, (64,), generator=gen)
    binary = torch.randint(0, 2, (64,), generator=gen)
    values = torch.randn(64, 2, generator=gen)
    return [("acc", classes, torch.randn(64, 4, generator=gen)), ("acc", multi, torch.randn(64, 3, generator=gen)),
            ("rocauc", multi, torch.randn(64, 3, generator=gen)), ("ap", multi, torch.randn(64, 3, generator=gen)),
            ("rocauc", classes, torch.randn(64, 4, generator=gen)), ("ap", binary, torch.randn(64, 2, generator=gen)),
            ("f1", binary, torch.randn(64, 1, generator=gen)), ("f1", classes, torch.randn(64, 4, generator=gen)),
            ("rmse", values, torch.randn(64, 2, generator=gen)), ("mae", values, torch.randn(64, 2, generator=gen)),
            ("ogbg-molhiv", binary.view(-1, 1), torch.randn(64, 1, generator=gen)),
            ("ogbg-molesol", values[:, :1], torch.randn(64, 1, generator=gen)),
            ("ogbn-arxiv", classes.view(-1, 1), torch.randn(64, 40, generator=gen))]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("case", range(13))
def test_every_metric_scores_low_precision_predictions_as_their_float32_values(case: int,
                                                                              dtype: torch.dtype) -> None:
    """numpy has no bfloat16: rocauc and ap failed converting the predictions."""
    name, y, pred = _cases()[case]
    low = pred.to(dtype)
    assert resolve_metric(name)(y, low) == pytest.approx(resolve_metric(name)(y, low.float()), rel=1e-6)


@pytest.mark.parametrize("name", ["mrr", "hits@3", "ogbl-citation2", "ogbl-collab"])
def test_pair_metrics_score_bfloat16_scores_as_their_float32_values(name: str) -> None:
    gen = _gen(9)
    pos = torch.randn(30, generator=gen).bfloat16()
    neg = torch.randn(30, 20, generator=gen).bfloat16()
    if name == "ogbl-collab":  # hits@50 over one shared pool
        neg = torch.randn(200, generator=gen).bfloat16()
    assert resolve_metric(name)(pos, neg) == pytest.approx(resolve_metric(name)(pos.float(), neg.float()))
