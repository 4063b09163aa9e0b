"""The contrastive task: GRACE views and DGI corruption through the shared Trainer, scored by k-NN accuracy."""

import copy
import re

import pytest
import torch
from torch_geometric.utils import dropout_edge, mask_feature

import graphdl
from graphdl.errors import ConfigError
from graphdl.train import Trainer


@pytest.fixture(scope="module")
def cora(shared_data):
    return graphdl.datasets.load("cora", root=shared_data)[0]


def encoder(out_channels=32):
    graphdl.seed_everything(0)
    return graphdl.models.create("gnn", layer="gcn", in_channels=1433, hidden_channels=32,
                                 out_channels=out_channels, num_layers=2)


def test_grace_step_is_two_masked_views_of_the_graph(cora):
    """The Trainer's first GRACE loss equals the hand-written step: view 1 (features masked 0.3, edges dropped
    0.2) and view 2 (0.4, 0.4) encoded in turn, then loss(z1, z2)."""
    model = encoder()
    ref = copy.deepcopy(model)
    loss = graphdl.losses.create("grace", temperature=0.4)
    result = Trainer(model, loss, "contrastive", epochs=1, seed=3, progress=False).fit(cora)

    graphdl.seed_everything(3)
    views = []
    for p_feature, p_edge in ((0.3, 0.2), (0.4, 0.4)):
        x, _ = mask_feature(cora.x, p=p_feature, mode="col")
        edge_index, _ = dropout_edge(cora.edge_index, p=p_edge)
        views.append(ref.train()(x, edge_index))
    assert result.history[0]["train_loss"] == pytest.approx(loss(*views).item(), rel=1e-6)


def test_dgi_step_contrasts_the_graph_with_shuffled_features(cora):
    model = encoder()
    ref = copy.deepcopy(model)
    loss = graphdl.losses.create("dgi", hidden_channels=32)
    ref_loss = copy.deepcopy(loss)
    result = Trainer(model, loss, "contrastive", epochs=1, seed=3, progress=False).fit(cora)

    graphdl.seed_everything(3)
    perm = torch.randperm(cora.num_nodes)
    ref.train()
    pos, neg = ref(cora.x, cora.edge_index), ref(cora.x[perm], cora.edge_index)
    assert result.history[0]["train_loss"] == pytest.approx(ref_loss(pos, neg).item(), rel=1e-6)


def test_dgi_embeddings_beat_the_untrained_encoder(cora):
    untrained = Trainer(encoder(), graphdl.losses.create("dgi", hidden_channels=32), "contrastive", progress=False)
    before = untrained.evaluate(cora, split="test")["test_knn_acc"]
    result = Trainer(encoder(), graphdl.losses.create("dgi", hidden_channels=32), "contrastive", lr=0.001,
                     epochs=40, seed=0, progress=False).fit(cora)
    assert set(result.test) == {"test_knn_acc"}
    assert result.test["test_knn_acc"] > before + 0.05


def test_contrastive_task_refuses_other_losses_and_bad_rates():
    with pytest.raises(ConfigError, match=r"^the contrastive task trains self-supervised objectives: 'grace' \(two "
                                          r"views\) or 'dgi' \(a corrupted graph\), but 'cross_entropy' is not one"):
        Trainer(torch.nn.Linear(4, 4), "cross_entropy", "contrastive", progress=False)
    for bad in ((0.2, 1.5), 1.5, "0.2", (0.1, 0.2, 0.3)):
        message = r"^the contrastive task's drop_edge must be a rate in \[0, 1\) or two of them, one per view, got "
        with pytest.raises(ConfigError, match=message + re.escape(repr(bad)) + "$"):
            Trainer(torch.nn.Linear(4, 4), "grace", "contrastive", task_kwargs={"drop_edge": bad}, progress=False)
    # one rate serves both views (it was "'float' object is not iterable")
    task = Trainer(torch.nn.Linear(4, 4), "grace", "contrastive", task_kwargs={"drop_edge": 0.3, "mask_feature": 0},
                   progress=False).task
    assert task.drop_edge == (0.3, 0.3) and task.mask_feature == (0.0, 0.0)


def test_a_graph_without_labels_trains_with_the_training_loss_as_monitor(cora):
    """Self-supervised training needs no labels (before, the node task's label and mask checks refused the
    graph); the run equals the labelled one, which only adds the k-NN scores."""
    from torch_geometric.data import Data

    unlabelled = Data(x=cora.x, edge_index=cora.edge_index)
    runs = []
    for data in (cora, unlabelled):
        trainer = Trainer(encoder(), graphdl.losses.create("grace"), "contrastive", epochs=3, seed=0,
                          monitor="train_loss", progress=False)
        runs.append((trainer.fit(data), trainer.predict()))
    (labelled, z), (without, z_without) = runs
    assert [sorted(h) for h in without.history] == [["epoch", "train_loss"]] * 3
    assert [h["train_loss"] for h in without.history] == [h["train_loss"] for h in labelled.history]
    assert torch.equal(z_without, z)
    with pytest.raises(ConfigError, match=r"^the ContrastiveTask has nothing to evaluate on this data \(no labels\), "
                                          r"so 'val_knn_acc' is never logged; select the epoch by the training "
                                          r"loss: monitor='train_loss'$"):
        Trainer(encoder(), graphdl.losses.create("grace"), "contrastive", epochs=1, progress=False).fit(unlabelled)
