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
"""

from graphdl.registry import Registry, expose_as_module

LAYERS = Registry("layers")
expose_as_module(__name__, LAYERS)

from graphdl.layers import pyg, scratch  # noqa: E402,F401  (register the built-ins)
from graphdl.layers import attention, grid, ogb, recurrent  # noqa: E402,F401  (special-graph and OGB layers)
from graphdl.layers.scratch import ScratchGCNConv  # noqa: E402

__all__ = ["LAYERS", "ScratchGCNConv"]
