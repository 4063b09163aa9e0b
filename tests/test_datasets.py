"""graphdl.datasets: registry, info, evaluators, offline loading from the mirror,
and the scoped torch.load allow-list.

References: ogb's own master tables and split files (read with pandas as the
ogb loaders read them), ogb's official evaluators, and the published
Planetoid/OGB statistics.
"""

from __future__ import annotations

import os
import pickle
import shutil
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import graphdl.datasets as datasets
from graphdl.datasets import DatasetInfo, trusted_dataset_files
from graphdl.errors import ConfigError, UnknownNameError, ValidationError

OGB_LEVELS = {"graph": "graphproppred", "link": "linkproppred", "node": "nodeproppred"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One writable cache for the module, so the mirror is processed once."""
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("GRAPHDL_DATA", raising=False)
    monkeypatch.delenv("GRAPHDL_OFFLINE", raising=False)


def _master(level: str) -> pd.DataFrame:
    """ogb's master table, read exactly as the ogb loaders read it."""
    import ogb

    path = Path(ogb.__file__).parent / OGB_LEVELS[level] / "master.csv"
    return pd.read_csv(path, index_col=0, keep_default_na=False)


def _processed_dirs(root: Path) -> list[Path]:
    return [p for p in root.rglob("processed") if p.is_dir()]


# --------------------------------------------------------------------- registry
def test_every_ogb_master_name_and_planetoid_is_registered() -> None:
    names = set(datasets.list())
    assert {"cora", "citeseer", "pubmed"} <= names
    for level in OGB_LEVELS:
        master = _master(level)
        assert len(master.columns) > 0
        for name in master.columns:
            assert name in names, name
            entry = datasets.entry(name)
            assert entry.meta["level"] == level
            assert entry.meta["metric"] == master[name]["eval metric"]
            assert entry.summary  # shown by `graphdl list datasets`
    assert "ogbg_molbace" in datasets and "OGBG-MolBACE" in datasets  # PyG-style names


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown dataset 'ogbg-molbase'\. Did you mean '(ogbg-molbace|ogbgmolbace)'"):
        datasets.load("ogbg-molbase")
    with pytest.raises(UnknownNameError, match="cora"):
        datasets.info("coraa")


@pytest.mark.parametrize(
    ("name", "level", "metric", "tasks", "higher"),
    [
        ("ogbg-molbace", "graph", "rocauc", 1, True),
        ("ogbg-molesol", "graph", "rmse", 1, False),
        ("ogbg-molpcba", "graph", "ap", 128, True),
        ("ogbl-ddi", "link", "hits@20", 1, True),
        ("ogbn-arxiv", "node", "acc", 1, True),
        ("ogbn-proteins", "node", "rocauc", 112, True),
        ("cora", "node", "acc", 1, True),
    ],
)
def test_info_matches_master_tables(name: str, level: str, metric: str, tasks: int, higher: bool) -> None:
    info = datasets.info(name)
    assert isinstance(info, DatasetInfo)
    assert (info.level, info.metric, info.num_tasks, info.higher_is_better) == (level, metric, tasks, higher)
    if name.startswith("ogb"):
        column = _master(level)[name]
        assert info.metric == column["eval metric"] and info.split == column["split"]
        assert info.evaluator == name and info.url == column["url"]
    else:
        assert (info.num_classes, info.split, info.evaluator) == (7, "public", "accuracy")
    # Reference results come from the benchmark's cited table, and only from there.
    from graphdl.bench.references import REFERENCES

    cited = {f"{model} ({ref.source})": ref.value
             for (dataset, model), refs in REFERENCES.items() if dataset == name for ref in refs}
    assert info.reference == cited
    if name == "cora":
        assert info.reference["gcn (Kipf & Welling, ICLR 2017, Table 2 (GCN, public split))"] == 0.815


# ------------------------------------------------------------------- evaluators
def test_ogb_names_get_the_official_evaluators() -> None:
    from ogb.graphproppred import Evaluator as GraphEvaluator
    from ogb.linkproppred import Evaluator as LinkEvaluator
    from ogb.nodeproppred import Evaluator as NodeEvaluator

    bace = datasets.evaluator("ogbg-molbace")
    assert isinstance(bace, GraphEvaluator) and bace.eval_metric == "rocauc"
    ddi = datasets.evaluator("ogbl-ddi")
    assert isinstance(ddi, LinkEvaluator) and ddi.K == 20
    assert isinstance(datasets.evaluator("ogbn-arxiv"), NodeEvaluator)


def test_planetoid_accuracy_evaluator_agrees_with_ogb_acc() -> None:
    from ogb.nodeproppred import Evaluator

    gen = torch.Generator().manual_seed(0)
    y_true = torch.randint(0, 7, (500, 1), generator=gen)
    scores = torch.randn(500, 7, generator=gen)
    y_pred = scores.argmax(dim=1, keepdim=True)
    reference = Evaluator("ogbn-arxiv").eval({"y_true": y_true, "y_pred": y_pred})["acc"]
    ours = datasets.evaluator("cora")
    assert ours.eval({"y_true": y_true, "y_pred": y_pred})["acc"] == pytest.approx(reference)
    assert ours.eval({"y_true": y_true.view(-1).numpy(), "y_pred": scores})["acc"] == pytest.approx(reference)
    with pytest.raises(ValidationError, match="no 'y_pred'"):
        ours.eval({"y_true": y_true})
    with pytest.raises(ValidationError, match=r"y_pred of shape \(499, 1\) does not match y_true of shape \(500,\)"):
        ours.eval({"y_true": y_true, "y_pred": y_pred[:-1]})


# ------------------------------------------------------- loading from the mirror
def test_cora_loads_offline_from_the_read_only_mirror(shared_data: Path, cache: Path) -> None:
    from torch_geometric.datasets import Planetoid

    dataset = datasets.load("cora", root=shared_data, download=False)
    assert isinstance(dataset, Planetoid)
    data = dataset[0]
    # Published Planetoid statistics of Cora (PyG docs, Kipf & Welling 2017).
    assert (data.num_nodes, data.num_edges, dataset.num_features, dataset.num_classes) == (2708, 10556, 1433, 7)
    split = datasets.split_indices(dataset)
    assert {k: len(v) for k, v in split.items()} == {"train": 140, "valid": 500, "test": 1000}
    assert torch.equal(split["train"], data.train_mask.nonzero().view(-1))
    assert torch.equal(split["test"], data.test_mask.nonzero().view(-1))
    # Processed in the writable cache, never in the mirror.
    assert Path(dataset.raw_dir).is_relative_to(cache)
    assert not _processed_dirs(shared_data / "planetoid")
    processed = Path(dataset.processed_paths[0])
    stamp = processed.stat().st_mtime_ns
    again = datasets.load("cora", root=shared_data, download=False)  # from the cache
    assert processed.stat().st_mtime_ns == stamp
    assert torch.equal(again[0].edge_index, data.edge_index)


def test_planetoid_split_is_chosen_at_load_time(shared_data: Path) -> None:
    full = datasets.load("cora", root=shared_data, split="full")
    split = datasets.split_indices(full)
    assert {k: len(v) for k, v in split.items()} == {"train": 2708 - 1500, "valid": 500, "test": 1000}
    with pytest.raises(UnknownNameError, match=r"loaded with split='full'.*load the dataset with split='public'"):
        datasets.split_indices(full, "public")
    with pytest.raises(UnknownNameError, match=r"unknown Planetoid split 'publc'.*Did you mean 'public'"):
        datasets.load("cora", root=shared_data, split="publc")


def test_molbace_loads_from_graphdl_data(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ogb.graphproppred import PygGraphPropPredDataset

    monkeypatch.setenv("GRAPHDL_DATA", str(shared_data))
    dataset = datasets.load("ogbg-molbace", download=False)
    assert isinstance(dataset, PygGraphPropPredDataset)
    assert len(dataset) == 1513 and dataset.num_tasks == 1
    graph = dataset[0]
    assert graph.x.dtype == torch.long and graph.x.size(1) == 9 and graph.y.shape == (1, 1)
    split = datasets.split_indices(dataset)
    folder = shared_data / "ogb" / "ogbg_molbace" / "split" / "scaffold"
    for part in ("train", "valid", "test"):
        expected = pd.read_csv(folder / f"{part}.csv.gz", compression="gzip", header=None).values.T[0]
        assert torch.equal(split[part], torch.as_tensor(expected, dtype=torch.long))
    assert sum(len(v) for v in split.values()) == 1513
    assert not _processed_dirs(shared_data / "ogb")


def test_root_may_be_the_family_folder_as_in_pyg_and_ogb(shared_data: Path) -> None:
    bace = datasets.load("ogbg-molbace", root=shared_data / "ogb", download=False)
    cora = datasets.load("cora", root=shared_data / "planetoid", download=False)
    assert (len(bace), cora[0].num_nodes) == (1513, 2708)
    assert not _processed_dirs(shared_data)


def test_unknown_split_names_the_available_ones(shared_data: Path) -> None:
    dataset = datasets.load("ogbg-molbace", root=shared_data)
    with pytest.raises(UnknownNameError, match=r"split 'scafold' does not exist for ogbg-molbace\. Did you mean 'scaffold'\?"):
        datasets.split_indices(dataset, "scafold")
    with pytest.raises(UnknownNameError, match=r"Available splits .*ogbg_molbace/split'\): scaffold\. Pass split=None"):
        datasets.split_indices(dataset, "random")


def test_a_misspelt_loader_keyword_is_refused_before_any_file_is_touched(shared_data: Path, cache: Path) -> None:
    datasets.load("cora", root=shared_data)
    datasets.load("ogbg-molbace", root=shared_data)
    processed = sorted(_processed_dirs(cache))
    assert processed
    with pytest.raises(ConfigError, match=r"^dataset 'cora': Planetoid takes no keyword 'splt'\. Did you mean "
                                          r"'split'\? It takes: split, num_train_per_class, .*transform.* "
                                          r"\(and download\)\.$"):
        datasets.load("cora", root=shared_data, splt="full")
    with pytest.raises(ConfigError, match=r"^dataset 'ogbg-molbace': PygGraphPropPredDataset takes no keyword "
                                          r"'transfrom'\. Did you mean 'transform'"):
        datasets.load("ogbg-molbace", root=shared_data, transfrom=None)
    # it used to fail inside the loader, read as a bad file, and delete the processed data
    assert sorted(_processed_dirs(cache)) == processed and all(any(p.iterdir()) for p in processed)


def test_ogbl_ddi_loads_with_its_numpy_split_files(shared_data: Path) -> None:
    from ogb.linkproppred import PygLinkPropPredDataset

    dataset = datasets.load("ogbl-ddi", root=shared_data, download=False)
    assert isinstance(dataset, PygLinkPropPredDataset)
    assert dataset[0].num_nodes == 4267
    split = datasets.split_indices(dataset)  # valid.pt/test.pt pickle numpy arrays
    assert split["train"]["edge"].shape == (1067911, 2)
    assert split["valid"]["edge"].shape[1] == 2 and split["valid"]["edge_neg"].dtype == torch.long
    # ogb adds the inverse of every training edge to the graph.
    assert dataset[0].edge_index.size(1) == 2 * 1067911


# -------------------------------------------------------------- roots and cache
def _writable_copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    for path in [dst, *dst.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return dst


def test_writable_root_is_processed_in_place(shared_data: Path, tmp_path: Path, cache: Path) -> None:
    _writable_copy(shared_data / "ogb" / "ogbg_molesol", tmp_path / "ogb" / "ogbg_molesol")
    dataset = datasets.load("ogbg-molesol", root=tmp_path, download=False)
    assert len(dataset) == 1128 and datasets.info("ogbg-molesol").metric == "rmse"
    assert (tmp_path / "ogb" / "ogbg_molesol" / "processed" / "geometric_data_processed.pt").is_file()


def test_read_only_root_is_copied_and_the_copy_follows_the_source(tmp_path: Path, shared_data: Path,
                                                                  cache: Path) -> None:
    root = tmp_path / "ro"
    _writable_copy(shared_data / "planetoid", root / "planetoid")
    raw = root / "planetoid" / "Cora" / "raw"
    extra = root / "planetoid" / "Cora" / "processed"  # a stale processed/ is never copied
    extra.mkdir()
    (extra / "data.pt").write_bytes(b"not a torch file")
    for path in [root, *root.rglob("*")]:  # read-only, as the CI mirror (even for root)
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        dataset = datasets.load("cora", root=root, download=False)
        assert Path(dataset.raw_dir).is_relative_to(cache)
        copy = Path(dataset.raw_dir).parent
        assert sorted(p.name for p in copy.iterdir()) == [".graphdl-copy.json", "processed", "raw"]
        assert (extra / "data.pt").read_bytes() == b"not a torch file"
        labels = dataset[0].y.clone()
        # The source changes (a re-downloaded file): the copy is refreshed.
        raw.chmod(raw.stat().st_mode | stat.S_IWUSR)
        target = raw / "ind.cora.test.index"
        target.chmod(target.stat().st_mode | stat.S_IWUSR)
        os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))
        stamp = (Path(dataset.processed_paths[0])).stat().st_mtime_ns
        again = datasets.load("cora", root=root, download=False)
        assert Path(again.processed_paths[0]).stat().st_mtime_ns != stamp  # re-processed
        assert torch.equal(again[0].y, labels)
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_truncated_processed_file_is_rebuilt(shared_data: Path, tmp_path: Path) -> None:
    _writable_copy(shared_data / "ogb" / "ogbg_molbace", tmp_path / "ogb" / "ogbg_molbace")
    first = datasets.load("ogbg-molbace", root=tmp_path)
    processed = Path(first.processed_paths[0])
    size = processed.stat().st_size
    processed.write_bytes(processed.read_bytes()[: size // 3])  # an interrupted write
    again = datasets.load("ogbg-molbace", root=tmp_path)
    assert processed.stat().st_size == size
    assert torch.equal(again[5].x, first[5].x)


# ----------------------------------------------------- scoped torch.load allow-list
def test_allow_list_is_needed_scoped_and_still_safe(shared_data: Path, tmp_path: Path) -> None:
    dataset = datasets.load("ogbg-molbace", root=shared_data)
    processed = dataset.processed_paths[0]
    split_file = shared_data / "ogb" / "ogbl_ddi" / "split" / "target" / "valid.pt"
    before = set(torch.serialization.get_safe_globals())

    # Without it, torch's weights-only default refuses ogb's own files ...
    with pytest.raises(pickle.UnpicklingError, match=r"torch_geometric\.data"):
        torch.load(processed)
    with pytest.raises(pickle.UnpicklingError, match=r"numpy"):
        torch.load(split_file)
    # ... with it they load, still weights-only ...
    with trusted_dataset_files():
        assert set(torch.serialization.get_safe_globals()) > before
        data, slices = torch.load(processed)
        valid = torch.load(split_file)
    assert data.x.size(0) == int(slices["x"][-1])
    assert isinstance(valid["edge"], np.ndarray) and valid["edge"].shape[1] == 2
    # ... and only inside the block: nothing leaks into torch's global allow-list.
    assert set(torch.serialization.get_safe_globals()) == before
    with pytest.raises(pickle.UnpicklingError):
        torch.load(processed)

    class Exploit:  # a pickle that would call a function when loaded
        def __reduce__(self):  # noqa: D105
            return (os.getcwd, ())

    evil = tmp_path / "evil.pt"
    torch.save({"x": Exploit()}, evil)
    with trusted_dataset_files(), pytest.raises(pickle.UnpicklingError, match="getcwd"):
        torch.load(evil)


def test_dataset_lock_serialises_loads_of_one_dataset(cache: Path) -> None:
    import threading
    import time

    from graphdl.datasets.root import dataset_lock

    events: list[str] = []
    inside = threading.Event()

    def first() -> None:
        with dataset_lock("/data/ogb/ogbl_ddi"):
            inside.set()
            time.sleep(0.2)
            events.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    inside.wait(5)
    with dataset_lock("/data/ogb/ogbg_molbace"):  # another dataset: not blocked
        events.append("other dataset")
    with dataset_lock("/data/ogb/ogbl_ddi"):  # the same one waits for the first
        events.append("second")
    thread.join()
    assert events == ["other dataset", "first done", "second"]


def test_plugin_datasets_get_root_info_and_evaluator(tmp_path: Path) -> None:
    from torch_geometric.data import Data

    seen: dict[str, str] = {}

    def toy(root: str, scale: int = 1) -> list[Data]:
        """A toy dataset."""
        seen["root"] = root
        return [Data(x=torch.ones(3, 2) * scale, train_mask=torch.tensor([True, False, False]),
                     val_mask=torch.tensor([False, True, False]), test_mask=torch.tensor([False, False, True]))]

    datasets.register("toy-plugin", toy, level="node", metric="acc")
    try:
        loaded = datasets.load("toy_plugin", root=tmp_path, scale=2)
        assert seen["root"] == str(tmp_path) and loaded[0].x.max() == 2
        assert {k: v.tolist() for k, v in datasets.split_indices(loaded).items()} == {
            "train": [0], "valid": [1], "test": [2]}
        info = datasets.info("toy-plugin")
        assert (info.level, info.metric, info.higher_is_better, info.summary) == ("node", "acc", True, "A toy dataset.")
        assert datasets.evaluator("toy-plugin").eval({"y_true": [1, 2], "y_pred": [1, 0]}) == {"acc": 0.5}
        assert "toy-plugin" in datasets.list("toy*")
        with pytest.raises(ConfigError, match=r"^dataset 'toy-plugin' got an unexpected keyword argument 'scal'\. "
                                              r"Did you mean 'scale'\? It accepts: root, scale\.$"):
            datasets.load("toy_plugin", root=tmp_path, scal=2)
    finally:
        datasets.unregister("toy-plugin")
    datasets.register("no-meta", toy)
    try:
        with pytest.raises(ConfigError, match=r"registered without level and metric meta"):
            datasets.info("no-meta")
    finally:
        datasets.unregister("no-meta")
