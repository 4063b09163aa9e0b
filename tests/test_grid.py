"""Grid graphs: convolution and pooling as message passing equal torch.nn's Conv2d / pooling."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import graphdl.layers.grid  # noqa: F401  (registers grid_conv / grid_pool until the package imports it)
from graphdl.errors import ValidationError
from graphdl.graphs import grid, images_to_nodes, is_regular_grid, max_pool, mean_pool, nodes_to_images
from graphdl.layers import LAYERS
from graphdl.layers.grid import GridConv, GridPool

TOL = dict(atol=1e-5, rtol=1e-5)

KERNELS = [1, 2, 3, (3, 2)]
STRIDES = [1, 2, (2, 1)]
PADDINGS = [0, 1, (1, 2)]
DILATIONS = [1, 2]
BIASES = [True, False]
CHANNELS = [(1, 1), (3, 5)]
SETTINGS = list(itertools.product(KERNELS, STRIDES, PADDINGS, DILATIONS, BIASES, CHANNELS))


def _grads(out: torch.Tensor, upstream: torch.Tensor, *tensors: torch.Tensor | None) -> list[torch.Tensor]:
    return list(torch.autograd.grad(out, [t for t in tensors if t is not None], upstream))


@pytest.mark.parametrize("kernel,stride,padding,dilation,bias,channels", SETTINGS)
def test_conv2d_equality(kernel, stride, padding, dilation, bias, channels):
    """Both paths: outputs and gradients (input, weight, bias) equal nn.Conv2d's, on a non-square image."""
    cin, cout = channels
    torch.manual_seed(0)
    conv = nn.Conv2d(cin, cout, kernel, stride, padding, dilation, bias=bias)
    layer = GridConv.from_torch(conv)
    x = torch.randn(2, cin, 7, 9, requires_grad=True)
    ref = conv(x)
    up = torch.randn_like(ref)
    ref_g = _grads(ref, up, x, conv.weight, conv.bias)
    for method in ("dense", "message_passing"):
        out = layer(x, method=method)
        torch.testing.assert_close(out, ref, **TOL)
        out_g = _grads(out, up, x, layer.weight, layer.bias)
        for a, b in zip(out_g, ref_g):
            torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("method", ["dense", "message_passing"])
@pytest.mark.parametrize("kernel,stride,padding,dilation",
                         [(3, 1, 1, 1), ((3, 2), (2, 1), (1, 0), (1, 2)), (5, 2, 2, 1)])
def test_conv_on_grid_graph(kernel, stride, padding, dilation, method):
    """The layer on a batched grid graph (node features in, node features out) equals Conv2d."""
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 4, kernel, stride, padding, dilation)
    layer = GridConv.from_torch(conv)
    images = torch.randn(3, 3, 10, 6)
    g = grid(images, kernel, stride, padding, dilation)
    x = g.x.clone().requires_grad_(True)
    out = layer(x, g, method=method)
    ref = conv(images.requires_grad_(True))
    torch.testing.assert_close(out, images_to_nodes(ref), **TOL)
    up = torch.randn_like(out)
    (gx,) = torch.autograd.grad(out, x, up)
    (gi,) = torch.autograd.grad(ref, images, nodes_to_images(up, 3, ref.size(2), ref.size(3)))
    torch.testing.assert_close(gx, images_to_nodes(gi), **TOL)


def test_conv_with_bare_edge_index_and_shuffled_edges():
    """Message passing needs no grid metadata: shuffled edges with their offsets give the same result."""
    torch.manual_seed(2)
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1)
    layer = GridConv.from_torch(conv)
    images = torch.randn(2, 2, 8, 5)
    g = grid(images, 3, 2, 1)
    perm = torch.randperm(g.num_edges)
    size = (g.num_nodes, g.num_out_nodes)
    out = layer(g.x, g.edge_index[:, perm], g.offset[perm], size)
    torch.testing.assert_close(out, images_to_nodes(conv(images)), **TOL)
    with pytest.raises(ValidationError, match="needs a regular input"):
        layer(g.x, g.edge_index, g.offset, size, method="dense")


def test_auto_lowering_and_edited_graph():
    """``auto`` lowers a regular grid; an edited grid (an edge dropped) runs message passing."""
    torch.manual_seed(3)
    layer = GridConv(2, 3, 3, padding=1)
    images = torch.randn(1, 2, 5, 5)
    g = grid(images, 3, padding=1)
    assert is_regular_grid(g)
    full = layer(g)
    torch.testing.assert_close(full, layer(g, method="message_passing"), **TOL)
    edited = g.clone()
    edited.edge_index, edited.offset = g.edge_index[:, 1:], g.offset[1:]
    edited.edge_attr = edited.offset
    assert not is_regular_grid(edited)
    out = layer(edited)  # auto -> message passing over the remaining edges
    assert not torch.allclose(out, full)
    with pytest.raises(ValidationError, match="method='message_passing'"):
        layer(edited, method="dense")


def test_round_trip_and_registry():
    layer = LAYERS.create("grid_conv", 3, 8, kernel_size=(3, 5), stride=2, padding=(1, 2), bias=False)
    assert isinstance(layer, GridConv)
    # special-graph layers say which graph they need (generic conformance checks on random graphs skip them)
    assert LAYERS.entry("grid_conv").meta["graph"] == "grid" and LAYERS.entry("grid_pool").meta["graph"] == "grid"
    conv = layer.to_torch()
    assert isinstance(conv, nn.Conv2d) and conv.bias is None and conv.kernel_size == (3, 5)
    x = torch.randn(2, 3, 11, 12)
    torch.testing.assert_close(layer(x), conv(x), **TOL)
    back = GridConv.from_torch(conv)
    torch.testing.assert_close(back.weight, layer.weight)
    same = GridConv.from_torch(nn.Conv2d(2, 2, 3, padding="same"))
    assert same.padding == (1, 1)
    # the message-passing MACs leave out the padding edges
    assert layer.edge_macs(11, 12) < layer.macs(11, 12)


POOLS = list(itertools.product([2, 3, (2, 3)], [None, 1, 2], [0, 1]))


@pytest.mark.parametrize("method", ["dense", "message_passing"])
@pytest.mark.parametrize("kernel,stride,padding", POOLS)
def test_pool_equality(kernel, stride, padding, method):
    """Max and mean pooling as coarsening equal max_pool2d / avg_pool2d (outputs and gradients)."""
    torch.manual_seed(4)
    x = torch.randn(2, 3, 7, 8, requires_grad=True)
    up = None
    for reduce, dilation in (("max", 1), ("max", 2), ("mean", 1), ("mean_nopad", 1)):
        if reduce == "max":
            ref = F.max_pool2d(x, kernel, stride, padding, dilation)
            pool = GridPool(3, kernel_size=kernel, stride=stride, padding=padding, dilation=dilation)
        else:
            cip = reduce == "mean"
            ref = F.avg_pool2d(x, kernel, stride, padding, count_include_pad=cip)
            pool = GridPool(3, kernel_size=kernel, stride=stride, padding=padding, reduce="mean",
                            count_include_pad=cip)
        out = pool(x, method=method)
        torch.testing.assert_close(out, ref, **TOL)
        up = torch.randn_like(ref)
        torch.testing.assert_close(torch.autograd.grad(out, x, up)[0], torch.autograd.grad(ref, x, up)[0], **TOL)


def test_pool_graph_helpers_and_from_torch():
    torch.manual_seed(5)
    images = torch.randn(2, 4, 6, 9)
    g = grid(images, 2, stride=2)
    torch.testing.assert_close(max_pool(g), images_to_nodes(F.max_pool2d(images, 2)))
    torch.testing.assert_close(mean_pool(g), images_to_nodes(F.avg_pool2d(images, 2)))
    pool = GridPool.from_torch(nn.AvgPool2d(3, 2, 1, count_include_pad=False), in_channels=4)
    torch.testing.assert_close(pool(images, method="message_passing"),
                               nn.AvgPool2d(3, 2, 1, count_include_pad=False)(images), **TOL)
    torch.testing.assert_close(pool(grid(images, 3, 2, 1), method="message_passing"),
                               images_to_nodes(F.avg_pool2d(images, 3, 2, 1, count_include_pad=False)), **TOL)


def test_grid_builder_structure():
    images = torch.arange(2 * 1 * 3 * 4, dtype=torch.float).view(2, 1, 3, 4)
    g = grid(images, 3, padding=1)
    assert g.num_graphs == 2 and g.x.shape == (24, 1)
    assert g.spec.out_height == 3 and g.spec.out_width == 4
    # a 3x4 image with a 3x3 kernel and padding 1: 12 outputs, minus the edges into the padding
    per_image = sum(sum(1 for a in (-1, 0, 1) for b in (-1, 0, 1) if 0 <= r + a < 3 and 0 <= c + b < 4)
                    for r in range(3) for c in range(4))
    assert g.num_edges == 2 * per_image
    # every centre offset (4) edge is a self-loop pixel -> same pixel
    centre = g.offset == 4
    assert torch.equal(g.edge_index[0, centre], g.edge_index[1, centre])
    # the second image's targets start after the first image's 12 output nodes
    assert int(g.edge_index[1].max()) == 23
    assert torch.equal(g[1].x, images[1].reshape(-1, 1))


def test_bad_input():
    with pytest.raises(ValidationError, match="must be a 4D tensor"):
        grid(torch.randn(3, 8, 8), 3)
    with pytest.raises(ValidationError, match="kernel larger than the padded image"):
        grid(torch.randn(1, 1, 4, 4), 7, padding=1)
    with pytest.raises(ValidationError, match="kernel larger than the padded image"):
        grid(torch.randn(1, 1, 4, 8), 3, dilation=2)
    with pytest.raises(ValidationError, match="kernel_size must be >= 1"):
        grid(torch.randn(1, 1, 4, 4), 0)
    layer = GridConv(3, 8, 3)
    with pytest.raises(ValidationError, match="mismatched weight shape"):
        layer.load_from_torch(nn.Conv2d(3, 16, 3))
    with pytest.raises(ValidationError, match="mismatched stride"):
        layer.load_from_torch(nn.Conv2d(3, 8, 3, stride=2))
    with pytest.raises(ValidationError, match="expects a torch.nn.Conv2d"):
        GridConv.from_torch(nn.Conv1d(3, 8, 3))
    with pytest.raises(ValidationError, match="grouped convolutions"):
        GridConv.from_torch(nn.Conv2d(4, 8, 3, groups=2))
    with pytest.raises(ValidationError, match="built with kernel_size"):
        layer(grid(torch.randn(1, 3, 6, 6), 5))
    with pytest.raises(ValidationError, match=r"images must have shape \(N, 3, H, W\)"):
        layer(torch.randn(1, 2, 6, 6))
    with pytest.raises(ValidationError, match="offsets must lie in"):
        layer(torch.randn(4, 3), torch.tensor([[0], [1]]), torch.tensor([9]), (4, 4))
    with pytest.raises(ValidationError, match="out_channels must equal"):
        GridPool(3, 4)


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("kernel,dilation", [(3, 1), (5, 2), ((3, 5), 1)])
def test_string_padding_as_in_conv2d(padding, kernel, dilation):
    # padding="same" used to be refused as "must be an int or a pair of ints"
    torch.manual_seed(0)
    ref = nn.Conv2d(3, 4, kernel, padding=padding, dilation=dilation)
    layer = LAYERS.create("grid_conv", 3, 4, kernel_size=kernel, padding=padding, dilation=dilation)
    layer.load_from_torch(ref)
    images = torch.randn(2, 3, 11, 11)
    for method in ("dense", "message_passing"):
        torch.testing.assert_close(layer(images, method=method), ref(images), atol=1e-5, rtol=1e-4)
    with pytest.raises(ValidationError, match=r"padding='same' needs stride 1 \(as in torch.nn.Conv2d\)"):
        GridConv(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValidationError, match="padding='same' with kernel 4 and dilation 1 pads asymmetrically"):
        GridConv(3, 4, 4, padding="same")


def test_images_of_another_dtype_or_without_a_batch_axis_are_named():
    layer = GridConv(3, 4, 3)
    with pytest.raises(ValidationError) as info:  # torch: "Input type (double) and bias type (float)..."
        layer(torch.randn(1, 3, 6, 6, dtype=torch.float64))
    assert str(info.value) == ("grid_conv: images has dtype torch.float64 but the weights are torch.float32; "
                               "convert with images.to(torch.float32) or the layer with .to(torch.float64)")
    with pytest.raises(ValidationError, match=r"grid_conv: x has dtype torch.float64"):
        layer(grid(torch.randn(1, 3, 6, 6, dtype=torch.float64), 3))
    with pytest.raises(ValidationError, match=r"got \(3, 6, 6\); for one image pass images\[None\]$"):
        layer(torch.randn(3, 6, 6))
