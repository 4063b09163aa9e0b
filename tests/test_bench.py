"""The benchmark runner: suites, records, JSON and plots, OGB evaluators, ogbl-ddi pieces."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

import graphdl.bench as bench
from graphdl.bench.ogbl import GroupClippedAdam, OGBLinkGNN, OGBLinkTask
from graphdl.losses.graph import LinkBCELoss
from graphdl.errors import ConfigError, UnknownNameError


def test_suite_on_cora_writes_json_and_png(shared_data: Path, tmp_path: Path) -> None:
    json_path, plot_path = tmp_path / "out" / "quick.json", tmp_path / "out" / "quick.png"
    lines: list[str] = []
    records = bench.run_suite("quick", seeds=1, epochs=3, root=shared_data, json_path=json_path,
                              plot_path=plot_path, select="cora/*", log=lines.append)
    assert [(r["dataset"], r["model"]) for r in records] == [("cora", "gcn"), ("cora", "gat")]
    saved = json.loads(json_path.read_text())
    assert saved["suite"] == "quick" and saved["environment"]["torch"] == torch.__version__
    for rec in saved["records"]:
        for key in bench.REQUIRED_KEYS + ("seconds_per_epoch", "reference_kind", "curves", "config"):
            assert key in rec, key
        assert rec["status"] == "ok" and rec["metric"] == "acc" and rec["epochs"] == 3
        assert len(rec["runs"]) == 1 and rec["std"] is None and 0.0 <= rec["mean"] <= 1.0
        assert rec["mean"] == rec["runs"][0] and len(rec["curves"]["val"][0]) == 3
        assert rec["seconds_per_epoch"] > 0 and rec["seconds"] > 0
    gcn, gat = saved["records"]
    assert gcn["reference"] == 0.815 and "Kipf" in gcn["reference_source"]
    assert gat["reference"] == 0.830 and gat["reference_std"] == 0.007 and "Velickovic" in gat["reference_source"]
    assert gcn["config"]["decay_first_layer_only"] is True and gat["config"]["last_layer_kwargs"] == {
        "heads": 1, "concat": False}
    assert plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = "\n".join(lines)
    assert "| cora | gat | acc ↑ |" in table and "0.8300 ± 0.0070" in table


def test_ogb_molecule_run_uses_official_evaluator(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ogb.graphproppred import Evaluator

    calls: list[str] = []
    original = Evaluator.eval

    def counting(self, input_dict):  # noqa: ANN001, ANN202
        calls.append(self.name)
        return original(self, input_dict)

    monkeypatch.setattr(Evaluator, "eval", counting)
    record = bench.run_config("ogbg-molbace", {"layer": "gin", "virtual_node": True, "hidden_channels": 32,
                                               "num_layers": 2}, seeds=1, epochs=2, root=shared_data,
                              verbose=False)
    assert record["metric"] == "rocauc" and record["higher_is_better"] is True
    assert math.isfinite(record["mean"]) and 0.0 <= record["mean"] <= 1.0
    assert record["model"] == "gin-virtual" and record["config"]["batch_size"] == 32
    assert record["config"]["lr"] == 1e-3 and record["num_parameters"] > 0
    assert calls and set(calls) == {"ogbg-molbace"} and len(calls) == 2 * 3  # train/valid/test each epoch
    assert record["reference"] == 0.7733 and record["reference_kind"] == "ANCHORS.md"


def test_defaults_follow_the_official_configurations() -> None:
    cfg = bench.default_config("ogbg-molbbbp", {"layer": "gin", "virtual_node": True})
    assert cfg["model"] == "gin-virtual" and (cfg["hidden_channels"], cfg["num_layers"], cfg["dropout"]) == (300, 5, 0.5)
    assert (cfg["batch_size"], cfg["lr"], cfg["epochs"], cfg["pool"]) == (32, 1e-3, 100, "mean")
    assert bench.default_config("ogbg-molesol")["model"] == "gin-virtual"  # the script's default --gnn
    assert bench.default_config("ogbg-molesol", {"layer": "gcn"})["model"] == "gcn"
    ddi = bench.default_config("ogbl-ddi", "sage")
    assert (ddi["hidden_channels"], ddi["num_layers"], ddi["lr"], ddi["batch_size"], ddi["epochs"]) == (
        256, 2, 0.005, 65536, 200)
    assert bench.default_config("cora", "gat")["layer_kwargs"] == {"heads": 8, "dropout": 0.6}


def test_bad_input_gives_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match=r"unknown benchmark suite 'quik'\. Did you mean 'quick'\?"):
        bench.run_suite("quik")
    with pytest.raises(UnknownNameError, match="Did you mean 'ogbg-mol'"):
        bench.run_suite("ogbg-mole")
    assert bench.suites.resolve_suite("OGBG_MOL") == "ogbg-mol"
    with pytest.raises(ConfigError, match="matches no entry"):
        bench.run_suite("quick", select="pubmed/*")
    with pytest.raises(ConfigError, match="Did you mean 'gat'"):
        bench.default_config("cora", "gta")
    with pytest.raises(ConfigError, match=r"no benchmark configuration for dataset 'ogbl-collab'.*ogbl-ddi and "
                                          r"the single-label OGB node datasets"):
        bench.default_config("ogbl-collab")
    with pytest.raises(ConfigError, match="seeds must be"):
        bench.run_config("cora", "gcn", seeds=0, root=tmp_path)
    with pytest.raises(ConfigError, match="unknown configuration key 'hiden_channels'. Did you mean 'hidden_channels'"):
        bench.run_config("ogbg-molbace", {"layer": "gin", "hiden_channels": 32}, root=tmp_path)
    with pytest.raises(ConfigError, match="epochs must be >= 1"):
        bench.run_config("cora", "gcn", epochs=0, root=tmp_path)


def test_missing_dataset_is_recorded_and_the_suite_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import graphdl.bench.runner as runner

    monkeypatch.setenv("GRAPHDL_OFFLINE", "1")
    calls: list[str] = []
    real_run_config = runner.run_config
    monkeypatch.setattr(runner, "run_config", lambda dataset, *a, **k: calls.append(dataset) or
                        real_run_config(dataset, *a, **k))
    records = bench.run_suite("planetoid", seeds=1, epochs=1, root=tmp_path, select="citeseer/*",
                              json_path=tmp_path / "p.json", log=lambda _: None)
    assert calls == ["citeseer"]  # the second model does not try the missing files again
    assert [r["model"] for r in records] == ["gcn", "gat"]
    assert records[0]["status"] == records[1]["status"]
    assert records[0]["status"].startswith("error: DataError: dataset 'citeseer': 8 file(s) missing")
    assert [r["reference"] for r in records] == [0.703, 0.725]
    assert json.loads((tmp_path / "p.json").read_text())["records"][0]["status"].startswith("error")
    assert not (tmp_path / "p.png").exists()  # nothing finished, nothing to plot
    # the table keeps its rows short; the reason is written once, below it
    table = bench.format_table(records).splitlines()
    assert table[2].startswith("| citeseer | gcn | - | not run [1] | - | 0.7030 |")
    assert table[3].startswith("| citeseer | gat | - | not run [1] | - | 0.7250 ± 0.0070 |")
    assert table[4:] == ["", "[1] " + records[0]["status"]]


def test_a_suite_names_a_root_that_is_a_file_and_bad_epochs_before_any_entry(tmp_path: Path) -> None:
    """Every entry failed on a root that is a file, so the suite ended 'not run' everywhere with exit code 0."""
    from graphdl.cli import main
    from graphdl.errors import DataError

    (tmp_path / "afile").write_text("x")
    lines: list[str] = []
    with pytest.raises(DataError, match=r"data root .*afile' \(from the root argument\) is not a folder"):
        bench.run_suite("quick", root=tmp_path / "afile", log=lines.append)
    with pytest.raises(ConfigError, match=r"^epochs must be >= 1, got -1$"):
        bench.run_suite("quick", epochs=-1, root=tmp_path, log=lines.append)
    assert lines == []  # nothing started
    assert main(["bench", "quick", "--root", str(tmp_path / "afile")]) == 2


def test_link_bce_is_the_ogb_examples_loss() -> None:
    """The link task calls link_bce(pos, neg): the example's sum of two means."""
    pos, neg = torch.randn(6), torch.randn(4)
    expected = -torch.log(torch.sigmoid(pos) + 1e-15).mean() - torch.log(1 - torch.sigmoid(neg) + 1e-15).mean()
    torch.testing.assert_close(LinkBCELoss()(pos, neg), expected, rtol=1e-5, atol=1e-6)


def test_group_clipped_adam_clips_each_group_separately() -> None:
    torch.manual_seed(0)
    a, b = torch.nn.Parameter(torch.randn(5)), torch.nn.Parameter(torch.randn(3))
    a2, b2 = torch.nn.Parameter(a.detach().clone()), torch.nn.Parameter(b.detach().clone())
    grads = (torch.randn(5) * 10, torch.randn(3) * 0.01)
    opt = GroupClippedAdam([{"params": [a]}, {"params": [b]}], lr=0.1, max_norm=1.0)
    a.grad, b.grad = grads[0].clone(), grads[1].clone()
    opt.step()
    ref = torch.optim.Adam([a2, b2], lr=0.1)
    a2.grad, b2.grad = grads[0].clone(), grads[1].clone()
    torch.nn.utils.clip_grad_norm_([a2], 1.0)  # the OGB example: one clip per parameter set
    torch.nn.utils.clip_grad_norm_([b2], 1.0)
    ref.step()
    torch.testing.assert_close(a, a2)
    torch.testing.assert_close(b, b2)


def _small_ddi(n: int = 40) -> tuple[Any, dict]:
    """A small simple undirected graph with ogbl-ddi's split format."""
    from torch_geometric.data import Data

    gen = torch.Generator().manual_seed(0)
    pairs = torch.combinations(torch.arange(n)).t()
    edges = pairs[:, torch.randperm(pairs.size(1), generator=gen)[:300]]
    train, valid, test = edges[:, :200], edges[:, 200:240], edges[:, 240:]
    data = Data(edge_index=torch.cat([train, train.flip(0)], dim=1), num_nodes=n)
    splits = {"train": {"edge": train.t()},
              "valid": {"edge": valid.t(), "edge_neg": torch.randint(0, n, (60, 2), generator=gen)},
              "test": {"edge": test.t(), "edge_neg": torch.randint(0, n, (60, 2), generator=gen)}}
    return data, splits


def _ddi_trainer(num_nodes: int, epochs: int, device: str | None = None) -> Any:
    from graphdl.train import Trainer, seed_everything

    seed_everything(0)  # initialisation, dropout and negative sampling draw from torch's RNG
    model = OGBLinkGNN(layer="sage", in_channels=None, num_nodes=num_nodes, hidden_channels=16, num_layers=2,
                       decoder="mlp", decoder_layers=2, decoder_dropout=0.5)
    return Trainer(model, loss=LinkBCELoss(), task=OGBLinkTask(metric="ogbl-ddi", batch_size=64), epochs=epochs,
                   progress=False, optimizer=lambda groups: GroupClippedAdam(groups, lr=0.005), device=device)


def test_ogb_link_pieces_train_on_a_small_graph() -> None:
    data, splits = _small_ddi()
    n, train, valid = data.num_nodes, splits["train"]["edge"].t(), splits["valid"]["edge"].t()
    trainer = _ddi_trainer(n, epochs=2)
    model, task = trainer.model, trainer.task
    bound = (6.0 / (n + 16)) ** 0.5  # Xavier-uniform, as the example initialises its embedding
    assert model.encoder.embedding.weight.abs().max() <= bound
    assert len(model.optimizer_groups(0.0)) == 3
    result = trainer.fit(data, splits)
    assert set(result.best) >= {"train_hits@20", "val_hits@20", "test_hits@20"}
    assert task.eval_train.size(1) == valid.size(1)
    dense = OGBLinkTask(metric="ogbl-ddi", sparse_adj=False)  # edge_index instead of the sparse adjacency
    dense.setup(data, splits, trainer.device)
    model.eval()
    torch.testing.assert_close(task.predict(model), dense.predict(model), rtol=1e-5, atol=1e-5)
    torch.manual_seed(12345)  # the example's eval_train sample
    torch.testing.assert_close(task.eval_train.cpu(), train[:, torch.randperm(train.size(1))[:valid.size(1)]])


def test_ogb_link_run_killed_and_resumed_ends_like_an_uninterrupted_one(tmp_path: Path) -> None:
    """The ogbl-ddi protocol (3.5 h a seed here) is run in pieces: the resumed run is the same run
    (bit for bit on the CPU; CUDA's scatter adds in a varying order, docs/determinism.md)."""
    from graphdl.train.resume import fit_with_checkpoints, seed_dir

    data, splits = _small_ddi()
    full_trainer = _ddi_trainer(data.num_nodes, epochs=4, device="cpu")
    full = fit_with_checkpoints(full_trainer, data, splits, checkpoint_dir=tmp_path / "full", seed=0)
    fit_with_checkpoints(_ddi_trainer(data.num_nodes, epochs=2, device="cpu"), data, splits,
                         checkpoint_dir=tmp_path / "part", seed=0)
    (seed_dir(tmp_path / "part", 0) / "done.json").unlink()  # as if killed after epoch 1
    resumed_trainer = _ddi_trainer(data.num_nodes, epochs=4, device="cpu")
    resumed = fit_with_checkpoints(resumed_trainer, data, splits, checkpoint_dir=tmp_path / "part", resume=True,
                                   seed=0)
    assert resumed.extra["resumed"] and len(full.history) == 4
    # epochs 2 and 3 were trained by the resumed fit: its time per epoch is over those two
    assert (full.epochs_trained, resumed.epochs_trained, len(resumed.history)) == (4, 2, 4)
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in full.history]
    assert resumed.best == full.best
    for a, b in zip(full_trainer.model.parameters(), resumed_trainer.model.parameters()):
        assert torch.equal(a, b)


def test_run_command_checkpoints_and_resumes(shared_data: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from graphdl.bench.__main__ import main

    args = ["run", "cora", "gcn", "--epochs", "3", "--root", str(shared_data), "--checkpoint-dir",
            str(tmp_path / "ckpt")]
    assert main([*args, "--json", str(tmp_path / "a.json"), "--log", str(tmp_path / "log.csv")]) == 0
    assert (tmp_path / "ckpt" / "seed_0" / "done.json").is_file()
    assert len((tmp_path / "log.csv").read_text().splitlines()) == 1 + 3  # header + one row per epoch
    assert main([*args, "--resume", "--json", str(tmp_path / "b.json")]) == 0  # finished: skipped, same record
    first, again = (json.loads((tmp_path / f).read_text())["records"][0] for f in ("a.json", "b.json"))
    assert again["runs"] == first["runs"] and again["curves"] == first["curves"]
    assert again["seconds_per_epoch"] == first["seconds_per_epoch"]  # the finished run's own timing
    assert main(["run", "cora", "gcn", "--resume", "--root", str(shared_data)]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "error: --resume needs --checkpoint-dir DIR (the folder the run checkpointed into)")
    # The same command without --resume refuses before training anything, and the log stays.
    log = (tmp_path / "log.csv").read_text()
    assert main([*args, "--log", str(tmp_path / "log.csv")]) == 2
    assert capsys.readouterr().err.strip().endswith(
        f"error: {tmp_path / 'ckpt' / 'seed_0'} holds the result of a finished run (done.json); pass --resume "
        f"(resume=True) to continue it, or delete that folder or choose another --checkpoint-dir to start the "
        f"seed afresh")
    assert (tmp_path / "log.csv").read_text() == log
    # Every seed is checked before the first trains: seed 1's checkpoint stops seed 0 from starting.
    (tmp_path / "ckpt" / "seed_0").rename(tmp_path / "ckpt" / "seed_1")
    assert main([*args, "--seeds", "2"]) == 2
    assert "seed_1 holds the result of a finished run" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["seed_1"]


def test_train_command_runs_the_ogb_molecule_benchmark(shared_data: Path, tmp_path: Path) -> None:
    """``graphdl train --dataset ogbg-molbbbp --layer gin --virtual-node ...``: the benchmark's run, its file format."""
    from graphdl.cli import main

    argv = ["train", "--dataset", "ogbg-molbbbp", "--layer", "gin", "--virtual-node", "--seeds", "1", "--epochs",
            "1", "--hidden", "8", "--num-layers", "2", "--root", str(shared_data), "--json", str(tmp_path / "r.json"),
            "--device", "cpu"]  # two runs compared bit for bit: CPU kernels
    assert main(argv) == 0
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["command"] == "graphdl " + " ".join(argv)
    record = saved["records"][0]
    assert (record["model"], record["metric"]) == ("gin-virtual", "rocauc")
    assert {k: record["config"][k] for k in ("batch_size", "lr", "dropout", "jk", "pool")} == {
        "batch_size": 32, "lr": 1e-3, "dropout": 0.5, "jk": "last", "pool": "mean"}  # the official example's
    direct = bench.run_config("ogbg-molbbbp", {"layer": "gin", "virtual_node": True, "hidden_channels": 8,
                                               "num_layers": 2}, seeds=1, epochs=1, root=shared_data, device="cpu")
    assert record["runs"] == direct["runs"]


def test_run_command_splits_seeds_with_first_seed(shared_data: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from graphdl.bench.__main__ import main

    out = tmp_path / "seed3.json"
    argv = ["run", "cora", "gcn", "--seeds", "1", "--first-seed", "3", "--epochs", "2", "--root", str(shared_data),
            "--json", str(out)]
    main(argv)
    saved = json.loads(out.read_text())
    assert saved["command"] == "python -m graphdl.bench " + " ".join(argv)
    record = saved["records"][0]
    assert record["seeds"] == [3]
    direct = bench.run_config("cora", "gcn", seeds=[3], epochs=2, root=shared_data)
    assert record["runs"] == direct["runs"]  # the same seed, the same run
    assert main(["run", "cora", "gcn", "--first-seed", "-1", "--root", str(shared_data)]) == 2
    assert capsys.readouterr().err.strip() == "graphdl: error: --first-seed must be >= 0, got -1"


def test_report_command_merges_result_files(shared_data: Path, tmp_path: Path) -> None:
    from graphdl.bench.__main__ import main

    from graphdl.cli import main as graphdl_main

    runs = [tmp_path / "gcn.json", tmp_path / "gat.json"]
    argv = ["run", "cora", "gcn", "--seeds", "1", "--epochs", "1", "--root", str(shared_data), "--json", str(runs[0])]
    assert main(argv) == 0
    assert graphdl_main(["bench", *argv[:2], "gat", *argv[3:-1], str(runs[1])]) == 0  # the same command under graphdl
    assert json.loads(runs[1].read_text())["command"] == "graphdl bench " + " ".join([*argv[:2], "gat", *argv[3:-1],
                                                                                       str(runs[1])])
    md, merged = tmp_path / "table.md", tmp_path / "all.json"
    assert main(["report", *map(str, runs), "--md", str(md), "--note", "Cora, one epoch ±", "--json", str(merged),
                 "--plot", str(tmp_path / "curves.png")]) == 0  # --plot as in `graphdl bench SUITE`, or --png
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    records = [json.loads(p.read_text())["records"][0] for p in runs]
    assert md.read_text(encoding="utf-8") == "Cora, one epoch ±\n\n" + bench.format_table(records) + "\n"
    saved = json.loads(merged.read_text())
    assert saved["sources"] == [str(p) for p in runs] and saved["records"] == records


def test_report_pools_a_benchmark_run_in_pieces_into_the_one_run(shared_data: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Seeds 2 and 0..1 run as two pieces (--first-seed) and reported together equal seeds 0..2 run at once."""
    from graphdl.bench.__main__ import main

    common = ["--epochs", "2", "--root", str(shared_data), "--set", 'eval_splits=["val","test"]']
    files = {name: tmp_path / f"{name}.json" for name in ("whole", "late", "early")}
    assert main(["run", "cora", "gcn", "--seeds", "3", *common, "--json", str(files["whole"])]) == 0
    assert main(["run", "cora", "gcn", "--seeds", "1", "--first-seed", "2", *common, "--json", str(files["late"])]) == 0
    assert main(["run", "cora", "gcn", "--seeds", "2", *common, "--json", str(files["early"])]) == 0
    capsys.readouterr()
    merged = tmp_path / "merged.json"
    assert main(["report", str(files["late"]), str(files["early"]), "--json", str(merged)]) == 0
    whole = json.loads(files["whole"].read_text())["records"][0]
    (pooled,) = json.loads(merged.read_text())["records"]
    for key in ("seeds", "runs", "valid_runs", "best_epochs", "epochs_run", "curves", "mean", "valid_mean"):
        assert pooled[key] == whole[key], key
    assert pooled["std"] == pytest.approx(whole["std"], rel=1e-12)
    assert "| 3 x 2 |" in capsys.readouterr().out

    assert main(["report", str(files["early"]), str(files["whole"])]) == 2  # seeds 0 and 1 twice
    assert capsys.readouterr().err == (f"graphdl: error: seed 0 of cora/gcn (same configuration) is in "
                                       f"{files['early']} and in {files['whole']}; pass each seed once\n")
    other = tmp_path / "other.json"  # another configuration: its own row
    assert main(["run", "cora", "gcn", "--seeds", "1", "--first-seed", "2", "--epochs", "1", "--root",
                 str(shared_data), "--json", str(other)]) == 0
    assert main(["report", str(files["early"]), str(other), "--json", str(merged)]) == 0
    assert [r["seeds"] for r in json.loads(merged.read_text())["records"]] == [[0, 1], [2]]


def test_report_refuses_files_that_are_not_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from graphdl.bench.__main__ import main

    cases = {"notes.json": ("not json", " is not JSON (Expecting value: line 1 column 1 (char 0)); pass files "
                                        "written by --json of graphdl bench or graphdl train"),
             "partial.json": ('{"records": [{"dataset": "cora", "model": "gcn", "mean": 0.8}]}',
                              ": record 0 has no metric, higher_is_better, std, seconds_per_epoch; it is not a "
                              "result record (pass files written by --json of graphdl bench or graphdl train)"),
             "numbers.json": ("[1, 2]", ": record 0 has no dataset, model; it is not a result record")}
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        assert main(["report", str(path), "--md", str(tmp_path / "t.md")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"graphdl: error: {path}{message}") and err.count("\n") == 1, err
    assert not (tmp_path / "t.md").exists()


def test_train_command_passes_loss_kwargs_to_the_loss(shared_data: Path, tmp_path: Path) -> None:
    """``--loss-kwargs`` reaches the loss: the run equals run_config with the same loss_kwargs, and differs from
    the run without them (label smoothing raises the training loss)."""
    from graphdl.cli import main

    argv = ["train", "--dataset", "cora", "--layer", "gcn", "--epochs", "2", "--loss", "cross_entropy",
            "--loss-kwargs", '{"label_smoothing": 0.3}', "--root", str(shared_data), "--json",
            str(tmp_path / "r.json"), "--device", "cpu"]
    assert main(argv) == 0
    record = json.loads((tmp_path / "r.json").read_text())["records"][0]
    assert record["config"]["loss_kwargs"] == {"label_smoothing": 0.3}
    overrides = {"layer": "gcn", "loss": "cross_entropy"}
    smoothed = bench.run_config("cora", {**overrides, "loss_kwargs": {"label_smoothing": 0.3}}, seeds=1, epochs=2,
                                root=shared_data, device="cpu")
    plain = bench.run_config("cora", overrides, seeds=1, epochs=2, root=shared_data, device="cpu")
    assert record["curves"]["train_loss"] == smoothed["curves"]["train_loss"]
    assert smoothed["curves"]["train_loss"][0][0] > plain["curves"]["train_loss"][0][0]


def test_a_metric_loss_run_is_not_set_beside_the_supervised_reference(shared_data: Path) -> None:
    """Cora GCN with supcon reports knn_acc, which the paper's GCN accuracy does not measure."""
    record = bench.run_config("cora", {"layer": "gcn", "loss": "supcon"}, seeds=1, epochs=1, root=shared_data,
                              device="cpu")
    assert record["metric"] == "knn_acc"
    assert (record["reference"], record["reference_source"]) == (None, None)
    plain = bench.run_config("cora", {"layer": "gcn"}, seeds=1, epochs=1, root=shared_data, device="cpu")
    assert plain["reference"] == 0.815


def test_node_benchmarks_train_in_neighbour_sampled_mini_batches_when_asked(
        shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--num-neighbors`` with ``--batch-size`` trains Cora's 140 training nodes in batches of 64 (before, every
    node dataset refused num_neighbors and ignored batch_size, training full batch)."""
    from graphdl.cli import main
    from graphdl.train import NodeTask

    batches: list[int] = []
    original = NodeTask.train_batches

    def counted(self: NodeTask) -> Any:
        out = list(original(self))
        batches.append(len(out))
        return out

    monkeypatch.setattr(NodeTask, "train_batches", counted)
    argv = ["train", "--dataset", "cora", "--layer", "gcn", "--epochs", "2", "--root", str(shared_data),
            "--device", "cpu"]
    assert main(argv + ["--num-neighbors", "5", "5", "--batch-size", "64"]) == 0
    assert batches == [3, 3]
    batches.clear()
    assert main(argv) == 0
    assert batches == [1, 1]
    with pytest.raises(ConfigError, match=r"^batch_size on a node dataset sets the seed nodes per mini-batch of "
                                          r"neighbour sampling; give num_neighbors too"):
        bench.run_config("cora", {"layer": "gcn", "batch_size": 64}, epochs=1, root=shared_data)
    with pytest.raises(ConfigError, match=r"^num_neighbors sets neighbour sampling for node classification "
                                          r"\(Planetoid, ogbn-\*\); the graph and link benchmarks take whole graphs"):
        bench.run_config("ogbg-molbace", {"num_neighbors": [5]}, epochs=1, root=shared_data)


def test_train_patience_and_monitor_reach_the_trainer(shared_data: Path, tmp_path: Path) -> None:
    """--patience was offered by `graphdl train --help` and then refused as an unknown configuration key."""
    from graphdl.cli import main

    def run(epochs: str, *flags: str) -> dict[str, Any]:
        argv = ["train", "--dataset", "cora", "--layer", "gcn", "--epochs", epochs, "--root", str(shared_data),
                "--device", "cpu", "--json", str(tmp_path / "run.json"), *flags]
        assert main(argv) == 0
        return json.loads((tmp_path / "run.json").read_text())["records"][0]

    record = run("300", "--patience", "2")  # stops 2 epochs after its best val_acc
    assert record["epochs_run"] == [record["best_epochs"][0] + 3] and record["epochs_run"][0] < 300
    record = run("5", "--monitor", "val_loss", "--log", str(tmp_path / "log.csv"))
    losses = [float(row["val_loss"]) for row in csv.DictReader(open(tmp_path / "log.csv"))]
    assert record["config"]["monitor"] == "val_loss" and record["best_epochs"] == [losses.index(min(losses))]


def test_train_heads_set_the_hidden_layers_heads(shared_data: Path, tmp_path: Path) -> None:
    """--heads (and the config docstring's `heads: 8`) was refused as an unknown configuration key."""
    from graphdl.cli import main

    gat = bench.default_config("cora", {"model": "gat", "heads": 4})
    assert gat["layer_kwargs"] == {"heads": 4, "dropout": 0.6}  # GAT's own output layer: 1 head, averaged
    assert gat["last_layer_kwargs"] == {"heads": 1, "concat": False}
    gatv2 = bench.default_config("cora", {"layer": "gatv2", "heads": 4})
    assert gatv2["layer_kwargs"] == {"heads": 4} and gatv2["last_layer_kwargs"] == {"heads": 1}
    argv = ["train", "--dataset", "cora", "--layer", "gatv2", "--heads", "4", "--hidden", "16", "--epochs", "1",
            "--root", str(shared_data), "--device", "cpu", "--json", str(tmp_path / "run.json")]
    assert main(argv) == 0  # 7 classes: 4 heads on the output layer failed, as 7 is not a multiple of 4
    assert json.loads((tmp_path / "run.json").read_text())["records"][0]["config"]["layer_kwargs"] == {"heads": 4}


def test_a_metric_loss_on_a_molecule_benchmark_reports_knn_accuracy(shared_data: Path) -> None:
    """Before, the run passed the OGB evaluator's rocauc, which the graph task refuses beside embeddings, and the
    refusal told the user to set a metric the command line has no flag for."""
    import warnings

    from sklearn.exceptions import DataConversionWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", DataConversionWarning)  # OGB's label column reaches the k-NN as a vector
        record = bench.run_config("ogbg-molbace", {"layer": "gcn", "hidden_channels": 16, "num_layers": 2,
                                                   "loss": "supcon"}, seeds=1, epochs=1, root=shared_data,
                                  device="cpu")
    assert (record["metric"], record["higher_is_better"], record["reference"]) == ("knn_acc", True, None)
    assert 0.0 <= record["mean"] <= 1.0
    plain = bench.run_config("ogbg-molbace", {"layer": "gcn", "hidden_channels": 16, "num_layers": 2}, seeds=1,
                             epochs=1, root=shared_data, device="cpu")
    # the embeddings are hidden_channels wide (16 x 16 + 16 head weights), not one value per task (16 + 1)
    assert record["num_parameters"] - plain["num_parameters"] == (16 * 16 + 16) - (16 + 1)


def test_repeated_set_flags_all_apply(shared_data: Path, tmp_path: Path) -> None:
    """Before, a second --set replaced the first (argparse nargs without extend), silently dropping overrides."""
    from graphdl.bench.__main__ import main

    common = ["run", "cora", "gcn", "--epochs", "1", "--root", str(shared_data)]
    assert main([*common, "--set", "hidden_channels=8", "--set", "dropout=0.1", "--json", str(tmp_path / "a.json")]) == 0
    assert main([*common, "--set", "hidden_channels=8", "dropout=0.1", "--json", str(tmp_path / "b.json")]) == 0
    for name in ("a.json", "b.json"):
        config = json.loads((tmp_path / name).read_text())["records"][0]["config"]
        assert (config["hidden_channels"], config["dropout"]) == (8, 0.1)
