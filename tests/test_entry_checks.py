"""Layers built by graphdl.layers.create and GNN-based models check every call's inputs: bad input
raises a ValidationError that names the owner and the argument; the Trainer skips the value scans
after Task.setup has done them once."""

import pytest
import torch
from torch_geometric.data import Data

import graphdl
from graphdl import validate
from graphdl.errors import ConfigError, ValidationError
from graphdl.models.gnn import GNN, GraphGNN, LinkGNN
from graphdl.train import Trainer

EDGES = torch.tensor([[0, 1, 2], [1, 2, 3]])


def _x(n=5, f=16):
    return torch.randn(n, f, generator=torch.Generator().manual_seed(0))


BAD_GCN_CALLS = {
    "width": ((_x(5, 7), EDGES),
              "GCNConv: x has 7 features per node but in_channels=16; build it with in_channels=7 or give it "
              "16 features"),
    "integer x": ((torch.ones(5, 16, dtype=torch.long), EDGES),
                  "GCNConv: x has dtype torch.int64 but float features are expected; use x.float(), or an "
                  "encoder (e.g. AtomEncoder) for category ids"),
    "1-d x": ((torch.randn(5), EDGES),
              "GCNConv: x must have shape (num_nodes, num_features), got (5,); a 1-d feature becomes one with "
              ".unsqueeze(-1)"),
    "float64 x": ((_x().double(), EDGES),
                  "GCNConv: x has dtype torch.float64 but the parameters are torch.float32; convert with "
                  "x.to(torch.float32) or the module with .to(torch.float64)"),
    "NaN": ((_x().index_fill(0, torch.tensor([1, 3]), float("nan")), EDGES),
            "GCNConv: x holds NaN or infinite values in 2 rows; impute or drop them"),
    "index too large": ((_x(), torch.tensor([[0, 9], [1, 2]])),
                        "GCNConv: edge_index holds node indices in [0, 9] but the graph has 5 nodes (valid "
                        "indices: 0..4); remove or remap those edges"),
    "negative index": ((_x(), torch.tensor([[0, -1], [1, 2]])),
                       "GCNConv: edge_index holds node indices in [-1, 2] but the graph has 5 nodes (valid "
                       "indices: 0..4); remove or remap those edges"),
    "edge list": ((_x(), EDGES.t()),
                  "GCNConv: edge_index must have shape (2, num_edges), got (3, 2); a (num_edges, 2) edge list "
                  "becomes one with .t().contiguous()"),
    "float edge_index": ((_x(), EDGES.float()),
                         "GCNConv: edge_index must have dtype torch.long, got torch.float32; use .long()"),
    "edge_weight length": ((_x(), EDGES, torch.ones(4)),
                           "GCNConv: edge_weight has (4,) rows but edge_index has 3 edges; give one edge_weight row "
                           "per edge"),
    "edge_weight NaN": ((_x(), EDGES, torch.tensor([1.0, float("inf"), 1.0])),
                        "GCNConv: edge_weight holds NaN or infinite values; impute or drop those edges"),
    "devices": ((_x(), EDGES.to("meta")),
                "GCNConv: edge_index is on meta but x is on cpu; move the whole graph with data.to(device)"),
    "parameters elsewhere": ((torch.empty(5, 16, device="meta"), EDGES.to("meta")),
                             "GCNConv: the inputs are on meta but the parameters are on cpu; move the graph "
                             "with data.to(device) or the module with .to(device)"),
}


@pytest.mark.parametrize("case", list(BAD_GCN_CALLS))
def test_created_layer_rejects_bad_input_with_exact_message(case):
    args, message = BAD_GCN_CALLS[case]
    conv = graphdl.layers.create("gcn", 16, 32)
    with pytest.raises(ValidationError) as info:
        conv(*args)
    assert str(info.value) == message


def test_keyword_arguments_are_checked_too():
    conv = graphdl.layers.create("gat", 16, 8, edge_dim=2)
    with pytest.raises(ValidationError, match=r"^GATConv: edge_attr has \(2,\) rows but edge_index has 3 edges; "
                                              r"give one edge_attr row per edge$"):
        conv(x=_x(), edge_index=EDGES, edge_attr=torch.randn(2, 2))


def test_bipartite_layers_check_each_side():
    conv = graphdl.layers.create("sage", (16, 8), 4)
    x = (_x(5, 16), torch.randn(3, 8))
    assert conv(x, torch.tensor([[0, 4], [0, 2]])).shape == (3, 4)
    with pytest.raises(ValidationError, match=r"^SAGEConv: edge_index\[1\] holds target node indices in \[0, 3\] "
                                              r"but there are 3 target nodes"):
        conv(x, torch.tensor([[0, 4], [0, 3]]))
    with pytest.raises(ValidationError, match=r"^SAGEConv: x\[1\] has 9 features per node but in_channels=8"):
        conv((x[0], torch.randn(3, 9)), torch.tensor([[0], [0]]))


def test_layers_from_get_are_plain_and_unchecked():
    conv = graphdl.layers.get("gcn")(16, 32)
    assert not conv._forward_pre_hooks
    with pytest.raises(Exception) as info:  # PyG's own error, whatever it is
        conv(_x(5, 7), EDGES)
    assert not isinstance(info.value, ValidationError)


def test_inputs_checked_skips_the_scans_but_not_the_structural_checks():
    conv = graphdl.layers.create("gcn", 16, 32)
    nan_x = _x().index_fill(0, torch.tensor([0]), float("nan"))
    with validate.inputs_checked():
        assert not validate.scans_enabled()
        assert torch.isnan(conv(nan_x, EDGES)).any()  # the caller vouched for the values
        with pytest.raises(ValidationError, match="x has 7 features per node"):
            conv(_x(5, 7), EDGES)
    assert validate.scans_enabled()
    with pytest.raises(ValidationError, match="NaN"):
        conv(nan_x, EDGES)


def test_gnn_models_check_their_inputs():
    gnn = GNN("gat", 16, 32, num_layers=2)
    with pytest.raises(ValidationError, match=r"^GNN: x has 8 features per node but in_channels=16"):
        gnn(_x(5, 8), EDGES)
    with pytest.raises(ValidationError, match=r"^GNN: edge_index holds node indices in \[0, 5\] but the graph "
                                              r"has 5 nodes"):
        gnn(_x(), torch.tensor([[0, 5], [1, 1]]))
    with pytest.raises(ValidationError, match=r"^GNN: batch has 3 entries but there are 5 nodes"):
        gnn(_x(), EDGES, batch=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValidationError, match=r"^GNN: the graph has no node features \(x is None\); build the model "
                                              r"with in_channels=None and num_nodes=<number of nodes> to learn one "
                                              r"embedding per node"):
        gnn(None, EDGES)
    # graphs in a batch: an embedding per node cannot carry over from graph to graph
    with pytest.raises(ValidationError, match=r"^GNN: the graph has no node features \(x is None\); give the "
                                              r"graphs features, e.g. with the transform "
                                              r"torch_geometric.transforms.OneHotDegree\(max_degree\)"):
        gnn(None, EDGES, batch=torch.tensor([0, 0, 0, 1, 1]))
    with pytest.raises(ValidationError, match=r"^GNN: x must be a torch.Tensor of node features"):
        gnn(torch.ones(5, 16).numpy(), EDGES)
    with pytest.raises(ConfigError, match=r"^node_encoder must be a torch.nn.Module mapping node inputs to "
                                          r"hidden_channels .* got str 'embedding'; for a learned embedding per node "
                                          r"give in_channels=None and num_nodes$"):
        GNN("gcn", 16, 32, node_encoder="embedding")

    graph = GraphGNN(2, layer="gin", in_channels=16, hidden_channels=8)
    with pytest.raises(ValidationError, match="x has 3 features per node but in_channels=16"):
        graph(_x(5, 3), EDGES)

    link = LinkGNN(layer="sage", in_channels=16, hidden_channels=8)
    z = link(_x(), EDGES)
    with pytest.raises(ValidationError, match=r"^LinkGNN: pairs holds node indices in \[0, 7\] but the graph "
                                              r"has 5 nodes"):
        link.decode(z, torch.tensor([[0, 7], [1, 1]]))

    featureless = GNN("sage", None, 8, num_nodes=10)
    assert featureless(None, torch.tensor([[0, 9], [9, 0]])).shape == (10, 8)
    with pytest.raises(ValidationError, match=r"^GNN: n_id indices must lie in \[0, 9\], got \[0, 10\]"):
        featureless(None, torch.tensor([[0], [1]]), n_id=torch.tensor([0, 10]))


class _RecordScans(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)
        self.scans = []

    def forward(self, x, edge_index):
        self.scans.append(validate.scans_enabled())
        return self.lin(x)


def _graph():
    data = Data(x=torch.randn(6, 4), edge_index=torch.tensor([[0, 1], [1, 2]]), y=torch.arange(6) % 3)
    data.train_mask = data.val_mask = torch.ones(6, dtype=torch.bool)
    return data


def test_trainer_scans_once_in_setup_then_trusts_its_batches():
    model = _RecordScans()
    Trainer(model, epochs=2, progress=False, device="cpu").fit(_graph())
    assert model.scans and not any(model.scans)
    validate.set_debug(True)
    try:
        model = _RecordScans()
        Trainer(model, epochs=1, progress=False, device="cpu").fit(_graph())
    finally:
        validate.set_debug(False)
    assert model.scans and all(model.scans)


def test_trainer_reports_a_model_that_does_not_fit_the_data():
    model = GNN("gcn", 16, 8, out_channels=3)
    with pytest.raises(ValidationError, match=r"^GNN: x has 4 features per node but in_channels=16; build it "
                                              r"with in_channels=4"):
        Trainer(model, epochs=1, progress=False, device="cpu").fit(_graph())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("bad", [None, float("nan"), float("inf"), float("-inf")])
def test_all_finite_agrees_with_isfinite(dtype, bad):
    t = torch.randn(7, 5).to(dtype)
    if bad is not None:
        t[3, 2] = bad
    assert validate.all_finite(t) == bool(torch.isfinite(t).all())
    assert validate.all_finite(t[:0]) and validate.all_finite(torch.arange(4))
