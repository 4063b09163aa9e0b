"""Third-party plugins: a real distribution with an entry point, built and installed by the test."""

import os
import subprocess
import sys
import textwrap

import pytest

PLUGIN_MODULE = '''
"""A demo graphdl layer plugin shipped by another distribution."""
import torch
from torch_geometric.nn import MessagePassing


class DemoConv(MessagePassing):
    """Mean of neighbour features, then a linear map (demo plugin)."""

    def __init__(self, in_channels, out_channels):
        super().__init__(aggr="mean")
        self.in_channels = in_channels
        self.lin = torch.nn.Linear(in_channels, out_channels)
        self.root = torch.nn.Linear(in_channels, out_channels, bias=False)

    def reset_parameters(self):
        self.lin.reset_parameters()
        self.root.reset_parameters()

    def forward(self, x, edge_index):
        return self.lin(self.propagate(edge_index, x=x)) + self.root(x)


class TypoKindLoss(torch.nn.Module):
    """A loss whose kind is misspelt."""

    kind = "classifcation"

    def forward(self, input, target):
        return torch.nn.functional.cross_entropy(input, target)


NOT_A_LOSS = 3
'''

PYPROJECT = '''
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "gdl-demo-plugin"
version = "1.0"

[project.entry-points."graphdl.layers"]
demo_conv = "gdl_demo_plugin:DemoConv"
broken_conv = "gdl_missing_module:Nope"

[project.entry-points."graphdl.losses"]
typo_kind = "gdl_demo_plugin:TypoKindLoss"
not_a_loss = "gdl_demo_plugin:NOT_A_LOSS"
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """Build and install (pip, into a private target folder) a distribution declaring entry points."""
    src = tmp_path_factory.mktemp("plugin_src")
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "gdl_demo_plugin").mkdir()
    (src / "gdl_demo_plugin" / "__init__.py").write_text(PLUGIN_MODULE)
    site = tmp_path_factory.mktemp("plugin_site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(src)], check=True)
    assert list(site.glob("gdl_demo_plugin-1.0.dist-info/entry_points.txt"))
    return site


def run(code_or_args, site, extra_env=None, module=False):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
               **(extra_env or {}))
    cmd = [sys.executable, "-m", "graphdl", *code_or_args] if module else [sys.executable, "-c", code_or_args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def test_plugin_layer_is_listed_with_its_origin(plugin_site):
    out = run(["list", "layers", "demo*"], plugin_site, module=True)
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("demo_conv"))
    assert "Mean of neighbour features, then a linear map (demo plugin)." in line
    assert "gdl-demo-plugin (gdl_demo_plugin:DemoConv)" in line
    # The broken entry point is reported by name and does not stop the library.
    assert "could not load layers plugin 'broken_conv' (gdl_missing_module:Nope) from gdl-demo-plugin" in out.stderr


def test_plugin_layer_passes_conformance_and_trains_by_name(plugin_site, shared_data):
    code = textwrap.dedent(f"""
        import warnings; warnings.simplefilter("ignore")
        import graphdl
        from graphdl.testing import check_layer
        check_layer("demo_conv")
        data = graphdl.datasets.load("cora", root={str(shared_data)!r})[0]
        graphdl.seed_everything(0)
        model = graphdl.models.create("gnn", layer="demo_conv", in_channels=1433, hidden_channels=16,
                                      out_channels=7)
        result = graphdl.Trainer(model, "cross_entropy", "node", epochs=20, progress=False).fit(data)
        print("VAL", result.best["val_acc"])
    """)
    out = run(code, plugin_site)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.split("VAL")[1]) > 0.5


def test_auto_loading_can_be_turned_off(plugin_site):
    out = run("import graphdl; print('demo_conv' in graphdl.layers, 'gcn' in graphdl.layers)", plugin_site,
              {"GRAPHDL_NO_PLUGINS": "1"})
    assert out.stdout.split() == ["False", "True"], out.stderr


def test_plugin_losses_the_trainer_cannot_use_are_skipped_with_the_reason(plugin_site):
    out = run(["list", "losses"], plugin_site, module=True)
    assert out.returncode == 0, out.stderr
    assert "cross_entropy" in out.stdout and "typo_kind" not in out.stdout and "not_a_loss" not in out.stdout
    assert ("skipped losses plugin 'typo_kind' (gdl_demo_plugin:TypoKindLoss) from gdl-demo-plugin: loss "
            "'typo_kind': unknown kind 'classifcation'. Did you mean 'classification'?") in out.stderr
    assert ("skipped losses plugin 'not_a_loss' (gdl_demo_plugin:NOT_A_LOSS) from gdl-demo-plugin: loss "
            "'not_a_loss': a registered loss is a class or a factory function that builds one, got int 3") in out.stderr
