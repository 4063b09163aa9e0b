"""Data-parallel training with ``torch.distributed`` (gloo on CPU, NCCL on GPUs).

How a distributed run works (see ``docs/distributed.md``):

* Every process runs the same program. :func:`init_from_env` joins the process
  group that ``torchrun`` (or :func:`launch` / :func:`spawn`) describes in the
  environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
  ``MASTER_PORT``).
* :class:`~graphdl.train.Trainer` sees ``torch.distributed.is_initialized()``
  and wraps the model in ``DistributedDataParallel``; the task trains on its
  shard (:meth:`~graphdl.train.Task.shard`): graph-level tasks through a
  ``DistributedSampler``, node-level mini-batch tasks by splitting the seed
  nodes the same way. ``batch_size`` is per process: the global batch is
  ``batch_size * world_size``.
* Every rank evaluates the full splits (evaluation is cheap), and rank 0's
  figures are broadcast, so every rank reports the same metrics, exact ones
  (ROC-AUC, Hits@K) included. The training loss is averaged over ranks.
* Only rank 0 writes checkpoints, metric logs and result files.

``graphdl train --nproc N`` calls :func:`launch`, which starts ``N`` processes
on this machine; on several machines run ``torchrun ... -m graphdl train ...``
on each.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

if TYPE_CHECKING:
    from graphdl.config import TrainConfig

__all__ = [
    "is_distributed", "get_rank", "get_world_size", "is_main_process", "init_from_env", "cleanup",
    "launch", "spawn", "env_world_size", "ERROR_DIR_ENV",
]

#: Environment variable naming a folder where :func:`launch`'s children leave their one-line errors.
ERROR_DIR_ENV = "GRAPHDL_ERROR_DIR"
#: The command line the user typed, handed to the children of :func:`launch` for their result files.
COMMAND_LINE_ENV = "GRAPHDL_COMMAND_LINE"


def is_distributed() -> bool:
    """True inside an initialised ``torch.distributed`` process group."""
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    """Number of processes (1 outside a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0, and in a single-process run."""
    return get_rank() == 0


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (what ``torchrun`` sets), 1 when unset or empty.

    Raises :class:`~graphdl.errors.ConfigError` for a value that is not a whole
    number >= 1 (a broken launcher must not leave every process training alone).
    """
    raw = os.environ.get("WORLD_SIZE", "").strip()
    if not raw:
        return 1
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        from graphdl.errors import ConfigError

        raise ConfigError(f"the environment variable WORLD_SIZE={raw!r} is not a whole number >= 1; set it to the "
                          f"number of processes (torchrun does) or unset it for a single-process run")
    return value


def init_from_env(backend: str | None = None, device: str | torch.device | None = None) -> bool:
    """Join the process group described by the environment when ``WORLD_SIZE > 1``.

    ``backend`` defaults to NCCL when CUDA is available and ``device`` is not
    the CPU, else gloo. With NCCL the process uses GPU ``LOCAL_RANK``. Returns
    True when this call initialised the group (call :func:`cleanup` at the end).
    """
    if env_world_size() <= 1 or is_distributed():
        return False
    if not dist.is_available():
        from graphdl.errors import ConfigError

        raise ConfigError("WORLD_SIZE > 1 but this torch build has no torch.distributed support")
    _init_group(backend, device)
    return True


def _init_group(backend: str | None, device: str | torch.device | None) -> None:
    use_cuda = torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda")
    backend = backend or ("nccl" if use_cuda else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend, init_method="env://")


def cleanup() -> None:
    """Leave the process group (no-op outside one)."""
    if is_distributed():
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Env:
    """Set environment variables for the children, restore them afterwards."""

    def __init__(self, **values: str) -> None:
        self.values, self.saved = values, {}

    def __enter__(self) -> None:
        for key, value in self.values.items():
            self.saved[key] = os.environ.get(key)
            os.environ[key] = value

    def __exit__(self, *exc: Any) -> None:
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _child_env(nprocs: int, port: int, threads: int | None) -> dict[str, str]:
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(nprocs),
           "LOCAL_WORLD_SIZE": str(nprocs), "GROUP_RANK": "0"}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    elif "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = "1"  # as torchrun does: N processes must not oversubscribe the cores
    return env


# ---------------------------------------------------------------------------- spawn (library use, tests)
def _spawn_entry(local_rank: int, fn: Callable[..., Any], args: tuple, backend: str | None,
                 results: str) -> None:
    os.environ["RANK"] = os.environ["LOCAL_RANK"] = str(local_rank)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    _init_group(backend, None)  # also for nprocs=1, where init_from_env would leave the process alone
    try:
        value = fn(dist.get_rank(), dist.get_world_size(), *args)
        torch.save(value, Path(results) / f"rank{local_rank}.pt")
        dist.barrier()
    finally:
        cleanup()


def spawn(fn: Callable[..., Any], nprocs: int, args: Sequence[Any] = (), backend: str | None = None,
          threads: int | None = None) -> list[Any]:
    """Run ``fn(rank, world_size, *args)`` in ``nprocs`` processes of one process group on this machine.

    ``fn`` must be importable by name (a module-level function) and return
    something ``torch.save`` can write. Returns the values ``fn`` returned,
    ordered by rank; ``nprocs=1`` runs one process in a group of one. Each
    child uses ``threads`` CPU threads (default: ``$OMP_NUM_THREADS``, else
    1). ``backend`` defaults as in :func:`init_from_env` (gloo without CUDA).
    """
    import torch.multiprocessing as mp

    from graphdl.errors import ConfigError

    if isinstance(nprocs, bool) or not isinstance(nprocs, int) or nprocs < 1:
        raise ConfigError(f"spawn: nprocs must be a whole number >= 1, got {nprocs!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"spawn: threads must be a whole number >= 1 or None, got {threads!r}")
    with tempfile.TemporaryDirectory(prefix="graphdl-spawn-") as tmp:
        with _Env(**_child_env(nprocs, _free_port(), threads)):
            mp.start_processes(_spawn_entry, args=(fn, tuple(args), backend, tmp), nprocs=nprocs,
                               join=True, start_method="spawn")
        return [torch.load(Path(tmp) / f"rank{r}.pt", weights_only=False) for r in range(nprocs)]


# ---------------------------------------------------------------------------- graphdl train --nproc N
def _cli_entry(local_rank: int, argv: list[str]) -> None:
    os.environ["RANK"] = os.environ["LOCAL_RANK"] = str(local_rank)
    from graphdl.cli import main

    sys.exit(main(argv))


def config_to_yaml(cfg: TrainConfig, path: str | os.PathLike) -> None:
    """Write ``cfg`` (without ``nproc``) as a YAML file that ``graphdl train --config`` reads back exactly.

    Written as JSON, which is YAML too: every string is quoted, so ``--root 08`` or ``--json 1e5`` come back as
    strings (PyYAML's dumper leaves them bare, and the YAML 1.2 reading of the loader takes them as numbers).
    """
    import dataclasses
    import json

    from graphdl.io import atomic_write

    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name not in ("extra", "nproc")}
    with atomic_write(path, "w", encoding="utf-8") as handle:
        json.dump(values, handle, indent=1)


def launch(cfg: TrainConfig, command_line: str | None = None) -> int:
    """Run ``graphdl train`` with ``cfg`` in ``cfg.nproc`` processes on this machine; return the exit code.

    The children are started with ``torch.multiprocessing`` (as ``torchrun
    --standalone --nproc-per-node N -m graphdl train ...`` would) and read
    ``cfg`` back from a temporary YAML file. Each child uses one CPU thread
    unless ``OMP_NUM_THREADS`` is set. Errors a child reports on purpose are
    printed once, as one ``graphdl: error: ...`` line, and give exit code 2.
    ``command_line`` (what the user typed) is recorded in rank 0's result file.
    """
    import torch.multiprocessing as mp

    from graphdl.errors import ConfigError

    if env_world_size() > 1:
        raise ConfigError("--nproc cannot be used inside torchrun (WORLD_SIZE is already set); "
                          "give torchrun's --nproc-per-node instead")
    if torch.cuda.is_available() and (cfg.device is None or cfg.device.startswith("cuda")) \
            and cfg.nproc > torch.cuda.device_count():
        raise ConfigError(f"--nproc {cfg.nproc} needs one GPU per process but {torch.cuda.device_count()} "
                          f"are visible; lower --nproc or pass --device cpu")
    with tempfile.TemporaryDirectory(prefix="graphdl-launch-") as tmp:
        config = Path(tmp) / "run.yaml"
        errors = Path(tmp) / "errors"
        errors.mkdir()
        config_to_yaml(cfg, config)
        argv = ["train", "--config", str(config)]
        code = 0
        # torch logs "Terminating process ..." when one child fails; the error line below says why.
        spawn_log = logging.getLogger("torch.multiprocessing.spawn")
        level = spawn_log.level
        spawn_log.setLevel(logging.ERROR)
        with _Env(**_child_env(cfg.nproc, _free_port(), None), **{ERROR_DIR_ENV: str(errors)},
                  **({COMMAND_LINE_ENV: command_line} if command_line else {})):
            try:
                mp.start_processes(_cli_entry, args=(argv,), nprocs=cfg.nproc, join=True, start_method="spawn")
            except mp.ProcessExitedException as exc:
                code = exc.exit_code if exc.exit_code and exc.exit_code > 0 else 1
            except mp.ProcessRaisedException as exc:  # an unexpected exception (a bug): show its traceback
                print(str(exc), file=sys.stderr)
                code = 1
            finally:
                spawn_log.setLevel(level)
        messages = list(dict.fromkeys(p.read_text(encoding="utf-8").strip()
                                      for p in sorted(errors.iterdir())))
    if messages:
        print(f"graphdl: error: {' | '.join(messages)}", file=sys.stderr)
        return 2
    return code
