"""The shared Trainer: any registered model, any registered loss, any task.

>>> trainer = Trainer(model, loss="cross_entropy", task="node", lr=0.01, weight_decay=5e-4, epochs=200)
>>> result = trainer.fit(data)          # data.train_mask / val_mask / test_mask
>>> result.test                          # test metrics at the best validation epoch

Each epoch runs the task's training batches, then evaluates every split once
(as PyG's and OGB's example loops do) and logs ``train_loss`` (the batch
losses averaged with each batch weighted by the items its loss covers,
:meth:`Task.batch_weight`, as ``<split>_loss`` and PyG's example loops weigh
them) and ``<split>_<metric>``. The test score reported is the one at the epoch with the
best validation score, and the model ends in that epoch's state.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import numbers
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import ReduceLROnPlateau
from tqdm.auto import tqdm

from graphdl import distributed as _dist
from graphdl import validate as _validate
from graphdl.errors import ConfigError, ValidationError, did_you_mean
from graphdl.io import atomic_torch_save
from graphdl.train.callbacks import Callback, MetricLogger, ModelCheckpoint, class_name, load_callback_states
from graphdl.train.tasks import Task, canonical_split, resolve_task

__all__ = ["Trainer", "FitResult", "seed_everything", "resolve_loss"]

_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}


def _inputs_checked() -> contextlib.AbstractContextManager:
    """Model calls skip their value scans (``Task.setup`` scanned the data), unless ``GRAPHDL_DEBUG``."""
    return contextlib.nullcontext() if _validate.DEBUG else _validate.inputs_checked()


def _is_torch_seed(seed: Any) -> bool:
    """Whether ``seed`` is an integer in ``torch.manual_seed``'s range, [-2**63, 2**64)."""
    return not isinstance(seed, bool) and isinstance(seed, numbers.Integral) and -2**63 <= seed < 2**64


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) with an integer in torch's range, [-2**63, 2**64)."""
    if not _is_torch_seed(seed):
        raise ConfigError(f"seed must be an int in [-2**63, 2**64) (torch.manual_seed's range), got {seed!r}")
    seed = int(seed)  # NumPy integers too: random.seed refuses them
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _unknown_argument(unknown: Mapping[str, Any], task: Any, loss: Any) -> ConfigError:
    """An argument the Trainer does not take, pointed to ``task_kwargs`` or ``loss_kwargs`` when the task or the
    loss takes it (``Trainer(model, metric="f1")``), else to the Trainer's own arguments it resembles."""
    from graphdl import losses
    from graphdl.train.tasks import TASKS

    name, value = next(iter(unknown.items()))
    for owner, spec, registry in (("task", task, TASKS), ("loss", loss, losses)):
        try:
            target = registry.get(spec) if isinstance(spec, str) else type(spec)
            takes = name in inspect.signature(target).parameters
        except (ConfigError, TypeError, ValueError):  # an unknown name is named later, where it is resolved
            takes = False
        if takes:
            fix = (f"{owner}_kwargs={{{name!r}: {value!r}}}" if isinstance(spec, str) else
                   f"it to the {owner} you built, {type(spec).__name__}(..., {name}={value!r})")
            return ConfigError(f"the Trainer does not take {name!r}, which is an argument of the {owner}; pass {fix}")
    own = [p for p in inspect.signature(Trainer).parameters if p != "unknown"]
    return ConfigError(f"the Trainer does not take {name!r}.{did_you_mean(name, own)} Its arguments: "
                       f"{', '.join(own)}")


def resolve_loss(loss: str | nn.Module | Callable | None, default: str,
                 loss_kwargs: dict[str, Any] | None = None) -> tuple[nn.Module | Callable, str | None]:
    """A loss module from a registered name (built with ``loss_kwargs``), or the module itself, and its kind."""
    from graphdl import losses

    if loss is None:
        loss = default
    if isinstance(loss, str):
        entry = losses.entry(loss)
        try:
            module = losses.create(loss, **(loss_kwargs or {}))
        except ConfigError as exc:
            hint = ("" if isinstance(entry.obj, type) else
                    f"; if {getattr(entry.obj, '__name__', entry.name)} computes the loss itself (from the "
                    f"model's output and the target), hand it to the Trainer directly, loss=<the function>, "
                    f"since a registered loss is a class or factory that builds the loss module")
            given = (f" The Trainer built it from loss_kwargs={loss_kwargs!r}." if loss_kwargs else
                     " Give the Trainer its arguments as loss_kwargs={...}")
            raise ConfigError(f"{exc}{given}{hint}") from None
        _check_takes_two(module)
        return module, losses.kind_of(module)
    if loss_kwargs:
        raise ConfigError("loss_kwargs apply to a loss given by name; configure a loss module directly")
    if not callable(loss):
        raise ConfigError(f"loss must be a registered name or a callable module, got {type(loss).__name__}")
    if isinstance(loss, type):  # calling the class on (output, target) would build a module from them
        raise ConfigError(f"loss is the class {loss.__name__}; pass an instance, loss={loss.__name__}(...), or "
                          f"a registered name")
    kind = losses.kind_of(loss)  # as for a name
    if kind is None:
        kind = next((k for k, classes in _TORCH_KINDS.items() if isinstance(loss, classes)), None)
    for classes, why in _TORCH_TARGETS_UNGIVEN:
        if kind is None and isinstance(loss, classes):
            raise ConfigError(f"torch.nn.{type(loss).__name__} {why}")
    _check_takes_two(loss)
    return loss, kind


def _check_takes_two(loss: Any) -> None:
    """Every task calls a loss with two positional arguments or more (output and target, embeddings and labels,
    two scores and a sign, ...): a loss that takes fewer is named now, not with a TypeError at the first batch."""
    target = loss.forward if isinstance(loss, nn.Module) else loss
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):  # a builtin without a signature: let the call decide
        return
    params = signature.parameters.values()
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2 and not any(p.kind is p.VAR_POSITIONAL for p in params):
        name = type(loss).__name__ if isinstance(loss, nn.Module) else getattr(loss, "__name__", repr(loss))
        call = f"{name}.forward{signature}" if isinstance(loss, nn.Module) else f"{name}{signature}"
        raise ConfigError(f"the loss {call} takes fewer than the two arguments the tasks give a loss (the "
                          f"model's output and the target: forward(input, target)); change its signature, or "
                          f"wrap it, e.g. loss=lambda out, y: my_loss(out)")


#: torch.nn's losses by the kind of their graphdl namesakes, so that the tasks call them the same way
_TORCH_KINDS: dict[str, tuple[type, ...]] = {
    "classification": (nn.CrossEntropyLoss, nn.NLLLoss, nn.BCEWithLogitsLoss, nn.BCELoss, nn.MultiMarginLoss,
                       nn.MultiLabelSoftMarginLoss),
    "divergence": (nn.KLDivLoss,),
    "ranking": (nn.MarginRankingLoss, nn.HingeEmbeddingLoss, nn.CosineEmbeddingLoss, nn.TripletMarginLoss,
                nn.TripletMarginWithDistanceLoss),
    "regression": (nn.MSELoss, nn.L1Loss, nn.HuberLoss, nn.SmoothL1Loss, nn.PoissonNLLLoss),
}

#: torch.nn's losses whose targets no task gives, named when the Trainer is built instead of failing inside torch
#: at the first batch or, for SoftMarginLoss on 0/1 link labels, training every negative pair toward a constant
_TORCH_TARGETS_UNGIVEN: tuple[tuple[type, str], ...] = (
    (nn.SoftMarginLoss, "takes -1/+1 targets, but the tasks give 0/1 labels (on which every negative costs log 2 "
                        "with no gradient); use loss='bce_with_logits', the same loss on 0/1 labels"),
    (nn.MultiLabelMarginLoss, "takes targets of class indices padded with -1, which no task gives; use "
                              "loss='bce_with_logits' on 0/1 multi-label targets, or "
                              "torch.nn.MultiLabelSoftMarginLoss"),
    (nn.GaussianNLLLoss, "takes a third argument, the predicted variance, which the tasks do not pass; wrap it, "
                         "e.g. loss=lambda out, y: nll(out[:, :1], y, out[:, 1:].exp()) with a model of two outputs "
                         "per target"),
)


def _scheduler_arguments(scheduler: Any) -> dict[str, Any]:
    """The arguments of the scheduler's constructor that its ``state_dict`` holds (StepLR's ``step_size`` and
    ``gamma``, ReduceLROnPlateau's ``factor`` and ``patience``, ...), some per parameter group under their plural
    (ReduceLROnPlateau's ``min_lr`` as ``min_lrs``, CyclicLR's ``max_lr`` as ``max_lrs``): loading a saved state
    restores them."""
    state = scheduler.state_dict() if callable(getattr(scheduler, "state_dict", None)) else {}
    names = [k for k in inspect.signature(type(scheduler).__init__).parameters
             if k not in ("self", "optimizer", "last_epoch", "verbose")]
    keys = [k if k in state else f"{k}s" for k in names]
    return {k: state[k] for k in keys if k in state}


def _constructor_arguments(obj: Any, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    """The arguments ``obj`` was built with that it keeps under their own names (a task's ``batch_size``,
    ``num_neighbors``...; a loss's ``margin``, ``temperature``..., a property's such as ``reduction``, a module
    buffer's such as ``weight``; not a trained parameter), read through its ``__init__`` signature and
    those of the base classes its ``**kwargs`` pass on to, as JSON values (one JSON cannot write is left out). A
    tensor of more than 1024 values is recorded by its shape and dtype."""
    from graphdl.config import json_plain

    names: list[str] = []
    for cls in type(obj).__mro__:
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        if cls is object:
            break
        try:
            params = list(inspect.signature(init).parameters.values())[1:]  # without self
        except (TypeError, ValueError):  # a builtin or C-implemented __init__
            break
        names += [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if not any(p.kind is p.VAR_KEYWORD for p in params):  # **kwargs: the base class takes the rest
            break
    kept = getattr(obj, "__dict__", {})
    buffers = kept.get("_buffers") or {}  # a module's tensors (a loss's class weights), which its state restores
    arguments: dict[str, Any] = {}
    for name in dict.fromkeys(names):
        if name in leave_out:
            continue
        if name in kept:
            value = kept[name]
        elif name in buffers or isinstance(getattr(type(obj), name, None), property):  # a loss's reduction
            try:
                value = getattr(obj, name)
            except Exception:  # a property that needs what setup brings: not an argument kept
                continue
        else:  # not kept, or a trained parameter (its state, not a setting)
            continue
        numel = value.numel() if isinstance(value, Tensor) else value.size if isinstance(value, np.ndarray) else 0
        if numel > 1024:  # data, not a setting: its values would bloat every checkpoint
            value = f"{type(value).__name__} of shape {tuple(value.shape)} and dtype {value.dtype}"
        with contextlib.suppress(ValueError, TypeError, RecursionError):  # one JSON cannot write (cyclic): left out
            arguments[name] = json_plain(value)
    return arguments


def _task_arguments(task: Any) -> dict[str, Any]:
    """:func:`_constructor_arguments` of a task, with its metric's name as constructed; ``num_workers`` (which
    changes no value) is left out."""
    arguments = _constructor_arguments(task, leave_out=("metric", "num_workers"))
    # check_loss adapts the metric to the loss (knn_acc for a metric loss): the one constructed is the argument
    metric = getattr(task, "constructed_metric", getattr(task, "metric", None))
    if isinstance(getattr(metric, "name", None), str):
        arguments["metric"] = metric.name
    return arguments


def _check_loss_value(loss: Any, loss_fn: Any) -> None:
    """One batch's loss must be a scalar tensor that backpropagates to the model (or the loss's parameters)."""
    if isinstance(loss, Tensor) and loss.numel() == 1 and loss.requires_grad:
        return  # the per-batch path: nothing else to do
    from graphdl.train.tasks import loss_name

    if not isinstance(loss, Tensor):
        raise ValidationError(f"{loss_name(loss_fn)} returned {type(loss).__name__} {loss!r}; a loss returns a "
                              f"scalar torch tensor computed from the model's output")
    if loss.numel() != 1:
        raise ValidationError(f"{loss_name(loss_fn)} returned a tensor of shape {tuple(loss.shape)}; the Trainer "
                              f"needs one scalar per batch: reduce it (reduction='mean' or 'sum')")
    if not loss.requires_grad:
        raise ValidationError(f"{loss_name(loss_fn)} returned a value without a gradient: it does not depend on the "
                              f"model's output (a constant, or computed under torch.no_grad() or from .detach())")


def _check_settings(*, epochs: Any, lr: Any, weight_decay: Any, seed: Any, grad_clip: Any) -> None:
    """Refuse Trainer settings of the wrong type or range before they fail (or silently misbehave) mid-run."""
    def is_int(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    def is_real(v: Any) -> bool:
        return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)

    if not is_int(epochs) or epochs < 1:
        raise ConfigError(f"epochs must be an int >= 1, got {epochs!r}")
    if not is_real(lr) or not lr > 0:
        raise ConfigError(f"lr must be a number > 0, got {lr!r}")
    if not math.isfinite(lr):  # inf > 0: one step left NaN weights, and a one-epoch run no error
        raise ConfigError(f"lr must be a finite number > 0, got {lr!r}")
    if not is_real(weight_decay) or not weight_decay >= 0:
        raise ConfigError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
    if not math.isfinite(weight_decay):
        raise ConfigError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    if seed is not None and not _is_torch_seed(seed):  # refused here, not when fit() seeds
        raise ConfigError(f"seed must be None or an int in [-2**63, 2**64) (torch.manual_seed's range), "
                          f"got {seed!r}")
    if grad_clip is not None and (not is_real(grad_clip) or not grad_clip > 0):  # a negative norm flips gradients
        raise ConfigError(f"grad_clip must be a number > 0 (the largest gradient norm) or None, got {grad_clip!r}")


def _check_argument_types(*, task_kwargs: Any, loss_kwargs: Any, ddp_kwargs: Any, monitor: Any,
                          eval_splits: Any) -> None:
    """Refuse arguments of the wrong type when the Trainer is built, not with a bare TypeError or AttributeError
    from inside it (``task_kwargs=["metric"]``: "argument after ** must be a mapping")."""
    for name, value, what in (("task_kwargs", task_kwargs, "the task's arguments"),
                              ("loss_kwargs", loss_kwargs, "the loss's arguments"),
                              ("ddp_kwargs", ddp_kwargs, "DistributedDataParallel's arguments")):
        if value is not None and not isinstance(value, Mapping):
            raise ConfigError(f"{name} must be a dict of {what}, got {type(value).__name__}")
    if monitor is not None and not isinstance(monitor, str):
        raise ConfigError(f"monitor must be a metric name such as 'val_acc' or None, got {type(monitor).__name__}")
    if eval_splits is not None and not isinstance(eval_splits, (str, Iterable)):
        raise ConfigError(f"eval_splits must be a split name or a list of them, got {type(eval_splits).__name__}")


def _callback_list(callbacks: Callback | Sequence[Callback] | None) -> list[Callback]:
    """``callbacks`` as a list (``None``: none), with a class given in place of an instance named."""
    if callbacks is None:
        return []
    if not isinstance(callbacks, (Callback, Sequence)):
        raise ConfigError(f"callbacks must be a Callback or a list of them, got {type(callbacks).__name__}")
    items = [callbacks] if isinstance(callbacks, Callback) else list(callbacks)
    for c in items:
        if isinstance(c, type) and issubclass(c, Callback):
            raise ConfigError(f"callbacks take instances; {c.__name__} is the class: pass {c.__name__}(...)")
        if not isinstance(c, Callback):
            raise ConfigError(f"callbacks must be graphdl.train.Callback objects, got {type(c).__name__}")
    return items


def _rng_state() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def _set_rng_state(rng: dict[str, Any]) -> None:
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"].cpu())
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])


@dataclass
class FitResult:
    """What ``Trainer.fit`` returns.

    Attributes:
        best_epoch: Epoch (0-based) with the best monitored value.
        best: All metrics logged at ``best_epoch`` (``val_*``, ``test_*``, ...).
        history: One dict of metrics per epoch.
        seconds: Wall time of the fit.
        monitor: The monitored metric name.
        train_seconds: Time spent in the training steps of this fit.
        epochs_trained: Epochs trained by this fit: fewer than ``len(history)``
            when it resumed a checkpoint, so per-epoch time is
            ``epoch_seconds / epochs_trained``.
        epoch_seconds: Time spent in the epochs of this fit, training and
            evaluation; not the setup, nor the callbacks' checkpoints and logs.
    """

    best_epoch: int
    best: dict[str, float]
    history: list[dict[str, float]]
    seconds: float
    monitor: str
    train_seconds: float = 0.0
    epochs_trained: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    epoch_seconds: float = 0.0

    @property
    def test(self) -> dict[str, float]:
        """Test metrics at the best validation epoch."""
        return {k: v for k, v in self.best.items() if k.startswith("test_")}


class Trainer:
    """Train and evaluate a model on a task with a loss, both given by name or object.

    Args:
        model: Any ``nn.Module``; it is called as ``model(x, edge_index, **kw)``
            with the optional ``edge_weight``/``edge_attr``/``batch`` fields its
            forward names, or, when its forward takes one argument, as
            ``model(data)`` (named ``data``, ``batch``, ``batched_data`` or
            ``graph``, as OGB's example models) or ``model(x)`` (a model of the
            node features alone, such as an MLP baseline).
        loss: Registered loss name (``graphdl.losses.list()``) or a module;
            ``None`` uses the task's default. A loss with parameters (ArcFace,
            ProxyAnchor) is optimised together with the model.
        task: ``"node"``, ``"link"``, ``"graph"`` or a :class:`Task`.
        task_kwargs: Arguments for the task built from a name (``metric``,
            ``batch_size``, ``num_neighbors``, ...).
        loss_kwargs: Arguments for the loss built from a name (``temperature``,
            ``margin``, ``num_classes`` ...).
        optimizer: ``adam``, ``adamw``, ``sgd``, ``rmsprop``, a ``torch.optim``
            optimizer class (built with ``lr``) or a factory ``params -> Optimizer``.
        lr, weight_decay: Optimiser settings.
        epochs: Maximum number of epochs.
        scheduler: Optional factory ``optimizer -> LR scheduler``, stepped after each
            epoch; a ``ReduceLROnPlateau`` is stepped with the ``monitor`` value
            and must watch it in the direction it improves (``mode``).
        callbacks: :class:`Callback` objects; a :class:`ModelCheckpoint` that
            restores the best state is added when none is given.
        monitor: Metric that selects the best epoch (default: the task's
            ``default_monitor`` if it has one, else ``val_<metric>``).
            ``"val_loss"`` (the training loss on the val split, model in eval
            mode) is logged when the Trainer or a callback monitors it, by the
            tasks that define :meth:`Task.split_loss` (node, inductive_node,
            graph).
        seed: Seed for Python, NumPy and torch at the start of ``fit``, and for the
            parameters of a loss built from its name (ArcFace's class centres).
        device: ``"cpu"``, ``"cuda"``...; default CUDA when available.
        progress: Show a tqdm progress bar.
        log_path: Write per-epoch metrics to this ``.csv``/``.json`` file.
        eval_splits: Splits evaluated each epoch (default: all the task has).
        grad_clip: Clip the gradient norm to this value.
        deterministic: Use deterministic kernels only
            (``torch.use_deterministic_algorithms(True)`` during ``fit``, and
            ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` unless set); an operation
            without a deterministic implementation then raises. See
            ``docs/determinism.md``.
        ddp_kwargs: Extra arguments for ``DistributedDataParallel`` under
            ``torch.distributed`` (e.g. ``find_unused_parameters=True``).

    Distributed training: when ``torch.distributed`` is initialised (``torchrun``,
    ``graphdl train --nproc N``, :func:`graphdl.distributed.spawn`), ``fit``
    wraps the model in ``DistributedDataParallel``, lets the task train on its
    shard (``task.shard(rank, world_size, seed)``; ``batch_size`` is per
    process), averages the training loss over ranks, broadcasts rank 0's
    evaluation figures (every rank evaluates the full splits) and writes files
    on rank 0 only (:attr:`is_main_process`).
    """

    def __init__(
        self,
        model: nn.Module,
        loss: str | nn.Module | None = None,
        task: str | Task = "node",
        *,
        task_kwargs: dict[str, Any] | None = None,
        loss_kwargs: dict[str, Any] | None = None,
        optimizer: str | Callable[..., torch.optim.Optimizer] = "adam",
        lr: float = 0.01,
        weight_decay: float = 0.0,
        epochs: int = 200,
        scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
        callbacks: Callback | Sequence[Callback] | None = (),
        monitor: str | None = None,
        seed: int | None = None,
        device: str | torch.device | None = None,
        progress: bool = True,
        log_path: str | os.PathLike | None = None,
        eval_splits: str | Sequence[str] | None = None,
        grad_clip: float | None = None,
        deterministic: bool = False,
        ddp_kwargs: dict[str, Any] | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise _unknown_argument(unknown, task, loss)
        if not isinstance(model, nn.Module):
            raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        _check_settings(epochs=epochs, lr=lr, weight_decay=weight_decay, seed=seed, grad_clip=grad_clip)
        if scheduler is not None and not callable(scheduler):
            raise ConfigError(f"scheduler must be a factory optimizer -> LR scheduler, such as lambda opt: "
                              f"torch.optim.lr_scheduler.StepLR(opt, step_size=50); got {scheduler!r}")
        if not (isinstance(optimizer, str) or callable(optimizer)):
            raise ConfigError(f"optimizer must be a name ({', '.join(_OPTIMIZERS)}), a torch.optim optimizer class "
                              f"or a factory params -> Optimizer, got {type(optimizer).__name__}")
        if isinstance(optimizer, str) and optimizer.lower() not in _OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {optimizer!r}.{did_you_mean(optimizer.lower(), _OPTIMIZERS)} "
                              f"Known: {', '.join(_OPTIMIZERS)}, or pass a factory params -> Optimizer")
        _check_argument_types(task_kwargs=task_kwargs, loss_kwargs=loss_kwargs, ddp_kwargs=ddp_kwargs,
                              monitor=monitor, eval_splits=eval_splits)
        self.task = resolve_task(task, **(task_kwargs or {}))
        # a task reused from another Trainer starts from its own metric, not the one adapted to that loss
        self.task.metric = getattr(self.task, "constructed_metric", self.task.metric)
        # as built: setup and fit may adapt them (the metric to the loss), and a checkpoint saved mid-fit must
        # compare equal to a fresh Trainer built alike
        self._task_arguments = _task_arguments(self.task)
        # a loss built here from a name draws its parameters (ArcFace's class centres) from the seed, not from
        # whatever state the global RNG is in, so that two runs with one seed and one model are identical
        seeded = seed is not None and (loss is None or isinstance(loss, str))  # None: the task's default, by name
        with torch.random.fork_rng(devices=[], enabled=seeded):  # the global RNG is left as it was
            if seeded:
                torch.manual_seed(int(seed))
            self.loss_fn, self.task.loss_kind = resolve_loss(loss, self.task.default_loss, loss_kwargs)
        self.task.check_loss(self.loss_fn, self.task.loss_kind)
        self.task.check_model(model)
        self._loss_arguments = (_constructor_arguments(self.loss_fn) if isinstance(self.loss_fn, nn.Module)
                                else None)
        self.deterministic = bool(deterministic)
        if self.deterministic:  # before the first cuBLAS call, which reads it
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        self.ddp_kwargs = dict(ddp_kwargs or {})
        try:
            self.device = torch.device(device) if device is not None else torch.device(
                "cuda" if torch.cuda.is_available() else "cpu")
        except (RuntimeError, TypeError):
            raise ConfigError(f"device must be a torch device such as 'cpu', 'cuda' or 'cuda:1', "
                              f"got {device!r}") from None
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device {str(self.device)!r} was asked for but CUDA is not available in this "
                              f"torch build or machine; use device='cpu'")
        if self.device.type == "meta":  # tensors without data: training would fail deep inside
            raise ConfigError("device 'meta' holds no data and cannot train; use device='cpu'"
                              + (" or 'cuda'" if torch.cuda.is_available() else ""))
        try:  # another device type, or a device index this machine lacks, would fail when the model moves
            torch.empty(0, device=self.device)
        except Exception as exc:  # RuntimeError, AssertionError; ModuleNotFoundError for a backend not installed
            raise ConfigError(f"device {str(self.device)!r} cannot be used here ({str(exc).split('. ')[0]}); "
                              f"use device='cpu'" + (f" or one of cuda:0..cuda:{torch.cuda.device_count() - 1}"
                                                     if torch.cuda.is_available() else "")) from None
        if self.device.type == "cuda" and self.device.index is None and _dist.is_distributed():
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        self.model = model.to(self.device)
        if isinstance(self.loss_fn, nn.Module):
            self.loss_fn = self.loss_fn.to(self.device)
        self.optimizer_spec, self.lr, self.weight_decay = optimizer, lr, weight_decay
        self.epochs, self.scheduler_factory = epochs, scheduler
        self.monitor = monitor or getattr(self.task, "default_monitor", None) or f"val_{self.task.metric.name}"
        self.seed, self.progress, self.grad_clip = seed, progress, grad_clip
        self.eval_splits = [eval_splits] if isinstance(eval_splits, str) else (
            None if eval_splits is None else list(eval_splits))  # a generator would be spent by the first fit
        self.callbacks: list[Callback] = _callback_list(callbacks)
        if not any(isinstance(c, ModelCheckpoint) for c in self.callbacks):
            self.callbacks.append(ModelCheckpoint())
        if log_path is not None:
            self.callbacks.append(MetricLogger(log_path))
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None
        self.history: list[dict[str, float]] = []
        self.epoch = 0
        self.should_stop = False
        self._fit_rng: dict[str, Any] | None = None  # the RNG states the task's setup drew from (checkpointed)
        self._set_up = False  # the task holds data: fit, evaluate or predict was given some
        self._train_model: nn.Module = self.model  # the DistributedDataParallel wrapper under torch.distributed

    # ------------------------------------------------------------------ distributed
    @property
    def rank(self) -> int:
        """This process's rank under ``torch.distributed`` (0 otherwise)."""
        return _dist.get_rank()

    @property
    def world_size(self) -> int:
        """Number of processes under ``torch.distributed`` (1 otherwise)."""
        return _dist.get_world_size()

    @property
    def is_main_process(self) -> bool:
        """True on rank 0 and in a single-process run: the process that writes files."""
        return _dist.is_main_process()

    def _setup_distributed(self) -> None:
        """Shard the task and wrap the model in DDP (only under torch.distributed)."""
        self._train_model = self.model
        if not _dist.is_distributed():
            return
        from torch.nn.parallel import DistributedDataParallel

        # unseeded: 0, so that a resumed run draws the epoch orders it would have drawn
        self.task.shard(self.rank, self.world_size, seed=self.seed if self.seed is not None else 0)
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        self._train_model = DistributedDataParallel(self.model, device_ids=device_ids, **self.ddp_kwargs)

    def _broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not _dist.is_distributed():
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    # ------------------------------------------------------------------ helpers
    def mode_for(self, name: str) -> str:
        """``"max"`` or ``"min"``: the direction in which metric ``name`` improves."""
        if name.endswith("loss"):
            return "min"
        if name.endswith(self.task.metric.name):
            return "max" if self.task.metric.higher_is_better else "min"
        # another built-in metric the task logs beside its own (the autoencoder's ap beside rocauc)
        metric = name.partition("_")[2]
        if metric and metric.lower()[:5] not in ("ogbg-", "ogbl-", "ogbn-"):  # not an OGB evaluator to load
            from graphdl.train.metrics import resolve_metric

            with contextlib.suppress(ConfigError):
                return "max" if resolve_metric(metric).higher_is_better else "min"
        raise ConfigError(f"cannot tell whether {name!r} should go up or down; pass mode='max' or 'min'")

    def parameters(self) -> list[nn.Parameter]:
        """The model's trainable parameters and the loss's, if it has any (each once: a loss may hold one of the
        model's layers, whose gradient the clipped norm must count once)."""
        return [p for p in [*self.model.parameters(), *self._loss_parameters()] if p.requires_grad]

    def _loss_parameters(self) -> list[nn.Parameter]:
        """The loss's parameters that are not the model's (a loss may hold one of the model's layers)."""
        if not isinstance(self.loss_fn, nn.Module):
            return []
        model_params = {id(p) for p in self.model.parameters()}
        return [p for p in self.loss_fn.parameters() if id(p) not in model_params]

    def _param_groups(self) -> list[dict[str, Any]]:
        """Model groups (``model.optimizer_groups(weight_decay)`` when defined) plus the loss's parameters."""
        if hasattr(self.model, "optimizer_groups"):
            groups = [dict(g) for g in self.model.optimizer_groups(self.weight_decay)]
        else:
            groups = [{"params": list(self.model.parameters()), "weight_decay": self.weight_decay}]
        # a parameter the loss shares with the model (a layer it holds) is trained once, as the model's: torch
        # refuses one in two groups
        loss_params = self._loss_parameters()
        if loss_params:
            groups.append({"params": loss_params, "weight_decay": 0.0})
        for group in groups:
            group["params"] = [p for p in group["params"] if p.requires_grad]
        return [g for g in groups if g["params"]]

    def _build_optimizer(self) -> None:
        groups = self._param_groups()
        if not groups:
            raise ConfigError("the model has no trainable parameters")
        spec, factory = self.optimizer_spec, False
        if isinstance(spec, type) and issubclass(spec, torch.optim.Optimizer):  # a class: the Trainer's lr
            self.optimizer = spec(groups, lr=self.lr)
        elif callable(spec):
            self.optimizer, factory = spec(groups), True
        else:
            self.optimizer = _OPTIMIZERS[spec.lower()](groups, lr=self.lr)
        if not isinstance(self.optimizer, torch.optim.Optimizer):
            raise ConfigError(f"the optimizer factory returned {type(self.optimizer).__name__}, not a "
                              f"torch.optim.Optimizer; return one built on the parameter groups it is given")
        decay = self.optimizer.defaults.get("weight_decay")
        if factory and isinstance(decay, numbers.Real) and decay != 0 and decay != self.weight_decay:
            # the groups' own weight_decay wins over the optimizer's: the factory's would silently not apply
            name = type(self.optimizer).__name__
            raise ConfigError(f"the optimizer factory built {name} with weight_decay={decay!r}, but the parameter "
                              f"groups it is given carry the Trainer's weight_decay={self.weight_decay!r}, which "
                              f"overrides it; pass weight_decay={decay!r} to the Trainer (or build {name} with "
                              f"weight_decay={self.weight_decay!r})")
        try:
            self.scheduler = self.scheduler_factory(self.optimizer) if self.scheduler_factory else None
        except TypeError as exc:  # e.g. scheduler=StepLR, whose step_size has no default
            raise ConfigError(f"the scheduler factory cannot be called with the optimizer alone ({exc}); pass a "
                              f"factory that sets the rest, e.g. lambda opt: torch.optim.lr_scheduler.StepLR(opt, "
                              f"step_size=50)") from None
        if self.scheduler is not None and not callable(getattr(self.scheduler, "step", None)):
            raise ConfigError(f"the scheduler factory returned {type(self.scheduler).__name__}, which has no step(); "
                              f"return an LR scheduler built on the optimizer it is given")
        scheduled = getattr(self.scheduler, "optimizer", self.optimizer)
        if scheduled is not self.optimizer:  # it would change the learning rate of an optimizer never stepped
            raise ConfigError(f"the scheduler factory returned a {type(self.scheduler).__name__} of another "
                              f"optimizer ({type(scheduled).__name__}); build it on the optimizer it is given, "
                              f"e.g. lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=50)")
        if isinstance(self.scheduler, ReduceLROnPlateau) and self.scheduler.mode != self.mode_for(self.monitor):
            raise ConfigError(f"ReduceLROnPlateau(mode={self.scheduler.mode!r}) is stepped with {self.monitor!r}, "
                              f"which improves as it goes {'up' if self.mode_for(self.monitor) == 'max' else 'down'}; "
                              f"build it with mode={self.mode_for(self.monitor)!r}")

    # ------------------------------------------------------------------ public API
    def fit(self, data: Any, splits: Any = None, resume_from: str | os.PathLike | None = None) -> FitResult:
        """Train for up to ``epochs`` epochs and return a :class:`FitResult`.

        ``data`` and ``splits`` are what the task takes (a graph with masks, a
        dataset with OGB splits, ...). ``resume_from`` continues from a
        checkpoint written by :meth:`save_checkpoint`.
        """
        if self.deterministic:
            previous = (torch.are_deterministic_algorithms_enabled(),
                        torch.is_deterministic_algorithms_warn_only_enabled(), torch.backends.cudnn.benchmark)
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
            try:
                return self._fit(data, splits, resume_from)
            finally:
                torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
                torch.backends.cudnn.benchmark = previous[2]
        return self._fit(data, splits, resume_from)

    def _fit(self, data: Any, splits: Any, resume_from: str | os.PathLike | None) -> FitResult:
        start = time.perf_counter()
        with _inputs_checked():  # Task.setup scans the data; the model calls then skip their scans
            return self._fit_checked(data, splits, resume_from, start)

    def _fit_checked(self, data: Any, splits: Any, resume_from: str | os.PathLike | None,
                     start: float) -> FitResult:
        seed = self.seed
        if seed is None and _dist.is_distributed():
            # rank 0 draws one for all: the ranks must shuffle, draw views and drop out alike, as seeded ones do
            seed = self._broadcast(random.SystemRandom().randrange(2**63))
        if seed is not None:
            seed_everything(seed)
        resumed = self._read_checkpoint(resume_from) if resume_from is not None else None
        if resumed is not None and resumed.get("fit_rng") is not None:
            # the task's setup draws (an autoencoder's edge split) as it did when the run started: unseeded, the
            # resumed process drew its own and trained on other edges
            _set_rng_state(resumed["fit_rng"])
        self._fit_rng = _rng_state()
        self.task.setup(data, splits, self.device)
        self._set_up = True
        splits_to_eval = list(self.eval_splits or self.task.split_names())
        self.task.check_splits(splits_to_eval)
        if self.monitor.split("_", 1)[0] not in ("train",) and not any(
                self.monitor.startswith(f"{s}_") for s in self.task.split_names()):
            names = self.task.split_names()
            if not names:
                raise ConfigError(f"the {type(self.task).__name__} has nothing to evaluate on this data (no "
                                  f"labels), so {self.monitor!r} is never logged; select the epoch by the "
                                  f"training loss: monitor='train_loss'")
            standard = ["train", "val", "valid", "test"]
            misspelt = "".join(f" Split {n!r}:{hint}" for n in names
                               if n not in standard and (hint := did_you_mean(n, standard)))
            existing = ", ".join(repr(f"{n}_{self.task.metric.name}") for n in names)
            raise ConfigError(f"monitor {self.monitor!r} names no split of this task (splits: {', '.join(names)})."
                              f"{misspelt} Name the validation split 'val' (or 'valid'), or monitor one that "
                              f"exists: {existing}")
        try:  # named now, not by the best-epoch selection once every epoch has trained
            self.mode_for(self.monitor)
        except ConfigError:
            known = [f"{canonical_split(s)}_{self.task.metric.name}" for s in self.task.split_names()]
            raise ConfigError(f"the Trainer cannot tell whether monitor {self.monitor!r} should go up or down."
                              f"{did_you_mean(self.monitor, known + ['train_loss'])} Monitor a loss, the task's "
                              f"metric ({self.task.metric.name!r}) or another built-in metric it logs") from None
        self._build_optimizer()
        self._setup_distributed()
        self.history, self.epoch, self.should_stop = [], 0, False
        first_epoch = 0
        for cb in self.callbacks:
            cb.on_fit_start(self)
        self._check_monitored_splits(splits_to_eval)
        loss_splits = self._monitored_split_losses()
        if resumed is not None:
            first_epoch = self._restore(resumed, Path(resume_from)) + 1
            if self.should_stop:  # the checkpointed run had stopped early
                first_epoch = self.epochs
        train_seconds, epoch_seconds, epochs_trained = 0.0, 0.0, 0
        bar = tqdm(range(first_epoch, self.epochs), desc="epochs",
                   disable=not (self.progress and self.is_main_process), leave=False)
        for epoch in bar:
            self.epoch = epoch
            self.task.set_epoch(epoch)
            t0 = time.perf_counter()
            train_loss = self._train_epoch()
            train_seconds += time.perf_counter() - t0
            epochs_trained += 1
            self.model.eval()
            logs = {"epoch": epoch, "train_loss": train_loss, **self.task.evaluate(self.model, splits_to_eval)}
            if loss_splits:
                logs.update(self._split_losses(loss_splits))
            logs = self._broadcast(logs)  # every rank evaluated the full splits; report rank 0's figures
            epoch_seconds += time.perf_counter() - t0
            self.history.append(logs)
            if isinstance(self.scheduler, ReduceLROnPlateau):
                self.scheduler.step(self._monitored(logs))
            elif self.scheduler is not None:
                self.scheduler.step()
            for cb in self.callbacks:
                cb.on_epoch_end(self, logs)
            if self.progress:
                bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items() if k != "epoch"}, refresh=False)
            self.should_stop = self._broadcast(self.should_stop)
            for cb in self.callbacks:  # checkpoints: after every callback has updated its state
                cb.after_epoch(self, logs)
            if self.should_stop:
                break
        for cb in self.callbacks:
            cb.on_fit_end(self)
        best_epoch, best = self._best()
        return FitResult(best_epoch, best, self.history, time.perf_counter() - start, self.monitor,
                         train_seconds=train_seconds, epochs_trained=epochs_trained, epoch_seconds=epoch_seconds)

    def _train_epoch(self) -> float:
        model, optimizer, loss_fn, task = self._train_model, self.optimizer, self.loss_fn, self.task
        sync_loss_grads = _dist.is_distributed() and isinstance(loss_fn, nn.Module) and any(
            p.requires_grad for p in loss_fn.parameters())
        model.train()
        if isinstance(loss_fn, nn.Module):
            loss_fn.train()
        # summed in float64 (float32 where the device has none), as PyG's loops sum float(loss) * items in Python
        # floats: float32 sums were off the plain loop's train_loss by ~1e-7 relative
        total_dtype = torch.float32 if self.device.type == "mps" else torch.float64
        total, count, weights = torch.zeros((), device=self.device, dtype=total_dtype), 0, 0.0
        for batch in task.train_batches():
            optimizer.zero_grad(set_to_none=True)
            loss = task.train_loss(model, batch, loss_fn)
            _check_loss_value(loss, loss_fn)
            loss.backward()
            if sync_loss_grads:  # DDP averages the model's gradients; average the loss's parameters' too
                self._average_loss_gradients()
            if self.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.parameters(), self.grad_clip)
            try:
                optimizer.step()
            except RuntimeError as exc:  # lr=1e38: Adam's step size overflows float32 inside torch
                if "without overflow" not in str(exc):
                    raise
                raise ValidationError(f"the optimizer's step overflowed ({exc}) at epoch {self.epoch}; the "
                                      f"learning rate (lr={optimizer.param_groups[0]['lr']:g}) is too large for "
                                      f"these parameters: lower it") from None
            weight = task.batch_weight(batch)  # the items its mean loss covers (graphs, seeds, targets)
            total += loss.detach().reshape(()).to(total_dtype) * weight  # a (1,)-shaped loss: the scalar it holds
            count, weights = count + 1, weights + weight
        if count == 0:
            raise ValidationError("the training split produced no batch; is it empty?")
        if _dist.is_distributed():  # every rank's items together: the ranks' weights differ with NaN targets
            import torch.distributed as dist

            summed = torch.stack([total, torch.tensor(float(weights), device=total.device, dtype=total.dtype)])
            dist.all_reduce(summed)
            total, weights = summed[0], float(summed[1])
        value = float(total / weights) if weights else math.nan
        if not np.isfinite(value):
            raise ValidationError(f"training loss became {value} at epoch {self.epoch}; lower the learning "
                                  f"rate or check the inputs for NaN/inf")
        return value

    def _check_monitored_splits(self, evaluated: Sequence[str]) -> None:
        """A monitored metric of a split that ``eval_splits`` leaves out is never logged: name it before training
        rather than after the first epoch."""
        scored = {canonical_split(s) for s in evaluated}
        watchers = [("the Trainer", self.monitor)] + [(type(cb).__name__, cb.monitor) for cb in self.callbacks
                                                      if isinstance(getattr(cb, "monitor", None), str)]
        for owner, name in watchers:
            split, _, what = name.partition("_")
            if what != "loss" and split in self.task.split_names() and split not in scored:
                raise ConfigError(f"{owner} monitors {name!r}, but eval_splits={list(evaluated)!r} leaves the "
                                  f"{split!r} split out, so it is never logged; add {split!r} to eval_splits, "
                                  f"or monitor a split it scores")

    def _monitored_split_losses(self) -> list[str]:
        """The held-out splits whose loss is monitored (``monitor="val_loss"``, by the Trainer or a callback)."""
        monitored = {self.monitor, *(getattr(cb, "monitor", None) for cb in self.callbacks)}
        splits = [s for s in map(canonical_split, self.task.split_names()) if s != "train" and f"{s}_loss" in monitored]
        if splits and type(self.task).split_loss is Task.split_loss:
            raise ConfigError(f"{splits[0]}_loss is monitored, but the {type(self.task).__name__} does not compute "
                              f"held-out losses (Task.split_loss); monitor a metric such as "
                              f"'{splits[0]}_{self.task.metric.name}', or 'train_loss'")
        return splits

    @torch.no_grad()
    def _split_losses(self, splits: Sequence[str]) -> dict[str, float]:
        """``{f"{split}_loss": value}``: the training loss on each held-out split, model and loss in eval mode."""
        if isinstance(self.loss_fn, nn.Module):
            self.loss_fn.eval()
        return {f"{split}_loss": self.task.split_loss(self.model, split, self.loss_fn) for split in splits}

    def _average_loss_gradients(self) -> None:
        import torch.distributed as dist

        for p in self.loss_fn.parameters():
            if p.requires_grad:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                dist.all_reduce(p.grad)
                p.grad /= self.world_size

    def _monitored(self, logs: Mapping[str, float]) -> float:
        """The monitored metric in one epoch's ``logs``."""
        if self.monitor not in logs:
            raise ConfigError(f"monitor {self.monitor!r} is not logged.{did_you_mean(self.monitor, logs)}"
                              f" Logged metrics: {', '.join(sorted(logs))}")
        return logs[self.monitor]

    def _best(self) -> tuple[int, dict[str, float]]:
        if not self.history:
            raise ConfigError("no epoch was run (was the run already complete when resumed?)")
        self._monitored(self.history[0])
        sign = 1.0 if self.mode_for(self.monitor) == "max" else -1.0

        def rank(i: int) -> tuple[float, int]:  # a NaN value is the worst, as the callbacks take it
            value = float(self.history[i][self.monitor])
            return (-math.inf if math.isnan(value) else sign * value), -i

        # First epoch reaching the best value, as PyG's and OGB's examples pick it.
        best_index = max(range(len(self.history)), key=rank)
        return int(self.history[best_index]["epoch"]), dict(self.history[best_index])

    @torch.no_grad()
    def evaluate(self, data: Any = None, split: str | Sequence[str] = "test", splits: Any = None) -> dict[str, float]:
        """Metrics of the current model on ``split`` (a name or several)."""
        if isinstance(data, str) or (isinstance(data, (list, tuple)) and data
                                     and all(isinstance(d, str) for d in data)):
            raise ConfigError(f"evaluate() takes the data first (None: the data fitted); pass the split names as "
                              f"evaluate(split={data!r})")
        if not isinstance(split, str) and not (isinstance(split, (list, tuple)) and all(isinstance(s, str)
                                                                                       for s in split)):
            raise ConfigError(f"evaluate()'s second argument is the split name(s) to score, got a "
                              f"{type(split).__name__}; pass the splits of the data as evaluate(data, splits=...)")
        if data is not None or splits is not None:
            self.task.setup(data, splits, self.device)
            self._set_up = True
        elif not self._set_up:
            raise ConfigError("evaluate() needs data before fit() has been called")
        names = [split] if isinstance(split, str) else list(split)
        self.task.check_splits(names)
        self.model.eval()
        with _inputs_checked():
            return self.task.evaluate(self.model, names)

    @torch.no_grad()
    def predict(self, data: Any = None, splits: Any = None) -> Tensor:
        """Model outputs (eval mode, on the trainer's device) on new ``data`` (the node task: one row per node;
        the graph task: one row per graph, in ``data``'s order; neither needs masks, splits or labels), or on the
        data last fitted. The fitted data stay what :meth:`evaluate` scores."""
        self.model.eval()
        if data is not None or splits is not None:
            return self.task.predict_on(self.model, data, splits, self.device)
        if not self._set_up:
            raise ConfigError("predict() needs data before fit() has been called")
        with _inputs_checked():
            return self.task.predict(self.model)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training exactly: weights, optimiser,
        scheduler, callbacks, the task's own state, history, epoch and RNG states (now's, and those the task's
        setup drew from at the start of the fit)."""
        return {
            "model": self.model.state_dict(),
            "loss": self.loss_fn.state_dict() if isinstance(self.loss_fn, nn.Module) else None,
            "optimizer": self.optimizer.state_dict() if self.optimizer else None,
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "callbacks": [cb.state_dict() for cb in self.callbacks],
            "callback_types": [class_name(cb) for cb in self.callbacks],
            "settings": self.resume_settings(),
            "task": self.task.state_dict(),
            "history": self.history,
            "epoch": self.epoch,
            "epochs": self.epochs,  # the run's target: a resume that names none continues to it
            "should_stop": self.should_stop,
            "rng": _rng_state(),
            "fit_rng": self._fit_rng,
            "model_class": class_name(self.model),
        }

    def resume_settings(self) -> dict[str, Any]:
        """The settings a checkpoint must be resumed with (JSON values): the optimiser's class and arguments
        (its ``defaults``: lr, betas...), the LR scheduler's class and arguments, the weight decay, the monitored
        metric, the number of processes, ``grad_clip``, ``deterministic``, ``seed``, the task's class and the
        arguments it was built with (``batch_size``, ``num_neighbors``, ``metric``...: :func:`_task_arguments`), and
        a loss module's class and arguments (``margin``, ``temperature``...).
        A resumed optimiser takes its saved learning rate and state, so another value would not take effect;
        another scheduler would drop or misread the saved schedule; another monitor would select the best epoch by
        a metric the saved best value is not of; another number of processes would shard the batches and restore
        the random states otherwise; the saved random states win over another seed; and other clipping, kernels or
        batches would train the remaining epochs otherwise: the run would not continue as it started."""
        from graphdl.config import json_plain

        task_arguments = getattr(self, "_task_arguments", None)  # recorded as built (__init__)
        settings: dict[str, Any] = {"weight_decay": self.weight_decay, "monitor": self.monitor,
                                    "world_size": self.world_size, "grad_clip": self.grad_clip,
                                    "deterministic": self.deterministic, "seed": self.seed,
                                    "task": class_name(self.task),
                                    "task_arguments": task_arguments or _task_arguments(self.task)}
        if isinstance(self.loss_fn, nn.Module):  # a function's arguments are its own
            settings.update(loss=class_name(self.loss_fn), loss_arguments=getattr(self, "_loss_arguments", None)
                            or _constructor_arguments(self.loss_fn))
        if self.optimizer is not None:  # built by fit (and by load_checkpoint), with the scheduler
            # the scheduler's class: a resume without one kept the decayed learning rate constant, and another
            # class took a state that is not its own
            settings.update(optimizer=class_name(self.optimizer), optimizer_defaults=dict(self.optimizer.defaults),
                            scheduler=class_name(self.scheduler) if self.scheduler is not None else None)
            if self.scheduler is not None:  # its saved state holds them and would silently win over new ones
                settings["scheduler_arguments"] = _scheduler_arguments(self.scheduler)
        return json_plain(settings)

    def check_resume_settings(self, saved: Mapping[str, Any] | None, source: str,
                              trained_epochs: int | None = None) -> None:
        """Refuse to resume ``source`` (a checkpoint, or a finished run's record) with other
        :meth:`resume_settings`, or with fewer ``epochs`` than it has ``trained_epochs``; ``saved`` is ``None``
        for checkpoints written before settings were saved."""
        from graphdl.config import config_changes

        if trained_epochs is not None and trained_epochs > self.epochs:
            raise ConfigError(f"{source} has trained {trained_epochs} epochs, more than epochs={self.epochs}; a "
                              f"resumed run cannot undo epochs: resume with epochs >= {trained_epochs}, or train "
                              f"{self.epochs} epochs afresh in another checkpoint folder")
        if not saved:
            return
        saved = dict(saved)
        if self.optimizer is None and "optimizer" in saved:  # a finished run's record, checked before any fit
            self._build_optimizer()
        current = {k: v for k, v in self.resume_settings().items() if k in saved}  # what the source recorded
        # arguments are compared only between objects of one class: another class is named as such
        arguments = {name: (saved.pop(key, None), current.pop(key, None))
                     for name, key in (("optimizer", "optimizer_defaults"), ("scheduler", "scheduler_arguments"),
                                       ("task", "task_arguments"), ("loss", "loss_arguments"))}
        changes = config_changes(saved, current)
        for name, (old, new) in arguments.items():
            if old is not None and new is not None and saved.get(name) == current.get(name):
                common = set(old) & set(new)  # keys a torch version adds are not changes
                changes += config_changes({k: old[k] for k in common}, {k: new[k] for k in common})
        if changes:
            raise ConfigError(f"{source} was trained with other settings ({', '.join(changes)}); a resumed run "
                              f"continues the saved optimiser, random states and best value, so with these changes "
                              f"it would not continue the run it saved. Resume with the settings it was trained "
                              f"with, or start afresh in another checkpoint folder")

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Write :meth:`state_dict` to ``path`` atomically (temporary file, then rename).

        Under ``torch.distributed`` every rank must call it: the RNG states of
        all ranks are gathered (``rng_per_rank``) and rank 0 writes the file.
        """
        state = self.state_dict()
        if _dist.is_distributed():
            import torch.distributed as dist

            gathered: list[Any] = [None] * self.world_size
            dist.all_gather_object(gathered, state["rng"])
            state["rng_per_rank"] = gathered
        if self.is_main_process:
            atomic_torch_save(state, path)

    def load_checkpoint(self, path: str | os.PathLike) -> int:
        """Restore a checkpoint into this trainer (after ``fit`` set it up); return its epoch."""
        return self._restore(self._read_checkpoint(path), Path(path))

    def _read_checkpoint(self, path: str | os.PathLike) -> dict[str, Any]:
        """The checked contents of the checkpoint at ``path``."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"no checkpoint at {path}")
        try:
            state = torch.load(path, map_location=self.device, weights_only=False)
        except Exception as exc:  # truncated or foreign file: torch raises many kinds
            raise ConfigError(f"checkpoint {path} cannot be read ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); it is not a "
                              f"complete graphdl checkpoint") from None
        required = ("model", "optimizer", "callbacks", "history", "epoch", "rng", "model_class")
        if not isinstance(state, dict) or any(k not in state for k in required):
            raise ConfigError(f"checkpoint {path} is not a resumable Trainer checkpoint (expected the keys "
                              f"{', '.join(required)}, as Trainer.save_checkpoint and ModelCheckpoint's "
                              f"last.pt hold; best.pt holds weights only)")
        expected = class_name(self.model)
        if state.get("model_class") != expected:
            raise ConfigError(f"checkpoint {path} holds a {state.get('model_class')}, not a {expected}")
        return state

    def _restore(self, state: dict[str, Any], path: Path) -> int:
        """Load a checkpoint's contents (:meth:`_read_checkpoint`) into this trainer; return its epoch."""
        if self.optimizer is None:
            self._build_optimizer()
        # before anything loads: a changed setting would silently not take effect, or fail inside torch
        self.check_resume_settings(state.get("settings"), f"checkpoint {path}", trained_epochs=len(state["history"]))
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise ConfigError(f"checkpoint {path} does not fit this model (different layers or sizes): "
                              f"{str(exc).splitlines()[0]}") from None
        try:
            if state["loss"] is not None and isinstance(self.loss_fn, nn.Module):
                self.loss_fn.load_state_dict(state["loss"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (KeyError, ValueError, RuntimeError) as exc:  # a checkpoint from before settings were saved
            raise ConfigError(f"checkpoint {path} does not fit this trainer's loss or optimizer ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); resume with the loss and "
                              f"optimizer it was written with") from None
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        load_callback_states(self.callbacks, state["callbacks"], state.get("callback_types"), f"checkpoint {path}")
        self.task.load_state_dict(state.get("task") or {})
        self.history = list(state["history"])
        self.epoch = int(state["epoch"])
        self.should_stop = bool(state.get("should_stop", False))
        rng = state["rng"]
        per_rank = state.get("rng_per_rank")
        if per_rank is not None and len(per_rank) == self.world_size:
            rng = per_rank[self.rank]
        _set_rng_state(rng)
        return self.epoch

    def __repr__(self) -> str:
        return (f"Trainer(model={type(self.model).__name__}, loss={type(self.loss_fn).__name__}, "
                f"task={self.task!r}, epochs={self.epochs}, device={self.device})")

