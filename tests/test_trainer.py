import copy
import csv
import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv

import graphdl
from graphdl.errors import ConfigError, ValidationError
from graphdl.train import EarlyStopping, ModelCheckpoint, Trainer


@pytest.fixture(scope="module")
def cora(shared_data):
    return graphdl.datasets.load("cora", root=shared_data)[0]


def gcn(seed=0, **kw):
    graphdl.seed_everything(seed)
    return graphdl.models.create("gnn", layer="gcn", in_channels=1433, hidden_channels=16, out_channels=7,
                                 num_layers=2, dropout=0.5, **kw)


class PlainGCN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = GCNConv(1433, 16), GCNConv(16, 7)

    def forward(self, x, edge_index):
        x = F.dropout(F.relu(self.conv1(x, edge_index)), 0.5, self.training)
        return self.conv2(x, edge_index)


def test_trainer_matches_a_hand_written_pyg_loop_exactly(cora):
    """Same init, same seed, same optimiser: the Trainer's weights equal the plain loop's after 5 epochs."""
    torch.manual_seed(0)
    ours, ref = PlainGCN(), None
    ref = copy.deepcopy(ours)
    trainer = Trainer(ours, "cross_entropy", "node", lr=0.01, weight_decay=5e-4, epochs=5, seed=3,
                      progress=False, device="cpu", callbacks=[ModelCheckpoint(restore_best=False)])
    result = trainer.fit(cora)

    torch.manual_seed(3)
    opt = torch.optim.Adam(ref.parameters(), lr=0.01, weight_decay=5e-4)
    for _ in range(5):
        ref.train()
        opt.zero_grad()
        loss = F.cross_entropy(ref(cora.x, cora.edge_index)[cora.train_mask], cora.y[cora.train_mask])
        loss.backward()
        opt.step()
    for (name, a), b in zip(ours.named_parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, atol=0, rtol=0, msg=name)
    assert result.history[-1]["train_loss"] == pytest.approx(loss.item(), rel=1e-6)



def test_a_scheduler_is_stepped_once_per_epoch_as_in_a_hand_written_loop(cora):
    torch.manual_seed(0)
    ours = PlainGCN()
    ref = copy.deepcopy(ours)
    trainer = Trainer(ours, "cross_entropy", "node", lr=0.01, epochs=6, seed=3, progress=False, device="cpu",
                      scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1),
                      callbacks=[ModelCheckpoint(restore_best=False)])
    trainer.fit(cora)

    torch.manual_seed(3)
    opt = torch.optim.Adam(ref.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    for _ in range(6):
        ref.train()
        opt.zero_grad()
        F.cross_entropy(ref(cora.x, cora.edge_index)[cora.train_mask], cora.y[cora.train_mask]).backward()
        opt.step()
        sched.step()
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-5)
    for (name, a), b in zip(ours.named_parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, atol=0, rtol=0, msg=name)


def test_reduce_lr_on_plateau_is_stepped_with_the_monitored_metric(cora):
    plateau = {"mode": "max", "factor": 0.5, "patience": 1}
    trainer = Trainer(gcn(), "cross_entropy", "node", lr=0.01, epochs=25, seed=0, progress=False,
                      scheduler=lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **plateau))
    result = trainer.fit(cora)
    # the same scheduler fed the logged validation accuracies by hand ends at the same learning rate
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **plateau)
    for logs in result.history:
        ref.step(logs["val_acc"])
    assert opt.param_groups[0]["lr"] < 0.01  # the run did plateau, so the check can tell
    assert trainer.optimizer.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_bad_schedulers_are_refused_with_the_fix(cora):
    with pytest.raises(ConfigError, match=r"^scheduler must be a factory optimizer -> LR scheduler, such as lambda "
                                          r"opt: torch.optim.lr_scheduler.StepLR\(opt, step_size=50\); got 'cosine'$"):
        Trainer(gcn(), scheduler="cosine")
    with pytest.raises(ConfigError, match=r"^the scheduler factory returned float, which has no step\(\); return an "
                                          r"LR scheduler built on the optimizer it is given$"):
        Trainer(gcn(), epochs=1, progress=False, scheduler=lambda opt: 0.5).fit(cora)
    with pytest.raises(ConfigError, match=r"^the scheduler factory cannot be called with the optimizer alone \(.*"
                                          r"step_size.*\); pass a factory that sets the rest"):
        Trainer(gcn(), epochs=1, progress=False, scheduler=torch.optim.lr_scheduler.StepLR).fit(cora)
    with pytest.raises(ConfigError, match=r"^ReduceLROnPlateau\(mode='min'\) is stepped with 'val_acc', which improves "
                                          r"as it goes up; build it with mode='max'$"):
        Trainer(gcn(), epochs=1, progress=False,
                scheduler=torch.optim.lr_scheduler.ReduceLROnPlateau).fit(cora)

def test_reports_test_at_best_validation_epoch_and_restores_that_state(cora):
    trainer = Trainer(gcn(), "cross_entropy", "node", lr=0.01, epochs=30, seed=0, progress=False)
    result = trainer.fit(cora)
    vals = [h["val_acc"] for h in result.history]
    best = vals.index(max(vals))
    assert result.best_epoch == best and result.best == result.history[best]
    assert result.test == {"test_acc": result.history[best]["test_acc"]}
    assert trainer.evaluate(split=["val", "test"]) == {"val_acc": result.best["val_acc"],
                                                       "test_acc": result.best["test_acc"]}



def test_a_nan_score_is_never_the_best_epoch(cora):
    """A monitored value that is NaN at the first epoch was kept as the best (no comparison with NaN is true),
    while ModelCheckpoint restored another epoch's weights: the result named other figures than the model held."""
    from graphdl.train.metrics import Metric

    calls = []

    def acc_after_first_epoch(y, pred):
        calls.append(1)
        return float("nan") if len(calls) <= 3 else float((pred.argmax(-1) == y.view(-1)).float().mean())

    task = graphdl.train.NodeTask(metric=Metric("acc", acc_after_first_epoch))
    trainer = Trainer(gcn(), "cross_entropy", task, epochs=5, seed=0, progress=False)
    result = trainer.fit(cora)
    assert np.isnan(result.history[0]["val_acc"]) and result.best_epoch > 0
    assert result.best["val_acc"] == max(h["val_acc"] for h in result.history[1:])
    assert trainer.evaluate(split="val") == {"val_acc": result.best["val_acc"]}  # the restored weights' score


def test_one_callback_and_one_eval_split_may_be_given_bare(cora):
    assert len(Trainer(gcn(), callbacks=None).callbacks) == 1  # None: no callbacks but the default checkpoint
    stop = EarlyStopping(patience=1, min_delta=1.0)  # no epoch improves by 1.0: stops after epoch 1
    trainer = Trainer(gcn(), "cross_entropy", "node", epochs=10, seed=0, progress=False, callbacks=stop,
                      eval_splits="val")
    result = trainer.fit(cora)
    assert stop in trainer.callbacks and len(result.history) == 2
    assert [sorted(h) for h in result.history] == [["epoch", "train_loss", "val_acc"]] * 2

def test_seeded_runs_are_reproducible(cora):
    runs = [Trainer(gcn(), "cross_entropy", epochs=5, seed=1, progress=False).fit(cora).history for _ in range(2)]
    assert runs[0] == runs[1]


def test_early_stopping_checks_the_monitor_and_stops(cora):
    with pytest.raises(ConfigError, match=r"EarlyStopping monitors 'val_accuracy', which is not logged. "
                                          r"Did you mean 'val_acc'.*Logged metrics: epoch, test_acc"):
        Trainer(gcn(), epochs=3, progress=False, callbacks=[EarlyStopping("val_accuracy")]).fit(cora)
    result = Trainer(gcn(), epochs=200, lr=0.05, progress=False,
                     callbacks=[EarlyStopping("train_loss", patience=1, min_delta=10.0)]).fit(cora)
    assert len(result.history) == 2


def test_metric_log_and_checkpoints_are_written(cora, tmp_path):
    trainer = Trainer(gcn(), epochs=4, progress=False, log_path=tmp_path / "log.csv",
                      callbacks=[ModelCheckpoint(tmp_path / "ckpt")])
    result = trainer.fit(cora)
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    assert float(rows[2]["val_acc"]) == pytest.approx(result.history[2]["val_acc"])
    best = torch.load(tmp_path / "ckpt" / "best.pt", weights_only=False)
    assert best["epoch"] == result.best_epoch
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["best.pt", "last.pt"]
    Trainer(gcn(), epochs=2, progress=False, log_path=tmp_path / "log.json").fit(cora)
    assert len(json.loads((tmp_path / "log.json").read_text())) == 2


def test_resume_continues_exactly(cora, tmp_path):
    full = Trainer(gcn(), epochs=6, seed=0, progress=False).fit(cora)
    Trainer(gcn(), epochs=3, seed=0, progress=False, callbacks=[ModelCheckpoint(tmp_path)]).fit(cora)
    resumed = Trainer(gcn(), epochs=6, seed=0, progress=False, callbacks=[ModelCheckpoint(tmp_path)])
    result = resumed.fit(cora, resume_from=tmp_path / "last.pt")
    assert result.history == full.history


def test_checkpoint_from_another_model_is_refused(cora, tmp_path):
    Trainer(gcn(), epochs=1, progress=False, callbacks=[ModelCheckpoint(tmp_path)]).fit(cora)
    other = graphdl.models.create("gnn", layer="gcn", in_channels=1433, hidden_channels=32, out_channels=7)
    with pytest.raises(ConfigError, match="does not fit this model"):
        Trainer(other, epochs=2, progress=False).fit(cora, resume_from=tmp_path / "last.pt")


def test_neighbour_sampled_mini_batches_learn(cora):
    trainer = Trainer(gcn(), epochs=15, seed=0, progress=False,
                      task_kwargs={"num_neighbors": [10, 10], "batch_size": 64})
    assert trainer.fit(cora).best["val_acc"] > 0.6


def test_learnable_loss_parameters_are_optimised():
    data = Data(x=torch.randn(40, 4), edge_index=torch.randint(0, 40, (2, 100)), y=torch.arange(40) % 4,
                train_mask=torch.ones(40, dtype=torch.bool), val_mask=torch.ones(40, dtype=torch.bool))
    model = graphdl.models.create("gnn", layer="sage", in_channels=4, hidden_channels=8, out_channels=8)
    trainer = Trainer(model, "arcface", loss_kwargs={"num_classes": 4, "embedding_size": 8}, epochs=2,
                      progress=False)
    before = [p.detach().clone() for p in trainer.loss_fn.parameters()]
    trainer.fit(data)
    assert before and all(not torch.equal(a, b) for a, b in zip(before, trainer.loss_fn.parameters()))
    assert trainer.monitor == "val_knn_acc"


def test_bad_inputs_are_refused_before_training():
    model = graphdl.models.create("gnn", layer="gcn", in_channels=4, hidden_channels=8, out_channels=2)
    x, y = torch.randn(5, 4), torch.zeros(5, dtype=torch.long)
    mask = torch.ones(5, dtype=torch.bool)
    cases = [
        (Data(x=x, edge_index=torch.tensor([[0, 1], [1, 7]]), y=y, train_mask=mask),
         r"edge_index holds node indices in \[0, 7\] but the graph has 5 nodes"),
        (Data(x=x, edge_index=torch.tensor([[0, 1, 2]]), y=y, train_mask=mask),
         r"edge_index must have shape \(2, num_edges\), got \(1, 3\)"),
        (Data(x=x, edge_index=torch.tensor([[0.0, 1.0], [1.0, 2.0]]), y=y, train_mask=mask),
         r"edge_index must have dtype torch.long, got torch.float32"),
        (Data(x=torch.full((5, 4), float("nan")), edge_index=torch.tensor([[0], [1]]), y=y, train_mask=mask),
         r"x holds NaN or infinite values in 5 rows"),
        (Data(x=x, edge_index=torch.tensor([[0], [1]]), y=y, train_mask=mask[:3]),
         r"split 'train' mask has 3 entries but there are 5 nodes"),
    ]
    for data, message in cases:
        with pytest.raises(ValidationError, match=message):
            Trainer(model, epochs=1, progress=False).fit(data)


def test_bad_trainer_arguments():
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ConfigError, match=r"unknown optimizer 'adma'. Did you mean 'adam'"):
        Trainer(model, optimizer="adma")
    for kwargs, message in [({"lr": 0}, "lr must be a number > 0, got 0"),
                            ({"lr": "0.01"}, "lr must be a number > 0, got '0.01'"),
                            ({"lr": float("nan")}, "lr must be a number > 0, got nan"),
                            ({"weight_decay": "5e-4"}, "weight_decay must be a number >= 0, got '5e-4'"),
                            ({"epochs": 2.5}, "epochs must be an int >= 1, got 2.5"),
                            ({"seed": "1"}, "seed must be None or an int in [-2**63, 2**64) "
                                            "(torch.manual_seed's range), got '1'"),
                            ({"seed": 2**64}, "seed must be None or an int in [-2**63, 2**64) "  # refused at fit()
                                              f"(torch.manual_seed's range), got {2**64}"),
                            ({"grad_clip": -1.0}, "grad_clip must be a number > 0 (the largest gradient norm) or "
                                                  "None, got -1.0"),
                            ({"callbacks": [EarlyStopping]}, "callbacks take instances; EarlyStopping is the class: "
                                                             "pass EarlyStopping(...)"),
                            ({"callbacks": ["early_stopping"]}, "callbacks must be graphdl.train.Callback objects, "
                                                                "got str"),
                            ({"optimizer": None}, "optimizer must be a name (adam, adamw, sgd, rmsprop), a "
                                                  "torch.optim optimizer class or a factory params -> Optimizer, got "
                                                  "NoneType"),
                            ({"task": None}, "task must be a registered task name (graphdl list tasks: node, link, "
                                             "graph, ...) or a Task instance, got NoneType")]:
        with pytest.raises(ConfigError) as info:
            Trainer(model, **kwargs)
        assert str(info.value) == message
    with pytest.raises(graphdl.errors.UnknownNameError, match="unknown loss 'crossentropyy'. Did you mean 'cross_entropy'"):
        Trainer(model, loss="crossentropyy")
    with pytest.raises(ConfigError, match=r"^loss 'arcface' cannot be built from these arguments: .*missing 2 required "
                                          r"positional arguments: 'num_classes' and 'embedding_size'\. It accepts: "
                                          r"num_classes, embedding_size, .* Give the Trainer its arguments as "
                                          r"loss_kwargs=\{\.\.\.\}") as info:
        Trainer(model, loss="arcface")
    assert "computes the loss itself" not in str(info.value)  # a class: only its constructor can be at fault
    with pytest.raises(ConfigError) as info:  # it told a user who had given loss_kwargs to give loss_kwargs
        Trainer(model, loss="grace", loss_kwargs={"tau": 0.5})
    assert str(info.value) == ("loss 'grace' got an unexpected keyword argument 'tau'. It accepts: temperature, "
                               "reduction. The Trainer built it from loss_kwargs={'tau': 0.5}.")
    with pytest.raises(graphdl.errors.UnknownNameError, match="unknown task 'nodes'. Did you mean 'node'"):
        Trainer(model, task="nodes")


@pytest.mark.parametrize("task,kwargs,message", [
    ("node", {"batch_size": 0}, "the node task's batch_size must be an int >= 1, got 0"),
    ("node", {"knn_k": 2.5}, "the node task's knn_k must be an int >= 1, got 2.5"),
    ("graph", {"batch_size": 32.0}, "the graph task's batch_size must be an int >= 1, got 32.0"),
    ("graph", {"num_workers": -1}, "the graph task's num_workers must be an int >= 0, got -1"),
    ("link", {"num_negatives": 0}, "the link task's num_negatives must be an int >= 1, got 0"),
    ("link", {"batch_size": True}, "the link task's batch_size must be an int >= 1, got True"),
])
def test_bad_task_sizes_are_refused_when_the_trainer_is_built(task, kwargs, message):
    with pytest.raises(ConfigError) as info:  # not at the first epoch, from inside torch's DataLoader
        Trainer(torch.nn.Linear(2, 2), task=task, task_kwargs=kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize("num_neighbors", [5, [], [5, "a"]])
def test_bad_fan_outs_are_refused_when_the_trainer_is_built(num_neighbors):
    """Before: 5 raised a TypeError from list(5), and [] silently trained full batch."""
    with pytest.raises(ValidationError, match=r"^num_neighbors: "):
        Trainer(torch.nn.Linear(2, 2), task="node", task_kwargs={"num_neighbors": num_neighbors})


def test_a_registered_loss_function_is_pointed_to_the_trainer():
    def fn_ce(input, target):
        return torch.nn.functional.cross_entropy(input, target)

    graphdl.losses.register("fn_ce_toy", fn_ce, kind="classification")
    try:
        with pytest.raises(ConfigError, match=r"loss 'fn_ce_toy' cannot be built from these arguments: .*missing 2 "
                                              r"required positional arguments.*; if fn_ce computes the loss itself "
                                              r".* loss=<the function>"):
            Trainer(torch.nn.Linear(2, 2), loss="fn_ce_toy")
    finally:
        graphdl.losses.unregister("fn_ce_toy")
    assert Trainer(torch.nn.Linear(2, 2), loss=fn_ce).loss_fn is fn_ce


def test_a_missing_validation_split_is_named_with_what_exists(cora):
    index = torch.arange(4)
    with pytest.raises(ConfigError) as info:
        Trainer(gcn(), epochs=1, progress=False).fit(cora, splits={"train": index, "vall": index + 4})
    assert str(info.value) == ("monitor 'val_acc' names no split of this task (splits: train, vall). Split 'vall': "
                               "Did you mean 'val', 'valid'? Name the validation split 'val' (or 'valid'), or "
                               "monitor one that exists: 'train_acc', 'vall_acc'")
    with pytest.raises(ConfigError, match=r"\(splits: train, dev\)\. Name the validation split"):  # nothing close
        Trainer(gcn(), epochs=1, progress=False).fit(cora, splits={"train": index, "dev": index + 4})
    result = Trainer(gcn(), epochs=1, progress=False).fit(cora, splits={"train": index, "valid": index + 4})
    assert "val_acc" in result.best  # 'valid', OGB's name, is the validation split


def test_link_task_takes_either_random_link_split_format_and_trains_on_the_train_graph(cora):
    from torch_geometric.transforms import RandomLinkSplit

    torch.manual_seed(0)
    labelled = RandomLinkSplit(num_val=0.05, num_test=0.1, is_undirected=True, split_labels=True,
                               add_negative_train_samples=False)(cora)
    merged = []  # the same pairs as split_labels=False writes them: edge_label_index + edge_label
    for part in labelled:
        part = part.clone()
        neg = part.neg_edge_label_index if "neg_edge_label_index" in part else part.pos_edge_label_index[:, :0]
        part.edge_label_index = torch.cat([part.pos_edge_label_index, neg], dim=1)
        part.edge_label = torch.cat([torch.ones(part.pos_edge_label_index.size(1)), torch.zeros(neg.size(1))])
        del part.pos_edge_label_index, part.pos_edge_label
        if "neg_edge_label_index" in part:
            del part.neg_edge_label_index, part.neg_edge_label
        merged.append(part)

    def fit(splits):
        graphdl.seed_everything(0)
        model = graphdl.models.create("link_gnn", layer="gcn", in_channels=1433, hidden_channels=32,
                                      out_channels=32, num_layers=2)
        trainer = Trainer(model, task="link", lr=0.01, epochs=20, seed=0, progress=False)
        return trainer, trainer.fit(None, splits)

    trainer, first = fit(labelled)
    assert torch.equal(trainer.task.data.edge_index, labelled[0].edge_index)  # held-out edges pass no messages
    trainer.model.eval()
    with torch.no_grad():  # a new graph is encoded whole: all its edges pass messages
        torch.testing.assert_close(trainer.predict(cora), trainer.model(cora.x, cora.edge_index))
        assert not torch.allclose(trainer.predict(cora), trainer.predict())
    assert first.test["test_rocauc"] > 0.8
    assert fit(merged)[1].history == first.history
    assert fit(dict(zip(("train", "valid", "test"), labelled)))[1].history == first.history  # the graphs by name
    with pytest.raises(ValidationError, match=r"^a dict of RandomLinkSplit graphs needs exactly the keys 'train', "
                                              r"'val' and 'test', got 'train', 'test'$"):
        fit({"train": labelled[0], "test": labelled[2]})
    with pytest.raises(ValidationError, match=r"^splits\['train'\] holds keys head, relation, tail, but the link "
                                              r"task takes OGB's edge split format, \{'edge': \[num_edges, 2\] pairs, "
                                              r"'edge_neg': \.\.\.\} or \{'source_node', 'target_node', "
                                              r"'target_node_neg'\} per split, or the train, val and test graphs "
                                              r"of RandomLinkSplit$"):  # ogbl-wikikg2's knowledge-graph format
        fit({"train": {"head": torch.arange(3), "relation": torch.zeros(3), "tail": torch.arange(3)}})
    with pytest.raises(ValidationError, match=r"^hits@500 needs at least 500 negative pairs per split, but a split "
                                              r"has \d+; use a K of at most \d+"):  # before any training epoch
        Trainer(gcn(), task="link", task_kwargs={"metric": "hits@500"}, epochs=1, progress=False).fit(None, labelled)
    edges = cora.edge_index.t()  # held-out edges without negatives to rank them against
    for unscored, message in (({"valid": {"edge": edges[8000:9000]}}, "the 'val' split has"),
                              ({}, "the 'val' split has")):
        with pytest.raises(ValidationError, match=rf"^{message} positive edges but no negative pairs to score them "
                                                  r"against; give each held-out split its 'edge_neg'"):
            Trainer(gcn(), task="link", epochs=1, progress=False).fit(cora, {"train": {"edge": edges[:8000]},
                                                                             **unscored})
    with pytest.raises(ValidationError, match=r"messages pass over the training graph splits\[0\]; the full graph "
                                              r"would leak the held-out edges"):
        trainer.fit(cora, labelled)


def test_graph_predictions_come_one_row_per_graph_in_the_data_order():
    from torch_geometric.datasets import FakeDataset

    torch.manual_seed(0)
    ds = FakeDataset(num_graphs=30, avg_num_nodes=8, num_channels=4, num_classes=2, task="graph")
    split = {"train": torch.arange(10, 30), "val": torch.arange(0, 5), "test": torch.arange(5, 10)}
    graphdl.seed_everything(0)
    model = graphdl.models.create("graph_gnn", layer="gcn", in_channels=4, hidden_channels=8, out_channels=2,
                                  num_layers=2)
    trainer = Trainer(model, "cross_entropy", "graph", task_kwargs={"metric": "acc"}, epochs=2, seed=0,
                      progress=False)
    trainer.fit(ds, split)
    model.eval()
    with torch.no_grad():
        alone = torch.cat([model(g.x, g.edge_index, batch=torch.zeros(g.num_nodes, dtype=torch.long)) for g in ds])
    torch.testing.assert_close(trainer.predict(), alone)  # graph i's row is row i, whatever the splits
    unlabelled = [Data(x=g.x, edge_index=g.edge_index) for g in ds[:7]]  # new graphs: no labels, no splits
    torch.testing.assert_close(trainer.predict(unlabelled), alone[:7])
    torch.testing.assert_close(trainer.predict(ds[3:5]), alone[3:5])


def test_graph_splits_may_hold_the_graphs_themselves_as_pyg_slices_them():
    """PyG's idiom, {"train": dataset[:150], "test": dataset[150:]}, was refused ("must be a boolean mask or
    integer indices"); it trains exactly as the same splits given as indices."""
    from torch_geometric.datasets import FakeDataset

    torch.manual_seed(0)
    ds = FakeDataset(num_graphs=30, avg_num_nodes=8, num_channels=4, num_classes=2, task="graph")
    idx = {"train": torch.arange(10, 30), "val": torch.arange(0, 5), "test": torch.arange(5, 10)}

    def fit(data, splits):
        graphdl.seed_everything(0)
        model = graphdl.models.create("graph_gnn", layer="gcn", in_channels=4, hidden_channels=8, out_channels=2,
                                      num_layers=2)
        trainer = Trainer(model, "cross_entropy", "graph", task_kwargs={"metric": "acc"}, epochs=3, seed=0,
                          progress=False)
        return trainer, trainer.fit(data, splits).history

    _, expected = fit(ds, idx)
    for data, splits in ((ds, {k: ds[v] for k, v in idx.items()}), (None, {k: ds[v] for k, v in idx.items()}),
                         (None, {k: [ds[i] for i in v] for k, v in idx.items()})):
        trainer, history = fit(data, splits)
        assert history == expected
    # predict(): the data's graphs in its order when given, else every split's graphs, split after split
    order = torch.cat(list(idx.values()))
    torch.testing.assert_close(trainer.predict(), trainer.predict(ds)[order])
    trainer.task.setup(ds, {k: ds[v] for k, v in idx.items()})
    torch.testing.assert_close(trainer.predict(), trainer.predict(ds))
    with pytest.raises(ValidationError, match=r"^splits\['val'\]: the dataset holds no graphs$"):
        trainer.fit(None, {"train": ds[10:], "val": ds[:0]})


def test_multiclass_graph_logits_are_scored_by_the_ogbg_ppa_evaluator_as_its_example_does():
    """ogbg-ppa: one logit per class against (G, 1) class ids; the official example hands the evaluator the
    argmax, and the evaluator refused the logits themselves (shapes must match)."""
    from ogb.graphproppred import Evaluator
    from torch_geometric.datasets import FakeDataset

    torch.manual_seed(0)
    ds = FakeDataset(num_graphs=30, avg_num_nodes=8, num_channels=4, num_classes=3, task="graph")
    ds = [Data(x=g.x, edge_index=g.edge_index, y=g.y.view(1, 1)) for g in ds]  # OGB's (1, 1) per graph
    split = {"train": torch.arange(10, 30), "valid": torch.arange(0, 5), "test": torch.arange(5, 10)}
    model = graphdl.models.create("graph_gnn", layer="gcn", in_channels=4, hidden_channels=8, out_channels=3,
                                  num_layers=2)
    trainer = Trainer(model, "cross_entropy", "graph", task_kwargs={"metric": "ogbg-ppa"}, epochs=2, seed=0,
                      progress=False)
    trainer.fit(ds, split)
    logits = trainer.predict()
    y = torch.cat([g.y for g in ds])
    for name, idx in split.items():
        official = Evaluator("ogbg-ppa").eval({"y_true": y[idx], "y_pred": logits[idx].argmax(-1, keepdim=True)})
        assert trainer.evaluate(split=name)[f"{name.replace('valid', 'val')}_acc"] == official["acc"]


def test_multi_label_node_targets_are_refused_for_cross_entropy_and_train_with_bce():
    """ogbn-proteins-like 0/1 targets, one column per task: the node task's default cross-entropy read each row as
    a class distribution (a training loss in the hundreds, no error)."""
    torch.manual_seed(0)
    data = Data(x=torch.randn(40, 4), edge_index=torch.randint(0, 40, (2, 120)), y=torch.randint(0, 2, (40, 6)))
    split = {"train": torch.arange(30), "valid": torch.arange(30, 40)}

    def model():
        return graphdl.models.create("gnn", layer="sage", in_channels=4, hidden_channels=8, out_channels=6)

    for loss, owner in ((None, "CrossEntropyLoss"), (torch.nn.CrossEntropyLoss(), "CrossEntropyLoss")):
        trainer = Trainer(model(), loss=loss, task_kwargs={"metric": "rocauc"}, epochs=1, progress=False)
        with pytest.raises(ValidationError, match=rf"^{owner}: the target rows of shape \(30, 6\) hold 0/1 labels "
                                                  rf"that are not one-hot \(multi-label targets\)"):
            trainer.fit(data, split)
    result = Trainer(model(), loss="bce_with_logits", task_kwargs={"metric": "rocauc"}, epochs=2,
                     progress=False).fit(data, split)
    assert result.history[0]["train_loss"] < 1.0


def test_a_heterogeneous_graph_or_one_graph_for_the_graph_task_is_named():
    from torch_geometric.data import HeteroData
    from torch_geometric.transforms import RandomLinkSplit

    torch.manual_seed(0)
    hetero = HeteroData()
    hetero["paper"].x, hetero["paper"].y = torch.randn(30, 4), torch.randint(0, 3, (30,))
    hetero["author"].x = torch.randn(20, 4)
    hetero["author", "writes", "paper"].edge_index = torch.stack([torch.randint(0, 20, (80,)),
                                                                  torch.randint(0, 30, (80,))])
    model = graphdl.models.create("gnn", layer="sage", in_channels=4, hidden_channels=8, out_channels=3)
    index = {"train": torch.arange(20), "valid": torch.arange(20, 30)}
    linked = RandomLinkSplit(edge_types=[("author", "writes", "paper")])(hetero)
    # before: "needs one ... Data graph, got HeteroData" (node), "splits['train'] holds Tensor" or "the train
    # graph holds no edge labels" (link), a TypeError from HeteroData.__getitem__ (graph), a KeyError for one Data
    for task, data, splits in (("node", hetero, index), ("link", hetero, {"train": {"edge": torch.zeros(2, 2)}}),
                               ("link", None, linked), ("graph", hetero, index)):
        with pytest.raises(ValidationError, match=rf"^the {task} task trains graphs of one node type, but got a "
                                                  rf"HeteroData graph \(node types paper, author\); merge its types "
                                                  rf"into one graph with data.to_homogeneous\(\)"):
            Trainer(model, task=task, epochs=1, progress=False).fit(data, splits)
    with pytest.raises(ValidationError, match=r"^graphdl's tasks train graphs of one node type, but got a HeteroData"):
        graphdl.validate.check_graph(hetero)
    one = Data(x=torch.randn(10, 4), edge_index=torch.tensor([[0, 1], [1, 2]]), y=torch.tensor([1.0]))
    with pytest.raises(ValidationError, match=r"^the graph task needs a dataset of graphs \(a PyG dataset or a list "
                                              r"of Data\), got one Data graph; pass \[data\] to train on it alone"):
        Trainer(model, task="graph", epochs=1, progress=False).fit(one, {"train": torch.tensor([0])})


def test_two_class_logits_are_scored_by_a_binary_ogb_evaluator_as_the_positive_class_probability():
    """A cross-entropy model on ogbg-molbbbp gives two logits per graph; the rocauc evaluator refused them
    (shapes must match) and training stopped after the first epoch."""
    from ogb.graphproppred import Evaluator
    from torch_geometric.datasets import FakeDataset

    torch.manual_seed(0)
    ds = FakeDataset(num_graphs=30, avg_num_nodes=8, num_channels=4, num_classes=2, task="graph")
    ds = [Data(x=g.x, edge_index=g.edge_index, y=g.y.view(1, 1)) for g in ds]
    split = {"train": torch.arange(10, 30), "valid": torch.arange(0, 10)}
    model = graphdl.models.create("graph_gnn", layer="gcn", in_channels=4, hidden_channels=8, out_channels=2,
                                  num_layers=2)
    trainer = Trainer(model, "cross_entropy", "graph", task_kwargs={"metric": "ogbg-molbbbp"}, epochs=2, seed=0,
                      progress=False)
    trainer.fit(ds, split)
    probability = trainer.predict().softmax(-1)[:, 1:]
    y = torch.cat([g.y for g in ds])
    official = Evaluator("ogbg-molbbbp").eval({"y_true": y[:10], "y_pred": probability[:10]})["rocauc"]
    assert trainer.evaluate(split="val")["val_rocauc"] == pytest.approx(official)


def test_node_predictions_on_new_graphs_need_no_masks_and_keep_the_fitted_data(cora):
    trainer = Trainer(gcn(), "cross_entropy", "node", epochs=3, seed=0, progress=False)
    trainer.fit(cora)
    fitted = trainer.evaluate(split=["val", "test"])
    new = Data(x=cora.x, edge_index=cora.edge_index)  # no masks, no labels
    torch.testing.assert_close(trainer.predict(new), trainer.predict())
    assert trainer.evaluate(split=["val", "test"]) == fitted
    with pytest.raises(ValidationError, match=r"^the node task predicts on one torch_geometric.data.Data graph, "
                                              r"got list$"):
        trainer.predict([new])


@pytest.mark.parametrize("build,message", [
    (lambda: ModelCheckpoint(every_n_epochs=0), "ModelCheckpoint's every_n_epochs must be an int >= 1, got 0"),
    (lambda: ModelCheckpoint(every_n_epochs=-1), "ModelCheckpoint's every_n_epochs must be an int >= 1, got -1"),
    (lambda: EarlyStopping(patience=0), "EarlyStopping's patience must be an int >= 1, got 0"),
    (lambda: EarlyStopping(patience=2.5), "EarlyStopping's patience must be an int >= 1, got 2.5"),
    (lambda: EarlyStopping(min_delta=-0.1), "EarlyStopping's min_delta must be a number >= 0 (the least change "
                                            "that counts as an improvement), got -0.1"),
])
def test_bad_callback_settings_are_refused_when_built(build, message):
    """Before: every_n_epochs=0 divided by zero after the first epoch, -1 checkpointed every epoch, and a
    negative min_delta counted a worse value as an improvement."""
    with pytest.raises(ConfigError) as info:
        build()
    assert str(info.value) == message


def test_graph_targets_that_cannot_batch_are_named_before_training():
    """Before: an AttributeError inside the loss (no y) or a RuntimeError inside PyG's collate (mixed shapes)."""
    from torch_geometric.datasets import FakeDataset

    torch.manual_seed(0)
    graphs = [g for g in FakeDataset(num_graphs=12, avg_num_nodes=6, num_channels=4, num_classes=2, task="graph")]
    split = {"train": torch.arange(8), "val": torch.arange(8, 10), "test": torch.arange(10, 12)}
    model = graphdl.models.create("graph_gnn", layer="gcn", in_channels=4, hidden_channels=8, out_channels=1)
    unlabelled = [Data(x=g.x, edge_index=g.edge_index) for g in graphs]
    with pytest.raises(ValidationError, match=r"^graph 0 of the dataset has no target y \(got NoneType\)"):
        Trainer(model, "mse", "graph", epochs=1, progress=False).fit(unlabelled, split)
    mixed = [g.clone() for g in graphs]
    for i, g in enumerate(mixed):
        g.y = torch.tensor([[1.0, 2.0]]) if i != 3 else torch.tensor([1.0])
    with pytest.raises(ValidationError, match=r"^graph 3 of the dataset has y of shape \(1,\) but graph 0 has "
                                              r"\(1, 2\); batching stacks the targets"):
        Trainer(model, "mse", "graph", epochs=1, progress=False).fit(mixed, split)
    assert Trainer(model, "mse", "graph", progress=False).predict(unlabelled).shape == (12, 1)  # no y needed


@pytest.mark.parametrize("mask", ["train_mask", "val_mask"])
def test_an_empty_node_split_is_refused(cora, mask):
    """Before: an empty val split logged val_acc = nan every epoch, and an empty train split reported the
    training loss as nan, blaming the learning rate."""
    data = cora.clone()
    data[mask] = torch.zeros_like(data[mask])
    split = mask.removesuffix("_mask")
    with pytest.raises(ValidationError, match=rf"^the '{split}' split holds no node \(an all-False mask or an empty "
                                              r"index\); give it nodes, or pass splits without it$"):
        Trainer(gcn(), "cross_entropy", "node", epochs=1, progress=False).fit(data)


class _TakesData(torch.nn.Module):
    """PlainGCN's weights behind OGB's calling convention, forward(batched_data)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, batched_data):
        return self.inner(batched_data.x, batched_data.edge_index)


class _IgnoresEdges(torch.nn.Module):
    def __init__(self, mlp):
        super().__init__()
        self.mlp = mlp

    def forward(self, x, edge_index):
        return self.mlp(x)


def test_models_are_called_the_way_their_forward_takes_a_graph(cora):
    """forward(data) (OGB's example models) gets the graph, forward(x) (an MLP baseline) the node features;
    before, both failed with a TypeError from the call model(x, edge_index)."""
    def fit(model):
        return Trainer(model, "cross_entropy", "node", epochs=3, seed=0, progress=False,
                       callbacks=[ModelCheckpoint(restore_best=False)]).fit(cora).history

    torch.manual_seed(0)
    gcn_model = PlainGCN()
    assert fit(_TakesData(copy.deepcopy(gcn_model))) == fit(gcn_model)
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(1433, 16), torch.nn.ReLU(), torch.nn.Linear(16, 7))
    assert fit(copy.deepcopy(mlp)) == fit(_IgnoresEdges(mlp))
    from torch_geometric.nn import MLP  # forward(x, batch=None): x alone, edge_index is not its batch

    torch.manual_seed(0)
    pyg_mlp = MLP([1433, 16, 7], norm="graph_norm", dropout=0.5)
    assert fit(copy.deepcopy(pyg_mlp)) == fit(_IgnoresEdges(pyg_mlp))


def test_a_compiled_model_is_called_as_the_model_it_wraps(cora):
    """torch.compile's OptimizedModule has forward(*args, **kwargs); read as taking every optional input, it was
    handed edge_attr and failed with a TypeError from the wrapped forward(x, edge_index)."""
    graph = copy.copy(cora)
    graph.edge_attr = torch.ones(graph.num_edges, 2)

    def fit(model):
        return Trainer(model, "cross_entropy", "node", epochs=2, seed=0, progress=False,
                       callbacks=[ModelCheckpoint(restore_best=False)]).fit(graph).history

    torch.manual_seed(0)
    model = PlainGCN()
    compiled = torch.compile(copy.deepcopy(model), backend="eager")  # eager: the same arithmetic, no C compiler
    assert fit(compiled) == fit(model)
    assert compiled(cora.x, cora.edge_index).shape == (cora.num_nodes, 7)


def test_torch_losses_of_probabilities_need_a_model_that_outputs_them(cora):
    """PyG's examples end in log_softmax and train with F.nll_loss: that equals cross-entropy on the raw outputs.
    Raw outputs given to NLLLoss trained without a word (a loss without minimum); given to BCELoss, they failed
    inside torch."""
    class LogSoftmax(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x, edge_index):
            return F.log_softmax(self.inner(x, edge_index), dim=-1)

    def fit(model, loss):
        return Trainer(model, loss, "node", epochs=3, seed=0, progress=False,
                       callbacks=[ModelCheckpoint(restore_best=False)]).fit(cora).history

    torch.manual_seed(0)
    model = PlainGCN()
    reference = fit(copy.deepcopy(model), "cross_entropy")
    for loss in (F.nll_loss, torch.nn.NLLLoss()):
        history = fit(LogSoftmax(copy.deepcopy(model)), loss)
        for ours, theirs in zip(history, reference):
            assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-5)
            assert ours["val_acc"] == theirs["val_acc"]
    for loss, name in ((F.nll_loss, "nll_loss"), (torch.nn.NLLLoss(), "NLLLoss")):
        with pytest.raises(ValidationError, match=rf"^{name} takes log-probabilities, but the model's outputs are "
                                                  rf"not \(their exp sums to [\d.]+ in some row, not 1\); end the "
                                                  rf"model with F.log_softmax\(out, dim=-1\)"):
            fit(copy.deepcopy(model), loss)
    binary = copy.copy(cora)
    binary.y = (cora.y == 3).float()
    with pytest.raises(ValidationError, match=r"^BCELoss takes probabilities in \[0, 1\], but the model's outputs "
                                              r"range over \[-?[\d.]+, [\d.]+\]; end the model with a sigmoid"):
        Trainer(torch.nn.Sequential(torch.nn.Linear(1433, 1)), torch.nn.BCELoss(), "node",
                task_kwargs={"metric": "rocauc"}, epochs=1, progress=False).fit(binary)


def test_a_model_of_probabilities_is_scored_at_one_half_and_refused_by_the_link_task(cora):
    """With torch's BCELoss the model outputs probabilities; acc and f1 thresholded them at 0 (a logit), so
    every node counted as positive."""
    binary = copy.copy(cora)
    binary.y = (cora.y == 3).float()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(1433, 1), torch.nn.Sigmoid())
    for metric in ("acc", "f1"):
        trainer = Trainer(copy.deepcopy(model), torch.nn.BCELoss(), "node", task_kwargs={"metric": metric},
                          epochs=3, progress=False)
        trainer.fit(binary)
        with torch.no_grad():
            predicted = (trainer.predict()[binary.test_mask].view(-1) > 0.5).float()
        truth = binary.y[binary.test_mask]
        if metric == "acc":
            expected = (predicted == truth).float().mean().item()
        else:
            tp = float((predicted * truth).sum())
            expected = 2 * tp / (2 * tp + float((predicted * (1 - truth)).sum() + ((1 - predicted) * truth).sum()))
        assert trainer.evaluate()[f"test_{metric}"] == pytest.approx(expected)
    assert 0 < predicted.mean() < 1  # some nodes on each side of 1/2: the threshold matters
    gnn = graphdl.models.create("gnn", layer="gcn", in_channels=1433, hidden_channels=8, out_channels=8)
    with pytest.raises(ConfigError, match=r"^BCELoss takes probabilities in \[0, 1\], but the link task scores "
                                          r"each node pair with a logit .*; use 'bce_with_logits'"):
        Trainer(gnn, torch.nn.BCELoss(), "link", progress=False)


def test_a_model_returning_more_than_its_predictions_is_told_so(cora):
    class WithAttention(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = GCNConv(1433, 7)

        def forward(self, x, edge_index):
            return self.conv(x, edge_index), edge_index

    with pytest.raises(ValidationError, match=r"^the node task takes one tensor of outputs from the model, one row "
                                              r"per node, but it returned a tuple; return only the predictions from "
                                              r"forward"):
        Trainer(WithAttention(), "cross_entropy", "node", epochs=1, progress=False).fit(cora)


def test_each_fit_starts_its_callbacks_afresh(cora):
    """Before: a second fit kept the first fit's best value, so ModelCheckpoint restored the first run's weights
    while the result reported the second run's best epoch, and a reused EarlyStopping stopped at once."""
    model = gcn()
    trainer = Trainer(model, "cross_entropy", "node", epochs=30, seed=0, progress=False)
    trainer.fit(cora)
    model.reset_parameters()
    trainer.epochs = 3
    second = trainer.fit(cora)
    assert trainer.evaluate(split="test") == second.test  # the weights are the second run's best

    stop = EarlyStopping(patience=2)
    first = Trainer(gcn(), "cross_entropy", "node", epochs=40, seed=0, progress=False, callbacks=[stop]).fit(cora)
    again = Trainer(gcn(), "cross_entropy", "node", epochs=40, seed=0, progress=False, callbacks=[stop]).fit(cora)
    assert again.history == first.history


def test_an_optimizer_class_gets_the_trainers_learning_rate(cora):
    """Before, optimizer=torch.optim.SGD was called as a factory, params -> optimizer, and trained silently at
    SGD's default lr instead of the Trainer's."""
    trainer = Trainer(gcn(), "cross_entropy", "node", optimizer=torch.optim.SGD, lr=0.05, weight_decay=5e-4,
                      epochs=1, progress=False)
    trainer.fit(cora)
    assert isinstance(trainer.optimizer, torch.optim.SGD)
    assert [(g["lr"], g["weight_decay"]) for g in trainer.optimizer.param_groups] == [(0.05, 5e-4)]
    with pytest.raises(ConfigError, match=r"^the optimizer factory returned NoneType, not a torch.optim.Optimizer"):
        Trainer(gcn(), "cross_entropy", "node", optimizer=lambda params: None, epochs=1, progress=False).fit(cora)


def _small_node_graph():
    mask = torch.arange(40) < 30
    return Data(x=torch.randn(40, 4), edge_index=torch.randint(0, 40, (2, 100)), y=torch.arange(40) % 3,
                train_mask=mask, val_mask=~mask)


def test_a_loss_class_or_a_loss_that_returns_no_usable_scalar_is_named():
    data = _small_node_graph()

    def model():
        return graphdl.models.create("gnn", layer="gcn", in_channels=4, hidden_channels=8, out_channels=3)

    with pytest.raises(ConfigError, match=r"^loss is the class CrossEntropyLoss; pass an instance, "
                                          r"loss=CrossEntropyLoss\(...\), or a registered name$"):
        Trainer(model(), torch.nn.CrossEntropyLoss, progress=False)  # was "Boolean value of Tensor ... ambiguous"
    cases = [  # before: torch's "grad can be implicitly created only for scalar outputs", an AttributeError on
        # float.backward, and "element 0 of tensors does not require grad"
        (torch.nn.CrossEntropyLoss(reduction="none"), r"^CrossEntropyLoss returned a tensor of shape \(30,\); the "
                                                      r"Trainer needs one scalar per batch"),
        (lambda out, y: 1.0, r"^<lambda> returned float 1.0; a loss returns a scalar torch tensor"),
        (lambda out, y: F.cross_entropy(out.detach(), y), r"^<lambda> returned a value without a gradient"),
    ]
    for loss, message in cases:
        with pytest.raises(ValidationError, match=message):
            Trainer(model(), loss, epochs=1, progress=False).fit(data)
    # a loss of shape (1,) is the scalar it holds (it failed adding to the epoch's running total)
    Trainer(model(), lambda out, y: F.cross_entropy(out, y).view(1), epochs=1, progress=False).fit(data)


def test_a_registered_loss_passed_as_an_instance_keeps_its_registered_kind():
    # an instance used the Loss base class's kind ("classification") over the kind it was registered with,
    # so a metric loss's embeddings were scored by argmax accuracy instead of k-NN accuracy
    @graphdl.losses.register("center_kind_test", kind="metric")
    class Center(graphdl.losses.Loss):
        def __init__(self, reduction="mean"):
            super().__init__(reduction)
            self.centers = torch.nn.Parameter(torch.randn(3, 8))

        def forward(self, embeddings, labels):
            return self._reduce(((embeddings - self.centers[labels]) ** 2).sum(1))

    try:
        model = graphdl.models.create("gnn", layer="gcn", in_channels=4, hidden_channels=8, out_channels=8)
        for loss in ("center_kind_test", Center()):
            trainer = Trainer(model, loss, epochs=1, progress=False)
            assert trainer.monitor == "val_knn_acc"
    finally:
        graphdl.losses.unregister("center_kind_test")


def test_node_task_batch_size_without_neighbour_sampling_is_refused():
    # it was ignored: the run trained full batch
    with pytest.raises(ConfigError, match=r"^the node task's batch_size=128 sets the seed nodes of each neighbour-"
                                          r"sampled mini-batch; give num_neighbors too"):
        graphdl.train.NodeTask(batch_size=128)
    assert graphdl.train.NodeTask(num_neighbors=[5, 5]).batch_size == 512
    assert graphdl.train.NodeTask(num_neighbors=[5], batch_size=64).batch_size == 64


def test_a_device_this_torch_build_lacks_is_named():
    model = graphdl.models.create("gnn", layer="gcn", in_channels=4, hidden_channels=8, out_channels=2)
    if not hasattr(torch, "xpu") or torch.xpu.is_available():
        pytest.skip("needs a torch build without a usable XPU")
    # before: a RuntimeError from model.to(device) (mps, xpu) after the Trainer had been half built
    with pytest.raises(ConfigError, match=r"^device 'xpu' cannot be used here \(.*\); use device='cpu'"):
        Trainer(model, device="xpu", progress=False)
    # a backend whose torch module is missing raised ModuleNotFoundError; 'meta' passed and failed in training
    with pytest.raises(ConfigError, match=r"^device 'hpu' cannot be used here \(.*\); use device='cpu'"):
        Trainer(model, device="hpu", progress=False)
    with pytest.raises(ConfigError, match=r"^device 'meta' holds no data and cannot train; use device='cpu'"):
        Trainer(model, device="meta", progress=False)


def test_split_names_given_as_evaluates_data_are_named():
    data = _small_node_graph()
    trainer = Trainer(graphdl.models.create("gnn", layer="gcn", in_channels=4, hidden_channels=8, out_channels=3),
                      epochs=1, progress=False)
    trainer.fit(data)
    for given in ("val", ["val"]):  # they were set up as the data: "the node task needs one ... graph, got list"
        with pytest.raises(ConfigError, match=r"^evaluate\(\) takes the data first \(None: the data fitted\); pass "
                                              r"the split names as evaluate\(split="):
            trainer.evaluate(given)
    assert set(trainer.evaluate(split=["val"])) == {"val_acc"}
    # Splits given where the split names go were read as names, then set up as no splits at all
    # ("the node task needs ..."); a mask or index dict is named as what it is.
    split = {"train": data.train_mask, "val": data.val_mask}
    for given in (split, data.val_mask):
        with pytest.raises(ConfigError, match=rf"^evaluate\(\)'s second argument is the split name\(s\) to score, "
                                              rf"got a {type(given).__name__}; pass the splits of the data as "
                                              rf"evaluate\(data, splits=\.\.\.\)"):
            trainer.evaluate(data, given)
    assert set(trainer.evaluate(data, "val", splits=split)) == {"val_acc"}


def test_seed_everything_takes_integers_in_torchs_range():
    graphdl.seed_everything(np.int64(3))  # random.seed refused NumPy integers with a TypeError
    first = torch.rand(2)
    graphdl.seed_everything(3)
    assert torch.equal(first, torch.rand(2))
    for bad in ("0", 1.5, None, True, 2**70):  # TypeErrors and overflows from random, NumPy or torch before
        with pytest.raises(ConfigError, match=r"^seed must be an int in \[-2\*\*63, 2\*\*64\)"):
            graphdl.seed_everything(bad)


def test_an_unfinished_task_subclass_or_a_task_class_is_named():
    class Half(graphdl.train.Task):
        def setup(self, data, splits=None, device="cpu"):
            self.data = data

    model = graphdl.models.create("gnn", layer="gcn", in_channels=4, hidden_channels=8, out_channels=2)
    with pytest.raises(NotImplementedError, match=r"^Half must implement Task.train_batches\(\) to be trained by "
                                                  r"the Trainer"):  # a bare NotImplementedError before
        Trainer(model, task=Half(), epochs=1, progress=False).fit(_small_node_graph())
    with pytest.raises(ConfigError, match=r"^task is the class Half; pass an instance, task=Half\(...\)$"):
        Trainer(model, task=Half, progress=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"metric": "f1"}, "the Trainer does not take 'metric', which is an argument of the task; pass "
                       "task_kwargs={'metric': 'f1'}"),
    ({"task": "graph", "batch_size": 4}, "the Trainer does not take 'batch_size', which is an argument of the task; "
                                         "pass task_kwargs={'batch_size': 4}"),
    ({"loss": "margin_ranking", "margin": 0.5}, "the Trainer does not take 'margin', which is an argument of the "
                                                "loss; pass loss_kwargs={'margin': 0.5}"),
    ({"task": graphdl.train.tasks.NodeTask(), "metric": "f1"}, "the Trainer does not take 'metric', which is an "
                                                               "argument of the task; pass it to the task you "
                                                               "built, NodeTask(..., metric='f1')"),
    ({"epoch": 3}, "the Trainer does not take 'epoch'. Did you mean 'epochs'? Its arguments: model, loss, task, "),
])
def test_an_argument_of_the_task_or_loss_given_to_the_trainer_is_pointed_to_where_it_goes(kwargs, message):
    """A plain TypeError ('unexpected keyword argument') before, which did not say where the argument goes."""
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        Trainer(torch.nn.Linear(3, 2), **kwargs)


def test_masks_holding_several_splits_one_per_column_are_named(cora):
    """PyG's WebKB / WikipediaNetwork / Actor masks are [N, 10]; before, the error counted 27080 entries."""
    data = cora.clone()
    gen = torch.Generator().manual_seed(0)
    for name in ("train_mask", "val_mask", "test_mask"):
        data[name] = torch.rand(data.num_nodes, 10, generator=gen) < 0.3
    with pytest.raises(ValidationError, match=re.escape(
            "split 'train' has shape (2708, 10): 10 splits, one per column (the layout of PyG's WebKB, "
            "WikipediaNetwork and Actor masks); train on one of them, e.g. splits={'train': data.train_mask[:, 0], "
            "'val': data.val_mask[:, 0], 'test': data.test_mask[:, 0]}")):
        Trainer(gcn(), epochs=1, progress=False).fit(data)
    splits = {"train": data.train_mask[:, 0], "val": data.val_mask[:, 0] & ~data.train_mask[:, 0]}
    assert set(Trainer(gcn(), epochs=1, progress=False).fit(data, splits).best) == {"epoch", "train_loss",
                                                                                   "train_acc", "val_acc"}


def test_a_monitored_split_left_out_of_eval_splits_is_named_before_training(cora):
    """It was refused after the first epoch, as 'not logged'."""
    with pytest.raises(ConfigError, match=re.escape(
            "the Trainer monitors 'val_acc', but eval_splits=['test'] leaves the 'val' split out, so it is never "
            "logged; add 'val' to eval_splits, or monitor a split it scores")):
        Trainer(gcn(), epochs=2, progress=False, eval_splits=["test"]).fit(cora)
    with pytest.raises(ConfigError, match=r"^EarlyStopping monitors 'train_acc', but eval_splits=\['val'\]"):
        Trainer(gcn(), epochs=2, progress=False, eval_splits=["val"], callbacks=[EarlyStopping("train_acc")]).fit(cora)
    result = Trainer(gcn(), epochs=2, progress=False, eval_splits=["val"], monitor="val_loss").fit(cora)
    assert set(result.best) == {"epoch", "train_loss", "val_acc", "val_loss"}
