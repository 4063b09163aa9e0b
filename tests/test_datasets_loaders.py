"""graphdl.datasets loaders against the official ones: the data and split asked for, and errors that name
the real problem.

Every load runs on the read-only mirror (copied to a tmp cache) or on tmp copies of it.
"""

from __future__ import annotations

import re
import shutil
import stat
from pathlib import Path

import pytest
import torch

import graphdl.datasets as datasets
from graphdl.errors import ConfigError, DataError, UnknownNameError
from test_datasets_cache import _isolated_env, _writable_copy  # noqa: F401 (an autouse fixture: a cache per test)


def _masks(dataset) -> tuple[torch.Tensor, ...]:  # noqa: ANN001
    data = dataset[0]
    return data.train_mask, data.val_mask, data.test_mask


# ------------------------------------------------------------------ Planetoid split
def test_planetoid_split_name_in_any_case_gives_that_split(shared_data: Path) -> None:
    """graphdl accepts ``split="Full"`` (it checks ``split.lower()``), but PyG's Planetoid applies the full
    split only for the exact string ``"full"``: the public masks came back under ``dataset.split == "full"``."""
    full = datasets.load("cora", root=shared_data, split="full")
    upper = datasets.load("cora", root=shared_data, split="Full")
    assert upper.split == "full"
    assert all(torch.equal(a, b) for a, b in zip(_masks(upper), _masks(full)))
    assert len(datasets.split_indices(upper)["train"]) == 2708 - 1500
    public = datasets.load("cora", root=shared_data, split="PUBLIC")
    assert len(datasets.split_indices(public)["train"]) == 140


def test_missing_geom_gcn_files_name_where_the_split_files_come_from(shared_data: Path, tmp_path: Path) -> None:
    """The hint said to fetch the ``cora_split_0.6_0.2_<i>.npz`` files from the Planetoid repository, which
    does not have them; PyG downloads them from the geom-gcn repository."""
    from torch_geometric.datasets import Planetoid

    folder = _writable_copy(shared_data / "planetoid" / "Cora", tmp_path / "planetoid" / "Cora")
    splits = f"{Planetoid.geom_gcn_url}/splits/<file name>"
    with pytest.raises(DataError, match=r"18 file\(s\) missing .*geom-gcn/raw/cora_split_0\.6_0\.2_0\.npz.* "
                                        r"Download each ind\.cora\.\* file from "
                                        r"https://github\.com/kimiyoung/planetoid/raw/master/data/<file name> and each "
                                        r"cora_split_0\.6_0\.2_<i>\.npz file from "
                                        + re.escape(f"{splits} into '{folder / 'geom-gcn' / 'raw'}'")):
        datasets.load("cora", root=tmp_path, split="geom-gcn", download=False)


# ------------------------------------------------------------------ roots
@pytest.mark.parametrize("name,where", [("ogbg-molesol", "ogb/ogbg_molesol"), ("ogbg-molesol", "ogb"),
                                        ("ogbg-molesol", "ogb/ogbg_molesol_pyg"), ("cora", "planetoid/Cora")])
def test_a_file_where_the_dataset_folder_belongs_is_named(tmp_path: Path, name: str, where: str) -> None:
    """The root is a folder, but the dataset (or family) folder in it is a file: it read as "10 file(s) missing
    ... move the folder to <that file>", and with downloads on the dataset was silently fetched into the cache."""
    path = tmp_path / where
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not a folder")
    for download in (False, True):
        with pytest.raises(DataError, match=re.escape(f"dataset {name!r}: '{path}' is a file, not a folder")
                           + r".*Move that file away"):
            datasets.load(name, root=tmp_path, download=download)
    assert path.read_text() == "not a folder"


# ------------------------------------------------------------------ pre_transform
def _forgot_return(data):  # noqa: ANN001, ANN202 - a user's pre_transform without "return data"
    data.x = data.x.float()


@pytest.mark.parametrize("name,folder", [("cora", "planetoid/Cora"), ("ogbg-molesol", "ogb/ogbg_molesol")])
def test_a_pre_transform_that_returns_no_graph_is_named_not_the_data_files(shared_data: Path, tmp_path: Path,
                                                                           name: str, folder: str) -> None:
    """It failed later inside PyG's collate ("'NoneType' object has no attribute ...") and the message said to
    check the data files against the official release."""
    from graphdl.datasets import PreTransformError

    root = tmp_path / "data"
    dataset_dir = _writable_copy(shared_data / folder, root / folder)
    with pytest.raises(PreTransformError, match=rf"^dataset '{name}': the pre_transform "
                                                r"\S*_forgot_return returned None, not a Data "
                                                r"graph \(a missing 'return data'\?\) while processing .*The error "
                                                r"is in that pre_transform, not in the data files"):
        datasets.load(name, root=root, pre_transform=_forgot_return)
    assert not (dataset_dir / "processed").exists()
    assert datasets.load(name, root=root)[0].num_nodes > 0  # a clean retry works


# ------------------------------------------------------------------ cache copies
def _set_writable(root: Path, writable: bool) -> None:
    bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | stat.S_IWUSR if writable else mode & ~bits)


def test_the_cache_copy_of_a_pyg_folder_the_source_no_longer_has_is_not_loaded(shared_data: Path,
                                                                                 tmp_path: Path) -> None:
    """The read-only root had ``ogb/ogbg_molesol_pyg`` (OGB's name for a PyG folder), then only
    ``ogb/ogbg_molesol``: graphdl copied the new folder, but the official loader found the old
    ``ogbg_molesol_pyg`` copy in the cache and returned its 1128 graphs and split."""
    from ogb.graphproppred import PygGraphPropPredDataset

    root = tmp_path / "mirror"
    _writable_copy(shared_data / "ogb" / "ogbg_molesol", root / "ogb" / "ogbg_molesol_pyg")
    _set_writable(root, False)
    try:
        assert len(datasets.load("ogbg-molesol", root=root, download=False)) == 1128
        _set_writable(root, True)
        shutil.rmtree(root / "ogb" / "ogbg_molesol_pyg")  # replaced by other files in the plain folder
        _writable_copy(shared_data / "ogb" / "ogbg_molbace", root / "ogb" / "ogbg_molesol")
        _writable_copy(shared_data / "ogb" / "ogbg_molbace", tmp_path / "official" / "ogbg_molesol")
        _set_writable(root, False)
        dataset = datasets.load("ogbg-molesol", root=root, download=False)
    finally:
        _set_writable(root, True)
    with datasets.trusted_dataset_files():
        official = PygGraphPropPredDataset("ogbg-molesol", root=str(tmp_path / "official"))
        expected = official.get_idx_split()
    assert len(dataset) == len(official) == 1513
    assert torch.equal(dataset._data.x, official._data.x)
    split = datasets.split_indices(dataset)
    assert all(torch.equal(split[part], expected[part]) for part in expected)


def test_split_sizes_outside_the_random_split_are_refused(shared_data: Path, tmp_path: Path) -> None:
    """Planetoid reads num_train_per_class / num_val / num_test for split='random' only: load("cora", num_val=300)
    quietly gave the public 500-node validation set."""
    with pytest.raises(ConfigError, match=r"^num_val set the sizes of split='random'; the 'public' split of 'cora' "
                                          r"has fixed sizes, so they would be ignored"):
        datasets.load("cora", root=shared_data, num_val=300)
    data = datasets.load("cora", root=shared_data, split="random", num_val=300, num_test=400)[0]
    assert int(data.val_mask.sum()) == 300 and int(data.test_mask.sum()) == 400


def test_a_split_number_on_a_dataset_without_geom_gcn_splits_points_to_them(shared_data: Path) -> None:
    """split=0 on the random split said to load with split='0', which is no Planetoid split."""
    cora = datasets.load("cora", root=shared_data)
    with pytest.raises(UnknownNameError, match=r"split 0 is not available for Cora, which was loaded with "
                                               r"split='public'\. Planetoid fixes the split at load time: load the "
                                               r"dataset with split='geom-gcn' \(its 10 splits\), then call "
                                               r"split_indices\(dataset, split=0\)\.$"):
        datasets.split_indices(cora, split=0)
    with pytest.raises(UnknownNameError, match=r"load the dataset with split='full' \(one of public, full, "
                                               r"geom-gcn, random\)"):
        datasets.split_indices(cora, split="Full")
