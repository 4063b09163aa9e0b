"""Merge one-seed ogbl-ddi records (``benchmarks/run_ddi_parallel.sh``) into the leaderboard comparison.

For each model: test Hits@20 at the best validation epoch per seed, selected
among every epoch (graphdl's default) and among every 5th epoch (the official
example's ``--eval_steps 5``: 1-based epochs 5, 10, ..., 200), then mean ± std
(``ddof=1``) over seeds beside the leaderboard figure.

    python benchmarks/summarize_ddi_seeds.py benchmarks/results/ddi_seeds/*.json \\
        benchmarks/results/ogb_ddi_sage_200.json --md benchmarks/results/ogb_ddi_seeds.md

(``ogb_ddi_sage_200.json`` is GraphSAGE's seed 0, run on its own.)
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path


def best_epoch(val: list[float], eval_steps: int = 1) -> int:
    """First epoch with the highest validation value among the 1-based multiples of ``eval_steps``."""
    scored = [e for e in range(len(val)) if (e + 1) % eval_steps == 0 and not math.isnan(val[e])]
    if not scored:
        raise ValueError(f"no scored epoch among {len(val)} with eval_steps={eval_steps}")
    return max(scored, key=lambda e: val[e])  # max() keeps the first best, as the Trainer does


def mean_std(values: list[float]) -> str:
    """``mean ± std`` (sample std) to 4 places; the value alone for one, ``-`` for none."""
    if len(values) < 2:
        return f"{values[0]:.4f}" if values else "-"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def load_seeds(paths: list[str]) -> dict[str, list[dict]]:
    """Per model, one row per seed: seed, epochs, both selections, s/epoch, device and the record's file."""
    rows: dict[str, list[dict]] = defaultdict(list)
    for path in paths:
        data = json.loads(Path(path).read_text())
        for rec in data.get("records", [data]):
            if rec.get("dataset") != "ogbl-ddi":
                raise SystemExit(f"{path}: a {rec.get('dataset')!r} record, not ogbl-ddi")
            for i, seed in enumerate(rec["seeds"]):
                val, test = rec["curves"]["val"][i], rec["curves"]["test"][i]
                every, fifth = best_epoch(val), best_epoch(val, 5)
                if not math.isclose(test[every], rec["runs"][i], rel_tol=1e-9):
                    raise SystemExit(f"{path}: seed {seed}'s curve selects test {test[every]} at epoch {every}, "
                                     f"the record says {rec['runs'][i]}")
                rows[rec["model"]].append({
                    "seed": seed, "epochs": len(val), "file": Path(path).name, "reference": rec["reference"],
                    "reference_std": rec["reference_std"], "every": (every, val[every], test[every]),
                    "fifth": (fifth, val[fifth], test[fifth]), "s_per_epoch": rec["seconds_per_epoch"],
                    "device": "GPU" if data.get("environment", {}).get("cuda") else "CPU"})
    for model, seeds in rows.items():
        seen = [r["seed"] for r in seeds]
        if len(set(seen)) != len(seen):
            raise SystemExit(f"{model}: seed listed twice in the inputs ({sorted(seen)})")
        seeds.sort(key=lambda r: r["seed"])
    return rows


def report(rows: dict[str, list[dict]]) -> str:
    lines = ["| model | seeds | test Hits@20, best val over every epoch | over every 5th epoch (as the example) "
             "| leaderboard (10 seeds) |", "|---|---|---|---|---|"]
    for model, seeds in rows.items():
        ref = f"{seeds[0]['reference']:.4f} ± {seeds[0]['reference_std']:.4f}"
        lines.append(f"| {model} | {len(seeds)} ({', '.join(str(r['seed']) for r in seeds)}) "
                     f"| {mean_std([r['every'][2] for r in seeds])} | {mean_std([r['fifth'][2] for r in seeds])} "
                     f"| {ref} |")
    lines += ["", "| model | seed | epochs | best epoch (val, test) | every 5th: best epoch (val, test) | s/epoch "
              "| device | record |", "|---|---|---|---|---|---|---|---|"]
    for model, seeds in rows.items():
        for r in seeds:
            (e1, v1, t1), (e5, v5, t5) = r["every"], r["fifth"]
            lines.append(f"| {model} | {r['seed']} | {r['epochs']} | {e1} ({v1:.4f}, {t1:.4f}) "
                         f"| {e5} ({v5:.4f}, {t5:.4f}) | {r['s_per_epoch']:.2f} | {r['device']} | {r['file']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", nargs="+", help="JSON records of `python -m graphdl.bench run ogbl-ddi ...`")
    parser.add_argument("--md", default=None, help="also write the tables to this markdown file")
    args = parser.parse_args()
    text = report(load_seeds(args.records))
    print(text)
    if args.md:
        from graphdl.io import atomic_write_text

        atomic_write_text(args.md, text + "\n")


if __name__ == "__main__":
    main()
