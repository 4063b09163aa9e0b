"""Trainer overhead: graphdl's Trainer against a plain hand-written PyG loop, side by side.

Both train a 2-layer GCN on Cora (public split) for the same epochs and, like
PyG's ``examples/gcn.py``, evaluate train/val/test accuracy after every epoch.
Runs are interleaved (plain, Trainer, plain, Trainer, ...) so that load on the
machine hits both alike; the ratio of medians is reported.

    python benchmarks/bench_trainer_overhead.py --root ../shared/data --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch_geometric.nn import GCNConv
from torch_geometric.transforms import NormalizeFeatures

import graphdl
from graphdl.io import atomic_write_text
from graphdl.train import Trainer


class PlainGCN(torch.nn.Module):
    """PyG's examples/gcn.py model."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = GCNConv(in_channels, hidden), GCNConv(hidden, out_channels)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        x = F.dropout(x, 0.5, self.training)
        x = F.dropout(F.relu(self.conv1(x, edge_index)), 0.5, self.training)
        return self.conv2(x, edge_index)


def plain_loop(model: torch.nn.Module, data, epochs: int) -> float:
    """PyG's example loop: one training step and one evaluation forward per epoch."""
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    best_val = test_acc = 0.0
    for _ in range(epochs):
        model.train()
        opt.zero_grad()
        loss = F.cross_entropy(model(data.x, data.edge_index)[data.train_mask], data.y[data.train_mask])
        loss.backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            pred = model(data.x, data.edge_index).argmax(dim=-1)
        accs = [float((pred[m] == data.y[m]).float().mean()) for m in (data.train_mask, data.val_mask, data.test_mask)]
        if accs[1] > best_val:
            best_val, test_acc = accs[1], accs[2]
    return test_acc


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "trainer_overhead.md"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    data = graphdl.datasets.load("cora", root=args.root, transform=NormalizeFeatures())[0]
    f_in, classes = data.num_features, int(data.y.max()) + 1

    def run_plain() -> None:
        torch.manual_seed(0)
        plain_loop(PlainGCN(f_in, 16, classes), data, args.epochs)

    def run_trainer(model_factory) -> None:
        torch.manual_seed(0)
        Trainer(model_factory(), "cross_entropy", "node", lr=0.01, weight_decay=5e-4, epochs=args.epochs,
                seed=0, progress=False).fit(data)

    def graphdl_gnn() -> torch.nn.Module:
        return graphdl.models.create("gnn", layer="gcn", in_channels=f_in, hidden_channels=16,
                                     out_channels=classes, num_layers=2, dropout=0.5, input_dropout=0.5)

    cases = {
        "plain PyG loop, PyG example model": run_plain,
        "graphdl Trainer, same model": lambda: run_trainer(lambda: PlainGCN(f_in, 16, classes)),
        "graphdl Trainer, graphdl.models 'gnn' (gcn)": lambda: run_trainer(graphdl_gnn),
    }
    for fn in cases.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, fn in cases.items():
            times[name].append(timed(fn) / args.epochs * 1000)

    base = statistics.median(times["plain PyG loop, PyG example model"])
    lines = [
        "# Trainer overhead on Cora (2-layer GCN, per-epoch train step + evaluation of all splits)",
        "",
        f"Command: `python benchmarks/bench_trainer_overhead.py"
        + (f" --root {args.root}" if args.root is not None else "") + f" --epochs {args.epochs} "
        f"--repeats {args.repeats}" + (f" --threads {args.threads}`" if args.threads else "`"),
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, runs interleaved, median of {args.repeats}.",
        "",
        "| loop | ms per epoch (median) | min | ratio to plain loop |",
        "|---|---|---|---|",
    ]
    for name, values in times.items():
        med = statistics.median(values)
        lines.append(f"| {name} | {med:.2f} | {min(values):.2f} | {med / base:.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write_text(args.out, text)


if __name__ == "__main__":
    sys.exit(main())
