"""check_dataset on collated datasets (graphs without x, edge attributes, subsets) checks each graph as
``dataset[i]`` gives it, the model ends in the state of the epoch the result reports, NaN scores included, and
a JSON metric log stays strict JSON."""

import copy
import json
from math import inf, nan
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data, InMemoryDataset

import graphdl
from graphdl import validate
from graphdl.errors import ValidationError
from graphdl.train import Callback, Trainer
from graphdl.train.metrics import Metric


class _Collated(InMemoryDataset):
    """Graphs collated into one storage, as every PyG/OGB ``InMemoryDataset`` keeps them."""

    def __init__(self, graphs: list[Data]) -> None:
        super().__init__(None)
        self.data, self.slices = self.collate(graphs)


def _featureless(nodes: int, edges: list[list[int]], **extra) -> Data:
    """A graph without ``x`` whose node count is given (ogbg-ppa, TU datasets without node features)."""
    return Data(edge_index=torch.tensor(edges, dtype=torch.long).view(2, -1), num_nodes=nodes,
                y=torch.tensor([0]), **extra)


def test_collated_dataset_without_x_is_checked_by_each_graphs_num_nodes():
    # before: store.num_nodes (the sum over the graphs) was taken as one count: RuntimeError from repeat_interleave
    graphs = [_featureless(3, [[0, 1], [1, 2]]), _featureless(4, [[0, 3], [3, 0]])]
    dataset = _Collated(graphs)
    assert [g.num_nodes for g in dataset] == [3, 4]
    validate.check_dataset(dataset, require_y=True, require_nodes=True)
    dataset._data.edge_index[1, 3] = 4  # graph 1 has 4 nodes: index 4 is out of range
    with pytest.raises(ValidationError, match=r"^graph 1 of the dataset: edge_index holds node index \[3, 4\] but the "
                                              r"graph has 4 nodes"):
        validate.check_dataset(dataset)


def test_collated_dataset_without_x_does_not_count_nodes_by_an_edge_attribute():
    # before: the node count of each graph was read off the slices of edge_weight (its edge count): graph 0, 3 nodes
    # and one edge 0 -> 2, was said to have 1 node
    graphs = [_featureless(3, [[0], [2]], edge_weight=torch.tensor([1.0])),
              _featureless(2, [[0, 1], [1, 0]], edge_weight=torch.tensor([1.0, 2.0]))]
    validate.check_dataset(_Collated(graphs), require_nodes=True)


def _graph(nodes: int) -> Data:
    return Data(x=torch.randn(nodes, 4), edge_index=torch.zeros(2, 0, dtype=torch.long), y=torch.tensor([0]))


def test_a_subset_of_a_collated_dataset_is_checked_on_its_own_graphs():
    # dataset[idx] shares the whole storage; before, the graphs it leaves out were checked too, so dropping an
    # empty graph with dataset[idx] (what the error advises) still failed
    dataset = _Collated([_graph(3), _graph(0), _graph(2)])
    with pytest.raises(ValidationError, match=r"^graph 1 of the dataset has no nodes"):
        validate.check_dataset(dataset, require_nodes=True)
    kept = dataset[torch.tensor([0, 2])]
    assert [g.num_nodes for g in kept] == [3, 2]
    validate.check_dataset(kept, require_nodes=True)
    # and a graph it holds is named by its index in the subset, as kept[i] gives it
    with pytest.raises(ValidationError, match=r"^graph 2 of the dataset has no nodes"):
        validate.check_dataset(dataset[[2, 0, 1]], require_nodes=True)

    dataset = _Collated([_graph(3), _graph(2), _graph(2)])
    dataset._data.x[3, 0] = float("nan")  # graph 1's first node
    validate.check_dataset(dataset[[0, 2]])
    with pytest.raises(ValidationError, match=r"^graph 0 of the dataset: x holds NaN or infinite values"):
        validate.check_dataset(dataset[[1, 0]])

    dataset = _Collated([Data(x=torch.randn(2, 4), edge_index=torch.tensor([[0], [1]]), y=torch.tensor([0]))] * 3)
    dataset._data.edge_index[1, 1] = 2  # graph 1's only edge points past its 2 nodes
    validate.check_dataset(dataset[[0, 2]])
    with pytest.raises(ValidationError, match=r"^graph 2 of the dataset: edge_index holds node index \[0, 2\] but the "
                                              r"graph has 2 nodes"):
        validate.check_dataset(dataset[[0, 2, 1]])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_collated_dataset_moved_to_the_gpu_is_checked():
    # InMemoryDataset.to(device) moves the storage but not its slices: the per-edge bound was built on the CPU
    dataset = _Collated([Data(x=torch.randn(2, 4), edge_index=torch.tensor([[0], [1]]), y=torch.tensor([0]))] * 3)
    dataset.to("cuda")
    validate.check_dataset(dataset, require_y=True, require_nodes=True)
    dataset._data.edge_index[1, 1] = 2
    dataset._data.x[5, 0] = float("inf")
    with pytest.raises(ValidationError, match=r"^graph 1 of the dataset: edge_index holds node index \[0, 2\]"):
        validate.check_dataset(dataset)
    dataset._data.edge_index[1, 1] = 1
    with pytest.raises(ValidationError, match=r"^graph 2 of the dataset: x holds NaN or infinite values"):
        validate.check_dataset(dataset)


# ---------------------------------------------------------------------------- callbacks
def _small_graph() -> Data:
    torch.manual_seed(0)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    data = Data(x=torch.randn(8, 4), edge_index=torch.tensor([[0, 1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6, 7]]), y=y)
    data.train_mask = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0], dtype=torch.bool)
    data.val_mask = torch.tensor([0, 0, 0, 0, 1, 1, 0, 0], dtype=torch.bool)
    data.test_mask = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1], dtype=torch.bool)
    return data


class _States(Callback):
    """The model's weights after each epoch."""

    def __init__(self) -> None:
        self.states: list[dict[str, torch.Tensor]] = []

    def on_epoch_end(self, trainer, logs) -> None:
        self.states.append(copy.deepcopy(trainer.model.state_dict()))


@pytest.mark.parametrize("scores, best_epoch", [([nan, nan, nan], 0), ([nan, -inf, -inf], 0),
                                                ([nan, 0.5, nan, 0.7, 0.7], 3)],
                         ids=["all-nan", "nan-then-the-worst-value", "nan-between-scores"])
def test_the_model_ends_in_the_state_of_the_epoch_the_result_reports(scores, best_epoch):
    # before: with a NaN monitored score at every epoch ModelCheckpoint kept no state, so the model ended in the
    # last epoch's weights while the result reported epoch 0 (its figures, its best_epoch)
    calls = iter(range(10_000))
    splits = 3  # the metric is called for train, val and test each epoch: the val call is the second

    def score(y, pred):
        i = next(calls)
        return scores[i // splits] if i % splits == 1 else 0.0

    graphdl.seed_everything(0)
    model = graphdl.models.create("gnn", layer="gcn", in_channels=4, hidden_channels=8, out_channels=3)
    states = _States()
    trainer = Trainer(model, "cross_entropy", graphdl.train.NodeTask(metric=Metric("acc", score)),
                      epochs=len(scores), seed=0, progress=False, device="cpu", callbacks=[states])
    result = trainer.fit(_small_graph())
    assert [h["val_acc"] for h in result.history] == pytest.approx(scores, nan_ok=True)
    assert result.best_epoch == best_epoch  # NaN ranks as the worst score; ties go to the first epoch
    final = trainer.model.state_dict()
    assert all(torch.equal(final[k], states.states[best_epoch][k]) for k in final)


def test_a_json_metric_log_is_strict_json(tmp_path: Path) -> None:
    """A NaN metric was written as bare NaN, which strict JSON readers (jq, JavaScript) refuse."""
    from graphdl.train.callbacks import MetricLogger

    MetricLogger(tmp_path / "log.json").write([{"epoch": 0, "val_loss": float("nan"), "val_acc": 0.5,
                                                "train_loss": float("inf")}])
    text = (tmp_path / "log.json").read_text(encoding="utf-8")
    rows = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert rows == [{"epoch": 0, "val_loss": None, "val_acc": 0.5, "train_loss": None}]
