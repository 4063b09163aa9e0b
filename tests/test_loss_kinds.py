"""The Trainer calls each kind of loss the way it is meant to be called, and refuses the rest up front."""

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.datasets import FakeDataset
from torch_geometric.transforms import RandomLinkSplit
from sklearn.neighbors import KNeighborsClassifier

import graphdl
from graphdl.errors import ConfigError, ValidationError
from graphdl.train import Trainer


@pytest.fixture(scope="module")
def cora(shared_data):
    return graphdl.datasets.load("cora", root=shared_data)[0]


@pytest.fixture(scope="module")
def link_splits(cora):
    torch.manual_seed(0)
    return RandomLinkSplit(num_val=0.05, num_test=0.1, is_undirected=True, split_labels=True,
                           add_negative_train_samples=False)(cora)


def gcn(out_channels=7):
    graphdl.seed_everything(0)
    return graphdl.models.create("gnn", layer="gcn", in_channels=1433, hidden_channels=16,
                                 out_channels=out_channels, num_layers=2, dropout=0.5)


def fit_node(data, loss, epochs=5, **kw):
    return Trainer(gcn(), loss, "node", lr=0.01, epochs=epochs, seed=0, progress=False, **kw).fit(data)


def same_histories(a, b):
    assert [h.keys() for h in a] == [h.keys() for h in b]
    for x, y in zip(a, b):
        for key in x:
            assert x[key] == pytest.approx(y[key], rel=1e-5, abs=1e-6), key


def test_kl_divergence_to_one_hot_labels_trains_exactly_as_cross_entropy(cora):
    """KL(onehot(y) || softmax(out)) = -log softmax(out)_y: the Trainer feeds the divergence log-probabilities
    and one-hot targets, so its run equals the cross-entropy run (before, it raised on the integer labels)."""
    ce = fit_node(cora, "cross_entropy")
    kl = fit_node(cora, "kl_div")
    same_histories(kl.history, ce.history)
    assert kl.history[-1]["train_loss"] != kl.history[0]["train_loss"]


def test_int32_labels_train_as_int64_labels_and_log_targets_are_refused(cora):
    """int32 data.y failed inside torch for cross_entropy ('expected target dtype to be Long') and kl_div
    (one_hot); kl_div(log_target=True) was built and then refused the task's probability targets at the first
    batch, with a fix (target.log()) the user cannot apply."""
    narrow = cora.clone()
    narrow.y = cora.y.int()
    for loss in ("cross_entropy", "kl_div"):
        same_histories(fit_node(narrow, loss, epochs=2).history, fit_node(cora, loss, epochs=2).history)
    with pytest.raises(ConfigError, match=r"^'kl_div' is built with log_target=True, but the NodeTask gives "
                                          r"divergences probability targets \(class distributions, or one-hot class "
                                          r"labels\); build it with log_target=False$"):
        Trainer(gcn(), "kl_div", "node", loss_kwargs={"log_target": True})


def test_divergence_takes_class_distributions_as_targets(cora):
    """Float targets of the output's shape are distributions (distillation); accuracy compares their likeliest
    class. One-hot distributions give the integer-label run."""
    soft = cora.clone()
    soft.y = F.one_hot(cora.y, 7).float()
    same_histories(fit_node(soft, "kl_div").history, fit_node(cora, "kl_div").history)

    teacher = torch.softmax(torch.randn(cora.num_nodes, 7, generator=torch.Generator().manual_seed(1)), -1)
    soft.y = teacher
    seen = []

    @graphdl.losses.register("kl_probe", kind="divergence")
    class KLProbe(torch.nn.Module):
        def forward(self, log_q, p):
            seen.append((log_q.detach(), p))
            return F.kl_div(log_q, p, reduction="batchmean")

    try:
        Trainer(gcn(), "kl_probe", "node", epochs=1, seed=0, progress=False).fit(soft)
    finally:
        graphdl.losses.unregister("kl_probe")
    log_q, p = seen[0]
    assert torch.equal(p, teacher[cora.train_mask])  # the distributions as given
    torch.testing.assert_close(log_q.exp().sum(-1), torch.ones(len(p)))  # log-probabilities, not logits


def test_divergence_labels_must_fit_the_outputs(cora):
    narrow = Trainer(graphdl.models.create("gnn", layer="gcn", in_channels=1433, hidden_channels=8,
                                           out_channels=5, num_layers=2), "js_div", "node", epochs=1,
                     progress=False)
    with pytest.raises(ValidationError, match=r"^'js_div' compares distributions over the model's 5 outputs, but "
                                              r"the targets hold class labels in \[0, 6\]; give the model one "
                                              r"output per class$"):
        narrow.fit(cora)


def test_regression_loss_on_class_labels_names_the_mismatch(cora):
    with pytest.raises(ValidationError, match=r"^'mse' is a regression loss, but the targets are class labels "
                                              r"\(torch.int64\) beside 7 outputs per item; use a classification "
                                              r"loss such as 'cross_entropy', or give float targets$"):
        fit_node(cora, "mse", epochs=1)



@pytest.mark.parametrize("loss", ["cross_entropy", torch.nn.CrossEntropyLoss()])
def test_class_labels_stored_as_floats_are_named(cora, loss):
    floats = cora.clone()
    floats.y = floats.y.float()
    name = "'cross_entropy'" if isinstance(loss, str) else "CrossEntropyLoss"
    with pytest.raises(ValidationError, match=rf"^{name} takes class labels as integers, but the targets are "
                                              r"torch.float32 of shape \(140,\) beside 7 outputs per item; cast them "
                                              r"with data.y = data.y.long\(\)$"):
        fit_node(floats, loss, epochs=1)

def test_margin_ranking_ranks_each_positive_edge_above_its_sampled_negatives(cora, link_splits):
    calls = []

    class Spy(graphdl.losses.get("margin_ranking")):
        def forward(self, input1, input2, target):
            calls.append((input1.detach(), input2.detach(), target))
            return super().forward(input1, input2, target)

    graphdl.seed_everything(0)
    model = graphdl.models.create("link_gnn", layer="gcn", in_channels=1433, hidden_channels=32,
                                  out_channels=32, num_layers=2)
    trainer = Trainer(model, Spy(margin=1.0), "link", task_kwargs={"num_negatives": 3}, lr=0.01, epochs=30,
                      seed=0, progress=False)
    result = trainer.fit(None, link_splits)
    pos, neg, target = calls[0]
    num_train = link_splits[0].pos_edge_label_index.size(1)
    assert pos.shape == neg.shape == target.shape == (3 * num_train,)
    assert torch.equal(pos[:num_train], pos[num_train:2 * num_train])  # each positive once per negative
    assert bool((target == 1).all())
    assert result.test["test_rocauc"] > 0.8


@pytest.mark.parametrize("task", ["link", "autoencoder"])
def test_margin_ranking_without_a_margin_is_refused_for_ranking_pairs(task):
    """Margin 0 (torch's default) is minimised by scoring every pair alike: ogbl-ddi's Hits@20 stayed 0.0 for
    8 epochs, and on Cora the loss fell to 3e-6 at a test ROC-AUC of 0.81 (0.94 with margin 1)."""
    model = graphdl.models.create("link_gnn", layer="gcn", in_channels=8, hidden_channels=8, out_channels=8)
    for loss, name in (("margin_ranking", "'margin_ranking'"), (torch.nn.MarginRankingLoss(), "MarginRankingLoss")):
        with pytest.raises(ConfigError, match=rf"^{name} with margin 0 costs nothing once each positive pair scores "
                                              rf"as high as its negatives, so scoring every pair alike minimises it "
                                              rf"\(on ogbl-ddi Hits@20 stayed 0\); give it a positive margin, e.g. "
                                              rf"loss_kwargs=\{{'margin': 1.0\}}$"):
            Trainer(model, loss, task)
    Trainer(model, "margin_ranking", task, loss_kwargs={"margin": 1.0})  # the fix


def test_link_bce_gets_positive_and_negative_scores(cora, link_splits):
    """link_bce(pos, neg) = mean softplus(-pos) + mean softplus(neg); before, the link task passed it
    (logits, labels), which it read as (positive scores, negative scores): every logit was pushed up."""

    def by_hand(logits, labels):
        return F.softplus(-logits[labels == 1]).mean() + F.softplus(logits[labels == 0]).mean()

    def fit(loss):
        graphdl.seed_everything(0)
        model = graphdl.models.create("link_gnn", layer="gcn", in_channels=1433, hidden_channels=32,
                                      out_channels=32, num_layers=2)
        return Trainer(model, loss, "link", lr=0.01, epochs=5, seed=0, progress=False).fit(None, link_splits)

    same_histories(fit("link_bce").history, fit(by_hand).history)


@pytest.mark.parametrize("task, loss, message", [
    ("node", "margin_ranking", r"^the node task calls its loss as loss\(output, target\), but 'margin_ranking' is a "
                               r"ranking loss over explicit pairs or triplets \(input1, input2, target\): use it "
                               r"with task='link', which ranks each positive edge above sampled non-edges, or "
                               r"learn node embeddings from labels with a metric loss \('triplet', 'supcon', "
                               r"'contrastive', \.\.\.\)$"),
    ("node", "triplet_margin", r"\(anchor, positive, negative\): use it with a Task of your own that forms them"),
    ("graph", "grace", r"^the graph task calls its loss as loss\(output, target\), but 'grace' is a graph "
                       r"objective that takes \(z1, z2\): train it with a task that forms those inputs \('link' "
                       r"for link_bce, 'autoencoder' for vgae, 'anomaly' for dominant, 'contrastive' for grace "
                       r"and dgi\) or a Task subclass of your own$"),
    ("link", "supcon", r"^loss 'supcon' \(kind 'metric'\) cannot train the link task: a metric loss learns "
                       r"embeddings from class labels, which node pairs do not have\. Use 'bce_with_logits', "
                       r"'focal', 'margin_ranking' or 'link_bce', or a loss class with link_inputs = 'pos_neg' "
                       r"\(loss\(pos, neg\)\) or 'ranked' \(loss\(pos, neg, ones\)\)$"),
    ("link", "kl_div", r"a divergence compares distributions over classes, and the task predicts one "
                       r"probability per pair"),
    ("link", "cosine_embedding", r"the task gives its loss the scores of positive pairs and of sampled "
                                 r"non-edges, but 'cosine_embedding' takes \(input1, input2, target\)"),
    ("link", "cross_entropy", r"^'cross_entropy' needs one logit per class, but the link task scores each node "
                              r"pair with one logit; use 'bce_with_logits', 'focal', 'margin_ranking' or "
                              r"'link_bce'$"),
    # the autoencoder task calls its losses as the link task does (before: cross_entropy and kl_div trained)
    ("autoencoder", "cross_entropy", r"^'cross_entropy' needs one logit per class, but the autoencoder task"),
    ("autoencoder", "kl_div", r"^loss 'kl_div' \(kind 'divergence'\) cannot train the autoencoder task"),
])
def test_a_loss_the_task_cannot_call_is_refused_when_the_trainer_is_built(task, loss, message):
    with pytest.raises(ConfigError, match=message):
        Trainer(torch.nn.Linear(4, 4), loss, task, progress=False)


def test_link_task_refuses_torch_cross_entropy_too():
    with pytest.raises(ConfigError, match=r"^CrossEntropyLoss needs one logit per class"):
        Trainer(torch.nn.Linear(4, 4), torch.nn.CrossEntropyLoss(), "link", progress=False)


@pytest.fixture(scope="module")
def graphs():
    torch.manual_seed(0)
    ds = FakeDataset(num_graphs=60, avg_num_nodes=12, num_channels=8, num_classes=3, task="graph")
    return ds, {"train": torch.arange(40), "val": torch.arange(40, 50), "test": torch.arange(50, 60)}


def graph_gnn(out_channels=3):
    graphdl.seed_everything(0)
    return graphdl.models.create("graph_gnn", layer="gcn", in_channels=8, hidden_channels=16,
                                 out_channels=out_channels, num_layers=2)


def test_graph_task_scores_metric_loss_embeddings_by_knn_accuracy(graphs):
    ds, split = graphs
    trainer = Trainer(graph_gnn(8), "supcon", "graph", epochs=3, seed=0, progress=False)
    result = trainer.fit(ds, split)
    assert set(result.test) == {"test_knn_acc"}

    model = trainer.model.eval()

    def embed(idx):
        with torch.no_grad():
            out = torch.cat([model(g.x, g.edge_index, batch=torch.zeros(g.num_nodes, dtype=torch.long))
                             for g in ds[idx]])
        return F.normalize(out, dim=-1).numpy(), torch.cat([g.y for g in ds[idx]]).numpy()

    knn = KNeighborsClassifier(n_neighbors=5).fit(*embed(split["train"]))
    assert trainer.evaluate(split="test") == {"test_knn_acc": pytest.approx(knn.score(*embed(split["test"])))}

    with pytest.raises(ConfigError, match=r"^'supcon' is a metric loss: the model outputs graph embeddings, which "
                                          r"'rocauc' cannot score; use metric='acc' \(k-NN accuracy on the "
                                          r"embeddings\)$"):
        Trainer(graph_gnn(8), "supcon", "graph", task_kwargs={"metric": "rocauc"}, progress=False)


def test_graph_task_divergence_equals_cross_entropy_on_class_labels(graphs):
    ds, split = graphs
    runs = [Trainer(graph_gnn(), loss, "graph", task_kwargs={"metric": "acc"}, epochs=3, seed=0,
                    progress=False).fit(ds, split) for loss in ("cross_entropy", "kl_div")]
    same_histories(runs[1].history, runs[0].history)


def test_graph_task_names_outputs_that_do_not_match_the_targets(graphs):
    ds, split = graphs
    with pytest.raises(ValidationError, match=r"^'huber' is a regression loss, but the targets are class labels "
                                              r"\(torch.int64\) beside 3 outputs per item"):
        Trainer(graph_gnn(), "huber", "graph", epochs=1, seed=0, progress=False).fit(ds, split)
    values = [g.clone() for g in ds]
    for g in values:
        g.y = g.y.float()  # one regression target per graph
    with pytest.raises(ValidationError, match=r"^the model gives outputs of shape \(32, 3\) for 32 graphs whose "
                                              r"targets have shape \(32,\); give the model one output per target, "
                                              r"or for class labels use a classification loss such as "
                                              r"'cross_entropy'$"):
        Trainer(graph_gnn(), "huber", "graph", epochs=1, seed=0, progress=False).fit(values, split)


def test_node_task_takes_one_target_per_node_beside_one_output(cora):
    """Binary labels or regression values of shape [N] beside out_channels=1 (before: a shape error in the loss)."""
    binary = cora.clone()
    binary.y = (cora.y == 3).long()
    graphdl.seed_everything(0)
    model = graphdl.models.create("gnn", layer="gcn", in_channels=1433, hidden_channels=16, out_channels=1,
                                  num_layers=2)
    seen = []

    def bce(out, y):
        seen.append((out.shape, y.dtype))
        return F.binary_cross_entropy_with_logits(out, y)

    result = Trainer(model, bce, "node", epochs=20, lr=0.01, seed=0, progress=False).fit(binary)
    assert seen[0] == (torch.Size([140, 1]), torch.float32)
    assert result.test["test_acc"] > 0.8


def test_divergence_refuses_targets_that_are_not_distributions(cora):
    multi_label = cora.clone()
    multi_label.y = (torch.rand(cora.num_nodes, 7, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    with pytest.raises(ValidationError, match=r"^'kl_div' takes float targets as class distributions, but some rows "
                                              r"are negative or do not sum to 1 \(multi-label 0/1 targets\?\)"):
        fit_node(multi_label, "kl_div", epochs=1)
    binary = Trainer(graphdl.models.create("gnn", layer="gcn", in_channels=1433, hidden_channels=8,
                                           out_channels=1, num_layers=2), "kl_div", "node", epochs=1, progress=False)
    with pytest.raises(ValidationError, match=r"^'kl_div' compares distributions over classes, but the model gives "
                                              r"outputs of shape \(140, 1\); give it one output per class \(for "
                                              r"binary targets use 'bce_with_logits'\)$"):
        binary.fit(cora)


def test_accuracy_of_distribution_and_multi_label_targets():
    """``acc`` with float targets of the output's shape: the likeliest class of a distribution, or, for
    multi-label 0/1 rows, the share of labels whose logit sign is right (sklearn's per-label accuracy)."""
    from sklearn.metrics import accuracy_score

    from graphdl.train.metrics import resolve_metric

    acc = resolve_metric("acc")
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 4, generator=gen)
    soft = torch.softmax(torch.randn(50, 4, generator=gen), -1)
    assert acc(soft, logits) == pytest.approx(accuracy_score(soft.argmax(-1), logits.argmax(-1)))
    multi = (torch.rand(50, 4, generator=gen) < 0.4).float()
    assert acc(multi, logits) == pytest.approx(accuracy_score(multi.view(-1), (logits > 0).float().view(-1)))


def test_ranking_metrics_of_class_labels_are_sklearns_one_vs_rest_macro():
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.preprocessing import label_binarize

    from graphdl.train.metrics import resolve_metric

    gen = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 4
    logits = torch.randn(60, 4, generator=gen) + F.one_hot(y, 4)
    probs = logits.softmax(-1).numpy()
    assert resolve_metric("rocauc")(y, logits) == pytest.approx(roc_auc_score(y.numpy(), probs, multi_class="ovr"))
    assert resolve_metric("ap")(y, logits) == pytest.approx(
        average_precision_score(label_binarize(y.numpy(), classes=range(4)), probs, average="macro"))
    with pytest.raises(ValidationError, match=r"^rmse compares one prediction per target, but the predictions have "
                                              r"shape \(60, 4\) for targets of shape \(60,\); for class labels use "
                                              r"metric 'acc'$"):
        resolve_metric("rmse")(y, logits)
    with pytest.raises(ValidationError, match=r"^the ogbg-molhiv evaluator \(rocauc\) refused predictions of shape "
                                              r"\(60, 4\) for targets of shape \(60, 1\)"):
        resolve_metric("ogbg-molhiv")(y, logits)


def test_class_labels_beside_one_output_are_named_by_binary_losses_and_ranking_metrics(cora):
    """Class ids 0..6 with one logit per node: the binary losses trained on targets 2, 3, ... (a number, even a
    negative one, without a word) and rocauc then failed inside scikit-learn; float targets beside several
    outputs were scored on the first output alone."""
    from graphdl.train.metrics import resolve_metric

    def model():
        return graphdl.models.create("gnn", layer="gcn", in_channels=1433, hidden_channels=8, out_channels=1)

    for loss, owner in (("bce_with_logits", "BCEWithLogitsLoss"), (torch.nn.BCEWithLogitsLoss(), "BCEWithLogitsLoss"),
                        ("focal", "FocalLoss")):
        with pytest.raises(ValidationError, match=rf"^{owner}: binary targets must lie in \[0, 1\] \(0/1 labels or "
                                                  rf"probabilities\), but \d+ lie outside, e.g. [2-6]; for class "
                                                  rf"labels give the model one output per class and use "
                                                  rf"'cross_entropy'$"):
            graphdl.Trainer(model(), loss, "node", task_kwargs={"metric": "rocauc"}, epochs=1,
                            progress=False).fit(cora)
    for name in ("rocauc", "ap"):
        with pytest.raises(ValidationError, match=rf"^{name} scores 0/1 targets, one score each, but the targets "
                                                  rf"hold 0, 1, 2; class labels need one output per class"):
            resolve_metric(name)(torch.tensor([0, 1, 2, 1]), torch.randn(4))
        with pytest.raises(ValidationError, match=rf"^{name} compares one prediction per target, but the "
                                                  rf"predictions have shape \(4, 3\) for targets of shape \(4,\)"):
            resolve_metric(name)(torch.tensor([0.0, 1.0, 1.0, 0.0]), torch.randn(4, 3))


@pytest.mark.parametrize("task", ["node", "graph"])
def test_pair_metrics_are_refused_outside_the_link_task(task):
    with pytest.raises(ConfigError, match=rf"^metric 'hits@20' ranks positive pairs against negatives, a link-task "
                                          rf"metric; the {task} task takes acc, rocauc, ap, f1, rmse, mae or an OGB "
                                          rf"dataset's name for its evaluator$"):
        Trainer(torch.nn.Linear(4, 4), task=task, task_kwargs={"metric": "hits@20"}, progress=False)


def test_link_accuracy_thresholds_the_logits_at_zero(link_splits):
    """Before, acc saw sigmoid probabilities, all above 0: every pair counted as an edge. (And predict() and
    evaluate() after fit(None, splits) said fit had not been called.)"""
    graphdl.seed_everything(0)
    model = graphdl.models.create("link_gnn", layer="gcn", in_channels=1433, hidden_channels=32, out_channels=32,
                                  num_layers=2)
    trainer = Trainer(model, task="link", task_kwargs={"metric": "acc"}, lr=0.01, epochs=30, seed=0, progress=False)
    trainer.fit(None, link_splits)
    task, z = trainer.task, trainer.predict()
    pos, neg = (model.decode(z, task.pos["test"]), model.decode(z, task.neg["test"]))
    expected = torch.cat([pos > 0, neg <= 0]).float().mean().item()
    assert trainer.evaluate(split="test") == {"test_acc": pytest.approx(expected)}
    assert expected != pytest.approx(pos.numel() / (pos.numel() + neg.numel()))


def test_graphdl_list_losses_shows_each_kind(capsys):
    from graphdl.cli import main

    assert main(["list", "losses", "*rank*"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "kind", "summary", "origin"]
    assert lines[1].split()[:2] == ["margin_ranking", "ranking"]
    assert main(["list", "layers", "gcn"]) == 0  # other families have no kind column
    assert capsys.readouterr().out.splitlines()[0].split() == ["name", "summary", "origin"]


def test_binary_cross_entropy_beside_class_labels_points_to_cross_entropy(graphs):
    """The graph task's default loss is OGB's bce_with_logits; class labels need cross_entropy."""
    ds, split = graphs
    with pytest.raises(ValidationError, match=r"^'bce_with_logits' takes one 0/1 target per output \(binary and "
                                              r"multi-label tasks, as OGB's; the graph task's default\), but the "
                                              r"targets are class labels beside 3 outputs per item; pass "
                                              r"loss='cross_entropy'$"):
        Trainer(graph_gnn(), task="graph", epochs=1, progress=False).fit(ds, split)
    result = Trainer(graph_gnn(), "cross_entropy", "graph", epochs=1, progress=False).fit(ds, split)
    assert set(result.test) == {"test_rocauc"}  # one-vs-rest over the three classes


def test_torch_losses_are_called_like_their_graphdl_namesakes(cora, link_splits):
    """torch.nn.KLDivLoss gets log-probabilities and one-hot targets (before: 'Integral inputs not supported'),
    torch.nn.MarginRankingLoss ranks link pairs, torch.nn.MSELoss beside class labels is named."""
    same_histories(fit_node(cora, torch.nn.KLDivLoss(reduction="batchmean")).history,
                   fit_node(cora, "cross_entropy").history)
    graphdl.seed_everything(0)
    model = graphdl.models.create("link_gnn", layer="gcn", in_channels=1433, hidden_channels=16, out_channels=16,
                                  num_layers=2)
    result = Trainer(model, torch.nn.MarginRankingLoss(margin=1.0), "link", epochs=2, progress=False).fit(
        None, link_splits)
    assert result.history[1]["train_loss"] < result.history[0]["train_loss"]
    with pytest.raises(ValidationError, match=r"^MSELoss is a regression loss, but the targets are class labels"):
        fit_node(cora, torch.nn.MSELoss(), epochs=1)
    with pytest.raises(ConfigError, match=r"^the node task calls its loss as loss\(output, target\), but "
                                          r"TripletMarginLoss is a ranking loss"):
        Trainer(torch.nn.Linear(4, 4), torch.nn.TripletMarginLoss(), "node", progress=False)


def test_node_regression_leaves_nan_targets_out_of_the_loss(cora):
    """As the graph task does with OGB's missing labels (before: the loss refused the NaN, blaming the model)."""
    data = cora.clone()
    data.y = torch.randn(cora.num_nodes, generator=torch.Generator().manual_seed(0))
    data.y[::3] = float("nan")
    seen = []

    @graphdl.losses.register("mse_probe", kind="regression")
    class MSEProbe(torch.nn.Module):
        def forward(self, out, y):
            seen.append((out.detach(), y))
            return F.mse_loss(out, y)

    try:
        graphdl.seed_everything(0)
        model = graphdl.models.create("gnn", layer="gcn", in_channels=1433, hidden_channels=8, out_channels=1,
                                      num_layers=2)
        Trainer(model, "mse_probe", "node", task_kwargs={"metric": "rmse"}, epochs=1, progress=False).fit(data)
    finally:
        graphdl.losses.unregister("mse_probe")
    labelled = data.y[cora.train_mask]
    labelled = labelled[~labelled.isnan()]
    out, y = seen[0]
    assert torch.equal(y, labelled) and out.shape == y.shape


def test_outputs_must_have_one_row_per_node_or_graph(cora, graphs):
    """A node-level model on the graph task (no pooling) or a pooling model on the node task: before, a shape
    error inside the loss or an IndexError."""
    ds, split = graphs
    graphdl.seed_everything(0)
    node_model = graphdl.models.create("gnn", layer="gcn", in_channels=8, hidden_channels=8, out_channels=3,
                                       num_layers=2)
    with pytest.raises(ValidationError, match=r"^the graph task needs one output row per graph, but the model gave "
                                              r"shape \(\d+, 3\) for 32 graphs; pool the node embeddings into one "
                                              r"row per graph: graph_gnn, or torch_geometric\.nn\.global_mean_pool"):
        Trainer(node_model, "cross_entropy", "graph", epochs=1, progress=False).fit(ds, split)
    pooled = graphdl.models.create("graph_gnn", layer="gcn", in_channels=1433, hidden_channels=8, out_channels=7,
                                   num_layers=2)
    with pytest.raises(ValidationError, match=r"^the node task needs one output row per node, but the model gave "
                                              r"shape \(1, 7\) for 2708 nodes; a model that pools \(graph_gnn\) "
                                              r"gives one row per graph; use a node-level model such as gnn$"):
        Trainer(pooled, "cross_entropy", "node", epochs=1, progress=False).fit(cora)


@pytest.mark.parametrize("task", ["link", "autoencoder"])
def test_link_tasks_need_one_embedding_row_per_node(task, link_splits):
    pooled = graphdl.models.create("graph_gnn", layer="gcn", in_channels=1433, hidden_channels=8, out_channels=7,
                                   num_layers=2)
    with pytest.raises(ValidationError, match=rf"^the {task} task needs one output row per node, but the model gave "
                                              rf"shape \(1, 7\) for 2708 nodes; a model that pools"):
        Trainer(pooled, task=task, epochs=1, progress=False).fit(None, link_splits)


def test_autoencoder_trains_with_margin_ranking(link_splits):
    """Before, the autoencoder task called it as loss(logits, labels): a TypeError."""
    graphdl.seed_everything(0)
    model = graphdl.models.create("gae", in_channels=1433, hidden_channels=32, out_channels=16)
    result = Trainer(model, graphdl.losses.create("margin_ranking", margin=1.0), "autoencoder", lr=0.01, epochs=30,
                     seed=0, progress=False).fit(None, link_splits)
    assert result.test["test_rocauc"] > 0.8


def test_a_regression_loss_is_scored_by_rmse_unless_a_metric_is_given(cora, shared_data):
    """Before, the node task scored regression values by accuracy (about 0) and the graph task by ROC-AUC (an
    error at the first evaluation)."""
    from ogb.graphproppred import Evaluator

    data = cora.clone()
    data.y = cora.x.sum(-1)
    graphdl.seed_everything(0)
    model = graphdl.models.create("gnn", layer="gcn", in_channels=1433, hidden_channels=8, out_channels=1,
                                  num_layers=2)
    trainer = Trainer(model, "mse", "node", epochs=3, seed=0, progress=False)
    result = trainer.fit(data)
    pred = trainer.predict()[data.test_mask].view(-1)
    assert result.test == {"test_rmse": pytest.approx(float((pred - data.y[data.test_mask]).pow(2).mean().sqrt()))}
    assert Trainer(gcn(1), "mse", "node", task_kwargs={"metric": "mae"}).task.metric.name == "mae"

    esol = graphdl.datasets.load("ogbg-molesol", root=shared_data)
    graphdl.seed_everything(0)
    model = graphdl.models.create("ogb_mol", num_tasks=1, layer="gin", num_layers=2, hidden_channels=16)
    trainer = Trainer(model, "l1", "graph", epochs=1, seed=0, progress=False)
    result = trainer.fit(esol)
    test = graphdl.datasets.split_indices(esol)["test"]
    official = Evaluator("ogbg-molesol").eval({"y_true": esol.y[test], "y_pred": trainer.predict()[test]})["rmse"]
    assert result.test == {"test_rmse": pytest.approx(official, rel=1e-5)}



def test_hits_at_k_equals_ogbs_evaluator_and_needs_k_negatives():
    """graphdl's hits@K is OGB's (ties count as misses); with fewer than K negatives OGB returns 1.0, which
    graphdl refuses, since such a score would pick every epoch alike."""
    from ogb.linkproppred import Evaluator

    from graphdl.train.metrics import resolve_metric

    gen = torch.Generator().manual_seed(0)
    pos, neg = torch.randn(300, generator=gen), torch.randn(1000, generator=gen)
    pos[:10] = torch.topk(neg, 20).values[-1]  # ties with the 20th negative
    evaluator = Evaluator("ogbl-ddi")
    for k in (1, 20, 100):
        evaluator.K = k
        official = evaluator.eval({"y_pred_pos": pos, "y_pred_neg": neg})[f"hits@{k}"]
        assert resolve_metric(f"hits@{k}")(pos, neg) == pytest.approx(official, abs=1e-7)
    with pytest.raises(ValidationError, match=r"^hits@50 counts the positive pairs scored above the 50 highest-"
                                              r"scored negative pairs, but this split has only 20 negatives; use a K "
                                              r"of at most 20, more negatives, or metric='rocauc'$"):
        resolve_metric("hits@50")(pos, neg[:20])
    for bad in ("hits@0", "hits@x", "hits@-3"):
        with pytest.raises(ConfigError, match=r"write hits@K with an integer K >= 1, e.g. hits@20$"):
            resolve_metric(bad)


def test_f1_is_sklearns_micro_f1_of_logits():
    """Multi-label and binary 0/1 targets against logit > 0 (PyG's PPI example), class labels against the argmax."""
    from sklearn.metrics import f1_score

    from graphdl.train.metrics import resolve_metric

    f1 = resolve_metric("f1")
    gen = torch.Generator().manual_seed(0)
    y, logits = (torch.rand(60, 5, generator=gen) > 0.6).float(), torch.randn(60, 5, generator=gen)
    assert f1(y, logits) == pytest.approx(f1_score(y.numpy(), (logits > 0).numpy(), average="micro"))
    yb, lb = (torch.rand(60, generator=gen) > 0.5).long(), torch.randn(60, 1, generator=gen)
    assert f1(yb, lb) == pytest.approx(f1_score(yb.numpy(), (lb.view(-1) > 0).numpy()))  # the positive class
    yc, lc = torch.randint(0, 4, (60,), generator=gen), torch.randn(60, 4, generator=gen)
    assert f1(yc, lc) == pytest.approx(f1_score(yc.numpy(), lc.argmax(-1).numpy(), average="micro"))
    with pytest.raises(ValidationError, match=r"^f1 scores 0/1 targets \(binary or multi-label\) or class labels"):
        f1(torch.randn(60, 5, generator=gen), logits)


def test_a_task_reused_by_another_trainer_scores_that_trainers_loss(cora):
    """A metric loss switches the task's acc to knn_acc; before, a later Trainer with cross_entropy on the same
    task instance kept scoring its logits by k-NN accuracy."""
    task = graphdl.train.NodeTask(metric="acc")
    assert set(Trainer(gcn(), "supcon", task, epochs=1, progress=False).fit(cora).test) == {"test_knn_acc"}
    assert set(Trainer(gcn(), "cross_entropy", task, epochs=1, progress=False).fit(cora).test) == {"test_acc"}
    graph_task = graphdl.train.GraphTask()
    assert Trainer(graph_gnn(1), "mse", graph_task, progress=False).task.metric.name == "rmse"
    assert Trainer(graph_gnn(1), "bce_with_logits", graph_task, progress=False).task.metric.name == "rocauc"
