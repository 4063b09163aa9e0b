"""The benchmark scripts that turn recorded runs into the README's figures."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True)


def _write_log(path: Path, val: list[float], test: list[float]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "train_loss", "val_hits@20", "test_hits@20"])
        for epoch, (v, t) in enumerate(zip(val, test)):
            writer.writerow([epoch, 1.0, v, t])


def test_summarize_epoch_log_selects_the_first_best_epoch(tmp_path: Path) -> None:
    log = tmp_path / "run.csv"
    #            epoch: 0    1    2    3    4    5    6    7    8    9
    _write_log(log, [0.1, 0.5, 0.3, 0.5, 0.4, 0.2, 0.2, 0.2, 0.2, 0.45],
               [0.0, 0.7, 0.0, 0.9, 0.6, 0.0, 0.0, 0.0, 0.0, 0.8])
    out = _run("summarize_epoch_log.py", str(log))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "epochs done: 10; best validation epoch 1: val 0.5000, test 0.7000"
    # evaluating every 5th epoch (1-based 5 and 10, i.e. rows 4 and 9), as OGB's ddi example does
    out = _run("summarize_epoch_log.py", str(log), "--eval-steps", "5")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == ("epochs done: 10; best validation epoch (among every 5th epoch) 9: "
                                          "val 0.4500, test 0.8000")


def test_summarize_epoch_log_rejects_a_bad_eval_step(tmp_path: Path) -> None:
    log = tmp_path / "run.csv"
    _write_log(log, [0.1, 0.2], [0.3, 0.4])
    out = _run("summarize_epoch_log.py", str(log), "--eval-steps", "5")
    assert out.returncode != 0
    assert "no epoch is a multiple of --eval-steps 5 yet" in out.stderr
    out = _run("summarize_epoch_log.py", str(log), "--eval-steps", "0")
    assert "--eval-steps must be >= 1, got 0" in out.stderr


def test_summarize_epoch_log_rejects_missing_epochs(tmp_path: Path) -> None:
    """The selection indexes rows by epoch: a log with a gap would report the wrong epoch's test value."""
    log = tmp_path / "run.csv"
    _write_log(log, [0.1, 0.2, 0.3], [0.3, 0.4, 0.5])
    rows = log.read_text().splitlines()
    log.write_text("\n".join([rows[0], rows[1], rows[3]]) + "\n")  # epochs 0 and 2
    out = _run("summarize_epoch_log.py", str(log))
    assert out.returncode != 0 and f"{log}: epochs are not 0, 1, 2, ... in order" in out.stderr
    # NaN validation values (a diverged epoch) are never selected.
    _write_log(log, [0.1, float("nan"), 0.05], [0.3, 0.9, 0.5])
    assert "best validation epoch 0: val 0.1000, test 0.3000" in _run("summarize_epoch_log.py", str(log)).stdout


@pytest.fixture()
def compare_module():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import compare_ogb_runs

        yield compare_ogb_runs
    finally:
        sys.path.remove(str(BENCHMARKS))
        sys.modules.pop("compare_ogb_runs", None)


def test_compare_ogb_runs_pools_seeds_and_averages_curves(tmp_path: Path, monkeypatch, compare_module) -> None:
    monkeypatch.setattr(compare_module, "RESULTS", tmp_path)
    record = {"seeds": [0, 1], "runs": [0.7, 0.6], "valid_runs": [0.9, 0.8], "best_epochs": [2, 1],
              "curves": {"test": [[0.1, 0.5, 0.7], [0.2, 0.4, 0.6]]}}
    (tmp_path / "ours_a.json").write_text(json.dumps({"command": "bench run a", "records": [record]}))
    (tmp_path / "ours_b.json").write_text(json.dumps({"records": [{"seeds": [2], "runs": [0.8], "best_epochs": [0]}]}))
    ours = compare_module._ours("ours_*.json", from_epoch=2)
    assert ours.runs == {0: 0.7, 1: 0.6, 2: 0.8} and ours.best_epochs == {0: 2, 1: 1, 2: 0}
    assert ours.valid == {0: 0.9, 1: 0.8}  # seed 2 kept no validation score
    assert ours.averaged == pytest.approx({0: 0.6, 1: 0.5})  # nor a curve
    (tmp_path / "official_a.json").write_text(json.dumps({"note": "stopped early", "runs": [
        {"seed": 0, "test": 0.75, "valid": 0.85, "best_epoch": 2, "test_curve": [0.3, 0.6, 0.9]},
        {"seed": 1, "test": 0.65, "valid": 0.95, "best_epoch": 0}]}))
    official = compare_module._official("official_*.json", from_epoch=3)
    assert official.runs == {0: 0.75, 1: 0.65} and official.best_epochs == {0: 2, 1: 0}
    assert official.valid == {0: 0.85, 1: 0.95}
    assert official.averaged == pytest.approx({0: 0.9})
    assert ours.sources == [("ours_a.json", [0, 1], "bench run a", ""), ("ours_b.json", [2], "", "")]
    assert official.sources == [("official_a.json", [0, 1], "", "stopped early")]
    assert compare_module._sources("x/y", ours, official) == [
        "- x/y:",
        "  - graphdl, seeds 0-1, `ours_a.json`: `bench run a`",
        "  - graphdl, seed 2, `ours_b.json` (no command recorded)",
        "  - official loop, seeds 0-1, `official_a.json` (no command recorded) (stopped early)"]


def test_compare_ogb_runs_correlates_validation_and_test_curves(tmp_path: Path, monkeypatch, compare_module) -> None:
    monkeypatch.setattr(compare_module, "RESULTS", tmp_path)
    val, test = [0.9, 0.1, 0.2, 0.4, 0.3], [0.0, 0.5, 0.7, 0.6, 0.9]
    record = {"seeds": [4], "runs": [0.6], "best_epochs": [0], "curves": {"val": [val], "test": [test]}}
    (tmp_path / "ours.json").write_text(json.dumps({"records": [record]}))
    (tmp_path / "official.json").write_text(json.dumps({"runs": [
        {"seed": 4, "test": 0.6, "valid": 0.7, "best_epoch": 0, "valid_curve": val, "test_curve": [-t for t in test]},
        {"seed": 5, "test": 0.6, "valid": 0.7, "best_epoch": 0, "test_curve": test}]}))  # no validation curve: no r
    expected = np.corrcoef(val[1:], test[1:])[0, 1]
    assert compare_module._ours("ours.json", from_epoch=2).correlations == pytest.approx({4: expected})
    assert compare_module._official("official.json", from_epoch=2).correlations == pytest.approx({4: -expected})


def test_compare_ogb_runs_rows_count_seeds_reaching_the_script(compare_module) -> None:
    ours = compare_module.Side(runs={0: 0.78, 1: 0.70, 2: 0.7733}, best_epochs={0: 10, 1: 20, 2: 30},
                               valid={0: 0.8, 1: 0.8, 2: 0.8})
    official = compare_module.Side(runs={0: 0.77, 1: 0.79}, best_epochs={0: 40, 1: 50},
                                   valid={0: 0.8})  # one seed is not enough for a validation row
    rows = compare_module._rows("ogbg-molbace/gin-virtual", ours, official, from_epoch=21)
    welch = stats.ttest_ind([0.78, 0.70, 0.7733], [0.77, 0.79], equal_var=False).pvalue
    fisher = stats.fisher_exact([[2, 1], [1, 1]]).pvalue
    assert rows == [
        f"| ogbg-molbace/gin-virtual | test at the best validation epoch | 0.7511 ± 0.0444 (3 seeds) | "
        f"0.7800 ± 0.0141 (2 seeds) | 0.7733 (1 run) | {welch:.2f} (Welch) |",
        f"| ogbg-molbace/gin-virtual | seeds at or above 0.7733 | 2 of 3 (67%) | 1 of 2 (50%) | - | "
        f"{fisher:.2f} (Fisher) |",
        "| ogbg-molbace/gin-virtual | best validation epoch (0-based) | 20.0 ± 10.0 (3 seeds) | "
        f"45.0 ± 7.1 (2 seeds) | - | {stats.ttest_ind([10, 20, 30], [40, 50], equal_var=False).pvalue:.2f} (Welch) |"]


def test_compare_ogb_runs_names_seed_ranges(compare_module) -> None:
    assert compare_module._seed_ranges([8, 0, 1, 2, 5, 7]) == "0-2, 5, 7-8"
    assert compare_module._seed_ranges([4]) == "4"


def test_compare_ogb_runs_rejects_a_seed_with_two_results(tmp_path: Path, monkeypatch, compare_module) -> None:
    monkeypatch.setattr(compare_module, "RESULTS", tmp_path)
    (tmp_path / "official_a.json").write_text(json.dumps({"runs": [{"seed": 3, "test": 0.75, "valid": 0.8, "best_epoch": 5}]}))
    (tmp_path / "official_b.json").write_text(json.dumps({"runs": [{"seed": 3, "test": 0.70, "valid": 0.8, "best_epoch": 5}]}))
    with pytest.raises(SystemExit, match=r"seed 3 has two different results \(0.75 and 0.7, the second in .*official_b.json\)"):
        compare_module._official("official_*.json", from_epoch=1)


def _ddi_record(path: Path, model: str, seed: int, val: list[float], test: list[float], run: float | None = None,
                loss: list[float] | None = None) -> str:
    best = max(range(len(val)), key=lambda e: val[e])
    record = {"dataset": "ogbl-ddi", "model": model, "seeds": [seed], "runs": [test[best] if run is None else run],
              "reference": 0.539, "reference_std": 0.0474, "seconds_per_epoch": 1.5,
              "curves": {"val": [val], "test": [test], "train_loss": [loss or [1.0] * len(val)]}}
    path.write_text(json.dumps({"environment": {"cuda": False}, "records": [record]}))
    return str(path)


def test_summarize_ddi_seeds_selects_per_seed_and_averages(tmp_path: Path) -> None:
    #     epoch:  0    1    2    3    4    5    6    7    8    9
    val_a = [0.1, 0.9, 0.3, 0.5, 0.4, 0.2, 0.2, 0.2, 0.2, 0.45]
    test_a = [0.0, 0.7, 0.0, 0.9, 0.6, 0.0, 0.0, 0.0, 0.0, 0.8]
    val_b = [0.1, 0.2, 0.3, 0.5, 0.6, 0.2, 0.2, 0.2, 0.2, 0.1]
    test_b = [0.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.3]
    files = [_ddi_record(tmp_path / "a.json", "sage", 1, val_a, test_a),
             _ddi_record(tmp_path / "b.json", "sage", 2, val_b, test_b)]
    out = _run("summarize_ddi_seeds.py", *files, "--md", str(tmp_path / "t.md"))
    assert out.returncode == 0, out.stderr
    # every epoch: tests 0.7 and 0.5; every 5th epoch (rows 4 and 9): 0.8 (val 0.45 > 0.4) and 0.5
    assert "| sage | 2 (1, 2) | 0.6000 ± 0.1414 | 0.6500 ± 0.2121 | 0.5390 ± 0.0474 |" in out.stdout
    assert "| sage | 1 | 10 | 1 (0.9000, 0.7000) | 9 (0.4500, 0.8000) | 1.50 | CPU | a.json |" in out.stdout
    assert (tmp_path / "t.md").read_text() == out.stdout


def test_summarize_ddi_seeds_rejects_inconsistent_inputs(tmp_path: Path) -> None:
    val, test = [0.1] * 4 + [0.2] * 6, [0.3] * 10
    bad = _ddi_record(tmp_path / "bad.json", "gcn", 3, val, test, run=0.9)
    out = _run("summarize_ddi_seeds.py", bad)
    assert "bad.json: seed 3's curve selects test 0.3 at epoch 4, the record says 0.9" in out.stderr
    one = _ddi_record(tmp_path / "one.json", "gcn", 3, val, test)
    two = _ddi_record(tmp_path / "two.json", "gcn", 3, val, test)
    out = _run("summarize_ddi_seeds.py", one, two)
    assert "gcn: seed listed twice in the inputs ([3, 3])" in out.stderr


def test_compare_ddi_early_epochs_places_new_seeds_among_earlier_ones(tmp_path: Path) -> None:
    new = _ddi_record(tmp_path / "new.json", "sage", 1, [0.1, 0.5, 0.3], [0.0] * 3, loss=[0.9, 0.6, 0.4])
    old = [_ddi_record(tmp_path / f"old{i}.json", "sage", i, [0.2, v, 0.1, 0.9], [0.0] * 4, loss=[1.0, 0.7, l, 0.1])
           for i, (v, l) in enumerate([(0.4, 0.5), (0.6, 0.3)])]
    out = _run("compare_ddi_early_epochs.py", "--epoch", "2", "--new", new, *old)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[2:] == [  # epoch 3 of the earlier runs lies past --epoch: not counted
        "| train loss, epoch 2 | 0.4000 | 0.4000 ± 0.1414 (0.3000 – 0.5000) |",
        "| val hits@20, epoch 2 | 0.3000 | 0.1000 ± 0.0000 (0.1000 – 0.1000) |",
        "| best val hits@20, epochs 0-2 | 0.5000 | 0.5000 ± 0.1414 (0.4000 – 0.6000) |"]
    out = _run("compare_ddi_early_epochs.py", "--epoch", "3", "--new", new, *old)
    assert out.returncode != 0 and "every curve needs more than 3 epochs" in out.stderr
