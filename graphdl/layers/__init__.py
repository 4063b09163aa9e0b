"""Message-passing layers, as a plugin registry.

>>> import graphdl
>>> graphdl.layers.list("gat*")
['gat', 'gatv2']
>>> conv = graphdl.layers.create("gcn", in_channels=16, out_channels=32)

Every layer is built by ``create(name, in_channels, out_channels, **kwargs)``.
An entry's ``meta`` carries capability flags: ``edge_weight`` (the forward takes
a per-edge scalar weight) and ``edge_attr`` (the constructor takes ``edge_dim``
and the forward takes per-edge feature vectors); ``graph`` (``"grid"``,
``"chain"``, ``"complete"``) marks layers that run on their own special graph
rather than on any ``edge_index``.

A layer built by ``create`` checks its inputs on every call (shapes, dtypes,
devices, feature width against ``in_channels``, index ranges, NaN/inf; see
:mod:`graphdl.validate`) and raises a :class:`~graphdl.errors.ValidationError`
that names the argument. It is still the plain PyG module, with the check as a
forward pre-hook; ``get(name)(...)`` builds one without it.
"""

from typing import Any

from torch import nn

from graphdl.registry import Entry, Registry, expose_as_module
from graphdl.validate import check_layer_call


def _guard(entry: Entry, layer: Any) -> Any:
    # Special-graph layers (grid, chain, complete) check their own inputs.
    if isinstance(layer, nn.Module) and entry.meta.get("graph") is None:
        layer.register_forward_pre_hook(check_layer_call, with_kwargs=True)
    return layer


LAYERS = Registry("layers", on_create=_guard)
expose_as_module(__name__, LAYERS)

from graphdl.layers import pyg, scratch  # noqa: E402,F401  (register the built-ins)
from graphdl.layers import attention, grid, ogb, recurrent  # noqa: E402,F401  (special-graph and OGB layers)
from graphdl.layers.scratch import ScratchGCNConv  # noqa: E402

__all__ = ["LAYERS", "ScratchGCNConv"]
