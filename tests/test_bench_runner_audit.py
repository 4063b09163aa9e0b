"""Audit of graphdl.bench's runner, table and plot: each test failed before its fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import graphdl.bench as bench
from graphdl.bench.plot import plot_curves
from graphdl.bench.runner import _seed_list
from graphdl.errors import ConfigError


def _record(config: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A finished record as graphdl bench run writes it (figures made up)."""
    record = {"dataset": "cora", "model": "gcn", "metric": "acc", "higher_is_better": True, "mean": 0.8,
              "std": 0.01, "runs": [0.79, 0.81], "seeds": [0, 1], "epochs": 2, "epochs_run": [2, 2],
              "seconds": 1.0, "seconds_per_epoch": 0.25, "reference": 0.815, "reference_std": None,
              "reference_source": "paper", "config": config, "status": "ok",
              "curves": {k: [[0.1, 0.2], [0.3, 0.4]] for k in ("train", "val", "test")}}
    record.update(changes)
    return record


@pytest.fixture()
def cora_root(shared_data: Path, tmp_path: Path) -> Path:
    """A temporary data root holding the shared Cora files."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "planetoid").symlink_to(shared_data / "planetoid", target_is_directory=True)
    return tmp_path / "data"


# ---------------------------------------------------------------------------- table rows
def test_rows_of_one_model_that_differ_only_by_configuration_are_told_apart(cora_root: Path) -> None:
    """Two Cora GCN runs, 8 and 16 hidden channels, printed two identical 'cora | gcn' rows (and plot panels)."""
    kw: dict[str, Any] = {"seeds": 2, "epochs": 3, "root": cora_root, "verbose": False, "device": "cpu"}
    narrow = bench.run_config("cora", {"model": "gcn", "hidden_channels": 8}, **kw)
    wide = bench.run_config("cora", {"model": "gcn", "hidden_channels": 16}, **kw)
    for record in (narrow, wide):  # the test score at the first epoch of best validation score, std ddof=1
        for seed, (val, test) in enumerate(zip(record["curves"]["val"], record["curves"]["test"])):
            best = int(np.argmax(val))
            assert record["best_epochs"][seed] == best and record["runs"][seed] == test[best]
        assert record["mean"] == pytest.approx(np.mean(record["runs"]))
        assert record["std"] == pytest.approx(np.std(record["runs"], ddof=1))
    rows = bench.format_table([narrow, wide]).splitlines()[2:]
    assert [row.split(" | ")[1] for row in rows] == ["gcn (hidden_channels=8)", "gcn (hidden_channels=16)"]
    assert all("| acc ↑ |" in row and "| 0.8150 | Kipf & Welling" in row for row in rows)
    plain = bench.format_table([narrow, narrow], markdown=False).splitlines()[2:]  # one configuration: as before
    assert [row.split()[1] for row in plain] == ["gcn", "gcn"]


def test_labels_name_every_setting_that_differs_and_only_those() -> None:
    a = _record({"model": "gcn", "hidden_channels": 16, "layer_kwargs": {"heads": 2}, "lr": 0.01})
    b = _record({"model": "gcn", "hidden_channels": 16, "layer_kwargs": {"heads": 4}, "lr": 0.01, "loss": "mse"})
    other = _record({"model": "gat", "lr": 0.5}, model="gat")  # another model: its own group, its own label
    rows = bench.format_table([a, b, other]).splitlines()[2:]
    assert [row.split(" | ")[1] for row in rows] == ['gcn (layer_kwargs={"heads":2})',
                                                     'gcn (layer_kwargs={"heads":4}, loss=mse)', "gat"]


def test_plot_panels_of_differing_configurations_are_told_apart(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.axes

    titles: list[str] = []
    original = matplotlib.axes.Axes.set_title
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title",
                        lambda self, label, *a, **k: titles.append(label) or original(self, label, *a, **k))
    plot_curves([_record({"model": "gcn", "dropout": 0.5}), _record({"model": "gcn", "dropout": 0.1})],
                tmp_path / "c.png")
    assert titles == ["cora / gcn (dropout=0.5) (2 seeds)", "cora / gcn (dropout=0.1) (2 seeds)"]


# ---------------------------------------------------------------------------- plot
def test_plot_leaves_the_callers_matplotlib_backend_and_figures_alone(tmp_path: Path) -> None:
    """plot_curves called matplotlib.use("Agg"): a notebook's inline backend (here svg) became Agg for the rest
    of the session, so the user's later figures no longer showed."""
    import matplotlib
    import matplotlib.pyplot as plt

    before = matplotlib.get_backend()
    plt.switch_backend("svg")
    try:
        mine = plt.figure()
        path = plot_curves([_record({"model": "gcn"})], tmp_path / "c.png")
        assert matplotlib.get_backend().lower() == "svg"
        assert plt.get_fignums() == [mine.number]  # the user's figure kept, none of the plot's left behind
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert [p.name for p in tmp_path.iterdir()] == ["c.png"]  # written atomically: no temporary left
    finally:
        plt.close("all")
        plt.switch_backend(before)


# ---------------------------------------------------------------------------- seeds
@pytest.mark.parametrize(("seeds", "message"), [
    ("12", "seeds must be a number of seeds (an int >= 1) or a list of int seeds, got str '12'"),
    (2.0, "seeds must be a number of seeds (an int >= 1) or a list of int seeds, got float 2.0"),
    ([1.7, 2], "seeds must be ints, got float 1.7 in the list of seeds"),
    ([0, True], "seeds must be ints, got bool True in the list of seeds"),
])
def test_seeds_of_the_wrong_type_are_named(seeds: Any, message: str) -> None:
    """seeds="12" ran seeds 1 and 2 and [1.7, 2] ran seeds 1 and 2 (int(1.7)); a float count ended in
    "TypeError: object of type 'float' has no len()"."""
    with pytest.raises(ConfigError, match=f"^{message.replace('(', r'[(]').replace(')', r'[)]')}$"):
        _seed_list(seeds)


def test_numpy_seeds_are_seeds() -> None:
    """np.int64(3) (e.g. from a sweep over np.arange) ended in "TypeError: ... has no len()"."""
    assert _seed_list(np.int64(3)) == [0, 1, 2]
    assert _seed_list(np.arange(2, 4)) == [2, 3]
    assert _seed_list(range(2)) == [0, 1] and _seed_list((5,)) == [5]
