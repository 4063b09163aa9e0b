"""Special graphs on which classical architectures are message passing.

- :func:`grid`: images as grid graphs (convolutions, pooling as coarsening);
- :func:`chain`: sequences as chain graphs (recurrent networks);
- :func:`complete`: token sets as complete graphs (attention);
- :func:`knn_graph`, :func:`radius_graph`: point clouds or feature spaces as k-nearest-neighbour
  graphs (DGCNN) or radius graphs (SchNet).

>>> import torch
>>> from graphdl.graphs import grid, chain, complete
>>> g = grid(torch.randn(2, 3, 8, 8), kernel_size=3, padding=1)
>>> g.num_graphs, g.x.shape, g.spec.out_height
(2, torch.Size([128, 3]), 8)
>>> chain([torch.randn(5, 4), torch.randn(3, 4)]).edge_index.shape
torch.Size([2, 6])
>>> complete(4).edge_index.shape
torch.Size([2, 16])
"""

from graphdl.graphs.chain import ChainGraph, chain, is_plain_chain
from graphdl.graphs.complete import CompleteGraph, complete, is_complete
from graphdl.graphs.grid import (
    GridGraph,
    GridSpec,
    grid,
    grid_pool,
    grid_spec,
    images_to_nodes,
    is_regular_grid,
    max_pool,
    mean_pool,
    nodes_to_images,
)
from graphdl.graphs.knn import knn_graph, radius_graph

__all__ = [
    "grid", "chain", "complete", "knn_graph", "radius_graph",
    "GridGraph", "GridSpec", "ChainGraph", "CompleteGraph",
    "grid_spec", "grid_pool", "max_pool", "mean_pool", "images_to_nodes", "nodes_to_images",
    "is_regular_grid", "is_plain_chain", "is_complete",
]
