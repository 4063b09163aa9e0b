"""Atomic file writing: a crash never leaves a truncated file behind.

Data is written to a temporary file in the destination folder, flushed to disk,
then moved over the destination with ``os.replace`` (atomic on POSIX and
Windows), so readers see either the old file or the complete new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import torch

from graphdl.errors import ConfigError

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_json", "atomic_torch_save", "check_folder_path"]


def check_folder_path(folder: str | os.PathLike, what: str) -> Path:
    """``folder`` as a Path, after checking that it can be a folder: it and the parents that exist are folders.

    Raises :class:`ConfigError` naming the file in the way, so a run fails before training, not
    at its first save.
    """
    folder = Path(folder)
    for candidate in (folder, *folder.parents):
        if candidate.is_symlink() and not candidate.exists():
            raise ConfigError(f"cannot use {str(folder)!r} as the folder for {what}: {str(candidate)!r} is a link "
                              f"to {os.readlink(candidate)!r}, which does not exist. Create that folder, or choose "
                              f"another path.")
        if candidate.exists():
            if not candidate.is_dir():
                raise ConfigError(f"cannot use {str(folder)!r} as the folder for {what}: {str(candidate)!r} "
                                  f"is a file. Choose another path, or move the file away.")
            break
    return folder


_WRITE_MODES = frozenset({"w", "wt", "wb", "w+", "wt+", "wb+", "w+t", "w+b"})


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success flush it to disk, rename it to ``path`` and sync the
    folder, so that a crash at any moment leaves the old file or the new one, whole.

    ``mode`` is a write mode (``"w"``, ``"wb"``, ``"w+"``, ...): the file is written anew. A symbolic link at
    ``path`` is written through, as ``open`` does: its target gets the new contents and the link stays.
    """
    if mode not in _WRITE_MODES:  # checked before the temporary file is opened: fdopen would leak it
        raise ValueError(f"atomic_write writes a new file, so mode must be a write mode such as 'w' or 'wb', got "
                         f"{mode!r}; to add to a file, read it, then write the old and the new contents")
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {str(path)!r}: it is a folder; give the path of a file in it")
    check_folder_path(path.parent, path.name).mkdir(parents=True, exist_ok=True)
    # created as open() creates files (0666 less the umask, applied by the OS: reading the umask means setting
    # it, a race with other threads); a file that is replaced keeps its permissions (a private one stays so)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    with contextlib.suppress(OSError):
        os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
    try:
        handle = os.fdopen(fd, mode, **kwargs)
    except BaseException:  # kwargs open refuses (encoding= with "wb"): the descriptor it did not take is closed
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _sync_folder(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` (UTF-8) atomically."""
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> None:
    """Write ``obj`` as JSON to ``path`` atomically."""
    with atomic_write(path, "w", encoding="utf-8") as handle:
        json.dump(obj, handle, indent=indent)
        handle.write("\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically."""
    with atomic_write(path, "wb") as handle:
        torch.save(obj, handle)


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` survive a crash (POSIX: fsync the folder; not possible on Windows)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
