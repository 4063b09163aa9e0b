"""Audit of GridConv / GridPool / LeNetGrid against torch.nn: conversions keep the module mode, max-pool ties on
a shuffled grid, and bad offsets / edges / channel counts named instead of truncated or crashing deep."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch_geometric.data import Data

from graphdl.errors import ValidationError
from graphdl.graphs import grid, images_to_nodes, is_regular_grid
from graphdl.layers.grid import GridConv, GridPool
from graphdl.models.lenet import LeNetGrid


def test_reset_parameters_is_conv2d_init():
    torch.manual_seed(3)
    conv = nn.Conv2d(3, 5, (3, 2))
    torch.manual_seed(3)
    layer = GridConv(3, 5, (3, 2))
    assert torch.equal(layer.weight, conv.weight) and torch.equal(layer.bias, conv.bias)


def test_lenet_to_torch_keeps_eval_mode():
    """An eval model's torch copy evaluates too: its dropout was active (outputs off by ~0.1)."""
    torch.manual_seed(0)
    model = LeNetGrid(dropout=0.5).eval()
    net = model.to_torch()
    assert not net.training and not any(m.training for m in net)
    x = torch.randn(4, 1, 8, 8)
    torch.testing.assert_close(net(x), model(x))
    assert model.train().to_torch().training


def test_conversions_keep_training_mode():
    conv = nn.Conv2d(2, 3, 3).eval()
    assert not GridConv.from_torch(conv).training
    assert not GridConv(2, 3).eval().to_torch().training
    for pool in (nn.MaxPool2d(2).eval(), nn.AvgPool2d(2).eval()):
        assert not GridPool.from_torch(pool).training
    assert not GridPool(2).eval().to_torch().training
    assert not GridPool(2, reduce="mean").eval().to_torch().training


@pytest.mark.parametrize("kernel,stride,padding", [(2, 2, 0), (3, 2, 1)])
def test_max_pool_ties_on_shuffled_grid_follow_torch(kernel, stride, padding):
    """Message passing on a regular grid with shuffled edges sends a tie's gradient where MaxPool2d does."""
    torch.manual_seed(0)
    images = torch.randint(0, 2, (2, 3, 6, 5)).double().requires_grad_(True)
    g = grid(images.detach(), kernel, stride, padding)
    perm = torch.randperm(g.num_edges)
    g.edge_index, g.offset, g.edge_attr = g.edge_index[:, perm], g.offset[perm], g.edge_attr[perm]
    assert is_regular_grid(g)
    ref = nn.MaxPool2d(kernel, stride, padding)(images)
    up = torch.randn_like(ref)
    (ref_grad,) = torch.autograd.grad(ref, images, up)
    pool = GridPool(3, kernel_size=kernel, stride=stride, padding=padding)
    x = g.x.clone().requires_grad_(True)
    for method in ("dense", "message_passing"):
        out = pool(x, g, method=method)
        torch.testing.assert_close(out, images_to_nodes(ref))
        (grad,) = torch.autograd.grad(out, x, images_to_nodes(up))
        torch.testing.assert_close(grad, images_to_nodes(ref_grad), atol=0, rtol=0)


def test_conv_graph_without_offsets_is_named():
    g = grid(torch.randn(2, 2, 5, 5), 3, 1, 1)
    del g.offset, g.edge_attr
    with pytest.raises(ValidationError, match="grid_conv: the graph has no kernel offsets"):
        GridConv(2, 3, 3, padding=1)(g.x, g)


def test_conv_fractional_offsets_are_refused():
    """Offsets 0.5, 1.5, ... were truncated to the neighbouring kernel weight."""
    g = grid(torch.randn(2, 2, 5, 5), 3, 1, 1)
    layer = GridConv(2, 3, 3, padding=1)
    with pytest.raises(ValidationError, match="grid_conv: offsets must be integers .* such as 0.5"):
        layer(g.x, g.edge_index, g.offset.double() + 0.5)
    # integral float offsets still work and equal the integer ones
    torch.testing.assert_close(layer(g.x, g.edge_index, g.offset.double()), layer(g.x, g.edge_index, g.offset))


@pytest.mark.parametrize("channels", [0, -2, 1.5, True])
def test_pool_refuses_bad_in_channels(channels):
    """0 and -2 silently took any channel count."""
    with pytest.raises(ValidationError, match="grid_pool: in_channels must be a number of channels >= 1"):
        GridPool(channels)


@pytest.mark.parametrize("row,value,name", [(0, -1, "sources"), (1, 18, "targets"), (1, -1, "targets")])
def test_pool_edges_out_of_range_are_named(row, value, name):
    g = grid(torch.randn(2, 2, 6, 6), 3, 2, 1)
    d = Data(x=g.x, edge_index=g.edge_index.clone(), offset=g.offset, meta=g.meta)
    d.edge_index[row, 0] = value
    for reduce in ("max", "mean"):
        with pytest.raises(ValidationError, match=f"grid_pool: edge {name} must lie in"):
            GridPool(2, kernel_size=3, stride=2, padding=1, reduce=reduce)(d, method="message_passing")


def test_lenet_summary_counts_match_torch_network():
    model = LeNetGrid(in_channels=3, out_channels=5, image_size=(12, 8), channels=(4, 7), hidden=(30,))
    net = model.to_torch()
    macs = []

    def hook(mod, inp, out):
        if isinstance(mod, nn.Conv2d):
            macs.append(out[0].numel() * mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1])
        elif isinstance(mod, nn.Linear):
            macs.append(mod.in_features * mod.out_features)

    handles = [m.register_forward_hook(hook) for m in net]
    x = torch.randn(1, 3, 12, 8)
    out = net(x)
    for h in handles:
        h.remove()
    rows = model.summary()
    assert sum(r.params for r in rows) == sum(p.numel() for p in net.parameters())
    assert sum(r.macs for r in rows) == sum(macs)
    for method in ("dense", "message_passing"):
        torch.testing.assert_close(model(x, method=method), out)


@pytest.mark.parametrize("num_images", [1, 4])
def test_lenet_refuses_graphs_built_for_another_padding(num_images):
    """digits_graphs(padding=0) has 6x6 output grids: read with the model's 8x8 numbering its messages landed in
    other pixels (and, batched, other images), silently."""
    from torch_geometric.data import Batch

    from graphdl.models.lenet import digits_graphs

    torch.manual_seed(0)
    model = LeNetGrid()
    good = Batch.from_data_list(list(digits_graphs()[:num_images]))
    ref = model(good.x, good.edge_index, good.edge_attr, good.batch, method="message_passing")
    torch.testing.assert_close(ref, model(good.x.view(num_images, 1, 8, 8)))
    # a grid with edges dropped is still the model's grid
    keep = torch.rand(good.num_edges) < 0.8
    model(good.x, good.edge_index[:, keep], good.edge_attr[keep], good.batch)
    bad = Batch.from_data_list(list(digits_graphs(padding=0)[:num_images]))
    for method in ("auto", "message_passing"):
        with pytest.raises(ValidationError, match=r"lenet_grid: edge_index is not the first convolution's grid .* "
                                                  r"digits_graphs\(kernel_size=3, padding=1\)"):
            model(bad.x, bad.edge_index, bad.edge_attr, bad.batch, method=method)
