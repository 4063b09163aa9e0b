"""Input validation: invalid input raises an error naming the argument, the expectation and what was received;
valid but unusual graphs (no edges, isolated nodes, self loops, duplicate edges, one node) train."""

import warnings

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.datasets import FakeDataset

import graphdl
from graphdl import validate
from graphdl.errors import ConfigError, ValidationError
from graphdl.train import ModelCheckpoint, Trainer


def _model(in_channels=4, out_channels=3, layer="gcn"):
    graphdl.seed_everything(0)
    return graphdl.models.create("gnn", layer=layer, in_channels=in_channels, hidden_channels=8,
                                 out_channels=out_channels, num_layers=2)


def _data(n=6, edge_index=None, **kw):
    data = Data(x=torch.randn(n, 4), edge_index=edge_index if edge_index is not None else torch.tensor([[0, 1], [1, 2]]),
                y=torch.arange(n) % 3, **kw)
    data.train_mask = torch.ones(n, dtype=torch.bool)
    data.val_mask = torch.ones(n, dtype=torch.bool)
    return data


def _fit(data, **kw):
    return Trainer(_model(), epochs=2, progress=False, device="cpu", **kw).fit(data)


# ---------------------------------------------------------------------------- valid but unusual graphs
@pytest.mark.parametrize("layer", ["gcn", "sage", "gat", "gin", "graphconv"])
@pytest.mark.parametrize("graph", ["no_edges", "isolated", "self_loops", "duplicates", "one_node"])
def test_unusual_but_valid_graphs_train(graph, layer):
    edge_index = {
        "no_edges": torch.zeros(2, 0, dtype=torch.long),
        "isolated": torch.tensor([[0, 1], [1, 0]]),  # nodes 2..5 have no edge
        "self_loops": torch.tensor([[0, 1, 2, 3], [0, 1, 2, 4]]),
        "duplicates": torch.tensor([[0, 0, 0, 1], [1, 1, 1, 2]]),
        "one_node": torch.zeros(2, 0, dtype=torch.long),
    }[graph]
    n = 1 if graph == "one_node" else 6
    data = _data(n, edge_index)
    trainer = Trainer(_model(layer=layer), epochs=2, progress=False, device="cpu")
    if graph == "one_node" and layer == "gin":  # GIN's MLP has BatchNorm: it cannot train on one value
        with pytest.raises(ValidationError, match="a training batch of one node cannot pass BatchNorm"):
            trainer.fit(data)
        return
    result = trainer.fit(data)
    assert len(result.history) == 2 and all(v == v for v in result.history[-1].values())  # no NaN


def test_a_dataset_with_an_edgeless_one_node_graph_trains():
    graphs = [Data(x=torch.randn(k, 4), edge_index=torch.zeros(2, 0, dtype=torch.long) if k == 1 else
                   torch.tensor([[0, 1], [1, 0]]), y=torch.tensor([k % 2])) for k in (1, 2, 3, 1, 2, 3)]
    model = graphdl.models.create("graph_gnn", layer="gin", in_channels=4, hidden_channels=8, out_channels=2,
                                  layer_kwargs={"batch_norm": False})
    trainer = Trainer(model, "cross_entropy", "graph", task_kwargs={"batch_size": 2, "metric": "acc"}, epochs=2,
                      progress=False, device="cpu")
    splits = {"train": torch.arange(6), "val": torch.tensor([0, 1]), "test": torch.tensor([2])}
    assert len(trainer.fit(graphs, splits).history) == 2


# ---------------------------------------------------------------------------- invalid graphs
@pytest.mark.parametrize("edge_index, message", [
    (torch.tensor([[0, -1], [1, 2]]), r"edge_index holds node indices in \[-1, 2\] but the graph has 6 nodes"),
    (torch.tensor([[0, 1], [1, 6]]), r"edge_index holds node indices in \[0, 6\] but the graph has 6 nodes "
                                     r"\(valid indices: 0..5\)"),
    (torch.tensor([[0, 1, 2]]), r"edge_index must have shape \(2, num_edges\), got \(1, 3\); .*\.t\(\)"),
    (torch.tensor([[0, 1], [1, 2]], dtype=torch.int32), r"edge_index must have dtype torch.long, got torch.int32"),
    ([[0, 1], [1, 2]], r"edge_index must be a torch.Tensor of shape \(2, num_edges\), got list"),
])
def test_bad_edge_index(edge_index, message):
    with pytest.raises(ValidationError, match=message):
        validate.check_edge_index(edge_index, 6)
    if isinstance(edge_index, torch.Tensor):
        data = _data()
        data.edge_index = edge_index
        with pytest.raises(ValidationError, match=message):
            _fit(data)


@pytest.mark.parametrize("x, message", [
    (torch.full((6, 4), float("nan")), r"x holds NaN or infinite values in 6 rows"),
    (torch.tensor([[float("inf")] * 4] + [[0.0] * 4] * 5), r"x holds NaN or infinite values in 1 rows"),
    (torch.randn(5, 4), r"x has 5 rows but the graph has 6 nodes"),
    (torch.randn(6), r"x must have shape \(num_nodes, num_features\), got \(6,\)"),
])
def test_bad_features(x, message):
    data = _data()
    data.x = x
    if x.size(0) != 6:
        data.num_nodes = 6
    with pytest.raises(ValidationError, match=message):
        validate.check_graph(data)


def test_bad_edge_fields():
    data = _data(edge_weight=torch.ones(3))
    with pytest.raises(ValidationError, match=r"edge_weight has \(3,\) rows but edge_index has 2 edges"):
        validate.check_graph(data)
    data = _data(edge_weight=torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValidationError, match=r"edge_weight holds NaN or infinite values"):
        validate.check_graph(data)
    data = _data(edge_weight=torch.ones(2, 2))
    with pytest.raises(ValidationError, match=r"edge_weight must have shape \(num_edges,\), got \(2, 2\)"):
        validate.check_graph(data)
    data = _data(edge_attr=torch.ones(5, 3))
    with pytest.raises(ValidationError, match=r"edge_attr has \(5,\) rows but edge_index has 2 edges"):
        validate.check_graph(data)


def test_device_mismatch_is_named():
    data = _data()
    data.edge_index = data.edge_index.to("meta")
    with pytest.raises(ValidationError, match=r"edge_index is on meta but x is on cpu; move the whole graph"):
        validate.check_graph(data)
    with pytest.raises(ValidationError, match=r"edge_index is on meta but x is on cpu"):
        _fit(data)
    validate.check_same_device({"x": torch.ones(1), "edge_weight": None})


# ---------------------------------------------------------------------------- splits and targets
def test_mismatched_masks_and_targets():
    data = _data()
    data.train_mask = torch.ones(6)  # float 0/1 "mask": would silently be read as indices 0 and 1
    with pytest.raises(ValidationError, match=r"split 'train' must be a boolean mask or integer indices, "
                                              r"got dtype torch.float32; .*\.bool\(\)"):
        _fit(data)
    data = _data()
    data.val_mask = torch.ones(4, dtype=torch.bool)
    with pytest.raises(ValidationError, match=r"split 'val' mask has 4 entries but there are 6 nodes; a mask needs one entry per node"):
        _fit(data)
    data = _data()
    with pytest.raises(ValidationError, match=r"split 'test' indices must lie in \[0, 5\], got \[0, 9\]"):
        Trainer(_model(), epochs=1, progress=False).fit(data, splits={"train": data.train_mask,
                                                                       "test": torch.tensor([0, 9])})
    with pytest.raises(ValidationError, match=r"splits need a 'train' entry, got 'val'"):
        Trainer(_model(), epochs=1, progress=False).fit(data, splits={"val": data.val_mask})
    data = _data()
    data.y = torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValidationError, match=r"data.y has 4 rows but the graph has 6 nodes"):
        _fit(data)


def test_graph_dataset_checks():
    graphdl.seed_everything(0)
    dataset = FakeDataset(num_graphs=6, avg_num_nodes=5, num_channels=4, num_classes=2, task="graph")
    validate.check_dataset(dataset)
    validate.check_dataset(dataset[torch.tensor([1, 3])])
    store = dataset._data
    n0 = int(dataset.slices["x"][1])
    e1 = int(dataset.slices["edge_index"][1])  # first edge of graph 1: point it past graph 1's nodes
    n1 = int(dataset.slices["x"][2]) - n0
    store.edge_index[1, e1] = n1
    with pytest.raises(ValidationError, match=rf"graph 1 of the dataset: edge_index holds node index .* but the "
                                              rf"graph has {n1} nodes"):
        validate.check_dataset(dataset)
    graphs = [Data(x=torch.randn(2, 4), edge_index=torch.tensor([[0], [1]]), y=torch.tensor([0])),
              Data(x=torch.randn(2, 4), edge_index=torch.tensor([[0], [2]]), y=torch.tensor([1]))]
    with pytest.raises(ValidationError, match=r"graph 1 of the dataset: edge_index holds node indices in \[0, 2\]"):
        validate.check_dataset(graphs)
    with pytest.raises(ValidationError, match="the dataset holds no graphs"):
        validate.check_dataset([])
    with pytest.raises(ValidationError, match=r"splits\['test'\] indices must lie in \[0, 1\], got \[0, 5\]"):
        graphdl.train.GraphTask().setup(graphs[:1] * 2, {"train": torch.tensor([0]), "test": torch.tensor([0, 5])})
    with pytest.raises(ValidationError, match=r"splits\['train'\] must be a boolean mask or integer indices, got "
                                              r"dtype torch.float32"):
        graphdl.train.GraphTask().setup(graphs[:1] * 2, {"train": torch.tensor([0.0])})
    with pytest.raises(ValidationError, match="the 'train' split is empty"):
        graphdl.train.GraphTask().setup(graphs[:1] * 2, {"train": torch.zeros(0, dtype=torch.long)})
    with pytest.raises(ValidationError, match=r"^the 'val' split is empty; give it graphs, or pass splits without "
                                              r"it$"):  # before: a RuntimeError from torch.cat at the first evaluation
        graphdl.train.GraphTask().setup(graphs[:1] * 2, {"train": torch.tensor([0]),
                                                         "valid": torch.zeros(0, dtype=torch.long)})


def test_debug_mode_checks_every_call(monkeypatch):
    data = _data()
    trainer = Trainer(_model(), epochs=1, progress=False, device="cpu")
    trainer.fit(data)
    trainer.task.data.edge_index = torch.tensor([[0, 1], [1, 99]])  # corrupted after setup
    monkeypatch.setattr(validate, "DEBUG", True)
    with pytest.raises(ValidationError, match=r"edge_index holds node indices in \[0, 99\]"):
        trainer.evaluate(split="val")
    validate.set_debug(False)
    assert validate.DEBUG is False


def test_checkpoint_from_a_different_model_class(tmp_path):
    data = _data()
    Trainer(_model(), epochs=1, progress=False, device="cpu", callbacks=[ModelCheckpoint(tmp_path)]).fit(data)
    graphdl.seed_everything(0)
    other = graphdl.models.create("link_gnn", layer="gcn", in_channels=4, hidden_channels=8, out_channels=3)
    with pytest.raises(ConfigError, match=r"checkpoint .*last.pt holds a graphdl.models.gnn.GNN, not a "
                                          r"graphdl.models.gnn.LinkGNN"):
        Trainer(other, epochs=2, progress=False, device="cpu").fit(data, resume_from=tmp_path / "last.pt")


def test_bad_trainer_devices():
    with pytest.raises(ConfigError, match=r"device must be a torch device such as 'cpu', 'cuda' or 'cuda:1', "
                                          r"got 'gpu'"):
        Trainer(_model(), device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"device 'cuda:0' was asked for but CUDA is not available"):
            Trainer(_model(), device="cuda:0")


def test_graph_datasets_with_an_empty_graph_or_another_feature_width_are_named():
    from torch_geometric.data import InMemoryDataset

    def graph(nodes: int, features: int = 4) -> Data:
        return Data(x=torch.randn(nodes, features), edge_index=torch.zeros(2, 0, dtype=torch.long),
                    y=torch.tensor([0]))

    graphs = [graph(3), graph(2), graph(0)]
    # pooling dropped the empty graph's row: the task then blamed the model for too few outputs
    message = r"^graph 2 of the dataset has no nodes; drop it \(pooling gives a graph without nodes no output row"
    with pytest.raises(ValidationError, match=message):
        validate.check_dataset(graphs, require_nodes=True)
    validate.check_dataset(graphs)  # node-level tasks pool nothing: an empty graph does no harm there

    class Collated(InMemoryDataset):
        def __init__(self, items):
            super().__init__(None)
            self.data, self.slices = self.collate(items)

    with pytest.raises(ValidationError, match=message):
        validate.check_dataset(Collated(graphs), require_nodes=True)
    validate.check_dataset(Collated(graphs))
    validate.check_dataset(Collated(graphs[:2]), require_nodes=True)
    with pytest.raises(ValidationError) as info:  # torch.cat failed inside PyG's collate
        validate.check_dataset([graph(3), graph(2, features=5)])
    assert str(info.value) == ("graph 1 of the dataset has node features x of shape (2, 5) but graph 0 has (3, 4); "
                               "batching stacks the features, so give every graph the same number of features per "
                               "node")


def test_train_split_overlapping_a_held_out_split_warns():
    data = _data()
    splits = {"train": torch.tensor([0, 1, 2]), "val": torch.tensor([2, 3]), "test": torch.tensor([4, 5])}
    with pytest.warns(UserWarning, match=r"^the 'train' and 'val' splits share 1 nodes, so the 'val' scores measure "
                                         r"fit rather than generalisation; pass disjoint splits$"):
        graphdl.train.NodeTask().setup(data, splits)
    graphs = [Data(x=torch.randn(2, 4), edge_index=torch.tensor([[0], [1]]), y=torch.tensor([i % 2]))
              for i in range(4)]
    mask = torch.tensor([True, True, True, False])
    with pytest.warns(UserWarning, match=r"^the 'train' and 'test' splits share 2 graphs"):
        graphdl.train.GraphTask().setup(graphs, {"train": mask, "test": torch.tensor([1, 2, 3])})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graphdl.train.GraphTask().setup(graphs, {"train": mask, "test": torch.tensor([3])})
