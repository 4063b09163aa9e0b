"""graphdl.datasets: a stale cache copy replaced while another reader reads its split files (the replacement is
interleaved deterministically)."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import graphdl.datasets as datasets


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-a"))
    monkeypatch.delenv("GRAPHDL_DATA", raising=False)
    monkeypatch.delenv("GRAPHDL_OFFLINE", raising=False)


@pytest.fixture
def read_only_root(shared_data: Path, tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "mirror"
    shutil.copytree(shared_data / "ogb" / "ogbg_molesol", root / "ogb" / "ogbg_molesol")
    paths = [root, *root.rglob("*")]
    for path in paths:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    yield root
    for path in paths:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_a_stale_copy_is_replaced_without_a_moment_when_its_split_is_missing(read_only_root: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The stale copy was deleted before the new one was renamed into place: split_indices, which reads the copy's
    split files without the lock, failed with 'split 'scaffold' does not exist ... (none)' in that moment."""
    import graphdl.datasets.root as root_module

    dataset = datasets.load("ogbg-molesol", root=read_only_root, download=False)
    copy = Path(dataset.root)
    want = datasets.split_indices(dataset)
    release = read_only_root / "ogb" / "ogbg_molesol" / "RELEASE_v1.txt"
    before = release.stat()
    os.utime(release, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))  # the source changed
    real, seen = shutil.rmtree, []

    def rmtree_then_read(path, *args, **kwargs):  # noqa: ANN001, ANN202 - another reader at this moment
        had_copy = (Path(path) / "split").is_dir()
        real(path, *args, **kwargs)
        if Path(path).parent == copy.parent:
            try:
                got = datasets.split_indices(dataset)
            except Exception as exc:  # noqa: BLE001 - recorded and asserted below
                got = exc
            seen.append((had_copy, got))

    monkeypatch.setattr(root_module.shutil, "rmtree", rmtree_then_read)
    datasets.DATASETS.entry("ogbg-molesol").obj.folder(read_only_root)  # copies the source afresh
    monkeypatch.setattr(root_module.shutil, "rmtree", real)
    assert any(had_copy for had_copy, _ in seen)  # the stale copy was removed while the reader read
    for _, got in seen:
        assert isinstance(got, dict), got
        assert all(torch.equal(got[key], want[key]) for key in want)
    assert root_module._read_manifest(copy)["files"]["RELEASE_v1.txt"][1] == before.st_mtime_ns + 10**9
    assert not [p for p in copy.parent.iterdir() if p.name.endswith(".tmp")]
