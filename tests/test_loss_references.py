"""Losses against their references (pytorch-metric-learning, torch.nn) in settings the other loss tests do
not try, and bad input named by a graphdl error instead of a deep torch traceback."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import graphdl
from graphdl.errors import ValidationError

import pytorch_metric_learning.losses as pml_losses  # noqa: E402 (a test dependency: absent, this fails)

L = graphdl.losses


def _emb(n: int = 10, d: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


LABELS = torch.tensor([0, 0, 0, 1, 1, 2, 2, 3, 3, 3])
LP_LOSSES = [("contrastive", pml_losses.ContrastiveLoss), ("triplet", pml_losses.TripletMarginLoss),
             ("lifted_structure", pml_losses.LiftedStructureLoss)]


@pytest.mark.parametrize("name,pml", LP_LOSSES, ids=[n for n, _ in LP_LOSSES])
def test_lp_distance_losses_match_pml_in_float16(name, pml) -> None:
    """torch.cdist has no float16 kernel: the default LpDistance raised NotImplementedError where pml (which
    has a float16 path) gives the loss."""
    e1, e2 = _emb().half().requires_grad_(), _emb().half().requires_grad_()
    ours, theirs = L.create(name)(e1, LABELS), pml()(e2, LABELS)
    assert ours.dtype == torch.float16
    torch.testing.assert_close(ours, theirs, rtol=1e-2, atol=2e-3)
    ours.backward(), theirs.backward()
    torch.testing.assert_close(e1.grad, e2.grad, rtol=1e-2, atol=2e-3)


@pytest.mark.parametrize("kw", [{}, {"mining": "hard"}, {"mining": "semihard", "margin": 0.3}, {"swap": True}],
                         ids=["all", "hard", "semihard", "swap"])
def test_lp_distance_triplet_in_bfloat16_is_the_float32_loss_rounded(kw) -> None:
    x = _emb(seed=1)
    e16, e32 = x.bfloat16().requires_grad_(), x.clone().requires_grad_()
    loss = L.create("triplet", **kw)
    low, ref = loss(e16, LABELS), loss(e32, LABELS)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), ref.detach(), rtol=3e-2, atol=1e-2)
    low.backward(), ref.backward()
    torch.testing.assert_close(e16.grad.float(), e32.grad, rtol=5e-2, atol=1e-2)


@pytest.mark.parametrize("shape", [(), (5, 1), (3,)], ids=["scalar", "column", "shorter"])
def test_margin_ranking_target_that_torch_cannot_pair_is_named(shape) -> None:
    """A target torch refuses (another rank, a length that does not broadcast) failed inside torch's kernel."""
    loss = L.create("margin_ranking", margin=0.1)
    x1, x2 = torch.randn(5), torch.randn(5)
    with pytest.raises(ValidationError, match=r"MarginRankingLoss: target must have the shape of input1, "
                                              r"\(5,\) .*got shape " + re.escape(str(shape))):
        loss(x1, x2, torch.ones(shape))


def test_margin_ranking_keeps_the_targets_torch_broadcasts() -> None:
    a, b = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    y = torch.tensor([[1.0], [-1.0], [1.0], [-1.0]], dtype=torch.float64)
    ours = L.create("margin_ranking", margin=0.2, reduction="none")(a, b, y)
    torch.testing.assert_close(ours, nn.MarginRankingLoss(margin=0.2, reduction="none")(a, b, y))


@pytest.mark.parametrize("name", ["kl_div", "js_div"])
@pytest.mark.parametrize("kw", [{"dim": 2}, {"dim": -3}, {"dim": 2, "from_logits": True, "reduction": "sum"}],
                         ids=["batchmean-2", "batchmean--3", "from_logits"])
def test_divergence_dim_outside_the_input_is_named(name, kw) -> None:
    """dim=2 on (N, C) input: from_logits raised IndexError inside log_softmax, and "batchmean" silently
    divided by C (2 % 2 == 0 read as "the classes are on dim 0") instead of torch's N."""
    x = F.log_softmax(torch.randn(3, 4, dtype=torch.float64), 1)
    t = torch.softmax(torch.randn(3, 4, dtype=torch.float64), 1)
    with pytest.raises(ValidationError, match=rf"dim={kw['dim']} is not a dimension of the input of shape "
                                              r"\(3, 4\); pass the class dimension, in \[-2, 1\]"):
        L.create(name, **kw)(x, t)


@pytest.mark.parametrize("name", ["link_bce", "vgae"])
def test_negative_node_index_is_named(name) -> None:
    """The error named the largest index (in range) instead of the negative one."""
    z = torch.randn(6, 4)
    pos = torch.tensor([[0, -1], [1, 2]])
    neg = torch.tensor([[0, 1], [3, 2]])
    args = (z, pos, neg) if name == "link_bce" else (z, z, torch.zeros(6, 4), pos, neg)
    with pytest.raises(ValidationError, match=r"pos_edge_index holds node index -1, outside \[0, 6\)"):
        L.create(name)(*args)


def test_boolean_edge_index_is_named() -> None:
    """A bool (2, E) mask passed the integer check and failed deep inside torch."""
    with pytest.raises(ValidationError, match=r"pos_edge_index must be an integer tensor of shape "
                                              r"\(2, num_edges\), got torch.bool of shape \(2, 2\)"):
        L.create("link_bce")(torch.randn(6, 4), torch.tensor([[True, False], [True, True]]))


def test_vgae_posterior_of_another_shape_than_z_is_named() -> None:
    """z is sampled from (mu, logstd); with 5 posterior rows for 6 nodes the KL was silently taken over 5
    rows and weighted 1/5."""
    z, pos = torch.randn(6, 4), torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(ValidationError, match=r"z and mu must have the same shape, got \(6, 4\) and \(5, 4\)"):
        L.create("vgae")(z, torch.randn(5, 4), torch.zeros(5, 4), pos, pos.flip(0))


def test_link_bce_names_embeddings_given_with_a_float_edge_index() -> None:
    """A float edge_index selected the score form, so the (N, F) embeddings were taken as positive logits."""
    loss = graphdl.losses.create("link_bce")
    z, edges = torch.randn(6, 4), torch.tensor([[0, 1, 2], [3, 4, 5]])
    with pytest.raises(ValidationError, match=r"LinkBCELoss: with a float second argument the inputs are edge logits, "
                                              r"loss\(pos_score, neg_score\), one per edge; got input of shape "
                                              r"\(6, 4\)\. For node embeddings pass the edges as an integer tensor"):
        loss(z, edges.float())
    with pytest.raises(ValidationError, match=r"got input of shape \(3,\) and a third argument"):
        loss(torch.randn(3), edges.float(), edges)
    pos, neg = torch.randn(3), torch.randn(5)
    expected = F.softplus(-pos).mean() + F.softplus(neg).mean()
    torch.testing.assert_close(loss(pos, neg), expected)
    torch.testing.assert_close(loss(pos[:, None], neg[:, None]), expected)


def test_ref_emb_that_is_the_embeddings_with_a_copy_of_the_labels_is_the_plain_call() -> None:
    """ref_emb=embeddings with ref_labels=labels.clone() was refused as 'ref_labels was given without ref_emb'."""
    loss = graphdl.losses.create("triplet", margin=0.2)
    torch.manual_seed(0)
    emb, labels = torch.randn(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    torch.testing.assert_close(loss(emb, labels, ref_emb=emb, ref_labels=labels.clone()), loss(emb, labels))
    with pytest.raises(ValidationError, match=r"ref_emb is the embeddings tensor itself, but ref_labels differ from "
                                              r"labels"):
        loss(emb, labels, ref_emb=emb, ref_labels=labels.flip(0))
    with pytest.raises(ValidationError, match=r"ref_labels was given without ref_emb"):
        loss(emb, labels, ref_labels=labels.clone())
