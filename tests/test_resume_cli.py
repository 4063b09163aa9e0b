"""Resuming with the same configuration spelt otherwise is not refused: a default given explicitly or left out,
a YAML file or flags, a layer's or loss's name in another spelling, numpy numbers or a function (library runs);
finished seeds get their --log file on resume; a refused or killed extension of a finished seed keeps its
done.json; a resume without --epochs continues to the epochs the run was asked for; another number of processes
is refused."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import graphdl.bench as bench

from graphdl.bench.__main__ import main as bench_main
from graphdl.cli import main
from graphdl.config import config_changes, json_plain
from graphdl.errors import ConfigError
from graphdl.train.callbacks import Callback, MetricLogger
from graphdl.train.resume import check_resume, fit_with_checkpoints, resumed_epochs, seed_dir

sys.path.insert(0, str(Path(__file__).parent))
from test_resume_config import _error, _files, _graph, _trainer, _unfinished  # noqa: E402


def _train(root: Path, folder: Path, *extra: str) -> list[str]:
    return ["train", "--dataset", "cora", "--epochs", "1", "--root", str(root), "--device", "cpu",
            "--checkpoint-dir", str(folder), *extra]


def _record(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))["records"][0]


def test_defaults_given_explicitly_or_left_out_resume(shared_data: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = tmp_path / "ckpt"
    assert main(_train(shared_data, ckpt, "--json", str(tmp_path / "a.json"))) == 0
    # the defaults they take when left out: the monitor, GNN's jk and residual; a layer's name in capitals
    assert main(_train(shared_data, ckpt, "--resume", "--monitor", "val_acc", "--jk", "last", "--layer", "GCN",
                       "--lr", "1e-2", "--json", str(tmp_path / "b.json"))) == 0, capsys.readouterr().err
    assert _record(tmp_path / "b.json")["runs"] == _record(tmp_path / "a.json")["runs"]
    (tmp_path / "run.yaml").write_text("dataset: cora\nresidual: false\nvirtual_node: false\nlr: 1e-2\n"
                                       "weight_decay: 5.0e-4\n", encoding="utf-8")
    assert main(_train(shared_data, ckpt, "--resume", "--config", str(tmp_path / "run.yaml"))) == 0, \
        capsys.readouterr().err
    assert bench_main(["run", "cora", "gcn", "--epochs", "1", "--root", str(shared_data), "--checkpoint-dir",
                       str(ckpt), "--resume", "--set", 'monitor="val_acc"', "jk=\"last\"", "to_undirected=false",
                       "weight_decay=0.0005"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    # a default stated on the first run, left out on resume
    ckpt2 = tmp_path / "ckpt2"
    assert main(_train(shared_data, ckpt2, "--monitor", "val_acc", "--jk", "last", "--num-neighbors", "5", "5",
                       "--batch-size", "512")) == 0
    assert main(_train(shared_data, ckpt2, "--resume", "--num-neighbors", "5", "5")) == 0, capsys.readouterr().err
    capsys.readouterr()
    # real changes are still refused, naming the values on both sides
    assert main(_train(shared_data, ckpt, "--resume", "--jk", "max", "--monitor", "val_loss")) == 2
    assert 'jk "last" -> "max", monitor "val_acc" -> "val_loss"' in _error(capsys)
    assert main(_train(shared_data, ckpt, "--resume", "--residual")) == 2
    assert "residual false -> true" in _error(capsys)


def test_a_configuration_recorded_before_defaults_were_filled_in_still_resumes(shared_data: Path,
                                                                               tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    assert main(_train(shared_data, ckpt)) == 0
    path = seed_dir(ckpt, 0) / "config.json"
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["jk"] == "last" and saved["monitor"] == "val_acc"  # the configuration as it took effect
    # as the first release of config.json wrote it: the keys given, the layer as spelt
    for key in ("jk", "monitor", "residual", "activation", "plain_last", "virtual_node", "to_undirected"):
        saved.pop(key)
    path.write_text(json.dumps({**saved, "layer": "GCN"}), encoding="utf-8")
    assert main(_train(shared_data, ckpt, "--resume", "--jk", "last", "--layer", "GCN")) == 0
    assert main(_train(shared_data, ckpt, "--resume")) == 0


def test_library_configurations_compare_by_value() -> None:
    def scheduler(opt):  # noqa: ANN001, ANN202 - a function's repr holds its address
        return None

    assert json_plain({"s": scheduler}) == {"s": "<function test_library_configurations_compare_by_value."
                                                 "<locals>.scheduler>"}
    in_another_process = {"s": re.sub(r"0x[0-9a-f]+", "0x1234", repr(scheduler))}
    assert config_changes(in_another_process, {"s": scheduler}) == []
    assert config_changes({"h": np.int64(8), "lr": np.float32(0.5), "v": np.array([1, 2])},
                          {"h": 8, "lr": 0.5, "v": [1, 2]}) == []
    assert config_changes({"clip": float("nan"), "x": [float("nan")]}, {"clip": float("nan"), "x": [float("nan")]}) \
        == []
    assert config_changes({"h": np.int64(8)}, {"h": 16}) == ["h 8 -> 16"]


def test_a_function_or_numpy_number_in_the_configuration_resumes(tmp_path: Path) -> None:
    def scheduler(opt):  # noqa: ANN001, ANN202
        return None

    fit_with_checkpoints(_trainer(1), _graph(), checkpoint_dir=tmp_path, config={"scheduler": scheduler,
                                                                                  "hidden": np.int64(8)})
    path = seed_dir(tmp_path, 0) / "config.json"
    assert json.loads(path.read_text(encoding="utf-8"))["hidden"] == 8
    # another process resumes: the function lies at another address
    path.write_text(json.dumps({"scheduler": re.sub(r"0x[0-9a-f]+", "0x1234", repr(scheduler)), "hidden": 8}),
                    encoding="utf-8")
    result = fit_with_checkpoints(_trainer(1), _graph(), checkpoint_dir=tmp_path, resume=True,
                                  config={"scheduler": scheduler, "hidden": 8})
    assert result.extra["skipped"]
    with pytest.raises(ConfigError, match=r"hidden 8 -> 16"):
        fit_with_checkpoints(_trainer(1), _graph(), checkpoint_dir=tmp_path, resume=True,
                             config={"scheduler": scheduler, "hidden": np.int64(16)})


def test_a_metric_log_asked_for_on_resume_is_written_for_finished_seeds(shared_data: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    assert main(_train(shared_data, ckpt, "--seeds", "2", "--epochs", "2")) == 0
    log = tmp_path / "log.csv"
    assert main(_train(shared_data, ckpt, "--resume", "--seeds", "3", "--epochs", "2", "--log", str(log))) == 0
    for seed in range(3):
        rows = list(csv.DictReader((tmp_path / f"log_seed{seed}.csv").open(encoding="utf-8")))
        done = json.loads((seed_dir(ckpt, seed) / "done.json").read_text(encoding="utf-8"))
        assert [float(r["val_acc"]) for r in rows] == [h["val_acc"] for h in done["history"]]
    # the library: a finished seed's history goes to the trainer's MetricLogger
    fit_with_checkpoints(_trainer(2), _graph(), checkpoint_dir=tmp_path / "lib")
    trainer = _trainer(2, callbacks=[MetricLogger(tmp_path / "lib.json")])
    result = fit_with_checkpoints(trainer, _graph(), checkpoint_dir=tmp_path / "lib", resume=True)
    assert result.extra["skipped"]
    assert json.loads((tmp_path / "lib.json").read_text(encoding="utf-8")) == result.history


class _Killed(Exception):
    pass


class _KillAt(Callback):
    """Ends the run in epoch ``epoch`` (before it is checkpointed), as a kill would."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, trainer, logs) -> None:  # noqa: ANN001
        if trainer.epoch == self.epoch:
            raise _Killed


def test_a_refused_or_killed_extension_of_a_finished_seed_keeps_its_result(tmp_path: Path) -> None:
    fit_with_checkpoints(_trainer(2), _graph(), checkpoint_dir=tmp_path)
    folder = seed_dir(tmp_path, 0)
    before = _files(folder)
    # refused when last.pt loads (the library checks the Trainer's settings there): nothing is lost
    with pytest.raises(ConfigError, match=r'monitor "val_acc" -> "val_loss"'):
        fit_with_checkpoints(_trainer(3, monitor="val_loss"), _graph(), checkpoint_dir=tmp_path, resume=True)
    assert _files(folder) == before
    assert fit_with_checkpoints(_trainer(2), _graph(), checkpoint_dir=tmp_path, resume=True).extra["skipped"]
    # an extension killed after epoch 2: last.pt holds 3 epochs, done.json the 2 of the finished run
    with pytest.raises(_Killed):
        fit_with_checkpoints(_trainer(5, callbacks=[_KillAt(3)]), _graph(), checkpoint_dir=tmp_path, resume=True)
    assert len(json.loads((folder / "done.json").read_text(encoding="utf-8"))["history"]) == 2
    # best.pt may be of epoch 2 now: the 2-epoch record is not returned, as before the extension began
    with pytest.raises(ConfigError, match=r"last\.pt has trained 3 epochs, more than --epochs 2"):
        check_resume(tmp_path, [0], epochs=2)
    with pytest.raises(ConfigError, match=r"has trained 3 epochs, more than --epochs 2"):
        fit_with_checkpoints(_trainer(2), _graph(), checkpoint_dir=tmp_path, resume=True)
    check_resume(tmp_path, [0], epochs=5)
    resumed = fit_with_checkpoints(_trainer(5), _graph(), checkpoint_dir=tmp_path, resume=True)
    straight = fit_with_checkpoints(_trainer(5), _graph(), checkpoint_dir=tmp_path / "straight")
    assert resumed.extra["resumed"] and resumed.history == straight.history and resumed.best == straight.best
    assert len(json.loads((folder / "done.json").read_text(encoding="utf-8"))["history"]) == 5


def test_a_resume_without_epochs_continues_to_the_epochs_the_run_was_asked_for(shared_data: Path, tmp_path: Path,
                                                                                capsys: pytest.CaptureFixture[str]
                                                                                ) -> None:
    ckpt = tmp_path / "ckpt"
    assert main(_train(shared_data, ckpt, "--json", str(tmp_path / "a.json"))) == 0
    # no --epochs: the finished 1-epoch seed is returned, not trained on to the configuration's 200
    resume = [a for a in _train(shared_data, ckpt, "--resume", "--json", str(tmp_path / "b.json"))
              if a not in ("--epochs", "1")]
    assert main(resume) == 0, capsys.readouterr().err
    assert _record(tmp_path / "b.json")["epochs_run"] == [1] and _record(tmp_path / "b.json")["epochs"] == 1
    # a longer resume that stopped after seed 1 is completed for seed 0 too
    run = {"root": shared_data, "device": "cpu", "verbose": False, "checkpoint_dir": tmp_path / "two"}
    bench.run_config("cora", "gcn", seeds=2, epochs=1, **run)
    bench.run_config("cora", "gcn", seeds=[1], epochs=2, resume=True, **run)
    assert resumed_epochs(tmp_path / "two", [0, 1]) == 2
    record = bench.run_config("cora", "gcn", seeds=2, resume=True, **run)
    assert record["epochs"] == 2 and record["epochs_run"] == [2, 2]
    # the library: an extension to 5 epochs killed after 3 is asked for 5 by its last.pt
    fit_with_checkpoints(_trainer(2), _graph(), checkpoint_dir=tmp_path / "lib")
    with pytest.raises(_Killed):
        fit_with_checkpoints(_trainer(5, callbacks=[_KillAt(3)]), _graph(), checkpoint_dir=tmp_path / "lib",
                             resume=True)
    assert resumed_epochs(tmp_path / "lib", [0]) == 5 and resumed_epochs(tmp_path / "none", [0]) is None


def test_the_default_loss_by_name_resumes_and_another_loss_is_refused(shared_data: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = tmp_path / "ckpt"
    assert main(_train(shared_data, ckpt, "--json", str(tmp_path / "a.json"))) == 0
    for name in ("cross_entropy", "ce"):
        assert main(_train(shared_data, ckpt, "--resume", "--loss", name)) == 0, capsys.readouterr().err
    assert main(_train(shared_data, ckpt, "--resume", "--loss", "focal")) == 2
    assert 'loss "cross_entropy" -> "focal"' in _error(capsys)
    assert json.loads((seed_dir(ckpt, 0) / "config.json").read_text(encoding="utf-8"))["loss"] == "cross_entropy"


def test_another_number_of_processes_is_refused_on_resume(tmp_path: Path) -> None:
    folder = _unfinished(tmp_path)
    state = torch.load(folder / "last.pt", weights_only=False)
    assert state["settings"]["world_size"] == 1 and state["epochs"] == 2
    state["settings"]["world_size"] = 2  # as `graphdl train --nproc 2` writes it
    torch.save(state, folder / "last.pt")
    before = _files(folder)
    with pytest.raises(ConfigError, match=r"last\.pt was trained with other settings \(world_size 2 -> 1\)"):
        fit_with_checkpoints(_trainer(4), _graph(), checkpoint_dir=tmp_path, resume=True)
    assert _files(folder) == before
