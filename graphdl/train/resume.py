"""Checkpoint every epoch and continue a killed run exactly (``graphdl train --checkpoint-dir DIR [--resume]``).

:func:`fit_with_checkpoints` runs ``trainer.fit`` with one folder per seed::

    DIR/seed_<seed>/last.pt     full trainer state after the newest epoch (model, optimiser,
                                scheduler, callbacks, history, epoch, RNG states of every rank)
    DIR/seed_<seed>/best.pt     weights of the best epoch so far
    DIR/seed_<seed>/done.json   the finished run's result; a resumed run skips this seed

Every file is written atomically (a temporary file in the same folder, then
``os.replace``), so a run killed at any moment leaves the previous complete
checkpoint; ``resume=True`` continues from it. The checkpoint holds the global
RNG states, which drive dropout, negative and neighbour sampling and the
DataLoader's shuffling, so the resumed run sees the same batches and ends with
the same parameters and metrics, bit for bit, as a run that was never stopped.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import torch

from graphdl import distributed as _dist
from graphdl.errors import ConfigError
from graphdl.io import atomic_write_json
from graphdl.train.callbacks import ModelCheckpoint
from graphdl.train.trainer import FitResult, Trainer

__all__ = ["fit_with_checkpoints", "refuse_to_overwrite", "seed_dir", "latest_checkpoint", "read_done",
           "DONE_FILE", "LAST_FILE"]

DONE_FILE = "done.json"
LAST_FILE = "last.pt"
BEST_FILE = "best.pt"


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


def read_done(folder: str | os.PathLike) -> FitResult | None:
    """The :class:`FitResult` a finished seed left in ``folder/done.json``, or None."""
    path = Path(folder) / DONE_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return FitResult(int(record["best_epoch"]), dict(record["best"]), list(record["history"]),
                         float(record["seconds"]), str(record["monitor"]),
                         train_seconds=float(record.get("train_seconds", 0.0)),
                         epochs_trained=int(record.get("epochs_trained", len(record["history"]))),
                         extra={"skipped": True, "checkpoint_dir": str(Path(folder))})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a valid record of a finished run ({type(exc).__name__}: {exc}); "
                          f"delete it to run the seed again") from None


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
                         seed: int | str = 0) -> FitResult:
    """``trainer.fit(data, splits)`` with a resumable checkpoint every epoch in ``checkpoint_dir/seed_<seed>``.

    Args:
        trainer: The Trainer (its first :class:`ModelCheckpoint` is pointed at
            the seed's folder; the Trainer always has one).
        data, splits: What ``trainer.fit`` takes.
        checkpoint_dir: Root folder; ``None`` just calls ``trainer.fit``.
        resume: Continue from the seed's newest complete checkpoint, or return
            the stored result (and load the best weights) when the seed has
            finished (``done.json``). Without ``resume`` a seed folder that
            already holds a checkpoint or a finished result raises
            :class:`ConfigError` instead of overwriting it: hours of a long run
            are not lost to a forgotten ``--resume``.
        seed: Names the subfolder (one per seed of a multi-seed run).

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
    resume_from = None
    if resume:
        done = read_done(folder)
        if done is not None:
            best = folder / BEST_FILE
            if checkpoint.restore_best and best.is_file():
                state = torch.load(best, map_location=trainer.device, weights_only=False)
                trainer.model.load_state_dict(state["model"])
            return done
        resume_from = latest_checkpoint(folder)
    else:
        refuse_to_overwrite(folder)
    if _dist.is_distributed():
        import torch.distributed as dist

        dist.barrier()  # rank 0 has removed stale temporary files before anyone writes
    result = trainer.fit(data, splits, resume_from=resume_from)
    result.extra.update({"resumed": resume_from is not None, "checkpoint_dir": str(folder)})
    if main:
        atomic_write_json(folder / DONE_FILE, {
            "seed": seed, "best_epoch": result.best_epoch, "best": result.best, "history": result.history,
            "seconds": result.seconds, "train_seconds": result.train_seconds,
            "epochs_trained": result.epochs_trained, "monitor": result.monitor,
        })
    return result

