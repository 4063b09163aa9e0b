"""Self-supervised node embeddings on Cora: GRACE and DGI through the ``contrastive`` task.

Each objective trains a 2-layer GCN encoder (1433 -> 128 -> 128) without labels
on the full graph, for ``--epochs`` full-batch steps (Adam; GRACE: lr 5e-4, weight
decay 1e-5, temperature 0.4, views as in GRACE's Cora setting; DGI: lr 1e-3).
The embeddings of the last epoch are scored by 5-NN test accuracy on the public
split (the labels select no epoch), beside two baselines scored the same way: the
raw bag-of-words features and the same encoder untrained. (The papers score with a linear probe and other
encoders, so their numbers are not comparable to these.) Writes
benchmarks/results/contrastive_cora.md.

    python benchmarks/bench_contrastive_cora.py --root ../shared/data --seeds 3 --epochs 200 --threads 1
"""

from __future__ import annotations

import argparse
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import graphdl  # noqa: E402
from graphdl.io import atomic_write_text  # noqa: E402
from graphdl.train import ModelCheckpoint, Trainer  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "contrastive_cora.md"
CONFIGS = {"grace": ({"temperature": 0.4}, 5e-4, 1e-5), "dgi": ({"hidden_channels": 128}, 1e-3, 0.0)}


class RawFeatures(torch.nn.Module):
    """The node features themselves, as embeddings."""

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return x


def encoder(seed: int) -> torch.nn.Module:
    graphdl.seed_everything(seed)
    return graphdl.models.create("gnn", layer="gcn", in_channels=1433, hidden_channels=128, out_channels=128,
                                 num_layers=2)


def fit_and_score(data, name: str, seed: int, epochs: int) -> tuple[float, float]:
    """Train objective ``name`` from seed ``seed``; (5-NN test accuracy of the last epoch's embeddings, s/epoch).

    The Trainer would restore the epoch of best validation k-NN accuracy (its default checkpoint), a choice made
    with the labels; ``restore_best=False`` keeps the last epoch, as the objective trains without them.
    """
    kwargs, lr, wd = CONFIGS[name]
    trainer = Trainer(encoder(seed), graphdl.losses.create(name, **kwargs), "contrastive", lr=lr, weight_decay=wd,
                      epochs=epochs, seed=seed, progress=False, callbacks=[ModelCheckpoint(restore_best=False)])
    start = time.perf_counter()
    trainer.fit(data)
    seconds = (time.perf_counter() - start) / epochs
    return trainer.evaluate(split="test")["test_knn_acc"], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="../shared/data")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(RESULTS), help="the markdown table to write")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    command = "python benchmarks/bench_contrastive_cora.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    data = graphdl.datasets.load("cora", root=args.root)[0]

    rows = {}
    raw = Trainer(RawFeatures(), "grace", "contrastive", progress=False)
    rows["raw features (no training)"] = ([raw.evaluate(data, split="test")["test_knn_acc"]], None)
    untrained = [Trainer(encoder(s), "grace", "contrastive", progress=False).evaluate(data, split="test")
                 ["test_knn_acc"] for s in range(args.seeds)]
    rows["GCN encoder, untrained"] = (untrained, None)
    for name in CONFIGS:
        scores, seconds = [], []
        for seed in range(args.seeds):
            score, sec = fit_and_score(data, name, seed, args.epochs)
            scores.append(score)
            seconds.append(sec)
            print(name, seed, scores[-1], flush=True)
        rows[f"`{name}`, {args.epochs} epochs"] = (scores, statistics.mean(seconds))

    def fmt(values: list[float]) -> str:
        mean = 100 * statistics.mean(values)
        return f"{mean:.2f}" if len(values) == 1 else f"{mean:.2f} ± {100 * statistics.stdev(values):.2f}"

    lines = [
        "# Self-supervised node embeddings on Cora (contrastive task)",
        "",
        f"Command: `{command}`",
        f"torch {torch.__version__}, {args.threads} thread(s), {platform.machine()}. 5-NN test accuracy (%) of "
        f"the last epoch's embeddings on the public split, seeds 0-{args.seeds - 1}; the encoder is a 2-layer GCN "
        f"1433-128-128.",
        "",
        "| embeddings | 5-NN test accuracy | s/epoch |",
        "|---|---|---|",
    ]
    for name, (scores, sec) in rows.items():
        lines.append(f"| {name} | {fmt(scores)} | {'-' if sec is None else f'{sec:.3f}'} |")
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
