"""Every registered model against every registered task, as the README and the models' docstrings pair them.

A supported (model, task) pair fits two epochs of tiny seeded data with a finite ``train_loss``, is scored by the
metric the docs name, gives the same history and predictions when fitted twice with one seed, and ``evaluate()`` /
``predict()`` after the fit return what the docs say. Any other pair is refused with a graphdl error raised by
graphdl itself (never a traceback from inside torch or PyG, never a silent fit); the tasks of ``graphdl.train``
name the task and what to use instead. Models and tasks come from the live registries (those registered by
tests are left out), so a new plugin is covered, or fails here naming what this file must learn about it.
"""

import math
import os
import re
import traceback

import pytest
import torch
import torch_geometric
from torch_geometric.data import Data
from torch_geometric.transforms import RandomLinkSplit

import graphdl
from graphdl.errors import ConfigError, GraphDLError, ValidationError
from graphdl.graphs import chain
from graphdl.models.lenet import digits_graphs
from graphdl.train import TASKS, Trainer

N, F, C, EMB = 24, 5, 3, 4
GRAPHDL_DIR = os.path.dirname(graphdl.__file__)
NODE_LEVEL = {"node", "inductive_node", "contrastive", "link", "autoencoder"}
#: what the README and the docstrings pair: node-level encoders on node-level tasks, the rest on their own task
SUPPORTED = {"gnn": NODE_LEVEL, "link_gnn": NODE_LEVEL, "gae": NODE_LEVEL, "vgae": {"autoencoder"},
             "arga": {"adversarial_autoencoder"}, "argva": {"adversarial_autoencoder"},
             "graph_gnn": {"graph"}, "ogb_mol": {"graph"}, "lenet_grid": {"graph"}, "chain_forecaster": {"graph"},
             "dominant": {"anomaly"}, "latent_distance": {"anomaly"}, "mlp_ae": {"anomaly"}}
#: the metric each task is documented to log (the graph task: rocauc for classification, rmse for regression)
METRICS = {"node": ("acc",), "inductive_node": ("acc",), "contrastive": ("knn_acc",), "link": ("rocauc",),
           "autoencoder": ("rocauc", "ap"), "adversarial_autoencoder": ("rocauc", "ap"), "anomaly": ("rocauc",),
           "graph": ("rocauc",)}
#: tasks whose refusals this file holds to naming the task and an alternative (the others: a graphdl error)
TRAIN_TASKS = {"node", "inductive_node", "contrastive", "link", "graph"}
ALTERNATIVES = re.compile(r"\b(?:gnn|graph_gnn)\b|task='\w+'")


def _registered(registry):
    return [name for name in registry.list() if not registry.entry(name).origin.startswith("test")]


MODEL_NAMES, TASK_NAMES = _registered(graphdl.models), _registered(TASKS)


# ---------------------------------------------------------------------------- data
def node_graph(seed=0, n=N, masks=True):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, 3 * n), generator=g)
    ei = ei[:, ei[0] != ei[1]]
    data = Data(x=torch.randn(n, F, generator=g), edge_index=torch.cat([ei, ei.flip(0)], 1).unique(dim=1),
                y=torch.randint(0, C, (n,), generator=g))
    if masks:
        perm = torch.randperm(n, generator=g)
        for name, idx in (("train", perm[:12]), ("val", perm[12:18]), ("test", perm[18:])):
            data[f"{name}_mask"] = torch.zeros(n, dtype=torch.bool).index_fill_(0, idx, True)
    return data


def plain_graphs(k=16):
    graphs = [node_graph(i, n=6, masks=False) for i in range(k)]
    for i, g in enumerate(graphs):
        g.y = torch.tensor([[float(i % 2)]])
    return graphs


def mol_graphs(k=16):
    g = torch.Generator().manual_seed(3)
    ei = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4], [1, 0, 2, 1, 3, 2, 4, 3]])
    return [Data(x=torch.randint(0, 2, (5, 9), generator=g), edge_index=ei,
                 edge_attr=torch.randint(0, 2, (ei.size(1), 3), generator=g), y=torch.tensor([[float(i % 2)]]))
            for i in range(k)]


def chain_graphs(k=16):
    g = torch.Generator().manual_seed(4)
    out = []
    for _ in range(k):
        c = chain([torch.randn(6, 3, generator=g)])
        out.append(Data(x=c.x, edge_index=c.edge_index, y=torch.randn(1, 2, generator=g)))
    return out


GRAPH_DATA = {"ogb_mol": mol_graphs, "lenet_grid": lambda: list(digits_graphs())[:16], "chain_forecaster": chain_graphs}


def data_for(model, task):
    """``(data, splits)`` for the task, of the kind the model reads where the task is the model's own."""
    graphdl.seed_everything(0)  # RandomLinkSplit samples its negatives from Python's RNG
    if task in ("node", "contrastive", "autoencoder", "adversarial_autoencoder"):
        return node_graph(), None
    if task == "anomaly":
        data = node_graph()
        data.y_outlier = (torch.arange(N) % 4 == 0).long()
        return data, None
    if task == "inductive_node":
        graphs = [node_graph(i, n=8, masks=False) for i in range(5)]
        return None, {"train": graphs[:3], "val": graphs[3:4], "test": graphs[4:]}
    if task == "link":
        data = node_graph(masks=False)
        del data.y
        return None, RandomLinkSplit(num_val=0.1, num_test=0.1, is_undirected=True, split_labels=True,
                                     add_negative_train_samples=False)(data)
    if task == "graph":
        return GRAPH_DATA.get(model, plain_graphs)(), {"train": torch.arange(10), "val": torch.arange(10, 13),
                                                       "test": torch.arange(13, 16)}
    raise AssertionError(f"task {task!r} is new: teach this test its data, its metric and which models it trains")


def build(model):
    create = graphdl.models.create
    factories = {
        "gnn": lambda: create("gnn", in_channels=F, hidden_channels=8, out_channels=C),
        "link_gnn": lambda: create("link_gnn", in_channels=F, hidden_channels=8, out_channels=C),
        "graph_gnn": lambda: create("graph_gnn", in_channels=F, hidden_channels=8, out_channels=1),
        "ogb_mol": lambda: create("ogb_mol", num_tasks=1, hidden_channels=8, num_layers=2),
        "lenet_grid": lambda: create("lenet_grid"),
        "chain_forecaster": lambda: create("chain_forecaster", in_channels=3, out_channels=2, hidden_channels=8),
        "dominant": lambda: create("dominant", in_channels=F, hidden_channels=8),
        "latent_distance": lambda: create("latent_distance", in_channels=F, hidden_channels=8),
        "mlp_ae": lambda: create("mlp_ae", in_channels=F, hidden_channels=8),
    }
    for name in ("gae", "vgae", "arga", "argva"):
        factories[name] = lambda name=name: create(name, in_channels=F, hidden_channels=8, out_channels=EMB)
    assert model in factories, f"model {model!r} is new: teach this test to build it and the tasks it supports"
    graphdl.seed_everything(0)
    return factories[model]()


def trainer_for(model_name, task, model):
    kwargs = {}
    if task == "graph" and model_name == "lenet_grid":
        kwargs = {"loss": "cross_entropy", "task_kwargs": {"metric": "acc"}}  # fit_digits' settings
    elif task == "graph" and model_name == "chain_forecaster":
        kwargs = {"loss": "mse"}  # fit_forecaster's loss
    elif model_name in ("vgae", "argva") and task in ("autoencoder", "adversarial_autoencoder"):
        kwargs = {"loss": "vgae"}
    return Trainer(model, task=task, epochs=2, seed=0, lr=0.01, progress=False, **kwargs)


def expected_metrics(model, task):
    if task == "graph":
        return {"lenet_grid": ("acc",), "chain_forecaster": ("rmse",)}.get(model, METRICS["graph"])
    return METRICS[task]


def expected_rows(model, task, data, splits):
    """The rows ``predict()`` gives: one per node (per graph for the graph task), all splits for inductive_node."""
    if task == "graph":
        return len(data)
    if task == "inductive_node":
        return sum(g.num_nodes for graphs in splits.values() for g in graphs)
    return N


def fit(model_name, task):
    data, splits = data_for(model_name, task)
    trainer = trainer_for(model_name, task, build(model_name))
    return trainer, trainer.fit(data, splits), data, splits


PAIRS = [(m, t) for m in MODEL_NAMES for t in TASK_NAMES]


@pytest.mark.parametrize("model, task", [p for p in PAIRS if p[1] in SUPPORTED.get(p[0], ())])
def test_a_supported_pair_trains_scores_and_predicts_reproducibly(model, task):
    trainer, result, data, splits = fit(model, task)
    twin, twin_result, _, _ = fit(model, task)
    assert all(math.isfinite(epoch["train_loss"]) for epoch in result.history)
    split = "all" if task == "anomaly" else "val"
    for metric in expected_metrics(model, task):
        assert f"{split}_{metric}" in result.history[-1], (metric, result.history[-1])
    assert result.history == twin_result.history  # one seed, one run
    evaluated = trainer.evaluate(split=split if task == "anomaly" else "test")
    assert sorted(evaluated) == sorted(f"{'all' if task == 'anomaly' else 'test'}_{m}"
                                       for m in expected_metrics(model, task))
    if task != "anomaly":  # the best epoch's state is restored: its test figures again
        assert evaluated == pytest.approx(result.test)
    predicted = trainer.predict()
    assert torch.equal(predicted, twin.predict())
    assert predicted.size(0) == expected_rows(model, task, data, splits) and bool(predicted.isfinite().all())
    if task == "anomaly":
        assert predicted.dim() == 1  # one score per node


@pytest.mark.parametrize("model, task", [p for p in PAIRS if p[1] not in SUPPORTED.get(p[0], ())])
def test_an_unsupported_pair_is_refused_by_graphdl(model, task):
    data, splits = data_for(model, task)
    with pytest.raises(GraphDLError) as info:
        trainer_for(model, task, build(model)).fit(data, splits)
    raised_in = traceback.extract_tb(info.tb)[-1].filename
    assert raised_in.startswith(GRAPHDL_DIR), f"raised inside {raised_in}: {info.value}"
    if task in TRAIN_TASKS:
        message = str(info.value)
        assert f"{task} task" in message and ALTERNATIVES.search(message), message


# ---------------------------------------------------------------------------- the fixes, one by one
@pytest.mark.parametrize("task", ["node", "inductive_node", "contrastive", "graph"])
@pytest.mark.parametrize("model", ["arga", "argva", "vgae"])
def test_auto_encoders_are_refused_where_their_objective_is_missing(model, task):
    """Before, the node, inductive_node and contrastive tasks trained ARGA with its discriminator untouched and
    VGAE as samples without a KL term (train_loss finite, no word); the link task already refused both."""
    data, splits = data_for(model, task)
    name = {"arga": "ARGA", "argva": "ARGVA", "vgae": "VGAE"}[model]
    per = "graph" if task == "graph" else "node"
    instead = f"for {per}-level predictions use a {per}-level model such as {'graph_gnn' if per == 'graph' else 'gnn'}"
    if model == "vgae":
        expected = (f"{name} is variational, and the {task} task's loss has no KL term (its outputs would be "
                    f"samples of an unregularised posterior); train it with task='autoencoder' and loss='vgae' "
                    f"(reconstruction + KL/N), or {instead}")
    else:
        expected = (f"{name} is an adversarial auto-encoder: the {task} task would train its encoder alone and "
                    f"leave its discriminator untrained; train it with task='adversarial_autoencoder', or {instead}")
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        trainer_for(model, task, build(model)).fit(data, splits)


@pytest.mark.parametrize("task", ["node", "inductive_node", "contrastive", "link"])
@pytest.mark.parametrize("model, name", [("lenet_grid", "LeNetGrid"), ("chain_forecaster", "ChainForecaster"),
                                         ("ogb_mol", "GraphGNN")])
def test_graph_level_models_are_refused_by_node_level_tasks_naming_both(model, name, task):
    """Before, each failed inside its own forward on a node task's graph, naming neither model nor task: LeNet on
    its pixel count, the chain forecaster on a non-chain edge, ogb_mol's virtual node on its BatchNorm (advising
    to leave the virtual node out, after which the pooled rows failed again)."""
    data, splits = data_for(model, task)
    expected = (f"{name} gives one output row per graph, but the {task} task needs one row per node; train {name} "
                f"with task='graph', or for node-level predictions use a node-level model such as gnn")
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        trainer_for(model, task, build(model)).fit(data, splits)


@pytest.mark.parametrize("task", ["node", "inductive_node", "contrastive", "link", "graph"])
@pytest.mark.parametrize("model, name", [("dominant", "DOMINANT"), ("latent_distance", "LatentDistanceDetector"),
                                         ("mlp_ae", "MLPAutoEncoder")])
def test_anomaly_detectors_elsewhere_point_to_the_anomaly_task(model, name, task):
    """Before: "it returned a AEOutput; return only the predictions from forward", advice a built-in detector's
    user cannot follow."""
    data, splits = data_for(model, task)
    per = "graph" if task == "graph" else "node"
    expected = (f"the {task} task takes one tensor of outputs from the model, one row per {per}, but {name} "
                f"returned an AEOutput (x_hat, s_hat, z): it is an anomaly detector (dominant, latent_distance, "
                f"mlp_ae); train it with task='anomaly', or for the {task} task use a {per}-level model such as "
                f"{'graph_gnn' if per == 'graph' else 'gnn'}")
    with pytest.raises(ValidationError, match=f"^{re.escape(expected)}$"):
        trainer_for(model, task, build(model)).fit(data, splits)


@pytest.mark.parametrize("task", ["node", "graph"])
def test_float_labels_that_are_not_whole_are_refused_not_truncated(task):
    """Before, 1.5 beside three class outputs got "cast them with data.y = data.y.long()", which makes it class 1;
    whole float labels still get that advice."""
    if task == "node":
        data, splits = node_graph(), None
        data.y = data.y.float()
        data.y[int(data.train_mask.nonzero()[0])] = 1.5
        model = graphdl.models.create("gnn", in_channels=F, hidden_channels=8, out_channels=C)
    else:
        data, splits = plain_graphs(), {"train": torch.arange(10), "val": torch.arange(10, 16)}
        for i, g in enumerate(data):
            g.y = torch.tensor([1.5 if i == 0 else float(i % 3)])
        model = graphdl.models.create("graph_gnn", in_channels=F, hidden_channels=8, out_channels=C)
    expected = ("'cross_entropy' takes class labels as integers, but the targets hold torch.float32 values that are "
                "not whole numbers, e.g. 1.5: not class ids (data.y.long() would truncate them). Give integer class "
                "ids (data.y); for continuous targets use a regression loss such as 'mse'.")
    trainer = Trainer(model, "cross_entropy", task, task_kwargs={"metric": "acc"}, epochs=1, progress=False)
    with pytest.raises(ValidationError, match=f"^{re.escape(expected)}$"):
        trainer.fit(data, splits)
    data = node_graph()
    data.y = data.y.float()  # whole numbers: the cast is right
    with pytest.raises(ValidationError, match=r"cast them with data\.y = data\.y\.long\(\)$"):
        Trainer(graphdl.models.create("gnn", in_channels=F, hidden_channels=8, out_channels=C), "cross_entropy",
                "node", epochs=1, progress=False).fit(data)


def test_gnn_repr_names_the_settings_that_differ_from_the_defaults():
    """Before, every model below printed "GNN(gcn, 5, 3, num_layers=2)"."""
    gnn = graphdl.models.gnn.GNN
    plain = gnn("gcn", F, 64, C)
    assert repr(plain) == "GNN(gcn, 5, 3, num_layers=2)"
    variants = [gnn("gcn", F, 8, C), gnn("gcn", F, 64, C, dropout=0.1), gnn("gcn", F, 64, C, norm="batch"),
                gnn("gcn", F, 64, C, jk="cat"), gnn("gcn", F, 64, C, residual=True),
                gnn("gcn", F, 64, C, norm=torch.nn.LayerNorm(64)), gnn("gcn", 64, 64, C, virtual_node=True)]
    shown = [repr(v) for v in variants]
    assert len(set(shown + [repr(plain)])) == len(variants) + 1, shown
    assert all(s.startswith("GNN(gcn, ") and ", num_layers=2" in s for s in shown)
    assert shown[0] == "GNN(gcn, 5, 3, num_layers=2, hidden_channels=8)"
    assert shown[5].endswith("norm=LayerNorm)") and shown[6].endswith("virtual_node=True)")
    mol = graphdl.models.create("ogb_mol", num_tasks=1, layer="gine", hidden_channels=8, num_layers=2).encoder
    assert repr(mol) == ("GNN(gine, 8, 8, num_layers=2, hidden_channels=8, norm='batch', plain_last=False, "
                         "virtual_node=True, node_encoder=AtomEncoder, edge_encoder=BondEncoder, edge_dim=8)")
    assert repr(gnn("gcn", F, 64, C, input_dropout=0, residual=False)) == repr(plain)  # the defaults, given


@pytest.mark.parametrize("norm", ["graphsize", "meansubtraction", "diffgroup", "message"])
def test_a_norm_that_needs_other_arguments_is_named_not_a_torch_type_error(norm):
    """Before, PyG's resolver built them with the width alone and the TypeError came from their constructor (from
    torch's Parameter for MessageNorm), naming no argument of the GNN."""
    with pytest.raises(ConfigError, match=rf"^norm '{norm}' cannot be built from the layer width alone \(.+\); pass "
                                          r"a configured torch_geometric\.nn\.norm module instead \(each layer gets a "
                                          r"copy of it\), e\.g\. norm=torch_geometric\.nn\.norm\.DiffGroupNorm\(8, "
                                          r"groups=4\)$"):
        graphdl.models.create("gnn", in_channels=F, hidden_channels=8, out_channels=C, norm=norm)
    model = graphdl.models.create("gnn", in_channels=F, hidden_channels=8, out_channels=C,
                                  norm=torch_geometric.nn.norm.GraphSizeNorm())  # the module, as advised
    assert model(node_graph().x, node_graph().edge_index).shape == (N, C)


@pytest.mark.parametrize("task, suggestion", [
    ("node", "for node-level predictions use a node-level model such as gnn"),
    ("autoencoder", "use a graph auto-encoder such as gae"),
    ("adversarial_autoencoder", "use a graph auto-encoder such as gae"),
    ("anomaly", "use a detector such as dominant"),
])
def test_a_model_the_task_cannot_train_is_refused_when_the_trainer_is_built(task, suggestion):
    """The refusals came at the first batch (the auto-encoder and anomaly tasks failed inside LeNet's forward on its
    pixel count); Task.check_model runs when the Trainer is built."""
    expected = (f"LeNetGrid gives one output row per graph, but the {task} task needs one row per node; train "
                f"LeNetGrid with task='graph', or {suggestion}")
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        Trainer(build("lenet_grid"), task=task, epochs=1, progress=False)


@pytest.mark.parametrize("model, task, expected", [
    ("arga", "link", "ARGA is an adversarial auto-encoder: the link task would train its encoder alone"),
    ("vgae", "link", "VGAE is variational, and the link task's loss has no KL term"),
    ("arga", "autoencoder", "ARGA is an adversarial auto-encoder: the autoencoder task would train its encoder"),
    ("gae", "adversarial_autoencoder", "the adversarial_autoencoder task needs a model with a discriminator"),
])
def test_the_link_and_auto_encoder_tasks_refuse_a_model_when_the_trainer_is_built(model, task, expected):
    """These refusals came at the first batch, inside train_loss; Task.check_model makes them at construction."""
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}"):
        Trainer(build(model), task=task, epochs=1, progress=False)
