r"""Multi-head attention as message passing on complete graphs.

Scaled dot-product attention from :math:`L` queries to :math:`S` keys is
message passing on the complete bipartite graph :math:`K_{S,L}` (the complete
graph with self-loops for self-attention, :func:`graphdl.graphs.complete`):
the edge :math:`j \to i` scores :math:`\mathbf{q}_i^{\top}\mathbf{k}_j /
\sqrt{d}`, the scores of the edges entering :math:`i` are normalised with a
softmax (PyG's :func:`~torch_geometric.utils.softmax`), and the message is the
weighted value :math:`\alpha_{ij}\mathbf{v}_j`. A boolean mask removes
edges; a float mask adds a bias to their scores. On any other graph the same
layer is graph attention restricted to the graph's edges.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import softmax

from graphdl.errors import ValidationError
from graphdl.graphs.complete import is_complete
from graphdl.layers import LAYERS
from graphdl.layers.grid import resolve_method
from graphdl.validate import check_graph_device

__all__ = ["CompleteMultiheadAttention"]


@LAYERS.register("complete_mha", aliases=("graph_mha",), graph="complete",
                 summary="Multi-head attention as message passing on a complete graph (equals nn.MultiheadAttention)")
class CompleteMultiheadAttention(MessagePassing):
    r"""Multi-head attention as message passing (equals :class:`torch.nn.MultiheadAttention`).

    For each head :math:`h` with :math:`d = E / H` channels,

    .. math::
        \alpha^{h}_{ij} = \operatorname{softmax}_{j \in \mathcal{N}(i)}\left(
            \frac{(\mathbf{W}^h_Q \mathbf{x}_i + \mathbf{b}^h_Q)^{\top}
            (\mathbf{W}^h_K \mathbf{x}_j + \mathbf{b}^h_K)}{\sqrt{d}} + m^h_{ij}\right),
        \qquad
        \mathbf{x}^{\prime}_i = \mathbf{W}_O \big\Vert_{h=1}^{H} \sum_{j \in \mathcal{N}(i)}
            \alpha^{h}_{ij} (\mathbf{W}^h_V \mathbf{x}_j + \mathbf{b}^h_V) + \mathbf{b}_O

    where :math:`\mathcal{N}(i)` are the keys linked to query :math:`i` (all
    of them on a complete graph, minus those removed by a boolean mask) and
    :math:`m^h_{ij}` the float mask (0 without one).

    Args:
        in_channels: Embedding size :math:`E` (``embed_dim``).
        out_channels: Must equal ``in_channels`` (``None`` for the same), as in torch.
        num_heads: Heads :math:`H` (``heads`` is accepted too); must divide :math:`E`.
        dropout: Dropout on the attention weights (training only).
        bias: Biases of the projections.
        kdim: Key features (default :math:`E`).
        vdim: Value features (default :math:`E`).
        batch_first: Layout of plain-tensor input, as in torch.
        lower: ``"auto"`` (dense kernel on plain tensors and complete graphs),
            ``True`` or ``False``.

    Shapes:
        - input: ``query`` :math:`(L, N, E)` (:math:`(N, L, E)` with
          ``batch_first``, or :math:`(L, E)`), ``key``/``value`` likewise with
          :math:`S`; or node features :math:`(|\mathcal{V}|, E)` with a graph
        - output: ``(attn_output, attn_weights)``; for a graph the node
          features :math:`(|\mathcal{V}|, E)` and the weights of each edge
          :math:`(|\mathcal{E}|, H)`

    A query whose keys are all masked has no incoming edge, so its output is
    the output bias (torch returns NaN there).
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, num_heads: int | None = None,
                 dropout: float = 0.0, bias: bool = True, kdim: int | None = None, vdim: int | None = None,
                 batch_first: bool = False, lower: bool | str = "auto", heads: int | None = None) -> None:
        super().__init__(aggr="add", node_dim=0)
        name = "complete_mha"
        if num_heads is not None and heads is not None and num_heads != heads:
            raise ValidationError(f"{name}: got num_heads={num_heads} and heads={heads}; pass one")
        num_heads = num_heads if num_heads is not None else (heads if heads is not None else 1)
        if out_channels is not None and out_channels != in_channels:
            raise ValidationError(f"{name}: out_channels must equal in_channels={in_channels} (the output has "
                                  f"embed_dim features, as in torch.nn.MultiheadAttention), got {out_channels}")
        if in_channels < 1 or num_heads < 1:
            raise ValidationError(f"{name}: embed_dim and num_heads must be >= 1, got embed_dim={in_channels} and "
                                  f"num_heads={num_heads}")
        if in_channels % num_heads:
            raise ValidationError(f"{name}: embed_dim={in_channels} must be divisible by num_heads={num_heads}")
        if not 0.0 <= dropout <= 1.0:
            raise ValidationError(f"{name}: dropout is a probability in [0, 1], got {dropout}")
        resolve_method(name, lower, None, True)
        self.embed_dim = self.in_channels = self.out_channels = int(in_channels)
        self.num_heads = int(num_heads)
        self.head_dim = self.embed_dim // self.num_heads
        self.kdim = int(kdim) if kdim is not None else self.embed_dim
        self.vdim = int(vdim) if vdim is not None else self.embed_dim
        self._qkv_same_embed_dim = self.kdim == self.embed_dim and self.vdim == self.embed_dim
        self.dropout = float(dropout)
        self.batch_first = bool(batch_first)
        self.lower = lower
        e = self.embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = nn.Parameter(torch.empty(3 * e, e))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = nn.Parameter(torch.empty(e, e))
            self.k_proj_weight = nn.Parameter(torch.empty(e, self.kdim))
            self.v_proj_weight = nn.Parameter(torch.empty(e, self.vdim))
            self.register_parameter("in_proj_weight", None)
        self.in_proj_bias = nn.Parameter(torch.empty(3 * e)) if bias else None
        self.out_proj = nn.Linear(e, e, bias=bias)
        self._alpha: Tensor | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The initialisation of :class:`torch.nn.MultiheadAttention`."""
        if self._qkv_same_embed_dim:
            nn.init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                nn.init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
        self.out_proj.reset_parameters()
        if self.out_proj.bias is not None:
            nn.init.zeros_(self.out_proj.bias)

    def _projections(self) -> tuple[Tensor, Tensor, Tensor]:
        if self._qkv_same_embed_dim:
            return tuple(self.in_proj_weight.chunk(3))  # type: ignore[return-value]
        return self.q_proj_weight, self.k_proj_weight, self.v_proj_weight

    def _biases(self) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        if self.in_proj_bias is None:
            return None, None, None
        return tuple(self.in_proj_bias.chunk(3))  # type: ignore[return-value]

    # ---------------------------------------------------------------- forward
    def forward(self, query: Tensor | Data, key: Tensor | Data | None = None, value: Tensor | None = None,
                key_padding_mask: Tensor | None = None, need_weights: bool = True, attn_mask: Tensor | None = None,
                average_attn_weights: bool = True, is_causal: bool = False, *,
                method: str | None = None) -> tuple[Tensor, Tensor | None]:
        r"""Attend; the tensor call mirrors :meth:`torch.nn.MultiheadAttention.forward`.

        ``layer(query, key, value, key_padding_mask=..., attn_mask=...)`` takes
        plain tensors; ``layer(x, graph)`` or ``layer(graph)`` runs
        self-attention along the edges of ``graph`` (a complete graph from
        :func:`graphdl.graphs.complete`, or any graph) and returns node features
        and per-edge, per-head weights. ``method`` overrides ``lower``.

        ``is_causal=True`` lets query :math:`i` attend to keys :math:`j \le i` only: it is torch's hint
        that ``attn_mask`` is the causal mask, and builds that mask when none is given (torch
        requires one).
        """
        if isinstance(query, Data) or isinstance(key, Data):
            if is_causal:
                raise ValidationError("complete_mha: is_causal applies to tensor inputs; on a graph keep only "
                                      "the edges j -> i with j <= i")
            unused = [name for name, arg in (("value", value), ("key_padding_mask", key_padding_mask),
                                             ("attn_mask", attn_mask)) if arg is not None]
            if isinstance(query, Data) and key is not None:
                unused.insert(0, "key")
            if unused:  # they would be ignored
                raise ValidationError(f"complete_mha: {', '.join(unused)} apply to tensor inputs, not to a graph "
                                      f"(layer(graph) or layer(x, graph)); on a graph remove the masked edges "
                                      f"from edge_index instead")
            if isinstance(query, Data):
                return self._forward_graph(query.x, query, need_weights, method)
            return self._forward_graph(query, key, need_weights, method)
        if not isinstance(query, Tensor):
            raise ValidationError(f"complete_mha: query must be a tensor or a graph, got {type(query).__name__}")
        key = query if key is None else key
        value = key if value is None else value
        for name, t in (("key", key), ("value", value)):
            if not isinstance(t, Tensor):
                raise ValidationError(f"complete_mha: {name} must be a tensor, got {type(t).__name__}")
        return self._forward_tensor(query, key, value, key_padding_mask, need_weights, attn_mask,
                                    average_attn_weights, method, is_causal)

    def _dense(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Tensor | None,
               need_weights: bool, attn_mask: Tensor | None, average: bool) -> tuple[Tensor, Tensor | None]:
        """``(L, N, E)`` inputs -> torch's functional kernel with this layer's parameters."""
        return F.multi_head_attention_forward(
            query, key, value, self.embed_dim, self.num_heads, self.in_proj_weight, self.in_proj_bias,
            None, None, False, self.dropout, self.out_proj.weight, self.out_proj.bias,
            training=self.training, key_padding_mask=key_padding_mask, need_weights=need_weights,
            attn_mask=attn_mask, use_separate_proj_weight=not self._qkv_same_embed_dim,
            q_proj_weight=self.q_proj_weight, k_proj_weight=self.k_proj_weight, v_proj_weight=self.v_proj_weight,
            average_attn_weights=average,
        )

    def _forward_tensor(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Tensor | None,
                        need_weights: bool, attn_mask: Tensor | None, average: bool,
                        method: str | None, is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        dims = {query.dim(), key.dim(), value.dim()}
        if dims not in ({2}, {3}):
            raise ValidationError(f"complete_mha: query, key and value must all be 3D "
                                  f"({'N, L, E' if self.batch_first else 'L, N, E'}) or all 2D (L, E); got shapes "
                                  f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
        unbatched = query.dim() == 2
        if unbatched:
            query, key, value = query[:, None], key[:, None], value[:, None]
            if key_padding_mask is not None:
                # checked before the batch axis is added: the shape check below would quote it
                if isinstance(key_padding_mask, Tensor) and key_padding_mask.dim() != 1:
                    raise ValidationError(f"complete_mha: for unbatched (L, E) inputs key_padding_mask must be 1D "
                                          f"(S,) = ({key.size(0)},), got {tuple(key_padding_mask.shape)}")
                key_padding_mask = key_padding_mask[None]
        elif self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        (_, n, e), (s, nk, ek), (sv, nv, ev) = query.shape, key.shape, value.shape
        if e != self.embed_dim or ek != self.kdim or ev != self.vdim:
            raise ValidationError(f"complete_mha: expected query/key/value features ({self.embed_dim}, {self.kdim}, "
                                  f"{self.vdim}), got ({e}, {ek}, {ev})")
        if nk != n or nv != n or sv != s:
            raise ValidationError(f"complete_mha: key and value must have the batch size of the query and the "
                                  f"same length; got query {tuple(query.shape)}, key {tuple(key.shape)}, "
                                  f"value {tuple(value.shape)} (sequence-first)")
        for name, t in (("query", query), ("key", key), ("value", value)):
            self._check_tensor(t, name)
        self._check_masks(n, query.size(0), s, key_padding_mask, attn_mask, query.device)
        if is_causal and attn_mask is None:
            attn_mask = torch.ones(query.size(0), s, dtype=torch.bool, device=query.device).triu(1)
        if resolve_method("complete_mha", self.lower, method, True) == "dense":
            if attn_mask is not None and attn_mask.is_floating_point():
                attn_mask = attn_mask.to(query.dtype)  # as the message-passing path reads a float mask
            if key_padding_mask is not None and key_padding_mask.is_floating_point():
                key_padding_mask = key_padding_mask.to(query.dtype)
            out, weights = self._dense(query, key, value, key_padding_mask, need_weights, attn_mask, average)
        else:
            out, weights = self._tensor_message_passing(query, key, value, key_padding_mask, need_weights,
                                                        attn_mask, average)
        if unbatched:
            return out[:, 0], (weights[0] if weights is not None else None)
        if self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def _check_tensor(self, t: Tensor, name: str) -> None:
        """``t`` must be float, of the parameters' dtype and on their device (torch fails deep inside)."""
        if not isinstance(t, Tensor):
            raise ValidationError(f"complete_mha: {name} must be a tensor, got {type(t).__name__}")
        ref = self.out_proj.weight
        if not t.is_floating_point():
            raise ValidationError(f"complete_mha: {name} has dtype {t.dtype} but the layer takes float features; "
                                  f"convert with {name}.to({ref.dtype})")
        if t.dtype != ref.dtype:
            raise ValidationError(f"complete_mha: {name} has dtype {t.dtype} but the parameters are {ref.dtype}; "
                                  f"convert with {name}.to({ref.dtype}) or the layer with .to({t.dtype})")
        if t.device != ref.device:
            raise ValidationError(f"complete_mha: {name} is on {t.device} but the parameters are on {ref.device}; "
                                  f"move it with {name}.to({str(ref.device)!r}) or the layer with "
                                  f".to({str(t.device)!r})")

    def _check_masks(self, n: int, lq: int, s: int, key_padding_mask: Any, attn_mask: Any,
                     device: torch.device) -> None:
        """Shapes ``(N, S)`` and ``(L, S)`` / ``(N*num_heads, L, S)``, bool or float, on the inputs' device."""
        shapes = {"key_padding_mask": [(n, s)], "attn_mask": [(lq, s), (n * self.num_heads, lq, s)]}
        for name, mask in (("key_padding_mask", key_padding_mask), ("attn_mask", attn_mask)):
            if mask is None:
                continue
            if not isinstance(mask, Tensor):
                raise ValidationError(f"complete_mha: {name} must be a tensor, got {type(mask).__name__}")
            if tuple(mask.shape) not in shapes[name]:
                want = (f"(N, S) = ({n}, {s})" if name == "key_padding_mask" else
                        f"(L, S) = ({lq}, {s}) or (N*num_heads, L, S) = ({n * self.num_heads}, {lq}, {s})")
                raise ValidationError(f"complete_mha: {name} must have shape {want}, got {tuple(mask.shape)}")
            if mask.dtype != torch.bool and not mask.is_floating_point():
                raise ValidationError(f"complete_mha: {name} must be bool (True removes the key) or float (added "
                                      f"to the scores), got {mask.dtype}; use {name}.bool()")
            if mask.device != device:
                raise ValidationError(f"complete_mha: {name} is on {mask.device} but the inputs are on {device}; "
                                      f"move it with {name}.to({str(device)!r})")

    def _mask_bias(self, n: int, lq: int, s: int, key_padding_mask: Tensor | None,
                   attn_mask: Tensor | None, like: Tensor) -> Tensor | None:
        """Both masks (checked by :meth:`_check_masks`) as one additive bias ``(N, H, L, S)``
        (``-inf`` where a boolean mask is True)."""
        bias: Tensor | None = None

        def as_float(mask: Tensor) -> Tensor:
            if mask.dtype == torch.bool:
                return torch.zeros(mask.shape, dtype=like.dtype, device=like.device).masked_fill(mask, float("-inf"))
            return mask.to(like.dtype)

        if key_padding_mask is not None:
            bias = as_float(key_padding_mask).view(n, 1, 1, s)
        if attn_mask is not None:
            if tuple(attn_mask.shape) == (lq, s):
                m = as_float(attn_mask).view(1, 1, lq, s)
            else:
                m = as_float(attn_mask).view(n, self.num_heads, lq, s)
            bias = m if bias is None else bias + m
        if bias is None:
            return None
        return bias.expand(n, self.num_heads, lq, s)

    def _tensor_message_passing(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Tensor | None,
                                need_weights: bool, attn_mask: Tensor | None,
                                average: bool) -> tuple[Tensor, Tensor | None]:
        lq, n, _ = query.shape
        s = key.shape[0]
        dev = query.device
        # the complete bipartite graph of each batch element: key (b, j) -> query (b, i), edges (b, i, j)
        b_idx = torch.arange(n, device=dev).view(n, 1, 1)
        i_idx = torch.arange(lq, device=dev).view(1, lq, 1)
        j_idx = torch.arange(s, device=dev).view(1, 1, s)
        src = (b_idx * s + j_idx).expand(n, lq, s).reshape(-1)
        dst = (b_idx * lq + i_idx).expand(n, lq, s).reshape(-1)
        bias = self._mask_bias(n, lq, s, key_padding_mask, attn_mask, query)
        keep: Tensor | None = None
        edge_bias: Tensor | None = None
        if bias is not None:
            edge_bias = bias.permute(0, 2, 3, 1).reshape(-1, self.num_heads)  # (E, H)
            keep = ~torch.isneginf(edge_bias).all(dim=1)  # boolean masks remove edges
            src, dst, edge_bias = src[keep], dst[keep], edge_bias[keep]
        edge_index = torch.stack([src, dst])
        to_nodes = lambda t: t.transpose(0, 1).reshape(-1, t.size(-1))  # noqa: E731  (L, N, F) -> (N*L, F)
        out, alpha = self._attend(to_nodes(query), to_nodes(key), to_nodes(value), edge_index, edge_bias)
        out = out.view(n, lq, self.embed_dim).transpose(0, 1)
        if not need_weights:
            return out, None
        dense = alpha.new_zeros(n * lq * s, self.num_heads)
        if keep is None:
            dense = alpha
        else:
            dense[keep] = alpha
        weights = dense.view(n, lq, s, self.num_heads).permute(0, 3, 1, 2)
        return out, (weights.mean(dim=1) if average else weights)

    def _attend(self, xq: Tensor, xk: Tensor, xv: Tensor, edge_index: Tensor,
                edge_bias: Tensor | None) -> tuple[Tensor, Tensor]:
        """Message passing from key nodes to query nodes; returns node outputs and per-edge weights."""
        wq, wk, wv = self._projections()
        bq, bk, bv = self._biases()
        h, d = self.num_heads, self.head_dim
        q = F.linear(xq, wq, bq).view(-1, h, d) * math.sqrt(1.0 / d)
        k = F.linear(xk, wk, bk).view(-1, h, d)
        v = F.linear(xv, wv, bv).view(-1, h, d)
        out = self.propagate(edge_index, q=q, k=k, v=v, edge_bias=edge_bias, size=(k.size(0), q.size(0)))
        alpha, self._alpha = self._alpha, None
        assert alpha is not None
        return self.out_proj(out.reshape(-1, self.embed_dim)), alpha

    def message(self, q_i: Tensor, k_j: Tensor, v_j: Tensor, edge_bias: Tensor | None, index: Tensor,
                ptr: Tensor | None, size_i: int | None) -> Tensor:
        score = (q_i * k_j).sum(dim=-1)  # (E, H)
        if edge_bias is not None:
            score = score + edge_bias
        alpha = softmax(score, index, ptr, size_i)
        if self.training and self.dropout > 0:
            alpha = F.dropout(alpha, self.dropout, training=True)
        self._alpha = alpha
        return alpha.unsqueeze(-1) * v_j

    def _forward_graph(self, x: Tensor, graph: Data, need_weights: bool,
                       method: str | None) -> tuple[Tensor, Tensor | None]:
        if not isinstance(x, Tensor) or x.dim() != 2 or x.size(1) != self.embed_dim:
            raise ValidationError(f"complete_mha: node features must have shape (num_nodes, {self.embed_dim}), got "
                                  f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
        if not self._qkv_same_embed_dim:
            raise ValidationError("complete_mha: graph self-attention needs kdim == vdim == embed_dim")
        self._check_tensor(x, "x")
        check_graph_device("complete_mha", x, graph)
        size = graph["complete_size"] if "complete_size" in graph else None
        cross = isinstance(size, Tensor) and size.dim() == 2 and size.size(1) == 3
        if cross and bool((size[:, 0] != size[:, 1]).any()):
            n, m = (int(v) for v in size[0, :2])
            raise ValidationError(f"complete_mha: the graph runs from {m} source (key) nodes to {n} target (query) "
                                  f"nodes, but the graph path is self-attention among one set of nodes (x); for "
                                  f"cross attention call the layer with tensors, layer(query, key, value), query "
                                  f"of shape {'(N, L, E)' if self.batch_first else '(L, N, E)'} and key/value "
                                  f"{'(N, S, E)' if self.batch_first else '(S, N, E)'}")
        # the graph's own node count, where it states one (graph.num_nodes would guess from edge_index)
        num_nodes = graph.num_nodes if "num_nodes" in graph or isinstance(graph.x, Tensor) else None
        if num_nodes is not None and x.size(0) != num_nodes:
            raise ValidationError(f"complete_mha: the graph has {num_nodes} nodes but the node features have "
                                  f"{x.size(0)} rows; pass one row per node (the graph's x)")
        # is_complete compares every edge: skip it when message passing is asked for anyway
        regular = ((method or self.lower) not in ("message_passing", False) and is_complete(graph)
                   and x.size(0) == graph["complete_size"].size(0) * int(graph["complete_size"][0, 0]))
        if resolve_method("complete_mha", self.lower, method, regular,
                          "the graph is not an unedited complete graph") == "dense":
            b, n = graph["complete_size"].size(0), int(graph["complete_size"][0, 0])
            seq = x.view(b, n, self.embed_dim).transpose(0, 1)
            out, weights = self._dense(seq, seq, seq, None, need_weights, None, False)
            out = out.transpose(0, 1).reshape(b * n, self.embed_dim)
            # complete() numbers the edges (graph, target i, source j)
            return out, (weights.permute(0, 2, 3, 1).reshape(-1, self.num_heads) if weights is not None else None)
        out, alpha = self._attend(x, x, x, graph.edge_index, None)
        return out, (alpha if need_weights else None)

    # ------------------------------------------------------------ torch.nn I/O
    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention, lower: bool | str = "auto") -> CompleteMultiheadAttention:
        """A layer with the hyper-parameters and a copy of the weights of ``mha``."""
        if not isinstance(mha, nn.MultiheadAttention):
            raise ValidationError(f"complete_mha.from_torch expects a torch.nn.MultiheadAttention, got "
                                  f"{type(mha).__name__}")
        _check_supported(mha)
        layer = cls(mha.embed_dim, None, mha.num_heads, mha.dropout, mha.in_proj_bias is not None, mha.kdim,
                    mha.vdim, mha.batch_first, lower)
        # convert before copying: a float64 module's weights copied into float32 ones were rounded
        layer.to(device=mha.out_proj.weight.device, dtype=mha.out_proj.weight.dtype)
        layer.train(mha.training)  # an eval-mode module converts to one without dropout
        return layer.load_from_torch(mha)

    def load_from_torch(self, mha: nn.MultiheadAttention) -> CompleteMultiheadAttention:
        """Copy the weights of ``mha`` into this layer (hyper-parameters must match)."""
        if not isinstance(mha, nn.MultiheadAttention):
            raise ValidationError(f"complete_mha: can only load weights from a torch.nn.MultiheadAttention, got "
                                  f"{type(mha).__name__}")
        _check_supported(mha)
        for attr in ("embed_dim", "num_heads", "kdim", "vdim"):
            if getattr(self, attr) != getattr(mha, attr):
                raise ValidationError(f"complete_mha: mismatched {attr}: the torch module has {getattr(mha, attr)}, "
                                      f"this layer {getattr(self, attr)}")
        if (self.in_proj_bias is None) != (mha.in_proj_bias is None):
            raise ValidationError(f"complete_mha: mismatched bias: the torch module has bias="
                                  f"{mha.in_proj_bias is not None}, this layer {self.in_proj_bias is not None}")
        names = ["in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias"]
        with torch.no_grad():
            for pname in names:
                mine, theirs = getattr(self, pname), getattr(mha, pname)
                if (mine is None) != (theirs is None) or (mine is not None and mine.shape != theirs.shape):
                    raise ValidationError(f"complete_mha: mismatched weight {pname}: the torch module's is "
                                          f"{_shape(theirs)}, this layer's {_shape(mine)}")
                if mine is not None:
                    mine.copy_(theirs)
            self.out_proj.weight.copy_(mha.out_proj.weight)
            if self.out_proj.bias is not None:
                self.out_proj.bias.copy_(mha.out_proj.bias)
        return self

    def to_torch(self) -> nn.MultiheadAttention:
        """The equivalent :class:`torch.nn.MultiheadAttention`, with a copy of the weights."""
        ref = self.out_proj.weight
        mha = nn.MultiheadAttention(self.embed_dim, self.num_heads, self.dropout, self.in_proj_bias is not None,
                                    kdim=self.kdim, vdim=self.vdim, batch_first=self.batch_first,
                                    device=ref.device, dtype=ref.dtype)
        mha.train(self.training)
        with torch.no_grad():
            for pname in ["in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias"]:
                if getattr(self, pname) is not None:
                    getattr(mha, pname).copy_(getattr(self, pname))
            mha.out_proj.weight.copy_(self.out_proj.weight)
            if self.out_proj.bias is not None:
                mha.out_proj.bias.copy_(self.out_proj.bias)
        return mha

    def extra_repr(self) -> str:
        return (f"{self.embed_dim}, num_heads={self.num_heads}, kdim={self.kdim}, vdim={self.vdim}, "
                f"dropout={self.dropout}, batch_first={self.batch_first}, lower={self.lower!r}")

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.extra_repr()})"


def _shape(t: Any) -> Any:
    return tuple(t.shape) if t is not None else None


def _check_supported(mha: nn.MultiheadAttention) -> None:
    if mha.bias_k is not None or mha.bias_v is not None:
        raise ValidationError("complete_mha: add_bias_kv=True is not supported")
    if mha.add_zero_attn:
        raise ValidationError("complete_mha: add_zero_attn=True is not supported")
