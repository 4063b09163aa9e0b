"""Audit of graphdl.train.metrics against sklearn and the official OGB evaluators: NaN predictions (a diverged
model) score NaN rather than a top rank or a class read off NaN logits, empty inputs and labels beyond the
model's outputs are named, OGB's shared-pool hits@K with too few negatives is refused, flat multi-task
predictions are scored as rmse scores them, and a custom OGB acc dataset thresholds one logit per target."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ogb.graphproppred import Evaluator as GraphEvaluator
from ogb.linkproppred import Evaluator as LinkEvaluator
from sklearn.metrics import accuracy_score, roc_auc_score

from graphdl.errors import ConfigError, ValidationError
from graphdl.train.metrics import resolve_metric

NAN = float("nan")


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------- NaN predictions
@pytest.mark.parametrize("name", ["mrr", "hits@3", "ogbl-citation2"])
def test_a_nan_positive_score_makes_the_ranking_nan_not_a_first_rank(name: str) -> None:
    """A NaN positive compares False with every negative, so it ranked first: the MRR of a NaN score was 1.0
    (the Trainer would keep that epoch as its best); NaN, which the Trainer ranks worst, is the honest score."""
    neg = torch.randn(6, 10, generator=_gen(1))
    pos = torch.randn(6, generator=_gen(2))
    finite = resolve_metric(name)(pos, neg)
    reference = LinkEvaluator("ogbl-citation2").eval({"y_pred_pos": pos, "y_pred_neg": neg})
    key = "mrr_list" if name != "hits@3" else "hits@3_list"
    if key in reference:
        assert finite == pytest.approx(reference[key].mean().item())
    pos[0] = NAN
    assert math.isnan(resolve_metric(name)(pos, neg))
    pos[0], neg[3, 4] = 0.0, NAN  # a NaN negative never outranked its positive
    assert math.isnan(resolve_metric(name)(pos, neg))


@pytest.mark.parametrize("name, y, pred", [
    ("acc", torch.tensor([1, 1, 1, 0]), torch.tensor([[0.0, NAN, 1.0]] * 4)),  # argmax picked the NaN class
    ("acc", torch.tensor([0, 0, 0, 1]), torch.full((4,), NAN)),  # NaN > 0 is False: class 0
    ("f1", torch.tensor([0, 1, 1, 0]), torch.tensor([[0.0, NAN]] * 4)),
    ("rocauc", torch.tensor([0, 1, 1, 0]), torch.tensor([0.1, NAN, 0.3, 0.2])),  # sklearn's ValueError
    ("ogbn-arxiv", torch.tensor([[1], [1], [2], [0]]), torch.tensor([[0.0, NAN] + [0.0] * 38] * 4)),
    ("ogbg-molhiv", torch.tensor([[0], [1], [1], [0]]), torch.tensor([[0.1], [NAN], [0.3], [0.2]])),
])
def test_nan_logits_score_nan(name: str, y: torch.Tensor, pred: torch.Tensor) -> None:
    assert math.isnan(resolve_metric(name)(y, pred))


def test_a_nan_prediction_of_an_unlabelled_target_is_left_out_as_ogb_leaves_it() -> None:
    y = torch.tensor([[0.0, 1.0], [1.0, NAN], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    pred = torch.randn(5, 2, generator=_gen(3))
    pred[1, 1] = NAN
    evaluator = GraphEvaluator("ogbg-moltox21")
    evaluator.num_tasks = 2
    expected = evaluator.eval({"y_true": y.numpy(), "y_pred": pred.numpy()})["rocauc"]
    assert resolve_metric("rocauc")(y, pred) == pytest.approx(expected)
    per_label = np.mean([accuracy_score(y[~y[:, i].isnan(), i], pred[~y[:, i].isnan(), i] > 0) for i in range(2)])
    assert resolve_metric("acc")(y, pred) == pytest.approx(per_label)


# ---------------------------------------------------------------------------- empty inputs
@pytest.mark.parametrize("name", ["acc", "rocauc", "ap", "f1", "rmse", "mae", "ogbg-molhiv"])
def test_empty_targets_are_named(name: str) -> None:
    with pytest.raises(ValidationError, match=r"got no items to score \(targets of shape \(0, 1\)"):
        resolve_metric(name)(torch.zeros(0, 1), torch.zeros(0, 1))


@pytest.mark.parametrize("name, neg", [("mrr", torch.zeros(0, 5)), ("hits@2", torch.zeros(5)),
                                       ("hits@2", torch.zeros(0, 5)), ("ogbl-citation2", torch.zeros(0, 5)),
                                       ("ogbl-ddi", torch.zeros(30))])
def test_no_positive_scores_are_named(name: str, neg: torch.Tensor) -> None:
    """The builtin ranking metrics returned NaN (a mean of nothing), OGB's hits a ZeroDivisionError."""
    with pytest.raises(ValidationError, match="got 0 positive"):
        resolve_metric(name)(torch.zeros(0), neg)


@pytest.mark.parametrize("name", ["mrr", "ogbl-citation2"])
def test_mrr_without_negatives_is_refused_not_a_perfect_score(name: str) -> None:
    with pytest.raises(ValidationError, match="got 3 positive and 0 negative scores"):
        resolve_metric(name)(torch.randn(3), torch.zeros(3, 0))


def test_ogb_shared_pool_hits_with_fewer_negatives_than_k_is_refused_as_the_builtin_hits() -> None:
    """OGB's evaluator returns hits@20 = 1.0 for a split of 3 negatives, whatever the scores."""
    pos, neg = torch.full((5,), -10.0), torch.zeros(3)
    assert LinkEvaluator("ogbl-ddi").eval({"y_pred_pos": pos, "y_pred_neg": neg})["hits@20"] == 1.0
    with pytest.raises(ValidationError, match="only 3 negatives; give it at least 20"):
        resolve_metric("ogbl-ddi")(pos, neg)
    with pytest.raises(ValidationError, match="only 3 negatives"):
        resolve_metric("hits@20")(pos, neg)


# ---------------------------------------------------------------------------- labels and shapes
@pytest.mark.parametrize("name", ["acc", "f1"])
@pytest.mark.parametrize("labels, outputs, held", [([0, 1, 2, 1], 2, r"\[0, 2\]"), ([0, 1, 5, 1], 3, r"\[0, 5\]"),
                                                   ([0, -1, 2, 1], 3, r"\[-1, 2\]")])
def test_class_labels_beyond_the_outputs_are_named(name: str, labels: list[int], outputs: int, held: str) -> None:
    """f1 failed inside sklearn ("Target is multiclass but average='binary'") or scored the label as a miss."""
    with pytest.raises(ValidationError, match=held + f", but the predictions have {outputs} outputs"):
        resolve_metric(name)(torch.tensor(labels), torch.randn(4, outputs, generator=_gen(4)))


def test_rocauc_of_flat_multi_task_predictions_is_scored_row_major_as_rmse_scores_them() -> None:
    """A flat (N*T,) prediction for (N, T) targets failed inside numpy (boolean index did not match)."""
    y = torch.randint(0, 2, (30, 3), generator=_gen(5))
    pred = torch.randn(30, 3, generator=_gen(6))
    expected = np.mean([roc_auc_score(y[:, i], pred[:, i]) for i in range(3)])
    assert resolve_metric("rocauc")(y, pred.reshape(-1)) == pytest.approx(expected)
    assert resolve_metric("rocauc")(y, pred) == pytest.approx(expected)


@pytest.mark.parametrize("name", ["rocauc", "ap", "rmse", "mae", "f1"])
def test_transposed_predictions_are_named(name: str) -> None:
    """rmse and mae paired each item with another's scores (reshaping (3, 30) to (30, 3)); rocauc failed in numpy."""
    y = torch.randint(0, 2, (30, 3), generator=_gen(7))
    with pytest.raises(ValidationError, match=r"one row of predictions per item.*\(3, 30\).*\(30, 3\)"):
        resolve_metric(name)(y, torch.randn(3, 30, generator=_gen(8)))


def test_hits_with_a_non_ascii_digit_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="write hits@K with an integer K"):
        resolve_metric("hits@²")


def test_a_custom_ogb_acc_dataset_thresholds_one_logit_per_binary_target() -> None:
    """The evaluator compared raw logits with the 0/1 labels (accuracy ~0); the built-in acc reads logit > 0."""
    from graphdl.datasets import DATASETS
    from graphdl.datasets.ogb import register_ogb_dataset

    register_ogb_dataset("ogbg-audit-binacc", "graph", {"eval metric": "acc", "task type": "binary classification",
                                                        "split": "random"}, override=True)
    try:
        y = torch.randint(0, 2, (40, 1), generator=_gen(9))
        logits = torch.randn(40, 1, generator=_gen(10))
        expected = accuracy_score(y[:, 0], logits[:, 0] > 0)
        assert resolve_metric("ogbg-audit-binacc")(y, logits) == pytest.approx(expected)
        assert resolve_metric("ogbg-audit-binacc")(y[:, 0], logits[:, 0]) == pytest.approx(expected)
        assert resolve_metric("acc")(y, logits) == pytest.approx(expected)
    finally:
        DATASETS.unregister("ogbg-audit-binacc")
