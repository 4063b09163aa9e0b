"""GNN stacks against PyG's ``BasicGNN`` where the earlier checks left gaps: jumping knowledge's last layer, a
norm given as a module, and activations, norms and poolings of the wrong kind."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn
from torch_geometric.nn import aggr, global_mean_pool
from torch_geometric.nn.models import GCN

from graphdl.errors import ConfigError
from graphdl.models.gnn import GNN, GraphGNN

X = torch.randn(9, 4, generator=torch.Generator().manual_seed(0))
_E = torch.tensor([[0, 1, 2, 3, 5, 6, 7], [1, 2, 3, 0, 6, 7, 8]])
EDGES = torch.cat([_E, _E.flip(0)], dim=1)
BATCH = torch.tensor([0] * 4 + [1] * 5)


@pytest.mark.parametrize("jk", ["cat", "max"])
@pytest.mark.parametrize("norm", [None, "batch"])
def test_jumping_knowledge_matches_pygs_basic_gnn(jk: str, norm: str | None) -> None:
    """With jk the last conv is a hidden layer: PyG gives it norm, activation and dropout like the others. The
    stack left it plain, so jk='cat' differed from PyG's GCN by 0.09 (and its last norm was never built)."""
    torch.manual_seed(0)
    ours = GNN("gcn", in_channels=4, hidden_channels=8, out_channels=3, num_layers=3, norm=norm, jk=jk, dropout=0.3)
    reference = GCN(4, 8, 3, out_channels=3, norm=norm, jk=jk, dropout=0.3)
    reference.load_state_dict({k.replace("jk_linear", "lin"): v for k, v in ours.state_dict().items()})
    for training in (True, False):
        ours.train(training), reference.train(training)
        torch.manual_seed(1)
        got = ours(X, EDGES)
        torch.manual_seed(1)
        expected = reference(X, EDGES)
        torch.testing.assert_close(got, expected)
    ours.train(), reference.train()
    for model in (ours, reference):
        torch.manual_seed(2)
        model(X, EDGES).square().sum().backward()
    for (name, p), q in zip(ours.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_ogb_style_last_layer_with_jk_keeps_no_activation() -> None:
    """plain_last=False is OGB's last layer (norm and dropout, no ReLU), with jk too."""
    torch.manual_seed(0)
    model = GNN("gcn", in_channels=4, hidden_channels=8, num_layers=2, jk="cat", plain_last=False, dropout=0.0)
    model.eval()
    outs = []
    model.jk_linear.register_forward_pre_hook(lambda _, args: outs.append(args[0]))
    model(X, EDGES)
    assert (outs[0][:, 8:] < 0).any() and (outs[0][:, :8] >= 0).all()


def test_a_norm_module_gives_each_layer_its_own_copy() -> None:
    """PyG's BasicGNN deep-copies a norm module per layer; the stack appended the one instance to every layer,
    so they shared weights and running statistics (16 parameters fewer than PyG's GCN here)."""
    torch.manual_seed(0)
    ours = GNN("gcn", in_channels=4, hidden_channels=8, out_channels=3, num_layers=3, norm=nn.LayerNorm(8))
    reference = GCN(4, 8, 3, out_channels=3, norm=nn.LayerNorm(8))
    assert len({id(n) for n in ours.norms[:2]}) == 2
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())
    reference.load_state_dict(ours.state_dict())
    with torch.no_grad():
        ours.norms[1].weight.mul_(3.0), reference.norms[1].weight.mul_(3.0)
    torch.testing.assert_close(ours.eval()(X, EDGES), reference.eval()(X, EDGES))


@pytest.mark.parametrize("activation,shown", [(None, "NoneType None"), (nn.ReLU, "type <class"), (3, "int 3")])
def test_an_activation_that_is_not_a_name_or_module_is_named(activation, shown) -> None:
    """PyG's resolver returned it as is: the model built and failed at its first forward ('NoneType' object is
    not callable; dropout(): argument 'input' must be Tensor, not ReLU)."""
    message = rf"^activation must be a name \(relu, elu, gelu, leaky_relu, tanh, \.\.\.\) or a torch\.nn\.Module " \
              rf"instance, got {re.escape(shown)}.*; pass an instance such as torch\.nn\.ReLU\(\), or " \
              rf"torch\.nn\.Identity\(\) for none$"
    with pytest.raises(ConfigError, match=message):
        GNN("gcn", in_channels=4, hidden_channels=8, activation=activation)


@pytest.mark.parametrize("norm", [3, nn.BatchNorm1d])
def test_a_norm_that_is_not_a_name_or_module_is_named(norm) -> None:
    """Before: 'int is not a Module subclass' from ModuleList.append; a class failed the same way."""
    with pytest.raises(ConfigError, match=r"^norm must be a name \(batch, layer, graph, instance, \.\.\.\) or a "
                                          r"torch\.nn\.Module instance, got .*; pass an instance such as "
                                          r"torch\.nn\.BatchNorm1d\(8\), or a name$"):
        GNN("gcn", in_channels=4, hidden_channels=8, norm=norm)


def test_a_pooling_function_is_named_with_its_name() -> None:
    """PyG's global_mean_pool passed as pool failed with "'function' object has no attribute 'training'"."""
    with pytest.raises(ConfigError, match=r"^pool must be a PyG aggregation name \(mean, sum, max, \.\.\.\) or a "
                                          r"configured torch_geometric\.nn\.aggr module, got function .*"
                                          r"\(for global_mean_pool give its name, 'mean'\)$"):
        GraphGNN(2, pool=global_mean_pool, layer="gcn", in_channels=4, hidden_channels=8)
    with pytest.raises(ConfigError, match=r"got NoneType None$"):
        GraphGNN(2, pool=None, layer="gcn", in_channels=4, hidden_channels=8)


def test_a_float64_pooling_module_is_accepted() -> None:
    """The head's width was probed with float32 zeros, so a Set2Set in float64 was refused as unable to pool
    8-wide features (the LSTM's dtype mismatch)."""
    torch.manual_seed(0)
    model = GraphGNN(2, pool=aggr.Set2Set(8, processing_steps=2).double(), layer="gcn", in_channels=4,
                     hidden_channels=8).double().eval()
    assert model.head.in_features == 16
    out = model(X.double(), EDGES, batch=BATCH)
    torch.manual_seed(0)
    single = GraphGNN(2, pool=aggr.Set2Set(8, processing_steps=2), layer="gcn", in_channels=4,
                      hidden_channels=8).eval()
    single.load_state_dict({k: v.float() for k, v in model.state_dict().items()})
    torch.testing.assert_close(out.float(), single(X, EDGES, batch=BATCH))
