"""Configurable GNN stacks built from the layer registry, with node, link and graph heads.

A stack of :math:`L` layers computes, for :math:`\\ell = 1, \\dots, L`,

.. math::
    \\mathbf{H}^{(\\ell)} = \\mathrm{drop}\\Big(\\sigma\\big(\\mathrm{norm}(
    \\mathrm{conv}_\\ell(\\mathbf{H}^{(\\ell-1)} + \\mathbf{V}^{(\\ell-1)}_{b},
    \\mathbf{A}))\\big)\\Big) \\;[+\\, \\mathbf{H}^{(\\ell-1)}]

with an optional virtual node :math:`\\mathbf{V}` per graph (``virtual_node``),
an optional residual term (``residual``; with a virtual node, OGB's residual
update :math:`\\mathbf{V} \\leftarrow \\mathbf{V} + \\mathrm{drop}(\\mathrm{MLP}(\\cdot))`
too), and the last layer left plain
(``plain_last``: no norm, activation or dropout) or OGB-style (norm and dropout,
no activation). Jumping knowledge (``jk``) combines the layer outputs; the last
layer is then a hidden one, which ``plain_last`` gives norm, activation and
dropout as PyG's ``BasicGNN`` does.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import global_add_pool

from graphdl import layers as layer_registry
from graphdl import validate as _validate
from graphdl.errors import ConfigError, ValidationError
from graphdl.models import MODELS, resolve

__all__ = ["GNN", "LinkGNN", "GraphGNN", "DotDecoder", "MLPDecoder", "hadamard", "pair_dropout"]

JK_MODES = ("last", "cat", "max", "sum")


#: where the special-graph layers run (a layer's ``graph`` meta), for the GNN's refusal
_SPECIAL_GRAPHS = {"grid": "images as grid graphs (graphdl.graphs.grid; the lenet_grid model)",
                   "chain": "sequences as chain graphs (graphdl.graphs.chain; the chain_forecaster model)",
                   "complete": "token sets as complete graphs (graphdl.graphs.complete)",
                   "knn": "the k-NN graph it builds from its input features (graphdl.graphs.knn_graph)"}


class GNN(nn.Module):
    """A stack of message-passing layers taken from the layer registry by name.

    Args:
        layer: Registered layer name (``graphdl.layers.list()``).
        in_channels: Input feature size; ``None`` with ``num_nodes`` learns a
            node embedding table (for featureless graphs such as ogbl-ddi).
        hidden_channels: Width of the hidden layers.
        out_channels: Output width; ``None`` keeps ``hidden_channels``.
        num_layers: Number of message-passing layers.
        dropout: Dropout after each hidden layer.
        input_dropout: Dropout on the input features (PyG's Planetoid examples).
        activation: Activation by name (PyG's resolver: ``relu``, ``elu``, ...).
        norm: Normalisation by name (``batch``, ``layer``, ...), a module (each
            layer gets its own copy, as in PyG's ``BasicGNN``) or ``None``;
            graph-wise norms (``layer``, ``graph``, ``instance``, ...) get
            ``batch`` and normalise each graph on its own, as in PyG's ``BasicGNN``.
        residual: Add each layer's input to its output where widths agree;
            with ``virtual_node``, also the virtual node's embedding to its
            update, as OGB's ``GNN_node_Virtualnode`` does.
        jk: Jumping knowledge: ``last``, ``cat``, ``max`` or ``sum``.
        plain_last: Leave the last layer without norm, activation and dropout;
            with ``False`` it gets norm and dropout but no activation (OGB).
            With ``jk`` other than ``last`` the last layer is a hidden one (the
            jumping-knowledge linear layer gives the output), so ``True`` gives it
            norm, activation and dropout, as PyG's ``BasicGNN`` does.
        virtual_node: Add a virtual node per graph connected to every node.
        node_encoder: Module mapping raw node inputs to ``hidden_channels``
            (e.g. OGB's ``AtomEncoder``); replaces ``in_channels``. It is
            re-initialised with the model (``reset_parameters``): load
            pretrained weights into ``model.node_encoder`` after building it.
        edge_encoder: Factory returning a module per layer that maps raw edge
            attributes to edge features (e.g. OGB's ``BondEncoder``).
        edge_dim: Edge-feature size given to layers that take ``edge_attr``;
            without it ``gat``, ``gatv2`` and ``transformer`` layers use no
            edge features (``edge_attr`` is then not passed, as to ``gcn``).
        layer_kwargs: Extra arguments for every layer (e.g. ``heads=8``).
        last_layer_kwargs: Overrides for the last layer (e.g. ``heads=1``).
        num_nodes: Size of the learned embedding table when ``in_channels`` is ``None``.
        decay_first_layer_only: Apply the Trainer's weight decay to the first
            layer only, as Kipf & Welling's GCN and PyG's ``gcn.py`` do.
    """

    def __init__(
        self,
        layer: str = "gcn",
        in_channels: int | None = None,
        hidden_channels: int = 64,
        out_channels: int | None = None,
        num_layers: int = 2,
        dropout: float = 0.5,
        input_dropout: float = 0.0,
        activation: str = "relu",
        norm: str | nn.Module | None = None,
        residual: bool = False,
        jk: str = "last",
        plain_last: bool = True,
        virtual_node: bool = False,
        node_encoder: nn.Module | None = None,
        edge_encoder: Callable[[], nn.Module] | None = None,
        edge_dim: int | None = None,
        layer_kwargs: dict[str, Any] | None = None,
        last_layer_kwargs: dict[str, Any] | None = None,
        num_nodes: int | None = None,
        decay_first_layer_only: bool = False,
    ) -> None:
        super().__init__()
        _validate.require_int("gnn", "num_layers", num_layers)
        # by truthiness a config's "no" or 0.5 meant True
        residual, plain_last, virtual_node, decay_first_layer_only = (
            _validate.require_bool("gnn", name, value) for name, value in (
                ("residual", residual), ("plain_last", plain_last), ("virtual_node", virtual_node),
                ("decay_first_layer_only", decay_first_layer_only)))
        if not all(isinstance(p, numbers.Real) and not isinstance(p, bool) and 0.0 <= p < 1.0
                   for p in (dropout, input_dropout)):
            raise ConfigError(f"dropout must lie in [0, 1), got dropout={dropout!r}, input_dropout={input_dropout!r}")
        if jk not in JK_MODES:
            raise ConfigError(f"jk must be one of {JK_MODES}, got {jk!r}")
        for name, width in (("in_channels", in_channels), ("hidden_channels", hidden_channels),
                            ("out_channels", out_channels)):
            if width is not None and width != -1 and (isinstance(width, bool) or not isinstance(width, int)
                                                      or width < 1):
                raise ConfigError(f"{name} must be an int >= 1" + (" (or -1 for lazy initialisation)"
                                                                    if name == "in_channels" else "")
                                  + f", got {width!r}")
        if in_channels is None and node_encoder is None and num_nodes is None:
            raise ConfigError("give in_channels (node feature size), a node_encoder, or num_nodes "
                              "(to learn one embedding per node of a featureless graph)")
        if node_encoder is not None and not isinstance(node_encoder, nn.Module):
            raise ConfigError(f"node_encoder must be a torch.nn.Module mapping node inputs to hidden_channels "
                              f"(e.g. ogb's AtomEncoder(hidden_channels)), got {type(node_encoder).__name__} "
                              f"{node_encoder!r}; for a learned embedding per node give in_channels=None and "
                              f"num_nodes")
        if edge_encoder is not None and (isinstance(edge_encoder, nn.Module) or not callable(edge_encoder)):
            raise ConfigError(f"edge_encoder must be a factory that builds one edge encoder per layer, e.g. "
                              f"lambda: BondEncoder(hidden_channels), got {type(edge_encoder).__name__} "
                              f"{edge_encoder!r}")
        for name, given in (("layer_kwargs", layer_kwargs), ("last_layer_kwargs", last_layer_kwargs)):
            if given is not None and not isinstance(given, Mapping):  # failed inside dict() / {**...}
                raise ConfigError(f"{name} must be a dict of layer arguments, e.g. {{'heads': 8}}, got "
                                  f"{type(given).__name__} {given!r}")
        entry = layer_registry.entry(layer)
        if entry.meta.get("graph") in _SPECIAL_GRAPHS:
            raise ConfigError(f"layer {entry.name!r} runs on {_SPECIAL_GRAPHS[entry.meta['graph']]}, not on any "
                              f"edge_index, so a GNN stack cannot use it; pick a message-passing layer such as 'gcn'")
        self.layer_name = entry.name
        # the settings that differ from the defaults, for __repr__ (modules and factories by their class name)
        given = {"hidden_channels": hidden_channels, "dropout": dropout, "input_dropout": input_dropout,
                 "activation": activation, "norm": norm, "residual": residual, "jk": jk, "plain_last": plain_last,
                 "virtual_node": virtual_node, "node_encoder": node_encoder, "edge_encoder": edge_encoder,
                 "edge_dim": edge_dim, "layer_kwargs": layer_kwargs or None,
                 "last_layer_kwargs": last_layer_kwargs or None, "num_nodes": num_nodes,
                 "decay_first_layer_only": decay_first_layer_only}
        defaults = {k: p.default for k, p in inspect.signature(GNN.__init__).parameters.items()}
        # as strings: the module keeps no reference to a factory (a lambda would not pickle with torch.save)
        self._repr_settings = {k: type(v).__name__ if isinstance(v, nn.Module) else repr(v)
                               for k, v in given.items() if not (v is defaults[k] or (
                                   (type(v) is bool) == (type(defaults[k]) is bool) and v == defaults[k]))}
        self.uses_edge_weight = bool(entry.meta.get("edge_weight"))
        self.uses_edge_attr = bool(entry.meta.get("edge_attr"))
        self.needs_edge_attr = entry.meta.get("edge_attr") == "required"
        self.num_layers, self.dropout, self.input_dropout = num_layers, dropout, input_dropout
        self.jk, self.plain_last, self.residual = jk, plain_last, residual
        # PyG's BasicGNN with jk: every layer, the last included, gets norm, activation and dropout
        self._last_plain = plain_last and jk == "last"
        self._last_act = plain_last and jk != "last"
        self.hidden_channels = hidden_channels
        self.decay_first_layer_only = decay_first_layer_only
        out_channels = hidden_channels if out_channels is None else out_channels
        self.out_channels = out_channels

        self.embedding = None
        if node_encoder is None and in_channels is None:
            _validate.require_int("gnn", "num_nodes", num_nodes)
            self.embedding = nn.Embedding(num_nodes, hidden_channels)
            in_channels = hidden_channels
        self.node_encoder = node_encoder
        if node_encoder is not None:
            in_channels = hidden_channels
        self.in_channels = in_channels

        # With jumping knowledge every layer is hidden-wide and a linear map gives out_channels.
        last_out = out_channels if jk == "last" else hidden_channels
        kwargs = dict(layer_kwargs or {})
        if self.uses_edge_attr and edge_dim is not None:
            kwargs.setdefault("edge_dim", edge_dim)
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for i in range(num_layers):
            last = i == num_layers - 1
            c_in = in_channels if i == 0 else hidden_channels
            c_out = last_out if last else hidden_channels
            kw = {**kwargs, **(last_layer_kwargs or {})} if last else kwargs
            try:
                self.convs.append(layer_registry.LAYERS.build(layer, c_in, c_out, **kw))
            except ValidationError as exc:
                if not (last and num_layers > 1):
                    raise
                raise ValidationError(f"{exc} (This is the GNN's last layer, {c_in} -> {c_out}; give it arguments "
                                      f"of its own with last_layer_kwargs, e.g. {{'heads': 1}}.)") from None
            use_norm = norm is not None and not (last and self._last_plain)
            self.norms.append(resolve.normalization(norm, c_out) if use_norm else nn.Identity())
        # Graph-wise norms (PyG's LayerNorm in its default "graph" mode, GraphNorm, InstanceNorm, PairNorm)
        # normalise over all nodes unless given ``batch``: a graph's output then depends on the other graphs
        # of its batch. PyG's BasicGNN passes ``batch`` to the norms that take it; so does this stack.
        self.norm_takes_batch = [_takes_batch(n) for n in self.norms]
        if self.uses_edge_attr and _validate.ignores_edge_attr(self.convs[0]):
            if edge_encoder is not None:
                raise ConfigError(f"the {self.layer_name} layers were built without edge_dim, so they would ignore "
                                  f"the edge_encoder's features; give edge_dim=<the encoder's output width>")
            self.uses_edge_attr = False  # as gcn's, these layers then take no edge features
        elif not self.uses_edge_attr and edge_encoder is not None:  # its parameters would never train
            raise ConfigError(f"the {self.layer_name} layers take no edge features (edge_attr), so the "
                              f"edge_encoder would never be called; leave it out, or pick a layer that takes "
                              f"them (gine, ogb_gin, or gat/gatv2/transformer with edge_dim)")
        self.edge_encoders = (nn.ModuleList(edge_encoder() for _ in range(num_layers))
                              if edge_encoder is not None else None)
        if self.edge_encoders is not None:  # a factory is shown by what it builds
            self._repr_settings["edge_encoder"] = type(self.edge_encoders[0]).__name__
        self.act = resolve.activation(activation)
        self.jk_linear = (nn.Linear(hidden_channels * (num_layers if jk == "cat" else 1), out_channels)
                          if jk != "last" else None)
        self.virtual_node = None
        if virtual_node and in_channels != hidden_channels:
            raise ConfigError(f"a virtual node is added to the node representations before every layer, the "
                              f"first included, so the layers' input must be hidden_channels={hidden_channels} "
                              f"wide, but in_channels={in_channels}; give a node_encoder that maps the inputs to "
                              f"hidden_channels (OGB's AtomEncoder, or torch.nn.Linear({in_channels}, "
                              f"{hidden_channels})), or leave virtual_node out")
        if virtual_node:
            h = hidden_channels
            self.virtual_node = nn.Embedding(1, h)
            self.vn_mlps = nn.ModuleList(
                nn.Sequential(nn.Linear(h, 2 * h), nn.BatchNorm1d(2 * h), nn.ReLU(),
                              nn.Linear(2 * h, h), nn.BatchNorm1d(h), nn.ReLU())
                for _ in range(num_layers - 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()
        if self.virtual_node is not None:
            nn.init.zeros_(self.virtual_node.weight)

    def optimizer_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """Parameter groups for the optimiser (the Trainer calls this when present)."""
        if not self.decay_first_layer_only:
            return [{"params": list(self.parameters()), "weight_decay": weight_decay}]
        first = {id(p) for p in self.convs[0].parameters()}
        return [{"params": [p for p in self.parameters() if id(p) in first], "weight_decay": weight_decay},
                {"params": [p for p in self.parameters() if id(p) not in first], "weight_decay": 0.0}]

    def forward(
        self,
        x: Tensor | None,
        edge_index: Tensor,
        edge_weight: Tensor | None = None,
        edge_attr: Tensor | None = None,
        batch: Tensor | None = None,
        n_id: Tensor | None = None,
        batch_size: int | None = None,
    ) -> Tensor:
        """Node representations ``(num_nodes, out_channels)``.

        ``n_id`` (set by neighbour loaders) picks rows of the learned embedding.
        ``batch_size`` is the number of graphs ``B`` of ``batch`` (``data.num_graphs``, PyG's ``BasicGNN``
        name), for the virtual node: ``max(batch) + 1`` when not given, which misses graphs without nodes at
        the end of the batch.
        ``x`` may be a static-graph batch ``(batch, num_nodes, features)`` over one
        ``edge_index`` where the layers take one and the stack has no norm (or a
        per-node ``torch.nn.LayerNorm``) and no virtual node.
        The inputs are checked first (:func:`graphdl.validate.check_call`).
        """
        self._check_inputs(x, edge_index, edge_weight, edge_attr, batch, n_id)
        if self.embedding is not None:
            x = self.embedding.weight if n_id is None else self.embedding(n_id)
        elif self.node_encoder is not None:
            x = self.node_encoder(x)
        x = F.dropout(x, self.input_dropout, self.training)
        vn = None
        if self.virtual_node is not None:
            if batch is None:
                batch = edge_index.new_zeros(x.size(0))
            num_graphs = _num_graphs(type(self).__name__, batch, batch_size)
            if num_graphs == 1 and self.training and self.num_layers > 1:
                raise ValidationError("the virtual node's MLP normalises over the graphs of a batch (BatchNorm, as "
                                      "in OGB's examples), so it trains on batches of two or more graphs, but this "
                                      "batch is one graph; batch several graphs (task='graph'), or leave "
                                      "virtual_node out for a node task on one graph")
            vn = self.virtual_node.weight.expand(num_graphs, -1)
        outs: list[Tensor] = []
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            last = i == self.num_layers - 1
            if vn is not None:
                x = x + vn[batch]
            h_in = x
            if self.uses_edge_attr and edge_attr is not None:
                e = self.edge_encoders[i](edge_attr) if self.edge_encoders is not None else edge_attr
                x = conv(x, edge_index, edge_attr=e)
            elif self.uses_edge_weight and edge_weight is not None:
                x = conv(x, edge_index, edge_weight)
            else:
                x = conv(x, edge_index)
            if not (last and self._last_plain):
                x = norm(x, batch) if self.norm_takes_batch[i] else norm(x)
                if not last or self._last_act:
                    x = self.act(x)
                x = F.dropout(x, self.dropout, self.training)
            if self.residual and x.shape == h_in.shape:
                x = x + h_in
            if vn is not None and not last:
                update = self.vn_mlps[i](global_add_pool(h_in, batch, size=vn.size(0)) + vn)
                update = F.dropout(update, self.dropout, self.training)
                vn = vn + update if self.residual else update  # OGB's residual covers the virtual node too
            outs.append(x)
        if self.jk == "last":
            return x
        if self.jk == "cat":
            x = torch.cat(outs, dim=-1)
        elif self.jk == "max":
            x = torch.stack(outs).max(dim=0).values
        else:
            x = torch.stack(outs).sum(dim=0)
        return self.jk_linear(x)

    def _check_inputs(self, x: Any, edge_index: Any, edge_weight: Any, edge_attr: Any, batch: Any,
                      n_id: Any) -> None:
        if self.needs_edge_attr and edge_attr is None:
            raise ValidationError(f"{type(self).__name__}: its {self.layer_name} layers add edge features to every "
                                  f"message; give edge_attr (data.edge_attr), or use a layer without them")
        num_nodes = None
        if self.embedding is not None:  # x is ignored: the nodes are the embedding's rows (or n_id's)
            x = None
            if n_id is not None and _validate.scans_enabled():
                with _validate.owned_by(type(self).__name__):
                    _validate.check_split_index(n_id, self.embedding.num_embeddings, "n_id", "node")
            num_nodes = self.embedding.num_embeddings if n_id is None else n_id.numel()
        elif x is None:
            one_graph = ("build the model with in_channels=None and num_nodes=<number of nodes> to learn one "
                         "embedding per node (as OGB's ogbl-ddi example does), or give the graph features")
            many = ("give the graphs features, e.g. with the transform torch_geometric.transforms.OneHotDegree("
                    "max_degree) or Constant() (as PyG's examples on featureless TU datasets); an embedding per "
                    "node, in_channels=None with num_nodes, suits one fixed graph only")
            raise ValidationError(f"{type(self).__name__}: the graph has no node features (x is None); "
                                  f"{one_graph if batch is None else many}")
        if isinstance(x, Tensor) and x.dim() > 2:
            self._refuse_static_graph(tuple(x.shape))
        edge_dim = (_validate.layer_edge_dim(self.convs[0])
                    if self.uses_edge_attr and self.edge_encoders is None else None)
        _validate.check_call(type(self).__name__, x, edge_index, edge_weight=edge_weight, edge_attr=edge_attr,
                             batch=batch, in_channels=None if self.node_encoder is not None else self.in_channels,
                             num_nodes=num_nodes, reference=next(self.parameters(), None), edge_dim=edge_dim)

    def _refuse_static_graph(self, shape: tuple[int, ...]) -> None:
        """A static-graph batch ``x`` ``(batch, num_nodes, features)`` over one ``edge_index`` runs through the
        convs that take one, but a norm other than a per-node ``torch.nn.LayerNorm`` normalised the wrong axis (a
        ``BatchNorm1d`` took the nodes as channels) or across the graphs, and the virtual node indexed ``batch``
        by graph: wrong outputs or a failure inside torch."""
        norm = next((n for n in self.norms if not isinstance(n, (nn.Identity, nn.LayerNorm))), None)
        if norm is None and self.virtual_node is None:
            return
        why = (f"its norm {type(norm).__name__} normalises (num_nodes, channels) rows, not a static-graph batch "
               f"(batch, num_nodes, features); build it with norm=None" if norm is not None else
               "its virtual node takes one graph index per node (batch); build it without virtual_node")
        raise ValidationError(f"{type(self).__name__}: x must have shape (num_nodes, num_features), got {shape}; "
                              f"{why}, or batch the graphs into one (torch_geometric.data.Batch.from_data_list) "
                              f"and pass its batch vector")

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v}" for k, v in getattr(self, "_repr_settings", {}).items())
        return (f"{self.__class__.__name__}({self.layer_name}, {self.in_channels}, "
                f"{self.out_channels}, num_layers={self.num_layers}{extra})")


MODELS.register("gnn", GNN, summary="Node-level GNN stack over any registered layer")


def _num_graphs(owner: str, batch: Tensor, batch_size: Any) -> int:
    """The number of graphs :math:`B` of ``batch``: ``batch_size`` when given (graphs without nodes at the end of
    a batch have no entry in ``batch``), checked to be an int that covers ``batch``; else ``max(batch) + 1``."""
    if batch_size is None:
        return int(batch.max()) + 1 if batch.numel() else 0
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 0:
        raise ValidationError(f"{owner}: batch_size is the number of graphs of the batch, an int >= 0 "
                              f"(data.num_graphs), got {type(batch_size).__name__} {batch_size!r}")
    if _validate.scans_enabled() and batch.numel() and int(batch.max()) >= batch_size:
        raise ValidationError(f"{owner}: batch_size={batch_size} graphs, but batch assigns nodes to graph "
                              f"{int(batch.max())}; batch_size is the number of graphs of the batch, give "
                              f"batch_size=data.num_graphs")
    return int(batch_size)


def _takes_batch(norm: nn.Module) -> bool:
    """Whether ``norm.forward`` takes a ``batch`` vector (graph-wise norms), as PyG's ``BasicGNN`` checks."""
    return "batch" in inspect.signature(norm.forward).parameters


def hadamard(z: Tensor, pairs: Tensor) -> Tensor:
    r"""Rows :math:`\mathbf{z}_i \odot \mathbf{z}_j` for the node pairs ``pairs`` of shape ``(2, P)``.

    ``index_select`` rather than ``z[idx]``: its backward is one ``index_add_``,
    where advanced indexing's backward sorts the indices and accumulates with
    ``index_put_`` (forward and backward on a 64K-pair ogbl-ddi batch with two
    CPU threads: 1.3-1.5x faster; with one thread equal;
    ``benchmarks/results/link_decoder.md``).
    """
    return z.index_select(0, pairs[0]) * z.index_select(0, pairs[1])


def pair_dropout(h: Tensor, p: float, training: bool) -> Tensor:
    r"""Dropout of a decoder's hidden rows: :math:`h \cdot m / (1 - p)` with :math:`m \sim \mathrm{Bernoulli}(1 - p)`.

    The same distribution as ``F.dropout``. On CPU the mask is drawn as
    ``rand >= p``: torch's CPU ``F.dropout`` draws it with MKL's Bernoulli
    generator, which on this project's AMD EPYC machine makes forward and
    backward of a 65536 x 256 decoder batch about 2x slower
    (``benchmarks/results/link_decoder.md``). Other devices use
    ``F.dropout``'s fused kernel.
    """
    if not training or p == 0.0:
        return h
    if h.device.type != "cpu":
        return F.dropout(h, p, training)
    mask = torch.rand(h.shape, dtype=h.dtype, device=h.device).ge_(p).mul_(1.0 / (1.0 - p))
    return h * mask


class DotDecoder(nn.Module):
    r"""Inner-product edge decoder :math:`s_{ij} = \mathbf{z}_i^{\top} \mathbf{z}_j`."""

    def forward(self, z: Tensor, pairs: Tensor) -> Tensor:
        return hadamard(z, pairs).sum(dim=-1)


class MLPDecoder(nn.Module):
    r"""MLP on the Hadamard product: :math:`s_{ij} = \mathrm{MLP}(\mathbf{z}_i \odot \mathbf{z}_j)` (OGB's LinkPredictor)."""

    def __init__(self, channels: int, hidden_channels: int | None = None, num_layers: int = 3,
                 dropout: float = 0.0) -> None:
        super().__init__()
        _validate.require_int("MLPDecoder", "num_layers", num_layers)
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0.0 <= dropout < 1.0:
            raise ConfigError(f"MLPDecoder dropout must lie in [0, 1), got {dropout!r}")
        if hidden_channels is not None:  # 0 fell back to channels without a word
            _validate.require_int("MLPDecoder", "hidden_channels", hidden_channels)
        hidden_channels = hidden_channels or channels
        dims = [channels] + [hidden_channels] * (num_layers - 1) + [1]
        self.lins = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.dropout = dropout

    def reset_parameters(self) -> None:
        for lin in self.lins:
            lin.reset_parameters()

    def forward(self, z: Tensor, pairs: Tensor) -> Tensor:
        h = hadamard(z, pairs)
        for lin in self.lins[:-1]:
            h = pair_dropout(F.relu(lin(h)), self.dropout, self.training)
        return self.lins[-1](h).squeeze(-1)


class LinkGNN(nn.Module):
    """Link predictor: a GNN encoder and an edge decoder (``dot`` or ``mlp``).

    ``forward(x, edge_index, ...)`` returns node embeddings; ``decode(z, pairs)``
    returns one logit per node pair (``pairs`` of shape ``(2, P)``).
    """

    def __init__(self, decoder: str = "dot", decoder_layers: int = 3, decoder_dropout: float = 0.0,
                 **gnn_kwargs: Any) -> None:
        super().__init__()
        self.encoder = GNN(**gnn_kwargs)
        if decoder == "dot":
            self.decoder: nn.Module = DotDecoder()
        elif decoder == "mlp":
            self.decoder = MLPDecoder(self.encoder.out_channels, num_layers=decoder_layers,
                                      dropout=decoder_dropout)
        else:
            raise ConfigError(f"decoder must be 'dot' or 'mlp', got {decoder!r}")

    def reset_parameters(self) -> None:
        self.encoder.reset_parameters()
        if hasattr(self.decoder, "reset_parameters"):
            self.decoder.reset_parameters()

    def forward(self, x: Tensor | None, edge_index: Tensor, **kwargs: Any) -> Tensor:
        return self.encoder(x, edge_index, **kwargs)

    def decode(self, z: Tensor, pairs: Tensor) -> Tensor:
        """One logit per node pair: ``pairs`` is ``(2, P)`` with indices into the rows of ``z``."""
        _validate.check_pairs(type(self).__name__, pairs, z.size(0))
        return self.decoder(z, pairs)


MODELS.register("link_gnn", LinkGNN, summary="Link predictor: GNN encoder with dot-product or MLP decoder")


class GraphGNN(nn.Module):
    """Graph-level predictor: a GNN, a global pooling by name and a linear head.

    Args:
        out_channels: Number of predicted values per graph (tasks or classes).
        pool: Aggregation by PyG's resolver name (``mean``, ``sum``/``add``, ``max``, ...)
            or a configured ``torch_geometric.nn.aggr`` module (``Set2Set(hidden, 3)``).
        **gnn_kwargs: Arguments of :class:`GNN` (``layer``, ``hidden_channels``,
            ``num_layers``, ``virtual_node``, ``node_encoder``, ...).
    """

    def __init__(self, out_channels: int, pool: str | nn.Module = "mean", **gnn_kwargs: Any) -> None:
        super().__init__()
        _validate.require_int("graph_gnn", "out_channels (outputs per graph)", out_channels)
        gnn_kwargs.setdefault("out_channels", None)
        self.encoder = GNN(**gnn_kwargs)
        self.pool = resolve.aggregation(pool)
        self.head = nn.Linear(resolve.pooled_width(self.pool, self.encoder.out_channels), out_channels)

    def reset_parameters(self) -> None:
        self.encoder.reset_parameters()
        if hasattr(self.pool, "reset_parameters"):  # a configured aggregation (Set2Set's LSTM) learns too
            self.pool.reset_parameters()
        self.head.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None,
                edge_weight: Tensor | None = None, batch: Tensor | None = None,
                batch_size: int | None = None) -> Tensor:
        """One row of ``out_channels`` per graph; ``batch`` assigns nodes to graphs (default: one graph).
        ``batch_size`` is the number of graphs ``B`` (``data.num_graphs``, as PyG's models and its pooling's
        ``size`` take it); without it the rows are ``max(batch) + 1``, so graphs without nodes at the end of the
        batch get no row. A graph without nodes gets the head's output on its pooling's empty value (zeros for
        ``mean``, ``sum``, ``max``).
        The third positional argument is ``edge_attr`` (OGB's order), so pass the rest by keyword."""
        if (batch is None and isinstance(edge_attr, Tensor) and isinstance(x, Tensor) and edge_attr.dim() == 1
                and not edge_attr.is_floating_point() and edge_attr.numel() == x.size(0)):
            raise ValidationError("graph_gnn's third argument is edge_attr, but it got a 1-D integer tensor with one "
                                  "entry per node, PyG's batch vector; pass it as batch=... (model(x, edge_index, "
                                  "batch=data.batch))")
        if isinstance(x, Tensor) and x.dim() > 2:  # pooled over the wrong axis, or failed on its own batch vector
            raise ValidationError(f"graph_gnn: x must have shape (num_nodes, num_features), got {tuple(x.shape)}; "
                                  f"it pools the nodes of each graph by the batch vector, so batch the graphs into "
                                  f"one (torch_geometric.data.Batch.from_data_list) and pass batch=data.batch")
        if batch is None and isinstance(x, Tensor) and isinstance(edge_index, Tensor):
            batch = edge_index.new_zeros(x.size(0))
        h = self.encoder(x, edge_index, edge_weight=edge_weight, edge_attr=edge_attr, batch=batch,
                         batch_size=batch_size)
        return self.head(self.pool(h, batch, dim_size=_num_graphs("graph_gnn", batch, batch_size)))


MODELS.register("graph_gnn", GraphGNN, summary="Graph-level GNN with global pooling (optional virtual node)")
