"""Training on another device leaves the caller's graph where it was.

PyG's ``Data.to`` moves the tensors of the object it is called on, so a task that called it on the
user's graph left that graph on the GPU after ``fit`` (and NumPy or scikit-learn code on its labels
then failed). Tasks move a shallow copy instead (``graphdl.train.tasks.to_device``). The ``meta``
device stands in for a GPU where none is present; the CUDA test runs where one is.
"""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.datasets import FakeDataset
from torch_geometric.transforms import RandomLinkSplit

import graphdl
from graphdl.models.outliers import inject_outliers
from graphdl.train import TASKS
from graphdl.train.tasks import to_device


def _graph() -> Data:
    torch.manual_seed(0)
    data = FakeDataset(num_graphs=1, avg_num_nodes=40, num_channels=8, num_classes=3, task="node")[0]
    data.train_mask = torch.arange(data.num_nodes) % 4 != 0  # a quarter held out: half validation, half test
    data.val_mask, data.test_mask = torch.arange(data.num_nodes) % 8 == 0, torch.arange(data.num_nodes) % 8 == 4
    return data


def _devices(data: Data) -> set[str]:
    return {value.device.type for _, value in data if isinstance(value, torch.Tensor)}


def test_to_device_moves_a_copy_and_shares_what_stays() -> None:
    data = _graph()
    moved = to_device(data, torch.device("meta"))
    assert _devices(moved) == {"meta"} and _devices(data) == {"cpu"}
    same = to_device(data, torch.device("cpu"))
    assert same is not data and same.x is data.x  # nothing to move: no tensor is copied


def test_node_task_trains_on_a_copy() -> None:
    data = _graph()
    task = TASKS.create("node")
    task.setup(data, None, "meta")
    assert _devices(task.data) == {"meta"} and _devices(data) == {"cpu"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("task", ["node", "anomaly", "autoencoder"])
def test_fit_on_cuda_leaves_the_callers_graph_on_the_cpu(task: str) -> None:
    data, splits = _graph(), None
    if task == "node":
        model, loss = graphdl.models.create("gnn", layer="gcn", in_channels=8, hidden_channels=8,
                                            out_channels=3, num_layers=2), "cross_entropy"
    elif task == "anomaly":
        data = inject_outliers(data, m=4, n_structural=1, n_contextual=4, k=10, seed=1)
        model, loss = graphdl.models.create("dominant", in_channels=8, hidden_channels=8), "dominant"
    else:  # the user's own link split: the task must not move the training graph it is given
        del data.y, data.train_mask, data.val_mask, data.test_mask
        splits = RandomLinkSplit(num_val=0.1, num_test=0.1, is_undirected=False,
                                 add_negative_train_samples=False)(data)
        model, loss = graphdl.models.create("gae", in_channels=8, hidden_channels=8, out_channels=4), "link_bce"
    trainer = graphdl.Trainer(model, loss=loss, task=task, epochs=2, seed=0, progress=False, device="cuda",
                              **({"monitor": "train_loss"} if task == "anomaly" else {}))
    trainer.fit(None if splits else data, splits)
    assert {p.device.type for p in model.parameters()} == {"cuda"}
    assert _devices(data) == {"cpu"}
    assert all(_devices(g) == {"cpu"} for g in splits or ())
