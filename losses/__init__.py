"""Loss functions, as a plugin registry (importable as ``graphdl.losses``).

>>> import graphdl
>>> loss = graphdl.losses.create("ntxent", temperature=0.1)
"""

from graphdl.registry import Registry, expose_as_module

LOSSES = Registry("losses")
expose_as_module(__name__, LOSSES)

__all__ = ["LOSSES"]
