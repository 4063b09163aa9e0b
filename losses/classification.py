r"""Classification and regression losses on ``(input, target)``, as :mod:`torch.nn`.

``cross_entropy``, ``bce_with_logits``, ``mse``, ``l1`` and ``huber`` compute
exactly what their :mod:`torch.nn` namesakes compute (same functional kernels,
after checking the inputs); ``focal`` is the focal loss of Lin et al. (2017)
for binary (sigmoid) and multi-class (softmax) targets.
"""

from __future__ import annotations

import numbers
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from graphdl.errors import ValidationError
from graphdl.losses import LOSSES
from graphdl.losses.base import (Loss, check_device, check_number, check_same_shape, check_tensor, first_fractional,
                                 fractional_labels_advice)

__all__ = ["CrossEntropyLoss", "BCEWithLogitsLoss", "FocalLoss", "MSELoss", "L1Loss", "HuberLoss"]


def _optional_tensor(owner: str, name: str, value: Any) -> Tensor | None:
    if value is None:
        return None
    if not isinstance(value, Tensor):
        try:
            value = torch.as_tensor(value, dtype=torch.get_default_dtype())
        except (TypeError, ValueError, RuntimeError) as exc:  # ["a"], a ragged list, an object
            raise ValidationError(f"{owner}: {name} must be numbers (a tensor or a list of floats), got "
                                  f"{type(value).__name__} {value!r:.80} ({exc})") from None
    return check_tensor(owner, name, value.detach(), origin="argument")


def _refuse_mistaken_targets(owner: str, input: Tensor, target: Tensor, *, binary: bool) -> None:
    """Refuse the usual mix-ups of binary and class-index targets, which torch either rejects deep inside
    or (a 1-D input read as one unbatched sample) scores without a word; ``binary``: the loss also takes
    float 0/1 targets shaped like the input."""
    check_device(owner, "target", target, "input", input)
    one_logit = "pass float 0/1 targets shaped like the input" if binary else "use 'bce_with_logits'"
    if input.dim() < 2 and (not binary or not (target.is_floating_point() or target.dtype == torch.bool)):
        raise ValidationError(
            f"{owner}: input of shape {tuple(input.shape)} has no class dimension; give scores of shape (N, C) "
            f"(input[None] for a single sample), or for one logit per sample {one_logit}.")
    if target.dtype == torch.bool and not binary:
        raise ValidationError(f"{owner}: target is a bool tensor; pass class indices as target.long().")
    if (target.is_floating_point() and target.shape != input.shape
            and target.shape == input.shape[:1] + input.shape[2:]):
        fractional = first_fractional(target)
        if fractional is not None:
            raise ValidationError(
                f"{owner}: target is a float tensor of shape {tuple(target.shape)}, the shape of class indices for "
                f"input of shape {tuple(input.shape)}, but it holds "
                + fractional_labels_advice(fractional, "target.long()", "integer class indices"))
        raise ValidationError(
            f"{owner}: target is a float tensor of shape {tuple(target.shape)}, the shape of class indices for "
            f"input of shape {tuple(input.shape)}; pass class indices as target.long(), or "
            + ("float 0/1 targets" if binary else "class probabilities") + " shaped like the input.")


def _check_broadcasts(owner: str, name: str, w: Tensor | None, input: Tensor) -> None:
    """Refuse a ``weight`` / ``pos_weight`` that does not broadcast to the input's shape (aligned on the last
    dimension, as torch): torch fails deep inside, or, beside a 1-D input, scores an outer product."""
    if w is None:
        return
    try:
        fits = torch.broadcast_shapes(w.shape, input.shape) == input.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValidationError(
            f"{owner}: {name} of shape {tuple(w.shape)} does not broadcast to the input of shape "
            f"{tuple(input.shape)} (shapes align on the last dimension); give one {name} per class, shape "
            f"({input.size(-1) if input.dim() else 1},), or for one per sample of an (N, C) input shape (N, 1).")


def check_binary_targets(owner: str, target: Tensor) -> None:
    """Refuse binary targets outside [0, 1] (0/1 labels or probabilities): with class ids 2, 3, ... beside one
    logit torch's binary cross-entropy returns a number, even a negative one, without a word."""
    if target.numel() and not bool(((target >= 0) & (target <= 1)).all()):
        outside = target[(target < 0) | (target > 1)]
        raise ValidationError(f"{owner}: binary targets must lie in [0, 1] (0/1 labels or probabilities), but "
                              f"{outside.numel()} lie outside, e.g. {outside[0].item():g}; for class labels give the "
                              f"model one output per class and use 'cross_entropy'")


def refuse_multi_label(owner: str, target: Tensor) -> None:
    """Refuse float targets of 0/1 rows that are not one-hot for a cross-entropy over classes on dim 1: they are
    multi-label targets, which it would read as "distributions" summing to each row's number of labels."""
    if (target.numel() and target.dim() > 1 and bool(((target == 0) | (target == 1)).all())
            and not bool((target.sum(dim=1) == 1).all())):
        raise ValidationError(f"{owner}: the target rows of shape {tuple(target.shape)} hold 0/1 labels that are not "
                              f"one-hot (multi-label targets), but cross-entropy scores one class per row; use "
                              f"'bce_with_logits', one independent 0/1 label per output (as OGB's multi-label "
                              f"ogbn-proteins and ogbg-mol* tasks)")


def _class_targets(owner: str, input: Tensor, target: Tensor, ignore_index: int | None = None) -> None:
    if target.is_floating_point() or target.dtype == torch.bool:
        return
    want = input.shape[:1] + input.shape[2:]
    if target.shape != want:
        raise ValidationError(
            f"{owner}: class-index target must have shape {tuple(want)} "
            f"for input of shape {tuple(input.shape)} (classes on dim 1), got {tuple(target.shape)}."
            + (f" Reshape it with target.view({', '.join(map(str, want))})."
               if target.numel() == want.numel() and input.size(0) > 0 else "")
        )
    target = target.long()  # compare as int64: in uint8, ignore_index=-100 would equal class id 156
    kept = target if ignore_index is None else target[target != ignore_index]
    classes = input.size(1) if input.dim() > 1 else 1
    if kept.numel() and (int(kept.min()) < 0 or int(kept.max()) >= classes):
        raise ValidationError(
            f"{owner}: class-index target holds classes in [{int(kept.min())}, {int(kept.max())}] but the input "
            f"scores {classes} classes (valid: 0..{classes - 1}"
            + ("" if ignore_index is None else f", or ignore_index={ignore_index}") + "); "
            + (f"give the model {int(kept.max()) + 1} outputs or remap the labels." if int(kept.min()) >= 0 else
               f"remap the labels to 0..{classes - 1} (padding such as -100 is left out by cross_entropy's "
               f"ignore_index).")
        )


def _modulating(one_minus_p: Tensor, gamma: float) -> Tensor:
    r"""The focal term :math:`(1 - p_t)^\gamma`, held at the smallest positive float where :math:`p_t = 1`: for
    :math:`\gamma < 1` its derivative there is infinite, a NaN gradient once one sample is confidently right."""
    return one_minus_p.clamp_min(torch.finfo(one_minus_p.dtype).tiny) ** gamma


class _Classification(Loss):
    kind = "classification"

    def example_inputs(self, dtype=torch.float64, generator=None):
        x = torch.randn(8, 5, dtype=dtype, generator=generator).requires_grad_()
        return (x, torch.randint(0, 5, (8,), generator=generator)), {}


@LOSSES.register("cross_entropy", aliases=("ce", "xent"), kind="classification")
class CrossEntropyLoss(_Classification):
    r"""Cross-entropy with label smoothing, :class:`torch.nn.CrossEntropyLoss` semantics.

    For logits :math:`\mathbf{x}` and class :math:`y` over :math:`C` classes,
    with smoothing :math:`\varepsilon` and class weights :math:`w`:

    .. math::
        \ell = -\sum_c w_c\, q_c \log \frac{e^{x_c}}{\sum_k e^{x_k}},\qquad
        q_c = (1 - \varepsilon)\,[c = y] + \varepsilon / C

    ``"mean"`` divides by the summed weight of the non-ignored targets, as torch.
    Targets may also be class probabilities (a float tensor shaped like the input); multi-label 0/1
    rows, which are none, are refused (use ``bce_with_logits``).
    The input is batched, :math:`(N, C)` or :math:`(N, C, d_1, \dots)`: torch's unbatched 1-D
    form is refused, since here it nearly always means one logit per sample (use ``bce_with_logits``).

    Args:
        weight: per-class weights :math:`w` (``C``).
        ignore_index: a target value that does not count.
        label_smoothing: :math:`\varepsilon \in [0, 1]`.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    def __init__(self, weight: Tensor | None = None, ignore_index: int = -100,
                 label_smoothing: float = 0.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _optional_tensor(self._owner, "weight", weight))
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):  # int(1.5) is 1
            raise ValidationError(f"{self._owner}: ignore_index must be an int (a class id the loss skips), got "
                                  f"{type(ignore_index).__name__} {ignore_index!r}.")
        self.ignore_index = int(ignore_index)
        self.label_smoothing = check_number(self._owner, "label_smoothing", label_smoothing,
                                            low=0.0, high=1.0)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        check_tensor(self._owner, "input", input)
        if not isinstance(target, Tensor):
            raise ValidationError(f"{self._owner}: target must be a torch.Tensor, got {type(target).__name__}.")
        _refuse_mistaken_targets(self._owner, input, target, binary=False)
        if input.size(1) == 1:
            raise ValidationError(
                f"{self._owner}: input of shape {tuple(input.shape)} scores a single class, over which the "
                f"cross-entropy is always 0; give the model one output per class, or use 'bce_with_logits' for "
                f"one logit per sample.")
        if target.is_floating_point():
            check_tensor(self._owner, "target", target, origin="data")
            check_same_shape(self._owner, "input", input, "target", target)
            refuse_multi_label(self._owner, target)
        else:
            _class_targets(self._owner, input, target, self.ignore_index)
            target = target.long()  # torch's cross_entropy takes int64 class ids only
        if self.weight is not None and self.weight.numel() != input.size(1):
            raise ValidationError(f"{self._owner}: weight holds {self.weight.numel()} class weights, but the input "
                                  f"scores {input.size(1)} classes; give one weight per class.")
        # the weights in the input's dtype: torch refuses float32 weights (a list becomes one) beside float64 input
        weight = None if self.weight is None else self.weight.to(input.dtype)
        return F.cross_entropy(input, target, weight=weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


@LOSSES.register("bce_with_logits", aliases=("bce",), kind="classification")
class BCEWithLogitsLoss(_Classification):
    r"""Binary cross-entropy on logits, :class:`torch.nn.BCEWithLogitsLoss` semantics.

    .. math::
        \ell = -w \big[ p\, y \log \sigma(x) + (1 - y) \log (1 - \sigma(x)) \big]

    with :math:`p` the ``pos_weight`` of each class (last dimension).

    Args:
        weight: rescaling weight broadcast to the input.
        pos_weight: weight of the positive examples, per class.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    def __init__(self, weight: Tensor | None = None, pos_weight: Tensor | None = None,
                 reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _optional_tensor(self._owner, "weight", weight))
        self.register_buffer("pos_weight", _optional_tensor(self._owner, "pos_weight", pos_weight))

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        check_tensor(self._owner, "input", input)
        if not isinstance(target, Tensor):
            raise ValidationError(f"{self._owner}: target must be a torch.Tensor, got {type(target).__name__}.")
        check_same_shape(self._owner, "input", input, "target", target)
        target = target.to(input.dtype) if not target.is_floating_point() else target
        check_tensor(self._owner, "target", target, origin="data")
        check_binary_targets(self._owner, target)
        _check_broadcasts(self._owner, "weight", self.weight, input)
        _check_broadcasts(self._owner, "pos_weight", self.pos_weight, input)
        return F.binary_cross_entropy_with_logits(input, target, weight=self.weight,
                                                  pos_weight=self.pos_weight, reduction=self.reduction)

    def example_inputs(self, dtype=torch.float64, generator=None):
        x = torch.randn(8, 3, dtype=dtype, generator=generator).requires_grad_()
        return (x, torch.randint(0, 2, (8, 3), generator=generator).to(dtype)), {}


@LOSSES.register("focal", aliases=("focal_loss",), kind="classification")
class FocalLoss(_Classification):
    r"""Focal loss (Lin et al., 2017), binary or multi-class.

    With :math:`p_t` the predicted probability of the true class
    (:math:`\sigma(x)` or :math:`1 - \sigma(x)` for binary float targets,
    :math:`\mathrm{softmax}(\mathbf{x})_y` for class-index targets):

    .. math::
        \ell = -\alpha_t\, (1 - p_t)^{\gamma} \log p_t

    For binary targets :math:`\alpha_t = \alpha\, y + (1 - \alpha)(1 - y)`
    (as ``torchvision.ops.sigmoid_focal_loss``); for class indices
    :math:`\alpha_t = \alpha` (a float) or :math:`\alpha_{y}` (a per-class
    tensor). ``alpha=None`` means :math:`\alpha_t = 1`; with ``gamma=0`` and
    ``alpha=None`` the loss is the (binary) cross-entropy.

    Args:
        gamma: focusing parameter :math:`\gamma \ge 0`.
        alpha: balance weight (see above): a number (a 0-dim tensor is one), a per-class tensor, or ``None``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    def __init__(self, gamma: float = 2.0, alpha: float | Tensor | None = None,
                 reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.gamma = check_number(self._owner, "gamma", gamma, low=0.0,
                                  hint="gamma=0 gives the cross-entropy; 2 is the usual choice.")
        # a number: also a numpy scalar or a 0-dim tensor (``torch.tensor(0.25)``), not a one-class weight
        if (isinstance(alpha, numbers.Real) and not isinstance(alpha, bool)) or (
                isinstance(alpha, Tensor) and alpha.dim() == 0):
            if float(alpha) == -1:  # torchvision's sigmoid_focal_loss spells "no weighting" alpha=-1
                raise ValidationError(f"{self._owner}: alpha=-1 is torchvision's 'no class weighting'; here pass "
                                      f"alpha=None for that, or a weight in [0, 1].")
            alpha = check_number(self._owner, "alpha", alpha, low=0.0, high=1.0)
            self.alpha = alpha
        elif alpha is None:
            self.alpha = None
        else:
            self.register_buffer("alpha", _optional_tensor(self._owner, "alpha", alpha))
            if self.alpha.dim() != 1 or bool((self.alpha < 0).any()) or not bool(torch.isfinite(self.alpha).all()):
                raise ValidationError(f"{self._owner}: a per-class alpha must be a 1-D tensor of finite weights >= 0, "
                                      f"one per class, got shape {tuple(self.alpha.shape)} with values "
                                      f"{self.alpha.flatten()[:5].tolist()}.")

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        check_tensor(self._owner, "input", input)
        if not isinstance(target, Tensor):
            raise ValidationError(f"{self._owner}: target must be a torch.Tensor, got {type(target).__name__}.")
        _refuse_mistaken_targets(self._owner, input, target, binary=True)
        if target.is_floating_point() or target.dtype == torch.bool:
            check_same_shape(self._owner, "input", input, "target", target)
            t = target.to(input.dtype)
            check_tensor(self._owner, "target", t, origin="data")
            check_binary_targets(self._owner, t)
            ce = F.binary_cross_entropy_with_logits(input, t, reduction="none")
            p = torch.sigmoid(input)
            p_t = p * t + (1 - p) * (1 - t)
            loss = ce * _modulating(1 - p_t, self.gamma) if self.gamma else ce
            if self.alpha is not None:
                alpha = self.alpha if not isinstance(self.alpha, Tensor) else self.alpha.to(input.dtype)
                loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
            return self._reduce(loss)
        _class_targets(self._owner, input, target)
        target = target.long()  # int64 ids: a uint8 target would index alpha as a mask, int8/int16 not at all
        if isinstance(self.alpha, Tensor) and self.alpha.numel() != input.size(1):
            raise ValidationError(f"{self._owner}: alpha holds {self.alpha.numel()} class weights, but the input "
                                  f"scores {input.size(1)} classes; give one weight per class.")
        logp_t = F.log_softmax(input, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
        loss = -logp_t
        if self.gamma:
            loss = loss * _modulating(1 - logp_t.exp(), self.gamma)
        if self.alpha is not None:
            alpha = self.alpha.to(input.dtype)[target] if isinstance(self.alpha, Tensor) else self.alpha
            loss = alpha * loss
        return self._reduce(loss)


class _Regression(Loss):
    kind = "regression"

    def _check(self, input: Tensor, target: Tensor) -> None:
        check_tensor(self._owner, "input", input)
        check_tensor(self._owner, "target", target, origin="data", device_of=("input", input))
        check_same_shape(self._owner, "input", input, "target", target)

    def example_inputs(self, dtype=torch.float64, generator=None):
        x = torch.randn(8, 2, dtype=dtype, generator=generator).mul(2).requires_grad_()
        return (x, torch.randn(8, 2, dtype=dtype, generator=generator)), {}


@LOSSES.register("mse", aliases=("l2", "mean_squared_error"), kind="regression")
class MSELoss(_Regression):
    r"""Squared error, :class:`torch.nn.MSELoss` semantics: :math:`\ell = (x - y)^2`.

    Args:
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        self._check(input, target)
        return F.mse_loss(input, target, reduction=self.reduction)


@LOSSES.register("l1", aliases=("mae", "mean_absolute_error"), kind="regression")
class L1Loss(_Regression):
    r"""Absolute error, :class:`torch.nn.L1Loss` semantics: :math:`\ell = |x - y|`.

    Args:
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        self._check(input, target)
        return F.l1_loss(input, target, reduction=self.reduction)


@LOSSES.register("huber", kind="regression")
class HuberLoss(_Regression):
    r"""Huber loss, :class:`torch.nn.HuberLoss` semantics.

    .. math::
        \ell = \begin{cases} \tfrac{1}{2}(x - y)^2 & |x - y| < \delta \\
        \delta\,(|x - y| - \tfrac{1}{2}\delta) & \text{otherwise} \end{cases}

    Args:
        delta: :math:`\delta > 0`.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    def __init__(self, delta: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.delta = check_number(self._owner, "delta", delta, low=0.0, low_open=True)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        self._check(input, target)
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)
