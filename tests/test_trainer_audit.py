"""The Trainer loop, its callbacks and resume against plain references: PyG's train_loss accumulation, an
uninterrupted run, and the settings a callback must refuse rather than misread. Tiny data; well under a second each."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Data
from torch_geometric.datasets import FakeDataset
from torch_geometric.utils import to_undirected

import graphdl
from graphdl.errors import ConfigError
from graphdl.models import autoencoders as ae
from graphdl.train import Callback, EarlyStopping, MetricLogger, ModelCheckpoint, Trainer
from test_trainer_loop import Linear, tiny_graph, trainer  # the loop tests' tiny graph, model and Trainer


class RecordingCrossEntropy(torch.nn.Module):
    """Cross-entropy that records each training batch's loss and items, as PyG's loops see them."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[float, int]] = []

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(out, y)
        if torch.is_grad_enabled():
            self.seen.append((float(loss.detach()), y.numel()))
        return loss


def test_train_loss_is_pygs_python_float_sum_of_the_batch_losses():
    """PyG's graph examples: total_loss += float(loss) * num_graphs; total_loss / len(dataset), in Python floats.
    The float32 tensor sum was off by ~2.6e-8 (1e-7 relative) each epoch."""
    graphdl.seed_everything(123)
    dataset = FakeDataset(num_graphs=150, avg_num_nodes=8, num_channels=4, num_classes=2, task="graph")
    splits = {"train": torch.arange(120), "val": torch.arange(120, 135), "test": torch.arange(135, 150)}
    graphdl.seed_everything(7)
    model = graphdl.models.create("graph_gnn", layer="gin", in_channels=4, hidden_channels=16, out_channels=2,
                                  num_layers=2, dropout=0.0)
    loss = RecordingCrossEntropy()
    result = Trainer(model, loss, "graph", task_kwargs={"batch_size": 7, "metric": "acc"}, epochs=3, seed=0,
                     progress=False, device="cpu").fit(dataset, splits)
    per_epoch = len(loss.seen) // 3
    assert per_epoch == 18  # 120 graphs in batches of 7
    for epoch, row in enumerate(result.history):
        total = 0.0
        for value, items in loss.seen[epoch * per_epoch:(epoch + 1) * per_epoch]:
            total += value * items
        assert row["train_loss"] == total / 120, epoch


def _community_graph(n: int = 60, blocks: int = 3, features: int = 8) -> Data:
    gen = torch.Generator().manual_seed(0)
    block = torch.arange(n) % blocks
    prob = torch.where(block[:, None] == block[None, :], torch.tensor(0.3), torch.tensor(0.02))
    upper = torch.triu(torch.rand(n, n, generator=gen) < prob, diagonal=1)
    x = F.one_hot(block, features).float() + 0.3 * torch.randn(n, features, generator=gen)
    return Data(x=x, edge_index=to_undirected(upper.nonzero().t(), num_nodes=n), num_nodes=n)


def _autoencoder_trainer(epochs: int, rng_seed: int, **kwargs) -> Trainer:
    """A GAE whose task splits the edges itself at setup, unseeded; the RNGs are then set to ``rng_seed``, as
    another process (one that resumes) finds them."""
    graphdl.seed_everything(0)
    model = ae.GAE(8, hidden_channels=8, out_channels=4)
    kwargs = {"callbacks": [ModelCheckpoint(restore_best=False)], **kwargs}
    trainer = Trainer(model, "link_bce", "autoencoder", lr=0.01, epochs=epochs, progress=False, device="cpu",
                      **kwargs)
    graphdl.seed_everything(rng_seed)
    return trainer


def test_an_unseeded_run_resumed_in_another_process_splits_its_data_as_it_started(tmp_path):
    """The task's setup (the autoencoder's RandomLinkSplit) drew from the resuming process's RNG: the resumed
    run trained and scored on other edges (val_rocauc 0.743 where the uninterrupted run had 0.628)."""
    data = _community_graph()
    full = _autoencoder_trainer(4, rng_seed=42)
    expected = full.fit(data)
    _autoencoder_trainer(2, rng_seed=42, callbacks=[ModelCheckpoint(tmp_path, restore_best=False)]).fit(data)
    resumed = _autoencoder_trainer(4, rng_seed=7, callbacks=[ModelCheckpoint(tmp_path, restore_best=False)])
    result = resumed.fit(data, resume_from=tmp_path / "last.pt")
    assert result.history == expected.history
    for (name, a), b in zip(full.model.named_parameters(), resumed.model.parameters()):
        torch.testing.assert_close(a, b, atol=0, rtol=0, msg=name)


def test_another_built_in_metric_the_task_logs_can_be_monitored():
    """The autoencoder logs ap beside its metric rocauc: monitor='val_ap' failed after the first epoch with
    "cannot tell whether 'val_ap' should go up or down; pass mode=...", an argument the Trainer does not take."""
    result = _autoencoder_trainer(3, rng_seed=0, monitor="val_ap", seed=0).fit(_community_graph())
    values = [row["val_ap"] for row in result.history]
    assert result.best_epoch == values.index(max(values))


class CountEpochs(Callback):
    def __init__(self) -> None:
        self.epochs = 0

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        self.epochs += 1


def test_a_monitor_of_unknown_direction_is_named_before_training():
    """It was named only once an epoch had trained (or, with a ModelCheckpoint given its mode, after every
    epoch, when the best epoch is selected)."""
    count = CountEpochs()
    with pytest.raises(ConfigError, match=r"^the Trainer cannot tell whether monitor 'val_accc' should go up or "
                                          r"down\. Did you mean 'val_acc'.*\? Monitor a loss, the task's metric "
                                          r"\('acc'\) or another built-in metric it logs$"):
        trainer(Linear(), monitor="val_accc", callbacks=[count, ModelCheckpoint(mode="max")]).fit(tiny_graph())
    assert count.epochs == 0


@pytest.mark.parametrize("build, message", [
    (lambda: EarlyStopping(monitor=5), r"^EarlyStopping's monitor must be a metric name such as 'val_acc', or None "
                                       r"for the Trainer's, got int$"),
    (lambda: ModelCheckpoint(monitor=["val_acc"]), r"^ModelCheckpoint's monitor must be a metric name"),
    (lambda: ModelCheckpoint(dirpath=5), r"^ModelCheckpoint's dirpath must be a file system path \(a str or "
                                         r"pathlib\.Path\) or None, got int$"),
    (lambda: MetricLogger(5), r"^MetricLogger's path must be a file system path \(a str or pathlib\.Path\), "
                              r"got int$"),
    (lambda: ModelCheckpoint(restore_best="no"), r"^ModelCheckpoint's restore_best must be True or False, "
                                                 r"got 'no'$"),
])
def test_callback_arguments_of_the_wrong_type_are_named_when_built(build, message):
    """A monitor that is not a name failed at the first epoch ("'int' object is not iterable"), a path with a
    bare TypeError from pathlib, and restore_best='no' restored the best state."""
    with pytest.raises(ConfigError, match=message):
        build()


def test_a_numpy_min_delta_is_a_number():
    """np.float32(0.05) was refused as not 'a number >= 0'; it stops as the float does."""
    histories = []
    for delta in (np.float32(0.05), float(np.float32(0.05))):
        stop = EarlyStopping(patience=1, min_delta=delta)
        torch.manual_seed(0)  # the same initial weights for both (the Trainer seeds only when the fit starts)
        histories.append(trainer(Linear(), epochs=8, callbacks=[stop]).fit(tiny_graph()).history)
    assert histories[0] == histories[1]


@pytest.mark.parametrize("callback", [EarlyStopping, ModelCheckpoint])
def test_a_resume_with_the_callbacks_mode_turned_round_is_refused(tmp_path, callback):
    """The saved best value and patience count are of the direction it was checkpointed with: resumed with the
    other, the run compared new values with the opposite sense."""
    data = tiny_graph()
    trainer(Linear(), epochs=2, callbacks=[callback(mode="max"), ModelCheckpoint(tmp_path)]
            if callback is EarlyStopping else [callback(tmp_path, mode="max")]).fit(data)
    resumed = trainer(Linear(), epochs=4, callbacks=[callback(mode="min"), ModelCheckpoint(tmp_path)]
                      if callback is EarlyStopping else [callback(tmp_path, mode="min")])
    with pytest.raises(ConfigError, match=rf"{callback.__name__} was checkpointed with other settings \(mode 'max' "
                                          rf"-> 'min'\)"):
        resumed.fit(data, resume_from=tmp_path / "last.pt")


def test_a_resumed_run_with_no_epoch_left_writes_its_metric_log(tmp_path):
    """A run killed after its last checkpoint and resumed trains no epoch: the log it asked for was not
    written at all."""
    data = tiny_graph()
    first = trainer(Linear(), epochs=2, callbacks=[ModelCheckpoint(tmp_path)]).fit(data)
    log = tmp_path / "log.json"
    trainer(Linear(), epochs=2, callbacks=[ModelCheckpoint(tmp_path)], log_path=log).fit(
        data, resume_from=tmp_path / "last.pt")
    assert json.loads(log.read_text()) == first.history


def test_a_killed_run_resumed_twice_ends_as_an_uninterrupted_one(tmp_path):
    """Dropout, a plateau scheduler, clipping and early stopping across two resumes, unseeded."""
    from graphdl.train.resume import fit_with_checkpoints

    class Dropout(Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(F.dropout(x, 0.3, self.training))

    def build(epochs: int) -> Trainer:
        torch.manual_seed(0)
        return trainer(Dropout(), epochs=epochs, seed=None, grad_clip=0.1, lr=0.05,
                       scheduler=lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt, "max", patience=0),
                       callbacks=[EarlyStopping(patience=5, min_delta=0.001), ModelCheckpoint()])

    data = tiny_graph()
    full = build(12)
    torch.manual_seed(123)
    expected = fit_with_checkpoints(full, data, checkpoint_dir=tmp_path / "full")
    cut = build(2)
    torch.manual_seed(123)
    fit_with_checkpoints(cut, data, checkpoint_dir=tmp_path / "cut")
    for epochs, rng in ((4, 5), (12, 6)):
        resumed = build(epochs)
        torch.manual_seed(rng)
        result = fit_with_checkpoints(resumed, data, checkpoint_dir=tmp_path / "cut", resume=True)
    assert result.extra["resumed"] and 4 < len(expected.history) < 12  # the last resume trained and stopped early
    assert result.history == expected.history and result.best_epoch == expected.best_epoch
    assert all(torch.equal(a, b) for a, b in zip(full.model.parameters(), resumed.model.parameters()))
    assert resumed.optimizer.param_groups[0]["lr"] == full.optimizer.param_groups[0]["lr"]


@pytest.mark.parametrize("build, change", [
    (lambda min_lr: lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt, "max", patience=0, min_lr=min_lr),
     r"min_lrs \[0\.0\] -> \[0\.005\]"),
    (lambda max_lr: lambda opt: torch.optim.lr_scheduler.CyclicLR(opt, 0.001, max_lr or 0.1, step_size_up=2),
     r"max_lrs \[0\.1\] -> \[0\.005\]"),
])
def test_a_resume_with_another_per_group_scheduler_argument_is_refused(tmp_path, build, change):
    """The saved state holds ReduceLROnPlateau's min_lr and CyclicLR's max_lr as min_lrs and max_lrs (one per
    parameter group), and silently replaced the new ones: resumed with min_lr=0.005, the lr fell below it."""
    data = tiny_graph()
    trainer(Linear(), epochs=2, optimizer="sgd", scheduler=build(0.0), callbacks=[ModelCheckpoint(tmp_path)]).fit(data)
    resumed = trainer(Linear(), epochs=4, optimizer="sgd", scheduler=build(0.005),
                      callbacks=[ModelCheckpoint(tmp_path)])
    with pytest.raises(ConfigError, match=rf"was trained with other settings \({change}\)"):
        resumed.fit(data, resume_from=tmp_path / "last.pt")
    # the same arguments resume
    trainer(Linear(), epochs=4, optimizer="sgd", scheduler=build(0.0), callbacks=[ModelCheckpoint(tmp_path)]).fit(
        data, resume_from=tmp_path / "last.pt")
