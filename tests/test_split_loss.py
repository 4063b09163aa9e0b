"""``<split>_loss``: the training loss on a held-out split, logged when it is monitored (``monitor="val_loss"``,
as Lightning's and Keras's users select epochs)."""

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch
from torch_geometric.datasets import FakeDataset
from torch_geometric.transforms import RandomLinkSplit

import graphdl
from graphdl.errors import ConfigError
from graphdl.train import EarlyStopping, ModelCheckpoint, Trainer


@pytest.fixture(scope="module")
def cora(shared_data):
    return graphdl.datasets.load("cora", root=shared_data)[0]


def gcn(in_channels=1433, out_channels=7, kind="gnn"):
    graphdl.seed_everything(0)
    return graphdl.models.create(kind, layer="gcn", in_channels=in_channels, hidden_channels=16,
                                 out_channels=out_channels, num_layers=2, dropout=0.5)


def test_val_loss_is_the_eval_mode_loss_of_the_val_nodes_and_selects_the_best_epoch(cora):
    model = gcn()
    result = Trainer(model, epochs=6, lr=0.05, seed=0, progress=False, monitor="val_loss",
                     callbacks=[ModelCheckpoint(restore_best=False)]).fit(cora)
    model.eval()
    with torch.no_grad():
        expected = F.cross_entropy(model(cora.x, cora.edge_index)[cora.val_mask], cora.y[cora.val_mask])
    assert result.history[-1]["val_loss"] == pytest.approx(expected.item(), rel=1e-6)
    losses = [h["val_loss"] for h in result.history]
    assert result.best_epoch == losses.index(min(losses))
    assert all("test_loss" not in h for h in result.history)  # only what is monitored is computed

    # computing it changes no training step: the training losses equal a run that does not monitor it
    plain = Trainer(gcn(), epochs=6, lr=0.05, seed=0, progress=False).fit(cora)
    assert [h["train_loss"] for h in plain.history] == [h["train_loss"] for h in result.history]
    assert all("val_loss" not in h for h in plain.history)


def test_a_callback_monitoring_val_loss_gets_it_logged_and_watches_it_go_down(cora):
    stop = EarlyStopping("val_loss", patience=2)
    result = Trainer(gcn(), epochs=200, lr=0.05, seed=0, progress=False, callbacks=[stop]).fit(cora)
    assert result.monitor == "val_acc" and stop.mode == "min"
    losses = [h["val_loss"] for h in result.history]
    assert len(losses) < 200 and min(losses[-2:]) >= stop.best == min(losses)


def test_graph_val_loss_is_the_mean_loss_over_the_val_graphs():
    torch.manual_seed(0)
    ds = FakeDataset(num_graphs=40, avg_num_nodes=8, num_channels=4, num_classes=2, task="graph")
    split = {"train": torch.arange(15, 40), "val": torch.arange(0, 15)}
    model = gcn(4, 2, "graph_gnn")
    # batches of 4 leave a last batch of 3 graphs: a plain mean over batches would weigh its graphs more
    result = Trainer(model, "cross_entropy", "graph", task_kwargs={"batch_size": 4}, epochs=2, seed=0,
                     progress=False, monitor="val_loss", callbacks=[ModelCheckpoint(restore_best=False)]).fit(ds, split)
    model.eval()
    val = Batch.from_data_list(list(ds[:15]))
    with torch.no_grad():
        expected = F.cross_entropy(model(val.x, val.edge_index, batch=val.batch), val.y.view(-1))
    assert result.history[-1]["val_loss"] == pytest.approx(expected.item(), rel=1e-5)


def test_inductive_node_val_loss_is_the_mean_loss_over_the_val_graphs_nodes():
    torch.manual_seed(0)
    graphs = list(FakeDataset(num_graphs=7, avg_num_nodes=12, num_channels=4, num_classes=3, task="node"))
    model = gcn(4, 3)
    result = Trainer(model, task="inductive_node", task_kwargs={"eval_batch_size": 2}, epochs=2, seed=0,
                     progress=False, monitor="val_loss", callbacks=[ModelCheckpoint(restore_best=False)]
                     ).fit(None, {"train": graphs[:4], "val": graphs[4:]})
    model.eval()
    val = Batch.from_data_list(graphs[4:])
    with torch.no_grad():
        expected = F.cross_entropy(model(val.x, val.edge_index), val.y)
    assert result.history[-1]["val_loss"] == pytest.approx(expected.item(), rel=1e-5)


def test_a_task_without_held_out_losses_is_named_before_training(cora):
    with pytest.raises(ConfigError, match=r"^val_loss is monitored, but the LinkTask does not compute held-out "
                                          r"losses \(Task.split_loss\); monitor a metric such as 'val_rocauc', "
                                          r"or 'train_loss'$"):
        Trainer(gcn(out_channels=16), task="link", epochs=1, progress=False, monitor="val_loss").fit(
            None, RandomLinkSplit(num_val=0.1, num_test=0.1)(cora))


def test_the_contrastive_task_does_not_inherit_the_node_tasks_label_loss(cora):
    with pytest.raises(ConfigError, match=r"^val_loss is monitored, but the ContrastiveTask does not compute"):
        Trainer(gcn(out_channels=16), task="contrastive", epochs=1, progress=False, monitor="val_loss").fit(cora)
