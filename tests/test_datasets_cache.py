"""graphdl.datasets: when processed files and cache copies may be reused, the dataset lock, and
errors raised by the user's own pre_transform.

Every load runs the official loaders on a copy of the mirror in tmp dirs.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import graphdl.datasets as datasets
from graphdl.datasets.fingerprint import fingerprint
from graphdl.datasets.root import PRE_RECORD, PreTransformError, dataset_lock, lock_paths
from graphdl.errors import DataError


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    monkeypatch.delenv("GRAPHDL_DATA", raising=False)
    monkeypatch.delenv("GRAPHDL_OFFLINE", raising=False)


def _writable_copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("processed"))
    for path in [dst, *dst.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return dst


@pytest.fixture
def read_only_root(shared_data: Path, tmp_path: Path) -> Iterator[Path]:
    """A read-only root holding ogbg-molesol (as the CI mirror: read-only even for root)."""
    root = tmp_path / "mirror"
    _writable_copy(shared_data / "ogb" / "ogbg_molesol", root / "ogb" / "ogbg_molesol")
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    yield root
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _add_one(data):  # noqa: ANN001, ANN202 - a user's pre_transform
    data.x = data.x + 1
    return data


def _add_two(data):  # noqa: ANN001, ANN202
    data.x = data.x + 2
    return data


def _add(data, k):  # noqa: ANN001, ANN202
    data.x = data.x + k
    return data


# ------------------------------------------------------------ pre_transform changes
def test_fingerprint_tells_apart_what_repr_does_not() -> None:
    from torch_geometric.transforms import Compose, Constant, RandomNodeSplit

    def scale(k: float):  # noqa: ANN202
        return lambda data: data * k

    assert fingerprint(_add_one) != fingerprint(_add_two)
    assert fingerprint(scale(2)) != fingerprint(scale(3)) and fingerprint(scale(2)) == fingerprint(scale(2))
    assert fingerprint(functools.partial(_add, k=1)) != fingerprint(functools.partial(_add, k=2))
    assert fingerprint(RandomNodeSplit(num_val=100)) != fingerprint(RandomNodeSplit(num_val=300))
    assert fingerprint(RandomNodeSplit(num_val=100)) == fingerprint(RandomNodeSplit(num_val=100))
    assert fingerprint(Compose([Constant(1.0)])) != fingerprint(Compose([Constant(2.0)]))
    assert fingerprint((None, None)) == fingerprint((None, None))

    class Opaque:  # a transform holding something whose content cannot be seen
        def __init__(self) -> None:
            self.lock = threading.Lock()

    assert fingerprint(Opaque()) is None


def test_a_different_pre_transform_processes_again(shared_data: Path, tmp_path: Path) -> None:
    """PyG compared ``<function>`` with ``<function>`` and returned the data made with ``_add_one``."""
    from torch_geometric.transforms import RandomNodeSplit

    folder = _writable_copy(shared_data / "planetoid" / "Cora", tmp_path / "planetoid" / "Cora")
    one = datasets.load("cora", root=tmp_path, pre_transform=_add_one)
    assert one.pre_transform is _add_one  # the dataset keeps the user's own callable
    assert one._data.x.max().item() == 2.0
    assert datasets.load("cora", root=tmp_path, pre_transform=_add_two)._data.x.max().item() == 3.0
    processed = Path(one.processed_paths[0])
    stamp = processed.stat().st_mtime_ns
    again = datasets.load("cora", root=tmp_path, pre_transform=_add_two)  # the same one: reused
    assert again._data.x.max().item() == 3.0 and processed.stat().st_mtime_ns == stamp
    # RandomNodeSplit's repr omits num_val: both are "RandomNodeSplit(split=train_rest)" to PyG
    for num_val in (100, 300):
        split = datasets.load("cora", root=tmp_path, pre_transform=RandomNodeSplit(num_val=num_val))
        assert int(split[0].val_mask.sum()) == num_val
    assert datasets.load("cora", root=tmp_path)._data.x.max().item() == 1.0
    assert '"pre_transform": "None"' in (folder / "processed" / PRE_RECORD).read_text()


def test_a_pre_transform_that_cannot_be_fingerprinted_is_never_reused(shared_data: Path, tmp_path: Path) -> None:
    class AddLockedOne:
        def __init__(self) -> None:
            self.lock = threading.Lock()

        def __call__(self, data):  # noqa: ANN001, ANN204
            with self.lock:
                return _add_one(data)

    _writable_copy(shared_data / "planetoid" / "Cora", tmp_path / "planetoid" / "Cora")
    transform = AddLockedOne()
    processed = Path(datasets.load("cora", root=tmp_path, pre_transform=transform).processed_paths[0])
    stamp = processed.stat().st_mtime_ns
    time.sleep(0.01)
    assert datasets.load("cora", root=tmp_path, pre_transform=transform)._data.x.max().item() == 2.0
    assert processed.stat().st_mtime_ns != stamp  # processed again: it cannot be told whether it changed


def test_processed_files_without_a_record_are_not_trusted_with_a_pre_transform(shared_data: Path,
                                                                                tmp_path: Path) -> None:
    """Processed by PyG itself (or an older graphdl) with ``_add_one``: no record says with which function."""
    from torch_geometric.datasets import Planetoid

    _writable_copy(shared_data / "planetoid" / "Cora", tmp_path / "planetoid" / "Cora")
    with datasets.trusted_dataset_files():
        Planetoid(str(tmp_path / "planetoid"), "Cora", pre_transform=_add_one)
    assert datasets.load("cora", root=tmp_path, pre_transform=_add_two)._data.x.max().item() == 3.0


# ------------------------------------------------------------ the user's own errors
@pytest.mark.parametrize("name,folder", [("cora", "planetoid/Cora"), ("ogbg-molesol", "ogb/ogbg_molesol")])
def test_an_error_in_the_pre_transform_names_it_not_the_data_files(shared_data: Path, tmp_path: Path, name: str,
                                                                   folder: str) -> None:
    def broken(data):  # noqa: ANN001, ANN202
        return data["no_such_key"]

    work = _writable_copy(shared_data / folder, tmp_path / folder)
    with pytest.raises(PreTransformError, match=rf"^dataset '{name}': the pre_transform "
                                                rf"{re.escape(broken.__module__)}\..*broken raised KeyError: "
                                                rf".*no_such_key.* while processing the raw files in "
                                                rf"'{re.escape(str(work))}'\. The error is in that pre_transform, "
                                                r"not in the data files: fix it .* no processed files were kept\.$"
                       ) as info:
        datasets.load(name, root=tmp_path, pre_transform=broken)
    assert not isinstance(info.value, DataError) and isinstance(info.value.__cause__, KeyError)
    assert not (work / "processed").exists()
    assert len(datasets.load(name, root=tmp_path)) >= 1  # the data files were fine


# ------------------------------------------------------------ a stray file
def test_a_file_where_the_processed_folder_belongs_is_replaced(shared_data: Path, tmp_path: Path) -> None:
    folder = _writable_copy(shared_data / "planetoid" / "Cora", tmp_path / "planetoid" / "Cora")
    (folder / "processed").write_text("not a folder")
    assert datasets.load("cora", root=tmp_path, download=False)[0].num_nodes == 2708
    assert (folder / "processed" / "data.pt").is_file()


# ------------------------------------------------------------ damaged cache copies
def test_a_damaged_cache_copy_of_a_read_only_root_is_repaired(read_only_root: Path) -> None:
    source = read_only_root / "ogb" / "ogbg_molesol"
    first = datasets.load("ogbg-molesol", root=read_only_root)
    copy = Path(first.root)
    assert copy != source
    edge = copy / "raw" / "edge.csv.gz"
    edge.write_bytes(edge.read_bytes()[: edge.stat().st_size // 2])  # truncated in the cache only
    shutil.rmtree(copy / "processed")
    assert len(datasets.load("ogbg-molesol", root=read_only_root)) == 1128
    assert edge.read_bytes() == (source / "raw" / "edge.csv.gz").read_bytes()
    (copy / "split" / "scaffold" / "test.csv.gz").unlink()  # deleted in the cache only
    edge.write_bytes(b"x")  # while processed/ is there: it may have been made from this file
    again = datasets.load("ogbg-molesol", root=read_only_root, download=False)
    assert len(datasets.split_indices(again)["test"]) == len(datasets.split_indices(first)["test"])
    assert torch.equal(again[7].x, first[7].x) and edge.read_bytes() == (source / "raw" / "edge.csv.gz").read_bytes()


def test_a_damaged_copy_that_looks_intact_is_named_not_the_source(read_only_root: Path) -> None:
    source = read_only_root / "ogb" / "ogbg_molesol" / "raw" / "edge.csv.gz"
    copy = Path(datasets.load("ogbg-molesol", root=read_only_root).root)
    edge = copy / "raw" / "edge.csv.gz"
    before = edge.stat()
    data = bytearray(edge.read_bytes())
    data[len(data) // 2:] = bytes(len(data) - len(data) // 2)  # same size, same mtime
    edge.write_bytes(bytes(data))
    os.utime(edge, ns=(before.st_atime_ns, before.st_mtime_ns))
    shutil.rmtree(copy / "processed")
    with pytest.raises(DataError, match=re.escape(f"dataset 'ogbg-molesol': the cache copy '{edge}' of '{source}' "
                                                  f"is damaged (") + r".*\); the source file is not\. Delete the copy "
                                                  + re.escape(f"'{copy}' and load again")):
        datasets.load("ogbg-molesol", root=read_only_root)


# ------------------------------------------------------------ the dataset lock
def test_every_spelling_of_a_writable_folder_shares_one_lock(tmp_path: Path, read_only_root: Path) -> None:
    real = tmp_path / "data" / "planetoid" / "Cora"
    real.mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "data")
    via_link = tmp_path / "link" / "planetoid" / "Cora"
    assert lock_paths(via_link) == lock_paths(real) == lock_paths(tmp_path / "data" / "planetoid" / ".." / "planetoid"
                                                                  / "Cora")
    assert lock_paths(real)[1] == real.parent / ".Cora.graphdl.lock"  # next to the dataset, not in a cache
    ro = lock_paths(read_only_root / "ogb" / "ogbg_molesol")  # read-only: its copy and lock are in the cache
    assert len(ro) == 1 and ro[0].is_relative_to(Path(os.environ["XDG_CACHE_HOME"]))


def test_the_lock_holds_across_processes_with_other_caches_and_spellings(tmp_path: Path) -> None:
    """Two processes with different XDG_CACHE_HOME reaching one folder by two paths used to process it at once."""
    real = tmp_path / "data" / "planetoid" / "Cora"
    real.mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "data")
    trying, acquired = tmp_path / "trying", tmp_path / "acquired"
    script = (f"import pathlib\nfrom graphdl.datasets.root import dataset_lock\n"
              f"pathlib.Path({str(trying)!r}).touch()\n"
              f"with dataset_lock({str(real)!r}):\n    pathlib.Path({str(acquired)!r}).touch()\n")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "other-cache")}
    with dataset_lock(tmp_path / "link" / "planetoid" / "Cora"):
        child = subprocess.Popen([sys.executable, "-c", script], env=env)
        deadline = time.monotonic() + 60
        while not trying.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert trying.exists()
        time.sleep(0.5)
        assert not acquired.exists()  # it waits for this process
    assert child.wait(60) == 0 and acquired.exists()
