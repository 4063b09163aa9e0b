r"""Divergences between distributions: Kullback-Leibler and Jensen-Shannon.

Both take the *input* as log-probabilities (or logits with ``from_logits=True``)
and the *target* as probabilities (or log-probabilities with
``log_target=True``), exactly like :class:`torch.nn.KLDivLoss`, but refuse
values outside those ranges, for which torch returns a negative or NaN
divergence without a word. Reductions:
``"none"`` (pointwise, the input's shape), ``"sum"``, ``"mean"`` (over every
element, torch's meaning) and ``"batchmean"`` (sum divided by the batch size,
the mathematically correct KL per sample).
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import Tensor

from graphdl.errors import ValidationError
from graphdl.losses import LOSSES
from graphdl.losses.base import Loss, check_bool, check_same_shape, check_tensor

__all__ = ["KLDivLoss", "JSDivLoss"]

_DIV_REDUCTIONS = ("mean", "sum", "none", "batchmean")
_TOL = 1e-4  # rounding allowed beyond the range of (log-)probabilities


class _Divergence(Loss):
    kind = "divergence"
    reductions = _DIV_REDUCTIONS

    def __init__(self, reduction: str = "batchmean", log_target: bool = False,
                 from_logits: bool = False, dim: int = -1) -> None:
        super().__init__(reduction)
        self.log_target = check_bool(self._owner, "log_target", log_target)
        self.from_logits = check_bool(self._owner, "from_logits", from_logits)
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):  # int(dim) failed with a bare error
            raise ValidationError(f"{self._owner}: dim must be an int, the class dimension (e.g. dim=-1), got "
                                  f"{type(dim).__name__} {dim!r}.")
        self.dim = int(dim)

    def _inputs(self, input: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        check_tensor(self._owner, "input", input, allow_inf=True)
        check_tensor(self._owner, "target", target, allow_inf=self.log_target, origin="data",
                     device_of=("input", input))
        check_same_shape(self._owner, "input", input, "target", target)
        if self.from_logits or self.reduction == "batchmean":
            # dim picks the softmax axis and the batch axis of "batchmean" (dim % ndim): out of range it
            # failed deep in log_softmax, or silently divided "batchmean" by the wrong size
            nd = max(input.dim(), 1)
            if not -nd <= self.dim < nd:
                raise ValidationError(
                    f"{self._owner}: dim={self.dim} is not a dimension of the input of shape "
                    f"{tuple(input.shape)}; pass the class dimension, in [{-nd}, {nd - 1}] (e.g. dim=-1)."
                )
        if self.from_logits:
            input = F.log_softmax(input, dim=self.dim)
            # a +inf logit, or a distribution whose logits are all -inf, has no softmax: log_softmax gives
            # NaN, which kl_div returned as NaN and js_div's p > 0 tests turned into a negative "divergence"
            if bool(torch.isnan(input.detach()).any()):
                raise ValidationError(
                    f"{self._owner}: input holds logits with no softmax along dim={self.dim}: "
                    f"{int(torch.isnan(input.detach()).sum())} entries of log_softmax(input) are NaN (a +inf "
                    f"logit, or a distribution whose logits are all -inf); give each distribution finite "
                    f"logits, e.g. input.clamp(min=-1e4, max=1e4)."
                )
        else:
            self._check_range("input", input, log=True,
                              fix=f"pass input.log_softmax(dim={self.dim}), or logits with from_logits=True")
        if self.log_target:
            self._check_range("target", target, log=True,
                              fix="pass target.log(), or probabilities with log_target=False")
        else:
            self._check_range("target", target, log=False,
                              fix=f"pass target.softmax(dim={self.dim}), or log-probabilities with log_target=True")
        return input, target

    def _check_range(self, name: str, x: Tensor, *, log: bool, fix: str) -> None:
        """Log-probabilities are <= 0 and probabilities lie in [0, 1] (up to rounding, ``_TOL``);
        anything else gives a negative or NaN divergence, so it is refused."""
        if x.numel() == 0:
            return
        lo, hi = (float(v) for v in torch.aminmax(x.detach()))
        if (hi > _TOL) if log else (lo < -_TOL or hi > 1 + _TOL):
            what = "log-probabilities (every entry <= 0)" if log else "probabilities (every entry in [0, 1])"
            raise ValidationError(f"{self._owner}: {name} must hold {what}, got entries from {lo:.4g} to "
                                  f"{hi:.4g}; {fix}.")

    def _reduce(self, losses: Tensor) -> Tensor:
        if self.reduction == "batchmean":  # torch's: the first dim is the batch, unless it holds the classes
            if losses.dim() == 0:
                return losses.sum()
            batch = 1 if self.dim % losses.dim() == 0 and losses.dim() > 1 else 0
            return losses.sum() / losses.size(batch)
        return super()._reduce(losses)

    def example_inputs(self, dtype: torch.dtype = torch.float64,
                       generator: torch.Generator | None = None) -> tuple[tuple, dict]:
        x = torch.randn(5, 4, dtype=dtype, generator=generator)
        inp = x if self.from_logits else F.log_softmax(x, -1)
        t = torch.softmax(torch.randn(5, 4, dtype=dtype, generator=generator), -1)
        if self.log_target:
            t = t.log()
        return (inp.detach().requires_grad_(), t.requires_grad_()), {}


@LOSSES.register("kl_div", aliases=("kl", "kldiv"), kind="divergence")
class KLDivLoss(_Divergence):
    r"""Kullback-Leibler divergence, :class:`torch.nn.KLDivLoss` semantics.

    With input :math:`x = \log q` and target :math:`p` (or :math:`\log p`):

    .. math::
        \ell = p \,(\log p - x), \qquad 0 \log 0 = 0

    (also where :math:`q = 0`, :math:`x = -\infty`, and for ``log_target=True`` with
    :math:`\log p = -\infty`, where torch gives NaN).

    Args:
        reduction: ``"batchmean"`` (default; :math:`\mathrm{KL}(p\,\|\,q)` per
            sample: the sum over the batch dimension's size, the first one, or
            the second when ``dim`` is 0), ``"mean"`` (over all elements, as torch), ``"sum"``, ``"none"``.
        log_target: the target holds log-probabilities.
        from_logits: apply ``log_softmax(dim)`` to the input first.
        dim: the class dimension for ``from_logits``.
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        input, target = self._inputs(input, target)
        if self.log_target:  # log p = -inf means p = 0 and a zero term (torch would give NaN)
            zero = torch.isneginf(target)
            if bool(zero.any()):
                target = target.masked_fill(zero, 0.0)
                pointwise = F.kl_div(input, target, reduction="none", log_target=True)
                return self._reduce(pointwise.masked_fill(zero, 0.0))
        pointwise = F.kl_div(input, target, reduction="none", log_target=self.log_target)
        if not self.log_target and bool(torch.isneginf(input).any()):  # p = 0 beside q = 0: 0 * inf is NaN
            pointwise = pointwise.masked_fill(target == 0, 0.0)
        return self._reduce(pointwise)


def _xlogx(x: Tensor, log_x: Tensor | None = None) -> Tensor:
    """:math:`x \\log x` with :math:`0 \\log 0 = 0` and a NaN-free gradient."""
    pos = x > 0
    if log_x is None:
        log_x = torch.log(torch.where(pos, x, torch.ones_like(x)))
    else:
        log_x = torch.where(pos, log_x, torch.zeros_like(log_x))
    return torch.where(pos, x * log_x, torch.zeros_like(x))


@LOSSES.register("js_div", aliases=("js", "jsd", "jensen_shannon"), kind="divergence")
class JSDivLoss(_Divergence):
    r"""Jensen-Shannon divergence (natural log), pointwise.

    With :math:`q = e^{x}` the input distribution, :math:`p` the target and
    :math:`m = \tfrac{1}{2}(p + q)`:

    .. math::
        \ell = \tfrac{1}{2}\, p \log\frac{p}{m} + \tfrac{1}{2}\, q \log\frac{q}{m}
        = \tfrac{1}{2}(p\log p + q \log q) - m \log m

    Summed over the class dimension it lies in :math:`[0, \log 2]` and is symmetric.

    Args:
        reduction: ``"batchmean"`` (default), ``"mean"``, ``"sum"``, ``"none"``.
        log_target: the target holds log-probabilities.
        from_logits: apply ``log_softmax(dim)`` to the input first.
        dim: the class dimension for ``from_logits``.
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        log_q, t = self._inputs(input, target)
        q = log_q.exp()
        if self.log_target:
            p, log_p = t.exp(), t
        else:
            p, log_p = t, None
        m = 0.5 * (p + q)
        pointwise = 0.5 * (_xlogx(p, log_p) + _xlogx(q, log_q)) - _xlogx(m)
        return self._reduce(pointwise)

