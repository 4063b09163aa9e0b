"""Plugin edge cases a plugin author meets: re-registration in notebooks, alias spellings, entry points that
fail, losses built by registered factories, and the command line naming plugins of the user's own code."""

import sys
import textwrap
from importlib import metadata

import pytest
import torch

import graphdl
from graphdl import cli
from graphdl.errors import ConfigError, DuplicateNameError, UnknownNameError
from graphdl.registry import Registry
from graphdl.train.trainer import resolve_loss


class Alpha:
    pass


class Beta:
    pass


@pytest.fixture
def reg():
    r = Registry("widgets", entry_point_group="")
    r.register("alpha", Alpha, aliases=("first",))
    r.register("beta", Beta)
    return r


# ------------------------------------------------------------------ re-registration
def test_registering_the_same_class_again_is_not_a_clash(reg):
    """A re-run notebook cell (or importlib.reload) registers its class again: before, DuplicateNameError."""
    reg.register("alpha", Alpha, aliases=("first",))
    assert reg.get("first") is Alpha and reg.list() == ["alpha", "beta"]
    namespace = {"__name__": __name__}
    exec("class Alpha:\n    pass\n", namespace)  # the cell run again: a new class of the same name
    reg.register("alpha", namespace["Alpha"], aliases=("uno",))
    assert reg.get("alpha") is namespace["Alpha"] and reg.get("uno") is namespace["Alpha"]
    assert "first" not in reg  # the new definition's aliases replace the old ones


def test_a_different_plugin_under_a_taken_name_still_clashes_and_changes_nothing(reg):
    with pytest.raises(DuplicateNameError, match=r"^widgets name 'alpha' is already registered"):
        reg.register("alpha", Beta)
    # Alpha under its own name again, but with an alias taken by another entry: refused, Alpha left in place
    with pytest.raises(DuplicateNameError, match=r"^widgets name 'beta' is already registered"):
        reg.register("alpha", Alpha, aliases=("beta",))
    assert reg.get("alpha") is Alpha and reg.get("first") is Alpha and reg.get("beta") is Beta
    # the same class under a name that is another entry's alias is not a re-registration of that entry
    with pytest.raises(DuplicateNameError, match=r"^widgets name 'first' is already registered as 'alpha'"):
        reg.register("first", Alpha)


def test_a_string_alias_is_one_alias(reg):
    """aliases="a1" used to register the aliases 'a' and '1' (the characters of the string)."""
    reg.register("gamma", Alpha, aliases="gam")
    assert reg.entry("gamma").aliases == ("gam",)
    assert "gam" in reg and "g" not in reg and "m" not in reg


def test_names_and_aliases_without_letters_are_refused(reg):
    """'-_' normalises to '' (before: registered under the empty key; an empty alias clashed confusingly)."""
    with pytest.raises(ConfigError, match=r"^a widget is registered under a non-empty string name, got '-_'$"):
        reg.register("-_", Beta)
    with pytest.raises(ConfigError, match=r"^widget 'delta': an alias is a non-empty string name, got ''$"):
        reg.register("delta", Beta, aliases=("",))
    with pytest.raises(ConfigError, match=r"^widget 'delta': an alias is a non-empty string name, got 3$"):
        reg.register("delta", Beta, aliases=(3,))
    assert reg.list() == ["alpha", "beta"]


# ------------------------------------------------------------------ entry points
class _Dist:
    name = "my-plugins"


def _entry_point(name, value, group="graphdl.widgets"):
    ep = metadata.EntryPoint(name, value, group)
    object.__setattr__(ep, "dist", _Dist())
    return ep


@pytest.fixture
def plugin_module(monkeypatch):
    module = type(sys)("gdl_edge_plugins")
    module.Good = type("Good", (), {"__doc__": "A good one."})
    module.Other = type("Other", (), {})
    module.THREE = 3
    monkeypatch.setitem(sys.modules, "gdl_edge_plugins", module)
    return module


def _with_entry_points(monkeypatch, *eps):
    monkeypatch.delenv("GRAPHDL_NO_PLUGINS", raising=False)
    monkeypatch.setattr(metadata, "entry_points", lambda group=None: [e for e in eps if e.group == group])


def test_a_plugin_that_failed_to_load_is_named_when_it_is_used(monkeypatch, plugin_module):
    _with_entry_points(monkeypatch, _entry_point("broken_conv", "gdl_no_such_module:Conv"),
                       _entry_point("good", "gdl_edge_plugins:Good"),
                       _entry_point("three", "gdl_edge_plugins:THREE"))
    r = Registry("widgets")
    with pytest.warns(RuntimeWarning) as caught:
        assert r.list() == ["good"]  # the others do not stop the listing
    messages = [str(w.message) for w in caught]
    assert any("could not load widgets plugin 'broken_conv' (gdl_no_such_module:Conv) from my-plugins" in m
               for m in messages)
    assert any("skipped widgets plugin 'three' (gdl_edge_plugins:THREE) from my-plugins" in m for m in messages)
    # before: "unknown widget 'broken_conv'. Registered widgets: good ..." with no word of the plugin
    with pytest.raises(UnknownNameError, match=r"^widget 'Broken-Conv' is the widgets plugin 'broken_conv' "
                                               r"\(gdl_no_such_module:Conv\) from my-plugins, which could not be "
                                               r"loaded: ModuleNotFoundError: No module named 'gdl_no_such_module'"):
        r.get("Broken-Conv")
    with pytest.raises(UnknownNameError, match=r"^widget 'three' is the widgets plugin 'three' "
                                               r"\(gdl_edge_plugins:THREE\) from my-plugins, which was skipped: "
                                               r"widget 'three': a registered widget is a class or a factory"):
        r.create("three")
    assert "broken_conv" not in r


def test_an_entry_point_whose_name_is_taken_by_another_plugin_is_skipped_with_a_warning(monkeypatch, plugin_module):
    _with_entry_points(monkeypatch, _entry_point("good", "gdl_edge_plugins:Good"),
                       _entry_point("other", "gdl_edge_plugins:Other"))
    r = Registry("widgets")
    r.register("good", plugin_module.Good)  # as the plugin's own module does with a decorator: no warning
    r.register("other", Beta)
    with pytest.warns(RuntimeWarning) as caught:
        r.load_plugins()
    assert [str(w.message) for w in caught] == [
        "graphdl: skipped widgets plugin 'other' (gdl_edge_plugins:Other) from my-plugins: the name is taken by "
        f"'other' from {__name__}"]
    assert r.get("other") is Beta and r.get("good") is plugin_module.Good


# ------------------------------------------------------------------ losses
class _PlainMSE(torch.nn.Module):
    def forward(self, input, target):
        return torch.nn.functional.mse_loss(input, target)


def test_a_loss_built_by_a_registered_factory_keeps_its_kind():
    """The kind given at registration reached the Trainer for loss="name" but not for the module that
    graphdl.losses.create built (the factory, not the module's class, is registered), so a regression loss
    was trained and scored as an unknown kind."""
    @graphdl.losses.register("edge_case_mse", kind="regression")
    def edge_case_mse() -> _PlainMSE:
        return _PlainMSE()

    try:
        assert resolve_loss("edge_case_mse", "cross_entropy")[1] == "regression"
        built = graphdl.losses.create("edge_case_mse")
        assert resolve_loss(built, "cross_entropy")[1] == "regression"
        assert graphdl.losses.entry_of(built).name == "edge_case_mse"
        assert resolve_loss(_PlainMSE(), "cross_entropy")[1] is None  # not built by the registry
    finally:
        graphdl.losses.unregister("edge_case_mse")
    assert graphdl.losses.entry_of(built) is None  # unregistered: the record is not used


# ------------------------------------------------------------------ command line
PLUGIN_FILE = '''
import graphdl
from torch_geometric.nn import SAGEConv


@graphdl.layers.register("edge_case_conv")
class EdgeCaseConv(SAGEConv):
    """A layer of the user's own code."""
'''


@pytest.fixture
def user_plugin(tmp_path, monkeypatch):
    (tmp_path / "edge_case_layers.py").write_text(textwrap.dedent(PLUGIN_FILE))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(cli.PLUGINS_ENV, "")  # restored after the test: import_plugins records what it imports
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield tmp_path
    sys.modules.pop("edge_case_layers", None)
    if "edge_case_conv" in graphdl.layers:
        graphdl.layers.unregister("edge_case_conv")


@pytest.mark.parametrize("spec", ["edge_case_layers", "edge_case_layers.py"])
def test_the_command_line_imports_plugins_of_the_users_own_code(user_plugin, capsys, spec):
    """Before, only entry points of installed distributions reached `graphdl list` / `graphdl train`."""
    assert cli.main(["list", "layers", "edge_case*", "--plugin", spec]) == 0
    out = capsys.readouterr().out
    assert "edge_case_conv  A layer of the user's own code.  edge_case_layers" in out and "(1 layers)" in out
    # recorded for the processes of --nproc, which import it again from the environment
    import os

    assert os.environ[cli.PLUGINS_ENV] in ("edge_case_layers", str(user_plugin / "edge_case_layers.py"))


def test_train_names_a_layer_of_the_users_own_code_after_plugin(user_plugin, capsys, shared_data):
    args = ["train", "--dataset", "cora", "--layer", "edge_case_conv", "--epochs", "1", "--seeds", "1",
            "--root", str(shared_data)]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("graphdl: error: unknown layer 'edge_case_conv'.")
    assert "A plugin registered in your own code needs --plugin MODULE" in err
    assert cli.main([*args, "--plugin", "edge_case_layers"]) == 0
    assert "| cora | edge_case_conv | acc" in capsys.readouterr().out


def test_a_plugin_module_that_cannot_be_imported_is_one_error_line(user_plugin, capsys):
    assert cli.main(["list", "layers", "--plugin", "no_such_plugin_module"]) == 2
    assert capsys.readouterr().err.startswith("graphdl: error: --plugin no_such_plugin_module: no module named "
                                              "'no_such_plugin_module' importable from ")
    (user_plugin / "bad_plugin.py").write_text("raise RuntimeError('boom')\n")
    assert cli.main(["list", "layers", "--plugin", "bad_plugin.py"]) == 2
    assert capsys.readouterr().err == (f"graphdl: error: --plugin {user_plugin / 'bad_plugin.py'}: importing it "
                                       f"failed: RuntimeError: boom\n")


def test_a_loss_taking_fewer_than_two_arguments_is_named_before_training():
    class OneArgument(torch.nn.Module):
        def forward(self, input):
            return input.sum()

    model = graphdl.models.create("gnn", layer="gcn", in_channels=4, hidden_channels=8, out_channels=2)
    with pytest.raises(ConfigError, match=r"the loss OneArgument.forward\(input\) takes fewer than the two "
                                          r"arguments the tasks give a loss \(the model's output and the target: "
                                          r"forward\(input, target\)\); change its signature, or wrap it"):
        graphdl.Trainer(model, loss=OneArgument(), task="node", progress=False)
    with pytest.raises(ConfigError, match=r"the loss <lambda>\(out\) takes fewer than the two arguments"):
        resolve_loss(lambda out: out.sum(), "cross_entropy")
    # every registered loss and torch's own take them (some need constructor arguments, a different error)
    for name in graphdl.losses.list():
        try:
            resolve_loss(name, "cross_entropy")
        except ConfigError as exc:
            assert "cannot be built from these arguments" in str(exc), (name, exc)
    assert resolve_loss(torch.nn.MSELoss(), "cross_entropy")[1] == "regression"


def test_a_fixed_plugin_is_not_reported_broken_after_a_forced_reload(monkeypatch):
    """load_plugins(force=True) kept the reason of an earlier failure: a plugin module that now imports (and
    registers names of its own) was still named as one that 'could not be loaded' when its entry point's name was
    looked up."""
    _with_entry_points(monkeypatch, _entry_point("late", "gdl_late_plugins"))
    r = Registry("widgets")
    with pytest.warns(RuntimeWarning, match="could not load widgets plugin 'late'"):
        r.load_plugins()
    monkeypatch.setitem(sys.modules, "gdl_late_plugins", type(sys)("gdl_late_plugins"))  # its package fixed
    r.load_plugins(force=True)
    with pytest.raises(UnknownNameError) as caught:
        r.get("late")
    assert "could not be loaded" not in str(caught.value)


def test_listing_by_pattern_finds_aliases_as_lookups_do(reg):
    """list("first") was [] though "first" in the registry (an alias of alpha) is True."""
    assert reg.list("first") == ["alpha"] and reg.list("fir*") == ["alpha"] and reg.list("b*") == ["beta"]


def test_two_different_lambdas_under_one_name_clash(reg):
    """Every lambda of a module has the qualname '<lambda>', so a different lambda silently replaced a registered
    one as if it were a re-run of the same cell."""
    first = lambda: Alpha()  # noqa: E731
    second = lambda: Beta()  # noqa: E731
    reg.register("maker", first)
    with pytest.raises(DuplicateNameError):
        reg.register("maker", second)
    reg.register("maker", first)  # the same one again is no clash
    assert reg.get("maker") is first
