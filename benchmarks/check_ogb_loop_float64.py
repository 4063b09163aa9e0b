"""graphdl's Trainer and ogb_mol against the official OGB molecule loop, in float64, on real data.

In float32 the two part after a few steps: Adam turns rounding-level gradient
differences (on weights whose gradient is near zero, and on the biases right
before a BatchNorm, whose gradient is zero up to rounding) into full ``lr``
steps. In float64 that rounding is ~1e-16, so if the two computed different
things the difference would show; this trains both from the same weights and
RNG state on the real ``ogbg-molbace`` training split and prints the
validation/test ROC-AUC of every epoch and the largest parameter difference.

    OMP_NUM_THREADS=1 python benchmarks/check_ogb_loop_float64.py --epochs 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphdl import datasets  # noqa: E402
from graphdl.bench.ogb_reference import (  # noqa: E402
    ReferenceOGBMol,
    load_reference_into,
    reference_eval,
    reference_train_epoch,
)
from graphdl.models.ogb_mol import ogb_mol  # noqa: E402
from graphdl.train import GraphTask, ModelCheckpoint, Trainer  # noqa: E402
from graphdl.train.metrics import resolve_metric  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ogbg-molbace")
    parser.add_argument("--model", default="gin-virtual", choices=["gin", "gin-virtual", "gcn", "gcn-virtual"])
    parser.add_argument("--root", default="../shared/data")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=300)
    parser.add_argument("--layers", type=int, default=5)
    args = parser.parse_args()
    from ogb.graphproppred import Evaluator
    from torch_geometric.loader import DataLoader

    torch.set_default_dtype(torch.float64)
    layer, virtual = args.model.split("-")[0], args.model.endswith("virtual")
    ds = datasets.load(args.dataset, args.root)
    split = datasets.split_indices(ds)
    torch.manual_seed(0)
    official = ReferenceOGBMol(ds.num_tasks, gnn_type=layer, virtual_node=virtual, emb_dim=args.hidden,
                               num_layer=args.layers).double()
    ours = ogb_mol(ds.num_tasks, layer=layer, virtual_node=virtual, hidden_channels=args.hidden,
                   num_layers=args.layers).double()
    load_reference_into(ours, official)
    criterion = torch.nn.BCEWithLogitsLoss() if "classification" in ds.task_type else torch.nn.MSELoss()
    trainer = Trainer(ours, loss=criterion, task=GraphTask(metric=resolve_metric(args.dataset), batch_size=32),
                      lr=1e-3, epochs=args.epochs, eval_splits=["val", "test"], progress=False,
                      callbacks=[ModelCheckpoint(restore_best=False)])
    torch.manual_seed(5)
    history = trainer.fit(ds, split).history

    evaluator = Evaluator(args.dataset)
    torch.manual_seed(5)
    optimizer = torch.optim.Adam(official.parameters(), lr=1e-3)
    loaders = {k: DataLoader(ds[v], batch_size=32, shuffle=k == "train") for k, v in split.items()}
    metric = evaluator.eval_metric
    for epoch in range(args.epochs):
        reference_train_epoch(official, loaders["train"], optimizer, ds.task_type, loss_dtype=torch.float64)
        valid = reference_eval(official, loaders["valid"], evaluator)[metric]
        test = reference_eval(official, loaders["test"], evaluator)[metric]
        row = history[epoch]
        print(f"epoch {epoch}: graphdl val {row[f'val_{metric}']:.6f} test {row[f'test_{metric}']:.6f} | "
              f"official loop val {valid:.6f} test {test:.6f}")
    worst = max(float((a - b).detach().abs().max()) for a, b in ((ours.head.weight, official.graph_pred_linear.weight),
                (ours.encoder.node_encoder.weight,
                 torch.cat([e.weight for e in official.gnn_node.atom_encoder.atom_embedding_list]))))
    print(f"largest difference of the head and atom-encoder weights after {args.epochs} epochs: {worst:.3e}")


if __name__ == "__main__":
    main()
