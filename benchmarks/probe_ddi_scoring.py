"""Does ranking logits instead of the official example's float32 sigmoid probabilities change ogbl-ddi Hits@20?

Trains GraphSAGE on ogbl-ddi in the leaderboard configuration (seed 0) and, every 5th epoch and at the last,
scores the validation and test splits both ways with the official Evaluator, and records the 20th-highest and
the highest negative logit (probabilities tie at 1.0 in float32 from a logit of about 17) and the share of
positives whose probability is exactly 1.0. ``OGBLinkTask`` scores probabilities, as the example does; the
10-seed figures in the README were scored on logits.

    OMP_NUM_THREADS=1 python benchmarks/probe_ddi_scoring.py --epochs 60 --root ../shared/data \
        --json benchmarks/results/ddi_scoring_probe.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphdl.bench.runner import _default_loss, _Prepared  # noqa: E402
from graphdl.bench.suites import default_config  # noqa: E402
from graphdl.io import atomic_write_json  # noqa: E402
from graphdl.train import Callback, Trainer, seed_everything  # noqa: E402


class ScoreBothWays(Callback):
    """Every 5th epoch (and the last): Hits@20 on logits and on sigmoid probabilities, and the negatives' top."""

    def __init__(self, epochs: int, path: str | None) -> None:
        self.epochs, self.path, self.rows = epochs, path, []

    @torch.no_grad()
    def on_epoch_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        if (trainer.epoch + 1) % 5 and trainer.epoch + 1 != self.epochs:
            return
        task, model = trainer.task, trainer.model
        model.eval()
        z = task.predict(model)
        row: dict[str, float] = {"epoch": trainer.epoch}
        for split in ("val", "test"):
            pos = torch.cat([task._decode(model, z, p) for p in task.pos[split].split(65536, dim=1)])
            neg = torch.cat([task._decode(model, z, p) for p in task.neg[split].split(65536, dim=1)])
            row[f"{split}_logit"] = task.metric(pos, neg)
            row[f"{split}_sigmoid"] = task.metric(pos.sigmoid(), neg.sigmoid())
            row[f"{split}_max_neg_logit"] = float(neg.max())
            row[f"{split}_20th_neg_logit"] = float(neg.topk(20).values[-1])
            row[f"{split}_pos_saturated"] = float((pos.sigmoid() == 1.0).float().mean())
        model.train()
        self.rows.append(row)
        print(json.dumps(row), flush=True)
        if self.path:
            atomic_write_json(self.path, self.rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--root", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = {**default_config("ogbl-ddi", "sage"), "epochs": args.epochs}
    prepared = _Prepared("ogbl-ddi", "ogbl", cfg, args.root)
    seed_everything(0)
    model, task, optimizer = prepared.build()
    probe = ScoreBothWays(args.epochs, args.json)
    Trainer(model, loss=_default_loss("ogbl", "ogbl-ddi"), task=task, optimizer=optimizer, lr=float(cfg["lr"]),
            epochs=args.epochs, progress=False, eval_splits=["val"], callbacks=[probe]).fit(prepared.data(),
                                                                                           prepared.splits)


if __name__ == "__main__":
    main()
