"""Place new ogbl-ddi runs' early learning curves among the seeds of earlier full runs.

A check that a change to the training code (not to the model) keeps learning as
before: train loss and validation Hits@20 at ``--epoch``, and the best
validation Hits@20 up to there, as mean ± std and range over the new seeds
(``--new``, repeatable) and over the earlier ones.

    python benchmarks/compare_ddi_early_epochs.py --epoch 24 \
        --new benchmarks/results/ddi_decoder_check/sage_seed1_25ep.json \
        --new benchmarks/results/ddi_decoder_check/sage_seeds2-3_25ep.json \
        benchmarks/results/ddi_seeds/ogb_ddi_sage_seed*.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from summarize_ddi_seeds import mean_std  # a sibling script


def _curves(path: str, cases: dict[str, str]) -> list[dict[str, list[float]]]:
    """One dict of curves per seed of every record in ``path``; ``cases`` gathers each record's
    ``dataset/model`` (with the first file that holds it), and a second one is refused: the seeds of
    two models would be compared as one."""
    out = []
    for rec in json.loads(Path(path).read_text())["records"]:
        case = f"{rec.get('dataset')}/{rec.get('model')}"
        cases.setdefault(case, path)
        if len(cases) > 1:
            raise SystemExit(f"{path} holds {case} runs, {cases[next(iter(cases))]} {next(iter(cases))} runs; "
                             f"compare the seeds of one dataset and model")
        out += [{key: rec["curves"][key][i] for key in ("train_loss", "val")} for i in range(len(rec["seeds"]))]
    return out


def _summary(xs: list[float]) -> str:
    """``mean ± std (min – max)``, or the value alone for one seed."""
    return mean_std(xs) if len(xs) == 1 else f"{mean_std(xs)} ({min(xs):.4f} – {max(xs):.4f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("earlier", nargs="+", help="records of the earlier seeds (graphdl bench --json)")
    parser.add_argument("--new", action="append", required=True, help="a record of new seeds (repeatable)")
    parser.add_argument("--epoch", type=int, required=True, help="0-based epoch to compare at")
    args = parser.parse_args()
    cases: dict[str, str] = {}
    new, earlier = [[c for path in paths for c in _curves(path, cases)] for paths in (args.new, args.earlier)]
    if any(len(c["val"]) <= args.epoch for c in [*new, *earlier]):
        raise SystemExit(f"every curve needs more than {args.epoch} epochs")
    figures = [(f"train loss, epoch {args.epoch}", lambda c: c["train_loss"][args.epoch]),
               (f"val hits@20, epoch {args.epoch}", lambda c: c["val"][args.epoch]),
               (f"best val hits@20, epochs 0-{args.epoch}", lambda c: max(c["val"][:args.epoch + 1]))]
    print(f"| figure | new seeds ({len(new)}) | earlier seeds ({len(earlier)}) |\n|---|---|---|")
    for name, figure in figures:
        print(f"| {name} | {_summary([figure(c) for c in new])} | {_summary([figure(c) for c in earlier])} |")


if __name__ == "__main__":
    main()
