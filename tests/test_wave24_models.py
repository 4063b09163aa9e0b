"""GNN model factories and their layers: bool switches taken by truthiness, node features of more than 2 dims
(PyG's static graphs) given to layers and models that cannot take them, and GNN stacks of gin, sage and gat
against PyG's ``BasicGNN`` models with the same weights."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch_geometric.nn.models import GAT, GIN, GraphSAGE

import graphdl
from graphdl.errors import ConfigError, ValidationError
from graphdl.models.gnn import GNN, MLPDecoder
from graphdl.models.ogb_mol import ogb_mol, parse_ogb_model

X = torch.randn(9, 4, generator=torch.Generator().manual_seed(0))
_E = torch.tensor([[0, 1, 2, 3, 5, 6, 7], [1, 2, 3, 0, 6, 7, 8]])
EDGES = torch.cat([_E, _E.flip(0)], dim=1)
RING = torch.tensor([[0, 1, 2, 3, 1, 2, 3, 0], [1, 2, 3, 0, 0, 1, 2, 3]])


# --- bool switches -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("model, kwargs, flag, value", [
    ("gnn", {"in_channels": 8}, "virtual_node", "no"),
    ("gnn", {"in_channels": 8}, "residual", 0.5),
    ("gnn", {"in_channels": 8}, "plain_last", "False"),
    ("gnn", {"in_channels": 8}, "decay_first_layer_only", 1),
    ("graph_gnn", {"in_channels": 8, "out_channels": 2}, "virtual_node", "yes"),
    ("link_gnn", {"in_channels": 8}, "residual", "no"),
])
def test_bool_flags_of_the_gnn_factories_must_be_bools(model, kwargs, flag, value) -> None:
    """Before: taken by truthiness, so a config's virtual_node='no' built a virtual node without a word."""
    with pytest.raises(ConfigError, match=f"^gnn's {flag} must be a bool \\(True or False\\), got "
                                          f"{type(value).__name__} {re.escape(repr(value))}$"):
        graphdl.models.create(model, hidden_channels=8, **kwargs, **{flag: value})


@pytest.mark.parametrize("flag, value", [("virtual_node", "no"), ("residual", 0.5), ("plain_last", None)])
def test_bool_flags_of_ogb_mol_must_be_bools(flag, value) -> None:
    with pytest.raises(ConfigError, match=f"^ogb_mol's {flag} must be a bool \\(True or False\\), got "
                                          f"{type(value).__name__} {re.escape(repr(value))}$"):
        graphdl.models.create("ogb_mol", num_tasks=1, hidden_channels=8, num_layers=2, **{flag: value})


def test_numpy_bools_are_bools() -> None:
    model = ogb_mol(1, hidden_channels=8, num_layers=2, virtual_node=np.False_, residual=np.True_)
    assert model.encoder.virtual_node is None and model.encoder.residual is True
    gnn = graphdl.models.create("gnn", in_channels=8, hidden_channels=8, virtual_node=np.True_)
    assert gnn.virtual_node is not None
    assert graphdl.layers.create("gcn", 4, 8, bias=np.False_).bias is None
    assert graphdl.layers.create("gat", 4, 8, heads=2, concat=np.False_).out_channels == 8


@pytest.mark.parametrize("layer, kwargs", [
    ("gat", {"concat": "no"}), ("gatv2", {"concat": 0.5}), ("transformer", {"concat": "False"}),
    ("gin", {"batch_norm": "no"}), ("gine", {"train_eps": 0.5}), ("ogb_gin", {"train_eps": "no"}),
    ("gcn", {"bias": "no"}), ("gcn", {"add_self_loops": 0.5}), ("sage", {"root_weight": "yes"}),
    ("gatv2", {"share_weights": 1}), ("graphconv", {"bias": "no"}), ("cheb", {"bias": "off"}),
])
def test_bool_switches_of_the_layers_must_be_bools(layer, kwargs) -> None:
    """Before: gat(concat='no') concatenated the heads, gcn(bias='no') learned a bias, and so on."""
    (flag, value), = kwargs.items()
    with pytest.raises(ConfigError, match=f"^{layer}'s {flag} must be a bool \\(True or False\\), got "
                                          f"{type(value).__name__} {re.escape(repr(value))}$"):
        graphdl.layers.create(layer, 4, 8, **kwargs)


def test_an_optional_bool_of_a_pyg_layer_still_takes_none() -> None:
    from torch_geometric.nn import GCNConv

    conv = graphdl.layers.create("gcn", 4, 8, add_self_loops=None)  # GCNConv's Optional[bool]: None follows normalize
    assert conv.add_self_loops == GCNConv(4, 8, add_self_loops=None).add_self_loops


@pytest.mark.parametrize("layer", ["gat", "gatv2", "transformer"])
@pytest.mark.parametrize("p", [1.5, 1.0, "0.5"])
def test_attention_dropout_outside_zero_one_is_refused_when_built(layer, p) -> None:
    """Before: stored as given; 1.5 failed at the first training step, 1.0 dropped every attention weight."""
    with pytest.raises(ConfigError, match=f"^{layer}'s dropout \\(on the attention coefficients\\) must lie in "
                                          f"\\[0, 1\\), got {re.escape(repr(p))}$"):
        graphdl.layers.create(layer, 4, 8, dropout=p)


def test_other_settings_of_the_wrong_kind_are_named() -> None:
    with pytest.raises(ConfigError, match=r"^the OGB molecule model must be a name \(gcn, gcn-virtual, gin, "
                                          r"gin-virtual\), got NoneType None$"):
        parse_ogb_model(None)  # an AttributeError from None.lower()
    with pytest.raises(ConfigError, match=r"^MLPDecoder's hidden_channels must be an int >= 1, got 0$"):
        MLPDecoder(8, hidden_channels=0)  # fell back to 8 without a word
    assert MLPDecoder(8, hidden_channels=5).lins[0].out_features == 5


# --- node features of more than 2 dims ----------------------------------------------------------------------------

_TAIL = ("Batch the graphs into one (torch_geometric.data.Batch.from_data_list) with x of shape (num_nodes, "
         "num_features), or use a layer that takes a static-graph batch (batch, num_nodes, num_features) over one "
         "edge_index: gcn, sage, graphconv, cheb, edgeconv or gcn_scratch")
_NO_STATIC = "it has no static-graph form (one set of attention coefficients per edge)"
_BATCH_NORM = ("the BatchNorm1d of its MLP takes (num_nodes, channels) only; build it with batch_norm=False to run "
               "it on a static-graph batch")


def _ogb_edges(num_edges: int) -> torch.Tensor:
    return torch.zeros(num_edges, 3, dtype=torch.long)


@pytest.mark.parametrize("layer, cls, why, edge_attr", [
    ("gat", "GATConv", _NO_STATIC, None),  # a bare AssertionError from PyG
    ("gatv2", "GATv2Conv", _NO_STATIC, None),
    ("transformer", "TransformerConv", _NO_STATIC, None),  # "The size of tensor a (6) must match ..."
    ("gin", "GINConv", _BATCH_NORM, None),  # "running_mean should contain 3 elements not 8"
    ("gine", "GINEConv", _BATCH_NORM, torch.randn(8, 4)),
    ("ogb_gin", "OGBGINConv", "OGB's convs take no static-graph batch", _ogb_edges(8)),
    ("ogb_gcn", "OGBGCNConv", "OGB's convs take no static-graph batch", _ogb_edges(8)),  # an index out of bounds
])
def test_static_graph_x_is_refused_by_layers_without_that_form(layer, cls, why, edge_attr) -> None:
    conv = graphdl.layers.create(layer, 4, 8)
    x = torch.randn(2, 4, 4)
    message = f"{cls}: x must have shape (num_nodes, num_features), got (2, 4, 4); {why}. {_TAIL}"
    with pytest.raises(ValidationError, match=f"^{re.escape(message)}$"):
        conv(x, RING) if edge_attr is None else conv(x, RING, edge_attr=edge_attr)
    if layer in ("gat", "gatv2"):  # a bipartite pair is checked part by part
        with pytest.raises(ValidationError, match=re.escape("got (2, 4, 4)")):
            conv((x, x), RING)


def test_gin_batch_norm_no_longer_normalises_the_node_axis_of_a_static_graph() -> None:
    """With as many nodes as hidden channels the MLP's BatchNorm1d took the nodes as channels and ran silently."""
    conv = graphdl.layers.create("gin", 4, 8)
    with pytest.raises(ValidationError, match=re.escape(_BATCH_NORM)):
        conv(torch.randn(2, 8, 4), torch.tensor([[0, 1, 2], [1, 2, 0]]))


@pytest.mark.parametrize("layer, kwargs", [("gcn", {}), ("sage", {}), ("graphconv", {}), ("edgeconv", {}),
                                           ("gin", {"batch_norm": False}), ("gine", {"batch_norm": False}),
                                           ("gcn_scratch", {})])  # it failed inside on "index 3 is out of bounds"
def test_layers_with_a_static_graph_form_still_take_it(layer, kwargs) -> None:
    torch.manual_seed(0)
    conv = graphdl.layers.create(layer, 4, 8, **kwargs).eval()
    x = torch.randn(3, 4, 4)
    extra = {"edge_attr": torch.randn(RING.size(1), 4)} if layer == "gine" else {}
    torch.testing.assert_close(conv(x, RING, **extra), torch.stack([conv(g, RING, **extra) for g in x]))


def test_a_gnn_refuses_a_static_graph_batch_its_norm_or_virtual_node_would_mix() -> None:
    """PyG's graph-mode LayerNorm normalised over all graphs of the static batch (0.52 off the per-graph output),
    BatchNorm took the nodes as channels, the virtual node failed inside torch."""
    x = torch.randn(2, 4, 8)
    for kwargs, why in [({"norm": "layer"}, "its norm LayerNorm normalises (num_nodes, channels) rows, not a "
                                            "static-graph batch (batch, num_nodes, features); build it with norm=None"),
                        ({"norm": "batch"}, "its norm BatchNorm normalises"),
                        ({"virtual_node": True}, "its virtual node takes one graph index per node (batch); build "
                                                 "it without virtual_node")]:
        model = GNN("gcn", in_channels=8, hidden_channels=8, **kwargs).eval()
        with pytest.raises(ValidationError, match="^" + re.escape(f"GNN: x must have shape (num_nodes, "
                                                                  f"num_features), got (2, 4, 8); {why}")):
            model(x, RING)
    for norm in (None, torch.nn.LayerNorm(8)):  # per-node: a static batch is each graph on its own
        model = GNN("gcn", in_channels=8, hidden_channels=8, norm=norm, jk="cat").eval()
        torch.testing.assert_close(model(x, RING), torch.stack([model(g, RING) for g in x]))


def test_graph_gnn_refuses_a_static_graph_batch() -> None:
    """Before: with as many graphs as nodes it pooled into a (4, 1, 2) output without a word; otherwise it named the
    batch vector it had built itself ("batch has 2 entries but there are 4 nodes")."""
    model = graphdl.models.create("graph_gnn", layer="gcn", in_channels=4, hidden_channels=8, out_channels=2).eval()
    for shape in ((4, 4, 4), (2, 4, 4)):
        with pytest.raises(ValidationError, match="^" + re.escape(f"graph_gnn: x must have shape (num_nodes, "
                                                                  f"num_features), got {shape}; it pools")):
            model(torch.randn(shape), RING)


# --- against PyG's BasicGNN ---------------------------------------------------------------------------------------

def _pyg_key(key: str) -> str:
    """graphdl's gin MLP (Sequential: Linear, BatchNorm1d, ReLU, Linear) as PyG's MLP names it."""
    key = key.replace("jk_linear", "lin")
    for ours, theirs in ((".nn.0.", ".nn.lins.0."), (".nn.1.", ".nn.norms.0.module."), (".nn.3.", ".nn.lins.1.")):
        key = key.replace(ours, theirs)
    return key


@pytest.mark.parametrize("jk", ["last", "cat"])
@pytest.mark.parametrize("layer", ["gin", "sage", "gat"])
def test_gin_sage_and_gat_stacks_match_pygs_basic_gnn(layer: str, jk: str) -> None:
    """Outputs (train and eval) and gradients equal to PyG's GIN / GraphSAGE / GAT with norm='batch' and dropout;
    gat with attention dropout and (jk 'last') a head-averaging last layer, as PyG's GAT builds it."""
    torch.manual_seed(0)
    pyg_jk = None if jk == "last" else jk
    common = {"num_layers": 3, "norm": "batch", "jk": jk, "dropout": 0.3}
    if layer == "gin":
        ours = GNN("gin", 4, 8, 3, **common)
        reference = GIN(4, 8, 3, out_channels=3, norm="batch", jk=pyg_jk, dropout=0.3)
    elif layer == "sage":
        ours = GNN("sage", 4, 8, 3, **common)
        reference = GraphSAGE(4, 8, 3, out_channels=3, norm="batch", jk=pyg_jk, dropout=0.3)
    else:
        ours = GNN("gat", 4, 8, 4, layer_kwargs={"heads": 2, "dropout": 0.3},
                   last_layer_kwargs={"concat": False} if jk == "last" else None, **common)
        reference = GAT(4, 8, 3, out_channels=4, norm="batch", jk=pyg_jk, dropout=0.3, heads=2)
    reference.load_state_dict({_pyg_key(k): v for k, v in ours.state_dict().items()})
    for training in (False, True):
        ours.train(training), reference.train(training)
        torch.manual_seed(1)
        got = ours(X, EDGES)
        torch.manual_seed(1)
        torch.testing.assert_close(got, reference(X, EDGES))
    for model in (ours, reference):
        torch.manual_seed(2)
        model(X, EDGES).square().sum().backward()
    grads = {_pyg_key(name): p.grad for name, p in ours.named_parameters()}
    for name, p in reference.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, msg=name)
