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
source file and is refreshed when the source changes.
"""

from __future__ import annotations

import contextlib
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

from graphdl.errors import ConfigError, DataError, did_you_mean

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
        DataError: the chosen path exists but is not a folder.
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
        raise DataError(
            f"data root {str(path)!r} (from {origin}) is not a folder. Pass root= (or set "
            f"{DATA_ENV} to) a folder that holds the datasets in the official layout "
            f"(<root>/planetoid/Cora/raw, <root>/ogb/ogbg_molbace/raw, ...), or a new "
            f"folder to download them into."
        )
    return path


def download_allowed(download: bool | None = None) -> bool:
    """``download`` if given, else ``False`` when ``$GRAPHDL_OFFLINE`` is set."""
    if download is not None:
        return bool(download)
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("", "0", "false", "no")


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


def _copy_dataset(source: Path, target: Path, parts: Iterable[str]) -> None:
    """Copy ``parts`` of ``source`` into ``target`` unless an up-to-date copy is there."""
    files = _snapshot(source, parts)
    wanted = {"source": str(source), "files": files}
    if target.is_dir() and _read_manifest(target) == wanted:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        for rel in files:
            dst = tmp / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / rel, dst)
        (tmp / MANIFEST).write_text(json.dumps(wanted, indent=1), encoding="utf-8")
        if target.exists():  # a stale copy (the source changed): replace it whole
            shutil.rmtree(target)
        try:
            os.rename(tmp, target)
        except OSError:  # another process put an up-to-date copy there first
            if not (target.is_dir() and _read_manifest(target) == wanted):
                raise
    except OSError as exc:
        raise DataError(
            f"could not copy {str(source)!r} into the writable cache {str(target)!r}: "
            f"{exc}. Make the cache writable (set XDG_CACHE_HOME), or point root= / "
            f"{DATA_ENV} at a writable copy of the data."
        ) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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


@contextlib.contextmanager
def dataset_lock(key: str) -> Iterator[None]:
    """Serialise preparing and processing one dataset across processes.

    Two processes (pytest-xdist workers, parallel benchmark runs) loading the
    same dataset would otherwise process it into the same folder at once and
    one could read the other's half-written file. The lock is an ``flock`` on
    ``<cache>/locks/<hash of key>.lock``, released when the block ends or the
    process dies; without ``fcntl`` (Windows) or a writable cache, no lock.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    lock_dir = cache_dir() / "locks"
    try:
        lock_dir.mkdir(parents=True, exist_ok=True)
        handle = open(lock_dir / f"{hashlib.sha1(key.encode('utf-8')).hexdigest()[:16]}.lock", "a")
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


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
            shutil.rmtree(folder.work_dir / rel, ignore_errors=True)
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


def run_official_loader(
    folder: DatasetFolder,
    construct: Callable[[], T],
    *,
    url: str | None,
    fetch: str | None,
    download: bool,
    find_corrupt: Callable[[DatasetFolder], tuple[Path, str] | None],
    processed_dirs: Iterable[str] = ("processed",),
) -> T:
    """Run an official loader (``construct``) with offline checks and clean-up.

    * Files missing and downloads off (or no ``url``): :class:`DataError`
      naming them, the folder they go in and how to ``fetch`` them by hand,
      before any network access.
    * The loader runs inside :func:`~graphdl.datasets.safe_load.trusted_dataset_files`.
    * It fails: processed output is removed (:func:`cleanup_on_failure`) and
      the failure is explained: still-missing files (the download failed), a
      corrupt raw file (``find_corrupt``), or the loader's own error. A failure
      while only *reading* an existing processed file (a truncated cache) is
      retried once from the raw files.
    * Processed files made with another ``pre_transform`` or ``pre_filter``
      are processed again from the raw files (PyG would warn and return the
      old version).
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
    for attempt in (1, 2):
        had_processed = any((folder.work_dir / rel).is_dir() for rel in processed_dirs)
        try:
            with cleanup_on_failure(folder, processed_dirs):
                try:
                    with trusted_dataset_files(), warnings.catch_warnings():
                        warnings.filterwarnings("error", message=_STALE_PROCESSED, category=UserWarning)
                        return construct()
                except DataError:
                    raise
                except Exception as exc:  # noqa: BLE001 - explained below
                    if had_processed and attempt == 1 and not folder.missing():
                        # Maybe only the processed file was bad (an interrupted
                        # write): it is removed on the way out; process again.
                        raise _Retry from exc
                    raise _explain(folder, exc, url=url, fetch=fetch, was_missing=bool(missing),
                                   find_corrupt=find_corrupt) from exc
        except _Retry:
            continue
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
