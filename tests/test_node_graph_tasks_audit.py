"""Audit of the node and graph tasks against hand-written PyG / OGB loops: missing (NaN) targets in mini-batches,
one-graph training batches through BatchNorm, and integer class labels of other dtypes than int64."""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import global_mean_pool

from graphdl.errors import ValidationError
from graphdl.train import GraphTask, NodeTask, Trainer

pytestmark = pytest.mark.filterwarnings("ignore:the 'train' and 'val' splits share")


class _Features(nn.Module):
    """``forward(x)``: a model of the node features alone, so a sampled batch's seed outputs equal the full graph's."""

    def __init__(self, out: int = 1) -> None:
        super().__init__()
        self.lin = nn.Linear(3, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


class _Pooled(nn.Module):
    """A graph model: node features, mean-pooled per graph, optionally through BatchNorm over the graphs."""

    def __init__(self, out: int, batchnorm: bool = False) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 4)
        self.norm = nn.BatchNorm1d(4) if batchnorm else nn.Identity()
        self.head = nn.Linear(4, out)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(global_mean_pool(self.lin(x), batch)))


def _graphs(count: int, targets: int, unlabelled: range = range(0), seed: int = 0) -> list[Data]:
    gen = torch.Generator().manual_seed(seed)
    graphs = []
    for i in range(count):
        y = torch.randint(0, 2, (1, targets), generator=gen).float()
        if i in unlabelled:
            y[:] = float("nan")
        graphs.append(Data(x=torch.randn(4, 3, generator=gen), edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]), y=y))
    return graphs


def test_node_mini_batch_train_loss_weighs_batches_by_their_labelled_seeds() -> None:
    """Sampled batches were weighted by their seed nodes while NaN targets are left out of each batch's loss: the
    epoch's train_loss was 2.3612 where the mean loss over the labelled training nodes is 2.1348."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 3, generator=gen), torch.randn(40, 1, generator=gen)
    y[::3] = float("nan")
    data = Data(x=x, edge_index=torch.randint(0, 40, (2, 120), generator=gen), y=y)
    train = torch.arange(30)
    torch.manual_seed(0)
    model = _Features()
    trainer = Trainer(model, "mse", NodeTask(num_neighbors=[2], batch_size=7, metric="rmse"), optimizer="sgd",
                      lr=1e-30, epochs=1, seed=0, progress=False)  # weights do not move: every batch sees one model
    history = trainer.fit(data, {"train": train, "val": torch.arange(30, 40)}).history
    with torch.no_grad():
        labelled = ~torch.isnan(y[train])
        expected = nn.functional.mse_loss(model(x)[train][labelled], y[train][labelled]).item()
    assert history[0]["train_loss"] == pytest.approx(expected, rel=1e-6)


def test_a_node_mini_batch_of_unlabelled_seeds_does_not_stop_training() -> None:
    """A batch whose seeds are all unlabelled had a NaN loss (the mean of no entries), which made the epoch's
    train_loss NaN and the fit fail; it now counts for nothing, as in the reference loop its zero gradient does."""
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(20, 3, generator=gen), torch.randn(20, generator=gen)
    y[1:10] = float("nan")  # of the 10 training nodes one is labelled: one of the two batches has no label
    data = Data(x=x, edge_index=torch.randint(0, 20, (2, 40), generator=gen), y=y)
    torch.manual_seed(0)
    model = _Features()
    task = NodeTask(num_neighbors=[2], batch_size=5, metric="rmse", shuffle_seed=0)
    trainer = Trainer(model, "mse", task, optimizer="sgd", lr=1e-30, epochs=1, seed=0, progress=False)
    history = trainer.fit(data, {"train": torch.arange(10), "val": torch.arange(10, 20)}).history
    with torch.no_grad():
        out = model(x).view(-1)
    assert history[0]["train_loss"] == pytest.approx((out[0] - y[0]).pow(2).item(), rel=1e-6)
    val = nn.functional.mse_loss(out[10:], y[10:]).item()
    assert task.split_loss(model, "val", nn.MSELoss()) == pytest.approx(val, rel=1e-6)
    unlabelled = NodeTask(metric="rmse")
    unlabelled.setup(data, {"train": torch.arange(10, 20), "val": torch.arange(1, 10)})
    assert math.isnan(unlabelled.split_loss(model, "val", nn.MSELoss()))  # no labelled node: no loss, not 0


def test_a_graph_batch_of_unlabelled_molecules_trains_as_the_ogb_loop() -> None:
    """OGB's loop takes the loss of the labelled entries (y == y) of each batch; a batch of molecules with no label
    gave a NaN loss, which (weighted by its 0 labelled targets) still made the epoch's train_loss NaN: the fit
    failed with 'training loss became nan'. Its gradient is zero, as the reference's."""
    graphs = _graphs(8, 2, unlabelled=range(0, 4))
    torch.manual_seed(0)
    model = _Pooled(2)
    task = GraphTask(batch_size=2, shuffle_seed=0)
    trainer = Trainer(model, "bce_with_logits", task, optimizer="sgd", lr=1e-30, epochs=1, seed=0, progress=False,
                      monitor="val_loss")
    history = trainer.fit(graphs, {"train": torch.arange(8), "val": torch.arange(8)}).history
    batch = Batch.from_data_list(graphs)
    with torch.no_grad():
        out, labelled = model(batch.x, batch.edge_index, batch.batch), batch.y == batch.y
        expected = nn.functional.binary_cross_entropy_with_logits(out[labelled], batch.y[labelled]).item()
    assert history[0]["train_loss"] == pytest.approx(expected, rel=1e-6)
    assert history[0]["val_loss"] == pytest.approx(expected, rel=1e-6)

    empty = Batch.from_data_list(graphs[:2])
    model.zero_grad()
    loss = task.train_loss(model.train(), empty, nn.BCEWithLogitsLoss())
    loss.backward()
    assert loss.item() == 0 and task.batch_weight(empty) == 0
    assert all(torch.equal(p.grad, torch.zeros_like(p)) for p in model.parameters())


def test_a_last_training_batch_of_one_graph_through_batchnorm_is_named_with_a_batch_size_that_fits() -> None:
    """16 graphs in batches of 5 leave a last batch of one graph, whose pooled row BatchNorm cannot normalise:
    torch's ValueError came from deep inside the model, and the one-node check advised a drop_last the task lacks."""
    graphs = _graphs(16, 1)
    trainer = Trainer(_Pooled(1, batchnorm=True), "bce_with_logits", GraphTask(batch_size=5), epochs=1,
                      progress=False)
    message = ("a training batch of one graph cannot pass the model's BatchNorm (it needs more than one value per "
               "channel): 16 training graphs in batches of 5 leave a last batch of one graph; use a batch_size that "
               "does not (e.g. batch_size=6), or use a model without BatchNorm")
    with pytest.raises(ValidationError, match=f"^{re.escape(message)}$"):
        trainer.fit(graphs, {"train": torch.arange(16), "val": torch.arange(4)})
    # a batch size that leaves no graph alone trains
    Trainer(_Pooled(1, batchnorm=True), "bce_with_logits", GraphTask(batch_size=6), epochs=1,
            progress=False).fit(graphs, {"train": torch.arange(16), "val": torch.arange(4)})


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16])
def test_integer_class_labels_of_any_width_train_torchs_cross_entropy_as_int64_labels(dtype: torch.dtype) -> None:
    """NumPy's int32 labels failed inside torch's CrossEntropyLoss ('expected target dtype to be Long or Byte, but
    got Int'), though graphdl's cross_entropy took them: the task now gives torch's losses int64 class labels."""
    gen = torch.Generator().manual_seed(2)
    x, y = torch.randn(20, 3, generator=gen), torch.randint(0, 3, (20,), generator=gen)
    data = Data(x=x, edge_index=torch.randint(0, 20, (2, 40), generator=gen), y=y.to(dtype))
    torch.manual_seed(0)
    model = _Features(3)
    task = NodeTask()
    trainer = Trainer(model, nn.CrossEntropyLoss(), task, optimizer="sgd", lr=1e-30, epochs=1, seed=0,
                      progress=False)
    history = trainer.fit(data, {"train": torch.arange(12), "val": torch.arange(12, 20)}).history
    with torch.no_grad():
        expected = nn.functional.cross_entropy(model(x)[:12], y[:12]).item()
    assert history[0]["train_loss"] == pytest.approx(expected, rel=1e-6)

    graphs = [Data(x=torch.randn(3, 3, generator=gen), edge_index=torch.tensor([[0, 1], [1, 2]]),
                   y=torch.tensor([i % 3], dtype=dtype)) for i in range(6)]
    torch.manual_seed(0)
    pooled = _Pooled(3)
    graph_history = Trainer(pooled, nn.CrossEntropyLoss(), GraphTask(batch_size=3, metric="acc"), optimizer="sgd",
                            lr=1e-30, epochs=1, seed=0, progress=False).fit(
        graphs, {"train": torch.arange(6), "val": torch.arange(6)}).history
    batch = Batch.from_data_list(graphs)
    with torch.no_grad():
        reference = nn.functional.cross_entropy(pooled(batch.x, batch.edge_index, batch.batch), batch.y.long())
    assert graph_history[0]["train_loss"] == pytest.approx(reference.item(), rel=1e-6)
