"""The README, docs/ and the package docstrings say what the code does: every command-line flag,
subcommand, registered name and count they quote exists, and the statements checked here match.

(``tests/test_readme.py`` runs the README's Python examples; ``tests/test_notebooks.py`` the notebooks.)
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data

import graphdl
import graphdl.bench
import graphdl.cli
from graphdl.bench.__main__ import build_parser as build_bench_parser
from graphdl.bench.suites import SUITES, default_config, suite_runs
from graphdl.errors import ConfigError
from graphdl.losses.base import KINDS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = {p.name: p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md"))}
TEXTS = {"README.md": README, **{f"docs/{name}": text for name, text in DOCS.items()}}


# ---------------------------------------------------------------------------- command lines
def _prose(text: str) -> str:
    """``text`` without its fenced code blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return set(parser._option_string_actions)


CLI = _subparsers(graphdl.cli.build_parser())
BENCH = _subparsers(build_bench_parser())


def _command_lines(text: str) -> list[str]:
    """Shell lines of the fenced code blocks (comments cut, continuation lines joined) and inline code spans."""
    lines: list[str] = []
    for lang, block in re.findall(r"^```(\w*)\n(.*?)^```", text, re.S | re.M):
        if lang not in ("", "bash", "sh"):
            continue
        for raw in block.splitlines():
            line = re.sub(r"(^|\s)#.*", "", raw).rstrip().rstrip("\\").rstrip()
            if not line.strip():
                continue
            if raw[:1].isspace() and lines:  # an indented line continues the command above it
                lines[-1] += " " + line.strip()
            else:
                lines.append(line.strip())
    lines += re.findall(r"`([^`\n]+)`", _prose(text))
    return lines


def _graphdl_commands(text: str) -> list[tuple[str, list[str]]]:
    """``(parser name, arguments)`` of every ``graphdl ...`` / ``python -m graphdl.bench ...`` command quoted."""
    found = []
    for line in _command_lines(text):
        for match in re.finditer(r"(?:(?<![\w.-])graphdl|-m graphdl|python -m graphdl\.bench)\s+(list|train|bench)?\s*"
                                 r"(run|report|suite)?\b([^;&]*)", line):  # `a|b|c`: alternatives
            group, sub, rest = match.groups()
            if match.group(0).startswith("python -m graphdl.bench"):
                group, sub = "bench", sub or "suite"
            if group is None:
                continue
            if group == "bench" and sub:
                found.append((f"bench {sub}", rest.split()))
            else:
                found.append((group, rest.split()))
    return found


def _parser(name: str) -> argparse.ArgumentParser:
    return BENCH[name.split()[1]] if " " in name else CLI[name]


@pytest.mark.parametrize("source", list(TEXTS))
def test_every_quoted_command_uses_flags_its_parser_takes(source: str) -> None:
    commands = _graphdl_commands(TEXTS[source])
    assert commands or source not in ("README.md", "docs/distributed.md")
    for name, args in commands:
        options = _options(_parser(name))
        flags = {re.match(r"--[\w-]+", a.lstrip("[")).group(0) for a in args if a.lstrip("[").startswith("--")}
        unknown = sorted(flags - options)
        assert not unknown, f"{source}: `{name}` has no flag {unknown} (it takes {sorted(options)})"


def test_every_flag_quoted_alone_exists() -> None:
    """``--set KEY=null``, ``--epochs``, ``--jk last`` ... in the prose name a flag of some command."""
    options = set().union(*(_options(p) for p in (*CLI.values(), *BENCH.values())))
    options |= {"--nproc-per-node", "--nnodes", "--node-rank", "--rdzv-backend", "--rdzv-endpoint", "--rdzv-id",
                "--master-addr", "--master-port", "--standalone"}  # torchrun's own
    for source, text in TEXTS.items():
        for span, wildcard in re.findall(r"`(--[\w-]+)(\*?)[^`]*`", _prose(text)):
            if wildcard:  # `--rdzv-*`
                assert any(o.startswith(span) for o in options), f"{source}: no flag matches {span}*"
                continue
            assert span in options, f"{source} names a flag {span} that no graphdl command takes"


def test_quoted_subcommands_families_suites_and_models_exist() -> None:
    families = set(CLI["list"]._actions[1].choices)
    for name, args in _graphdl_commands(README) + _graphdl_commands(DOCS["distributed.md"]):
        if name == "list" and args:
            assert set(args[0].split("|")) <= families, args
        if name == "bench suite" and args and not args[0].startswith(("-", "[")):
            for suite in args[0].split("|"):
                assert suite in SUITES, f"graphdl bench {suite}: no such suite ({', '.join(SUITES)})"
        if name == "bench run" and len(args) >= 2 and args[0].islower() and not args[1].startswith("-"):
            default_config(args[0], args[1])  # raises for a model label the dataset has no configuration for
        if name == "train" and "--dataset" in args and args[args.index("--dataset") + 1].islower():
            assert args[args.index("--dataset") + 1] in graphdl.datasets


def test_bench_docstring_and_readme_describe_the_quick_suite() -> None:
    """Both name each Cora entry's seed count and the OGB run's epochs (GAT runs 5 seeds, not 10)."""
    for text in (README, graphdl.bench.__doc__):
        for run in suite_runs("quick"):
            if run.dataset == "cora":
                assert f"{run.model.upper()} x {run.seeds} seeds" in " ".join(text.split())
            else:
                assert f"a {run.epochs}-epoch OGB run" in " ".join(text.split())


# ---------------------------------------------------------------------------- registered names
def _backticked(text: str) -> set[str]:
    return set(re.findall(r"`([a-z][a-z0-9_]*)`", text))


def _bullet(start: str) -> str:
    """The README bullet that begins with ``start`` (a regular expression), up to the next bullet or paragraph."""
    return re.search(rf"^- {start}(.*?)(?=^- |^\S)", README, re.S | re.M).group(1)


def test_readme_lists_every_layer_and_model() -> None:
    layers = _backticked(_bullet("Layers:").split("`in_channels=-1`")[0])  # the list, not the options after it
    assert set(graphdl.layers.list()) <= layers
    flags = {key for e in graphdl.layers.entries() for key in e.meta}
    assert layers - set(graphdl.layers.list()) <= flags  # the other words are capability flags
    assert _backticked(_bullet("Models:")) == set(graphdl.models.list())


def test_readme_lists_every_loss_and_task_and_kind() -> None:
    named = _backticked(re.search(r"^Families: (.*?)Distances", README, re.S | re.M).group(1))
    assert all(name in graphdl.losses for name in named), named
    assert {e.name for e in graphdl.losses.entries()} <= named
    kinds = re.search(r"A loss's kind is one of (.*?);", README, re.S).group(1)
    assert _backticked(kinds) == set(KINDS) >= {e.meta["kind"] for e in graphdl.losses.entries()}
    assert set(graphdl.train.TASKS.list()) <= _backticked(_bullet(r"`graphdl\.Trainer\(model, loss, task, \.\.\.\)`"))


def test_datasets_doc_counts_match_the_registry() -> None:
    for prefix, count in re.findall(r"\| `(ogb[gln])-\*` \((\d+)\)", DOCS["datasets.md"]):
        assert len(graphdl.datasets.list(f"{prefix}-*")) == int(count), prefix
    assert re.findall(r"\| `(ogb[gln])-\*`", DOCS["datasets.md"]) == ["ogbg", "ogbl", "ogbn"]


def test_layers_docstring_names_every_graph_flag() -> None:
    """Each ``graph=`` value an entry carries is explained (dynamic_edgeconv's ``"knn"`` was missing)."""
    for entry in graphdl.layers.entries():
        if "graph" in entry.meta:
            assert f'``"{entry.meta["graph"]}"``' in graphdl.layers.__doc__, entry.name


# ---------------------------------------------------------------------------- notebooks
def test_notebook_comments_that_an_import_registers_something_are_true() -> None:
    """A notebook line ``import X  # registers ...`` would mean that names are missing without it; with
    ``import graphdl`` alone every built-in is registered, so such a comment misleads."""
    claims = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            for line in "".join(cell["source"]).splitlines():
                if re.search(r"import .*#.*\bregisters?\b", line) and "`import graphdl` registers" not in line:
                    claims.append(f"{path.name}: {line}")
    if claims:  # what a bare `import graphdl` registers, in a fresh process
        code = ("import json, graphdl; print(json.dumps(graphdl.layers.list() + graphdl.models.list() "
                "+ graphdl.train.TASKS.list()))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
        registered = set(json.loads(out.stdout.strip().splitlines()[-1]))
        for claim in claims:
            names = set(re.findall(r"[a-z][a-z0-9_]+", claim.split("#", 1)[1])) & registered
            assert not names, f"{claim}: {sorted(names)} are registered by `import graphdl` already"


# ---------------------------------------------------------------------------- resume
def test_distributed_doc_names_the_scheduler_among_the_refused_resume_changes(tmp_path: Path) -> None:
    """A resume with another StepLR gamma is refused (the saved schedule would win); the doc says so."""
    from graphdl.train.resume import fit_with_checkpoints

    gen = torch.Generator().manual_seed(0)
    data = Data(x=torch.randn(12, 4, generator=gen), edge_index=torch.randint(0, 12, (2, 30), generator=gen),
                y=torch.randint(0, 3, (12,), generator=gen))
    data.train_mask, data.val_mask, data.test_mask = (torch.arange(12) // 4 == i for i in range(3))

    def trainer(gamma: float, epochs: int) -> graphdl.Trainer:
        model = graphdl.models.create("gnn", layer="gcn", in_channels=4, hidden_channels=8, out_channels=3,
                                      num_layers=2)
        return graphdl.Trainer(model, "cross_entropy", "node", epochs=epochs, progress=False, seed=0,
                               scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, 1, gamma=gamma))

    fit_with_checkpoints(trainer(0.5, 1), data, checkpoint_dir=tmp_path, seed=0)
    with pytest.raises(ConfigError, match=r"gamma 0\.5 -> 0\.9"):
        fit_with_checkpoints(trainer(0.9, 2), data, checkpoint_dir=tmp_path, resume=True, seed=0)
    doc = " ".join(DOCS["distributed.md"].split())
    refused = re.search(r"is refused before any seed trains, and another (.*?) when a seed's `last.pt` is loaded", doc)
    assert refused and "scheduler" in refused.group(1)
    last_pt = re.search(r"DIR/seed_<seed>/last.pt(.*?)DIR/seed_<seed>/best.pt", doc).group(1)
    state = trainer(0.5, 1).state_dict()
    for part in ("loss", "task"):  # saved too (ArcFace's centres, ARGA's discriminator optimiser)
        assert part in state and part in last_pt, part
