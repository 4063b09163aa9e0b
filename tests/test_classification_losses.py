"""Classification losses against torch.nn on settings the conformance tests do not try: class weights given as
a list beside float64 input, narrow integer class ids, scalar-tensor alpha, weights that do not broadcast."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import graphdl
from graphdl.errors import ValidationError

L = graphdl.losses
DT = torch.float64


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_list_weight_with_float64_input_ignore_index_and_smoothing_matches_torch(reduction):
    """A list weight became a float32 buffer, and torch refused it beside float64 input ('expected scalar type
    Double but found Float')."""
    w = [0.5, 2.0, 1.0, 3.0]
    x = torch.randn(3, 4, 5, dtype=DT, generator=_gen()).requires_grad_()  # K-dimensional: (N, C, d)
    y = torch.randint(0, 4, (3, 5), generator=_gen(1))
    y[0, :2] = -1
    y[2, 4] = -1
    ours = L.create("cross_entropy", weight=w, ignore_index=-1, label_smoothing=0.2, reduction=reduction)(x, y)
    (g,) = torch.autograd.grad(ours.sum(), x)
    xt = x.detach().clone().requires_grad_()
    ref = nn.CrossEntropyLoss(weight=torch.tensor(w, dtype=DT), ignore_index=-1, label_smoothing=0.2,
                              reduction=reduction)(xt, y)
    (gt,) = torch.autograd.grad(ref.sum(), xt)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(g, gt)


def test_cross_entropy_list_weight_with_probability_targets_in_float64_matches_torch():
    w = [0.5, 2.0, 1.0]
    x = torch.randn(6, 3, dtype=DT, generator=_gen()).requires_grad_()
    p = torch.softmax(torch.randn(6, 3, dtype=DT, generator=_gen(1)), 1)
    ours = L.create("cross_entropy", weight=w, label_smoothing=0.1)(x, p)
    ref = nn.CrossEntropyLoss(weight=torch.tensor(w, dtype=DT), label_smoothing=0.1)(x, p)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(torch.autograd.grad(ours, x)[0], torch.autograd.grad(ref, x)[0])


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32])
def test_focal_per_class_alpha_reads_narrow_integer_class_ids_as_ids(dtype):
    """alpha[target] with a uint8 target was a boolean mask: with N == C and target [0, 0, 2] it picked one
    alpha and broadcast it over the batch (silently wrong); int8/int16 ids raised an IndexError inside torch."""
    alpha = torch.tensor([0.1, 0.2, 0.7], dtype=DT)
    x = torch.randn(3, 3, dtype=DT, generator=_gen()).requires_grad_()
    y = torch.tensor([0, 0, 2])
    ours = L.create("focal", gamma=2.0, alpha=alpha, reduction="none")(x, y.to(dtype))
    p_t = torch.softmax(x, 1)[torch.arange(3), y]
    ref = -alpha[y] * (1 - p_t) ** 2 * p_t.log()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(torch.autograd.grad(ours.sum(), x)[0], torch.autograd.grad(ref.sum(), x)[0])
    # gamma = 0: the alpha-weighted cross-entropy (sum: torch's weighted mean divides by the summed weights)
    ce = L.create("focal", gamma=0.0, alpha=alpha, reduction="sum")(x, y.to(dtype))
    torch.testing.assert_close(ce, nn.CrossEntropyLoss(weight=alpha, reduction="sum")(x, y))


def test_uint8_class_ids_are_compared_to_ignore_index_as_int64():
    """In uint8, -100 wraps to 156: class id 156 passed the range check as 'ignored' and torch then failed
    with 'Target 156 is out of bounds'; 255 as ignore_index (segmentation masks) keeps working."""
    x = torch.randn(3, 3, dtype=DT, generator=_gen())
    with pytest.raises(ValidationError, match=r"^CrossEntropyLoss: class-index target holds classes in \[0, 156\] "
                                              r"but the input scores 3 classes \(valid: 0\.\.2, or "
                                              r"ignore_index=-100\)"):
        L.create("cross_entropy")(x, torch.tensor([0, 156, 1], dtype=torch.uint8))
    y = torch.tensor([0, 255, 2])
    torch.testing.assert_close(L.create("cross_entropy", ignore_index=255)(x, y.to(torch.uint8)),
                               nn.CrossEntropyLoss(ignore_index=255)(x, y))


@pytest.mark.parametrize("alpha", [torch.tensor(0.25), torch.tensor(0.25, dtype=DT), np.float32(0.25)],
                         ids=["tensor32", "tensor64", "numpy32"])
def test_focal_scalar_alpha_given_as_tensor_or_numpy_is_a_number(alpha):
    """A 0-dim tensor or numpy alpha was taken for a one-class weight tensor: refused for class ids ('alpha
    holds 1 class weights') and never range-checked."""
    x = torch.randn(5, 4, dtype=DT, generator=_gen())
    y = torch.tensor([0, 1, 2, 3, 0])
    torch.testing.assert_close(L.create("focal", alpha=alpha)(x, y), L.create("focal", alpha=0.25)(x, y))
    with pytest.raises(ValidationError, match=r"^FocalLoss: alpha must be >= 0 and <= 1, got 1\.5"):
        L.create("focal", alpha=torch.tensor(1.5))


def test_bce_weights_that_do_not_broadcast_to_the_input_are_named():
    """torch failed deep inside ('The size of tensor a (3) must match ...'), or beside a 1-D input scored the
    (N, N) outer product without a word."""
    x = torch.randn(4, 3, dtype=DT, generator=_gen())
    t = torch.rand(4, 3, dtype=DT, generator=_gen(1))
    with pytest.raises(ValidationError, match=r"^BCEWithLogitsLoss: weight of shape \(4,\) does not broadcast to "
                                              r"the input of shape \(4, 3\).*shape \(3,\), or for one per sample "
                                              r"of an \(N, C\) input shape \(N, 1\)\.$"):
        L.create("bce_with_logits", weight=torch.ones(4))(x, t)
    with pytest.raises(ValidationError, match=r"^BCEWithLogitsLoss: pos_weight of shape \(4,\) does not"):
        L.create("bce_with_logits", pos_weight=torch.ones(4))(x, t)
    with pytest.raises(ValidationError, match=r"^BCEWithLogitsLoss: pos_weight of shape \(4, 1\) does not"):
        L.create("bce_with_logits", pos_weight=torch.ones(4, 1), reduction="none")(x[:, 0], t[:, 0])
    # what broadcasts is torch's: per class (C,), per sample (N, 1), per class of an (N, C, d) input (C, 1)
    xk = torch.randn(4, 3, 2, dtype=DT, generator=_gen(2))
    tk = torch.rand(4, 3, 2, dtype=DT, generator=_gen(3))
    for (a, b), kw in (((x, t), {"weight": torch.rand(3, dtype=DT), "pos_weight": torch.rand(3, dtype=DT) + 1}),
                       ((x, t), {"weight": torch.rand(4, 1, dtype=DT)}),
                       ((xk, tk), {"weight": torch.rand(3, 1, dtype=DT), "pos_weight": torch.rand(3, 1, dtype=DT)})):
        torch.testing.assert_close(L.create("bce_with_logits", reduction="none", **kw)(a, b),
                                   nn.BCEWithLogitsLoss(reduction="none", **kw)(a, b))


def test_settings_that_torch_would_misread_are_named() -> None:
    """ignore_index=1.5 was cut to 1 by int(); alpha=-1 (torchvision's 'no weighting') was refused without the
    alpha=None hint; a per-class alpha of shape (1, C) or with negative weights went through."""
    with pytest.raises(ValidationError, match=r"ignore_index must be an int \(a class id the loss skips\), got "
                                              r"float 1\.5"):
        graphdl.losses.create("cross_entropy", ignore_index=1.5)
    with pytest.raises(ValidationError, match=r"alpha=-1 is torchvision's 'no class weighting'; here pass "
                                              r"alpha=None"):
        graphdl.losses.create("focal", alpha=-1)
    for alpha in (torch.ones(1, 3), torch.tensor([0.5, -0.1, 0.6])):
        with pytest.raises(ValidationError, match=r"a per-class alpha must be a 1-D tensor of finite weights >= 0"):
            graphdl.losses.create("focal", alpha=alpha)
    assert graphdl.losses.create("cross_entropy", ignore_index=np.int64(3)).ignore_index == 3


@pytest.mark.parametrize("weight, detail", [(["a"], "too many dimensions 'str'"),
                                            ([[1.0], [2.0, 3.0]], "expected sequence of length 1")])
def test_a_class_weight_that_is_not_numbers_is_named(weight, detail):
    """torch.as_tensor's own TypeError/ValueError came out of the loss's constructor."""
    with pytest.raises(ValidationError, match=rf"^CrossEntropyLoss: weight must be numbers \(a tensor or a list of "
                                              rf"floats\), got list .*\({detail}"):
        graphdl.losses.create("cross_entropy", weight=weight)
