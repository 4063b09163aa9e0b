"""Neighbour sampling in pure torch, behind PyG's sampler interface.

:class:`TorchNeighborSampler` is a :class:`torch_geometric.sampler.BaseSampler`
for homogeneous graphs (:class:`~torch_geometric.data.Data`). It needs no
compiled extension (pyg-lib, torch-sparse), so PyG's
:class:`~torch_geometric.loader.NodeLoader` and
:class:`~torch_geometric.loader.LinkLoader` can do mini-batch training with
neighbour sampling on any machine that has torch::

    sampler = TorchNeighborSampler(data, num_neighbors=[10, 5])
    loader = NodeLoader(data, node_sampler=sampler, input_nodes=data.train_mask,
                        batch_size=512, shuffle=True)

:func:`neighbor_loader` and :func:`link_neighbor_loader` build such loaders, and
use PyG's own :class:`~torch_geometric.loader.NeighborLoader` /
:class:`~torch_geometric.loader.LinkNeighborLoader` instead when pyg-lib or
torch-sparse is installed.

What is sampled (the semantics of PyG's ``NeighborSampler``):

* Hop 0 is the seed nodes, in input order; they are the first
  ``batch_size`` entries of ``n_id``.
* Hop ``h`` (``h = 1 .. len(num_neighbors)``) visits the nodes that were first
  added in hop ``h - 1`` (the *frontier*) and, for each of them, draws
  ``num_neighbors[h - 1]`` of its **in-neighbours** (sources ``j`` of edges
  ``j -> i``, i.e. the nodes a message-passing layer aggregates from):
  without replacement ``min(k, in_degree)`` distinct edges, uniformly at
  random; with ``replace=True`` ``k`` edges drawn uniformly with repetition;
  with ``k = -1`` every in-edge; ``k = 0`` none. Sources not seen before are
  appended to ``n_id`` in order of first appearance and form the next frontier.
* ``subgraph_type="directional"`` (default) returns exactly the sampled edges,
  so each edge points *into* a node of an earlier hop, grouped hop by hop
  (``num_sampled_nodes``/``num_sampled_edges`` give the per-hop sizes, as
  ``torch_geometric.utils.trim_to_layer`` expects). ``"bidirectional"`` adds
  the reverse of every sampled edge; ``"induced"`` returns every edge of the
  graph between sampled nodes (then ``num_sampled_edges`` is ``None``).
* Full fan-out, ``num_neighbors=[-1] * L``, gives an ``L``-layer model the
  full-graph outputs on the seeds only when each layer's output at a node
  depends on nothing but that node and its in-neighbours' inputs (SAGEConv,
  GINConv, GATConv; ``"directional"`` or ``"induced"``, or ``"bidirectional"``
  on an undirected graph). Layers that also read their source nodes' degrees do
  not: GCNConv's symmetric normalisation ``1 / sqrt(deg(j) * deg(i))`` of an
  edge ``j -> i`` needs the in-degree of the hop-``L`` nodes, which the batch
  lacks (their in-edges are hop ``L + 1``), so its outputs differ;
  ``[-1] * (L + 1)`` makes them exact.
* ``disjoint=True`` gives every seed its own tree: a node reached from two
  seeds appears twice, and ``batch`` tells which seed each node belongs to.

Randomness comes from torch's global generator only, so ``torch.manual_seed``
makes the batches reproducible. Temporal and weighted sampling are not
implemented (they need pyg-lib).
"""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch_geometric.typing
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.loader import LinkLoader, LinkNeighborLoader, NeighborLoader, NodeLoader
from torch_geometric.sampler import (
    BaseSampler,
    EdgeSamplerInput,
    NegativeSampling,
    NodeSamplerInput,
    SamplerOutput,
)
from torch_geometric.sampler.base import NumNeighbors

from graphdl.errors import ValidationError
from graphdl.validate import refuse_uint8

__all__ = [
    "TorchNeighborSampler",
    "neighbor_loader",
    "link_neighbor_loader",
    "has_compiled_sampler",
]

_SUBGRAPH_TYPES = ("directional", "bidirectional", "induced")
_UNSEEN = torch.iinfo(torch.long).max  # "no local id yet" in the global -> local map
#: Graphs with more nodes keep one global -> local table for every batch (see ``_sample_shared``): measured on
#: random graphs of in-degree 10, fan-out [10, 5], 512 seeds, a fresh table is cheaper up to 1M nodes (5.1 vs
#: 5.5 ms per batch) and the reused one from 3M (6.5 vs 7.9 ms)
_REUSE_TABLE_ABOVE = 1 << 21


def has_compiled_sampler() -> bool:
    """True when pyg-lib or torch-sparse is installed (PyG's own sampler works)."""
    return bool(torch_geometric.typing.WITH_PYG_LIB or torch_geometric.typing.WITH_TORCH_SPARSE)


# Validation ###################################################################


def _check_num_neighbors(num_neighbors: Any) -> list[int]:
    values = num_neighbors.values if isinstance(num_neighbors, NumNeighbors) else num_neighbors
    if isinstance(values, dict):
        raise ValidationError(
            "num_neighbors: expected a list of ints (one fan-out per hop) for a homogeneous "
            f"graph, got a dict {values!r}. Per-edge-type fan-outs need HeteroData and "
            "PyG's NeighborLoader with pyg-lib."
        )
    if isinstance(values, (Tensor, np.ndarray)) and values.ndim == 1:
        values = list(values)  # 0-d tensors / numpy scalars, checked one by one below
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise ValidationError(
            f"num_neighbors: expected a list of ints such as [10, 5], got {num_neighbors!r}."
        )
    values = list(values)
    if not values:
        raise ValidationError(
            "num_neighbors: expected at least one hop, got an empty list. Pass one fan-out "
            "per hop, e.g. [10, 5] for two hops (-1 takes all neighbours)."
        )
    ints = [_as_int(v) for v in values]
    bad = [v for v, i in zip(values, ints) if i is None or i < -1]
    if bad:
        def plain(items: list[Any]) -> list[Any]:  # tensor / numpy entries shown as the numbers they hold
            return [v.item() if isinstance(v, (Tensor, np.generic)) and v.ndim == 0 else v for v in items]

        raise ValidationError(
            f"num_neighbors: every entry must be an int >= -1 (-1 = all neighbours, 0 = none), "
            f"got {plain(values)!r} (invalid: {plain(bad)!r})."
        )
    return ints  # type: ignore[return-value]


def _as_int(value: Any) -> int | None:
    """``value`` as a Python int when it is an integer (int, numpy or 0-d integer tensor; not a
    bool or a float, however whole), else ``None``."""
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, Tensor) and value.dtype == torch.bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _check_index(index: Tensor, num_nodes: int, name: str) -> Tensor:
    """``index`` as int64 on CPU, after checking every entry is a node id."""
    if index.dtype == torch.bool or index.is_floating_point() or index.is_complex():
        raise ValidationError(f"{name}: expected integer node indices, got dtype {index.dtype}.")
    index = index.to("cpu", torch.long)
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= num_nodes):
        bad = index[(index < 0) | (index >= num_nodes)]
        raise ValidationError(
            f"{name}: node indices must lie in [0, {num_nodes - 1}] (the graph has "
            f"{num_nodes} nodes), got {bad.numel()} out of range, e.g. {int(bad[0])}. "
            "Check that the indices refer to this graph."
        )
    return index


def _check_input_nodes(input_nodes: Any, num_nodes: int) -> Tensor | None:
    """Validate ``input_nodes`` for a ``Data`` graph and return it as a tensor (a mask stays a mask).

    NodeLoader turns anything but a tensor into ``torch.tensor(input_nodes, dtype=torch.long)``,
    which reads a boolean mask given as a list or a numpy array as the indices 0 and 1; converting
    here keeps it a mask, as it is validated.
    """
    if input_nodes is None:
        return None
    if isinstance(input_nodes, str) or (
        isinstance(input_nodes, (tuple, list))
        and len(input_nodes) == 2
        and (input_nodes[0] is None or isinstance(input_nodes[0], str))
    ):
        raise ValidationError(
            f"input_nodes: a (node type, nodes) pair or a node type name is for HeteroData; "
            f"this is a homogeneous graph, so pass a tensor of node indices or a boolean mask, "
            f"got {input_nodes!r}."
        )
    if isinstance(input_nodes, Tensor):
        nodes = input_nodes
    else:
        try:
            nodes = torch.as_tensor(np.asarray(input_nodes))
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValidationError(
                f"input_nodes: expected a tensor of node indices or a boolean mask, got "
                f"{type(input_nodes).__name__} ({exc})."
            ) from None
    refuse_uint8("input_nodes", nodes)
    if nodes.dtype == torch.bool:
        if nodes.dim() != 1 or nodes.numel() != num_nodes:
            raise ValidationError(
                f"input_nodes: a boolean mask needs one entry per node ({num_nodes}), got "
                f"shape {tuple(nodes.shape)}."
            )
        return nodes
    _check_index(nodes.reshape(-1), num_nodes, "input_nodes")
    return nodes


# Vectorised sampling kernels ##################################################


def _uniform_subsets(deg: Tensor, k: int, method: str | None = None) -> Tensor:
    """For each row ``i`` draw ``k`` distinct offsets in ``[0, deg[i])`` uniformly.

    Requires ``deg > k`` (elementwise). Returns a ``[len(deg), k]`` tensor.
    ``method`` ("floyd" or "sort") is chosen by cost when ``None``.
    """
    n = deg.numel()
    if method is None:
        # measured on CPU: Floyd ~1 ns per row * k^2, sorting ~50 ns per edge
        method = "floyd" if k * k * n <= 50 * int(deg.sum()) else "sort"
    if method == "floyd":
        # Floyd's algorithm, vectorised over rows: k steps, each O(n * k), no
        # dependence on the degree. Step i draws t in [0, d - k + i]; if t was
        # already taken, it takes d - k + i instead (never taken before).
        out = torch.empty(n, k, dtype=torch.long)
        for i in range(k):
            top = deg - k + i
            t = (torch.rand(n, dtype=torch.float64) * (top + 1)).long()
            t = torch.minimum(t, top)  # guard against rounding up to top + 1
            if i:
                t = torch.where((out[:, :i] == t.unsqueeze(1)).any(1), top, t)
            out[:, i] = t
        return out
    # Random keys: sort (segment id + U[0, 1)), keep the first k of each segment.
    ptr = deg.cumsum(0) - deg
    seg = torch.repeat_interleave(deg)
    order = torch.argsort(seg.to(torch.float64) + torch.rand(seg.numel(), dtype=torch.float64))
    rank = torch.arange(seg.numel()) - ptr[seg]  # segments keep their place after sorting
    keep = rank < k
    return (order[keep] - ptr[seg[keep]]).view(n, k)


def _first_occurrence_order(keys: Tensor) -> tuple[Tensor, Tensor]:
    """Distinct ``keys`` in order of first appearance, and each key's rank among them."""
    uniq, inv = torch.unique(keys, return_inverse=True)
    first = torch.full((uniq.numel(),), keys.numel(), dtype=torch.long)
    first.scatter_reduce_(0, inv, torch.arange(keys.numel()), "amin")
    order = torch.argsort(first)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel())
    return uniq[order], rank[inv]


# The sampler ##################################################################


class TorchNeighborSampler(BaseSampler):
    r"""Uniform neighbour sampler for homogeneous graphs, written in torch only.

    A drop-in for ``torch_geometric.sampler.NeighborSampler`` on
    :class:`~torch_geometric.data.Data` when pyg-lib and torch-sparse are
    missing: pass it to :class:`~torch_geometric.loader.NodeLoader` as
    ``node_sampler`` or to :class:`~torch_geometric.loader.LinkLoader` as
    ``link_sampler``. See the module docstring for exactly what is sampled.

    The graph is stored once in CSC form (edges sorted by destination:
    ``colptr``, ``row`` and ``perm``, the original id of each sorted edge).
    Each hop is a handful of vectorised tensor operations over the frontier;
    there is no Python loop over nodes. ``SamplerOutput.edge`` holds original
    edge ids, so :attr:`edge_permutation` is ``None``.

    Args:
        data: The graph; needs ``edge_index`` (``[2, E]``, ``j -> i`` as
            ``edge_index[:, e] = (j, i)``).
        num_neighbors: Fan-out per hop; ``-1`` takes all in-neighbours.
        subgraph_type: ``"directional"``, ``"bidirectional"`` or ``"induced"``.
        replace: Draw neighbours with replacement.
        disjoint: Sample a separate tree for every seed node.
        temporal_strategy: Accepted for signature compatibility; only
            ``"uniform"`` is meaningful (temporal sampling is unsupported).
        time_attr: Unsupported; must be ``None``.
        weight_attr: Unsupported; must be ``None``.
        is_sorted: ``edge_index`` is already sorted by destination.
        share_memory: Move the CSC tensors to shared memory (for workers).
        directed: ``False`` is PyG's deprecated spelling of
            ``subgraph_type="induced"`` (with PyG's warning).
        sample_direction: Only ``"forward"`` (in-neighbours) is implemented.

    The arguments come in the order of PyG's ``NeighborSampler``, so
    positional calls written for it mean the same here.
    """

    def __init__(
        self,
        data: Data,
        num_neighbors: Sequence[int],
        subgraph_type: str | Any = "directional",
        replace: bool = False,
        disjoint: bool = False,
        temporal_strategy: str = "uniform",
        time_attr: str | None = None,
        weight_attr: str | None = None,
        is_sorted: bool = False,
        share_memory: bool = False,
        directed: bool = True,
        sample_direction: str = "forward",
    ) -> None:
        if not isinstance(data, Data):
            raise ValidationError(
                f"data: TorchNeighborSampler samples homogeneous graphs "
                f"(torch_geometric.data.Data), got {type(data).__name__}. For HeteroData or "
                "remote stores install pyg-lib and use PyG's NeighborLoader."
            )
        if time_attr is not None or weight_attr is not None:
            raise ValidationError(
                f"time_attr/weight_attr: temporal and weighted sampling are not implemented "
                f"in TorchNeighborSampler (got time_attr={time_attr!r}, "
                f"weight_attr={weight_attr!r}). Install pyg-lib and use PyG's NeighborLoader."
            )
        if sample_direction != "forward":
            raise ValidationError(
                f"sample_direction={sample_direction!r}: TorchNeighborSampler samples in-neighbours "
                "only (sample_direction='forward'); for out-neighbours pass the reversed graph, "
                "edge_index.flip(0), or install pyg-lib and use PyG's NeighborSampler."
            )
        if not directed:  # PyG's deprecated spelling of an induced subgraph
            subgraph_type = "induced"
            warnings.warn(f"The usage of the 'directed' argument in '{type(self).__name__}' is deprecated. Use "
                          f"`subgraph_type='induced'` instead.", stacklevel=2)
        subgraph_type = getattr(subgraph_type, "value", subgraph_type)
        if subgraph_type not in _SUBGRAPH_TYPES:
            raise ValidationError(
                f"subgraph_type: expected one of {_SUBGRAPH_TYPES}, got {subgraph_type!r}."
            )
        if disjoint and subgraph_type == "induced":
            raise ValidationError(
                "disjoint=True cannot be combined with subgraph_type='induced' (as in PyG); "
                "use 'directional' or 'bidirectional'."
            )

        self.num_neighbors: list[int] = _check_num_neighbors(num_neighbors)
        self.replace = bool(replace)
        self.subgraph_type: str = subgraph_type
        self.disjoint = bool(disjoint)
        self.temporal_strategy = temporal_strategy
        self.keep_orig_edges = False  # as PyG: to_bidirectional() drops the originals
        self.num_nodes: int = int(data.num_nodes or 0)

        edge_index = data.edge_index
        if edge_index is None:
            if "adj_t" in data or "adj" in data:
                raise ValidationError(
                    "data: TorchNeighborSampler needs data.edge_index; a SparseTensor "
                    "adjacency (adj_t) requires torch-sparse. Convert it to edge_index first."
                )
            edge_index = torch.empty(2, 0, dtype=torch.long)
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValidationError(
                f"data.edge_index: expected shape [2, num_edges], got {tuple(edge_index.shape)}."
            )
        row, col = edge_index.to("cpu", torch.long)
        if row.numel():
            _check_index(edge_index.reshape(-1), self.num_nodes, "data.edge_index")

        # CSC: edges grouped by destination; perm maps sorted position -> edge id.
        if is_sorted:
            # colptr is read off the destinations as given: unsorted ones would silently yield non-edges
            if col.numel() > 1 and bool((col[1:] < col[:-1]).any()):
                raise ValidationError(
                    "data.edge_index: is_sorted=True but the edges are not sorted by destination "
                    "(edge_index[1]); pass is_sorted=False (the default) or sort them first, e.g. with "
                    "torch_geometric.utils.sort_edge_index(edge_index, sort_by_row=False)."
                )
            self.perm: Tensor | None = None
        else:
            col, self.perm = torch.sort(col, stable=True)
            row = row[self.perm]
        self.row = row.contiguous()
        counts = torch.bincount(col, minlength=self.num_nodes)
        self.colptr = torch.zeros(self.num_nodes + 1, dtype=torch.long)
        torch.cumsum(counts, 0, out=self.colptr[1:])
        if share_memory:
            for t in (self.colptr, self.row, self.perm):
                if t is not None:
                    t.share_memory_()
        self._g2l: Tensor | None = None  # _sample_shared's lookup, built at the first batch of each process

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_g2l"] = None  # a DataLoader worker builds its own rather than receive an N-entry copy
        return state

    # PyG interface ###########################################################

    @property
    def num_hops(self) -> int:
        return len(self.num_neighbors)

    @property
    def is_hetero(self) -> bool:
        return False

    @property
    def is_temporal(self) -> bool:
        return False

    @property
    def edge_permutation(self) -> None:
        """``None``: ``SamplerOutput.edge`` already holds original edge ids."""
        return None

    def sample_from_nodes(self, inputs: NodeSamplerInput, **kwargs: Any) -> SamplerOutput:
        """Sample the ``num_hops``-hop neighbourhood of ``inputs.node``.

        ``metadata`` is ``(input_id, seed_time)`` as NodeLoader expects.
        """
        self._check_homogeneous(inputs.input_type, inputs.time, "input_time")
        seed = _check_index(inputs.node, self.num_nodes, "input nodes")
        out = self.sample(seed)
        input_id = inputs.input_id if inputs.input_id is not None else torch.arange(seed.numel())
        out.metadata = (input_id, None)
        return out

    def sample_from_edges(
        self,
        inputs: EdgeSamplerInput,
        neg_sampling: NegativeSampling | None = None,
    ) -> SamplerOutput:
        """Sample around both endpoints of the seed links (plus negatives).

        With binary negative sampling, ``ceil(amount * num_pos)`` random
        ``(src, dst)`` pairs are appended with label 0 (positives keep their
        label, 1 when none was given); ``metadata`` is ``(input_id,
        edge_label_index, edge_label, edge_label_time)``, indices local to
        ``node``. With triplet sampling, ``amount`` random destinations are
        drawn per positive and ``metadata`` is ``(input_id, src_index,
        dst_pos_index, dst_neg_index, seed_time)``. As in PyG, random
        negatives may collide with true edges. In disjoint mode ``batch``
        holds the index of the seed link each node belongs to.
        """
        self._check_homogeneous(inputs.input_type, inputs.time, "edge_label_time")
        src = _check_index(inputs.row, self.num_nodes, "edge_label_index[0]")
        dst = _check_index(inputs.col, self.num_nodes, "edge_label_index[1]")
        label = inputs.label
        num_pos = src.numel()
        input_id = inputs.input_id if inputs.input_id is not None else torch.arange(num_pos)
        neg = NegativeSampling.cast(neg_sampling) if neg_sampling is not None else None

        num_examples = num_pos  # disjoint mode: batch = seed position % num_examples
        if neg is not None and neg.is_binary():
            num_neg = math.ceil(num_pos * neg.amount)
            src = torch.cat([src, self._draw_negatives(neg, num_neg, "src")])
            dst = torch.cat([dst, self._draw_negatives(neg, num_neg, "dst")])
            if label is None:
                label = torch.ones(num_pos)
            label = torch.cat([label, label.new_zeros((num_neg,) + label.shape[1:])])
            num_examples = num_pos + num_neg
        elif neg is not None and neg.is_triplet():
            if label is not None:
                raise ValidationError(
                    "edge_label: must be None with triplet negative sampling; use the batch's "
                    "src_index/dst_pos_index/dst_neg_index instead."
                )
            dst = torch.cat([dst, self._draw_negatives(neg, num_pos * int(neg.amount), "dst")])

        seed = torch.cat([src, dst])
        if self.disjoint:
            out = self.sample(seed)
            out.batch = out.batch % num_examples
            local = torch.arange(seed.numel())
        else:
            seed, local = torch.unique(seed, return_inverse=True)
            out = self.sample(seed)

        if neg is None or neg.is_binary():
            out.metadata = (input_id, local.view(2, -1), label, None)
        else:
            src_index = local[:num_pos]
            dst_pos_index = local[num_pos : 2 * num_pos]
            if self.disjoint:  # negative j belongs to the triplet j % num_pos
                dst_neg_index = local[2 * num_pos :].view(-1, num_pos).t()
            else:
                dst_neg_index = local[2 * num_pos :].view(num_pos, -1)
            out.metadata = (input_id, src_index, dst_pos_index, dst_neg_index.squeeze(-1), None)
        return out

    # Sampling ################################################################

    def sample(self, seed: Tensor) -> SamplerOutput:
        """Sample around ``seed`` (global node ids); ``metadata`` is left ``None``."""
        seed = seed.to("cpu", torch.long).view(-1)
        if self.disjoint:
            out = self._sample_disjoint(seed)
        else:
            out = self._sample_shared(seed)
        if self.subgraph_type == "bidirectional":
            out = out.to_bidirectional(keep_orig_edges=self.keep_orig_edges)
        return out

    def _hop(self, frontier: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """Draw in-edges of every ``frontier`` node (global ids).

        Returns CSC positions of the sampled edges and, for each, the index of
        its destination in ``frontier``; edges come grouped by destination.
        """
        start = self.colptr[frontier]
        deg = self.colptr[frontier + 1] - start
        if k < 0:
            counts = deg
        elif self.replace:
            counts = torch.where(deg > 0, k, 0)
        else:
            counts = deg.clamp(max=k)
        seg = torch.repeat_interleave(counts)
        if k >= 0 and self.replace:
            d = deg[seg]
            offset = torch.minimum((torch.rand(seg.numel(), dtype=torch.float64) * d).long(), d - 1)
        else:
            # slot number within each destination's group = "take all" offsets
            offset = torch.arange(seg.numel()) - (counts.cumsum(0) - counts)[seg]
            if k >= 0:
                big = deg > k
                if bool(big.any()):
                    offset[big[seg]] = _uniform_subsets(deg[big], k).view(-1)
        return start[seg] + offset, seg

    def _edge_ids(self, pos: Tensor) -> Tensor:
        return self.perm[pos] if self.perm is not None else pos

    def _sample_shared(self, seed: Tensor) -> SamplerOutput:
        # g2l: global node id -> local id (position in `nodes`); first seed wins. On a large graph one N-entry
        # table serves every batch: only the entries of the sampled nodes are written, and they are reset
        # afterwards, so a batch costs its sample's size, not a fresh N-entry table (0.9 GB on
        # ogbn-papers100M). Not for concurrent use by threads; DataLoader workers are processes, each with its
        # own table.
        if self.num_nodes <= _REUSE_TABLE_ABOVE:  # a fresh table costs less than resetting the sampled entries
            return self._sample_shared_with(seed, torch.full((self.num_nodes,), _UNSEEN, dtype=torch.long))
        if self._g2l is None or self._g2l.numel() != self.num_nodes:
            self._g2l = torch.full((self.num_nodes,), _UNSEEN, dtype=torch.long)
        g2l = self._g2l
        try:
            out = self._sample_shared_with(seed, g2l)
        except BaseException:
            g2l.fill_(_UNSEEN)  # which entries were written is not known: reset them all
            raise
        g2l[out.node] = _UNSEEN
        return out

    def _sample_shared_with(self, seed: Tensor, g2l: Tensor) -> SamplerOutput:
        num_seeds = seed.numel()
        g2l.scatter_reduce_(0, seed, torch.arange(num_seeds), "amin")

        nodes, rows, cols, edges = [seed], [], [], []
        num_sampled_nodes, num_sampled_edges = [num_seeds], []
        frontier, frontier_local, count = seed, torch.arange(num_seeds), num_seeds
        for k in self.num_neighbors:
            pos, seg = self._hop(frontier, k)
            src = self.row[pos]
            local = g2l[src]
            unseen = local == _UNSEEN
            cand = src[unseen]
            if cand.numel():
                # Tag each candidate with count + its index; the smallest tag per
                # node marks its first appearance, which keeps first-seen order.
                tag = torch.arange(count, count + cand.numel())
                g2l.scatter_reduce_(0, cand, tag, "amin")
                new = cand[g2l[cand] == tag]
                g2l[new] = torch.arange(count, count + new.numel())
                local[unseen] = g2l[cand]
            else:
                new = cand
            rows.append(local)
            cols.append(frontier_local[seg])
            edges.append(self._edge_ids(pos))
            nodes.append(new)
            num_sampled_nodes.append(new.numel())
            num_sampled_edges.append(pos.numel())
            frontier, frontier_local = new, torch.arange(count, count + new.numel())
            count += new.numel()

        node = torch.cat(nodes)
        if self.subgraph_type == "induced":
            # every edge of the graph between sampled nodes
            pos, seg = self._hop(node, -1)
            local = g2l[self.row[pos]]
            keep = local != _UNSEEN
            return SamplerOutput(
                node=node,
                row=local[keep],
                col=seg[keep],
                edge=self._edge_ids(pos[keep]),
                num_sampled_nodes=num_sampled_nodes,
                num_sampled_edges=None,
            )
        return SamplerOutput(
            node=node,
            row=torch.cat(rows),
            col=torch.cat(cols),
            edge=torch.cat(edges),
            num_sampled_nodes=num_sampled_nodes,
            num_sampled_edges=num_sampled_edges,
        )

    def _sample_disjoint(self, seed: Tensor) -> SamplerOutput:
        # A node is identified by (tree, global id), encoded as tree * N + id;
        # `keys`/`keys_local` is a sorted lookup table of the nodes seen so far.
        n = max(self.num_nodes, 1)
        num_seeds = seed.numel()
        tree = torch.arange(num_seeds)
        keys, order = torch.sort(tree * n + seed)
        keys_local = order

        nodes, batches, rows, cols, edges = [seed], [tree], [], [], []
        num_sampled_nodes, num_sampled_edges = [num_seeds], []
        frontier, frontier_tree, frontier_local = seed, tree, torch.arange(num_seeds)
        count = num_seeds
        for k in self.num_neighbors:
            pos, seg = self._hop(frontier, k)
            src = self.row[pos]
            key = frontier_tree[seg] * n + src
            idx = torch.searchsorted(keys, key).clamp(max=max(keys.numel() - 1, 0))
            seen = keys[idx] == key
            local = torch.where(seen, keys_local[idx], -1)
            new_keys, rank = _first_occurrence_order(key[~seen])
            new_local = torch.arange(count, count + new_keys.numel())
            local[~seen] = count + rank
            keys, order = torch.sort(torch.cat([keys, new_keys]))
            keys_local = torch.cat([keys_local, new_local])[order]

            rows.append(local)
            cols.append(frontier_local[seg])
            edges.append(self._edge_ids(pos))
            frontier, frontier_tree = new_keys % n, new_keys // n
            nodes.append(frontier)
            batches.append(frontier_tree)
            num_sampled_nodes.append(new_keys.numel())
            num_sampled_edges.append(pos.numel())
            frontier_local = new_local
            count += new_keys.numel()

        return SamplerOutput(
            node=torch.cat(nodes),
            row=torch.cat(rows),
            col=torch.cat(cols),
            edge=torch.cat(edges),
            batch=torch.cat(batches),
            num_sampled_nodes=num_sampled_nodes,
            num_sampled_edges=num_sampled_edges,
        )

    # Helpers #################################################################

    def _draw_negatives(self, neg: NegativeSampling, num: int, endpoint: str) -> Tensor:
        weight = getattr(neg, f"{endpoint}_weight", None)
        if weight is None:
            return torch.randint(self.num_nodes, (num,))
        name = f"neg_sampling.{endpoint}_weight"
        # An [N, 1] weight has N entries, but torch.multinomial would draw per row (then torch.cat fails).
        if not isinstance(weight, Tensor) or weight.dim() != 1 or weight.numel() != self.num_nodes:
            got = f"shape {tuple(weight.shape)}" if isinstance(weight, Tensor) else type(weight).__name__
            raise ValidationError(
                f"{name}: expected a 1-D tensor of one weight per node ({self.num_nodes}), got {got}."
            )
        weight = weight.cpu().float()
        # torch.multinomial would fail mid-epoch with "invalid multinomial distribution" (calling a NaN "< 0").
        if not bool(torch.isfinite(weight).all()) or bool((weight < 0).any()) or not float(weight.sum()) > 0:
            raise ValidationError(
                f"{name}: weights must be finite and >= 0 with a positive sum (the relative chance "
                f"of drawing each node as a negative), got min {float(weight.min())}, "
                f"sum {float(weight.sum())}."
            )
        return torch.multinomial(weight, num, replacement=True)

    @staticmethod
    def _check_homogeneous(input_type: Any, time: Tensor | None, time_name: str) -> None:
        if input_type is not None:
            raise ValidationError(
                f"input type {input_type!r}: TorchNeighborSampler samples homogeneous graphs "
                "only; use PyG's NeighborLoader with pyg-lib for HeteroData."
            )
        if time is not None:
            raise ValidationError(
                f"{time_name}: temporal sampling is not implemented in TorchNeighborSampler; "
                "install pyg-lib and use PyG's NeighborLoader/LinkNeighborLoader."
            )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_nodes={self.num_nodes}, num_edges={self.row.numel()}, "
            f"num_neighbors={self.num_neighbors}, replace={self.replace}, "
            f"subgraph_type={self.subgraph_type!r}, disjoint={self.disjoint})"
        )


# Loaders ######################################################################

Backend = Literal["auto", "torch", "pyg"]
_SAMPLER_KEYS = (
    "replace",
    "subgraph_type",
    "disjoint",
    "temporal_strategy",
    "time_attr",
    "weight_attr",
    "is_sorted",
    "share_memory",
    "directed",
    "sample_direction",
)


def _use_pyg(backend: str) -> bool:
    if backend not in ("auto", "torch", "pyg"):
        raise ValidationError(
            f"backend: expected 'auto', 'torch' or 'pyg', got {backend!r}."
        )
    if backend == "pyg" and not has_compiled_sampler():
        raise ValidationError(
            "backend='pyg': PyG's neighbour sampler needs pyg-lib or torch-sparse, and "
            "neither is installed. Use backend='auto' (or 'torch') for the pure-torch sampler."
        )
    return backend == "pyg" or (backend == "auto" and has_compiled_sampler())


def _split_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    sampler_kw = {k: kwargs.pop(k) for k in _SAMPLER_KEYS if k in kwargs}
    return sampler_kw, kwargs


def neighbor_loader(
    data: Data,
    num_neighbors: Sequence[int],
    input_nodes: Tensor | None = None,
    batch_size: int = 1,
    shuffle: bool = False,
    *,
    backend: Backend = "auto",
    **kwargs: Any,
) -> NodeLoader:
    """A node-level mini-batch loader with neighbour sampling.

    Uses PyG's :class:`~torch_geometric.loader.NeighborLoader` when pyg-lib
    or torch-sparse is installed (``backend="auto"``), else a
    :class:`~torch_geometric.loader.NodeLoader` over
    :class:`TorchNeighborSampler`. Both yield ``Data`` batches with ``x``,
    ``edge_index``, ``n_id``, ``e_id``, ``input_id``, ``batch_size``,
    ``num_sampled_nodes`` and ``num_sampled_edges``; the first ``batch_size``
    nodes are the seeds.

    Args:
        data: The graph.
        num_neighbors: Fan-out per hop (``-1``: all neighbours).
        input_nodes: Seed node indices or a boolean mask (``None``: all nodes).
        batch_size: Seeds per batch.
        shuffle: Shuffle the seeds each epoch.
        backend: ``"auto"``, ``"torch"`` (always ours) or ``"pyg"``.
        **kwargs: Sampler options (``replace``, ``subgraph_type``,
            ``disjoint``, ...; ``neighbor_sampler``: a sampler built
            beforehand, used as it is) and loader options (``transform``,
            ``num_workers``, ``drop_last``, ...), as for NeighborLoader.
    """
    _check_num_neighbors(num_neighbors)
    if isinstance(data, Data):
        input_nodes = _check_input_nodes(input_nodes, int(data.num_nodes or 0))
    if _use_pyg(backend):
        return NeighborLoader(
            data, num_neighbors, input_nodes=input_nodes, batch_size=batch_size,
            shuffle=shuffle, **kwargs,
        )
    sampler_kw, loader_kw = _split_kwargs(dict(kwargs))
    # refused here, not at the first batch the sampler draws
    TorchNeighborSampler._check_homogeneous(None, loader_kw.get("input_time"), "input_time")
    sampler = loader_kw.pop("neighbor_sampler", None)
    if sampler is None:
        sampler = TorchNeighborSampler(data, num_neighbors, **sampler_kw)
    return NodeLoader(
        data, node_sampler=sampler, input_nodes=input_nodes, batch_size=batch_size,
        shuffle=shuffle, **loader_kw,
    )


def link_neighbor_loader(
    data: Data,
    num_neighbors: Sequence[int],
    edge_label_index: Tensor | None = None,
    edge_label: Tensor | None = None,
    neg_sampling_ratio: float | None = None,
    neg_sampling: NegativeSampling | str | dict | None = None,
    batch_size: int = 1,
    shuffle: bool = False,
    *,
    backend: Backend = "auto",
    **kwargs: Any,
) -> LinkLoader:
    """A link-level mini-batch loader with neighbour sampling around both ends.

    Uses PyG's :class:`~torch_geometric.loader.LinkNeighborLoader` when pyg-lib
    or torch-sparse is installed (``backend="auto"``), else a
    :class:`~torch_geometric.loader.LinkLoader` over
    :class:`TorchNeighborSampler`. Batches carry ``edge_label_index`` (local
    to the batch's nodes) and ``edge_label``; with ``neg_sampling_ratio=r``
    (or ``neg_sampling=NegativeSampling("binary", r)``) ``ceil(r * B)`` random
    negatives labelled 0 follow the ``B`` positives. As in PyG, a given
    ``edge_label`` whose minimum is 0 is shifted by +1 when negatives are
    sampled, so 0 always means "sampled negative".

    Args:
        data: The graph.
        num_neighbors: Fan-out per hop (``-1``: all neighbours).
        edge_label_index: ``[2, B_total]`` seed links (``None``: all edges).
        edge_label: Labels of the seed links.
        neg_sampling_ratio: Binary negatives per positive (shortcut).
        neg_sampling: A :class:`~torch_geometric.sampler.NegativeSampling`
            (``"binary"`` or ``"triplet"``).
        batch_size: Seed links per batch.
        shuffle: Shuffle the seed links each epoch.
        backend: ``"auto"``, ``"torch"`` (always ours) or ``"pyg"``.
        **kwargs: Sampler and loader options, as for LinkNeighborLoader.
    """
    _check_num_neighbors(num_neighbors)
    if isinstance(data, Data):
        if edge_label_index is not None:
            if (
                not isinstance(edge_label_index, Tensor)
                or edge_label_index.dim() != 2
                or edge_label_index.size(0) != 2
            ):
                shape = tuple(edge_label_index.shape) if isinstance(edge_label_index, Tensor) else None
                raise ValidationError(
                    f"edge_label_index: expected a tensor of shape [2, num_links], got "
                    f"{shape or type(edge_label_index).__name__}."
                )
            _check_index(edge_label_index.reshape(-1), int(data.num_nodes or 0), "edge_label_index")
            num_links, which = edge_label_index.size(1), ""
        elif data.edge_index is None:  # LinkLoader would fail on data.edge_index[0]
            raise ValidationError(
                "edge_label_index: None takes every edge of data.edge_index as a seed link, but data "
                "has no edge_index; pass edge_label_index (shape [2, num_links]) or set data.edge_index."
            )
        else:
            # The seed links are all edges, so edge_label needs one label per edge: LinkLoader does not
            # check, and would silently ignore extra labels or fail mid-epoch on too few.
            num_links = data.edge_index.size(-1)
            which = ", one per edge of data.edge_index as edge_label_index is None"
        if edge_label is not None and not isinstance(edge_label, Tensor):
            raise ValidationError(
                f"edge_label: expected a tensor of one label per link, got {type(edge_label).__name__}; "
                f"convert it with torch.as_tensor(edge_label)."
            )
        if edge_label is not None and (edge_label.dim() == 0 or edge_label.size(0) != num_links):
            got = "a 0-d tensor" if edge_label.dim() == 0 else edge_label.size(0)
            raise ValidationError(f"edge_label: expected one label per link ({num_links}{which}), got {got}.")
    if _use_pyg(backend):
        return LinkNeighborLoader(
            data, num_neighbors, edge_label_index=edge_label_index, edge_label=edge_label,
            neg_sampling=neg_sampling, neg_sampling_ratio=neg_sampling_ratio,
            batch_size=batch_size, shuffle=shuffle, **kwargs,
        )
    sampler_kw, loader_kw = _split_kwargs(dict(kwargs))
    TorchNeighborSampler._check_homogeneous(None, loader_kw.get("edge_label_time"), "edge_label_time")
    sampler = loader_kw.pop("neighbor_sampler", None)
    if sampler is None:
        sampler = TorchNeighborSampler(data, num_neighbors, **sampler_kw)
    return LinkLoader(
        data, link_sampler=sampler, edge_label_index=edge_label_index, edge_label=edge_label,
        neg_sampling=neg_sampling, neg_sampling_ratio=neg_sampling_ratio,
        batch_size=batch_size, shuffle=shuffle, **loader_kw,
    )
