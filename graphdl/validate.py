"""Input checks run before any training starts.

Each check raises :class:`~graphdl.errors.ValidationError` naming the argument,
what was expected, what was received and how to fix it.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.data import Data

from graphdl.errors import ValidationError

__all__ = ["check_edge_index", "check_features", "check_graph"]


def check_edge_index(edge_index: object, num_nodes: int | None = None, name: str = "edge_index") -> None:
    """``edge_index`` must be a ``(2, E)`` long tensor with indices in ``[0, num_nodes)``."""
    if not isinstance(edge_index, Tensor):
        raise ValidationError(f"{name} must be a torch.Tensor of shape (2, num_edges), got "
                              f"{type(edge_index).__name__}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValidationError(f"{name} must have shape (2, num_edges), got {tuple(edge_index.shape)}; "
                              f"a (num_edges, 2) edge list becomes one with .t().contiguous()")
    if edge_index.dtype != torch.long:
        raise ValidationError(f"{name} must have dtype torch.long, got {edge_index.dtype}; use .long()")
    if num_nodes is not None and edge_index.numel():
        lo, hi = int(edge_index.min()), int(edge_index.max())
        if lo < 0 or hi >= num_nodes:
            raise ValidationError(f"{name} holds node indices in [{lo}, {hi}] but the graph has {num_nodes} "
                                  f"nodes (valid indices: 0..{num_nodes - 1}); remove or remap those edges")


def check_features(x: object, num_nodes: int | None = None, name: str = "x") -> None:
    """Node features must be a finite floating ``(num_nodes, F)`` tensor."""
    if not isinstance(x, Tensor):
        raise ValidationError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValidationError(f"{name} must have shape (num_nodes, num_features), got {tuple(x.shape)}; "
                              f"a 1-d feature becomes one with .unsqueeze(-1)")
    if num_nodes is not None and x.size(0) != num_nodes:
        raise ValidationError(f"{name} has {x.size(0)} rows but the graph has {num_nodes} nodes")
    if x.is_floating_point() and not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).any(dim=-1).sum())
        raise ValidationError(f"{name} holds NaN or infinite values in {bad} rows; impute or drop them")


def check_graph(data: Data, require_y: bool = False) -> None:
    """Check a PyG ``Data`` graph's ``x``, ``edge_index`` and optional fields."""
    if not isinstance(data, Data):
        raise ValidationError(f"expected a torch_geometric.data.Data graph, got {type(data).__name__}")
    if data.edge_index is None:
        raise ValidationError("the graph has no edge_index; set data.edge_index = a (2, num_edges) long tensor")
    num_nodes = data.num_nodes
    check_edge_index(data.edge_index, num_nodes)
    if data.x is not None:
        if data.x.is_floating_point():
            check_features(data.x, num_nodes)
        elif data.x.size(0) != num_nodes:
            raise ValidationError(f"x has {data.x.size(0)} rows but the graph has {num_nodes} nodes")
    num_edges = data.edge_index.size(1)
    for key in ("edge_weight", "edge_attr"):
        value = data.get(key) if hasattr(data, "get") else getattr(data, key, None)
        if value is not None and value.size(0) != num_edges:
            raise ValidationError(f"{key} has {value.size(0)} rows but edge_index has {num_edges} edges; "
                                  f"give one {key} row per edge")
    if require_y and data.y is None:
        raise ValidationError("the graph has no targets data.y; set one label (or value) per node")
