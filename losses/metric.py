r"""Contrastive and metric-learning losses.

Every loss here is called like pytorch-metric-learning's::

    loss(embeddings, labels=None, indices_tuple=None, ref_emb=None, ref_labels=None)

* ``embeddings`` -- :math:`(B, d)` query embeddings; ``labels`` -- :math:`(B,)`
  integer class ids. Two rows with the same label form a *positive* pair,
  different labels a *negative* pair; a row is never paired with itself.
* ``ref_emb`` / ``ref_labels`` -- an optional :math:`(R, d)` reference set the
  queries are compared with (pairs are then query x reference, self-pairs
  included).
* ``indices_tuple`` -- explicit pairs or triplets instead of labels:
  ``(anchor, positive)`` (every other anchor x reference pair is negative),
  ``(anchor, positive, negative)`` triplets, or ``(a1, p, a2, n)`` positive and
  negative pairs. Anchors index ``embeddings``; the others index the reference
  set (``embeddings`` itself when ``ref_emb`` is not given).

Distances are swappable :mod:`~graphdl.losses.distances` objects. Every loss
keeps memory :math:`O(BR)`: no positives x negatives or triplet tensor is ever
materialised (all-triplet losses sort each anchor's negatives and use prefix
sums instead).

With ``reduction="none"`` a loss returns a :math:`(B,)` vector: the summed loss
of the pairs or triplets each embedding anchors, so ``none.sum()`` equals
``reduction="sum"``. ``"mean"`` is the average pytorch-metric-learning's default
reducer takes for the same loss (documented per class). ``contrastive`` and
``multi_similarity`` score the positive and the negative pairs separately, so a
batch with pairs of one kind only (one class, or all classes distinct) still
has that kind's terms, as in pytorch-metric-learning; the other losses need a
positive pair, a negative pair or a valid triplet and otherwise give 0 (with a
zero gradient that still reaches the inputs).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphdl.errors import ValidationError
from graphdl.losses import LOSSES
from graphdl.losses.base import (
    Loss,
    check_bool,
    check_device,
    check_labels,
    check_number,
    check_tensor,
    zero_loss,
)
from graphdl.losses.distances import CosineSimilarity, Distance, LpDistance, resolve_distance

__all__ = [
    "MetricLoss",
    "ContrastiveLoss",
    "TripletLoss",
    "NTXentLoss",
    "SupConLoss",
    "MultiSimilarityLoss",
    "LiftedStructureLoss",
    "ArcFaceLoss",
]

_TUPLE_NAMES = {2: ("anchor", "positive"), 3: ("anchor", "positive", "negative"),
                4: ("a1", "positive", "a2", "negative")}


def _acc(dtype: torch.dtype) -> torch.dtype:
    """Accumulation dtype of a mean: float16/bfloat16 sums of many terms (and counts above 2048) overflow
    or round, so they are taken in float32 at least (as torch's own mean does)."""
    return torch.promote_types(dtype, torch.float32)


# ============================================================================ inputs
class MetricBatch:
    """Validated inputs of a metric loss and the pair masks they define."""

    def __init__(self, owner: str, embeddings: Any, labels: Any, indices_tuple: Any,
                 ref_emb: Any, ref_labels: Any, *, labels_required: bool = False) -> None:
        self.owner = owner
        emb = check_tensor(owner, "embeddings", embeddings, ndim=2)
        self.same = ref_emb is None or ref_emb is embeddings
        if self.same:
            if ref_labels is not None and ref_labels is not labels:
                if ref_emb is None:
                    raise ValidationError(
                        f"{owner}: ref_labels was given without ref_emb. Pass ref_emb (the reference "
                        f"embeddings) together with ref_labels, or drop ref_labels."
                    )
                if not (isinstance(ref_labels, Tensor) and isinstance(labels, Tensor)
                        and ref_labels.shape == labels.shape and bool((ref_labels == labels).all())):
                    raise ValidationError(
                        f"{owner}: ref_emb is the embeddings tensor itself, but ref_labels differ from labels; "
                        f"the same embeddings have one set of labels: drop ref_emb and ref_labels, or pass "
                        f"another reference set."
                    )
            ref = emb
        else:
            ref = check_tensor(owner, "ref_emb", ref_emb, ndim=2, device_of=("embeddings", emb))
            if ref.size(1) != emb.size(1):
                raise ValidationError(
                    f"{owner}: ref_emb has {ref.size(1)} features per row but embeddings has "
                    f"{emb.size(1)}; both must come from the same embedding space."
                )
        self.emb, self.ref = emb, ref
        self.B, self.R = emb.size(0), ref.size(0)

        if labels is not None:
            labels = check_labels(owner, labels, self.B, device_of=emb).to(emb.device)
        if not self.same and ref_labels is not None:
            ref_labels = check_labels(owner, ref_labels, self.R, name="ref_labels",
                                      rows_of="ref_emb", device_of=emb).to(emb.device)
        if labels_required and labels is None:
            raise ValidationError(f"{owner}: labels are required (one integer class id per embedding).")

        self.tuple: tuple[Tensor, ...] | None = None
        if indices_tuple is not None:
            self.tuple = self._check_tuple(indices_tuple)
        elif labels is None:
            raise ValidationError(
                f"{owner}: pass labels (one integer class id per row of embeddings) or an "
                f"indices_tuple ((anchor, positive), (anchor, positive, negative) or (a1, p, a2, n))."
            )
        elif not self.same and ref_labels is None:
            raise ValidationError(
                f"{owner}: ref_emb was given without ref_labels. Pass ref_labels (one class id "
                f"per row of ref_emb) so that positive and negative pairs can be formed."
            )
        self.labels = labels
        self.ref_labels = labels if self.same else ref_labels
        self._eq: Tensor | None = None

    # ---------------------------------------------------------------- index tuple
    def _check_tuple(self, tup: Any) -> tuple[Tensor, ...]:
        owner = self.owner
        if not isinstance(tup, (tuple, list)) or len(tup) not in (2, 3, 4):
            got = f"{len(tup)} tensors" if isinstance(tup, (tuple, list)) else type(tup).__name__
            raise ValidationError(
                f"{owner}: indices_tuple must hold 2 (anchor, positive), 3 (anchor, positive, "
                f"negative) or 4 (a1, positive, a2, negative) index tensors, got {got}."
            )
        names = _TUPLE_NAMES[len(tup)]
        out = []
        for i, (name, t) in enumerate(zip(names, tup)):
            if not isinstance(t, Tensor):
                t = torch.as_tensor(t)
                if t.numel() == 0:  # an empty list becomes float32: no index to misread
                    t = t.long()
            check_device(owner, f"indices_tuple[{i}] ({name})", t)
            if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool or t.dim() != 1:
                raise ValidationError(
                    f"{owner}: indices_tuple[{i}] ({name}) must be a 1-D integer tensor, got dtype "
                    f"{t.dtype} and shape {tuple(t.shape)}. Convert it with .long().view(-1)."
                )
            t = t.to(device=self.emb.device, dtype=torch.long)
            size, where = (self.B, "embeddings") if name in ("anchor", "a1", "a2") else (
                self.R, "embeddings" if self.same else "ref_emb")
            if t.numel() and (int(t.min()) < 0 or int(t.max()) >= size):
                bad = int(t.min()) if int(t.min()) < 0 else int(t.max())
                raise ValidationError(
                    f"{owner}: indices_tuple[{i}] ({name}) holds index {bad}, outside [0, {size}) -- "
                    f"the rows of {where}. Index rows of {where} only."
                )
            out.append(t)
        pairs = [(0, 1)] if len(out) == 2 else [(0, 1), (0, 2)] if len(out) == 3 else [(0, 1), (2, 3)]
        for i, j in pairs:
            if out[i].numel() != out[j].numel():
                raise ValidationError(
                    f"{owner}: indices_tuple[{i}] ({names[i]}) has {out[i].numel()} entries but "
                    f"indices_tuple[{j}] ({names[j]}) has {out[j].numel()}; they must pair up "
                    f"one-to-one."
                )
        return tuple(out)

    # ---------------------------------------------------------------- pairs
    def positives(self, *, unique: bool = False) -> tuple[Tensor, Tensor]:
        """Positive pairs as ``(rows, cols)`` index lists in row-major order.

        From labels every same-label pair (no self-pair); from a tuple the
        listed pairs, a pair listed twice counting twice unless ``unique``.
        """
        if self.tuple is None:
            rows, cols = self.eq().nonzero(as_tuple=True)
            if self.same:
                keep = rows != cols
                rows, cols = rows[keep], cols[keep]
            return rows, cols
        rows, cols = self.tuple[0], self.tuple[1]
        key = rows * self.R + cols
        if unique:
            key = torch.unique(key)
        else:
            key = key[torch.argsort(key, stable=True)]
        return key // self.R, key % self.R

    def negatives(self, *, binary: bool = False) -> Negatives:
        """The negative pairs (see :class:`Negatives`)."""
        B, R, dev = self.B, self.R, self.emb.device
        if self.tuple is None:
            rl = self.ref_labels
            if R and bool((rl != rl[0]).any()):  # two reference labels: every row has a negative
                rows = torch.ones(B, dtype=torch.bool, device=dev)
            else:
                rows = self.labels != rl[0] if R else torch.zeros(B, dtype=torch.bool, device=dev)
            return Negatives(excl=self.eq(), rows=rows)
        t = self.tuple
        if len(t) == 2:  # every pair that is not a listed positive (nor a self-pair)
            excl = torch.zeros(B, R, dtype=torch.bool, device=dev)
            excl[t[0], t[1]] = True
            if self.same:
                excl.fill_diagonal_(True)
            return Negatives(excl=excl)
        a, n = (t[0], t[2]) if len(t) == 3 else (t[2], t[3])
        if binary:
            mask = torch.zeros(B, R, dtype=torch.bool, device=dev)
            mask[a, n] = True
            return Negatives(excl=~mask)
        count = torch.zeros(B, R, dtype=self.emb.dtype, device=dev)
        count.index_put_((a, n), torch.ones_like(a, dtype=count.dtype), accumulate=True)
        return Negatives(count=count)

    def check_disjoint(self, rows: Tensor, cols: Tensor, neg: Negatives) -> None:
        """pytorch-metric-learning's rule for set-based losses: no pair is both."""
        if self.tuple is None or rows.numel() == 0:
            return
        both = neg.mask()[rows, cols]
        if bool(both.any()):
            i = int(both.nonzero()[0, 0])
            raise ValidationError(
                f"{self.owner}: the pair ({int(rows[i])}, {int(cols[i])}) is listed both as positive and "
                f"as negative in indices_tuple; each pair must be one or the other."
            )

    def eq(self) -> Tensor:
        if self._eq is None:
            self._eq = self.labels.unsqueeze(1) == self.ref_labels.unsqueeze(0)
        return self._eq

    def mat(self, distance: Distance) -> Tensor:
        return distance(self.emb, None if self.same else self.ref)

    def zero(self, reduction: str, *extra: Tensor | None) -> Tensor:
        return zero_loss(reduction, self.emb, None if self.same else self.ref, *extra, rows=self.B)


class Negatives:
    """Negative pairs over the ``(B, R)`` query x reference grid.

    Either ``excl`` (bool, True where a pair is *not* a negative: the
    same-label pairs for labels) or ``count`` (float multiplicities, from an
    index tuple). Memory stays :math:`O(BR)`; every method costs a few passes.
    """

    def __init__(self, excl: Tensor | None = None, count: Tensor | None = None,
                 rows: Tensor | None = None) -> None:
        self.excl, self.count = excl, count
        self._rows = rows

    def rows(self) -> Tensor:
        """``(B,)`` bool: the rows that have at least one negative."""
        if self._rows is None:
            self._rows = ~self.excl.all(1) if self.count is None else (self.count > 0).any(1)
        return self._rows

    def any(self) -> bool:
        return bool(self.rows().any())

    def mask(self) -> Tensor:
        return ~self.excl if self.count is None else self.count > 0

    def fill(self, x: Tensor, value: float | Tensor) -> Tensor:
        """``x`` with every non-negative entry replaced by ``value``."""
        if self.count is None:
            return x.masked_fill(self.excl, value)
        return torch.where(self.count > 0, x, value)

    def lse(self, x: Tensor) -> Tensor:
        r""":math:`\log \sum_{n} c_{in} e^{x_{in}}` per row; ``-inf`` (NaN-free gradient) when empty."""
        if self.count is not None:
            keep = self.count > 0
            x = x + torch.log(torch.where(keep, self.count, torch.ones_like(self.count)))
            x = x.masked_fill(~keep, float("-inf"))
        else:
            x = x.masked_fill(self.excl, float("-inf"))
        has = self.rows()
        if bool(has.all()):
            return torch.logsumexp(x, 1)
        x = x.masked_fill(~has.unsqueeze(1), 0.0)
        return torch.logsumexp(x, 1).masked_fill(~has, float("-inf"))

    def relu(self, x: Tensor) -> Tensor:
        """``relu(x)`` at the negatives (times their multiplicity), 0 elsewhere."""
        if self.count is None:
            return F.relu(x).masked_fill(self.excl, 0.0)
        return F.relu(x) * self.count

    def count_nonzero(self, terms: Tensor) -> Tensor:
        """How many negative pairs (with multiplicity) have a non-zero term (in float32 at least)."""
        if self.count is None:
            return torch.count_nonzero(terms).to(_acc(terms.dtype))
        return (self.count * (terms > 0)).sum(dtype=_acc(terms.dtype))


class _ContrastiveTerms(torch.autograd.Function):
    """Positive hinge terms (P,) and the dense negative hinge matrix (B, R) of a distance matrix.

    One allocation forward (the negative terms are masked and clamped in
    place), one gradient buffer backward (the positive-pair gradients are
    added into it in place): the work of the plain autograd graph in about
    half the passes over the :math:`B \times R` matrix.
    """

    @staticmethod
    def forward(ctx, mat, rows, cols, excl, count, pos_margin, neg_margin, inverted):  # noqa: D102
        s = -1.0 if inverted else 1.0  # margin(x, y) = s * (x - y)
        pos = torch.clamp_min(mat[rows, cols].sub(pos_margin).mul_(s), 0)
        neg = torch.sub(neg_margin, mat) if not inverted else torch.sub(mat, neg_margin)
        if count is None:
            neg.masked_fill_(excl, 0.0).clamp_min_(0)
        else:
            neg.clamp_min_(0).mul_(count)
        ctx.save_for_backward(rows, cols, pos, neg, count)
        ctx.s, ctx.shape = s, mat.shape
        return pos, neg

    @staticmethod
    def backward(ctx, g_pos, g_neg):  # noqa: D102
        rows, cols, pos, neg, count = ctx.saved_tensors
        s = ctx.s
        if g_neg is None:
            grad = pos.new_zeros(ctx.shape)
        else:
            grad = torch.where(neg > 0, g_neg * (count if count is not None else 1.0) * (-s), 0.0)
        if g_pos is not None:
            grad.index_put_((rows, cols), torch.where(pos > 0, g_pos * s, 0.0), accumulate=True)
        return grad, None, None, None, None, None, None, None


def _segment_logsumexp(values: Tensor, rows: Tensor, n: int) -> Tensor:
    """Per-row log-sum-exp of ``values`` grouped by ``rows``; ``-inf`` (no NaN gradient) when empty."""
    m = values.new_full((n,), float("-inf")).scatter_reduce(0, rows, values.detach(), "amax")
    m_safe = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    s = values.new_zeros(n).index_add(0, rows, torch.exp(values - m_safe[rows]))
    has = s > 0
    out = torch.log(torch.where(has, s, torch.ones_like(s))) + m_safe
    return out.masked_fill(~has, float("-inf"))


def _safe_inf(x: Tensor) -> tuple[Tensor, Tensor]:
    """``x`` with ``-inf`` replaced by a huge finite negative, and where it was ``-inf``."""
    empty = torch.isinf(x)
    return x.masked_fill(empty, -1e30 if x.dtype != torch.float16 else -6e4), empty


# ============================================================================= base
class MetricLoss(Loss):
    """Base class of the losses on ``(embeddings, labels)`` or index tuples."""

    kind = "metric"
    default_distance: type[Distance] = LpDistance
    labels_required = False

    def __init__(self, distance: Distance | str | None = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.distance = resolve_distance(distance, self.default_distance, self._owner)

    def forward(self, embeddings: Tensor, labels: Tensor | None = None,
                indices_tuple: tuple[Tensor, ...] | None = None, ref_emb: Tensor | None = None,
                ref_labels: Tensor | None = None) -> Tensor:
        batch = MetricBatch(self._owner, embeddings, labels, indices_tuple, ref_emb, ref_labels,
                            labels_required=self.labels_required)
        return self.compute(batch)

    def compute(self, b: MetricBatch) -> Tensor:
        raise NotImplementedError

    def example_inputs(self, dtype: torch.dtype = torch.float64,
                       generator: torch.Generator | None = None) -> tuple[tuple, dict]:
        emb = torch.randn(12, 6, dtype=dtype, generator=generator)
        labels = torch.arange(4).repeat_interleave(3)[torch.randperm(12, generator=generator)]
        return (emb.requires_grad_(), labels), {}

    def _reduce_rows(self, per_row: Tensor, total: Tensor, mean: Tensor) -> Tensor:
        if self.reduction == "none":
            return per_row
        return total if self.reduction == "sum" else mean


# ====================================================================== contrastive
@LOSSES.register("contrastive", aliases=("pair_contrastive",), kind="metric")
class ContrastiveLoss(MetricLoss):
    r"""Pairwise contrastive loss (Hadsell et al., 2006) with two margins.

    .. math::
        \ell^{+}_{ij} = \big[d_{ij} - m_{+}\big]_+ ,\qquad
        \ell^{-}_{ij} = \big[m_{-} - d_{ij}\big]_+

    over positive and negative pairs (roles swapped for similarities).
    ``"mean"`` is :math:`\mathrm{avg}_{\neq 0}(\ell^{+}) + \mathrm{avg}_{\neq 0}(\ell^{-})`,
    the average of the non-zero positive terms plus that of the non-zero
    negative terms (pytorch-metric-learning's ``AvgNonZeroReducer``).

    Args:
        pos_margin: :math:`m_+`, positive pairs closer than this cost nothing.
        neg_margin: :math:`m_-`, negative pairs farther than this cost nothing.
        distance: default :class:`LpDistance` (of unit-normalised embeddings).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per-anchor sums, :math:`(B,)`).
    """

    def __init__(self, pos_margin: float = 0.0, neg_margin: float = 1.0,
                 distance: Distance | str | None = None, reduction: str = "mean") -> None:
        super().__init__(distance, reduction)
        self.pos_margin = check_number(self._owner, "pos_margin", pos_margin)
        self.neg_margin = check_number(self._owner, "neg_margin", neg_margin)
        if self.distance.margin(self.pos_margin, self.neg_margin) >= 0:
            kind = "a similarity" if self.distance.is_inverted else "a distance"
            rel = "greater" if self.distance.is_inverted else "smaller"
            raise ValidationError(
                f"{self._owner}: with {kind} ({self.distance!r}) pos_margin must be {rel} than "
                f"neg_margin, got pos_margin={pos_margin}, neg_margin={neg_margin}. For "
                + ("similarities pass e.g. pos_margin=1, neg_margin=0."
                   if self.distance.is_inverted else "distances pass e.g. pos_margin=0, neg_margin=1.")
            )

    def compute(self, b: MetricBatch) -> Tensor:
        rows, cols = b.positives()
        neg = b.negatives()
        if rows.numel() == 0 and not neg.any():  # either kind alone still has its terms, as in pml
            return b.zero(self.reduction)
        mat = b.mat(self.distance)
        pl, nl = _ContrastiveTerms.apply(mat, rows, cols, neg.excl, neg.count, self.pos_margin,
                                         self.neg_margin, self.distance.is_inverted)
        if self.reduction == "none":
            return nl.sum(1).index_add(0, rows, pl)
        if self.reduction == "sum":
            return pl.sum() + nl.sum()
        acc = _acc(pl.dtype)
        pcount = torch.count_nonzero(pl).clamp_min(1).to(acc)
        mean = pl.sum(dtype=acc) / pcount + nl.sum(dtype=acc) / neg.count_nonzero(nl).clamp_min(1)
        return mean.to(pl.dtype)


# =========================================================================== triplet
_MINING = ("all", "hard", "semihard")


@LOSSES.register("triplet", aliases=("triplet_metric",), kind="metric")
class TripletLoss(MetricLoss):
    r"""Triplet margin loss over all, batch-hard or semi-hard triplets.

    For an anchor :math:`a`, positive :math:`p` and negative :math:`n`:

    .. math::
        \ell_{apn} = \big[d_{ap} - d_{an} + m\big]_+

    (:math:`\log(1 + e^{d_{ap} - d_{an} + m})` with ``smooth_loss=True``;
    :math:`d_{an} \leftarrow \min(d_{an}, d_{pn})` with ``swap=True``).
    ``mining`` picks the triplets:

    * ``"all"`` -- every valid triplet, computed in :math:`O(BR)` memory by
      sorting each anchor's negatives (pytorch-metric-learning's
      ``TripletMarginLoss`` default);
    * ``"hard"`` -- batch-hard (Hermans et al., 2017): per anchor the farthest
      positive and the closest negative (``BatchHardMiner``);
    * ``"semihard"`` -- the triplets with :math:`0 < d_{an} - d_{ap} \le m`
      (``TripletMarginMiner(margin=m, type_of_triplets="semihard")``).

    ``"mean"`` averages the non-zero triplet losses (``AvgNonZeroReducer``).

    Args:
        margin: :math:`m \ge 0`.
        mining: ``"all"``, ``"hard"`` or ``"semihard"``.
        swap: use the positive-negative distance when it is smaller.
        smooth_loss: soft-plus instead of the hinge.
        distance: default :class:`LpDistance`.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per-anchor sums, :math:`(B,)`).
    """

    def __init__(self, margin: float = 0.05, mining: str = "all", swap: bool = False,
                 smooth_loss: bool = False, distance: Distance | str | None = None,
                 reduction: str = "mean") -> None:
        super().__init__(distance, reduction)
        self.margin = check_number(self._owner, "margin", margin, low=0.0,
                                   hint="The margin is the gap required between d(a,n) and d(a,p).")
        key = str(mining).lower().replace("-", "").replace("_", "")
        if key not in _MINING:
            raise ValidationError(
                f"{self._owner}: mining must be one of 'all', 'hard', 'semihard', got {mining!r}."
            )
        self.mining = key
        self.swap = check_bool(self._owner, "swap", swap)
        self.smooth_loss = check_bool(self._owner, "smooth_loss", smooth_loss)

    def compute(self, b: MetricBatch) -> Tensor:
        if b.tuple is not None and len(b.tuple) == 3:
            if self.mining != "all":
                raise ValidationError(
                    f"{self._owner}: mining={self.mining!r} selects triplets itself; pass labels "
                    f"instead of explicit (anchor, positive, negative) triplets, or use mining='all'."
                )
            a, p, n = b.tuple
            if a.numel() == 0:
                return b.zero(self.reduction)
            dd = self.distance.dissimilarity(b.mat(self.distance))
            return self._explicit(b, dd, a, p, n)
        rows, cols = b.positives(unique=self.mining == "hard")
        neg = b.negatives(binary=self.mining == "hard")
        if rows.numel() == 0 or not neg.any():
            return b.zero(self.reduction)
        dd = self.distance.dissimilarity(b.mat(self.distance))
        if self.mining == "hard":
            return self._hard(b, dd, rows, cols, neg)
        if self.swap or self.smooth_loss:
            return self._chunked(b, dd, rows, cols, neg)
        return self._sorted(b, dd, rows, cols, neg)

    # -- helpers
    def _ref_dissimilarity(self, b: MetricBatch, dd: Tensor) -> Tensor:
        if b.same:
            return dd
        return self.distance.dissimilarity(self.distance(b.ref))

    def _finish(self, b: MetricBatch, per_row: Tensor, total: Tensor, count: Tensor) -> Tensor:
        dtype = b.emb.dtype
        if self.reduction == "none":
            return per_row.to(dtype)
        if self.reduction == "sum":
            return total.to(dtype)
        return (total / count.clamp_min(1)).to(dtype)

    def _explicit(self, b: MetricBatch, dd: Tensor, a: Tensor, p: Tensor, n: Tensor) -> Tensor:
        ap, an = dd[a, p], dd[a, n]
        if self.swap:
            an = torch.minimum(an, self._ref_dissimilarity(b, dd)[p, n])
        v = ap - an + self.margin
        losses = F.softplus(v) if self.smooth_loss else F.relu(v)
        per_row = losses.new_zeros(b.B).index_add(0, a, losses)
        acc = _acc(losses.dtype)
        return self._finish(b, per_row, losses.sum(dtype=acc), torch.count_nonzero(losses).to(acc))

    def _hard(self, b: MetricBatch, dd: Tensor, rows: Tensor, cols: Tensor, neg: Negatives) -> Tensor:
        with torch.no_grad():
            vals = dd[rows, cols]
            best = vals.new_full((b.B,), float("-inf")).scatter_reduce(0, rows, vals, "amax")
            at_best = vals == best[rows]
            order = torch.arange(rows.numel(), device=dd.device)
            first = torch.full((b.B,), rows.numel(), device=dd.device).scatter_reduce(
                0, rows[at_best], order[at_best], "amin")
            has_p = first < rows.numel()
            n = neg.fill(dd, float("inf")).argmin(1)
            keep = has_p & neg.rows()
            a = torch.arange(b.B, device=dd.device)[keep]
            p = cols[first[keep]]
        if a.numel() == 0:
            return b.zero(self.reduction)
        return self._explicit(b, dd, a, p, n[keep])

    @staticmethod
    def _slots(rows: Tensor, n: int) -> tuple[Tensor, int]:
        """Position of each entry of the row-sorted ``rows`` inside its row, and the widest row."""
        cnt = torch.bincount(rows, minlength=n)
        starts = torch.cumsum(cnt, 0) - cnt
        return torch.arange(rows.numel(), device=rows.device) - starts[rows], int(cnt.max())

    def _sorted(self, b: MetricBatch, dd: Tensor, rows: Tensor, cols: Tensor, neg: Negatives) -> Tensor:
        r"""All (or semi-hard) triplets without enumerating them.

        For anchor :math:`a` with negatives sorted, :math:`y_{(1)} \le y_{(2)} \le \dots`,
        :math:`\sum_n [x - y_n]_+ = c\,x - \sum_{k \le c} y_{(k)}` where
        :math:`x = d_{ap} + m` and :math:`c = \#\{n : y_n < x\}` (a binary
        search); prefix sums are accumulated in float64.
        """
        m = self.margin
        B = dd.size(0)
        slot, k = self._slots(rows, B)
        sentinel = dd.detach().max() + abs(m) + 1.0
        ys, order = neg.fill(dd, sentinel).sort(dim=1)
        cy = F.pad(torch.cumsum(ys.double() if neg.count is None
                                else ys.double() * neg.count.gather(1, order).double(), 1), (1, 0))
        cw = None if neg.count is None else F.pad(torch.cumsum(neg.count.gather(1, order).double(), 1), (1, 0))
        ap = dd[rows, cols]
        x = ap + m
        seq = ys.detach()
        pad = dd.new_full((B, k), float("inf"))
        hi = torch.searchsorted(seq, pad.index_put((rows, slot), x.detach()))[rows, slot]
        lo = None
        if self.mining == "semihard":
            lo = torch.searchsorted(seq, pad.index_put((rows, slot), ap.detach()), right=True)[rows, slot]
            hi = torch.maximum(hi, lo)
        count = cw[rows, hi] if cw is not None else hi.double()
        s = cy[rows, hi]
        if lo is not None:
            count = count - (cw[rows, lo] if cw is not None else lo.double())
            s = s - cy[rows, lo]
        losses = count * x.double() - s
        per_row = losses.new_zeros(B).index_add(0, rows, losses)
        return self._finish(b, per_row, losses.sum(), count.sum())

    def _chunked(self, b: MetricBatch, dd: Tensor, rows: Tensor, cols: Tensor, neg: Negatives) -> Tensor:
        """Exact per-anchor enumeration in chunks (``swap`` / ``smooth_loss``)."""
        m = self.margin
        B, R = dd.shape
        slot, k = self._slots(rows, B)
        pidx = torch.zeros(B, k, dtype=torch.long, device=dd.device).index_put((rows, slot), cols)
        valid = torch.zeros(B, k, dtype=torch.bool, device=dd.device).index_put(
            (rows, slot), torch.ones_like(rows, dtype=torch.bool))
        ap_all = dd.gather(1, pidx)
        negmask = neg.mask()
        dref = self._ref_dissimilarity(b, dd) if self.swap else None
        chunk = max(1, (1 << 22) // max(1, k * R))
        acc = _acc(dd.dtype)
        per_rows, total, count = [], dd.new_zeros((), dtype=acc), dd.new_zeros((), dtype=acc)
        for s in range(0, B, chunk):
            e = min(B, s + chunk)
            ap = ap_all[s:e].unsqueeze(2)
            an = dd[s:e].unsqueeze(1)
            sel = valid[s:e].unsqueeze(2) & negmask[s:e].unsqueeze(1)
            if self.mining == "semihard":
                gap = an - ap
                sel = sel & (gap > 0) & (gap <= m)
            an_eff = torch.minimum(an, dref[pidx[s:e]]) if dref is not None else an
            v = ap - an_eff + m
            losses = F.softplus(v) if self.smooth_loss else F.relu(v)
            w = sel.to(dd.dtype)
            if neg.count is not None:
                w = w * neg.count[s:e].unsqueeze(1)
            terms = losses * w
            per_rows.append(terms.sum((1, 2)))
            total = total + terms.sum(dtype=total.dtype)
            count = count + (w * (losses > 0)).sum(dtype=count.dtype)
        return self._finish(b, torch.cat(per_rows), total, count)


# ============================================================================ NT-Xent
def _check_temperature(owner: str, t: float, example: str) -> float:
    return check_number(owner, "temperature", t, low=0.0, low_open=True,
                        hint=f"It divides the similarities; pass a positive value such as {example}.")


def _scaled(distance: Distance, mat: Tensor, temperature: float) -> Tensor:
    """Similarities divided by the temperature (negated distances for distances)."""
    return mat * ((1.0 if distance.is_inverted else -1.0) / temperature)


@LOSSES.register("ntxent", aliases=("infonce",), kind="metric")
class NTXentLoss(MetricLoss):
    r"""NT-Xent / InfoNCE (Chen et al., 2020; van den Oord et al., 2018).

    For every positive pair :math:`(i, j)`, with :math:`N(i)` the negatives of :math:`i`:

    .. math::
        \ell_{ij} = -\log \frac{e^{s_{ij}/\tau}}
        {e^{s_{ij}/\tau} + \sum_{k \in N(i)} e^{s_{ik}/\tau}}

    (:math:`s = -d` for distances). The negative sum is one log-sum-exp per
    anchor, so memory stays :math:`O(BR)`. ``"mean"`` averages over the
    positive pairs (pytorch-metric-learning's ``MeanReducer``).

    Args:
        temperature: :math:`\tau > 0`.
        distance: default :class:`CosineSimilarity`.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per-anchor sums, :math:`(B,)`).
    """

    default_distance = CosineSimilarity

    def __init__(self, temperature: float = 0.07, distance: Distance | str | None = None,
                 reduction: str = "mean") -> None:
        super().__init__(distance, reduction)
        self.temperature = _check_temperature(self._owner, temperature, "0.07")

    def compute(self, b: MetricBatch) -> Tensor:
        rows, cols = b.positives()
        neg = b.negatives()
        if rows.numel() == 0 or not neg.any():
            return b.zero(self.reduction)
        logits = _scaled(self.distance, b.mat(self.distance), self.temperature)
        terms = F.softplus(neg.lse(logits)[rows] - logits[rows, cols])
        if self.reduction == "none":
            return terms.new_zeros(b.B).index_add(0, rows, terms)
        return terms.sum() if self.reduction == "sum" else terms.mean()


# ============================================================================= SupCon
@LOSSES.register("supcon", aliases=("supervised_contrastive",), kind="metric")
class SupConLoss(MetricLoss):
    r"""Supervised contrastive loss (Khosla et al., 2020).

    .. math::
        \ell_i = -\frac{1}{|P(i)|} \sum_{p \in P(i)} \log
        \frac{e^{s_{ip}/\tau}}{\sum_{k \in P(i) \cup N(i)} e^{s_{ik}/\tau}}

    ``"mean"`` averages the non-zero :math:`\ell_i` (``AvgNonZeroReducer``).

    Args:
        temperature: :math:`\tau > 0`.
        distance: default :class:`CosineSimilarity`.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (:math:`(B,)`).
    """

    default_distance = CosineSimilarity

    def __init__(self, temperature: float = 0.1, distance: Distance | str | None = None,
                 reduction: str = "mean") -> None:
        super().__init__(distance, reduction)
        self.temperature = _check_temperature(self._owner, temperature, "0.1")

    def compute(self, b: MetricBatch) -> Tensor:
        rows, cols = b.positives(unique=True)
        neg = b.negatives(binary=True)
        if rows.numel() == 0 or not neg.any():
            return b.zero(self.reduction)
        b.check_disjoint(rows, cols, neg)
        logits = _scaled(self.distance, b.mat(self.distance), self.temperature)
        if b.tuple is None:  # the denominator runs over every pair but the self-pair
            excl = torch.eye(b.B, dtype=torch.bool, device=logits.device) if b.same else None
        else:
            excl = neg.excl.clone()
            excl[rows, cols] = False
        denom = Negatives(excl=excl).lse(logits) if excl is not None else torch.logsumexp(logits, 1)
        npos = torch.bincount(rows, minlength=b.B).to(logits.dtype)
        denom = denom.masked_fill(npos == 0, 0.0)
        log_prob_sum = logits.new_zeros(b.B).index_add(0, rows, logits[rows, cols]) - npos * denom
        losses = -log_prob_sum / (npos + torch.finfo(logits.dtype).tiny)
        nonzero = losses > 0
        mean = (losses * nonzero).sum(dtype=_acc(losses.dtype)) / nonzero.sum().clamp_min(1)
        return self._reduce_rows(losses, losses.sum(), mean.to(losses.dtype))


# ==================================================================== Multi-similarity
@LOSSES.register("multi_similarity", aliases=("ms",), kind="metric")
class MultiSimilarityLoss(MetricLoss):
    r"""Multi-similarity loss (Wang et al., 2019).

    .. math::
        \ell_i = \frac{1}{\alpha} \log\Big(1 + \sum_{p \in P(i)} e^{-\alpha (s_{ip} - \lambda)}\Big)
        + \frac{1}{\beta} \log\Big(1 + \sum_{n \in N(i)} e^{\beta (s_{in} - \lambda)}\Big)

    ``"mean"`` is the mean over all :math:`B` anchors (``MeanReducer``).

    Args:
        alpha: weight :math:`\alpha > 0` of the positive pairs.
        beta: weight :math:`\beta > 0` of the negative pairs.
        base: the shift :math:`\lambda`.
        distance: default :class:`CosineSimilarity`.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (:math:`(B,)`).
    """

    default_distance = CosineSimilarity

    def __init__(self, alpha: float = 2.0, beta: float = 50.0, base: float = 0.5,
                 distance: Distance | str | None = None, reduction: str = "mean") -> None:
        super().__init__(distance, reduction)
        self.alpha = check_number(self._owner, "alpha", alpha, low=0.0, low_open=True)
        self.beta = check_number(self._owner, "beta", beta, low=0.0, low_open=True)
        self.base = check_number(self._owner, "base", base)

    def compute(self, b: MetricBatch) -> Tensor:
        rows, cols = b.positives(unique=True)
        neg = b.negatives(binary=True)
        if rows.numel() == 0 and not neg.any():  # either kind alone still has its terms, as in pml
            return b.zero(self.reduction)
        b.check_disjoint(rows, cols, neg)
        mat = b.mat(self.distance)
        pos_x = self.distance.margin(mat[rows, cols], self.base) * self.alpha
        # beta * margin(base, mat) in one allocation: +-beta * mat -+ beta * base
        sign = 1.0 if self.distance.is_inverted else -1.0
        neg_x = torch.mul(mat, sign * self.beta).add_(-sign * self.beta * self.base)
        pl = F.softplus(_segment_logsumexp(pos_x, rows, b.B))
        nl = F.softplus(neg.lse(neg_x))
        losses = pl / self.alpha + nl / self.beta
        return self._reduce_rows(losses, losses.sum(), losses.mean())


# ==================================================================== Lifted structure
@LOSSES.register("lifted_structure", aliases=("lifted",), kind="metric")
class LiftedStructureLoss(MetricLoss):
    r"""Lifted structured loss (Oh Song et al., 2016).

    For every positive pair :math:`(i, j)`:

    .. math::
        \ell_{ij} = \tfrac{1}{2}\Big[\log\Big(\sum_{k \in N(i)} e^{m_- - d_{ik}}
        + \sum_{l \in N(j)} e^{m_- - d_{jl}}\Big) + d_{ij} - m_+\Big]_+^2

    ``"mean"`` averages over the positive pairs (``MeanReducer``). With a
    separate ``ref_emb`` only the anchor's negatives :math:`N(i)` enter. A pair
    none of whose two rows has a negative gets 0 for the logarithm, as in
    pytorch-metric-learning.

    Args:
        neg_margin: :math:`m_-`.
        pos_margin: :math:`m_+`.
        distance: default :class:`LpDistance`.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per-anchor sums, :math:`(B,)`).
    """

    def __init__(self, neg_margin: float = 1.0, pos_margin: float = 0.0,
                 distance: Distance | str | None = None, reduction: str = "mean") -> None:
        super().__init__(distance, reduction)
        self.neg_margin = check_number(self._owner, "neg_margin", neg_margin)
        self.pos_margin = check_number(self._owner, "pos_margin", pos_margin)

    def compute(self, b: MetricBatch) -> Tensor:
        rows, cols = b.positives()
        neg = b.negatives()
        if rows.numel() == 0 or not neg.any():
            return b.zero(self.reduction)
        mat = b.mat(self.distance)
        lse, empty = _safe_inf(neg.lse(self.distance.margin(self.neg_margin, mat)))
        joint, none_left = lse[rows], empty[rows]
        if b.same:  # the negatives of both rows of the pair
            other = torch.where(rows == cols, lse.new_full((), -1e30), lse[cols])
            joint = torch.logaddexp(joint, other)
            none_left = none_left & (empty[cols] | (rows == cols))
        joint = joint.masked_fill(none_left, 0.0)
        terms = F.relu(joint + self.distance.margin(mat[rows, cols], self.pos_margin)).pow(2) * 0.5
        if self.reduction == "none":
            return terms.new_zeros(b.B).index_add(0, rows, terms)
        return terms.sum() if self.reduction == "sum" else terms.mean()


# ============================================================================= ArcFace
@LOSSES.register("arcface", aliases=("additive_angular_margin",), kind="metric")
class ArcFaceLoss(MetricLoss):
    r"""ArcFace additive angular margin loss (Deng et al., 2019), with learnable class centres.

    With :math:`\theta_{ic}` the angle between embedding :math:`\mathbf{x}_i`
    and class centre :math:`\mathbf{W}_c`, :math:`y_i` the label, :math:`m`
    the margin and :math:`s` the scale:

    .. math::
        \ell_i = -\log \frac{e^{s\,\psi(\theta_{iy_i})}}
        {e^{s\,\psi(\theta_{iy_i})} + \sum_{c \neq y_i} e^{s \cos\theta_{ic}}},\qquad
        \psi(\theta) = \begin{cases} \cos(\theta + m) & \theta \le \pi - m \\
        \cos\theta - m \sin m & \text{otherwise} \end{cases}

    ``"mean"`` is the mean over the batch. The centres ``weight``
    (:math:`C \times d`) are a ``Parameter``: the Trainer optimises them with
    the model. An ``indices_tuple`` weights each embedding by how often it
    occurs (divided by the largest count), as pytorch-metric-learning does.

    Args:
        num_classes: :math:`C`.
        embedding_size: :math:`d`.
        margin: :math:`m` in degrees, in :math:`[0, 180)`.
        scale: :math:`s > 0`.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (:math:`(B,)`).
    """

    default_distance = CosineSimilarity
    labels_required = True
    example_init = {"num_classes": 4, "embedding_size": 6}

    def __init__(self, num_classes: int, embedding_size: int, margin: float = 28.6,
                 scale: float = 64.0, reduction: str = "mean") -> None:
        super().__init__(None, reduction)
        for name, v in (("num_classes", num_classes), ("embedding_size", embedding_size)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValidationError(f"{self._owner}: {name} must be a positive int, got {v!r}.")
        self.num_classes = num_classes
        self.embedding_size = embedding_size
        self.margin = check_number(self._owner, "margin", margin, low=0.0, high=180.0, high_open=True,
                                   hint="The margin is an angle in degrees (ArcFace uses 28.6).")
        self.scale = check_number(self._owner, "scale", scale, low=0.0, low_open=True)
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight)

    def forward(self, embeddings: Tensor, labels: Tensor | None = None,
                indices_tuple: tuple[Tensor, ...] | None = None, ref_emb: Tensor | None = None,
                ref_labels: Tensor | None = None) -> Tensor:
        if ref_emb is not None or ref_labels is not None:
            raise ValidationError(
                f"{self._owner}: ref_emb/ref_labels are not supported -- the class centres are the "
                f"reference. Call loss(embeddings, labels)."
            )
        b = MetricBatch(self._owner, embeddings, labels, indices_tuple, None, None, labels_required=True)
        if b.emb.size(1) != self.embedding_size:
            raise ValidationError(
                f"{self._owner}: embeddings have {b.emb.size(1)} features but embedding_size="
                f"{self.embedding_size}; build the loss with embedding_size={b.emb.size(1)}."
            )
        labels = b.labels
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise ValidationError(
                f"{self._owner}: labels must lie in [0, {self.num_classes}) (num_classes="
                f"{self.num_classes}), got values in [{int(labels.min())}, {int(labels.max())}]. "
                f"Build the loss with num_classes covering every class id."
            )
        return self.compute_logits_loss(b)

    def logits(self, embeddings: Tensor) -> Tensor:
        """Scaled cosine logits :math:`s\\cos\\theta_{ic}` (no margin), e.g. for prediction."""
        w = self.weight.to(embeddings.dtype)
        return F.normalize(embeddings, dim=1) @ F.normalize(w, dim=1).t() * self.scale

    def compute_logits_loss(self, b: MetricBatch) -> Tensor:
        emb, labels = b.emb, b.labels
        w = F.normalize(self.weight.to(emb.dtype), dim=1)
        # cos = normalize(emb) @ w.T, with the row scaling applied to the (B, C) product
        # rather than to the (B, d) input: the same value, fewer and smaller passes
        inv_norm = 1.0 / torch.linalg.vector_norm(emb, dim=1).clamp_min(1e-12)
        raw = emb @ w.t()
        idx = labels.unsqueeze(1)
        target = raw.gather(1, idx).squeeze(1) * inv_norm
        cos = target.clamp(-1, 1)
        # acos has an infinite slope at +-1 (an embedding on its centre's line, always when d = 1):
        # there the angle is a kink of the embedding, take the zero subgradient instead of inf * 0 = NaN
        angle = torch.acos(torch.where(cos.abs() < 1, cos, cos.detach()))
        m = math.radians(self.margin)
        psi = torch.where(angle <= math.pi - m, torch.cos(angle + m), torch.cos(angle) - m * math.sin(m))
        logits = (raw * (inv_norm * self.scale).unsqueeze(1)).scatter(1, idx, (psi * self.scale).unsqueeze(1))
        if b.tuple is None:
            if self.reduction != "none":
                return F.cross_entropy(logits, labels, reduction=self.reduction)
            return F.cross_entropy(logits, labels, reduction="none")
        idx = torch.cat(list(b.tuple))
        counts = torch.bincount(idx, minlength=b.B).to(emb.dtype)
        weights = counts / counts.max() if idx.numel() else torch.ones_like(counts)
        losses = F.cross_entropy(logits, labels, reduction="none") * weights
        return self._reduce(losses)

    def example_inputs(self, dtype: torch.dtype = torch.float64,
                       generator: torch.Generator | None = None) -> tuple[tuple, dict]:
        emb = torch.randn(10, self.embedding_size, dtype=dtype, generator=generator)
        labels = torch.randint(0, self.num_classes, (10,), generator=generator)
        return (emb.requires_grad_(), labels), {}
