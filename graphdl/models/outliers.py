r"""Outlier injection for benchmarking node anomaly detectors (Ding et al., SDM 2019; PyGOD's generator).

Two kinds of outliers are planted in a graph, as PyGOD's
``gen_structural_outlier`` and ``gen_contextual_outlier`` define them:

* **Structural outliers** (:func:`inject_structural_outliers`): draw a random
  permutation :math:`\pi` of the nodes and take its first :math:`m n`
  entries; clique :math:`c \in \{0, \dots, n-1\}` is
  :math:`C_c = \{\pi_{cm}, \dots, \pi_{cm+m-1}\}`, and every pair
  :math:`\{u, v\} \subset C_c` becomes an edge (both directions unless
  ``directed``), appended to ``edge_index`` (an edge that already existed is
  appended again, as in PyGOD). All :math:`m n` clique nodes are outliers.
* **Contextual outliers** (:func:`inject_contextual_outliers`): the first
  :math:`n` entries of a random permutation are the outliers. For each of them
  in turn, :math:`i`, draw :math:`k` candidates (the first :math:`k` entries of
  a fresh permutation of all nodes) and copy the features of the candidate
  farthest from :math:`i`,

  .. math::
      j^{\star} = \operatorname*{arg\,max}_{j \in \text{candidates}} \lVert \mathbf{x}_i - \mathbf{x}_j \rVert_2,
      \qquad \mathbf{x}_i \leftarrow \mathbf{x}_{j^{\star}}

  (the first maximiser on ties; later outliers see the features written by
  earlier ones, as PyGOD's in-place loop does).

Randomness comes from ``seed``: an ``int`` seeds a fresh CPU
``torch.Generator``, which draws exactly what PyGOD draws after
``torch.manual_seed(seed)`` (PyGOD skips seeding for ``seed=0``; here 0 is a
seed like any other); a ``torch.Generator`` is used as is (pass one generator
to both injectors so that their node draws are independent); ``None`` uses
torch's global generator. Unlike PyGOD, the input graph is not modified: a
copy is returned.
"""

from __future__ import annotations

import copy
import numbers

import torch
from torch import Tensor
from torch_geometric.data import Data

from graphdl.errors import ValidationError

__all__ = ["inject_structural_outliers", "inject_contextual_outliers", "inject_outliers"]


def _count(owner: str, name: str, value: object, low: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValidationError(f"{owner}: {name} ({what}) must be an int, got {value!r}")
    if value < low:
        raise ValidationError(f"{owner}: {name} ({what}) must be >= {low}, got {value}")
    return int(value)


def _generator(owner: str, seed: int | torch.Generator | None) -> torch.Generator | None:
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValidationError(f"{owner}: seed must be an int, a torch.Generator or None, got {seed!r}")
    return torch.Generator().manual_seed(int(seed))


def _check_data(owner: str, data: object, need_x: bool) -> Data:
    if not isinstance(data, Data):
        raise ValidationError(f"{owner}: data must be a torch_geometric.data.Data graph, got {type(data).__name__}")
    if data.edge_index is None:
        raise ValidationError(f"{owner}: the graph has no edge_index")
    if need_x and (data.x is None or data.x.dim() != 2):
        raise ValidationError(f"{owner}: the graph needs node features x of shape (num_nodes, F) to swap, got "
                              f"{None if data.x is None else tuple(data.x.shape)}")
    return data


def inject_structural_outliers(data: Data, m: int, n: int, seed: int | torch.Generator | None = None, *,
                               p: float = 0.0, directed: bool = False) -> tuple[Data, Tensor]:
    r"""Plant ``n`` cliques of ``m`` nodes each (PyGOD's ``gen_structural_outlier``).

    Args:
        data: The graph (not modified).
        m: Nodes per clique (:math:`\ge 2`).
        n: Number of cliques (:math:`\ge 1`, with :math:`m n \le N`).
        seed: ``int``, ``torch.Generator`` or ``None`` (see the module docstring).
        p: Fraction of the clique edges dropped at random (PyGOD's ``p``; 0 keeps
            every clique fully connected).
        directed: Add each clique pair once (``u -> v`` with ``u`` earlier in
            :math:`\pi`) instead of in both directions.

    Returns:
        ``(graph, y_outlier)``: a copy of ``data`` with the clique edges appended
        to ``edge_index`` (per-edge fields such as ``edge_weight`` and
        ``edge_attr`` are dropped: the new edges have none), and a ``(N,)`` long tensor, 1 for the :math:`m n`
        clique nodes and 0 elsewhere.

    Raises:
        ValidationError: ``m < 2``, ``n < 1``, ``m * n`` above the number of
            nodes, ``p`` outside ``[0, 1)`` or a malformed graph.
    """
    owner = "inject_structural_outliers"
    data = _check_data(owner, data, need_x=False)
    m = _count(owner, "m", m, 2, "the number of nodes per clique")
    n = _count(owner, "n", n, 1, "the number of cliques")
    num_nodes = data.num_nodes
    if m * n > num_nodes:
        raise ValidationError(f"{owner}: m*n = {m}*{n} = {m * n} clique nodes, but the graph has only "
                              f"{num_nodes} nodes; lower m (nodes per clique) or n (number of cliques)")
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p < 1.0:
        raise ValidationError(f"{owner}: p (the fraction of clique edges dropped) must lie in [0, 1), got {p!r}")
    gen = _generator(owner, seed)

    outlier_idx = torch.randperm(num_nodes, generator=gen)[: m * n]
    pairs = torch.cat([torch.combinations(outlier_idx[m * c: m * (c + 1)]) for c in range(n)])  # (P, 2)
    if p > 0:
        keep = torch.randperm(pairs.size(0), generator=gen)[: int((1 - p) * pairs.size(0))]
        pairs = pairs[keep]
    if not directed:
        pairs = torch.cat([pairs, pairs.flip(1)])
    y = torch.zeros(num_nodes, dtype=torch.long)
    y[outlier_idx] = 1

    out = copy.copy(data)
    device = data.edge_index.device
    out.edge_index = torch.cat([data.edge_index, pairs.t().to(device, data.edge_index.dtype)], dim=1)
    for key in data.edge_attrs():  # per-edge fields (edge_weight, edge_attr, ...) would no longer align
        if key != "edge_index":
            del out[key]
    return out, y.to(device)


def inject_contextual_outliers(data: Data, n: int, k: int, seed: int | torch.Generator | None = None
                               ) -> tuple[Data, Tensor]:
    r"""Replace the features of ``n`` nodes by the farthest of ``k`` random candidates (PyGOD's ``gen_contextual_outlier``).

    Args:
        data: The graph with node features ``x`` (not modified).
        n: Number of outliers (:math:`1 \le n \le N`).
        k: Candidates per outlier (:math:`1 \le k \le N - n`, PyGOD's bound).
        seed: ``int``, ``torch.Generator`` or ``None`` (see the module docstring).

    Returns:
        ``(graph, y_outlier)``: a copy of ``data`` with new ``x``, and a ``(N,)``
        long tensor, 1 for the ``n`` outliers.

    Raises:
        ValidationError: ``n`` or ``k`` out of range, or a graph without ``x``.
    """
    owner = "inject_contextual_outliers"
    data = _check_data(owner, data, need_x=True)
    num_nodes = data.num_nodes
    n = _count(owner, "n", n, 1, "the number of outliers")
    k = _count(owner, "k", k, 1, "the number of candidate nodes per outlier")
    if n > num_nodes:
        raise ValidationError(f"{owner}: n = {n} outliers, but the graph has only {num_nodes} nodes")
    if k > num_nodes - n:
        raise ValidationError(f"{owner}: k = {k} candidates per outlier, but at most N - n = "
                              f"{num_nodes} - {n} = {num_nodes - n} are allowed; lower k or n")
    gen = _generator(owner, seed)

    x = data.x.clone()
    # distances in x's own precision, as PyGOD's: float64 features cast to float32 tied near-equal candidates
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    outlier_idx = torch.randperm(num_nodes, generator=gen)[:n]
    for idx in outlier_idx.tolist():
        candidates = torch.randperm(num_nodes, generator=gen)[:k].to(x.device)
        dist = torch.cdist(x[idx].unsqueeze(0).to(work), x[candidates].to(work))  # (1, k)
        x[idx] = x[candidates[int(torch.argmax(dist, dim=1))]]
    y = torch.zeros(num_nodes, dtype=torch.long)
    y[outlier_idx] = 1

    out = copy.copy(data)
    out.x = x
    return out, y.to(x.device)


def inject_outliers(data: Data, m: int = 10, n_structural: int = 7, n_contextual: int = 70, k: int = 50,
                    seed: int | torch.Generator | None = None) -> Data:
    r"""Both kinds of outliers with one generator: contextual first, then the cliques.

    Returns a copy of ``data`` with ``y_outlier`` (1 for a structural or a
    contextual outlier, the union) and ``outlier_type`` (0 inlier, 1
    structural, 2 contextual, 3 both). With one generator the two node draws
    are independent, so a node may be both (about :math:`m\,n_s\,n_c / N` nodes).
    The defaults are the Cora setting of the benchmarks: 7 cliques of 10 nodes
    and 70 contextual outliers with 50 candidates each.
    """
    gen = _generator("inject_outliers", seed)
    out, y_context = inject_contextual_outliers(data, n_contextual, k, gen)
    out, y_struct = inject_structural_outliers(out, m, n_structural, gen)
    out.y_outlier = (y_struct | y_context).long()
    out.outlier_type = y_struct + 2 * y_context
    return out
