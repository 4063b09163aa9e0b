"""LeNet-5 as a graph network (lenet_grid, trained through the shared Trainer) vs a torch.nn LeNet on digits.

scikit-learn's bundled 8x8 digits (1797 images, pixels / 16), a stratified
80/20 split with ``random_state=seed`` for seeds 0-4, no validation split.

- torch.nn reference: conv(1->6, 3x3, pad 1) - ReLU - maxpool 2 - conv(6->16,
  3x3, pad 1) - ReLU - maxpool 2 - 64-120-84-10 MLP, Adam (lr 1e-3), batch 64,
  60 epochs, a plain training loop; test accuracy after the last epoch.
- ours: :class:`graphdl.models.lenet.LeNetGrid` (the same network on grid
  graphs, every image a grid graph batched by PyG's DataLoader) trained by
  ``graphdl.train.Trainer`` with the graph task, batch 64, 60 epochs; the
  Trainer monitors the training loss and reports the test accuracy of the
  epoch with the lowest training loss (the test split never selects anything).
  Run once with the reference's recipe and once with the recipe chosen on a
  validation split carved from the training part (``--lr``, ``--cosine``, ``--dropout``).
- one seed of ours on the message-passing path, for its cost.

Writes benchmarks/results/lenet_digits.md.

    python benchmarks/bench_lenet_digits.py [--seeds 5] [--epochs 60] [--threads 1]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from graphdl.io import atomic_write_text
from graphdl.models.lenet import LeNetGrid, digits_graphs, fit_digits, format_summary, stratified_split

RESULTS = Path(__file__).parent / "results" / "lenet_digits.md"


def torch_lenet() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(64, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


def reference_run(seed: int, epochs: int) -> tuple[float, float]:
    """The torch.nn reference: (test accuracy after the last epoch, seconds)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).div_(16.0).unsqueeze(1)
    labels = torch.tensor(digits.target)
    split = stratified_split(labels, seed)
    torch.manual_seed(seed)
    model = torch_lenet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xtr, ytr = images[split["train"]], labels[split["train"]]
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        acc = (model(images[split["test"]]).argmax(1) == labels[split["test"]]).float().mean().item()
    return acc, seconds


def ours(seed: int, epochs: int, lr: float, cosine: bool, dropout: float = 0.0,
         method: str = "auto") -> tuple[float, float, float]:
    """(test accuracy at the lowest-train-loss epoch, test accuracy after the last epoch, training seconds)."""
    scheduler = (lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)) if cosine else None
    result = fit_digits(seed, epochs=epochs, lr=lr, method=method, data=DATA, scheduler=scheduler, dropout=dropout)
    return result.test["test_acc"], result.history[-1]["test_acc"], result.train_seconds


def fmt(values: list[float]) -> str:
    return f"{100 * statistics.mean(values):.2f} ± {100 * statistics.stdev(values):.2f}" if len(values) > 1 \
        else f"{100 * values[0]:.2f}"


DATA = None


def main() -> None:
    global DATA
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate of the tuned recipe")
    parser.add_argument("--cosine", action=argparse.BooleanOptionalAction, default=False,
                        help="cosine learning-rate decay in the tuned recipe")
    parser.add_argument("--dropout", type=float, default=0.25, help="MLP dropout of the tuned recipe")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    DATA = digits_graphs()
    seeds = list(range(args.seeds))
    rows: dict[str, list[tuple[float, float, float]]] = {"ref": [], "same": [], "tuned": []}
    for seed in seeds:
        acc, sec = reference_run(seed, args.epochs)
        rows["ref"].append((acc, acc, sec))
        rows["same"].append(ours(seed, args.epochs, 1e-3, False))
        rows["tuned"].append(ours(seed, args.epochs, args.lr, args.cosine, args.dropout))
        print(seed, {k: v[-1] for k, v in rows.items()}, flush=True)
    mp = ours(0, args.epochs, args.lr, args.cosine, args.dropout, method="message_passing")
    per_seed = " / ".join
    recipe = (f"Adam, lr {args.lr:g}{', cosine decay' if args.cosine else ''}"
              f"{f', MLP dropout {args.dropout:g}' if args.dropout else ''}")
    lines = [
        "# LeNet-5 as a graph network on scikit-learn's digits (8x8)",
        "",
        f"Command: `python benchmarks/bench_lenet_digits.py --seeds {args.seeds} --epochs {args.epochs} "
        f"--threads {args.threads} --lr {args.lr:g} {'--cosine' if args.cosine else '--no-cosine'} "
        f"--dropout {args.dropout:g}`",
        "",
        f"1797 images, stratified 80/20 split with `random_state=seed`, seeds {seeds[0]}-{seeds[-1]}, batch 64, "
        f"{args.epochs} epochs, no validation split. torch {torch.__version__}, {args.threads} CPU thread(s), "
        f"{platform.machine()}, shared machine. The reference is a plain torch.nn loop (test accuracy after the "
        "last epoch); ours is `lenet_grid` trained by `graphdl.train.Trainer` (graph task, PyG DataLoader over "
        "grid graphs) and reports the test accuracy at the epoch with the lowest training loss, and after the "
        "last epoch. The tuned recipe (MLP dropout: no parameters, no MACs, the same network otherwise) was "
        "chosen among learning rates 1e-3/2e-3/3e-3, cosine decay, AdamW, batch 32 and dropout on a "
        "validation split (20% of the training part, seeds 0-4), never on the test split. Seconds are training time per seed (ours: the Trainer's training "
        "time, without the per-epoch evaluation).",
        "",
        "| model | recipe | test acc. % (mean ± std) | last-epoch test acc. % | per seed | s / seed |",
        "|---|---|---:|---:|---|---:|",
        f"| torch.nn LeNet (reference) | Adam, lr 0.001 | {fmt([r[0] for r in rows['ref']])} | "
        f"{fmt([r[1] for r in rows['ref']])} | {per_seed(f'{100 * r[0]:.2f}' for r in rows['ref'])} | "
        f"{statistics.mean(r[2] for r in rows['ref']):.1f} |",
        f"| lenet_grid via Trainer | Adam, lr 0.001 (reference recipe) | {fmt([r[0] for r in rows['same']])} | "
        f"{fmt([r[1] for r in rows['same']])} | {per_seed(f'{100 * r[0]:.2f}' for r in rows['same'])} | "
        f"{statistics.mean(r[2] for r in rows['same']):.1f} |",
        f"| lenet_grid via Trainer | {recipe} | {fmt([r[0] for r in rows['tuned']])} | "
        f"{fmt([r[1] for r in rows['tuned']])} | {per_seed(f'{100 * r[0]:.2f}' for r in rows['tuned'])} | "
        f"{statistics.mean(r[2] for r in rows['tuned']):.1f} |",
        f"| lenet_grid via Trainer, message-passing path | {recipe} | {100 * mp[0]:.2f} (seed 0) | "
        f"{100 * mp[1]:.2f} | {100 * mp[0]:.2f} | {mp[2]:.1f} |",
        "",
        "Model summary (per image; MACs as torch.nn profilers count them, and those of the message-passing "
        "path, whose grids have no edges into the zero padding):",
        "",
        format_summary(LeNetGrid().summary()),
    ]
    atomic_write_text(RESULTS, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
