"""``python -m graphdl.bench``: run one configuration or a suite, or merge result files.

    python -m graphdl.bench run ogbg-molbbbp gcn --seeds 3 --epochs 100 --root ../shared/data --json r.json
    python -m graphdl.bench run ogbl-ddi sage --epochs 200 --checkpoint-dir ckpt --resume   # continue a long run
    python -m graphdl.bench suite quick --root ../shared/data --json quick.json
    python -m graphdl.bench report r1.json r2.json --md table.md --json all.json --png curves.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from graphdl.errors import ConfigError, GraphDLError


def _records(paths: list[str]) -> list[dict]:
    out = []
    for path in paths:
        data = json.loads(Path(path).read_text())
        out += data["records"] if isinstance(data, dict) and "records" in data else [data]
    return out


def main(argv: list[str] | None = None) -> int:
    from graphdl.bench import SUITES, format_table, run_config, run_suite, save_records
    from graphdl.bench.runner import environment
    from graphdl.io import atomic_write_json, atomic_write_text

    parser = argparse.ArgumentParser(prog="python -m graphdl.bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run", help="one dataset/model over seeds")
    one.add_argument("dataset")
    one.add_argument("model", help="gcn, gat, gin, gin-virtual, gcn-virtual, sage ...")
    one.add_argument("--set", nargs="*", default=[], metavar="KEY=JSON",
                     help="configuration overrides, e.g. eval_splits='[\"val\",\"test\"]' hidden_channels=32")
    one.add_argument("--first-seed", type=int, default=0,
                     help="run seeds FIRST..FIRST+SEEDS-1 (to split one benchmark over processes or machines)")
    one.add_argument("--log", default=None, metavar="PATH",
                     help="per-epoch metrics (.csv/.json; <stem>_seed<seed> with several seeds), rewritten each epoch")
    one.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                     help="checkpoint every epoch under DIR/seed_<seed>, so a long run can be continued "
                          "(a seed folder an earlier run left is refused unless --resume)")
    one.add_argument("--resume", action="store_true",
                     help="continue from --checkpoint-dir: finished seeds are skipped, a killed one resumes exactly")
    suite = sub.add_parser("suite", help=f"a suite: {', '.join(SUITES)}")
    suite.add_argument("name")
    suite.add_argument("--select", nargs="*", default=None)
    for p in (one, suite):
        p.add_argument("--seeds", type=int, default=None)
        p.add_argument("--epochs", type=int, default=None)
        p.add_argument("--root", default=None)
        p.add_argument("--json", default=None)
        p.add_argument("--png", default=None)
        p.add_argument("--progress", action="store_true")
    report = sub.add_parser("report", help="merge result files into one table, JSON and plot")
    report.add_argument("files", nargs="+")
    report.add_argument("--md", default=None)
    report.add_argument("--json", default=None)
    report.add_argument("--png", default=None)
    report.add_argument("--note", default="", help="markdown text written above the table in --md")
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            cfg: dict = {"model": args.model}
            for item in args.set:
                key, _, value = item.partition("=")
                cfg[key] = json.loads(value)
            if args.first_seed < 0:
                raise ConfigError(f"--first-seed must be >= 0, got {args.first_seed}")
            seeds = list(range(args.first_seed, args.first_seed + (args.seeds or 1)))
            if args.resume and not args.checkpoint_dir:
                raise ConfigError("--resume needs --checkpoint-dir DIR (the folder the run checkpointed into)")
            record = run_config(args.dataset, cfg, seeds=seeds, epochs=args.epochs, root=args.root,
                                progress=args.progress, log_path=args.log, checkpoint_dir=args.checkpoint_dir,
                                resume=args.resume)
            print(format_table([record]))
            save_records(args.json, [record], args.png,
                         command=" ".join(["python -m graphdl.bench", *(sys.argv[1:] if argv is None else argv)]))
        elif args.command == "suite":
            run_suite(args.name, seeds=args.seeds, epochs=args.epochs, root=args.root, json_path=args.json,
                      plot_path=args.png, progress=args.progress, select=args.select)
        else:
            records = _records(args.files)
            table = format_table(records)
            print(table)
            if args.md:
                atomic_write_text(args.md, (args.note.strip() + "\n\n" if args.note.strip() else "") + table + "\n")
            if args.json:
                atomic_write_json(args.json, {"environment": environment(), "sources": args.files,
                                              "records": records})
            if args.png:
                from graphdl.bench.plot import plot_curves

                plot_curves(records, args.png, title="graphdl benchmarks")
    except GraphDLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
