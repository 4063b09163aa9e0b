"""Distributed data-parallel training (gloo, two CPU processes) against one process with the same global batch.

How the equivalence works (docs/distributed.md): the task draws each epoch's
order as ``torch.randperm(n)`` seeded with ``seed + epoch``; rank ``r`` of
``W`` takes positions ``r, r + W, ...`` in batches of ``b``, so batch ``i`` of
all ranks together is the single process's batch ``i`` of size ``b * W``. The
loss is a mean and the per-rank batches are equally large, so DDP's average of
the per-rank gradients is the single process's gradient, up to rounding.
"""

import json
import os

import torch
from torch_geometric.data import Data
from torch_geometric.datasets import FakeDataset

import graphdl
import graphdl.bench
from graphdl.distributed import get_world_size, is_distributed, spawn
from graphdl.train import ModelCheckpoint, Trainer

EPOCHS = 2
PER_RANK_BATCH = 4
WORLD = 2


def _graph_dataset():
    graphdl.seed_everything(123)  # FakeDataset draws from Python's and torch's RNGs
    dataset = FakeDataset(num_graphs=24, avg_num_nodes=8, num_channels=4, num_classes=2, task="graph")
    splits = {"train": torch.arange(16), "val": torch.arange(16, 20), "test": torch.arange(20, 24)}
    return dataset, splits


def _gin():
    graphdl.seed_everything(7)
    return graphdl.models.create("graph_gnn", layer="gin", in_channels=4, hidden_channels=16, out_channels=2,
                                 num_layers=2, dropout=0.0, layer_kwargs={"batch_norm": False})


def _node_graph():
    gen = torch.Generator().manual_seed(5)
    n = 48
    data = Data(x=torch.randn(n, 6, generator=gen), edge_index=torch.randint(0, n, (2, 200), generator=gen),
                y=torch.randint(0, 3, (n,), generator=gen))
    mask = torch.zeros(n, dtype=torch.bool)
    data.train_mask, data.val_mask, data.test_mask = mask.clone(), mask.clone(), mask.clone()
    data.train_mask[:32], data.val_mask[32:40], data.test_mask[40:] = True, True, True
    return data


def _sage():
    graphdl.seed_everything(11)
    return graphdl.models.create("gnn", layer="sage", in_channels=6, hidden_channels=16, out_channels=3,
                                 num_layers=2, dropout=0.0)


def _fit_graph(batch_size, shuffle_seed=None, **trainer_kw):
    dataset, splits = _graph_dataset()
    task_kwargs = {"batch_size": batch_size, "metric": "acc", "shuffle_seed": shuffle_seed}
    trainer = Trainer(_gin(), "cross_entropy", "graph", task_kwargs=task_kwargs,
                      lr=0.01, epochs=EPOCHS, seed=0, progress=False, device="cpu", **trainer_kw)
    result = trainer.fit(dataset, splits)
    return trainer, result


def _fit_node(batch_size, **task_kw):
    trainer = Trainer(_sage(), "cross_entropy", "node", lr=0.01, epochs=EPOCHS, seed=0, progress=False,
                      device="cpu", callbacks=[ModelCheckpoint(restore_best=False)],
                      task_kwargs={"num_neighbors": [-1, -1], "batch_size": batch_size, **task_kw})
    result = trainer.fit(_node_graph())
    return trainer, result


def _fit_missing_targets(batch_size, shuffle_seed=None):
    """Three 0/1 targets per graph, 40% of them missing (NaN), so the ranks hold different numbers of labelled
    targets; one batch per epoch, so the first epoch's training loss is that of the initial weights."""
    dataset, splits = _graph_dataset()
    gen = torch.Generator().manual_seed(3)
    targets = torch.randint(0, 2, (len(dataset), 3), generator=gen).float()
    targets[torch.rand(targets.shape, generator=gen) < 0.4] = float("nan")
    graphs = [dataset[i] for i in range(len(dataset))]
    for graph, y in zip(graphs, targets):
        graph.y = y.view(1, 3)
    graphdl.seed_everything(7)
    model = graphdl.models.create("graph_gnn", layer="gin", in_channels=4, hidden_channels=8, out_channels=3,
                                  num_layers=2, dropout=0.0, layer_kwargs={"batch_norm": False})
    trainer = Trainer(model, "bce_with_logits", "graph", lr=0.01, epochs=1, seed=0, progress=False, device="cpu",
                      task_kwargs={"batch_size": batch_size, "metric": "acc", "shuffle_seed": shuffle_seed})
    return trainer.fit(graphs, splits).history[0]["train_loss"]


def _unseeded_fit_draws(rank):
    """Draws from the torch RNG after an unseeded fit, whose ranks had used their RNGs differently before (rank 0
    drew a sample for a plot, say): every rank must shuffle, draw views and drop out as the others do."""
    model = _sage()  # seeds every RNG
    torch.rand(rank + 1)
    trainer = Trainer(model, "cross_entropy", "node", epochs=1, progress=False, device="cpu")
    trainer.fit(_node_graph())
    return torch.rand(3)


def _params(trainer):
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def _worker(rank, world_size, out_dir):
    """One rank: the graph task (GIN, no BatchNorm) and a full-neighbourhood node task under DDP."""
    assert is_distributed() and get_world_size() == world_size
    trainer, graph_result = _fit_graph(PER_RANK_BATCH, log_path=f"{out_dir}/log.json",
                                       callbacks=[ModelCheckpoint(out_dir, restore_best=False)])
    assert trainer.is_main_process == (rank == 0)
    graph_batches = len(trainer.task.train_batches())
    node_trainer, node_result = _fit_node(PER_RANK_BATCH)
    return {"graph_params": _params(trainer), "graph_history": graph_result.history,
            "graph_batches": graph_batches, "node_params": _params(node_trainer),
            "node_history": node_result.history, "missing_targets_loss": _fit_missing_targets(8),
            "unseeded_draws": _unseeded_fit_draws(rank)}


def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path):
    ranks = spawn(_worker, WORLD, args=(str(tmp_path),), backend="gloo", threads=1)

    # One process, the same seeded order (shuffle_seed = the Trainer seed the ranks used), global batch.
    single, single_result = _fit_graph(PER_RANK_BATCH * WORLD, shuffle_seed=0,
                                       callbacks=[ModelCheckpoint(restore_best=False)])
    assert len(single.task.train_batches()) == ranks[0]["graph_batches"] == 2  # 16 graphs / (4 * 2)

    node_single, node_single_result = _fit_node(PER_RANK_BATCH * WORLD, shuffle_seed=0)

    for key, params, result in (("graph", _params(single), single_result),
                                ("node", _params(node_single), node_single_result)):
        for rank in ranks:
            assert rank[f"{key}_params"].keys() == params.keys()
            for name, value in params.items():
                torch.testing.assert_close(rank[f"{key}_params"][name], value, atol=1e-5, rtol=1e-5,
                                           msg=f"{key} task: {name}")
        # Every rank reports the same figures (rank 0's evaluation, broadcast; the loss averaged over ranks).
        assert ranks[0][f"{key}_history"] == ranks[1][f"{key}_history"]
        for dist_row, row in zip(ranks[0][f"{key}_history"], result.history):
            assert dist_row.keys() == row.keys()
            for metric, value in row.items():
                assert abs(dist_row[metric] - value) < 1e-5, (key, metric, dist_row[metric], value)
        assert len(ranks[0][f"{key}_history"]) == EPOCHS

    # The training loss counts every rank's labelled targets together, as one process counts them: before, the
    # ranks' weighted means were averaged, though the ranks held different numbers of labelled targets.
    single_loss = _fit_missing_targets(16, shuffle_seed=0)
    for rank in ranks:
        assert abs(rank["missing_targets_loss"] - single_loss) < 1e-6, (rank["missing_targets_loss"], single_loss)

    # Without a seed, rank 0 draws one for every rank (each process's own RNG state shuffled the inductive task's
    # graphs and drew the contrastive task's views, which DDP then averaged over different batches).
    assert torch.equal(ranks[0]["unseeded_draws"], ranks[1]["unseeded_draws"])

    # Rank 0 alone wrote the checkpoint and the log; the checkpoint holds both ranks' RNG states.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt", "log.json"]
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    assert state["epoch"] == EPOCHS - 1 and len(state["rng_per_rank"]) == WORLD
    assert len(json.loads((tmp_path / "log.json").read_text())) == EPOCHS
    # A single process can continue from a checkpoint a distributed run wrote.
    for name, value in state["model"].items():
        torch.testing.assert_close(value, ranks[0]["graph_params"][name], atol=0, rtol=0)


def test_seeded_shuffle_gives_the_union_of_the_ranks_batches():
    """The sampler design itself: rank batches i together == the one-process batch i (as sets)."""
    from graphdl.train.tasks import GraphTask

    dataset, splits = _graph_dataset()
    single = GraphTask(batch_size=PER_RANK_BATCH * WORLD, shuffle_seed=3)
    single.setup(dataset, splits)
    shards = []
    for rank in range(WORLD):
        task = GraphTask(batch_size=PER_RANK_BATCH)
        task.setup(dataset, splits)
        task.shard(rank, WORLD, seed=3)
        shards.append(task)
    for epoch in range(3):
        for task in (single, *shards):
            task.set_epoch(epoch)
        one = [sorted(b.x.sum(-1).tolist()) for b in single.train_batches()]
        many = [sorted(sum((b.x.sum(-1).tolist() for b in batches), []))
                for batches in zip(*(s.train_batches() for s in shards))]
        assert one == many
    orders = []
    for epoch in (0, 1):
        single.set_epoch(epoch)
        orders.append([b.x.sum().item() for b in single.train_batches()])
    assert orders[0] != orders[1]  # reshuffled every epoch


# ---------------------------------------------------------------------------- graphdl train --nproc 2
FAKE_RUNNER = '''
"""Loaded at interpreter start (PYTHONPATH): a small run_config in place of the benchmark runner."""
import torch
import graphdl.bench
from torch_geometric.data import Data


def run_config(dataset, model_cfg=None, seeds=1, epochs=None, root=None, *, progress=False, device=None,
               log_path=None, checkpoint_dir=None, resume=False, **kwargs):
    import graphdl
    from graphdl.distributed import get_world_size, is_main_process
    from graphdl.train import Trainer
    from graphdl.train.resume import fit_with_checkpoints

    if epochs > 50:
        from graphdl.errors import ConfigError
        raise ConfigError("the fake runner takes at most 50 epochs")
    gen = torch.Generator().manual_seed(0)
    data = Data(x=torch.randn(40, 4, generator=gen), edge_index=torch.randint(0, 40, (2, 120), generator=gen),
                y=torch.randint(0, 2, (40,), generator=gen))
    data.train_mask = torch.arange(40) < 24
    data.val_mask = torch.arange(40) >= 24
    runs, skipped = [], []
    for seed in range(seeds):
        graphdl.seed_everything(seed)
        model = graphdl.models.create("gnn", layer=model_cfg.get("layer", "sage"), in_channels=4,
                                      hidden_channels=8, out_channels=2, dropout=0.0)
        trainer = Trainer(model, epochs=epochs, seed=seed, progress=False, device="cpu", log_path=log_path,
                          task_kwargs={"num_neighbors": [-1], "batch_size": 4})
        result = fit_with_checkpoints(trainer, data, checkpoint_dir=checkpoint_dir, resume=resume, seed=seed)
        runs.append(result.best["val_acc"])
        skipped.append(bool(result.extra.get("skipped")))
    print(f"rank done, main={is_main_process()}", flush=True)
    return {"dataset": dataset, "model": model_cfg.get("layer", "sage"), "metric": "acc",
            "higher_is_better": True, "mean": sum(runs) / len(runs), "std": 0.0, "runs": runs,
            "epochs": epochs, "seconds": 0.0, "seconds_per_epoch": 0.0, "reference": None,
            "world_size": get_world_size(), "skipped": skipped}


graphdl.bench.run_config = run_config
'''


def test_graphdl_train_nproc_2_runs_two_processes_and_rank_0_reports(tmp_path, monkeypatch, capfd):
    """``graphdl train --nproc 2`` (in-process parent, spawned children that read the config back)."""
    from graphdl.cli import main

    (tmp_path / "sitecustomize.py").write_text(FAKE_RUNNER)
    # the children load the fake runner at start-up (and still find what the parent's PYTHONPATH held)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]))
    namespace = {}
    # the runner replaces graphdl.bench.run_config as it loads: record the real one first, to be restored
    monkeypatch.setattr(graphdl.bench, "run_config", graphdl.bench.run_config)
    exec(compile(FAKE_RUNNER, "fake_runner", "exec"), namespace)  # noqa: S102 - the same runner, here
    ckpt = tmp_path / "ckpt"
    single = namespace["run_config"]("cora", {"layer": "sage"}, seeds=1, epochs=2, checkpoint_dir=ckpt)
    capfd.readouterr()
    argv = ["train", "--nproc", "2", "--dataset", "cora", "--layer", "sage", "--seeds", "2", "--epochs", "2",
            "--device", "cpu", "--checkpoint-dir", str(ckpt), "--resume", "--json", str(tmp_path / "out.json")]
    assert main(argv) == 0
    out, err = capfd.readouterr()
    assert out.count("rank done") == 2 and out.count("main=True") == 1, out + err
    assert out.count("wrote ") == 1  # the table and the JSON come from rank 0 alone
    saved = json.loads((tmp_path / "out.json").read_text())
    assert saved["command"] == "graphdl " + " ".join(argv)  # graphdl bench's file format, with the command
    record = saved["records"][0]
    assert record["world_size"] == 2
    assert record["skipped"] == [True, False]  # seed 0 had finished (done.json): --resume skipped it
    assert record["runs"][0] == single["runs"][0]
    assert sorted(p.name for p in ckpt.iterdir()) == ["seed_0", "seed_1"]
    assert (ckpt / "seed_1" / "done.json").is_file() and (ckpt / "seed_1" / "last.pt").is_file()
    # An error the children raise on purpose is printed once, as one line, with exit code 2.
    assert main(argv[:-2] + ["--epochs", "99"]) == 2
    out, err = capfd.readouterr()
    assert err.count("graphdl: error:") == 1 and "the fake runner takes at most 50 epochs" in err, err
    assert "Traceback" not in err
