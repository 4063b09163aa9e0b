"""Audit of graphdl.bench's write paths and checks and of the OGB comparison script: each test failed
before its fix."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import graphdl.bench as bench
import graphdl.bench.runner as runner
from graphdl.errors import ConfigError

from test_benchmark_scripts import _run, compare_module  # noqa: F401 (compare_module: a fixture)
from test_wave24_bench_seeds import _config_to_train, _fake_record


# ---------------------------------------------------------------------------- compare_ogb_runs.py
def _mol_record(dataset: str, model: str, seeds: list[int], runs: list[float], **changes: Any) -> dict[str, Any]:
    record = {"dataset": dataset, "model": model, "seeds": seeds, "runs": runs,
              "best_epochs": [1 + 2 * i for i in range(len(seeds))],
              "config": {"model": model, "epochs": 100}, "status": "ok"}
    return {**record, **changes}


def _compare(compare_module, monkeypatch, results: Path, mol_files: dict[str, list[dict]]) -> None:
    """compare_ogb_runs.py's table over ``results``: graphdl files as given, two official-loop seeds per case."""
    monkeypatch.setattr(compare_module, "RESULTS", results)
    for name, records in mol_files.items():
        (results / name).write_text(json.dumps({"records": records}))
    for case, name in (("ogbg-molbbbp/gcn", "molbbbp_gcn"), ("ogbg-molbace/gin-virtual", "molbace_gin-virtual")):
        (results / f"ogb_reference_{name}_a.json").write_text(json.dumps({"case": case, "runs": [
            {"seed": s, "test": 0.7 + s / 100, "valid": 0.9 - s / 50, "best_epoch": 3 + s} for s in (0, 1)]}))
    monkeypatch.setattr(sys, "argv", ["compare_ogb_runs.py"])
    compare_module.main()


def test_compare_ogb_runs_takes_the_cases_records_of_a_file_with_several(tmp_path: Path, monkeypatch, capsys,
                                                                          compare_module) -> None:
    """A suite's file holds every dataset/model: the case's figures were those of its first record."""
    bace = [_mol_record("ogbg-molbace", "gin-virtual", [0, 1], [0.75, 0.77])]
    suite = [_mol_record("ogbg-molbbbp", "gin-virtual", [0, 1], [0.1, 0.2]),
             _mol_record("ogbg-molbbbp", "gcn", [0, 1], [0.7, 0.6])]
    _compare(compare_module, monkeypatch, tmp_path, {"ogb_molbbbp_gcn_suite.json": suite,
                                                     "ogb_molbace_gin-virtual_a.json": bace})
    rows = [line for line in capsys.readouterr().out.splitlines() if "| test at the best validation epoch |" in line]
    assert rows[0].startswith(f"| ogbg-molbbbp/gcn | test at the best validation epoch | 0.6500 ± "
                              f"{np.std([0.7, 0.6], ddof=1):.4f} (2 seeds) |")
    ours = compare_module._ours(compare_module.CASES["ogbg-molbbbp/gcn"][0], 1, "ogbg-molbbbp/gcn")
    assert ours.runs == {0: 0.7, 1: 0.6} and [(s.file, s.seeds) for s in ours.sources] == [
        ("ogb_molbbbp_gcn_suite.json", [0, 1])]


def test_compare_ogb_runs_refuses_a_file_without_the_case_and_mixed_configurations(
        tmp_path: Path, monkeypatch, compare_module) -> None:
    """A file of another case that the case's pattern matched was read as the case's."""
    bace = [_mol_record("ogbg-molbace", "gin-virtual", [0, 1], [0.75, 0.77])]
    with pytest.raises(SystemExit, match=r"ogb_molbbbp_gcn_x.json holds no finished ogbg-molbbbp/gcn record "
                                         r"\(it holds ogbg-molbace/gin-virtual \(ok\)\)"):
        _compare(compare_module, monkeypatch, tmp_path, {"ogb_molbbbp_gcn_x.json": bace,
                                                         "ogb_molbace_gin-virtual_a.json": bace})
    (tmp_path / "ogb_molbbbp_gcn_x.json").write_text(json.dumps({"records": [
        _mol_record("ogbg-molbbbp", "gcn", [0], [0.7]),
        _mol_record("ogbg-molbbbp", "gcn", [1], [0.6], config={"model": "gcn", "epochs": 100, "lr": 0.01})]}))
    with pytest.raises(SystemExit, match="have different configurations"):
        compare_module._ours("ogb_molbbbp_gcn_*.json", 1, "ogbg-molbbbp/gcn")
    # without a case, a file of several records is refused rather than read as its first
    with pytest.raises(SystemExit, match="holds 2 records; name the case"):
        compare_module._ours("ogb_molbbbp_gcn_*.json", 1)
    # gcn's patterns leave gcn-virtual's files out
    (tmp_path / "ogb_molbbbp_gcn_x.json").unlink()
    (tmp_path / "ogb_molbbbp_gcn-virtual.json").write_text(json.dumps(
        {"records": [_mol_record("ogbg-molbbbp", "gcn-virtual", [0], [0.1])]}))
    (tmp_path / "ogb_molbbbp_gcn.json").write_text(json.dumps(
        {"records": [_mol_record("ogbg-molbbbp", "gcn", [0], [0.7])]}))
    assert compare_module._ours(compare_module.CASES["ogbg-molbbbp/gcn"][0], 1, "ogbg-molbbbp/gcn").runs == {0: 0.7}
    (tmp_path / "ogb_reference_molbbbp_gcn_z.json").write_text(json.dumps(
        {"case": "ogbg-molbbbp/gcn-virtual", "runs": [{"seed": 0, "test": 0.1, "valid": 0.2, "best_epoch": 3}]}))
    with pytest.raises(SystemExit, match="holds official-loop runs of ogbg-molbbbp/gcn-virtual, not ogbg-molbbbp/gcn"):
        compare_module._official("ogb_reference_molbbbp_gcn_*.json", 1, "ogbg-molbbbp/gcn")


# ---------------------------------------------------------------------------- epochs: one check
@pytest.mark.parametrize("epochs", [0, -3, 2.5, "5", True])
def test_epochs_as_argument_and_as_configuration_key_get_the_same_error(epochs: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as argument:
        bench.run_config("cora", "gcn", epochs=epochs, root=tmp_path)
    with pytest.raises(ConfigError) as key:
        bench.run_config("cora", {"model": "gcn", "epochs": epochs}, root=tmp_path)
    assert str(argument.value) == str(key.value)
    assert str(key.value).startswith("epochs must be ")


def test_numpy_epochs_in_a_configuration_are_an_int(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """run_config(epochs=np.int64(3)) ran; the same value as the configuration key was refused."""
    seen = _config_to_train(monkeypatch, lambda: bench.run_config("cora", {"model": "gcn", "epochs": np.int64(3)},
                                                                root=tmp_path))
    assert seen["epochs"] == 3 and type(seen["epochs"]) is int  # written to JSON records as it is


# ---------------------------------------------------------------------------- run_suite's results file
def test_a_suite_that_stops_halfway_keeps_the_earlier_results_file(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The first finished entry replaced an existing --json file, so a suite that then failed had destroyed the
    earlier results and left one record in their place."""
    earlier = {"suite": "planetoid", "records": [_fake_record("cora", "gcn") | {"mean": 0.1234}]}
    results = tmp_path / "results.json"
    results.write_text(json.dumps(earlier))
    calls: list[str] = []

    def run_config(dataset: str, model: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(f"{dataset}/{model}")
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C, or any error, in the second entry
        return _fake_record(dataset, model)

    monkeypatch.setattr(runner, "run_config", run_config)
    lines: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        bench.run_suite("planetoid", seeds=1, epochs=1, root=tmp_path, json_path=results, log=lines.append)
    assert json.loads(results.read_text()) == earlier
    partial = tmp_path / "results.json.partial"  # the finished entry, readable
    assert [r["model"] for r in json.loads(partial.read_text())["records"]] == ["gcn"]
    assert lines[-1] == f"[planetoid] stopped after 1 of 6 entries; the finished ones' records: {partial}"
    # a suite that finishes replaces the file and leaves no partial one
    monkeypatch.setattr(runner, "run_config", _fake_record)
    bench.run_suite("planetoid", seeds=1, epochs=1, root=tmp_path, json_path=results, log=lines.append,
                    select="cora/*")
    assert [r["model"] for r in json.loads(results.read_text())["records"]] == ["gcn", "gat"]
    assert not partial.exists() and (tmp_path / "results.png").exists()


# ---------------------------------------------------------------------------- compare_ddi_early_epochs.py
def _ddi_file(path: Path, model: str, seed: int, val: list[float]) -> str:
    record = {"dataset": "ogbl-ddi", "model": model, "seeds": [seed],
              "curves": {"val": [val], "train_loss": [[1.0 - v for v in val]]}}
    path.write_text(json.dumps({"records": [record]}))
    return str(path)


def test_compare_ddi_early_epochs_refuses_seeds_of_two_models(tmp_path: Path) -> None:
    """GraphSAGE's new seeds were compared with GCN's earlier ones without a word."""
    new = _ddi_file(tmp_path / "sage_new.json", "sage", 1, [0.1, 0.3])
    gcn = _ddi_file(tmp_path / "gcn_old.json", "gcn", 2, [0.2, 0.25])
    sage = _ddi_file(tmp_path / "sage_old.json", "sage", 2, [0.2, 0.4])
    out = _run("compare_ddi_early_epochs.py", "--epoch", "1", "--new", new, sage, gcn)
    assert out.returncode == 1
    assert out.stderr.strip() == (f"{gcn} holds ogbl-ddi/gcn runs, {new} ogbl-ddi/sage runs; compare the seeds of "
                                  f"one dataset and model")
    out = _run("compare_ddi_early_epochs.py", "--epoch", "1", "--new", new, sage)
    assert out.returncode == 0, out.stderr
    assert "| val hits@20, epoch 1 | 0.3000 | 0.4000 |" in out.stdout
