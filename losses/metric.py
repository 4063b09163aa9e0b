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
reducer takes for the same loss (documented per class). A batch without a
positive pair, a negative pair or a valid triplet gives 0 (with a zero gradient
that still reaches the inputs).
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
    check_labels,
    check_number,
    check_tensor,
    masked_logsumexp,
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
                raise ValidationError(
                    f"{owner}: ref_labels was given without ref_emb. Pass ref_emb (the reference "
                    f"embeddings) together with ref_labels, or drop ref_labels."
                )
            ref = emb
        else:
            ref = check_tensor(owner, "ref_emb", ref_emb, ndim=2)
            if ref.size(1) != emb.size(1):
                raise ValidationError(
                    f"{owner}: ref_emb has {ref.size(1)} features per row but embeddings has "
                    f"{emb.size(1)}; both must come from the same embedding space."
                )
        self.emb, self.ref = emb, ref
        self.B, self.R = emb.size(0), ref.size(0)

        if labels is not None:
            labels = check_labels(owner, labels, self.B).to(emb.device)
        if not self.same and ref_labels is not None:
            ref_labels = check_labels(owner, ref_labels, self.R, name="ref_labels",
                                      rows_of="ref_emb").to(emb.device)
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

    # ---------------------------------------------------------------------- masks
    def pairs(self, *, binary: bool) -> tuple[Tensor, Tensor]:
        """``(pos, neg)`` masks of shape ``(B, R)``.

        From labels (or with ``binary=True``) they are bool; from an index tuple
        they are float multiplicities (a pair listed twice counts twice).
        """
        B, R, dev = self.B, self.R, self.emb.device
        if self.tuple is None:
            eq = self.labels.unsqueeze(1) == self.ref_labels.unsqueeze(0)
            neg = ~eq
            if self.same:
                eq.fill_diagonal_(False)
            return eq, neg
        t = self.tuple
        if len(t) == 2:
            pos = self._scatter(t[0], t[1], binary)
            neg = (pos == 0) if not binary else ~pos
            if self.same:
                neg.fill_diagonal_(False)
            if not binary:
                neg = neg.to(self.emb.dtype)
        elif len(t) == 3:
            pos, neg = self._scatter(t[0], t[1], binary), self._scatter(t[0], t[2], binary)
        else:
            pos, neg = self._scatter(t[0], t[1], binary), self._scatter(t[2], t[3], binary)
        if binary and bool((pos & neg).any()):
            i, j = (pos & neg).nonzero()[0].tolist()
            raise ValidationError(
                f"{self.owner}: the pair ({i}, {j}) is listed both as positive and as negative in "
                f"indices_tuple; each pair must be one or the other."
            )
        del B, R, dev
        return pos, neg

    def _scatter(self, rows: Tensor, cols: Tensor, binary: bool) -> Tensor:
        if binary:
            m = torch.zeros(self.B, self.R, dtype=torch.bool, device=self.emb.device)
            m[rows, cols] = True
            return m
        m = torch.zeros(self.B, self.R, dtype=self.emb.dtype, device=self.emb.device)
        return m.index_put_((rows, cols), torch.ones_like(rows, dtype=m.dtype), accumulate=True)

    def mat(self, distance: Distance) -> Tensor:
        return distance(self.emb, None if self.same else self.ref)

    def zero(self, reduction: str, *extra: Tensor | None) -> Tensor:
        return zero_loss(reduction, self.emb, None if self.same else self.ref, *extra, rows=self.B)


def _any(mask: Tensor) -> bool:
    return bool((mask if mask.dtype == torch.bool else mask > 0).any())


def _weights(mask: Tensor, dtype: torch.dtype) -> Tensor:
    return mask.to(dtype)


def _log_weights(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """``x + log(count)`` and the bool mask, for logsumexps over multiplicities."""
    if mask.dtype == torch.bool:
        return x, mask
    keep = mask > 0
    return x + torch.log(torch.where(keep, mask, torch.ones_like(mask))), keep


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
        pos, neg = b.pairs(binary=False)
        if not _any(pos) or not _any(neg):
            return b.zero(self.reduction)
        mat = b.mat(self.distance)
        pw, nw = _weights(pos, mat.dtype), _weights(neg, mat.dtype)
        pl = F.relu(self.distance.margin(mat, self.pos_margin)) * pw
        nl = F.relu(self.distance.margin(self.neg_margin, mat)) * nw
        if self.reduction == "none":
            return (pl + nl).sum(1)
        if self.reduction == "sum":
            return pl.sum() + nl.sum()
        pcount = (pw * (pl > 0)).sum().clamp_min(1)
        ncount = (nw * (nl > 0)).sum().clamp_min(1)
        return pl.sum() / pcount + nl.sum() / ncount


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
        self.swap = bool(swap)
        self.smooth_loss = bool(smooth_loss)

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
        pos, neg = b.pairs(binary=self.mining == "hard")
        if not _any(pos) or not _any(neg):
            return b.zero(self.reduction)
        dd = self.distance.dissimilarity(b.mat(self.distance))
        if self.mining == "hard":
            return self._hard(b, dd, pos, neg)
        if self.swap or self.smooth_loss:
            return self._chunked(b, dd, pos, neg)
        return self._sorted(b, dd, pos, neg)

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
        return self._finish(b, per_row, losses.sum(), (losses > 0).sum().to(losses.dtype))

    def _hard(self, b: MetricBatch, dd: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        with torch.no_grad():
            p = dd.masked_fill(~pos, float("-inf")).argmax(1)
            n = dd.masked_fill(~neg, float("inf")).argmin(1)
            keep = pos.any(1) & neg.any(1)
            a = torch.arange(b.B, device=dd.device)[keep]
        if a.numel() == 0:
            return b.zero(self.reduction)
        return self._explicit(b, dd, a, p[keep], n[keep])

    @staticmethod
    def _positives(pos: Tensor) -> tuple[Tensor, Tensor, Tensor, int, Tensor | None]:
        """Positive pairs in row-major order with their slot inside the row."""
        pmask = pos if pos.dtype == torch.bool else pos > 0
        rows, cols = pmask.nonzero(as_tuple=True)
        cnt = pmask.sum(1)
        k = int(cnt.max()) if rows.numel() else 0
        starts = torch.cumsum(cnt, 0) - cnt
        slot = torch.arange(rows.numel(), device=pos.device) - starts[rows]
        w = None if pos.dtype == torch.bool else pos[rows, cols]
        return rows, cols, slot, k, w

    def _sorted(self, b: MetricBatch, dd: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        r"""All (or semi-hard) triplets without enumerating them.

        For anchor :math:`a` with negatives sorted, :math:`y_{(1)} \le y_{(2)} \le \dots`,
        :math:`\sum_n [x - y_n]_+ = c\,x - \sum_{k \le c} y_{(k)}` where
        :math:`x = d_{ap} + m` and :math:`c = \#\{n : y_n < x\}` (a binary
        search); prefix sums are accumulated in float64.
        """
        m = self.margin
        weighted = neg.dtype != torch.bool
        negmask = neg > 0 if weighted else neg
        rows, cols, slot, k, pw = self._positives(pos)
        B = dd.size(0)
        sentinel = dd.detach().max() + abs(m) + 1.0
        ys, order = torch.where(negmask, dd, sentinel).sort(dim=1)
        ys64 = ys.double()
        if weighted:
            ws = neg.gather(1, order).double()
            cy = F.pad(torch.cumsum(ys64 * ws, 1), (1, 0))
            cw = F.pad(torch.cumsum(ws, 1), (1, 0))
        else:
            cy = F.pad(torch.cumsum(ys64, 1), (1, 0))
            cw = None
        ap = dd[rows, cols]
        x = ap + m
        seq = ys.detach().contiguous()
        pad = dd.new_full((B, k), float("inf"))
        hi = torch.searchsorted(seq, pad.index_put((rows, slot), x.detach()))[rows, slot]
        if self.mining == "semihard":
            lo = torch.searchsorted(seq, pad.index_put((rows, slot), ap.detach()), right=True)[rows, slot]
            hi = torch.maximum(hi, lo)
        else:
            lo = None
        count = cw[rows, hi] if cw is not None else hi.double()
        s = cy[rows, hi]
        if lo is not None:
            count = count - (cw[rows, lo] if cw is not None else lo.double())
            s = s - cy[rows, lo]
        losses = count * x.double() - s
        if pw is not None:
            losses, count = losses * pw.double(), count * pw.double()
        per_row = losses.new_zeros(B).index_add(0, rows, losses)
        return self._finish(b, per_row, losses.sum(), count.sum())

    def _chunked(self, b: MetricBatch, dd: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
        """Exact per-anchor enumeration in chunks (``swap`` / ``smooth_loss``)."""
        m = self.margin
        weighted = neg.dtype != torch.bool
        negmask = neg > 0 if weighted else neg
        rows, cols, slot, k, pw = self._positives(pos)
        B, R = dd.shape
        pidx = torch.zeros(B, k, dtype=torch.long, device=dd.device).index_put((rows, slot), cols)
        valid = torch.zeros(B, k, dtype=torch.bool, device=dd.device).index_put(
            (rows, slot), torch.ones_like(rows, dtype=torch.bool))
        pweight = None
        if pw is not None:
            pweight = dd.new_zeros(B, k).index_put((rows, slot), pw)
        ap_all = dd.gather(1, pidx)
        dref = self._ref_dissimilarity(b, dd) if self.swap else None
        chunk = max(1, (1 << 22) // max(1, k * R))
        per_rows, total, count = [], dd.new_zeros(()), dd.new_zeros(())
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
            if weighted:
                w = w * pweight[s:e].unsqueeze(2) * neg[s:e].unsqueeze(1)
            terms = losses * w
            per_rows.append(terms.sum((1, 2)))
            total = total + terms.sum()
            count = count + (w * (losses > 0)).sum()
        return self._finish(b, torch.cat(per_rows), total, count)


# ============================================================================ NT-Xent
def _check_temperature(owner: str, t: float, example: str) -> float:
    return check_number(owner, "temperature", t, low=0.0, low_open=True,
                        hint=f"It divides the similarities; pass a positive value such as {example}.")


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
        pos, neg = b.pairs(binary=False)
        if not _any(pos) or not _any(neg):
            return b.zero(self.reduction)
        logits = self.distance.dissimilarity(b.mat(self.distance)) * (-1.0 / self.temperature)
        nlogits, nmask = _log_weights(logits, neg)
        neg_lse = masked_logsumexp(nlogits, nmask)
        pw = _weights(pos, logits.dtype)
        terms = F.softplus(neg_lse.unsqueeze(1) - logits) * pw
        if self.reduction == "none":
            return terms.sum(1)
        total = terms.sum()
        return total if self.reduction == "sum" else total / pw.sum()


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
        pos, neg = b.pairs(binary=True)
        if not pos.any() or not neg.any():
            return b.zero(self.reduction)
        logits = self.distance.dissimilarity(b.mat(self.distance)) * (-1.0 / self.temperature)
        denom = masked_logsumexp(logits, pos | neg)
        log_prob = torch.where(pos, logits - denom.unsqueeze(1), torch.zeros_like(logits))
        npos = pos.sum(1).to(logits.dtype)
        losses = -log_prob.sum(1) / (npos + torch.finfo(logits.dtype).tiny)
        nonzero = losses > 0
        mean = (losses * nonzero).sum() / nonzero.sum().clamp_min(1)
        return self._reduce_rows(losses, losses.sum(), mean)


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
        pos, neg = b.pairs(binary=True)
        if not pos.any() or not neg.any():
            return b.zero(self.reduction)
        mat = b.mat(self.distance)
        pl = F.softplus(masked_logsumexp(self.distance.margin(mat, self.base) * self.alpha, pos))
        nl = F.softplus(masked_logsumexp(self.distance.margin(self.base, mat) * self.beta, neg))
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
    separate ``ref_emb`` only the anchor's negatives :math:`N(i)` enter.

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
        pos, neg = b.pairs(binary=False)
        if not _any(pos) or not _any(neg):
            return b.zero(self.reduction)
        mat = b.mat(self.distance)
        x, nmask = _log_weights(self.distance.margin(self.neg_margin, mat), neg)
        lse = masked_logsumexp(x, nmask)
        empty = torch.isinf(lse)
        safe = lse.masked_fill(empty, -1e30 if lse.dtype != torch.float16 else -6e4)
        if b.same:
            joint = torch.logaddexp(safe.unsqueeze(1), safe.unsqueeze(0))
            both = empty.unsqueeze(1) & empty.unsqueeze(0)
            if pos.dtype != torch.bool and bool(pos.diagonal().gt(0).any()):
                eye = torch.eye(b.B, dtype=torch.bool, device=mat.device)
                joint = torch.where(eye, safe.unsqueeze(1).expand_as(joint), joint)
        else:
            joint = safe.unsqueeze(1).expand_as(mat)
            both = empty.unsqueeze(1).expand_as(mat)
        joint = joint.masked_fill(both, 0.0)  # no negative at all: pytorch-metric-learning's 0
        pw = _weights(pos, mat.dtype)
        terms = F.relu(joint + self.distance.margin(mat, self.pos_margin)).pow(2) * (0.5 * pw)
        if self.reduction == "none":
            return terms.sum(1)
        total = terms.sum()
        return total if self.reduction == "sum" else total / pw.sum()


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
        w = self.weight.to(emb.dtype)
        cos = F.normalize(emb, dim=1) @ F.normalize(w, dim=1).t()
        target = cos.gather(1, labels.unsqueeze(1)).squeeze(1)
        angle = torch.acos(target.clamp(-1, 1))
        m = math.radians(self.margin)
        psi = torch.where(angle <= math.pi - m, torch.cos(angle + m), torch.cos(angle) - m * math.sin(m))
        logits = cos.scatter(1, labels.unsqueeze(1), psi.unsqueeze(1)) * self.scale
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
