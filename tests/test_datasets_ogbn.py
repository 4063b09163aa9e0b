"""The real OGB node-property loader on a tiny dataset written in OGB's raw format.

No ogbn dataset is available offline, so the test writes one (raw/*.csv.gz,
split/<name>/*.csv.gz, RELEASE_v1.txt) and loads it through
``ogb.nodeproppred.PygNodePropPredDataset(meta_dict=...)``, both directly
(the reference) and through graphdl.datasets.
"""

from __future__ import annotations

import gzip
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import graphdl.datasets as datasets
from graphdl.datasets import trusted_dataset_files
from graphdl.datasets.ogb import register_ogb_dataset
from graphdl.errors import DataError, UnknownNameError, ValidationError

NAME = "ogbn-tiny"
NUM_NODES, NUM_FEATURES, NUM_CLASSES = 12, 4, 3
META = {
    "eval metric": "acc",
    "task type": "multiclass classification",
    "split": "tiny",
    "num tasks": 1,
    "num classes": NUM_CLASSES,
    "add_inverse_edge": True,
    "has_node_attr": True,
}


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    monkeypatch.delenv("GRAPHDL_DATA", raising=False)
    monkeypatch.delenv("GRAPHDL_OFFLINE", raising=False)


@pytest.fixture
def tiny_spec():
    spec = register_ogb_dataset(NAME, "node", META, override=True)
    yield spec
    datasets.unregister(NAME)


def _write_csv_gz(path: Path, rows: np.ndarray, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = rows.reshape(len(rows), -1)
    with gzip.open(path, "wt") as handle:
        for row in rows:
            handle.write(",".join(fmt % v for v in row) + "\n")


def _write_tiny(folder: Path) -> dict[str, np.ndarray]:
    """A 12-node graph in OGB's raw csv format; returns what was written."""
    rng = np.random.default_rng(0)
    edges = np.array([[i, (i + 1) % NUM_NODES] for i in range(NUM_NODES)] + [[0, 6], [3, 9]])
    feats = rng.standard_normal((NUM_NODES, NUM_FEATURES)).astype(np.float32)
    labels = rng.integers(0, NUM_CLASSES, NUM_NODES)
    order = rng.permutation(NUM_NODES)
    split = {"train": np.sort(order[:6]), "valid": np.sort(order[6:9]), "test": np.sort(order[9:])}
    _write_csv_gz(folder / "raw" / "edge.csv.gz", edges, "%d")
    _write_csv_gz(folder / "raw" / "node-feat.csv.gz", feats, "%.6f")
    _write_csv_gz(folder / "raw" / "node-label.csv.gz", labels, "%d")
    _write_csv_gz(folder / "raw" / "num-node-list.csv.gz", np.array([NUM_NODES]), "%d")
    _write_csv_gz(folder / "raw" / "num-edge-list.csv.gz", np.array([len(edges)]), "%d")
    for part, idx in split.items():
        _write_csv_gz(folder / "split" / "tiny" / f"{part}.csv.gz", idx, "%d")
    (folder / "RELEASE_v1.txt").write_text("tiny test dataset, v1\n")
    return {"edges": edges, "x": feats, "y": labels, **split}


def _official_meta(folder: Path, spec) -> dict[str, str]:
    return {**spec.meta, "dir_path": str(folder)}


def test_official_loader_needs_the_scoped_allow_list(tmp_path: Path, tiny_spec) -> None:
    from ogb.nodeproppred import PygNodePropPredDataset

    folder = tmp_path / "direct" / "ogbn_tiny"
    _write_tiny(folder)
    # torch >= 2.6: ogb's own torch.load of its processed file is refused ...
    with pytest.raises(pickle.UnpicklingError, match=r"torch_geometric\.data\.data\.Data"):
        PygNodePropPredDataset(NAME, meta_dict=_official_meta(folder, tiny_spec))
    # ... and works inside trusted_dataset_files(), weights_only still on.
    with trusted_dataset_files():
        dataset = PygNodePropPredDataset(NAME, meta_dict=_official_meta(folder, tiny_spec))
    assert dataset[0].num_nodes == NUM_NODES


def test_tiny_ogbn_loads_through_graphdl_like_the_official_loader(tmp_path: Path, tiny_spec) -> None:
    from ogb.nodeproppred import Evaluator, PygNodePropPredDataset

    written = _write_tiny(tmp_path / "ogb" / "ogbn_tiny")
    reference_dir = tmp_path / "reference" / "ogbn_tiny"
    _write_tiny(reference_dir)
    with trusted_dataset_files():
        reference = PygNodePropPredDataset(NAME, meta_dict=_official_meta(reference_dir, tiny_spec))

    dataset = datasets.load(NAME, root=tmp_path, download=False)
    assert isinstance(dataset, PygNodePropPredDataset)
    data, ref = dataset[0], reference[0]
    for key in ("x", "y", "edge_index"):
        assert torch.equal(data[key], ref[key]), key
    # Against the files as written: features, labels, and edges in both directions.
    assert torch.allclose(data.x, torch.from_numpy(written["x"]), atol=1e-6)
    assert torch.equal(data.y.view(-1), torch.from_numpy(written["y"]))
    assert data.y.shape == (NUM_NODES, 1) and data.y.dtype == torch.long
    expected = {tuple(e) for e in written["edges"]} | {tuple(e[::-1]) for e in written["edges"]}
    assert {tuple(e) for e in data.edge_index.t().tolist()} == expected
    assert dataset.num_classes == NUM_CLASSES

    split = datasets.split_indices(dataset)
    for part in ("train", "valid", "test"):
        assert torch.equal(split[part], torch.from_numpy(written[part]))
    with pytest.raises(UnknownNameError, match=r"split 'time' does not exist for ogbn-tiny.*: tiny\."):
        datasets.split_indices(dataset, "time")

    info = datasets.info(NAME)
    assert (info.level, info.metric, info.num_classes, info.split) == ("node", "acc", NUM_CLASSES, "tiny")
    pred = torch.zeros(NUM_NODES, 1, dtype=torch.long)
    ours = datasets.evaluator(NAME).eval({"y_true": data.y, "y_pred": pred})
    official = Evaluator("ogbn-arxiv").eval({"y_true": data.y, "y_pred": pred})  # also acc, 1 task
    assert ours == official


def test_tiny_ogbn_errors(tmp_path: Path, tiny_spec) -> None:
    folder = tmp_path / "ogb" / "ogbn_tiny"
    _write_tiny(folder)
    (folder / "raw" / "node-label.csv.gz").unlink()
    # A registered (non-master) dataset has no URL: no download is tried.
    with pytest.raises(DataError, match=re.escape(f"1 file(s) missing from '{folder}': raw/node-label.csv.gz; "
                                                  f"this dataset has no download URL. Put these files into '{folder}'")):
        datasets.load(NAME, root=tmp_path)
    shutil.rmtree(folder)
    _write_tiny(folder)
    data = (folder / "raw" / "edge.csv.gz").read_bytes()
    (folder / "raw" / "edge.csv.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=re.escape(f"file '{folder / 'raw' / 'edge.csv.gz'}' is corrupt or truncated")):
        datasets.load(NAME, root=tmp_path)
    assert not (folder / "processed").exists()
    with pytest.raises(ValidationError, match="meta lacks 'split'"):
        register_ogb_dataset("ogbn-tiny2", "node", {"eval metric": "acc", "task type": "x"})
    with pytest.raises(ValidationError, match="meta_dict is set by graphdl"):
        datasets.load(NAME, root=tmp_path, meta_dict={})
