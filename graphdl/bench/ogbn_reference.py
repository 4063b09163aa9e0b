"""A re-implementation of OGB's full-batch node-property examples, for checks and timing.

This mirrors ``examples/nodeproppred/arxiv/gnn.py`` (and ``products/gnn.py``,
which is the same without batch norm) of the OGB repository: its ``GCN`` /
``SAGE`` modules under the same attribute names (``convs``, ``bns``) and its
``train()`` / ``test()`` functions. Edges are an ``edge_index`` made undirected
beforehand, which is what the example's ``adj_t.to_symmetric()`` gives. It
exists so that graphdl's ogbn runner can be matched against it epoch by epoch
(``tests/test_datasets_ogbn.py``) and timed beside it
(``benchmarks/bench_ogbn_epoch.py``); it is not used to train the benchmarks.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ReferenceNodeGNN", "reference_node_epoch"]


class ReferenceNodeGNN(nn.Module):
    """The example's ``GCN`` (``kind="gcn"``, cached normalisation) or ``SAGE`` (``kind="sage"``):
    conv -> batch norm -> ReLU -> dropout for every layer but the last, then ``log_softmax``."""

    def __init__(self, kind: str, in_channels: int, out_channels: int, hidden_channels: int = 256,
                 num_layers: int = 3, dropout: float = 0.5, batch_norm: bool = True) -> None:
        super().__init__()
        from torch_geometric.nn import GCNConv, SAGEConv

        conv = (lambda i, o: GCNConv(i, o, cached=True)) if kind == "gcn" else SAGEConv
        widths = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        self.convs = nn.ModuleList(conv(i, o) for i, o in zip(widths[:-1], widths[1:]))
        self.bns = nn.ModuleList(nn.BatchNorm1d(hidden_channels) if batch_norm else nn.Identity()
                                 for _ in range(num_layers - 1))
        self.dropout = dropout

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        for conv, bn in zip(self.convs[:-1], self.bns):
            x = F.dropout(F.relu(bn(conv(x, edge_index))), self.dropout, self.training)
        return self.convs[-1](x, edge_index).log_softmax(dim=-1)


def reference_node_epoch(model: nn.Module, data: Any, edge_index: Tensor, split: dict[str, Tensor],
                         optimizer: torch.optim.Optimizer, evaluator: Any) -> tuple[float, dict[str, float]]:
    """One epoch of the example: a full-batch step on ``split["train"]`` (NLL of the
    log-softmax), then the official Evaluator's accuracy on train, valid and test."""
    model.train()
    optimizer.zero_grad()
    out = model(data.x, edge_index)[split["train"]]
    loss = F.nll_loss(out, data.y.squeeze(1)[split["train"]])
    loss.backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        pred = model(data.x, edge_index).argmax(dim=-1, keepdim=True)
    accs = {part: evaluator.eval({"y_true": data.y[split[part]], "y_pred": pred[split[part]]})["acc"]
            for part in ("train", "valid", "test")}
    return loss.item(), accs
