"""OGB's molecule encoders and convolutions (Hu et al., "Open Graph Benchmark", 2020).

The official OGB molecule examples (``examples/graphproppred/mol``) embed the
integer atom and bond features of ``ogbg-mol*`` datasets with ``AtomEncoder``
and ``BondEncoder`` and pass messages with a GIN and a GCN variant that add a
per-layer bond embedding to every message. This module provides the same
functions with the same parameters, as graphdl layers:

* :class:`AtomEncoder` / :class:`BondEncoder` - one embedding table per
  categorical feature, summed; same tables, same Xavier-uniform initialisation
  as ``ogb.graphproppred.mol_encoder``, stored as one concatenated table and
  looked up with a single ``embedding_bag`` (faster on CPU, and safe from
  :meth:`graphdl.models.gnn.GNN.reset_parameters`, which would otherwise
  re-initialise the ``nn.Embedding`` children from N(0, 1)).
* ``ogb_gin`` (:class:`OGBGINConv`) and ``ogb_gcn`` (:class:`OGBGCNConv`),
  registered with ``edge_attr="required"``. Each holds its own bond encoder, as
  OGB's convs do, so a stack built from them has OGB's parameter count.

With ``edge_dim=None`` (the default) the convs expect OGB's raw integer bond
features of shape ``(E, 3)``; with an integer ``edge_dim`` they take float edge
features of that width and map them with a linear layer instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import degree

from graphdl.errors import ValidationError
from graphdl.layers import LAYERS
from graphdl.layers.pyg import static_graph_error
from graphdl.validate import require_bool, require_int, scans_enabled

__all__ = ["AtomEncoder", "BondEncoder", "OGBGINConv", "OGBGCNConv", "atom_feature_dims", "bond_feature_dims"]


def atom_feature_dims() -> list[int]:
    """Category counts of OGB's 9 atom features (``ogb.utils.features``)."""
    from ogb.utils.features import get_atom_feature_dims

    return list(get_atom_feature_dims())


def bond_feature_dims() -> list[int]:
    """Category counts of OGB's 3 bond features (``ogb.utils.features``)."""
    from ogb.utils.features import get_bond_feature_dims

    return list(get_bond_feature_dims())


class CategoricalEncoder(nn.Module):
    r"""Sum of one embedding per categorical column.

    .. math::
        \mathbf{h}_i = \sum_{k=1}^{K} \mathbf{E}_k[x_{i,k}], \qquad
        \mathbf{E}_k \in \mathbb{R}^{C_k \times d}

    Each table :math:`\mathbf{E}_k` is initialised Xavier-uniform on its own
    shape :math:`(C_k, d)`, as OGB's encoders do. The tables are stored
    stacked in ``weight`` (``sum(C_k)`` rows); ``table(k)`` returns one.

    Args:
        emb_dim: Embedding width :math:`d`.
        feature_dims: Category count :math:`C_k` of each column.

    Shapes:
        - input: integer features :math:`(N, K)` (fewer columns are allowed,
          as OGB's encoders allow; the first columns are used)
        - output: :math:`(N, d)`
    """

    #: what to do with float features instead
    float_hint = "float features need a linear layer, not an embedding per category"

    def __init__(self, emb_dim: int, feature_dims: Sequence[int]) -> None:
        super().__init__()
        self.emb_dim = int(emb_dim)
        self.feature_dims = [int(d) for d in feature_dims]
        offsets = torch.tensor([0] + self.feature_dims[:-1]).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=False)
        self.weight = nn.Parameter(torch.empty(sum(self.feature_dims), self.emb_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            for k in range(len(self.feature_dims)):
                nn.init.xavier_uniform_(self.table(k))

    def table(self, k: int) -> Tensor:
        """The embedding table of column ``k`` (a view of ``weight``)."""
        start = int(self.offsets[k])
        return self.weight[start:start + self.feature_dims[k]]

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.size(1) > len(self.feature_dims):
            raise ValidationError(
                f"{type(self).__name__}: expected integer features of shape (N, <= {len(self.feature_dims)}), "
                f"got {tuple(x.shape)}")
        if x.is_floating_point():
            raise ValidationError(
                f"{type(self).__name__}: expected integer category ids (OGB's raw molecule features), got "
                f"dtype {x.dtype}; {self.float_hint}")
        if x.size(0) == 0:
            return self.weight.new_zeros(0, self.emb_dim)
        if scans_enabled():
            self._check_ids(x)
        index = x.long() + self.offsets[: x.size(1)]
        return F.embedding_bag(index, self.weight, mode="sum")

    def _check_ids(self, x: Tensor) -> None:
        """Each column's ids must index its own table (else they would silently read the next one's)."""
        low, high = x.amin(0).tolist(), x.amax(0).tolist()
        for k, (lo, hi) in enumerate(zip(low, high)):
            if lo < 0 or hi >= self.feature_dims[k]:
                raise ValidationError(
                    f"{type(self).__name__}: column {k} holds category ids in [{lo}, {hi}] but that feature has "
                    f"{self.feature_dims[k]} categories (valid: 0..{self.feature_dims[k] - 1}); give OGB's raw "
                    f"molecule features (ogb.utils.smiles2graph)")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.emb_dim}, feature_dims={self.feature_dims})"


class AtomEncoder(CategoricalEncoder):
    """OGB's atom encoder: the sum of one embedding per atom feature (9 features, 174 categories)."""

    float_hint = ("for float node features build the model without it (e.g. graph_gnn with "
                  "in_channels=<feature width>)")

    def __init__(self, emb_dim: int) -> None:
        super().__init__(emb_dim, atom_feature_dims())


class BondEncoder(CategoricalEncoder):
    """OGB's bond encoder: the sum of one embedding per bond feature (3 features, 13 categories)."""

    float_hint = "for float edge features give the layer an integer edge_dim instead"

    def __init__(self, emb_dim: int) -> None:
        super().__init__(emb_dim, bond_feature_dims())


class EdgeLinear(nn.Linear):
    """The linear map of float edge features that replaces the bond encoder when ``edge_dim`` is given."""

    def forward(self, edge_attr: Tensor) -> Tensor:
        if not edge_attr.is_floating_point() or edge_attr.dim() != 2 or edge_attr.size(1) != self.in_features:
            raise ValidationError(
                f"{type(self).__name__}: edge_attr must be float features of shape (num_edges, "
                f"edge_dim={self.in_features}), got {tuple(edge_attr.shape)} {edge_attr.dtype}; for OGB's integer "
                f"bond features build the layer with edge_dim=None")
        if edge_attr.dtype != self.weight.dtype:  # torch: "mat1 and mat2 must have the same dtype"
            raise ValidationError(
                f"{type(self).__name__}: edge_attr has dtype {edge_attr.dtype} but the parameters are "
                f"{self.weight.dtype}; convert with edge_attr.to({self.weight.dtype}) or the layer with "
                f".to({edge_attr.dtype})")
        return super().forward(edge_attr)


def _refuse_static_graph(conv: MessagePassing, x: Tensor) -> None:
    """OGB's convs take one (batched) graph: a static-graph ``(batch, num_nodes, features)`` ``x`` failed inside
    (the GIN MLP's BatchNorm1d, the GCN degree's ``x.size(0)``) or normalised the wrong axis without a word."""
    if isinstance(x, Tensor) and x.dim() > 2:
        raise ValidationError(static_graph_error(type(conv).__name__, tuple(x.shape),
                                                 "OGB's convs take no static-graph batch"))


def _edge_encoder(edge_dim: int | None, channels: int) -> nn.Module:
    if edge_dim is None:
        return BondEncoder(channels)
    if isinstance(edge_dim, bool) or not isinstance(edge_dim, int) or edge_dim < 1:
        raise ValidationError(f"edge_dim must be a positive int or None (OGB bond features), got {edge_dim!r}")
    return EdgeLinear(edge_dim, channels)


@LAYERS.register("ogb_gin", aliases=("gin_ogb",), edge_attr="required",
                 summary="GIN with bond embeddings, as in OGB's molecule examples (Hu et al., 2020)")
class OGBGINConv(MessagePassing):
    r"""GIN convolution with edge embeddings, as in OGB's molecule examples.

    .. math::
        \mathbf{x}^{\prime}_i = \mathrm{MLP}\Big((1 + \epsilon)\,\mathbf{x}_i +
        \sum_{j \in \mathcal{N}(i)} \mathrm{ReLU}\big(\mathbf{x}_j +
        \mathrm{enc}(\mathbf{e}_{j,i})\big)\Big)

    with :math:`\mathrm{MLP} = \mathrm{Linear}(F_{in}, 2F_{out}) \to
    \mathrm{BatchNorm} \to \mathrm{ReLU} \to \mathrm{Linear}(2F_{out}, F_{out})`,
    a learnable :math:`\epsilon` starting at 0, and :math:`\mathrm{enc}` OGB's
    :class:`BondEncoder` (width :math:`F_{in}`) or a linear map of float edge
    features. With :math:`F_{in} = F_{out} = d` it has OGB's parameters:
    :math:`4d^2 + 3d + 2\cdot 2d + 1 + 13d` for the bond encoder.

    Args:
        in_channels: Input node width :math:`F_{in}`.
        out_channels: Output node width :math:`F_{out}`.
        edge_dim: ``None`` for OGB's integer bond features (:class:`BondEncoder`),
            or the width of float edge features (a linear map).
        hidden_channels: MLP hidden width; default :math:`2F_{out}`.
        train_eps: Learn :math:`\epsilon` (OGB does).

    Shapes:
        - input: node features :math:`(|\mathcal{V}|, F_{in})`, edge indices
          :math:`(2, |\mathcal{E}|)`, edge features :math:`(|\mathcal{E}|, 3)`
          (integers) or :math:`(|\mathcal{E}|, D)`
        - output: node features :math:`(|\mathcal{V}|, F_{out})`
    """

    def __init__(self, in_channels: int, out_channels: int, edge_dim: int | None = None,
                 hidden_channels: int | None = None, train_eps: bool = True) -> None:
        super().__init__(aggr="add")
        self.in_channels, self.out_channels = in_channels, out_channels
        hidden = 2 * out_channels if hidden_channels is None else hidden_channels
        require_int("ogb_gin", "hidden_channels", hidden)  # 0 fell back to the default silently
        self.mlp = nn.Sequential(nn.Linear(in_channels, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                 nn.Linear(hidden, out_channels))
        if require_bool("ogb_gin", "train_eps", train_eps):
            self.eps = nn.Parameter(torch.zeros(1))
        else:
            self.register_buffer("eps", torch.zeros(1))
        self.edge_encoder = _edge_encoder(edge_dim, in_channels)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for module in self.mlp:
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        self.edge_encoder.reset_parameters()
        with torch.no_grad():
            self.eps.zero_()

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        _refuse_static_graph(self, x)
        if edge_attr is None:
            raise ValidationError("ogb_gin needs edge_attr (OGB bond features); the graph has none")
        edge_embedding = self.edge_encoder(edge_attr)
        out = self.propagate(edge_index, x=x, edge_attr=edge_embedding)
        return self.mlp((1 + self.eps) * x + out)

    def message(self, x_j: Tensor, edge_attr: Tensor) -> Tensor:
        return F.relu(x_j + edge_attr)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"


@LAYERS.register("ogb_gcn", aliases=("gcn_ogb",), edge_attr="required",
                 summary="GCN with bond embeddings, as in OGB's molecule examples (Hu et al., 2020)")
class OGBGCNConv(MessagePassing):
    r"""OGB's GCN convolution with edge embeddings.

    .. math::
        \mathbf{x}^{\prime}_i = \sum_{j \in \mathcal{N}(i)}
        \frac{\mathrm{ReLU}(\mathbf{W}\mathbf{x}_j + \mathbf{b} +
        \mathrm{enc}(\mathbf{e}_{j,i}))}{\sqrt{\hat d_j \hat d_i}}
        + \frac{\mathrm{ReLU}(\mathbf{W}\mathbf{x}_i + \mathbf{b} + \mathbf{r})}{\hat d_i}

    with :math:`\hat d_i = 1 + \deg(i)` (degree counted over the source row of
    ``edge_index``, as OGB does), a learned root embedding :math:`\mathbf{r}`
    and :math:`\mathrm{enc}` OGB's :class:`BondEncoder` of width
    :math:`F_{out}`. Parameters: :math:`F_{in}F_{out} + F_{out}` (linear)
    :math:`+ F_{out}` (root) :math:`+ 13F_{out}` (bond encoder).

    Args:
        in_channels: Input node width :math:`F_{in}`.
        out_channels: Output node width :math:`F_{out}`.
        edge_dim: ``None`` for OGB's integer bond features, or the width of
            float edge features (a linear map).

    Shapes:
        - input: node features :math:`(|\mathcal{V}|, F_{in})`, edge indices
          :math:`(2, |\mathcal{E}|)`, edge features :math:`(|\mathcal{E}|, 3)`
          (integers) or :math:`(|\mathcal{E}|, D)`
        - output: node features :math:`(|\mathcal{V}|, F_{out})`
    """

    def __init__(self, in_channels: int, out_channels: int, edge_dim: int | None = None) -> None:
        super().__init__(aggr="add")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.linear = nn.Linear(in_channels, out_channels)
        self.root_emb = nn.Embedding(1, out_channels)
        self.edge_encoder = _edge_encoder(edge_dim, out_channels)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.linear.reset_parameters()
        self.root_emb.reset_parameters()
        self.edge_encoder.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        _refuse_static_graph(self, x)
        if edge_attr is None:
            raise ValidationError("ogb_gcn needs edge_attr (OGB bond features); the graph has none")
        x = self.linear(x)
        edge_embedding = self.edge_encoder(edge_attr)
        row = edge_index[0]
        deg = degree(row, x.size(0), dtype=x.dtype) + 1
        deg_inv_sqrt = deg.pow(-0.5)
        norm = deg_inv_sqrt[row] * deg_inv_sqrt[edge_index[1]]
        out = self.propagate(edge_index, x=x, edge_attr=edge_embedding, norm=norm)
        return out + F.relu(x + self.root_emb.weight) / deg.view(-1, 1)

    def message(self, x_j: Tensor, edge_attr: Tensor, norm: Tensor) -> Tensor:
        return norm.view(-1, 1) * F.relu(x_j + edge_attr)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"
