"""ogbl-ddi in the configuration of the official OGB example (``examples/linkproppred/ddi/gnn.py``).

graphdl's :class:`~graphdl.train.LinkTask` and :class:`~graphdl.models.gnn.LinkGNN`
cover the example's model and loop; four details of the example are added here
so that results are comparable to the leaderboard:

* :class:`OGBLinkGNN` initialises the learned node embedding Xavier-uniform
  (``nn.Embedding`` would start from N(0, 1)) and exposes three parameter
  groups (embedding, GNN, predictor);
* :class:`GroupClippedAdam` clips the gradient norm of each group to 1.0
  separately before every step, as the example does with three
  ``clip_grad_norm_`` calls (the Trainer's ``grad_clip`` clips them jointly);
* the loss is ``link_bce`` (:class:`~graphdl.losses.graph.LinkBCELoss`), the
  example's ``-log σ(pos).mean() - log(1 - σ(neg)).mean()`` (the sum of two
  means, twice BCE over the concatenation, which matters under clipping),
  computed stably with ``softplus``: the example's float32
  ``-log(1 - σ(neg) + 1e-15)`` stops at 34.5 with no gradient once σ(neg)
  rounds to 1 (logits of about 17 and up), ``link_bce`` does not;
* :class:`OGBLinkTask` scores the ``train`` split on the example's
  ``eval_train`` edges: as many training edges as validation edges, drawn with
  ``torch.manual_seed(12345)``, against the validation negatives; it ranks the
  sigmoid probabilities the example's ``LinkPredictor`` outputs, not logits
  (the Evaluator counts positives strictly above the K-th negative, so
  probabilities tied at 1.0 are misses there); and it gives
  the model a sparse adjacency (``torch.sparse_csr``, what the example's
  ``ToSparseTensor`` does with torch-sparse) instead of ``edge_index``, so that
  PyG's convs aggregate with one sparse-dense product instead of materialising
  one message per edge (on ogbl-ddi, 2.1M edges x 256 channels: 12x faster on
  CPU and ~2 GB less memory per layer); a graph with per-edge inputs the model takes
  (``edge_weight``, ``edge_attr``) keeps ``edge_index``, which carries them.

Everything else is the example's: 2 layers, 256 hidden, dropout 0.5, a
predictor MLP on the Hadamard product with ``num_layers`` (= 2) layers and
dropout 0.5, Adam lr 0.005, batches of 64 * 1024 positive edges, one fresh
uniform negative per positive (``negative_sampling``'s distribution), and the official
evaluator (Hits@20) with ddi's fixed validation/test negatives. The example
evaluates every 5 epochs (``--eval_steps 5``); the Trainer evaluates every
epoch and reports test at the best validation epoch.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from graphdl.errors import ConfigError, ValidationError
from graphdl.models.gnn import LinkGNN
from graphdl.train.metrics import is_pair_metric
from graphdl.train.tasks import LinkTask, canonical_split, model_inputs

__all__ = ["OGBLinkGNN", "GroupClippedAdam", "OGBLinkTask"]


class OGBLinkGNN(LinkGNN):
    """:class:`LinkGNN` with the OGB example's embedding initialisation and parameter groups."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._init_embedding()

    def _init_embedding(self) -> None:
        if self.encoder.embedding is not None:
            nn.init.xavier_uniform_(self.encoder.embedding.weight)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self._init_embedding()

    def optimizer_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """Embedding, GNN layers and predictor as three groups (clipped separately)."""
        emb = list(self.encoder.embedding.parameters()) if self.encoder.embedding is not None else []
        emb_ids = {id(p) for p in emb}
        gnn = [p for p in self.encoder.parameters() if id(p) not in emb_ids]
        groups = [emb, gnn, list(self.decoder.parameters())]
        return [{"params": g, "weight_decay": weight_decay} for g in groups if g]


class GroupClippedAdam(torch.optim.Adam):
    """Adam that first clips the gradient norm of every parameter group to ``max_norm``."""

    def __init__(self, params: Any, lr: float = 1e-3, max_norm: float = 1.0, **kwargs: Any) -> None:
        super().__init__(params, lr=lr, **kwargs)
        self.max_norm = max_norm

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                torch.nn.utils.clip_grad_norm_(params, self.max_norm)
        return super().step(closure)


class OGBLinkTask(LinkTask):
    """:class:`LinkTask` that scores ``train`` on OGB's ``eval_train`` edge sample.

    Args:
        metric: An OGB dataset name for its official evaluator (``"ogbl-ddi"``).
        batch_size: Positive training edges per step (the example: 64 * 1024).
        eval_train_seed: Seed of the ``eval_train`` sample (the example: 12345).
    """

    def __init__(self, metric: str = "ogbl-ddi", batch_size: int | None = 64 * 1024,
                 eval_train_seed: int = 12345, num_negatives: int = 1, sparse_adj: bool = True) -> None:
        super().__init__(metric=metric, batch_size=batch_size, num_negatives=num_negatives)
        if not is_pair_metric(self.metric):  # evaluate hands it (positive, negative) scores, not (labels, scores)
            raise ConfigError(f"OGBLinkTask ranks positive pair scores against negative ones (an ogbl-* dataset's "
                              f"evaluator, hits@K or mrr), but metric {self.metric.name!r} takes labels and "
                              f"predictions; use metric='ogbl-ddi' (or hits@K), or LinkTask(metric="
                              f"{self.metric.name!r})")
        self.eval_train_seed = eval_train_seed
        self.sparse_adj = sparse_adj

    def setup(self, data: Any, splits: Any = None, device: torch.device | str = "cpu") -> None:
        super().setup(data, splits, device)
        if self.neg_targets:
            raise ValidationError(f"OGBLinkTask scores one shared pool of negative pairs per split (edge_neg: "
                                  f"ogbl-ddi, ogbl-collab), but the {', '.join(map(repr, self.neg_targets))} "
                                  f"split gives each positive its own negative targets (ogbl-citation2's "
                                  f"format); train on those splits with LinkTask")
        train = self.pos["train"]
        size = self.pos["val"].size(1) if "val" in self.pos else train.size(1)
        gen = torch.Generator().manual_seed(self.eval_train_seed)
        idx = torch.randperm(train.size(1), generator=gen)[:size].to(self.device)
        self.eval_train = train[:, idx]
        self.adj_t = self._adj_of = None
        if self.sparse_adj:
            self._set_adjacency(self.data)

    def _set_adjacency(self, data: Any) -> None:
        """``adj_t``: ``data``'s sparse adjacency, ``adj_t[i, j] != 0`` for an edge ``j -> i`` (PyG's convention)."""
        from torch_geometric.utils import to_torch_csr_tensor

        n = data.num_nodes
        with warnings.catch_warnings():  # torch's "sparse CSR is beta" notices
            warnings.filterwarnings("ignore", message=r"Sparse (CSR tensor support|invariant checks)")
            self.adj_t = to_torch_csr_tensor(data.edge_index.flip(0), size=(n, n))
        self._adj_of = data.edge_index  # the graph it holds: predict_on's copy of the task has another

    def _embed(self, model: nn.Module) -> Tensor:
        data = self.data
        inputs = model_inputs(model, data)
        # A unit adjacency carries no per-edge inputs (ogbl-collab's edge_weight): the model takes edge_index then.
        if self.adj_t is None or "edge_weight" in inputs or "edge_attr" in inputs:
            return model(data.x, data.edge_index, **inputs)
        if self._adj_of is not data.edge_index:
            self._set_adjacency(data)
        return model(data.x, self.adj_t)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, splits: Sequence[str]) -> dict[str, float]:
        z = self.predict(model)
        chunk = self.batch_size or 65536
        out = {}
        for split in map(canonical_split, splits):
            pos_pairs = self.eval_train if split == "train" else self.pos[split]
            neg_pairs = self.neg[split if split in self.neg else self._borrowed()]
            # The example's LinkPredictor ends in torch.sigmoid and its Evaluator ranks those probabilities
            # (positives strictly above the K-th negative): in float32, near-equal large logits tie there (all
            # from ~17 up at 1.0), so score the same probabilities.
            pos = torch.cat([self._decode(model, z, p).sigmoid() for p in pos_pairs.split(chunk, dim=1)])
            neg = torch.cat([self._decode(model, z, p).sigmoid() for p in neg_pairs.split(chunk, dim=1)])
            out[f"{split}_{self.metric.name}"] = self.metric(pos, neg)
        return out
