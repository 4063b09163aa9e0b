"""Time of graphdl.graphs.knn_graph beside scikit-learn's NearestNeighbors on batches of point clouds.

For each size (clouds x points per cloud, k), in one process and on the same
points, times

- ``knn_graph(x, k, batch)`` (all pairs of each cloud, in blocks);
- scikit-learn: one ``NearestNeighbors(k + 1).fit(cloud).kneighbors(cloud)``
  per cloud (a k-d tree or ball tree, as torch-cluster's CPU kernel).

Both edge sets are checked equal first. Timings are the median over
``--repeats`` rounds, the two interleaved in each round. Writes
benchmarks/results/knn_graph.md.

    python benchmarks/bench_knn_graph.py [--threads 1] [--repeats 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors

from graphdl.graphs import knn_graph
from graphdl.io import atomic_write_text

RESULTS = Path(__file__).parent / "results" / "knn_graph.md"

# (clouds, points per cloud, dimensions, k): DGCNN's ModelNet40 batch (32 x 1024, k=20) and smaller ones
SIZES = [(32, 1024, 3, 20), (8, 2048, 3, 20), (64, 256, 3, 16), (1, 10000, 3, 16)]


def sklearn_knn(x: np.ndarray, k: int, clouds: int) -> np.ndarray:
    """(neighbour, node) pairs of each cloud, self excluded, by NearestNeighbors."""
    n = len(x) // clouds
    parts = []
    for c in range(clouds):
        pts = x[c * n:(c + 1) * n]
        _, idx = NearestNeighbors(n_neighbors=k + 1).fit(pts).kneighbors(pts)
        nodes = np.repeat(np.arange(n), k)
        parts.append(np.stack([idx[:, 1:].reshape(-1), nodes]) + c * n)
    return np.concatenate(parts, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for clouds, n, dim, k in SIZES:
        torch.manual_seed(0)
        x = torch.rand(clouds * n, dim)
        batch = torch.arange(clouds).repeat_interleave(n)
        ours = knn_graph(x, k, batch)
        ref = sklearn_knn(x.numpy(), k, clouds)
        if set(zip(*ours.tolist())) != set(zip(*ref.tolist())):
            raise SystemExit(f"edge sets differ for {clouds} x {n}, k={k}")
        times: dict[str, list[float]] = {"graphdl": [], "sklearn": []}
        for _ in range(args.repeats):
            start = time.perf_counter()
            knn_graph(x, k, batch)
            times["graphdl"].append(time.perf_counter() - start)
            start = time.perf_counter()
            sklearn_knn(x.numpy(), k, clouds)
            times["sklearn"].append(time.perf_counter() - start)
        ms = {name: 1000 * statistics.median(t) for name, t in times.items()}
        rows.append(f"| {clouds} x {n} points, {dim}-d, k={k} | {ms['graphdl']:.1f} | {ms['sklearn']:.1f} | "
                    f"{ms['graphdl'] / ms['sklearn']:.2f}x |")
        print(rows[-1], flush=True)
    text = "\n".join([
        "# knn_graph beside scikit-learn NearestNeighbors (same edges, checked)",
        "",
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} thread(s), "
        f"median of {args.repeats} interleaved rounds.",
        "",
        "| batch | graphdl knn_graph ms | sklearn ms | ratio |",
        "|---|---|---|---|",
        *rows,
        "",
        "Command: `python benchmarks/bench_knn_graph.py "
        f"--threads {args.threads} --repeats {args.repeats}`",
        "",
    ])
    atomic_write_text(RESULTS, text)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
