"""Conformance suites that plugin authors can run on their own layers and losses."""

from graphdl.testing.layers import LAYER_CHECKS, check_layer, general_layers, random_graph
from graphdl.testing.losses import check_loss

__all__ = ["check_layer", "check_loss", "general_layers", "LAYER_CHECKS", "random_graph"]
