import pytest
import torch
from torch_geometric.nn import GATConv, GCNConv

import graphdl
from graphdl.testing import general_layers
from graphdl.errors import ConfigError, ValidationError
from graphdl.testing import LAYER_CHECKS, check_layer, random_graph

REQUIRED = {"gcn", "sage", "gat", "gatv2", "gin", "gine", "graphconv", "transformer", "cheb", "edgeconv"}


def test_required_layers_are_registered():
    assert REQUIRED <= set(graphdl.layers.list())


@pytest.mark.parametrize("check", list(LAYER_CHECKS))
@pytest.mark.parametrize("name", general_layers())
def test_every_registered_layer_conforms(name, check):
    check_layer(name, checks=(check,))


def test_scratch_gcn_equals_pyg_gcnconv_with_and_without_weights():
    g = random_graph(num_nodes=30, num_edges=120, in_channels=5)
    torch.manual_seed(0)
    ref = GCNConv(5, 7)
    ours = graphdl.layers.create("gcn_scratch", 5, 7)
    ours.load_state_dict({"weight": ref.lin.weight.detach().t(), "bias": ref.bias.detach()})
    for w in (None, g["edge_weight"]):
        x1 = g["x"].clone().requires_grad_()
        x2 = g["x"].clone().requires_grad_()
        a, b = ref(x1, g["edge_index"], w), ours(x2, g["edge_index"], w)
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
        a.sum().backward()
        b.sum().backward()
        torch.testing.assert_close(x1.grad, x2.grad, atol=1e-6, rtol=1e-5)


def test_created_layers_are_the_pyg_modules():
    conv = graphdl.layers.create("gat", 8, 64, heads=8)
    assert isinstance(conv, GATConv) and conv.heads == 8 and conv.out_channels == 8
    assert graphdl.layers.entry("gat").meta == {"edge_attr": True}
    assert graphdl.layers.entry("gcn").meta == {"edge_weight": True}


def test_heads_must_divide_out_channels():
    with pytest.raises(ValidationError, match=r"gat: out_channels=10 is not divisible by heads=3"):
        graphdl.layers.create("gat", 8, 10, heads=3)


def test_check_layer_catches_a_layer_that_is_not_equivariant():
    class Leaky(torch.nn.Module):
        """Adds a position-dependent term: breaks permutation equivariance."""

        def __init__(self, in_channels, out_channels):
            super().__init__()
            self.lin = torch.nn.Linear(in_channels, out_channels)

        def reset_parameters(self):
            self.lin.reset_parameters()

        def forward(self, x, edge_index):
            return self.lin(x) + torch.arange(x.size(0)).unsqueeze(-1)

    with pytest.raises(AssertionError, match="fails the permutation equivariance check"):
        check_layer(Leaky)
    check_layer(Leaky, checks=("shape", "reset_parameters", "state_dict", "gradients"))


def test_check_layer_catches_a_division_by_a_degree_of_zero():
    class NaiveMeanConv(torch.nn.Module):
        """Mean over in-neighbours, dividing by the in-degree unguarded: 0/0 for a node without edges."""

        def __init__(self, in_channels, out_channels):
            super().__init__()
            self.in_channels = in_channels
            self.lin = torch.nn.Linear(in_channels, out_channels)

        def reset_parameters(self):
            self.lin.reset_parameters()

        def forward(self, x, edge_index):
            src, dst = edge_index
            total = torch.zeros_like(x).index_add_(0, dst, x[src])
            degree = torch.zeros(x.size(0)).index_add_(0, dst, torch.ones(dst.numel()))
            return self.lin(total / degree.unsqueeze(-1))

    with pytest.raises(AssertionError, match=r"^layer 'NaiveMeanConv' fails the degenerate graphs check: nodes "
                                             r"without edges: NaN or inf in the outputs of nodes \[.*\] \(a "
                                             r"division by a degree of 0\?\)$"):
        check_layer(NaiveMeanConv, checks=("degenerate_graphs",))


def test_check_layer_reports_a_layer_it_cannot_call_as_a_failed_check():
    with pytest.raises(AssertionError, match=r"^layer 'Linear' fails the shape check: TypeError: Linear.forward\(\) "
                                             r"takes 2 positional arguments but 3 were given \(a layer is built as "
                                             r"layer\(in_channels, out_channels, \*\*kwargs\) and called as "
                                             r"layer\(x, edge_index, \.\.\.\)\)$"):
        check_layer(torch.nn.Linear)
    with pytest.raises(ValueError, match=r"^unknown check 'shapes'; the checks are shape, permutation"):
        check_layer("gcn", checks=("shapes",))


@pytest.mark.parametrize("in_channels,out_channels,bad", [
    (0, 16, "in_channels"), (8.0, 16, "in_channels"), (None, 16, "in_channels"), (-3, 16, "in_channels"),
    (8, 0, "out_channels"), (8, -1, "out_channels"), (8, None, "out_channels"), (True, 16, "in_channels")])
@pytest.mark.parametrize("name", ["gcn", "gin", "sage", "gcn_scratch", "ogb_gin", "grid_conv"])
def test_widths_are_checked_before_the_layer_is_built(name, in_channels, out_channels, bad):
    # torch builds zero-width weights for 0 without a word and fails deep inside for the rest
    with pytest.raises(ConfigError, match=rf"^layer '{name}': {bad} must be an int >= 1"):
        graphdl.layers.create(name, in_channels, out_channels)


def test_out_channels_none_is_kept_for_layers_that_default_to_it():
    assert graphdl.layers.create("grid_pool", 8, None).in_channels == 8
    assert graphdl.layers.create("complete_mha", 8, None).out_channels == 8


@pytest.mark.parametrize("name", ["gin", "edgeconv", "gine"])
def test_mlp_layers_infer_their_input_width_when_lazy(name):
    # in_channels=-1 used to fail with "negative dimension" while PyG's own layers accept it
    g = random_graph(num_nodes=12, num_edges=40, in_channels=5)
    args = (g["x"], g["edge_index"]) + ((torch.randn(g["edge_index"].size(1), 5),) if name == "gine" else ())
    torch.manual_seed(0)
    lazy = graphdl.layers.create(name, -1, 6).eval()
    out = lazy(*args)
    torch.manual_seed(0)
    eager = graphdl.layers.create(name, 5, 6).eval()
    eager.load_state_dict(lazy.state_dict())
    torch.testing.assert_close(out, eager(*args))


def test_layers_that_cannot_be_lazy_say_so():
    with pytest.raises(ConfigError, match=r"^layer 'gcn_scratch' cannot infer its input width \(in_channels=-1\): "
                                          r".*; give it the number of input features$"):
        graphdl.layers.create("gcn_scratch", -1, 16)
    with pytest.raises(ConfigError, match=r"^gine: with edge_dim the edge features are mapped to the node width"):
        graphdl.layers.create("gine", -1, 16, edge_dim=3)


def test_sparse_adjacency_is_refused_by_layers_that_only_take_an_edge_index():
    from torch_geometric.utils import to_torch_csr_tensor

    g = random_graph(num_nodes=12, num_edges=40, in_channels=5)
    adj_t = to_torch_csr_tensor(g["edge_index"].flip(0), size=(12, 12))  # row i: the sources of node i
    for name, kwargs in (("cheb", {"K": 2}), ("gcn_scratch", {})):  # torch: NotImplementedError for SparseCPU
        with pytest.raises(ValidationError, match=r"takes edge_index as a \(2, num_edges\) index tensor, not a "
                                                  r"sparse adjacency matrix; convert it with "
                                                  r"torch_geometric.utils.to_edge_index\(adj\)"):
            graphdl.layers.create(name, 5, 8, **kwargs)(g["x"], adj_t)
    # layers that take one (PyG's Adj) still do, with the edge_index result
    conv = graphdl.layers.create("gcn", 5, 8)
    torch.testing.assert_close(conv(g["x"], adj_t), conv(g["x"], g["edge_index"]), atol=1e-6, rtol=1e-5)


def test_width_checks_leave_plugins_with_other_argument_names_alone():
    from torch import nn

    class Gate(nn.Module):  # its second argument is no width
        def __init__(self, channels, mode):
            super().__init__()
            self.channels, self.mode = channels, mode

        def forward(self, x, edge_index):
            return x

    graphdl.layers.register("gate_plugin_test", Gate)
    try:
        assert graphdl.layers.create("gate_plugin_test", 16, "max").mode == "max"
    finally:
        graphdl.layers.unregister("gate_plugin_test")


def test_layers_that_need_edge_features_name_their_absence():
    # torch failed with "linear(): argument 'input' must be Tensor, not NoneType" (gine with edge_dim) or a
    # TypeError on None (ogb convs)
    g = random_graph(num_nodes=12, num_edges=40, in_channels=5)
    for name in ("gine", "ogb_gin", "ogb_gcn"):
        assert graphdl.layers.entry(name).meta["edge_attr"] == "required"
        with pytest.raises(ValidationError, match=r"adds edge features to every message; pass edge_attr"):
            graphdl.layers.create(name, 5, 8)(g["x"], g["edge_index"])
    model = graphdl.models.create("gnn", layer="gine", in_channels=5, hidden_channels=8, out_channels=3,
                                  edge_dim=4)
    with pytest.raises(ValidationError, match=r"^GNN: its gine layers add edge features to every message; give "
                                              r"edge_attr \(data.edge_attr\)"):
        model(g["x"], g["edge_index"])
    assert model(g["x"], g["edge_index"], edge_attr=torch.randn(g["edge_index"].size(1), 4)).shape == (12, 3)
    # layers that take edge features optionally still run without them
    assert graphdl.layers.create("gat", 5, 8, edge_dim=4)(g["x"], g["edge_index"]).shape == (12, 8)
