"""Command-line resumes end to end (``graphdl train`` / ``graphdl bench run`` with ``--checkpoint-dir``): one
epoch, then ``--resume --epochs 2`` extends the run, the same resume again returns the finished result, and a
real change is refused naming it. The same configuration spelt otherwise is not refused: a loss argument given
at the loss's default, a metric loss's monitor given, an OGB molecule run's eval_batch_size given as its
batch_size. A loss's reduction or class weights (a property and a buffer) are among a checkpoint's settings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import graphdl
from graphdl.bench.__main__ import main as bench_main
from graphdl.bench.runner import resume_config
from graphdl.cli import main
from graphdl.errors import ConfigError
from graphdl.train import ModelCheckpoint, Trainer


@pytest.fixture()
def data_root(shared_data: Path, tmp_path: Path) -> Path:
    """A temporary data root holding the shared Planetoid and OGB files."""
    root = tmp_path / "data"
    root.mkdir()
    for sub in ("planetoid", "ogb"):
        (root / sub).symlink_to(shared_data / sub, target_is_directory=True)
    return root


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def _runs(path: Path) -> tuple[list, list, list]:
    record = json.loads(path.read_text(encoding="utf-8"))["records"][0]
    return record["runs"], record["best_epochs"], record["epochs_run"]


def _extend_repeat_refuse(capsys: pytest.CaptureFixture[str], tmp_path: Path, command, first: list[str],
                          same: list[str], changed: list[str], named: str) -> None:
    """(a) ``first`` for 1 epoch, ``same`` resumed to 2 epochs; (b) ``same`` again: skipped, the same result;
    (c) ``changed``: refused naming ``named``."""
    ckpt = ["--checkpoint-dir", str(tmp_path / "ckpt")]
    assert command([*first, "--epochs", "1", *ckpt]) == 0, capsys.readouterr().err
    assert command([*same, "--epochs", "2", "--resume", *ckpt, "--json", str(tmp_path / "b.json")]) == 0, \
        capsys.readouterr().err
    assert command([*same, "--epochs", "2", "--resume", *ckpt, "--json", str(tmp_path / "c.json")]) == 0, \
        capsys.readouterr().err
    extended = _runs(tmp_path / "b.json")
    assert extended[2] == [2] and _runs(tmp_path / "c.json") == extended
    capsys.readouterr()
    assert command([*changed, "--epochs", "2", "--resume", *ckpt]) == 2
    assert f"another configuration: {named}." in _error(capsys)


def test_a_loss_argument_given_at_its_default_resumes(data_root: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """``--loss-kwargs '{"label_smoothing": 0.0}'`` builds the loss ``--loss cross_entropy`` builds; the resume
    had been refused ('loss_kwargs (not set) -> {"label_smoothing": 0.0}')."""
    base = ["train", "--dataset", "cora", "--hidden", "4", "--root", str(data_root), "--device", "cpu", "--loss"]
    _extend_repeat_refuse(capsys, tmp_path, main, [*base, "cross_entropy"],
                          [*base, "ce", "--loss-kwargs", '{"label_smoothing": 0.0, "ignore_index": -100}'],
                          [*base, "cross_entropy", "--loss-kwargs", '{"label_smoothing": 0.1}'],
                          'loss_kwargs (not set) -> {"label_smoothing": 0.1}')


def test_a_metric_loss_resumes_with_its_monitor_given(data_root: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A metric loss's run monitors val_knn_acc; ``--monitor val_knn_acc`` on resume had been refused
    ('monitor (not set) -> "val_knn_acc"'), a real change of the monitor or the loss's arguments still is."""
    base = ["train", "--dataset", "cora", "--hidden", "4", "--root", str(data_root), "--device", "cpu",
            "--loss", "supcon"]
    _extend_repeat_refuse(capsys, tmp_path, main, base,
                          [*base, "--monitor", "val_knn_acc", "--loss-kwargs", '{"temperature": 0.1}'],
                          [*base, "--loss-kwargs", '{"temperature": 0.5}'],
                          'loss_kwargs (not set) -> {"temperature": 0.5}')
    assert main([*base, "--epochs", "2", "--resume", "--checkpoint-dir", str(tmp_path / "ckpt"),
                 "--monitor", "val_loss"]) == 2
    assert 'another configuration: monitor "val_knn_acc" -> "val_loss".' in _error(capsys)
    assert json.loads((tmp_path / "ckpt" / "seed_0" / "done.json").read_text(encoding="utf-8"))["monitor"] \
        == "val_knn_acc"  # the monitor the normalised configuration names is the Trainer's


def test_an_ogb_molecule_run_resumes_with_eval_batch_size_given_as_its_batch_size(
        data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """GraphTask evaluates in batches of batch_size when eval_batch_size is unset; stating it had been refused
    ('eval_batch_size 512 -> (not set)'). gin-virtual through bench run --set."""
    base = ["run", "ogbg-molbbbp", "gin-virtual", "--root", str(data_root), "--set", "hidden_channels=4",
            "num_layers=2", "batch_size=512"]
    _extend_repeat_refuse(capsys, tmp_path, bench_main, [*base, "eval_batch_size=512"], base,
                          [*base, "eval_batch_size=256"], "eval_batch_size 512 -> 256")


def test_a_yaml_configuration_resumes_from_flags_and_refuses_another_lr(data_root: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A sampled GAT run from a --config YAML file (YAML's 1e-2, a layer and loss in other spellings) resumes
    from the same values given as flags."""
    config = tmp_path / "run.yaml"
    config.write_text("dataset: cora\nlayer: GAT\nheads: 2\nhidden_channels: 4\nlr: 1e-2\nloss: ce\n"
                      "loss_kwargs:\n  label_smoothing: 0.1\nnum_neighbors: [3, 3]\nbatch_size: 512\n",
                      encoding="utf-8")
    common = ["train", "--root", str(data_root), "--device", "cpu"]
    flags = [*common, "--dataset", "cora", "--layer", "gat", "--heads", "2", "--hidden", "4", "--lr", "0.01",
             "--loss", "cross_entropy", "--loss-kwargs", '{"label_smoothing": 0.1}', "--num-neighbors", "3", "3"]
    _extend_repeat_refuse(capsys, tmp_path, main, [*common, "--config", str(config)], flags,
                          [*common, "--config", str(config), "--lr", "0.02"], "lr 0.01 -> 0.02")


def test_resume_config_drops_only_loss_arguments_equal_to_the_loss_default() -> None:
    def normalized(loss: str, kwargs: dict) -> dict:
        return resume_config({"dataset": "cora", "model": "gcn", "loss": loss, "loss_kwargs": kwargs})

    assert normalized("ce", {"label_smoothing": 0}) == normalized("cross_entropy", {})
    assert "loss_kwargs" not in normalized("cross_entropy", {"label_smoothing": 0.0, "reduction": "mean"})
    assert normalized("cross_entropy", {"label_smoothing": 0.2})["loss_kwargs"] == {"label_smoothing": 0.2}
    # a bool default is not an int of the same value; an argument the loss does not declare is kept
    assert normalized("triplet", {"swap": 0, "swap_typo": False})["loss_kwargs"] == {"swap": 0, "swap_typo": False}
    assert normalized("triplet", {"swap": False, "margin": 0.05}).get("loss_kwargs") is None
    mol = {"dataset": "ogbg-molbbbp", "model": "gin-virtual", "batch_size": 64}
    assert resume_config(mol)["eval_batch_size"] == 64
    assert resume_config({**mol, "eval_batch_size": 128})["eval_batch_size"] == 128
    assert resume_config({"dataset": "cora", "model": "gcn", "loss": "supcon"})["monitor"] == "val_knn_acc"
    assert resume_config({"dataset": "cora", "model": "gcn"})["monitor"] == "val_acc"


def _graph():
    from torch_geometric.data import Data

    gen = torch.Generator().manual_seed(0)
    n = 24
    data = Data(x=torch.randn(n, 4, generator=gen), edge_index=torch.randint(0, n, (2, 60), generator=gen),
                y=torch.randint(0, 3, (n,), generator=gen))
    idx = torch.arange(n)
    data.train_mask, data.val_mask, data.test_mask = idx < 14, (idx >= 14) & (idx < 19), idx >= 19
    return data


def _trainer(folder: Path, loss: torch.nn.Module) -> Trainer:
    graphdl.seed_everything(0)
    model = graphdl.models.create("gnn", layer="gcn", in_channels=4, hidden_channels=4, out_channels=3,
                                  num_layers=2)
    return Trainer(model, loss, "node", epochs=2, seed=1, progress=False, device="cpu",
                   callbacks=[ModelCheckpoint(folder)])


@pytest.mark.parametrize("kwargs, other, message", [
    ({"reduction": "sum"}, {}, 'reduction "sum" -> "mean"'),
    ({"weight": [1.0, 2.0, 3.0]}, {"weight": [1.0, 1.0, 1.0]}, "weight [1.0, 2.0, 3.0] -> [1.0, 1.0, 1.0]"),
])
def test_a_loss_reduction_or_class_weight_changed_on_resume_is_refused(tmp_path: Path, kwargs: dict, other: dict,
                                                                       message: str) -> None:
    """A loss's reduction (a property over _reduction) and class weights (a buffer, which the saved loss state
    silently replaced) were not among the settings: a resume with other ones was not refused."""
    from graphdl import losses

    data = _graph()
    _trainer(tmp_path, losses.create("cross_entropy", **kwargs)).fit(data)
    # 2 epochs trained: resumed to 3 with the same loss trains on, with another one it is refused
    with pytest.raises(ConfigError, match=rf"other settings \({re.escape(message)}\)"):
        _trainer(tmp_path, losses.create("cross_entropy", **other)).fit(data, resume_from=tmp_path / "last.pt")
    same = _trainer(tmp_path, losses.create("cross_entropy", **kwargs))
    same.epochs = 3
    assert len(same.fit(data, resume_from=tmp_path / "last.pt").history) == 3
