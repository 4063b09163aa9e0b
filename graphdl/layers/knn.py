r"""DGCNN's dynamic edge convolution: message passing on a k-NN graph of the input features.

PyG's ``DynamicEdgeConv`` builds its graph with torch-cluster, which has no
wheels here; this layer builds it with :func:`graphdl.graphs.knn_graph`.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.nn import EdgeConv

from graphdl import validate
from graphdl.errors import ValidationError
from graphdl.graphs.knn import knn_graph
from graphdl.layers import LAYERS

__all__ = ["DynamicEdgeConv"]


@LAYERS.register("dynamic_edgeconv", graph="knn",
                 summary="Dynamic edge convolution on a k-NN graph of its input (Wang et al., 2019), as DGCNN")
class DynamicEdgeConv(nn.Module):
    r"""Edge convolution on the k-NN graph of the layer's input (Wang et al., "Dynamic Graph CNN for Learning
    on Point Clouds", 2019), as PyG's ``DynamicEdgeConv``:

    .. math::
        \mathbf{x}_i' = \max_{j \in \mathcal{N}_k(i)} h_{\mathbf{\Theta}}
            \left( \mathbf{x}_i \, \Vert \, \mathbf{x}_j - \mathbf{x}_i \right),

    where :math:`\mathcal{N}_k(i)` holds the :math:`k` nodes of :math:`i`'s graph nearest to
    :math:`\mathbf{x}_i` in feature space, :math:`i` itself included (PyG's ``knn(x, x, k)``), and
    :math:`h_{\mathbf{\Theta}}` is ``Linear -> ReLU -> Linear``. The graph is rebuilt from ``x`` at every
    call, so a stack of these layers links points that are near in each layer's features.

    Args:
        in_channels: Node features :math:`F`.
        out_channels: Output features.
        k: Neighbours per node, the node itself included.
        hidden_channels: Width of the MLP's hidden layer (``out_channels`` by default).
        aggr: ``"max"`` (DGCNN), ``"mean"`` or ``"add"``.
        cosine: Find the neighbours by cosine distance instead of Euclidean.

    Shapes:
        ``x`` :math:`(N, F)` and ``batch`` :math:`(N,)` (``None``: one graph) ->
        :math:`(N, \text{out\_channels})`.
    """

    def __init__(self, in_channels: int, out_channels: int, k: int = 20, hidden_channels: int | None = None,
                 aggr: str = "max", cosine: bool = False) -> None:
        super().__init__()
        validate.require_int("dynamic_edgeconv", "in_channels", in_channels)
        validate.require_int("dynamic_edgeconv", "out_channels", out_channels)
        validate.require_int("dynamic_edgeconv", "k", k)
        if hidden_channels is not None:  # torch fails deep inside on a negative width, builds a zero-width one for 0
            validate.require_int("dynamic_edgeconv", "hidden_channels", hidden_channels)
        hidden = out_channels if hidden_channels is None else hidden_channels
        self.in_channels, self.out_channels, self.k, self.cosine = in_channels, out_channels, k, cosine
        mlp = nn.Sequential(nn.Linear(2 * in_channels, hidden), nn.ReLU(), nn.Linear(hidden, out_channels))
        self.conv = EdgeConv(mlp, aggr=aggr)

    def reset_parameters(self) -> None:
        """Re-draw the MLP's weights, as PyG's ``DynamicEdgeConv.reset_parameters``."""
        self.conv.reset_parameters()

    def forward(self, x: Tensor, batch: Tensor | None = None) -> Tensor:
        if isinstance(x, Tensor) and x.dim() == 2 and x.is_floating_point() and x.size(-1) != self.in_channels:
            raise ValidationError(f"dynamic_edgeconv: x has {x.size(-1)} features per node but in_channels="
                                  f"{self.in_channels}; build it with in_channels={x.size(-1)}")
        edge_index = knn_graph(x, self.k, batch, loop=True, cosine=self.cosine)
        validate.check_call("dynamic_edgeconv", x, edge_index, batch=batch, in_channels=self.in_channels,
                            reference=next(self.parameters()))
        return self.conv(x, edge_index)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, k={self.k}, aggr={self.conv.aggr!r}"
