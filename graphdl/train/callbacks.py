"""Trainer callbacks: early stopping, checkpointing that restores the best state, metric logs.

A callback overrides any of ``on_fit_start(trainer)``,
``on_epoch_end(trainer, logs)``, ``after_epoch(trainer, logs)`` (once every
callback's ``on_epoch_end`` has run: where checkpoints are written) and
``on_fit_end(trainer)``, and may keep state
through ``state_dict``/``load_state_dict`` so that a resumed run continues
exactly. ``trainer.should_stop = True`` ends training after the epoch.

Under ``torch.distributed`` every rank runs every callback (with the same
logs), and only the main process (``trainer.is_main_process``, rank 0) writes
files.
"""

from __future__ import annotations

import copy
import csv
import io
import math
import numbers
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from graphdl.errors import ConfigError, did_you_mean
from graphdl.io import atomic_torch_save, atomic_write, atomic_write_json, check_folder_path
from graphdl.validate import require_int

if TYPE_CHECKING:
    from graphdl.train.trainer import Trainer

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "MetricLogger", "class_name", "load_callback_states"]


class Callback:
    """Base class; every hook is optional."""

    def on_fit_start(self, trainer: Trainer) -> None: ...

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, float]) -> None: ...

    def after_epoch(self, trainer: Trainer, logs: dict[str, float]) -> None: ...

    def on_fit_end(self, trainer: Trainer) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def _is_main(trainer: Trainer) -> bool:
    return getattr(trainer, "is_main_process", True)


def _check_monitor(monitor: str, logs: dict[str, float], owner: str) -> None:
    if monitor not in logs:
        raise ConfigError(f"{owner} monitors {monitor!r}, which is not logged.{did_you_mean(monitor, logs)} "
                          f"Logged metrics: {', '.join(sorted(logs))}")


class _Monitor(Callback):
    def __init__(self, monitor: str | None, mode: str | None) -> None:
        if monitor is not None and not isinstance(monitor, str):  # it failed at the first epoch, deep inside
            raise ConfigError(f"{type(self).__name__}'s monitor must be a metric name such as 'val_acc', or None "
                              f"for the Trainer's, got {type(monitor).__name__}")
        if mode not in (None, "min", "max"):
            raise ConfigError(f"mode must be 'min' or 'max', got {mode!r}")
        self.monitor, self.mode = monitor, mode
        self._given = (monitor, mode)
        self.best: float | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        """A fresh start for each fit (a trainer fitted again, or a callback reused by another trainer); a
        resumed fit then loads the checkpointed state."""
        monitor, self.mode = self._given
        self.monitor = monitor or trainer.monitor
        self.best = None

    def _value(self, trainer: Trainer, logs: dict[str, float], owner: str) -> float:
        """The monitored value, after checking it is logged and knowing its direction."""
        _check_monitor(self.monitor, logs, owner)
        if self.mode is None:
            self.mode = trainer.mode_for(self.monitor)
        return logs[self.monitor]

    def _check_saved(self, state: dict[str, Any], **settings: Any) -> None:
        """Refuse a checkpointed state kept under other settings (its best value is of another metric, or its
        count of another patience); states of checkpoints written before these were saved are taken as they are."""
        changed = [f"{k} {state[k]!r} -> {v!r}" for k, v in settings.items()
                   if k in state and v is not None and state[k] is not None and state[k] != v]
        if changed:
            raise ConfigError(f"{type(self).__name__} was checkpointed with other settings ({', '.join(changed)}); "
                              f"resume with the settings it was checkpointed with, or start afresh in another "
                              f"checkpoint folder")

    def _improved(self, value: float, min_delta: float = 0.0) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        best = self.best
        if math.isnan(best):  # ModelCheckpoint keeps a NaN first epoch: it ranks as the worst value, as in Trainer
            best = -math.inf if self.mode == "max" else math.inf
        return value > best + min_delta if self.mode == "max" else value < best - min_delta


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    The monitored name is checked against the logged metrics at the first
    epoch; an unknown name raises an error listing the logged ones.
    """

    def __init__(self, monitor: str | None = None, patience: int = 20, mode: str | None = None,
                 min_delta: float = 0.0) -> None:
        super().__init__(monitor, mode)
        require_int("EarlyStopping", "patience", patience)
        if isinstance(min_delta, bool) or not isinstance(min_delta, numbers.Real) or not min_delta >= 0:
            raise ConfigError(f"EarlyStopping's min_delta must be a number >= 0 (the least change that counts as "
                              f"an improvement), got {min_delta!r}")
        self.patience, self.min_delta = patience, float(min_delta)  # NumPy numbers too
        self.wait = 0

    def on_fit_start(self, trainer: Trainer) -> None:
        super().on_fit_start(trainer)
        self.wait = 0

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        value = self._value(trainer, logs, "EarlyStopping")
        if self._improved(value, self.min_delta):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait, "monitor": self.monitor, "mode": self.mode,
                "patience": self.patience, "min_delta": self.min_delta}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._check_saved(state, monitor=self.monitor, mode=self.mode, patience=self.patience,
                          min_delta=self.min_delta)
        self.best, self.wait = state["best"], state["wait"]


class ModelCheckpoint(_Monitor):
    """Keep the best model state (by ``monitor``) and restore it when fitting ends.

    A loss with a state of its own (ArcFace's class centres, say) is kept and
    restored with the model, so the two stay of the same epoch.
    With ``dirpath`` the best weights are also written to ``dirpath/best.pt``
    (atomically); the full resumable trainer state is written every
    ``every_n_epochs`` (and after the final epoch) to ``dirpath/last.pt``,
    after every callback has updated its state for the epoch (so early
    stopping resumes exactly). Both
    are written on the main process only; ``last.pt`` is gathered from every
    rank first (RNG states).
    """

    def __init__(self, dirpath: str | Path | None = None, monitor: str | None = None,
                 mode: str | None = None, every_n_epochs: int = 1, restore_best: bool = True) -> None:
        super().__init__(monitor, mode)
        require_int("ModelCheckpoint", "every_n_epochs", every_n_epochs)
        _check_path("ModelCheckpoint's dirpath", dirpath, none=True)
        if not isinstance(restore_best, bool):  # restore_best="no" restored the best state
            raise ConfigError(f"ModelCheckpoint's restore_best must be True or False, got {restore_best!r}")
        self.dirpath = check_folder_path(dirpath, "ModelCheckpoint's checkpoints") if dirpath is not None else None
        self.every_n_epochs = every_n_epochs
        self.restore_best = restore_best
        self.best_state: dict[str, Any] | None = None
        self.best_loss_state: dict[str, Any] | None = None
        self.best_epoch: int | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        super().on_fit_start(trainer)
        self.best_state, self.best_loss_state, self.best_epoch = None, None, None

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        # the first epoch's state is kept even when its value is NaN: the Trainer reports the first epoch when
        # every value is NaN (NaN ranks as the worst), so the model must end in that epoch's state
        if self._improved(self._value(trainer, logs, "ModelCheckpoint")) or self.best_state is None:
            self.best, self.best_epoch = logs[self.monitor], trainer.epoch
            self.best_state = copy.deepcopy(trainer.model.state_dict())
            self.best_loss_state = _loss_state(trainer)
            if self.dirpath is not None and _is_main(trainer):
                saved = {"model": self.best_state, "epoch": trainer.epoch, "logs": logs,
                         "model_class": class_name(trainer.model)}
                if self.best_loss_state is not None:
                    saved["loss"] = self.best_loss_state
                atomic_torch_save(saved, self.dirpath / "best.pt")

    def after_epoch(self, trainer: Trainer, logs: dict[str, float]) -> None:
        # the final epoch (the last asked for, or the one that stopped early) is always written: a finished run's
        # last.pt then holds its final weights, which a resume with restore_best=False ends in
        last = trainer.should_stop or trainer.epoch + 1 >= trainer.epochs
        if self.dirpath is not None and ((trainer.epoch + 1) % self.every_n_epochs == 0 or last):
            trainer.save_checkpoint(self.dirpath / "last.pt")

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.restore_best and self.best_state is not None:
            trainer.model.load_state_dict(self.best_state)
            if self.best_loss_state is not None:
                trainer.loss_fn.load_state_dict(self.best_loss_state)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "best_state": self.best_state,
                "best_loss_state": self.best_loss_state, "monitor": self.monitor, "mode": self.mode}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._check_saved(state, monitor=self.monitor, mode=self.mode)
        self.best, self.best_epoch, self.best_state = state["best"], state["best_epoch"], state["best_state"]
        self.best_loss_state = state.get("best_loss_state")  # absent from checkpoints of before it was kept


def _check_path(what: str, path: Any, none: bool = False) -> None:
    """Refuse a path that is not a string or ``os.PathLike`` with a message naming it (``Path(5)``: a bare
    TypeError)."""
    if not (isinstance(path, (str, os.PathLike)) or (none and path is None)):
        raise ConfigError(f"{what} must be a file system path (a str or pathlib.Path){' or None' if none else ''}, "
                          f"got {type(path).__name__}")


def _loss_state(trainer: Trainer) -> dict[str, Any] | None:
    """A copy of the loss's state (parameters and buffers), or None for a loss without one."""
    loss = trainer.loss_fn
    if not isinstance(loss, nn.Module):
        return None
    state = loss.state_dict()
    return copy.deepcopy(state) if state else None


class MetricLogger(Callback):
    """Write the per-epoch metrics to ``path`` (``.csv`` or ``.json``, where NaN and infinite values are
    ``null``), rewritten atomically each epoch."""

    def __init__(self, path: str | Path) -> None:
        _check_path("MetricLogger's path", path)
        self.path = Path(path)
        if self.path.suffix not in (".csv", ".json"):
            raise ConfigError(f"metric log {self.path} must end in .csv or .json")
        check_folder_path(self.path.parent, f"the metric log {self.path.name}")

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        if _is_main(trainer):
            self.write(trainer.history)

    def on_fit_end(self, trainer: Trainer) -> None:
        # a resumed run with no epoch left to train (it had stopped early, or trained them all) wrote no log
        if _is_main(trainer) and trainer.history:
            self.write(trainer.history)

    def write(self, history: list[dict[str, float]]) -> None:
        """Replace the file with ``history`` (one row per epoch), atomically."""
        if self.path.suffix == ".json":  # NaN and inf as null: bare NaN is not JSON (jq, JavaScript refuse it)
            atomic_write_json(self.path, [{k: None if isinstance(v, float) and not math.isfinite(v) else v
                                           for k, v in row.items()} for row in history])
            return
        fields = list(dict.fromkeys(k for row in history for k in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields)
        writer.writeheader()
        writer.writerows(history)
        with atomic_write(self.path, "w", encoding="utf-8", newline="") as handle:
            handle.write(buffer.getvalue())


def class_name(obj: Any) -> str:
    """``obj``'s qualified class name (``module.Class``), as checkpoints record the model, the optimiser and the
    callback each state belongs to."""
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def load_callback_states(callbacks: list[Callback], states: list[dict[str, Any]], names: list[str] | None,
                         source: str) -> None:
    """Give each callback its checkpointed state, matched by class (the k-th of a class gets the k-th state saved
    for that class), so that the list's order may change and stateless callbacks (a ``MetricLogger``; a state of
    ``{}``) may be added or dropped. A stateful callback without a saved state, or a saved state without its
    callback, raises :class:`ConfigError` naming it. ``names`` is ``None`` for checkpoints written before they
    were saved: their non-empty states then go, in order, to the callbacks that have state."""
    names = list(names) if names is not None and len(names) == len(states) else [None] * len(states)
    unused = list(range(len(states)))
    missing = []
    for cb in callbacks:
        name = class_name(cb)
        index = next((i for i in unused if names[i] == name), None)
        if index is None and cb.state_dict():  # an unnamed (old) state: the next non-empty one
            index = next((i for i in unused if names[i] is None and states[i]), None)
        if index is None:
            if cb.state_dict():
                missing.append(type(cb).__name__)
            continue
        unused.remove(index)
        try:
            cb.load_state_dict(states[index])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, ConfigError):
                raise ConfigError(f"{source}: {exc}") from None
            raise ConfigError(f"{source}: the saved state of {type(cb).__name__} does not fit it "
                              f"({type(exc).__name__}: {exc}); it was written by another callback or version") from None
    extra = [(names[i] or "a callback").rsplit(".", 1)[-1] for i in unused if states[i]]
    if missing or extra:
        what = "; ".join(filter(None, [
            f"it holds no state for {', '.join(missing)} (added since)" if missing else "",
            f"it holds the state of {', '.join(extra)}, which this trainer lacks (removed since)" if extra else ""]))
        raise ConfigError(f"{source} was written with other stateful callbacks: {what}. Resume with the callbacks "
                          f"it was written with (callbacks without state, such as a metric log, may change), or "
                          f"start afresh in another checkpoint folder")
