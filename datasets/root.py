"""Where datasets live: the data root, the writable cache, missing-file errors.

The data root is, in order: the ``root`` argument, the ``GRAPHDL_DATA``
environment variable, the user cache folder (``$XDG_CACHE_HOME/graphdl``, else
``~/.cache/graphdl``). Datasets sit under it in the official layouts::

    <root>/planetoid/Cora/raw/ind.cora.x ...
    <root>/ogb/ogbg_molbace/{raw,split,mapping}/...  RELEASE_v1.txt

The official loaders write ``processed/`` next to ``raw/``. When the dataset
folder is writable they do that in place; when it is read-only (a shared
mirror), the raw, split and mapping files and the ``RELEASE`` note - never
``processed/`` - are copied once into ``<cache>/copies/<root-id>/`` and the
loader runs there. The copy remembers the size and modification time of every
source file and of its own copy of it: it is refreshed when the source changes,
and a copied file deleted or changed in the cache is copied again.
"""

from __future__ import annotations

import contextlib
import filecmp
import gzip
import hashlib
import json
import os
import shutil
import stat
import tempfile
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from graphdl.errors import ConfigError, DataError, GraphDLError, did_you_mean

__all__ = [
    "DATA_ENV",
    "OFFLINE_ENV",
    "cache_dir",
    "resolve_root",
    "download_allowed",
    "is_writable_dir",
    "DatasetFolder",
    "prepare_folder",
    "dataset_source",
    "cleanup_on_failure",
    "dataset_lock",
    "lock_paths",
    "remove_processed",
    "PreTransformError",
    "check_gzip",
    "first_corrupt_gzip",
    "check_loader_kwargs",
    "run_official_loader",
]

DATA_ENV = "GRAPHDL_DATA"
OFFLINE_ENV = "GRAPHDL_OFFLINE"
MANIFEST = ".graphdl-copy.json"
T = TypeVar("T")


def cache_dir() -> Path:
    """The user cache folder: ``$XDG_CACHE_HOME/graphdl`` or ``~/.cache/graphdl``."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "graphdl"


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root``, else ``$GRAPHDL_DATA``, else :func:`cache_dir`.

    Raises:
        DataError: the chosen path exists but is not a folder, or lies under a file.
    """
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise DataError(
            f"root must be a folder path (str or os.PathLike), got "
            f"{type(root).__name__} {root!r}. Pass the folder that holds planetoid/ "
            f"and ogb/, or set {DATA_ENV}."
        )
    if root is not None and str(root).strip():
        path, origin = Path(root), "the root argument"
    elif os.environ.get(DATA_ENV, "").strip():
        path, origin = Path(os.environ[DATA_ENV].strip()), f"${DATA_ENV}"
    else:
        path, origin = cache_dir(), "the default cache folder"
    path = path.expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise _unusable_root(f"data root {str(path)!r} (from {origin}) is not a folder.")
    # a new root under a file can never be created: its datasets would look missing and be
    # downloaded into the cache instead, silently
    above = path.parent
    while not above.exists() and above.parent != above:
        above = above.parent
    if above.exists() and not above.is_dir():
        raise _unusable_root(f"data root {str(path)!r} (from {origin}) lies under {str(above)!r}, which is a "
                             f"file, not a folder, so the root can never be created.")
    return path


def _unusable_root(why: str) -> DataError:
    return DataError(f"{why} Pass root= (or set {DATA_ENV} to) a folder that holds the datasets in the official "
                     f"layout (<root>/planetoid/Cora/raw, <root>/ogb/ogbg_molbace/raw, ...), or a new folder to "
                     f"download them into.")


#: The spellings of ``$GRAPHDL_OFFLINE`` (case-insensitive): offline, and online (unset or empty is online too).
OFFLINE_ON = ("1", "true", "yes", "on")
OFFLINE_OFF = ("0", "false", "no", "off")


def download_allowed(download: bool | None = None) -> bool:
    """``download`` if given, else whether ``$GRAPHDL_OFFLINE`` is unset, empty or off.

    ``$GRAPHDL_OFFLINE`` is read case-insensitively: ``1``/``true``/``yes``/``on``
    turn downloads off, ``0``/``false``/``no``/``off`` (or unset, empty) leave them on.

    Raises:
        ConfigError: ``download`` is not ``True``, ``False`` or ``None``, or
            ``$GRAPHDL_OFFLINE`` has another value.
    """
    if download is not None:
        # not bool(): a string ("false", "no") is truthy and would turn downloads on
        try:
            flag = not isinstance(download, str) and download in (True, False)
        except (TypeError, ValueError, RuntimeError):  # an array or tensor: no single truth value
            flag = False
        if not flag:
            raise ConfigError(f"download must be True, False or None (None: follow ${OFFLINE_ENV}), got "
                              f"{type(download).__name__} {download!r}.")
        return bool(download)
    value = os.environ.get(OFFLINE_ENV, "")
    word = value.strip().lower()
    if word in ("", *OFFLINE_OFF):
        return True
    if word in OFFLINE_ON:
        return False
    raise ConfigError(f"${OFFLINE_ENV} is {value!r}, which is neither on nor off. Set it to one of "
                      f"{', '.join(OFFLINE_ON)} (no downloads) or {', '.join(OFFLINE_OFF)} (downloads allowed), "
                      f"case-insensitive, or unset it.")


def is_writable_dir(path: Path) -> bool:
    """Whether ``path`` (or, if it does not exist, its nearest existing parent)
    may be written.

    Besides :func:`os.access`, the permission bits must grant write access to
    someone: a folder made read-only with ``chmod a-w`` counts as read-only
    even for root, who could write it anyway.
    """
    path = Path(path)
    while not path.exists():
        if path.parent == path:
            return False
        path = path.parent
    if not path.is_dir():
        return False
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) and os.access(
        path, os.W_OK | os.X_OK
    )


def _root_id(root: Path) -> str:
    """The cache folder name of a read-only root: the same for every spelling (symlinks) of it."""
    root = root.resolve()
    digest = hashlib.sha1(str(root).encode("utf-8")).hexdigest()[:10]
    tail = "".join(c if c.isalnum() or c in "-_." else "_" for c in root.name) or "root"
    return f"{tail}-{digest}"


@dataclass
class DatasetFolder:
    """One dataset's folder: where the user keeps it and where it is loaded.

    Attributes:
        name: The registry name (``"ogbg-molbace"``).
        source: ``<data root>/<family>/<dir_name>``: where the user keeps (or
            should put) the files; named in error messages.
        work_root: The folder passed to the official loader as its ``root``
            (``<data root>/<family>`` or the cache copy's ``.../<family>``).
        dir_name: The dataset's folder name under ``work_root``.
        expected: Files (relative to the dataset folder) the loader needs.
        copied: Whether ``work_root`` is a cache copy of a read-only source.
    """

    name: str
    source: Path
    work_root: Path
    dir_name: str
    expected: tuple[str, ...]
    copied: bool

    @property
    def work_dir(self) -> Path:
        """The dataset folder the official loader reads and writes."""
        return self.work_root / self.dir_name

    def missing(self) -> list[str]:
        """Expected files absent from :attr:`work_dir`."""
        return [rel for rel in self.expected if not (self.work_dir / rel).is_file()]

    def source_path(self, path: Path) -> Path:
        """The user-visible file behind ``path`` (inside :attr:`work_dir`)."""
        with contextlib.suppress(ValueError):
            return self.source / Path(path).relative_to(self.work_dir)
        return Path(path)

    def missing_error(self, missing: list[str], *, reason: str, fetch: str | None) -> DataError:
        """A :class:`DataError` naming the missing files and where they go.

        ``fetch`` is the sentence saying where to get them (``None``: no source).
        """
        shown = ", ".join(missing[:12]) + (f" (+{len(missing) - 12} more)" if len(missing) > 12 else "")
        fetch = fetch or f"Put these files into {str(self.source)!r}"
        return DataError(
            f"dataset {self.name!r}: {len(missing)} file(s) missing from "
            f"{str(self.source)!r}: {shown}; {reason}. {fetch}, or pass root= / set "
            f"{DATA_ENV} to a folder that already has them "
            f"(layout <root>/{self.source.parent.name}/{self.source.name}/...)."
        )


def _snapshot(source: Path, parts: Iterable[str]) -> dict[str, list[int]]:
    """``{relative path: [size, mtime_ns]}`` of the files to copy."""
    files: dict[str, list[int]] = {}
    for part in parts:
        for top in sorted(source.glob(part)):
            candidates = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
            for path in candidates:
                rel = path.relative_to(source)
                if "processed" in rel.parts or rel.name.startswith("."):
                    continue
                st = path.stat()
                files[rel.as_posix()] = [st.st_size, st.st_mtime_ns]
    return files


def _read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _stat(path: Path) -> list[int] | None:
    """``[size, mtime_ns]`` of the regular file ``path``; ``None`` when it is not one."""
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns] if stat.S_ISREG(st.st_mode) else None


def _damaged_copies(target: Path, manifest: dict) -> list[str]:
    """Files of the copy ``target`` that are missing or changed since they were copied.

    Each copied file's own size and mtime are in the manifest (``copies``); a
    manifest written before they were recorded is checked against the source sizes.
    """
    copies = manifest.get("copies") if isinstance(manifest.get("copies"), dict) else {}
    damaged = []
    for rel, (size, _mtime) in manifest["files"].items():
        now = _stat(target / rel)
        expected = copies.get(rel)
        if now is None or (now != expected if expected is not None else now[0] != size):
            damaged.append(rel)
    return damaged


def _copy_error(source: Path, target: Path, exc: OSError) -> DataError:
    return DataError(
        f"could not copy {str(source)!r} into the writable cache {str(target)!r}: "
        f"{exc}. Make the cache writable (set XDG_CACHE_HOME), or point root= / "
        f"{DATA_ENV} at a writable copy of the data."
    )


def _repair_copy(source: Path, target: Path, manifest: dict, damaged: list[str]) -> None:
    """Copy the ``damaged`` files of the cache copy ``target`` again from ``source``.

    Each file is replaced atomically; the processed files of the copy are
    removed (they may have been made from a damaged file) and the manifest is
    rewritten with the new copies.
    """
    copies = dict(manifest.get("copies") or {})
    try:
        for rel in damaged:
            dst = target / rel
            if dst.is_dir() and not dst.is_symlink():
                shutil.rmtree(dst)
            dst.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
            os.close(fd)
            try:
                shutil.copyfile(source / rel, tmp)
                os.replace(tmp, dst)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            copies[rel] = _stat(dst)
        for processed in sorted(target.rglob("processed"), reverse=True):
            remove_processed(processed)
        _write_atomic(target / MANIFEST, json.dumps({**manifest, "copies": copies}, indent=1))
    except OSError as exc:
        raise DataError(
            f"the cache copy {str(target)!r} of {str(source)!r} is damaged ({len(damaged)} file(s) missing or "
            f"changed: {', '.join(damaged[:5])}) and repairing it failed: {exc}. Delete {str(target)!r} and "
            f"load again; it is copied afresh from the source."
        ) from exc


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on the file ``path`` (created if need be) while the block runs.

    The block is given ``True`` once the lock is held, ``False`` where it cannot be
    taken (no ``fcntl``: Windows; the file cannot be created or locked).
    """
    try:
        import fcntl

        handle = open(path, "a")
    except (ImportError, OSError):
        yield False
        return
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        except OSError:
            held = False
        else:
            held = True
        try:
            yield held
        finally:
            if held:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _is_temp_name(name: str, stem: str | None = None) -> bool:
    """Whether ``name`` is a temporary name this module makes (``.<stem>.<8 random chars>.tmp``)."""
    if not (name.startswith(".") and name.endswith(".tmp")) or len(name) < 14 or name[-13] != ".":
        return False
    drawn, head = name[-12:-4], name[1:-13]  # tempfile draws 8 characters from these
    return all(c in "abcdefghijklmnopqrstuvwxyz0123456789_" for c in drawn) and (stem is None or head == stem)


def _sweep_stale(target: Path) -> None:
    """Remove what a copier killed midway (SIGKILL, power loss) left of the copy ``target``.

    Called with the copy lock held, so no live process is writing these: the
    ``.<name>.<random>.tmp`` folders next to ``target`` (a new copy) and the
    ``.<file>.<random>.tmp`` files inside it (a repaired file, the manifest).
    ``processed/`` is the loaders' and is left alone.
    """
    with contextlib.suppress(OSError):
        for path in target.parent.iterdir():
            if _is_temp_name(path.name, target.name) and path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
    if target.is_dir():
        for path in target.rglob(".*.tmp"):
            if ("processed" not in path.relative_to(target).parts and _is_temp_name(path.name)
                    and (path.is_file() or path.is_symlink())):
                with contextlib.suppress(OSError):
                    path.unlink()


def _copy_dataset(source: Path, target: Path, parts: Iterable[str]) -> None:
    """Copy ``parts`` of ``source`` into ``target`` unless an up-to-date copy is there.

    An up-to-date copy whose own files were deleted or changed since they were
    copied is repaired: those files are copied again (:func:`_repair_copy`).
    A new copy is made in a temporary folder and renamed into place, so
    ``target`` is never half-copied; the temporary folder is removed when the
    copy fails or is interrupted, and one left by a killed process is removed
    by the next copy. Copies of one ``target`` take turns (a lock file next to it).
    """
    files = _snapshot(source, parts)
    # resolved, as the copy's folder name is (_root_id): another spelling (a symlink) is the same copy,
    # not a stale one to replace (that re-copied and re-processed it on every switch)
    wanted = {"source": str(source.resolve()), "files": files}
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _copy_error(source, target, exc) from exc
    with _exclusive(target.parent / f".{target.name}.graphdl-copy.lock") as locked:
        if locked:
            _sweep_stale(target)
        manifest = _read_manifest(target) if target.is_dir() else None
        if isinstance(manifest, dict) and all(manifest.get(key) == value for key, value in wanted.items()):
            damaged = _damaged_copies(target, manifest)
            if damaged:
                _repair_copy(source, target, manifest, damaged)
            return
        _copy_afresh(source, target, files, wanted)


def _copy_afresh(source: Path, target: Path, files: Mapping[str, list[int]], wanted: dict[str, Any]) -> None:
    """Copy ``files`` of ``source`` into a temporary folder and rename it to ``target``.

    A stale ``target`` is first renamed aside and removed only once the new copy is in place.
    """
    tmp: Path | None = None
    stale: Path | None = None
    try:
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
        copies: dict[str, list[int] | None] = {}
        for rel in files:
            dst = tmp / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / rel, dst)
            copies[rel] = _stat(dst)  # a rename keeps size and mtime
        (tmp / MANIFEST).write_text(json.dumps({**wanted, "copies": copies}, indent=1), encoding="utf-8")
        if target.exists():  # a stale copy (the source changed): replace it whole
            # renamed aside, not removed first: a reader outside the lock (split_indices) found the split
            # files missing while the old copy was being deleted
            stale = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
            os.rename(target, stale)
        try:
            os.rename(tmp, target)
        except OSError:  # another process put an up-to-date copy there first
            if stale is not None and not os.path.lexists(target):
                with contextlib.suppress(OSError):
                    os.rename(stale, target)  # put the old copy back
                    stale = None
            other = _read_manifest(target) if target.is_dir() else None
            if not (isinstance(other, dict) and all(other.get(key) == value for key, value in wanted.items())):
                raise
    except OSError as exc:
        raise _copy_error(source, target, exc) from exc
    finally:
        for leftover in (tmp, stale):
            if leftover is not None:
                shutil.rmtree(leftover, ignore_errors=True)


def dataset_source(root: str | os.PathLike | None, family: str, dir_name: str) -> Path:
    """Where the user keeps dataset ``dir_name``: ``<data root>/<family>/<dir_name>``.

    When ``root`` is the family folder itself (the ``root`` PyG/OGB take, e.g.
    ``.../ogb``) and holds ``dir_name``, that folder is used.
    """
    data_root = resolve_root(root)
    if not (data_root / family / dir_name).exists() and (data_root / dir_name).is_dir():
        return data_root / dir_name
    return data_root / family / dir_name


def prepare_folder(
    name: str,
    family: str,
    dir_name: str,
    expected: Iterable[str],
    root: str | os.PathLike | None = None,
    copy_parts: Iterable[str] = ("raw", "split", "mapping", "RELEASE_v*.txt"),
) -> DatasetFolder:
    """Locate dataset ``name`` under the data root and choose where to load it.

    Args:
        name: Registry name, for messages.
        family: ``"planetoid"`` or ``"ogb"``: the sub-folder of the data root.
        dir_name: The dataset's folder under ``<root>/<family>``.
        expected: Files the official loader needs, relative to the dataset folder.
        root: The ``root`` argument of :func:`graphdl.datasets.load`. Usually the
            folder holding ``<family>/``; the family folder itself (the root
            PyG/OGB take, e.g. ``.../ogb``) works too when it holds ``dir_name``.
        copy_parts: Glob patterns (relative to the dataset folder) copied to the
            cache when the source is read-only.

    Returns:
        A :class:`DatasetFolder`; a read-only source has been copied to the cache.
    """
    source = dataset_source(root, family, dir_name)
    family_root = source.parent
    for path in (family_root, source):
        # a file here made the folder look read-only and empty: "files missing", or a silent
        # download into the cache
        if path.exists() and not path.is_dir():
            raise DataError(
                f"dataset {name!r}: {str(path)!r} is a file, not a folder, so the dataset cannot be "
                f"read from or written to {str(source)!r}. Move that file away (the datasets sit in "
                f"<root>/{family}/{dir_name}/ in the official layout), or pass root= / set {DATA_ENV} "
                f"to another folder."
            )
    expected = tuple(expected)
    if is_writable_dir(source):
        return DatasetFolder(name, source, family_root, dir_name, expected, copied=False)
    work_root = cache_dir() / "copies" / _root_id(family_root) / family
    if not is_writable_dir(work_root):
        raise DataError(
            f"dataset {name!r}: {str(source)!r} is read-only and the cache folder "
            f"{str(work_root)!r} is not writable, so there is nowhere to write processed "
            f"files. Set XDG_CACHE_HOME to a writable folder, or point root= / "
            f"{DATA_ENV} at a writable copy of the data."
        )
    if source.is_dir():
        _copy_dataset(source, work_root / dir_name, copy_parts)
    return DatasetFolder(name, source, work_root, dir_name, expected, copied=True)


def lock_paths(key: str | os.PathLike) -> list[Path]:
    """The lock files :func:`dataset_lock` takes for the dataset folder ``key``, in order.

    Always ``<cache>/locks/<hash of the resolved path>.lock``, so every spelling
    of the folder (a symlink, ``..``) shares one lock; and, when the folder's
    parent exists and is writable (a writable root), also
    ``<parent>/.<folder name>.graphdl.lock`` next to the dataset, which
    processes with different caches (``XDG_CACHE_HOME``) share too. A read-only
    root (whose copy is in the cache) only has the cache lock.
    """
    resolved = Path(os.path.realpath(Path(key).expanduser()))
    digest = hashlib.sha1(str(resolved).encode("utf-8")).hexdigest()[:16]
    paths = [cache_dir() / "locks" / f"{digest}.lock"]
    if resolved.parent.is_dir() and is_writable_dir(resolved.parent) and is_writable_dir(resolved):
        paths.append(resolved.parent / f".{resolved.name}.graphdl.lock")
    return paths


@contextlib.contextmanager
def dataset_lock(key: str | os.PathLike) -> Iterator[None]:
    """Serialise preparing and processing one dataset across processes.

    Two processes (pytest-xdist workers, parallel benchmark runs) loading the
    same dataset would otherwise process it into the same folder at once and
    one could read the other's half-written file. ``key`` is the dataset folder
    (the source the user named); the locks are ``flock`` s on the files of
    :func:`lock_paths`, released when the block ends or the process dies.
    Without ``fcntl`` (Windows), or where a lock file cannot be created or
    locked (some network file systems), that lock is skipped.
    """
    with contextlib.ExitStack() as stack:
        for path in lock_paths(key):
            with contextlib.suppress(OSError):
                path.parent.mkdir(parents=True, exist_ok=True)
            stack.enter_context(_exclusive(path))
        yield


def remove_processed(path: Path) -> None:
    """Remove the processed output at ``path``: a folder, or a file / broken link in its place.

    A symbolic link to a folder is kept and the folder emptied.
    """
    path = Path(path)
    if path.is_symlink() and path.is_dir():
        for child in path.iterdir():
            remove_processed(child)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.is_symlink() or path.exists():
        with contextlib.suppress(OSError):
            path.unlink()


@contextlib.contextmanager
def cleanup_on_failure(folder: DatasetFolder, processed_dirs: Iterable[str] = ("processed",)) -> Iterator[None]:
    """Undo what a failed load left behind in ``folder.work_dir``.

    On any exception (Ctrl-C included) the ``processed_dirs`` are removed, so no
    half-written processed file is ever loaded later; a dataset folder that did
    not exist before (a failed download) is removed whole, with the empty
    parents it needed, so the next attempt starts clean instead of tripping
    OGB's "dataset has been updated" prompt.
    """
    existed = folder.work_dir.exists()
    top = folder.work_dir  # the outermost folder this load may create
    while not top.parent.exists() and top.parent != top:
        top = top.parent
    try:
        yield
    except BaseException:
        for rel in processed_dirs:
            remove_processed(folder.work_dir / rel)
        if not existed:
            shutil.rmtree(folder.work_dir, ignore_errors=True)
            path = folder.work_dir.parent  # and the empty parents it created
            while top in (path, *path.parents) and path != top.parent:
                try:
                    path.rmdir()
                except OSError:
                    break
                path = path.parent
        raise


def first_corrupt_gzip(folder: DatasetFolder) -> tuple[Path, str] | None:
    """The first expected ``.gz`` file of ``folder`` that does not decompress."""
    for rel in folder.expected:
        path = folder.work_dir / rel
        if rel.endswith(".gz") and path.is_file():
            why = check_gzip(path)
            if why is not None:
                return path, why
    return None


def check_gzip(path: Path) -> str | None:
    """Decompress ``path`` fully; the reason it is broken, or ``None`` if fine."""
    try:
        with gzip.open(path, "rb") as handle:
            while handle.read(1 << 20):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def check_loader_kwargs(dataset: str, loader: type, kwargs: Mapping[str, Any], set_here: Iterable[str]) -> None:
    """Refuse a keyword the official ``loader`` does not take, before any file is touched.

    ``set_here`` are the loader's arguments graphdl fills in itself (``root``, ``name``).
    Without this check a misspelt keyword fails inside the loader and reads as a bad data file.
    """
    from graphdl.registry import keyword_names

    names, complete = keyword_names(loader)
    if not complete:  # the loader passes **kwargs on where its signature does not show: let it judge
        return
    taken = set(set_here)
    accepted = [name for name in names if name not in taken]
    for key in kwargs:
        if key not in accepted:
            raise ConfigError(f"dataset {dataset!r}: {loader.__name__} takes no keyword {key!r}."
                              f"{did_you_mean(key, accepted)} It takes: {', '.join(accepted)} (and download).")


class PreTransformError(GraphDLError, RuntimeError):
    """The user's ``pre_transform`` or ``pre_filter`` raised (or the ``pre_transform`` returned no graph)
    while the raw files were processed."""


#: The record of the pre_transform / pre_filter, kept in each processed folder.
PRE_RECORD = "graphdl-pre.json"
_PRE_KEYS = ("pre_transform", "pre_filter")


class _Guarded:
    """Wraps a user ``pre_transform`` / ``pre_filter`` so that its own failure can be told apart.

    ``repr`` and ``str`` are the wrapped callable's, so PyG's records are unchanged.
    """

    def __init__(self, role: str, func: Callable[..., Any]) -> None:
        self.role, self.func = role, func

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            result = self.func(*args, **kwargs)
        except Exception as exc:
            raise _UserCodeFailed(self.role, self.func, exc) from exc
        if self.role == "pre_transform":
            from torch_geometric.data.data import BaseData

            from graphdl.datasets.fingerprint import describe

            if not isinstance(result, BaseData):
                # a forgotten ``return data`` failed later inside PyG's collate, read as a bad data file
                got = "None" if result is None else f"a {type(result).__name__} ({describe(result)})"
                error = _WrongReturn(f"returned {got}, not a Data graph (a missing 'return data'?)")
                raise _UserCodeFailed(self.role, self.func, error)
        return result

    def __repr__(self) -> str:
        return repr(self.func)

    def __str__(self) -> str:
        return str(self.func)


class _WrongReturn(TypeError):
    """Internal: a user ``pre_transform`` returned something that is not a graph."""


class _UserCodeFailed(Exception):
    """Internal: a :class:`_Guarded` callable raised ``error``."""

    def __init__(self, role: str, func: Callable[..., Any], error: Exception) -> None:
        super().__init__(role)
        self.role, self.func, self.error = role, func, error


def _pre_record(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """What the processed files will have been made with: a fingerprint and readable names."""
    from graphdl.datasets.fingerprint import describe, fingerprint

    chosen = tuple(kwargs.get(key) for key in _PRE_KEYS)
    return {"fingerprint": fingerprint(chosen), **{key: describe(value) for key, value in zip(_PRE_KEYS, chosen)}}


def _drop_unusable_processed(folder: DatasetFolder, processed_dirs: tuple[str, ...], record: dict[str, Any],
                             user_given: bool) -> None:
    """Remove processed output that must not be reused before the loader sees it.

    * a file (or broken link) where the processed folder belongs;
    * a processed folder whose recorded pre_transform / pre_filter fingerprint
      differs from ``record``'s, or either is unknown (``None``);
    * a processed folder without a record when a pre_transform / pre_filter is
      given (made by another tool or an older graphdl). Without one, PyG's own
      check tells a processed folder made with a pre_transform from one made without;
    * a processed folder without a record that also lacks PyG's own records
      (``pre_transform.pt``, ``pre_filter.pt``, written after the processed
      files): its processing was killed midway, after the processed files were
      written with some pre_transform / pre_filter that nothing now records.
    """
    for rel in processed_dirs:
        path = folder.work_dir / rel
        if not path.is_dir():
            if path.is_symlink() or path.exists():
                remove_processed(path)  # a stray file: the loader needs a folder here
            continue
        try:
            stored = json.loads((path / PRE_RECORD).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            stored = None
        if stored is None and not user_given and all((path / f"{key}.pt").is_file() for key in _PRE_KEYS):
            continue
        if (isinstance(stored, dict) and record["fingerprint"] is not None
                and stored.get("fingerprint") == record["fingerprint"]):
            continue
        remove_processed(path)


def _write_pre_record(folder: DatasetFolder, processed_dirs: tuple[str, ...], record: dict[str, Any]) -> None:
    """Store ``record`` in each processed folder (atomically); a read-only folder is skipped."""
    text = json.dumps(record, indent=1)
    for rel in processed_dirs:
        path = folder.work_dir / rel / PRE_RECORD
        if not path.parent.is_dir():
            continue
        with contextlib.suppress(OSError):
            if path.is_file() and path.read_text(encoding="utf-8") == text:
                continue
            _write_atomic(path, text)


def _user_code_error(folder: DatasetFolder, failed: _UserCodeFailed) -> PreTransformError:
    from graphdl.datasets.fingerprint import describe

    error = failed.error
    what = str(error) if isinstance(error, _WrongReturn) else f"raised {type(error).__name__}: {error}"
    return PreTransformError(
        f"dataset {folder.name!r}: the {failed.role} {describe(failed.func)} {what} while processing the raw "
        f"files in {str(folder.work_dir)!r}. "
        f"The error is in that {failed.role}, not in the data files: fix it (it is given one Data graph and "
        f"must return {'True or False' if failed.role == 'pre_filter' else 'a Data graph'}) and load again; "
        f"no processed files were kept."
    )


def run_official_loader(
    folder: DatasetFolder,
    construct: Callable[[dict[str, Any]], T],
    kwargs: Mapping[str, Any],
    *,
    url: str | None,
    fetch: str | None,
    download: bool,
    find_corrupt: Callable[[DatasetFolder], tuple[Path, str] | None],
    processed_dirs: Iterable[str] = ("processed",),
) -> T:
    """Run an official loader (``construct(kwargs)``) with offline checks and clean-up.

    * Files missing and downloads off (or no ``url``): :class:`DataError`
      naming them, the folder they go in and how to ``fetch`` them by hand,
      before any network access.
    * The loader runs inside :func:`~graphdl.datasets.safe_load.trusted_dataset_files`.
    * Processed files are reused only when made with the same ``pre_transform``
      and ``pre_filter``: their fingerprint (:mod:`graphdl.datasets.fingerprint`)
      is recorded in ``processed/graphdl-pre.json`` and compared before the
      loader runs; a different or unknown one processes the raw files again
      (PyG alone compares a ``repr`` that hides function bodies and many
      parameters, and returns the old version).
    * It fails: processed output is removed (:func:`cleanup_on_failure`) and
      the failure is explained: the user's ``pre_transform`` / ``pre_filter``
      raised (:class:`PreTransformError`), still-missing files (the download
      failed), a corrupt raw file (``find_corrupt``), or the loader's own
      error. A failure while only *reading* an existing processed file (a
      truncated cache) is retried once from the raw files.
    """
    from graphdl.datasets.safe_load import trusted_dataset_files

    processed_dirs = tuple(processed_dirs)
    missing = folder.missing()
    if missing and not download:
        raise folder.missing_error(
            missing, fetch=fetch,
            reason=f"downloads are off (download=False or ${OFFLINE_ENV} is set)",
        )
    if missing and not url:
        raise folder.missing_error(missing, fetch=fetch, reason="this dataset has no download URL")
    user = {key: kwargs[key] for key in _PRE_KEYS if kwargs.get(key) is not None}
    guarded = {**kwargs, **{key: _Guarded(key, func) for key, func in user.items()}}
    record = _pre_record(kwargs)
    for attempt in (1, 2):
        _drop_unusable_processed(folder, processed_dirs, record, bool(user))
        had_processed = any((folder.work_dir / rel).is_dir() for rel in processed_dirs)
        try:
            with cleanup_on_failure(folder, processed_dirs):
                try:
                    with trusted_dataset_files(), warnings.catch_warnings():
                        warnings.filterwarnings("error", message=_STALE_PROCESSED, category=UserWarning)
                        dataset = construct(guarded)
                except DataError:
                    raise
                except _UserCodeFailed as failed:
                    raise _user_code_error(folder, failed) from failed.error
                except Exception as exc:  # noqa: BLE001 - explained below
                    if had_processed and attempt == 1 and not folder.missing():
                        # Maybe only the processed file was bad (an interrupted
                        # write): it is removed on the way out; process again.
                        raise _Retry from exc
                    raise _explain(folder, exc, url=url, fetch=fetch, was_missing=bool(missing),
                                   find_corrupt=find_corrupt) from exc
        except _Retry:
            continue
        for key, func in user.items():  # the dataset keeps the user's own callables
            if isinstance(getattr(dataset, key, None), _Guarded):
                setattr(dataset, key, func)
        _write_pre_record(folder, processed_dirs, record)
        return dataset
    raise AssertionError("unreachable")  # pragma: no cover


#: PyG's warning that the processed files were made with another pre_transform / pre_filter
_STALE_PROCESSED = r"The `pre_(transform|filter)` argument differs from the one used in the pre-processed version"


class _Retry(Exception):
    """Internal: drop the processed files and run the loader once more."""


def _explain(
    folder: DatasetFolder,
    exc: Exception,
    *,
    url: str | None,
    fetch: str | None,
    was_missing: bool,
    find_corrupt: Callable[[DatasetFolder], tuple[Path, str] | None],
) -> DataError:
    """Turn a failed official load into a :class:`DataError` that says what to fix."""
    still_missing = folder.missing()
    if still_missing:
        what = "fetching them failed" if was_missing else "the loader failed"
        return folder.missing_error(
            still_missing, fetch=fetch, reason=f"{what} ({type(exc).__name__}: {exc})"
        )
    bad = find_corrupt(folder)
    if bad is not None:
        path, why = bad
        fresh = f" (from {url})" if url else ""
        source = folder.source_path(path)
        if folder.copied and source != path and source.is_file() and not filecmp.cmp(source, path, shallow=False):
            return DataError(
                f"dataset {folder.name!r}: the cache copy {str(path)!r} of {str(source)!r} is damaged ({why}); "
                f"the source file is not. Delete the copy {str(folder.work_dir)!r} and load again: it is "
                f"copied afresh from the source. No processed files were kept."
            )
        return DataError(
            f"dataset {folder.name!r}: file {str(folder.source_path(path))!r} is corrupt or "
            f"truncated ({why}). Replace it with a fresh copy of the official file{fresh} and "
            f"load again; no processed files were kept."
        )
    return DataError(
        f"dataset {folder.name!r}: loading {str(folder.work_dir)!r} failed: "
        f"{type(exc).__name__}: {exc}. Its processed/ folder was removed; check the files in "
        f"{str(folder.source)!r} against the official release and load again."
    )
