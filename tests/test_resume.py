"""Exact resume: a run killed mid-training and resumed ends like an uninterrupted one; atomic checkpoints."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from torch_geometric.data import Data

import graphdl
import graphdl.io
from graphdl.errors import ConfigError
from graphdl.io import atomic_write_json, atomic_write_text
from graphdl.train import EarlyStopping, ModelCheckpoint, Trainer
from graphdl.train.resume import fit_with_checkpoints, latest_checkpoint, seed_dir

EPOCHS = 6
KILL_AFTER = 2

SCRIPT = textwrap.dedent('''
    """A graph-level run (GIN with BatchNorm and dropout, shuffled DataLoader) that checkpoints every epoch."""
    import sys
    import time

    import torch
    from torch_geometric.datasets import FakeDataset

    import graphdl
    from graphdl.io import atomic_torch_save
    from graphdl.train import Callback, EarlyStopping, ModelCheckpoint, Trainer
    from graphdl.train.resume import fit_with_checkpoints

    checkpoint_dir, out, mode, epochs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    torch.set_num_threads(1)


    class Marker(Callback):
        def after_epoch(self, trainer, logs):  # runs after ModelCheckpoint wrote last.pt for this epoch
            print(f"epoch {trainer.epoch} done", flush=True)
            time.sleep(0.1)


    graphdl.seed_everything(123)
    dataset = FakeDataset(num_graphs=40, avg_num_nodes=8, num_channels=4, num_classes=2, task="graph")
    splits = {"train": torch.arange(28), "val": torch.arange(28, 34), "test": torch.arange(34, 40)}
    graphdl.seed_everything(0)
    model = graphdl.models.create("graph_gnn", layer="gin", in_channels=4, hidden_channels=16, out_channels=2,
                                  num_layers=2, dropout=0.3)
    trainer = Trainer(model, "cross_entropy", "graph", task_kwargs={"batch_size": 6, "metric": "acc"},
                      epochs=epochs, lr=0.01, seed=0, progress=False, device="cpu", log_path=out + ".csv",
                      callbacks=[ModelCheckpoint(), EarlyStopping(patience=50), Marker()])
    result = fit_with_checkpoints(trainer, dataset, splits, checkpoint_dir, resume=mode == "resume", seed=0)
    atomic_torch_save({"params": model.state_dict(), "history": result.history, "best": result.best,
                       "best_epoch": result.best_epoch}, out)
    print("finished", flush=True)
''')


def _start(script, checkpoint_dir, out, mode):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, str(script), str(checkpoint_dir), str(out), mode, str(EPOCHS)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _run(script, checkpoint_dir, out, mode):
    return subprocess.run([sys.executable, str(script), str(checkpoint_dir), str(out), mode, str(EPOCHS)],
                          capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=120)


def test_a_killed_run_resumed_ends_exactly_like_an_uninterrupted_one(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    full = _start(script, tmp_path / "full", tmp_path / "full.pt", "fresh")
    killed = _start(script, tmp_path / "ckpt", tmp_path / "killed.pt", "fresh")
    seen = []
    for line in killed.stdout:
        seen.append(line.strip())
        if line.strip() == f"epoch {KILL_AFTER} done":
            killed.send_signal(signal.SIGKILL)
            break
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL, (seen, killed.stderr.read())
    folder = seed_dir(tmp_path / "ckpt", 0)
    assert not (tmp_path / "killed.pt").exists() and not (folder / "done.json").exists()
    stopped_at = torch.load(latest_checkpoint(folder), weights_only=False)["epoch"]
    assert KILL_AFTER <= stopped_at < EPOCHS - 1  # killed in the middle of training

    resumed = _run(script, tmp_path / "ckpt", tmp_path / "resumed.pt", "resume")
    assert resumed.returncode == 0, resumed.stderr
    markers = [int(line.split()[1]) for line in resumed.stdout.splitlines() if line.startswith("epoch ")]
    assert markers == list(range(stopped_at + 1, EPOCHS))  # continued, did not start again
    full_out, full_err = full.communicate(timeout=120)
    assert full.returncode == 0, full_err

    a = torch.load(tmp_path / "full.pt", weights_only=False)
    b = torch.load(tmp_path / "resumed.pt", weights_only=False)
    assert a["history"] == b["history"] and a["best"] == b["best"] and a["best_epoch"] == b["best_epoch"]
    assert len(a["history"]) == EPOCHS
    assert a["params"].keys() == b["params"].keys()
    for name in a["params"]:
        assert torch.equal(a["params"][name], b["params"][name]), name
    # The metric log, rewritten atomically every epoch, is complete and identical too.
    assert (tmp_path / "full.pt.csv").read_text() == (tmp_path / "resumed.pt.csv").read_text()
    done = json.loads((folder / "done.json").read_text())
    assert done["history"] == b["history"]
    # Resuming again finds done.json: the seed is skipped, its result returned, its best weights loaded.
    graphdl.seed_everything(1)
    model = graphdl.models.create("graph_gnn", layer="gin", in_channels=4, hidden_channels=16, out_channels=2,
                                  num_layers=2, dropout=0.3)
    trainer = Trainer(model, "cross_entropy", "graph", task_kwargs={"batch_size": 6, "metric": "acc"},
                      epochs=EPOCHS, lr=0.01, seed=0, progress=False, device="cpu")  # the run's settings
    trainer.fit = None  # must not train
    again = fit_with_checkpoints(trainer, None, checkpoint_dir=tmp_path / "ckpt", resume=True, seed=0)
    assert again.extra["skipped"] and again.history == a["history"] and again.best == a["best"]
    for name, value in model.state_dict().items():
        assert torch.equal(a["params"][name], value), name


# ---------------------------------------------------------------------------- in-process
def _graph(n=60, seed=0):
    gen = torch.Generator().manual_seed(seed)
    data = Data(x=torch.randn(n, 5, generator=gen), edge_index=torch.randint(0, n, (2, 240), generator=gen),
                y=torch.randint(0, 3, (n,), generator=gen))
    data.train_mask = torch.arange(n) < 40
    data.val_mask = (torch.arange(n) >= 40) & (torch.arange(n) < 50)
    data.test_mask = torch.arange(n) >= 50
    return data


def _model(seed=0):
    graphdl.seed_everything(seed)
    return graphdl.models.create("gnn", layer="sage", in_channels=5, hidden_channels=8, out_channels=3,
                                 num_layers=2, dropout=0.5)


def _trainer(epochs, callbacks=(), device="cpu", **kw):
    return Trainer(_model(), "cross_entropy", "node", epochs=epochs, seed=1, progress=False, device=device,
                   task_kwargs={"num_neighbors": [3, 2], "batch_size": 16}, callbacks=list(callbacks), **kw)


def test_neighbour_sampled_mini_batch_run_resumes_exactly(tmp_path):
    full_trainer = _trainer(5)
    full = fit_with_checkpoints(full_trainer, _graph(), checkpoint_dir=tmp_path / "full", seed=1)
    fit_with_checkpoints(_trainer(2), _graph(), checkpoint_dir=tmp_path / "part", seed=1)
    (seed_dir(tmp_path / "part", 1) / "done.json").unlink()  # as if killed after epoch 1
    resumed_trainer = _trainer(5)
    resumed = fit_with_checkpoints(resumed_trainer, _graph(), checkpoint_dir=tmp_path / "part", resume=True,
                                   seed=1)
    assert resumed.extra["resumed"] and resumed.history == full.history and len(full.history) == 5
    for a, b in zip(full_trainer.model.parameters(), resumed_trainer.model.parameters()):
        assert torch.equal(a, b)



def test_a_plateau_scheduler_resumes_exactly(tmp_path):
    """ReduceLROnPlateau's patience count and best value travel in the checkpoint."""
    def plateau(opt):
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=1)

    full_trainer = _trainer(8, scheduler=plateau)
    full = fit_with_checkpoints(full_trainer, _graph(), checkpoint_dir=tmp_path / "full", seed=1)
    fit_with_checkpoints(_trainer(4, scheduler=plateau), _graph(), checkpoint_dir=tmp_path / "part", seed=1)
    (seed_dir(tmp_path / "part", 1) / "done.json").unlink()
    resumed_trainer = _trainer(8, scheduler=plateau)
    resumed = fit_with_checkpoints(resumed_trainer, _graph(), checkpoint_dir=tmp_path / "part", resume=True,
                                   seed=1)
    assert full_trainer.optimizer.param_groups[0]["lr"] < 0.01  # the learning rate was lowered on the way
    assert resumed.history == full.history
    assert resumed_trainer.optimizer.param_groups[0]["lr"] == full_trainer.optimizer.param_groups[0]["lr"]

def test_early_stopping_state_is_checkpointed_after_it_updates(tmp_path):
    """ModelCheckpoint first in the list: last.pt still holds EarlyStopping's state for the epoch."""
    def run(epochs, folder, resume=False):
        stopper = EarlyStopping("train_loss", patience=1, min_delta=100.0)
        trainer = _trainer(epochs, callbacks=[ModelCheckpoint(), stopper])
        return fit_with_checkpoints(trainer, _graph(), checkpoint_dir=folder, resume=resume, seed=0)

    full = run(10, tmp_path / "full")
    assert len(full.history) == 2  # epoch 0 sets the best, epoch 1 does not improve by 100: stop
    run(1, tmp_path / "part")
    (seed_dir(tmp_path / "part", 0) / "done.json").unlink()
    assert run(10, tmp_path / "part", resume=True).history == full.history
    # Resuming from the checkpoint of the epoch that stopped trains no further.
    (seed_dir(tmp_path / "full", 0) / "done.json").unlink()
    assert run(10, tmp_path / "full", resume=True).history == full.history


def test_an_interrupted_checkpoint_write_leaves_the_previous_one_loadable(tmp_path, monkeypatch):
    trainer = _trainer(2, callbacks=[ModelCheckpoint(tmp_path)])
    trainer.fit(_graph())
    before = torch.load(tmp_path / "last.pt", weights_only=False)
    assert before["epoch"] == 1

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(graphdl.io.torch, "save", broken_save)
    trainer.epoch = 7
    with pytest.raises(OSError, match="disk full"):
        trainer.save_checkpoint(tmp_path / "last.pt")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]  # no temporary file left
    after = torch.load(tmp_path / "last.pt", weights_only=False)
    assert after["epoch"] == 1
    for name, value in before["model"].items():
        assert torch.equal(after["model"][name], value)
    # and training can continue from it
    result = _trainer(3).fit(_graph(), resume_from=tmp_path / "last.pt")
    assert [h["epoch"] for h in result.history] == [0, 1, 2]


def test_results_json_is_replaced_atomically(tmp_path):
    path = tmp_path / "results.json"
    atomic_write_json(path, [{"mean": 0.8}])
    with pytest.raises(RuntimeError):
        with graphdl.io.atomic_write(path, "w") as handle:
            handle.write('[{"mean": 0.')
            raise RuntimeError("killed mid-write")
    assert json.loads(path.read_text()) == [{"mean": 0.8}]
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_text_reports_are_written_whole_in_utf8(tmp_path):
    path = tmp_path / "report.md"
    atomic_write_text(path, "| seeds | 0.53 ± 0.08 |\n")
    assert path.read_bytes() == "| seeds | 0.53 ± 0.08 |\n".encode("utf-8")
    with pytest.raises(TypeError):
        atomic_write_text(path, None)  # a failed write keeps the old report and leaves no temporary file
    assert path.read_text(encoding="utf-8") == "| seeds | 0.53 ± 0.08 |\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_a_file_in_the_way_of_an_output_folder_is_named_before_training(tmp_path):
    from graphdl.train.callbacks import MetricLogger

    blocker = tmp_path / "runs"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match=rf"^cannot use '{blocker}/seed0' as the folder for ModelCheckpoint's "
                                          rf"checkpoints: '{blocker}' is a file\. Choose another path"):
        ModelCheckpoint(blocker / "seed0")
    with pytest.raises(ConfigError, match=rf"folder for the metric log log\.csv: '{blocker}' is a file"):
        MetricLogger(blocker / "log.csv")
    with pytest.raises(ConfigError, match=rf"folder for report\.md: '{blocker}' is a file"):
        atomic_write_text(blocker / "deeper" / "report.md", "x")
    assert blocker.read_text() == "not a folder"


def test_bad_checkpoints_give_clear_errors(tmp_path):
    (tmp_path / "garbage.pt").write_bytes(b"\x00\x01 not a checkpoint")
    with pytest.raises(ConfigError, match=r"checkpoint .*garbage.pt cannot be read .*not a complete graphdl"):
        _trainer(2).fit(_graph(), resume_from=tmp_path / "garbage.pt")
    trainer = _trainer(1, callbacks=[ModelCheckpoint(tmp_path)])
    trainer.fit(_graph())
    with pytest.raises(ConfigError, match=r"best.pt is not a resumable Trainer checkpoint .*best.pt holds weights"):
        _trainer(2).fit(_graph(), resume_from=tmp_path / "best.pt")
    with pytest.raises(ConfigError, match=r"no checkpoint at .*missing.pt"):
        _trainer(2).fit(_graph(), resume_from=tmp_path / "missing.pt")
    folder = seed_dir(tmp_path / "runs", 0)
    folder.mkdir(parents=True)
    (folder / "last.pt").write_bytes(b"truncated")
    with pytest.raises(ConfigError, match=r"last.pt is not a complete torch checkpoint"):
        fit_with_checkpoints(_trainer(2), _graph(), checkpoint_dir=tmp_path / "runs", resume=True)
    (folder / "done.json").write_text('{"best_epoch": ')
    with pytest.raises(ConfigError, match=r"done.json is not a valid record of a finished run"):
        fit_with_checkpoints(_trainer(2), _graph(), checkpoint_dir=tmp_path / "runs", resume=True)


def test_without_resume_an_earlier_run_is_refused_not_overwritten(tmp_path):
    """A forgotten --resume must not delete hours of checkpoints: the run refuses and every file stays."""
    folder = seed_dir(tmp_path, 3)
    folder.mkdir(parents=True)
    (folder / ".last.pt.abc.tmp").write_bytes(b"left by a killed write")
    first = fit_with_checkpoints(_trainer(1), _graph(), checkpoint_dir=tmp_path, seed=3)
    (folder / "done.json").unlink()  # as if killed after epoch 0: last.pt, no done.json
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert sorted(before) == ["best.pt", "last.pt"]  # the killed write's temporary file went
    with pytest.raises(ConfigError) as err:
        fit_with_checkpoints(_trainer(3), _graph(), checkpoint_dir=tmp_path, seed=3)
    assert str(err.value) == (f"{folder} holds the checkpoint of an unfinished run (last.pt); pass --resume "
                              f"(resume=True) to continue it, or delete that folder or choose another "
                              f"--checkpoint-dir to start the seed afresh")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    finished = fit_with_checkpoints(_trainer(2), _graph(), checkpoint_dir=tmp_path, resume=True, seed=3)
    assert len(finished.history) == 2 and finished.history[0] == first.history[0]
    with pytest.raises(ConfigError, match=r"seed_3 holds the result of a finished run \(done.json\); pass --resume"):
        fit_with_checkpoints(_trainer(2), _graph(), checkpoint_dir=tmp_path, seed=3)
    # Another seed's folder is free: a fresh run there is fine.
    assert len(fit_with_checkpoints(_trainer(1), _graph(), checkpoint_dir=tmp_path, seed=4).history) == 1


# ---------------------------------------------------------------------------- determinism
# deterministic=True is the documented way to bit-identical reruns on a GPU too (docs/determinism.md)
@pytest.mark.parametrize("device", ["cpu", *(["cuda"] if torch.cuda.is_available() else [])])
def test_deterministic_runs_give_bit_identical_metrics_and_weights(monkeypatch, device):
    from torch_geometric.datasets import FakeDataset

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    graphdl.seed_everything(5)
    dataset = FakeDataset(num_graphs=30, avg_num_nodes=8, num_channels=4, num_classes=2, task="graph")
    splits = {"train": torch.arange(20), "val": torch.arange(20, 25), "test": torch.arange(25, 30)}

    def graph_run():
        graphdl.seed_everything(0)
        model = graphdl.models.create("graph_gnn", layer="gin", in_channels=4, hidden_channels=16,
                                      out_channels=2, num_layers=2, dropout=0.3)
        trainer = Trainer(model, "cross_entropy", "graph", task_kwargs={"batch_size": 4, "metric": "rocauc"},
                          epochs=3, seed=2, progress=False, device=device, deterministic=True)
        assert not torch.are_deterministic_algorithms_enabled()
        result = trainer.fit(dataset, splits)
        assert not torch.are_deterministic_algorithms_enabled()  # the process-wide flag is restored
        return result.history, [p.detach().clone() for p in model.parameters()]

    def node_run():
        trainer = _trainer(3, device=device, deterministic=True)
        return trainer.fit(_graph()).history, [p.detach().clone() for p in trainer.model.parameters()]

    for run in (graph_run, node_run):
        (h1, p1), (h2, p2) = run(), run()
        assert h1 == h2  # float equality: bit-identical metrics
        assert all(torch.equal(a, b) for a, b in zip(p1, p2))
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
