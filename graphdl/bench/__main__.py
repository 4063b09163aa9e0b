"""``python -m graphdl.bench`` (or ``graphdl bench``): run one configuration or a suite, or merge result files.

    python -m graphdl.bench run ogbg-molbbbp gcn --seeds 3 --epochs 100 --root ../shared/data --json r.json
    python -m graphdl.bench run ogbl-ddi sage --epochs 200 --checkpoint-dir ckpt --resume   # continue a long run
    python -m graphdl.bench suite quick --root ../shared/data --json quick.json
    python -m graphdl.bench report r1.json r2.json --md table.md --json all.json --png curves.png

Bad input ends the command with one ``graphdl: error: ...`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from graphdl.errors import ConfigError

# what a record needs to be tabled: every record names its case; a finished one ("status" ok) has its figures
_CASE_KEYS = ("dataset", "model")
_RESULT_KEYS = ("metric", "higher_is_better", "mean", "std", "seconds_per_epoch")
# figures the table prints with a number format: a number or null (null prints "-")
_NUMBER_KEYS = ("mean", "std", "reference", "reference_std")


def _records(paths: Sequence[str]) -> list[tuple[str, dict]]:
    """``(file, record)`` for the records of ``--json`` files of ``graphdl bench``/``graphdl train`` (or of
    single records)."""
    out = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not JSON ({exc}); pass files written by --json of graphdl bench "
                              "or graphdl train") from None
        records = data["records"] if isinstance(data, dict) and "records" in data else [data]
        for i, record in enumerate(records if isinstance(records, list) else [records]):
            needed = _CASE_KEYS + (_RESULT_KEYS if isinstance(record, dict) and record.get("status", "ok") == "ok"
                                   else ())
            missing = [k for k in needed if not isinstance(record, dict) or k not in record]
            if missing:
                raise ConfigError(f"{path}: record {i} has no {', '.join(missing)}; it is not a result record "
                                  "(pass files written by --json of graphdl bench or graphdl train)")
            for key in _NUMBER_KEYS:  # the table formats them as numbers
                value = record.get(key)
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                    raise ConfigError(f"{path}: record {i} has {key} {value!r}, not a number; write it as a "
                                      f"number (e.g. 0.815, without quotes) or null")
            out.append((path, record))
    return out


def _overrides(items: Sequence[str]) -> dict[str, Any]:
    """``--set KEY=JSON ...`` as a dict."""
    cfg: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not key or not eq:
            raise ConfigError(f"--set {item!r}: expected KEY=JSON, e.g. hidden_channels=32 or "
                              "eval_splits='[\"val\",\"test\"]'")
        try:
            cfg[key] = json.loads(value)
        except json.JSONDecodeError:
            raise ConfigError(f"--set {item!r}: the value {value!r} is not JSON; numbers and true/false go as "
                              f"they are, a string needs quotes: {key}='\"{value}\"'") from None
    return cfg


def build_parser(prog: str = "python -m graphdl.bench") -> argparse.ArgumentParser:
    from graphdl.bench import SUITES
    from graphdl.cli import PLUGIN_HELP, CommandParser

    parser = CommandParser(prog=prog, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run", help="one dataset/model over seeds")
    one.add_argument("dataset")
    one.add_argument("model", help="a configuration (gcn, gat, gin, gin-virtual, gcn-virtual, sage ...) or a "
                                   "registered layer")
    one.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=JSON",
                     help="configuration overrides, e.g. eval_splits='[\"val\",\"test\"]' hidden_channels=32 "
                          "(repeat --set or list several after one)")
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
        p.add_argument("--plugin", action="append", metavar="MODULE", help=PLUGIN_HELP)
        p.add_argument("--seeds", type=int, default=None)
        p.add_argument("--epochs", type=int, default=None)
        p.add_argument("--root", default=None)
        p.add_argument("--json", default=None)
        p.add_argument("--png", "--plot", dest="png", default=None, help="PNG of the learning curves")
        p.add_argument("--progress", action="store_true")
    report = sub.add_parser("report", help="merge result files into one table, JSON and plot; records of one "
                                           "dataset/model/configuration pool their seeds into one row")
    report.add_argument("files", nargs="+")
    report.add_argument("--md", default=None)
    report.add_argument("--json", default=None)
    report.add_argument("--png", "--plot", dest="png", default=None, help="PNG of the learning curves")
    report.add_argument("--note", default="", help="markdown text written above the table in --md")
    return parser


def _execute(args: argparse.Namespace, command_line: str) -> int:
    from graphdl.bench import format_table, run_config, run_suite, save_records
    from graphdl.bench.runner import environment, finished_seeds_kept
    from graphdl.cli import check_output_paths
    from graphdl.config import MAX_SEEDS
    from graphdl.io import atomic_write_json, atomic_write_text

    check_output_paths(json=args.json, png=args.png, log=getattr(args, "log", None), md=getattr(args, "md", None))
    if args.command == "run":
        overrides = _overrides(args.set)
        if "model" in overrides and str(overrides["model"]).lower() != args.model.lower():  # it replaces MODEL
            raise ConfigError(f"--set model={json.dumps(overrides['model'])} contradicts the model argument "
                              f"{args.model!r}; name the model once, as the MODEL argument "
                              f"(graphdl bench run {args.dataset} MODEL), and drop --set model")
        if "epochs" in overrides and args.epochs is not None and overrides["epochs"] != args.epochs:  # one won
            raise ConfigError(f"--set epochs={json.dumps(overrides['epochs'])} contradicts --epochs {args.epochs}; "
                              f"give the epochs once")
        cfg = {"model": args.model, **overrides}
        if args.first_seed < 0:
            raise ConfigError(f"--first-seed must be >= 0, got {args.first_seed}")
        if args.seeds is not None and args.seeds < 1:  # 0 ran one seed
            raise ConfigError(f"--seeds must be >= 1 (the number of seeds), got {args.seeds}")
        if args.seeds is not None and args.seeds > MAX_SEEDS:  # listing them would exhaust memory
            raise ConfigError(f"--seeds must be at most {MAX_SEEDS} per run, got {args.seeds}; split a larger "
                              f"benchmark into runs with --first-seed K")
        seeds = list(range(args.first_seed, args.first_seed + (args.seeds or 1)))
        if args.resume and not args.checkpoint_dir:
            raise ConfigError("--resume needs --checkpoint-dir DIR (the folder the run checkpointed into)")
        # the finished seeds so far go to <json>.partial; --json itself is replaced only when the run ends
        with finished_seeds_kept(args.json, len(seeds), command_line) as on_seed:
            record = run_config(args.dataset, cfg, seeds=seeds, epochs=args.epochs, root=args.root,
                                progress=args.progress, log_path=args.log, checkpoint_dir=args.checkpoint_dir,
                                resume=args.resume, on_seed=on_seed)
            print(format_table([record]))
            save_records(args.json, [record], args.png, command=command_line)
    elif args.command == "suite":
        from graphdl.bench.runner import check_suite_ran

        records = run_suite(args.name, seeds=args.seeds, epochs=args.epochs, root=args.root, json_path=args.json,
                            plot_path=args.png, progress=args.progress, select=args.select)
        check_suite_ran(records, args.name)
    else:
        from graphdl.bench.merge import merge_records

        inputs = {Path(f).expanduser().absolute() for f in args.files}
        for flag in ("md", "png"):  # --json may rewrite an input with the merged records; these would destroy it
            value = getattr(args, flag)
            if value is not None and Path(value).expanduser().absolute() in inputs:
                raise ConfigError(f"--{flag} {value} names one of the result files read; writing the "
                                  f"{'table' if flag == 'md' else 'plot'} there would replace its records: give "
                                  f"--{flag} another path")
        pairs = _records(args.files)
        records = merge_records([r for _, r in pairs], [path for path, _ in pairs])
        table = format_table(records)
        print(table)
        if args.md:
            atomic_write_text(args.md, (args.note.strip() + "\n\n" if args.note.strip() else "") + table + "\n")
        if args.json:
            atomic_write_json(args.json, {"environment": environment(), "sources": args.files, "records": records})
        if args.png:
            from graphdl.bench.plot import plot_curves

            plot_curves(records, args.png, title="graphdl benchmarks")
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "python -m graphdl.bench") -> int:
    """Run the command in ``argv``; ``prog`` is how the user called it (recorded in ``--json``)."""
    from graphdl.cli import import_plugins, parse_arguments, run_command

    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_arguments(build_parser(prog), argv)
    if isinstance(args, int):
        return args

    def command() -> int:  # plugins (--plugin, $GRAPHDL_PLUGINS) register before a configuration names them
        import_plugins(getattr(args, "plugin", None) or ())
        return _execute(args, shlex.join([*prog.split(), *argv]))

    return run_command(command)


if __name__ == "__main__":
    sys.exit(main())
