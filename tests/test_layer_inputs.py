"""Input checks of the layers: dtypes, widths, mask shapes and sizes are named before torch fails inside."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch_geometric.nn import GCNConv

import graphdl
from graphdl.errors import ConfigError, ValidationError
from graphdl.graphs import chain, complete
from graphdl.graphs.grid import grid, images_to_nodes
from graphdl.layers.attention import CompleteMultiheadAttention
from graphdl.layers.grid import GridConv, GridPool
from graphdl.layers.recurrent import ChainGRU, ChainLSTM

METHODS = ["dense", "message_passing"]
CELLS = [(ChainGRU, nn.GRU), (ChainLSTM, nn.LSTM)]


# ---------------------------------------------------------------- chain_gru / chain_lstm
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", ["chain_gru", "chain_lstm"])
def test_chain_rnn_names_an_input_of_another_dtype(name, method):
    layer = graphdl.layers.create(name, in_channels=3, out_channels=4)
    x = torch.randn(5, 2, 3)
    with pytest.raises(ValidationError, match=rf"{name}: input has dtype torch.float64 but the weights are "
                                              r"torch.float32; convert with input.to\(torch.float32\) or the layer "
                                              r"with .to\(torch.float64\)"):
        layer(x.double(), method=method)
    with pytest.raises(ValidationError, match=rf"{name}: input has dtype torch.int64 but the layer takes float "
                                              r"features; convert with input.to\(torch.float32\)"):
        layer(torch.randint(0, 3, (5, 2, 3)), method=method)
    g = chain([torch.randn(3, 3), torch.randn(2, 3)])
    with pytest.raises(ValidationError, match=rf"{name}: x has dtype torch.float64 but the weights are torch.float32"):
        layer(g.x.double(), g, method=method)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", ["chain_gru", "chain_lstm"])
def test_chain_rnn_names_an_initial_state_of_another_dtype(name, method):
    layer = graphdl.layers.create(name, in_channels=3, out_channels=4)
    h64 = torch.randn(1, 2, 4, dtype=torch.float64)
    h32 = h64.float()
    hx, what = (h64, "hx") if name == "chain_gru" else ((h32, h64), r"hx\[1\]")
    with pytest.raises(ValidationError, match=rf"{name}: {what} has dtype torch.float64 but the weights are "
                                              rf"torch.float32; convert with {what}.to\(torch.float32\)"):
        layer(torch.randn(5, 2, 3), hx, method=method)
    g = chain([torch.randn(3, 3), torch.randn(2, 3)])
    with pytest.raises(ValidationError, match=rf"{name}: {what} has dtype torch.float64"):
        layer(g, hx, method=method)
    # a float64 layer takes float64 inputs and states, as torch.nn's does
    layer64 = graphdl.layers.create(name, in_channels=3, out_channels=4).double()
    hx64 = h64 if name == "chain_gru" else (h64, h64)
    ref = layer64.to_torch()
    out, _ = layer64(torch.ones(5, 2, 3, dtype=torch.float64), hx64, method=method)
    torch.testing.assert_close(out, ref(torch.ones(5, 2, 3, dtype=torch.float64), hx64)[0])


@pytest.mark.parametrize("kwargs", [{}, {"batch_first": True}, {"num_layers": 2, "bidirectional": True}])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("cls,torch_cls", CELLS)
def test_chain_rnn_on_a_batch_of_zero_sequences_equals_torch(cls, torch_cls, method, kwargs):
    torch.manual_seed(0)
    ref = torch_cls(3, 4, **kwargs)
    layer = cls.from_torch(ref)
    x = torch.randn(0, 5, 3) if ref.batch_first else torch.randn(5, 0, 3)
    out, state = layer(x, method=method)
    ref_out, ref_state = ref(x)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(state, ref_state)
    out.sum().backward()  # still part of the autograd graph, as torch.nn's output
    hx = torch.zeros(ref.num_layers * (2 if ref.bidirectional else 1), 0, 4)
    hx = hx if cls is ChainGRU else (hx, hx)
    torch.testing.assert_close(layer(x, hx, method=method)[0], ref(x, hx)[0])


# ---------------------------------------------------------------- complete_mha
@pytest.mark.parametrize("method", [None, *METHODS])
def test_mha_checks_masks_and_dtypes_on_every_path(method):
    mha = graphdl.layers.create("complete_mha", in_channels=8, num_heads=2)
    x = torch.randn(4, 2, 8)
    with pytest.raises(ValidationError, match=r"complete_mha: key_padding_mask must have shape \(N, S\) = \(2, 4\), "
                                              r"got \(3, 4\)"):
        mha(x, key_padding_mask=torch.zeros(3, 4, dtype=torch.bool), method=method)
    with pytest.raises(ValidationError, match=r"complete_mha: attn_mask must have shape \(L, S\) = \(4, 4\) or "
                                              r"\(N\*num_heads, L, S\) = \(4, 4, 4\), got \(4, 3\)"):
        mha(x, attn_mask=torch.zeros(4, 3, dtype=torch.bool), method=method)
    with pytest.raises(ValidationError, match=r"complete_mha: attn_mask must be bool .* got torch.uint8; "
                                              r"use attn_mask.bool\(\)"):
        mha(x, attn_mask=torch.zeros(4, 4, dtype=torch.uint8), method=method)
    with pytest.raises(ValidationError, match=r"complete_mha: query has dtype torch.float64 but the parameters are "
                                              r"torch.float32; convert with query.to\(torch.float32\)"):
        mha(x.double(), method=method)
    with pytest.raises(ValidationError, match=r"complete_mha: value has dtype torch.int64 but the layer takes float"):
        mha(x, x, x.long(), method=method)
    g = complete(4, x=torch.randn(4, 8))
    with pytest.raises(ValidationError, match=r"complete_mha: x has dtype torch.float64"):
        mha(g.x.double(), g, method=method)


def test_mha_float_mask_of_another_dtype_gives_the_same_result_on_both_paths():
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(8, 2).eval()
    mha = CompleteMultiheadAttention.from_torch(ref).eval()
    q, k = torch.randn(4, 3, 8), torch.randn(5, 3, 8)
    mask = torch.randn(4, 5, dtype=torch.float64)
    expected = ref(q, k, k, attn_mask=mask.float())
    for method in METHODS:
        for got, want in zip(mha(q, k, k, attn_mask=mask, method=method), expected):
            torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("rows", [3, 5])
@pytest.mark.parametrize("method", [None, "message_passing"])
def test_mha_graph_path_refuses_a_cross_attention_graph(method, rows):
    mha = graphdl.layers.create("complete_mha", in_channels=8, num_heads=2)
    g = complete(3, num_sources=5)
    with pytest.raises(ValidationError, match=r"complete_mha: the graph runs from 5 source \(key\) nodes to 3 target "
                                              r"\(query\) nodes, but the graph path is self-attention .* "
                                              r"layer\(query, key, value\)"):
        mha(torch.randn(rows, 8), g, method=method)
    batched = complete(3, num_sources=5, batch_size=2, x=torch.randn(6, 8))
    with pytest.raises(ValidationError, match=r"graph path is self-attention"):
        mha(batched, method=method)


# ---------------------------------------------------------------- PyG layers: edge_attr / edge_weight
X = torch.randn(6, 4)
EDGES = torch.tensor([[0, 1, 1, 2, 3, 3], [1, 0, 2, 1, 3, 4]])


@pytest.mark.parametrize("name", ["gat", "gatv2", "transformer", "gine"])
def test_edge_attr_width_and_dtype_are_checked_against_the_layer(name):
    layer = graphdl.layers.create(name, 4, 8, edge_dim=3)
    cls = type(layer).__name__
    with pytest.raises(ValidationError, match=rf"{cls}: edge_attr has 5 features per edge but the layer expects 3 "
                                              r"\(edge_dim=3\); build it with edge_dim=5"):
        layer(X, EDGES, edge_attr=torch.randn(6, 5))
    with pytest.raises(ValidationError, match=rf"{cls}: edge_attr has dtype torch.float64 but the parameters are "
                                              r"torch.float32; convert with edge_attr.to\(torch.float32\)"):
        layer(X, EDGES, edge_attr=torch.randn(6, 3, dtype=torch.float64))
    with pytest.raises(ValidationError, match=rf"{cls}: edge_attr has dtype torch.int64 but the layer takes float "
                                              r"edge features \(edge_dim=3\); use edge_attr.float\(\)"):
        layer(X, EDGES, edge_attr=torch.ones(6, 3, dtype=torch.long))
    assert layer(X, EDGES, edge_attr=torch.randn(6, 3)).shape == (6, 8)
    assert layer.double()(X.double(), EDGES, edge_attr=torch.randn(6, 3, dtype=torch.float64)).dtype == torch.float64


def test_edge_attr_width_without_edge_dim():
    gine = graphdl.layers.create("gine", 4, 8)  # adds raw edge features to node features of width 4
    with pytest.raises(ValidationError, match=r"GINEConv: edge_attr has 5 features per edge but the layer expects 4 "
                                              r"\(edge_dim=None, so the node width in_channels=4\)"):
        gine(X, EDGES, edge_attr=torch.randn(6, 5))
    assert gine(X, EDGES, edge_attr=torch.randn(6, 4)).shape == (6, 8)
    # one feature per edge may come as a 1-d tensor (PyG views it as (E, 1))
    assert graphdl.layers.create("gat", 4, 8, edge_dim=1)(X, EDGES, torch.randn(6)).shape == (6, 8)


@pytest.mark.parametrize("name", ["gat", "gatv2", "transformer"])
def test_layer_without_edge_dim_refuses_edge_attr_it_would_drop(name):
    layer = graphdl.layers.create(name, 4, 8)
    with pytest.raises(ValidationError, match=rf"{type(layer).__name__} was built without edge_dim, so it would "
                                              r"ignore edge_attr; build it with edge_dim=<number of edge features> "
                                              r"\(3 per edge here\) to use them, or leave edge_attr out"):
        layer(X, EDGES, edge_attr=torch.randn(6, 3))
    assert layer(X, EDGES).shape == (6, 8)


@pytest.mark.parametrize("name", ["gat", "gatv2", "transformer"])
def test_gnn_checks_edge_attr_against_its_layers(name):
    kwargs = dict(layer=name, in_channels=4, hidden_channels=8, out_channels=2)
    model = graphdl.models.create("gnn", edge_dim=3, **kwargs)
    with pytest.raises(ValidationError, match=r"GNN: edge_attr has 5 features per edge but the layer expects 3 "
                                              r"\(edge_dim=3\); build it with edge_dim=5"):
        model(X, EDGES, edge_attr=torch.randn(6, 5))
    assert model(X, EDGES, edge_attr=torch.randn(6, 3)).shape == (6, 2)
    # without edge_dim the layers take no edge features, as gcn's: edge_attr leaves the output unchanged
    plain = graphdl.models.create("gnn", **kwargs).eval()
    torch.testing.assert_close(plain(X, EDGES, edge_attr=torch.randn(6, 3)), plain(X, EDGES))
    with pytest.raises(ConfigError, match=rf"the {name} layers were built without edge_dim, so they would ignore "
                                          r"the edge_encoder's features; give edge_dim=<the encoder's output width>"):
        graphdl.models.create("gnn", edge_encoder=lambda: nn.Linear(3, 8), **kwargs)


@pytest.mark.parametrize("name", ["gcn", "graphconv", "cheb", "gcn_scratch"])
def test_edge_weight_dtype_is_checked_against_the_layer(name):
    layer = graphdl.layers.create(name, 4, 8)
    w = torch.rand(6, dtype=torch.float64)
    with pytest.raises(ValidationError, match=r"edge_weight has dtype torch.float64 but the parameters are "
                                              r"torch.float32; convert with edge_weight.to\(torch.float32\) or the "
                                              r"module with .to\(torch.float64\)"):
        layer(X, EDGES, w)
    assert layer(X, EDGES, w.float()).dtype == torch.float32
    assert layer.double()(X.double(), EDGES, w).dtype == torch.float64


def test_gcn_with_checked_edge_weight_equals_pyg():
    torch.manual_seed(0)
    ref = GCNConv(4, 8)
    layer = graphdl.layers.create("gcn", 4, 8)
    layer.load_state_dict(ref.state_dict())
    w = torch.rand(6)
    torch.testing.assert_close(layer(X, EDGES, w), ref(X, EDGES, w))
    model = graphdl.models.create("gnn", layer="gcn", in_channels=4, hidden_channels=8, out_channels=2)
    with pytest.raises(ValidationError, match=r"GNN: edge_weight has dtype torch.float64"):
        model(X, EDGES, w.double())


# ---------------------------------------------------------------- grid_conv / grid_pool
def test_grid_conv_with_a_bare_edge_index_needs_size_when_the_grid_shrinks():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, stride=2)
    layer = GridConv.from_torch(conv)
    images = torch.randn(1, 2, 7, 7)
    g = grid(images, 3, 2)
    with pytest.raises(ValidationError, match=r"grid_conv: with a bare edge_index and stride=\(2, 2\), padding=\(0, "
                                              r"0\) the output grid is not the input grid, so its size is unknown; "
                                              r"pass size=\(num_src, num_dst\)"):
        layer(g.x, g.edge_index, g.offset)
    with pytest.raises(ValidationError, match=r"size must be a pair of ints"):
        layer(g.x, g.edge_index, g.offset, (49,))
    with pytest.raises(ValidationError, match=r"size=\(48, 9\) must give x's 49 rows as the source nodes"):
        layer(g.x, g.edge_index, g.offset, (48, 9))
    out = layer(g.x, g.edge_index, g.offset, (g.num_nodes, g.num_out_nodes))
    torch.testing.assert_close(out, images_to_nodes(conv(images)), atol=1e-5, rtol=1e-5)
    # with stride 1 and "same" padding the output grid is the input grid: size may be left out
    same = nn.Conv2d(2, 3, 3, padding=1)
    g1 = grid(images, 3, 1, 1)
    out = GridConv.from_torch(same)(g1.x, g1.edge_index, g1.offset)
    torch.testing.assert_close(out, images_to_nodes(same(images)), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_grid_pool_checks_channels_as_grid_conv(method):
    pool = graphdl.layers.create("grid_pool", in_channels=2)
    with pytest.raises(ValidationError, match=r"grid_pool: images must have shape \(N, 2, H, W\), got \(1, 5, 4, 4\); "
                                              r"build it with in_channels=5"):
        pool(torch.randn(1, 5, 4, 4), method=method)
    g = grid(torch.randn(1, 5, 4, 4), 2, 2)
    with pytest.raises(ValidationError, match=r"grid_pool: node features must have shape \(num_nodes, 2\), got "
                                              r"\(16, 5\)"):
        pool(g, method=method)
    x = torch.randn(1, 2, 4, 4)
    torch.testing.assert_close(pool(x, method=method), nn.MaxPool2d(2)(x))
    # a torch pooling module takes any number of channels, and so does the grid pooling built from it
    any_channels = GridPool.from_torch(nn.MaxPool2d(2))
    x5 = torch.randn(1, 5, 4, 4)
    torch.testing.assert_close(any_channels(x5, method=method), nn.MaxPool2d(2)(x5))
