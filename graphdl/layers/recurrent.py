r"""GRU and LSTM as message passing along chain graphs.

On a chain graph (:func:`graphdl.graphs.chain`) the hidden state of node
:math:`t` is computed from its input :math:`\mathbf{x}_t` and the message
:math:`\mathbf{h}_{t-1}` (and :math:`\mathbf{c}_{t-1}` for the LSTM) that
arrives along the edge :math:`t-1 \to t`. The recursion is sequential: the
layer runs :math:`T` propagation steps, step :math:`s` passing messages along
the edges that end at the nodes of position :math:`s` of every sequence. A
bidirectional layer runs a second recursion along the reversed edges and
concatenates both directions, and a multi-layer network feeds each layer's
node states to the next, exactly as :class:`torch.nn.GRU` /
:class:`torch.nn.LSTM` do.

On a plain chain (or a plain ``(T, N, F)`` tensor) the layer lowers to the
ATen recurrent kernel (``torch._VF.gru`` / ``torch._VF.lstm``) with the same
parameters, which it stores under :mod:`torch.nn`'s names
(``weight_ih_l0``, ``bias_hh_l1_reverse``, ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Union

import torch
import torch.nn.functional as F
from torch import Tensor, _VF, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
from torch_geometric.data import Data
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import scatter, to_dense_batch

from graphdl.errors import ValidationError
from graphdl.graphs.chain import chain_edges, is_plain_chain
from graphdl.layers import LAYERS
from graphdl.layers.grid import resolve_method
from graphdl.validate import check_graph_device

__all__ = ["ChainGRU", "ChainLSTM"]

State = Union[Tensor, tuple[Tensor, Tensor]]


@dataclass
class _Schedule:
    """The propagation order of one direction over a set of chains."""

    inverse: Tensor  # node id -> row in the step-ordered outputs
    order: Tensor  # step-ordered row -> node id
    counts: list[int]  # nodes per step
    edges: list[Tensor]  # per step: (2, E_s) local (source row in step s-1, target row in step s)
    start_rows: list[Tensor | None]  # per step: rows without incoming edge (they read the initial state)
    start_seqs: list[Tensor | None]  # ... and their sequence ids
    final: Tensor  # (N,) node id where each sequence's recursion ends


def _schedule(step: Tensor, edge_index: Tensor, batch: Tensor, num_seqs: int, direction: str) -> _Schedule:
    n = step.numel()
    num_steps = int(step.max()) + 1 if n else 0
    src, dst = edge_index
    if src.numel() and not bool((step[src] == step[dst] - 1).all()):
        bad = int(torch.nonzero(step[src] != step[dst] - 1)[0, 0])
        raise ValidationError(
            f"recurrent layer: the {direction} edge {int(src[bad])} -> {int(dst[bad])} does not link "
            f"consecutive time steps ({int(step[src[bad]])} -> {int(step[dst[bad]])}); recurrent message "
            f"passing needs chain graphs from graphdl.graphs.chain"
        )
    order = torch.argsort(step, stable=True)
    counts_t = torch.bincount(step, minlength=num_steps)
    first = torch.cumsum(counts_t, 0) - counts_t
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(n, device=step.device)
    pos = inverse - first[step]
    estep = step[dst]
    eorder = torch.argsort(estep, stable=True)
    local = torch.stack([pos[src], pos[dst]])[:, eorder]
    ecounts = torch.bincount(estep, minlength=num_steps).tolist()
    edges = list(torch.split(local, ecounts, dim=1))
    has_in = torch.zeros(n, dtype=torch.bool, device=step.device)
    has_in[dst] = True
    counts = counts_t.tolist()
    start_rows: list[Tensor | None] = []
    start_seqs: list[Tensor | None] = []
    for nodes in torch.split(order, counts):
        rows = torch.nonzero(~has_in[nodes]).view(-1)
        start_rows.append(rows if rows.numel() else None)
        start_seqs.append(batch[nodes[rows]] if rows.numel() else None)
    last = scatter(step, batch, dim=0, dim_size=num_seqs, reduce="max")
    is_final = step == last[batch]
    final = torch.zeros(num_seqs, dtype=torch.long, device=step.device)
    final[batch[is_final]] = torch.arange(n, device=step.device)[is_final]
    return _Schedule(inverse, order, counts, edges, start_rows, start_seqs, final)


class _ChainRNN(MessagePassing):
    """Shared machinery of :class:`ChainGRU` and :class:`ChainLSTM`."""

    mode = ""  # "GRU" or "LSTM"
    gates = 0
    torch_cls: type[nn.RNNBase] = nn.RNNBase
    registry_name = ""

    def __init__(self, in_channels: int, out_channels: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 lower: bool | str = "auto") -> None:
        super().__init__(aggr="add")
        name = self.registry_name
        for what, value in (("in_channels", in_channels), ("out_channels", out_channels), ("num_layers", num_layers)):
            # int() would truncate a float (torch.nn raises a TypeError)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(f"{name}: {what} must be an int >= 1, got {value!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout <= 1.0:
            raise ValidationError(f"{name}: dropout must lie in [0, 1], got {dropout!r}")
        resolve_method(name, lower, None, True)
        self.input_size = self.in_channels = int(in_channels)
        self.hidden_size = int(out_channels)
        self.out_channels = self.hidden_size * (2 if bidirectional else 1)
        self.num_layers = int(num_layers)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.lower = lower
        self._flat_weights_names: list[str] = []
        g, h = self.gates, self.hidden_size
        for layer in range(self.num_layers):
            layer_in = self.input_size if layer == 0 else h * self.num_directions
            for suffix in self._suffixes:
                names = [f"weight_ih_l{layer}{suffix}", f"weight_hh_l{layer}{suffix}"]
                shapes = [(g * h, layer_in), (g * h, h)]
                if self.bias:
                    names += [f"bias_ih_l{layer}{suffix}", f"bias_hh_l{layer}{suffix}"]
                    shapes += [(g * h,), (g * h,)]
                for pname, shape in zip(names, shapes):
                    self.register_parameter(pname, nn.Parameter(torch.empty(shape)))
                self._flat_weights_names += names
        self.reset_parameters()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def _suffixes(self) -> list[str]:
        return ["", "_reverse"][: self.num_directions]

    def reset_parameters(self) -> None:
        """The initialisation of :mod:`torch.nn`'s recurrent layers: :math:`U(-1/\\sqrt{H}, 1/\\sqrt{H})`."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _flat_weights(self) -> list[Tensor]:
        return [getattr(self, n) for n in self._flat_weights_names]

    def _weights(self, layer: int, direction: int) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        suffix = self._suffixes[direction]
        w_ih = getattr(self, f"weight_ih_l{layer}{suffix}")
        w_hh = getattr(self, f"weight_hh_l{layer}{suffix}")
        b_ih = getattr(self, f"bias_ih_l{layer}{suffix}") if self.bias else None
        b_hh = getattr(self, f"bias_hh_l{layer}{suffix}") if self.bias else None
        return w_ih, w_hh, b_ih, b_hh

    # ------------------------------------------------------------ the cells
    def _cell(self, gi: Tensor, state: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> Tensor:
        """One update; ``state`` is the aggregated message, ``[h]`` or ``[h, c]``."""
        raise NotImplementedError

    def message(self, x_j: Tensor) -> Tensor:
        return x_j  # the state of the previous time step travels along the edge

    # ------------------------------------------------------------ forward
    def forward(self, x: Tensor | Data, graph: Data | State | None = None, hx: State | None = None, *,
                method: str | None = None) -> tuple[Tensor, State]:
        """Run the recurrent network.

        - ``layer(input, hx=None)``: as the :mod:`torch.nn` module, ``input``
          :math:`(T, N, F)` (:math:`(N, T, F)` with ``batch_first``, or
          unbatched :math:`(T, F)`); returns ``(output, h_n)`` (LSTM:
          ``(output, (h_n, c_n))``).
        - ``layer(x, graph, hx=None)`` or ``layer(graph)``: node features
          :math:`(|\\mathcal{V}|, F)` of a chain graph; returns the node states
          :math:`(|\\mathcal{V}|, D H)` and the final states
          :math:`(L D, N, H)` of its :math:`N` sequences.

        ``method`` (``"dense"``, ``"message_passing"``, ``"auto"``) overrides ``lower``.
        """
        if isinstance(x, Data):
            if graph is not None and hx is None and not isinstance(graph, Data):
                graph, hx = None, graph
            graph, x = x, x.x
        elif graph is not None and not isinstance(graph, Data):
            if hx is not None:
                raise ValidationError(f"{self.registry_name}: pass either a graph and hx, or only hx")
            graph, hx = None, graph
        if not isinstance(x, Tensor):
            raise ValidationError(f"{self.registry_name}: input must be a tensor or a chain graph, "
                                  f"got {type(x).__name__}; for sequences of different lengths pass "
                                  f"graphdl.graphs.chain([seq, ...]), each seq of shape (T_i, F)")
        if graph is None:
            return self._forward_tensor(x, hx, method)
        return self._forward_graph(x, graph, hx, method)

    def _check_features(self, x: Tensor, name: str = "input") -> None:
        if x.size(-1) != self.input_size:
            raise ValidationError(f"{self.registry_name}: {name} has {x.size(-1)} features, the layer expects "
                                  f"in_channels={self.input_size}")
        self._check_dtype(x, name)

    def _check_dtype(self, t: Tensor, name: str) -> None:
        """``t`` must be float, of the weights' dtype and on their device (torch fails deep inside otherwise)."""
        ref = self.weight_ih_l0
        if not t.is_floating_point():
            raise ValidationError(f"{self.registry_name}: {name} has dtype {t.dtype} but the layer takes float "
                                  f"features; convert with {name}.to({ref.dtype})")
        if t.dtype != ref.dtype:
            raise ValidationError(f"{self.registry_name}: {name} has dtype {t.dtype} but the weights are "
                                  f"{ref.dtype}; convert with {name}.to({ref.dtype}) or the layer with "
                                  f".to({t.dtype})")
        if t.device != ref.device:
            raise ValidationError(f"{self.registry_name}: {name} is on {t.device} but the weights are on "
                                  f"{ref.device}; move it with {name}.to({str(ref.device)!r}) or the layer with "
                                  f".to({str(t.device)!r})")

    def _check_hx(self, hx: State | None, num_seqs: int, x: Tensor) -> tuple[Tensor, ...]:
        shape = (self.num_layers * self.num_directions, num_seqs, self.hidden_size)
        count = 2 if self.mode == "LSTM" else 1
        if hx is None:
            zeros = x.new_zeros(shape)
            return (zeros,) * count
        states = tuple(hx) if isinstance(hx, (tuple, list)) else (hx,)
        if len(states) != count:
            raise ValidationError(f"{self.registry_name}: hx must be "
                                  f"{'a tuple (h_0, c_0)' if count == 2 else 'one tensor h_0'}")
        for i, s in enumerate(states):
            if not isinstance(s, Tensor) or tuple(s.shape) != shape:
                raise ValidationError(f"{self.registry_name}: initial state must have shape {shape} "
                                      f"(num_layers*num_directions, N, hidden), got "
                                      f"{tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__}")
            self._check_dtype(s, f"hx[{i}]" if count == 2 else "hx")
        return states

    def _pack_state(self, states: tuple[Tensor, ...]) -> State:
        return states[0] if self.mode == "GRU" else (states[0], states[1])

    def _forward_tensor(self, x: Tensor, hx: State | None, method: str | None) -> tuple[Tensor, State]:
        if x.dim() not in (2, 3):
            raise ValidationError(f"{self.registry_name}: input must be (T, N, F), (N, T, F) with batch_first, "
                                  f"or unbatched (T, F); got shape {tuple(x.shape)}")
        self._check_features(x)
        unbatched = x.dim() == 2
        if unbatched:
            x = x.unsqueeze(0 if self.batch_first else 1)
            if hx is not None:
                # checked before the batch axis is added: the shape check below would quote it
                want = (self.num_layers * self.num_directions, self.hidden_size)
                for s in (hx if isinstance(hx, (tuple, list)) else (hx,)):
                    if isinstance(s, Tensor) and tuple(s.shape) != want:
                        raise ValidationError(
                            f"{self.registry_name}: for unbatched (T, F) input the initial state must be 2D "
                            f"(num_layers*num_directions, hidden) = "
                            f"({self.num_layers * self.num_directions}, {self.hidden_size}), got "
                            f"{tuple(s.shape)}; for a batch of one pass input[:, None] (input[None] with "
                            f"batch_first)")
                hx = tuple(s.unsqueeze(1) for s in hx) if isinstance(hx, (tuple, list)) else hx.unsqueeze(1)
        seq = x if self.batch_first else x.transpose(0, 1)  # (N, T, F)
        n, t = seq.shape[:2]
        if t == 0:
            raise ValidationError(f"{self.registry_name}: got a sequence of length 0; need at least one step")
        states = self._check_hx(hx, n, x)
        if resolve_method(self.registry_name, self.lower, method, True) == "dense":
            out, final = self._dense(seq, states)
        else:
            lengths = torch.full((n,), t, dtype=torch.long, device=x.device)
            nodes, final = self._message_passing(seq.reshape(n * t, seq.size(-1)), lengths,
                                                 torch.arange(t, device=x.device).repeat(n), None, None, states)
            out = nodes.view(n, t, nodes.size(-1))  # -1 is ambiguous for a batch of 0 sequences
        if not self.batch_first:
            out = out.transpose(0, 1)
        if unbatched:
            out = out.squeeze(0 if self.batch_first else 1)
            final = tuple(s.squeeze(1) for s in final)
        return out, self._pack_state(final)

    def _forward_graph(self, x: Tensor, graph: Data, hx: State | None, method: str | None) -> tuple[Tensor, State]:
        if x.dim() != 2:
            raise ValidationError(f"{self.registry_name}: node features must be 2D (num_nodes, F), "
                                  f"got {tuple(x.shape)}")
        self._check_features(x, "x")
        if "time" not in graph or "lengths" not in graph:
            raise ValidationError(f"{self.registry_name}: the graph needs 'time' and 'lengths' attributes; "
                                  f"build it with graphdl.graphs.chain")
        check_graph_device(self.registry_name, x, graph, time=graph["time"], lengths=graph["lengths"],
                           direction=graph.get("direction"))
        lengths = graph["lengths"].view(-1)
        if x.size(0) != int(lengths.sum()):
            raise ValidationError(f"{self.registry_name}: {x.size(0)} node features for chains with "
                                  f"{int(lengths.sum())} nodes")
        if int(lengths.min()) < 1:
            raise ValidationError(f"{self.registry_name}: a chain of length 0; every sequence needs a step")
        states = self._check_hx(hx, lengths.numel(), x)
        regular = is_plain_chain(graph)
        if resolve_method(self.registry_name, self.lower, method, regular,
                          "the graph is not an unedited chain graph") == "dense":
            if bool((lengths == lengths[0]).all()):
                out, final = self._dense(x.view(lengths.numel(), int(lengths[0]), -1), states)
                return out.reshape(x.size(0), -1), self._pack_state(final)
            return self._dense_packed(x, graph, lengths, states)
        direction = graph["direction"].view(-1) if "direction" in graph else None
        out, final = self._message_passing(x, lengths, graph["time"].view(-1), graph.edge_index, direction, states)
        return out, self._pack_state(final)

    # ------------------------------------------------------------ lowered
    def _call_vf(self, *args: Any) -> tuple[Tensor, tuple[Tensor, ...]]:
        fn = _VF.gru if self.mode == "GRU" else _VF.lstm
        res = fn(*args)
        return res[0], tuple(res[1:])

    def _hx_arg(self, states: tuple[Tensor, ...]) -> Any:
        return states[0] if self.mode == "GRU" else states

    def _dense(self, seq: Tensor, states: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        """``seq`` is (N, T, F); returns (N, T, D H) and the final states."""
        return self._call_vf(seq, self._hx_arg(states), self._flat_weights(), self.bias, self.num_layers,
                             self.dropout, self.training, self.bidirectional, True)

    def _dense_packed(self, x: Tensor, graph: Data, lengths: Tensor,
                      states: tuple[Tensor, ...]) -> tuple[Tensor, State]:
        batch = torch.repeat_interleave(torch.arange(lengths.numel(), device=x.device), lengths)
        padded, mask = to_dense_batch(x, batch, batch_size=lengths.numel())
        packed = pack_padded_sequence(padded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        hx = tuple(s.index_select(1, packed.sorted_indices) for s in states)
        data, final = self._call_vf(packed.data, packed.batch_sizes, self._hx_arg(hx), self._flat_weights(),
                                    self.bias, self.num_layers, self.dropout, self.training, self.bidirectional)
        out, _ = pad_packed_sequence(PackedSequence(data, packed.batch_sizes, packed.sorted_indices,
                                                    packed.unsorted_indices), batch_first=True,
                                     total_length=padded.size(1))
        final = tuple(s.index_select(1, packed.unsorted_indices) for s in final)
        return out[mask], self._pack_state(final)

    # ------------------------------------------------------------ message passing
    def _message_passing(self, x: Tensor, lengths: Tensor, time: Tensor, edge_index: Tensor | None,
                         direction: Tensor | None, states: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        num_seqs = lengths.numel()
        batch = torch.repeat_interleave(torch.arange(num_seqs, device=x.device), lengths)
        if batch.numel() != time.numel() or bool((time < 0).any()) or bool((time >= lengths[batch]).any()):
            raise ValidationError(f"{self.registry_name}: 'time' must give each node's position in its "
                                  f"sequence (0 <= time < length)")
        if edge_index is None:
            edge_index, direction = chain_edges(lengths.tolist(), self.bidirectional, x.device)
        if direction is None:  # edges against time order are the backward ones, as chain() labels them
            direction = (time[edge_index[1]] < time[edge_index[0]]).long()
        fwd = edge_index[:, direction == 0]
        bwd = edge_index[:, direction == 1]
        if bwd.size(1) == 0:
            bwd = fwd.flip(0)  # backward messages travel along the reversed chain
        schedules = [_schedule(time, fwd, batch, num_seqs, "forward")]
        if self.bidirectional:
            schedules.append(_schedule(lengths[batch] - 1 - time, bwd, batch, num_seqs, "backward"))
        finals: list[list[Tensor]] = [[] for _ in states]
        layer_in = x
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0 and self.training:
                layer_in = F.dropout(layer_in, self.dropout, training=True)
            outs = []
            for d, sched in enumerate(schedules):
                k = layer * self.num_directions + d
                init = torch.cat([s[k] for s in states], dim=-1)  # (N, H) or (N, 2H)
                node_state = self._run_direction(layer_in, sched, init, *self._weights(layer, d))
                outs.append(node_state[:, : self.hidden_size])
                for i in range(len(states)):
                    finals[i].append(node_state[sched.final, i * self.hidden_size:(i + 1) * self.hidden_size])
            layer_in = torch.cat(outs, dim=-1) if len(outs) > 1 else outs[0]
        return layer_in, tuple(torch.stack(f) for f in finals)

    def _run_direction(self, x: Tensor, sched: _Schedule, init: Tensor, w_ih: Tensor, w_hh: Tensor,
                       b_ih: Tensor | None, b_hh: Tensor | None) -> Tensor:
        """States (h, or [h, c]) of every node, in node order, for one layer and direction."""
        gi_all = F.linear(x, w_ih, b_ih).index_select(0, sched.order)
        prev: Tensor | None = None
        outs = []
        for s, gi in enumerate(torch.split(gi_all, sched.counts)):
            n_s = gi.size(0)
            edges = sched.edges[s]
            if edges.size(1):
                assert prev is not None
                agg = self.propagate(edges, x=prev, size=(prev.size(0), n_s))
            else:
                agg = init.new_zeros(n_s, init.size(1))
            rows = sched.start_rows[s]
            if rows is not None:
                agg = agg.index_add(0, rows, init.index_select(0, sched.start_seqs[s]))  # type: ignore[arg-type]
            prev = self._cell(gi, agg, w_hh, b_hh)
            outs.append(prev)
        if not outs:  # no sequences: an empty state, still differentiable in the weights as torch.nn's
            return self._cell(gi_all, init, w_hh, b_hh)
        return torch.cat(outs).index_select(0, sched.inverse)

    # ------------------------------------------------------------ torch.nn I/O
    @classmethod
    def from_torch(cls, module: nn.RNNBase, lower: bool | str = "auto") -> _ChainRNN:
        """A layer with the hyper-parameters and a copy of the weights of a torch.nn module."""
        if type(module) is not cls.torch_cls:
            raise ValidationError(f"{cls.registry_name}.from_torch expects a torch.nn.{cls.mode}, got "
                                  f"{type(module).__name__}")
        if getattr(module, "proj_size", 0):
            raise ValidationError(f"{cls.registry_name}: LSTM projections (proj_size={module.proj_size}) "
                                  f"are not supported")
        layer = cls(module.input_size, module.hidden_size, module.num_layers, module.bias, module.batch_first,
                    module.dropout, module.bidirectional, lower)
        # convert before copying: a float64 module's weights copied into float32 ones were rounded
        layer.to(device=module.weight_ih_l0.device, dtype=module.weight_ih_l0.dtype)
        layer.train(module.training)  # an eval-mode module applies no dropout; nor may its copy
        return layer.load_from_torch(module)

    def load_from_torch(self, module: nn.RNNBase) -> _ChainRNN:
        """Copy the weights of a torch.nn module into this layer (hyper-parameters must match)."""
        name = self.registry_name
        if type(module) is not self.torch_cls:
            raise ValidationError(f"{name}: can only load weights from a torch.nn.{self.mode}, got "
                                  f"{type(module).__name__}")
        if getattr(module, "proj_size", 0):
            raise ValidationError(f"{name}: LSTM projections (proj_size={module.proj_size}) are not supported")
        for attr in ("input_size", "hidden_size", "num_layers", "bias", "bidirectional"):
            mine, theirs = getattr(self, attr), getattr(module, attr)
            if mine != theirs:
                raise ValidationError(f"{name}: mismatched {attr}: the torch module has {theirs}, this layer {mine}")
        theirs_params = dict(module.named_parameters())
        with torch.no_grad():
            for pname in self._flat_weights_names:
                mine_p = getattr(self, pname)
                if pname not in theirs_params:
                    raise ValidationError(f"{name}: the torch module has no parameter {pname!r}")
                if theirs_params[pname].shape != mine_p.shape:
                    raise ValidationError(f"{name}: mismatched weight shape for {pname}: the torch module's is "
                                          f"{tuple(theirs_params[pname].shape)}, this layer's {tuple(mine_p.shape)}")
                mine_p.copy_(theirs_params[pname])
        return self

    def to_torch(self) -> nn.RNNBase:
        """The equivalent :mod:`torch.nn` module, with a copy of the weights."""
        ref = self.weight_ih_l0
        module = self.torch_cls(self.input_size, self.hidden_size, self.num_layers, bias=self.bias,
                                batch_first=self.batch_first, dropout=self.dropout,
                                bidirectional=self.bidirectional, device=ref.device, dtype=ref.dtype)
        module.train(self.training)
        with torch.no_grad():
            for pname in self._flat_weights_names:
                getattr(module, pname).copy_(getattr(self, pname))
        return module

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, bias={self.bias}, "
                f"batch_first={self.batch_first}, dropout={self.dropout}, bidirectional={self.bidirectional}, "
                f"lower={self.lower!r}")

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.extra_repr()})"


@LAYERS.register("chain_gru", graph="chain",
                 summary="GRU as message passing along a chain graph (equals torch.nn.GRU)")
class ChainGRU(_ChainRNN):
    r"""Gated recurrent unit as message passing along a chain graph.

    Node :math:`t` receives :math:`\mathbf{h}_{t-1}` along the edge
    :math:`t-1 \to t` and updates

    .. math::
        \mathbf{r}_t &= \sigma(\mathbf{W}_{ir}\mathbf{x}_t + \mathbf{b}_{ir}
            + \mathbf{W}_{hr}\mathbf{h}_{t-1} + \mathbf{b}_{hr}) \\
        \mathbf{z}_t &= \sigma(\mathbf{W}_{iz}\mathbf{x}_t + \mathbf{b}_{iz}
            + \mathbf{W}_{hz}\mathbf{h}_{t-1} + \mathbf{b}_{hz}) \\
        \mathbf{n}_t &= \tanh(\mathbf{W}_{in}\mathbf{x}_t + \mathbf{b}_{in}
            + \mathbf{r}_t \odot (\mathbf{W}_{hn}\mathbf{h}_{t-1} + \mathbf{b}_{hn})) \\
        \mathbf{h}_t &= (1 - \mathbf{z}_t) \odot \mathbf{n}_t + \mathbf{z}_t \odot \mathbf{h}_{t-1}

    with :math:`\mathbf{h}_{-1} = \mathbf{h}_0` (the initial state, zero by
    default) for the first node, as :class:`torch.nn.GRU`.

    Args:
        in_channels: Input features :math:`F` (``input_size``).
        out_channels: Hidden size :math:`H`; the node states have :math:`D H`
            features, :math:`D = 2` if bidirectional.
        num_layers: Stacked layers :math:`L`.
        bias: Use the biases.
        batch_first: Layout of plain-tensor input, as in :class:`torch.nn.GRU`.
        dropout: Dropout between layers (training only).
        bidirectional: Add a recursion along the reversed chain.
        lower: ``"auto"`` (ATen kernel on plain chains), ``True`` or ``False``.

    Shapes:
        - input: :math:`(T, N, F)` / :math:`(N, T, F)` / :math:`(T, F)`, or node
          features :math:`(|\mathcal{V}|, F)` with a chain graph
        - output: ``(output, h_n)`` with output :math:`(T, N, D H)` (or
          :math:`(|\mathcal{V}|, D H)` for a graph) and :math:`h_n` of shape
          :math:`(L D, N, H)`
    """

    mode = "GRU"
    gates = 3
    torch_cls = nn.GRU
    registry_name = "chain_gru"

    def _cell(self, gi: Tensor, state: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> Tensor:
        gh = F.linear(state, w_hh, b_hh)
        i_r, i_z, i_n = gi.chunk(3, 1)
        h_r, h_z, h_n = gh.chunk(3, 1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (1 - z) * n + z * state


@LAYERS.register("chain_lstm", graph="chain",
                 summary="LSTM as message passing along a chain graph (equals torch.nn.LSTM)")
class ChainLSTM(_ChainRNN):
    r"""Long short-term memory as message passing along a chain graph.

    Node :math:`t` receives :math:`(\mathbf{h}_{t-1}, \mathbf{c}_{t-1})` along
    the edge :math:`t-1 \to t` and updates

    .. math::
        (\mathbf{i}_t, \mathbf{f}_t, \mathbf{g}_t, \mathbf{o}_t) &=
            \mathbf{W}_{i}\mathbf{x}_t + \mathbf{b}_{i} + \mathbf{W}_{h}\mathbf{h}_{t-1} + \mathbf{b}_{h} \\
        \mathbf{c}_t &= \sigma(\mathbf{f}_t) \odot \mathbf{c}_{t-1} + \sigma(\mathbf{i}_t) \odot \tanh(\mathbf{g}_t) \\
        \mathbf{h}_t &= \sigma(\mathbf{o}_t) \odot \tanh(\mathbf{c}_t)

    as :class:`torch.nn.LSTM` (gate order i, f, g, o). Arguments and shapes
    as :class:`ChainGRU`; the state is the pair ``(h_n, c_n)``.
    """

    mode = "LSTM"
    gates = 4
    torch_cls = nn.LSTM
    registry_name = "chain_lstm"

    def _cell(self, gi: Tensor, state: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> Tensor:
        h, c = state.chunk(2, 1)
        gates = gi + F.linear(h, w_hh, b_hh)
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return torch.cat([h, c], dim=1)
