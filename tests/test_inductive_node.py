"""The inductive_node task: node targets on several graphs, each split its own graphs (PyG's PPI setting)."""

import copy

import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score
from torch_geometric.data import Batch, Data
from torch_geometric.datasets import FakeDataset

import graphdl
from graphdl.errors import ValidationError
from graphdl.train import ModelCheckpoint, Trainer


def multilabel_graphs(n, seed):
    """Graphs whose 3 node labels are learnable from the node features (signs of 3 feature sums)."""
    graphdl.seed_everything(seed)
    graphs = []
    for g in FakeDataset(num_graphs=n, avg_num_nodes=15, num_channels=8, task="node"):
        graphs.append(Data(x=g.x, edge_index=g.edge_index,
                           y=torch.stack([g.x[:, :3].sum(-1), g.x[:, 3:5].sum(-1), g.x[:, 5:].sum(-1)], -1).gt(0)
                           .float()))
    return graphs


@pytest.fixture(scope="module")
def ppi_like():
    return {"train": multilabel_graphs(6, 0), "val": multilabel_graphs(2, 1), "test": multilabel_graphs(2, 2)}


def model():
    graphdl.seed_everything(0)
    return graphdl.models.create("gnn", layer="sage", in_channels=8, hidden_channels=16, out_channels=3,
                                 num_layers=2, dropout=0.0)


def test_training_equals_a_hand_written_ppi_loop(ppi_like):
    """All training graphs in one batch (their shuffled order changes only the order of float sums): after 5
    epochs the weights equal PyG's examples/ppi.py loop, and val f1 is sklearn's micro-F1 over every node of the
    val graphs."""
    ours = model()
    ref = copy.deepcopy(ours)
    trainer = Trainer(ours, "bce_with_logits", "inductive_node", task_kwargs={"metric": "f1", "batch_size": 6},
                      lr=0.01, epochs=5, seed=0, progress=False, callbacks=[ModelCheckpoint(restore_best=False)])
    result = trainer.fit(None, ppi_like)

    opt = torch.optim.Adam(ref.parameters(), lr=0.01)
    batch = Batch.from_data_list(ppi_like["train"])
    for _ in range(5):
        ref.train()
        opt.zero_grad()
        F.binary_cross_entropy_with_logits(ref(batch.x, batch.edge_index), batch.y).backward()
        opt.step()
    for a, b in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b)
    ref.eval()
    val = Batch.from_data_list(ppi_like["val"])
    with torch.no_grad():
        expected = f1_score(val.y.numpy(), (ref(val.x, val.edge_index) > 0).numpy(), average="micro")
    assert result.history[-1]["val_f1"] == pytest.approx(expected)
    assert result.best["val_f1"] > 0.6  # learnable: the labels are feature signs


def test_mini_batches_learn_and_predictions_come_per_node(ppi_like):
    trainer = Trainer(model(), "bce_with_logits", "inductive_node", task_kwargs={"metric": "f1"}, lr=0.01,
                      epochs=30, seed=0, progress=False)
    result = trainer.fit(None, ppi_like)
    assert result.test["test_f1"] > 0.8
    new = [Data(x=g.x, edge_index=g.edge_index) for g in ppi_like["test"]]  # unlabelled
    out = trainer.predict(new)
    assert out.shape == (sum(g.num_nodes for g in new), 3)
    with torch.no_grad():
        trainer.model.eval()
        torch.testing.assert_close(out[: new[0].num_nodes], trainer.model(new[0].x, new[0].edge_index))


def test_class_labels_and_index_splits_into_one_dataset():
    graphdl.seed_everything(0)
    dataset = FakeDataset(num_graphs=8, avg_num_nodes=12, num_channels=4, num_classes=3, task="node")
    net = graphdl.models.create("gnn", layer="gcn", in_channels=4, hidden_channels=8, out_channels=3)
    trainer = Trainer(net, "cross_entropy", "inductive_node", epochs=2, seed=0, progress=False)
    result = trainer.fit(dataset, {"train": torch.arange(6), "valid": torch.tensor([6]), "test": torch.tensor([7])})
    out = trainer.predict(dataset[7:8])
    assert result.test == {"test_acc": pytest.approx(float((out.argmax(-1) == dataset[7].y).float().mean()))}


def test_bad_splits_are_named(ppi_like):
    trainer = Trainer(model(), "bce_with_logits", "inductive_node", epochs=1, progress=False)
    with pytest.raises(ValidationError, match=r"^splits\['train'\] is one graph; the inductive_node task takes a "
                                              r"dataset or a list of graphs per split \(for one graph split by node "
                                              r"masks use task='node'\)$"):
        trainer.fit(None, {"train": ppi_like["train"][0]})
    graph_level = [Data(x=g.x, edge_index=g.edge_index, y=torch.tensor([[1.0, 0.0, 1.0]])) for g in ppi_like["val"]]
    with pytest.raises(ValidationError, match=r"^splits\['val'\]: graph 0 has y with 1 rows but \d+ nodes; the "
                                              r"inductive_node task needs one target row per node \(graph-level "
                                              r"targets: task='graph'\)$"):
        trainer.fit(None, {"train": ppi_like["train"], "val": graph_level})
    with pytest.raises(ValidationError, match=r"^the inductive_node task needs splits=\{'train': graphs"):
        trainer.fit(ppi_like["train"])
    # one graph as the dataset of index splits: the message named "the graph task"
    with pytest.raises(ValidationError, match=r"^the inductive_node task needs a dataset of graphs \(a PyG dataset "
                                              r"or a list of Data\), got one Data graph"):
        trainer.fit(ppi_like["train"][0], {"train": torch.tensor([0])})


def test_the_node_task_points_a_dataset_of_graphs_here(ppi_like):
    with pytest.raises(ValidationError, match=r"^the node task needs one torch_geometric.data.Data graph, got list; "
                                              r"for a dataset of one graph pass dataset\[0\], for node targets on "
                                              r"several graphs \(PPI-style\) use task='inductive_node'$"):
        Trainer(model(), "bce_with_logits", "node", epochs=1, progress=False).fit(ppi_like["train"])


def test_metric_and_regression_losses_are_scored_by_their_metrics():
    """A metric loss's embeddings by k-NN accuracy (fit on the training graphs' nodes), a regression by rmse."""
    from sklearn.neighbors import KNeighborsClassifier

    graphdl.seed_everything(0)
    dataset = FakeDataset(num_graphs=8, avg_num_nodes=12, num_channels=4, num_classes=3, task="node")
    split = {"train": torch.arange(6), "valid": torch.tensor([6]), "test": torch.tensor([7])}
    net = graphdl.models.create("gnn", layer="gcn", in_channels=4, hidden_channels=8, out_channels=8)
    trainer = Trainer(net, "supcon", "inductive_node", epochs=2, seed=0, progress=False)
    result = trainer.fit(dataset, split)
    z_train, z_test = trainer.predict(dataset[:6]), trainer.predict(dataset[7:8])
    knn = KNeighborsClassifier(5).fit(F.normalize(z_train, dim=-1).numpy(),
                                      torch.cat([g.y for g in dataset[:6]]).numpy())
    expected = knn.score(F.normalize(z_test, dim=-1).numpy(), dataset[7].y.numpy())
    assert result.test == {"test_knn_acc": pytest.approx(expected)}

    values = [Data(x=g.x, edge_index=g.edge_index, y=g.x.sum(-1, keepdim=True)) for g in dataset]
    net = graphdl.models.create("gnn", layer="gcn", in_channels=4, hidden_channels=8, out_channels=1)
    trainer = Trainer(net, "mse", "inductive_node", epochs=2, seed=0, progress=False)
    result = trainer.fit(None, {"train": values[:6], "val": values[6:7], "test": values[7:]})
    pred = trainer.predict(values[7:])
    assert result.test == {"test_rmse": pytest.approx(float((pred - values[7].y).pow(2).mean().sqrt()))}
