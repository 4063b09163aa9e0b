"""graphdl.bench keeps finished seeds when a run stops, checks a configuration's values for the JSON record before
training, and never writes its plot over its records: each test failed before its fix."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import graphdl.bench as bench
import graphdl.bench.runner as runner
from graphdl.bench.__main__ import main as bench_main
from graphdl.errors import ConfigError


from test_bench_runner_audit import cora_root  # noqa: F401 (fixture: a data root holding the shared Cora files)


def _config_to_train(monkeypatch: pytest.MonkeyPatch, run: Callable[[], Any]) -> dict[str, Any]:
    """The configuration that ``run()`` (a call of run_config) would train, caught where its data is prepared."""
    seen: dict[str, Any] = {}

    class Stop(Exception):
        pass

    def prepared(dataset: str, family: str, cfg: dict[str, Any], root: Any) -> None:
        seen.update(cfg)
        raise Stop

    monkeypatch.setattr(runner, "_Prepared", prepared)
    with pytest.raises(Stop):
        run()
    return seen


def _fake_record(dataset: str, model: Any, **_: Any) -> dict[str, Any]:
    """run_config's record of one seed, returned at once (for tests of what a suite writes)."""
    return {"dataset": dataset, "model": model, "metric": "acc", "higher_is_better": True, "mean": 0.8,
            "std": None, "runs": [0.8], "seeds": [0], "epochs": 1, "seconds": 0.1, "seconds_per_epoch": 0.1,
            "reference": None, "reference_std": None, "reference_source": None, "status": "ok",
            "curves": {"val": [[0.8]], "test": [[0.8]]}}


def _stop_at_seed(monkeypatch: pytest.MonkeyPatch, stop: int) -> None:
    """Ctrl-C when seed ``stop`` starts (seed_everything is called before each seed's model is built)."""
    from graphdl.train import seed_everything

    def seeded(seed: int, *args: Any, **kwargs: Any) -> Any:
        if seed == stop:
            raise KeyboardInterrupt
        return seed_everything(seed, *args, **kwargs)

    monkeypatch.setattr("graphdl.train.seed_everything", seeded)


# ---------------------------------------------------------------------------- finished seeds survive a stop
def test_bench_run_that_stops_leaves_its_finished_seeds_and_the_earlier_file(
        cora_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """A 3-seed run stopped in seed 2 left nothing but an earlier --json file: seeds 0 and 1 were lost."""
    results = tmp_path / "r.json"
    results.write_text('{"records": []}')
    argv = ["run", "cora", "gcn", "--seeds", "3", "--epochs", "2", "--root", str(cora_root), "--json", str(results),
            "--set", "hidden_channels=4"]
    _stop_at_seed(monkeypatch, 2)
    assert bench_main(argv) == 130
    assert results.read_text() == '{"records": []}'  # replaced only when the run ends
    partial = tmp_path / "r.json.partial"
    assert f"stopped after 2 of 3 seeds; the finished seeds' record: {partial}" in capsys.readouterr().out
    [stopped] = json.loads(partial.read_text())["records"]
    assert bench_main(["report", str(partial)]) == 0  # a file graphdl bench report reads
    assert stopped["seeds"] == [0, 1] and len(stopped["runs"]) == 2 and stopped["status"] == "ok"
    # the record of seeds 0 and 1 is theirs in a full run: same format, same figures, read by graphdl bench report
    monkeypatch.undo()
    assert bench_main(argv) == 0
    assert not partial.exists()
    [whole] = json.loads(results.read_text())["records"]
    assert whole["runs"][:2] == stopped["runs"] and whole["seeds"] == [0, 1, 2]
    assert set(stopped) == set(whole) and stopped["config"] == whole["config"]
    assert stopped["mean"] == pytest.approx(np.mean(stopped["runs"]))
    assert stopped["std"] == pytest.approx(np.std(stopped["runs"], ddof=1))


def test_graphdl_train_that_stops_leaves_its_finished_seeds_and_the_earlier_file(
        cora_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """graphdl train --json wrote nothing until every seed finished, as bench run did."""
    from graphdl.cli import main as graphdl_main

    results = tmp_path / "t.json"
    results.write_text('{"records": []}')
    argv = ["train", "--dataset", "cora", "--layer", "gcn", "--hidden-channels", "4", "--seeds", "2", "--epochs",
            "1", "--root", str(cora_root), "--json", str(results)]
    _stop_at_seed(monkeypatch, 1)
    assert graphdl_main(argv) == 130  # interrupted
    partial = tmp_path / "t.json.partial"
    assert results.read_text() == '{"records": []}'
    assert f"stopped after 1 of 2 seeds; the finished seeds' record: {partial}" in capsys.readouterr().out
    [stopped] = json.loads(partial.read_text())["records"]
    assert stopped["seeds"] == [0] and stopped["status"] == "ok"
    monkeypatch.undo()
    assert graphdl_main(argv) == 0
    assert not partial.exists() and json.loads(results.read_text())["records"][0]["runs"][:1] == stopped["runs"]


def test_suite_that_stops_inside_an_entry_keeps_that_entrys_finished_seeds(
        cora_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite's partial file held finished entries only: a 10-seed entry stopped at seed 8 lost 8 seeds."""
    results = tmp_path / "s.json"
    _stop_at_seed(monkeypatch, 1)
    lines: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        bench.run_suite("planetoid", seeds=2, epochs=1, root=cora_root, json_path=results, select="cora/gcn",
                        log=lines.append)
    partial = tmp_path / "s.json.partial"
    [record] = json.loads(partial.read_text())["records"]
    assert record["seeds"] == [0] and record["model"] == "gcn" and not results.exists()
    assert lines[-1] == f"[planetoid] stopped after 0 of 1 entries and 1 seed(s) of cora/gcn; the finished ones' " \
                        f"records: {partial}"


# ---------------------------------------------------------------------------- values the JSON record can hold
def test_numpy_numbers_in_a_configuration_are_python_numbers(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    """np.bool_ in layer_kwargs trained, then save_records raised 'Object of type bool is not JSON serializable'
    and lost the file; np.float32 dropout and np.int64 heads were refused as not numbers."""
    given = {"model": "gat", "dropout": np.float32(0.25), "heads": np.int64(2), "lr": np.float64(0.01),
             "layer_kwargs": {"add_self_loops": np.bool_(True), "negative_slope": [np.float16(0.5)]}}
    seen = _config_to_train(monkeypatch, lambda: bench.run_config("cora", given, epochs=1, root=tmp_path))
    assert seen["dropout"] == 0.25 and type(seen["dropout"]) is float and type(seen["lr"]) is float
    assert seen["layer_kwargs"]["heads"] == 2 and type(seen["layer_kwargs"]["heads"]) is int
    assert seen["layer_kwargs"]["add_self_loops"] is True
    assert type(seen["layer_kwargs"]["negative_slope"][0]) is float
    json.dumps(seen)  # what save_records writes
    assert type(given["dropout"]) is np.float32  # the caller's dict is left as it was


@pytest.mark.parametrize(("changes", "message"), [
    ({"layer_kwargs": {"w": np.ones(2)}}, "configuration key 'layer_kwargs'['w'] holds a numpy.ndarray (array([1., "
                                          "1.])), which the results file (JSON) cannot record; give a list "
                                          "(array.tolist())"),
    ({"layer_kwargs": {"w": torch.tensor(0.5)}}, "configuration key 'layer_kwargs'['w'] holds a torch.Tensor "
                                                 "(tensor(0.5000)), which the results file (JSON) cannot record; give "
                                                 "a number or a list (tensor.tolist())"),
    ({"layer_kwargs": {"dtype": torch.float64}}, "configuration key 'layer_kwargs'['dtype'] holds a torch.dtype "
                                                 "(torch.float64), which the results file (JSON) cannot record; give a "
                                                 "number, string, bool, null, list or dict with string keys"),
    ({"last_layer_kwargs": {"w": [0, complex(1, 2)]}}, "configuration key 'last_layer_kwargs'['w'][1] holds a "
                                                       "builtins.complex"),
    ({"layer_kwargs": {1: 2}}, "configuration key 'layer_kwargs' has the key 1 (int); the results file (JSON) "
                               "writes keys as strings, so give it as '1'"),
])
def test_values_json_cannot_write_are_named_before_the_data_loads(changes: dict[str, Any], message: str,
                                                                  tmp_path: Path) -> None:
    # tmp_path holds no data: the check comes first
    with pytest.raises(ConfigError) as info:
        bench.run_config("cora", {"model": "gcn", **changes}, epochs=1, root=tmp_path)
    assert str(info.value).startswith(message)


def test_numpy_seeds_of_a_suite_reach_its_results_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """seeds=np.int64(1) passed the check, then the first write of the records raised (int64 is not JSON)."""
    monkeypatch.setattr(runner, "run_config", _fake_record)
    for seeds, arg in ((np.int64(1), 1), (np.array([3, 4]), [3, 4])):
        bench.run_suite("planetoid", seeds=seeds, epochs=np.int64(2), root=tmp_path, json_path=tmp_path / "s.json",
                        select="cora/gcn", log=lambda _: None)
        data = json.loads((tmp_path / "s.json").read_text())
        assert data["seeds_arg"] == arg and data["epochs_arg"] == 2


# ---------------------------------------------------------------------------- the plot never replaces the records
def test_suite_refuses_a_results_file_its_plot_would_replace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """json_path='r.png' without plot_path: the plot's default path (r.png) was the results file."""
    monkeypatch.setattr(runner, "run_config", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ConfigError, match=r"^json_path '.*r\.png' ends in \.png: the learning-curve plot, written "
                                          r"beside the records with the suffix \.png, would replace them"):
        bench.run_suite("planetoid", seeds=1, epochs=1, root=tmp_path, json_path=tmp_path / "r.png")
    with pytest.raises(ConfigError, match="json_path and plot_path name the same file"):
        bench.run_suite("planetoid", seeds=1, epochs=1, root=tmp_path, json_path=tmp_path / "r.json",
                        plot_path=tmp_path / "r.json")
    (tmp_path / "d.json").mkdir()
    with pytest.raises(ConfigError, match=r"^json_path '.*d\.json' is a folder; give a file path"):
        bench.run_suite("planetoid", seeds=1, epochs=1, root=tmp_path, json_path=tmp_path / "d.json")


def test_save_records_refuses_a_plot_over_its_records(tmp_path: Path) -> None:
    record = {"dataset": "cora", "model": "gcn", "metric": "acc", "higher_is_better": True, "mean": 0.8, "std": None,
              "runs": [0.8], "seeds": [0], "epochs": 2, "status": "ok", "curves": {"val": [[0.7, 0.8]]}}
    path = tmp_path / "r.json"
    with pytest.raises(ConfigError, match="json_path and plot_path name the same file"):
        bench.save_records(path, [record], path)
    bench.save_records(tmp_path / "r.png", [record])  # no plot asked: a .png name is the caller's choice
    assert json.loads((tmp_path / "r.png").read_text())["records"] == [record]


def test_bench_report_refuses_to_write_its_table_or_plot_over_an_input(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    """graphdl bench report r.json --md r.json replaced the results with the table."""
    path = tmp_path / "r.json"
    text = json.dumps({"records": [{"dataset": "cora", "model": "gcn", "metric": "acc", "higher_is_better": True,
                                    "mean": 0.8, "std": None, "seconds_per_epoch": 0.1, "status": "ok"}]})
    path.write_text(text)
    for flag in ("--md", "--png"):
        assert bench_main(["report", str(path), flag, str(path)]) == 2
        assert f"{flag} {path} names one of the result files read" in capsys.readouterr().err
        assert path.read_text() == text


def test_bench_run_refuses_two_epoch_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture) -> None:
    """--set epochs=1 --epochs 2 trained 2 epochs without a word about the other value."""
    monkeypatch.setattr(bench, "run_config", lambda *a, **k: pytest.fail("trained"))
    assert bench_main(["run", "cora", "gcn", "--set", "epochs=1", "--epochs", "2", "--root", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == ("graphdl: error: --set epochs=1 contradicts --epochs 2; give the "
                                               "epochs once")
