r"""Self-supervised and link-level graph losses.

* ``link_bce`` -- binary cross-entropy of positive edges against sampled negatives;
* ``grace`` -- the node-level two-view contrastive loss of GRACE (Zhu et al., 2020);
* ``vgae`` -- the variational graph auto-encoder objective, reconstruction + KL
  (Kipf & Welling, 2016);
* ``dgi`` -- the Deep Graph Infomax mutual-information objective
  (Velickovic et al., 2019), with its learnable bilinear discriminator.

``link_bce``, ``vgae`` and ``dgi`` compute the same values as PyG's
``GAE.recon_loss``, ``VGAE.recon_loss + kl_loss / N`` and
``DeepGraphInfomax.loss`` (which add :math:`10^{-15}` inside the logarithms;
these use the exact soft-plus form).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphdl.errors import ValidationError
from graphdl.losses import LOSSES
from graphdl.losses.base import Loss, check_device, check_number, check_same_shape, check_tensor, zero_loss

__all__ = ["LinkBCELoss", "GRACELoss", "VGAELoss", "DGILoss"]

MAX_LOGSTD = 10.0


def _check_edges(owner: str, name: str, edge_index: Tensor, num_nodes: int) -> Tensor:
    if not isinstance(edge_index, Tensor) or edge_index.is_floating_point() or edge_index.is_complex() \
            or edge_index.dtype == torch.bool or edge_index.dim() != 2 or edge_index.size(0) != 2:
        shape = (f"{edge_index.dtype} of shape {tuple(edge_index.shape)}" if isinstance(edge_index, Tensor)
                 else type(edge_index).__name__)
        raise ValidationError(
            f"{owner}: {name} must be an integer tensor of shape (2, num_edges), got {shape}."
        )
    check_device(owner, name, edge_index)
    if edge_index.numel():
        lo, hi = int(edge_index.min()), int(edge_index.max())
        if lo < 0 or hi >= num_nodes:  # name the index that is out of range, a negative one first
            raise ValidationError(
                f"{owner}: {name} holds node index {lo if lo < 0 else hi}, outside [0, {num_nodes}) -- "
                f"the rows of the node embeddings."
            )
    return edge_index


def _sample_negatives(edge_index: Tensor, num_nodes: int, ratio: float) -> Tensor:
    from torch_geometric.utils import negative_sampling

    num = max(1, int(round(ratio * edge_index.size(1))))
    return negative_sampling(edge_index, num_nodes=num_nodes, num_neg_samples=num)


def _dot(z: Tensor, edge_index: Tensor) -> Tensor:
    return (z[edge_index[0]] * z[edge_index[1]]).sum(-1)


def _edges(n: int, e: int, generator: torch.Generator | None) -> Tensor:
    return torch.randint(0, n, (2, e), generator=generator)


class _GraphLoss(Loss):
    kind = "graph"


def _pos_neg(reduction: str, pos_terms: Tensor, neg_terms: Tensor) -> Tensor:
    if reduction == "none":
        return torch.cat([pos_terms, neg_terms])
    if reduction == "sum":
        return pos_terms.sum() + neg_terms.sum()
    zero = (pos_terms.sum() + neg_terms.sum()) * 0
    pos = pos_terms.mean() if pos_terms.numel() else zero
    neg = neg_terms.mean() if neg_terms.numel() else zero
    return pos + neg


@LOSSES.register("link_bce", aliases=("link_prediction",), kind="graph")
class LinkBCELoss(_GraphLoss):
    r"""Link-prediction binary cross-entropy over positive edges and sampled negatives.

    With scores :math:`s_e` (logits; by default :math:`\mathbf{z}_i^{\top}\mathbf{z}_j`):

    .. math::
        \mathcal{L} = \frac{1}{|\mathcal{E}^+|}\sum_{e \in \mathcal{E}^+} \log(1 + e^{-s_e})
        + \frac{1}{|\mathcal{E}^-|}\sum_{e \in \mathcal{E}^-} \log(1 + e^{s_e})

    Call it as ``loss(pos_score, neg_score)`` with edge logits, or as
    ``loss(z, pos_edge_index, neg_edge_index=None)`` with node embeddings (the
    dot-product decoder; without ``neg_edge_index``,
    ``round(neg_ratio * num_pos)`` negatives are drawn with PyG's
    ``negative_sampling``). ``"none"`` returns the per-edge terms, positives
    first, :math:`(|\mathcal{E}^+| + |\mathcal{E}^-|,)`.

    Args:
        neg_ratio: negatives drawn per positive edge when sampling.
        reduction: ``"mean"`` (as above), ``"sum"`` or ``"none"``.
    """

    link_inputs = "pos_neg"
    #: How it is called, for messages: the forward's (input, target) names stand for either form
    call_forms = ("(pos_score, neg_score)", "(z, pos_edge_index, neg_edge_index)")

    def __init__(self, neg_ratio: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.neg_ratio = check_number(self._owner, "neg_ratio", neg_ratio, low=0.0, low_open=True)

    def forward(self, input: Tensor, target: Tensor, neg_edge_index: Tensor | None = None) -> Tensor:
        owner = self._owner
        if isinstance(target, Tensor) and target.is_floating_point():
            pos = check_tensor(owner, "pos_score", input)
            neg = check_tensor(owner, "neg_score", target, device_of=("pos_score", pos))
            if pos.dim() > 1 and pos.size(-1) != 1 or neg_edge_index is not None:  # embeddings, a float index
                raise ValidationError(
                    f"{owner}: with a float second argument the inputs are edge logits, loss(pos_score, "
                    f"neg_score), one per edge; got input of shape {tuple(pos.shape)}"
                    f"{' and a third argument' if neg_edge_index is not None else ''}. For node embeddings "
                    f"pass the edges as an integer tensor: loss(z, pos_edge_index.long(), neg_edge_index)."
                )
        else:
            z = check_tensor(owner, "z", input, ndim=2)
            pos_ei = _check_edges(owner, "pos_edge_index", target, z.size(0))
            if neg_edge_index is None:
                neg_edge_index = _sample_negatives(pos_ei, z.size(0), self.neg_ratio)
            neg_ei = _check_edges(owner, "neg_edge_index", neg_edge_index, z.size(0))
            pos, neg = _dot(z, pos_ei), _dot(z, neg_ei)
        return _pos_neg(self.reduction, F.softplus(-pos.reshape(-1)), F.softplus(neg.reshape(-1)))

    def example_inputs(self, dtype=torch.float64, generator=None):
        z = torch.randn(6, 4, dtype=dtype, generator=generator).requires_grad_()
        return (z, _edges(6, 8, generator), _edges(6, 8, generator)), {}


@LOSSES.register("grace", aliases=("grace_contrastive",), kind="graph")
class GRACELoss(_GraphLoss):
    r"""GRACE node-level contrastive loss between two augmented views of one graph.

    With :math:`\mathbf{u}_i, \mathbf{v}_i` the (projected) embeddings of node
    :math:`i` in the two views and :math:`\theta` the cosine similarity:

    .. math::
        \ell(\mathbf{u}_i, \mathbf{v}_i) = -\log
        \frac{e^{\theta(\mathbf{u}_i, \mathbf{v}_i)/\tau}}
        {e^{\theta(\mathbf{u}_i, \mathbf{v}_i)/\tau}
         + \sum_{k \neq i} e^{\theta(\mathbf{u}_i, \mathbf{v}_k)/\tau}
         + \sum_{k \neq i} e^{\theta(\mathbf{u}_i, \mathbf{u}_k)/\tau}}

    and :math:`\mathcal{L} = \frac{1}{2N}\sum_i \big[\ell(\mathbf{u}_i,
    \mathbf{v}_i) + \ell(\mathbf{v}_i, \mathbf{u}_i)\big]`. Equals
    ``ntxent(temperature=tau)`` on ``cat([u, v])`` with labels
    ``arange(N).repeat(2)``. ``"none"`` gives the per-node average of both
    directions, :math:`(N,)`. The projection head belongs to the model.

    Args:
        temperature: :math:`\tau > 0`.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    contrastive_inputs = "two_views"  # the contrastive task: loss(model(view 1), model(view 2))

    def __init__(self, temperature: float = 0.5, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.temperature = check_number(self._owner, "temperature", temperature, low=0.0,
                                        low_open=True, hint="Pass a positive value such as 0.5.")

    def _one_side(self, u: Tensor, v: Tensor) -> Tensor:
        inv = 1.0 / self.temperature
        between = u @ v.t() * inv
        refl = (u @ u.t() * inv).fill_diagonal_(float("-inf"))
        denom = torch.logsumexp(torch.cat([between, refl], dim=1), dim=1)
        return denom - between.diagonal()

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        check_tensor(self._owner, "z1", z1, ndim=2)
        check_tensor(self._owner, "z2", z2, ndim=2)
        check_same_shape(self._owner, "z1", z1, "z2", z2)
        if z1.dtype != z2.dtype:  # failed inside the matmul ("expected m1 and m2 to have the same dtype")
            raise ValidationError(f"{self._owner}: z1 has dtype {z1.dtype} but z2 has {z2.dtype}; give both views "
                                  f"in one dtype, e.g. z2.to(z1.dtype).")
        if z1.size(0) < 2:
            return zero_loss(self.reduction, z1, z2)
        u, v = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
        return self._reduce(0.5 * (self._one_side(u, v) + self._one_side(v, u)))

    def example_inputs(self, dtype=torch.float64, generator=None):
        return tuple(torch.randn(6, 4, dtype=dtype, generator=generator).requires_grad_()
                     for _ in range(2)), {}


@LOSSES.register("vgae", aliases=("vgae_elbo",), kind="graph")
class VGAELoss(_GraphLoss):
    r"""Variational graph auto-encoder objective: edge reconstruction + KL.

    .. math::
        \mathcal{L} = \mathcal{L}_{\text{link}}(\mathbf{Z})
        + \frac{\beta}{N}\sum_{i=1}^{N} -\tfrac{1}{2}\sum_{d}
        \big(1 + 2\log\sigma_{id} - \mu_{id}^2 - \sigma_{id}^2\big)

    with :math:`\mathcal{L}_{\text{link}}` the ``link_bce`` loss of the
    dot-product decoder and :math:`\beta` = ``kl_weight`` (``None``:
    :math:`1/N`, as in PyG's VGAE example); :math:`\log\sigma` is clamped at
    10 like PyG. ``"sum"`` sums the edge terms and the weighted per-node KL
    terms; there is no ``"none"`` (edge and node terms do not align).

    Call: ``loss(z, mu, logstd, pos_edge_index, neg_edge_index=None)``.

    Args:
        kl_weight: :math:`\beta \ge 0`, or ``None`` for :math:`1/N`.
        neg_ratio: negatives sampled per positive edge when ``neg_edge_index`` is not given.
        reduction: ``"mean"`` or ``"sum"``.
    """

    reductions = ("mean", "sum")

    def __init__(self, kl_weight: float | None = None, neg_ratio: float = 1.0,
                 reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.kl_weight = None if kl_weight is None else check_number(self._owner, "kl_weight",
                                                                     kl_weight, low=0.0)
        self.neg_ratio = check_number(self._owner, "neg_ratio", neg_ratio, low=0.0, low_open=True)

    def forward(self, z: Tensor, mu: Tensor, logstd: Tensor, pos_edge_index: Tensor,
                neg_edge_index: Tensor | None = None) -> Tensor:
        owner = self._owner
        check_tensor(owner, "z", z, ndim=2)
        check_tensor(owner, "mu", mu, ndim=2)
        check_tensor(owner, "logstd", logstd, ndim=2)
        check_same_shape(owner, "mu", mu, "logstd", logstd)
        # z is sampled from (mu, logstd): another row count silently set the KL's 1/N to mu's rows
        check_same_shape(owner, "z", z, "mu", mu)
        n = z.size(0)
        pos_ei = _check_edges(owner, "pos_edge_index", pos_edge_index, n)
        if neg_edge_index is None:
            neg_edge_index = _sample_negatives(pos_ei, n, self.neg_ratio)
        neg_ei = _check_edges(owner, "neg_edge_index", neg_edge_index, n)
        recon = _pos_neg(self.reduction, F.softplus(-_dot(z, pos_ei)), F.softplus(_dot(z, neg_ei)))
        logstd = logstd.clamp(max=MAX_LOGSTD)
        kl = -0.5 * (1 + 2 * logstd - mu ** 2 - logstd.exp() ** 2).sum(1)
        weight = 1.0 / mu.size(0) if self.kl_weight is None else self.kl_weight
        return recon + weight * (kl.mean() if self.reduction == "mean" else kl.sum())

    def example_inputs(self, dtype=torch.float64, generator=None):
        z, mu, logstd = (torch.randn(6, 4, dtype=dtype, generator=generator).requires_grad_()
                         for _ in range(3))
        return (z, mu, logstd, _edges(6, 8, generator), _edges(6, 8, generator)), {}


@LOSSES.register("dgi", aliases=("deep_graph_infomax", "infomax"), kind="graph")
class DGILoss(_GraphLoss):
    r"""Deep Graph Infomax objective with a learnable bilinear discriminator.

    With patch embeddings :math:`\mathbf{h}_i`, corrupted ones
    :math:`\tilde{\mathbf{h}}_j`, the summary :math:`\mathbf{s}` (default
    :math:`\sigma(\frac{1}{N}\sum_i \mathbf{h}_i)`) and
    :math:`D(\mathbf{h}, \mathbf{s}) = \mathbf{h}^{\top}\mathbf{W}\mathbf{s}`:

    .. math::
        \mathcal{L} = \frac{1}{N}\sum_{i} \log\big(1 + e^{-D(\mathbf{h}_i, \mathbf{s})}\big)
        + \frac{1}{M}\sum_{j} \log\big(1 + e^{D(\tilde{\mathbf{h}}_j, \mathbf{s})}\big)

    :math:`\mathbf{W}` (``weight``, :math:`d \times d`) is a ``Parameter`` the
    Trainer optimises with the model. ``"none"`` returns the per-node terms,
    real nodes first, :math:`(N + M,)`.

    Call: ``loss(pos_z, neg_z, summary=None)``.

    Args:
        hidden_channels: :math:`d`.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    example_init = {"hidden_channels": 4}
    contrastive_inputs = "corrupted"  # the contrastive task: loss(model(x, A), model(x shuffled, A))

    def __init__(self, hidden_channels: int, reduction: str = "mean") -> None:
        super().__init__(reduction)
        if isinstance(hidden_channels, bool) or not isinstance(hidden_channels, int) or hidden_channels < 1:
            raise ValidationError(f"{self._owner}: hidden_channels must be a positive int, got "
                                  f"{hidden_channels!r}.")
        self.hidden_channels = hidden_channels
        self.weight = nn.Parameter(torch.empty(hidden_channels, hidden_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_channels)
        nn.init.uniform_(self.weight, -bound, bound)

    def discriminate(self, z: Tensor, summary: Tensor) -> Tensor:
        """Logits :math:`\\mathbf{h}^{\\top}\\mathbf{W}\\mathbf{s}` of each row of ``z``."""
        # in z's dtype, as W: a summary of another dtype (pos_z.float().mean(0) for bfloat16 z) failed in matmul
        return z @ (self.weight.to(z.dtype) @ summary.to(z.dtype))

    def forward(self, pos_z: Tensor, neg_z: Tensor, summary: Tensor | None = None) -> Tensor:
        owner, d = self._owner, self.hidden_channels
        for name, t in (("pos_z", pos_z), ("neg_z", neg_z)):
            check_tensor(owner, name, t, ndim=2, device_of=None if t is pos_z else ("pos_z", pos_z))
            if t.size(1) != d:
                raise ValidationError(f"{owner}: {name} has {t.size(1)} features but hidden_channels={d}; "
                                      f"build the loss with hidden_channels={t.size(1)}.")
        if summary is None:
            if pos_z.size(0) == 0:  # the mean of no rows is NaN, which the summary check blamed on training
                raise ValidationError(f"{owner}: pos_z has no rows, so the default summary (the sigmoid of their "
                                      f"mean) is undefined; pass the embeddings of at least one node, or summary=.")
            summary = torch.sigmoid(pos_z.mean(0))
        check_tensor(owner, "summary", summary, ndim=1, device_of=("pos_z", pos_z))
        if summary.numel() != d:
            raise ValidationError(f"{owner}: summary must have {d} entries, got {summary.numel()}.")
        pos = self.discriminate(pos_z, summary)
        neg = self.discriminate(neg_z, summary)
        return _pos_neg(self.reduction, F.softplus(-pos), F.softplus(neg))

    def example_inputs(self, dtype=torch.float64, generator=None):
        d = self.hidden_channels
        return tuple(torch.randn(6, d, dtype=dtype, generator=generator).requires_grad_()
                     for _ in range(2)), {}
