"""The GNN models against their references with the same weights: PyG's ``BasicGNN`` models and OGB's
molecule example (``examples/graphproppred/mol``), plus the model options the references do not cover."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch, Data
from torch_geometric.nn import aggr, global_add_pool, global_mean_pool
from torch_geometric.nn.models import GCN

import graphdl
from graphdl.bench.ogb_reference import ReferenceOGBMol, load_reference_into
from graphdl.errors import ConfigError, ValidationError
from graphdl.models.gnn import GNN, MLPDecoder
from graphdl.models.ogb_mol import ogb_mol

# Two small graphs of unequal size, both directions of every edge.
X = torch.randn(9, 4, generator=torch.Generator().manual_seed(0))
_E = torch.tensor([[0, 1, 2, 3, 5, 6, 7], [1, 2, 3, 0, 6, 7, 8]])
EDGES = torch.cat([_E, _E.flip(0)], dim=1)
BATCH = torch.tensor([0] * 4 + [1] * 5)


def _molecules(num_graphs: int = 4, seed: int = 0) -> Batch:
    """Random molecules with valid OGB atom/bond category ids."""
    from ogb.utils.features import get_atom_feature_dims, get_bond_feature_dims

    gen = torch.Generator().manual_seed(seed)
    graphs = []
    for _ in range(num_graphs):
        n = int(torch.randint(3, 8, (1,), generator=gen))
        x = torch.stack([torch.randint(0, d, (n,), generator=gen) for d in get_atom_feature_dims()], dim=1)
        src = torch.arange(n - 1)
        ei = torch.cat([torch.stack([src, src + 1]), torch.stack([src + 1, src])], dim=1)
        half = torch.stack([torch.randint(0, d, (n - 1,), generator=gen) for d in get_bond_feature_dims()], dim=1)
        graphs.append(Data(x=x, edge_index=ei, edge_attr=torch.cat([half, half])))
    return Batch.from_data_list(graphs)


@pytest.mark.parametrize("norm", ["layer", "graph", "instance"])
def test_graph_wise_norms_normalise_each_graph_as_pygs_basic_gnn(norm: str) -> None:
    """PyG's LayerNorm (mode 'graph'), GraphNorm and InstanceNorm normalise per graph of ``batch``; the stack
    called them without it, so they normalised over the whole batch and a graph's output depended on the
    other graphs batched with it."""
    torch.manual_seed(0)
    ours = GNN("gcn", in_channels=4, hidden_channels=8, out_channels=3, num_layers=3, norm=norm).eval()
    reference = GCN(4, 8, 3, out_channels=3, norm=norm).eval()
    reference.load_state_dict(ours.state_dict())
    torch.testing.assert_close(ours(X, EDGES, batch=BATCH), reference(X, EDGES, batch=BATCH))
    # the first graph alone gives its rows of the batched output
    alone = ours(X[:4], EDGES[:, EDGES[0] < 4])
    torch.testing.assert_close(ours(X, EDGES, batch=BATCH)[:4], alone)


def test_graph_gnn_output_does_not_depend_on_the_other_graphs_of_the_batch() -> None:
    torch.manual_seed(0)
    model = graphdl.models.create("graph_gnn", layer="gin", in_channels=4, hidden_channels=8, out_channels=2,
                                  norm="layer").eval()
    both = model(X, EDGES, batch=BATCH)
    first = model(X[:4], EDGES[:, EDGES[0] < 4])
    torch.testing.assert_close(both[:1], first)


def _ogb_node_forward(gnn_node: torch.nn.Module, data: Batch, residual: bool) -> torch.Tensor:
    """OGB's ``GNN_node_Virtualnode.forward`` (examples/graphproppred/mol/conv.py) with its ``residual`` option,
    run on the reference's modules."""
    x, edge_index, edge_attr, batch = data.x, data.edge_index, data.edge_attr, data.batch
    vn = gnn_node.virtualnode_embedding(torch.zeros(int(batch[-1]) + 1, dtype=edge_index.dtype))
    h_list = [gnn_node.atom_encoder(x)]
    for layer in range(gnn_node.num_layer):
        h_list[layer] = h_list[layer] + vn[batch]
        h = gnn_node.batch_norms[layer](gnn_node.convs[layer](h_list[layer], edge_index, edge_attr))
        if layer == gnn_node.num_layer - 1:
            h = F.dropout(h, gnn_node.drop_ratio, training=gnn_node.training)
        else:
            h = F.dropout(F.relu(h), gnn_node.drop_ratio, training=gnn_node.training)
        if residual:
            h = h + h_list[layer]
        h_list.append(h)
        if layer < gnn_node.num_layer - 1:
            temp = global_add_pool(h_list[layer], batch) + vn
            update = F.dropout(gnn_node.mlp_virtualnode_list[layer](temp), gnn_node.drop_ratio,
                               training=gnn_node.training)
            vn = vn + update if residual else update
    return h_list[-1]


def test_ogb_mol_residual_with_a_virtual_node_matches_ogb() -> None:
    """OGB's residual option also makes the virtual node's update residual (V <- V + drop(MLP(...)));
    the stack replaced V by the update, so ogb_mol(residual=True, virtual_node=True) computed another function."""
    torch.manual_seed(0)
    data = _molecules()
    official = ReferenceOGBMol(num_tasks=2, gnn_type="gin", virtual_node=True, emb_dim=16, num_layer=3)
    ours = ogb_mol(num_tasks=2, layer="gin", virtual_node=True, hidden_channels=16, num_layers=3, residual=True)
    load_reference_into(ours, official)
    for training in (False, True):
        official.train(training), ours.train(training)
        torch.manual_seed(1)
        expected = official.graph_pred_linear(global_mean_pool(_ogb_node_forward(official.gnn_node, data, True),
                                                               data.batch))
        torch.manual_seed(1)
        got = ours(data.x, data.edge_index, data.edge_attr, batch=data.batch)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_graph_gnn_reset_parameters_resets_a_configured_pooling() -> None:
    """Set2Set's LSTM is trained; reset_parameters left it as trained."""
    torch.manual_seed(0)
    model = graphdl.models.create("graph_gnn", layer="gcn", in_channels=4, hidden_channels=8, out_channels=2,
                                  pool=aggr.Set2Set(8, processing_steps=2))
    with torch.no_grad():
        for p in model.pool.parameters():
            p.fill_(0.5)
    model.reset_parameters()
    assert all(not torch.all(p == 0.5) for p in model.pool.parameters())


@pytest.mark.parametrize("kwargs,message", [
    ({"num_layers": 2.5}, r"^gnn's num_layers must be an int >= 1, got 2.5$"),
    ({"num_layers": True}, r"^gnn's num_layers must be an int >= 1, got True$"),
    ({"dropout": "0.5"}, r"^dropout must lie in \[0, 1\), got dropout='0.5'"),
    ({"in_channels": None, "num_nodes": 0}, r"^gnn's num_nodes must be an int >= 1, got 0$"),
])
def test_gnn_settings_of_the_wrong_type_are_named(kwargs, message) -> None:
    """Before: TypeErrors from range() or a comparison, a one-layer stack for num_layers=True, an empty
    embedding table for num_nodes=0."""
    with pytest.raises(ConfigError, match=message):
        GNN("gcn", **{"in_channels": 4, "hidden_channels": 8, **kwargs})


def test_a_gat_heads_count_that_is_not_an_int_is_named() -> None:
    """Before: 'empty() takes 1 positional argument but 2 were given' from inside GATConv."""
    with pytest.raises(ValidationError, match=r"^gat: heads must be an int >= 1, got 2.0$"):
        graphdl.layers.create("gat", 4, 8, heads=2.0)


def test_an_mlp_decoder_needs_one_layer_or_more() -> None:
    """num_layers=0 (or -3) built a one-layer decoder silently."""
    for bad in (0, -3):
        with pytest.raises(ConfigError, match=rf"^MLPDecoder's num_layers must be an int >= 1, got {bad}$"):
            MLPDecoder(8, num_layers=bad)
    assert len(MLPDecoder(8, num_layers=1).lins) == 1


def test_an_edge_encoder_beside_a_layer_without_edge_features_is_refused() -> None:
    """gcn never receives edge_attr, so the encoders were built, counted and never trained (and DDP stops on
    parameters that get no gradient); gat without edge_dim was already refused."""
    with pytest.raises(ConfigError, match=r"^the gcn layers take no edge features \(edge_attr\), so the edge_encoder "
                                          r"would never be called; leave it out"):
        GNN("gcn", in_channels=4, hidden_channels=8, edge_encoder=lambda: torch.nn.Linear(3, 8))
    model = GNN("gine", in_channels=8, hidden_channels=8, edge_dim=8, edge_encoder=lambda: torch.nn.Linear(3, 8))
    out = model(torch.randn(9, 8), EDGES, edge_attr=torch.randn(EDGES.size(1), 3))
    out.sum().backward()
    assert all(e.weight.grad is not None for e in model.edge_encoders)


@pytest.mark.parametrize("K", [0, 1.5])
def test_a_cheb_order_that_is_not_a_positive_int_is_named(K) -> None:
    """Before: a bare AssertionError from ChebConv (K=0), or a TypeError from range() (K=1.5)."""
    with pytest.raises(ValidationError, match=rf"^cheb: K \(the Chebyshev polynomial order, K hops\) must be an int "
                                              rf">= 1, got {K}$"):
        graphdl.layers.create("cheb", 4, 8, K=K)
    assert len(graphdl.layers.create("cheb", 4, 8, K=1).lins) == 1


@pytest.mark.parametrize("layer", ["gin", "gine", "edgeconv", "ogb_gin"])
def test_a_zero_hidden_width_is_refused_not_replaced_by_the_default(layer) -> None:
    """hidden_channels=0 fell back to the default width (``hidden or default``) without a word."""
    with pytest.raises(ConfigError, match=rf"^{layer}'s hidden_channels must be an int >= 1, got 0$"):
        graphdl.layers.create(layer, in_channels=4, out_channels=8, hidden_channels=0)
    conv = graphdl.layers.create(layer, in_channels=4, out_channels=8, hidden_channels=5)
    assert 5 in {m.out_features for m in conv.modules() if isinstance(m, torch.nn.Linear)}


@pytest.mark.parametrize("kwargs, message", [
    ({"num_layers": 1}, "ogb_mol's num_layers must be an int >= 2, got 1"),
    ({"num_layers": "3"}, "ogb_mol's num_layers must be an int >= 2, got '3'"),  # a TypeError from '<' before
    ({"layer": None}, "ogb_mol's layer must be a registered layer name ('gin', 'gcn', ...), got NoneType None"),
])
def test_ogb_mol_names_settings_of_the_wrong_type(kwargs, message) -> None:
    from graphdl.models.ogb_mol import ogb_mol

    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        ogb_mol(2, **kwargs)
