"""Datasets, as a plugin registry (importable as ``graphdl.datasets``).

>>> import graphdl
>>> data = graphdl.datasets.load("cora")
"""

from graphdl.registry import Registry, expose_as_module

DATASETS = Registry("datasets")
expose_as_module(__name__, DATASETS)

__all__ = ["DATASETS"]
