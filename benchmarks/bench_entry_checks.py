"""Cost of the input checks on a layer call, beside the same PyG layer without them.

On Cora (2,708 nodes, 1,433 features, 10,556 edges), forward + backward of a
GCNConv(1433, 16): the plain PyG module (``graphdl.layers.get("gcn")(...)``),
the module built by ``graphdl.layers.create`` (structural checks and value
scans), and the same inside ``graphdl.validate.inputs_checked()`` (structural
checks only, as under the Trainer). Calls are interleaved; medians reported.

    OMP_NUM_THREADS=1 python benchmarks/bench_entry_checks.py --root ../shared/data
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import graphdl  # noqa: E402
from graphdl import validate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="../shared/data")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    data = graphdl.datasets.load("cora", args.root)[0]
    torch.manual_seed(0)
    plain = graphdl.layers.get("gcn")(data.num_features, 16, cached=False)
    checked = graphdl.layers.create("gcn", data.num_features, 16, cached=False)
    checked.load_state_dict(plain.state_dict())

    def step(layer: torch.nn.Module) -> None:
        layer(data.x, data.edge_index).sum().backward()

    def structural_only() -> None:
        with validate.inputs_checked():
            step(checked)

    cases = {"plain PyG": lambda: step(plain), "create(): checks + scans": lambda: step(checked),
             "create() in inputs_checked(): checks only": structural_only}
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(5):
        for f in cases.values():
            f()
    for _ in range(args.repeats):
        for name, f in cases.items():
            t = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t)
    base = statistics.median(times["plain PyG"])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {args.repeats} interleaved repeats")
    print("| GCNConv(1433, 16) on Cora, forward + backward | median ms | ratio to plain PyG |")
    print("|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median * 1e3:.2f} | {median / base:.3f} |")


if __name__ == "__main__":
    main()
