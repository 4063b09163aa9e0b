"""graphdl.datasets: $GRAPHDL_OFFLINE spellings, interrupted and concurrent cache copies, processing killed midway.

Every load runs the official loaders on copies of the mirror in tmp dirs; processes are real processes.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import signal
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import graphdl.datasets as datasets
from graphdl.datasets.root import PRE_RECORD, download_allowed
from graphdl.errors import ConfigError


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("GRAPHDL_DATA", raising=False)
    monkeypatch.delenv("GRAPHDL_OFFLINE", raising=False)


def _chmod_tree(root: Path, writable: bool) -> None:
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | stat.S_IWUSR if writable else mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _cora_copy(shared_data: Path, root: Path) -> Path:
    shutil.copytree(shared_data / "planetoid" / "Cora" / "raw", root / "planetoid" / "Cora" / "raw")
    _chmod_tree(root, writable=True)
    return root


@pytest.fixture
def read_only_cora(shared_data: Path, tmp_path: Path) -> Iterator[Path]:
    """A read-only root holding Cora's raw files (as the shared mirror)."""
    root = _cora_copy(shared_data, tmp_path / "mirror")
    _chmod_tree(root, writable=False)
    yield root
    _chmod_tree(root, writable=True)


@pytest.fixture(scope="module")
def cora_reference(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """Cora as PyG's own Planetoid loads it from the official raw files."""
    from torch_geometric.datasets import Planetoid

    from graphdl.datasets import trusted_dataset_files

    root = _cora_copy(shared_data, tmp_path_factory.mktemp("reference"))
    with trusted_dataset_files():
        return Planetoid(str(root / "planetoid"), "Cora")[0]


def _assert_same_graph(got, want) -> None:  # noqa: ANN001
    for key in ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(getattr(got, key), getattr(want, key)), key


def _copies(cache: Path) -> Path:
    return cache / "graphdl" / "copies"


def _temporaries(cache: Path) -> list[Path]:
    return sorted(p for p in _copies(cache).rglob("*.tmp")) if _copies(cache).is_dir() else []


# ---------------------------------------------------------------- $GRAPHDL_OFFLINE
@pytest.mark.parametrize(("value", "allowed"), [
    ("", True), ("0", True), ("false", True), ("No", True), ("off", True), (" OFF ", True),
    ("1", False), ("true", False), ("Yes", False), ("on", False), ("ON", False),
])
def test_graphdl_offline_reads_both_spellings_of_on_and_off(monkeypatch: pytest.MonkeyPatch, value: str,
                                                            allowed: bool) -> None:
    """GRAPHDL_OFFLINE=off meant offline: any value but 0/false/no turned downloads off."""
    monkeypatch.setenv("GRAPHDL_OFFLINE", value)
    assert download_allowed() is allowed
    assert download_allowed(True) is True and download_allowed(False) is False  # the argument wins


def test_an_unknown_graphdl_offline_value_is_refused_before_any_file_is_touched(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GRAPHDL_OFFLINE", "maybe")
    message = re.escape("$GRAPHDL_OFFLINE is 'maybe', which is neither on nor off. Set it to one of 1, true, yes, "
                        "on (no downloads) or 0, false, no, off (downloads allowed), case-insensitive, or unset it.")
    with pytest.raises(ConfigError, match=message):
        download_allowed()
    for name in ("cora", "ogbg-molesol"):
        with pytest.raises(ConfigError, match=message):
            datasets.load(name, root=tmp_path / "data")
    assert not (tmp_path / "data").exists() and not (tmp_path / "xdg-cache" / "graphdl" / "copies").exists()


@pytest.mark.parametrize("value", ["false", "no", "0", 2, [True]])
def test_a_download_argument_that_is_not_a_bool_is_refused(value: object) -> None:
    """download="false" is a true string: downloads went on silently."""
    with pytest.raises(ConfigError, match=re.escape(f"download must be True, False or None (None: follow "
                                                    f"$GRAPHDL_OFFLINE), got {type(value).__name__} {value!r}.")):
        download_allowed(value)  # type: ignore[arg-type]


# ------------------------------------------------------- interrupted cache copies
def _fork(target, *args: object) -> multiprocessing.Process:  # noqa: ANN001
    """A real process running ``target(*args)``, forked so that it starts without importing torch again."""
    process = multiprocessing.get_context("fork").Process(target=target, args=args)
    process.start()
    return process


def _load_then_die_mid_copy(root: Path) -> None:
    real, copied = shutil.copyfile, []

    def copy_then_die(src, dst, **kwargs):  # noqa: ANN001, ANN202
        if len(copied) == 3:  # killed midway: no finally runs
            os.kill(os.getpid(), signal.SIGKILL)
        copied.append(src)
        return real(src, dst, **kwargs)

    shutil.copyfile = copy_then_die
    datasets.load("cora", root=root, download=False)


def test_a_copy_killed_midway_is_cleaned_up_by_the_next_load(read_only_cora: Path, tmp_path: Path,
                                                              cora_reference) -> None:  # noqa: ANN001
    """A copier killed with SIGKILL left its .tmp folder (a partial copy of the raw files) in the cache forever."""
    cache = tmp_path / "xdg-cache"
    child = _fork(_load_then_die_mid_copy, read_only_cora)
    child.join(120)
    assert child.exitcode == -signal.SIGKILL
    left = _temporaries(cache)
    assert len(left) == 1 and left[0].is_dir() and len(list(left[0].rglob("ind.cora.*"))) == 3
    assert not list(_copies(cache).rglob("Cora"))  # never renamed into place: nothing half-copied to load
    _assert_same_graph(datasets.load("cora", root=read_only_cora, download=False)[0], cora_reference)
    assert _temporaries(cache) == []


def test_an_interrupted_copy_and_repair_leave_no_temporaries(read_only_cora: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             cora_reference) -> None:  # noqa: ANN001
    cache = tmp_path / "xdg-cache"
    real, calls = shutil.copyfile, []

    def interrupted(src, dst, **kwargs):  # noqa: ANN001, ANN202
        calls.append(src)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(src, dst, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", interrupted)
    with pytest.raises(KeyboardInterrupt):
        datasets.load("cora", root=read_only_cora, download=False)
    assert _temporaries(cache) == [] and not list(_copies(cache).rglob("Cora"))
    monkeypatch.setattr(shutil, "copyfile", real)
    _assert_same_graph(datasets.load("cora", root=read_only_cora, download=False)[0], cora_reference)
    # a repair killed after its temporary file was made: the next load removes the leftover
    raw = next(_copies(cache).rglob("Cora")) / "raw"
    (raw / "ind.cora.x").unlink()
    stale = raw / ".ind.cora.x.k1ll3d_0.tmp"
    stale.write_bytes(b"half a file")
    _assert_same_graph(datasets.load("cora", root=read_only_cora, download=False)[0], cora_reference)
    assert _temporaries(cache) == []


def test_a_live_copy_is_waited_for_not_swept(read_only_cora: Path, tmp_path: Path) -> None:
    """A temporary folder is removed only with the copy lock held, so another copier's live one is never swept."""
    from graphdl.datasets.root import _exclusive

    cache = tmp_path / "xdg-cache"
    datasets.load("cora", root=read_only_cora, download=False)  # makes the copy's folder and lock file
    work_root = next(_copies(cache).rglob("Cora")).parent
    shutil.rmtree(work_root / "Cora")  # the copy must be made again
    live = work_root / ".Cora.l1ve0000.tmp"
    held, release, done = threading.Event(), threading.Event(), threading.Event()

    def other_copier() -> None:
        with _exclusive(work_root / ".Cora.graphdl-copy.lock") as locked:
            assert locked
            live.mkdir()
            held.set()
            release.wait(60)
            assert live.is_dir()  # nobody removed it while the lock was held
            shutil.rmtree(live)

    def loader() -> None:
        datasets.load("cora", root=read_only_cora, download=False)
        done.set()

    copier = threading.Thread(target=other_copier)
    copier.start()
    assert held.wait(60)
    reader = threading.Thread(target=loader)
    reader.start()
    time.sleep(0.5)
    assert not done.is_set() and live.is_dir()  # it waits for the other copy
    release.set()
    copier.join(60)
    reader.join(120)
    assert done.is_set() and (work_root / "Cora" / "raw" / "ind.cora.x").is_file()


def _load_and_report(name: str, root: Path, out: Path) -> None:
    data = datasets.load(name, root=root, download=False)
    graph = data[0]
    out.write_text(repr([t.tolist() for t in (graph.x.sum(0), graph.edge_index, graph.y)]))


def test_processes_copying_and_processing_one_dataset_at_once_all_load_it_whole(read_only_cora: Path,
                                                                                tmp_path: Path,
                                                                                cora_reference) -> None:  # noqa: ANN001
    """Processes with one cache (xdist workers, parallel benchmark runs) copy and process one read-only dataset at
    once: each waits for the other and none sees a half-copied raw folder or a half-written processed file."""
    cache = tmp_path / "xdg-cache"
    outs = [tmp_path / f"out{i}" for i in range(3)]
    children = [_fork(_load_and_report, "cora", read_only_cora, out) for out in outs]
    for child in children:
        child.join(180)
    assert [child.exitcode for child in children] == [0, 0, 0]
    want = repr([t.tolist() for t in (cora_reference.x.sum(0), cora_reference.edge_index, cora_reference.y)])
    assert [out.read_text() for out in outs] == [want] * 3
    assert _temporaries(cache) == [] and len(list(_copies(cache).rglob("processed"))) == 1


# -------------------------------------------------------- processing killed midway
def _add_one(data):  # noqa: ANN001, ANN202 - a user's pre_transform
    data.x = data.x + 1
    return data


def test_processing_killed_after_the_processed_file_is_not_trusted(shared_data: Path, tmp_path: Path,
                                                                   cora_reference) -> None:  # noqa: ANN001
    """PyG writes processed/data.pt, then pre_transform.pt and pre_filter.pt, then graphdl its record: a process
    killed after the first left data made with a pre_transform that nothing recorded, and the next load without
    one returned it (x + 1) as the raw dataset."""
    root = _cora_copy(shared_data, tmp_path / "data")
    assert torch.equal(datasets.load("cora", root=root, pre_transform=_add_one)[0].x, cora_reference.x + 1)
    processed = root / "planetoid" / "Cora" / "processed"
    for name in (PRE_RECORD, "pre_transform.pt", "pre_filter.pt"):  # what a kill after data.pt leaves
        (processed / name).unlink()
    _assert_same_graph(datasets.load("cora", root=root)[0], cora_reference)


def test_a_lock_the_file_system_refuses_is_skipped_not_a_traceback(tmp_path, monkeypatch):
    """flock fails with ENOLCK on some network file systems: dataset_lock raised that OSError from deep inside
    every load; it skips that lock, as it does one whose file cannot be created."""
    import errno
    import fcntl

    from graphdl.datasets.root import dataset_lock

    def refuse(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", refuse)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ran = []
    with dataset_lock(tmp_path / "data" / "ogb" / "ogbg_molesol"):
        ran.append(True)
    assert ran == [True]
