"""graphdl.datasets audit: roots under a file, split_indices on a graph or a subset, a truncated
Planetoid test index, one cache copy per read-only root,
accuracy of probabilities, a transform class instead of an instance.

References: the official ogb evaluator and get_idx_split, PyG's Planetoid masks.
"""

from __future__ import annotations

import math
import re
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
import torch_geometric.transforms as T

import graphdl.datasets as datasets
from graphdl.datasets.root import resolve_root
from graphdl.errors import ConfigError, DataError, ValidationError
from test_datasets import _isolated_env, cache  # noqa: F401 (fixtures: one writable cache for the module)


@pytest.fixture(scope="module")
def esol(shared_data: Path, cache: Path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(cache))
        return datasets.load("ogbg-molesol", root=shared_data, download=False)


@pytest.fixture(scope="module")
def cora(shared_data: Path, cache: Path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(cache))
        return datasets.load("cora", root=shared_data, download=False)


# ------------------------------------------------------------------------ roots
@pytest.mark.parametrize("via", ["root", "env"])
def test_a_root_under_a_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, via: str) -> None:
    # before: the datasets looked missing (and with downloads on went silently into the cache)
    a_file = tmp_path / "data.txt"
    a_file.write_text("x")
    root = a_file / "sub" / "data"
    if via == "env":
        monkeypatch.setenv("GRAPHDL_DATA", str(root))
    origin = "the root argument" if via == "root" else "$GRAPHDL_DATA"
    expected = re.escape(f"data root '{root}' (from {origin}) lies under '{a_file}', which is a file")
    with pytest.raises(DataError, match=expected):
        datasets.load("cora", root=str(root) if via == "root" else None, download=False)
    with pytest.raises(DataError, match=expected):
        resolve_root(root if via == "root" else None)


def test_a_new_root_under_a_folder_is_still_accepted(tmp_path: Path) -> None:
    assert resolve_root(tmp_path / "new" / "deeper") == (tmp_path / "new" / "deeper").absolute()


# ------------------------------------------------------------- split_indices
def test_split_indices_of_one_graph(cora, esol) -> None:
    # before: split_indices(dataset[0]) raised a bare KeyError: 0 (Data.__getitem__ looks up an attribute)
    whole = datasets.split_indices(cora)
    one = datasets.split_indices(cora[0])
    assert {k: v.tolist() for k, v in one.items()} == {k: v.tolist() for k, v in whole.items()}
    assert [len(v) for v in one.values()] == [140, 500, 1000]
    with pytest.raises(ValidationError, match=r"^split_indices: got Data, a single graph \(dataset\[i\]\?\) with no "
                                              r"get_idx_split/get_edge_split method and no train_mask/val_mask/"
                                              r"test_mask; pass the dataset graphdl.datasets.load returned\.$"):
        datasets.split_indices(esol[0])


def test_split_indices_of_a_subset_or_a_shuffled_graph_dataset_is_refused(esol) -> None:
    # before: the full-dataset split came back: indices past the subset's end, or other graphs after a shuffle
    official = esol.get_idx_split()
    ours = datasets.split_indices(esol)
    assert all(torch.equal(ours[k], official[k]) for k in official)
    same_order = esol[list(range(len(esol)))]  # a copy in the loaded order picks the same graphs
    assert all(torch.equal(datasets.split_indices(same_order)[k], official[k]) for k in official)
    for part, count in ((esol[:10], 10), (esol.shuffle(), len(esol))):
        with pytest.raises(ValidationError, match=re.escape(
                f"split_indices: ogbg-molesol is a subset or reordering of the loaded dataset ({count} of its "
                f"{len(esol)} graphs") + r".*dataset\[split\['train'\]\]\.$"):
            datasets.split_indices(part)


# ------------------------------------------------------------------ evaluator
def test_accuracy_evaluator_refuses_probabilities_and_agrees_with_ogb_on_ids() -> None:
    from ogb.nodeproppred import Evaluator

    gen = torch.Generator().manual_seed(0)
    y_true = torch.randint(0, 2, (50, 1), generator=gen)
    prob = torch.rand(50, 1, generator=gen)
    ours = datasets.evaluator("cora")
    # before: 0.73 == 1 is False, so probabilities scored a silent accuracy of 0.0
    for y_pred in (prob, prob.view(-1), prob.numpy().astype(np.float64)):
        with pytest.raises(ValidationError, match=r"^evaluator 'cora': y_pred holds values that are not class ids "
                                                  r"\(e\.g\. 0\.\d+\)\. Pass class ids"):
            ours.eval({"y_true": y_true, "y_pred": y_pred})
    with pytest.raises(ValidationError, match=r"y_true holds values that are not class ids \(e\.g\. nan\)"):
        ours.eval({"y_true": torch.full((50,), float("nan")), "y_pred": y_true.view(-1)})
    ids = (prob > 0.5).long()
    official = Evaluator("ogbn-arxiv").eval({"y_true": y_true, "y_pred": ids})["acc"]
    assert ours.eval({"y_true": y_true, "y_pred": ids.float()})["acc"] == pytest.approx(official)
    assert ours.eval({"y_true": y_true.float().view(-1), "y_pred": ids})["acc"] == pytest.approx(official)


def test_accuracy_evaluator_scores_nan_logits_nan() -> None:
    """argmax read a NaN score as the predicted class, so a diverged Cora run (benchmarks score Planetoid through
    this evaluator) reported an accuracy, and a NaN epoch could be picked as the best one."""
    ours = datasets.evaluator("cora")
    y_true = torch.tensor([0, 1, 0, 1])
    logits = torch.full((4, 2), float("nan"))
    assert math.isnan(ours.eval({"y_true": y_true, "y_pred": logits})["acc"])
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [4.0, 0.0]])
    assert ours.eval({"y_true": y_true, "y_pred": logits})["acc"] == 0.75


# ------------------------------------------------------------------ transforms
@pytest.mark.parametrize("key", ["transform", "pre_transform"])
def test_a_transform_class_instead_of_an_instance_is_refused(shared_data: Path, key: str) -> None:
    # before: dataset[0] returned a NormalizeFeatures object made from the graph, not a graph
    with pytest.raises(ConfigError, match=re.escape(
            f"dataset 'cora': {key} is the class NormalizeFeatures, not an instance of it; pass "
            f"{key}=NormalizeFeatures(...)")):
        datasets.load("cora", root=shared_data, download=False, **{key: T.NormalizeFeatures})


# ------------------------------------------------------------ corrupt raw files
def _writable_cora(shared_data: Path, root: Path) -> Path:
    raw = root / "planetoid" / "Cora" / "raw"
    shutil.copytree(shared_data / "planetoid" / "Cora" / "raw", raw)
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return raw / "ind.cora.test.index"


@pytest.mark.parametrize("cut, why", [
    ("half", "it lists 500 test nodes, but ind.cora.tx has 1000 rows"),
    ("mid-number", "it lists 999 test nodes, but ind.cora.tx has 1000 rows"),  # PyG drops a last unended line
    ("damaged-number", "test node id 2 is below 1708, where the test nodes start (the rows of ind.cora.allx)"),
    ("repeated", "it lists a test node id more than once"),
])
def test_a_truncated_planetoid_test_index_is_named(shared_data: Path, tmp_path: Path, cut: str, why: str) -> None:
    # before: it still parsed, and PyG silently kept 500 of the 1000 test nodes and put 800 labels on wrong nodes
    index = _writable_cora(shared_data, tmp_path)
    lines = index.read_text().splitlines(keepends=True)
    assert len(lines) == 1000
    assert lines[-1].startswith("2") and lines[0] != lines[-1]
    index.write_text({"half": "".join(lines[:500]), "mid-number": "".join(lines[:-1]) + lines[-1][:1],
                      "damaged-number": "".join(lines[:-1]) + lines[-1][:1] + "\n",
                      "repeated": "".join(lines[:-1]) + lines[0]}[cut])
    with pytest.raises(DataError, match=re.escape(
            f"dataset 'cora': file '{index}' is corrupt or truncated ({why}). Replace it with a fresh copy of the "
            f"official file (from https://github.com/kimiyoung/planetoid/raw/master/data) and load again; no "
            f"processed files were kept.")):
        datasets.load("cora", root=tmp_path, download=False)
    assert not (index.parent.parent / "processed").exists()
    index.write_text("".join(lines))  # the intact file loads the official public split
    loaded = datasets.load("cora", root=tmp_path, download=False)
    assert [int(loaded[0][m].sum()) for m in ("train_mask", "val_mask", "test_mask")] == [140, 500, 1000]


# ---------------------------------------------------------------- cache copies
def test_every_spelling_of_a_read_only_root_shares_one_processed_copy(shared_data: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # before: the copy remembered the root as spelt, so switching between a symlink and the real path
    # replaced the whole copy and processed the raw files again on every switch
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    real = tmp_path / "mirror"
    shutil.copytree(shared_data / "planetoid" / "Cora" / "raw", real / "planetoid" / "Cora" / "raw")
    (tmp_path / "link").symlink_to(real)
    for path in [real, *real.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        first = datasets.load("cora", root=real, download=False)
        (processed,) = (tmp_path / "cache").rglob("processed/data.pt")
        made = processed.stat()
        for root in (tmp_path / "link", real, tmp_path / "link"):
            again = datasets.load("cora", root=root, download=False)
            assert torch.equal(again[0].x, first[0].x)
            now = processed.stat()
            assert (now.st_ino, now.st_mtime_ns) == (made.st_ino, made.st_mtime_ns), f"processed again for {root}"
    finally:
        for path in [real, *real.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
