"""A checkpoint records the settings that change the continued run (grad_clip, deterministic, seed, the task's
class and arguments) beside the optimiser's, and a resume with other values is refused, naming each change.

Every registered task saves a checkpoint after one epoch; a fresh Trainer built alike resumes it (setup and fit
adapt some of the task's attributes: no false refusal), one with a task argument changed is refused.
"""

import json
import re

import pytest
import torch
from torch_geometric.data import Data

import graphdl
from graphdl.config import json_plain
from graphdl.errors import ConfigError
from graphdl.train import TASKS, ModelCheckpoint, Trainer
from graphdl.train.tasks import NodeTask


def _graph(n=30, outliers=False):
    gen = torch.Generator().manual_seed(0)
    data = Data(x=torch.randn(n, 4, generator=gen), edge_index=torch.randint(0, n, (2, 90), generator=gen),
                y=torch.randint(0, 3, (n,), generator=gen))
    idx = torch.arange(n)
    data.train_mask, data.val_mask, data.test_mask = idx < 18, (idx >= 18) & (idx < 24), idx >= 24
    if outliers:
        data.y_outlier = (idx % 5 == 0).long()
    return data


def _link_data():
    data = _graph()
    gen = torch.Generator().manual_seed(3)
    edges = data.edge_index.t()
    splits = {"train": {"edge": edges[:60]},
              "valid": {"edge": edges[60:75], "edge_neg": torch.randint(0, 30, (15, 2), generator=gen)},
              "test": {"edge": edges[75:], "edge_neg": torch.randint(0, 30, (15, 2), generator=gen)}}
    data.edge_index = edges[:60].t().contiguous()
    return data, splits


def _graphs():
    from torch_geometric.datasets import FakeDataset

    graphdl.seed_everything(123)
    dataset = FakeDataset(num_graphs=16, avg_num_nodes=6, num_channels=4, num_classes=2, task="graph")
    return dataset, {"train": torch.arange(10), "val": torch.arange(10, 13), "test": torch.arange(13, 16)}


def _node_graphs():
    def graphs(k):
        out = []
        for i in range(k):
            g = _graph(12 + i)
            out.append(Data(x=g.x, edge_index=g.edge_index % g.num_nodes, y=(g.x[:, :3] > 0).float()))
        return out
    return None, {"train": graphs(4), "val": graphs(2), "test": graphs(2)}


def _gnn(out):
    return graphdl.models.create("gnn", layer="sage", in_channels=4, hidden_channels=8, out_channels=out,
                                 num_layers=2)


# task: (model factory, loss, task_kwargs, data factory, extra Trainer kwargs, changed task argument, message)
CASES = {
    "node": (lambda: _gnn(3), "cross_entropy", {"num_neighbors": [3, 2], "batch_size": 6}, lambda: (_graph(), None),
             {}, {"num_neighbors": [1]}, "num_neighbors [3, 2] -> [1]"),
    "link": (lambda: _gnn(8), None, {"batch_size": 16}, _link_data, {}, {"num_negatives": 3},
             "num_negatives 1 -> 3"),
    "graph": (lambda: graphdl.models.create("graph_gnn", layer="gin", in_channels=4, hidden_channels=8,
                                            out_channels=2, num_layers=2),
              "cross_entropy", {"batch_size": 5, "metric": "acc"}, _graphs, {}, {"shuffle_seed": 4},
              "shuffle_seed null -> 4"),
    "inductive_node": (lambda: _gnn(3), "bce_with_logits", {"batch_size": 2}, _node_graphs, {}, {"knn_k": 3},
                       "knn_k 5 -> 3"),
    "contrastive": (lambda: _gnn(8), "grace", {}, lambda: (_graph(), None), {}, {"drop_edge": 0.1},
                    "drop_edge [0.2, 0.4] -> [0.1, 0.1]"),
    "autoencoder": (lambda: graphdl.models.create("gae", in_channels=4, hidden_channels=8, out_channels=8),
                    "link_bce", {}, lambda: (_graph(), None), {}, {"num_val": 0.2}, "num_val 0.05 -> 0.2"),
    "adversarial_autoencoder": (lambda: graphdl.models.create("arga", in_channels=4, hidden_channels=8,
                                                              out_channels=8),
                                "link_bce", {}, lambda: (_graph(), None), {}, {"discriminator_steps": 2},
                                "discriminator_steps 5 -> 2"),
    "anomaly": (lambda: graphdl.models.create("dominant", in_channels=4, hidden_channels=8), "dominant",
                {"val_fraction": 0.4}, lambda: (_graph(outliers=True), None), {"monitor": "train_loss"},
                {"val_fraction": 0.5}, "val_fraction 0.4 -> 0.5"),
}


def _trainer(name, folder, epochs, task_kwargs=None, **kw):
    model, loss, kwargs, _, extra, _, _ = CASES[name]
    graphdl.seed_everything(0)
    settings = {"seed": 1, "progress": False, "device": "cpu", **extra, **kw}
    return Trainer(model(), loss, name, task_kwargs={**kwargs, **(task_kwargs or {})}, epochs=epochs,
                   callbacks=[ModelCheckpoint(folder)], **settings)


def test_every_registered_task_is_covered():
    assert set(CASES) == set(TASKS.list())


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_task_resumes_alike_and_refuses_a_changed_argument(tmp_path, name):
    data, splits = CASES[name][3]()
    _trainer(name, tmp_path, 1).fit(data, splits)
    last = tmp_path / "last.pt"
    change, message = CASES[name][5], CASES[name][6]
    with pytest.raises(ConfigError, match=rf"last\.pt was trained with other settings \({re.escape(message)}\)"):
        _trainer(name, tmp_path, 2, change).fit(data, splits, resume_from=last)
    saved = torch.load(last, weights_only=False)["settings"]
    assert saved["task"].endswith(type(TASKS.create(name)).__name__)
    assert json.loads(json.dumps(saved)) == saved  # JSON values
    result = _trainer(name, tmp_path, 2).fit(data, splits, resume_from=last)  # built alike: no false refusal
    assert len(result.history) == 2


@pytest.mark.parametrize("kw, message", [
    ({"seed": 2}, "seed 1 -> 2"),
    ({"grad_clip": 0.1}, "grad_clip null -> 0.1"),
    ({"deterministic": True}, "deterministic false -> true"),
    ({"task_kwargs": {"batch_size": 2}}, "batch_size 6 -> 2"),
])
def test_trainer_settings_that_change_the_continued_run_are_refused(tmp_path, kw, message):
    """Before, each resumed silently: the saved RNG states won over seed=2, and the other batches or clipping
    trained the remaining epochs of another run."""
    data = _graph()
    _trainer("node", tmp_path, 1).fit(data)
    with pytest.raises(ConfigError, match=rf"other settings \({re.escape(message)}\); a resumed run continues"):
        _trainer("node", tmp_path, 2, **kw).fit(data, resume_from=tmp_path / "last.pt")


def test_a_checkpoint_without_the_new_keys_still_resumes(tmp_path):
    data = _graph()
    _trainer("node", tmp_path, 1).fit(data)
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    for key in ("grad_clip", "deterministic", "seed", "task", "task_arguments"):
        state["settings"].pop(key, None)
    torch.save(state, tmp_path / "old.pt")
    trainer = _trainer("node", tmp_path, 2, task_kwargs={"batch_size": 2}, seed=5, grad_clip=1.0)
    assert len(trainer.fit(data, resume_from=tmp_path / "old.pt").history) == 2


def test_another_task_class_is_named_not_its_arguments(tmp_path):
    data = _graph()
    _trainer("node", tmp_path, 1).fit(data)
    trainer = Trainer(_gnn(8), "grace", "contrastive", epochs=2, seed=1, progress=False, device="cpu",
                      callbacks=[ModelCheckpoint(tmp_path)])
    with pytest.raises(ConfigError, match=r'\(loss "graphdl\.losses\.classification\.CrossEntropyLoss" -> '
                                          r'"graphdl\.losses\.graph\.GRACELoss", monitor "val_acc" -> '
                                          r'"val_knn_acc", task "graphdl\.train\.tasks\.NodeTask" -> '
                                          r'"graphdl\.train\.contrastive\.ContrastiveTask"\);'):
        trainer.fit(data, resume_from=tmp_path / "last.pt")


def test_an_adapted_metric_and_a_reused_task_do_not_refuse(tmp_path):
    """check_loss turns the node task's acc into knn_acc for a metric loss; the checkpoint records the metric as
    built, so a fresh Trainer (or one given the task object the first fit adapted) resumes."""
    data = _graph()
    task = NodeTask(num_neighbors=(3, 2), batch_size=6)

    def build(epochs, task):
        graphdl.seed_everything(0)
        return Trainer(_gnn(8), "triplet", task, epochs=epochs, seed=1, progress=False, device="cpu",
                       callbacks=[ModelCheckpoint(tmp_path)])
    first = build(1, task)
    first.fit(data)
    assert first.task.metric.name == "knn_acc"
    assert first.resume_settings()["task_arguments"]["metric"] == "acc"
    assert len(build(2, task).fit(data, resume_from=tmp_path / "last.pt").history) == 2
    assert len(build(2, NodeTask(num_neighbors=[3, 2], batch_size=6)).fit(
        data, resume_from=tmp_path / "last.pt").history) == 2
    with pytest.raises(ConfigError, match=r"other settings \(metric \"acc\" -> \"knn_acc\"\)"):
        build(2, NodeTask(metric="knn_acc", num_neighbors=[3, 2], batch_size=6)).fit(
            data, resume_from=tmp_path / "last.pt")


def test_task_arguments_are_json_plain_and_large_tensors_summarised():
    class Weighted(NodeTask):
        def __init__(self, weight=None, table=None, **kwargs):
            super().__init__(**kwargs)
            self.weight, self.table = weight, table

    task = Weighted(weight=torch.tensor([1.0, 2.0]), table=torch.zeros(2000), batch_size=4, num_neighbors=[2])
    settings = Trainer(_gnn(3), "cross_entropy", task, progress=False, device="cpu").resume_settings()
    args = settings["task_arguments"]
    assert args["weight"] == [1.0, 2.0] and args["batch_size"] == 4 and args["num_neighbors"] == [2]
    assert args["table"] == "Tensor of shape (2000,) and dtype torch.float32"
    assert json_plain(settings) == settings
    graph = Trainer(_gnn(3), "cross_entropy", "graph", task_kwargs={"num_workers": 2}, progress=False, device="cpu")
    assert "num_workers" not in graph.resume_settings()["task_arguments"]  # workers change no value: resumable


@pytest.mark.parametrize("kw, message", [
    ({"lr": 0.5}, "lr 0.01 -> 0.5"),
    ({"task_kwargs": {"batch_size": 2}}, "batch_size 6 -> 2"),
    ({"seed": 7}, "seed 1 -> 7"),
])
def test_a_finished_seed_resumed_with_other_settings_is_refused(tmp_path, kw, message):
    """done.json kept no settings: resume=True with lr 0.5, batch_size 2 or seed 7 returned the old run's result
    as if it were theirs."""
    from graphdl.train.resume import fit_with_checkpoints

    data = _graph()
    fit_with_checkpoints(_trainer("node", None, 2), data, checkpoint_dir=tmp_path, seed=1)
    with pytest.raises(ConfigError, match=rf"^the finished run in .*done\.json was trained with other settings "
                                          rf"\({re.escape(message)}\)"):
        fit_with_checkpoints(_trainer("node", None, 2, **kw), data, checkpoint_dir=tmp_path, seed=1, resume=True)
    again = fit_with_checkpoints(_trainer("node", None, 2), data, checkpoint_dir=tmp_path, seed=1, resume=True)
    assert len(again.history) == 2


def test_a_finished_seed_stands_under_other_execution_settings(tmp_path):
    """deterministic (and the number of processes) say how a seed was computed: its finished result is returned."""
    from graphdl.train.resume import fit_with_checkpoints

    data = _graph()
    first = fit_with_checkpoints(_trainer("node", None, 2), data, checkpoint_dir=tmp_path, seed=1)
    again = fit_with_checkpoints(_trainer("node", None, 2, deterministic=True), data, checkpoint_dir=tmp_path,
                                 seed=1, resume=True)
    assert again.extra["skipped"] and again.history == first.history


def test_a_resume_with_other_loss_arguments_is_refused(tmp_path):
    """loss_kwargs (a margin, a temperature) were not among the settings: a resume with another one continued the
    run with another loss through the Python API."""
    data = _graph()
    first = _trainer("node", tmp_path, 1, task_kwargs={"num_neighbors": None, "batch_size": None})
    first.fit(data)
    for loss, kwargs, message in ((first.loss_fn.__class__, {"label_smoothing": 0.1}, "label_smoothing 0.0 -> 0.1"),
                                  (torch.nn.MSELoss, {}, "loss")):
        graphdl.seed_everything(0)
        other = Trainer(_gnn(3), loss(**kwargs), "node", epochs=2, seed=1, progress=False, device="cpu",
                        task_kwargs=CASES["node"][2] | {"num_neighbors": None, "batch_size": None},
                        callbacks=[ModelCheckpoint(tmp_path)])
        with pytest.raises(ConfigError, match=rf"other settings \({re.escape(message)}"):
            other.fit(data, resume_from=tmp_path / "last.pt")
    graphdl.seed_everything(0)
    same = Trainer(_gnn(3), first.loss_fn.__class__(), "node", epochs=2, seed=1, progress=False, device="cpu",
                   task_kwargs=CASES["node"][2] | {"num_neighbors": None, "batch_size": None},
                   callbacks=[ModelCheckpoint(tmp_path)])
    assert len(same.fit(data, resume_from=tmp_path / "last.pt").history) == 2
