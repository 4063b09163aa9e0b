"""The real OGB node-property loader on a tiny dataset written in OGB's raw format.

No ogbn dataset is available offline, so the test writes one (raw/*.csv.gz,
split/<name>/*.csv.gz, RELEASE_v1.txt) and loads it through
``ogb.nodeproppred.PygNodePropPredDataset(meta_dict=...)``, both directly
(the reference) and through graphdl.datasets.
"""

from __future__ import annotations

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
from ogb_raw_files import write_csv_gz

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


def _write_tiny(folder: Path) -> dict[str, np.ndarray]:
    """A 12-node graph in OGB's raw csv format; returns what was written."""
    rng = np.random.default_rng(0)
    edges = np.array([[i, (i + 1) % NUM_NODES] for i in range(NUM_NODES)] + [[0, 6], [3, 9]])
    feats = rng.standard_normal((NUM_NODES, NUM_FEATURES)).astype(np.float32)
    labels = rng.integers(0, NUM_CLASSES, NUM_NODES)
    order = rng.permutation(NUM_NODES)
    split = {"train": np.sort(order[:6]), "valid": np.sort(order[6:9]), "test": np.sort(order[9:])}
    write_csv_gz(folder / "raw" / "edge.csv.gz", edges, "%d")
    write_csv_gz(folder / "raw" / "node-feat.csv.gz", feats, "%.6f")
    write_csv_gz(folder / "raw" / "node-label.csv.gz", labels, "%d")
    write_csv_gz(folder / "raw" / "num-node-list.csv.gz", np.array([NUM_NODES]), "%d")
    write_csv_gz(folder / "raw" / "num-edge-list.csv.gz", np.array([len(edges)]), "%d")
    for part, idx in split.items():
        write_csv_gz(folder / "split" / "tiny" / f"{part}.csv.gz", idx, "%d")
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


# ---------------------------------------------------------------------------- the benchmark runner on ogbn
@pytest.mark.parametrize("kind", ["gcn", "sage"])
def test_ogbn_config_is_the_official_arxiv_model(kind: str) -> None:
    from graphdl.bench.ogbn_reference import ReferenceNodeGNN
    from graphdl.bench.suites import TRAIN_KEYS, default_config
    from graphdl.models.gnn import GNN

    cfg = default_config("ogbn-arxiv", kind)
    assert {k: cfg[k] for k in ("num_layers", "hidden_channels", "dropout", "norm", "lr", "epochs")} == \
        {"num_layers": 3, "hidden_channels": 256, "dropout": 0.5, "norm": "batch", "lr": 0.01, "epochs": 500}
    model = GNN(in_channels=128, out_channels=40, **{k: v for k, v in cfg.items() if k not in TRAIN_KEYS})
    count = sum(p.numel() for p in model.parameters())
    assert count == sum(p.numel() for p in ReferenceNodeGNN(kind, 128, 40).parameters())
    if kind == "sage":
        assert count == 218_664  # the leaderboard's #Params for GraphSAGE on ogbn-arxiv
    products = default_config("ogbn-products", kind)
    assert (products["norm"], products["epochs"], products["to_undirected"]) == (None, 300, False)


@pytest.mark.parametrize("kind", ["gcn", "sage"])
def test_ogbn_runner_follows_the_official_arxiv_loop(tmp_path: Path, kind: str) -> None:
    """Same initial weights and RNG state: graphdl's runner and the official example's loop (one
    full-batch Adam step on train, then accuracy of every split with the official Evaluator) give the
    same losses and accuracies epoch after epoch. The edges are written one way only, so the
    runner's to_undirected has to do what the example's ``adj_t.to_symmetric()`` does."""
    from ogb.nodeproppred import PygNodePropPredDataset
    from torch_geometric.utils import to_undirected

    from graphdl import bench, seed_everything
    from graphdl.bench.ogbn_reference import ReferenceNodeGNN, reference_node_epoch
    from graphdl.bench.suites import TRAIN_KEYS, default_config
    from graphdl.models.gnn import GNN

    name = "ogbn-tinydir"
    spec = register_ogb_dataset(name, "node", {**META, "add_inverse_edge": False}, override=True)
    try:
        _write_tiny(tmp_path / "ogb" / "ogbn_tinydir")
        epochs, seed = 5, 3
        record = bench.run_config(name, kind, seeds=[seed], epochs=epochs, root=tmp_path, verbose=False,
                                  device="cpu")

        reference_dir = tmp_path / "reference" / "ogbn_tinydir"
        _write_tiny(reference_dir)
        with trusted_dataset_files():
            dataset = PygNodePropPredDataset(name, meta_dict=_official_meta(reference_dir, spec))
        data = dataset[0]
        assert data.edge_index.size(1) == NUM_NODES + 2  # one direction only, as written
        edge_index = to_undirected(data.edge_index, num_nodes=data.num_nodes)
        split, evaluator = dataset.get_idx_split(), datasets.evaluator(name)
        cfg = default_config(name, kind)
        model = ReferenceNodeGNN(kind, NUM_FEATURES, NUM_CLASSES)  # built first: its init draws numbers
        seed_everything(seed)  # what the runner does before building the model
        ours = GNN(in_channels=NUM_FEATURES, out_channels=NUM_CLASSES,
                   **{k: v for k, v in cfg.items() if k not in TRAIN_KEYS})
        # the same tensors under the example's module names (convs.i.*, bns.i.*; PyG's BatchNorm
        # wraps torch's as .module)
        state = {k.replace("norms.", "bns.").replace(".module.", "."): v for k, v in ours.state_dict().items()}
        model.load_state_dict(state)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
        losses, accs = [], {"train": [], "val": [], "test": []}
        for _ in range(epochs):
            loss, epoch_accs = reference_node_epoch(model, data, edge_index, split, optimizer, evaluator)
            losses.append(loss)
            for key, part in (("train", "train"), ("val", "valid"), ("test", "test")):
                accs[key].append(epoch_accs[part])
        assert record["curves"]["train_loss"][0] == pytest.approx(losses, abs=1e-5)
        for key in accs:
            assert record["curves"][key][0] == pytest.approx(accs[key]), key
        best = int(np.argmax(accs["val"]))  # the first epoch reaching the best validation accuracy
        assert record["best_epochs"] == [best] and record["runs"] == [pytest.approx(accs["test"][best])]
        assert record["metric"] == "acc" and record["config"]["to_undirected"] is True
    finally:
        datasets.unregister(name)


def test_ogbn_datasets_without_a_configuration_are_refused_before_loading(tmp_path: Path) -> None:
    from graphdl import bench
    from graphdl.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(
            "no benchmark configuration for ogbn-proteins: it is binary classification over 112 tasks, not one "
            "multiclass label. The runner's ogbn configurations")):
        bench.run_config("ogbn-proteins", root=tmp_path)
    with pytest.raises(ConfigError, match=re.escape(
            "no benchmark configuration for ogbn-mag: it is heterogeneous (several node and edge types).")):
        bench.run_config("ogbn-mag", "sage", root=tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing was downloaded or copied


def test_graphdl_train_runs_an_ogbn_dataset(tmp_path: Path, tiny_spec) -> None:
    import json

    from graphdl.cli import main

    _write_tiny(tmp_path / "ogb" / "ogbn_tiny")
    out = tmp_path / "run.json"
    assert main(["train", "--dataset", NAME, "--layer", "sage", "--epochs", "2", "--seeds", "2",
                 "--root", str(tmp_path), "--json", str(out)]) == 0
    record = json.loads(out.read_text())["records"][0]
    assert (record["dataset"], record["model"], record["metric"], record["seeds"]) == (NAME, "sage", "acc", [0, 1])
    assert record["config"]["norm"] == "batch" and len(record["curves"]["val"][0]) == 2
