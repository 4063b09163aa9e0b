"""Message-passing layers, as a plugin registry.

>>> import graphdl
>>> graphdl.layers.list("gat*")
['gat', 'gatv2']
>>> conv = graphdl.layers.create("gcn", in_channels=16, out_channels=32)

Every layer is built by ``create(name, in_channels, out_channels, **kwargs)``;
``in_channels=-1`` lets PyG's layers and ``gin``/``gine``/``edgeconv`` infer
the input width at the first call (the others refuse it by name).
An entry's ``meta`` carries capability flags: ``edge_weight`` (the forward takes
a per-edge scalar weight) and ``edge_attr`` (the constructor takes ``edge_dim``
and the forward takes per-edge feature vectors; ``"required"``: every call
needs them); ``graph`` (``"grid"``, ``"chain"``, ``"complete"``) marks layers
that run on their own special graph rather than on any ``edge_index``, and
``"knn"`` a layer that builds a k-NN graph of its input at every call
(``dynamic_edgeconv``).

A layer built by ``create`` checks its inputs on every call (shapes, dtypes,
devices, feature width against ``in_channels``, ``edge_attr`` width against
``edge_dim``, index ranges, NaN/inf; see
:mod:`graphdl.validate`) and raises a :class:`~graphdl.errors.ValidationError`
that names the argument. It is still the plain PyG module, with the check as a
forward pre-hook; ``get(name)(...)`` builds one without it.
"""

import inspect
from collections.abc import Sequence
from typing import Any

from torch import nn

from graphdl.errors import ConfigError, ValidationError
from graphdl.registry import Entry, Registry, expose_as_module
from graphdl.validate import check_layer_call


def _widths(builder: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The ``in_channels`` / ``out_channels`` a call gives the builder, matched by its signature (a plugin
    whose arguments are named otherwise is left alone), and whether ``out_channels`` defaults to None."""
    try:
        signature = inspect.signature(builder)
        given = signature.bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):
        return {}  # the builder raises its own error for arguments that do not fit
    found = {k: given[k] for k in ("in_channels", "out_channels", "edge_dim") if k in given}
    extra = next((given.get(p.name, {}) for p in signature.parameters.values() if p.kind is p.VAR_KEYWORD), {})
    if "edge_dim" not in found and "edge_dim" in extra:  # passed on to PyG through **kwargs
        found["edge_dim"] = extra["edge_dim"]
    out = signature.parameters.get("out_channels")
    found["out_default_none"] = out is not None and out.default is None
    return found


def _is_width(value: Any, lazy: bool) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)
            and (value >= 1 or (lazy and value == -1)))


class LayerRegistry(Registry):
    """The layer family: :meth:`build` checks ``in_channels`` and ``out_channels`` before the layer sees them.

    ``in_channels`` is an int >= 1, -1 (inferred at the first call, where the layer supports it, as
    PyG's lazy layers do) or a pair of them (bipartite layers); ``out_channels`` an int >= 1 or
    ``None`` where the layer has a default. Torch would otherwise build zero-width weights without a
    word, or fail deep inside with a negative dimension.
    """

    def build(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        entry = self.entry(name)
        widths = _widths(entry.obj, args, kwargs)
        in_channels = widths.get("in_channels")
        pair = isinstance(in_channels, Sequence) and not isinstance(in_channels, str)
        parts = tuple(in_channels) if pair else (in_channels,)
        if "in_channels" in widths and not (len(parts) in (1, 2) and all(_is_width(c, True) for c in parts)):
            raise ConfigError(f"layer {entry.name!r}: in_channels must be an int >= 1, -1 to infer it at the "
                              f"first call, or a (source, target) pair of them, got {in_channels!r}")
        out_channels = widths.get("out_channels")
        if "out_channels" in widths and not (_is_width(out_channels, False)
                                             or (out_channels is None and widths["out_default_none"])):
            raise ConfigError(f"layer {entry.name!r}: out_channels must be an int >= 1, got {out_channels!r}")
        edge_dim = widths.get("edge_dim")
        if edge_dim is not None and not _is_width(edge_dim, True):  # 'x', 2.0 failed inside torch; True read as 1
            raise ConfigError(f"layer {entry.name!r}: edge_dim (features per edge) must be an int >= 1, -1 to infer "
                              f"it at the first call, or None for no edge features, got {edge_dim!r}")
        try:
            return super().build(name, *args, **kwargs)
        except RuntimeError as exc:
            if -1 not in parts:
                raise
            raise ConfigError(f"layer {entry.name!r} cannot infer its input width (in_channels=-1): {exc}; "
                              f"give it the number of input features") from exc


def _require_edge_attr(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Pre-hook of layers registered with ``edge_attr="required"``: torch would fail on ``None`` inside."""
    if kwargs.get("edge_attr", args[2] if len(args) > 2 else None) is None:
        raise ValidationError(f"{type(module).__name__} adds edge features to every message; pass edge_attr "
                              f"(data.edge_attr), or use a layer without them")


def _guard(entry: Entry, layer: Any) -> Any:
    # Special-graph layers (grid, chain, complete) check their own inputs.
    if isinstance(layer, nn.Module) and entry.meta.get("graph") is None:
        if entry.meta.get("edge_attr") == "required":
            layer.register_forward_pre_hook(_require_edge_attr, with_kwargs=True)
        layer.register_forward_pre_hook(check_layer_call, with_kwargs=True)
    return layer


LAYERS = LayerRegistry("layers", on_create=_guard)
expose_as_module(__name__, LAYERS)

from graphdl.layers import pyg, scratch  # noqa: E402,F401  (register the built-ins)
from graphdl.layers import attention, grid, knn, ogb, recurrent  # noqa: E402,F401  (special-graph and OGB layers)
from graphdl.layers.scratch import ScratchGCNConv  # noqa: E402

__all__ = ["LAYERS", "LayerRegistry", "ScratchGCNConv"]
