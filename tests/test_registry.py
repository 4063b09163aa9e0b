import pytest

from graphdl.errors import DuplicateNameError, UnknownNameError
from graphdl.registry import Registry, normalize


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
    r.register("ogb_gcn", object(), aliases=("gcn_ogb",))
    r.register("gcn", object())
    with pytest.raises(UnknownNameError) as info:
        r.get("gcnn")
    # 'gcn_ogb' is the same entry as 'ogb_gcn': suggested once, by its closest spelling
    assert str(info.value).startswith("unknown thing 'gcnn'. Did you mean 'gcn', 'ogb_gcn'? ")


def test_duplicate_raises_unless_override(reg):
    with pytest.raises(DuplicateNameError, match="widgets name 'alphaconv' is already registered .* override=True"):
        reg.register("Alpha-Conv", Beta)
    with pytest.raises(DuplicateNameError, match="'first'"):
        reg.register("new", Beta, aliases=("first",))
    reg.register("alpha_conv", Beta, override=True)
    assert reg.get("alpha_conv") is Beta
    assert "first" not in reg  # the replaced entry's aliases go with it


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
