"""The ``graphdl`` command line.

::

    graphdl list layers|losses|datasets|models|tasks [PATTERN] [--plugin MODULE]
    graphdl train --dataset cora --layer gcn --seeds 10 [--root DIR] [--json PATH] ...
    graphdl train --config run.yaml [flags that override the file]
    graphdl bench SUITE [--seeds N] [--epochs N] [--root DIR] [--json PATH]
    graphdl bench run DATASET MODEL [...] | graphdl bench report FILE... [...]   (= python -m graphdl.bench)

Plugins registered in your own code (``@graphdl.layers.register("my_conv")``) are named after
``--plugin MODULE`` (a module importable from the working folder, or a ``.py`` file; also
``$GRAPHDL_PLUGINS``), e.g. ``graphdl train --plugin my_layers.py --layer my_conv``; those of installed
distributions come through their entry points.

Errors in the input end the command with one line on stderr
(``graphdl: error: ...``) and exit code 2, never a traceback; so does a
``graphdl bench SUITE`` some of whose entries could not run (after its table
and result file, which show why).

``graphdl train --nproc N`` trains with N processes on this machine
(:func:`graphdl.distributed.launch`); under ``torchrun ... -m graphdl train``
each process joins the process group from the environment, and rank 0 alone
prints and writes the results.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import zlib
from pathlib import Path
from collections.abc import Callable, Sequence
from typing import Any

from graphdl.config import TrainConfig, config_from_dict, load_config
from graphdl.distributed import COMMAND_LINE_ENV
from graphdl.errors import ConfigError, GraphDLError

__all__ = ["main"]

FAMILIES = ("layers", "losses", "datasets", "models", "tasks")
PLUGINS_ENV = "GRAPHDL_PLUGINS"  # modules or .py files to import first, os.pathsep-separated (--plugin)


def _import_plugin(spec: str) -> None:
    """Import ``spec``, a module name (importable from the working folder) or a ``.py`` file, so that the
    plugins it registers with ``@graphdl.layers.register(...)`` and the like can be named on the command line."""
    import importlib
    import importlib.util

    if spec.endswith(".py") or os.sep in spec or (os.altsep and os.altsep in spec):
        path = Path(spec).resolve()
        if not path.is_file():
            raise ConfigError(f"--plugin {spec}: no such file; give a .py file or an importable module name")
        name = path.stem  # the module's name in the listing's origin column, as if imported by name
        loaded = sys.modules.get(name)
        if loaded is not None and getattr(loaded, "__file__", None) and Path(loaded.__file__).resolve() == path:
            return  # imported already
        if loaded is not None or not name.isidentifier():
            name = f"_graphdl_plugin_{zlib.crc32(str(path).encode()):08x}_{name}"
            if name in sys.modules:
                return
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise ConfigError(f"--plugin {spec}: cannot be imported as a Python file")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise ConfigError(f"--plugin {spec}: importing it failed: {type(exc).__name__}: {exc}") from exc
        return
    here = os.getcwd()
    if "" not in sys.path and here not in sys.path:  # as `python -m` does: the console script leaves it out
        sys.path.insert(0, here)
    try:
        importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        if exc.name is not None and spec.split(".")[0] == exc.name.split(".")[0] and spec.startswith(exc.name):
            raise ConfigError(f"--plugin {spec}: no module named {exc.name!r} importable from {here}; give a "
                              f"module name or the path of a .py file") from exc
        raise ConfigError(f"--plugin {spec}: importing it failed: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        raise ConfigError(f"--plugin {spec}: importing it failed: {type(exc).__name__}: {exc}") from exc


def import_plugins(specs: Sequence[str] = ()) -> None:
    """Import the ``--plugin`` modules and those named in ``$GRAPHDL_PLUGINS``, and record them all there, so
    that the processes of ``--nproc`` import them too."""
    given = [s for s in os.environ.get(PLUGINS_ENV, "").split(os.pathsep) if s.strip()]
    for spec in specs:
        spec = str(Path(spec).resolve()) if spec.endswith(".py") or os.sep in spec else spec
        if spec not in given:
            given.append(spec)
    for spec in given:
        _import_plugin(spec.strip())
    if given:
        os.environ[PLUGINS_ENV] = os.pathsep.join(given)
BENCH_COMMANDS = ("run", "suite", "report")  # `graphdl bench run ...` is `python -m graphdl.bench run ...`


def _registry(family: str):
    import graphdl
    from graphdl.train import TASKS

    return TASKS if family == "tasks" else getattr(graphdl, family).registry


def cmd_list(args: argparse.Namespace) -> int:
    entries = _registry(args.family).entries(args.pattern)
    # a loss's kind says how the Trainer calls it (README: "How the Trainer calls a loss")
    from graphdl.losses import entry_kind

    kind = [("kind", lambda e: str(entry_kind(e) or "-"))] if args.family == "losses" else []
    columns = [("name", lambda e: e.name), *kind, ("summary", lambda e: e.summary or "-"),
               ("origin", lambda e: e.origin)]
    rows = [[get(e) for _, get in columns] for e in entries]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, (h, _) in enumerate(columns)]
    s = len(columns) - 2  # the summary column, cut at 90 characters
    widths[s] = min(widths[s], 90)
    widths[-1] = 0  # the last column is not padded
    for row in [[h for h, _ in columns], *rows]:
        row[s] = row[s] if len(row[s]) <= widths[s] else row[s][: widths[s] - 3] + "..."
        print("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths)).rstrip())
    print(f"({len(rows)} {args.family})")
    return 0


def _train_config(args: argparse.Namespace) -> TrainConfig:
    given = {k: v for k, v in vars(args).items() if k not in ("func", "config", "command", "command_line", "plugin")}
    if args.config is not None:
        cfg = load_config(args.config)
        values = {f: getattr(cfg, f) for f in TrainConfig.__dataclass_fields__ if f != "extra"}
        values.update(given)
        return config_from_dict(values, source=args.config)
    return config_from_dict(given, source="command line")


def check_output_paths(**paths: str | None) -> None:
    """Output files given as ``--flag PATH``, checked before the run so that its results are not lost
    at the end: none is a folder, and each lies in a folder that exists or can be made, and is writable."""
    from graphdl.io import check_folder_path

    seen: dict[Path, str] = {}
    for flag, value in paths.items():
        if value is None:
            continue
        option = f"--{flag.replace('_', '-')} {value}"
        path = Path(value)
        same = seen.setdefault(path.expanduser().absolute(), option)
        if same != option:  # the file written last would silently replace the other
            raise ConfigError(f"{same} and {option} name the same file; give each its own path")
        if path.is_dir():
            raise ConfigError(f"{option} is a folder; give a file path")
        folder = check_folder_path(path.parent, option)
        existing = next(p for p in (folder, *folder.parents) if p.exists())
        if not os.access(existing, os.W_OK):
            raise ConfigError(f"{option}: the folder {str(existing)!r} is not writable; choose another path")


def _check_names(cfg: TrainConfig) -> None:
    """The dataset, layer and loss the run names are registered (an UnknownNameError with close matches);
    the dataset is then named as registered (``ogbg_molbbbp`` is ``ogbg-molbbbp``, as the registry resolves it)."""
    import graphdl

    cfg.dataset = graphdl.datasets.entry(cfg.dataset).name
    if cfg.layer is not None:
        graphdl.layers.entry(cfg.layer)
    if cfg.loss is not None:
        graphdl.losses.entry(cfg.loss)


def _shown(value: Any, limit: int = 200) -> str:
    """``value`` as JSON for an error message, cut at ``limit`` characters."""
    text = json.dumps(value, default=repr)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_train_config(cfg: TrainConfig) -> None:
    """Names and paths the run needs, checked before any process starts or data loads."""
    import graphdl
    from graphdl.errors import UnknownNameError, did_you_mean

    try:
        _check_names(cfg)
    except UnknownNameError as exc:  # a plugin of the user's own code is found after --plugin MODULE
        if os.environ.get(PLUGINS_ENV) or not str(exc).startswith("unknown "):
            raise
        raise UnknownNameError(f"{exc} A plugin registered in your own code needs --plugin MODULE (the module "
                               f"or .py file that registers it).") from None
    if cfg.loss_kwargs and cfg.loss is None:  # the default loss is built by the benchmark, not from a name
        raise ConfigError(f"--loss-kwargs needs --loss NAME: name the loss these arguments are for "
                          f"(graphdl list losses), e.g. --loss cross_entropy --loss-kwargs "
                          f"'{_shown(cfg.loss_kwargs)}'")
    if cfg.loss is not None:
        given = f"--loss-kwargs {_shown(cfg.loss_kwargs)}: " if cfg.loss_kwargs else ""
        try:  # misspelt or missing arguments now, not after the data loads
            graphdl.losses.create(cfg.loss, **(cfg.loss_kwargs or {}))
        except GraphDLError as exc:  # the loss's own checks name the argument
            raise ConfigError(f"{given}{exc} Pass its arguments with --loss-kwargs JSON") from None
        except (TypeError, ValueError) as exc:
            if not cfg.loss_kwargs:  # no argument of the user's: a fault inside the loss, shown as such
                raise
            # a value of the wrong kind ({"weight": ["a"]}) fails inside the loss's constructor
            raise ConfigError(f"{given}loss {cfg.loss!r} cannot be built from these values: {type(exc).__name__}: "
                              f"{exc}. Give each argument the type the loss documents (graphdl list losses)") \
                from None
    if cfg.root is not None and not Path(cfg.root).is_dir():
        what = "is not a folder" if Path(cfg.root).exists() else "does not exist"
        raise ConfigError(f"--root {cfg.root} {what}; pass the folder that holds planetoid/ and ogb/, "
                          f"or leave --root out to use $GRAPHDL_DATA or the user cache")
    if cfg.resume and cfg.checkpoint_dir is None:
        raise ConfigError("--resume needs --checkpoint-dir DIR (the folder the interrupted run wrote)")
    if cfg.checkpoint_dir is not None:  # before any data loads; a file at the path or above it
        from graphdl.io import check_folder_path

        check_folder_path(cfg.checkpoint_dir, "--checkpoint-dir")
    check_output_paths(json=cfg.json, log=cfg.log)
    if cfg.log is not None and Path(cfg.log).suffix not in (".csv", ".json"):
        raise ConfigError(f"--log {cfg.log} must end in .csv or .json")
    if cfg.device is not None:
        import torch

        try:
            torch.device(cfg.device)
        except (RuntimeError, ValueError):
            raise ConfigError(f"--device {cfg.device!r} is not a torch device.{did_you_mean(cfg.device, ['cpu', 'cuda'])}"
                              f" Use cpu, cuda or cuda:N") from None


def cmd_train(args: argparse.Namespace) -> int:
    from graphdl import distributed

    cfg = _train_config(args)
    _check_train_config(cfg)
    if cfg.nproc > 1:
        return distributed.launch(cfg, command_line=args.command_line)
    from graphdl.bench import format_table, run_config, save_records
    from graphdl.bench.runner import finished_seeds_kept

    joined = distributed.init_from_env(device=cfg.device)  # under torchrun: WORLD_SIZE > 1
    # the finished seeds so far go to <json>.partial; --json itself is replaced only when the run ends
    with finished_seeds_kept(cfg.json, cfg.seeds, args.command_line) as on_seed:
        try:
            record = run_config(cfg.dataset, cfg.model_overrides(), seeds=cfg.seeds, epochs=cfg.epochs,
                                root=cfg.root, progress=cfg.progress, device=cfg.device, log_path=cfg.log,
                                checkpoint_dir=cfg.checkpoint_dir, resume=cfg.resume, on_seed=on_seed)
            main_process = distributed.is_main_process()
        finally:
            if joined:
                distributed.cleanup()
        if main_process:
            print(format_table([record]))
            if cfg.json:  # the format of graphdl bench's files, so one reader serves both
                save_records(cfg.json, [record], command=args.command_line)
                print(f"wrote {cfg.json}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from graphdl.bench import run_suite
    from graphdl.bench.runner import check_suite_ran

    check_output_paths(json=args.json, plot=args.plot)
    records = run_suite(args.suite, seeds=args.seeds, epochs=args.epochs, root=args.root,  # prints its table
                        json_path=args.json, plot_path=args.plot, progress=args.progress)
    check_suite_ran(records, args.suite)
    return 0


class CommandParser(argparse.ArgumentParser):
    """argparse with graphdl's error format: one ``graphdl: error: ...`` line, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        hint = f" (see {self.prog} --help)"
        self.exit(2, f"graphdl: error: {' '.join(message.split())}{hint}\n")


def _json_object(text: str) -> dict[str, Any]:
    """``--loss-kwargs``: a JSON object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not JSON ({exc.msg}); write an object such as "
                                         f"'{{\"margin\": 0.5}}'") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"{text!r} is not a JSON object; write one such as '{{\"margin\": 0.5}}'")
    return value


PLUGIN_HELP = ("import this module (a name importable from here, or a .py file) first, for the plugins it "
               "registers (@graphdl.layers.register(...)); repeatable; also $GRAPHDL_PLUGINS")


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(prog="graphdl", description="Graph deep learning: plugins, training, benchmarks.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list registered plugins")
    p.add_argument("family", choices=FAMILIES)
    p.add_argument("pattern", nargs="?", default=None, help="wildcard filter, e.g. 'gat*'")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help=PLUGIN_HELP)
    p.set_defaults(func=cmd_list)

    S = argparse.SUPPRESS  # only flags given on the command line override a config file
    p = sub.add_parser("train", help="train a model on a dataset over several seeds", argument_default=S)
    p.add_argument("--config", default=None, help="YAML file with the same keys as these flags")
    p.add_argument("--dataset", help="dataset name (graphdl list datasets)")
    p.add_argument("--layer", help="layer name (graphdl list layers)")
    p.add_argument("--loss", help="loss name (graphdl list losses)")
    p.add_argument("--loss-kwargs", type=_json_object, metavar="JSON",
                   help="the loss's keyword arguments as a JSON object, e.g. '{\"label_smoothing\": 0.1}'")
    p.add_argument("--seeds", type=int, help="number of seeds (0..N-1)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--root", help="data root (default: $GRAPHDL_DATA, else a user cache folder)")
    p.add_argument("--json", help="write the result record(s) here")
    p.add_argument("--log", help="per-epoch metrics file (.csv or .json)")
    p.add_argument("--hidden-channels", "--hidden", dest="hidden_channels", type=int)
    p.add_argument("--num-layers", type=int)
    p.add_argument("--dropout", type=float)
    p.add_argument("--lr", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--heads", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--norm")
    p.add_argument("--jk")
    # --no-residual / --no-virtual-node turn off what a --config file turns on
    p.add_argument("--residual", action=argparse.BooleanOptionalAction)
    p.add_argument("--virtual-node", action=argparse.BooleanOptionalAction,
                   help="a virtual node joined to every node (default: the dataset's default model decides; "
                        "on for ogbg-mol* without --layer)")
    p.add_argument("--num-neighbors", type=int, nargs="+",
                   help="node datasets: train in mini-batches of --batch-size seed nodes (default 512), "
                        "sampling this many neighbours per layer (-1: all)")
    p.add_argument("--patience", type=int, help="stop when the monitored metric has not improved for this many "
                                                "epochs")
    p.add_argument("--monitor", help="the logged metric that selects the best epoch, e.g. val_loss (default: "
                                     "the validation split's metric)")
    p.add_argument("--device")
    p.add_argument("--checkpoint-dir", help="write a resumable checkpoint here every epoch (a folder an "
                                           "earlier run left is refused unless --resume)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --checkpoint-dir")
    p.add_argument("--nproc", type=int, help="processes on this machine (torch.distributed, gloo/NCCL)")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--plugin", action="append", metavar="MODULE", help=PLUGIN_HELP)
    p.set_defaults(func=cmd_train, config=None)

    p = sub.add_parser("bench", help="run a benchmark suite beside the published numbers",
                       epilog="One dataset/model: graphdl bench run DATASET MODEL ...; merge result files: "
                              "graphdl bench report FILE ... (see graphdl bench run --help)")
    p.add_argument("suite", help="suite name: quick, planetoid, ogbg-mol, ogbl-ddi or ogbn-arxiv")
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--root", default=None)
    p.add_argument("--json", default=None)
    p.add_argument("--plot", "--png", dest="plot", default=None, help="PNG of the learning curves")
    p.add_argument("--progress", action="store_true")
    p.set_defaults(func=cmd_bench)
    return parser


def _report(message: str) -> int:
    """One ``graphdl: error:`` line (left for the launcher in a distributed child); exit code 2."""
    message = " ".join(str(message).split()) or "unknown error"
    error_dir = os.environ.get("GRAPHDL_ERROR_DIR")
    if error_dir:  # a child of graphdl.distributed.launch: the parent prints it once
        from graphdl.io import atomic_write_text

        atomic_write_text(Path(error_dir) / f"rank{os.environ.get('RANK', '0')}.txt", message)
    else:
        print(f"graphdl: error: {message}", file=sys.stderr)
    return 2


def run_command(command: Callable[[], int]) -> int:
    """Run a parsed command: bad input (a GraphDLError or an unusable path) ends it with one
    ``graphdl: error:`` line and exit code 2, never a traceback; Ctrl-C exits with 130."""
    try:
        return command()
    except GraphDLError as exc:
        return _report(str(exc))
    except BrokenPipeError:  # graphdl list layers | head: the reader has all it wanted
        # stdout's buffer can no longer be flushed: point it at /dev/null so that the interpreter's exit is quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # unreadable or unwritable paths given by the user
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        return _report(f"{exc.strerror or exc}{':' + where if where else ''}")
    except KeyboardInterrupt:
        print("graphdl: interrupted", file=sys.stderr)
        return 130


def parse_arguments(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace | int:
    """Parse ``argv``; ``--help`` (0) or a usage error (2, already printed on one line) comes back as
    the exit code instead of a raised SystemExit."""
    try:
        return parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) > 1 and argv[0] == "bench" and argv[1] in BENCH_COMMANDS:
        from graphdl.bench.__main__ import main as bench_main

        return bench_main(argv[1:], prog="graphdl bench")
    args = parse_arguments(build_parser(), argv)
    if isinstance(args, int):
        return args
    # the launcher's children record the user's command line, not their own
    args.command_line = os.environ.get(COMMAND_LINE_ENV) or shlex.join(["graphdl", *argv])  # pastes back

    def command() -> int:
        import_plugins(getattr(args, "plugin", None) or ())
        return args.func(args)

    return run_command(command)


if __name__ == "__main__":
    sys.exit(main())
