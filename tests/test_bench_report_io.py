"""Benchmark reports and the files behind them: pooled records, learning-curve plots, model labels beside
their references, atomic writes and YAML run configurations give the right figures or a clear error."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import graphdl.bench as bench
from graphdl.bench.__main__ import main as bench_main
from graphdl.bench.merge import merge_records
from graphdl.bench.plot import plot_curves
from graphdl.config import load_config
from graphdl.errors import ConfigError
from graphdl.io import atomic_write_json, atomic_write_text


def _record(seeds: list[int], **changes: Any) -> dict[str, Any]:
    """A finished record as graphdl bench run writes it (figures made up, one per seed)."""
    runs, valid_runs = [0.5 + 0.1 * s for s in seeds], [0.4 + 0.1 * s for s in seeds]
    record = {"dataset": "cora", "model": "gcn", "metric": "acc", "higher_is_better": True,
              "mean": float(np.mean(runs)), "std": None, "runs": runs, "seeds": seeds,
              "valid_runs": valid_runs, "valid_mean": float(np.mean(valid_runs)),
              "best_epochs": [1] * len(seeds), "epochs": 2, "epochs_run": [2] * len(seeds), "seconds": 1.0,
              "seconds_per_epoch": 0.25, "train_seconds_per_epoch": 0.1, "reference": 0.815, "reference_std": None,
              "reference_source": "paper", "config": {"model": "gcn", "epochs": 2}, "status": "ok",
              "curves": {k: [[0.1 * s, 0.2 * s] for s in seeds] for k in ("train_loss", "train", "val", "test")}}
    record.update(changes)
    return record


# ---------------------------------------------------------------------------- merge
def test_pooled_record_has_no_validation_mean_of_one_piece_only() -> None:
    """A piece without per-seed validation scores drops valid_runs from the pool; its valid_mean was the first
    piece's alone, passed off as the mean over every seed."""
    first, second = _record([0]), _record([1])
    del second["valid_runs"], second["valid_mean"]
    (pooled,) = merge_records([first, second])
    assert pooled["seeds"] == [0, 1] and "valid_runs" not in pooled
    assert pooled.get("valid_mean") is None
    (both,) = merge_records([_record([1]), _record([0])])  # with every piece's: the mean over the pool
    assert both["valid_mean"] == pytest.approx(0.45)


# ---------------------------------------------------------------------------- plot
def test_plot_band_is_the_std_of_the_table_ddof_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The band around the mean curve is the std over seeds as the records give it (ddof=1), not numpy's
    default population std, which is 1/sqrt(2) of it for two seeds."""
    import matplotlib.axes

    bands: list[tuple[np.ndarray, np.ndarray]] = []
    original = matplotlib.axes.Axes.fill_between

    def spy(self, x, y1, y2=0, **kwargs):
        bands.append((np.asarray(y1), np.asarray(y2)))
        return original(self, x, y1, y2, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "fill_between", spy)
    record = _record([0, 1], curves={"val": [[0.0, 0.2], [1.0, 0.6]]})
    plot_curves([record], tmp_path / "c.png")
    (low, high), = bands
    runs = np.array([[0.0, 0.2], [1.0, 0.6]])
    std = runs.std(axis=0, ddof=1)
    np.testing.assert_allclose(low, runs.mean(0) - std)
    np.testing.assert_allclose(high, runs.mean(0) + std)


def test_report_png_without_curves_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A pooled record whose pieces did not all keep curves (or records that did not run) has nothing to plot:
    one graphdl error line naming the fix, not a ValueError traceback after the table was printed."""
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"records": [_record([0], curves=None)]}))
    assert bench_main(["report", str(path), "--png", str(tmp_path / "c.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("graphdl: error: no finished record has learning curves to plot") and "--png" in err, err
    assert err.count("\n") == 1 and not (tmp_path / "c.png").exists()


def test_plot_draws_a_record_without_status_as_the_table_does(tmp_path: Path) -> None:
    """A record without ``status`` is finished for report and merge (``status`` defaults to ok); the plot
    dropped it and then found nothing to plot."""
    record = _record([0, 1])
    del record["status"]
    path = plot_curves([record], tmp_path / "c.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------- model labels and references
@pytest.mark.parametrize(("dataset", "overrides", "message"), [
    ("cora", {"model": "gcn", "layer": "gat"}, r"model 'gcn' is the configuration of layer 'gcn', but layer 'gat' "
                                               r"is set"),
    ("ogbn-arxiv", {"model": "sage", "layer": "gcn"}, r"model 'sage' is the configuration of layer 'sage'"),
    ("ogbg-molbbbp", {"model": "gin-virtual", "layer": "gcn"}, r"model 'gin-virtual' is the configuration of "
                                                               r"layer 'gin'"),
    ("ogbg-molbbbp", {"model": "gin-virtual", "virtual_node": False}, r"model 'gin-virtual' has a virtual node, "
                                                                      r"but virtual_node is false"),
    ("ogbg-molbbbp", {"model": "gcn", "virtual_node": True}, r"model 'gcn' has no virtual node, but virtual_node "
                                                             r"is true"),
])
def test_a_model_label_contradicted_by_its_layer_is_refused(dataset: str, overrides: dict, message: str) -> None:
    """The record is labelled by ``model`` and set beside that model's reference: ``model gcn`` training GAT
    layers printed GAT's accuracy beside Kipf & Welling's GCN figure."""
    with pytest.raises(ConfigError, match=message):
        bench.default_config(dataset, overrides)


def test_bench_run_refuses_a_layer_that_is_not_its_model_before_loading_data(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["run", "cora", "gcn", "--set", 'layer="gat"', "--root", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("graphdl: error: model 'gcn' is the configuration of layer 'gcn', but layer 'gat' is "
                          "set"), err
    assert "name the model after what it trains" in err and err.count("\n") == 1, err


def test_model_labels_that_agree_with_their_layer_still_run() -> None:
    assert bench.default_config("cora", {"model": "gat", "layer": "GAT"})["layer"] == "GAT"
    assert bench.default_config("cora", {"layer": "gat"})["model"] == "gat"
    assert bench.default_config("cora", {"layer": "sage"})["model"] == "sage"  # no configuration: no reference
    assert bench.default_config("ogbg-molbbbp", {"layer": "gin", "virtual_node": True})["model"] == "gin-virtual"
    assert bench.default_config("ogbg-molbbbp", {"model": "gin", "layer": "gin"})["virtual_node"] is False
    assert bench.default_config("ogbl-ddi", "gcn")["layer"] == "gcn"


# ---------------------------------------------------------------------------- atomic writes
def test_rewriting_a_file_keeps_its_permissions(tmp_path: Path) -> None:
    """A results file the user made private (0600) became world-readable again when a run rewrote it."""
    path = tmp_path / "results.json"
    atomic_write_json(path, {"mean": 0.8})
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask  # a new file: the usual permissions
    path.chmod(0o600)
    atomic_write_json(path, {"mean": 0.9})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"mean": 0.9}
    path.chmod(0o640)
    atomic_write_text(path, "table\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.read_text() == "table\n"


# ---------------------------------------------------------------------------- YAML configs
def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_key_given_twice_in_a_yaml_config_is_refused(tmp_path: Path) -> None:
    """YAML keeps the last of two equal keys: ``lr: 0.01`` above a later ``lr: 0.5`` was silently ignored."""
    path = _yaml(tmp_path, "dataset: cora\nlr: 0.01\nepochs: 200\nlr: 0.5\n")
    with pytest.raises(ConfigError, match=rf"^config file {path}: key 'lr' is given twice \(lines 2 and 4\); "
                                          rf"keep one$"):
        load_config(path)
    path = _yaml(tmp_path, "loss: cross_entropy\nloss_kwargs:\n  label_smoothing: 0.1\n  label_smoothing: 0.2\n")
    with pytest.raises(ConfigError, match=r"key 'label_smoothing' is given twice \(lines 3 and 4\)"):
        load_config(path)
    path = _yaml(tmp_path, "hidden_channels: 64\nhidden-channels: 16\n")  # one key, two spellings
    with pytest.raises(ConfigError, match=rf"^{path}: 'hidden_channels' and 'hidden-channels' are the same key; "
                                          rf"keep one$"):
        load_config(path)


def test_yaml_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    """``<<: *base`` then ``lr: ...`` is YAML's way to override a shared block, not a repeated key."""
    path = _yaml(tmp_path, "loss: cross_entropy\nloss_kwargs:\n  <<: {label_smoothing: 0.1}\n  label_smoothing: 0.2\n")
    assert load_config(path).loss_kwargs == {"label_smoothing": 0.2}


def test_yaml_integers_are_read_as_yaml_1_2_does(tmp_path: Path) -> None:
    """YAML 1.1 (PyYAML) reads ``seeds: 010`` as octal 8 and ``epochs: 1:30`` as base-60 90."""
    cfg = load_config(_yaml(tmp_path, "seeds: 010\nhidden_channels: 0_64\nepochs: 0x10\nlr: 1e-2\npatience: 08\n"))
    assert (cfg.seeds, cfg.hidden_channels, cfg.epochs, cfg.lr, cfg.patience) == (10, 64, 16, 0.01, 8)
    with pytest.raises(ConfigError, match=r"config key 'epochs' must be int or null, got str '1:30'"):
        load_config(_yaml(tmp_path, "epochs: 1:30\n"))


def test_an_integer_too_large_for_a_float_is_a_config_error(tmp_path: Path) -> None:
    """``lr: 1000...0`` (400 digits) ended in an OverflowError traceback from float()."""
    with pytest.raises(ConfigError, match=r"^config key 'lr' must be a finite number, got an int too large for a "
                                          r"float$"):
        load_config(_yaml(tmp_path, "lr: 1" + "0" * 400 + "\n"))
    assert load_config(_yaml(tmp_path, "lr: 1\n")).lr == 1.0


# ---------------------------------------------------------------------------- report input
def test_report_names_a_figure_that_is_not_a_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A hand-edited record with ``"reference": "0.815"`` ended in a ValueError traceback from the table's
    number format."""
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"records": [_record([0]), _record([1], model="gat", reference="0.815")]}))
    assert bench_main(["report", str(path)]) == 2
    assert capsys.readouterr().err == (f"graphdl: error: {path}: record 1 has reference '0.815', not a number; "
                                       f"write it as a number (e.g. 0.815, without quotes) or null\n")
    path.write_text(json.dumps({"records": [_record([0], reference=None, std=0.01)]}))
    assert bench_main(["report", str(path)]) == 0


def test_a_null_override_turns_a_configured_setting_off() -> None:
    """--set grad_clip=null was dropped as an unset option, so ogbl-ddi kept clipping at 1.0 while the runner's
    message offered null; a null now removes the setting, and the model's name keeps its default."""
    from graphdl.bench.suites import default_config

    assert default_config("ogbl-ddi", "sage")["grad_clip"] == 1.0
    assert "grad_clip" not in default_config("ogbl-ddi", {"model": "sage", "grad_clip": None})
    assert default_config("ogbn-arxiv", "gcn")["norm"] == "batch"
    assert "norm" not in default_config("ogbn-arxiv", {"model": "gcn", "norm": None})
    assert default_config("cora", {"model": None, "layer": None})["model"] == "gcn"
