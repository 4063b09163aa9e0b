"""Benchmark scripts: what they record matches what they ran, and bad flags are named before any work."""

from __future__ import annotations

import ast
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
DATA = ROOT.parent / "shared" / "data"


@pytest.fixture()
def bench_module():
    """Import a benchmark script as a module (its sibling imports resolve from benchmarks/)."""
    sys.path.insert(0, str(BENCHMARKS))
    loaded: list[str] = []

    def load(name: str):
        import importlib

        loaded.append(name)
        return importlib.import_module(name)

    try:
        yield load
    finally:
        sys.path.remove(str(BENCHMARKS))
        for name in loaded:
            sys.modules.pop(name, None)


def test_contrastive_scores_the_last_epoch_not_the_best_validation_one(bench_module) -> None:
    """The objective trains without labels: the Trainer's default checkpoint restored the epoch of best
    validation k-NN accuracy, so the 'last epoch' figures were selected with the labels."""
    if not (DATA / "planetoid" / "Cora").is_dir():
        pytest.fail(f"Cora is expected under {DATA}")
    import graphdl
    from graphdl.train import ModelCheckpoint, Trainer

    bench = bench_module("bench_contrastive_cora")
    data = graphdl.datasets.load("cora", root=str(DATA))[0]
    kwargs, lr, wd = bench.CONFIGS["dgi"]
    reference = Trainer(bench.encoder(0), graphdl.losses.create("dgi", **kwargs), "contrastive", lr=lr,
                        weight_decay=wd, epochs=4, seed=0, progress=False,
                        callbacks=[ModelCheckpoint(restore_best=False)]).fit(data)
    assert reference.best_epoch != 3  # else the test could not tell the two apart
    score, seconds = bench.fit_and_score(data, "dgi", 0, 4)
    assert score == reference.history[-1]["test_knn_acc"] and seconds > 0


def _docstring_command(script: str) -> list[str]:
    """The usage command in a script's docstring, continuation lines joined, split as a shell would."""
    doc = ast.get_docstring(ast.parse((BENCHMARKS / script).read_text()))
    lines = doc.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(f"python benchmarks/{script}"))
    text = ""
    for line in lines[start:]:
        text += " " + line.strip().rstrip("\\")
        if not line.rstrip().endswith("\\"):
            break
    return shlex.split(text)[2:]  # after "python benchmarks/<script>"


def test_summarize_ddi_seeds_docstring_command_reproduces_the_recorded_table(bench_module) -> None:
    """The documented command left out GraphSAGE's seed 0 (its own record), which the recorded table holds."""
    args = _docstring_command("summarize_ddi_seeds.py")
    md = args.index("--md")
    inputs = [str(p) for a in args[:md] for p in sorted(ROOT.glob(a))]
    summarize = bench_module("summarize_ddi_seeds")
    assert summarize.report(summarize.load_seeds(inputs)) + "\n" == (ROOT / args[md + 1]).read_text()


def _main_error(module, argv: list[str], monkeypatch, capsys) -> str:
    """Run ``module.main()`` with ``argv``; it must stop with argparse's usage error. Returns stderr."""
    monkeypatch.setattr(sys, "argv", [f"{module.__name__}.py", *argv])
    with pytest.raises(SystemExit) as stop:
        module.main()
    assert stop.value.code == 2
    return capsys.readouterr().err


def test_losses_records_the_command_it_ran_and_names_unknown_losses(tmp_path: Path, monkeypatch, capsys,
                                                                    bench_module) -> None:
    bench = bench_module("bench_losses")
    spawned: list[tuple] = []

    def fake_spawn(mode, name, batch, impls, args):  # no subprocesses: the table's frame is under test
        spawned.append((mode, name, batch))
        if mode == "time":
            return {impl: {"value": 1.0, "ms": 2.0, "reps": 3} for impl in impls}
        return {"value": 1.0, "peak_mb": 4.0}

    monkeypatch.setattr(bench, "_spawn", fake_spawn)
    out = tmp_path / "losses.md"
    assert bench.main(["--batches", "16", "--only", "supcon", "triplet (hard)", "--out", str(out)]) == 0
    assert (f"Command: `python benchmarks/bench_losses.py --batches 16 --only supcon 'triplet (hard)' --out {out}`"
            in out.read_text())
    spawned.clear()
    monkeypatch.setattr(sys, "argv", ["bench_losses.py"])
    with pytest.raises(SystemExit) as stop:
        bench.main(["--only", "supcon", "tripplet", "--out", str(tmp_path / "x.md")])
    assert stop.value.code == 2 and spawned == [] and not (tmp_path / "x.md").exists()  # refused before any case
    assert "--only: unknown loss(es) 'tripplet'; choose among 'contrastive', 'triplet (all)'," in capsys.readouterr().err


def test_anomaly_refuses_an_unknown_part(tmp_path: Path, monkeypatch, capsys, bench_module) -> None:
    """A misspelt part was skipped: the report came out without that table, exit status 0."""
    bench = bench_module("bench_anomaly_cora")
    err = _main_error(bench, ["--parts", "cora,digit", "--seeds", "1", "--epochs", "1", "--root",
                              str(tmp_path / "none"), "--out", str(tmp_path / "a.md"), "--log",
                              str(tmp_path / "a.jsonl")], monkeypatch, capsys)
    assert "--parts: unknown part(s) 'digit'; give a comma-separated list of cora, digits, series" in err
    assert not (tmp_path / "a.md").exists()


@pytest.mark.parametrize("flag, value, known", [("--models", "GAE,vgae", "GAE, VGAE, ARGA"),
                                                ("--features", "normalised", "raw, normalized")])
def test_vgae_refuses_unknown_models_and_features(tmp_path: Path, monkeypatch, capsys, bench_module, flag: str,
                                                  value: str, known: str) -> None:
    """A misspelt name was a KeyError once Cora had been loaded."""
    bench = bench_module("bench_vgae_cora")
    err = _main_error(bench, [flag, value, "--seeds", "1", "--epochs", "1", "--root", str(tmp_path / "none"),
                              "--out", str(tmp_path / "v.md"), "--log", str(tmp_path / "v.jsonl")],
                      monkeypatch, capsys)
    assert f"{flag}: unknown name(s) '{value.split(',')[-1]}'; give a comma-separated list of {known}" in err


def test_forecast_refuses_zero_seeds_before_training() -> None:
    """--seeds 0 trained nothing and the summary then failed with a NameError."""
    import subprocess

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_forecast.py"
    done = subprocess.run([sys.executable, str(script), "--seeds", "0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "error: --seeds, --epochs and --threads must be >= 1" in done.stderr
