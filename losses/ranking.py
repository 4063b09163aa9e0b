r"""Ranking losses on explicit inputs, with :mod:`torch.nn` semantics.

``margin_ranking``, ``hinge_embedding``, ``cosine_embedding`` and
``triplet_margin`` compute exactly what their :mod:`torch.nn` namesakes compute
(they call the same functional kernels, after checking the inputs);
``soft_margin_triplet`` is the soft-plus triplet loss of Hermans et al. (2017).
``"none"`` returns one value per sample.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from graphdl.errors import ValidationError
from graphdl.losses import LOSSES
from graphdl.losses.base import Loss, check_bool, check_device, check_number, check_same_shape, check_tensor

__all__ = [
    "MarginRankingLoss",
    "HingeEmbeddingLoss",
    "CosineEmbeddingLoss",
    "TripletMarginLoss",
    "SoftMarginTripletLoss",
]


def _check_pm1(owner: str, name: str, target: Tensor, ref_name: str, ref: Tensor) -> Tensor:
    if not isinstance(target, Tensor):
        raise ValidationError(f"{owner}: {name} must be a torch.Tensor of 1 and -1, got "
                              f"{type(target).__name__}.")
    check_device(owner, name, target, ref_name, ref)
    if target.numel() and not bool(((target == 1) | (target == -1)).all()):
        bad = target[(target != 1) & (target != -1)][0].item()
        raise ValidationError(
            f"{owner}: {name} must hold only 1 (similar / ranked higher) and -1, found {bad!r}. "
            f"Map 0/1 labels with {name} * 2 - 1."
        )
    return target


def _signs(n: int, dtype: torch.dtype, generator: torch.Generator | None) -> Tensor:
    return (torch.randint(0, 2, (n,), generator=generator) * 2 - 1).to(dtype)


class _Ranking(Loss):
    kind = "ranking"


@LOSSES.register("margin_ranking", kind="ranking")
class MarginRankingLoss(_Ranking):
    r"""Margin ranking loss, :class:`torch.nn.MarginRankingLoss` semantics.

    .. math::
        \ell(x_1, x_2, y) = \max\big(0, -y\,(x_1 - x_2) + \mathrm{margin}\big),
        \qquad y \in \{1, -1\}

    The ``link`` task calls it with the scores of positive pairs as :math:`x_1`,
    those of sampled non-edges as :math:`x_2` and :math:`y = 1`: a pairwise
    surrogate of the ROC-AUC it reports.

    Args:
        margin: the required gap.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    link_inputs = "ranked"

    def __init__(self, margin: float = 0.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.margin = check_number(self._owner, "margin", margin)

    def forward(self, input1: Tensor, input2: Tensor, target: Tensor) -> Tensor:
        check_tensor(self._owner, "input1", input1)
        check_tensor(self._owner, "input2", input2)
        check_same_shape(self._owner, "input1", input1, "input2", input2)
        _check_pm1(self._owner, "target", target, "input1", input1)
        # torch accepts a target of input1's rank that broadcasts to it, and fails deep in its kernel on
        # any other (a scalar, a (n, 1) column for (n,) scores, another length)
        try:
            torch.broadcast_shapes(target.shape, input1.shape)
            fits = target.dim() == input1.dim()
        except RuntimeError:
            fits = False
        if not fits:
            raise ValidationError(
                f"{self._owner}: target must have the shape of input1, {tuple(input1.shape)} (one 1 or -1 "
                f"per pair), got shape {tuple(target.shape)}. Pass e.g. torch.ones_like(input1) to rank "
                f"every input1 above its input2."
            )
        return F.margin_ranking_loss(input1, input2, target.to(input1.dtype), margin=self.margin,
                                     reduction=self.reduction)

    def example_inputs(self, dtype=torch.float64, generator=None):
        x1 = torch.randn(8, dtype=dtype, generator=generator).requires_grad_()
        x2 = torch.randn(8, dtype=dtype, generator=generator).requires_grad_()
        return (x1, x2, _signs(8, dtype, generator)), {}


@LOSSES.register("hinge_embedding", kind="ranking")
class HingeEmbeddingLoss(_Ranking):
    r"""Hinge embedding loss, :class:`torch.nn.HingeEmbeddingLoss` semantics.

    .. math::
        \ell(x, y) = \begin{cases} x & y = 1 \\ \max(0, \mathrm{margin} - x) & y = -1 \end{cases}

    Args:
        margin: the margin for :math:`y = -1`.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    def __init__(self, margin: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.margin = check_number(self._owner, "margin", margin)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        check_tensor(self._owner, "input", input)
        _check_pm1(self._owner, "target", target, "input", input)
        check_same_shape(self._owner, "input", input, "target", target)
        return F.hinge_embedding_loss(input, target.to(input.dtype), margin=self.margin,
                                      reduction=self.reduction)

    def example_inputs(self, dtype=torch.float64, generator=None):
        x = torch.rand(8, dtype=dtype, generator=generator).mul(2).requires_grad_()
        return (x, _signs(8, dtype, generator)), {}


@LOSSES.register("cosine_embedding", kind="ranking")
class CosineEmbeddingLoss(_Ranking):
    r"""Cosine embedding loss, :class:`torch.nn.CosineEmbeddingLoss` semantics.

    .. math::
        \ell(\mathbf{x}_1, \mathbf{x}_2, y) = \begin{cases} 1 - \cos(\mathbf{x}_1, \mathbf{x}_2) & y = 1 \\
        \max(0, \cos(\mathbf{x}_1, \mathbf{x}_2) - \mathrm{margin}) & y = -1 \end{cases}

    Args:
        margin: in :math:`[-1, 1]`.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    def __init__(self, margin: float = 0.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.margin = check_number(self._owner, "margin", margin, low=-1.0, high=1.0,
                                   hint="It is compared with a cosine; 0 to 0.5 is typical.")

    def forward(self, input1: Tensor, input2: Tensor, target: Tensor) -> Tensor:
        check_tensor(self._owner, "input1", input1, ndim=(1, 2))
        check_tensor(self._owner, "input2", input2, ndim=(1, 2))
        check_same_shape(self._owner, "input1", input1, "input2", input2)
        _check_pm1(self._owner, "target", target, "input1", input1)
        rows = input1.size(0) if input1.dim() == 2 else None
        if (rows is None and target.dim() != 0) or (rows is not None and target.shape != (rows,)):
            raise ValidationError(
                f"{self._owner}: target must have one entry per row of input1 "
                f"({'a scalar' if rows is None else (rows,)}), got shape {tuple(target.shape)}."
            )
        return F.cosine_embedding_loss(input1, input2, target.to(input1.dtype), margin=self.margin,
                                       reduction=self.reduction)

    def example_inputs(self, dtype=torch.float64, generator=None):
        x1 = torch.randn(8, 5, dtype=dtype, generator=generator).requires_grad_()
        x2 = torch.randn(8, 5, dtype=dtype, generator=generator).requires_grad_()
        return (x1, x2, _signs(8, dtype, generator)), {}


class _TripletBase(_Ranking):
    def _check(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> None:
        for name, t in (("anchor", anchor), ("positive", positive), ("negative", negative)):
            check_tensor(self._owner, name, t, ndim=(1, 2))
        check_same_shape(self._owner, "anchor", anchor, "positive", positive)
        check_same_shape(self._owner, "anchor", anchor, "negative", negative)

    def example_inputs(self, dtype=torch.float64, generator=None):
        return tuple(torch.randn(8, 5, dtype=dtype, generator=generator).requires_grad_()
                     for _ in range(3)), {}


@LOSSES.register("triplet_margin", kind="ranking")
class TripletMarginLoss(_TripletBase):
    r"""Triplet margin loss on explicit triplets, :class:`torch.nn.TripletMarginLoss` semantics.

    .. math::
        \ell(a, p, n) = \max\big(d(a, p) - d(a, n) + \mathrm{margin}, 0\big),\qquad
        d(x, y) = \lVert x - y + \epsilon \rVert_p

    With ``swap=True``, :math:`d(a, n) \leftarrow \min(d(a, n), d(p, n))`.
    For triplets mined from labels see the ``triplet`` metric loss.

    Args:
        margin: :math:`> 0`.
        p: the norm degree.
        eps: added inside the norm for stability.
        swap: the distance swap of Balntas et al. (2016).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    def __init__(self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6, swap: bool = False,
                 reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.margin = check_number(self._owner, "margin", margin, low=0.0, low_open=True)
        self.p = check_number(self._owner, "p", p, low=0.0, low_open=True)
        self.eps = check_number(self._owner, "eps", eps, low=0.0)
        self.swap = check_bool(self._owner, "swap", swap)

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        self._check(anchor, positive, negative)
        return F.triplet_margin_loss(anchor, positive, negative, margin=self.margin, p=self.p,
                                     eps=self.eps, swap=self.swap, reduction=self.reduction)


@LOSSES.register("soft_margin_triplet", aliases=("soft_triplet",), kind="ranking")
class SoftMarginTripletLoss(_TripletBase):
    r"""Soft-margin triplet loss (Hermans et al., 2017) on explicit triplets.

    .. math::
        \ell(a, p, n) = \log\big(1 + e^{\,d(a, p) - d(a, n)}\big),\qquad
        d(x, y) = \lVert x - y + \epsilon \rVert_p

    (with ``swap=True``, :math:`d(a, n) \leftarrow \min(d(a, n), d(p, n))`).

    Args:
        p: the norm degree.
        eps: added inside the norm for stability.
        swap: the distance swap.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    def __init__(self, p: float = 2.0, eps: float = 1e-6, swap: bool = False,
                 reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.p = check_number(self._owner, "p", p, low=0.0, low_open=True)
        self.eps = check_number(self._owner, "eps", eps, low=0.0)
        self.swap = check_bool(self._owner, "swap", swap)

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        self._check(anchor, positive, negative)
        d_ap = F.pairwise_distance(anchor, positive, p=self.p, eps=self.eps)
        d_an = F.pairwise_distance(anchor, negative, p=self.p, eps=self.eps)
        if self.swap:
            d_an = torch.minimum(d_an, F.pairwise_distance(positive, negative, p=self.p, eps=self.eps))
        return self._reduce(F.softplus(d_ap - d_an))
