"""graphdl: graph-centric deep learning on PyTorch Geometric.

Plugin families (each a registry with ``list``, ``get``, ``create``,
``register``): :mod:`graphdl.layers`, :mod:`graphdl.losses`,
:mod:`graphdl.models`, :mod:`graphdl.datasets`.
"""

from graphdl import errors, graphs, layers, models, train  # noqa: F401
from graphdl.train import Trainer, seed_everything
from graphdl import losses, datasets  # noqa: F401,E402  (ship from top-level losses/, datasets/)
from graphdl.registry import Registry

__version__ = "0.1.0"

__all__ = ["Registry", "Trainer", "seed_everything", "train", "graphs", "errors", "layers", "losses", "models", "datasets", "__version__"]
