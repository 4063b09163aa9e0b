"""graphdl bench run takes a registered layer as its MODEL, reads --plugin and $GRAPHDL_PLUGINS as graphdl train
does, and records a command line that pastes back into a shell."""

from __future__ import annotations

import json
import shlex

import pytest

from graphdl.bench.__main__ import main as bench_main
from graphdl.bench.suites import default_config
from graphdl.errors import ConfigError

from test_bench_runner_audit import cora_root  # noqa: F401 (fixture: a data root holding the shared Cora files)

PLUGIN = '''
import torch_geometric.nn as pygnn
import graphdl


@graphdl.layers.register("wave24_max_sage")
def max_sage(in_channels, out_channels, **kwargs):
    return pygnn.SAGEConv(in_channels, out_channels, aggr="max", **kwargs)
'''


def test_a_registered_layer_is_a_model_of_bench_run():
    """'graphdl bench run cora sage' was 'unknown model'; the refusal of --set layer=... pointed to it."""
    assert default_config("cora", "sage") == default_config("cora", {"layer": "sage"})
    assert default_config("cora", "sage")["layer"] == "sage"
    with pytest.raises(ConfigError, match=r"^unknown model 'sagee' for cora\. Did you mean 'sage'\? Known: gcn, "
                                          r"gat, or a registered layer \(graphdl list layers\)\.$"):
        default_config("cora", "sagee")


def test_bench_run_reads_plugins_and_records_a_command_that_pastes_back(cora_root, tmp_path, monkeypatch):
    """bench run read neither --plugin nor $GRAPHDL_PLUGINS ('unknown layer'), and the recorded command lost the
    quotes of --set layer="..." (it did not run again when pasted)."""
    plugin = tmp_path / "wave24_plugin.py"
    plugin.write_text(PLUGIN)
    monkeypatch.setenv("GRAPHDL_PLUGINS", "")  # restored after: import_plugins records the plugin there
    out = tmp_path / "r.json"
    argv = ["run", "cora", "wave24_max_sage", "--plugin", str(plugin), "--epochs", "1", "--root", str(cora_root),
            "--set", 'hidden_channels=4', 'eval_splits=["val", "test"]', "--json", str(out)]
    try:
        assert bench_main(argv, prog="graphdl bench") == 0
        saved = json.loads(out.read_text())
        [record] = saved["records"]
        assert record["model"] == "wave24_max_sage" and record["config"]["layer"] == "wave24_max_sage"
        assert shlex.split(saved["command"]) == ["graphdl", "bench", *argv]
    finally:
        import graphdl

        graphdl.layers.unregister("wave24_max_sage")
