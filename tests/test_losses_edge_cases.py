"""Degenerate batches give 0 with a gradient (or, for losses that score one kind of pair alone, their
terms), gradients pass gradcheck, bad input is named."""

from __future__ import annotations

import re

import pytest
import torch

import graphdl
from graphdl.errors import ValidationError
from graphdl.losses.metric import MetricBatch, TripletLoss

L = graphdl.losses
DT = torch.float64

PAIR_LOSSES = [
    ("contrastive", {}), ("triplet", {}), ("triplet", {"mining": "hard"}), ("triplet", {"mining": "semihard"}),
    ("triplet", {"swap": True}), ("triplet", {"smooth_loss": True}), ("ntxent", {}), ("supcon", {}),
    ("multi_similarity", {}), ("lifted_structure", {}),
]
IDS = [n + "".join(f"-{k}={v}" for k, v in kw.items()) for n, kw in PAIR_LOSSES]
ONE_KIND_SCORED = ("contrastive", "multi_similarity")  # score positive or negative pairs alone, as pml


def _emb(n: int = 8, d: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, dtype=DT, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("labels", [torch.arange(8), torch.zeros(8, dtype=torch.long), torch.tensor([3])],
                         ids=["no-positive", "no-negative", "single"])
@pytest.mark.parametrize("name,kw", PAIR_LOSSES, ids=IDS)
def test_degenerate_batch_is_zero_and_backpropagates(name, kw, labels, reduction) -> None:
    x = _emb(labels.numel()).requires_grad_()
    out = L.create(name, reduction=reduction, **kw)(x, labels)
    assert out.shape == ((labels.numel(),) if reduction == "none" else ())
    out.sum().backward()
    assert x.grad is not None
    if name in ONE_KIND_SCORED and labels.numel() > 1:  # pml's values: test_losses_pml.py
        assert bool((out > 0).any()) and bool((x.grad != 0).any())
    else:
        assert torch.all(out == 0) and torch.all(x.grad == 0)


@pytest.mark.parametrize("arity", [2, 3, 4])
@pytest.mark.parametrize("name,kw", [c for c in PAIR_LOSSES if "mining" not in c[1]],
                         ids=[i for c, i in zip(PAIR_LOSSES, IDS) if "mining" not in c[1]])
def test_empty_index_tuple_is_zero(name, kw, arity) -> None:
    x = _emb().requires_grad_()
    empty = torch.empty(0, dtype=torch.long)
    out = L.create(name, **kw)(x, indices_tuple=(empty,) * arity)
    out.backward()
    if name in ONE_KIND_SCORED and arity == 2:  # no listed positive: every pair is a negative
        torch.testing.assert_close(out, L.create(name, **kw)(x, torch.arange(len(x))))
    else:
        assert out.item() == 0 and torch.all(x.grad == 0)


def test_no_valid_triplet_after_mining_is_zero() -> None:
    # two tight, far-apart classes: every triplet is easy, no semi-hard one exists
    x = torch.cat([torch.full((4, 3), 1.0), torch.full((4, 3), -1.0)]).to(DT)
    x = (x + 1e-3 * _emb(8, 3)).requires_grad_()
    labels = torch.tensor([0] * 4 + [1] * 4)
    out = L.create("triplet", mining="semihard", margin=0.1)(x, labels)
    out.backward()
    assert out.item() == 0 and not torch.isnan(x.grad).any()
    out = L.create("triplet", margin=0.1)(x, labels)
    assert out.item() == 0


@pytest.mark.parametrize("name,kw", PAIR_LOSSES + [("arcface", {"num_classes": 3, "embedding_size": 5})],
                         ids=IDS + ["arcface"])
def test_gradcheck_float64(name, kw) -> None:
    x = _emb(9).requires_grad_()
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2])
    loss = L.create(name, **kw).double()
    assert torch.autograd.gradcheck(lambda e: loss(e, labels), (x,))


@pytest.mark.parametrize("name", ["contrastive", "triplet", "ntxent", "supcon", "multi_similarity"])
def test_gradcheck_with_reference_and_tuples(name) -> None:
    x, ref = _emb(6).requires_grad_(), _emb(7, seed=1).requires_grad_()
    labels, ref_labels = torch.tensor([0, 1, 0, 1, 2, 2]), torch.tensor([0, 1, 2, 0, 1, 2, 2])
    loss = L.create(name, reduction="sum")
    assert torch.autograd.gradcheck(lambda e, r: loss(e, labels, ref_emb=r, ref_labels=ref_labels), (x, ref))
    tup = (torch.tensor([0, 0, 1, 3]), torch.tensor([2, 2, 3, 1]), torch.tensor([1, 4, 0, 5]))
    if name not in ("supcon", "multi_similarity"):  # those take each pair once: no repeated pair here
        assert torch.autograd.gradcheck(lambda e: loss(e, indices_tuple=tup), (x,))


@pytest.mark.parametrize("mining", ["all", "semihard"])
@pytest.mark.parametrize("seed", range(3))
def test_sorted_triplets_equal_explicit_enumeration(mining, seed) -> None:
    """The O(BR) prefix-sum path equals enumerating every triplet (also with multiplicities)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(30, 4, dtype=DT, generator=g)
    labels = torch.randint(0, 4, (30,), generator=g)
    loss = TripletLoss(margin=0.3, mining=mining, reduction="none")
    pos_pairs = torch.randint(0, 30, (2, 60), generator=g)
    neg_pairs = torch.randint(0, 30, (2, 200), generator=g)
    for kwargs in ({"labels": labels},
                   {"indices_tuple": (pos_pairs[0], pos_pairs[1], neg_pairs[0], neg_pairs[1])}):
        b = MetricBatch("TripletLoss", x, kwargs.get("labels"), kwargs.get("indices_tuple"), None, None)
        rows, cols = b.positives()
        neg = b.negatives()
        dd = loss.distance(x)
        for red in ("none", "sum", "mean"):
            loss.reduction = red
            torch.testing.assert_close(loss._sorted(b, dd, rows, cols, neg), loss._chunked(b, dd, rows, cols, neg))


def test_two_tuple_means_every_other_pair_is_negative() -> None:
    x = _emb(6)
    anchors, positives = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5])
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    # one positive per anchor and no other shared label: (a, p) is the same as labels for anchors 0-2
    ours = L.create("ntxent", reduction="none")(x, indices_tuple=(anchors, positives))
    full = L.create("ntxent", reduction="none")(x, labels)
    torch.testing.assert_close(ours[:3], full[:3])
    assert torch.all(ours[3:] == 0)


# ------------------------------------------------------------------- bad input
def _raises(match: str):
    return pytest.raises(ValidationError, match=match)


def test_mismatched_embeddings_and_labels() -> None:
    with _raises(r"labels has 7 entries but embeddings has 8 rows; pass exactly one label per row"):
        L.create("supcon")(_emb(), torch.arange(7))
    with _raises(r"ref_labels has 3 entries but ref_emb has 4 rows"):
        L.create("ntxent")(_emb(), torch.arange(8), ref_emb=_emb(4), ref_labels=torch.arange(3))


def test_labels_of_the_wrong_dtype() -> None:
    with _raises(r"labels must hold integer class ids \(torch.long\), got dtype torch.float64\. "
                 r"Convert it with labels.long\(\)"):
        L.create("contrastive")(_emb(), torch.arange(8, dtype=DT))
    with _raises(r"labels must be a 1-D tensor"):
        L.create("contrastive")(_emb(), torch.zeros(8, 1, dtype=torch.long))


def test_nan_inputs() -> None:
    x = _emb()
    x[2, 1] = float("nan")
    with _raises(r"embeddings contains 1 NaN or inf value\(s\).*Check the model output"):
        L.create("triplet")(x, torch.arange(8) % 2)
    with _raises(r"input contains 1 NaN"):
        L.create("cross_entropy")(torch.tensor([[0.0, float("nan")]]), torch.tensor([0]))
    with _raises(r"input contains 1 NaN"):
        L.create("kl")(torch.tensor([[float("nan"), 0.0]]), torch.tensor([[0.5, 0.5]]))


def test_index_tuple_of_the_wrong_arity_or_range() -> None:
    x, i = _emb(), torch.tensor([0, 1])
    with _raises(r"indices_tuple must hold 2 \(anchor, positive\), 3 \(anchor, positive, negative\) "
                 r"or 4 \(a1, positive, a2, negative\) index tensors, got 5 tensors"):
        L.create("contrastive")(x, indices_tuple=(i,) * 5)
    with _raises(r"indices_tuple\[2\] \(negative\) holds index 8, outside \[0, 8\)"):
        L.create("triplet")(x, indices_tuple=(i, i, torch.tensor([3, 8])))
    with _raises(r"indices_tuple\[0\] \(anchor\) holds index -1"):
        L.create("ntxent")(x, indices_tuple=(torch.tensor([-1, 0]), i))
    with _raises(r"indices_tuple\[0\] \(anchor\) has 2 entries but indices_tuple\[1\] \(positive\) has 3; "
                 r"they must pair up one-to-one"):
        L.create("ntxent")(x, indices_tuple=(i, torch.tensor([0, 1, 2])))
    with _raises(r"indices_tuple\[1\] \(positive\) must be a 1-D integer tensor"):
        L.create("ntxent")(x, indices_tuple=(i, i.double()))
    with _raises(r"the pair \(0, 1\) is listed both as positive and as negative"):
        L.create("supcon")(x, indices_tuple=(i, i.flip(0), i, i.flip(0)))


@pytest.mark.parametrize("name,kw,match", [
    ("ntxent", {"temperature": 0.0}, r"temperature must be > 0, got 0.0\. It divides the similarities"),
    ("supcon", {"temperature": -1}, r"temperature must be > 0, got -1"),
    ("grace", {"temperature": 0}, r"temperature must be > 0"),
    ("triplet", {"margin": -0.1}, r"margin must be >= 0, got -0.1"),
    ("triplet", {"mining": "easy"}, r"mining must be one of 'all', 'hard', 'semihard', got 'easy'"),
    ("triplet_margin", {"margin": 0}, r"margin must be > 0, got 0"),
    ("contrastive", {"pos_margin": 0.0, "neg_margin": 1.0, "distance": "cosine"},
     r"with a similarity .* pos_margin must be greater than neg_margin.*pos_margin=1, neg_margin=0"),
    ("contrastive", {"pos_margin": 1.0, "neg_margin": 0.5}, r"pos_margin must be smaller than neg_margin"),
    ("contrastive", {"neg_margin": float("nan")}, r"neg_margin must be a finite real number"),
    ("multi_similarity", {"beta": 0}, r"beta must be > 0"),
    ("arcface", {"num_classes": 3, "embedding_size": 4, "margin": 180}, r"margin must be >= 0 and < 180"),
    ("cross_entropy", {"label_smoothing": 1.5}, r"label_smoothing must be >= 0 and <= 1, got 1.5"),
    ("focal", {"gamma": -1}, r"gamma must be >= 0"),
    ("huber", {"delta": 0}, r"delta must be > 0"),
    ("ntxent", {"distance": "manhattan"}, r"unknown distance 'manhattan'"),
    ("ntxent", {"reduction": "avg"}, r"reduction must be one of 'mean', 'sum', 'none', got 'avg'"),
    ("vgae", {"reduction": "none"}, r"reduction must be one of 'mean', 'sum', got 'none'"),
])
def test_hyper_parameters_outside_their_domain(name, kw, match) -> None:
    with _raises(match):
        L.create(name, **kw)


def test_other_bad_inputs() -> None:
    x = _emb()
    with _raises(r"pass labels \(one integer class id per row of embeddings\) or an indices_tuple"):
        L.create("supcon")(x)
    with _raises(r"ref_emb was given without ref_labels"):
        L.create("supcon")(x, torch.arange(8), ref_emb=_emb(3))
    with _raises(r"ref_emb has 2 features per row but embeddings has 5"):
        L.create("supcon")(x, torch.arange(8), ref_emb=_emb(3, 2), ref_labels=torch.arange(3))
    with _raises(r"embeddings must be a 2-D tensor, got shape \(8,\)"):
        L.create("supcon")(x[:, 0], torch.arange(8))
    with _raises(r"mining='hard' selects triplets itself"):
        i = torch.tensor([0])
        L.create("triplet", mining="hard")(x, indices_tuple=(i, i + 1, i + 2))
    arc = L.create("arcface", num_classes=3, embedding_size=5)
    with _raises(r"labels must lie in \[0, 3\)"):
        arc(x, torch.arange(8))
    with _raises(r"embeddings have 5 features but embedding_size=4"):
        L.create("arcface", num_classes=3, embedding_size=4)(x, torch.zeros(8, dtype=torch.long))
    with _raises(r"target must hold only 1 .* and -1, found 0"):
        L.create("margin_ranking")(x[:, 0], x[:, 1], torch.zeros(8))
    with _raises(r"input and target must have the same shape, got \(8, 5\) and \(8, 4\)"):
        L.create("mse")(x, x[:, :4])
    with _raises(r"pos_edge_index must be an integer tensor of shape \(2, num_edges\)"):
        L.create("link_bce")(x, torch.zeros(3, 4, dtype=torch.long))
    with _raises(r"pos_edge_index holds node index 9, outside \[0, 8\)"):
        L.create("link_bce")(x, torch.tensor([[0, 9], [1, 2]]))


def test_class_index_targets_out_of_range_are_named():
    logits = torch.randn(4, 3)
    ce = graphdl.losses.create("cross_entropy")
    with pytest.raises(ValidationError) as info:
        ce(logits, torch.tensor([0, 1, 2, 5]))
    assert str(info.value) == ("CrossEntropyLoss: class-index target holds classes in [0, 5] but the input scores 3 "
                               "classes (valid: 0..2, or ignore_index=-100); give the model 6 outputs or remap the "
                               "labels.")
    # ignore_index entries are not classes: same value as torch.nn with them present
    target = torch.tensor([0, -100, 2, 1])
    assert torch.allclose(ce(logits, target), torch.nn.CrossEntropyLoss()(logits, target))
    with pytest.raises(ValidationError, match=r"^FocalLoss: class-index target holds classes in \[-1, 2\]"):
        graphdl.losses.create("focal")(logits, torch.tensor([0, -1, 2, 1]))


def test_binary_and_class_index_target_mix_ups_are_named():
    logits, labels = torch.randn(4, 3), torch.tensor([0, 2, 1, 1])
    ce, focal = graphdl.losses.create("cross_entropy"), graphdl.losses.create("focal")
    with pytest.raises(ValidationError) as info:  # torch: a shape error about probability targets
        ce(logits, labels.float())
    assert str(info.value) == ("CrossEntropyLoss: target is a float tensor of shape (4,), the shape of class indices "
                               "for input of shape (4, 3); pass class indices as target.long(), or class "
                               "probabilities shaped like the input.")
    with pytest.raises(ValidationError, match=r"^FocalLoss: target is a float tensor of shape \(4,\).*or float 0/1 "
                                              r"targets shaped like the input\.$"):
        focal(logits, labels.float())
    with pytest.raises(ValidationError, match=r"^CrossEntropyLoss: target is a bool tensor; pass class indices as "
                                              r"target.long\(\)\.$"):  # torch: a RuntimeError on the dtype
        ce(logits[:, :2], labels.bool())
    # one logit per sample: torch reads a 1-D input as a single unbatched sample and returns a number
    with pytest.raises(ValidationError) as info:
        ce(logits[:, 0], labels.clamp(max=1).float())
    assert str(info.value) == ("CrossEntropyLoss: input of shape (4,) has no class dimension; give scores of shape "
                               "(N, C) (input[None] for a single sample), or for one logit per sample use "
                               "'bce_with_logits'.")
    with pytest.raises(ValidationError, match=r"^FocalLoss: input of shape \(4,\) has no class dimension.*pass "
                                              r"float 0/1 targets shaped like the input\.$"):
        focal(logits[:, 0], labels)
    # the forms torch defines stay as torch computes them
    torch.testing.assert_close(ce(logits, logits.softmax(-1)), torch.nn.CrossEntropyLoss()(logits, logits.softmax(-1)))
    binary = labels.clamp(max=1).bool()
    torch.testing.assert_close(graphdl.losses.create("focal", gamma=0.0)(logits[:, 0], binary),
                               torch.nn.BCEWithLogitsLoss()(logits[:, 0], binary.float()))


def test_cross_entropy_refuses_multi_label_rows_and_keeps_one_hot_and_soft_targets():
    logits = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    ce, reference = graphdl.losses.create("cross_entropy"), torch.nn.CrossEntropyLoss()
    multi_hot = torch.tensor([[1.0, 0, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1], [0, 1, 0, 0], [1, 0, 0, 1]])
    # torch reads each row as a "distribution" summing to its number of labels and returns a number
    with pytest.raises(ValidationError, match=re.escape(
            "CrossEntropyLoss: the target rows of shape (5, 4) hold 0/1 labels that are not one-hot (multi-label "
            "targets), but cross-entropy scores one class per row; use 'bce_with_logits'")):
        ce(logits, multi_hot)
    one_hot = torch.nn.functional.one_hot(torch.tensor([0, 3, 1, 1, 2]), 4).float()
    torch.testing.assert_close(ce(logits, one_hot), reference(logits, one_hot))
    soft = torch.full((5, 4), 0.25)  # not 0/1: probabilities, as torch defines them
    torch.testing.assert_close(ce(logits, soft), reference(logits, soft))


def test_cross_entropy_over_a_single_class_is_refused():
    # a (N, 1) input with 0/1 targets trained at a constant loss of 0 (the graph task passed them as probabilities)
    with pytest.raises(ValidationError, match=r"^CrossEntropyLoss: input of shape \(4, 1\) scores a single class, "
                                              r"over which the cross-entropy is always 0; .*'bce_with_logits'"):
        graphdl.losses.create("cross_entropy")(torch.randn(4, 1), torch.tensor([[0.0], [1.0], [1.0], [0.0]]))


@pytest.mark.parametrize("name", ["kl_div", "js_div"])
def test_batchmean_with_the_classes_on_dim_0_divides_by_the_samples(name):
    """dim=0 (classes first): the sum was divided by the number of classes, not of samples."""
    torch.manual_seed(0)
    x, p = torch.randn(4, 6, dtype=DT), torch.softmax(torch.randn(4, 6, dtype=DT), 0)
    classes_first = L.create(name, from_logits=True, dim=0)(x, p)
    torch.testing.assert_close(classes_first, L.create(name, from_logits=True)(x.t(), p.t()))
    if name == "kl_div":  # torch's batchmean with the samples first
        expected = torch.nn.functional.kl_div(x.t().log_softmax(-1), p.t(), reduction="batchmean")
        torch.testing.assert_close(classes_first, expected)


def test_kl_div_of_a_class_both_distributions_give_no_mass_is_zero():
    """0 log 0 = 0 as the docstring says: an input of -inf where the target is 0 gave NaN (torch's 0 * inf)."""
    logits = torch.tensor([[0.0, 1.0, float("-inf")]], dtype=DT, requires_grad=True)
    p = torch.tensor([[0.3, 0.7, 0.0]], dtype=DT)
    loss = L.create("kl_div", from_logits=True)(logits, p)
    torch.testing.assert_close(loss, L.create("kl_div", from_logits=True)(logits[:, :2], p[:, :2]))
    loss.backward()
    assert torch.isfinite(logits.grad[:, :2]).all()


def test_focal_with_gamma_below_one_keeps_finite_gradients_on_a_confident_sample():
    """(1 - p_t)^gamma has an infinite derivative at p_t = 1: the gradient was NaN, for both target kinds."""
    for x, y in ((torch.tensor([[20.0, 0.0], [0.5, 0.2]]), torch.tensor([0, 1])),
                 (torch.tensor([20.0, -0.3]), torch.tensor([1.0, 0.0]))):
        x.requires_grad_()
        loss = L.create("focal", gamma=0.5)(x, y)
        loss.backward()
        assert torch.isfinite(x.grad).all() and torch.isfinite(loss)
        x64 = x.detach().double().requires_grad_()  # the value is the formula's, away from saturation too
        p_t = torch.softmax(x64, 1)[torch.arange(2), y] if y.dtype == torch.long else torch.where(
            y.bool(), torch.sigmoid(x64), 1 - torch.sigmoid(x64))
        torch.testing.assert_close(L.create("focal", gamma=0.5)(x64, y.to(x64.dtype) if y.is_floating_point() else y),
                                   (-(1 - p_t) ** 0.5 * p_t.log()).mean())


def test_class_weights_of_the_wrong_length_are_named():
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 0])
    with pytest.raises(ValidationError, match=r"^FocalLoss: alpha holds 2 class weights, but the input scores 4 "
                                              r"classes; give one weight per class\.$"):  # an IndexError before
        L.create("focal", alpha=[0.25, 0.75])(x, y)
    with pytest.raises(ValidationError, match=r"^CrossEntropyLoss: weight holds 3 class weights, but the input "
                                              r"scores 4 classes; give one weight per class\.$"):
        L.create("cross_entropy", weight=[1.0, 2.0, 3.0])(x, y)


def test_int32_class_ids_work_in_every_loss_that_takes_class_ids():
    """cross_entropy and arcface failed inside torch ('expected target dtype to be Long'), as focal and triplet
    took them."""
    torch.manual_seed(0)
    x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 0])
    for name, kwargs in (("cross_entropy", {}), ("focal", {}), ("triplet", {}),
                         ("arcface", {"num_classes": 4, "embedding_size": 4})):
        torch.manual_seed(1)
        loss = L.create(name, **kwargs)
        torch.testing.assert_close(loss(x, y.int()), loss(x, y))


def test_negative_class_ids_are_not_told_to_add_outputs():
    with pytest.raises(ValidationError, match=re.escape(
            "FocalLoss: class-index target holds classes in [-100, -100] but the input scores 4 classes (valid: "
            "0..3); remap the labels to 0..3 (padding such as -100 is left out by cross_entropy's ignore_index).")):
        L.create("focal")(torch.randn(3, 4), torch.tensor([-100, -100, -100]))
