"""Per-epoch time of graphdl's ogbn runner against OGB's arxiv example loop, side by side.

ogbn-arxiv is not in the offline mirror, so this writes a random graph of
ogbn-arxiv's size (169,343 nodes, 1,166,243 directed edges, 128 features, 40
classes, its split sizes) in OGB's raw format and loads it through the official
``PygNodePropPredDataset``. graphdl trains it with ``graphdl.bench.run_config``
(the Trainer, ``NodeTask`` and the official Evaluator, every split scored each
epoch); the reference is the loop of ``examples/nodeproppred/arxiv/gnn.py``
re-implemented (one full-batch Adam step, then train/valid/test accuracy with
the official Evaluator), on the same data and model configuration. Runs are
interleaved (official, graphdl, official, ...); medians and their ratio are
reported. Accuracy on random labels means nothing here: this measures time only.

    OMP_NUM_THREADS=1 python benchmarks/bench_ogbn_epoch.py --epochs 3 --repeats 3
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import graphdl.datasets as datasets
from graphdl import bench, seed_everything
from graphdl.bench.ogbn_reference import ReferenceNodeGNN, reference_node_epoch
from graphdl.bench.suites import default_config
from graphdl.datasets.ogb import register_ogb_dataset
from graphdl.io import atomic_write_text

NAME = "ogbn-arxivsize"
NODES, EDGES, FEATURES, CLASSES = 169_343, 1_166_243, 128, 40
SPLIT = {"train": 90_941, "valid": 29_799, "test": 48_603}
META = {"eval metric": "acc", "task type": "multiclass classification", "split": "time", "num tasks": 1,
        "num classes": CLASSES, "add_inverse_edge": False, "has_node_attr": True}


def _write(path: Path, rows: np.ndarray, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", compresslevel=1) as handle:
        np.savetxt(handle, rows.reshape(len(rows), -1), fmt=fmt, delimiter=",")


def write_dataset(folder: Path) -> None:
    """A random graph of ogbn-arxiv's size in OGB's raw format under ``folder``."""
    rng = np.random.default_rng(0)
    src, dst = rng.integers(0, NODES, EDGES), rng.integers(0, NODES, EDGES)
    _write(folder / "raw" / "edge.csv.gz", np.stack([src, dst], 1), "%d")
    _write(folder / "raw" / "node-feat.csv.gz", rng.standard_normal((NODES, FEATURES)).astype(np.float32), "%.4f")
    _write(folder / "raw" / "node-label.csv.gz", rng.integers(0, CLASSES, NODES), "%d")
    _write(folder / "raw" / "num-node-list.csv.gz", np.array([NODES]), "%d")
    _write(folder / "raw" / "num-edge-list.csv.gz", np.array([EDGES]), "%d")
    order, start = rng.permutation(NODES), 0
    for part, size in SPLIT.items():
        _write(folder / "split" / "time" / f"{part}.csv.gz", np.sort(order[start:start + size]), "%d")
        start += size
    (folder / "RELEASE_v1.txt").write_text("random graph of ogbn-arxiv's size, v1\n")


def official_loop(kind: str, data, split: dict, evaluator, epochs: int) -> int:
    """The example's model, train() and test() for ``epochs`` epochs; returns the parameter count."""
    seed_everything(0)
    model = ReferenceNodeGNN(kind, FEATURES, CLASSES)
    optimizer = torch.optim.Adam(model.parameters(), lr=default_config(NAME, kind)["lr"])
    for _ in range(epochs):
        reference_node_epoch(model, data, data.edge_index, split, optimizer, evaluator)
    return sum(p.numel() for p in model.parameters())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["gcn", "sage"])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "ogbn_epoch.md"))
    args = parser.parse_args()

    from torch_geometric.transforms import ToUndirected

    register_ogb_dataset(NAME, "node", META, override=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        write_dataset(root / "ogb" / NAME.replace("-", "_"))
        dataset = datasets.load(NAME, root=root, transform=ToUndirected())
        print(f"wrote and processed the dataset in {time.perf_counter() - started:.0f} s", flush=True)
        data, split, evaluator = dataset[0], datasets.split_indices(dataset), datasets.evaluator(NAME)
        rows = []
        for kind in args.models:
            ours: list[float] = []
            theirs: list[float] = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                official_params = official_loop(kind, data, split, evaluator, args.epochs)
                theirs.append((time.perf_counter() - start) / args.epochs)
                record = bench.run_config(NAME, kind, seeds=1, epochs=args.epochs, root=root, verbose=False)
                ours.append(record["seconds_per_epoch"])
                print(f"{kind}: official loop {theirs[-1]:.2f} s/epoch, graphdl {ours[-1]:.2f} s/epoch", flush=True)
            assert record["num_parameters"] == official_params
            rows.append((kind, statistics.median(ours), statistics.median(theirs), official_params))

    lines = [
        "# ogbn-arxiv-sized full-batch epoch: graphdl's runner vs the official arxiv example's loop",
        "",
        f"Command: `OMP_NUM_THREADS={torch.get_num_threads()} python benchmarks/bench_ogbn_epoch.py "
        f"--epochs {args.epochs} --repeats {args.repeats}`",
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); a random graph of ogbn-arxiv's size "
        f"({NODES:,} nodes, {EDGES:,} edges made undirected, {FEATURES} features, {CLASSES} classes) loaded by "
        "the official PygNodePropPredDataset. Each epoch: one full-batch training step and accuracy of "
        "train/valid/test with the official Evaluator. Interleaved runs, medians.",
        "",
        "| model | parameters | graphdl s/epoch | official loop s/epoch | ratio |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {kind} | {params:,} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.3f} |"
              for kind, ours, theirs, params in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write_text(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
