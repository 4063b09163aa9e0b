"""Throughput of graphdl's pure-torch neighbour sampler (TorchNeighborSampler).

Measures batches/s of a NodeLoader over TorchNeighborSampler (sampling plus
PyG's feature slicing into a Data batch) and of the sampler alone, for a 2-hop
[10, 5] fan-out and 512 seeds per batch, on random graphs shaped like Cora,
PubMed and a 100k-node graph. Writes benchmarks/results/sampling.md.

    python benchmarks/bench_sampling.py [--threads 1] [--batches 50]

PyG's compiled NeighborLoader cannot run here (no pyg-lib/torch-sparse), so no
reference figure is measured.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch
from torch_geometric.data import Data
from torch_geometric.loader import NodeLoader
from torch_geometric.sampler import NodeSamplerInput

from graphdl.io import atomic_write
from graphdl.sampling import TorchNeighborSampler

# (name, nodes, directed edges, feature dim); Cora/PubMed sizes as in Planetoid.
GRAPHS = [
    ("Cora-sized random", 2_708, 10_556, 1_433),
    ("PubMed-sized random", 19_717, 88_648, 500),
    ("random 100k nodes, avg in-degree 10", 100_000, 1_000_000, 128),
]
RESULTS = Path(__file__).parent / "results" / "sampling.md"


def random_graph(num_nodes: int, num_edges: int, dim: int) -> Data:
    """Erdos-Renyi-style multigraph, undirected (both directions stored)."""
    half = torch.randint(num_nodes, (2, num_edges // 2))
    edge_index = torch.cat([half, half.flip(0)], dim=1)
    return Data(x=torch.randn(num_nodes, dim), edge_index=edge_index,
                y=torch.randint(7, (num_nodes,)))


def time_loop(step, batches: int, repeats: int = 3) -> float:
    """Best-of-``repeats`` batches/s of ``step`` called ``batches`` times."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(batches):
            step()
        best = min(best, time.perf_counter() - start)
    return batches / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--fanout", type=int, nargs="+", default=[10, 5])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    rows = []
    for name, num_nodes, num_edges, dim in GRAPHS:
        data = random_graph(num_nodes, num_edges, dim)
        start = time.perf_counter()
        sampler = TorchNeighborSampler(data, args.fanout)
        build_ms = (time.perf_counter() - start) * 1e3

        loader = NodeLoader(data, node_sampler=sampler, batch_size=args.batch_size,
                            shuffle=True, drop_last=True)
        it = iter(loader)

        def loader_step() -> None:
            nonlocal it
            try:
                next(it)
            except StopIteration:
                it = iter(loader)
                next(it)

        seeds = torch.randperm(num_nodes)

        def sampler_step() -> None:
            idx = torch.randint(num_nodes - args.batch_size, ()).item()
            node = seeds[idx: idx + args.batch_size]
            sampler.sample_from_nodes(NodeSamplerInput(None, node))

        batch = next(iter(loader))
        sampler_bps = time_loop(sampler_step, args.batches)
        loader_bps = time_loop(loader_step, args.batches)
        rows.append((name, num_nodes, data.num_edges, dim, build_ms, sampler_bps, loader_bps,
                     batch.num_nodes, batch.num_edges))
        print(f"{name}: sampler {sampler_bps:.0f} batches/s, loader {loader_bps:.0f} batches/s "
              f"({batch.num_nodes} nodes, {batch.num_edges} edges per batch)", flush=True)

    with atomic_write(args.out, "w", encoding="utf-8") as fh:
        fh.write("# Neighbour sampling throughput (TorchNeighborSampler)\n\n")
        fh.write(f"Command: `python benchmarks/bench_sampling.py --threads {args.threads} "
                 f"--batches {args.batches}`\n\n")
        fh.write(f"Fan-out {args.fanout}, {args.batch_size} seeds per batch, uniform sampling "
                 f"without replacement, directional subgraph. torch {torch.__version__}, "
                 f"{args.threads} CPU thread(s), {platform.processor() or platform.machine()}, "
                 "on a shared machine (best of 3 runs). Graphs are random with the node/edge "
                 "counts of the named dataset (the real Cora/PubMed are not downloadable "
                 "here). 'sampler' = `sample_from_nodes` alone; 'loader' = a `NodeLoader` "
                 "batch including feature slicing (`x`, `y`). No pyg-lib reference could run "
                 "on this machine.\n\n")
        fh.write("| graph | nodes | edges | feat dim | CSC build (ms) | sampler batches/s "
                 "| loader batches/s | nodes/batch | edges/batch |\n")
        fh.write("|---|---|---|---|---|---|---|---|---|\n")
        for name, n, e, dim, build, sbps, lbps, bn, be in rows:
            fh.write(f"| {name} | {n:,} | {e:,} | {dim} | {build:.1f} | {sbps:.0f} | {lbps:.0f} "
                     f"| {bn:,} | {be:,} |\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
