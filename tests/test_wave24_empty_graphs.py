"""Graphs without nodes in a batch: graph_gnn gives one row per graph wherever they sit (PyG's pooling ``size``,
passed as ``batch_size`` by the tasks), its virtual node counts them, and the graph task names them."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data, InMemoryDataset
from torch_geometric.nn import aggr, global_mean_pool
from torch_geometric.nn.models import GIN

from graphdl.bench.ogb_reference import ReferenceOGBMol, load_reference_into
from graphdl.errors import ValidationError
from graphdl.models.gnn import GNN, GraphGNN
from graphdl.models.ogb_mol import ogb_mol
from graphdl.train import GraphTask
from graphdl.train.inductive import InductiveNodeTask
from graphdl.train.tasks import _call, model_inputs


def _graph(n: int, seed: int, width: int = 4) -> Data:
    gen = torch.Generator().manual_seed(seed)
    src = torch.arange(max(n - 1, 0))
    ei = torch.cat([torch.stack([src, src + 1]), torch.stack([src + 1, src])], dim=1)
    return Data(x=torch.randn(n, width, generator=gen), edge_index=ei, y=torch.tensor([[float(n % 2)]]))


def _molecule(n: int, seed: int) -> Data:
    from ogb.utils.features import get_atom_feature_dims, get_bond_feature_dims

    gen = torch.Generator().manual_seed(seed)
    x = torch.stack([torch.randint(0, d, (n,), generator=gen) for d in get_atom_feature_dims()], dim=1)
    src = torch.arange(max(n - 1, 0))
    ei = torch.cat([torch.stack([src, src + 1]), torch.stack([src + 1, src])], dim=1)
    half = torch.stack([torch.randint(0, d, (src.numel(),), generator=gen) for d in get_bond_feature_dims()], dim=1)
    return Data(x=x, edge_index=ei, edge_attr=torch.cat([half, half]), y=torch.rand(1, 2, generator=gen))


POOLS = [lambda: "mean", lambda: "sum", lambda: "max", lambda: aggr.Set2Set(8, 2),
         lambda: aggr.AttentionalAggregation(nn.Linear(8, 1))]


@pytest.mark.parametrize("virtual_node", [False, True])
@pytest.mark.parametrize("pool", POOLS, ids=["mean", "sum", "max", "set2set", "attention"])
def test_graph_gnn_gives_a_row_to_an_empty_last_graph(pool, virtual_node: bool) -> None:
    torch.manual_seed(0)
    kw = {"virtual_node": True, "node_encoder": nn.Linear(4, 8)} if virtual_node else {"in_channels": 4}
    model = GraphGNN(1, pool=pool(), layer="gcn", hidden_channels=8, **kw).eval()
    a, b, empty = _graph(3, 1), _graph(2, 2), _graph(0, 3)
    last = _call(model, Batch.from_data_list([a, b, empty]))
    middle = _call(model, Batch.from_data_list([a, empty, b]))  # PyG's pooling gave the middle one its row
    first = _call(model, Batch.from_data_list([empty, a, b]))
    assert last.shape == (3, 1)
    torch.testing.assert_close(last, middle[[0, 2, 1]])
    torch.testing.assert_close(last, first[[1, 2, 0]])
    batch = Batch.from_data_list([a, b, empty])  # called directly: batch_size is PyG's models' argument
    torch.testing.assert_close(model(batch.x, batch.edge_index, batch=batch.batch, batch_size=3), last)


def test_ogb_mol_with_an_empty_last_graph_matches_the_official_model_on_it_in_the_middle() -> None:
    """OGB's GNN gives an empty graph in the middle of a batch its row (and its virtual node a BatchNorm row), not
    one at the end; graphdl's gives both, so its rows in training mode are OGB's with the empty graph moved."""
    torch.manual_seed(0)
    official = ReferenceOGBMol(num_tasks=2, gnn_type="gin", virtual_node=True, emb_dim=16, num_layer=3, drop_ratio=0.0)
    ours = ogb_mol(num_tasks=2, layer="gin", virtual_node=True, hidden_channels=16, num_layers=3, dropout=0.0)
    load_reference_into(ours, official)
    a, b, c, empty = _molecule(4, 1), _molecule(3, 2), _molecule(5, 3), _molecule(0, 4)
    official.train(), ours.train()
    expected = official(Batch.from_data_list([a, b, empty, c]))
    got = _call(ours, Batch.from_data_list([a, b, c, empty]))
    torch.testing.assert_close(got, expected[[0, 1, 3, 2]], rtol=1e-5, atol=1e-5)
    # without empty graphs the number of graphs changes nothing: bit for bit the call without it
    full = Batch.from_data_list([a, b, c])
    torch.manual_seed(3)
    with_size = ours(full.x, full.edge_index, full.edge_attr, batch=full.batch, batch_size=3)
    torch.manual_seed(3)
    assert torch.equal(with_size, ours(full.x, full.edge_index, full.edge_attr, batch=full.batch))


def test_the_virtual_node_of_a_node_model_counts_an_empty_last_graph() -> None:
    """The inductive_node task's batches: the virtual node's BatchNorm (training mode) normalises over every graph,
    an empty one at the end as one in the middle."""
    torch.manual_seed(0)
    model = GNN("gcn", hidden_channels=8, num_layers=3, dropout=0.0, virtual_node=True,
                node_encoder=nn.Linear(4, 8)).train()
    a, b, c, empty = _graph(3, 1), _graph(2, 2), _graph(4, 3), _graph(0, 4)
    last = _call(model, Batch.from_data_list([a, b, c, empty]))
    middle = _call(model, Batch.from_data_list([a, b, empty, c]))  # the same nodes in the same order
    torch.testing.assert_close(last, middle)


class _Linear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 1)


class _PoolsWithoutSize(_Linear):
    def forward(self, x, edge_index, batch):  # noqa: ANN001, ANN201
        return self.lin(global_mean_pool(x, batch))


class _PoolsWithSize(_Linear):
    def forward(self, x, edge_index, batch, batch_size=None):  # noqa: ANN001, ANN201
        return self.lin(global_mean_pool(x, batch, size=batch_size))


class _Kwargs(_Linear):
    def forward(self, x, edge_index, **kwargs):  # noqa: ANN001, ANN003, ANN201
        return self.lin(x)


def test_model_inputs_gives_the_number_of_graphs_to_a_forward_that_names_batch_size() -> None:
    batch = Batch.from_data_list([_graph(3, 1), _graph(0, 2)])
    assert model_inputs(GraphGNN(1, in_channels=4, hidden_channels=8), batch)["batch_size"] == 2
    assert model_inputs(GIN(4, 8, 2), batch)["batch_size"] == 2  # PyG's models name it so
    assert model_inputs(_PoolsWithSize(), batch)["batch_size"] == 2
    assert "batch_size" not in model_inputs(_Kwargs(), batch)  # it may pass them on to a forward without it
    sampled = _graph(5, 1)
    sampled.batch_size = 2  # a neighbour loader's: the seed nodes, not graphs
    assert "batch_size" not in model_inputs(GraphGNN(1, in_channels=4, hidden_channels=8), sampled)


class _Emptied(InMemoryDataset):
    """Graphs stored with nodes; the transform empties every third (the stored data, which setup checks, has none
    without nodes)."""

    def __init__(self, graphs: list[Data]) -> None:
        super().__init__(None, transform=self._empty_some)
        self.data, self.slices = self.collate(graphs)

    @staticmethod
    def _empty_some(data: Data) -> Data:
        if int(data.key) % 3 != 2:
            return data
        data = data.clone()
        data.x, data.edge_index = data.x[:0], data.edge_index[:, :0]
        return data


def _emptied(num: int = 12) -> _Emptied:
    graphs = [_graph(2 + i % 4, i) for i in range(num)]
    for i, g in enumerate(graphs):
        g.key = torch.tensor([i])
    return _Emptied(graphs)


def test_graph_task_predicts_and_trains_on_batches_that_end_in_an_empty_graph() -> None:
    torch.manual_seed(0)
    data = _emptied()
    assert data[2].num_nodes == 0
    task = GraphTask(metric="rocauc", batch_size=3)
    task.setup(data, {"train": torch.arange(6), "val": torch.arange(6, 9), "test": torch.arange(9, 12)})
    model = GraphGNN(1, in_channels=4, hidden_channels=8, dropout=0.0).eval()
    pred = task.predict(model)  # batches of 3: each ends in a graph without nodes
    alone = torch.cat([_call(model, Batch.from_data_list([data[i]])) for i in range(len(data))])
    torch.testing.assert_close(pred, alone)
    assert set(task.evaluate(model, ["val", "test"])) == {"val_rocauc", "test_rocauc"}
    model.train()
    batch = Batch.from_data_list([data[i] for i in range(3)])
    loss = task.train_loss(model, batch, nn.BCEWithLogitsLoss())
    expected = nn.functional.binary_cross_entropy_with_logits(_call(model, batch), batch.y)
    torch.testing.assert_close(loss, expected)


def test_graph_task_names_empty_graphs_when_a_model_pools_without_their_number() -> None:
    data = _emptied(6)
    task = GraphTask(metric="rocauc", batch_size=3)
    task.setup(data, {"train": torch.arange(6)})
    with pytest.raises(ValidationError, match=r"for 3 graphs, and graph\(s\) 2 of this batch have no nodes: .*"
                                              r"global_mean_pool\(x, batch, size=batch_size\)"):
        task.predict(_PoolsWithoutSize())
    assert task.predict(_PoolsWithSize()).shape == (6, 1)  # the same model, told the number of graphs


def test_inductive_node_task_on_graphs_with_an_empty_one() -> None:
    torch.manual_seed(0)
    graphs = [_graph(3, 1), _graph(2, 2), _graph(0, 3)]
    for g in graphs:
        g.y = torch.arange(g.num_nodes) % 2
    task = InductiveNodeTask(batch_size=3)
    task.setup(None, {"train": graphs})
    model = GNN("gcn", hidden_channels=8, out_channels=2, num_layers=2, virtual_node=True,
                node_encoder=nn.Linear(4, 8)).eval()
    pred = task.predict(model)
    alone = torch.cat([_call(model, Batch.from_data_list([g])) for g in graphs])
    torch.testing.assert_close(pred, alone)


@pytest.mark.parametrize(("batch_size", "match"), [
    (1, r"graph_gnn: batch_size=1 graphs, but batch assigns nodes to graph 1; .* give batch_size=data.num_graphs"),
    (True, r"graph_gnn: batch_size is the number of graphs of the batch, an int >= 0 \(data.num_graphs\), got bool"),
    (2.0, r"graph_gnn: batch_size is the number of graphs .* got float 2.0"),
])
def test_a_wrong_batch_size_is_named(batch_size, match: str) -> None:
    model = GraphGNN(1, in_channels=4, hidden_channels=8)
    batch = Batch.from_data_list([_graph(3, 1), _graph(2, 2)])
    with pytest.raises(ValidationError, match=match):
        model(batch.x, batch.edge_index, batch=batch.batch, batch_size=batch_size)
