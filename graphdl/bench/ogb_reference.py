"""A re-implementation of the official OGB molecule example, for checks and timing.

This mirrors ``examples/graphproppred/mol`` of the OGB repository (``conv.py``,
``gnn.py``, ``main_pyg.py``): the same modules in the same order under the same
attribute names (``gnn_node.atom_encoder``, ``gnn_node.convs[i].mlp``,
``gnn_node.batch_norms``, ``gnn_node.mlp_virtualnode_list``,
``graph_pred_linear``), with ``ogb.graphproppred.mol_encoder``'s own
``AtomEncoder``/``BondEncoder``, and the script's training and evaluation
loops. It exists so that graphdl's ``ogb_mol`` model can be checked against
it (parameter count, outputs given the same weights, whole training epochs of
the Trainer from the same RNG state) and timed beside it on
the same machine (``benchmarks/bench_ogb_epoch.py``); it is not used to train
the benchmarks.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing, global_add_pool, global_mean_pool
from torch_geometric.utils import degree

__all__ = ["ReferenceOGBMol", "reference_train_epoch", "reference_eval", "load_reference_into", "count_parameters"]


def _encoders() -> tuple[type, type]:
    from ogb.graphproppred.mol_encoder import AtomEncoder, BondEncoder

    return AtomEncoder, BondEncoder


class _GIN(MessagePassing):
    def __init__(self, emb_dim: int) -> None:
        super().__init__(aggr="add")
        self.mlp = nn.Sequential(nn.Linear(emb_dim, 2 * emb_dim), nn.BatchNorm1d(2 * emb_dim), nn.ReLU(),
                                 nn.Linear(2 * emb_dim, emb_dim))
        self.eps = nn.Parameter(torch.zeros(1))
        self.bond_encoder = _encoders()[1](emb_dim=emb_dim)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        e = self.bond_encoder(edge_attr)
        return self.mlp((1 + self.eps) * x + self.propagate(edge_index, x=x, edge_attr=e))

    def message(self, x_j: Tensor, edge_attr: Tensor) -> Tensor:
        return F.relu(x_j + edge_attr)


class _GCN(MessagePassing):
    def __init__(self, emb_dim: int) -> None:
        super().__init__(aggr="add")
        self.linear = nn.Linear(emb_dim, emb_dim)
        self.root_emb = nn.Embedding(1, emb_dim)
        self.bond_encoder = _encoders()[1](emb_dim=emb_dim)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        x = self.linear(x)
        e = self.bond_encoder(edge_attr)
        row, col = edge_index
        deg = degree(row, x.size(0), dtype=x.dtype) + 1
        dis = deg.pow(-0.5)
        dis[dis == float("inf")] = 0
        norm = dis[row] * dis[col]
        return (self.propagate(edge_index, x=x, edge_attr=e, norm=norm)
                + F.relu(x + self.root_emb.weight) * 1.0 / deg.view(-1, 1))

    def message(self, x_j: Tensor, edge_attr: Tensor, norm: Tensor) -> Tensor:
        return norm.view(-1, 1) * F.relu(x_j + edge_attr)


class _NodeGNN(nn.Module):
    """OGB's ``GNN_node`` / ``GNN_node_Virtualnode`` (JK "last", no residual)."""

    def __init__(self, num_layer: int, emb_dim: int, drop_ratio: float, gnn_type: str, virtual_node: bool) -> None:
        super().__init__()
        if num_layer < 2:  # as the official GNN_node
            raise ValueError(f"Number of GNN layers must be greater than 1 (the official GNN refuses fewer), "
                             f"got num_layer={num_layer}")
        if gnn_type not in ("gin", "gcn"):
            raise ValueError(f"Undefined GNN type called {gnn_type!r}; the official example has 'gin' and 'gcn'")
        self.num_layer, self.drop_ratio, self.virtual, self.gnn_type = num_layer, drop_ratio, virtual_node, gnn_type
        self.atom_encoder = _encoders()[0](emb_dim)
        if virtual_node:
            self.virtualnode_embedding = nn.Embedding(1, emb_dim)
            nn.init.constant_(self.virtualnode_embedding.weight.data, 0)
        conv = {"gin": _GIN, "gcn": _GCN}[gnn_type]
        self.convs = nn.ModuleList(conv(emb_dim) for _ in range(num_layer))
        self.batch_norms = nn.ModuleList(nn.BatchNorm1d(emb_dim) for _ in range(num_layer))
        if virtual_node:
            self.mlp_virtualnode_list = nn.ModuleList(
                nn.Sequential(nn.Linear(emb_dim, 2 * emb_dim), nn.BatchNorm1d(2 * emb_dim), nn.ReLU(),
                              nn.Linear(2 * emb_dim, emb_dim), nn.BatchNorm1d(emb_dim), nn.ReLU())
                for _ in range(num_layer - 1))

    def forward(self, data: Any) -> Tensor:
        x, edge_index, edge_attr, batch = data.x, data.edge_index, data.edge_attr, data.batch
        if self.virtual:
            vn = self.virtualnode_embedding(torch.zeros(int(batch[-1]) + 1, dtype=edge_index.dtype,
                                                        device=edge_index.device))
        h = self.atom_encoder(x)
        for layer in range(self.num_layer):
            if self.virtual:
                h = h + vn[batch]
            h_in = h
            h = self.batch_norms[layer](self.convs[layer](h, edge_index, edge_attr))
            if layer == self.num_layer - 1:
                h = F.dropout(h, self.drop_ratio, training=self.training)
            else:
                h = F.dropout(F.relu(h), self.drop_ratio, training=self.training)
            if self.virtual and layer < self.num_layer - 1:
                vn = F.dropout(self.mlp_virtualnode_list[layer](global_add_pool(h_in, batch) + vn),
                               self.drop_ratio, training=self.training)
        return h


class ReferenceOGBMol(nn.Module):
    """OGB's ``GNN`` (``gnn.py``) with mean pooling."""

    def __init__(self, num_tasks: int, num_layer: int = 5, emb_dim: int = 300, gnn_type: str = "gin",
                 virtual_node: bool = True, drop_ratio: float = 0.5) -> None:
        super().__init__()
        self.gnn_node = _NodeGNN(num_layer, emb_dim, drop_ratio, gnn_type, virtual_node)
        self.graph_pred_linear = nn.Linear(emb_dim, num_tasks)

    def forward(self, data: Any) -> Tensor:
        return self.graph_pred_linear(global_mean_pool(self.gnn_node(data), data.batch))


def reference_train_epoch(model: nn.Module, loader: Any, optimizer: torch.optim.Optimizer,
                          task_type: str, loss_dtype: torch.dtype = torch.float32) -> None:
    """The official script's ``train``: skips one-node / one-graph batches, masks NaN labels.

    The script computes the loss in float32 (``loss_dtype``); a float64 check passes ``torch.float64``.
    """
    model.train()
    criterion = nn.BCEWithLogitsLoss() if "classification" in task_type else nn.MSELoss()
    for batch in loader:
        if batch.x.shape[0] == 1 or batch.batch[-1] == 0:
            continue
        pred = model(batch)
        optimizer.zero_grad()
        valid = batch.y == batch.y
        loss = criterion(pred.to(loss_dtype)[valid], batch.y.to(loss_dtype)[valid])
        loss.backward()
        optimizer.step()


@torch.no_grad()
def reference_eval(model: nn.Module, loader: Any, evaluator: Any) -> dict[str, float]:
    """The official script's ``eval`` with the official ``Evaluator``."""
    model.eval()
    y_true, y_pred = [], []
    for batch in loader:
        if batch.x.shape[0] == 1:
            continue
        pred = model(batch)
        y_true.append(batch.y.view(pred.shape).detach().cpu())
        y_pred.append(pred.detach().cpu())
    return evaluator.eval({"y_true": torch.cat(y_true).numpy(), "y_pred": torch.cat(y_pred).numpy()})


def load_reference_into(model: nn.Module, reference: ReferenceOGBMol) -> None:
    """Copy the reference model's weights into a graphdl ``ogb_mol`` model.

    Maps OGB's per-feature embedding tables onto graphdl's stacked tables and
    the module names onto graphdl's, so both compute the same function. A model
    of another shape (layer, layers, virtual node, width, tasks, or parameters
    the reference lacks) is refused: a partial copy would leave the rest at its
    own initialisation.
    """
    _check_same_architecture(model, reference)
    ref = reference.gnn_node
    enc = model.encoder
    with torch.no_grad():
        enc.node_encoder.weight.copy_(torch.cat([e.weight for e in ref.atom_encoder.atom_embedding_list]))
        for ours, theirs, bn in zip(enc.convs, ref.convs, ref.batch_norms):
            ours.edge_encoder.weight.copy_(torch.cat([e.weight for e in theirs.bond_encoder.bond_embedding_list]))
            theirs_state = {k: v for k, v in theirs.state_dict().items() if not k.startswith("bond_encoder")}
            ours_state = {k: v for k, v in ours.state_dict().items() if not k.startswith("edge_encoder")}
            if set(theirs_state) != set(ours_state):
                raise ValueError(f"conv state keys differ: {sorted(theirs_state)} vs {sorted(ours_state)}")
            ours.load_state_dict({**ours.state_dict(), **theirs_state})
        for norm, bn in zip(enc.norms, ref.batch_norms):
            target = norm.module if hasattr(norm, "module") else norm
            target.load_state_dict(bn.state_dict())
        if getattr(ref, "virtual", False):
            enc.virtual_node.weight.copy_(ref.virtualnode_embedding.weight)
            for ours, theirs in zip(enc.vn_mlps, ref.mlp_virtualnode_list):
                ours.load_state_dict(theirs.state_dict())
        model.head.load_state_dict(reference.graph_pred_linear.state_dict())


def _check_same_architecture(model: nn.Module, reference: ReferenceOGBMol) -> None:
    """The weights of ``reference`` fill every parameter of ``model``, or a ValueError names what differs."""
    ref, enc = reference.gnn_node, model.encoder
    ours = {"layer": enc.layer_name, "layers": len(enc.convs), "virtual node": enc.virtual_node is not None,
            "width": enc.hidden_channels, "tasks": model.head.out_features}
    theirs = {"layer": f"ogb_{ref.gnn_type}", "layers": ref.num_layer, "virtual node": ref.virtual,
              "width": ref.atom_encoder.atom_embedding_list[0].embedding_dim,
              "tasks": reference.graph_pred_linear.out_features}
    differ = [f"{k} {ours[k]!r} vs {theirs[k]!r}" for k in ours if ours[k] != theirs[k]]
    n_ours, n_theirs = count_parameters(model), count_parameters(reference)
    if not differ and n_ours != n_theirs:  # e.g. jk "cat"'s linear layer or a Set2Set pool: left as initialised
        differ = [f"{n_ours} vs {n_theirs} parameters"]
    if differ:
        raise ValueError(f"the graphdl model and the reference differ ({', '.join(differ)}: graphdl's vs the "
                         f"reference's), so the copy would leave part of the graphdl model at its own "
                         f"initialisation; build both with the same layer, num_layers, virtual_node, width and "
                         f"num_tasks (jk 'last', a pooling without parameters)")


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
