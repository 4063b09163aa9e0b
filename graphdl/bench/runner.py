"""Run benchmark configurations over seeds and report them beside reference results.

>>> from graphdl.bench import run_suite, run_config
>>> records = run_suite("quick", root="../shared/data", json_path="results.json")
>>> record = run_config("ogbg-molbbbp", {"layer": "gin", "virtual_node": True}, seeds=3)

Every run loads the dataset with :func:`graphdl.datasets.load`, takes the
official split (:func:`graphdl.datasets.split_indices`), scores every split
each epoch with the official evaluator (OGB's ``Evaluator``, or the accuracy
evaluator for Planetoid) and reports the test score at the best validation
epoch (the first epoch reaching it). Seeds are ``0 .. seeds-1``;
``graphdl.seed_everything(seed)`` is called before the model is built.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import math
import platform
import resource
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from graphdl.bench.references import OFFICIAL_SECONDS_PER_EPOCH, reference_for
from graphdl.bench.suites import SUITES, TRAIN_KEYS, default_config, family_of, resolve_suite, suite_runs
from graphdl.errors import ConfigError, DataError, GraphDLError
from graphdl.io import atomic_write_json, check_folder_path

__all__ = ["run_config", "run_suite", "save_records", "format_table", "environment", "REQUIRED_KEYS"]

#: Keys every record has.
REQUIRED_KEYS = ("dataset", "model", "metric", "higher_is_better", "mean", "std", "runs", "seeds", "seconds",
                 "epochs", "seconds_per_epoch", "reference", "reference_std", "reference_source", "status")


def environment() -> dict[str, Any]:
    """Versions and machine facts recorded with every result file."""
    import torch_geometric

    try:
        import ogb

        ogb_version = ogb.__version__
    except Exception:  # noqa: BLE001 - optional in the record
        ogb_version = None
    import os

    return {
        "python": platform.python_version(), "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__, "ogb": ogb_version,
        "machine": platform.machine(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


def _seed_list(seeds: int | Sequence[int]) -> list[int]:
    from graphdl.config import MAX_SEEDS

    def integer(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))

    if isinstance(seeds, np.ndarray):
        seeds = seeds.tolist()
    if integer(seeds):
        seeds = int(seeds)
    elif isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence):  # "12" ran seeds 1 and 2
        raise ConfigError(f"seeds must be a number of seeds (an int >= 1) or a list of int seeds, got "
                          f"{type(seeds).__name__} {seeds!r}")
    if isinstance(seeds, int) and seeds < 1:
        raise ConfigError(f"seeds must be a positive number of seeds or a list of seeds, got {seeds!r}")
    count = seeds if isinstance(seeds, int) else len(seeds)
    if count > MAX_SEEDS:  # listing 1e11 seeds exhausts memory before the first trains
        raise ConfigError(f"seeds must be at most {MAX_SEEDS} per run, got {count}; split a larger benchmark into "
                          f"runs (graphdl bench run --first-seed K --seeds N)")
    bad = [] if isinstance(seeds, int) else [s for s in seeds if not integer(s)]
    if bad:  # int(1.7) ran seed 1
        raise ConfigError(f"seeds must be ints, got {type(bad[0]).__name__} {bad[0]!r} in the list of seeds")
    out = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not out:
        raise ConfigError("seeds is empty; give a number of seeds >= 1 or a list of seeds")
    twice = sorted({s for s in out if out.count(s) > 1}) if len(set(out)) != len(out) else []
    if twice:  # one run counted twice in the mean and std
        raise ConfigError(f"seeds lists seed {twice[0]} more than once; give each seed once")
    if not all(-2**63 <= s < 2**64 for s in out):  # seed_everything's range, checked before any seed trains
        raise ConfigError(f"seeds must lie in [-2**63, 2**64) (torch.manual_seed's range), got {min(out)}..{max(out)}")
    return out


# ---------------------------------------------------------------------------- building one run
class _Prepared:
    """The dataset, splits, metric and per-seed builders of one configuration."""

    def __init__(self, dataset: str, family: str, cfg: dict[str, Any], root: Any) -> None:
        from graphdl import datasets

        self.family = family
        self.name = datasets.entry(dataset).name
        self.cfg = cfg
        self.info = datasets.info(self.name)
        from torch_geometric import transforms

        steps = [transforms.NormalizeFeatures()] if cfg.get("normalize_features") else []
        steps += [transforms.ToUndirected()] if cfg.get("to_undirected") else []
        kwargs: dict[str, Any] = {"transform": transforms.Compose(steps)} if steps else {}
        self.dataset = datasets.load(self.name, root, **kwargs)
        self.splits = datasets.split_indices(self.dataset)
        self.model_kwargs = {k: v for k, v in cfg.items() if k not in TRAIN_KEYS}

    def metric(self) -> Any:
        """The benchmark's metric (a metric-learning loss's run reports ``knn_acc`` instead)."""
        return _benchmark_metric(self.family, self.name)

    def data(self) -> Any:
        return self.dataset if self.family == "ogbg-mol" else self.dataset[0]

    def build(self) -> tuple[nn.Module, Any, Any]:
        """(model, task, optimizer) for one seed; the loss is the configuration's (:func:`_default_loss`)."""
        cfg, kw = self.cfg, dict(self.model_kwargs)
        if self.family in ("planetoid", "ogbn"):
            from graphdl.models.gnn import GNN
            from graphdl.train import NodeTask

            model = GNN(in_channels=self.dataset.num_features, out_channels=self.dataset.num_classes, **kw)
            sampled = {"num_neighbors": cfg["num_neighbors"], "batch_size": int(cfg.get("batch_size", 512))} \
                if cfg.get("num_neighbors") else {}
            return model, NodeTask(metric=self.metric(), **sampled), "adam"
        if self.family == "ogbg-mol":
            from graphdl import losses
            from graphdl.models.ogb_mol import ogb_mol
            from graphdl.train import GraphTask

            loss_name = cfg.get("loss")  # a metric-learning loss: the task scores its embeddings by knn_acc
            embeds = isinstance(loss_name, str) and losses.entry_kind(losses.entry(loss_name)) == "metric"
            # embeddings as wide as the hidden layers, not one value per task
            width = int(cfg.get("hidden_channels", 300)) if embeds else self.dataset.num_tasks
            model = ogb_mol(num_tasks=width, **kw)
            task = GraphTask(metric=None if embeds else self.metric(), batch_size=int(cfg["batch_size"]),
                             eval_batch_size=cfg.get("eval_batch_size"))
            return model, task, "adam"
        from graphdl.bench.ogbl import GroupClippedAdam, OGBLinkGNN, OGBLinkTask

        model = OGBLinkGNN(in_channels=None, num_nodes=self.dataset[0].num_nodes, **kw)
        task = OGBLinkTask(metric=self.name, batch_size=cfg.get("batch_size"))
        lr, clip = float(cfg["lr"]), cfg.get("grad_clip")
        if clip:
            optimizer: Any = lambda groups: GroupClippedAdam(groups, lr=lr, max_norm=float(clip))  # noqa: E731
        else:
            optimizer = "adam"
        return model, task, optimizer


def _benchmark_metric(family: str, name: str) -> Any:
    """The official metric of dataset ``name`` (read from its evaluator's description: no data is loaded)."""
    from graphdl.train.metrics import Metric, resolve_metric

    if family == "planetoid":
        from graphdl import datasets

        evaluator = datasets.evaluator(name)
        return Metric("acc", lambda y, p: evaluator.eval({"y_true": y, "y_pred": p})["acc"], True)
    return resolve_metric(name)


def _default_loss(family: str, name: str) -> str:
    """The registered loss a configuration without ``loss`` trains with: cross-entropy for node classes,
    binary cross-entropy on logits or squared error for OGB molecules (by the dataset's task type) and
    binary cross-entropy over positive and sampled negative edges for links."""
    if family == "ogbg-mol":
        from graphdl import datasets

        return "bce_with_logits" if "classification" in datasets.info(name).task_type else "mse"
    return "link_bce" if family == "ogbl" else "cross_entropy"


#: Configuration keys the runner reads with a default when they are left out (``cfg.get(key, default)``)
_TRAIN_DEFAULTS: dict[str, Any] = {"weight_decay": 0.0, "normalize_features": False, "to_undirected": False}


def _model_defaults(family: str) -> dict[str, Any]:
    """The model arguments' defaults (JSON scalars, not None) of ``family``'s model builder."""
    import inspect

    from graphdl.models.gnn import GNN, LinkGNN
    from graphdl.models.ogb_mol import ogb_mol

    builders = [GNN.__init__] + {"ogbg-mol": [ogb_mol], "ogbl": [LinkGNN.__init__]}.get(family, [])
    defaults = {}
    for builder in builders:  # the outer builder's defaults win (ogb_mol's norm "batch" over GNN's None)
        for p in inspect.signature(builder).parameters.values():
            if isinstance(p.default, (bool, int, float, str)):
                defaults[p.name] = p.default
    # set from the dataset, or by ogb_mol from other arguments (edge_dim: hidden_channels for edge-aware layers)
    for key in ("in_channels", "out_channels", "num_nodes", "edge_dim"):
        defaults.pop(key, None)
    return defaults


def resume_config(config: dict[str, Any]) -> dict[str, Any]:
    """The configuration record of a checkpoint folder (``{"dataset": name, **configuration}``) as it takes
    effect: the defaults it leaves out filled in (the model builder's, the runner's, the loss and the monitor
    the Trainer picks), a null value of a key without default left out (as :func:`default_config` leaves unset
    options out), the layer and loss named as the registries do (``GCN`` is ``gcn``, ``ce`` is
    ``cross_entropy``), a loss argument equal to the loss's own default left out of ``loss_kwargs`` and an OGB
    molecule run's ``eval_batch_size`` as the task takes it (``batch_size`` when unset). A folder resumed with
    the same configuration spelt otherwise (``--jk last`` given or left out, ``--loss cross_entropy``,
    ``--monitor val_acc``, ``--monitor val_knn_acc`` with a metric loss, ``--loss-kwargs
    '{"label_smoothing": 0.0}'``, ``residual: false`` in a YAML file) then compares equal
    (:func:`graphdl.train.resume.fit_with_checkpoints`'s ``normalize_config``)."""
    from graphdl import datasets, layers, losses

    out = dict(config)
    try:
        name = datasets.entry(str(out["dataset"])).name
        family = family_of(name)
    except (KeyError, GraphDLError):  # not a benchmark record: left as it is
        return out
    defaults = {**_model_defaults(family), **_TRAIN_DEFAULTS}
    if family in ("planetoid", "ogbn") and out.get("num_neighbors"):
        defaults["batch_size"] = 512  # _Prepared.build's seed nodes per mini-batch
    if out.get("loss") is None:  # run_config's default, by name: --loss cross_entropy is the same run
        out["loss"] = _default_loss(family, name)
    if isinstance(out.get("loss_kwargs"), dict):  # {"label_smoothing": 0.0} is the loss built without it
        out["loss_kwargs"] = _given_loss_kwargs(str(out["loss"]), out["loss_kwargs"])
    if not out.get("loss_kwargs"):
        out.pop("loss_kwargs", None)
    if family == "ogbg-mol" and out.get("eval_batch_size") is None and out.get("batch_size") is not None:
        out["eval_batch_size"] = out["batch_size"]  # GraphTask evaluates in batches of batch_size when unset
    try:  # the Trainer monitors the validation score of the benchmark's metric (given to the task, so a loss's
        # kind does not change it); a metric loss's task scores its embeddings by k-NN accuracy instead
        metric_loss = losses.entry_kind(losses.entry(str(out["loss"]))) == "metric"
        defaults["monitor"] = "val_knn_acc" if metric_loss else f"val_{_benchmark_metric(family, name).name}"
    except GraphDLError:
        pass
    out = {k: v for k, v in out.items() if v is not None or k in defaults}
    for key, value in defaults.items():
        out.setdefault(key, value)
    for key, registry in (("layer", layers), ("loss", losses)):  # named as the registry does: GCN is gcn
        if isinstance(out.get(key), str):
            try:
                out[key] = registry.entry(out[key]).name
            except GraphDLError:  # an unknown name fails when the model or loss is built
                pass
    return out


def _given_loss_kwargs(loss: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` of the registered loss ``loss`` without those equal to the default its constructor declares
    (JSON-compared; a bool only equals a bool), which build the same loss as leaving them out."""
    import inspect

    from graphdl import losses
    from graphdl.config import json_plain

    try:
        params = inspect.signature(losses.entry(loss).obj).parameters
    except (GraphDLError, TypeError, ValueError):  # an unknown loss fails when it is built; no signature: kept
        return kwargs

    def is_default(key: str, value: Any) -> bool:
        param = params.get(key)
        if param is None or param.default is inspect.Parameter.empty or param.kind is param.POSITIONAL_ONLY:
            return False
        try:
            default, given = json_plain(param.default), json_plain(value)
        except (TypeError, ValueError):
            return False
        return isinstance(default, bool) == isinstance(given, bool) and default == given

    return {k: v for k, v in kwargs.items() if not is_default(k, v)}


def _check_keys(family: str, cfg: dict[str, Any]) -> None:
    """Unknown configuration keys fail here, naming the accepted ones."""
    import inspect

    from graphdl.models.gnn import GNN, LinkGNN
    from graphdl.models.ogb_mol import ogb_mol

    accepted = set(TRAIN_KEYS) | set(inspect.signature(GNN.__init__).parameters) - {"self"}
    if family == "ogbg-mol":
        accepted |= set(inspect.signature(ogb_mol).parameters) - {"num_tasks", "gnn_kwargs"}
    elif family == "ogbl":
        accepted |= set(inspect.signature(LinkGNN.__init__).parameters) - {"self", "gnn_kwargs"}
    # widths come from the dataset; OGB molecules' node encoder is OGB's AtomEncoder
    accepted -= {"in_channels", "out_channels", "num_nodes"} | ({"node_encoder"} if family == "ogbg-mol" else set())
    if family not in ("planetoid", "ogbn"):
        if cfg.get("num_neighbors") is not None:
            raise ConfigError("num_neighbors sets neighbour sampling for node classification (Planetoid, ogbn-*); "
                              "the graph and link benchmarks take whole graphs, so leave it out")
    elif cfg.get("batch_size") is not None and not cfg.get("num_neighbors"):
        raise ConfigError("batch_size on a node dataset sets the seed nodes per mini-batch of neighbour sampling; "
                          "give num_neighbors too (e.g. --num-neighbors 10 10), or leave it out for full-batch "
                          "training")
    unknown = sorted(set(cfg) - accepted)
    if unknown:
        from graphdl.errors import did_you_mean

        raise ConfigError(f"unknown configuration key {unknown[0]!r}.{did_you_mean(unknown[0], sorted(accepted))} "
                          f"Accepted keys for this dataset: {', '.join(sorted(accepted))}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


#: Configuration keys checked before the data loads: key -> (what it must be, test).
_VALUE_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "lr": ("a number > 0", lambda v: _is_number(v) and v > 0),
    "weight_decay": ("a number >= 0", lambda v: _is_number(v) and v >= 0),
    "dropout": ("a number in [0, 1)", lambda v: _is_number(v) and 0 <= v < 1),
    "input_dropout": ("a number in [0, 1)", lambda v: _is_number(v) and 0 <= v < 1),
    "grad_clip": ("a number > 0 (the largest gradient norm) or null", lambda v: _is_number(v) and v > 0),
    "patience": ("an int >= 1 (the epochs without improvement before stopping; leave it out to train every "
                 "epoch)", lambda v: _is_int(v) and v >= 1),
    "batch_size": ("an int >= 1", lambda v: _is_int(v) and v >= 1),
    "eval_batch_size": ("an int >= 1 or null", lambda v: _is_int(v) and v >= 1),
    "hidden_channels": ("an int >= 1", lambda v: _is_int(v) and v >= 1),
    "num_layers": ("an int >= 1", lambda v: _is_int(v) and v >= 1),
    "num_neighbors": ("a non-empty list of ints >= -1", lambda v: isinstance(v, list) and bool(v)
                      and all(_is_int(n) and n >= -1 for n in v)),
    "normalize_features": ("true or false", lambda v: isinstance(v, bool)),
    "to_undirected": ("true or false", lambda v: isinstance(v, bool)),
    "virtual_node": ("true or false", lambda v: isinstance(v, bool)),
    "decay_first_layer_only": ("true or false", lambda v: isinstance(v, bool)),
    "monitor": ("a metric name (a string such as \"val_loss\")", lambda v: isinstance(v, str) and bool(v.strip())),
    "loss": ("a loss name (a string)", lambda v: isinstance(v, str) and bool(v.strip())),
    "loss_kwargs": ("an object of the loss's keyword arguments", lambda v: isinstance(v, dict)),
    "eval_splits": ("a list of split names", lambda v: isinstance(v, str) or (
        isinstance(v, list) and bool(v) and all(isinstance(n, str) for n in v))),
}


def _check_values(cfg: dict[str, Any]) -> None:
    """Values of the wrong type or range (``--set lr='"abc"'``, ``--set patience=0``), named before the data
    loads; unset (null) values keep their defaults. ``epochs`` is checked (and made an int) by
    :func:`_checked_epochs`, as the ``epochs`` argument is."""
    from graphdl.train.tasks import canonical_split

    if cfg.get("epochs") is not None:  # the check of run_config's epochs argument, with its messages
        cfg["epochs"] = _checked_epochs(cfg["epochs"])
    for key, (expected, test) in _VALUE_CHECKS.items():
        value = cfg.get(key)
        if value is not None and not test(value):
            raise ConfigError(f"configuration key {key!r} must be {expected}, got {type(value).__name__} {value!r}")
    if cfg.get("loss_kwargs") and not cfg.get("loss"):
        raise ConfigError("loss_kwargs needs loss: name the loss they are for (graphdl train --loss NAME, or "
                          "--set loss='\"NAME\"'; graphdl list losses)")
    splits = cfg.get("eval_splits")
    if splits is not None:
        given = [splits] if isinstance(splits, str) else splits
        missing = [s for s in ("val", "test") if s not in {canonical_split(n) for n in given}]
        if missing:  # the record's score is the test metric at the best validation epoch
            raise ConfigError(f"eval_splits={given!r} leaves out {' and '.join(map(repr, missing))}: the benchmark "
                              f"reports the test score at the best validation epoch, so eval_splits must include "
                              f"'val' and 'test' (and may add 'train'); or leave eval_splits out to score every split")


def _checked_epochs(epochs: Any) -> int:
    """``epochs`` (epochs per seed) as an int >= 1, else a :class:`ConfigError`."""
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)):
        raise ConfigError(f"epochs must be an int >= 1 (the epochs per seed), got {type(epochs).__name__} "
                          f"{epochs!r}")
    if epochs < 1:
        raise ConfigError(f"epochs must be >= 1, got {epochs}")
    return int(epochs)


def _json_value(value: Any, where: str) -> Any:
    """``value`` with numpy numbers (at any depth) as Python numbers, so that JSON can write it; a value JSON
    cannot write, or a dict key that is not a string, raises a :class:`ConfigError` naming ``where``."""
    if isinstance(value, np.generic) and isinstance(value, (np.bool_, np.integer, np.floating)):
        return value.item()
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise ConfigError(f"{where or 'the configuration'} has the key {key!r} ({type(key).__name__}); "
                                  f"the results file (JSON) writes keys as strings, so give it as {str(key)!r}")
        return {k: _json_value(v, f"{where}[{k!r}]" if where else f"configuration key {k!r}")
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_json_value(v, f"{where}[{i}]") for i, v in enumerate(value))
    kind = type(value)
    how = {np.ndarray: "a list (array.tolist())", torch.Tensor: "a number or a list (tensor.tolist())"}
    hint = next((h for t, h in how.items() if isinstance(value, t)),
                "a number, string, bool, null, list or dict with string keys")
    shown = repr(value)
    raise ConfigError(f"{where} holds a {kind.__module__}.{kind.__qualname__} "
                      f"({shown if len(shown) <= 60 else shown[:57] + '...'}), which the results file (JSON) cannot "
                      f"record; give {hint}")


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), (float(arr.std(ddof=1)) if len(arr) > 1 else None)


def run_config(
    dataset: str,
    model_cfg: str | dict[str, Any] | None = None,
    seeds: int | Sequence[int] = 1,
    epochs: int | None = None,
    root: str | Path | None = None,
    *,
    progress: bool = False,
    verbose: bool = True,
    device: str | None = None,
    log: Callable[[str], None] = print,
    log_path: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    on_seed: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train one configuration over seeds; return its record.

    Args:
        dataset: ``cora``, ``citeseer``, ``pubmed``, an ``ogbg-mol*`` dataset, ``ogbl-ddi``
            or a single-label ``ogbn-*`` dataset (``ogbn-arxiv``, ``ogbn-products``).
        model_cfg: A model label (``"gat"``, ``"gin-virtual"``), or a dict of
            overrides (``{"layer": "gin", "virtual_node": True, "hidden_channels": 32}``),
            or ``None``: the dataset's default. OGB molecule datasets default to
            the official example's configuration; see
            :func:`graphdl.bench.suites.default_config`.
        seeds: Number of seeds (``0 .. seeds-1``) or a list of seeds.
        epochs: Epochs per seed; ``None`` keeps the configuration's, or on
            ``resume`` those the checkpointed run was asked for.
        root: Data root; ``None`` uses ``$GRAPHDL_DATA`` or the user cache.
        progress: Show the Trainer's progress bar.
        verbose: Print one line per seed.
        device: ``"cpu"``, ``"cuda"``...; default CUDA when available.
        log_path: Per-epoch metrics file (``.csv``/``.json``); with several
            seeds each gets ``<stem>_seed<seed><suffix>``.
        checkpoint_dir: Write a resumable checkpoint every epoch under
            ``checkpoint_dir/seed_<seed>``; ``resume`` continues from it and
            skips seeds that finished (:func:`graphdl.train.resume.fit_with_checkpoints`).
        on_seed: Called (in the main process) after each seed with the record of
            the seeds finished so far, as the one returned: ``graphdl bench run
            --json PATH`` writes it to ``PATH.partial``, so a run that stops
            leaves its finished seeds behind.

    The configuration's values must be ones the JSON record can hold (numbers,
    strings, bools, null, lists, dicts with string keys): numpy numbers become
    Python numbers; anything else (an array, a tensor, a torch dtype) is a
    :class:`ConfigError` before the data loads.

    Returns:
        A record: ``dataset``, ``model``, ``metric``, ``mean``, ``std`` (over
        seeds, ``ddof=1``; ``None`` for one seed), ``runs`` (test score per
        seed), ``valid_runs``, ``best_epochs``, ``seconds``, ``epochs``,
        ``seconds_per_epoch`` (wall time of a whole epoch: training plus the
        evaluation of every split, as the official scripts' epochs; not the
        checkpoints written with ``checkpoint_dir``), ``train_seconds_per_epoch``,
        ``reference``/``reference_std``/``reference_source``, ``peak_rss_mb``,
        ``num_parameters``, ``config``, ``curves`` (per-seed learning curves).
    """
    from graphdl import datasets
    from graphdl.distributed import is_main_process
    from graphdl.train import EarlyStopping, Trainer, seed_everything
    from graphdl.train.resume import check_resume, fit_with_checkpoints, refuse_to_overwrite, resumed_epochs, seed_dir

    if isinstance(model_cfg, dict):  # checked here, not when the record is written after training
        model_cfg = _json_value(model_cfg, "")
    cfg = default_config(dataset, model_cfg)
    if epochs is not None:
        cfg["epochs"] = _checked_epochs(epochs)
    seed_list = _seed_list(seeds)
    if epochs is None and resume and checkpoint_dir is not None:  # continue to the epochs the run was asked for
        asked = resumed_epochs(checkpoint_dir, seed_list)
        if asked is not None:
            cfg["epochs"] = asked
    family = family_of(dataset)
    _check_keys(family, cfg)
    _check_values(cfg)
    # what a checkpoint folder is resumed with: a change (epochs aside) would not take effect
    run_config_record = resume_config({"dataset": datasets.entry(dataset).name, **cfg})
    if checkpoint_dir is not None:  # every seed, before any trains, not when seed k is reached
        if resume:
            check_resume(checkpoint_dir, seed_list, run_config_record, epochs=int(cfg["epochs"]),
                         normalize_config=resume_config)
        else:
            for seed in seed_list:
                refuse_to_overwrite(seed_dir(checkpoint_dir, seed))
    prepared = _Prepared(dataset, family, cfg, root)
    name, label = prepared.name, cfg["model"]
    metric_name = prepared.metric().name
    higher = prepared.metric().higher_is_better
    runs, valid_runs, best_epochs, epoch_seconds, train_seconds, epochs_run = [], [], [], [], [], []
    epochs_timed: list[int] = []  # epochs trained in this process (a resumed seed trained fewer)
    curves: dict[str, list[list[float]]] = {"train_loss": [], "train": [], "val": [], "test": []}
    num_parameters = None
    started = time.perf_counter()

    def record() -> dict[str, Any]:
        """The record of the seeds finished so far."""
        done = seed_list[:len(runs)]
        mean, std = _mean_std(runs)
        # a published figure scores the benchmark's metric; a metric loss's knn_acc is not comparable with it
        ref = reference_for(name, label) if metric_name == prepared.metric().name else None
        timed_epochs = max(1, sum(epochs_timed))
        return {
            "dataset": name,
            "model": label,
            "metric": metric_name,
            "higher_is_better": higher,
            "mean": mean,
            "std": std,
            "runs": list(runs),
            "seeds": done,
            "valid_mean": _mean_std(valid_runs)[0],
            "valid_runs": list(valid_runs),
            "best_epochs": list(best_epochs),
            "epochs": int(cfg["epochs"]),
            "epochs_run": list(epochs_run),
            "seconds": round(time.perf_counter() - started, 2),
            "seconds_per_epoch": round(sum(epoch_seconds) / timed_epochs, 4),
            "train_seconds_per_epoch": round(sum(train_seconds) / timed_epochs, 4),
            "official_seconds_per_epoch": OFFICIAL_SECONDS_PER_EPOCH.get((name, label)),
            "reference": ref.value if ref else None,
            "reference_std": ref.std if ref else None,
            "reference_source": ref.source if ref else None,
            "reference_kind": ref.kind if ref else None,
            "reference_runs": ref.runs if ref else None,
            "reference_epochs": ref.epochs if ref else None,
            "peak_rss_mb": _peak_rss_mb(),
            "num_parameters": num_parameters,
            "config": {k: v for k, v in cfg.items()},
            "curves": {k: list(v) for k, v in curves.items()},
            "status": "ok",
        }

    for seed in seed_list:
        seed_everything(seed)
        model, task, optimizer = prepared.build()
        num_parameters = int(sum(p.numel() for p in model.parameters() if p.requires_grad))
        trainer = Trainer(model, loss=cfg.get("loss") or _default_loss(family, name),
                          loss_kwargs=cfg.get("loss_kwargs"), task=task, optimizer=optimizer, lr=float(cfg["lr"]),
                          weight_decay=float(cfg.get("weight_decay", 0.0)), epochs=int(cfg["epochs"]),
                          progress=progress, device=device, eval_splits=cfg.get("eval_splits"),
                          monitor=cfg.get("monitor"), log_path=_seed_log_path(log_path, seed, len(seed_list)),
                          callbacks=[EarlyStopping(patience=int(cfg["patience"]))] if cfg.get("patience") else ())
        metric_name = trainer.task.metric.name  # knn_acc when a metric-learning loss gives embeddings
        higher = trainer.task.metric.higher_is_better
        result = fit_with_checkpoints(trainer, prepared.data(), prepared.splits, checkpoint_dir=checkpoint_dir,
                                      resume=resume, seed=seed, config=run_config_record,
                                      normalize_config=resume_config)
        key = f"test_{metric_name}"
        absent = [k for k in (key, f"val_{metric_name}") if k not in result.best]
        if absent:  # e.g. a finished seed's done.json from a run that did not score these splits
            where = (f"{result.extra['checkpoint_dir']}/done.json (delete that folder to train the seed again)"
                     if result.extra.get("skipped") else "the run")
            raise ConfigError(f"seed {seed}: {where} logged no {', '.join(absent)}; the benchmark reports the test "
                              f"score at the best validation epoch")
        runs.append(float(result.best[key]))
        valid_runs.append(float(result.best[f"val_{metric_name}"]))
        best_epochs.append(int(result.best_epoch))
        epoch_seconds.append(result.epoch_seconds)
        train_seconds.append(result.train_seconds)
        epochs_run.append(len(result.history))
        epochs_timed.append(result.epochs_trained)
        for split in ("train", "val", "test"):
            curves[split].append([float(h.get(f"{split}_{metric_name}", math.nan)) for h in result.history])
        curves["train_loss"].append([float(h.get("train_loss", math.nan)) for h in result.history])
        if verbose and is_main_process():
            log(f"  {name}/{label} seed {seed}: test {metric_name} {runs[-1]:.4f} at best epoch "
                f"{best_epochs[-1]} (val {valid_runs[-1]:.4f}), {result.seconds:.1f} s, "
                f"{result.epoch_seconds / max(1, result.epochs_trained):.2f} s/epoch")
        if on_seed is not None and is_main_process():
            on_seed(record())
    return record()


def _seed_log_path(log_path: str | Path | None, seed: int, num_seeds: int) -> Path | None:
    if log_path is None:
        return None
    path = Path(log_path)
    return path if num_seeds == 1 else path.with_name(f"{path.stem}_seed{seed}{path.suffix}")


# ---------------------------------------------------------------------------- suites and tables
def _fmt(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "-"
    return f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"


def _runs_text(r: dict[str, Any]) -> str:
    """``10 x 200``; ``1 x 5 (ref. 100)`` when the reference trained for other epochs."""
    runs, epochs = r.get("runs"), r.get("epochs")
    text = f"{len(runs) if isinstance(runs, list) else 'n/a'} x {epochs if epochs is not None else 'n/a'}"
    ref_epochs = r.get("reference_epochs")
    return text + (f" (ref. {ref_epochs})" if ref_epochs and epochs is not None and ref_epochs != epochs else "")


def _seconds_text(value: Any) -> str:
    """``0.153``; ``n/a`` for a record that has no timing (pooled from pieces of which one had none)."""
    return f"{value:.3f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "n/a"


def _setting_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _model_labels(records: Sequence[dict[str, Any]]) -> list[str]:
    """Each record's model label; records of one dataset, model and metric whose configurations differ get the
    settings that tell them apart (``gcn (hidden_channels=64)`` beside ``gcn (hidden_channels=16)``), which
    their rows and plot panels would otherwise not show."""
    def config(r: dict[str, Any]) -> dict[str, Any]:
        return r["config"] if isinstance(r.get("config"), dict) else {}

    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r.get("dataset"), r.get("model"), r.get("metric")), []).append(r)
    labels = []
    for r in records:
        group = groups[(r.get("dataset"), r.get("model"), r.get("metric"))]
        keys = sorted({k for g in group for k in config(g)})
        differ = [k for k in keys if len({(k in config(g), _setting_text(config(g).get(k))) for g in group}) > 1]
        shown = [f"{k}={_setting_text(config(r)[k])}" for k in differ if k in config(r)]
        labels.append(f"{r['model']} ({', '.join(shown)})" if shown else str(r["model"]))
    return labels


def format_table(records: Sequence[dict[str, Any]], markdown: bool = True) -> str:
    """A results table: ours (mean ± std over seeds) beside the reference and its source.

    A record that did not run shows ``not run [k]`` in its row; the reason (its ``status``) is
    written once below the table as note ``k``, shared by the records with the same reason.
    Records of one dataset and model whose configurations differ name the settings that differ
    beside the model (``gcn (hidden_channels=64)``).
    """
    head = ["dataset", "model", "metric", "graphdl (mean ± std)", "seeds x epochs", "reference",
            "reference source", "s/epoch"]
    rows = []
    notes: list[str] = []
    for r, model in zip(records, _model_labels(records)):
        if r.get("status", "ok") != "ok":
            if r["status"] not in notes:
                notes.append(r["status"])
            rows.append([r["dataset"], model, r.get("metric") or "-",
                         f"not run [{notes.index(r['status']) + 1}]", "-",
                         _fmt(r.get("reference"), r.get("reference_std")), r.get("reference_source") or "-", "-"])
            continue
        arrow = "↑" if r["higher_is_better"] else "↓"
        rows.append([r["dataset"], model, f"{r['metric']} {arrow}", _fmt(r["mean"], r["std"]),
                     _runs_text(r), _fmt(r.get("reference"), r.get("reference_std")),
                     r.get("reference_source") or "-", _seconds_text(r.get("seconds_per_epoch"))])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in rows]
    if notes:
        lines.append("")
        lines += [f"[{k}] {note}" for k, note in enumerate(notes, 1)]
    return "\n".join(lines)


def partial_path(json_path: str | Path) -> Path:
    """``<json_path>.partial``: where a run writes its finished records while it goes on; ``json_path`` itself is
    replaced only when the run ends, so a run that stops halfway leaves an earlier file there whole."""
    json_path = Path(json_path)
    return json_path.with_name(json_path.name + ".partial")


@contextlib.contextmanager
def _partial_kept(partial: Path | None, stopped: Callable[[], str], say: Callable[[str], None]) -> Iterator[
        Callable[[str, list[dict[str, Any]], dict[str, Any]], None] | None]:
    """Keep a run's finished records in ``partial`` (:func:`partial_path`) while it goes on. The block gets
    ``write(suite, records, meta)``, which replaces the file with those records (``None`` without ``partial``),
    and writes the results file itself once the run is done. When the block stops with an error after a write,
    ``say(stopped())`` names the file left behind; when it ends without one, the file is removed."""
    written = False

    def write(suite: str, records: list[dict[str, Any]], meta: dict[str, Any]) -> None:
        nonlocal written
        _write(partial, None, suite, records, {**meta, "finished": time.strftime("%Y-%m-%d %H:%M:%S")})
        written = True

    try:
        yield write if partial is not None else None
    except BaseException:
        if written:
            say(stopped())
        raise
    if written:  # only the process that wrote it (under torchrun, the main one)
        partial.unlink(missing_ok=True)


@contextlib.contextmanager
def finished_seeds_kept(json_path: str | Path | None, num_seeds: int, command: str) -> Iterator[
        Callable[[dict[str, Any]], None] | None]:
    """The ``on_seed`` callback of :func:`run_config` for a run that writes its record to ``json_path``
    (``graphdl train`` and ``graphdl bench run``): each finished seed's record so far goes to
    :func:`partial_path`, which a stopped run leaves behind (and names), and which is removed when the block
    ends without error, the caller having written ``json_path`` inside it. ``None`` without a ``json_path``."""
    partial = partial_path(json_path) if json_path else None
    finished: list[int] = []

    def stopped() -> str:
        return f"stopped after {len(finished)} of {num_seeds} seeds; the finished seeds' record: {partial}"

    with _partial_kept(partial, stopped, print) as write:
        if write is None:
            yield None
            return

        def seed_done(so_far: dict[str, Any]) -> None:
            finished[:] = so_far["seeds"]
            write("", [so_far], {"environment": environment(), "command": command})

        yield seed_done


def _check_result_paths(json_file: Path | None, plot_file: Path | None, plot_beside: bool = False) -> None:
    """Refuse a results file and a plot at one path: the plot, written last, replaced the records.
    ``plot_beside``: ``plot_file`` is the default one, ``json_file`` with the suffix ``.png``."""
    if json_file is None or plot_file is None or json_file.expanduser().absolute() != plot_file.expanduser().absolute():
        return
    if plot_beside:
        raise ConfigError(f"json_path {str(json_file)!r} ends in .png: the learning-curve plot, written beside the "
                          f"records with the suffix .png, would replace them; name the results file .json, or give "
                          f"the plot its own path (plot_path, --png)")
    raise ConfigError(f"json_path and plot_path name the same file {str(json_file)!r}: the plot would replace the "
                      f"records; give each its own path")


def save_records(json_path: str | Path | None, records: Sequence[dict[str, Any]], plot_path: str | Path | None = None,
                 **meta: Any) -> None:
    """Write records as the suites do (``{"environment", ..., "records": [...]}``, atomically) and their plot.

    For ``graphdl train --json PATH``: ``save_records(PATH, [run_config(...)], command="graphdl train ...")``.
    """
    _check_result_paths(Path(json_path) if json_path is not None else None,
                        Path(plot_path) if plot_path is not None else None)
    info = {"environment": environment(), "finished": time.strftime("%Y-%m-%d %H:%M:%S"), **meta}
    _write(Path(json_path) if json_path is not None else None, Path(plot_path) if plot_path is not None else None,
           str(meta.get("suite", "")), list(records), info)


def _write(json_path: Path | None, plot_path: Path | None, suite: str, records: list[dict[str, Any]],
           meta: dict[str, Any]) -> None:
    if json_path is not None:
        atomic_write_json(json_path, {**meta, "suite": suite, "records": records})
    if plot_path is not None and any(r.get("status") == "ok" for r in records):
        from graphdl.bench.plot import plot_curves

        plot_curves(records, plot_path, title=f"graphdl bench {suite}" if suite else None)


def check_suite_ran(records: Sequence[dict[str, Any]], suite: str) -> None:
    """Raise a :class:`GraphDLError` naming the entries of ``suite`` whose data could not load: the suite goes on
    past them (its table and file show why), and a script must still see that the run is incomplete."""
    failed = [f"{r['dataset']}/{r['model']}" for r in records if r.get("status", "ok") != "ok"]
    if failed:
        raise GraphDLError(f"{len(failed)} of {len(records)} entries of suite {suite!r} did not run: "
                           f"{', '.join(failed)} (their data failed to load: see the lines above); fix --root or "
                           f"$GRAPHDL_DATA and run the suite again")


def _suite_paths(json_path: str | Path | None, plot_path: str | Path | None) -> tuple[Path | None, Path | None]:
    """The results file and plot of :func:`run_suite` (the plot beside the results, ``.png``, unless given),
    checked before the first entry trains: not one path, not folders, in folders that can be written."""
    json_file = Path(json_path) if json_path is not None else None
    plot_file = Path(plot_path) if plot_path is not None else (json_file.with_suffix(".png") if json_file else None)
    _check_result_paths(json_file, plot_file, plot_beside=plot_path is None)
    for path, what in ((json_file, "json_path"), (plot_file, "plot_path")):
        if path is not None and path.is_dir():
            raise ConfigError(f"{what} {str(path)!r} is a folder; give a file path")
        if path is not None:
            check_folder_path(path.parent, f"{what} {path.name}")
    return json_file, plot_file


def _unloaded_record(dataset: str, model: str, exc: DataError) -> dict[str, Any]:
    """The record of a suite entry whose data could not be loaded: no runs, ``status`` naming ``exc``."""
    ref = reference_for(dataset, model)
    record: dict[str, Any] = {key: None for key in REQUIRED_KEYS}
    record.update(dataset=dataset, model=model, runs=[], seeds=[], reference=ref.value if ref else None,
                  reference_std=ref.std if ref else None, reference_source=ref.source if ref else None,
                  status=f"error: {type(exc).__name__}: {exc}")
    return record


def run_suite(
    suite: str,
    seeds: int | None = None,
    epochs: int | None = None,
    root: str | Path | None = None,
    json_path: str | Path | None = None,
    plot_path: str | Path | None = None,
    progress: bool = False,
    *,
    select: str | Sequence[str] | None = None,
    verbose: bool = True,
    device: str | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Run every dataset/model of benchmark ``suite``; print and save the results.

    Args:
        suite: A name in :data:`graphdl.bench.SUITES` (``quick``, ``planetoid``,
            ``ogbg-mol``, ``ogbl-ddi``).
        seeds: Seeds per configuration (``0 .. seeds-1``); ``None`` keeps each
            entry's default.
        epochs: Epochs per seed; ``None`` keeps each configuration's.
        root: Data root (``None``: ``$GRAPHDL_DATA`` or the user cache).
        json_path: Write the records here (atomically) when the suite ends. While
            it runs, the finished entries (and the finished seeds of the entry
            that runs) are written after each seed to ``<json_path>.partial``
            (removed at the end), so a suite that stops halfway leaves them
            behind and an earlier file at ``json_path`` whole.
        plot_path: Write a PNG of the learning curves here; ``None`` with a
            ``json_path`` writes it beside the JSON (same name, ``.png``; a
            ``json_path`` ending in ``.png`` then needs a ``plot_path``).
        progress: Show the Trainer's progress bars.
        select: Only the entries whose ``dataset/model`` matches one of these
            wildcard patterns (``"ogbg-molbbbp/gcn"``, ``"*/gin-virtual"``).
        verbose: Print per-seed lines and the final table.

    Returns:
        The records (see :func:`run_config`); an entry whose data cannot be
        loaded gets ``status`` ``"error: ..."`` and the suite goes on.
    """
    name = resolve_suite(suite)
    entries = list(suite_runs(name))
    if select is not None:
        patterns = [select] if isinstance(select, str) else list(select)
        entries = [e for e in entries if any(fnmatch.fnmatchcase(e.key, p.lower()) for p in patterns)]
        if not entries:
            raise ConfigError(f"select={patterns} matches no entry of suite {name!r}; its entries are "
                              f"{', '.join(e.key for e in suite_runs(name))}")
    if seeds is not None:  # as the results file records it (JSON cannot write np.int64 or an array)
        seeds = seeds.tolist() if isinstance(seeds, np.ndarray) else seeds
        listed = _seed_list(seeds)
        seeds = len(listed) if isinstance(seeds, (int, np.integer)) else listed
    if epochs is not None:
        epochs = _checked_epochs(epochs)
    from graphdl.datasets.root import resolve_root

    resolve_root(root)  # a root that is a file fails every entry: named once, before any runs
    json_file, plot_file = _suite_paths(json_path, plot_path)
    meta = {"description": SUITES[name], "command": shlex.join(sys.argv), "environment": environment(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "seeds_arg": seeds, "epochs_arg": epochs}
    records: list[dict[str, Any]] = []
    failed: dict[str, DataError] = {}  # dataset -> why it could not be loaded (tried once per suite)
    running: list[dict[str, Any]] = []  # the record of the entry's seeds finished so far

    def stopped() -> str:
        seeds_of = f" and {len(running[0]['runs'])} seed(s) of {entry.key}" if running else ""
        return (f"[{name}] stopped after {len(records)} of {len(entries)} entries{seeds_of}; the finished ones' "
                f"records: {partial_path(json_file)}")

    # json_file itself is replaced only by the whole suite's records, so that a suite that stops halfway does not
    # leave one entry in place of an earlier run's results there
    with _partial_kept(partial_path(json_file) if json_file is not None else None, stopped,
                       log if verbose else (lambda line: None)) as write:
        def seed_done(record: dict[str, Any]) -> None:  # the finished seeds of a long entry survive too
            running[:] = [record]
            write(name, records + running, meta)

        for entry in entries:
            running.clear()
            n_seeds = seeds if seeds is not None else entry.seeds
            n_epochs = epochs if epochs is not None else entry.epochs
            if verbose:
                log(f"[{name}] {entry.key}: {n_seeds} seed(s), "
                    f"{n_epochs if n_epochs is not None else 'default'} epochs")
            try:
                if entry.dataset in failed:
                    raise failed[entry.dataset]
                record = run_config(entry.dataset, entry.model, seeds=n_seeds, epochs=n_epochs, root=root,
                                    progress=progress, verbose=verbose, device=device, log=log,
                                    on_seed=seed_done if write is not None else None)
            except DataError as exc:  # missing or corrupt files: record it and go on
                record = _unloaded_record(entry.dataset, entry.model, exc)
                if verbose:
                    log(f"  skipped {entry.key}: " + ("its data failed to load above" if entry.dataset in failed
                                                      else str(exc)))
                failed[entry.dataset] = exc
            records.append(record)
            running.clear()
            if write is not None:
                write(name, records, meta)
        meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
        _write(json_file, None, name, records, meta)
    _write(None, plot_file, name, records, meta)
    if verbose:
        log("")
        log(format_table(records))
        if json_file:
            log(f"\nrecords: {json_file}" + (f"; learning curves: {plot_file}" if plot_file else ""))
    return records
