"""Input checks of graphs, datasets, splits and of every layer and model call.

Each check raises :class:`~graphdl.errors.ValidationError` naming the argument,
what was expected, what was received and how to fix it.

Valid but unusual graphs pass: no edges, isolated nodes, self loops,
duplicate edges, a single node.

Two kinds of check guard a call of a layer (built by ``graphdl.layers.create``)
or of a model (:class:`~graphdl.models.gnn.GNN` and the models built on it):

* structural checks, O(1): types, dimensions, feature width against
  ``in_channels``, ``edge_attr`` width against the layer's ``edge_dim``,
  dtypes (float inputs, ``edge_weight`` included, in the parameters' dtype),
  devices, one ``edge_weight``/``edge_attr`` row per edge, one ``batch`` entry
  per node. They always run.
* value scans, O(size), which synchronise a GPU: node indices in range,
  no NaN or infinity. They run on direct calls; inside :func:`inputs_checked`
  they are skipped. The Trainer scans the data once in ``Task.setup`` and then
  trains inside :func:`inputs_checked`; :func:`set_debug` (or
  ``GRAPHDL_DEBUG=1``) makes it scan every batch instead, which costs time.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Data, HeteroData
from torch_geometric.data.storage import N_KEYS
from torch_geometric.nn import GINEConv

from graphdl.errors import ConfigError, ValidationError

__all__ = ["check_edge_index", "check_features", "check_graph", "check_dataset", "check_split_index",
           "check_same_device", "check_call", "check_node_features", "check_pairs", "check_layer_call",
           "layer_edge_dim", "ignores_edge_attr", "all_finite", "inputs_checked", "owned_by", "require_int",
           "require_bool", "is_bool", "scans_enabled", "set_debug", "warn_if_train_overlaps", "DEBUG"]

def require_int(owner: str, name: str, value: Any, minimum: int = 1) -> None:
    """A setting that must be an int of at least ``minimum`` (not a bool or a float), named with its ``owner``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{owner}'s {name} must be an int >= {minimum}, got {value!r}")


def is_bool(value: Any) -> bool:
    """Whether ``value`` is a bool, Python's or numpy's: what a switch must be (by truthiness a config's ``"no"`` or
    ``0.5`` would mean True)."""
    return isinstance(value, (bool, np.bool_))


def require_bool(owner: str, name: str, value: Any) -> bool:
    """A switch that must be a bool (:func:`is_bool`), returned as ``bool``; a setting's ``ConfigError`` otherwise
    (the losses' :func:`graphdl.losses.base.check_bool` raises their ``ValidationError``)."""
    if is_bool(value):
        return bool(value)
    raise ConfigError(f"{owner}'s {name} must be a bool (True or False), got {type(value).__name__} {value!r}")


#: Check every graph before the model sees it (slow; for debugging bad data).
DEBUG = os.environ.get("GRAPHDL_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


_CHECKED: ContextVar[bool] = ContextVar("graphdl_inputs_checked", default=False)


def set_debug(enabled: bool = True) -> None:
    """Make the Trainer scan every batch it feeds a model (default off; ``GRAPHDL_DEBUG=1``)."""
    global DEBUG
    DEBUG = require_bool("set_debug", "enabled", enabled)  # bool("no") or bool("0") turned scanning on


@contextmanager
def inputs_checked() -> Iterator[None]:
    """Within this block, layers and models skip their value scans (the caller scanned the data).

    The structural checks still run. The Trainer uses it after ``Task.setup``
    has checked the data, unless :func:`set_debug` is on.
    """
    token = _CHECKED.set(True)
    try:
        yield
    finally:
        _CHECKED.reset(token)


def scans_enabled() -> bool:
    """Whether a layer or model call scans its inputs' values (False inside :func:`inputs_checked`)."""
    return not _CHECKED.get()


def all_finite(t: Tensor) -> bool:
    """No NaN or infinity in ``t`` (integer and empty tensors are finite).

    One min/max pass, which propagates NaN: about 17x faster on CPU than
    ``torch.isfinite(t).all()``, which allocates a mask as large as ``t``.
    """
    if not (t.is_floating_point() or t.is_complex()) or t.numel() == 0:
        return True
    if t.is_complex():
        return bool(torch.isfinite(t).all())
    lo, hi = torch.aminmax(t)
    return bool(torch.isfinite(lo) & torch.isfinite(hi))


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


def check_edge_index(edge_index: object, num_nodes: int | tuple[int, int] | None = None,
                     name: str = "edge_index", scan: bool = True) -> None:
    """``edge_index`` must be a ``(2, E)`` long tensor with indices in ``[0, num_nodes)``.

    ``num_nodes`` may be a pair ``(sources, targets)`` for a bipartite graph;
    ``scan=False`` skips the range check (the only O(E) part).
    """
    if not isinstance(edge_index, Tensor):
        raise ValidationError(f"{name} must be a torch.Tensor of shape (2, num_edges), got "
                              f"{type(edge_index).__name__}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValidationError(f"{name} must have shape (2, num_edges), got {tuple(edge_index.shape)}; "
                              f"a (num_edges, 2) edge list becomes one with .t().contiguous()")
    if edge_index.dtype != torch.long:
        raise ValidationError(f"{name} must have dtype torch.long, got {edge_index.dtype}; use .long()")
    if isinstance(num_nodes, (int, np.integer)) and num_nodes < 0:
        raise ValidationError(f"num_nodes must be >= 0, got {num_nodes}")
    if num_nodes is None or not scan or not edge_index.numel():
        return
    if isinstance(num_nodes, tuple):
        for row, (n, side) in enumerate(zip(num_nodes, ("source", "target"))):
            lo, hi = (int(v) for v in torch.aminmax(edge_index[row]))
            if lo < 0 or hi >= n:
                raise ValidationError(f"{name}[{row}] holds {side} node indices in [{lo}, {hi}] but there are "
                                      f"{n} {side} nodes (valid indices: 0..{n - 1}); remove or remap those edges")
        return
    lo, hi = (int(v) for v in torch.aminmax(edge_index))
    if lo < 0 or hi >= num_nodes:
        raise ValidationError(f"{name} holds node indices in [{lo}, {hi}] but the graph has {num_nodes} "
                              f"nodes (valid indices: 0..{num_nodes - 1}); remove or remap those edges")


_ROWS_PER_NODE = ("{name} has {rows} rows but the graph has {nodes} nodes; give one row per node (data.num_nodes, "
                  "when set, must match)")


def check_features(x: object, num_nodes: int | None = None, name: str = "x") -> None:
    """Node features must be a finite ``(num_nodes, F)`` tensor."""
    if not isinstance(x, Tensor):
        raise ValidationError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        fix = ("a 1-d feature becomes one with .unsqueeze(-1)" if x.dim() == 1 else
               f"flatten each node's features into one row with {name}.flatten(1)" if x.dim() > 2 else
               "give one row of features per node")
        raise ValidationError(f"{name} must have shape (num_nodes, num_features), got {tuple(x.shape)}; {fix}")
    if num_nodes is not None and x.size(0) != num_nodes:
        raise ValidationError(_ROWS_PER_NODE.format(name=name, rows=x.size(0), nodes=num_nodes))
    _check_finite_rows(x, name)


def _check_finite_rows(x: Tensor, name: str) -> None:
    if not all_finite(x):
        bad = int((~torch.isfinite(x)).reshape(-1, x.size(-1)).any(-1).sum())
        raise ValidationError(f"{name} holds NaN or infinite values in {bad} rows; impute or drop them")


def _check_edge_values(key: str, value: Any, num_edges: int, scan: bool = True) -> None:
    """``edge_weight`` / ``edge_attr``: one row per edge (``edge_weight`` 1-d), finite when ``scan``."""
    if not isinstance(value, Tensor):
        raise ValidationError(f"{key} must be a torch.Tensor, got {type(value).__name__}")
    if value.dim() == 0 or value.size(0) != num_edges:
        raise ValidationError(f"{key} has {tuple(value.shape)[:1] or 'no'} rows but edge_index has "
                              f"{num_edges} edges; give one {key} row per edge")
    if key == "edge_weight" and value.dim() != 1:
        raise ValidationError(f"edge_weight must have shape (num_edges,), got {tuple(value.shape)}; one weight "
                              f"per edge in a (num_edges, 1) column becomes one with edge_weight.view(-1), several "
                              f"per edge are edge features: pass them as edge_attr")
    if scan and not all_finite(value):
        raise ValidationError(f"{key} holds NaN or infinite values; impute or drop those edges")


@contextmanager
def owned_by(owner: str) -> Iterator[None]:
    """Prefix the :class:`ValidationError` raised inside with ``owner`` (the layer or model checked)."""
    try:
        yield
    except ValidationError as exc:
        raise ValidationError(f"{owner}: {exc}") from None


def refuse_hetero(data: Any, task: str | None = None) -> None:
    """Name a heterogeneous graph given to a task, which trains graphs of one node and one edge type."""
    if isinstance(data, HeteroData):
        who = f"the {task} task trains" if task else "graphdl's tasks train"
        raise ValidationError(f"{who} graphs of one node type, but got a HeteroData graph (node "
                              f"types {', '.join(data.node_types)}); merge its types into one graph with "
                              f"data.to_homogeneous() (which keeps node features only when every type has them, "
                              f"of one width), or train it with PyG's to_hetero models in a loop of your own")


def check_graph(data: Data, require_y: bool = False, task: str | None = None) -> None:
    """Check a PyG ``Data`` graph's ``x``, ``edge_index`` and optional fields."""
    if not isinstance(data, Data):
        refuse_hetero(data, task)
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
            raise ValidationError(_ROWS_PER_NODE.format(name="x", rows=data.x.size(0), nodes=num_nodes))
    num_edges = data.edge_index.size(1)
    for key in ("edge_weight", "edge_attr"):
        value = data.get(key) if hasattr(data, "get") else getattr(data, key, None)
        if value is not None:
            _check_edge_values(key, value, num_edges)
    if require_y and data.y is None:
        raise ValidationError("the graph has no targets data.y; set one label (or value) per node")


def check_call(owner: str, x: Any, edge_index: Any, *, edge_weight: Any = None, edge_attr: Any = None,
               batch: Any = None, in_channels: int | tuple[int, int] | None = None, num_nodes: int | None = None,
               reference: Tensor | None = None, edge_dim: tuple[int, str] | None = None) -> None:
    """Check the inputs of one call of a layer or model; errors start with ``owner``.

    Args:
        owner: The layer or model, as errors name it.
        x: Node features ``(N, F)``; a pair ``(x_source, x_target)`` for a
            bipartite layer; ``None`` when ``num_nodes`` is given (learned
            node embeddings).
        in_channels: The feature width the owner was built for (a pair for
            bipartite layers); ``None`` or ``<= 0`` (lazy) skips the width
            check and accepts integer features (e.g. for an atom encoder).
        num_nodes: Node count when ``x`` is ``None``.
        reference: A parameter of the owner: inputs must share its device, and
            float features and ``edge_weight`` its dtype.
        edge_dim: ``(width, source)`` where the owner maps float edge features
            of a known width (``source`` names the setting that fixes it, e.g.
            ``"edge_dim=3"``): ``edge_attr`` must then be float, of that width
            and, with ``reference``, of its dtype.
    """
    with owned_by(owner):
        _check_call(x, edge_index, edge_weight, edge_attr, batch, in_channels, num_nodes, reference,
                    scans_enabled(), edge_dim)


def check_node_features(x: Any, in_channels: int | None, reference: Tensor | None = None, name: str = "x") -> None:
    """Node features ``x`` ``(num_nodes, F)`` fit for a module built for ``in_channels`` features: float and of
    that width when ``in_channels`` > 0 (``None`` or ``<= 0``, lazy, takes any width and category ids), of the
    dtype of ``reference`` (a parameter) when float. Errors name ``name``; :func:`owned_by` prefixes the owner."""
    if not isinstance(x, Tensor):
        raise ValidationError(f"{name} must be a torch.Tensor of node features (num_nodes, num_features), "
                              f"got {type(x).__name__}")
    if x.dim() < 2:
        raise ValidationError(f"{name} must have shape (num_nodes, num_features), got {tuple(x.shape)}; "
                              f"a 1-d feature becomes one with .unsqueeze(-1)")
    expects_floats = isinstance(in_channels, int) and in_channels > 0
    if expects_floats and not x.is_floating_point():
        raise ValidationError(f"{name} has dtype {x.dtype} but float features are expected; use "
                              f"{name}.float(), or an encoder (e.g. AtomEncoder) for category ids")
    if expects_floats and x.size(-1) != in_channels:
        raise ValidationError(f"{name} has {x.size(-1)} features per node but in_channels={in_channels}; "
                              f"build it with in_channels={x.size(-1)} or give it {in_channels} features")
    if reference is not None and x.is_floating_point() and reference.is_floating_point() and x.dtype != reference.dtype:
        raise ValidationError(f"{name} has dtype {x.dtype} but the parameters are {reference.dtype}; "
                              f"convert with {name}.to({reference.dtype}) or the module with .to({x.dtype})")


def _check_call(x: Any, edge_index: Any, edge_weight: Any, edge_attr: Any, batch: Any,
                in_channels: int | tuple[int, int] | None, num_nodes: int | None, reference: Tensor | None,
                scan: bool, edge_dim: tuple[int, str] | None = None) -> None:
    parts = tuple(x) if isinstance(x, (tuple, list)) else (x,)
    widths = tuple(in_channels) if isinstance(in_channels, (tuple, list)) else (in_channels,) * len(parts)
    sizes: list[int | None] = []
    for i, (part, width) in enumerate(zip(parts, widths)):
        name = "x" if len(parts) == 1 else f"x[{i}]"
        if part is None:
            if len(parts) == 1 and num_nodes is None:
                raise ValidationError("x must be a torch.Tensor of node features (num_nodes, num_features), "
                                      "got None")
            sizes.append(None)
            continue
        check_node_features(part, width, reference, name)
        sizes.append(part.size(-2))
    nodes = sizes[0] if sizes and sizes[0] is not None else num_nodes
    bipartite = len(sizes) == 2 and None not in sizes
    tensors: dict[str, Any] = {"x": parts[0], "edge_index": edge_index, "edge_weight": edge_weight,
                               "edge_attr": edge_attr, "batch": batch}
    check_same_device(tensors, reference="x" if isinstance(parts[0], Tensor) else "edge_index")
    if reference is not None:
        present = next((v for v in tensors.values() if isinstance(v, Tensor)), None)
        if present is not None and present.device != reference.device:
            raise ValidationError(f"the inputs are on {present.device} but the parameters are on "
                                  f"{reference.device}; move the graph with data.to(device) or the module "
                                  f"with .to(device)")
    for i, part in enumerate(parts):
        if scan and isinstance(part, Tensor):
            _check_finite_rows(part, "x" if len(parts) == 1 else f"x[{i}]")
    if _is_sparse_adjacency(edge_index):
        return  # PyG checks its shape
    check_edge_index(edge_index, (sizes[0], sizes[1]) if bipartite else nodes, scan=scan)
    num_edges = edge_index.size(1)
    if edge_weight is not None:
        _check_edge_values("edge_weight", edge_weight, num_edges, scan)
        if not edge_weight.is_floating_point():
            raise ValidationError(f"edge_weight must be a float tensor, got {edge_weight.dtype}; use .float()")
        _check_param_dtype("edge_weight", edge_weight, reference)
    if edge_attr is not None:
        _check_edge_values("edge_attr", edge_attr, num_edges, scan)
        if edge_dim is not None:
            _check_edge_features(edge_attr, edge_dim, reference)
    if batch is not None:
        if not isinstance(batch, Tensor) or batch.dim() != 1 or batch.dtype != torch.long:
            got = f"{tuple(batch.shape)} {batch.dtype}" if isinstance(batch, Tensor) else type(batch).__name__
            raise ValidationError(f"batch must be a 1-d long tensor (the graph of each node), got {got}")
        if nodes is not None and batch.numel() != nodes:
            raise ValidationError(f"batch has {batch.numel()} entries but there are {nodes} nodes; give one "
                                  f"graph index per node")
        if scan and batch.numel() and int(batch.min()) < 0:
            raise ValidationError(f"batch holds negative graph indices (down to {int(batch.min())}); number the "
                                  f"graphs 0, 1, ..., as torch_geometric's Batch.from_data_list(graphs).batch does")


def _check_param_dtype(name: str, value: Tensor, reference: Tensor | None) -> None:
    """A float input the owner multiplies with its parameters must have their dtype (torch fails deep inside)."""
    if (reference is not None and reference.is_floating_point() and value.is_floating_point()
            and value.dtype != reference.dtype):
        raise ValidationError(f"{name} has dtype {value.dtype} but the parameters are {reference.dtype}; convert "
                              f"with {name}.to({reference.dtype}) or the module with .to({value.dtype})")


def _check_edge_features(edge_attr: Tensor, edge_dim: tuple[int, str], reference: Tensor | None) -> None:
    """Float edge features of the width ``edge_dim[0]`` that the owner's edge map expects."""
    width, source = edge_dim
    if not edge_attr.is_floating_point():
        raise ValidationError(f"edge_attr has dtype {edge_attr.dtype} but the layer takes float edge features "
                              f"({source}); use edge_attr.float(), or an encoder (e.g. BondEncoder) for category "
                              f"ids")
    got = edge_attr.size(-1) if edge_attr.dim() == 2 else (1 if edge_attr.dim() == 1 else None)
    if got != width:
        shape = f"{got} features per edge" if got is not None else f"shape {tuple(edge_attr.shape)}"
        raise ValidationError(f"edge_attr has {shape} but the layer expects {width} ({source}); build it with "
                              f"edge_dim={got if got is not None else '<width>'} or give edge_attr of shape "
                              f"(num_edges, {width})")
    _check_param_dtype("edge_attr", edge_attr, reference)


def ignores_edge_attr(module: nn.Module) -> bool:
    """Whether ``module`` takes an ``edge_attr`` argument that it drops: PyG's ``GATConv``, ``GATv2Conv`` and
    ``TransformerConv`` built without ``edge_dim`` accept ``edge_attr`` and return the same output without it."""
    return hasattr(module, "edge_dim") and module.edge_dim is None and hasattr(module, "lin_edge")


def layer_edge_dim(module: nn.Module) -> tuple[int, str] | None:
    """The width of the float edge features ``module`` maps, and the setting that fixes it; None if unknown."""
    edge_dim = getattr(module, "edge_dim", None)
    if isinstance(edge_dim, int) and not isinstance(edge_dim, bool) and edge_dim > 0:
        return edge_dim, f"edge_dim={edge_dim}"
    if isinstance(module, GINEConv):  # keeps edge_dim only as its edge Linear's width, else adds raw edge_attr
        lin = module.lin
        if lin is not None:
            width = getattr(lin, "in_channels", getattr(lin, "in_features", -1))
            return (width, f"edge_dim={width}") if isinstance(width, int) and width > 0 else None
        width = getattr(module, "in_channels", None)
        if isinstance(width, int) and width > 0:
            return width, f"edge_dim=None, so the node width in_channels={width}"
    return None


def _is_sparse_adjacency(edge_index: Any) -> bool:
    """A torch sparse tensor or a ``torch_sparse.SparseTensor`` given in place of an ``edge_index``."""
    if isinstance(edge_index, Tensor):
        return edge_index.layout != torch.strided
    return hasattr(edge_index, "sparse_sizes")


def check_pairs(owner: str, pairs: Any, num_nodes: int, name: str = "pairs") -> None:
    """Node pairs to score: a ``(2, P)`` long tensor with indices in ``[0, num_nodes)``."""
    with owned_by(owner):
        check_edge_index(pairs, num_nodes, name=name, scan=scans_enabled())


_SIGNATURES: dict[type, inspect.Signature | None] = {}


def check_layer_call(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Forward pre-hook of the layers ``graphdl.layers.create`` builds: :func:`check_call` on their inputs.

    The arguments are matched to the layer's ``forward(x, edge_index, ...)``
    by name; a layer whose forward has no ``x`` and ``edge_index`` is not
    checked, nor is a call that does not fit its signature (the layer raises
    its own ``TypeError``).
    """
    cls = type(module)
    if cls not in _SIGNATURES:
        try:
            signature: inspect.Signature | None = inspect.signature(module.forward)
        except (TypeError, ValueError):
            signature = None
        if signature is not None and not {"x", "edge_index"} <= set(signature.parameters):
            signature = None
        _SIGNATURES[cls] = signature
    signature = _SIGNATURES[cls]
    if signature is None:
        return
    try:
        arguments = signature.bind(*args, **kwargs).arguments
    except TypeError:
        return
    edge_index = arguments.get("edge_index")
    if _is_sparse_adjacency(edge_index) and signature.parameters["edge_index"].annotation in (Tensor, "Tensor"):
        raise ValidationError(f"{cls.__name__} takes edge_index as a (2, num_edges) index tensor, not a sparse "
                              f"adjacency matrix; convert it with torch_geometric.utils.to_edge_index(adj), which "
                              f"also returns the edge weights")
    edge_attr = arguments.get("edge_attr")
    if edge_attr is not None and ignores_edge_attr(module):
        width = (f" ({edge_attr.size(-1)} per edge here)" if isinstance(edge_attr, Tensor) and edge_attr.dim() == 2
                 else "")
        raise ValidationError(f"{cls.__name__} was built without edge_dim, so it would ignore edge_attr; build it "
                              f"with edge_dim=<number of edge features>{width} to use them, or leave edge_attr out")
    in_channels = getattr(module, "in_channels", None)
    if not (isinstance(in_channels, int) or (isinstance(in_channels, tuple)
                                             and all(isinstance(c, int) for c in in_channels))):
        in_channels = None
    check_call(cls.__name__, arguments.get("x"), arguments.get("edge_index"),
               edge_weight=arguments.get("edge_weight"), edge_attr=arguments.get("edge_attr"),
               batch=arguments.get("batch"), in_channels=in_channels,
               reference=next(module.parameters(), None), edge_dim=layer_edge_dim(module))


def refuse_uint8(name: str, index: Tensor, items: str = "node") -> None:
    """Refuse a ``torch.uint8`` split: torch indexes with it as an old-style mask, PyG and ``.long()`` read it as
    0/1 indices, so either reading may be the wrong one."""
    if index.dtype == torch.uint8:
        raise ValidationError(f"{name} is a torch.uint8 tensor, which is ambiguous (an old-style mask, or "
                              f"indices?); convert it with .bool() if it is a mask or with .long() if it holds "
                              f"{items} indices")


def check_graph_device(layer: str, x: Tensor, graph: Any = None, **tensors: Any) -> None:
    """The graph's tensors (``edge_index`` and those named in ``tensors``) must be on ``x``'s device: a graph left
    on the CPU after the features moved failed deep inside torch ("Expected all tensors to be on the same
    device")."""
    if graph is not None:
        tensors = {"edge_index": graph.edge_index, **tensors}
    for name, t in tensors.items():
        if isinstance(t, Tensor) and t.device != x.device:
            raise ValidationError(f"{layer}: the graph's {name} is on {t.device} but the node features are on "
                                  f"{x.device}; move the graph with graph.to({str(x.device)!r})")


def check_split_index(index: Any, size: int, name: str = "split", item: str = "item") -> Any:
    """A split of ``size`` items (``item`` names one: ``"node"``, ``"graph"``): a boolean mask of length ``size``
    or integer indices in ``[0, size)``.

    Returns ``index`` as a 1-d tensor (a list, range or array becomes one; a 0-d tensor is a split of one
    ``item``).
    """
    if isinstance(index, (int, np.integer)) and not isinstance(index, (bool, np.bool_)):
        raise ValidationError(f"{name} must be a boolean mask or integer indices, got the single "
                              f"{type(index).__name__} {index!r}; give a split of one {item} as a list, [{index}]")
    if isinstance(index, (list, tuple, range)) or (not isinstance(index, Tensor) and hasattr(index, "__array__")):
        try:  # the dtype read from the values: a list of booleans is a mask, floats are refused below
            index = torch.as_tensor(index if hasattr(index, "__array__") else list(index),
                                    dtype=None if len(index) else torch.long)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValidationError(f"{name} must be a boolean mask or integer indices, got a {type(index).__name__} "
                                  f"that is neither ({exc})") from None
    if not isinstance(index, Tensor):
        raise ValidationError(f"{name} must be a boolean mask or integer indices, got {type(index).__name__}")
    if index.is_floating_point() or index.is_complex():
        raise ValidationError(f"{name} must be a boolean mask or integer indices, got dtype {index.dtype}; a 0/1 "
                              f"float mask becomes one with .bool()")
    refuse_uint8(name, index, item)
    if index.dtype == torch.bool:
        if index.numel() != size:
            raise ValidationError(f"{name} mask has {index.numel()} entries but there are {size} {item}s; a mask "
                                  f"needs one entry per {item}")
        return index.reshape(-1)  # an (N, 1) column mask (as OGB's (N, 1) labels give) is the flat mask
    flat = index.reshape(-1)
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= size):
        raise ValidationError(f"{name} indices must lie in [0, {size - 1}], got "
                              f"[{int(flat.min())}, {int(flat.max())}]; there are {size} {item}s: drop the "
                              f"indices out of range, or check that the split was made for this data")
    return flat  # a 0-d index made dataset[index] one graph, not a dataset of one


def warn_if_train_overlaps(splits: Mapping[str, Tensor], size: int, items: str) -> None:
    """Warn when the ``train`` split shares items with a held-out split: scores there would measure fit."""
    train = splits.get("train")
    if train is None or train.device.type == "meta":  # meta tensors hold no values to compare
        return
    in_train = torch.zeros(size, dtype=torch.bool, device=train.device)
    in_train[train] = True
    for name, index in splits.items():
        if name == "train":
            continue
        held_out = torch.zeros(size, dtype=torch.bool, device=train.device)
        held_out[index.to(train.device)] = True  # items, not entries: an index repeated counts once
        shared = int((in_train & held_out).sum())
        if shared:
            warnings.warn(f"the 'train' and {name!r} splits share {shared} {items}, so the {name!r} scores "
                          f"measure fit rather than generalisation; pass disjoint splits", UserWarning,
                          stacklevel=3)


_EMPTY_GRAPH = ("graph {} of the dataset has no nodes; drop it (pooling gives a graph without nodes no output row, "
                "so the outputs would no longer line up with the graphs)")


def check_dataset(dataset: Any, max_items: int = 10_000, require_y: bool = False,
                  require_nodes: bool = False, task: str = "graph") -> None:
    """Check the graphs of a graph-level dataset once (``edge_index`` ranges, finite features, one feature
    width; with ``require_y`` targets ``y`` that batch together: present, with one shape after the first
    axis; with ``require_nodes`` no graph without nodes, which pooling would give no output row).

    An ``InMemoryDataset`` (PyG, OGB) is checked on its collated storage in a
    few vectorised operations, however many graphs it holds; other datasets
    have their first ``max_items`` graphs checked one by one. ``task`` names the task in the messages.
    """
    refuse_hetero(dataset, task)
    if isinstance(dataset, Data):  # it has a __len__ and a __getitem__ too, of its attributes
        raise ValidationError(f"the {task} task needs a dataset of graphs (a PyG dataset or a list of Data), got "
                              f"one Data graph; pass [data] to train on it alone, or task='node' for one graph "
                              f"split by node masks")
    if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
        raise ValidationError(f"the {task} task needs a dataset of graphs (a PyG dataset or a list of Data), "
                              f"got {type(dataset).__name__}")
    if len(dataset) == 0:
        raise ValidationError("the dataset holds no graphs")
    store = getattr(dataset, "_data", None)
    slices = getattr(dataset, "slices", None)
    if isinstance(store, Data) and isinstance(slices, dict) and "edge_index" in slices:
        _check_collated(store, slices, require_nodes, getattr(dataset, "_indices", None))
        if require_y and store.get("y") is None:
            per = "node" if task == "inductive_node" else "graph"
            raise ValidationError(f"the graphs of the dataset have no targets y; the {task} task trains on one "
                                  f"target row per {per} (graph.y)")
        return
    first_y = first_x = None
    for i in range(min(len(dataset), max_items)):
        graph = dataset[i]
        try:
            check_graph(graph)
        except ValidationError as exc:
            raise ValidationError(f"graph {i} of the dataset: {exc}") from None
        if require_nodes and graph.num_nodes == 0:
            raise ValidationError(_EMPTY_GRAPH.format(i))
        x = graph.get("x")
        first_x = x if first_x is None else first_x
        if isinstance(x, Tensor) and x.shape[1:] != first_x.shape[1:]:
            raise ValidationError(f"graph {i} of the dataset has node features x of shape {tuple(x.shape)} but "
                                  f"graph 0 has {tuple(first_x.shape)}; batching stacks the features, so give "
                                  f"every graph the same number of features per node")
        if not require_y:
            continue
        y = graph.get("y") if isinstance(graph, Data) else None
        if not isinstance(y, Tensor):
            raise ValidationError(f"graph {i} of the dataset has no target y (got {type(y).__name__}); set one "
                                  f"target row per graph for the graph task (graph.y = torch.tensor([label])) or "
                                  f"one per node for node-level tasks")
        first_y = y if first_y is None else first_y
        if y.dim() != first_y.dim() or y.shape[1:] != first_y.shape[1:]:
            raise ValidationError(f"graph {i} of the dataset has y of shape {tuple(y.shape)} but graph 0 has "
                                  f"{tuple(first_y.shape)}; batching stacks the targets, so give every graph the "
                                  f"same shape, e.g. [1] for a label or [1, num_tasks] for several targets")


def _nodes_per_graph(store: Data, slices: dict[str, Tensor], num_stored: int) -> Tensor | None:
    """The node count of each graph of a collated storage, as ``dataset[i].num_nodes`` reads it; None if unknown.

    PyG's collate keeps the graphs' own ``num_nodes`` in ``_num_nodes`` (``store.num_nodes`` is their sum), and
    otherwise a graph counts the rows of its first node-level attribute (``x``, ``pos``, ...), never those of an
    edge-level one such as ``edge_weight``.
    """
    counts = getattr(store._store, "_num_nodes", None)
    if isinstance(counts, (list, tuple)) and len(counts) == num_stored:
        try:
            return torch.tensor([int(n) for n in counts], dtype=torch.long)
        except (TypeError, ValueError, RuntimeError):  # a graph without a count: read it off its attributes
            pass
    key = next((k for k in slices if k in N_KEYS), None) or next((k for k in slices if "node" in k), None)
    if key is None or not isinstance(store.get(key), Tensor) or slices[key].numel() != num_stored + 1:
        return None
    return slices[key].diff()


def _check_collated(store: Data, slices: dict[str, Tensor], require_nodes: bool,
                    indices: Any = None) -> None:
    """The checks of :func:`check_dataset` on a collated storage, vectorised; ``indices`` are the stored graphs a
    subset (``dataset[idx]``) holds, in its order (``None``: all of them). Only those graphs are checked, and a
    graph is named by its index in the dataset as given."""
    edge_index = store.edge_index
    check_edge_index(edge_index, None, name="edge_index (collated dataset)")
    num_stored = slices["edge_index"].numel() - 1
    graph_ids = torch.arange(num_stored)
    if indices is None:
        position = graph_ids
    else:  # the first index at which the subset holds each stored graph; -1 for those it leaves out
        chosen = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        position = torch.full((num_stored,), chosen.numel(), dtype=torch.long).scatter_reduce(
            0, chosen, torch.arange(chosen.numel()), "amin")
        position[position == chosen.numel()] = -1

    def first(bad: Tensor) -> int | None:
        """The stored graph flagged in ``bad`` that comes first in the dataset as given (None if none is)."""
        bad = bad & (position >= 0)
        if not bool(bad.any()):
            return None
        return int(position.masked_fill(~bad, torch.iinfo(torch.long).max).argmin())

    nodes_per_graph = _nodes_per_graph(store, slices, num_stored)
    if nodes_per_graph is not None:
        if require_nodes and (graph := first(nodes_per_graph == 0)) is not None:
            raise ValidationError(_EMPTY_GRAPH.format(int(position[graph])))
        if edge_index.numel():
            edges_per_graph = slices["edge_index"].diff()
            graph_of_edge = graph_ids.repeat_interleave(edges_per_graph)
            bound = nodes_per_graph.repeat_interleave(edges_per_graph).to(edge_index.device)  # slices stay on CPU
            bad = ((edge_index < 0).any(0) | (edge_index >= bound).any(0)).cpu()
            if bool(bad.any()) and (graph := first(torch.zeros(num_stored, dtype=torch.bool).index_fill_(
                    0, graph_of_edge[bad], True))) is not None:
                edge = int((bad & (graph_of_edge == graph)).nonzero()[0])
                raise ValidationError(f"graph {int(position[graph])} of the dataset: edge_index holds node index "
                                      f"{edge_index[:, edge].tolist()} but the graph has "
                                      f"{int(nodes_per_graph[graph])} nodes; remove or remap those edges")
    x = store.get("x")
    if isinstance(x, Tensor) and "x" in slices and not all_finite(x):
        rows_bad = (~torch.isfinite(x).reshape(x.size(0), -1).all(-1)).cpu()
        graph_of_row = graph_ids.repeat_interleave(slices["x"].diff())
        graph = first(torch.zeros(num_stored, dtype=torch.bool).index_fill_(0, graph_of_row[rows_bad], True))
        if graph is not None:
            raise ValidationError(f"graph {int(position[graph])} of the dataset: x holds NaN or infinite values; "
                                  f"impute or drop them")
