"""The :class:`Loss` base class, reductions and the input checks every loss shares.

A graphdl loss is a ``torch.nn.Module`` with a plain ``reduction`` argument:

* ``"mean"`` -- the loss's documented average (for the torch.nn counterparts
  exactly torch's; for the metric-learning losses the average that
  pytorch-metric-learning's default reducer takes, e.g. the mean over the
  *non-zero* pair or triplet losses);
* ``"sum"`` -- the sum of every loss term;
* ``"none"`` -- the unreduced terms (their sum always equals ``"sum"``). Its
  shape is given in each loss's docstring: elementwise losses keep the input's
  shape, metric losses return one value per embedding (the summed loss of the
  pairs or triplets that embedding anchors).

Errors a user can trigger with bad input are :class:`~graphdl.errors.ValidationError`
and name the argument, what was expected, what was received and the fix.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from graphdl.errors import ValidationError
from graphdl.validate import is_bool

__all__ = [
    "Loss",
    "REDUCTIONS",
    "KINDS",
    "check_reduction",
    "check_number",
    "check_bool",
    "check_device",
    "check_tensor",
    "check_labels",
    "first_fractional",
    "fractional_labels_advice",
    "check_same_shape",
    "masked_logsumexp",
    "zero_loss",
]

REDUCTIONS = ("mean", "sum", "none")
KINDS = ("classification", "regression", "metric", "ranking", "divergence", "graph")


# --------------------------------------------------------------------------- checks
def check_reduction(reduction: Any, allowed: Sequence[str], owner: str) -> str:
    if not isinstance(reduction, str) or reduction not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ValidationError(
            f"{owner}: reduction must be one of {choices}, got {reduction!r}. Pass "
            f"reduction='mean' for the average loss or 'sum' for the total"
            + (", or 'none' for the unreduced terms." if "none" in allowed else ".")
        )
    return reduction


def check_number(
    owner: str,
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    hint: str = "",
) -> float:
    """A finite real number within ``[low, high]`` (``(low`` / ``high)`` when open)."""
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValidationError(
            f"{owner}: {name} must be a finite real number, got {value!r}. {hint}".rstrip()
        )
    bad = (
        (low is not None and (value <= low if low_open else value < low))
        or (high is not None and (value >= high if high_open else value > high))
    )
    if bad:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        hi = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
        rule = " and ".join(r for r in (lo, hi) if r)
        raise ValidationError(f"{owner}: {name} must be {rule}, got {value!r}. {hint}".rstrip())
    return value


def check_bool(owner: str, name: str, value: Any) -> bool:
    """A switch that must be a bool (:func:`graphdl.validate.is_bool`), returned as ``bool``; a loss argument's
    ``ValidationError`` otherwise, as :func:`check_number`'s (layers and models raise ``ConfigError``)."""
    if is_bool(value):
        return bool(value)
    raise ValidationError(f"{owner}: {name} must be a bool (True or False), got {type(value).__name__} {value!r}.")


def check_device(owner: str, name: str, x: Tensor, ref_name: str | None = None,
                 ref: Tensor | None = None) -> None:
    """``x`` holds values (it is not on the ``meta`` device) and, given ``ref``, lies on ``ref``'s device."""
    if x.device.type == "meta":
        fix = (f"create it on {ref.device}, the device of {ref_name}" if ref is not None and ref.device.type != "meta"
               else "a model built on the meta device must be materialised first, e.g. with "
                    ".to_empty(device='cpu') and reset_parameters()")
        raise ValidationError(
            f"{owner}: {name} is on the meta device, which holds shapes but no values; pass a tensor with "
            f"data ({fix})."
        )
    if ref is not None and ref.device.type != "meta" and x.device != ref.device:
        raise ValidationError(
            f"{owner}: {name} is on {x.device} but {ref_name} is on {ref.device}; move it with "
            f"{name}.to({ref_name}.device)."
        )


_NONFINITE_HINTS = {
    "output": "Check the model output: a too-high learning rate or a division by zero upstream usually causes this.",
    "data": "Check the data: leave out the entries without a target, e.g. keep = {name}.isfinite() and pass "
            "input[keep], {name}[keep] (the Trainer leaves out NaN targets itself).",
    "argument": "Give finite values.",
}


def check_tensor(
    owner: str,
    name: str,
    x: Any,
    *,
    ndim: int | tuple[int, ...] | None = None,
    floating: bool = True,
    allow_inf: bool = False,
    origin: str = "output",
    device_of: tuple[str, Tensor] | None = None,
) -> Tensor:
    """A tensor of the expected rank without NaN (and without inf unless allowed).

    ``origin`` picks the advice for non-finite values: ``"output"`` (a model's), ``"data"`` (targets)
    or ``"argument"`` (a constructor's tensor, e.g. class weights). ``device_of=(name, tensor)``: ``x``
    must lie on that tensor's device.
    """
    if not isinstance(x, Tensor):
        raise ValidationError(
            f"{owner}: {name} must be a torch.Tensor, got {type(x).__name__}. "
            f"Convert it with torch.as_tensor({name})."
        )
    check_device(owner, name, x, *(device_of or ()))
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if x.dim() not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValidationError(
                f"{owner}: {name} must be a {want} tensor, got shape {tuple(x.shape)}."
                + (" Pass embeddings as (batch_size, embedding_size)." if name.endswith("emb")
                   or name == "embeddings" else "")
            )
    if floating:
        if not x.is_floating_point():
            raise ValidationError(
                f"{owner}: {name} must be a floating-point tensor, got {x.dtype}. "
                f"Convert it with {name}.float()."
            )
        # a finite sum proves every entry finite in one read-only pass; otherwise look closer
        if x.numel() and bool(torch.isfinite(x.detach().sum())):
            return x
        bad = torch.isnan(x) if allow_inf else ~torch.isfinite(x)
        if bool(bad.any()):
            what = "NaN" if allow_inf else "NaN or inf"
            raise ValidationError(
                f"{owner}: {name} contains {int(bad.sum())} {what} value(s) "
                f"(shape {tuple(x.shape)}). " + _NONFINITE_HINTS[origin].format(name=name)
            )
    return x


def first_fractional(values: Tensor) -> float | None:
    """The first entry of float ``values`` that is not a whole number (NaN counts), else ``None``: labels holding
    one are not class ids, and ``.long()`` would truncate 1.5 to class 1 without a word."""
    if not values.is_floating_point() or not values.numel():
        return None
    values = values.detach()
    fractional = values != values.round()  # NaN too
    return values[fractional][0].item() if bool(fractional.any()) else None


def fractional_labels_advice(value: float, cast: str, give: str) -> str:
    """The end of a refusal of labels holding ``value`` (:func:`first_fractional`), which ``cast`` would
    truncate: what to ``give`` instead."""
    return (f"values that are not whole numbers, e.g. {value:g}: not class ids ({cast} would truncate them). "
            f"Give {give}; for continuous targets use a regression loss such as 'mse'.")


def check_labels(owner: str, labels: Any, n: int, *, name: str = "labels",
                 rows_of: str = "embeddings", device_of: Tensor | None = None) -> Tensor:
    """A 1-D integer tensor with one label per row of ``rows_of``, holding values (not on the meta device;
    on another device it is the caller's to move, ``device_of`` names the device it belongs on)."""
    if not isinstance(labels, Tensor):
        raise ValidationError(
            f"{owner}: {name} must be a 1-D integer torch.Tensor, got {type(labels).__name__}. "
            f"Convert it with torch.as_tensor({name}, dtype=torch.long)."
        )
    if labels.device.type == "meta":
        check_device(owner, name, labels, rows_of, device_of)
    fractional = first_fractional(labels)
    if fractional is not None:
        raise ValidationError(
            f"{owner}: {name} must hold integer class ids, but it holds {labels.dtype} "
            + fractional_labels_advice(fractional, f"{name}.long()",
                                       "integer class ids (for a graph given to the Trainer, data.y)")
        )
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValidationError(
            f"{owner}: {name} must hold integer class ids (torch.long), got dtype {labels.dtype}. "
            f"Convert it with {name}.long() (for a graph given to the Trainer, its labels: "
            f"data.y = data.y.long())."
        )
    if labels.dim() != 1:
        raise ValidationError(
            f"{owner}: {name} must be a 1-D tensor of shape ({rows_of}.size(0),), got shape "
            f"{tuple(labels.shape)}. Flatten it with {name}.view(-1)."
        )
    if labels.numel() != n:
        raise ValidationError(
            f"{owner}: {name} has {labels.numel()} entries but {rows_of} has {n} rows; pass "
            f"exactly one label per row of {rows_of}."
        )
    return labels.long()  # int32 ids index and feed cross_entropy as int64


def check_same_shape(owner: str, a_name: str, a: Tensor, b_name: str, b: Tensor) -> None:
    """``a`` and ``b`` have one shape and lie on one device (``b`` is the one told to move)."""
    check_device(owner, a_name, a)
    check_device(owner, b_name, b, a_name, a)
    if a.shape != b.shape:
        raise ValidationError(
            f"{owner}: {a_name} and {b_name} must have the same shape, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}. Pass one {b_name} entry per {a_name} entry."
        )


# ------------------------------------------------------------------------ helpers
def masked_logsumexp(x: Tensor, mask: Tensor, dim: int = 1) -> Tensor:
    r""":math:`\log \sum_{j:\,\mathrm{mask}_{ij}} e^{x_{ij}}` along ``dim``.

    Rows whose mask is empty give ``-inf``; the gradient never holds NaN (an
    empty row sends zero gradient everywhere).
    """
    has = mask.any(dim, keepdim=True)
    x = x.masked_fill(~mask, float("-inf")).masked_fill(~has, 0.0)
    return torch.logsumexp(x, dim).masked_fill(~has.squeeze(dim), float("-inf"))


def zero_loss(reduction: str, *tensors: Tensor | None, rows: int | None = None) -> Tensor:
    """A zero loss that still reaches every given tensor in backward (zero gradient)."""
    present = [t for t in tensors if t is not None]
    anchor = present[0]
    if reduction == "none":
        n = anchor.size(0) if rows is None else rows
        out = anchor.new_zeros(n)
        for t in present:
            out = out + (t * 0).sum()
        return out
    out = anchor.new_zeros(())
    for t in present:
        out = out + (t * 0).sum()
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, Tensor):
        if value.numel() <= 4:
            return repr(value.tolist())
        return f"tensor(shape={tuple(value.shape)})"
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value)


# ---------------------------------------------------------------------------- base
class Loss(nn.Module):
    """Base class of graphdl losses: a ``reduction`` and a ``repr`` of the hyper-parameters.

    Subclasses set :attr:`reductions` when they support other reductions than
    ``("mean", "sum", "none")``, :attr:`kind` (how the Trainer calls them) and
    may override :meth:`example_inputs` so that
    :func:`graphdl.testing.losses.check_loss` can exercise them.
    """

    reductions: tuple[str, ...] = REDUCTIONS
    #: one of :data:`KINDS`; a subclass sets it (or is registered with ``kind=``): registering one without is refused
    kind: str | None = None
    #: how the ``link`` task calls it with the scores of positive pairs and of sampled non-edges:
    #: ``"pos_neg"`` as ``loss(pos, neg)``, ``"ranked"`` as ``loss(pos, neg, ones)`` (each positive
    #: ranked above its negatives); ``None``: classification and regression losses get
    #: ``loss(logits, 0/1 labels)``, other kinds are refused there
    link_inputs: str | None = None
    #: constructor keyword arguments the conformance suite needs (e.g. sizes)
    example_init: dict[str, Any] = {}

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    @property
    def reduction(self) -> str:
        return self._reduction

    @reduction.setter
    def reduction(self, value: str) -> None:
        self._reduction = check_reduction(value, self.reductions, type(self).__name__)

    @property
    def _owner(self) -> str:
        return type(self).__name__

    def _reduce(self, losses: Tensor) -> Tensor:
        """Elementwise reduction: mean over all entries, sum, or the tensor itself."""
        if self.reduction == "mean":
            return losses.mean()
        if self.reduction == "sum":
            return losses.sum()
        return losses

    def hparams(self) -> dict[str, Any]:
        """The constructor arguments and their current values, in signature order."""
        out: dict[str, Any] = {}
        for name, p in inspect.signature(type(self).__init__).parameters.items():
            if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if hasattr(self, name):
                out[name] = getattr(self, name)
        return out

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={_fmt(v)}" for k, v in self.hparams().items())

    def example_inputs(self, dtype: torch.dtype = torch.float64,
                       generator: torch.Generator | None = None) -> tuple[tuple, dict]:
        """Small valid ``(args, kwargs)`` for the conformance suite."""
        raise NotImplementedError(
            f"{type(self).__name__} does not define example_inputs(); pass inputs= to check_loss"
        )
