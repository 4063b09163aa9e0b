"""Bad arguments given to the public factories (layers, models, losses) and their forwards.

Each case is a likely user mistake that used to end in a bare TypeError/AttributeError/RuntimeError from
inside torch or PyG, or in silently wrong output; each must now raise a graphdl error that names the
argument and the fix.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch_geometric.nn as pygnn

import graphdl
from graphdl.errors import ConfigError, ValidationError
from graphdl.models.anomaly import DominantLoss

warnings.filterwarnings("ignore", category=UserWarning)

L, M, LOSS = graphdl.layers, graphdl.models, graphdl.losses


def _dominant_loss_input(which: str, value: torch.Tensor) -> None:
    torch.manual_seed(0)
    x, x_hat = torch.rand(5, 3), torch.rand(5, 3)
    s, s_hat = (torch.rand(5, 5) > 0.5).float(), torch.rand(5, 5)
    kwargs = {"s": s, "s_hat": s_hat, which: value}
    DominantLoss()(x, x_hat, **kwargs)


def _dominant_batch(batch: torch.Tensor) -> None:
    model = M.create("dominant", in_channels=4).eval()
    x = torch.randn(6, 4)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5], [1, 2, 0, 4, 5, 3]])
    model(x, edge_index, batch=batch)


# (id, call, error class, substrings the message must hold)
CASES = [
    # registry names that are not strings: a bare TypeError from normalize()
    ("gnn-layer-None", lambda: M.create("gnn", layer=None, in_channels=4), ConfigError,
     ["a layer is chosen by its registered name, a str, got None", "graphdl list layers"]),
    ("gnn-layer-class", lambda: M.create("gnn", layer=pygnn.GCNConv, in_channels=4), ConfigError,
     ['graphdl.layers.register("<name>", GCNConv)']),
    ("gae-layer-int", lambda: M.create("gae", in_channels=4, layer=3), ConfigError,
     ["registered name, a str, got int 3"]),
    ("losses-get-None", lambda: LOSS.get(None), ConfigError, ["a loss is chosen by its registered name"]),
    # widths that torch failed on deep inside, or built zero wide
    ("mlp_ae-in-0", lambda: M.create("mlp_ae", in_channels=0), ConfigError,
     ["MLPAutoEncoder's in_channels must be an int >= 1, got 0"]),
    ("mlp_ae-in-float", lambda: M.create("mlp_ae", in_channels=8.0), ConfigError, ["in_channels", "got 8.0"]),
    ("latent_distance-in-None", lambda: M.create("latent_distance", in_channels=None), ConfigError,
     ["in_channels must be an int >= 1, got None"]),
    ("chain_forecaster-out-0", lambda: M.create("chain_forecaster", out_channels=0), ConfigError,
     ["chain_forecaster's out_channels must be an int >= 1, got 0"]),
    ("chain_forecaster-out-None", lambda: M.create("chain_forecaster", out_channels=None), ConfigError,
     ["out_channels", "got None"]),
    ("lenet-in-None", lambda: M.create("lenet_grid", in_channels=None), ConfigError,
     ["lenet_grid's in_channels must be an int >= 1, got None"]),
    ("lenet-in-True", lambda: M.create("lenet_grid", in_channels=True), ConfigError, ["in_channels", "got True"]),
    ("lenet-out-0", lambda: M.create("lenet_grid", out_channels=0), ConfigError, ["out_channels", "got 0"]),
    ("lenet-channels-int", lambda: M.create("lenet_grid", channels=6), ValidationError,
     ["channels must hold the two convolutions' widths", "got 6"]),
    ("lenet-hidden-None", lambda: M.create("lenet_grid", hidden=None), ValidationError,
     ["hidden must be a sequence", "() for none"]),
    ("lenet-dropout-neg", lambda: M.create("lenet_grid", dropout=-1), ValidationError,
     ["dropout must lie in [0, 1), got -1"]),
    ("lenet-dropout-nan", lambda: M.create("lenet_grid", dropout=float("nan")), ValidationError,
     ["dropout must lie in [0, 1), got nan"]),
    ("ogb_mol-hidden-str", lambda: M.create("ogb_mol", num_tasks=1, hidden_channels="300"), ConfigError,
     ["ogb_mol's hidden_channels must be an int >= 1, got '300'"]),
    # containers of arguments
    ("gnn-layer_kwargs-str", lambda: M.create("gnn", in_channels=4, layer_kwargs="heads=2"), ConfigError,
     ["layer_kwargs must be a dict of layer arguments", "got str 'heads=2'"]),
    ("gnn-last_layer_kwargs-int", lambda: M.create("gnn", in_channels=4, last_layer_kwargs=1), ConfigError,
     ["last_layer_kwargs must be a dict"]),
    ("dominant-layer_kwargs-list", lambda: M.create("dominant", in_channels=4, layer_kwargs=[1]), ConfigError,
     ["layer_kwargs must be a dict"]),
    ("gae-encoder-str", lambda: M.create("gae", in_channels=4, encoder="gat"), ConfigError,
     ["encoder must be a torch.nn.Module", "pass layer='gat'"]),
    ("vgae-encoder-int", lambda: M.create("vgae", in_channels=4, encoder=3), ConfigError,
     ["VGAE: encoder must be a torch.nn.Module", "got int 3"]),
    ("link-mlp-dropout-None", lambda: M.create("link_gnn", in_channels=4, decoder="mlp", decoder_dropout=None),
     ConfigError, ["MLPDecoder dropout must lie in [0, 1), got None"]),
    # edge_dim reached PyG's Linear: 'x' and 2.0 failed inside, True built a 1-wide edge map
    ("gat-edge_dim-str", lambda: L.create("gat", 4, 4, edge_dim="3"), ConfigError,
     ["layer 'gat': edge_dim (features per edge) must be an int >= 1", "got '3'"]),
    ("gine-edge_dim-float-positional", lambda: L.create("gine", 4, 4, 3.0), ConfigError, ["edge_dim", "got 3.0"]),
    ("gnn-gatv2-edge_dim-True", lambda: M.create("gnn", layer="gatv2", in_channels=4, edge_dim=True), ConfigError,
     ["edge_dim", "got True"]),
    # losses
    ("kl_div-dim-None", lambda: LOSS.create("kl_div", dim=None), ValidationError,
     ["KLDivLoss: dim must be an int, the class dimension", "got NoneType None"]),
    ("js_div-dim-str", lambda: LOSS.create("js_div", dim="-1"), ValidationError, ["dim must be an int"]),
    ("grace-mixed-dtype", lambda: LOSS.create("grace")(torch.randn(4, 3), torch.randn(4, 3, dtype=torch.float64)),
     ValidationError, ["z1 has dtype torch.float32 but z2 has torch.float64", "z2.to(z1.dtype)"]),
    ("dominant-loss-bool-adjacency", lambda: _dominant_loss_input("s", torch.rand(5, 5) > 0.5), ValidationError,
     ["s must be a floating-point tensor, got torch.bool", "s.float()"]),
    ("dominant-loss-nan-s_hat", lambda: _dominant_loss_input("s_hat", torch.full((5, 5), float("nan"))),
     ValidationError, ["s_hat contains 25 NaN or inf"]),
    ("dominant-loss-list-s_hat", lambda: _dominant_loss_input("s_hat", [[0.0] * 5] * 5), ValidationError,
     ["s_hat must be a torch.Tensor"]),
    # forwards
    ("mlp_ae-nan-x", lambda: M.create("mlp_ae", in_channels=4)(torch.full((3, 4), float("nan"))), ValidationError,
     ["MLPAutoEncoder: x holds NaN or infinite values in 3 rows"]),
    ("latent_distance-inf-x",
     lambda: M.create("latent_distance", in_channels=4)(torch.tensor([[float("inf"), 0, 0, 0], [0.0, 0, 0, 0]]),
                                                        torch.zeros(2, 0, dtype=torch.long)),
     ValidationError, ["LatentDistanceDetector: x holds NaN or infinite values in 1 rows"]),
    ("dominant-batch-short", lambda: _dominant_batch(torch.tensor([0, 0, 0, 1, 1])), ValidationError,
     ["DOMINANT: batch has 5 entries but there are 6 nodes"]),
    ("dominant-batch-float", lambda: _dominant_batch(torch.tensor([0.0, 0, 0, 1, 1, 1])), ValidationError,
     ["batch must be a 1-d long tensor"]),
    ("dominant-batch-unsorted", lambda: _dominant_batch(torch.tensor([1, 1, 1, 0, 0, 0])), ValidationError,
     ["DOMINANT: batch must be sorted"]),
    ("dominant-batch-negative", lambda: _dominant_batch(torch.tensor([-1, -1, -1, 0, 0, 0])), ValidationError,
     ["negative graph indices"]),
    ("dominant-x-3d", lambda: M.create("dominant", in_channels=4)(torch.randn(1, 6, 4),
                                                                   torch.tensor([[0, 1], [1, 0]])),
     ValidationError, ["DOMINANT: x must have shape (num_nodes, num_features), got (1, 6, 4)"]),
    ("chain_forecaster-x-None", lambda: M.create("chain_forecaster")(None), ValidationError,
     ["chain_forecaster: x must be a torch.Tensor", "got NoneType"]),
    ("lenet-x-list", lambda: M.create("lenet_grid")([[0.0]] * 64), ValidationError,
     ["lenet_grid: x must be a torch.Tensor", "got list"]),
]


@pytest.mark.parametrize("call, error, fragments", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_argument_gives_a_graphdl_error_naming_it(call, error, fragments) -> None:
    with pytest.raises(error) as info:
        call()
    for fragment in fragments:
        assert fragment in str(info.value)


def test_valid_edge_dim_and_lazy_edge_dim_still_build() -> None:
    """The edge_dim check leaves the widths PyG takes (an int >= 1, -1 to infer it, None) alone."""
    x, edge_index, edge_attr = torch.randn(5, 4), torch.tensor([[0, 1, 2], [1, 2, 3]]), torch.randn(3, 2)
    for edge_dim in (2, -1):
        conv = L.create("gat", 4, 4, edge_dim=edge_dim)
        assert conv(x, edge_index, edge_attr=edge_attr).shape == (5, 4)
    assert L.create("gine", 4, 4, 2)(x, edge_index, edge_attr=edge_attr).shape == (5, 4)


def test_dominant_with_a_valid_batch_matches_its_graphs_one_by_one() -> None:
    """The batch check passes PyG's sorted batch, and a batch's structure rows are each graph's own."""
    from torch_geometric.data import Batch, Data

    torch.manual_seed(0)
    model = M.create("dominant", in_channels=3).eval()
    graphs = [Data(x=torch.randn(n, 3), edge_index=torch.tensor([[0, 1], [1, 0]])) for n in (3, 4)]
    batch = Batch.from_data_list(graphs)
    out = model(batch.x, batch.edge_index, batch=batch.batch)
    for i, g in enumerate(graphs):
        one = model(g.x, g.edge_index)
        rows = batch.batch == i
        torch.testing.assert_close(out.s_hat[rows][:, :g.num_nodes], one.s_hat)
        torch.testing.assert_close(out.x_hat[rows], one.x_hat)


def test_dominant_loss_still_matches_the_reference_formula() -> None:
    torch.manual_seed(1)
    x, x_hat = torch.rand(5, 3), torch.rand(5, 3)
    s, s_hat = (torch.rand(5, 5) > 0.5).float(), torch.rand(5, 5)
    expected = (0.3 * (x - x_hat).norm(dim=1) + 0.7 * (s - s_hat).norm(dim=1)).mean()
    torch.testing.assert_close(DominantLoss(alpha=0.3)(x, x_hat, s, s_hat), expected)

