"""Summarise a per-epoch metrics log (``--log PATH.csv``) of a run that has not finished.

Prints the epochs done, the first epoch with the best validation value and the
test value there (the figure a finished run would report so far), and every
``--every``-th row as a markdown table.

    python benchmarks/summarize_epoch_log.py benchmarks/results/ogb_ddi_sage_seed0.csv --metric hits@20 --eval-steps 5
"""

from __future__ import annotations

import argparse
import csv

from summarize_ddi_seeds import best_epoch  # the selection the seed summary makes (a sibling script)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log")
    parser.add_argument("--metric", default="hits@20")
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--eval-steps", type=int, default=1,
                        help="select only among epochs whose 1-based number is a multiple of this, as an "
                             "example that evaluates every N epochs does (ogbl-ddi's gnn.py: 5)")
    args = parser.parse_args()
    with open(args.log, newline="") as handle:
        rows = list(csv.DictReader(handle))
    val, test = f"val_{args.metric}", f"test_{args.metric}"
    if not rows or val not in rows[0]:
        raise SystemExit(f"{args.log}: no {val!r} column (columns: {', '.join(rows[0]) if rows else 'none'})")
    if args.eval_steps < 1:
        raise SystemExit(f"--eval-steps must be >= 1, got {args.eval_steps}")
    if [int(r["epoch"]) for r in rows] != list(range(len(rows))):
        raise SystemExit(f"{args.log}: epochs are not 0, 1, 2, ... in order")
    try:
        best = rows[best_epoch([float(r[val]) for r in rows], args.eval_steps)]
    except ValueError:
        raise SystemExit(f"{args.log}: no epoch is a multiple of --eval-steps {args.eval_steps} yet") from None
    among = "" if args.eval_steps == 1 else f" (among every {args.eval_steps}th epoch)"
    print(f"epochs done: {len(rows)}; best validation epoch{among} {best['epoch']}: "
          f"val {float(best[val]):.4f}, test {float(best[test]):.4f}\n")
    print(f"| epoch | train loss | val {args.metric} | test {args.metric} |\n|---|---|---|---|")
    for i, r in enumerate(rows):
        if (i + 1) % args.every == 0 or i == len(rows) - 1:
            print(f"| {r['epoch']} | {float(r['train_loss']):.4f} | {float(r[val]):.4f} | {float(r[test]):.4f} |")


if __name__ == "__main__":
    main()
