"""Losses with a torch.nn counterpart give torch's value and gradient (float64, every reduction)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import graphdl

DT = torch.float64
TOL = dict(rtol=1e-6, atol=1e-6)


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _signs(n: int, g: torch.Generator) -> torch.Tensor:
    return (torch.randint(0, 2, (n,), generator=g) * 2 - 1).to(DT)


def _case_inputs(case: str) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(differentiable inputs, other inputs) for each case."""
    g = _g(7)
    if case in ("cross_entropy", "focal_mc"):
        x = torch.randn(9, 5, dtype=DT, generator=g)
        return [x], [torch.randint(0, 5, (9,), generator=g)]
    if case == "cross_entropy_ignore":
        y = torch.randint(0, 5, (9,), generator=g)
        y[[1, 4]] = -100
        return [torch.randn(9, 5, dtype=DT, generator=g)], [y]
    if case == "cross_entropy_probs":
        return [torch.randn(9, 5, dtype=DT, generator=g)], [torch.softmax(torch.randn(9, 5, dtype=DT, generator=g), 1)]
    if case == "cross_entropy_nd":  # (N, C, d) targets (N, d)
        return [torch.randn(4, 3, 6, dtype=DT, generator=g)], [torch.randint(0, 3, (4, 6), generator=g)]
    if case in ("bce", "focal_bin"):
        return [torch.randn(9, 3, dtype=DT, generator=g)], [torch.randint(0, 2, (9, 3), generator=g).to(DT)]
    if case in ("mse", "l1", "huber"):
        return [torch.randn(9, 2, dtype=DT, generator=g) * 2, torch.randn(9, 2, dtype=DT, generator=g)], []
    if case in ("kl", "kl_logt", "js"):
        inp = F.log_softmax(torch.randn(6, 4, dtype=DT, generator=g), 1)
        tgt = torch.softmax(torch.randn(6, 4, dtype=DT, generator=g), 1)
        if case == "kl_logt":
            return [inp, tgt.log()], []
        tgt[0, 1] = 0.0  # a zero-probability entry: 0 log 0 = 0
        tgt[0] = tgt[0] / tgt[0].sum()
        return [inp, tgt], []
    if case == "kl_logits":
        return [torch.randn(6, 4, dtype=DT, generator=g), torch.softmax(torch.randn(6, 4, dtype=DT, generator=g), 1)], []
    if case == "margin_ranking":
        return [torch.randn(9, dtype=DT, generator=g), torch.randn(9, dtype=DT, generator=g)], [_signs(9, g)]
    if case == "hinge":
        return [torch.rand(9, dtype=DT, generator=g) * 2], [_signs(9, g)]
    if case == "cosine":
        return [torch.randn(9, 5, dtype=DT, generator=g), torch.randn(9, 5, dtype=DT, generator=g)], [_signs(9, g)]
    if case in ("triplet_margin", "triplet_margin_swap", "soft_triplet"):
        return [torch.randn(9, 5, dtype=DT, generator=g) for _ in range(3)], []
    raise KeyError(case)


def _pair(case: str, reduction: str):
    """(our loss, reference callable taking the same arguments)."""
    L = graphdl.losses
    w = torch.tensor([0.5, 1.0, 2.0, 1.5, 0.7], dtype=DT)
    if case == "cross_entropy":
        return (L.create("cross_entropy", weight=w, label_smoothing=0.1, reduction=reduction),
                nn.CrossEntropyLoss(weight=w, label_smoothing=0.1, reduction=reduction))
    if case == "cross_entropy_ignore":
        return (L.create("ce", reduction=reduction), nn.CrossEntropyLoss(reduction=reduction))
    if case == "cross_entropy_probs":
        return (L.create("ce", label_smoothing=0.2, reduction=reduction),
                nn.CrossEntropyLoss(label_smoothing=0.2, reduction=reduction))
    if case == "cross_entropy_nd":
        return (L.create("ce", reduction=reduction), nn.CrossEntropyLoss(reduction=reduction))
    if case == "bce":
        pw = torch.tensor([1.0, 3.0, 0.5], dtype=DT)
        return (L.create("bce", pos_weight=pw, reduction=reduction),
                nn.BCEWithLogitsLoss(pos_weight=pw, reduction=reduction))
    if case == "focal_mc":  # gamma = 0 is the cross-entropy
        return (L.create("focal", gamma=0.0, reduction=reduction), nn.CrossEntropyLoss(reduction=reduction))
    if case == "focal_bin":
        return (L.create("focal", gamma=0.0, reduction=reduction), nn.BCEWithLogitsLoss(reduction=reduction))
    if case == "mse":
        return L.create("mse", reduction=reduction), nn.MSELoss(reduction=reduction)
    if case == "l1":
        return L.create("l1", reduction=reduction), nn.L1Loss(reduction=reduction)
    if case == "huber":
        return L.create("huber", delta=0.7, reduction=reduction), nn.HuberLoss(delta=0.7, reduction=reduction)
    if case == "kl":
        return L.create("kl", reduction=reduction), nn.KLDivLoss(reduction=reduction)
    if case == "kl_logt":
        return (L.create("kl_div", log_target=True, reduction=reduction),
                nn.KLDivLoss(reduction=reduction, log_target=True))
    if case == "kl_logits":
        ref = nn.KLDivLoss(reduction=reduction)
        return (L.create("kl", from_logits=True, reduction=reduction),
                lambda x, t: ref(F.log_softmax(x, -1), t))
    if case == "margin_ranking":
        return (L.create("margin_ranking", margin=0.3, reduction=reduction),
                nn.MarginRankingLoss(margin=0.3, reduction=reduction))
    if case == "hinge":
        return (L.create("hinge_embedding", margin=0.8, reduction=reduction),
                nn.HingeEmbeddingLoss(margin=0.8, reduction=reduction))
    if case == "cosine":
        return (L.create("cosine_embedding", margin=0.2, reduction=reduction),
                nn.CosineEmbeddingLoss(margin=0.2, reduction=reduction))
    if case == "triplet_margin":
        return (L.create("triplet_margin", margin=0.5, p=1.5, reduction=reduction),
                nn.TripletMarginLoss(margin=0.5, p=1.5, reduction=reduction))
    if case == "triplet_margin_swap":
        return (L.create("triplet_margin", swap=True, reduction=reduction),
                nn.TripletMarginLoss(swap=True, reduction=reduction))
    if case == "soft_triplet":  # log(1 + exp(d_ap - d_an)) is SoftMarginLoss(d_an - d_ap, +1)
        ref = nn.SoftMarginLoss(reduction=reduction)

        def soft(a, p, n):
            x = F.pairwise_distance(a, n) - F.pairwise_distance(a, p)
            return ref(x, torch.ones_like(x))
        return L.create("soft_margin_triplet", reduction=reduction), soft
    raise KeyError(case)


CASES = ["cross_entropy", "cross_entropy_ignore", "cross_entropy_probs", "cross_entropy_nd", "bce",
         "focal_mc", "focal_bin", "mse", "l1", "huber", "kl", "kl_logt", "kl_logits", "margin_ranking",
         "hinge", "cosine", "triplet_margin", "triplet_margin_swap", "soft_triplet"]


def _reductions(case: str) -> list[str]:
    return ["mean", "sum", "none", "batchmean"] if case.startswith("kl") else ["mean", "sum", "none"]


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize("case,reduction", [(c, r) for c in CASES for r in _reductions(c)])
def test_matches_torch_value_and_gradient(case: str, reduction: str) -> None:
    ours, ref = _pair(case, reduction)
    diff, other = _case_inputs(case)
    a = [x.clone().requires_grad_() for x in diff]
    b = [x.clone().requires_grad_() for x in diff]
    out_a, out_b = ours(*a, *other), ref(*b, *other)
    torch.testing.assert_close(out_a, out_b, **TOL)
    gout = torch.randn(out_a.shape, dtype=DT, generator=_g(3))
    ga = torch.autograd.grad(out_a, a, gout)
    gb = torch.autograd.grad(out_b, b, gout)
    for x, y in zip(ga, gb):
        # d/dp of p log p is -inf at p = 0: torch's KL gradient w.r.t. a zero target is NaN, so is ours
        torch.testing.assert_close(x, y, equal_nan=case.startswith("kl"), **TOL)


def test_focal_matches_its_formula() -> None:
    (x,), (y,) = _case_inputs("focal_mc")
    loss = graphdl.losses.create("focal", gamma=2.0, alpha=torch.tensor([0.1, 0.2, 0.3, 0.2, 0.2]))
    p = torch.softmax(x, 1).gather(1, y[:, None]).squeeze(1)
    expected = (-torch.tensor([0.1, 0.2, 0.3, 0.2, 0.2], dtype=DT)[y] * (1 - p) ** 2 * p.log()).mean()
    torch.testing.assert_close(loss(x, y), expected, **TOL)
    (x,), (t,) = _case_inputs("focal_bin")
    loss = graphdl.losses.create("focal", gamma=2.0, alpha=0.25, reduction="sum")
    p = torch.sigmoid(x)
    pt = torch.where(t == 1, p, 1 - p)
    at = torch.where(t == 1, torch.tensor(0.25, dtype=DT), torch.tensor(0.75, dtype=DT))
    torch.testing.assert_close(loss(x, t), (-at * (1 - pt) ** 2 * pt.log()).sum(), **TOL)


def test_js_divergence_matches_scipy_and_is_symmetric() -> None:
    from scipy.spatial.distance import jensenshannon

    (inp, tgt), _ = _case_inputs("js")
    ours = graphdl.losses.create("js", reduction="none")(inp, tgt).sum(1)
    expected = torch.tensor([jensenshannon(p, q) ** 2 for p, q in zip(inp.exp().numpy(), tgt.numpy())],
                            dtype=DT)
    torch.testing.assert_close(ours, expected, **TOL)
    swapped = graphdl.losses.create("js", reduction="none")(tgt.clamp_min(1e-300).log(), inp.exp()).sum(1)
    torch.testing.assert_close(swapped, ours, **TOL)
    assert float(ours.max()) <= torch.log(torch.tensor(2.0)).item()
    x = inp.clone().requires_grad_()
    graphdl.losses.create("js")(x, tgt).backward()
    assert torch.isfinite(x.grad).all()


def test_kl_default_reduction_is_batchmean() -> None:
    (inp, tgt), _ = _case_inputs("kl")
    torch.testing.assert_close(graphdl.losses.create("kl")(inp, tgt),
                               nn.KLDivLoss(reduction="batchmean")(inp, tgt), **TOL)


def test_kl_log_target_minus_inf_is_a_zero_term() -> None:
    (inp, tgt), _ = _case_inputs("kl")  # tgt[0, 1] == 0
    x = inp.clone().requires_grad_()
    ours = graphdl.losses.create("kl", log_target=True)(x, tgt.log())
    torch.testing.assert_close(ours, graphdl.losses.create("kl")(inp, tgt), **TOL)
    ours.backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", ["kl_div", "js_div"])
def test_divergence_refuses_inputs_outside_the_range_of_probabilities(name: str) -> None:
    # torch returns a negative or NaN "divergence" for these without a word
    (inp, tgt), _ = _case_inputs("kl")
    loss = graphdl.losses.create(name)
    with pytest.raises(graphdl.errors.ValidationError,
                       match=r"input must hold log-probabilities \(every entry <= 0\), got entries from .*; "
                             r"pass input.log_softmax\(dim=-1\), or logits with from_logits=True"):
        loss(inp.exp(), tgt)  # probabilities given as the input
    with pytest.raises(graphdl.errors.ValidationError,
                       match=r"target must hold probabilities \(every entry in \[0, 1\]\).*"
                             r"or log-probabilities with log_target=True"):
        loss(inp, inp)  # log-probabilities given as the target
    with pytest.raises(graphdl.errors.ValidationError,
                       match=r"target must hold log-probabilities .*pass target.log\(\), or probabilities"):
        graphdl.losses.create(name, log_target=True)(inp, tgt.clamp_min(1e-3))
    # rounding just past the range is accepted, as are logits with from_logits=True
    assert torch.isfinite(loss(inp.clamp(max=0) + 1e-6, tgt))
    assert torch.isfinite(graphdl.losses.create(name, from_logits=True)(inp.exp() * 5, tgt))
