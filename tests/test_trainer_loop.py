"""The Trainer's core loop against plain torch, and the settings it must refuse rather than silently misapply.

Tiny graphs built here, so that each test runs in well under a second.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Data

from graphdl.errors import ConfigError
from graphdl.train import Callback, ModelCheckpoint, Trainer


def tiny_graph(n: int = 20, features: int = 4, classes: int = 3) -> Data:
    gen = torch.Generator().manual_seed(0)
    train = torch.zeros(n, dtype=torch.bool)
    train[: n // 2] = True
    return Data(x=torch.randn(n, features, generator=gen), edge_index=torch.randint(0, n, (2, 3 * n), generator=gen),
                y=torch.arange(n) % classes, train_mask=train, val_mask=~train, test_mask=~train)


class Linear(torch.nn.Module):
    """A model of the node features alone: ``model(x)``."""

    def __init__(self, features: int = 4, classes: int = 3) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(features, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


def trainer(model: torch.nn.Module, **kwargs) -> Trainer:
    kwargs = {"epochs": 3, "progress": False, "device": "cpu", "seed": 1,
              "callbacks": [ModelCheckpoint(restore_best=False)], **kwargs}
    return Trainer(model, kwargs.pop("loss", "cross_entropy"), "node", **kwargs)


def test_an_optimizer_factorys_own_weight_decay_is_not_silently_replaced_by_the_trainers():
    """Each parameter group the factory is given carries the Trainer's weight_decay, which overrides the one the
    factory builds the optimizer with: SGD(groups, weight_decay=0.5) trained without any decay."""
    data = tiny_graph()
    with pytest.raises(ConfigError, match=r"the optimizer factory built SGD with weight_decay=0\.5, but the "
                                          r"parameter groups it is given carry the Trainer's weight_decay=0\.0, "
                                          r"which overrides it; pass weight_decay=0\.5 to the Trainer"):
        trainer(Linear(), optimizer=lambda groups: torch.optim.SGD(groups, lr=0.1, weight_decay=0.5)).fit(data)

    # the same decay given to the Trainer trains as plain SGD with it
    torch.manual_seed(0)
    ours = Linear()
    ref = copy.deepcopy(ours)
    trainer(ours, weight_decay=0.5, optimizer=lambda groups: torch.optim.SGD(groups, lr=0.1, weight_decay=0.5)).fit(data)
    opt = torch.optim.SGD(ref.parameters(), lr=0.1, weight_decay=0.5)
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(ref(data.x)[data.train_mask], data.y[data.train_mask]).backward()
        opt.step()
    for a, b in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_a_resume_with_another_scheduler_or_none_is_refused(tmp_path):
    """The checkpoint's scheduler state was dropped (resumed without one: the decayed learning rate stayed
    constant) or loaded into a scheduler of another class, and the run went on as if it continued exactly."""
    data = tiny_graph()
    step = lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.1)  # noqa: E731
    trainer(Linear(), epochs=2, scheduler=step, callbacks=[ModelCheckpoint(tmp_path)]).fit(data)
    last = tmp_path / "last.pt"
    cosine = lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)  # noqa: E731
    for scheduler, change in [(None, r'scheduler "torch\.optim\.lr_scheduler\.StepLR" -> null'),
                              (cosine, r'scheduler "torch\.optim\.lr_scheduler\.StepLR" -> '
                                       r'"torch\.optim\.lr_scheduler\.CosineAnnealingLR"')]:
        with pytest.raises(ConfigError, match=rf"was trained with other settings \({change}\)"):
            trainer(Linear(), epochs=4, scheduler=scheduler, callbacks=[ModelCheckpoint(tmp_path)]).fit(
                data, resume_from=last)
    # the same scheduler resumes, and ends where an uninterrupted run ends
    resumed = trainer(Linear(), epochs=4, scheduler=step, callbacks=[ModelCheckpoint(tmp_path)])
    resumed.fit(data, resume_from=last)
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 0.1 ** 4)


def test_a_scheduler_built_on_another_optimizer_is_refused():
    """scheduler=lambda _: StepLR(my_opt, ...) scheduled an optimizer the Trainer never steps: the learning rate
    silently stayed constant."""
    other = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ConfigError, match=r"the scheduler factory returned a StepLR of another optimizer \(SGD\); "
                                          r"build it on the optimizer it is given"):
        trainer(Linear(), scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(other, step_size=1)).fit(tiny_graph())


@pytest.mark.parametrize("kwargs, message", [
    ({"lr": float("inf")}, r"^lr must be a finite number > 0, got inf$"),
    ({"weight_decay": float("inf")}, r"^weight_decay must be a finite number >= 0, got inf$"),
])
def test_an_infinite_learning_rate_or_weight_decay_is_refused(kwargs, message):
    """lr=inf passed the check (inf > 0): one epoch ended with NaN weights and no error."""
    with pytest.raises(ConfigError, match=message):
        trainer(Linear(), epochs=1, **kwargs)


class SharedHeadLoss(torch.nn.Module):
    """A loss that holds one of the model's layers (weight tying): its parameters are the model's too."""

    def __init__(self, head: torch.nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out, target) + 0.1 * self.head.weight.square().sum()


def test_a_loss_sharing_parameters_with_the_model_trains_them_once():
    """torch refused the optimizer ("some parameters appear in more than one parameter group", a ValueError from
    deep inside); clipping must also count each shared gradient once."""
    data = tiny_graph()
    torch.manual_seed(0)
    ours = Linear()
    ref = copy.deepcopy(ours)
    trainer(ours, loss=SharedHeadLoss(ours.lin), grad_clip=0.05, lr=0.1).fit(data)
    loss_fn = SharedHeadLoss(ref.lin)
    opt = torch.optim.Adam(ref.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        loss_fn(ref(data.x)[data.train_mask], data.y[data.train_mask]).backward()
        torch.nn.utils.clip_grad_norm_(ref.parameters(), 0.05)
        opt.step()
    for a, b in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


@pytest.mark.parametrize("kwargs, message", [
    ({"task_kwargs": ["metric"]}, r"^task_kwargs must be a dict of the task's arguments, got list$"),
    ({"loss_kwargs": ["margin"]}, r"^loss_kwargs must be a dict of the loss's arguments, got list$"),
    ({"ddp_kwargs": [1]}, r"^ddp_kwargs must be a dict of DistributedDataParallel's arguments, got list$"),
    ({"monitor": 3}, r"^monitor must be a metric name such as 'val_acc' or None, got int$"),
    ({"eval_splits": 3}, r"^eval_splits must be a split name or a list of them, got int$"),
])
def test_arguments_of_the_wrong_type_are_named_when_the_trainer_is_built(kwargs, message):
    """Each failed with a bare TypeError or AttributeError from inside (argument after ** must be a mapping,
    'int' object has no attribute 'split', 'int' object is not iterable)."""
    with pytest.raises(ConfigError, match=message):
        Trainer(Linear(), "cross_entropy", "node", progress=False, device="cpu", **kwargs)


class _RecordLossState(Callback):
    """Copies the loss's state at the end of every epoch."""

    def __init__(self) -> None:
        self.states: list[dict[str, torch.Tensor]] = []

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        self.states.append(copy.deepcopy(trainer.loss_fn.state_dict()))


def test_a_loss_with_parameters_ends_in_the_state_of_the_reported_epoch(tmp_path):
    """ArcFace's class centres belong to the trained model as much as the encoder's weights: before, the model was
    restored to the best epoch and the centres stayed those of the last epoch (and best.pt held no centres)."""
    data = tiny_graph()
    record = _RecordLossState()
    # the training loss falls, so monitoring it for its maximum picks the first epoch, not the last
    checkpoint = ModelCheckpoint(tmp_path, monitor="train_loss", mode="max")
    fit = trainer(Linear(4, 8), loss="arcface", loss_kwargs={"num_classes": 3, "embedding_size": 8}, epochs=4,
                  callbacks=[record, checkpoint])
    fit.fit(data)
    assert checkpoint.best_epoch == 0
    final = fit.loss_fn.state_dict()
    assert not all(torch.equal(final[k], record.states[-1][k]) for k in final)  # the last epoch's are not kept
    assert all(torch.equal(final[k], record.states[0][k]) for k in final)
    saved = torch.load(tmp_path / "best.pt", weights_only=False)
    assert all(torch.equal(saved["loss"][k], record.states[0][k]) for k in final)


def test_a_finished_seed_loads_its_losss_best_state_with_the_models(tmp_path):
    """A finished seed resumed returns its record and loads best.pt: the loss's centres of that epoch too."""
    from graphdl.train.resume import fit_with_checkpoints

    def build() -> Trainer:
        return trainer(Linear(4, 8), loss="arcface", loss_kwargs={"num_classes": 3, "embedding_size": 8}, epochs=3,
                       seed=5, callbacks=[ModelCheckpoint()])

    first = build()
    fit_with_checkpoints(first, tiny_graph(), checkpoint_dir=tmp_path, seed=0)
    again = build()
    assert not all(torch.equal(v, first.loss_fn.state_dict()[k]) for k, v in again.loss_fn.state_dict().items())
    fit_with_checkpoints(again, tiny_graph(), checkpoint_dir=tmp_path, resume=True, seed=0)
    assert all(torch.equal(v, first.loss_fn.state_dict()[k]) for k, v in again.loss_fn.state_dict().items())


def test_a_resume_with_other_scheduler_arguments_is_refused(tmp_path):
    """The saved scheduler state holds StepLR's step_size and gamma and silently replaced the new ones: resumed
    with gamma=0.5 the run went on decaying by 0.1."""
    data = tiny_graph()
    trainer(Linear(), epochs=2, scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.1),
            callbacks=[ModelCheckpoint(tmp_path)]).fit(data)
    halve = lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)  # noqa: E731
    with pytest.raises(ConfigError, match=r"was trained with other settings \(gamma 0\.1 -> 0\.5\)"):
        trainer(Linear(), epochs=4, scheduler=halve, callbacks=[ModelCheckpoint(tmp_path)]).fit(
            data, resume_from=tmp_path / "last.pt")


def test_a_finished_seed_without_restore_best_ends_in_its_last_epochs_weights(tmp_path):
    """fit_with_checkpoints returned a finished seed's record and left the model at its initial weights when
    ModelCheckpoint(restore_best=False) (a fit ends in the last epoch's state then)."""
    from graphdl.train.resume import fit_with_checkpoints

    def build() -> Trainer:
        return trainer(Linear(), epochs=3, seed=5, callbacks=[ModelCheckpoint(restore_best=False)])

    first = build()
    fit_with_checkpoints(first, tiny_graph(), checkpoint_dir=tmp_path, seed=0)
    again = build()
    fit_with_checkpoints(again, tiny_graph(), checkpoint_dir=tmp_path, resume=True, seed=0)
    for name, value in first.model.state_dict().items():
        torch.testing.assert_close(again.model.state_dict()[name], value, atol=0, rtol=0)


def test_epoch_seconds_leave_out_the_checkpoints_written(tmp_path, monkeypatch):
    """The benchmarks' seconds_per_epoch (set beside the official scripts' epochs, which write no checkpoint) was
    the fit's wall time, checkpoint writes included: 22% more on Cora GCN with a checkpoint folder."""
    import time

    import graphdl.train.callbacks as callbacks
    import graphdl.train.trainer as trainer_module

    save = callbacks.atomic_torch_save

    def slow_save(*args, **kwargs):
        time.sleep(0.2)
        return save(*args, **kwargs)

    for module in (callbacks, trainer_module):  # best.pt and last.pt
        monkeypatch.setattr(module, "atomic_torch_save", slow_save)
    result = trainer(Linear(), epochs=2, callbacks=[ModelCheckpoint(tmp_path)]).fit(tiny_graph())
    assert result.seconds > 0.4 > 0.2 > result.epoch_seconds >= result.train_seconds > 0


def test_a_learning_rate_that_overflows_the_step_is_named():
    """lr=1e38 is finite, but Adam's step size overflows float32: a RuntimeError from inside torch (a traceback
    from graphdl train)."""
    from graphdl.errors import ValidationError

    with pytest.raises(ValidationError, match=r"^the optimizer's step overflowed \(.*\) at epoch 0; the learning "
                                              r"rate \(lr=1e\+38\) is too large for these parameters: lower it$"):
        trainer(Linear(), lr=1e38).fit(tiny_graph())
