"""PyG's convolutions behind one constructor: ``(in_channels, out_channels, **kwargs)``.

Each factory returns the unmodified ``torch_geometric.nn`` module, so a layer
built here is the PyG layer (same parameters, same outputs, same speed). Extra
keyword arguments go to the PyG constructor.

Attention layers (``gat``, ``gatv2``, ``transformer``) take ``heads``; with
``concat=True`` (the default) ``out_channels`` is the total width and must be
divisible by ``heads``, each head getting ``out_channels // heads`` channels.
"""

from __future__ import annotations

from typing import Any

import torch_geometric.nn as pygnn
from torch import nn

from graphdl.errors import ConfigError, ValidationError
from graphdl.layers import LAYERS
from graphdl.validate import require_int


def _per_head(out_channels: int, heads: int, concat: bool, layer: str) -> int:
    if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1:
        raise ValidationError(f"{layer}: heads must be an int >= 1, got {heads!r}")
    if not concat:
        return out_channels
    if out_channels % heads:
        raise ValidationError(
            f"{layer}: out_channels={out_channels} is not divisible by heads={heads}; "
            f"with concat=True each head gets out_channels // heads channels. "
            f"Choose out_channels as a multiple of heads, or pass concat=False."
        )
    return out_channels // heads


def _one_width(layer: str, in_channels: Any, pairs_at_call: bool) -> None:
    """Refuse a (source, target) pair of ``in_channels`` where the layer has one input width: PyG failed
    deep inside (``'>' not supported between 'tuple' and 'int'``, ``empty(): argument 'size' ...``)."""
    if not isinstance(in_channels, (tuple, list)):
        return
    if pairs_at_call:
        fix = "its MLP sees source and target features of one width, so give that width as one int"
        if len(in_channels) == 2 and in_channels[0] == in_channels[1]:
            fix += f" (in_channels={in_channels[0]}); it still takes (x_source, x_target) pairs"
    else:
        fix = ("it has no bipartite (source, target) form; give one int, or use sage, graphconv, gat, gatv2 "
               "or transformer for bipartite graphs")
    raise ConfigError(f"{layer}: in_channels must be one int for this layer, got {in_channels!r}; {fix}")


def _mlp(layer: str, in_channels: int, out_channels: int, hidden: int | None, batch_norm: bool) -> nn.Sequential:
    """``Linear -> [BatchNorm] -> ReLU -> Linear``; the first layer infers its width (PyG's lazy
    ``Linear``) when ``in_channels`` is -1."""
    hidden = out_channels if hidden is None else hidden
    require_int(layer, "hidden_channels", hidden)  # 0 fell back to out_channels silently
    mid: list[nn.Module] = [nn.BatchNorm1d(hidden)] if batch_norm else []
    first = pygnn.Linear(-1, hidden) if in_channels == -1 else nn.Linear(in_channels, hidden)
    return nn.Sequential(first, *mid, nn.ReLU(), nn.Linear(hidden, out_channels))


def _with_in_channels(conv: nn.Module, in_channels: int) -> nn.Module:
    # GIN/GINE/EdgeConv keep no in_channels; record it so calls can be checked against it.
    conv.in_channels = in_channels
    return conv


@LAYERS.register("gcn", edge_weight=True, summary="Graph convolution (Kipf & Welling, 2017), PyG GCNConv")
def gcn(in_channels: int, out_channels: int, **kwargs: Any) -> pygnn.GCNConv:
    _one_width("gcn", in_channels, pairs_at_call=False)
    return pygnn.GCNConv(in_channels, out_channels, **kwargs)


@LAYERS.register("sage", aliases=("graphsage",), summary="GraphSAGE (Hamilton et al., 2017), PyG SAGEConv")
def sage(in_channels: int, out_channels: int, **kwargs: Any) -> pygnn.SAGEConv:
    return pygnn.SAGEConv(in_channels, out_channels, **kwargs)


@LAYERS.register("gat", edge_attr=True, summary="Graph attention (Velickovic et al., 2018), PyG GATConv")
def gat(in_channels: int, out_channels: int, heads: int = 1, concat: bool = True, **kwargs: Any) -> pygnn.GATConv:
    per_head = _per_head(out_channels, heads, concat, "gat")
    return pygnn.GATConv(in_channels, per_head, heads=heads, concat=concat, **kwargs)


@LAYERS.register("gatv2", edge_attr=True, summary="GATv2 dynamic attention (Brody et al., 2022), PyG GATv2Conv")
def gatv2(in_channels: int, out_channels: int, heads: int = 1, concat: bool = True, **kwargs: Any) -> pygnn.GATv2Conv:
    per_head = _per_head(out_channels, heads, concat, "gatv2")
    return pygnn.GATv2Conv(in_channels, per_head, heads=heads, concat=concat, **kwargs)


@LAYERS.register("transformer", edge_attr=True,
                 summary="Graph transformer attention (Shi et al., 2021), PyG TransformerConv")
def transformer(in_channels: int, out_channels: int, heads: int = 1, concat: bool = True,
                **kwargs: Any) -> pygnn.TransformerConv:
    per_head = _per_head(out_channels, heads, concat, "transformer")
    return pygnn.TransformerConv(in_channels, per_head, heads=heads, concat=concat, **kwargs)


@LAYERS.register("gin", summary="Graph isomorphism network (Xu et al., 2019), PyG GINConv with a 2-layer MLP")
def gin(in_channels: int, out_channels: int, hidden_channels: int | None = None,
        batch_norm: bool = True, train_eps: bool = False, **kwargs: Any) -> pygnn.GINConv:
    _one_width("gin", in_channels, pairs_at_call=True)
    return _with_in_channels(pygnn.GINConv(_mlp("gin", in_channels, out_channels, hidden_channels, batch_norm),
                                           train_eps=train_eps, **kwargs), in_channels)


@LAYERS.register("gine", edge_attr="required",
                 summary="GIN with edge features (Hu et al., 2020), PyG GINEConv with a 2-layer MLP")
def gine(in_channels: int, out_channels: int, edge_dim: int | None = None,
         hidden_channels: int | None = None, batch_norm: bool = True, train_eps: bool = False,
         **kwargs: Any) -> pygnn.GINEConv:
    _one_width("gine", in_channels, pairs_at_call=True)
    if in_channels == -1 and edge_dim is not None:
        raise ConfigError("gine: with edge_dim the edge features are mapped to the node width, which "
                          "in_channels=-1 leaves unknown; give in_channels")
    return _with_in_channels(pygnn.GINEConv(_mlp("gine", in_channels, out_channels, hidden_channels, batch_norm),
                                            train_eps=train_eps, edge_dim=edge_dim, **kwargs), in_channels)


@LAYERS.register("graphconv", edge_weight=True, summary="Weisfeiler-Leman GNN (Morris et al., 2019), PyG GraphConv")
def graphconv(in_channels: int, out_channels: int, **kwargs: Any) -> pygnn.GraphConv:
    return pygnn.GraphConv(in_channels, out_channels, **kwargs)


@LAYERS.register("cheb", edge_weight=True,
                 summary="Chebyshev spectral convolution (Defferrard et al., 2016), PyG ChebConv")
def cheb(in_channels: int, out_channels: int, K: int = 2, **kwargs: Any) -> pygnn.ChebConv:
    # PyG asserts K > 0 with no message, and a float K fails inside range()
    if isinstance(K, bool) or not isinstance(K, int) or K < 1:
        raise ValidationError(f"cheb: K (the Chebyshev polynomial order, K hops) must be an int >= 1, got {K!r}")
    _one_width("cheb", in_channels, pairs_at_call=False)
    return pygnn.ChebConv(in_channels, out_channels, K=K, **kwargs)


@LAYERS.register("edgeconv", summary="Edge convolution (Wang et al., 2019) on a given graph, PyG EdgeConv")
def edgeconv(in_channels: int, out_channels: int, hidden_channels: int | None = None,
             aggr: str = "max", **kwargs: Any) -> pygnn.EdgeConv:
    _one_width("edgeconv", in_channels, pairs_at_call=True)
    # the MLP sees [x_i, x_j - x_i]
    mlp = _mlp("edgeconv", -1 if in_channels == -1 else 2 * in_channels, out_channels, hidden_channels, False)
    return _with_in_channels(pygnn.EdgeConv(mlp, aggr=aggr, **kwargs), in_channels)
