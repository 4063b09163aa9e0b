r"""Sequences as chain (path) graphs: a recurrent network is message passing in time.

A sequence :math:`(\mathbf{x}_0, \dots, \mathbf{x}_{T-1})` becomes a path
graph with one node per time step and the edges :math:`t-1 \to t`
(``direction == 0``); ``bidirectional=True`` adds the reversed edges
:math:`t+1 \to t` (``direction == 1``). A recurrent cell then computes
:math:`\mathbf{h}_t` from :math:`\mathbf{x}_t` and the message
:math:`\mathbf{h}_{t-1}` arriving along the incoming edge, one time step (one
propagation) after the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from graphdl.errors import ValidationError
from graphdl.graphs.structure_cache import passes

__all__ = ["ChainGraph", "chain", "chain_edges", "is_plain_chain"]


class ChainGraph(Data):
    """One sequence as a path graph.

    Attributes: ``x`` ``(T, F)``, ``edge_index`` (``t-1 -> t``, then
    ``t+1 -> t`` if bidirectional), ``direction`` (0 forward, 1 backward, per
    edge), ``time`` (position of each node) and ``lengths`` (``(1,)``, one
    entry per sequence once batched).
    """


@lru_cache(maxsize=256)
@torch.inference_mode(False)  # cached for later calls: not inference tensors, which autograd cannot save
def _single_edges(length: int, bidirectional: bool) -> tuple[Tensor, Tensor]:
    t = torch.arange(1, length)
    fwd = torch.stack([t - 1, t])
    if not bidirectional:
        return fwd, torch.zeros(length - 1, dtype=torch.long)
    bwd = torch.stack([t, t - 1])
    direction = torch.cat([torch.zeros(length - 1, dtype=torch.long), torch.ones(length - 1, dtype=torch.long)])
    return torch.cat([fwd, bwd], 1), direction


def chain_edges(lengths: Sequence[int], bidirectional: bool = False,
                device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """``(edge_index, direction)`` of disjoint chains with the given lengths (nodes numbered consecutively)."""
    parts, dirs, start = [], [], 0
    for i, length in enumerate(lengths):
        if int(length) < 0:
            raise ValidationError(f"chain_edges: length {i} is {int(length)}; chain lengths must be >= 0")
        ei, d = _single_edges(max(int(length), 1), bidirectional)  # a chain of 0 nodes has no edges either
        parts.append(ei + start)
        dirs.append(d)
        start += int(length)
    if not parts:
        return torch.empty(2, 0, dtype=torch.long, device=device), torch.empty(0, dtype=torch.long, device=device)
    return torch.cat(parts, 1).to(device), torch.cat(dirs).to(device)


def _as_sequences(sequences: Any, batch_first: bool) -> list[Tensor]:
    if isinstance(sequences, Tensor):
        if sequences.dim() != 3:
            raise ValidationError(
                f"sequences must be a 3D tensor ({'N, T, F' if batch_first else 'T, N, F'}) or a list of "
                f"(T_i, F) tensors, got a {sequences.dim()}D tensor of shape {tuple(sequences.shape)}. "
                f"For one sequence pass [seq] (or seq[None]); for a univariate batch add a feature axis."
            )
        seqs = list(sequences.unbind(0 if batch_first else 1))
        if not seqs:
            raise ValidationError("sequences: got a batch of 0 sequences")
    elif isinstance(sequences, (list, tuple)):
        if not sequences:
            raise ValidationError("sequences: got an empty list; pass at least one sequence")
        seqs = []
        for i, s in enumerate(sequences):
            if not isinstance(s, Tensor):
                raise ValidationError(f"sequence {i} must be a tensor, got {type(s).__name__}")
            if s.dim() == 1:
                s = s[:, None]
            if s.dim() != 2:
                raise ValidationError(f"sequence {i} must have shape (T, F) or (T,), got {tuple(s.shape)}")
            seqs.append(s)
    else:
        raise ValidationError(f"sequences must be a tensor or a list of tensors, got {type(sequences).__name__}")
    features = {s.size(1) for s in seqs}
    if len(features) > 1:
        raise ValidationError(f"sequences have different feature sizes {sorted(features)}; all need the same F")
    for i, s in enumerate(seqs):
        if s.size(0) == 0:
            raise ValidationError(f"sequence {i} has length 0: a chain needs at least one time step. "
                                  f"Drop empty sequences before building chains.")
    return seqs


def chain(sequences: Tensor | Sequence[Tensor], bidirectional: bool = False, *, batch_first: bool = True) -> Batch:
    r"""Turn sequences into chain graphs, one per sequence, batched.

    Args:
        sequences: A tensor :math:`(N, T, F)` (``(T, N, F)`` with
            ``batch_first=False``), or a list of :math:`(T_i, F)` (or
            :math:`(T_i,)`) tensors of any lengths :math:`T_i \ge 1`.
        bidirectional: Add the backward edges :math:`t+1 \to t`.
        batch_first: Layout of a 3D tensor.

    Returns:
        A :class:`torch_geometric.data.Batch` of :class:`ChainGraph` objects
        (``x``, ``edge_index``, ``direction``, ``time``, ``lengths``); the
        nodes of sequence :math:`n` are consecutive and in time order.

    Raises:
        ValidationError: a sequence of length 0, a tensor that is not 3D, or
            sequences with different feature sizes.
    """
    seqs = _as_sequences(sequences, batch_first)
    graphs = []
    for s in seqs:
        ei, d = _single_edges(s.size(0), bidirectional)
        graphs.append(ChainGraph(x=s, edge_index=ei.to(s.device), direction=d.to(s.device),
                                 time=torch.arange(s.size(0), device=s.device),
                                 lengths=torch.tensor([s.size(0)], device=s.device), num_nodes=s.size(0)))
    return Batch.from_data_list(graphs)


def is_plain_chain(graph: Data) -> bool:
    """Whether ``graph`` is the untouched output of :func:`chain` (so a recurrent layer may lower it).

    Checks that the nodes of each sequence are consecutive and in time order
    and that the edges are exactly those of the chains (``t-1 -> t``), or of
    the chains and their reverses (``t+1 -> t``), each once and, where the
    graph has ``direction``, labelled 0 (forward) and 1 (backward).
    """
    if "lengths" not in graph or "time" not in graph or "edge_index" not in graph:
        return False
    others = [graph["lengths"], graph["time"], graph["direction"] if "direction" in graph else None]
    return passes(graph.edge_index, others, graph.num_nodes, lambda: _holds_chain_edges(graph))


def _holds_chain_edges(graph: Data) -> bool:
    lengths = graph["lengths"].view(-1)
    n = int(lengths.sum())
    if (graph.num_nodes != n or graph["time"].numel() != n or lengths.numel() == 0
            or int(lengths.min()) < 1):
        return False
    time = graph["time"].view(-1)
    ptr = torch.cumsum(lengths, 0) - lengths
    batch = torch.repeat_interleave(torch.arange(lengths.numel(), device=lengths.device), lengths)
    if not bool((time == torch.arange(n, device=lengths.device) - ptr[batch]).all()):
        return False
    src, dst = graph.edge_index
    e, m = src.numel(), n - lengths.numel()
    if e not in (m, 2 * m):
        return False
    if e == 0:
        return True
    if int(torch.minimum(src, dst).min()) < 0 or int(torch.maximum(src, dst).max()) >= n:
        return False
    # nodes are consecutive and in time order: t-1 -> t is (v-1, v) with time[v] > 0, t+1 -> t is (v+1, v)
    fwd = (dst == src + 1) & (time[dst] > 0)
    bwd = (dst == src - 1) & (time[src] > 0)
    if not bool((fwd | bwd).all()) or int(fwd.sum()) != m:
        return False  # an edge that is no chain edge, or a unidirectional chain without all its forward edges
    # m forward and e - m backward edges: the chains (and reverses) iff no edge is repeated
    if m and (int(torch.bincount(dst[fwd], minlength=n).max()) > 1
              or (e > m and int(torch.bincount(dst[bwd], minlength=n).max()) > 1)):
        return False
    if "direction" in graph:
        direction = graph["direction"].view(-1)
        if direction.numel() != e or not bool(((direction == 0) == fwd).all() & ((direction == 1) == bwd).all()):
            return False
    return True
