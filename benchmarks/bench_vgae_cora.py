"""GAE, VGAE and ARGA link prediction on Cora (85/5/10 edge split), over seeds, through the shared Trainer.

Each seed draws its own ``RandomLinkSplit(num_val=0.05, num_test=0.1,
is_undirected=True, split_labels=True, add_negative_train_samples=False)``,
trains full-batch for ``--epochs`` epochs and reports the test ROC-AUC and AP
at the epoch with the best validation ROC-AUC. Configuration (PyG's
``examples/autoencoder.py``): 2 GCN layers ``1433 -> 32 -> 16``, Adam
lr 0.01, 400 epochs, one sampled negative per positive edge. ARGA uses the
encoder/discriminator learning rates of PyG's
``examples/argva_node_clustering.py`` (0.005 / 0.001, 5 discriminator steps
per epoch) and a 16 -> 64 -> 64 -> 1 discriminator.

Features: ``raw`` (Cora's binary bag of words, as Kipf & Welling's code uses
them) and ``normalized`` (row-normalised, ``T.NormalizeFeatures()`` as PyG's
example). Writes ``benchmarks/results/vgae_cora.md``.

    python benchmarks/bench_vgae_cora.py [--seeds 10] [--epochs 400] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch_geometric.transforms as T
from torch_geometric.data import Data

import graphdl
from graphdl.io import atomic_write_text
from graphdl.models import autoencoders  # noqa: F401  (registers gae, vgae, arga and the tasks)

RESULTS = Path(__file__).parent / "results" / "vgae_cora.md"

# name -> (registered model, model kwargs, loss, task, encoder lr)
MODELS = {
    "GAE": ("gae", {}, "link_bce", "autoencoder", 0.01),
    "VGAE": ("vgae", {}, "vgae", "autoencoder", 0.01),
    "ARGA": ("arga", {"discriminator_hidden": 64, "discriminator_layers": 3}, "link_bce",
             "adversarial_autoencoder", 0.005),
}
FEATURES = ("raw", "normalized")
# Reported test AUC / AP on Cora (Kipf & Welling 2016, Table 1; Pan et al. 2018, Table 2).
PAPER = {"GAE": (91.0, 92.0), "VGAE": (91.4, 92.6), "ARGA": (92.4, 93.2)}


def load_cora(root: str) -> Data:
    return graphdl.datasets.load("cora", root=root)[0]


def run(data: Data, name: str, seed: int, epochs: int) -> dict[str, float]:
    model_name, kwargs, loss, task, lr = MODELS[name]
    graphdl.seed_everything(seed)
    splits = T.RandomLinkSplit(num_val=0.05, num_test=0.1, is_undirected=True, split_labels=True,
                               add_negative_train_samples=False)(data)
    model = graphdl.models.create(model_name, in_channels=data.num_features, hidden_channels=32,
                                  out_channels=16, **kwargs)
    result = graphdl.Trainer(model, loss=loss, task=task, lr=lr, epochs=epochs, seed=seed,
                             progress=False).fit(None, splits)
    return {"auc": 100 * result.best["test_rocauc"], "ap": 100 * result.best["test_ap"],
            "val_auc": 100 * result.best["val_rocauc"], "epoch": result.best_epoch,
            "seconds": result.seconds}


def fmt(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {sd:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--features", default=",".join(FEATURES))
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--log", default=str(Path(tempfile.gettempdir()) / "bench_vgae_cora.jsonl"),
                        help="one JSON line per finished run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    command = "python benchmarks/bench_vgae_cora.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])

    seeds = list(range(args.seeds))
    names = [m for m in args.models.split(",") if m]
    features = [f for f in args.features.split(",") if f]
    for flag, given, known in (("--models", names, MODELS), ("--features", features, FEATURES)):
        unknown = [g for g in given if g not in known]
        if unknown or not given:  # else a KeyError once Cora is loaded
            parser.error(f"{flag}: unknown name(s) {', '.join(map(repr, unknown)) or 'none given'}; give a "
                         f"comma-separated list of {', '.join(known)}")
    raw = load_cora(args.root)
    variants = {"raw": raw, "normalized": T.NormalizeFeatures()(raw.clone())}
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    start = time.time()
    with open(args.log, "a") as log:
        for feat in features:
            for name in names:
                for seed in seeds:
                    r = run(variants[feat], name, seed, args.epochs)
                    results.setdefault((feat, name), []).append(r)
                    line = {"features": feat, "model": name, "seed": seed, **r}
                    print(json.dumps(line), flush=True)
                    log.write(json.dumps(line) + "\n")
                    log.flush()

    lines = [
        "# Link prediction on Cora: GAE, VGAE, ARGA",
        "",
        f"Command: `{command}`",
        "",
        f"Cora (2,708 nodes, 5,278 undirected edges), one `RandomLinkSplit` per seed (85/5/10 % of the edges; "
        f"val/test get as many sampled non-edges as edges). Seeds {seeds[0]}..{seeds[-1]}, {args.epochs} "
        f"full-batch epochs, test figures at the epoch of best validation ROC-AUC. Encoder: 2 GCN layers "
        f"1433 -> 32 -> 16 (VGAE: 32 -> (mu, logstd) of width 16), inner-product decoder, one uniformly sampled "
        f"negative per training edge per epoch. GAE/VGAE: Adam lr 0.01, losses `link_bce` / `vgae` "
        f"(reconstruction + KL/N). ARGA: encoder lr 0.005, discriminator 16 -> 64 -> 64 -> 1 with its own Adam "
        f"(lr 0.001, 5 steps per epoch), encoder loss `link_bce` + adversarial term. All through "
        f"`graphdl.Trainer` (tasks `autoencoder`, `adversarial_autoencoder`). torch {torch.__version__}, "
        f"{args.threads} CPU thread(s), {platform.machine()}, shared machine; total {time.time() - start:.0f} s.",
        "",
        "Features: **raw** = Cora's binary bag-of-words (the setting of Kipf & Welling's code and of the "
        "papers' numbers); **normalized** = rows scaled to sum 1 (`T.NormalizeFeatures()`, PyG's example).",
        "",
        "| features | model | test ROC-AUC (%) | test AP (%) | val ROC-AUC (%) | best epoch (mean) | s / run | "
        "paper AUC / AP |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for feat in features:
        for name in names:
            rs = results[(feat, name)]
            paper = "%.1f / %.1f" % PAPER[name]
            lines.append(f"| {feat} | {name} | {fmt([r['auc'] for r in rs])} | {fmt([r['ap'] for r in rs])} | "
                         f"{fmt([r['val_auc'] for r in rs])} | {statistics.mean(r['epoch'] for r in rs):.0f} | "
                         f"{statistics.mean(r['seconds'] for r in rs):.0f} | {paper} |")
    lines += ["", "mean ± sample standard deviation over the seeds. Paper figures: Kipf & Welling (2016), "
              "Table 1 (GAE, VGAE with features; one split, 10 runs); Pan et al. (2018), Table 2 (ARGA).", "",
              "Per seed (test AUC / AP):", ""]
    for feat in features:
        for name in names:
            per = ", ".join(f"{r['auc']:.1f}/{r['ap']:.1f}" for r in results[(feat, name)])
            lines.append(f"- {feat} {name}: {per}")
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
