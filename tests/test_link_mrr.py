"""The link task beyond ogbl-ddi's format: OGB's per-source splits (ogbl-citation2) scored by MRR and per-row
Hits@K, OGB link evaluators of other metrics (ogbl-vessel's ROC-AUC), and degenerate splits.

No ogbl-citation2 data is available offline, so the end-to-end tests write a tiny dataset in its format
(raw/*.csv.gz, split/time/{train,valid,test}.pt) and load it through the official
``PygLinkPropPredDataset``; metrics are checked against the official ``ogb.linkproppred.Evaluator``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

import graphdl.datasets as datasets
from graphdl.datasets.ogb import register_ogb_dataset
from graphdl.errors import ConfigError, ValidationError
from graphdl.models.gnn import GNN
from graphdl.train import LinkTask, Trainer
from graphdl.train.metrics import resolve_metric
from ogb_raw_files import write_csv_gz

NAME = "ogbl-tinycite"
NUM_NODES, NUM_FEATURES, ROW = 40, 8, 20
META = {"eval metric": "mrr", "task type": "link prediction", "split": "time", "has_node_attr": True,
        "add_inverse_edge": False}


def _official_mrr_lists(pos: torch.Tensor, neg: torch.Tensor) -> dict[str, torch.Tensor]:
    from ogb.linkproppred import Evaluator

    return Evaluator("ogbl-citation2").eval({"y_pred_pos": pos, "y_pred_neg": neg})


@pytest.mark.parametrize("seed", [0, 1])
def test_mrr_and_per_row_hits_equal_the_official_citation2_evaluator_with_ties(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    # Integer scores: many ties between a positive and its negatives, which OGB counts half.
    pos = torch.randint(0, 6, (50,), generator=gen).float()
    neg = torch.randint(0, 6, (50, 30), generator=gen).float()
    official = _official_mrr_lists(pos, neg)
    assert resolve_metric("mrr")(pos, neg) == pytest.approx(official["mrr_list"].mean().item(), abs=1e-7)
    for k in (1, 3, 10):
        ours = resolve_metric(f"hits@{k}")(pos, neg)
        assert ours == pytest.approx(official[f"hits@{k}_list"].mean().item(), abs=1e-7)
    assert resolve_metric("ogbl-citation2")(pos, neg) == pytest.approx(official["mrr_list"].mean().item())


def test_per_row_hits_without_ties_is_the_shared_pool_rule_applied_to_each_row() -> None:
    gen = torch.Generator().manual_seed(2)
    pos, neg = torch.randn(40, generator=gen), torch.randn(40, 15, generator=gen)
    hits = resolve_metric("hits@5")
    per_row = [hits(pos[i:i + 1], neg[i]) for i in range(40)]  # each row as its own 1-D pool
    assert hits(pos, neg) == pytest.approx(float(np.mean(per_row)))


def test_mrr_of_a_shared_pool_or_a_mismatched_matrix_is_refused() -> None:
    pos = torch.randn(10)
    with pytest.raises(ValidationError, match=re.escape(
            "mrr ranks each positive pair among its own negatives, a (10, K) score matrix, but the negatives "
            "have shape (30,); give each positive its own negative targets (OGB's ogbl-citation2 split: "
            "source_node, target_node, target_node_neg), or score one shared pool of negatives with hits@K "
            "or rocauc")):
        resolve_metric("mrr")(pos, torch.randn(30))
    with pytest.raises(ValidationError, match=r"a \(10, K\) score matrix, but the negatives have shape \(9, 4\)"):
        resolve_metric("ogbl-citation2")(pos, torch.randn(9, 4))
    with pytest.raises(ValidationError, match=r"the ogbl-ddi evaluator's hits@20 ranks the positives against one "
                                              r"shared pool of negatives, but these splits give each positive its "
                                              r"own negatives; score them with metric 'hits@20' \(per positive\)"):
        resolve_metric("ogbl-ddi")(pos, torch.randn(10, 25))
    with pytest.raises(ValidationError, match=r"hits@5 counts .* but each positive has only 4 negatives"):
        resolve_metric("hits@5")(pos, torch.randn(10, 4))


@pytest.fixture
def tiny_citation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A 40-node directed graph in ogbl-citation2's format, loaded through the official loader."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    register_ogb_dataset(NAME, "link", META, override=True)
    folder = tmp_path / "ogb" / "ogbl_tinycite"
    rng = np.random.default_rng(0)
    edges = np.array([[i, (i * 7 + 3) % NUM_NODES] for i in range(NUM_NODES)]
                     + [[i, (i + 1) % NUM_NODES] for i in range(NUM_NODES)])
    write_csv_gz(folder / "raw" / "edge.csv.gz", edges, "%d")
    write_csv_gz(folder / "raw" / "node-feat.csv.gz", rng.standard_normal((NUM_NODES, NUM_FEATURES)), "%.6f")
    write_csv_gz(folder / "raw" / "num-node-list.csv.gz", np.array([NUM_NODES]), "%d")
    write_csv_gz(folder / "raw" / "num-edge-list.csv.gz", np.array([len(edges)]), "%d")
    (folder / "split" / "time").mkdir(parents=True)
    parts = {"train": slice(0, 60), "valid": slice(60, 70), "test": slice(70, 80)}
    for part, rows in parts.items():
        record = {"source_node": edges[rows, 0], "target_node": edges[rows, 1]}
        if part != "train":  # numpy arrays, as OGB ships them
            record["target_node_neg"] = rng.integers(0, NUM_NODES, (10, ROW))
        torch.save(record, folder / "split" / "time" / f"{part}.pt")
    (folder / "RELEASE_v1.txt").write_text("tiny test dataset, v1\n")
    dataset = datasets.load(NAME, root=tmp_path, download=False)
    yield dataset[0], datasets.split_indices(dataset)
    datasets.unregister(NAME)


def test_citation2_format_trains_and_each_split_scores_as_the_official_evaluator(tiny_citation) -> None:
    from ogb.linkproppred import Evaluator

    data, split = tiny_citation
    assert split["valid"]["target_node_neg"].shape == (10, ROW)
    torch.manual_seed(0)
    model = GNN("sage", NUM_FEATURES, 16, 16, num_layers=2)
    trainer = Trainer(model, task="link", task_kwargs={"metric": NAME}, epochs=2, progress=False)
    result = trainer.fit(data, split)
    assert set(result.best) == {"epoch", "train_loss", "train_mrr", "val_mrr", "test_mrr"}

    model.eval()
    with torch.no_grad():
        z = model(data.x, data.edge_index)
    evaluator = Evaluator("ogbl-citation2")

    def official(source, target, neg_targets) -> float:
        pos = (z[source] * z[target]).sum(-1)
        neg = (z[source].unsqueeze(1) * z[neg_targets]).sum(-1)
        return evaluator.eval({"y_pred_pos": pos, "y_pred_neg": neg})["mrr_list"].mean().item()

    scores = trainer.evaluate(split=["train", "val", "test"])
    for ours, part in (("val_mrr", "valid"), ("test_mrr", "test")):
        s = split[part]
        assert scores[ours] == pytest.approx(official(s["source_node"], s["target_node"], s["target_node_neg"]),
                                             abs=1e-6)
    # train: OGB's example sample of as many training edges as validation rows, with the validation negatives
    picked = torch.randperm(60, generator=torch.Generator().manual_seed(12345))[:10]
    train = split["train"]
    expected = official(train["source_node"][picked], train["target_node"][picked], split["valid"]["target_node_neg"])
    assert scores["train_mrr"] == pytest.approx(expected, abs=1e-6)


def test_citation2_format_trains_on_corrupted_targets_as_the_official_example(tiny_citation) -> None:
    """OGB's ogbl-citation2 example keeps each training edge's source and draws a random target, the way the
    splits are ranked; both endpoints were drawn before (uniform non-edges), which is still the edge format's
    default and can be asked for."""
    data, split = tiny_citation
    batch = torch.stack([split["train"]["source_node"][:12], split["train"]["target_node"][:12]])
    for kwargs, corrupt_targets in (({}, True), ({"negative_sampling": "pairs"}, False),
                                    ({"negative_sampling": "targets"}, True)):
        task = LinkTask(metric="mrr", num_negatives=3, **kwargs)
        task.setup(data, split)
        torch.manual_seed(0)
        neg = task._negative_pairs(batch)
        assert neg.shape == (2, 36)
        # sources kept in the order the loss repeats the positives (pos.repeat(num_negatives))
        assert torch.equal(neg[0], batch[0].repeat(3)) == corrupt_targets
        if corrupt_targets:  # and targets uniform over every node, as torch.randint(0, num_nodes) draws them
            torch.manual_seed(0)
            assert torch.equal(neg[1], torch.randint(0, NUM_NODES, (36,)))
    with pytest.raises(ConfigError, match=re.escape("the link task's negative_sampling must be 'pairs' (uniform "
                                                    "non-edges) or 'targets' (each positive's source with a random "
                                                    "target), got 'source'")):
        LinkTask(negative_sampling="source")


def test_citation2_format_errors_are_named(tiny_citation) -> None:
    data, split = tiny_citation
    model = GNN("sage", NUM_FEATURES, 16, 16, num_layers=2)

    def fit(split, metric=NAME) -> None:
        Trainer(model, task="link", task_kwargs={"metric": metric}, epochs=1, progress=False).fit(data, split)

    bad = {**split, "valid": {**split["valid"], "target_node_neg": split["valid"]["target_node_neg"][:5]}}
    with pytest.raises(ValidationError, match=re.escape(
            "splits['valid']['target_node_neg'] must hold one row of negative target nodes per source node, "
            "shape (10, K), got (5, 20)")):
        fit(bad)
    bad = {**split, "test": {**split["test"], "target_node": split["test"]["target_node"][:-1]}}
    with pytest.raises(ValidationError, match=re.escape("splits['test']: source_node and target_node must be 1-D "
                                                        "node ids of one length, got shapes (10,) and (9,)")):
        fit(bad)
    with pytest.raises(ValidationError, match=r"hits@50 needs at least 50 negative pairs per split, but a split "
                                              r"has 20"):
        fit(split, "hits@50")
    # A shared pool of negatives (OGB's edge/edge_neg format) cannot be ranked per positive.
    pool = {part: {"edge": torch.stack([s["source_node"], s["target_node"]], 1),
                   **({"edge_neg": torch.randint(0, NUM_NODES, (30, 2))} if part != "train" else {})}
            for part, s in split.items()}
    with pytest.raises(ValidationError, match=re.escape(
            "mrr ranks each positive among its own negatives, but the 'val', 'test' split has one shared pool of "
            "negative pairs (edge_neg)")):
        fit(pool, "mrr")


def test_link_task_unchanged_for_the_shared_pool_format() -> None:
    """edge/edge_neg splits keep their scoring: hits@K over the pool, against the ogbl-ddi evaluator."""
    from ogb.linkproppred import Evaluator

    torch.manual_seed(0)
    n = 30
    edge_index = torch.randint(0, n, (2, 120))
    data = Data(x=torch.randn(n, 4), edge_index=edge_index)
    split = {"train": {"edge": edge_index[:, :80].t()},
             "valid": {"edge": edge_index[:, 80:100].t(), "edge_neg": torch.randint(0, n, (40, 2))},
             "test": {"edge": edge_index[:, 100:].t(), "edge_neg": torch.randint(0, n, (40, 2))}}
    model = GNN("gcn", 4, 8, 8, num_layers=2)
    task = LinkTask(metric="ogbl-ddi")
    task.setup(data, split)
    assert not task.corrupt_targets  # trained on uniform non-edges, as before
    scores = task.evaluate(model.eval(), ["val"])
    with torch.no_grad():
        z = model(data.x, data.edge_index)
    pos = (z[split["valid"]["edge"][:, 0]] * z[split["valid"]["edge"][:, 1]]).sum(-1)
    neg = (z[split["valid"]["edge_neg"][:, 0]] * z[split["valid"]["edge_neg"][:, 1]]).sum(-1)
    official = Evaluator("ogbl-ddi").eval({"y_pred_pos": pos, "y_pred_neg": neg})["hits@20"]
    assert scores["val_hits@20"] == pytest.approx(official)


def test_two_edges_in_ogbs_layout_are_read_as_rows() -> None:
    """A (2, 2) split is ambiguous between OGB's (P, 2) rows and PyG's (2, P) columns; the split dicts are OGB's
    format, and two held-out edges [[0, 1], [2, 3]] were read as the pairs (0, 2) and (1, 3)."""
    data = Data(x=torch.randn(6, 4), edge_index=torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]]))
    split = {"train": {"edge": torch.tensor([[0, 1], [1, 2], [2, 3]])},
             "valid": {"edge": torch.tensor([[0, 1], [2, 3]]), "edge_neg": torch.tensor([[0, 5], [1, 4]])}}
    task = LinkTask()
    task.setup(data, split)
    assert task.pos["val"].tolist() == [[0, 2], [1, 3]]
    assert task.neg["val"].tolist() == [[0, 1], [5, 4]]
    assert task.pos["train"].tolist() == [[0, 1, 2], [1, 2, 3]]


def test_without_a_validation_split_the_train_split_borrows_the_first_held_out_negatives() -> None:
    """train + test splits only: train was scored against the validation negatives, which did not exist
    (an AttributeError on None)."""
    from sklearn.metrics import roc_auc_score

    torch.manual_seed(0)
    n = 30
    edge_index = torch.randint(0, n, (2, 120))
    data = Data(x=torch.randn(n, 4), edge_index=edge_index)
    model = GNN("gcn", 4, 8, 8, num_layers=2).eval()
    with torch.no_grad():
        z = model(data.x, data.edge_index)

    def score(pairs: torch.Tensor) -> torch.Tensor:
        return (z[pairs[0]] * z[pairs[1]]).sum(-1)

    pool = torch.randint(0, n, (40, 2))
    flat = {"train": {"edge": edge_index[:, :80].t()}, "test": {"edge": edge_index[:, 100:].t(), "edge_neg": pool}}
    task = LinkTask(metric="rocauc")
    task.setup(data, flat)
    pos, neg = score(edge_index[:, :80]), score(pool.t())
    expected = roc_auc_score([1] * 80 + [0] * 40, torch.cat([pos, neg]).sigmoid().numpy())
    assert task.evaluate(model, ["train"])["train_rocauc"] == pytest.approx(expected)

    targets = torch.randint(0, n, (20, 7))
    rows = {"train": {"source_node": edge_index[0, :80], "target_node": edge_index[1, :80]},
            "test": {"source_node": edge_index[0, 100:], "target_node": edge_index[1, 100:],
                     "target_node_neg": targets}}
    task = LinkTask(metric="mrr")
    task.setup(data, rows)
    picked = edge_index[:, :80][:, torch.randperm(80, generator=torch.Generator().manual_seed(12345))[:20]]
    neg = (z[picked[0]].unsqueeze(1) * z[targets]).sum(-1)
    official = _official_mrr_lists(score(picked), neg)["mrr_list"].mean().item()
    assert task.evaluate(model, ["train"])["train_mrr"] == pytest.approx(official)


def test_an_empty_link_split_is_named() -> None:
    """Before: a ValueError inside scikit-learn (rocauc of an empty split) or a silent test_mrr of nan."""
    n = 30
    edge_index = torch.randint(0, n, (2, 120), generator=torch.Generator().manual_seed(0))
    data = Data(x=torch.randn(n, 4), edge_index=edge_index)
    none = torch.zeros(0, 2, dtype=torch.long)
    train = {"edge": edge_index[:, :80].t()}
    valid = {"edge": edge_index[:, 100:].t(), "edge_neg": edge_index[:, :5].t()}
    cases = [({"train": train, "valid": valid, "test": {"edge": none, "edge_neg": none}}, "rocauc",
              "the 'test' split holds no positive edges"),
             ({"train": train, "valid": {**valid, "edge_neg": none}}, "rocauc", "the 'val' split holds no negative "
                                                                               "pairs"),
             ({"train": {"source_node": edge_index[0, :80], "target_node": edge_index[1, :80]},
               "test": {"source_node": edge_index[0, :0], "target_node": edge_index[1, :0],
                        "target_node_neg": torch.zeros(0, 7, dtype=torch.long)}}, "mrr",
              "the 'test' split holds no positive edges")]
    for splits, metric, message in cases:
        with pytest.raises(ValidationError, match=rf"^{re.escape(message)}; give it some, or pass the splits without "
                                                  rf"it$"):
            LinkTask(metric=metric).setup(data, splits)


def test_an_ogb_link_evaluator_of_rocauc_gets_positive_and_negative_scores() -> None:
    """ogbl-vessel's evaluator (ROC-AUC of y_pred_pos against y_pred_neg) was handed (labels, probabilities):
    the labels read as the positives' scores, a meaningless number without an error."""
    from ogb.linkproppred import Evaluator

    torch.manual_seed(0)
    n = 30
    edge_index = torch.randint(0, n, (2, 120))
    data = Data(x=torch.randn(n, 4), edge_index=edge_index)
    pool = torch.randint(0, n, (40, 2))
    split = {"train": {"edge": edge_index[:, :80].t()}, "valid": {"edge": edge_index[:, 80:].t(), "edge_neg": pool}}
    model = GNN("gcn", 4, 8, 8, num_layers=2).eval()
    task = LinkTask(metric="ogbl-vessel")
    task.setup(data, split)
    with torch.no_grad():
        z = model(data.x, data.edge_index)
    pos = (z[edge_index[0, 80:]] * z[edge_index[1, 80:]]).sum(-1)
    neg = (z[pool[:, 0]] * z[pool[:, 1]]).sum(-1)
    official = Evaluator("ogbl-vessel").eval({"y_pred_pos": pos, "y_pred_neg": neg})["rocauc"]
    assert task.evaluate(model, ["val"])["val_rocauc"] == pytest.approx(official)
