"""A graph convolution written from scratch on ``MessagePassing``.

This module is the worked example of a graphdl layer plugin. A plugin is any
``torch.nn.Module`` whose constructor takes ``(in_channels, out_channels,
**kwargs)`` and whose forward takes ``(x, edge_index, ...)``; register it with
``@graphdl.layers.register("name")`` (or an entry point in the
``graphdl.layers`` group) and check it with
``graphdl.testing.check_layer("name")``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import add_remaining_self_loops, scatter

from graphdl.layers import LAYERS


@LAYERS.register("gcn_scratch", edge_weight=True)
class ScratchGCNConv(MessagePassing):
    r"""Graph convolution of Kipf & Welling (2017), written from scratch.

    .. math::
        \mathbf{x}^{\prime}_i = \mathbf{\Theta}^{\top} \sum_{j \in
        \mathcal{N}(i) \cup \{ i \}} \frac{e_{j,i}}{\sqrt{\hat{d}_j
        \hat{d}_i}} \mathbf{x}_j + \mathbf{b}

    with :math:`\hat{d}_i = 1 + \sum_{j \in \mathcal{N}(i)} e_{j,i}` and
    :math:`e_{j,i}` the weight of edge :math:`j \to i` (1 when absent). It
    computes the same function as PyG's ``GCNConv`` with default arguments.

    Args:
        in_channels: Size of each input node feature.
        out_channels: Size of each output node feature.
        bias: Whether to add a learnable bias :math:`\mathbf{b}`.

    Shapes:
        - input: node features :math:`(|\mathcal{V}|, F_{in})` (or a static-graph
          batch :math:`(B, |\mathcal{V}|, F_{in})` over one graph, as PyG's
          ``GCNConv`` takes), edge indices :math:`(2, |\mathcal{E}|)`, optional
          edge weights :math:`(|\mathcal{E}|)`
        - output: node features :math:`(|\mathcal{V}|, F_{out})` (or
          :math:`(B, |\mathcal{V}|, F_{out})`)
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__(aggr="add", node_dim=-2)  # nodes on the second-last axis: static-graph batches too
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = math.sqrt(6.0 / (self.in_channels + self.out_channels))  # Glorot uniform
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        num_nodes = x.size(-2)
        edge_index, edge_weight = add_remaining_self_loops(edge_index, edge_weight, 1.0, num_nodes)
        if edge_weight is None:
            edge_weight = x.new_ones(edge_index.size(1))
        src, dst = edge_index
        deg = scatter(edge_weight, dst, dim=0, dim_size=num_nodes, reduce="sum")
        inv_sqrt = deg.pow(-0.5).masked_fill(deg == 0, 0.0)
        norm = inv_sqrt[src] * edge_weight * inv_sqrt[dst]
        out = self.propagate(edge_index, x=x @ self.weight, norm=norm)
        return out + self.bias if self.bias is not None else out

    def message(self, x_j: Tensor, norm: Tensor) -> Tensor:
        return norm.unsqueeze(-1) * x_j

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels})"
