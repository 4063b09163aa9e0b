"""Conformance suites that plugin authors can run on their own layers and losses."""

from graphdl.testing.layers import LAYER_CHECKS, check_layer, random_graph

__all__ = ["check_layer", "LAYER_CHECKS", "random_graph"]
