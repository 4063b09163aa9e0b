"""Datasets, as a plugin registry (importable as ``graphdl.datasets``).

>>> import graphdl
>>> data = graphdl.datasets.load("cora")
"""

from graphdl.registry import Registry, expose_as_module

DATASETS = Registry("datasets")
expose_as_module(__name__, DATASETS)

import os  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

from graphdl.errors import ConfigError, ValidationError  # noqa: E402

from graphdl.datasets import ogb, planetoid  # noqa: E402,F401  (register the built-in datasets)
from graphdl.datasets.ogb import OGBSpec, register_ogb_dataset, split_indices_ogb  # noqa: E402
from graphdl.datasets.planetoid import (  # noqa: E402
    AccuracyEvaluator,
    PlanetoidSpec,
    split_indices_planetoid,
)
from graphdl.datasets.root import DATA_ENV, OFFLINE_ENV, PreTransformError, cache_dir, resolve_root  # noqa: E402
from graphdl.datasets.safe_load import trusted_dataset_files  # noqa: E402

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "load",
    "split_indices",
    "info",
    "evaluator",
    "register_ogb_dataset",
    "trusted_dataset_files",
    "resolve_root",
    "cache_dir",
    "AccuracyEvaluator",
    "DATA_ENV",
    "OFFLINE_ENV",
    "PreTransformError",
]


@dataclass(frozen=True)
class DatasetInfo:
    """What a benchmark needs to know about a dataset, without loading it.

    Attributes:
        name: Registry name (``"ogbg-molbace"``, ``"cora"``).
        level: What is predicted: ``"node"``, ``"link"`` or ``"graph"``.
        metric: The official metric and the key of the evaluator's result
            (``"rocauc"``, ``"rmse"``, ``"hits@20"``, ``"acc"``, ...).
        higher_is_better: ``False`` for error metrics (``rmse``, ``mae``).
        num_tasks: Number of prediction targets.
        task_type: OGB's task type (``"binary classification"``, ...).
        num_classes: Classes per task, ``None`` for regression / link prediction.
        split: The name of the official split.
        evaluator: The name :func:`evaluator` resolves (the OGB name, or
            ``"accuracy"``).
        source: ``"ogb"``, ``"planetoid"`` or the plugin's ``source`` meta.
        url: Where the official download comes from.
        reference: Reference results, ``{"model (source)": test score}`` in the
            evaluator's scale (fractions), from the benchmark's cited table
            (:mod:`graphdl.bench.references`); empty when it has none.
        summary: The one-line description ``graphdl list datasets`` shows.
    """

    name: str
    level: str
    metric: str
    higher_is_better: bool
    num_tasks: int = 1
    task_type: str = ""
    num_classes: int | None = None
    split: str = ""
    evaluator: str = ""
    source: str = ""
    url: str | None = None
    reference: dict[str, float] = field(default_factory=dict)
    summary: str = ""


def published_results(name: str) -> dict[str, float]:
    """The reference results of dataset ``name`` in :mod:`graphdl.bench.references`, with their sources."""
    from graphdl.bench.references import REFERENCES  # imported late: the bench imports this package

    return {f"{model} ({ref.source})": ref.value
            for (dataset, model), refs in REFERENCES.items() if dataset == name.lower() for ref in refs}


def load(name: str, root: str | os.PathLike | None = None, **kwargs: Any) -> Any:
    """Load dataset ``name`` and return the official dataset object.

    Planetoid names give ``torch_geometric.datasets.Planetoid``; OGB names give
    ``ogb.graphproppred.PygGraphPropPredDataset``,
    ``ogb.linkproppred.PygLinkPropPredDataset`` or
    ``ogb.nodeproppred.PygNodePropPredDataset``.

    Args:
        name: A registered name (``"cora"``, ``"ogbg-molbace"``, ...); case,
            ``-`` and ``_`` do not matter.
        root: The data root. Default: ``$GRAPHDL_DATA``, else the user cache
            folder. Datasets sit under it in the official layout
            (``<root>/planetoid/Cora/raw``, ``<root>/ogb/ogbg_molbace/raw``); a
            read-only root is copied to the cache before processing.
        **kwargs: ``download=False`` never touches the network (also:
            ``$GRAPHDL_OFFLINE=1``); the rest goes to the official loader
            (``transform``, ``pre_transform``, Planetoid's ``split``, ...).

    Raises:
        UnknownNameError: ``name`` is not registered (close matches are named).
        DataError: the root is not a folder, files are missing and cannot be
            downloaded, or a file is corrupt; the message says what to fix.
        PreTransformError: the ``pre_transform`` / ``pre_filter`` raised while
            the raw files were processed (the original error is its cause), or
            the ``pre_transform`` returned no ``Data`` graph.
    """
    entry = DATASETS.entry(name)
    for key in ("transform", "pre_transform", "pre_filter"):
        if kwargs.get(key) is not None and not callable(kwargs[key]):
            raise ConfigError(f"dataset {entry.name!r}: {key} must be a callable that takes and returns a Data "
                              f"graph (e.g. torch_geometric.transforms.NormalizeFeatures()), got "
                              f"{type(kwargs[key]).__name__} {kwargs[key]!r}")
        if isinstance(kwargs.get(key), type):  # calling the class makes a transform object, not a graph
            raise ConfigError(f"dataset {entry.name!r}: {key} is the class {kwargs[key].__qualname__}, not an "
                              f"instance of it; pass {key}={kwargs[key].__qualname__}(...) (e.g. "
                              f"torch_geometric.transforms.NormalizeFeatures()).")
    if isinstance(entry.obj, (OGBSpec, PlanetoidSpec)):
        return entry.obj(root, **kwargs)
    return DATASETS.build(name, root=str(resolve_root(root)), **kwargs)  # a plugin's loader


def split_indices(dataset: Any, split: str | int | None = None) -> dict[str, Any]:
    """The ``train`` / ``valid`` / ``test`` split of a loaded dataset.

    * OGB graph and node datasets: ``get_idx_split(split)``, index tensors.
    * OGB link datasets: ``get_edge_split(split)``, a dict of tensors per part
      (``edge``, ``edge_neg``, ...).
    * Planetoid: the node indices of ``train_mask`` / ``val_mask`` /
      ``test_mask``; ``split`` picks one of the 10 geom-gcn splits.

    Args:
        dataset: What :func:`load` returned.
        split: A split name (OGB: a folder of ``split/``); ``None`` for the
            official one.

    Raises:
        UnknownNameError: the split does not exist (the available ones are named).
        DataError: its files are missing or corrupt.
        ValidationError: ``dataset`` has no split graphdl knows how to read, or
            is a subset or reordering of an OGB dataset (take the split of the
            dataset :func:`load` returned, then index that).
    """
    from torch_geometric.data.data import BaseData
    from torch_geometric.datasets import Planetoid

    if isinstance(dataset, Planetoid):
        return split_indices_planetoid(dataset, split)
    if hasattr(dataset, "meta_info") and (
        hasattr(dataset, "get_idx_split") or hasattr(dataset, "get_edge_split")
    ):
        return split_indices_ogb(dataset, None if split is None else str(split))
    for method in ("get_idx_split", "get_edge_split"):
        if hasattr(dataset, method):
            with trusted_dataset_files():
                return getattr(dataset, method)(split) if split is not None else getattr(dataset, method)()
    # a Data graph also has __getitem__ (by attribute name): data[0] raised a bare KeyError
    one_graph = isinstance(dataset, BaseData)
    data = dataset if one_graph or not hasattr(dataset, "__getitem__") else dataset[0]
    if all(hasattr(data, key) for key in ("train_mask", "val_mask", "test_mask")):
        return split_indices_planetoid(dataset, split)
    what = f"got {type(dataset).__name__}, a single graph (dataset[i]?) with" if one_graph else \
        f"{type(dataset).__name__} has"
    raise ValidationError(
        f"split_indices: {what} no get_idx_split/get_edge_split method and no train_mask/val_mask/test_mask; "
        f"pass the dataset graphdl.datasets.load returned."
    )


def info(name: str) -> DatasetInfo:
    """Facts about dataset ``name`` (task level, metric, tasks, split, ...).

    Built-in datasets answer from ogb's master tables and Planetoid's
    published statistics; a plugin answers from its registry meta
    (``level=``, ``metric=``, ``higher_is_better=``, ...).
    """
    entry = DATASETS.entry(name)
    if isinstance(entry.obj, (OGBSpec, PlanetoidSpec)):
        return DatasetInfo(**{"reference": published_results(entry.name), **entry.obj.info_fields()})
    meta = dict(entry.meta)
    missing = [key for key in ("level", "metric") if key not in meta]
    if missing:
        raise ConfigError(
            f"dataset {entry.name!r} ({entry.origin}) was registered without "
            f"{' and '.join(missing)} meta; register it with level='node'|'link'|'graph' and "
            f"metric='...' so graphdl can describe and evaluate it."
        )
    metric = str(meta["metric"])
    known = {k: meta[k] for k in DatasetInfo.__dataclass_fields__ if k in meta}
    known.setdefault("higher_is_better", metric.lower() not in ("rmse", "mae"))
    known.setdefault("summary", entry.summary)
    known.setdefault("reference", published_results(entry.name))
    if not isinstance(known.get("evaluator", ""), str):  # a factory: name the dataset
        known["evaluator"] = entry.name
    known.setdefault("evaluator", entry.name)
    return DatasetInfo(name=entry.name, **{k: v for k, v in known.items() if k != "name"})


def evaluator(name: str) -> Any:
    """The evaluator of dataset ``name``: ``evaluator(name).eval(input_dict)``.

    OGB names give the official ``ogb.graphproppred.Evaluator`` /
    ``ogb.linkproppred.Evaluator`` / ``ogb.nodeproppred.Evaluator``; Planetoid
    names an :class:`AccuracyEvaluator` with the same ``eval`` interface
    (``{"y_true", "y_pred"}`` -> ``{"acc": float}``). A plugin may register an
    ``evaluator`` callable in its meta; a plugin with ``metric="acc"`` gets
    the accuracy evaluator.
    """
    entry = DATASETS.entry(name)
    if isinstance(entry.obj, (OGBSpec, PlanetoidSpec)):
        return entry.obj.evaluator()
    if callable(entry.meta.get("evaluator")):
        return entry.meta["evaluator"]()
    if entry.meta.get("metric") == "acc":
        return AccuracyEvaluator(entry.name)
    raise ConfigError(
        f"dataset {entry.name!r} ({entry.origin}) has no evaluator: register it with "
        f"evaluator=<factory returning an object with .eval(input_dict)> or metric='acc'."
    )
