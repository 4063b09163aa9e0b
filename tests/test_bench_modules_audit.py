"""Audit of graphdl.bench's suites, merging, command line and OGB reference model: each test failed before its fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from graphdl.bench.__main__ import main as bench_main
from graphdl.bench.merge import merge_records
from graphdl.bench.ogb_reference import ReferenceOGBMol, load_reference_into
from graphdl.bench.suites import default_config, family_of
from graphdl.errors import ConfigError
from graphdl.models.ogb_mol import ogb_mol


def _record(seeds: list[int], **changes: Any) -> dict[str, Any]:
    """A finished record as graphdl bench run writes it (figures made up, one per seed)."""
    runs = [0.5 + 0.1 * s for s in seeds]
    record = {"dataset": "cora", "model": "gcn", "metric": "acc", "higher_is_better": True,
              "mean": float(np.mean(runs)), "std": None, "runs": runs, "seeds": seeds,
              "valid_runs": [0.4] * len(seeds), "best_epochs": [1] * len(seeds), "epochs": 2,
              "epochs_run": [2] * len(seeds), "seconds": 1.0, "seconds_per_epoch": 0.25,
              "train_seconds_per_epoch": 0.1, "reference": None, "reference_std": None, "reference_source": None,
              "config": {"model": "gcn", "epochs": 2}, "status": "ok"}
    record.update(changes)
    return record


# ---------------------------------------------------------------------------- merge
def test_records_without_configuration_pool_only_their_own_epochs() -> None:
    """Two records without ``config`` (hand-written or older files), one of 2 epochs and one of 5, were pooled into
    one row labelled 2 epochs; each keeps its own row now, labelled by its epochs."""
    short, long = _record([0]), _record([1], epochs=5, epochs_run=[5])
    del short["config"], long["config"]
    rows = merge_records([short, long])
    assert [(r["seeds"], r["epochs"]) for r in rows] == [([0], 2), ([1], 5)]
    (pooled,) = merge_records([short, _record([1], config=None)])  # the same epochs still pool
    assert pooled["seeds"] == [0, 1] and pooled["std"] == pytest.approx(np.std([0.5, 0.6], ddof=1))


def test_a_seed_twice_in_one_record_is_refused() -> None:
    """A lone record with seeds [0, 0] passed as two seeds (its std over one run counted twice)."""
    with pytest.raises(ConfigError, match=r"^seed 0 of cora/gcn \(same configuration\) is twice in a.json; "
                                          r"pass each seed once$"):
        merge_records([_record([0, 0])], ["a.json"])


@pytest.mark.parametrize("change,message", [
    ({"runs": ["0.5"]}, "has runs ['0.5'], not a list of numbers (one test score per seed)"),
    ({"seeds": [[0]], "runs": [0.5]}, "has seeds [[0]], not a list of ints"),
])
def test_report_names_per_seed_figures_of_the_wrong_type(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          change: dict, message: str) -> None:
    """A string score or a nested seed ended `bench report` with a ValueError/TypeError traceback."""
    paths = []
    for i, record in enumerate([{**_record([0]), **change}, _record([1])]):
        paths.append(tmp_path / f"r{i}.json")
        paths[-1].write_text(json.dumps({"records": [record]}))
    assert bench_main(["report", *map(str, paths)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"graphdl: error: {paths[0]}: cora/gcn {message}") and err.count("\n") == 1, err


# ---------------------------------------------------------------------------- command line
@pytest.mark.parametrize("value", ['"gat"', "null"])
def test_set_model_cannot_replace_the_model_argument(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     value: str) -> None:
    """`bench run cora gcn --set model='"gat"'` trained GAT (and model=null the default GCN under any MODEL)."""
    assert bench_main(["run", "cora", "gcn", "--set", f"model={value}", "--root", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err == (f"graphdl: error: --set model={value} contradicts the model argument 'gcn'; "
                                       f"name the model once, as the MODEL argument (graphdl bench run cora MODEL), "
                                       f"and drop --set model\n")


# ---------------------------------------------------------------------------- suites
def test_dataset_spellings_the_registry_accepts_get_their_configuration() -> None:
    """`graphdl train --dataset Pub_Med` reads PubMed, but the benchmark refused the spelling ("no benchmark
    configuration"); it must also get PubMed's own GAT changes (K = 8 output heads, lr 0.01, L2 0.001)."""
    assert default_config("Pub_Med", "gat") == default_config("pubmed", "gat")
    assert default_config("Pub_Med", "gat")["last_layer_kwargs"] == {"heads": 8, "concat": False}
    products = default_config("ogbn_products", "sage")
    assert products == default_config("ogbn-products", "sage") and products["epochs"] == 300
    assert [family_of(n) for n in ("ogbl_ddi", "OGBG_MolBBBP", "Cora")] == ["ogbl", "ogbg-mol", "planetoid"]


# ---------------------------------------------------------------------------- reference model
@pytest.mark.parametrize("ours,theirs,message", [
    ({"num_layers": 3}, {"num_layer": 2}, "layers 3 vs 2"),
    ({"virtual_node": True}, {"virtual_node": False}, "virtual node True vs False"),
    ({"jk": "cat"}, {}, r"3573 vs 3373 parameters"),
])
def test_load_reference_refuses_a_model_it_would_fill_only_in_part(ours: dict, theirs: dict, message: str) -> None:
    """The copy zipped layer lists: a graphdl model with a layer, a virtual node or a jk linear layer more than the
    reference kept those at its own initialisation, and the two computed different functions without a word."""
    torch.manual_seed(0)
    model = ogb_mol(2, **{"layer": "gin", "virtual_node": True, "hidden_channels": 8, "num_layers": 3, **ours})
    reference = ReferenceOGBMol(2, **{"gnn_type": "gin", "virtual_node": True, "emb_dim": 8, "num_layer": 3,
                                      **theirs})
    with pytest.raises(ValueError, match=rf"^the graphdl model and the reference differ \({message}"):
        load_reference_into(model, reference)


def test_load_reference_of_the_same_architecture_gives_the_same_outputs() -> None:
    from torch_geometric.data import Batch, Data

    torch.manual_seed(0)
    graphs = [Data(x=torch.randint(0, 2, (n, 9)), edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]),
                   edge_attr=torch.randint(0, 2, (4, 3))) for n in (3, 4)]
    batch = Batch.from_data_list(graphs)
    model = ogb_mol(2, layer="gcn", virtual_node=True, hidden_channels=8, num_layers=2).eval()
    reference = ReferenceOGBMol(2, gnn_type="gcn", virtual_node=True, emb_dim=8, num_layer=2).eval()
    load_reference_into(model, reference)
    torch.testing.assert_close(model(batch.x, batch.edge_index, batch.edge_attr, batch=batch.batch),
                               reference(batch), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs,message", [
    ({"num_layer": 1}, r"^Number of GNN layers must be greater than 1"),
    ({"gnn_type": "gat"}, r"^Undefined GNN type called 'gat'"),
])
def test_reference_refuses_what_the_official_gnn_refuses(kwargs: dict, message: str) -> None:
    """OGB's GNN raises ValueError for one layer or an unknown conv; the re-implementation built a one-layer model
    the official script never trains, or failed with KeyError: 'gat'."""
    with pytest.raises(ValueError, match=message):
        ReferenceOGBMol(1, **kwargs)


def test_a_seed_listed_twice_is_refused_before_training() -> None:
    """run_config(seeds=[0, 0]) trained seed 0 twice and reported a two-seed std of one run."""
    from graphdl.bench.runner import _seed_list
    from graphdl.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^seeds lists seed 3 more than once; give each seed once$"):
        _seed_list([3, 1, 3])
    assert _seed_list([3, 1]) == [3, 1]
