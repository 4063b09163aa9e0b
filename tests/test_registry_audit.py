"""Audit of the plugin registry and the PyG layer wrappers: lookups in an empty registry, the call form
register(cls, aliases=...), module instances, keyword errors with did-you-mean, bipartite widths, and the
registry-built PyG layers against PyG's own modules."""

import sys
from importlib import metadata

import pytest
import torch
import torch_geometric.nn as pygnn

import graphdl
from graphdl.errors import ConfigError, DuplicateNameError, UnknownNameError
from graphdl.registry import Registry


class Foo:
    pass


# ------------------------------------------------------------------ registry
def test_unknown_name_in_an_empty_registry_is_an_unknown_name_error():
    """Before: ValueError 'n must be > 0: 0' from difflib (close matches asked for n=len(entries))."""
    r = Registry("widgets", entry_point_group="")
    with pytest.raises(UnknownNameError, match=r"^unknown widget 'x'\. Registered widgets: \(none\)\. "):
        r.get("x")
    r.register("a", Foo)
    r.unregister("a")
    with pytest.raises(UnknownNameError, match=r"^unknown widget 'x'\."):
        r.create("x")


def test_register_called_with_the_object_keeps_aliases_meta_and_override():
    """register(cls, aliases=..., **meta) dropped everything but the class (it recursed with the name only)."""
    r = Registry("widgets", entry_point_group="")
    r.register(Foo, aliases=("f",), flavour=1, summary="the foo")
    entry = r.entry("f")
    assert entry.obj is Foo and entry.aliases == ("f",) and entry.meta == {"flavour": 1}
    assert entry.summary == "the foo"
    other = type("Foo", (), {"__module__": "elsewhere"})
    with pytest.raises(DuplicateNameError):
        r.register(other)
    r.register(other, override=True)  # before: DuplicateNameError, override was dropped
    assert r.get("foo") is other


def test_a_module_instance_is_refused_at_registration():
    """An nn.Module instance is callable, so it was registered, and create() ran its forward."""
    r = Registry("widgets", entry_point_group="")
    with pytest.raises(ConfigError, match=r"^widget 'lin': a registered widget is a class or a factory function "
                                          r"that builds one, got a Linear instance; register the class Linear "
                                          r"\(or a function returning a new module\) instead$"):
        r.register("lin", torch.nn.Linear(2, 2))
    assert "lin" not in r
    r.register("lin", torch.nn.Linear)  # the class is fine
    assert isinstance(r.create("lin", 2, 3), torch.nn.Linear)


def test_a_module_instance_from_an_entry_point_is_skipped_and_named(monkeypatch):
    module = type(sys)("gdl_audit_plugins")
    module.INSTANCE = torch.nn.Linear(2, 2)
    module.Good = type("Good", (), {})
    monkeypatch.setitem(sys.modules, "gdl_audit_plugins", module)
    eps = [metadata.EntryPoint("instance", "gdl_audit_plugins:INSTANCE", "graphdl.widgets"),
           metadata.EntryPoint("good", "gdl_audit_plugins:Good", "graphdl.widgets")]
    monkeypatch.delenv("GRAPHDL_NO_PLUGINS", raising=False)
    monkeypatch.setattr(metadata, "entry_points", lambda group=None: [e for e in eps if e.group == group])
    r = Registry("widgets")
    with pytest.warns(RuntimeWarning, match=r"skipped widgets plugin 'instance' \(gdl_audit_plugins:INSTANCE\)"):
        assert r.list() == ["good"]
    with pytest.raises(UnknownNameError, match=r"got a Linear instance; register the class Linear"):
        r.create("instance")


def test_a_keyword_that_is_no_identifier_gets_the_plugin_message():
    """A key such as 'edge-dim' (from a config file) reached PyG and came back as a bare TypeError."""
    with pytest.raises(ConfigError, match=r"^layer 'gat' got an unexpected keyword argument 'edge-dim'\. Did you "
                                          r"mean 'edge_dim'"):
        graphdl.layers.create("gat", 16, 8, **{"edge-dim": 3})


def test_did_you_mean_for_a_keyword_ignores_case():
    """ChebConv's order is 'K': 'k' was answered with "Did you mean 'aggr_kwargs'?"."""
    with pytest.raises(ConfigError, match=r"^layer 'cheb' got an unexpected keyword argument 'k'\. Did you mean "
                                          r"'K'\? It accepts: in_channels, out_channels, K, "):
        graphdl.layers.create("cheb", 16, 8, k=3)
    # lower-case keywords still get the same suggestions
    with pytest.raises(ConfigError, match=r"Did you mean 'heads'\?"):
        graphdl.layers.create("gat", 16, 8, head=2)


def test_a_keyword_the_factory_sets_itself_is_named():
    """gin builds the MLP (GINConv's nn) itself; nn= gave 'GINConv.__init__() got multiple values for 'nn''."""
    with pytest.raises(ConfigError, match=r"^layer 'gin' sets 'nn' itself and got it again as a keyword argument; "
                                          r"leave nn= out\.$"):
        graphdl.layers.create("gin", 16, 8, nn=torch.nn.Linear(16, 8))
    # both positionally and by keyword: the caller's own mistake, named as before
    with pytest.raises(ConfigError, match=r"^layer 'gat' cannot be built from these arguments: gat\(\) got multiple "
                                          r"values for argument 'heads'"):
        graphdl.layers.create("gat", 16, 8, 2, heads=2)


# ------------------------------------------------------------------ PyG layers
@pytest.mark.parametrize("name,bipartite_forward", [("gcn", False), ("cheb", False), ("gin", True),
                                                     ("gine", True), ("edgeconv", True)])
def test_layers_without_a_bipartite_constructor_refuse_a_pair_of_widths(name, bipartite_forward):
    """A (source, target) in_channels passed the registry's check and failed inside PyG / torch with
    "'>' not supported between instances of 'tuple' and 'int'" or "empty(): argument 'size' ..."."""
    with pytest.raises(ConfigError, match=rf"^{name}: in_channels must be one int for this layer, got \(16, 8\); "):
        graphdl.layers.create(name, (16, 8), 8)
    with pytest.raises(ConfigError, match=rf"^{name}: in_channels must be one int"):
        graphdl.layers.get(name)([16, 16], 8)
    if bipartite_forward:  # the suggested int width takes (source, target) pairs at call time
        with pytest.raises(ConfigError, match=r"\(in_channels=16\); it still takes \(x_source, x_target\) pairs$"):
            graphdl.layers.create(name, (16, 16), 8)
        conv = graphdl.layers.create(name, 16, 8)
        pair = (torch.randn(5, 16), torch.randn(3, 16))
        edge_index = torch.tensor([[0, 4, 2], [0, 2, 1]])
        extra = (torch.randn(3, 16),) if name == "gine" else ()
        assert conv(pair, edge_index, *extra).shape == (3, 8)


@pytest.mark.parametrize("name", ["sage", "graphconv", "gat", "gatv2", "transformer"])
def test_bipartite_layers_keep_their_pairs(name):
    conv = graphdl.layers.create(name, (16, 8), 4)
    out = conv((torch.randn(5, 16), torch.randn(3, 8)), torch.tensor([[0, 4], [0, 2]]))
    assert out.shape == (3, 4)


X = torch.randn(6, 16, generator=torch.Generator().manual_seed(1))
EDGES = torch.tensor([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 0]])
EDGE_ATTR = torch.randn(6, 3, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("name,kwargs,reference,edge_attr", [
    ("gat", {"heads": 4}, lambda: pygnn.GATConv(16, 2, heads=4), False),
    ("gat", {"heads": 4, "concat": False, "edge_dim": 3},
     lambda: pygnn.GATConv(16, 8, heads=4, concat=False, edge_dim=3), True),
    ("gatv2", {"heads": 2}, lambda: pygnn.GATv2Conv(16, 4, heads=2), False),
    ("transformer", {"heads": 4, "beta": True, "edge_dim": 3},
     lambda: pygnn.TransformerConv(16, 2, heads=4, beta=True, edge_dim=3), True),
    ("cheb", {"K": 3}, lambda: pygnn.ChebConv(16, 8, K=3), False),
    ("edgeconv", {"aggr": "mean"}, lambda: pygnn.EdgeConv(torch.nn.Sequential(
        torch.nn.Linear(32, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8)), aggr="mean"), False),
])
def test_registry_layers_equal_the_pyg_modules(name, kwargs, reference, edge_attr):
    """out_channels is the total width (heads * per-head with concat); parameters and outputs are PyG's."""
    torch.manual_seed(0)
    ours = graphdl.layers.create(name, 16, 8, **kwargs)
    torch.manual_seed(0)
    ref = reference()
    assert ours.state_dict().keys() == ref.state_dict().keys()
    for key, value in ref.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key
    args = (X, EDGES) + ((EDGE_ATTR,) if edge_attr else ())
    ours.eval(), ref.eval()
    out = ours(*args)
    assert out.shape == (6, 8)
    assert torch.equal(out, ref(*args))
