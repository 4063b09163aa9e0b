"""Per-epoch time of graphdl's OGB molecule training beside the official example's loop.

Both sides train the same architecture (graphdl's ``ogb_mol`` and a faithful
re-implementation of the official ``examples/graphproppred/mol`` model and
loop, :mod:`graphdl.bench.ogb_reference`) and, like the official script,
evaluate train, valid and test with the official Evaluator every epoch. The
epochs are interleaved (one graphdl epoch, one reference epoch, ...) so that
both see the same load on a shared machine; the ratio of medians is reported.

    python benchmarks/bench_ogb_epoch.py --root ../shared/data --epochs 4 \
        --json benchmarks/results/ogb_epoch.json

The wall time per epoch of the official script itself on this machine is in
``/work/shared/ANCHORS.md`` (molbbbp gcn 2.5 s, gin-virtual 5.8 s, ...).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphdl import datasets, seed_everything  # noqa: E402
from graphdl.bench.ogb_reference import ReferenceOGBMol, reference_eval, reference_train_epoch  # noqa: E402
from graphdl.bench.references import OFFICIAL_SECONDS_PER_EPOCH  # noqa: E402
from graphdl.io import atomic_write, atomic_write_json  # noqa: E402
from graphdl.models.ogb_mol import ogb_mol, parse_ogb_model  # noqa: E402
from graphdl.train import Callback, GraphTask, Trainer  # noqa: E402

CASES = ("ogbg-molbbbp/gcn", "ogbg-molbbbp/gin-virtual", "ogbg-molesol/gin-virtual", "ogbg-molbace/gin-virtual")


class Interleave(Callback):
    """Times each graphdl epoch, then runs and times one reference epoch."""

    def __init__(self, reference_epoch) -> None:
        self.reference_epoch = reference_epoch
        self.ours: list[float] = []
        self.theirs: list[float] = []
        self._t = 0.0

    def on_fit_start(self, trainer) -> None:
        self._t = time.perf_counter()

    def on_epoch_end(self, trainer, logs) -> None:
        self.ours.append(time.perf_counter() - self._t)
        t = time.perf_counter()
        self.reference_epoch()
        self.theirs.append(time.perf_counter() - t)
        self._t = time.perf_counter()


def bench(case: str, root: str, epochs: int) -> dict:
    from ogb.graphproppred import Evaluator
    from torch_geometric.loader import DataLoader

    name, label = case.split("/")
    layer, virtual = parse_ogb_model(label)
    ds = datasets.load(name, root)
    split = datasets.split_indices(ds)
    evaluator = Evaluator(name)
    loaders = {k: DataLoader(ds[v], batch_size=32, shuffle=(k == "train")) for k, v in split.items()}
    eval_train = DataLoader(ds[split["train"]], batch_size=32, shuffle=False)

    seed_everything(0)
    ref = ReferenceOGBMol(ds.num_tasks, gnn_type=layer, virtual_node=virtual)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=1e-3)

    def reference_epoch() -> None:
        reference_train_epoch(ref, loaders["train"], ref_opt, ds.task_type)
        # the official script evaluates the shuffled training loader; order does not change the cost
        reference_eval(ref, eval_train, evaluator)
        reference_eval(ref, loaders["valid"], evaluator)
        reference_eval(ref, loaders["test"], evaluator)

    seed_everything(0)
    model = ogb_mol(ds.num_tasks, layer=layer, virtual_node=virtual)
    loss = "bce_with_logits" if "classification" in ds.task_type else "mse"  # the runner's default losses
    timer = Interleave(reference_epoch)
    trainer = Trainer(model, loss=loss, task=GraphTask(metric=name, batch_size=32), lr=1e-3, epochs=epochs,
                      callbacks=[timer], progress=False)
    trainer.fit(ds, split)
    ours, theirs = statistics.median(timer.ours), statistics.median(timer.theirs)
    return {"case": case, "epochs": epochs, "graphdl_s": timer.ours, "reference_s": timer.theirs,
            "graphdl_median_s": round(ours, 3), "reference_median_s": round(theirs, 3),
            "ratio": round(ours / theirs, 3), "official_anchor_s": OFFICIAL_SECONDS_PER_EPOCH.get((name, label))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="../shared/data")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    results = []
    for case in args.cases:
        r = bench(case, args.root, args.epochs)
        results.append(r)
        print(f"{case}: graphdl {r['graphdl_median_s']:.2f} s/epoch, reference loop {r['reference_median_s']:.2f} "
              f"s/epoch, ratio {r['ratio']:.3f} (official script on this machine, ANCHORS.md: "
              f"{r['official_anchor_s']} s)", flush=True)
    if args.json:
        atomic_write_json(args.json, {"command": " ".join(sys.argv), "results": results})
        lines = ["| case | graphdl s/epoch (median) | reference loop s/epoch (median) | ratio | official script (ANCHORS.md) |",
                 "|---|---|---|---|---|"]
        lines += [f"| {r['case']} | {r['graphdl_median_s']:.2f} | {r['reference_median_s']:.2f} | {r['ratio']:.3f} | "
                  f"{r['official_anchor_s']} |" for r in results]
        with atomic_write(Path(args.json).with_suffix(".md")) as handle:
            handle.write(f"Command: `{' '.join(sys.argv)}` (torch {torch.__version__}, "
                         f"{torch.get_num_threads()} thread(s)). Epochs interleaved, one graphdl epoch then one "
                         f"reference epoch, each training and scoring train/valid/test with the official "
                         f"Evaluator; medians over the epochs. The ANCHORS.md column is the official script "
                         f"measured earlier on a quieter machine (2 threads): compare ratios, not seconds.\n\n"
                         + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
