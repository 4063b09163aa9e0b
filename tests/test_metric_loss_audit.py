"""Audit of the metric losses against pytorch-metric-learning: half-precision means, ArcFace's
gradient on a centre's line, empty index lists."""

from __future__ import annotations

import pytest
import torch

import graphdl

# a test dependency (pyproject's test extra): imported, not skipped
import pytorch_metric_learning.losses as pml_losses  # noqa: E402

L = graphdl.losses


def test_contrastive_half_precision_mean_does_not_overflow() -> None:
    """Near-collapsed float16 embeddings: every one of the ~150k negative pairs costs ~1. Their float16
    sum and count overflowed to inf, the mean was NaN (and every gradient 0); pml's mean is 1."""
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(1, 8, generator=g) + 0.01 * torch.randn(400, 8, generator=g)
    labels = torch.randint(0, 20, (400,), generator=g)
    exact = L.create("contrastive")(emb.double(), labels)
    x = emb.half().requires_grad_()
    ours = L.create("contrastive")(x, labels)
    theirs = pml_losses.ContrastiveLoss()(emb.half(), labels)
    assert ours.dtype == torch.float16
    torch.testing.assert_close(ours.float(), theirs.float(), rtol=2e-3, atol=0)
    torch.testing.assert_close(ours.double(), exact, rtol=2e-3, atol=0)
    ours.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("kwargs", [dict(smooth_loss=True), dict(swap=True, margin=0.5)])
def test_triplet_half_precision_mean_does_not_overflow(kwargs: dict) -> None:
    """swap / smooth_loss enumerate the ~100k triplets: their float16 sum overflowed, the mean was NaN."""
    g = torch.Generator().manual_seed(0)
    emb, labels = torch.randn(120, 8, generator=g), torch.randint(0, 10, (120,), generator=g)
    exact = L.create("triplet", **kwargs)(emb.double(), labels)
    ours = L.create("triplet", **kwargs)(emb.half(), labels)
    theirs = pml_losses.TripletMarginLoss(**kwargs)(emb.half(), labels)
    assert ours.dtype == torch.float16
    torch.testing.assert_close(ours.float(), theirs.float(), rtol=2e-3, atol=0)
    torch.testing.assert_close(ours.double(), exact, rtol=2e-3, atol=0)


def test_supcon_half_precision_mean_does_not_overflow() -> None:
    """400 anchors whose one positive sits in the opposite cluster: each costs ~205, their float16 sum
    (82,000) overflowed and the mean was inf; pml's mean is 205."""
    v = torch.nn.functional.normalize(torch.arange(1.0, 9.0), dim=0)
    sign = torch.tensor([1.0, -1.0]).repeat(200)
    emb = sign[:, None] * v + 0.01 * torch.randn(400, 8, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(400) // 2
    exact = L.create("supcon", temperature=0.01)(emb.double(), labels)
    ours = L.create("supcon", temperature=0.01)(emb.half(), labels)
    theirs = pml_losses.SupConLoss(temperature=0.01)(emb.half(), labels)
    assert ours.dtype == torch.float16
    torch.testing.assert_close(ours.float(), theirs.float(), rtol=2e-3, atol=0)
    torch.testing.assert_close(ours.double(), exact, rtol=2e-3, atol=0)


def test_arcface_gradient_is_finite_for_an_embedding_on_its_centre_line() -> None:
    """acos has an infinite slope at cos = +-1: an embedding on its class centre's line (exactly what
    every embedding is when embedding_size=1) sent NaN into its gradient and into the centres'."""
    torch.manual_seed(0)
    loss = L.create("arcface", num_classes=3, embedding_size=1).double()
    x = torch.tensor([[0.7], [-1.3], [2.0], [-0.4]], dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 0])
    value = loss(x, labels)
    value.backward()
    # with d = 1 every cosine is +-1 whatever |x|: the loss is locally constant, its gradient 0
    torch.testing.assert_close(x.grad, torch.zeros_like(x), rtol=0, atol=1e-9)
    assert torch.isfinite(loss.weight.grad).all()

    loss = L.create("arcface", num_classes=4, embedding_size=6).double()
    theirs = pml_losses.ArcFaceLoss(num_classes=4, embedding_size=6).double()
    with torch.no_grad():
        theirs.W.copy_(loss.weight.t())
    emb = torch.randn(5, 6, dtype=torch.float64)
    emb[0] = 3.0 * loss.weight.detach()[1]  # on the centre of its own class
    emb[1] = -2.0 * loss.weight.detach()[2]  # opposite its centre
    labels = torch.tensor([1, 2, 0, 3, 1])
    e1, e2 = emb.clone().requires_grad_(), emb.clone().requires_grad_()
    v1, v2 = loss(e1, labels), theirs(e2, labels)
    torch.testing.assert_close(v1, v2)
    v1.backward(), v2.backward()
    assert torch.isfinite(e1.grad).all() and torch.isfinite(loss.weight.grad).all()
    # the rows off their centre's line get pml's gradient
    torch.testing.assert_close(e1.grad[2:], e2.grad[2:])


@pytest.mark.parametrize("name", ["contrastive", "triplet", "ntxent", "lifted_structure"])
def test_empty_python_index_lists_are_an_empty_tuple(name: str) -> None:
    """torch.as_tensor([]) is float32: ``([], [], [])`` was refused as non-integer indices."""
    emb = torch.randn(6, 4, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    loss = L.create(name)
    empty = torch.empty(0, dtype=torch.long)
    expected = loss(emb, labels, (empty, empty, empty))
    got = loss(emb, labels, ([], [], []))
    torch.testing.assert_close(got, expected)
    assert got.item() == 0.0
