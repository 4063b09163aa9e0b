r"""Complete graphs: attention is message passing on a complete graph.

Self-attention over :math:`n` tokens is message passing on the complete graph
with self-loops (every token :math:`j` sends a message to every token
:math:`i`); cross-attention from :math:`n` queries to :math:`m` keys is the
complete bipartite graph :math:`K_{m,n}` with edges key :math:`\to` query.
Masks remove edges (or weight them).
"""

from __future__ import annotations

import operator
from functools import lru_cache
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from graphdl.errors import ValidationError
from graphdl.graphs.structure_cache import passes

__all__ = ["CompleteGraph", "complete", "complete_edges", "is_complete"]


class CompleteGraph(Data):
    """A complete (or complete bipartite) graph.

    ``edge_index`` runs from source (key) nodes to target (query) nodes,
    sorted by target; ``complete_size`` is the row ``[n, m, self_loops]``
    (one row per graph once batched). For self-attention (``m == n``) sources
    and targets are the same nodes.
    """

    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        if key == "edge_index":
            n, m, _ = (int(v) for v in self["complete_size"][0])
            return torch.tensor([[m], [n]])
        return super().__inc__(key, value, *args, **kwargs)


@lru_cache(maxsize=64)
@torch.inference_mode(False)  # cached for later calls: not inference tensors, which autograd cannot save
def _edges(n: int, m: int, self_loops: bool) -> Tensor:
    dst = torch.arange(n).repeat_interleave(m)
    src = torch.arange(m).repeat(n)
    ei = torch.stack([src, dst])
    if not self_loops:
        ei = ei[:, src != dst]
    return ei


def _check_count(value: Any, name: str) -> int:
    try:
        count = operator.index(value) if not isinstance(value, bool) else 0
    except TypeError:
        count = 0
    if count < 1:
        raise ValidationError(f"{name} must be an int >= 1, got {value!r}")
    return count


def _check_loops(self_loops: bool, num_sources: int | None) -> None:
    if not self_loops and num_sources is not None:
        raise ValidationError("self_loops=False only makes sense for a complete graph (num_sources=None)")


def complete_edges(n: int, m: int | None = None, self_loops: bool = True,
                   device: torch.device | str = "cpu") -> Tensor:
    """Edges ``j -> i`` of the complete graph on ``n`` nodes (or from ``m`` sources to ``n`` targets)."""
    n = _check_count(n, "n")
    m = n if m is None else _check_count(m, "m")
    _check_loops(self_loops, None if m == n else m)
    # a copy: the cached tensor is shared by every later call and graph
    return _edges(n, m, bool(self_loops)).to(device, copy=True)


def complete(n: int, num_sources: int | None = None, *, batch_size: int | None = None,
             self_loops: bool = True, x: Tensor | None = None) -> CompleteGraph | Batch:
    r"""The complete graph on ``n`` nodes (self-attention) or from ``num_sources`` to ``n`` nodes.

    Args:
        n: Number of (target) nodes, the query length :math:`L`.
        num_sources: Number of source nodes, the key length :math:`S`
            (``None``: the same ``n`` nodes, a complete graph with self-loops).
        batch_size: Return a :class:`~torch_geometric.data.Batch` of this many
            copies (``None``: one :class:`CompleteGraph`).
        self_loops: Keep the edges :math:`i \to i` (attention does).
        x: Optional node features, :math:`(n, F)`, or :math:`(B n, F)` with
            ``batch_size=B``.

    Returns:
        A :class:`CompleteGraph` with :math:`n m` edges (:math:`n(n-1)`
        without self-loops), or a batch of them.
    """
    n = _check_count(n, "n")
    m = n if num_sources is None else _check_count(num_sources, "num_sources")
    _check_loops(self_loops, num_sources)
    if x is not None and not isinstance(x, Tensor):
        raise ValidationError(f"x must be a tensor of node features, got {type(x).__name__}")
    size = torch.tensor([[n, m, int(self_loops)]])

    def one(features: Tensor | None) -> CompleteGraph:
        g = CompleteGraph(edge_index=_edges(n, m, self_loops).clone(), complete_size=size, num_nodes=n)
        if features is not None:
            g.x = features
        return g

    if batch_size is None:
        if x is not None and x.size(0) != n:
            raise ValidationError(f"x must have n={n} rows, got {tuple(x.shape)}")
        return one(x)
    batch_size = _check_count(batch_size, "batch_size")
    if x is not None and x.size(0) != batch_size * n:
        raise ValidationError(f"x must have batch_size*n={batch_size * n} rows, got {tuple(x.shape)}")
    return Batch.from_data_list([one(None if x is None else x[b * n:(b + 1) * n]) for b in range(batch_size)])


def is_complete(graph: Data) -> bool:
    """Whether ``graph`` is an unedited complete self-attention graph (equal sizes, self-loops).

    Compares the edges with those :func:`complete` builds, in its order (graph, target, source): a graph
    whose edges were reordered (e.g. coalesced) or replaced with as many others is not complete.
    """
    if "complete_size" not in graph:
        return False
    size = graph["complete_size"]
    if size.dim() != 2 or size.size(1) != 3 or not bool((size == size[:1]).all()):
        return False
    n, m, loops = (int(v) for v in size[0])
    ei = graph.edge_index
    if n != m or loops != 1 or not isinstance(ei, Tensor) or ei.dim() != 2 or ei.size(0) != 2 \
            or ei.size(1) != size.size(0) * n * n:
        return False
    return passes(ei, [size], None, lambda: _holds_complete_edges(ei, size.size(0), n))


def _holds_complete_edges(edge_index: Tensor, b: int, n: int) -> bool:
    """Whether graph g of the batch holds the edges of ``complete(n)`` shifted by g*n, in their order."""
    base = _edges(n, n, True).to(edge_index.device)
    shift = torch.arange(b, device=edge_index.device).mul_(n).view(1, b, 1)
    return torch.equal(edge_index.reshape(2, b, n * n) - shift, base.view(2, 1, n * n).expand(2, b, n * n))
