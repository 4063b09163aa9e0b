r"""k-nearest-neighbour and radius graphs in pure torch: PyG's ``knn_graph`` and ``radius_graph``
without torch-cluster.

Each node :math:`i` receives an edge from each of its :math:`k` nearest nodes
:math:`j` of the same graph,

.. math::
    \mathcal{N}(i) = \operatorname{arg\,top}_k^{\,\min} \; d(\mathbf{x}_i, \mathbf{x}_j),
    \qquad d(\mathbf{x}_i, \mathbf{x}_j) = \lVert \mathbf{x}_i - \mathbf{x}_j \rVert_2
    \;\text{ or, with } \texttt{cosine},\; 1 - \frac{\mathbf{x}_i^\top \mathbf{x}_j}
    {\lVert \mathbf{x}_i \rVert \, \lVert \mathbf{x}_j \rVert},

with :math:`j \ne i` unless ``loop``; :func:`radius_graph` keeps, of the
``max_num_neighbors`` nearest, those with :math:`d \le r`. A point cloud or a feature space becomes
a graph on which message passing runs: DGCNN's
:class:`~graphdl.layers.knn.DynamicEdgeConv` rebuilds it from its input
features at every layer.

>>> import torch
>>> from graphdl.graphs import knn_graph
>>> knn_graph(torch.tensor([[0.0], [1.0], [3.0]]), k=1)
tensor([[1, 0, 1],
        [0, 1, 2]])
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.utils import to_dense_batch

from graphdl.errors import ValidationError
from graphdl.validate import require_int

__all__ = ["knn_graph", "radius_graph"]

#: distances computed at once (graphs x padded nodes x padded nodes), about 128 MB of float32
_CHUNK = 1 << 25


def knn_graph(x: Tensor, k: int, batch: Tensor | None = None, loop: bool = False,
              flow: str = "source_to_target", cosine: bool = False, num_workers: int | None = None,
              batch_size: int | None = None) -> Tensor:
    """The k-NN graph of the rows of ``x``, as PyG's ``torch_geometric.nn.knn_graph``.

    Args:
        x: Node positions or features ``(N, F)`` (a 1-d tensor is ``(N, 1)``).
        k: Neighbours per node; a graph of fewer than ``k`` other nodes gives
            each node all of them.
        batch: The graph of each node ``(N,)``: nodes of different graphs are
            never linked. ``None``: one graph.
        loop: Count each node as its own nearest neighbour (a self-loop).
        flow: ``"source_to_target"``: edges run from the neighbour to the node
            (``edge_index[1]`` holds the node, sorted); ``"target_to_source"``
            the other way.
        cosine: Cosine distance instead of Euclidean; a zero vector is at
            distance 1 (similarity 0) from every non-zero one, as in scikit-learn.
        num_workers: Threads of the k-d tree search on CPU; ``None``: torch's
            (``torch.get_num_threads()``). No effect on GPU.
        batch_size: The number of graphs, as PyG's (which takes it to skip
            reading ``batch.max()``); checked against ``batch`` if given.

    Returns:
        ``edge_index`` ``(2, E)``, long, on ``x``'s device; ties between equal
        distances are broken arbitrarily, as in torch-cluster.

    As torch-cluster, a CPU tensor is searched with a k-d tree (SciPy's
    ``cKDTree``, graph by graph) and a GPU tensor by comparing all pairs of a
    graph (in blocks of about 128 MB); distances are computed in float64 on CPU
    and in at least float32 on GPU, whatever ``x``'s dtype.
    """
    x, batch = _checked("knn_graph", x, k, batch, flow, num_workers, batch_size)
    return _neighbour_graph(x, k, None, batch, loop, flow, cosine, num_workers)


def radius_graph(x: Tensor, r: float, batch: Tensor | None = None, loop: bool = False,
                 max_num_neighbors: int = 32, flow: str = "source_to_target", num_workers: int | None = None,
                 batch_size: int | None = None) -> Tensor:
    """The graph linking the nodes of a graph at Euclidean distance at most ``r``, as PyG's
    ``torch_geometric.nn.radius_graph`` (SchNet's and DimeNet's interaction graph).

    Args:
        x: Node positions ``(N, D)`` (a 1-d tensor is ``(N, 1)``).
        r: The cutoff distance, ``> 0``.
        batch: The graph of each node ``(N,)``; ``None``: one graph.
        loop: Link each node to itself.
        max_num_neighbors: At most this many edges into each node: its
            nearest ones within ``r`` (torch-cluster keeps the first found).
        flow, num_workers, batch_size: As for :func:`knn_graph`.

    Returns:
        ``edge_index`` ``(2, E)`` sorted by the receiving node (``edge_index[1]``
        for ``"source_to_target"``).
    """
    x, batch = _checked("radius_graph", x, max_num_neighbors, batch, flow, num_workers, batch_size,
                        name="max_num_neighbors")
    # any real number (numpy's float32 too, as PyG takes it), not a bool
    if isinstance(r, (bool, np.bool_)) or not isinstance(r, numbers.Real) or not r > 0 or r == float("inf"):
        raise ValidationError(f"radius_graph: r must be a finite distance > 0, got {r!r}")
    return _neighbour_graph(x, max_num_neighbors, float(r), batch, loop, flow, False, num_workers)


def _neighbour_graph(x: Tensor, k: int, radius: float | None, batch: Tensor | None, loop: bool, flow: str,
                     cosine: bool, num_workers: int | None) -> Tensor:
    """Edges into each node from its ``k`` nearest nodes of its graph (within ``radius`` if given)."""
    # float64 on CPU (the k-d tree's precision, the cosine normalisation included: in bfloat16 it reordered near
    # neighbours), at least float32 on GPU (torch.cdist has no float16/bfloat16 kernel)
    x = x.detach().to(torch.float64 if x.device.type == "cpu" else torch.promote_types(x.dtype, torch.float32))
    if x.size(1) == 0:  # no features: every point is the origin of R^0, all distances 0
        x = x.new_zeros(x.size(0), 1)
    if cosine:
        x = _on_unit_sphere(x)
    order = None
    if batch is not None and batch.numel() > 1 and bool((batch[1:] < batch[:-1]).any()):
        order = torch.sort(batch, stable=True).indices  # each graph's nodes contiguous
        x, batch = x[order], batch[order]
    if batch is None:
        batch = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
    if x.device.type == "cpu":
        edge_index = _kd_tree(x, batch, k, loop, radius, num_workers or torch.get_num_threads())
    else:
        edge_index = _all_pairs(x, batch, k, loop, radius)
    if order is not None:
        edge_index = order[edge_index]
        edge_index = edge_index[:, torch.sort(edge_index[1], stable=True).indices]
    return edge_index if flow == "source_to_target" else edge_index.flip(0)


def _on_unit_sphere(x: Tensor) -> Tensor:
    r"""Rows of ``x`` as points whose Euclidean order is the cosine order:
    :math:`\mathbf{x} \mapsto (\mathbf{x} / \lVert \mathbf{x} \rVert, 0)`, for which
    :math:`\lVert \mathbf{a} - \mathbf{b} \rVert^2 = 2 - 2 \cos(\mathbf{a}, \mathbf{b})`, and a zero vector
    :math:`\mapsto (\mathbf{0}, 1)`, at :math:`\sqrt{2}` from every unit vector: cosine similarity 0, distance 1,
    as scikit-learn's (``F.normalize`` would leave it at the origin, at distance 1 from all, i.e. cosine distance
    1/2, nearer than any vector at more than 60 degrees). Each row is first divided by its largest
    :math:`|x_f|`, so that its norm neither overflows nor underflows."""
    top = x.abs().amax(dim=-1, keepdim=True)
    x = x / top.masked_fill(top == 0, 1)
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)  # in [1, sqrt(F)], or 0
    zero = norm == 0
    return torch.cat([x / norm.masked_fill(zero, 1), zero.to(x.dtype)], dim=-1)


def _unit_scaled(points: Tensor, radius: float | None) -> tuple[Tensor, float | None]:
    r"""``points`` and ``radius`` times the power of two :math:`2^{-e}` that brings the largest :math:`|x|` into
    :math:`[\tfrac12, 1)`. It is exact, so the order of the distances and the test :math:`d \le r` are kept,
    and the squared differences of the distance can no longer overflow to infinity (coordinates beyond about
    :math:`10^{19}` in float32, :math:`10^{154}` in float64, which dropped every edge) nor underflow to 0 (all
    coordinates below about :math:`10^{-19}` in float32, which tied every pair)."""
    top = float(points.abs().max()) if points.numel() else 0.0
    if top == 0.0:
        return points, radius
    e = math.frexp(top)[1]  # top = m 2^e, 1/2 <= m < 1
    for part in (e // 2, e - e // 2):  # two steps: 2^-e alone may not fit the dtype (float16, subnormals)
        points = points * 2.0 ** -part
        radius = None if radius is None else radius * 2.0 ** -part
    return points, radius


def _kd_tree(x: Tensor, batch: Tensor, k: int, loop: bool, radius: float | None, workers: int) -> Tensor:
    """(neighbour, node) pairs by a k-d tree per graph; ``batch`` sorted."""
    from scipy.spatial import cKDTree

    counts = torch.bincount(batch).tolist() if batch.numel() else []
    points, radius = _unit_scaled(x.cpu().double(), radius)
    points = points.numpy()
    sources, targets, start = [], [], 0
    for n in counts:
        if n:
            pts = points[start:start + n]
            want = min(k + (0 if loop else 1), n)
            bound = np.inf if radius is None else np.nextafter(radius, np.inf)  # SciPy's bound is strict
            _, idx = cKDTree(pts).query(pts, k=want, distance_upper_bound=bound, workers=workers)
            idx = torch.from_numpy(np.asarray(idx, dtype=np.int64).reshape(n, want))
            node = torch.arange(n).view(-1, 1).expand_as(idx)
            keep = idx < n  # SciPy marks a missing neighbour (beyond the bound) with n
            if not loop:
                keep &= idx != node
            keep &= keep.cumsum(1) <= k  # self may be absent among equal points: drop the last instead
            sources.append(idx[keep] + start)
            targets.append(node[keep] + start)
        start += n
    if not sources:
        return torch.empty(2, 0, dtype=torch.long, device=x.device)
    return torch.stack([torch.cat(sources), torch.cat(targets)]).to(x.device)


def _all_pairs(x: Tensor, batch: Tensor, k: int, loop: bool, radius: float | None) -> Tensor:
    """(neighbour, node) pairs by comparing every pair of nodes of each graph; ``batch`` sorted."""
    if x.size(0) == 0:
        return torch.empty(2, 0, dtype=torch.long, device=x.device)
    x, radius = _unit_scaled(x, radius)
    dense, present = to_dense_batch(x, batch)  # (B, n, F): graphs padded to the largest
    sizes = present.sum(1)
    first = torch.cumsum(sizes, 0) - sizes  # index of each graph's first node
    n = dense.size(1)
    graphs_per_chunk = max(1, _CHUNK // (n * n))
    rows_per_chunk = max(1, _CHUNK // (graphs_per_chunk * n))  # a large graph: its nodes in blocks
    sources, targets = [], []
    for g in range(0, dense.size(0), graphs_per_chunk):
        pts, mask = dense[g:g + graphs_per_chunk], present[g:g + graphs_per_chunk]
        offset = first[g:g + graphs_per_chunk].view(-1, 1, 1)
        for r in range(0, n, rows_per_chunk):
            rows = torch.arange(r, min(r + rows_per_chunk, n), device=x.device)
            # exact differences, not the |a|^2 + |b|^2 - 2ab shortcut whose rounding reorders near ties
            dist = torch.cdist(pts[:, rows], pts, compute_mode="donot_use_mm_for_euclid_dist")
            dist = dist.masked_fill(~mask.unsqueeze(1), float("inf"))  # padding is never a neighbour
            if radius is not None:
                dist = dist.masked_fill(dist > radius, float("inf"))
            if not loop:
                dist[:, torch.arange(len(rows), device=x.device), rows] = float("inf")
            value, neighbour = dist.topk(min(k, n), dim=-1, largest=False)  # (b, rows, k), nearest first
            keep = mask[:, rows].unsqueeze(-1) & value.isfinite()
            sources.append((neighbour + offset)[keep])
            targets.append((rows.view(1, -1, 1) + offset).expand_as(neighbour)[keep])
    return torch.stack([torch.cat(sources), torch.cat(targets)])


def _checked(owner: str, x: Any, k: Any, batch: Any, flow: Any, num_workers: Any, batch_size: Any,
             name: str = "k") -> tuple[Tensor, Tensor | None]:
    """``x`` as ``(N, F)`` and ``batch``, after checking every argument; errors start with ``owner``."""
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() not in (1, 2):
        got = f"{x.dtype} of shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
        raise ValidationError(f"{owner}: x must be a float tensor (num_nodes, num_features), got {got}")
    x = x.view(-1, 1) if x.dim() == 1 else x
    require_int(owner, name, k)
    if num_workers is not None:
        require_int(owner, "num_workers", num_workers)
    if batch_size is not None:
        require_int(owner, "batch_size", batch_size)
    if flow not in ("source_to_target", "target_to_source"):
        raise ValidationError(f"{owner}: flow must be 'source_to_target' or 'target_to_source', got {flow!r}")
    if not bool(torch.isfinite(x).all()):
        raise ValidationError(f"{owner}: x holds NaN or infinite values, which have no nearest neighbours; "
                              "clean or impute them first")
    if batch is not None:
        if not isinstance(batch, Tensor) or batch.dim() != 1 or batch.dtype != torch.long:
            got = f"{tuple(batch.shape)} {batch.dtype}" if isinstance(batch, Tensor) else type(batch).__name__
            raise ValidationError(f"{owner}: batch must be a 1-d long tensor (the graph of each node), got {got}")
        if batch.numel() != x.size(0):
            raise ValidationError(f"{owner}: batch has {batch.numel()} entries but x has {x.size(0)} nodes; "
                                  f"give one graph index per node")
        if batch.device != x.device:
            raise ValidationError(f"{owner}: batch is on {batch.device} but x on {x.device}; move one of them")
        if batch.numel() and int(batch.min()) < 0:
            raise ValidationError(f"{owner}: batch holds negative graph indices")
        if batch_size is not None and batch.numel() and int(batch.max()) >= batch_size:
            raise ValidationError(f"{owner}: batch holds graph index {int(batch.max())}, but batch_size={batch_size} "
                                  f"graphs; pass the number of graphs (batch.max() + 1) or leave batch_size out")
    return x, batch
