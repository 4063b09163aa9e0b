"""The GNN models' options: pooling by name or module, and the errors for options they cannot build."""

import re

import pytest
import torch
from torch_geometric.nn import aggr

import graphdl
from graphdl.errors import ConfigError, ValidationError

X = torch.randn(10, 4)
EDGES = torch.tensor([[0, 1, 2, 3, 5, 6], [1, 2, 3, 4, 6, 7]])
BATCH = torch.tensor([0] * 5 + [1] * 5)


def graph_gnn(**kwargs):
    return graphdl.models.create("graph_gnn", **{"layer": "gin", "in_channels": 4, "hidden_channels": 8,
                                                 "out_channels": 2, **kwargs})


def test_a_configured_pooling_module_sets_the_head_width():
    """Set2Set doubles the width it pools; the head takes what comes out (before: only names, and set2set
    failed with a TypeError inside PyG's resolver)."""
    torch.manual_seed(0)
    model = graph_gnn(pool=aggr.Set2Set(8, processing_steps=3)).eval()
    assert model.head.in_features == 16
    with torch.no_grad():
        h = model.encoder(X, EDGES)
        torch.testing.assert_close(model(X, EDGES, batch=BATCH), model.head(model.pool(h, BATCH)))
    assert graph_gnn(pool="add").head.in_features == 8 and isinstance(graph_gnn(pool="add").pool, aggr.SumAggregation)


@pytest.mark.parametrize("kwargs,message", [
    ({"pool": "set2set"}, r"^pooling 'set2set' needs constructor arguments \(Set2Set.__init__\(\) missing 2 required "
                          r"positional arguments: 'in_channels' and 'processing_steps'\); pass the configured module, "
                          r"e.g. pool=torch_geometric.nn.aggr.Set2Set\(hidden_channels, processing_steps=3\)$"),
    ({"pool": "meen"}, r"^unknown pooling 'meen'\. Did you mean 'mean'"),
    ({"pool": aggr.Set2Set(5, 2)}, r"^the pooling module Set2Set\(5, 10\) cannot pool 8-wide node features"),
    ({"activation": "rellu"}, r"^unknown activation 'rellu'\. Did you mean 'relu'"),
    ({"norm": "batchh"}, r"^unknown norm 'batchh'\. Did you mean 'batch'"),
    ({"hidden_channels": 0}, r"^hidden_channels must be an int >= 1, got 0$"),
    ({"in_channels": 2.5}, r"^in_channels must be an int >= 1 \(or -1 for lazy initialisation\), got 2.5$"),
])
def test_options_the_model_cannot_build_are_named(kwargs, message):
    """Before: PyG's ValueError listing class names, or (hidden_channels=0) a model of width 0."""
    with pytest.raises(ConfigError, match=message):
        graph_gnn(**kwargs)


def test_a_gat_last_layer_that_cannot_split_its_heads_points_to_last_layer_kwargs():
    with pytest.raises(ValidationError, match=r"out_channels=2 is not divisible by heads=4.*\(This is the GNN's last "
                                              r"layer, 8 -> 2; give it arguments of its own with last_layer_kwargs, "
                                              r"e.g. \{'heads': 1\}\.\)$"):
        graphdl.models.create("gnn", layer="gat", in_channels=4, hidden_channels=8, out_channels=2,
                              layer_kwargs={"heads": 4})
    model = graphdl.models.create("gnn", layer="gat", in_channels=4, hidden_channels=8, out_channels=2,
                                  layer_kwargs={"heads": 4}, last_layer_kwargs={"heads": 1})
    assert model(X, EDGES).shape == (10, 2)


@pytest.mark.parametrize("layer", ["grid_conv", "chain_gru", "complete_mha"])
def test_special_graph_layers_are_refused_by_the_gnn_stack(layer):
    # before: grid_conv asked for kernel offsets, chain_gru and complete_mha failed on the edge_index
    with pytest.raises(ConfigError, match=rf"^layer '{layer}' runs on .* not on any edge_index, so a GNN stack "
                                          rf"cannot use it"):
        graphdl.models.create("gnn", layer=layer, in_channels=4, hidden_channels=8, out_channels=2)


def test_a_virtual_node_beside_inputs_of_another_width_is_refused_with_the_fix():
    """It failed in the first layer's sum: 'The size of tensor a (1433) must match the size of tensor b (16)'."""
    with pytest.raises(ConfigError, match=r"^a virtual node is added to the node representations before every "
                                          r"layer, the first included, so the layers' input must be "
                                          r"hidden_channels=16 wide, but in_channels=1433; give a node_encoder "
                                          r"that maps the inputs to hidden_channels \(OGB's AtomEncoder, or "
                                          r"torch.nn.Linear\(1433, 16\)\), or leave virtual_node out$"):
        graphdl.models.create("gnn", layer="gcn", in_channels=1433, hidden_channels=16, out_channels=7,
                              virtual_node=True)
    model = graphdl.models.create("gnn", layer="gcn", in_channels=1433, hidden_channels=16, out_channels=7,
                                  virtual_node=True, node_encoder=torch.nn.Linear(1433, 16))
    x, edge_index = torch.randn(5, 1433), torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    assert model.eval()(x, edge_index).shape == (5, 7)
    # training on one graph failed inside torch: 'Expected more than 1 value per channel when training'
    with pytest.raises(ValidationError, match=r"^the virtual node's MLP normalises over the graphs of a batch "
                                              r"\(BatchNorm, as in OGB's examples\), so it trains on batches of two "
                                              r"or more graphs, but this batch is one graph"):
        model.train()(x, edge_index)
    assert model(x, edge_index, batch=torch.tensor([0, 0, 1, 1, 1])).shape == (5, 7)


def test_an_edge_encoder_that_is_not_a_factory_is_named():
    """A string failed with "'str' object is not callable"; a module instance was called with no input."""
    for given, shown in (("x", "str 'x'"), (torch.nn.Linear(3, 8), "Linear Linear(in_features=3")):
        with pytest.raises(ConfigError, match=r"^edge_encoder must be a factory that builds one edge encoder per "
                                              r"layer, e.g. lambda: BondEncoder\(hidden_channels\), got "
                                              + re.escape(shown)):
            graphdl.models.create("gnn", layer="gine", in_channels=8, hidden_channels=8, edge_encoder=given)


def test_a_batch_vector_given_as_graph_gnns_third_argument_is_named():
    """PyG's model(x, edge_index, batch): graph_gnn's third argument is edge_attr, which a gcn stack ignored (one
    output row for every graph together) or which failed an edge-count check naming edge_attr."""
    x, edge_index = torch.randn(6, 4), torch.tensor([[0, 1, 3, 4, 4, 5], [1, 2, 4, 5, 3, 4]])
    batch = torch.tensor([0, 0, 0, 1, 1, 1])
    model = graphdl.models.create("graph_gnn", layer="gcn", in_channels=4, hidden_channels=8, out_channels=2)
    with pytest.raises(ValidationError, match=r"^graph_gnn's third argument is edge_attr, but it got a 1-D integer "
                                              r"tensor with one entry per node, PyG's batch vector; pass it as "
                                              r"batch=\.\.\."):
        model(x, edge_index, batch)
    assert model(x, edge_index, batch=batch).shape == (2, 2)
