"""Classical layers on special graphs against torch.nn: max-pool gradients as max_pool2d, grid graphs without
metadata or with other pixel counts, unbatched calls with batched states or masks, and float64 weights copied
exactly by from_torch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Data

import graphdl.layers.attention  # noqa: F401  (registers the special-graph layers until the package imports them)
import graphdl.layers.grid  # noqa: F401
import graphdl.layers.recurrent  # noqa: F401
from graphdl.errors import ValidationError
from graphdl.graphs import grid, images_to_nodes, max_pool, nodes_to_images
from graphdl.layers.attention import CompleteMultiheadAttention
from graphdl.layers.grid import GridConv, GridPool
from graphdl.layers.recurrent import ChainGRU, ChainLSTM

TOL = dict(atol=1e-6, rtol=1e-6)


# ---------------------------------------------------------------- grid: max pooling gradients
@pytest.mark.parametrize("method", ["message_passing", "graph"])
@pytest.mark.parametrize("kernel,stride,padding,dilation", [(2, 2, 0, 1), (3, 2, 1, 1), (2, 1, 1, 2)])
def test_max_pool_gradient_goes_to_the_first_maximum_as_in_max_pool2d(method, kernel, stride, padding, dilation):
    """scatter(reduce="max") halved the gradient of a window whose maximum is exactly 0 (it counted its zero
    start value as a tie) and split the gradient among ties; max_pool2d sends it to the first maximum."""
    x = torch.tensor([[0.0, -1.0, 2.0, 2.0, -3.0], [-2.0, -3.0, 2.0, 2.0, -1.0], [1.0, 1.0, 0.0, -4.0, 0.0],
                      [1.0, 1.0, -5.0, -6.0, 0.0]])
    images = torch.stack([x, -x.flip(1)])[:, None].repeat(1, 2, 1, 1).requires_grad_(True)  # (2, 2, 4, 5)
    ref = F.max_pool2d(images, kernel, stride, padding, dilation)
    up = torch.arange(1.0, ref.numel() + 1).view_as(ref)
    (expected,) = torch.autograd.grad(ref, images, up)
    pool = GridPool(2, kernel_size=kernel, stride=stride, padding=padding, dilation=dilation)
    if method == "graph":
        g = grid(images, kernel, stride, padding, dilation)
        out = nodes_to_images(max_pool(g), 2, ref.size(2), ref.size(3))
    else:
        out = pool(images, method="message_passing")
    torch.testing.assert_close(out, ref, **TOL)
    (got,) = torch.autograd.grad(out, images, up)
    torch.testing.assert_close(got, expected, **TOL)


# ---------------------------------------------------------------- grid: graphs and their node features
def test_grid_conv_on_a_graph_without_grid_metadata_needs_and_honours_size():
    """A Data graph without 'meta' gave one output row per input node (the surplus rows only the bias) and
    ignored size=(num_src, num_dst); a bare edge_index already asked for size."""
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1)
    layer = GridConv.from_torch(conv)
    images = torch.randn(2, 2, 6, 5)
    g = grid(images, 3, 2, 1)
    plain = Data(x=g.x, edge_index=g.edge_index, offset=g.offset)
    with pytest.raises(ValidationError, match=r"the output grid is not the input grid, so its size is unknown; "
                                              r"pass size=\(num_src, num_dst\)"):
        layer(plain)
    out = layer(g.x, plain, size=(g.num_nodes, g.num_out_nodes))
    torch.testing.assert_close(out, images_to_nodes(conv(images)), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("rows", [16, 64])
@pytest.mark.parametrize("make", ["conv", "pool"])
def test_grid_layers_check_the_node_features_against_the_grid_graph(make, rows):
    """Too few or too many rows for the graph's pixels: torch_geometric's 'Encountered tensor with size 16 in
    dimension -2', an IndexError, or (pooling, too many rows) a silently pooled prefix of x."""
    g = grid(torch.randn(2, 1, 4, 4), 2, stride=2)  # 32 pixel nodes
    layer = GridConv(1, 1, 2, stride=2) if make == "conv" else GridPool(1)
    x = torch.randn(rows, 1)
    for method in ("auto", "message_passing"):
        with pytest.raises(ValidationError, match=rf"grid_{make}: the grid graph holds 2 image\(s\) of 4x4 pixels, "
                                                  rf"32 pixel nodes, but the node features have {rows} rows"):
            layer(x, g, method=method)


# ---------------------------------------------------------------- recurrent: unbatched initial state
@pytest.mark.parametrize("cls", [ChainGRU, ChainLSTM])
def test_unbatched_input_with_a_batched_initial_state_is_named(cls):
    """The check ran after hx got a batch axis, so it asked for the very shape the user had passed:
    'initial state must have shape (2, 1, 4) ..., got (2, 1, 1, 4)'."""
    layer = cls(3, 4, num_layers=2)
    x = torch.randn(5, 3)
    h = torch.zeros(2, 1, 4)
    hx = h if cls is ChainGRU else (h, h)
    with pytest.raises(ValidationError, match=rf"{layer.registry_name}: for unbatched \(T, F\) input the initial "
                                              rf"state must be 2D \(num_layers\*num_directions, hidden\) = \(2, 4\), "
                                              rf"got \(2, 1, 4\)"):
        layer(x, hx)
    # the 2D state of torch's unbatched call still works, and equals the batch of one
    h2 = torch.randn(2, 4)
    hx2 = h2 if cls is ChainGRU else (h2, torch.randn(2, 4))
    out, _ = layer(x, hx2, method="message_passing")
    batched = hx2[:, None] if cls is ChainGRU else tuple(s[:, None] for s in hx2)
    torch.testing.assert_close(out, layer(x[:, None], batched)[0][:, 0], atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- attention: unbatched key padding mask
def test_unbatched_attention_with_a_batched_key_padding_mask_is_named():
    """The check ran after the mask got a batch axis: 'must have shape (N, S) = (1, 4), got (1, 1, 4)'."""
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(8, 2)
    layer = CompleteMultiheadAttention.from_torch(ref)
    q = torch.randn(4, 8)
    with pytest.raises(ValidationError, match=r"complete_mha: for unbatched \(L, E\) inputs key_padding_mask must "
                                              r"be 1D \(S,\) = \(4,\), got \(1, 4\)"):
        layer(q, key_padding_mask=torch.zeros(1, 4, dtype=torch.bool))
    kpm = torch.tensor([False, True, False, False])
    for method in ("dense", "message_passing"):
        torch.testing.assert_close(layer(q, key_padding_mask=kpm, method=method)[0],
                                   ref(q, q, q, key_padding_mask=kpm)[0], atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- from_torch: float64 modules
def _float64_modules():
    torch.manual_seed(0)
    kw = dict(dtype=torch.float64)
    return [(GridConv, nn.Conv2d(2, 3, 3, padding=1, **kw), (torch.randn(2, 2, 5, 4, **kw),)),
            (ChainGRU, nn.GRU(3, 4, num_layers=2, bidirectional=True, **kw), (torch.randn(5, 2, 3, **kw),)),
            (ChainLSTM, nn.LSTM(3, 4, **kw), (torch.randn(5, 2, 3, **kw),)),
            (CompleteMultiheadAttention, nn.MultiheadAttention(8, 2, kdim=5, vdim=3, **kw),
             (torch.randn(4, 2, 8, **kw), torch.randn(6, 2, 5, **kw), torch.randn(6, 2, 3, **kw)))]


@pytest.mark.parametrize("index", range(4), ids=["grid_conv", "chain_gru", "chain_lstm", "complete_mha"])
def test_from_torch_copies_float64_weights_exactly(index):
    """The layer was built in float32, loaded, then converted: a float64 module's weights were rounded to float32
    (errors of ~1e-8, so the "copy" differed from the module and so did every output)."""
    cls, module, inputs = _float64_modules()[index]
    layer = cls.from_torch(module)
    theirs = dict(module.named_parameters())
    for name, p in layer.named_parameters():
        assert p.dtype == torch.float64 and torch.equal(p, theirs[name]), name
    out, ref = layer(*inputs, method="dense"), module(*inputs)
    out, ref = (out[0], ref[0]) if isinstance(ref, tuple) else (out, ref)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-14)


@pytest.mark.parametrize("edge_index,got", [(torch.zeros(2, dtype=torch.long), r"torch.int64 of shape \(2,\)"),
                                            (torch.zeros(3, 2, dtype=torch.long), r"torch.int64 of shape \(3, 2\)"),
                                            (torch.zeros(2, 2), r"torch.float32 of shape \(2, 2\)")])
def test_grid_conv_names_a_malformed_bare_edge_index(edge_index, got):
    """A 1D edge_index failed with 'IndexError: Dimension out of range'; a (3, E) or float one with
    torch_geometric's ValueError rather than a graphdl ValidationError."""
    layer = GridConv(1, 1, 1)
    with pytest.raises(ValidationError, match=rf"grid_conv: edge_index must be a long tensor of shape \(2, num_edges\), "
                                              rf"got {got}"):
        layer(torch.randn(5, 1), edge_index, torch.zeros(2, dtype=torch.long), (5, 5))
