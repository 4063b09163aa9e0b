"""Outlier injectors (PyGOD's definitions), DOMINANT / latent-distance detectors and the anomaly task."""

from __future__ import annotations

import math

import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.utils import to_dense_adj, to_undirected

import graphdl
from graphdl.errors import ConfigError, ValidationError
from graphdl.graphs import chain, grid
from graphdl.models import anomaly
from graphdl.models.outliers import inject_contextual_outliers, inject_outliers, inject_structural_outliers


def _graph(n: int = 200, blocks: int = 4, features: int = 12, seed: int = 0) -> Data:
    """Stochastic block model whose features name the block: context is easy to learn."""
    gen = torch.Generator().manual_seed(seed)
    block = torch.arange(n) % blocks
    prob = torch.where(block[:, None] == block[None, :], torch.tensor(0.08), torch.tensor(0.002))
    upper = torch.triu(torch.rand(n, n, generator=gen) < prob, diagonal=1)
    x = torch.zeros(n, features)
    x[torch.arange(n), block] = 1.0
    x[:, blocks:] = (torch.rand(n, features - blocks, generator=gen) < 0.1).float()
    return Data(x=x, edge_index=to_undirected(upper.nonzero().t(), num_nodes=n), num_nodes=n)


# ----------------------------------------------------------------------------- structural outliers
def test_structural_outliers_are_cliques() -> None:
    data = _graph()
    m, n = 6, 3
    out, y = inject_structural_outliers(data, m, n, seed=5)
    assert int(y.sum()) == m * n and y.dtype == torch.long
    assert torch.equal(out.edge_index[:, : data.edge_index.size(1)], data.edge_index)  # appended
    new = out.edge_index[:, data.edge_index.size(1):]
    assert new.size(1) == n * m * (m - 1)  # each clique pair in both directions
    assert set(new.unique().tolist()) == set(y.nonzero().view(-1).tolist())
    # the new edges split into n components of m nodes, each fully connected
    adj = to_dense_adj(new, max_num_nodes=data.num_nodes)[0].bool()
    seen: set[int] = set()
    for node in y.nonzero().view(-1).tolist():
        if node in seen:
            continue
        clique = {node, *adj[node].nonzero().view(-1).tolist()}
        assert len(clique) == m
        members = torch.tensor(sorted(clique))
        block = adj[members][:, members]
        assert bool((block | torch.eye(m, dtype=torch.bool)).all())  # fully connected
        seen |= clique
    assert len(seen) == m * n
    assert data.edge_index.size(1) < out.edge_index.size(1)  # the input graph is untouched
    assert out.x is data.x


def test_structural_draws_match_pygod_seeding() -> None:
    """Same nodes as PyGOD's gen_structural_outlier after torch.manual_seed(seed)."""
    data = _graph()
    _, y = inject_structural_outliers(data, 5, 4, seed=7)
    torch.manual_seed(7)
    expected = torch.randperm(data.num_nodes)[:20]
    assert set(y.nonzero().view(-1).tolist()) == set(expected.tolist())


def test_structural_directed_and_dropped() -> None:
    data = _graph()
    out, _ = inject_structural_outliers(data, 5, 2, seed=1, directed=True)
    assert out.edge_index.size(1) - data.edge_index.size(1) == 2 * 10
    out, _ = inject_structural_outliers(data, 5, 2, seed=1, p=0.5)
    assert out.edge_index.size(1) - data.edge_index.size(1) == 2 * int(0.5 * 20)


# ----------------------------------------------------------------------------- contextual outliers
def _reference_contextual(x: torch.Tensor, n: int, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The definition, replayed with torch's global generator seeded as PyGOD seeds it."""
    x = x.clone()
    torch.manual_seed(seed)
    idx = torch.randperm(x.size(0))[:n]
    for i in idx.tolist():
        cand = torch.randperm(x.size(0))[:k]
        far = cand[torch.cdist(x[i][None], x[cand]).argmax()]
        x[i] = x[far]
    return x, idx


def test_contextual_outliers_take_the_farthest_candidate() -> None:
    data = _graph()
    out, y = inject_contextual_outliers(data, n=15, k=20, seed=3)
    assert int(y.sum()) == 15
    x_ref, idx = _reference_contextual(data.x, 15, 20, 3)
    torch.testing.assert_close(out.x, x_ref)
    assert set(y.nonzero().view(-1).tolist()) == set(idx.tolist())
    assert torch.equal(out.x[y == 0], data.x[y == 0])  # inliers keep their features
    assert not torch.equal(out.x, data.x) and out.edge_index is data.edge_index


def test_contextual_single_candidate_is_copied() -> None:
    """With k = 1 the only candidate is the farthest: the outlier's row equals that node's row."""
    data = _graph()
    out, y = inject_contextual_outliers(data, n=1, k=1, seed=9)
    i = int(y.nonzero())
    gen = torch.Generator().manual_seed(9)
    assert int(torch.randperm(data.num_nodes, generator=gen)[0]) == i
    j = int(torch.randperm(data.num_nodes, generator=gen)[0])
    assert torch.equal(out.x[i], data.x[j])


def test_inject_outliers_union_and_types() -> None:
    data = _graph()
    out = inject_outliers(data, m=5, n_structural=2, n_contextual=10, k=20, seed=0)
    types = out.outlier_type
    assert int((types & 1).sum()) == 10 and int((types >> 1 & 1).sum()) == 10
    assert torch.equal(out.y_outlier, (types > 0).long())


@pytest.mark.parametrize("call, message", [
    (lambda d: inject_structural_outliers(d, 21, 10), r"m\*n = 21\*10 = 210 clique nodes, but the graph has only "
                                                      r"200 nodes; lower m \(nodes per clique\) or n"),
    (lambda d: inject_structural_outliers(d, 1, 3), r"m \(the number of nodes per clique\) must be >= 2, got 1"),
    (lambda d: inject_structural_outliers(d, 3, 0), r"n \(the number of cliques\) must be >= 1, got 0"),
    (lambda d: inject_structural_outliers(d, 3, 2, p=1.0), r"p \(the fraction of clique edges dropped\) must lie"),
    (lambda d: inject_contextual_outliers(d, 5, 0), r"k \(the number of candidate nodes per outlier\) must be "
                                                    r">= 1, got 0"),
    (lambda d: inject_contextual_outliers(d, 150, 60), r"k = 60 candidates per outlier, but at most N - n = "
                                                       r"200 - 150 = 50 are allowed"),
    (lambda d: inject_contextual_outliers(d, 201, 1), r"n = 201 outliers, but the graph has only 200 nodes"),
    (lambda d: inject_contextual_outliers(d, 2.5, 3), r"n \(the number of outliers\) must be an int, got 2.5"),
    (lambda d: inject_structural_outliers(d.x, 3, 2), r"data must be a torch_geometric.data.Data graph"),
])
def test_injector_errors(call, message) -> None:
    with pytest.raises(ValidationError, match=message):
        call(_graph())


# ----------------------------------------------------------------------------- scores and structure helpers
def test_dominant_loss_is_the_row_norm_mix() -> None:
    gen = torch.Generator().manual_seed(0)
    x, x_hat = torch.rand(6, 4, generator=gen), torch.rand(6, 4, generator=gen)
    s, s_hat = (torch.rand(6, 6, generator=gen) > 0.5).float(), torch.rand(6, 6, generator=gen)
    loss = anomaly.DominantLoss(alpha=0.3, reduction="none")
    expected = 0.3 * torch.linalg.norm(x - x_hat, dim=1) + 0.7 * torch.linalg.norm(s - s_hat, dim=1)
    torch.testing.assert_close(loss(x, x_hat, s, s_hat), expected)
    torch.testing.assert_close(anomaly.DominantLoss(alpha=0.3)(x, x_hat, s, s_hat), expected.mean())
    torch.testing.assert_close(loss(x, x_hat), torch.linalg.norm(x - x_hat, dim=1))
    assert "dominant" in graphdl.losses
    with pytest.raises(ValidationError, match="alpha must be >= 0 and <= 1, got 1.5"):
        anomaly.DominantLoss(alpha=1.5)


def test_batched_structure_is_blockwise() -> None:
    graphs = [_graph(n, seed=n) for n in (9, 14, 11)]
    batch = Batch.from_data_list(graphs)
    rows = anomaly.adjacency_rows(batch.edge_index, batch.num_nodes, batch.batch)
    h = torch.randn(batch.num_nodes, 3)
    gram = anomaly.gram_rows(h, batch.batch)
    start = 0
    for g in graphs:
        n = g.num_nodes
        dense = to_dense_adj(g.edge_index, max_num_nodes=n)[0]
        torch.testing.assert_close(rows[start:start + n, :n], dense)
        assert rows[start:start + n, n:].abs().sum() == 0
        hg = h[start:start + n]
        torch.testing.assert_close(gram[start:start + n, :n], hg @ hg.t())
        assert gram[start:start + n, n:].abs().sum() == 0
        knn = anomaly.knn_distance(hg, 3)
        torch.testing.assert_close(anomaly.knn_distance(h, 3, batch.batch)[start:start + n], knn)
        start += n


def test_latent_distances() -> None:
    z = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    edge_index = torch.tensor([[1, 2, 0, 0], [0, 0, 1, 2]])  # 0 <-> 1, 0 <-> 2; 3 isolated
    d = anomaly.neighbor_distance(z, edge_index)
    torch.testing.assert_close(d, torch.tensor([math.sqrt(0.5), 1.0, 1.0, 0.0]))
    knn = anomaly.knn_distance(z, 1)
    torch.testing.assert_close(knn, torch.tensor([1.0, 1.0, 1.0, math.dist((5, 5), (1, 0))]))


# ----------------------------------------------------------------------------- detectors through the Trainer
def _fit(name: str, graph: Data, epochs: int = 60, **kwargs) -> graphdl.train.FitResult:
    graphdl.seed_everything(0)  # initial weights independent of the tests that ran before
    model = graphdl.models.create(name, in_channels=graph.num_features, hidden_channels=32, **kwargs)
    return graphdl.Trainer(model, loss="dominant", task="anomaly", lr=0.01, epochs=epochs, seed=0,
                           progress=False, monitor="train_loss").fit(graph)


def test_detectors_beat_random_on_an_easy_graph() -> None:
    graph = inject_outliers(_graph(), m=8, n_structural=2, n_contextual=12, k=30, seed=1)
    dominant = _fit("dominant", graph)
    assert dominant.best["all_rocauc"] > 0.85, dominant.best
    assert dominant.history[-1]["train_loss"] < dominant.history[0]["train_loss"]
    graphdl.seed_everything(0)
    trainer = graphdl.Trainer(graphdl.models.create("latent_distance", in_channels=graph.num_features,
                                                    hidden_channels=32),
                              loss="dominant", task="anomaly", lr=0.01, epochs=60, seed=0, progress=False,
                              monitor="train_loss")
    latent = trainer.fit(graph)
    assert latent.best["all_rocauc"] > 0.6, latent.best
    scores = trainer.predict()  # the scores of every node
    contextual = graph.outlier_type != 1  # the latent distance targets feature/context outliers
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(graph.y_outlier[contextual], scores.cpu()[contextual]) > 0.8



def test_a_graph_without_outlier_labels_trains_and_is_scored_by_predict() -> None:
    """The unsupervised use: no labels to evaluate, the same training as with them, scores from predict()."""
    labelled = inject_outliers(_graph(), m=8, n_structural=2, n_contextual=12, k=30, seed=1)
    unlabelled = labelled.clone()
    del unlabelled.y_outlier
    runs = []
    for graph in (labelled, unlabelled):
        graphdl.seed_everything(0)
        trainer = graphdl.Trainer(graphdl.models.create("dominant", in_channels=graph.num_features,
                                                        hidden_channels=32),
                                  loss="dominant", task="anomaly", lr=0.01, epochs=5, seed=0, progress=False)
        runs.append((trainer.fit(graph), trainer.predict()))
    (with_labels, scores), (without, unlabelled_scores) = runs
    assert [sorted(h) for h in without.history] == [["epoch", "train_loss"]] * 5
    assert [h["train_loss"] for h in without.history] == [h["train_loss"] for h in with_labels.history]
    assert torch.equal(unlabelled_scores, scores) and scores.shape == (labelled.num_nodes,)

def test_detectors_run_on_grid_and_chain_graphs() -> None:
    images = torch.rand(3, 1, 6, 6)
    images_graph = grid(images, kernel_size=3, padding=1)
    seq = chain(torch.sin(torch.linspace(0, 12, 40)).view(2, 20, 1), bidirectional=True)
    for graph in (images_graph, seq):
        g, y = inject_contextual_outliers(graph, n=4, k=10, seed=0)
        g.y_outlier = y
        for name in ("dominant", "latent_distance"):
            result = _fit(name, g, epochs=3)
            assert 0.0 <= result.best["all_rocauc"] <= 1.0
        task = anomaly.AnomalyTask()
        task.setup(g)
        assert task.s.shape == (g.num_nodes, int(torch.bincount(g.batch).max()))


def test_anomaly_task_errors_and_val_split() -> None:
    data = _graph()
    for metric in ("acc", "f1", "hits@10", "ogbl-vessel"):  # acc/f1 thresholded scores at 0; pairs misread
        with pytest.raises(ConfigError, match=rf"^the anomaly task ranks nodes by their anomaly scores, which have "
                                              rf"no threshold; metric must be 'rocauc' or 'ap', got '{metric}'$"):
            anomaly.AnomalyTask(metric=metric)
    with pytest.raises(ValidationError, match=r"^val_fraction=0.5 splits the nodes by their outlier labels, but the "
                                              r"graph has none: set data.y_outlier"):
        anomaly.AnomalyTask(val_fraction=0.5).setup(data)
    with pytest.raises(ValidationError, match="outlier labels have 3 entries but the graph has 200 nodes"):
        anomaly.AnomalyTask().setup(data, torch.zeros(3))
    # scores as labels were cast to 0 (inliers) and all-inlier labels failed at the first evaluation
    with pytest.raises(ValidationError, match=r"^outlier labels must be 0 \(inlier\) or 1 \(outlier\), but found "
                                              r"200 other values in data.y_outlier, e.g. 0\.5; threshold scores"):
        anomaly.AnomalyTask().setup(data.clone().update({"y_outlier": torch.full((200,), 0.5)}))
    with pytest.raises(ValidationError, match=r"^0 of 200 nodes are outliers in the labels given as splits, so "
                                              r"ROC-AUC is undefined"):
        anomaly.AnomalyTask().setup(data, torch.zeros(200))
    anomaly.AnomalyTask().setup(data, (torch.arange(200) < 10))  # bool labels stay accepted
    with pytest.raises(ConfigError, match="returning \\(x_hat, s_hat, z\\)"):
        graph = inject_outliers(data, m=5, n_structural=2, n_contextual=5, k=5, seed=0)
        graphdl.Trainer(graphdl.models.create("gnn", in_channels=12), loss="dominant", task="anomaly",
                        epochs=1, progress=False, monitor="train_loss").fit(graph)
    task = anomaly.AnomalyTask(val_fraction=0.5)
    task.setup(graph)
    assert set(task.split_names()) == {"all", "val", "test"}
    val, test = task.splits["val"], task.splits["test"]
    assert len(set(val.tolist()) & set(test.tolist())) == 0 and val.numel() + test.numel() == 200
    assert int(graph.y_outlier[val].sum()) == int(graph.y_outlier[test].sum())  # stratified halves


@pytest.mark.parametrize("loss, kind", [("cross_entropy", "classification"), ("kl_div", "divergence"),
                                        ("supcon", "metric")])
def test_anomaly_task_refuses_losses_that_do_not_reconstruct(loss, kind) -> None:
    """Before, cross_entropy and kl_div trained on (x_hat, x) without complaint, reading features as labels or
    distributions, and supcon failed inside the loss."""
    with pytest.raises(ConfigError, match=rf"^the anomaly task reconstructs node features and takes 'dominant' "
                                          rf"\(attribute \+ structure error\) or a regression loss on the "
                                          rf"attributes \('mse', 'l1', 'huber'\), but '{loss}' is a {kind} loss$"):
        graphdl.Trainer(graphdl.models.create("dominant", in_channels=12), loss=loss, task="anomaly", progress=False)


def test_anomaly_task_trains_with_a_regression_loss_on_the_attributes() -> None:
    graph = inject_outliers(_graph(), m=5, n_structural=2, n_contextual=5, k=5, seed=0)
    result = graphdl.Trainer(graphdl.models.create("mlp_ae", in_channels=12), loss="mse", task="anomaly", epochs=2,
                             progress=False, monitor="train_loss").fit(graph)
    assert result.history[1]["train_loss"] < result.history[0]["train_loss"]


def test_the_loss_reduction_is_the_one_the_loss_was_built_with() -> None:
    """The task averaged the node scores whatever the loss's reduction: reduction="sum" trained on the mean."""
    graph = inject_outliers(_graph(), m=5, n_structural=2, n_contextual=5, k=5, seed=0)

    def first_loss(reduction: str) -> float:
        graphdl.seed_everything(0)
        model = graphdl.models.create("dominant", in_channels=12, hidden_channels=16)
        trainer = graphdl.Trainer(model, loss="dominant", loss_kwargs={"reduction": reduction}, task="anomaly",
                                  lr=1e-3, epochs=1, seed=0, progress=False, monitor="train_loss")
        return trainer.fit(graph).history[0]["train_loss"]

    assert first_loss("sum") == pytest.approx(graph.num_nodes * first_loss("mean"), rel=1e-5)
