"""The loss conformance suite over every registered loss (entry-point plugins included)."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch
from torch import Tensor, nn

import graphdl
from graphdl.losses import Loss
from graphdl.losses.base import KINDS
from graphdl.testing.losses import check_loss

# listed at collection time: plugins registered (or installed as entry points) by then are covered
ALL_LOSSES = graphdl.losses.list()


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_every_registered_loss_conforms(name: str) -> None:
    report = check_loss(name)
    assert report["kind"] in KINDS
    assert set(report["values"]) == set(report["reductions"])


def test_the_issue_names_are_registered() -> None:
    expected = ["kl_div", "kl", "js_div", "js", "margin_ranking", "hinge_embedding", "cosine_embedding",
                "triplet_margin", "soft_margin_triplet", "contrastive", "triplet", "ntxent", "infonce",
                "supcon", "multi_similarity", "lifted_structure", "arcface", "cross_entropy",
                "bce_with_logits", "bce", "focal", "mse", "l1", "huber", "link_bce", "grace", "vgae", "dgi"]
    missing = [n for n in expected if n not in graphdl.losses]
    assert not missing
    assert graphdl.losses.entry("infonce").name == "ntxent"
    assert isinstance(graphdl.losses.create("ntxent", temperature=0.1), graphdl.losses.metric.NTXentLoss)


def test_kinds_tell_the_trainer_how_to_call() -> None:
    kinds = {e.name: e.meta["kind"] for e in graphdl.losses.entries()}
    assert kinds["supcon"] == kinds["arcface"] == kinds["triplet"] == "metric"
    assert kinds["cross_entropy"] == "classification" and kinds["mse"] == "regression"
    assert kinds["kl_div"] == "divergence" and kinds["margin_ranking"] == "ranking"
    assert kinds["grace"] == kinds["vgae"] == "graph"


def test_repr_shows_hyper_parameters() -> None:
    text = repr(graphdl.losses.create("triplet", margin=0.2, mining="semihard", distance="cosine"))
    assert text == ("TripletLoss(margin=0.2, mining='semihard', swap=False, smooth_loss=False, "
                    "distance=CosineSimilarity(), reduction='mean')")


# ---------------------------------------------------------------- a plugin
class _CenterLoss(Loss):
    r"""Toy plugin: :math:`\ell_i = \lVert x_i - c_{y_i} \rVert^2` with learnable centres."""

    kind = "metric"
    example_init = {"num_classes": 4, "dim": 6}  # the default metric inputs: 4 classes, 6 features

    def __init__(self, num_classes: int, dim: int, scale: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.num_classes, self.dim, self.scale = num_classes, dim, scale
        self.centers = nn.Parameter(torch.randn(num_classes, dim))

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        c = self.centers.to(embeddings.dtype)[labels]
        return self._reduce(self.scale * (embeddings - c).pow(2).sum(1))


@contextmanager
def _registered(name: str, obj: object, **meta: object):
    """``obj`` registered as the loss ``name`` for the ``with`` block."""
    graphdl.losses.register(name, obj, **meta)
    try:
        yield name
    finally:
        graphdl.losses.unregister(name)


@pytest.fixture
def center_plugin():
    graphdl.losses.register("center_toy", _CenterLoss, kind="metric")
    yield "center_toy"
    graphdl.losses.unregister("center_toy")


def test_a_plugin_passes_in_one_line(center_plugin: str) -> None:
    report = check_loss(center_plugin)  # inputs from the registry kind ("metric")
    assert report["reductions"] == ("mean", "sum", "none")


def test_a_loss_class_kind_serves_when_registered_without_one() -> None:
    with _registered("center_classkind", _CenterLoss):  # no kind=: _CenterLoss.kind is "metric"
        assert check_loss("center_classkind")["kind"] == "metric"
        model = graphdl.models.create("gnn", layer="sage", in_channels=4, hidden_channels=8, out_channels=6)
        trainer = graphdl.Trainer(model, "center_classkind", loss_kwargs={"num_classes": 4, "dim": 6},
                                  progress=False)
        assert trainer.task.loss_kind == "metric" and trainer.monitor == "val_knn_acc"


def test_a_loss_without_any_kind_is_named() -> None:
    with _registered("plain_mse_toy", lambda reduction="mean": nn.MSELoss(reduction=reduction)):
        with pytest.raises(AssertionError, match=r"loss 'plain_mse_toy' has kind=None; register it with kind= "
                                                 r"one of \('classification'"):
            check_loss("plain_mse_toy")


# ------------------------------------------------------ the suite catches faults
class _Broken(_CenterLoss):
    fault = ""

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        out = super().forward(embeddings, labels)
        if self.fault == "none-shape" and self.reduction == "none":
            return out.sum()
        if self.fault == "none-sum" and self.reduction == "none":
            return out * 2
        if self.fault == "detached":
            return out.detach().requires_grad_()
        if self.fault == "nan":
            return out * float("nan")
        return out

    def extra_repr(self) -> str:
        return "" if self.fault == "repr" else super().extra_repr()


@pytest.mark.parametrize("fault,match", [
    ("none-shape", "expected a tensor of terms"),
    ("none-sum", "terms sum to"),
    ("detached", "no gradient reached"),
    ("nan", "value is not finite"),
    ("repr", r"does not show hyper-parameter\(s\) \['num_classes', 'dim', 'scale'\]; store each constructor argument "
             r"under its own name \(self.num_classes = num_classes\), which the repr of graphdl.losses.Loss shows$"),
])
def test_check_loss_catches_a_broken_loss(fault: str, match: str) -> None:
    broken = _Broken(num_classes=4, dim=6)
    broken.fault = fault
    with pytest.raises(AssertionError, match=match):
        check_loss(broken, gradcheck=False)


def test_check_loss_names_a_factory_that_cannot_take_a_reduction() -> None:
    # before: a ConfigError about an unexpected keyword 'reduction' that check_loss itself had passed
    with _registered("mse_factory_test", lambda: nn.MSELoss(), kind="regression"):
        with pytest.raises(AssertionError, match=r"^mse_factory_test: check_loss builds the loss once per "
                                                 r"reduction with reduction=...; let <lambda> take reduction="):
            check_loss("mse_factory_test")
    # a factory that passes it on conforms
    with _registered("mse_factory_test", lambda reduction="mean": graphdl.losses.create("mse", reduction=reduction),
                     kind="regression"):
        check_loss("mse_factory_test")
