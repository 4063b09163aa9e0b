"""Interrupt a fit anywhere, resume it in the same process, and get the uninterrupted fit's result, bit for bit.

Each case runs one uninterrupted fit and one that a KeyboardInterrupt stops (from a callback, inside a training
step, or inside a checkpoint write), then resumes the folder with a fresh Trainer: history, best epoch, test
metrics and final weights must be those of the uninterrupted fit (every fit here is deterministic on the CPU).
"""

import json
import os
import shutil
import tempfile

import pytest
import torch

import graphdl
import graphdl.io
from graphdl.errors import ConfigError
from graphdl.train import Callback, EarlyStopping, ModelCheckpoint, Trainer
from graphdl.train.resume import fit_with_checkpoints, seed_dir

from test_wave24_resume_settings import _graph, _link_data  # a 30-node graph with masks, and its link splits

KINDS = ("node", "sampled", "link", "graph")


def _data(kind):
    if kind in ("node", "sampled"):
        return _graph(), None
    if kind == "link":
        return _link_data()
    from torch_geometric.datasets import FakeDataset

    graphdl.seed_everything(123)
    dataset = FakeDataset(num_graphs=24, avg_num_nodes=6, num_channels=4, num_classes=2, task="graph")
    return dataset, {"train": torch.arange(16), "val": torch.arange(16, 20), "test": torch.arange(20, 24)}


def _trainer(kind, epochs, callbacks, **kw):
    graphdl.seed_everything(0)  # the same initial weights; the resumed fit loads its own anyway
    common = dict(epochs=epochs, seed=1, progress=False, device="cpu", callbacks=callbacks, **kw)
    if kind == "graph":
        model = graphdl.models.create("graph_gnn", layer="gin", in_channels=4, hidden_channels=8, out_channels=2,
                                      num_layers=2, dropout=0.3)
        return Trainer(model, "cross_entropy", "graph", task_kwargs={"batch_size": 5, "eval_batch_size": 8,
                                                                     "metric": "acc"}, **common)
    out = 8 if kind == "link" else 3
    model = graphdl.models.create("gnn", layer="sage", in_channels=4, hidden_channels=8, out_channels=out,
                                  num_layers=2, dropout=0.5)
    if kind == "link":  # negatives drawn from the global RNG every batch
        return Trainer(model, None, "link", task_kwargs={"batch_size": 16}, **common)
    task_kwargs = {"num_neighbors": [3, 2], "batch_size": 6} if kind == "sampled" else {}
    return Trainer(model, "cross_entropy", "node", task_kwargs=task_kwargs, **common)


class Interrupt(Callback):
    """Raise KeyboardInterrupt at epoch ``at``: in ``hook`` (a callback hook, or ``"step"``: the model's forward
    in a training step of that epoch)."""

    def __init__(self, at=None, hook="after_epoch"):
        self.at, self.hook = at, hook

    def on_fit_start(self, trainer):
        if self.hook == "step":
            def hook(module, args):
                if module.training and trainer.epoch == self.at:
                    raise KeyboardInterrupt
            trainer.model.register_forward_pre_hook(hook)

    def on_epoch_end(self, trainer, logs):
        if self.hook == "on_epoch_end" and trainer.epoch == self.at:
            raise KeyboardInterrupt

    def after_epoch(self, trainer, logs):
        if self.hook == "after_epoch" and trainer.epoch == self.at:
            raise KeyboardInterrupt

    def on_fit_end(self, trainer):
        if self.hook == "on_fit_end":
            raise KeyboardInterrupt


def _fit(kind, epochs, folder, callbacks, resume=False, **kw):
    trainer = _trainer(kind, epochs, callbacks, **kw)
    return trainer, fit_with_checkpoints(trainer, *_data(kind), checkpoint_dir=folder, resume=resume, seed=0)


def _interrupted(kind, epochs, folder, callbacks, **kw):
    with pytest.raises(KeyboardInterrupt):
        _fit(kind, epochs, folder, callbacks, **kw)
    assert not (seed_dir(folder, 0) / "done.json").exists()


def _assert_same(a_trainer, a, b_trainer, b):
    assert b.history == a.history
    assert (b.best_epoch, b.best, b.test) == (a.best_epoch, a.best, a.test) and a.test
    state_a, state_b = a_trainer.model.state_dict(), b_trainer.model.state_dict()
    assert state_a.keys() == state_b.keys()
    for name in state_a:
        assert torch.equal(state_a[name], state_b[name]), name


@pytest.fixture(autouse=True)
def _no_fsync(monkeypatch):
    """fsync makes a write survive power loss, not an interrupted process: skipped here for speed."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


_REFERENCES: dict = {}


def _reference(key, kind, epochs, make_callbacks, **kw):
    """The uninterrupted fit's (trainer, result), run once per ``key``."""
    if key not in _REFERENCES:
        with tempfile.TemporaryDirectory() as folder:
            _REFERENCES[key] = _fit(kind, epochs, folder, make_callbacks(), **kw)
    return _REFERENCES[key]


def _check_resume(tmp_path, key, kind, epochs, make_callbacks, interrupt, **kw):
    full_trainer, full = _reference(key, kind, epochs, make_callbacks, **kw)
    _interrupted(kind, epochs, tmp_path, make_callbacks() + [interrupt], **kw)
    trainer, resumed = _fit(kind, epochs, tmp_path, make_callbacks(), resume=True, **kw)
    assert resumed.extra["resumed"]
    _assert_same(full_trainer, full, trainer, resumed)
    return full_trainer, full


POINTS = {"after epoch 0": Interrupt(0), "mid-way, before last.pt": Interrupt(1, "on_epoch_end"),
          "inside a training step": Interrupt(1, "step"), "after the last epoch": Interrupt(2),
          "after training, before done.json": Interrupt(hook="on_fit_end")}


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("kind", KINDS)
def test_an_interrupted_fit_resumes_exactly(tmp_path, kind, point):
    _check_resume(tmp_path, (kind, "best"), kind, 3, lambda: [ModelCheckpoint()], POINTS[point])


@pytest.mark.parametrize("kind,point", [(k, "after training, before done.json") for k in KINDS]
                         + [("graph", "mid-way, before last.pt")])
def test_restore_best_false_resumes_in_the_final_weights(tmp_path, kind, point):
    _check_resume(tmp_path, (kind, "last"), kind, 3, lambda: [ModelCheckpoint(restore_best=False)], POINTS[point])


def _step(opt):
    return torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)


def _plateau(opt):  # threshold 0.5: an epoch counts as better only when 50% better, so it lowers the rate
    return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=0, threshold=0.5)


@pytest.mark.parametrize("kind,scheduler", [("node", _step), ("graph", _step), ("sampled", _plateau),
                                            ("link", _plateau)])
def test_lr_schedulers_resume_exactly(tmp_path, kind, scheduler):
    full_trainer, _ = _check_resume(tmp_path, (kind, scheduler.__name__), kind, 4, lambda: [ModelCheckpoint()],
                                    Interrupt(1), scheduler=scheduler)
    assert full_trainer.optimizer.param_groups[0]["lr"] < 0.01  # the schedule did lower it


@pytest.mark.parametrize("kind,stopper_first,restore_best", [("node", False, True), ("node", True, False),
                                                             ("graph", False, False), ("graph", True, True)])
def test_early_stopping_resumes_exactly(tmp_path, kind, stopper_first, restore_best):
    def callbacks():
        pair = [ModelCheckpoint(restore_best=restore_best), EarlyStopping(patience=1)]
        return pair[::-1] if stopper_first else pair

    _, full = _check_resume(tmp_path, (kind, stopper_first, restore_best), kind, 12, callbacks, Interrupt(1))
    assert len(full.history) < 12  # it stopped early


def _save_interrupted_on(which, call):
    """A torch.save that writes half a file and is interrupted on the ``call``-th save of ``which``."""
    real, seen = torch.save, []

    def save(obj, f, *args, **kwargs):
        if ("history" in obj) == (which == "last.pt"):
            seen.append(1)
            if len(seen) == call:
                f.write(b"PK\x03\x04 half a checkpoint")
                raise KeyboardInterrupt
        return real(obj, f, *args, **kwargs)
    return save


@pytest.mark.parametrize("kind,which,call", [("node", "last.pt", 1), ("node", "last.pt", 3), ("node", "best.pt", 2),
                                           ("link", "last.pt", 3), ("graph", "best.pt", 2)])
def test_an_interrupted_checkpoint_write_keeps_the_previous_one_and_resumes_exactly(tmp_path, monkeypatch, kind,
                                                                                    which, call):
    full_trainer, full = _reference((kind, "train_loss"), kind, 4, lambda: [ModelCheckpoint()], monitor="train_loss")
    with monkeypatch.context() as patch:
        patch.setattr(graphdl.io.torch, "save", _save_interrupted_on(which, call))
        _interrupted(kind, 4, tmp_path / "part", [ModelCheckpoint()], monitor="train_loss")
    folder = seed_dir(tmp_path / "part", 0)
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]  # no half file left
    if which == "last.pt" and call == 1:
        assert not (folder / "last.pt").exists()
    else:  # the previous complete checkpoint, readable
        previous = torch.load(folder / "last.pt", weights_only=False)
        assert previous["epoch"] == call - 2 if which == "last.pt" else previous["epoch"] >= 0
        assert [h["epoch"] for h in previous["history"]] == list(range(previous["epoch"] + 1))
    torch.load(folder / "best.pt", weights_only=False)
    trainer, resumed = _fit(kind, 4, tmp_path / "part", [ModelCheckpoint()], resume=True, monitor="train_loss")
    _assert_same(full_trainer, full, trainer, resumed)


def test_an_interrupted_done_json_write_resumes_exactly(tmp_path, monkeypatch):
    full_trainer, full = _reference(("graph", "best"), "graph", 3, lambda: [ModelCheckpoint()])
    real = json.dump

    def dump(obj, fp, *args, **kwargs):
        if isinstance(obj, dict) and "stopped_early" in obj:
            fp.write('{"best_epoch": ')
            raise KeyboardInterrupt
        return real(obj, fp, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(graphdl.io.json, "dump", dump)
        _interrupted("graph", 3, tmp_path / "part", [ModelCheckpoint()])
    assert sorted(p.name for p in seed_dir(tmp_path / "part", 0).iterdir()) == ["best.pt", "last.pt"]
    trainer, resumed = _fit("graph", 3, tmp_path / "part", [ModelCheckpoint()], resume=True)
    _assert_same(full_trainer, full, trainer, resumed)


def test_the_interrupted_trainer_itself_resumes_exactly(tmp_path):
    full_trainer, full = _reference(("node", "patience 10"), "node", 4,
                                    lambda: [ModelCheckpoint(), EarlyStopping(patience=10)])
    interrupt = Interrupt(2)
    trainer = _trainer("node", 4, [ModelCheckpoint(), EarlyStopping(patience=10), interrupt])
    with pytest.raises(KeyboardInterrupt):
        fit_with_checkpoints(trainer, *_data("node"), checkpoint_dir=tmp_path / "part", seed=0)
    interrupt.at = None
    resumed = fit_with_checkpoints(trainer, *_data("node"), checkpoint_dir=tmp_path / "part", resume=True, seed=0)
    _assert_same(full_trainer, full, trainer, resumed)


def test_a_longer_run_interrupted_and_resumed_equals_one_uninterrupted(tmp_path):
    """A finished 2-epoch seed extended to 5 epochs (StepLR), interrupted at epoch 3, resumed: the 5-epoch fit."""
    kind = "link"
    full_trainer, full = _fit(kind, 5, tmp_path / "full", [ModelCheckpoint()], scheduler=_step,
                              log_path=tmp_path / "full.csv")
    _fit(kind, 2, tmp_path / "part", [ModelCheckpoint()], scheduler=_step, log_path=tmp_path / "part.csv")
    with pytest.raises(KeyboardInterrupt):
        _fit(kind, 5, tmp_path / "part", [ModelCheckpoint(), Interrupt(3)], resume=True, scheduler=_step)
    trainer, resumed = _fit(kind, 5, tmp_path / "part", [ModelCheckpoint()], resume=True, scheduler=_step,
                            log_path=tmp_path / "part.csv")
    _assert_same(full_trainer, full, trainer, resumed)
    assert (tmp_path / "part.csv").read_text() == (tmp_path / "full.csv").read_text()


# ---------------------------------------------------------------------------- fixed bugs
@pytest.mark.parametrize("restore_best", [True, False])
def test_a_finished_seed_resumed_ends_in_the_fits_weights_with_every_n_epochs(tmp_path, restore_best):
    """Before: with every_n_epochs=2 and 5 epochs last.pt stopped at epoch 3, so a finished seed resumed with
    restore_best=False loaded no weights at all: the model stayed at its initialisation."""
    def callbacks():
        return [ModelCheckpoint(every_n_epochs=2, restore_best=restore_best)]

    full_trainer, full = _fit("node", 5, tmp_path, callbacks())
    assert torch.load(seed_dir(tmp_path, 0) / "last.pt", weights_only=False)["epoch"] == 4  # the final epoch
    trainer, again = _fit("node", 5, tmp_path, callbacks(), resume=True)
    assert again.extra["skipped"]
    _assert_same(full_trainer, full, trainer, again)


def test_an_early_stopped_run_writes_its_final_epoch_to_last_pt(tmp_path):
    trainer, result = _fit("node", 12, tmp_path, [ModelCheckpoint(every_n_epochs=5), EarlyStopping(patience=1)])
    last = torch.load(seed_dir(tmp_path, 0) / "last.pt", weights_only=False)
    assert len(result.history) < 5 and last["epoch"] == len(result.history) - 1 and last["should_stop"]


def test_a_finished_seed_without_its_final_last_pt_is_named_for_restore_best_false(tmp_path):
    """A folder whose last.pt lags the finished run (written before the final epoch was always saved)."""
    _fit("node", 2, tmp_path / "short", [ModelCheckpoint()])
    _fit("node", 4, tmp_path, [ModelCheckpoint(restore_best=False)])
    folder = seed_dir(tmp_path, 0)
    shutil.copy(seed_dir(tmp_path / "short", 0) / "last.pt", folder / "last.pt")  # epoch 1 of 4
    with pytest.raises(ConfigError) as err:
        _fit("node", 4, tmp_path, [ModelCheckpoint(restore_best=False)], resume=True)
    assert str(err.value) == (
        f"{folder} holds no last.pt of the finished run's final epoch 3 (a ModelCheckpoint with every_n_epochs > 1 "
        f"skipped it), so the model cannot end in its final weights as restore_best=False asks; resume with "
        f"restore_best=True to load its best weights (best.pt), or delete the folder to train the seed afresh")


@pytest.mark.parametrize("kind", ["node", "graph"])
def test_a_longer_run_killed_after_best_pt_does_not_change_the_finished_seeds_weights(tmp_path, kind):
    """Before: a finished 3-epoch seed extended to 6 and killed in epoch 3 after best.pt was written but before
    last.pt (its longest write) left best.pt of epoch 3; resuming the seed with its 3 epochs returned the
    3-epoch record with best_epoch <= 2 but loaded the weights of epoch 3 (off by ~0.03)."""
    full_trainer, full = _fit(kind, 3, tmp_path / "part", [ModelCheckpoint()], monitor="train_loss")
    with pytest.raises(KeyboardInterrupt):
        _fit(kind, 6, tmp_path / "part", [ModelCheckpoint(), Interrupt(3, "on_epoch_end")], resume=True,
             monitor="train_loss")
    folder = seed_dir(tmp_path / "part", 0)
    assert torch.load(folder / "best.pt", weights_only=False)["epoch"] == 3  # ahead of last.pt and done.json
    trainer, again = _fit(kind, 3, tmp_path / "part", [ModelCheckpoint()], resume=True, monitor="train_loss")
    assert again.extra["skipped"]
    _assert_same(full_trainer, full, trainer, again)
    # with neither last.pt's state nor best.pt of the recorded run, the mismatch is named, not loaded
    (folder / "last.pt").unlink()
    with pytest.raises(ConfigError, match=r"best.pt holds the weights of epoch 3, after the 3 epochs the finished "
                                          r"run in .* recorded \(a longer run that continued it was killed\)"):
        _fit(kind, 3, tmp_path / "part", [ModelCheckpoint()], resume=True, monitor="train_loss")


def test_atomic_write_closes_the_file_descriptor_when_open_refuses_its_arguments(tmp_path, monkeypatch):
    """Before: os.fdopen refusing the arguments (encoding= with "wb") leaked the descriptor os.open gave."""
    opened = []
    real_open = os.open

    def recording_open(*args, **kwargs):
        opened.append(real_open(*args, **kwargs))
        return opened[-1]

    with monkeypatch.context() as patch:
        patch.setattr(graphdl.io.os, "open", recording_open)
        with pytest.raises(ValueError, match="binary mode doesn't take an encoding argument"):
            with graphdl.io.atomic_write(tmp_path / "x.bin", "wb", encoding="utf-8"):
                pass
    assert len(opened) == 1
    with pytest.raises(OSError):  # closed: EBADF
        os.fstat(opened[0])
    assert list(tmp_path.iterdir()) == []
