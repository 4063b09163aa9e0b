"""The shared Trainer, its tasks, callbacks and metrics."""

from graphdl.train.callbacks import Callback, EarlyStopping, MetricLogger, ModelCheckpoint
from graphdl.train.metrics import Metric, resolve_metric
from graphdl.train.tasks import TASKS, GraphTask, LinkTask, NodeTask, Task
from graphdl.train.contrastive import ContrastiveTask
from graphdl.train.inductive import InductiveNodeTask
from graphdl.train.trainer import FitResult, Trainer, resolve_loss, seed_everything

__all__ = [
    "Trainer", "FitResult", "seed_everything", "resolve_loss",
    "Task", "NodeTask", "LinkTask", "GraphTask", "ContrastiveTask", "InductiveNodeTask", "TASKS",
    "Callback", "EarlyStopping", "ModelCheckpoint", "MetricLogger",
    "Metric", "resolve_metric",
]
