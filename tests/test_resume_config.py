"""Resuming with another configuration is refused before training, naming the changes; damaged files of a
finished seed, bench ``--set`` values and ``bench report`` pieces give clear errors, not tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import graphdl
import graphdl.bench as bench
from graphdl.bench.__main__ import main as bench_main
from graphdl.cli import main
from graphdl.errors import ConfigError
from graphdl.train import EarlyStopping, ModelCheckpoint, Trainer
from graphdl.train.callbacks import MetricLogger
from graphdl.train.resume import check_resume, fit_with_checkpoints, seed_dir
from test_resume import _graph  # a small node-classification graph with masks (test_resume_cli imports it here)


# ---------------------------------------------------------------------------- helpers
def _trainer(epochs: int, callbacks=(), hidden: int = 8, **kw) -> Trainer:
    graphdl.seed_everything(0)
    model = graphdl.models.create("gnn", layer="sage", in_channels=5, hidden_channels=hidden, out_channels=3,
                                  num_layers=2, dropout=0.5)
    return Trainer(model, "cross_entropy", "node", epochs=epochs, seed=1, progress=False, device="cpu",
                   callbacks=list(callbacks), **kw)


def _unfinished(folder: Path, epochs: int = 2, **kw) -> Path:
    """A seed folder as a run killed after ``epochs`` epochs leaves it: last.pt and best.pt, no done.json."""
    fit_with_checkpoints(_trainer(epochs, **kw), _graph(), checkpoint_dir=folder, seed=0)
    (seed_dir(folder, 0) / "done.json").unlink()
    return seed_dir(folder, 0)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def _cora(root: Path, folder: Path, *extra: str) -> list[str]:
    return ["train", "--dataset", "cora", "--epochs", "2", "--root", str(root), "--device", "cpu",
            "--checkpoint-dir", str(folder), *extra]


# ---------------------------------------------------------------------------- 1-3: configuration on resume
def test_a_changed_configuration_is_refused_naming_old_and_new_values(shared_data: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = tmp_path / "ckpt"
    assert main(_cora(shared_data, ckpt, "--json", str(tmp_path / "a.json"))) == 0
    # finished seed: the stored result must not be reported under the new configuration
    assert main(_cora(shared_data, ckpt, "--resume", "--lr", "0.5", "--dropout", "0.2",
                      "--json", str(tmp_path / "b.json"))) == 2
    err = _error(capsys)
    assert f"{seed_dir(ckpt, 0)} was trained with another configuration: dropout 0.5 -> 0.2, lr 0.01 -> 0.5." in err
    assert "another --checkpoint-dir (and write it to another --json path)" in err
    assert not (tmp_path / "b.json").exists()
    # unfinished seed: refused before it trains on, every file left as it was
    (seed_dir(ckpt, 0) / "done.json").unlink()
    before = _files(seed_dir(ckpt, 0))
    assert main(_cora(shared_data, ckpt, "--resume", "--weight-decay", "0.01", "--num-neighbors", "5", "5")) == 2
    assert "num_neighbors (not set) -> [5, 5], weight_decay 0.0005 -> 0.01" in _error(capsys)
    assert _files(seed_dir(ckpt, 0)) == before
    # the same configuration resumes; a metric log (stateless callback) may be added on resume
    assert main(_cora(shared_data, ckpt, "--resume", "--log", str(tmp_path / "log.csv"))) == 0
    assert (seed_dir(ckpt, 0) / "done.json").is_file()


def test_more_epochs_extend_a_finished_seed_exactly_and_fewer_are_refused(shared_data: Path, tmp_path: Path) -> None:
    fresh = bench.run_config("cora", "gcn", seeds=1, epochs=3, root=shared_data, device="cpu", verbose=False,
                             checkpoint_dir=tmp_path / "fresh")
    bench.run_config("cora", "gcn", seeds=1, epochs=2, root=shared_data, device="cpu", verbose=False,
                     checkpoint_dir=tmp_path / "ckpt")
    extended = bench.run_config("cora", "gcn", seeds=1, epochs=3, root=shared_data, device="cpu", verbose=False,
                                checkpoint_dir=tmp_path / "ckpt", resume=True)
    assert extended["epochs_run"] == [3] and extended["curves"] == fresh["curves"]
    assert extended["runs"] == fresh["runs"]
    with pytest.raises(ConfigError, match=r"has trained 3 epochs, more than --epochs 2; a resumed run cannot undo "
                                          r"epochs\. Resume with --epochs 3 or more"):
        bench.run_config("cora", "gcn", seeds=1, epochs=2, root=shared_data, device="cpu", verbose=False,
                         checkpoint_dir=tmp_path / "ckpt", resume=True)
    # an unfinished seed: fewer epochs than its checkpoint holds is refused before anything loads
    (seed_dir(tmp_path / "ckpt", 0) / "done.json").unlink()
    with pytest.raises(ConfigError, match=r"last\.pt has trained 3 epochs, more than --epochs 1"):
        check_resume(tmp_path / "ckpt", [0], epochs=1)


def test_a_changed_monitor_is_refused_before_training(shared_data: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = tmp_path / "ckpt"
    assert main(_cora(shared_data, ckpt)) == 0
    (seed_dir(ckpt, 0) / "done.json").unlink()
    before = _files(seed_dir(ckpt, 0))
    assert main(_cora(shared_data, ckpt, "--resume", "--epochs", "3", "--monitor", "val_loss")) == 2
    assert 'monitor "val_acc" -> "val_loss"' in _error(capsys)  # the default it took, named
    assert _files(seed_dir(ckpt, 0)) == before  # best.pt untouched
    # the Trainer itself refuses too (a library run without a recorded configuration)
    folder = _unfinished(tmp_path / "lib")
    before = _files(folder)
    with pytest.raises(ConfigError, match=r'last\.pt was trained with other settings \(monitor "val_acc" -> '
                                          r'"val_loss"\)'):
        fit_with_checkpoints(_trainer(4, monitor="val_loss"), _graph(), checkpoint_dir=tmp_path / "lib",
                             resume=True)
    assert _files(folder) == before


def test_a_finished_seed_resumed_with_another_model_is_named(shared_data: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = tmp_path / "ckpt"
    assert main(_cora(shared_data, ckpt)) == 0
    assert main(_cora(shared_data, ckpt, "--resume", "--hidden", "32")) == 2
    assert "hidden_channels 16 -> 32" in _error(capsys)
    # library level: best.pt does not fit the model the trainer was built with
    fit_with_checkpoints(_trainer(2), _graph(), checkpoint_dir=tmp_path / "lib")
    with pytest.raises(ConfigError, match=r"best\.pt does not fit this model .*the seed finished with another "
                                          r"model configuration; resume with the configuration it was trained with"):
        fit_with_checkpoints(_trainer(2, hidden=16), _graph(), checkpoint_dir=tmp_path / "lib", resume=True)


# ---------------------------------------------------------------------------- 4: damaged files of a finished seed
def test_a_damaged_best_pt_or_done_json_of_a_finished_seed_names_the_file(tmp_path: Path) -> None:
    fit_with_checkpoints(_trainer(2), _graph(), checkpoint_dir=tmp_path)
    folder = seed_dir(tmp_path, 0)
    done = (folder / "done.json").read_text()
    for content in (b"garbage", b"PK\x03\x04garbage"):
        (folder / "best.pt").write_bytes(content)
        with pytest.raises(ConfigError, match=rf"{folder}/best\.pt of a finished run cannot be read .*delete the "
                                              rf"folder {folder} to train that seed again"):
            fit_with_checkpoints(_trainer(2), _graph(), checkpoint_dir=tmp_path, resume=True)
        with pytest.raises(ConfigError, match=r"best\.pt of a finished run cannot be read"):
            check_resume(tmp_path, [0])  # before any seed trains
    (folder / "best.pt").unlink()
    for record in ('{"best_epoch": 0, "best": {"val_acc": 1}, "history": [1], "seconds": 1, "monitor": "val_acc"}',
                   '{"best_epoch": 0, "best": {}, "history": [{"epoch": 0}], "seconds": 1, "monitor": "val_acc"}'):
        (folder / "done.json").write_text(record)
        with pytest.raises(ConfigError, match=rf"{folder}/done\.json is not a valid record of a finished run"):
            fit_with_checkpoints(_trainer(2), _graph(), checkpoint_dir=tmp_path, resume=True)
    (folder / "done.json").write_text(done)
    assert fit_with_checkpoints(_trainer(2), _graph(), checkpoint_dir=tmp_path, resume=True).extra["skipped"]


# ---------------------------------------------------------------------------- 5-6: callbacks and optimiser
def test_callbacks_are_matched_by_class_and_stateless_ones_may_change(tmp_path: Path) -> None:
    full = fit_with_checkpoints(_trainer(4, [EarlyStopping(patience=5), ModelCheckpoint()]), _graph(),
                                checkpoint_dir=tmp_path / "full")
    _unfinished(tmp_path / "part", callbacks=[EarlyStopping(patience=5), ModelCheckpoint()],
                log_path=tmp_path / "log.csv")
    # order swapped, metric log dropped: resumes exactly
    resumed = fit_with_checkpoints(_trainer(4, [ModelCheckpoint(), EarlyStopping(patience=5)]), _graph(),
                                   checkpoint_dir=tmp_path / "part", resume=True)
    assert resumed.history == full.history
    # a metric log added on resume is fine too
    _unfinished(tmp_path / "part2", callbacks=[EarlyStopping(patience=5)])
    resumed = fit_with_checkpoints(_trainer(4, [EarlyStopping(patience=5), MetricLogger(tmp_path / "l.json")]),
                                   _graph(), checkpoint_dir=tmp_path / "part2", resume=True)
    assert resumed.history == full.history and len(json.loads((tmp_path / "l.json").read_text())) == 4
    # a stateful callback added, dropped or changed is named
    folder = _unfinished(tmp_path / "part3")
    with pytest.raises(ConfigError, match=r"written with other stateful callbacks: it holds no state for "
                                          r"EarlyStopping \(added since\)"):
        fit_with_checkpoints(_trainer(4, [EarlyStopping()]), _graph(), checkpoint_dir=tmp_path / "part3",
                             resume=True)
    (folder.parent).rename(tmp_path / "gone")
    _unfinished(tmp_path / "part3", callbacks=[EarlyStopping(patience=5)])
    with pytest.raises(ConfigError, match=r"it holds the state of EarlyStopping, which this trainer lacks "
                                          r"\(removed since\)"):
        fit_with_checkpoints(_trainer(4), _graph(), checkpoint_dir=tmp_path / "part3", resume=True)
    with pytest.raises(ConfigError, match=r"EarlyStopping was checkpointed with other settings \(patience 5 -> 9\)"):
        fit_with_checkpoints(_trainer(4, [EarlyStopping(patience=9)]), _graph(), checkpoint_dir=tmp_path / "part3",
                             resume=True)


def test_a_changed_optimizer_or_learning_rate_is_named(tmp_path: Path) -> None:
    folder = _unfinished(tmp_path)
    before = _files(folder)
    for kw, change in (({"optimizer": "sgd"}, 'optimizer "torch.optim.adam.Adam" -> "torch.optim.sgd.SGD"'),
                       ({"optimizer": "rmsprop"}, 'optimizer "torch.optim.adam.Adam" -> '),
                       ({"lr": 0.5}, "lr 0.01 -> 0.5"), ({"weight_decay": 0.1}, "weight_decay 0.0 -> 0.1")):
        with pytest.raises(ConfigError) as err:
            fit_with_checkpoints(_trainer(4, **kw), _graph(), checkpoint_dir=tmp_path, resume=True)
        assert f"last.pt was trained with other settings ({change}" in str(err.value)
    assert _files(folder) == before


def test_checkpoints_written_before_settings_were_recorded_still_resume(tmp_path: Path) -> None:
    full = fit_with_checkpoints(_trainer(4, [EarlyStopping(patience=5)]), _graph(), checkpoint_dir=tmp_path / "f")
    folder = _unfinished(tmp_path / "p", callbacks=[EarlyStopping(patience=5)])
    state = torch.load(folder / "last.pt", weights_only=False)
    for key in ("settings", "callback_types"):
        state.pop(key, None)
    state["callbacks"] = [{k: s[k] for k in s if k not in ("monitor", "patience", "min_delta")}
                          for s in state["callbacks"]]
    torch.save(state, folder / "last.pt")
    (folder / "config.json").unlink(missing_ok=True)
    resumed = fit_with_checkpoints(_trainer(4, [EarlyStopping(patience=5)], log_path=tmp_path / "l.csv"), _graph(),
                                   checkpoint_dir=tmp_path / "p", resume=True)
    assert resumed.history == full.history


# ---------------------------------------------------------------------------- 7-9, 11-12: input checks
@pytest.mark.parametrize("argv, message", [
    (["--set", 'eval_splits=["val"]'], "eval_splits=['val'] leaves out 'test': the benchmark reports the test score "
                                       "at the best validation epoch"),
    (["--set", 'lr="abc"'], "configuration key 'lr' must be a number > 0, got str 'abc'"),
    (["--set", 'patience="x"'], "configuration key 'patience' must be an int >= 1"),
    (["--set", "patience=0"], "configuration key 'patience' must be an int >= 1 (the epochs without improvement "
                              "before stopping; leave it out to train every epoch), got int 0"),
    (["--set", "grad_clip=-1"], "configuration key 'grad_clip' must be a number > 0"),
    (["--set", 'heads="x"'], "configuration key 'heads' must be an int >= 1, got str 'x'"),
    (["--set", 'loss_kwargs={"label_smoothing": 0.1}'], "loss_kwargs needs loss"),
    (["--seeds", "100000000000"], "--seeds must be at most 10000 per run, got 100000000000"),
    (["--first-seed", "100000000000000000000"], "seeds must lie in [-2**63, 2**64)"),
])
def test_bench_run_refuses_bad_values_before_training(argv: list[str], message: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    def no_data(*args, **kwargs):
        raise AssertionError("the data loaded: the value was not checked before training")

    monkeypatch.setattr(bench.runner._Prepared, "__init__", no_data)
    out = tmp_path / "r.json"
    assert bench_main(["run", "cora", "gcn", "--epochs", "1", "--root", str(tmp_path), "--json", str(out),
                       *argv]) == 2
    assert message in _error(capsys)
    assert not out.exists()


def test_train_command_names_loss_kwargs_without_loss_and_huge_seed_counts(monkeypatch: pytest.MonkeyPatch,
                                                                            capsys: pytest.CaptureFixture[str]
                                                                            ) -> None:
    def no_training(*args, **kwargs):
        raise AssertionError("the run started: the input was not checked")

    monkeypatch.setattr(bench, "run_config", no_training)
    assert main(["train", "--loss-kwargs", '{"label_smoothing": 0.1}']) == 2
    assert _error(capsys) == ("graphdl: error: --loss-kwargs needs --loss NAME: name the loss these arguments are for "
                              "(graphdl list losses), e.g. --loss cross_entropy --loss-kwargs "
                              "'{\"label_smoothing\": 0.1}'")
    assert main(["train", "--seeds", "100000000000"]) == 2
    assert "'seeds' must be at most 10000" in _error(capsys)
    with pytest.raises(ConfigError, match="seeds must be at most 10000 per run, got 100000000000"):
        bench.runner.run_config("cora", "gcn", seeds=10**11)


# ---------------------------------------------------------------------------- 10: bench report
def _record(seeds: list[int], **changes) -> dict:
    record = {"dataset": "cora", "model": "gcn", "metric": "acc", "higher_is_better": True, "mean": 0.5,
              "std": None, "runs": [0.5 + 0.1 * s for s in seeds], "seeds": seeds, "valid_runs": [0.4] * len(seeds),
              "best_epochs": [1] * len(seeds), "epochs": 2, "epochs_run": [2] * len(seeds), "seconds": 1.0,
              "seconds_per_epoch": 0.25, "train_seconds_per_epoch": 0.1, "reference": None, "reference_std": None,
              "reference_source": None, "config": {"model": "gcn", "epochs": 2}, "status": "ok",
              "curves": {k: [[0.1, 0.2]] * len(seeds) for k in ("train_loss", "train", "val", "test")}}
    record.update(changes)
    return record


def test_report_shows_what_pieces_have_and_marks_missing_figures_na(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    no_loss = _record([1])
    del no_loss["curves"]["train_loss"]
    pieces = {"a.json": [_record([0])], "b.json": [no_loss], "c.json": [_record([2], seconds_per_epoch=None)]}
    for name, records in pieces.items():
        (tmp_path / name).write_text(json.dumps({"records": records}))
    files = [str(tmp_path / n) for n in pieces]
    assert bench_main(["report", files[0], files[1], "--json", str(tmp_path / "ab.json"),
                       "--png", str(tmp_path / "ab.png")]) == 0
    merged = json.loads((tmp_path / "ab.json").read_text())["records"][0]
    assert merged["seeds"] == [0, 1] and sorted(merged["curves"]) == ["test", "train", "val"]
    assert merged["seconds_per_epoch"] == 0.25
    capsys.readouterr()
    assert bench_main(["report", *files, "--json", str(tmp_path / "abc.json")]) == 0
    merged = json.loads((tmp_path / "abc.json").read_text())["records"][0]
    assert merged["seeds"] == [0, 1, 2] and merged["seconds_per_epoch"] is None  # not a's and b's figure
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| cora")][0]
    assert row.endswith("| n/a |") and "3 x 2" in row
    assert bench_main(["report", files[2]]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("| n/a |")
