"""The grid layers' checks are kept per tensor: a repeat forward on an unchanged grid graph runs no kernel besides
the convolution's (the geometry read back from ``meta``, its rows compared, the edges compared, on every call cost
about 40 us of a 180 us LeNet-size forward, and a host sync each on a GPU), while an edited, replaced, retyped or
inference-mode tensor is checked anew.
"""

from __future__ import annotations

import importlib

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from graphdl.errors import ValidationError
from graphdl.graphs.grid import grid, grid_graph, images_to_nodes, is_regular_grid, nodes_to_images
from graphdl.graphs.structure_cache import passes
from graphdl.layers.grid import GridConv, GridPool
from graphdl.models.lenet import LeNetGrid, digits_graphs

grid_module = importlib.import_module("graphdl.graphs.grid")
lenet_module = importlib.import_module("graphdl.models.lenet")


class _Ops(TorchDispatchMode):
    """The ATen kernels a call runs."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.ops.append(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))


def _ops(fn) -> list[str]:  # type: ignore[no-untyped-def]
    with torch.no_grad(), _Ops() as mode:
        fn()
    return mode.ops


@pytest.fixture()
def images() -> torch.Tensor:
    return torch.randn(4, 3, 5, 6, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("source", ["grid_graph", "grid"])
def test_repeat_forward_on_an_unchanged_grid_graph_runs_only_the_convolution(images, source):
    torch.manual_seed(0)
    conv = GridConv(3, 4, 3, padding=1)
    n, _, h, w = images.shape
    if source == "grid_graph":  # the cached edges and one meta row expanded
        graph = grid_graph(conv.spec(h, w), n, x=images_to_nodes(images))
    else:  # edges and meta of their own, compared edge by edge on the first call
        graph = grid(images, 3, padding=1)
    x = graph.x
    conv(x, graph, method="dense")  # the first call checks the graph

    def reference() -> torch.Tensor:
        return images_to_nodes(F.conv2d(nodes_to_images(x, n, h, w), conv.weight, conv.bias, 1, 1, 1))

    assert _ops(lambda: conv(x, graph, method="dense")) == _ops(reference)
    torch.testing.assert_close(conv(x, graph), reference())


def test_repeat_pooling_on_an_unchanged_grid_graph_runs_only_the_pooling(images):
    pool = GridPool(3)
    n, _, h, w = images.shape
    graph = grid(images, 2, stride=2)
    pool(graph.x, graph, method="dense")

    def reference() -> torch.Tensor:
        return images_to_nodes(F.max_pool2d(nodes_to_images(graph.x, n, h, w), 2, 2))

    assert _ops(lambda: pool(graph.x, graph, method="dense")) == _ops(reference)


def test_meta_edited_in_place_is_read_anew(images):
    conv = GridConv(3, 4, 3, padding=1)
    graph = grid(images, 3, padding=1)
    conv(graph.x, graph)
    graph.meta[2, 0] = 9  # one image now claims another height
    with pytest.raises(ValidationError, match="the images of this batch have different geometries"):
        conv(graph.x, graph)
    assert not is_regular_grid(graph)
    graph.meta[:, 8:10] = 0  # every image: padding 0, which the layer was not built for
    graph.meta[2, 0] = 5
    with pytest.raises(ValidationError, match=r"the grid graph was built with kernel_size=\(3, 3\), stride=\(1, 1\), "
                                              r"padding=\(0, 0\)"):
        conv(graph.x, graph)


def test_replaced_or_retyped_tensors_are_checked_anew(images):
    conv = GridConv(3, 4, 3, padding=1)
    graph = grid(images, 3, padding=1)
    dense = conv(graph.x, graph, method="dense")
    # a new meta of another geometry on the same graph
    other = graph.clone()
    other.meta = graph.meta.clone()
    other.meta[:, 8:10] = 0
    with pytest.raises(ValidationError, match=r"padding=\(0, 0\)"):
        conv(other.x, other)
    # new tensors with the same values (meta as int32, the offsets as floats) are the same grid
    same = graph.clone()
    same.meta, same.offset = graph.meta.int(), graph.offset.float()
    assert is_regular_grid(same)
    torch.testing.assert_close(conv(same.x, same, method="dense"), dense)
    # a copy of the edges with two sources swapped is no grid, though the original was one
    swapped = graph.clone()
    swapped.edge_index = graph.edge_index.clone()
    swapped.edge_index[0, [0, 7]] = swapped.edge_index[0, [7, 0]]
    assert is_regular_grid(graph) and not is_regular_grid(swapped)
    with pytest.raises(ValidationError, match="method='dense' needs a regular input"):
        conv(swapped.x, swapped, method="dense")
    # fractional float offsets are no grid offsets, whatever the long ones were
    fractional = graph.clone()
    fractional.offset = graph.offset.float() + 0.5
    assert not is_regular_grid(fractional)
    # the offsets edited in place after a passed check
    conv(graph.x, graph)
    graph.offset[[0, 1]] = graph.offset[[1, 0]] + 1
    assert not is_regular_grid(graph)
    torch.testing.assert_close(conv(graph.x, graph), conv(graph.x, graph, method="message_passing"))
    # a graph moved to another device than the features is refused, not served the CPU verdict
    with pytest.raises(ValidationError, match="the graph's edge_index is on meta but the node features are on cpu"):
        conv(graph.x, graph.to("meta"))


def test_inference_mode_meta_edited_in_place_is_seen(images):
    conv = GridConv(3, 4, 3, padding=1)
    with torch.inference_mode():
        graph = grid(images, 3, padding=1)
        conv(graph.x, graph)
        graph.meta[1, 1] = 7
        with pytest.raises(ValidationError, match="different geometries"):
            conv(graph.x, graph)


def test_refusals_are_not_kept(images):
    from graphdl.graphs.structure_cache import kept

    conv = GridConv(3, 4, 7)
    for _ in range(2):  # the dense path on images still refuses a kernel larger than the image, in graphdl's words
        with pytest.raises(ValidationError, match="kernel larger than the padded image"):
            conv(images, method="dense")
    calls = []

    def failing() -> int:
        calls.append(1)
        raise ValueError("no")

    t = torch.zeros(2)
    for _ in range(2):
        with pytest.raises(ValueError):
            kept(t, "k", failing)
    assert len(calls) == 2
    assert kept(t, "k", lambda: 1) == 1 and kept(t, "k", lambda: 2) == 1
    t.add_(1)
    assert kept(t, "k", lambda: 2) == 2


def test_one_edge_index_keeps_a_verdict_per_check():
    """One slot per edge_index: two checks of the same tensor evicted each other and both ran on every call."""
    edge_index, calls = torch.zeros(2, 3, dtype=torch.long), []

    def check(name: str):  # type: ignore[no-untyped-def]
        return lambda: calls.append(name) or True

    for _ in range(3):
        assert passes(edge_index, [], "a", check("a")) and passes(edge_index, [], "b", check("b"))
    assert calls == ["a", "b"]


def test_lenet_on_the_same_input_graph_checks_it_once(monkeypatch):
    """LeNet's input check and conv1's grid check of one edge_index: both ran on every forward (they evicted each
    other, and the offsets were a new view of edge_attr each time)."""
    from torch_geometric.data import Batch

    batch = Batch.from_data_list(list(digits_graphs())[:8])
    model = LeNetGrid().eval()
    with torch.no_grad():
        first = model(batch.x, batch.edge_index, batch.edge_attr)
        calls = []
        for module, name in ((grid_module, "_holds_grid_edges"), (lenet_module, "edge_sources")):
            original = getattr(module, name)
            monkeypatch.setattr(module, name, lambda *a, _f=original, _n=name: calls.append(_n) or _f(*a))
        again = model(batch.x, batch.edge_index, batch.edge_attr)
        assert calls == []
        torch.testing.assert_close(again, first)
        torch.testing.assert_close(again, model(batch.x.view(8, 1, 8, 8)))
        edited = batch.edge_attr.clone()
        edited[[0, 1]] = edited[[1, 0]] + 1
        with pytest.raises(ValidationError, match="edge_index is not the first convolution's grid"):
            model(batch.x, batch.edge_index, edited)
    assert "edge_sources" in calls


def test_a_grid_graph_of_no_image_is_refused_by_name():
    """meta without rows has no geometry: the layers failed with a bare IndexError reading meta[0]."""
    conv = GridConv(2, 3, 3, padding=1)
    empty = grid_graph(conv.spec(4, 4), 0)
    with pytest.raises(ValidationError, match=r"^grid graph: meta has no rows, so the graph holds no image and no "
                                              r"geometry; build it for at least one image$"):
        conv(torch.zeros(0, 2), empty)
    with pytest.raises(ValidationError, match="meta has no rows"):
        GridPool(2, kernel_size=2)(torch.zeros(0, 2), grid_graph(GridPool(2).spec(4, 4), 0))
    assert not is_regular_grid(empty)
