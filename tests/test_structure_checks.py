"""Which special graphs may take a layer's dense path: a grid with exactly the grid's edges (in any order), a chain
or complete graph with exactly its edges; a verdict kept between forwards is dropped when a tensor is edited.

Before, only the number of edges was compared, so a graph edited with its edge count unchanged was convolved as the
untouched grid, silently ignoring the edit; and grid_graph handed out its cached tensors, which an in-place edit
corrupted for every later call.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from graphdl.graphs import chain, complete, is_complete, is_plain_chain
from graphdl.graphs.grid import grid, grid_graph, grid_spec, grid_structure, is_regular_grid
from graphdl.layers.grid import GridConv


@pytest.fixture()
def setup():
    torch.manual_seed(0)
    images = torch.randn(3, 2, 6, 5)
    return images, grid(images, 3, stride=2, padding=1), GridConv(2, 4, 3, stride=2, padding=1)


def _with_edges(graph, edge_index, offset):
    edited = graph.clone()
    edited.edge_index, edited.offset, edited.edge_attr = edge_index, offset, offset
    return edited


def test_reordered_grid_edges_are_still_the_grid(setup):
    images, graph, conv = setup
    perm = torch.randperm(graph.num_edges)
    shuffled = _with_edges(graph, graph.edge_index[:, perm], graph.offset[perm])
    assert is_regular_grid(shuffled)
    reference = F.conv2d(images, conv.weight, conv.bias, stride=2, padding=1)
    torch.testing.assert_close(conv(shuffled.x, shuffled), reference.permute(0, 2, 3, 1).reshape(-1, 4))


@pytest.mark.parametrize("edit", ["swap_sources", "repeat_an_edge", "shift_an_offset"])
def test_a_grid_edited_with_its_edge_count_is_not_convolved_as_the_grid(setup, edit):
    _, graph, conv = setup
    edge_index, offset = graph.edge_index.clone(), graph.offset.clone()
    if edit == "swap_sources":
        edge_index[0, [0, 7]] = edge_index[0, [7, 0]]
    elif edit == "repeat_an_edge":  # edge 7 replaced by a second copy of edge 0
        edge_index[:, 7], offset[7] = edge_index[:, 0], offset[0]
    else:
        offset[3] = (offset[3] + 1) % 9
    edited = _with_edges(graph, edge_index, offset)
    assert not is_regular_grid(edited)
    torch.testing.assert_close(conv(edited.x, edited), conv(edited.x, edited, method="message_passing"))
    assert not torch.allclose(conv(edited.x, edited), conv(graph.x, graph))


def test_an_in_place_edit_after_a_check_is_seen(setup):
    _, graph, _ = setup
    assert is_regular_grid(graph)
    graph.edge_index[0, [0, 7]] = graph.edge_index[0, [7, 0]]
    assert not is_regular_grid(graph)


def test_grid_graphs_cache_survives_an_in_place_edit():
    spec = grid_spec(5, 4, 3, padding=1)
    fresh = [t.clone() for t in grid_structure(spec, 2)[:2]]
    handed_out = grid_graph(spec, 2)
    assert is_regular_grid(handed_out)
    handed_out.edge_index[0, 0] = 7
    assert not is_regular_grid(handed_out)
    again = grid_graph(spec, 2)
    assert torch.equal(again.edge_index, fresh[0]) and torch.equal(again.offset, fresh[1])
    assert is_regular_grid(again)


def test_a_chain_or_complete_graph_edited_in_place_after_a_check_is_seen():
    sequences = chain([torch.randn(5, 2), torch.randn(4, 2)], bidirectional=True)
    assert is_plain_chain(sequences)
    sequences.edge_index[0, [0, 1]] = sequences.edge_index[0, [1, 0]]
    assert not is_plain_chain(sequences)
    sequences = chain([torch.randn(5, 2), torch.randn(4, 2)])
    assert is_plain_chain(sequences)
    sequences.time = sequences.time.flip(0)  # another tensor in place of the one checked
    assert not is_plain_chain(sequences)
    tokens = complete(4, x=torch.randn(4, 3))
    assert is_complete(tokens)
    tokens.edge_index[0, [0, 1]] = tokens.edge_index[0, [1, 0]]
    assert not is_complete(tokens)


def test_graph_offsets_names_missing_and_fractional_offsets():
    """graph_offsets raised a bare KeyError without offsets and truncated 0.5 to kernel offset 0."""
    from torch_geometric.data import Data

    from graphdl.errors import ValidationError
    from graphdl.graphs.grid import graph_offsets

    with pytest.raises(ValidationError, match=r"^grid graph: the graph has no kernel offsets; store the integer"):
        graph_offsets(Data(edge_index=torch.zeros(2, 1, dtype=torch.long)))
    with pytest.raises(ValidationError, match=r"offsets must be integers .* such as 0\.5$"):
        graph_offsets(Data(offset=torch.tensor([0.0, 0.5])))
    assert graph_offsets(Data(edge_attr=torch.tensor([[1.0], [2.0]]))).tolist() == [1, 2]
