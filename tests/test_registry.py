import pytest
import torch

import graphdl
from graphdl.errors import ConfigError, DuplicateNameError, UnknownNameError
from graphdl.registry import Registry, keyword_names, normalize


class Alpha:
    """Alpha plugin for tests.

    More text that is not part of the summary.
    """


class Beta:
    pass


@pytest.fixture
def reg():
    r = Registry("widgets", entry_point_group="")
    r.register("alpha_conv", Alpha, aliases=("first",))
    r.register("BetaNet", Beta, summary="the beta one", flavour="b")
    return r


def test_normalisation_matches_pyg_resolvers(reg):
    assert normalize("GAT-v2_Conv") == "gatv2conv"
    for name in ("alpha_conv", "Alpha-Conv", "ALPHACONV", "alpha conv", "first"):
        assert reg.get(name) is Alpha
        assert name in reg
    assert "gamma" not in reg and 3 not in reg


def test_entry_records_origin_summary_and_meta(reg):
    entry = reg.entry("betanet")
    assert entry.name == "BetaNet" and entry.summary == "the beta one" and entry.meta == {"flavour": "b"}
    assert entry.origin == __name__
    assert reg.entry("alpha_conv").summary == "Alpha plugin for tests."
    # the listing is plain text: RST roles and literals of the docstring's first line are unwrapped
    assert graphdl.losses.entry("mse").summary == "Squared error, torch.nn.MSELoss semantics: \\ell = (x - y)^2."


def test_list_is_sorted_and_takes_wildcards(reg):
    reg.register("alpine", Beta)
    assert reg.list() == ["alpha_conv", "alpine", "BetaNet"]
    assert reg.list("alp*") == ["alpha_conv", "alpine"]
    assert reg.list("*NET") == ["BetaNet"]
    assert reg.list("a?pine") == ["alpine"]
    assert list(reg) == reg.list() and len(reg) == 3


def test_create_passes_arguments():
    r = Registry("things", entry_point_group="")
    r.register("pair", lambda a, b=2: (a, b))
    assert r.create("pair", 1, b=5) == (1, 5)


def test_decorator_forms():
    r = Registry("things", entry_point_group="")

    @r.register
    def plain():
        return 1

    @r.register("named", aliases=["nick"])
    class Named:
        pass

    assert r.get("plain") is plain and r.get("nick") is Named


def test_unknown_name_lists_close_matches(reg):
    with pytest.raises(UnknownNameError) as info:
        reg.get("alpha_cnv")
    msg = str(info.value)
    assert msg.startswith("unknown widget 'alpha_cnv'. Did you mean 'alpha_conv'?")
    assert "Registered widgets: alpha_conv, BetaNet" in msg
    assert isinstance(info.value, KeyError)


def test_close_matches_name_each_entry_once():
    r = Registry("things", entry_point_group="")
    r.register("ogb_gcn", Alpha, aliases=("gcn_ogb",))
    r.register("gcn", Beta)
    with pytest.raises(UnknownNameError) as info:
        r.get("gcnn")
    # 'gcn_ogb' is the same entry as 'ogb_gcn': suggested once, by its closest spelling
    assert str(info.value).startswith("unknown thing 'gcnn'. Did you mean 'gcn', 'ogb_gcn'? ")


class _Base:
    def __init__(self, depth: int = 1) -> None:
        pass


class _Conv(_Base):
    def __init__(self, width: int, heads: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        if width < 0:
            raise TypeError("got an unexpected keyword argument 'heads'")  # a fault inside, not the caller's


def _factory(width: int, scale: float = 1.0, **kwargs) -> _Conv:
    return _Conv(width, **kwargs)


def _opaque_factory(width: int, **kwargs):  # no return annotation: where kwargs go is unknown
    return _Conv(width, **kwargs)


def test_keyword_names_follow_kwargs_into_bases_and_returned_classes():
    assert keyword_names(_Conv) == (["width", "heads", "depth"], True)
    assert keyword_names(_factory) == (["width", "scale", "heads", "depth"], True)
    assert keyword_names(_opaque_factory) == (["width"], False)
    # graph_gnn hands **gnn_kwargs to a GNN it builds, not to nn.Module: the list says so
    assert keyword_names(graphdl.models.get("graph_gnn")) == (["out_channels", "pool"], False)


def test_bad_constructor_arguments_name_the_plugin_and_what_it_accepts():
    r = Registry("things", entry_point_group="")
    r.register("conv", _factory)
    with pytest.raises(ConfigError) as info:
        r.create("conv", 3, head=2)  # reaches _Base.__init__ through two **kwargs
    assert str(info.value) == ("thing 'conv' got an unexpected keyword argument 'head'. Did you mean 'heads'? "
                               "It accepts: width, scale, heads, depth.")
    with pytest.raises(ConfigError, match=r"^thing 'conv' cannot be built from these arguments: _factory\(\) "
                                          r"missing 1 required positional argument: 'width'\. It accepts: width, "):
        r.create("conv")
    with pytest.raises(TypeError) as inner:  # a TypeError from the plugin's own code is left alone
        r.create("conv", -1, heads=2)
    assert not isinstance(inner.value, ConfigError)
    r.register("bare", lambda: None)  # before: "It accepts: ." with an empty list
    with pytest.raises(ConfigError) as info:
        r.create("bare", beta=1)
    assert str(info.value) == "thing 'bare' got an unexpected keyword argument 'beta'. It takes no keyword arguments."


def test_a_misspelt_layer_keyword_is_caught_before_pyg():
    message = (r"^layer 'gat' got an unexpected keyword argument 'head'\. Did you mean 'heads'\? It accepts: "
               r"in_channels, out_channels, heads, concat, negative_slope, dropout, .*edge_dim.*decomposed_layers\.$")
    with pytest.raises(ConfigError, match=message):
        graphdl.layers.create("gat", in_channels=4, out_channels=8, head=2)
    with pytest.raises(ConfigError, match=message):  # the same through a model's layer_kwargs
        graphdl.models.create("gnn", layer="gat", in_channels=4, hidden_channels=8, out_channels=2,
                              layer_kwargs={"head": 2})
    with pytest.raises(ConfigError, match=r"^model 'graph_gnn' got an unexpected keyword argument 'pooling'\. Did "
                                          r"you mean 'pool'\? It accepts: out_channels, pool, and those it passes "
                                          r"on to what it builds\.$"):
        graphdl.models.create("graph_gnn", layer="gin", in_channels=4, out_channels=2, pooling="mean")


def test_duplicate_raises_unless_override(reg):
    with pytest.raises(DuplicateNameError, match=r"^widgets name 'Alpha-Conv' is already registered \(by .*\)\. "
                                                 r"Pick another name, or pass override=True"):
        reg.register("Alpha-Conv", Beta)
    with pytest.raises(DuplicateNameError, match=r"^widgets name 'first' is already registered as 'alpha_conv'"):
        reg.register("new", Beta, aliases=("first",))
    reg.register("alpha_conv", Beta, override=True)
    assert reg.get("alpha_conv") is Beta
    assert "first" not in reg  # the replaced entry's aliases go with it


def test_override_of_an_alias_takes_the_alias_only(reg):
    """override=True with a name that is another entry's alias removed that whole entry, name and all."""
    reg.register("gamma", Beta, aliases=("first",), override=True)
    assert reg.get("first") is Beta and reg.get("alpha_conv") is Alpha
    assert reg.entry("alpha_conv").aliases == ()
    assert reg.list() == ["alpha_conv", "BetaNet", "gamma"]


def test_unregister(reg):
    reg.unregister("first")
    assert "alpha_conv" not in reg and reg.list() == ["BetaNet"]


def test_package_modules_expose_the_registry_api():
    import graphdl

    for family in (graphdl.layers, graphdl.losses, graphdl.models, graphdl.datasets):
        for attr in ("register", "get", "create", "list", "entries"):
            assert callable(getattr(family, attr))
    assert "gcn" in graphdl.layers and "GCN" in graphdl.layers and "nope" not in graphdl.layers
    assert len(graphdl.layers) == len(graphdl.layers.list())


def test_losses_and_datasets_are_not_top_level_packages():
    import importlib.util

    assert importlib.util.find_spec("graphdl.losses") is not None
    assert importlib.util.find_spec("graphdl.datasets") is not None
    for name in ("losses", "datasets"):
        spec = importlib.util.find_spec(name)
        assert spec is None or "graphdl" not in (spec.origin or ""), f"top-level {name!r} is importable from graphdl"


def test_only_classes_and_factories_under_string_names_are_registered(reg):
    with pytest.raises(ConfigError, match=r"^widget 'three': a registered widget is a class or a factory function "
                                          r"that builds one, got int 3$"):
        reg.register("three", 3)
    with pytest.raises(ConfigError, match=r"^a widget is registered under a non-empty string name, got ''$"):
        reg.register("", Beta)
    assert "three" not in reg


def test_a_loss_kind_the_trainer_does_not_know_is_refused_at_registration():
    class Typo(torch.nn.Module):
        kind = "metrics"

    with pytest.raises(ConfigError, match=r"^loss 'typo_loss': unknown kind 'classifcation'\. Did you mean "
                                          r"'classification'\? Kinds: classification, regression, metric"):
        graphdl.losses.register("typo_loss", Typo, kind="classifcation")
    with pytest.raises(ConfigError, match=r"^loss 'typo_loss': unknown kind 'metrics'\. Did you mean 'metric'\?"):
        graphdl.losses.register("typo_loss", Typo)  # the class's own kind
    assert "typo_loss" not in graphdl.losses
