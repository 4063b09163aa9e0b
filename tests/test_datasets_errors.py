"""graphdl.datasets error messages: each names what is wrong and the fix.

Broken roots and files are built in tmp dirs from the read-only mirror.
"""

from __future__ import annotations

import re
import shutil
import stat
import urllib.error
from pathlib import Path

import pytest
import torch

import graphdl.datasets as datasets
from graphdl.errors import DataError, UnknownNameError


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    monkeypatch.delenv("GRAPHDL_DATA", raising=False)
    monkeypatch.delenv("GRAPHDL_OFFLINE", raising=False)


def _writable_copy(src: Path, dst: Path, skip: tuple[str, ...] = ()) -> Path:
    """The official files of ``src`` (never a ``processed`` folder a writable mirror may hold)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("processed", *skip))
    for path in [dst, *dst.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return dst


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# ------------------------------------------------------------------------ roots
def test_root_that_is_a_file(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "data.txt"
    not_a_folder.write_text("x")
    with pytest.raises(DataError, match=re.escape(f"data root '{not_a_folder}' (from the root argument) is not a folder")):
        datasets.load("cora", root=not_a_folder)


def test_graphdl_data_that_is_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    not_a_folder = tmp_path / "data.txt"
    not_a_folder.write_text("x")
    monkeypatch.setenv("GRAPHDL_DATA", str(not_a_folder))
    with pytest.raises(DataError, match=r"\(from \$GRAPHDL_DATA\) is not a folder\. Pass root= \(or set GRAPHDL_DATA to\) a folder"):
        datasets.load("ogbg-molbace")


def test_root_of_the_wrong_type() -> None:
    with pytest.raises(DataError, match="root must be a folder path .* got int 3"):
        datasets.load("cora", root=3)


# ------------------------------------------------------------ missing files
def test_missing_planetoid_files_offline(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        datasets.load("citeseer", root=tmp_path, download=False)
    message = str(info.value)
    folder = tmp_path / "planetoid" / "CiteSeer"
    assert f"8 file(s) missing from '{folder}'" in message
    assert "raw/ind.citeseer.x, raw/ind.citeseer.tx" in message and "raw/ind.citeseer.test.index" in message
    assert "downloads are off" in message
    assert f"Download each file from https://github.com/kimiyoung/planetoid/raw/master/data/<file name> into '{folder / 'raw'}'" in message
    assert not folder.exists()  # nothing was created


def test_missing_ogb_files_with_graphdl_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHDL_OFFLINE", "1")
    with pytest.raises(DataError) as info:
        datasets.load("ogbg-molhiv", root=tmp_path)
    message = str(info.value)
    assert f"missing from '{tmp_path / 'ogb' / 'ogbg_molhiv'}'" in message
    for name in ("raw/edge.csv.gz", "raw/graph-label.csv.gz", "split/scaffold/train.csv.gz", "RELEASE_v1.txt"):
        assert name in message
    assert "$GRAPHDL_OFFLINE" in message and "csv_mol_download/hiv.zip" in message
    # the additional files of master.csv are named too: they failed inside the official loader
    with pytest.raises(DataError, match=r"raw/node_year\.csv\.gz"):
        datasets.load("ogbn-arxiv", root=tmp_path)
    with pytest.raises(DataError, match=r"raw/edge_weight\.csv\.gz.*raw/edge_year\.csv\.gz"):
        datasets.load("ogbl-collab", root=tmp_path)


def test_failed_ogb_download_names_files_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ogb.graphproppred.dataset_pyg as official

    def offline(url: str) -> bool:
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(official, "decide_download", offline)  # deterministic, with or without internet
    for _ in range(2):  # the second try must not trip OGB's "has been updated" stdin prompt
        with pytest.raises(DataError, match=r"dataset 'ogbg-molbbbp': \d+ file\(s\) missing from .*ogbg_molbbbp'.*"
                                            r"fetching them failed \(URLError: .*Name or service not known.*\)\. "
                                            r"Download http://snap\.stanford\.edu/.*bbbp\.zip, unzip it and move the folder it "
                                            r"holds \(bbbp/\) to '.*ogbg_molbbbp'"):
            datasets.load("ogbg-molbbbp", root=tmp_path / "new")
        assert not (tmp_path / "new").exists()  # no folder, not even an empty one, is left


def test_failed_planetoid_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch_geometric.io.fs as fs

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(fs, "cp", offline)
    with pytest.raises(DataError, match=r"'pubmed': 8 file\(s\) missing .*raw/ind\.pubmed\.x.*"
                                        r"fetching them failed \(OSError: network is unreachable\)"):
        datasets.load("pubmed", root=tmp_path)


def test_missing_release_note(shared_data: Path, tmp_path: Path) -> None:
    _writable_copy(shared_data / "ogb" / "ogbg_molesol", tmp_path / "ogb" / "ogbg_molesol", skip=("RELEASE_v1.txt",))
    with pytest.raises(DataError, match=r"has the data files but no RELEASE_v1\.txt, so the OGB loader would stop "
                                        r"and ask on stdin.*create an empty RELEASE_v1\.txt in that folder"):
        datasets.load("ogbg-molesol", root=tmp_path)


# ------------------------------------------------------------ corrupt files
def test_truncated_csv_gz_is_named_and_nothing_processed_is_kept(shared_data: Path, tmp_path: Path) -> None:
    folder = _writable_copy(shared_data / "ogb" / "ogbg_molbace", tmp_path / "ogb" / "ogbg_molbace")
    _truncate(folder / "raw" / "node-feat.csv.gz")
    bad = folder / "raw" / "node-feat.csv.gz"
    with pytest.raises(DataError, match=re.escape(f"file '{bad}' is corrupt or truncated (EOFError")
                       + r".*Replace it with a fresh copy of the official file \(from http://snap"):
        datasets.load("ogbg-molbace", root=tmp_path)
    assert not (folder / "processed").exists()


def test_corrupt_file_in_read_only_root_names_the_source(shared_data: Path, tmp_path: Path) -> None:
    root = tmp_path / "mirror"
    folder = _writable_copy(shared_data / "ogb" / "ogbg_molesol", root / "ogb" / "ogbg_molesol")
    _truncate(folder / "raw" / "edge.csv.gz", keep=0.3)
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        with pytest.raises(DataError, match=re.escape(f"file '{folder / 'raw' / 'edge.csv.gz'}' is corrupt")):
            datasets.load("ogbg-molesol", root=root)
        assert not list(root.rglob("processed"))
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_corrupt_planetoid_pickle(shared_data: Path, tmp_path: Path) -> None:
    folder = _writable_copy(shared_data / "planetoid" / "Cora", tmp_path / "planetoid" / "Cora")
    _truncate(folder / "raw" / "ind.cora.graph", keep=0.4)
    with pytest.raises(DataError, match=re.escape(f"file '{folder / 'raw' / 'ind.cora.graph'}' is corrupt or truncated")
                       + r".*no processed files were kept"):
        datasets.load("cora", root=tmp_path, download=False)
    assert not (folder / "processed").exists()


def test_failed_processing_leaves_no_processed_file(shared_data: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _writable_copy(shared_data / "ogb" / "ogbg_molesol", tmp_path / "ogb" / "ogbg_molesol")
    real_save = torch.save

    def disk_full(obj: object, path: object, *args: object, **kwargs: object) -> None:
        with open(path, "wb") as handle:  # a half-written file, then the failure
            handle.write(b"PK\x03\x04 half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(DataError, match=r"loading .*ogbg_molesol' failed: OSError: \[Errno 28\] No space left on "
                                        r"device\. Its processed/ folder was removed"):
        datasets.load("ogbg-molesol", root=tmp_path)
    assert not (folder / "processed").exists()
    monkeypatch.setattr(torch, "save", real_save)
    assert len(datasets.load("ogbg-molesol", root=tmp_path)) == 1128  # a clean retry works


def test_truncated_split_file(shared_data: Path, tmp_path: Path) -> None:
    folder = _writable_copy(shared_data / "ogb" / "ogbg_molesol", tmp_path / "ogb" / "ogbg_molesol")
    dataset = datasets.load("ogbg-molesol", root=tmp_path)
    _truncate(folder / "split" / "scaffold" / "valid.csv.gz", keep=0.5)
    with pytest.raises(DataError, match=re.escape(f"split 'scaffold' of ogbg-molesol: file "
                                                  f"'{folder / 'split' / 'scaffold' / 'valid.csv.gz'}' is corrupt")):
        datasets.split_indices(dataset)
    (folder / "split" / "scaffold" / "test.csv.gz").unlink()
    _writable_copy(shared_data / "ogb" / "ogbg_molesol" / "split" / "scaffold", tmp_path / "fresh")
    shutil.copy(tmp_path / "fresh" / "valid.csv.gz", folder / "split" / "scaffold" / "valid.csv.gz")
    with pytest.raises(DataError, match=r"split 'scaffold' of ogbg-molesol: reading .* \(files: train\.csv\.gz, "
                                        r"valid\.csv\.gz\) failed: FileNotFoundError"):
        datasets.split_indices(dataset)


def test_unknown_split_is_an_unknown_name(shared_data: Path) -> None:
    dataset = datasets.load("ogbg-molesol", root=shared_data)
    with pytest.raises(UnknownNameError, match=r"split 'time' does not exist for ogbg-molesol\..*scaffold"):
        datasets.split_indices(dataset, "time")


@pytest.mark.parametrize("name", ["cora", "ogbg-molesol"])
def test_a_transform_that_is_not_callable_is_named_at_load(shared_data: Path, name: str) -> None:
    """Before, it loaded and failed at the first ``dataset[i]`` with "'str' object is not callable"."""
    from graphdl.errors import ConfigError

    with pytest.raises(ConfigError, match=rf"^dataset '{name}': transform must be a callable that takes and returns "
                                          r"a Data graph \(e.g. torch_geometric.transforms.NormalizeFeatures\(\)\), "
                                          r"got str 'normalize'$"):
        datasets.load(name, root=shared_data, transform="normalize")


@pytest.mark.parametrize("name,folder", [("cora", "planetoid/Cora"), ("ogbg-molesol", "ogb/ogbg_molesol")])
def test_a_new_pre_transform_processes_the_raw_files_again(shared_data: Path, tmp_path: Path, name: str,
                                                           folder: str) -> None:
    """PyG warns and returns the version processed before; graphdl processes again with the one asked for."""
    from torch_geometric.transforms import Constant

    root = tmp_path / "data"
    _writable_copy(shared_data / folder, root / folder)
    width = datasets.load(name, root=root)._data.x.size(1)
    assert datasets.load(name, root=root, pre_transform=Constant(2.0))._data.x[:, -1].eq(2.0).all()
    assert datasets.load(name, root=root, pre_transform=Constant(2.0))._data.x.size(1) == width + 1
    assert datasets.load(name, root=root)._data.x.size(1) == width
