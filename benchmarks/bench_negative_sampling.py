"""graphdl's NegativeSampler beside PyG's negative_sampling on the real ogbl-ddi training graph.

One call draws 64 * 1024 negatives (one ddi training step of the OGB example);
PyG's ``sparse`` and ``dense`` methods and graphdl's sampler are timed in turn,
in one process, and the ratio is reported. Writes benchmarks/results/negative_sampling.md.

    OMP_NUM_THREADS=1 python benchmarks/bench_negative_sampling.py --root ../shared/data
"""

from __future__ import annotations

import argparse
import platform
import random
import time

import torch
from torch_geometric.utils import negative_sampling

import graphdl.datasets as gd
from graphdl.io import atomic_write_text
from graphdl.train.negatives import NegativeSampler


def seconds_per_call(fn, repeats: int) -> float:
    """Mean wall time of ``fn()`` over ``repeats`` calls after one warm-up call."""
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="data root holding ogb/ogbl_ddi")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--num", type=int, default=64 * 1024)
    parser.add_argument("--md", default="benchmarks/results/negative_sampling.md")
    args = parser.parse_args()
    data = gd.load("ogbl-ddi", root=args.root)[0]
    edge_index, n = data.edge_index, data.num_nodes
    torch.manual_seed(0)
    random.seed(0)
    start = time.perf_counter()
    sampler = NegativeSampler(edge_index, n)
    build = time.perf_counter() - start
    rows = [(f"PyG negative_sampling(method='{m}')",
             seconds_per_call(lambda m=m: negative_sampling(edge_index, num_nodes=n, num_neg_samples=args.num, method=m),
                      args.repeats)) for m in ("sparse", "dense")]
    ours = seconds_per_call(lambda: sampler(args.num), args.repeats)
    lines = [f"# Negative sampling on ogbl-ddi ({n} nodes, {edge_index.size(1)} directed edges), "
             f"{args.num} negatives per call", "",
             f"`OMP_NUM_THREADS={torch.get_num_threads()} python benchmarks/bench_negative_sampling.py` "
             f"(torch {torch.__version__}, {platform.machine()}, CPU; mean of {args.repeats} calls after one warm-up)",
             "", "| sampler | ms per call | graphdl is faster by |", "|---|---|---|"]
    lines += [f"| {name} | {sec * 1e3:.1f} | {sec / ours:.0f}x |" for name, sec in rows]
    lines += [f"| graphdl NegativeSampler | {ours * 1e3:.1f} | 1x |", "",
              f"graphdl sorts the graph's pair numbers once ({build * 1e3:.0f} ms) when the link task is set up."]
    text = "\n".join(lines)
    print(text)
    atomic_write_text(args.md, text + "\n")


if __name__ == "__main__":
    main()
