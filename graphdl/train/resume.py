"""Checkpoint every epoch and continue a killed run exactly (``graphdl train --checkpoint-dir DIR [--resume]``).

:func:`fit_with_checkpoints` runs ``trainer.fit`` with one folder per seed::

    DIR/seed_<seed>/last.pt     full trainer state after the newest epoch (model, optimiser,
                                scheduler, callbacks, history, epoch, RNG states of every rank)
    DIR/seed_<seed>/best.pt     weights of the best epoch so far (and the loss's, if it has any)
    DIR/seed_<seed>/done.json   the finished run's result and Trainer settings; a resumed run skips this seed
    DIR/seed_<seed>/config.json the run's configuration (``config=``), compared when it resumes

Every file is written atomically (a temporary file in the same folder, then
``os.replace``), so a run killed at any moment leaves the previous complete
checkpoint; ``resume=True`` continues from it. The checkpoint holds the global
RNG states, which drive dropout, negative and neighbour sampling and the
DataLoader's shuffling, so the resumed run sees the same batches and ends with
the same parameters and metrics, bit for bit, as a run that was never stopped.

A resumed run continues the saved state, so a changed setting would not take
effect while the results claimed it: a changed configuration (``config.json``),
optimiser, learning rate, LR scheduler (class or arguments), weight decay,
monitored metric, number of processes, gradient clipping, ``deterministic``,
seed, task or loss (class or arguments) or stateful callback is refused before
the seed trains on, naming the changes (:meth:`Trainer.resume_settings`). A
finished seed is checked against the settings its ``done.json`` records, the
number of processes and ``deterministic`` aside. Only ``epochs`` may change
(left out, the run continues to the epochs it was asked for: :func:`resumed_epochs`):
more epochs extend the run (a finished seed continues from its ``last.pt``;
one that stopped early stays as it is, as a longer run would have stopped there
too); fewer are refused once a seed has trained more.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from graphdl import distributed as _dist
from graphdl.config import config_changes, json_plain
from graphdl.errors import ConfigError
from graphdl.io import atomic_write_json
from graphdl.train.callbacks import MetricLogger, ModelCheckpoint, class_name
from graphdl.train.trainer import FitResult, Trainer

__all__ = ["fit_with_checkpoints", "refuse_to_overwrite", "check_resume", "resumed_epochs", "seed_dir",
           "latest_checkpoint", "read_done", "DONE_FILE", "LAST_FILE", "CONFIG_FILE"]

DONE_FILE = "done.json"
#: Settings of how a seed was computed, not of what: a finished seed's result stands under others
_EXECUTION_SETTINGS = ("world_size", "deterministic")
LAST_FILE = "last.pt"
BEST_FILE = "best.pt"
CONFIG_FILE = "config.json"
#: The configuration key that may change on resume (checked against the epochs already trained instead)
EPOCHS_KEY = "epochs"


def seed_dir(checkpoint_dir: str | os.PathLike, seed: int | str) -> Path:
    """The folder of one seed's checkpoints: ``checkpoint_dir/seed_<seed>``."""
    return Path(checkpoint_dir) / f"seed_{seed}"


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The newest complete resumable checkpoint in ``folder`` (``last.pt``), or None.

    Files are only ever renamed into place once complete, so ``last.pt`` is
    whole; a file that is nevertheless not a torch zip archive raises
    :class:`ConfigError` rather than being resumed from.
    """
    path = Path(folder) / LAST_FILE
    if not path.is_file():
        return None
    if not zipfile.is_zipfile(path):
        raise ConfigError(f"checkpoint {path} is not a complete torch checkpoint (truncated or foreign "
                          f"file); delete it to start the seed afresh")
    return path


def _done_record(folder: Path) -> dict[str, Any] | None:
    """The checked record of ``folder/done.json``, or None when the seed has not finished."""
    path = folder / DONE_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record, dict):
            raise TypeError(f"it holds a {type(record).__name__}, not an object")
        history, best, monitor = record["history"], record["best"], record["monitor"]
        if not isinstance(history, list) or not history or not all(isinstance(h, dict) for h in history):
            raise ValueError("'history' is not a non-empty list of per-epoch metrics")
        if not isinstance(best, dict) or not isinstance(monitor, str) or monitor not in best:
            raise ValueError(f"'best' does not hold the monitored metric {monitor!r}")
        int(record["best_epoch"]), float(record["seconds"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a valid record of a finished run ({type(exc).__name__}: {exc}); delete "
                          f"it to finish the seed again from its last.pt, or delete the folder {folder} to train "
                          f"the seed afresh") from None
    return record


def read_done(folder: str | os.PathLike) -> FitResult | None:
    """The :class:`FitResult` a finished seed left in ``folder/done.json``, or None."""
    folder = Path(folder)
    record = _done_record(folder)
    return None if record is None else _fit_result(record, folder)


def _fit_result(record: dict[str, Any], folder: Path) -> FitResult:
    """The :class:`FitResult` of a checked ``done.json`` record of ``folder``."""
    return FitResult(int(record["best_epoch"]), dict(record["best"]), list(record["history"]),
                     float(record["seconds"]), str(record["monitor"]),
                     train_seconds=float(record.get("train_seconds", 0.0)),
                     epochs_trained=int(record.get("epochs_trained", len(record["history"]))),
                     extra={"skipped": True, "checkpoint_dir": str(folder)},
                     # a record of before it was kept: the fit's wall time, checkpoint writes included
                     epoch_seconds=float(record.get("epoch_seconds", record["seconds"])))


#: ``config -> config``: the configuration as it takes effect (the defaults it leaves out filled in, names in one
#: spelling), so that the same configuration spelt otherwise is not taken for a change
Normalizer = Callable[[dict[str, Any]], dict[str, Any]]


def _normalized(config: dict[str, Any], normalize: Normalizer | None) -> dict[str, Any]:
    config = json_plain(config)
    return json_plain(normalize(config)) if normalize is not None else config


def _check_config(folder: Path, config: dict[str, Any], normalize: Normalizer | None = None) -> None:
    """Refuse to resume ``folder`` with a configuration other than the one in its ``config.json`` (``epochs``
    aside; both sides taken through ``normalize``); a folder written before configurations were recorded is not
    checked."""
    path = folder / CONFIG_FILE
    if not path.is_file():
        return
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(saved, dict):
            raise TypeError(f"it holds a {type(saved).__name__}, not an object")
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"{path} is not a valid run configuration ({type(exc).__name__}: {exc}); delete the "
                          f"folder {folder} to train the seed afresh") from None
    changes = config_changes(_normalized(saved, normalize), _normalized(config, normalize), ignore=(EPOCHS_KEY,))
    if changes:
        raise ConfigError(f"{folder} was trained with another configuration: {', '.join(changes)}. A resumed run "
                          f"continues the saved state, so the change would not take effect while the results "
                          f"claimed it. Resume with the values it was trained with, or train the new "
                          f"configuration in another --checkpoint-dir (and write it to another --json path)")


def _too_many_epochs(source: str, trained: int, epochs: int) -> ConfigError:
    return ConfigError(f"{source} has trained {trained} epochs, more than --epochs {epochs}; a resumed run cannot "
                       f"undo epochs. Resume with --epochs {trained} or more, or train {epochs} epochs in another "
                       f"--checkpoint-dir")


def _cannot_extend(folder: Path, trained: int, epochs: int) -> ConfigError:
    return ConfigError(f"{folder} holds a run that finished after {trained} epochs, and no {LAST_FILE} to continue "
                       f"it to --epochs {epochs}; resume with --epochs {trained}, or delete the folder to train the "
                       f"seed afresh")


def _extends(record: dict[str, Any], epochs: int) -> bool:
    """Whether a finished run must train on to reach ``epochs`` (not when it stopped early: a longer run would
    have stopped there too; a record from before ``stopped_early`` was kept continues from ``last.pt``, whose
    stop flag then decides)."""
    return len(record["history"]) < epochs and not record.get("stopped_early")


def _last_epochs(path: Path) -> tuple[int, int]:
    """The epochs a ``last.pt`` has trained and those its run was asked for (the trained ones in a checkpoint
    from before they were kept), read without loading its tensors."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        trained = len(state["history"])
        return trained, int(state.get("epochs", trained))
    except Exception as exc:  # truncated or foreign file: torch raises many kinds
        raise ConfigError(f"checkpoint {path} cannot be read ({type(exc).__name__}); it is not a complete "
                          f"graphdl checkpoint: delete the folder {path.parent} to train the seed afresh") from None


def resumed_epochs(checkpoint_dir: str | os.PathLike, seeds: Any) -> int | None:
    """The epochs the run in ``checkpoint_dir`` was asked for, which a resume that names none continues to: the
    most that any of ``seeds`` was asked for by its ``done.json``, ``last.pt`` or ``config.json`` (so a longer
    resume that was killed part-way is completed), or None when no seed has started."""
    asked: list[int] = []
    for seed in seeds:
        folder = seed_dir(checkpoint_dir, seed)
        record = _done_record(folder)
        if record is not None:
            asked.append(int(record.get("epochs") or len(record["history"])))
        last = latest_checkpoint(folder)
        if last is not None:
            asked.append(_last_epochs(last)[1])
        config = folder / CONFIG_FILE
        if config.is_file():
            try:
                value = json.loads(config.read_text(encoding="utf-8")).get(EPOCHS_KEY)
            except (OSError, ValueError, AttributeError):
                value = None  # check_resume names a damaged config.json
            if isinstance(value, int) and not isinstance(value, bool):
                asked.append(value)
    return max(asked) if asked else None


def check_resume(checkpoint_dir: str | os.PathLike, seeds: Any, config: dict[str, Any] | None = None,
                 epochs: int | None = None, normalize_config: Normalizer | None = None) -> None:
    """Before any seed trains, check that every seed folder can be resumed as asked: its ``done.json`` and
    ``best.pt`` are readable, its ``config.json`` matches ``config`` (``epochs`` aside; both taken through
    ``normalize_config``, as :func:`fit_with_checkpoints` does), and no seed has trained more than ``epochs``;
    raises :class:`ConfigError` naming the folder and the fix."""
    for seed in seeds:
        folder = seed_dir(checkpoint_dir, seed)
        record = _done_record(folder)
        last = latest_checkpoint(folder)
        if config is not None and (record is not None or last is not None):  # state that a resume continues
            _check_config(folder, config, normalize_config)
        if record is not None:
            best = folder / BEST_FILE
            if best.is_file() and not zipfile.is_zipfile(best):
                raise _unreadable_best(best, folder, "not a torch zip archive")
            trained = len(record["history"])
            if epochs is not None and trained > epochs:
                raise _too_many_epochs(f"the finished run in {folder}", trained, epochs)
            if epochs is not None and _extends(record, epochs) and last is None:
                raise _cannot_extend(folder, trained, epochs)
        if epochs is not None and last is not None:  # a finished seed's too: see _check_last
            _check_last(last, epochs)


def _check_last(last: Path, epochs: int) -> None:
    """Refuse ``epochs`` fewer than ``last.pt`` has trained. A finished seed's ``last.pt`` holds more epochs than
    its ``done.json`` when a longer run that continued it was killed (``done.json`` is only replaced at the end):
    its best.pt may then be of a later epoch, so the record is not returned for fewer epochs than that."""
    trained = _last_epochs(last)[0]
    if trained > epochs:
        raise _too_many_epochs(f"the checkpoint {last}", trained, epochs)


def _unreadable_best(path: Path, folder: Path, why: str) -> ConfigError:
    return ConfigError(f"{path} of a finished run cannot be read ({why}); it is damaged: delete the folder "
                       f"{folder} to train that seed again")


def _read_weights(trainer: Trainer, path: Path) -> dict[str, Any]:
    """The contents of a finished seed's ``best.pt`` or ``last.pt``, naming a damaged file."""
    try:
        state = torch.load(path, map_location=trainer.device, weights_only=False)
    except Exception as exc:  # truncated or foreign file: torch raises many kinds
        raise _unreadable_best(path, path.parent, f"{type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise _unreadable_best(path, path.parent, "it holds no model weights")
    return state


def _load_weights(trainer: Trainer, path: Path, state: dict[str, Any] | None = None) -> None:
    """Load the weights a finished seed's ``best.pt`` or ``last.pt`` holds (``state``: its contents, already
    read; or the best weights taken from it) into ``trainer.model`` (and its loss), naming a damaged file or
    another model."""
    state = _read_weights(trainer, path) if state is None else state
    expected = class_name(trainer.model)
    fix = ("resume with the configuration it was trained with, or train this one in another --checkpoint-dir "
           "(and write it to another --json path)")
    if state.get("model_class", expected) != expected:
        raise ConfigError(f"{path} holds the weights of a {state['model_class']}, not of this {expected}: the seed "
                          f"finished with another model; {fix}")
    try:
        trainer.model.load_state_dict(state["model"])
        if isinstance(state.get("loss"), dict) and isinstance(trainer.loss_fn, nn.Module):
            trainer.loss_fn.load_state_dict(state["loss"])
    except RuntimeError as exc:
        raise ConfigError(f"{path} does not fit this model ({str(exc).splitlines()[0]} ...): the seed finished with "
                          f"another model configuration; {fix}") from None


def _saved_best(state: dict[str, Any], checkpoint: ModelCheckpoint) -> dict[str, Any] | None:
    """The best weights that the first ModelCheckpoint's state in a ``last.pt`` holds, as ``best.pt`` holds
    them, or None."""
    names, states = state.get("callback_types") or [], state.get("callbacks") or []
    name = class_name(checkpoint)
    saved = next((s for n, s in zip(names, states) if n == name and isinstance(s, dict)), None)
    if saved is None or not isinstance(saved.get("best_state"), dict):
        return None
    return {"model": saved["best_state"], "loss": saved.get("best_loss_state"), "model_class": state.get("model_class")}


def _load_finished_weights(trainer: Trainer, checkpoint: ModelCheckpoint, folder: Path, trained: int,
                           last: Path | None) -> None:
    """Leave ``trainer.model`` as a fit of the finished seed (``trained`` epochs in its ``done.json``) ended: in
    its best epoch's state (``best.pt``), or with ``restore_best=False`` in its final epoch's (``last.pt``).

    A longer run that continued the seed and was killed after it wrote ``best.pt`` for a new epoch but before
    that epoch's ``last.pt`` leaves a ``best.pt`` of an epoch the record does not hold; the best weights of the
    recorded run are then those that ``last.pt``'s ModelCheckpoint state holds."""
    final = last is not None and _last_epochs(last)[0] == trained  # last.pt holds the recorded final epoch
    if not checkpoint.restore_best:
        if not final:
            raise ConfigError(f"{folder} holds no {LAST_FILE} of the finished run's final epoch {trained - 1} (a "
                              f"ModelCheckpoint with every_n_epochs > 1 skipped it), so the model cannot end in "
                              f"its final weights as restore_best=False asks; resume with restore_best=True to "
                              f"load its best weights ({BEST_FILE}), or delete the folder to train the seed afresh")
        _load_weights(trainer, last)
        return
    best = folder / BEST_FILE
    if not best.is_file():
        return
    state = _read_weights(trainer, best)
    epoch = state.get("epoch")
    if not isinstance(epoch, int) or epoch < trained:
        _load_weights(trainer, best, state)
        return
    saved = _saved_best(_read_weights(trainer, last), checkpoint) if final else None
    if saved is None:
        raise ConfigError(f"{best} holds the weights of epoch {epoch}, after the {trained} epochs the finished run "
                          f"in {folder} recorded (a longer run that continued it was killed), and no {LAST_FILE} "
                          f"holds the recorded run's best weights; resume with --epochs greater than {epoch} to "
                          f"finish the longer run, or delete the folder to train the seed afresh")
    _load_weights(trainer, last, saved)


def _checkpoint_callback(trainer: Trainer) -> ModelCheckpoint:
    for cb in trainer.callbacks:
        if isinstance(cb, ModelCheckpoint):
            return cb
    raise ConfigError("the trainer has no ModelCheckpoint callback")  # Trainer always adds one


def refuse_to_overwrite(folder: str | os.PathLike) -> None:
    """Raise when a fresh (non-resumed) run would overwrite an earlier run's checkpoint in ``folder``."""
    folder = Path(folder)
    if (folder / DONE_FILE).is_file():
        held = "the result of a finished run (done.json)"
    elif (folder / LAST_FILE).is_file():
        held = "the checkpoint of an unfinished run (last.pt)"
    else:
        return  # best.pt alone or nothing: no resumable state to lose
    raise ConfigError(f"{folder} holds {held}; pass --resume (resume=True) to continue it, or delete "
                      f"that folder or choose another --checkpoint-dir to start the seed afresh")


def fit_with_checkpoints(trainer: Trainer, data: Any, splits: Any = None,
                         checkpoint_dir: str | os.PathLike | None = None, resume: bool = False,
                         seed: int | str = 0, config: dict[str, Any] | None = None,
                         normalize_config: Normalizer | None = None) -> FitResult:
    """``trainer.fit(data, splits)`` with a resumable checkpoint every epoch in ``checkpoint_dir/seed_<seed>``.

    Args:
        trainer: The Trainer (its first :class:`ModelCheckpoint` is pointed at
            the seed's folder; the Trainer always has one).
        data, splits: What ``trainer.fit`` takes.
        checkpoint_dir: Root folder; ``None`` just calls ``trainer.fit``.
        resume: Continue from the seed's newest complete checkpoint, or return
            the stored result (and load the best weights) when the seed has
            finished (``done.json``); a finished seed asked for more epochs
            than it trained continues from its ``last.pt``. Without ``resume``
            a seed folder that already holds a checkpoint or a finished result
            raises :class:`ConfigError` instead of overwriting it: hours of a
            long run are not lost to a forgotten ``--resume``.
        seed: Names the subfolder (one per seed of a multi-seed run).
        config: The run's configuration (JSON values), kept in
            ``config.json``; resuming with another one (``epochs`` aside)
            raises :class:`ConfigError` naming the changed keys. The
            Trainer's own settings (:meth:`Trainer.resume_settings`) are
            checked against ``last.pt`` whenever a seed trains on, and
            against ``done.json`` for a finished seed, whose result is then
            returned as recorded (``result.monitor`` names its monitor); the
            trainer's :class:`MetricLogger` files are written with its
            recorded history.
        normalize_config: ``config -> config`` giving the configuration as
            it takes effect (the defaults it leaves out filled in, names in
            one spelling); ``config`` and the saved ``config.json`` are
            compared through it, and ``config.json`` holds its result, so
            that the same configuration spelt otherwise resumes.

    Returns:
        The :class:`FitResult`; ``result.extra["skipped"]`` is True when the
        seed had already finished. Under ``torch.distributed`` every rank calls
        this; rank 0 writes the files.
    """
    if checkpoint_dir is None:
        return trainer.fit(data, splits)
    folder = seed_dir(checkpoint_dir, seed)
    main = _dist.is_main_process()
    if main:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(".*.tmp"):  # temporary files of a write that was killed
            stale.unlink(missing_ok=True)
    checkpoint = _checkpoint_callback(trainer)
    checkpoint.dirpath = folder
    config = _normalized(config, normalize_config) if config is not None else None
    resume_from = None
    if resume:
        record = _done_record(folder)
        if config is not None and (record is not None or latest_checkpoint(folder) is not None):
            _check_config(folder, config, normalize_config)
        if record is not None:
            # its result is returned as recorded: a Trainer of other settings would silently get another run's
            # (records written before settings were kept: only the epochs are checked). How it was computed may
            # differ: a run may take seeds finished on one process beside new ones trained on two
            settings = {k: v for k, v in (record.get("settings") or {}).items() if k not in _EXECUTION_SETTINGS}
            trainer.check_resume_settings(settings, f"the finished run in {folder / DONE_FILE}",
                                          trained_epochs=len(record["history"]))
            if not _extends(record, trainer.epochs):
                last = latest_checkpoint(folder)
                if last is not None:
                    _check_last(last, trainer.epochs)
                # the model ends as a fit would: in its best epoch's state, or with restore_best=False its last
                _load_finished_weights(trainer, checkpoint, folder, len(record["history"]), last)
                result = _fit_result(record, folder)
                if main:  # a metric log asked for on resume holds the finished seed's epochs too
                    for callback in trainer.callbacks:
                        if isinstance(callback, MetricLogger):
                            callback.write(result.history)
                return result
            resume_from = latest_checkpoint(folder)
            if resume_from is None:
                raise _cannot_extend(folder, len(record["history"]), trainer.epochs)
        else:
            resume_from = latest_checkpoint(folder)
    else:
        refuse_to_overwrite(folder)
    if main and resume_from is None:  # the seed starts now: record its configuration (an older one is stale)
        if config is not None:
            atomic_write_json(folder / CONFIG_FILE, config)
        else:
            (folder / CONFIG_FILE).unlink(missing_ok=True)
    if _dist.is_distributed():
        import torch.distributed as dist

        dist.barrier()  # rank 0 has removed stale temporary files before anyone writes
    # a finished seed that trains on keeps its done.json until the longer run replaces it: a refused or failed
    # resume loses nothing, and one killed on the way resumes from last.pt (it holds more epochs than the record)
    result = trainer.fit(data, splits, resume_from=resume_from)
    result.extra.update({"resumed": resume_from is not None, "checkpoint_dir": str(folder)})
    if main:
        atomic_write_json(folder / DONE_FILE, {
            "seed": seed, "best_epoch": result.best_epoch, "best": result.best, "history": result.history,
            "seconds": result.seconds, "train_seconds": result.train_seconds, "epoch_seconds": result.epoch_seconds,
            "epochs_trained": result.epochs_trained, "monitor": result.monitor, "epochs": trainer.epochs,
            "stopped_early": bool(trainer.should_stop), "settings": trainer.resume_settings(),
        })
    return result
