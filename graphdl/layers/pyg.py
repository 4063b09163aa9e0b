"""PyG's convolutions behind one constructor: ``(in_channels, out_channels, **kwargs)``.

Each factory returns the unmodified ``torch_geometric.nn`` module, so a layer
built here is the PyG layer (same parameters, same outputs, same speed). Extra
keyword arguments go to the PyG constructor.

Attention layers (``gat``, ``gatv2``, ``transformer``) take ``heads``; with
``concat=True`` (the default) ``out_channels`` is the total width and must be
divisible by ``heads``, each head getting ``out_channels // heads`` channels.

Bool switches (``concat``, ``batch_norm``, ``train_eps`` and the PyG
constructor's, e.g. ``bias``) must be bools. ``gcn``, ``sage``, ``graphconv``,
``cheb``, ``edgeconv``, ``gcn_scratch`` and ``gin``/``gine`` with ``batch_norm=False`` take
PyG's static graphs (``x`` of shape ``(batch, num_nodes, features)`` over one
``edge_index``); the other layers refuse such ``x`` by name.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import typing
from typing import Any

import torch_geometric.nn as pygnn
from torch import Tensor, nn

from graphdl.errors import ConfigError, ValidationError
from graphdl.layers import LAYERS
from graphdl.validate import require_bool, require_int


def _bool_kwargs(layer: str, cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with the bool switches of ``cls``'s constructor (``bias``, ``add_self_loops``, ...) checked
    by :func:`require_bool`; an ``Optional[bool]`` one also takes None."""
    params = inspect.signature(cls.__init__).parameters
    for key, value in kwargs.items():
        param = params.get(key)
        if param is None or (value is None and type(None) in typing.get_args(param.annotation)):
            continue
        if param.annotation is bool or isinstance(param.default, bool) or set(
                typing.get_args(param.annotation)) == {bool, type(None)}:
            kwargs[key] = require_bool(layer, key, value)
    return kwargs


def _attention_dropout(layer: str, kwargs: dict[str, Any]) -> None:
    """The attention ``dropout`` PyG takes, checked when the layer is built: PyG stores any value and fails at the
    first training step outside [0, 1) (at 1 it drops every attention coefficient)."""
    p = kwargs.get("dropout", 0.0)
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p < 1.0:
        raise ConfigError(f"{layer}'s dropout (on the attention coefficients) must lie in [0, 1), got {p!r}")


def _refuse_static_graphs(why: str, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Forward pre-hook (bound to ``why`` with ``functools.partial``, so the layer still pickles) refusing node
    features of more than 2 dims (PyG's static graphs, ``(batch, num_nodes, features)`` over one ``edge_index``)
    for a layer that cannot take them: it failed deep inside PyG or torch (an AssertionError, "running_mean
    should contain ..."), or, with as many nodes as channels, normalised over the wrong axis without a word."""
    x = kwargs.get("x", args[0] if args else None)
    for part in (x if isinstance(x, (tuple, list)) else (x,)):
        if isinstance(part, Tensor) and part.dim() > 2:
            raise ValidationError(static_graph_error(type(module).__name__, tuple(part.shape), why))


def static_graph_error(owner: str, shape: tuple[int, ...], why: str) -> str:
    """The error for node features ``shape`` of more than 2 dims given to a layer without static-graph support."""
    return (f"{owner}: x must have shape (num_nodes, num_features), got {shape}; {why}. Batch the graphs into one "
            f"(torch_geometric.data.Batch.from_data_list) with x of shape (num_nodes, num_features), or use a "
            f"layer that takes a static-graph batch (batch, num_nodes, num_features) over one edge_index: gcn, "
            f"sage, graphconv, cheb, edgeconv or gcn_scratch")


_NO_STATIC = "it has no static-graph form (one set of attention coefficients per edge)"
_BATCH_NORM_STATIC = ("the BatchNorm1d of its MLP takes (num_nodes, channels) only; build it with batch_norm=False "
                      "to run it on a static-graph batch")


def _no_static_graphs(conv: nn.Module, why: str) -> nn.Module:
    conv.register_forward_pre_hook(functools.partial(_refuse_static_graphs, why), with_kwargs=True)
    return conv


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
    return pygnn.GCNConv(in_channels, out_channels, **_bool_kwargs("gcn", pygnn.GCNConv, kwargs))


@LAYERS.register("sage", aliases=("graphsage",), summary="GraphSAGE (Hamilton et al., 2017), PyG SAGEConv")
def sage(in_channels: int, out_channels: int, **kwargs: Any) -> pygnn.SAGEConv:
    return pygnn.SAGEConv(in_channels, out_channels, **_bool_kwargs("sage", pygnn.SAGEConv, kwargs))


@LAYERS.register("gat", edge_attr=True, summary="Graph attention (Velickovic et al., 2018), PyG GATConv")
def gat(in_channels: int, out_channels: int, heads: int = 1, concat: bool = True, **kwargs: Any) -> pygnn.GATConv:
    concat = require_bool("gat", "concat", concat)
    _attention_dropout("gat", kwargs)
    per_head = _per_head(out_channels, heads, concat, "gat")
    kwargs = _bool_kwargs("gat", pygnn.GATConv, kwargs)
    conv = pygnn.GATConv(in_channels, per_head, heads=heads, concat=concat, **kwargs)
    return _no_static_graphs(conv, _NO_STATIC)


@LAYERS.register("gatv2", edge_attr=True, summary="GATv2 dynamic attention (Brody et al., 2022), PyG GATv2Conv")
def gatv2(in_channels: int, out_channels: int, heads: int = 1, concat: bool = True, **kwargs: Any) -> pygnn.GATv2Conv:
    concat = require_bool("gatv2", "concat", concat)
    _attention_dropout("gatv2", kwargs)
    per_head = _per_head(out_channels, heads, concat, "gatv2")
    kwargs = _bool_kwargs("gatv2", pygnn.GATv2Conv, kwargs)
    conv = pygnn.GATv2Conv(in_channels, per_head, heads=heads, concat=concat, **kwargs)
    return _no_static_graphs(conv, _NO_STATIC)


@LAYERS.register("transformer", edge_attr=True,
                 summary="Graph transformer attention (Shi et al., 2021), PyG TransformerConv")
def transformer(in_channels: int, out_channels: int, heads: int = 1, concat: bool = True,
                **kwargs: Any) -> pygnn.TransformerConv:
    concat = require_bool("transformer", "concat", concat)
    _attention_dropout("transformer", kwargs)
    per_head = _per_head(out_channels, heads, concat, "transformer")
    kwargs = _bool_kwargs("transformer", pygnn.TransformerConv, kwargs)
    conv = pygnn.TransformerConv(in_channels, per_head, heads=heads, concat=concat, **kwargs)
    return _no_static_graphs(conv, _NO_STATIC)


@LAYERS.register("gin", summary="Graph isomorphism network (Xu et al., 2019), PyG GINConv with a 2-layer MLP")
def gin(in_channels: int, out_channels: int, hidden_channels: int | None = None,
        batch_norm: bool = True, train_eps: bool = False, **kwargs: Any) -> pygnn.GINConv:
    _one_width("gin", in_channels, pairs_at_call=True)
    batch_norm, train_eps = require_bool("gin", "batch_norm", batch_norm), require_bool("gin", "train_eps", train_eps)
    conv = pygnn.GINConv(_mlp("gin", in_channels, out_channels, hidden_channels, batch_norm), train_eps=train_eps,
                         **kwargs)
    return _with_in_channels(_no_static_graphs(conv, _BATCH_NORM_STATIC) if batch_norm else conv, in_channels)


@LAYERS.register("gine", edge_attr="required",
                 summary="GIN with edge features (Hu et al., 2020), PyG GINEConv with a 2-layer MLP")
def gine(in_channels: int, out_channels: int, edge_dim: int | None = None,
         hidden_channels: int | None = None, batch_norm: bool = True, train_eps: bool = False,
         **kwargs: Any) -> pygnn.GINEConv:
    _one_width("gine", in_channels, pairs_at_call=True)
    if in_channels == -1 and edge_dim is not None:
        raise ConfigError("gine: with edge_dim the edge features are mapped to the node width, which "
                          "in_channels=-1 leaves unknown; give in_channels")
    batch_norm, train_eps = require_bool("gine", "batch_norm", batch_norm), require_bool("gine", "train_eps", train_eps)
    conv = pygnn.GINEConv(_mlp("gine", in_channels, out_channels, hidden_channels, batch_norm), train_eps=train_eps,
                          edge_dim=edge_dim, **kwargs)
    return _with_in_channels(_no_static_graphs(conv, _BATCH_NORM_STATIC) if batch_norm else conv, in_channels)


@LAYERS.register("graphconv", edge_weight=True, summary="Weisfeiler-Leman GNN (Morris et al., 2019), PyG GraphConv")
def graphconv(in_channels: int, out_channels: int, **kwargs: Any) -> pygnn.GraphConv:
    return pygnn.GraphConv(in_channels, out_channels, **_bool_kwargs("graphconv", pygnn.GraphConv, kwargs))


@LAYERS.register("cheb", edge_weight=True,
                 summary="Chebyshev spectral convolution (Defferrard et al., 2016), PyG ChebConv")
def cheb(in_channels: int, out_channels: int, K: int = 2, **kwargs: Any) -> pygnn.ChebConv:
    # PyG asserts K > 0 with no message, and a float K fails inside range()
    if isinstance(K, bool) or not isinstance(K, int) or K < 1:
        raise ValidationError(f"cheb: K (the Chebyshev polynomial order, K hops) must be an int >= 1, got {K!r}")
    _one_width("cheb", in_channels, pairs_at_call=False)
    return pygnn.ChebConv(in_channels, out_channels, K=K, **_bool_kwargs("cheb", pygnn.ChebConv, kwargs))


@LAYERS.register("edgeconv", summary="Edge convolution (Wang et al., 2019) on a given graph, PyG EdgeConv")
def edgeconv(in_channels: int, out_channels: int, hidden_channels: int | None = None,
             aggr: str = "max", **kwargs: Any) -> pygnn.EdgeConv:
    _one_width("edgeconv", in_channels, pairs_at_call=True)
    # the MLP sees [x_i, x_j - x_i]
    mlp = _mlp("edgeconv", -1 if in_channels == -1 else 2 * in_channels, out_channels, hidden_channels, False)
    return _with_in_channels(pygnn.EdgeConv(mlp, aggr=aggr, **kwargs), in_channels)
