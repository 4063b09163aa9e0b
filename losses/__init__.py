"""Loss functions, as a plugin registry (importable as ``graphdl.losses``).

>>> import graphdl
>>> loss = graphdl.losses.create("ntxent", temperature=0.1)
"""

from graphdl.registry import Registry, expose_as_module

LOSSES = Registry("losses")
expose_as_module(__name__, LOSSES)

__all__ = ["LOSSES"]

# The built-in losses register themselves on import (one flat module per group).
from graphdl.losses import (  # noqa: E402,F401
    base,
    classification,
    distances,
    divergence,
    graph,
    metric,
    ranking,
)
from graphdl.losses.base import Loss  # noqa: E402
from graphdl.losses.distances import (  # noqa: E402
    CosineSimilarity,
    Distance,
    DotProductSimilarity,
    LpDistance,
)

__all__ += ["Loss", "Distance", "LpDistance", "CosineSimilarity", "DotProductSimilarity"]
