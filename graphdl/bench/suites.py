"""Benchmark configurations and suites.

A configuration is a flat dict: the model's arguments plus the training keys
in :data:`TRAIN_KEYS` and ``model`` (the label printed in tables and used to
look up references: ``gcn``, ``gat``, ``gin-virtual``, ``sage`` ...).

Configurations (the published or official ones):

* Planetoid ``gcn``: Kipf & Welling / PyG ``gcn.py``: 2 layers, 16 hidden,
  dropout 0.5 and input dropout 0.5, Adam lr 0.01, weight decay 5e-4 on the
  first layer only, 200 epochs, row-normalised features.
* Planetoid ``gat``: Velickovic et al. / PyG ``gat.py``: 8 heads x 8 hidden,
  ELU, attention dropout 0.6, dropout 0.6 and input dropout 0.6, one output
  head averaged (``heads=1, concat=False``), Adam lr 0.005, weight decay 5e-4,
  row-normalised features, 500 epochs (PyG's example runs 200; the paper
  trains with patience 100 for up to 100k epochs). On Cora, seeds 0-9, test
  accuracy at the best validation epoch was 82.42 ± 0.91 after 200 epochs,
  82.61 ± 0.86 after 350-450 and 82.85 ± 0.55 after 500 (the first epochs of a
  longer run are the shorter run, so one 500-epoch run gives all of these).
  On PubMed, as in the paper (its 60 training nodes), eight output heads
  averaged, Adam lr 0.01 and weight decay 0.001.
* OGB molecules ``gcn``, ``gcn-virtual``, ``gin``, ``gin-virtual``: the
  official ``examples/graphproppred/mol/main_pyg.py`` defaults (5 layers, 300
  hidden, dropout 0.5, batch 32, Adam lr 1e-3, 100 epochs).
* ogbl-ddi ``sage`` and ``gcn``: the official ``examples/linkproppred/ddi/gnn.py``
  defaults (2 layers, 256 hidden, dropout 0.5, predictor with 2 layers, lr
  0.005, batch 64 * 1024, 200 epochs, learned node embedding).
* OGB node property prediction ``gcn`` and ``sage`` (full batch): the official
  ``examples/nodeproppred/arxiv/gnn.py`` defaults for ogbn-arxiv and any other
  single-label ``ogbn-*`` dataset with node features (3 layers, 256 hidden,
  batch norm, dropout 0.5, Adam lr 0.01, 500 epochs, edges made undirected as
  its ``adj_t.to_symmetric()`` does); ogbn-products takes
  ``examples/nodeproppred/products/gnn.py``'s (no batch norm, 300 epochs, its
  graph is already undirected). ogbn-proteins (112 binary tasks, no node
  features) and ogbn-mag (heterogeneous) have no configuration here.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from graphdl.errors import ConfigError, UnknownNameError, did_you_mean
from graphdl.registry import normalize

__all__ = ["SUITES", "SuiteRun", "TRAIN_KEYS", "family_of", "default_config", "suite_runs", "resolve_suite"]

#: Keys of a configuration that configure training, not the model.
TRAIN_KEYS = ("model", "lr", "weight_decay", "epochs", "batch_size", "normalize_features", "to_undirected",
              "grad_clip", "eval_splits", "eval_batch_size", "loss", "loss_kwargs", "num_neighbors", "patience",
              "monitor")

PLANETOID = ("cora", "citeseer", "pubmed")

_PLANETOID: dict[str, dict[str, Any]] = {
    "gcn": {
        "model": "gcn", "layer": "gcn", "hidden_channels": 16, "num_layers": 2, "dropout": 0.5,
        "input_dropout": 0.5, "decay_first_layer_only": True, "lr": 0.01, "weight_decay": 5e-4,
        "epochs": 200, "normalize_features": True,
    },
    "gat": {
        "model": "gat", "layer": "gat", "hidden_channels": 64, "num_layers": 2, "dropout": 0.6,
        "input_dropout": 0.6, "activation": "elu", "layer_kwargs": {"heads": 8, "dropout": 0.6},
        "last_layer_kwargs": {"heads": 1, "concat": False}, "lr": 0.005, "weight_decay": 5e-4,
        "epochs": 500, "normalize_features": True,
    },
}

_OGB_MOL_BASE: dict[str, Any] = {
    "hidden_channels": 300, "num_layers": 5, "dropout": 0.5, "jk": "last", "pool": "mean",
    "batch_size": 32, "lr": 1e-3, "epochs": 100,
}

_OGBL_DDI: dict[str, dict[str, Any]] = {
    "sage": {"model": "sage", "layer": "sage"},
    "gcn": {"model": "gcn", "layer": "gcn", "layer_kwargs": {"cached": True}},
}
_OGBL_BASE: dict[str, Any] = {
    "hidden_channels": 256, "num_layers": 2, "dropout": 0.5, "decoder": "mlp", "decoder_layers": 2,
    "decoder_dropout": 0.5, "lr": 0.005, "batch_size": 64 * 1024, "epochs": 200, "grad_clip": 1.0,
}

_OGBN: dict[str, dict[str, Any]] = {
    "gcn": {"model": "gcn", "layer": "gcn", "layer_kwargs": {"cached": True}},
    "sage": {"model": "sage", "layer": "sage"},
}
_OGBN_BASE: dict[str, Any] = {  # examples/nodeproppred/arxiv/gnn.py
    "hidden_channels": 256, "num_layers": 3, "dropout": 0.5, "norm": "batch", "lr": 0.01, "epochs": 500,
    "to_undirected": True,
}

#: Published per-dataset changes to a family's configuration: (dataset, model label) -> changes;
#: the label ``None`` changes every model of that dataset.
_DATASET_CHANGES: dict[tuple[str, str | None], dict[str, Any]] = {
    # Velickovic et al. 2018, sec. 3.3: PubMed's small training set needs K = 8 output heads,
    # L2 regularisation 0.001 and learning rate 0.01.
    ("pubmed", "gat"): {"lr": 0.01, "weight_decay": 1e-3, "last_layer_kwargs": {"heads": 8, "concat": False}},
    # examples/nodeproppred/products/gnn.py
    ("ogbn-products", None): {"norm": None, "epochs": 300, "to_undirected": False},
}


def _dataset_key(dataset: str) -> str:
    """``dataset`` as the dataset registry names it, lower case (``Pub_Med`` and ``ogbn_products`` are
    ``pubmed`` and ``ogbn-products``, as ``graphdl train`` reads them); an unregistered name as given."""
    from graphdl import datasets
    from graphdl.errors import GraphDLError

    if not isinstance(dataset, str):
        raise ConfigError(f"dataset must be a name such as 'cora' or 'ogbg-molbbbp', got {type(dataset).__name__} "
                          f"{dataset!r}")
    try:
        return datasets.entry(dataset).name.lower()
    except GraphDLError:
        return dataset.lower()


def family_of(dataset: str) -> str:
    """``"planetoid"``, ``"ogbg-mol"``, ``"ogbl"`` or ``"ogbn"`` for a dataset name graphdl can benchmark."""
    key = _dataset_key(dataset)
    if key in PLANETOID:
        return "planetoid"
    if key.startswith("ogbg-mol"):
        return "ogbg-mol"
    if key == "ogbl-ddi":
        return "ogbl"
    if key.startswith("ogbn-"):
        _check_node_dataset(key)
        return "ogbn"
    raise ConfigError(
        f"no benchmark configuration for dataset {dataset!r}: the runner knows the Planetoid graphs "
        f"({', '.join(PLANETOID)}), the OGB molecule datasets (ogbg-mol*), ogbl-ddi and the single-label "
        f"OGB node datasets (ogbn-arxiv, ogbn-products, ogbn-papers100M). Train other datasets with "
        f"graphdl.Trainer directly.")


def _check_node_dataset(name: str) -> None:
    """The ogbn configurations train one softmax over node features on a homogeneous graph:
    refuse, before any download, an OGB node dataset that is not of that kind."""
    from graphdl import datasets
    from graphdl.datasets.ogb import OGBSpec

    spec = datasets.entry(name).obj
    if not isinstance(spec, OGBSpec):  # a plugin's own loader: nothing to check before loading
        return
    why = None
    if spec.flag("is hetero"):
        why = "is heterogeneous (several node and edge types)"
    elif "multiclass" not in spec.meta.get("task type", "") or spec.num_tasks() != 1:
        why = (f"is {spec.meta.get('task type', '?')} over {spec.num_tasks()} tasks, "
               f"not one multiclass label")
    elif not spec.flag("has_node_attr"):
        why = "has no node features"
    if why:
        raise ConfigError(
            f"no benchmark configuration for {name}: it {why}. The runner's ogbn configurations (the official "
            f"arxiv/products examples) train one multiclass label from node features on a homogeneous graph. "
            f"Train {name} with graphdl.Trainer and a model of your own.")


def _ogb_mol_config(label: str) -> dict[str, Any]:
    from graphdl.models.ogb_mol import parse_ogb_model

    layer, virtual = parse_ogb_model(label)
    return {"model": f"{layer}{'-virtual' if virtual else ''}", "layer": layer, "virtual_node": virtual,
            **_OGB_MOL_BASE}


def _known_models(family: str) -> tuple[str, ...]:
    return {"planetoid": tuple(_PLANETOID), "ogbg-mol": ("gcn", "gcn-virtual", "gin", "gin-virtual"),
            "ogbl": tuple(_OGBL_DDI), "ogbn": tuple(_OGBN)}[family]


def _label_of(family: str, cfg: dict[str, Any]) -> str:
    if "model" in cfg:
        return str(cfg["model"]).lower()
    layer = str(cfg.get("layer", "")).lower()
    if family == "ogbg-mol":
        virtual = bool(cfg.get("virtual_node", family == "ogbg-mol" and not layer))
        return f"{layer or 'gin'}{'-virtual' if virtual else ''}"
    return layer or {"planetoid": "gcn", "ogbl": "sage", "ogbn": "gcn"}[family]


def default_config(dataset: str, model: str | dict[str, Any] | None = None) -> dict[str, Any]:
    """The full configuration of ``model`` on ``dataset``, overrides applied.

    Args:
        dataset: ``cora``/``citeseer``/``pubmed``, an ``ogbg-mol*`` name, ``ogbl-ddi`` or a
            single-label ``ogbn-*`` name.
        model: A model label (``"gat"``, ``"gin-virtual"``, ``"sage"``), or a
            dict of overrides that may name it by ``model`` or by ``layer``
            (with ``virtual_node`` for OGB molecules); ``None`` for the
            dataset's default (GCN, GIN with virtual node, GraphSAGE, GCN).
            An override of ``None`` (``--set grad_clip=null``) removes the
            setting, which then takes its default: no gradient clipping, no
            norm, full-batch training, every epoch.
            ``heads`` sets the hidden layers' ``layer_kwargs["heads"]``; the output
            layer keeps the heads its configuration gives it, else one.

    Layers outside the known configurations are allowed when given by
    ``layer``: they start from the family's defaults (for example
    ``{"layer": "gine"}`` on an OGB molecule dataset).
    """
    family = family_of(dataset)
    overrides = {"model": model} if isinstance(model, str) else dict(model or {})
    # null turns a configured setting off (grad_clip, norm, num_neighbors, patience...); for the model's name it
    # is no override
    unset = [k for k, v in overrides.items() if v is None and k not in ("model", "layer", "heads")]
    overrides = {k: v for k, v in overrides.items() if v is not None}
    heads = overrides.pop("heads", None)  # graphdl train --heads: the attention heads of the hidden layers
    if heads is not None and (isinstance(heads, bool) or not isinstance(heads, int) or heads < 1):
        raise ConfigError(f"configuration key 'heads' must be an int >= 1, got {type(heads).__name__} {heads!r}")
    label = _label_of(family, overrides)
    known = _known_models(family)
    if label not in known and "layer" not in overrides and _is_layer(label):
        overrides["layer"] = label  # graphdl bench run cora sage: the registered layer, as graphdl train --layer
    if label in known:
        if family == "planetoid":
            base = copy.deepcopy(_PLANETOID[label])
        elif family == "ogbg-mol":
            base = _ogb_mol_config(label)
        elif family == "ogbn":
            base = {**copy.deepcopy(_OGBN_BASE), **copy.deepcopy(_OGBN[label])}
        else:
            base = {**copy.deepcopy(_OGBL_BASE), **copy.deepcopy(_OGBL_DDI[label])}
    elif "layer" in overrides:
        if family == "planetoid":
            base = {**copy.deepcopy(_PLANETOID["gcn"]), "decay_first_layer_only": False}
        elif family == "ogbg-mol":
            base = {**_OGB_MOL_BASE, "virtual_node": False}
        elif family == "ogbn":
            base = copy.deepcopy(_OGBN_BASE)
        else:
            base = copy.deepcopy(_OGBL_BASE)
        base["model"] = label
    else:
        from graphdl import layers

        raise ConfigError(f"unknown model {label!r} for {dataset}.{did_you_mean(label, [*known, *layers.list()])} "
                          f"Known: {', '.join(known)}, or a registered layer (graphdl list layers).")
    for key in ((_dataset_key(dataset), None), (_dataset_key(dataset), label)):
        base.update(copy.deepcopy(_DATASET_CHANGES.get(key, {})))
    if family == "ogbg-mol" and "layer" in overrides and "model" not in overrides:
        overrides["model"] = label
    known_layer, known_virtual = base.get("layer"), base.get("virtual_node")
    base.update(overrides)
    for key in unset:
        base.pop(key, None)
    base["model"] = label
    if label in known:
        _check_label(dataset, family, label, known_layer, known_virtual, base)
    if heads is not None:  # the output layer keeps its own heads (GAT's: one), else one head
        base["layer_kwargs"] = {**base.get("layer_kwargs", {}), "heads": heads}
        base["last_layer_kwargs"] = {"heads": 1, **base.get("last_layer_kwargs", {})}
    return base


def _is_layer(name: str) -> bool:
    from graphdl import layers

    return name in layers


def _layer_name(family: str, layer: Any) -> str:
    """The registered layer ``layer`` names (OGB molecules' ``gin``/``gcn`` are OGB's convs), to compare."""
    from graphdl import layers
    from graphdl.errors import GraphDLError

    name = str(layer)
    if family == "ogbg-mol":
        from graphdl.models.ogb_mol import _OGB_LAYER

        name = _OGB_LAYER.get(name.lower(), name)
    try:
        return layers.entry(name).name
    except GraphDLError:  # an unknown layer fails when the model is built
        return normalize(name)


def _check_label(dataset: str, family: str, label: str, known_layer: Any, known_virtual: Any,
                 cfg: dict[str, Any]) -> None:
    """A known model label whose layer (or virtual node) the overrides change is refused: the record is
    labelled by ``model`` and printed beside that model's reference (``model: gcn`` with ``layer: gat``
    put GAT's accuracy beside Kipf & Welling's GCN)."""
    layer = cfg.get("layer")
    if known_layer is not None and _layer_name(family, layer) != _layer_name(family, known_layer):
        raise ConfigError(
            f"model {label!r} is the configuration of layer {known_layer!r}, but layer {layer!r} is set, so the "
            f"record would be labelled {label!r} and set beside the reference of {label!r}. To train {layer!r}, name "
            f"the model after what it trains: graphdl bench run {dataset} {layer}, graphdl train --dataset "
            f"{dataset} --layer {layer}, or the configuration {{'layer': {layer!r}}} without 'model'.")
    virtual = cfg.get("virtual_node")
    if known_virtual is not None and bool(virtual) != bool(known_virtual):
        other = f"{known_layer}{'' if known_virtual else '-virtual'}"
        raise ConfigError(
            f"model {label!r} has {'a' if known_virtual else 'no'} virtual node, but virtual_node is "
            f"{'true' if virtual else 'false'}, so the record would be labelled {label!r} and set beside "
            f"the reference of {label!r}. Name the model after what it trains: {other!r}.")


@dataclass(frozen=True)
class SuiteRun:
    """One dataset/model entry of a suite."""

    dataset: str
    model: str
    seeds: int
    epochs: int | None = None  # None: the configuration's epochs

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.model}"


_MOL_MODELS = ("gcn", "gcn-virtual", "gin", "gin-virtual")

_SUITES: dict[str, tuple[str, tuple[SuiteRun, ...]]] = {
    "quick": (
        "Cora GCN (10 seeds x 200 epochs) and GAT (5 seeds x 500 epochs) beside the published numbers, "
        "and a 5-epoch ogbg-molbbbp GCN run with the official evaluator; a few minutes on 2 CPU cores",
        (SuiteRun("cora", "gcn", 10), SuiteRun("cora", "gat", 5), SuiteRun("ogbg-molbbbp", "gcn", 1, 5)),
    ),
    "planetoid": (
        "GCN (200 epochs) and GAT (500 epochs) on Cora, CiteSeer and PubMed (public split), 10 seeds",
        tuple(SuiteRun(d, m, 10) for d in PLANETOID for m in ("gcn", "gat")),
    ),
    "ogbg-mol": (
        "OGB's GCN/GIN with and without virtual node on ogbg-molbace, ogbg-molbbbp, ogbg-molesol: "
        "official example configuration, 3 seeds, 100 epochs",
        tuple(SuiteRun(d, m, 3) for d in ("ogbg-molbbbp", "ogbg-molesol", "ogbg-molbace") for m in _MOL_MODELS),
    ),
    "ogbl-ddi": (
        "GraphSAGE and GCN on ogbl-ddi in the OGB leaderboard configuration (Hits@20), 10 seeds, 200 epochs",
        (SuiteRun("ogbl-ddi", "sage", 10), SuiteRun("ogbl-ddi", "gcn", 10)),
    ),
    "ogbn-arxiv": (
        "GCN and GraphSAGE on ogbn-arxiv in the OGB leaderboard configuration (full batch, accuracy), "
        "10 seeds, 500 epochs",
        (SuiteRun("ogbn-arxiv", "gcn", 10), SuiteRun("ogbn-arxiv", "sage", 10)),
    ),
}

#: Suite name -> description.
SUITES: dict[str, str] = {name: desc for name, (desc, _) in _SUITES.items()}


def resolve_suite(name: str) -> str:
    """The canonical suite name; unknown names raise with close matches."""
    if not isinstance(name, str):
        raise ConfigError(f"suite must be a name (one of {', '.join(SUITES)}), got {type(name).__name__}")
    keys = {normalize(s): s for s in _SUITES}
    key = normalize(name)
    if key not in keys:
        hint = did_you_mean(name.lower(), list(_SUITES)) or did_you_mean(key, list(keys))
        raise UnknownNameError(f"unknown benchmark suite {name!r}.{hint} Suites: {', '.join(SUITES)} "
                               f"(see `graphdl bench --help`).")
    return keys[key]


def suite_runs(name: str) -> tuple[SuiteRun, ...]:
    """The dataset/model entries of suite ``name``."""
    return _SUITES[resolve_suite(name)][1]
