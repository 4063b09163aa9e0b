"""Every registered loss against the node, link and graph tasks, as the README's table of loss kinds says.

A supported (loss, task) pair fits two epochs of a tiny seeded model with a finite ``train_loss``, is scored by
the metric its kind is documented to be scored by, and gives the same history when fitted twice with one seed;
an unsupported pair is refused with a ConfigError when the Trainer is built, naming the loss, its kind, the task
and what to use instead. The losses come from the registry, so a new loss is covered (or names the constructor
argument this file must learn to fill).
"""

import copy
import inspect
import math
import re

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.transforms import RandomLinkSplit

import graphdl
from graphdl import losses
from graphdl.errors import ConfigError, ValidationError
from graphdl.train import Trainer
from graphdl.train.metrics import resolve_metric
from graphdl.train.tasks import _ONE_TARGET_PER_OUTPUT, link_inputs

N, FEATURES, CLASSES, EMB = 30, 6, 3, 4
TASKS = ("node", "link", "graph")
GRAPH_SPLITS = {"train": torch.arange(12), "val": torch.arange(12, 16), "test": torch.arange(16, 20)}
#: values for constructor arguments without a default (a loss with another one makes its test fail and name it)
REQUIRED = {"num_classes": None, "embedding_size": EMB, "hidden_channels": EMB}
#: documented settings: a ranked link loss needs a positive margin (README, tests/test_loss_kinds.py)
SETTINGS = {"margin_ranking": {"margin": 1.0}}


def loss_kwargs(name, classes):
    cls = losses.get(name)
    kwargs = dict(SETTINGS.get(name, {}))
    if isinstance(cls, type):
        for p in inspect.signature(cls).parameters.values():
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                assert p.name in REQUIRED, f"loss {name!r} needs {p.name!r}: teach this test a value for it"
                kwargs[p.name] = classes if p.name == "num_classes" else REQUIRED[p.name]
    return kwargs


def kind_of(name):
    return losses.entry_kind(losses.entry(name))


def binary_targets(name):
    """Whether the loss takes one 0/1 target per output (bce_with_logits), not class labels."""
    return isinstance(losses.create(name, **loss_kwargs(name, 2)), _ONE_TARGET_PER_OUTPUT)


def documented(name, task):
    """The README's table: (supported, the metric the kind is scored by)."""
    kind = kind_of(name)
    if task == "link":
        if kind in ("classification", "regression"):
            return name != "cross_entropy", "rocauc"  # cross_entropy needs one logit per class
        inputs = link_inputs(losses.create(name, **loss_kwargs(name, CLASSES)))
        if kind == "ranking":
            return inputs == "ranked", "rocauc"
        if kind == "graph":
            return inputs == "pos_neg", "rocauc"
        return False, None  # metric, divergence
    if kind in ("ranking", "graph"):
        return False, None
    if kind == "metric":
        return True, "knn_acc"
    if kind == "regression":
        return True, "rmse"
    return True, "acc" if task == "node" else "rocauc"  # classification, divergence


def node_graph(target):
    g = torch.Generator().manual_seed(0)
    edge_index = torch.randint(0, N, (2, 60), generator=g)
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    edge_index = torch.cat([edge_index, edge_index.flip(0)], 1)
    if target == "regression":
        y = torch.randn(N, 1, generator=g)
    elif target == "binary":
        y = (torch.arange(N) % 2).float().view(-1, 1)
    else:
        y = torch.arange(N) % CLASSES
    perm = torch.randperm(N, generator=g)

    def mask(a, b):
        return torch.zeros(N, dtype=torch.bool).index_fill_(0, perm[a:b], True)

    return Data(x=torch.randn(N, FEATURES, generator=g), edge_index=edge_index, y=y,
                train_mask=mask(0, 15), val_mask=mask(15, 22), test_mask=mask(22, 30))


def small_graphs(target):
    g = torch.Generator().manual_seed(1)
    out = []
    for i in range(20):
        n = 4 + i % 3
        if target == "regression":
            y = torch.randn(1, 1, generator=g)
        elif target == "binary":
            y = torch.tensor([[float(i % 2)]])
        else:
            y = torch.tensor([i % 2])
        out.append(Data(x=torch.randn(n, FEATURES, generator=g), edge_index=torch.randint(0, n, (2, 2 * n),
                                                                                          generator=g), y=y))
    return out


def target_of(name):
    kind = kind_of(name)
    if kind == "regression":
        return "regression"
    return "binary" if kind == "classification" and binary_targets(name) else "labels"


def setup(name, task):
    """The model, loss arguments and fit arguments of one (loss, task) pair."""
    kind, target = kind_of(name), target_of(name)
    classes = CLASSES if task == "node" else 2
    outputs = EMB if kind == "metric" else 1 if target in ("regression", "binary") else classes
    graphdl.seed_everything(0)
    if task == "link":
        model = graphdl.models.create("link_gnn", layer="gcn", in_channels=FEATURES, hidden_channels=8,
                                      out_channels=8, num_layers=2)
        torch.manual_seed(0)
        splits = RandomLinkSplit(num_val=0.1, num_test=0.1, is_undirected=True, split_labels=True,
                                 add_negative_train_samples=False)(node_graph("labels"))
        args = (None, splits)
    elif task == "node":
        model = graphdl.models.create("gnn", layer="gcn", in_channels=FEATURES, hidden_channels=8,
                                      out_channels=outputs, num_layers=2)
        args = (node_graph(target),)
    else:
        model = graphdl.models.create("graph_gnn", layer="gcn", in_channels=FEATURES, hidden_channels=8,
                                      out_channels=outputs, num_layers=2)
        args = (small_graphs(target), GRAPH_SPLITS)
    return model, loss_kwargs(name, classes), args


def trainer(name, task, model, kwargs):
    return Trainer(model, name, task, loss_kwargs=kwargs or None, epochs=2, lr=0.01, seed=0, progress=False,
                   task_kwargs={"batch_size": 8} if task == "graph" else None)


PAIRS = [(name, task) for name in losses.list() for task in TASKS]


@pytest.mark.parametrize("name, task", PAIRS, ids=[f"{n}-{t}" for n, t in PAIRS])
def test_every_loss_trains_or_is_refused_as_documented(name, task):
    supported, metric = documented(name, task)
    model, kwargs, args = setup(name, task)
    if not supported:
        with pytest.raises(ConfigError) as info:
            trainer(name, task, model, kwargs)
        message, kind = str(info.value), kind_of(name)
        assert repr(name) in message and f"{task} task" in message, message
        # the kind, or for cross_entropy on links why it does not fit (one logit per class)
        assert (kind if kind != "classification" else "one logit per class") in message, message
        assert re.search(r"\b([Uu]se|train it with)\b", message), message  # what to use instead
        return
    histories = []
    for global_seed in (1, 2):  # the global RNG in another state when each Trainer is built: the seed decides
        run_model = copy.deepcopy(model)
        torch.manual_seed(global_seed)
        fitted = trainer(name, task, run_model, kwargs)
        assert fitted.task.metric.name == metric
        histories.append(fitted.fit(*args).history)
    first, second = histories
    assert len(first) == 2 and all(math.isfinite(h["train_loss"]) for h in first)
    assert {k for k in first[-1] if k not in ("epoch", "train_loss")} == {f"{s}_{metric}" for s in
                                                                        ("train", "val", "test")}
    assert first == second


def test_a_seeded_trainer_draws_its_losss_parameters_from_the_seed():
    """ArcFace's class centres, built by the Trainer from the loss's name, came from whatever state the global
    RNG was in: two Trainers with seed=0 and copies of one model trained differently (train_loss 37.88 vs
    37.74 after 2 epochs on a 30-node graph). Without a seed they still come from the global RNG."""
    kwargs = {"num_classes": CLASSES, "embedding_size": EMB}
    model = graphdl.models.create("gnn", layer="gcn", in_channels=FEATURES, hidden_channels=8, out_channels=EMB)
    states = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        before = torch.get_rng_state()
        built = Trainer(copy.deepcopy(model), "arcface", loss_kwargs=kwargs, seed=7, progress=False)
        assert torch.equal(torch.get_rng_state(), before)  # the global RNG is left where it was
        states.append(built.loss_fn.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    torch.manual_seed(7)
    assert all(torch.equal(v, losses.create("arcface", **kwargs).state_dict()[k]) for k, v in states[0].items())
    torch.manual_seed(3)
    unseeded = Trainer(copy.deepcopy(model), "arcface", loss_kwargs=kwargs, progress=False).loss_fn.state_dict()
    torch.manual_seed(3)
    assert all(torch.equal(v, losses.create("arcface", **kwargs).state_dict()[k]) for k, v in unseeded.items())


def test_acc_refuses_targets_that_are_not_0_1_beside_one_logit_each():
    """acc reads one logit per target as the label logit > 0: regression values scored 0.0 and class ids above 1
    silent misses, where rocauc, ap and f1 refuse such targets."""
    acc = resolve_metric("acc")
    message = (r"^acc compares one logit per target with 0/1 labels \(logit > 0 is 1\), but the targets hold "
               r"{}; score regression targets with metric 'rmse' or 'mae', and give class labels one output per "
               r"class$")
    with pytest.raises(ValidationError, match=message.format(r"0\.5, 1\.5")):
        acc(torch.tensor([[0.5], [1.5], [1.0]]), torch.tensor([[0.3], [2.0], [1.0]]))
    with pytest.raises(ValidationError, match=message.format("2")):
        acc(torch.tensor([0, 1, 2, 2]), torch.tensor([-1.0, 1.0, 1.0, 1.0]))
    with pytest.raises(ValidationError, match=message.format(r"0\.25")):  # multi-label rows
        acc(torch.tensor([[0.0, 1.0], [0.25, 1.0]]), torch.tensor([[-1.0, 1.0], [1.0, 1.0]]))
    # 0/1 targets (NaN ones unlabelled) and class labels beside one logit per class are scored as before
    assert acc(torch.tensor([[0.0, 1.0], [float("nan"), 1.0]]), torch.tensor([[-1.0, 1.0], [5.0, -1.0]])) == 0.75
    assert acc(torch.tensor([2, 0]), torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])) == 0.5

    data = node_graph("regression")
    graphdl.seed_everything(0)
    model = graphdl.models.create("gnn", layer="gcn", in_channels=FEATURES, hidden_channels=8, out_channels=1)
    with pytest.raises(ValidationError, match=r"^acc compares one logit per target with 0/1 labels"):
        Trainer(model, "mse", "node", task_kwargs={"metric": "acc"}, epochs=1, progress=False).fit(data)


@pytest.mark.parametrize("task", ["node", "graph"])
def test_knn_acc_of_regression_targets_is_named(task):
    """metric='knn_acc' beside continuous targets failed inside sklearn ("Unknown label type: continuous")."""
    graphdl.seed_everything(0)
    model = graphdl.models.create("gnn" if task == "node" else "graph_gnn", layer="gcn", in_channels=FEATURES,
                                  hidden_channels=8, out_channels=1)
    args = (node_graph("regression"),) if task == "node" else (small_graphs("regression"), GRAPH_SPLITS)
    fit = Trainer(model, "mse", task, task_kwargs={"metric": "knn_acc"}, epochs=1, progress=False)
    with pytest.raises(ValidationError, match=r"^knn_acc predicts the class labels of items from their nearest "
                                              r"training items, but the targets hold values that are not class "
                                              r"labels \(torch.float32, e.g. -?\d\.\d+\); give class labels, or "
                                              r"score regression targets with metric 'rmse' or 'mae'$"):
        fit.fit(*args)


def test_a_metric_loss_with_several_targets_per_item_names_their_shape():
    """Multi-label targets were flattened into labels of other items: SupCon then said 'labels has 24 entries but
    embeddings has 12 rows' about labels the user never passed."""
    graphs = small_graphs("labels")
    for i, g in enumerate(graphs):
        g.y = torch.tensor([[i % 2, (i // 2) % 2]])
    graphdl.seed_everything(0)
    model = graphdl.models.create("graph_gnn", layer="gcn", in_channels=FEATURES, hidden_channels=8,
                                  out_channels=EMB)
    fit = Trainer(model, "supcon", "graph", task_kwargs={"batch_size": 12}, epochs=1, progress=False)
    with pytest.raises(ValidationError, match=r"^'supcon' is a metric loss, which learns embeddings from one class "
                                              r"label per item, but the targets have shape \(12, 2\) for 12 graphs; "
                                              r"give one class label per item, or for multi-label targets use "
                                              r"'bce_with_logits'$"):
        fit.fit(graphs, GRAPH_SPLITS)


@pytest.mark.parametrize("loss, why", [
    (torch.nn.SoftMarginLoss(), r"takes -1/\+1 targets, but the tasks give 0/1 labels"),
    (torch.nn.MultiLabelMarginLoss(), r"takes targets of class indices padded with -1"),
    (torch.nn.GaussianNLLLoss(), r"takes a third argument, the predicted variance"),
])
def test_torch_losses_whose_targets_no_task_gives_are_named_when_built(loss, why):
    """SoftMarginLoss on the link task's 0/1 labels cost every negative log 2 with no gradient, silently; the
    others failed inside torch at the first batch."""
    model = graphdl.models.create("link_gnn", layer="gcn", in_channels=FEATURES, hidden_channels=8)
    with pytest.raises(ConfigError, match=rf"^torch\.nn\.{type(loss).__name__} {why}"):
        Trainer(model, loss, "link", epochs=1, progress=False)


def test_poisson_nll_is_a_regression_loss_like_mse():
    """Without a kind, PoissonNLLLoss was called as an unknown loss; as a regression loss it is scored by rmse and
    gets the float targets in the output's shape, as mse does."""
    data = node_graph("regression")
    data.y = data.y.exp().round()  # counts
    graphdl.seed_everything(0)
    model = graphdl.models.create("gnn", layer="gcn", in_channels=FEATURES, hidden_channels=8, out_channels=1)
    trainer = Trainer(model, torch.nn.PoissonNLLLoss(), "node", epochs=2, seed=0, progress=False)
    assert trainer.task.loss_kind == "regression"
    history = trainer.fit(data).history
    assert all(math.isfinite(h["train_loss"]) and math.isfinite(h["val_rmse"]) for h in history)


@pytest.mark.parametrize("metric", ["acc", "f1"])
def test_a_regression_loss_on_the_link_task_is_not_scored_by_a_cut_at_zero(metric):
    """mse trains pair scores toward 0/1, and acc/f1 read them as logits cut at 0: nearly every pair counted as an
    edge, a score that looked like a result."""
    model = graphdl.models.create("link_gnn", layer="gcn", in_channels=FEATURES, hidden_channels=8)
    with pytest.raises(ConfigError, match=rf"^'mse' is a regression loss, which trains each pair's score toward its "
                                          rf"0/1 label, but metric '{metric}' reads the scores as logits"):
        Trainer(model, "mse", "link", task_kwargs={"metric": metric}, epochs=1, progress=False)
    Trainer(model, "mse", "link", task_kwargs={"metric": "rocauc"}, epochs=1, progress=False)  # no threshold
