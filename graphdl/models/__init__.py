"""Models, as a plugin registry.

>>> import graphdl
>>> model = graphdl.models.create("gnn", layer="gat", in_channels=1433,
...                               hidden_channels=64, out_channels=7, num_layers=2)
"""

from graphdl.registry import Registry, expose_as_module

MODELS = Registry("models")
expose_as_module(__name__, MODELS)

__all__ = ["MODELS"]
from graphdl.models import gnn  # noqa: E402,F401  (register the built-ins)
from graphdl.models import anomaly, autoencoders, forecast, lenet, ogb_mol  # noqa: E402,F401
