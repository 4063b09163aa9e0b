"""Audit of ``graphdl train`` / ``graphdl bench`` and the config file: settings that were silently dropped or
misread, and a suite that failed with exit code 0. ``run_config`` and ``launch`` are stubs that record the call."""

from __future__ import annotations

from pathlib import Path

import pytest

import graphdl.bench
import graphdl.distributed
from graphdl.bench.suites import default_config, family_of
from graphdl.cli import main
from graphdl.config import TrainConfig, load_config
from graphdl.distributed import config_to_yaml


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """The (dataset, overrides, keyword arguments) of every run_config call, and the configs launched."""
    out: list[tuple] = []

    def run_config(dataset, overrides, **kwargs):
        out.append((dataset, overrides, kwargs))
        return {}

    monkeypatch.setattr(graphdl.bench, "run_config", run_config)
    monkeypatch.setattr(graphdl.bench, "format_table", lambda records: "")
    monkeypatch.setattr(graphdl.bench, "save_records", lambda *a, **k: None)
    monkeypatch.setattr(graphdl.distributed, "launch", lambda cfg, **kw: out.append(("launch", cfg)) or 0)
    return out


def _one_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("graphdl: error: ") and "Traceback" not in err, err
    return err


def test_virtual_node_false_in_a_config_file_is_not_dropped(tmp_path: Path, calls: list) -> None:
    """``virtual_node: false`` trained OGB molecules' default gin-virtual, virtual node and all."""
    path = tmp_path / "run.yaml"
    path.write_text("dataset: ogbg-molbbbp\nvirtual_node: false\n", encoding="utf-8")
    overrides = load_config(path).model_overrides()
    assert overrides["virtual_node"] is False
    cfg = default_config("ogbg-molbbbp", overrides)
    assert (cfg["model"], cfg["virtual_node"]) == ("gin", False)
    assert main(["train", "--config", str(path)]) == 0
    assert calls[-1][1] == {"virtual_node": False}
    # the file the launcher hands to the processes of --nproc keeps it too
    config_to_yaml(load_config(path), tmp_path / "child.yaml")
    assert load_config(tmp_path / "child.yaml").model_overrides() == {"virtual_node": False}
    # left out: the dataset's default model (gin-virtual on OGB molecules)
    assert "virtual_node" not in TrainConfig(dataset="ogbg-molbbbp").model_overrides()


def test_flags_turn_off_what_a_config_file_turns_on(tmp_path: Path, calls: list) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("dataset: cora\nresidual: true\nvirtual_node: true\n", encoding="utf-8")
    assert main(["train", "--config", str(path), "--no-residual", "--no-virtual-node"]) == 0
    assert calls[-1][1] == {"residual": False, "virtual_node": False}
    assert main(["train", "--config", str(path)]) == 0
    assert calls[-1][1] == {"residual": True, "virtual_node": True}
    assert main(["train", "--dataset", "cora", "--residual"]) == 0
    assert calls[-1][1] == {"residual": True}


def test_home_folder_paths_in_a_config_file_are_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        calls: list) -> None:
    """``root: ~/data`` was refused as missing (the loader expands ``~``); ``json: ~/r.json`` wrote ./~/r.json."""
    home = tmp_path / "home"
    (home / "data" / "planetoid").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "run.yaml"
    path.write_text("dataset: cora\nroot: ~/data\njson: ~/runs/r.json\nlog: ~/runs/log.csv\n"
                    "checkpoint_dir: ~/ckpt\n", encoding="utf-8")
    cfg = load_config(path)
    assert (cfg.root, cfg.json, cfg.log, cfg.checkpoint_dir) == (
        str(home / "data"), str(home / "runs" / "r.json"), str(home / "runs" / "log.csv"), str(home / "ckpt"))
    assert main(["train", "--config", str(path)]) == 0
    assert calls[-1][2]["root"] == str(home / "data")
    assert calls[-1][2]["checkpoint_dir"] == str(home / "ckpt")
    assert not (tmp_path / "~").exists()


def test_a_dataset_name_the_registry_resolves_reaches_the_runner_as_registered(calls: list) -> None:
    """``--dataset ogbg_molbbbp`` passed the name check (names ignore ``-``/``_``) and then failed in the runner."""
    assert main(["train", "--dataset", "ogbg_molbbbp"]) == 0
    assert main(["train", "--dataset", "CORA", "--nproc", "2"]) == 0
    assert calls[0][0] == "ogbg-molbbbp" and family_of(calls[0][0]) == "ogbg-mol"
    assert calls[1][0] == "launch" and calls[1][1].dataset == "cora"


@pytest.mark.parametrize("argv, message", [
    (["train", "--json", "out.json", "--log", "out.json"],
     "--json out.json and --log out.json name the same file; give each its own path"),
    (["bench", "quick", "--json", "r.json", "--plot", "./r.json"],
     "--json r.json and --plot ./r.json name the same file"),
])
def test_two_output_flags_naming_one_file_are_refused(argv: list[str], message: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch, calls: list,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(graphdl.bench, "run_suite", lambda *a, **k: pytest.fail("the suite ran"))
    assert main(argv) == 2
    assert message in _one_error(capsys)
    assert calls == []


def test_a_suite_whose_entries_could_not_run_exits_with_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Every entry of ``graphdl bench quick`` failed to load its data, and the command exited 0."""
    monkeypatch.setenv("GRAPHDL_OFFLINE", "1")
    root = tmp_path / "empty"
    root.mkdir()
    from graphdl.bench.__main__ import main as bench_main

    for run in (lambda: main(["bench", "quick", "--root", str(root), "--json", str(tmp_path / "r.json")]),
                lambda: bench_main(["suite", "quick", "--root", str(root), "--json", str(tmp_path / "r.json")])):
        (tmp_path / "r.json").unlink(missing_ok=True)
        assert run() == 2
        err = capsys.readouterr().err.splitlines()
        assert err[-1].endswith("error: 3 of 3 entries of suite 'quick' did not run: cora/gcn, cora/gat, "
                                "ogbg-molbbbp/gcn (their data failed to load: see the lines above); fix --root or "
                                "$GRAPHDL_DATA and run the suite again")
        assert (tmp_path / "r.json").is_file()  # the records (with their status) are still written


def test_a_folder_given_as_config_file_is_named_as_a_folder(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--config", str(tmp_path)]) == 2
    assert f"config file {tmp_path} is a folder; give the path of the YAML file" in _one_error(capsys)


@pytest.mark.parametrize("text, message", [
    ("loss: cross_entropy\nloss_kwargs: &a {x: *a}\n",  # json.dumps of it raised ValueError: Circular reference
     "config key 'loss_kwargs' in {path} holds itself (a YAML alias inside its own anchor); write the value out"),
    ("loss_kwargs: &a {x: *a}\n",
     "config key 'loss_kwargs' in {path} holds itself (a YAML alias inside its own anchor); write the value out"),
    # ten aliases nested nine deep: 10**9 values to print in the error message
    ("loss: cross_entropy\nloss_kwargs:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 10)),
     "config key 'loss_kwargs' in {path} expands to more than 100000 values (YAML aliases inside aliases?)"),
])
def test_self_referring_or_exploding_yaml_values_are_one_clean_error(text: str, message: str, tmp_path: Path,
                                                                    calls: list,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["train", "--config", str(path)]) == 2
    assert message.format(path=path) in _one_error(capsys)
    assert calls == []


def test_a_loss_argument_of_the_wrong_kind_is_one_clean_error(calls: list,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """``{"weight": ["a"]}`` raised ValueError inside CrossEntropyLoss's constructor: a traceback."""
    assert main(["train", "--loss", "cross_entropy", "--loss-kwargs", '{"weight": ["a"]}']) == 2
    assert _one_error(capsys) == (
        "graphdl: error: --loss-kwargs {\"weight\": [\"a\"]}: CrossEntropyLoss: weight must be numbers (a tensor or "
        "a list of floats), got list ['a'] (too many dimensions 'str') Pass its arguments with --loss-kwargs JSON\n")
    assert calls == []


def test_the_child_processes_config_reads_back_strings_that_look_like_numbers(tmp_path):
    """--root 08 --nproc 2: PyYAML wrote 08 bare and the loader's YAML 1.2 reading gave the children int 8
    ("config key 'root' must be str or null")."""
    cfg = TrainConfig(dataset="cora", root="08", json="1e5", lr=1e-5, loss_kwargs={"x": "010", "y": [1, 2.5]},
                      num_neighbors=[10, -1], virtual_node=False)
    config_to_yaml(cfg, tmp_path / "child.yaml")
    assert load_config(tmp_path / "child.yaml") == cfg


def test_a_reader_that_stops_early_is_no_error() -> None:
    """graphdl list layers | head: the closed pipe ended the command with "graphdl: error: Broken pipe", exit 2."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-m", "graphdl", "list", "layers"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    child.stdout.close()  # the reader is gone before the first line is written
    assert child.wait(timeout=120) == 0
    assert child.stderr.read() == b""
    child.stderr.close()
