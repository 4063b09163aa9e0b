"""Input checks run before any training starts.

Each check raises :class:`~graphdl.errors.ValidationError` naming the argument,
what was expected, what was received and how to fix it.

Valid but unusual graphs pass: no edges, isolated nodes, self loops,
duplicate edges, a single node. The tasks run these checks once in
``setup``, not per training step; :func:`set_debug` (or ``GRAPHDL_DEBUG=1``)
also checks every graph a model is called on, which costs time.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import Data

from graphdl.errors import ValidationError

__all__ = ["check_edge_index", "check_features", "check_graph", "check_dataset", "check_split_index",
           "check_same_device", "set_debug", "DEBUG"]

#: Check every graph before the model sees it (slow; for debugging bad data).
DEBUG = os.environ.get("GRAPHDL_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def set_debug(enabled: bool = True) -> None:
    """Turn the per-call input checks of the tasks on or off (default off; ``GRAPHDL_DEBUG=1``)."""
    global DEBUG
    DEBUG = bool(enabled)


def check_same_device(tensors: dict[str, Any], reference: str = "x") -> None:
    """Every tensor in ``tensors`` (name -> tensor or None) must be on the device of ``tensors[reference]``."""
    present = {k: v for k, v in tensors.items() if isinstance(v, Tensor)}
    if reference not in present:
        reference = next(iter(present), reference)
    if reference not in present:
        return
    device = present[reference].device
    for name, value in present.items():
        if value.device != device:
            raise ValidationError(f"{name} is on {value.device} but {reference} is on {device}; move the "
                                  f"whole graph with data.to(device)")


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
    if num_nodes is not None and num_nodes < 0:
        raise ValidationError(f"num_nodes must be >= 0, got {num_nodes}")
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
    check_same_device({k: data.get(k) for k in ("x", "edge_index", "edge_weight", "edge_attr", "y", "batch")},
                      reference="x" if data.get("x") is not None else "edge_index")
    num_nodes = data.num_nodes
    if num_nodes is None:
        raise ValidationError("the graph's number of nodes is unknown: give it node features x or set "
                              "data.num_nodes")
    check_edge_index(data.edge_index, num_nodes)
    if data.x is not None:
        if data.x.is_floating_point():
            check_features(data.x, num_nodes)
        elif data.x.size(0) != num_nodes:
            raise ValidationError(f"x has {data.x.size(0)} rows but the graph has {num_nodes} nodes")
    num_edges = data.edge_index.size(1)
    for key in ("edge_weight", "edge_attr"):
        value = data.get(key) if hasattr(data, "get") else getattr(data, key, None)
        if value is None:
            continue
        if not isinstance(value, Tensor):
            raise ValidationError(f"{key} must be a torch.Tensor, got {type(value).__name__}")
        if value.dim() == 0 or value.size(0) != num_edges:
            raise ValidationError(f"{key} has {tuple(value.shape)[:1] or 'no'} rows but edge_index has "
                                  f"{num_edges} edges; give one {key} row per edge")
        if key == "edge_weight" and value.dim() != 1:
            raise ValidationError(f"edge_weight must have shape (num_edges,), got {tuple(value.shape)}")
        if value.is_floating_point() and value.numel() and not torch.isfinite(value).all():
            raise ValidationError(f"{key} holds NaN or infinite values; impute or drop those edges")
    if require_y and data.y is None:
        raise ValidationError("the graph has no targets data.y; set one label (or value) per node")


def check_split_index(index: Any, size: int, name: str = "split") -> Any:
    """A split of ``size`` items: a boolean mask of length ``size`` or integer indices in ``[0, size)``.

    Returns ``index`` unchanged (or as a tensor when it was a list/range).
    """
    if isinstance(index, (list, tuple, range)):
        index = torch.as_tensor(list(index), dtype=torch.long)
    elif not isinstance(index, Tensor) and hasattr(index, "__array__"):
        index = torch.as_tensor(index)
    if not isinstance(index, Tensor):
        raise ValidationError(f"{name} must be a boolean mask or integer indices, got {type(index).__name__}")
    if index.is_floating_point() or index.is_complex():
        raise ValidationError(f"{name} must be a boolean mask or integer indices, got dtype {index.dtype}")
    if index.dtype == torch.bool:
        if index.numel() != size:
            raise ValidationError(f"{name} mask has {index.numel()} entries but there are {size} items")
        return index
    flat = index.reshape(-1)
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= size):
        raise ValidationError(f"{name} indices must lie in [0, {size - 1}], got "
                              f"[{int(flat.min())}, {int(flat.max())}]")
    return index


def check_dataset(dataset: Any, max_items: int = 10_000) -> None:
    """Check the graphs of a graph-level dataset once (``edge_index`` ranges, finite features).

    An ``InMemoryDataset`` (PyG, OGB) is checked on its collated storage in a
    few vectorised operations, however many graphs it holds; other datasets
    have their first ``max_items`` graphs checked one by one.
    """
    if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
        raise ValidationError(f"the graph task needs a dataset of graphs (a PyG dataset or a list of Data), "
                              f"got {type(dataset).__name__}")
    if len(dataset) == 0:
        raise ValidationError("the dataset holds no graphs")
    store = getattr(dataset, "_data", None)
    slices = getattr(dataset, "slices", None)
    if isinstance(store, Data) and isinstance(slices, dict) and "edge_index" in slices:
        _check_collated(store, slices)
        return
    for i in range(min(len(dataset), max_items)):
        graph = dataset[i]
        try:
            check_graph(graph)
        except ValidationError as exc:
            raise ValidationError(f"graph {i} of the dataset: {exc}") from None


def _check_collated(store: Data, slices: dict[str, Tensor]) -> None:
    edge_index = store.edge_index
    check_edge_index(edge_index, None, name="edge_index (collated dataset)")
    edges_per_graph = slices["edge_index"].diff()
    key = "x" if "x" in slices else next((k for k in slices if k not in ("edge_index", "edge_attr", "y")), None)
    if key is not None and store.get(key) is not None:
        nodes_per_graph = slices[key].diff()
    elif "num_nodes" in store:
        nodes_per_graph = torch.as_tensor(store.num_nodes).view(-1)
    else:
        return
    if edge_index.numel():
        bound = nodes_per_graph.repeat_interleave(edges_per_graph)
        bad = (edge_index < 0).any(0) | (edge_index >= bound).any(0)
        if bool(bad.any()):
            edge = int(bad.nonzero()[0])
            graph = int(torch.searchsorted(slices["edge_index"], torch.tensor(edge), right=True)) - 1
            raise ValidationError(f"graph {graph} of the dataset: edge_index holds node index "
                                  f"{edge_index[:, edge].tolist()} but the graph has "
                                  f"{int(nodes_per_graph[graph])} nodes; remove or remap those edges")
    x = store.get("x")
    if isinstance(x, Tensor) and x.is_floating_point() and not torch.isfinite(x).all():
        row = int((~torch.isfinite(x)).any(-1).nonzero()[0]) if x.dim() > 1 else 0
        graph = int(torch.searchsorted(slices["x"], torch.tensor(row), right=True)) - 1
        raise ValidationError(f"graph {graph} of the dataset: x holds NaN or infinite values; impute or drop them")

