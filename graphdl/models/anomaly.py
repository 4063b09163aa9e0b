r"""Node anomaly detectors: auto-encoder reconstruction error (DOMINANT) and latent-space distance.

**DOMINANT** (Ding et al., SDM 2019; PyGOD's ``DOMINANT``): a GNN encoder
:math:`\mathbf{Z} = \mathrm{GNN}_{\text{enc}}(\mathbf{X}, \mathbf{A})`, an
attribute decoder :math:`\hat{\mathbf{X}} = \mathrm{GNN}_{\text{att}}(\mathbf{Z}, \mathbf{A})`
and a structure decoder :math:`\hat{\mathbf{A}} = \mathbf{H}\mathbf{H}^{\top}`
with :math:`\mathbf{H} = \mathrm{GNN}_{\text{str}}(\mathbf{Z}, \mathbf{A})`
(optionally :math:`\sigma(\cdot)`). A node's score is its reconstruction error

.. math::
    s_i = \alpha\,\lVert \mathbf{x}_i - \hat{\mathbf{x}}_i \rVert_2
        + (1 - \alpha)\,\lVert \mathbf{a}_i - \hat{\mathbf{a}}_i \rVert_2

(:class:`DominantLoss`; training minimises :math:`\frac{1}{N}\sum_i s_i`).
:math:`\mathbf{a}_i` is row :math:`i` of the binary adjacency matrix (no self
loops are added; duplicate edges count once). For a batch of graphs (images as
grid graphs, sequences as chains) the structure is reconstructed within each
graph: :math:`\mathbf{a}_i` and :math:`\hat{\mathbf{a}}_i` are rows of that
graph's block.

**Latent distance** (:class:`LatentDistanceDetector`): an auto-encoder
(node-wise MLP codes by default, or DOMINANT's) trained by reconstruction, that
scores nodes by their code's distance to

* ``mode="neighbors"``: the mean embedding of the node's in-neighbours
  :math:`\mathcal{N}(i)` (self loops left out),
  :math:`s_i = \lVert \mathbf{z}_i - \frac{1}{|\mathcal{N}(i)|}\sum_{j \in \mathcal{N}(i)} \mathbf{z}_j \rVert_2`
  (0 for an isolated node);
* ``mode="knn"``: its ``k`` nearest other nodes of the same graph in latent
  space, :math:`s_i = \frac{1}{k}\sum_{j \in \mathrm{kNN}(i)} \lVert \mathbf{z}_i - \mathbf{z}_j \rVert_2`.

**MLP auto-encoder** (:class:`MLPAutoEncoder`): the non-graph baseline,
:math:`s_i = \lVert \mathbf{x}_i - \mathrm{MLP}(\mathbf{x}_i) \rVert_2`.

All three are trained by the ``anomaly`` task (:class:`AnomalyTask`):
unsupervised full-batch training, and ROC-AUC of the scores against injected
labels (``data.y_outlier``, see :mod:`graphdl.models.outliers`) for evaluation.

>>> from graphdl.models.outliers import inject_outliers
>>> graph = inject_outliers(cora, m=10, n_structural=7, n_contextual=70, k=50, seed=0)
>>> model = DOMINANT(graph.num_features)
>>> Trainer(model, loss="dominant", task="anomaly", lr=0.004, epochs=100,
...         monitor="train_loss").fit(graph).best["all_rocauc"]
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, remove_self_loops, scatter, to_dense_adj, to_dense_batch

from graphdl.errors import ConfigError, ValidationError
from graphdl.losses import LOSSES
from graphdl.losses.base import Loss, check_number, check_tensor
from graphdl.models import MODELS, resolve
from graphdl.models.gnn import GNN
from graphdl.train.metrics import Metric
from graphdl.train.tasks import TASKS, Task, loss_name, model_inputs, refuse_model, to_device, unwrap_model
from graphdl.validate import all_finite, check_node_features, owned_by, require_int, scans_enabled

__all__ = [
    "AEOutput",
    "DominantLoss",
    "DOMINANT",
    "LatentDistanceDetector",
    "MLPAutoEncoder",
    "AnomalyTask",
    "adjacency_rows",
    "gram_rows",
    "neighbor_distance",
    "knn_distance",
]


class AEOutput(NamedTuple):
    """What a detector's forward returns."""

    x_hat: Tensor  #: reconstructed attributes ``(N, F)``
    s_hat: Tensor | None  #: reconstructed adjacency rows ``(N, N)`` or ``(N, M)`` per graph; ``None`` without
    z: Tensor  #: node embeddings ``(N, d)``


# ----------------------------------------------------------------------------- dense structure helpers
def _single(batch: Tensor | None) -> bool:
    return batch is None or batch.numel() == 0 or int(batch.max()) == 0


def adjacency_rows(edge_index: Tensor, num_nodes: int, batch: Tensor | None = None) -> Tensor:
    r"""Binary adjacency rows :math:`\mathbf{a}_i` (duplicates counted once).

    ``(N, N)`` for one graph; for a batch (``batch`` sorted, as PyG batches
    are) row :math:`i` holds node :math:`i`'s row of its own graph's block,
    zero-padded to the largest graph: ``(N, M)``.
    """
    if _single(batch):
        return to_dense_adj(edge_index, max_num_nodes=num_nodes)[0].clamp_(max=1.0)
    _, mask = to_dense_batch(torch.zeros(num_nodes, 1, device=edge_index.device), batch)
    return to_dense_adj(edge_index, batch, max_num_nodes=mask.size(1))[mask].clamp_(max=1.0)


def gram_rows(h: Tensor, batch: Tensor | None = None) -> Tensor:
    r"""Rows of :math:`\mathbf{H}\mathbf{H}^{\top}` (within each graph of a batch), aligned with :func:`adjacency_rows`."""
    if _single(batch):
        return h @ h.t()
    dense, mask = to_dense_batch(h, batch)  # (B, M, d), padding rows are zero
    return (dense @ dense.transpose(1, 2))[mask]  # (N, M); padded columns are h_i . 0 = 0


def _column_mask(batch: Tensor) -> Tensor:
    """``(N, M)``: which columns of a node's padded row belong to its graph."""
    counts = torch.bincount(batch)
    return torch.arange(int(counts.max()), device=batch.device)[None, :] < counts[batch][:, None]


def neighbor_distance(z: Tensor, edge_index: Tensor) -> Tensor:
    r""":math:`\lVert \mathbf{z}_i - \operatorname{mean}_{j \in \mathcal{N}(i)} \mathbf{z}_j \rVert_2` over in-neighbours (self loops left out; 0 if isolated).

    :math:`\mathcal{N}(i)` is a set: a duplicated edge (an injected clique edge that already existed) counts once,
    as in :func:`adjacency_rows`.
    """
    edge_index, _ = remove_self_loops(edge_index)
    edge_index = coalesce(edge_index, num_nodes=z.size(0))  # a repeated edge weighed its neighbour twice
    src, dst = edge_index
    mean = scatter(z[src], dst, dim=0, dim_size=z.size(0), reduce="mean")
    has = torch.zeros(z.size(0), dtype=torch.bool, device=z.device)
    has[dst] = True
    return torch.where(has, (z - mean).norm(dim=-1), torch.zeros((), device=z.device, dtype=z.dtype))


def knn_distance(z: Tensor, k: int, batch: Tensor | None = None, chunk: int = 1024) -> Tensor:
    r"""Mean distance from :math:`\mathbf{z}_i` to its ``k`` nearest other nodes of the same graph.

    A graph with fewer than ``k + 1`` nodes uses all of its other nodes.
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:  # k=0 gave all-zero scores
        raise ValidationError(f"knn_distance: k (the number of nearest nodes averaged) must be an int >= 1, "
                              f"got {k!r}")
    if _single(batch):
        n = z.size(0)
        kk = min(k, n - 1)
        if kk < 1:
            return z.new_zeros(n)
        out = []
        for start in range(0, n, chunk):
            d = torch.cdist(z[start:start + chunk], z)
            rows = torch.arange(start, min(start + chunk, n), device=z.device)
            d[rows - start, rows] = float("inf")
            out.append(d.topk(kk, dim=1, largest=False).values.mean(dim=1))
        return torch.cat(out)
    dense, mask = to_dense_batch(z, batch)  # (B, M, d)
    d = torch.cdist(dense, dense)  # (B, M, M)
    m = d.size(1)
    d = d.masked_fill(~mask[:, None, :], float("inf"))
    d = d.masked_fill(torch.eye(m, dtype=torch.bool, device=z.device)[None], float("inf"))
    counts = mask.sum(1)  # nodes per graph
    kk = min(k, m - 1)
    if kk < 1:
        return z.new_zeros(z.size(0))
    near = d.topk(kk, dim=2, largest=False).values  # (B, M, kk), inf where a graph is too small
    usable = torch.clamp(counts - 1, max=kk).clamp(min=1)  # (B,)
    finite = torch.isfinite(near)
    mean = near.masked_fill(~finite, 0.0).sum(2) / usable[:, None]
    return mean[mask]


# ----------------------------------------------------------------------------- loss
@LOSSES.register("dominant", aliases=("double_reconstruction",), kind="graph")
class DominantLoss(Loss):
    r"""DOMINANT's attribute + structure reconstruction error, per node or averaged.

    .. math::
        s_i = \alpha\,\lVert \mathbf{x}_i - \hat{\mathbf{x}}_i \rVert_2
            + (1 - \alpha)\,\lVert \mathbf{a}_i - \hat{\mathbf{a}}_i \rVert_2,
        \qquad \mathcal{L} = \frac{1}{N}\sum_i s_i

    (PyGOD's ``double_recon_loss`` with ``weight`` :math:`=\alpha` and no
    positive re-weighting). Without a structure reconstruction
    (``s_hat=None``, an MLP auto-encoder) :math:`s_i = \lVert \mathbf{x}_i -
    \hat{\mathbf{x}}_i \rVert_2`. ``"none"`` returns the scores :math:`(N,)`.

    Call: ``loss(x, x_hat, s=None, s_hat=None)`` with ``s``/``s_hat`` the
    adjacency rows (:func:`adjacency_rows`, :func:`gram_rows`).

    Args:
        alpha: :math:`\alpha \in [0, 1]`, the weight of the attribute error.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    kind = "graph"

    def __init__(self, alpha: float = 0.5, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.alpha = check_number(self._owner, "alpha", alpha, low=0.0, high=1.0,
                                  hint="alpha weighs the attribute error against the structure error.")

    def node_scores(self, x: Tensor, x_hat: Tensor, s: Tensor | None = None, s_hat: Tensor | None = None) -> Tensor:
        """The per-node scores :math:`s_i`, shape ``(N,)``."""
        owner = self._owner
        check_tensor(owner, "x", x, ndim=2)
        check_tensor(owner, "x_hat", x_hat, ndim=2)
        if x.shape != x_hat.shape:
            raise ValidationError(f"{owner}: x and x_hat must have the same shape, got {tuple(x.shape)} and "
                                  f"{tuple(x_hat.shape)}")
        attr = torch.linalg.vector_norm(x - x_hat, dim=1)  # zero gradient (not NaN) at a perfect fit
        if s_hat is None:
            return attr
        # unchecked, NaN in s_hat gave a NaN loss without a word and a bool adjacency failed inside torch
        check_tensor(owner, "s_hat", s_hat, ndim=2)
        if s is not None:
            check_tensor(owner, "s", s, ndim=2)
        if s is None or s.shape != s_hat.shape or s.size(0) != x.size(0):
            raise ValidationError(f"{owner}: s and s_hat must be adjacency rows of the same shape with one row per "
                                  f"node ({x.size(0)}), got {None if s is None else tuple(s.shape)} and "
                                  f"{tuple(s_hat.shape)}")
        struct = torch.linalg.vector_norm(s - s_hat, dim=1)
        return self.alpha * attr + (1 - self.alpha) * struct

    def forward(self, x: Tensor, x_hat: Tensor, s: Tensor | None = None, s_hat: Tensor | None = None) -> Tensor:
        return self._reduce(self.node_scores(x, x_hat, s, s_hat))

    def example_inputs(self, dtype: torch.dtype = torch.float64,
                       generator: torch.Generator | None = None) -> tuple[tuple, dict]:
        x = torch.rand(5, 3, dtype=dtype, generator=generator)
        s = (torch.rand(5, 5, dtype=dtype, generator=generator) > 0.5).to(dtype)
        return (x, torch.rand(5, 3, dtype=dtype, generator=generator).requires_grad_(), s,
                torch.rand(5, 5, dtype=dtype, generator=generator).requires_grad_()), {}


# ----------------------------------------------------------------------------- models
def _check_batch(owner: str, batch: Any, num_nodes: int | None) -> None:
    """``batch``: a sorted 1-d long tensor, one graph index per node, as PyG's batches give. The GNN encoder
    never sees it, and :func:`gram_rows` read an unsorted or short one into rows of the wrong nodes (or a
    wrong number of rows) without a word."""
    if not isinstance(batch, Tensor) or batch.dim() != 1 or batch.dtype != torch.long:
        got = f"{tuple(batch.shape)} {batch.dtype}" if isinstance(batch, Tensor) else type(batch).__name__
        raise ValidationError(f"{owner}: batch must be a 1-d long tensor (the graph of each node), got {got}; "
                              f"use data.batch of a torch_geometric Batch")
    if num_nodes is not None and batch.numel() != num_nodes:
        raise ValidationError(f"{owner}: batch has {batch.numel()} entries but there are {num_nodes} nodes; give "
                              f"one graph index per node")
    if scans_enabled() and batch.numel() > 1 and bool((batch[1:] < batch[:-1]).any()):
        raise ValidationError(f"{owner}: batch must be sorted (the nodes of graph 0 first, then graph 1, ...), as "
                              f"torch_geometric's Batch.from_data_list gives it; reorder the nodes by graph")
    if scans_enabled() and batch.numel() and int(batch[0]) < 0:  # sorted: the first entry is the least
        raise ValidationError(f"{owner}: batch holds negative graph indices (from {int(batch[0])}); number the "
                              f"graphs 0, 1, ..., as Batch.from_data_list(graphs).batch does")


@MODELS.register("dominant", summary="DOMINANT: GCN auto-encoder scoring nodes by attribute + structure "
                                     "reconstruction error (Ding et al., 2019)")
class DOMINANT(nn.Module):
    r"""DOMINANT auto-encoder (see the module docstring).

    Args:
        in_channels: Node feature size :math:`F`.
        hidden_channels: Embedding and hidden width (PyGOD: 64).
        num_layers: Total message-passing layers: :math:`\lfloor L/2 \rfloor`
            in the encoder, :math:`\lceil L/2 \rceil` in the attribute decoder
            and :math:`\lceil L/2 \rceil - 1` before the structure decoder's
            inner product (PyGOD's split; default 4).
        layer: Registered layer name of every GNN stack (``gcn`` as in PyGOD).
        dropout: Dropout between layers.
        activation: Activation by name.
        sigmoid_s: :math:`\hat{\mathbf{A}} = \sigma(\mathbf{H}\mathbf{H}^{\top})`
            instead of the raw inner products (PyGOD's default: raw).
        layer_kwargs: Extra arguments of every layer.
    """

    def __init__(self, in_channels: int, hidden_channels: int = 64, num_layers: int = 4, layer: str = "gcn",
                 dropout: float = 0.0, activation: str = "relu", sigmoid_s: bool = False,
                 layer_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        # an encoder and a decoder; the GNN stacks would name their own halves of the count (4.0 -> "got 2.0")
        require_int("DOMINANT", "num_layers", num_layers, minimum=2)
        enc, dec = num_layers // 2, num_layers - num_layers // 2
        common = dict(layer=layer, hidden_channels=hidden_channels, dropout=dropout, activation=activation,
                      layer_kwargs=layer_kwargs)
        self.encoder = GNN(in_channels=in_channels, out_channels=hidden_channels, num_layers=enc, **common)
        self.attr_decoder = GNN(in_channels=hidden_channels, out_channels=in_channels, num_layers=dec, **common)
        self.struct_decoder = (GNN(in_channels=hidden_channels, out_channels=hidden_channels, num_layers=dec - 1,
                                   **common) if dec > 1 else None)
        self.sigmoid_s = sigmoid_s
        self.in_channels, self.hidden_channels = in_channels, hidden_channels

    def extra_repr(self) -> str:
        return f"sigmoid_s={self.sigmoid_s}"

    def reset_parameters(self) -> None:
        for module in (self.encoder, self.attr_decoder, self.struct_decoder):
            if module is not None:
                module.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None,
                batch: Tensor | None = None) -> AEOutput:
        if isinstance(x, Tensor) and x.dim() != 2:  # H H^T failed deep inside ("t() expects <= 2 dimensions")
            raise ValidationError(f"DOMINANT: x must have shape (num_nodes, num_features), got {tuple(x.shape)}; "
                                  f"batch graphs as one graph with a batch vector (torch_geometric's Batch)")
        if batch is not None:
            _check_batch("DOMINANT", batch, x.size(0) if isinstance(x, Tensor) else None)
        z = self.encoder(x, edge_index, edge_weight=edge_weight)
        x_hat = self.attr_decoder(z, edge_index, edge_weight=edge_weight)
        h = z if self.struct_decoder is None else self.struct_decoder(z, edge_index, edge_weight=edge_weight)
        s_hat = gram_rows(h, batch)
        if self.sigmoid_s:
            s_hat = torch.sigmoid(s_hat)
            if not _single(batch):
                s_hat = s_hat * _column_mask(batch)
        return AEOutput(x_hat, s_hat, z)


@MODELS.register("latent_distance", summary="Auto-encoder scoring nodes by latent distance to their neighbours "
                                            "(or k nearest nodes)")
class LatentDistanceDetector(nn.Module):
    r"""An auto-encoder scored by distance in its latent space (see the module docstring).

    The auto-encoder is trained by its reconstruction loss (``dominant``); the
    score ignores the reconstruction and measures, on the codes
    :math:`\mathbf{z}_i`, the distance to the mean code of the in-neighbours
    (``mode="neighbors"``) or to the ``k`` nearest codes of the same graph
    (``mode="knn"``).

    With ``encoder="mlp"`` (default) the codes are node-wise,
    :math:`\mathbf{z}_i = \mathrm{MLP}(\mathbf{x}_i)` (an
    :class:`MLPAutoEncoder`), so the graph enters through the neighbour
    comparison: a node whose code departs from its neighbours' is anomalous.
    With ``encoder="gnn"`` the codes are DOMINANT's GNN embeddings, which
    already average each node with its neighbours (the neighbour distance of
    a smoothed code is small by construction).

    Args:
        in_channels: Node feature size.
        mode: ``"neighbors"`` or ``"knn"``.
        k: Neighbours for ``mode="knn"``.
        encoder: ``"mlp"`` (:class:`MLPAutoEncoder`) or ``"gnn"`` (:class:`DOMINANT`).
        **kwargs: Arguments of that auto-encoder (``hidden_channels``, ``num_layers``, ...).
    """

    def __init__(self, in_channels: int, mode: str = "neighbors", k: int = 10, encoder: str = "mlp",
                 **kwargs: Any) -> None:
        super().__init__()
        if mode not in ("neighbors", "knn"):
            raise ConfigError(f"LatentDistanceDetector: mode must be 'neighbors' or 'knn', got {mode!r}")
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ConfigError(f"LatentDistanceDetector: k must be an int >= 1, got {k!r}")
        if encoder not in ("mlp", "gnn"):
            raise ConfigError(f"LatentDistanceDetector: encoder must be 'mlp' or 'gnn', got {encoder!r}")
        self.autoencoder = (MLPAutoEncoder(in_channels, **kwargs) if encoder == "mlp"
                            else DOMINANT(in_channels, **kwargs))
        self.mode, self.k, self.encoder_kind = mode, int(k), encoder

    def reset_parameters(self) -> None:
        self.autoencoder.reset_parameters()

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}" + (f", k={self.k}" if self.mode == "knn" else "")

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None,
                batch: Tensor | None = None) -> AEOutput:
        if self.encoder_kind == "mlp":
            self.autoencoder._check_features(x, type(self).__name__)  # errors name the model the user built
            return self.autoencoder(x, edge_index)
        return self.autoencoder(x, edge_index, edge_weight=edge_weight, batch=batch)

    def anomaly_score(self, out: AEOutput, data: Data) -> Tensor:
        """Latent-distance scores ``(N,)`` of a forward output on ``data``."""
        if self.mode == "neighbors":
            return neighbor_distance(out.z, data.edge_index)
        return knn_distance(out.z, self.k, data.batch if "batch" in data else None)


@MODELS.register("mlp_ae", aliases=("mlp_autoencoder",),
                 summary="MLP auto-encoder on node features (non-graph anomaly baseline)")
class MLPAutoEncoder(nn.Module):
    r"""Feature-only auto-encoder: :math:`\hat{\mathbf{x}}_i = \mathrm{MLP}_{\text{dec}}(\mathrm{MLP}_{\text{enc}}(\mathbf{x}_i))`.

    The same widths as :class:`DOMINANT` with linear layers in place of
    message passing (PyGOD's ``MLPAE``, whose PyG ``MLP`` also batch-normalises
    the hidden layers; none here); the edges are ignored, so the score is
    the attribute error alone.
    """

    def __init__(self, in_channels: int, hidden_channels: int = 64, num_layers: int = 4, dropout: float = 0.0,
                 activation: str = "relu") -> None:
        super().__init__()
        require_int("MLPAutoEncoder", "in_channels", in_channels)  # torch failed deep inside, or built 0 wide
        require_int("MLPAutoEncoder", "num_layers", num_layers, minimum=2)
        require_int("MLPAutoEncoder", "hidden_channels", hidden_channels)  # 0 built a code of width 0
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0.0 <= dropout < 1.0:
            # 1.0 zeroed every hidden unit in training; a string failed at the first forward
            raise ConfigError(f"MLPAutoEncoder's dropout must lie in [0, 1), got {dropout!r}")
        enc, dec = num_layers // 2, num_layers - num_layers // 2
        dims = [in_channels] + [hidden_channels] * enc + [hidden_channels] * (dec - 1) + [in_channels]
        self.lins = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.num_encoder_layers = enc
        self.act = resolve.activation(activation)
        self.dropout = dropout

    def reset_parameters(self) -> None:
        for lin in self.lins:
            lin.reset_parameters()

    def extra_repr(self) -> str:
        return f"dropout={self.dropout}"

    def _check_features(self, x: Any, owner: str | None = None) -> None:
        """Float ``(N, in_channels)`` features of the weights' dtype and device, as the GNN models check them
        (torch's own error, "mat1 and mat2 must have the same dtype", names neither the input nor the fix)."""
        owner, ref = owner or type(self).__name__, self.lins[0].weight
        with owned_by(owner):
            check_node_features(x, ref.size(1), ref)
        if x.device != ref.device:
            raise ValidationError(f"{owner}: x is on {x.device} but the parameters are on {ref.device}; move the "
                                  f"graph with data.to(device) or the module with .to(device)")
        if scans_enabled() and not all_finite(x):  # as the GNN models scan x: NaN gave NaN scores without a word
            bad = int((~torch.isfinite(x)).reshape(-1, x.size(-1)).any(-1).sum())
            raise ValidationError(f"{owner}: x holds NaN or infinite values in {bad} rows; impute or drop them")

    def forward(self, x: Tensor, edge_index: Tensor | None = None) -> AEOutput:
        self._check_features(x)
        h, z, last = x, x, len(self.lins) - 1
        for i, lin in enumerate(self.lins):
            h = lin(h)
            if i == self.num_encoder_layers - 1:
                z = h  # the code: the encoder's plain last layer, fed as is to the decoder
            elif i != last:
                h = F.dropout(self.act(h), self.dropout, self.training)
        return AEOutput(h, None, z)


# ----------------------------------------------------------------------------- task
@TASKS.register("anomaly", aliases=("outlier_detection",),
                summary="Unsupervised node anomaly detection; ROC-AUC against outlier labels when the graph has them")
class AnomalyTask(Task):
    r"""Unsupervised node anomaly detection on one graph or a batch of graphs.

    Training never sees labels: each epoch is one full-batch step of the loss
    (``dominant``: ``loss(x, x_hat, a, a_hat)`` with the adjacency rows
    :func:`adjacency_rows` of ``data.edge_index``, computed once). A node's
    score is ``model.anomaly_score(out, data)`` when the model defines it
    (:class:`LatentDistanceDetector`), else the loss's per-node term
    (``loss.node_scores``: the reconstruction error).

    Evaluation logs ``<split>_rocauc`` of the scores against the labels
    ``data[label]`` (``y_outlier`` from :mod:`graphdl.models.outliers`;
    ``splits`` may give the label tensor instead). The split ``all`` holds
    every node. A graph without labels trains all the same, with nothing to
    evaluate: ``Trainer.predict()`` then gives the scores. There is no
    validation split by default, so fit with ``monitor="train_loss"`` (the
    Trainer then keeps the epoch of lowest training loss; labels select
    nothing). With ``val_fraction > 0`` the nodes
    are also split, stratified, into ``val`` (labels may select the epoch:
    the setting of a few known anomalies) and ``test``.

    Args:
        metric: ``rocauc`` (default) or ``ap``.
        label: Name of the label field of ``data``.
        val_fraction: Fraction of nodes in ``val`` (0: no ``val``/``test`` splits).
    """

    level = "node"
    default_loss = "dominant"
    #: The monitor for the unsupervised setting (no labelled split).
    default_monitor = "train_loss"

    def __init__(self, metric: str | Metric = "rocauc", label: str = "y_outlier", val_fraction: float = 0.0) -> None:
        super().__init__(metric)
        if self.metric.name not in ("rocauc", "ap") or self.metric.pairs:  # scores rank nodes; no threshold
            given = metric if isinstance(metric, str) else self.metric.name
            raise ConfigError(f"the anomaly task ranks nodes by their anomaly scores, which have no threshold; "
                              f"metric must be 'rocauc' or 'ap', got {given!r}")
        real = isinstance(val_fraction, numbers.Real) and not isinstance(val_fraction, bool)
        if not (real and 0.0 <= val_fraction < 1.0):  # a string failed in the comparison, naming nothing
            raise ConfigError(f"val_fraction must lie in [0, 1), got {val_fraction!r}")
        self.label, self.val_fraction = label, val_fraction
        self.loss_fn: nn.Module | None = None

    @staticmethod
    def _check_graph(data: Any) -> None:
        """``data`` must be one graph (or a Batch) with float node features to reconstruct."""
        from graphdl.validate import check_graph

        if not isinstance(data, Data):
            raise ValidationError(f"the anomaly task needs one torch_geometric Data graph (or a Batch of graphs), "
                                  f"got {type(data).__name__}")
        check_graph(data)
        if data.x is None or not data.x.is_floating_point():
            raise ValidationError("the anomaly task needs floating-point node features data.x to reconstruct")

    def _set_graph(self, data: Data, device: torch.device | str) -> None:
        """Hold the checked graph on ``device`` with its adjacency rows: all that scoring needs (no labels)."""
        self.device = torch.device(device)
        self.data = to_device(data, self.device)
        batch = self.data.batch if "batch" in self.data else None
        self.s = adjacency_rows(self.data.edge_index, self.data.num_nodes, batch)

    def setup(self, data: Data, splits: Tensor | None = None, device: torch.device | str = "cpu") -> None:
        self._check_graph(data)
        if data.num_nodes == 0:  # the mean of no node scores: a NaN training loss at epoch 0
            raise ValidationError("the anomaly task trains on the graph's nodes, but the graph has none "
                                  "(num_nodes=0); give it a graph with at least one node")
        labels = splits if isinstance(splits, Tensor) else (data[self.label] if self.label in data else None)
        if labels is None and self.val_fraction > 0:
            raise ValidationError(f"val_fraction={self.val_fraction} splits the nodes by their outlier labels, but "
                                  f"the graph has none: set data.{self.label} (1 outlier, 0 inlier) or pass the "
                                  f"label tensor as splits, or leave val_fraction at 0")
        if labels is not None:
            source = "the labels given as splits" if isinstance(splits, Tensor) else f"data.{self.label}"
            labels = self._check_labels(labels, data.num_nodes, source)
        self._set_graph(data, device)
        self.labels = None if labels is None else labels.to(self.device)
        # without labels there is nothing to score: the run trains, and predict() gives the scores
        self.splits = {} if labels is None else {"all": torch.arange(self.data.num_nodes, device=self.device)}
        if self.val_fraction > 0:
            val, test = [], []
            for cls in (0, 1):  # stratified, under the Trainer's seed
                idx = (self.labels == cls).nonzero().view(-1)
                idx = idx[torch.randperm(idx.numel()).to(self.device)]
                cut = int(round(self.val_fraction * idx.numel()))
                val.append(idx[:cut])
                test.append(idx[cut:])
            self.splits["val"], self.splits["test"] = torch.cat(val), torch.cat(test)
            for name in ("val", "test"):  # else the first evaluation fails, in the metric, naming neither
                held = self.labels[self.splits[name]]
                outliers = int(held.sum())
                if outliers in (0, held.numel()):
                    raise ValidationError(
                        f"val_fraction={self.val_fraction} leaves {outliers} outliers among the {held.numel()} nodes "
                        f"of the {name} split, so its ROC-AUC is undefined; the graph has {int(self.labels.sum())} "
                        f"outliers: pick a val_fraction that puts outliers and inliers in both val and test, or "
                        f"leave val_fraction at 0")

    def _check_labels(self, labels: Any, num_nodes: int, source: str) -> Tensor:
        """Labels as a ``(N,)`` long tensor of 0 (inlier) and 1 (outlier), both present: anything else was
        cast or scored into a meaningless ROC-AUC (scores 0.3 became inliers), or none at all."""
        if not isinstance(labels, Tensor):
            raise ValidationError(f"outlier labels must be a tensor, got {type(labels).__name__}")
        labels = labels.reshape(-1)
        if labels.numel() != num_nodes:
            raise ValidationError(f"outlier labels have {labels.numel()} entries but the graph has "
                                  f"{num_nodes} nodes")
        odd = labels[(labels != 0) & (labels != 1)]
        if odd.numel():
            raise ValidationError(f"outlier labels must be 0 (inlier) or 1 (outlier), but found {odd.numel()} "
                                  f"other values in {source}, e.g. {odd[0].item()!r}; threshold scores or map the "
                                  f"outlier types to 0/1 first")
        labels = labels.long()
        outliers = int(labels.sum())
        if outliers in (0, num_nodes):
            raise ValidationError(f"{outliers} of {num_nodes} nodes are outliers in {source}, so ROC-AUC is "
                                  f"undefined; it needs both outliers and inliers (delete the labels to train "
                                  f"without evaluation; Trainer.predict(graph) scores a graph without labels)")
        return labels

    def split_names(self) -> Sequence[str]:
        return tuple(self.splits)

    def check_loss(self, loss_fn: Any, kind: str | None) -> None:
        if not (hasattr(loss_fn, "node_scores") or kind in (None, "regression")):
            raise ConfigError(f"the anomaly task reconstructs node features and takes 'dominant' (attribute + "
                              f"structure error) or a regression loss on the attributes ('mse', 'l1', 'huber'), "
                              f"but {loss_name(loss_fn)} is a {kind} loss")
        super().check_loss(loss_fn, kind)
        self.loss_fn = loss_fn  # scores before any training step use the configured loss, not the default

    def train_batches(self) -> Iterable[Data]:
        return [self.data]

    def forward(self, model: nn.Module) -> AEOutput:
        out = model(self.data.x, self.data.edge_index, **model_inputs(model, self.data))
        if not isinstance(out, tuple) or len(out) != 3:
            raise ConfigError(f"the anomaly task needs a detector returning (x_hat, s_hat, z) (DOMINANT, "
                              f"LatentDistanceDetector, MLPAutoEncoder), got {type(out).__name__}")
        return AEOutput(*out)

    def _loss(self, loss_fn: nn.Module, out: AEOutput, reduce: bool) -> Tensor:
        if hasattr(loss_fn, "node_scores"):
            s = self.s if out.s_hat is not None else None
            # reduced as the loss reduces ("sum" too), not always averaged
            return loss_fn(self.data.x, out.x_hat, s, out.s_hat) if reduce else loss_fn.node_scores(
                self.data.x, out.x_hat, s, out.s_hat)
        if reduce:  # a plain regression loss (e.g. "mse") on the attributes
            return loss_fn(out.x_hat, self.data.x)
        return torch.linalg.vector_norm(self.data.x - out.x_hat, dim=1)

    def check_model(self, model: nn.Module) -> None:
        refuse_model("anomaly", model, "node", objectives=False, instead="use a detector such as dominant")

    def train_loss(self, model: nn.Module, batch: Data, loss_fn: nn.Module) -> Tensor:
        self.loss_fn = loss_fn
        return self._loss(loss_fn, self.forward(model), reduce=True)

    @torch.no_grad()
    def scores(self, model: nn.Module, loss_fn: nn.Module | None = None) -> Tensor:
        """Anomaly scores ``(N,)`` of every node (higher: more anomalous)."""
        was_training = model.training
        model.eval()
        try:
            out = self.forward(model)
        finally:
            model.train(was_training)
        inner = unwrap_model(model)
        if hasattr(inner, "anomaly_score"):
            return inner.anomaly_score(out, self.data)
        loss_fn = loss_fn or self.loss_fn or DominantLoss()
        return self._loss(loss_fn, out, reduce=False)

    @torch.no_grad()
    def predict(self, model: nn.Module) -> Tensor:
        return self.scores(model)

    @torch.no_grad()
    def predict_on(self, model: nn.Module, data: Any, splits: Any = None,
                   device: torch.device | str = "cpu") -> Tensor:
        """Anomaly scores ``(N,)`` of every node of ``data``. Scoring needs no labels, so ``data[label]`` (or
        ``splits``) is neither read nor checked: all-inlier or absent labels are fine here, unlike in evaluation."""
        self._check_graph(data)
        task = copy.copy(self)
        task._set_graph(data, device)
        task.labels, task.splits = None, {}
        return task.scores(model)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, splits: Sequence[str]) -> dict[str, float]:
        scores = self.scores(model)
        return {f"{split}_{self.metric.name}": self.metric(self.labels[self.splits[split]].float(),
                                                          scores[self.splits[split]])
                for split in splits}
