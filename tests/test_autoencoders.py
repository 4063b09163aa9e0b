"""GAE / VGAE / ARGA: losses equal PyG's, training through the shared Trainer improves, errors are clear."""

from __future__ import annotations

import pytest
import torch
import torch_geometric
from torch_geometric.data import Data
from torch_geometric.transforms import RandomLinkSplit
from torch_geometric.utils import to_undirected

import graphdl
from graphdl.errors import ConfigError, ValidationError
from graphdl.models import autoencoders as ae


def _community_graph(n: int = 120, blocks: int = 4, features: int = 16, seed: int = 0) -> Data:
    """A stochastic block model with block-informative features: links are easy to predict."""
    gen = torch.Generator().manual_seed(seed)
    block = torch.arange(n) % blocks
    same = block[:, None] == block[None, :]
    prob = torch.where(same, torch.tensor(0.25), torch.tensor(0.01))
    upper = torch.triu(torch.rand(n, n, generator=gen) < prob, diagonal=1)
    edge_index = to_undirected(upper.nonzero().t(), num_nodes=n)
    x = torch.nn.functional.one_hot(block, features).float() + 0.3 * torch.randn(n, features, generator=gen)
    return Data(x=x, edge_index=edge_index, num_nodes=n)


def _splits(data: Data, seed: int = 0) -> tuple[Data, Data, Data]:
    torch.manual_seed(seed)
    return RandomLinkSplit(num_val=0.05, num_test=0.1, is_undirected=True, split_labels=True,
                           add_negative_train_samples=False)(data)


def _shared_encoders(in_channels: int = 16) -> tuple[ae.VGAE, torch_geometric.nn.VGAE]:
    """Our VGAE and PyG's VGAE around one encoder module (the same weights)."""
    torch.manual_seed(0)
    ours = ae.VGAE(in_channels, hidden_channels=8, out_channels=4)
    theirs = torch_geometric.nn.VGAE(ours.encoder)
    return ours, theirs


def test_registered() -> None:
    for name in ("gae", "vgae", "arga", "argva"):
        assert name in graphdl.models
    assert {"autoencoder", "adversarial_autoencoder"} <= set(graphdl.train.TASKS.list())


def test_classic_encoder_shapes() -> None:
    model = ae.VGAE(16, hidden_channels=32, out_channels=16)
    # Kipf & Welling / PyG example: in -> 32 (shared) -> (16, 16)
    assert model.encoder.trunk.convs[0].in_channels == 16 and model.encoder.trunk.convs[0].out_channels == 32
    assert model.encoder.conv_mu.out_channels == 16 and model.encoder.conv_logstd.out_channels == 16
    gae = ae.GAE(16, hidden_channels=32, out_channels=16)
    assert [c.out_channels for c in gae.encoder.convs] == [32, 16]


def test_vgae_terms_equal_pyg() -> None:
    data = _community_graph()
    train, _, _ = _splits(data)
    ours, theirs = _shared_encoders()
    ours.eval(), theirs.eval()
    z_ours = ours(train.x, train.edge_index)
    z_theirs = theirs.encode(train.x, train.edge_index)
    torch.testing.assert_close(z_ours, z_theirs)
    torch.testing.assert_close(ours.kl_loss(), theirs.kl_loss())
    # the same statistics passed explicitly (and logstd clamped at 10 in both)
    mu, logstd = torch.randn(30, 4), torch.randn(30, 4) * 6
    torch.testing.assert_close(ours.kl_loss(mu, logstd), theirs.kl_loss(mu, logstd))

    pos = train.pos_edge_label_index
    torch.manual_seed(3)
    neg = torch_geometric.utils.negative_sampling(pos, num_nodes=data.num_nodes)
    vgae_loss = graphdl.losses.create("vgae")
    ours_total = vgae_loss(z_ours, ours.mu, ours.logstd, pos, neg)
    theirs_total = theirs.recon_loss(z_theirs, pos, neg) + theirs.kl_loss() / data.num_nodes
    torch.testing.assert_close(ours_total, theirs_total, rtol=1e-5, atol=1e-6)
    recon = graphdl.losses.create("link_bce")(ours.decode(z_ours, pos), ours.decode(z_ours, neg))
    torch.testing.assert_close(recon, theirs.recon_loss(z_theirs, pos, neg), rtol=1e-5, atol=1e-6)


def test_training_step_equals_pyg_example() -> None:
    """One task step (sampling z, sampling negatives) equals PyG's examples/autoencoder.py step under one seed."""
    data = _community_graph()
    splits = _splits(data)
    ours, theirs = _shared_encoders()
    ours.train(), theirs.train()
    task = ae.ReconstructionTask()
    task.setup(None, splits)
    graphdl.seed_everything(11)  # negative_sampling draws from Python's random module too
    loss = task.train_loss(ours, task.pos["train"], graphdl.losses.create("vgae"))
    graphdl.seed_everything(11)
    train = splits[0]
    z = theirs.encode(train.x, train.edge_index)
    expected = theirs.recon_loss(z, train.pos_edge_label_index) + (1 / train.num_nodes) * theirs.kl_loss()
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


def test_evaluation_equals_pyg_test() -> None:
    data = _community_graph()
    splits = _splits(data)
    ours, theirs = _shared_encoders()
    task = ae.ReconstructionTask()
    task.setup(None, splits)
    ours.eval(), theirs.eval()
    got = task.evaluate(ours, ["val", "test"])
    z = theirs.encode(splits[0].x, splits[0].edge_index)
    for split, part in zip(("val", "test"), splits[1:]):
        auc, ap = theirs.test(z, part.pos_edge_label_index, part.neg_edge_label_index)
        assert got[f"{split}_rocauc"] == pytest.approx(auc)
        assert got[f"{split}_ap"] == pytest.approx(ap)


def test_gae_training_through_trainer_improves_val_auc() -> None:
    data = _community_graph()
    graphdl.seed_everything(0)  # the initial weights must not depend on the tests that ran before
    model = graphdl.models.create("gae", in_channels=16, hidden_channels=16, out_channels=8)
    trainer = graphdl.Trainer(model, loss="link_bce", task="autoencoder", lr=0.01, epochs=30, seed=0,
                              progress=False)
    result = trainer.fit(data)  # the task splits the graph itself (85/5/10) under the seed
    first = result.history[0]["val_rocauc"]
    assert result.best["val_rocauc"] > first + 0.05
    assert result.best["val_rocauc"] > 0.85
    assert set(result.test) == {"test_rocauc", "test_ap"}


def test_vgae_and_argva_train() -> None:
    data = _community_graph()
    splits = _splits(data)
    for name, task, loss in (("vgae", "autoencoder", "vgae"), ("argva", "adversarial_autoencoder", "vgae"),
                             ("arga", "adversarial_autoencoder", "link_bce")):
        graphdl.seed_everything(0)  # the initial weights too: the result must not depend on earlier tests
        model = graphdl.models.create(name, in_channels=16, hidden_channels=16, out_channels=8)
        result = graphdl.Trainer(model, loss=loss, task=task, lr=0.01, epochs=25, seed=0,
                                 progress=False).fit(None, splits)
        assert result.best["val_rocauc"] > 0.75, (name, result.best)
    # the three graphs may also be given by name
    runs = []
    for given in (splits, dict(zip(("train", "val", "test"), splits))):
        graphdl.seed_everything(0)
        model = graphdl.models.create("vgae", in_channels=16, hidden_channels=16, out_channels=8)
        runs.append(graphdl.Trainer(model, loss="vgae", task="autoencoder", lr=0.01, epochs=5, seed=0,
                                    progress=False).fit(None, given).history)
    assert runs[0] == runs[1]
    model.eval()  # predict(new graph) encodes the whole graph (the mean, for a variational model)
    trainer = graphdl.Trainer(model, loss="vgae", task="autoencoder", progress=False)
    with torch.no_grad():
        torch.testing.assert_close(trainer.predict(data), model.encode(data.x, data.edge_index))


def test_the_full_graph_beside_a_link_split_is_refused() -> None:
    data = _community_graph()
    splits = _splits(data)
    for task in ("autoencoder", "adversarial_autoencoder"):
        model = graphdl.models.create("gae" if task == "autoencoder" else "arga", in_channels=16,
                                      hidden_channels=16, out_channels=8)
        trainer = graphdl.Trainer(model, loss="link_bce", task=task, epochs=1, progress=False)
        with pytest.raises(ValidationError, match=r"the full graph would leak the held-out edges .* "
                                                  r"Call fit\(None, splits\)"):
            trainer.fit(data, splits)
        assert trainer.fit(splits[0], splits).history  # the training graph itself is what it would use


def test_arga_discriminator_has_its_own_optimizer() -> None:
    data = _community_graph()
    model = ae.ARGA(16, hidden_channels=16, out_channels=8)
    before = [p.detach().clone() for p in model.discriminator.parameters()]
    trainer = graphdl.Trainer(model, loss="link_bce", task="adversarial_autoencoder", lr=0.01, epochs=3,
                              seed=0, progress=False)
    trainer.fit(data)
    in_trainer = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    disc = {id(p) for p in model.discriminator.parameters()}
    assert not in_trainer & disc  # the Trainer's optimiser steps the encoder only
    task_opt = trainer.task.discriminator_optimizer
    assert {id(p) for g in task_opt.param_groups for p in g["params"]} == disc
    assert any(not torch.equal(a, b.cpu()) for a, b in zip(before, model.discriminator.parameters()))


def test_arga_losses_equal_pyg() -> None:
    torch.manual_seed(0)
    ours = ae.ARGA(16, hidden_channels=8, out_channels=4)
    theirs = torch_geometric.nn.ARGA(ours.encoder, ours.discriminator)
    z = torch.randn(20, 4, requires_grad=True)
    torch.testing.assert_close(ours.reg_loss(z), theirs.reg_loss(z), rtol=1e-5, atol=1e-6)
    torch.manual_seed(5)
    got = ours.discriminator_loss(z)
    torch.manual_seed(5)
    torch.testing.assert_close(got, theirs.discriminator_loss(z), rtol=1e-5, atol=1e-6)
    # the encoder's term sends no gradient into the discriminator
    ours.reg_loss(z).backward()
    assert all(p.grad is None for p in ours.discriminator.parameters()) and z.grad is not None


def test_wrong_loss_for_model_is_explained() -> None:
    data = _community_graph()
    with pytest.raises(ConfigError, match="variational: train it with loss='vgae'"):
        graphdl.Trainer(ae.VGAE(16), loss="link_bce", task="autoencoder", epochs=1, progress=False).fit(data)
    with pytest.raises(ConfigError, match="needs a variational model"):
        graphdl.Trainer(ae.GAE(16), loss="vgae", task="autoencoder", epochs=1, progress=False).fit(data)
    with pytest.raises(ConfigError, match="needs a model with a discriminator"):
        graphdl.Trainer(ae.GAE(16), loss="link_bce", task="adversarial_autoencoder", epochs=1,
                        progress=False).fit(data)


@pytest.mark.parametrize("task", ["autoencoder", "link"])
def test_arga_on_a_task_without_its_adversarial_step_is_refused(task) -> None:
    """Before, both tasks trained ARGA as a plain GAE, its discriminator untouched."""
    splits = _splits(_community_graph())
    with pytest.raises(ConfigError, match=rf"^ARGA is an adversarial auto-encoder: the {task} task would train its "
                                          r"encoder alone and leave its discriminator untrained; train it with "
                                          r"task='adversarial_autoencoder'$"):
        graphdl.Trainer(ae.ARGA(16), task=task, epochs=1, progress=False).fit(None, splits)


def test_vgae_on_the_link_task_is_refused() -> None:
    """Before, the link task trained the VGAE without its KL term."""
    with pytest.raises(ConfigError, match=r"^VGAE is variational, and the link task's loss has no KL term \(its "
                                          r"outputs would be samples of an unregularised posterior\); train it with "
                                          r"task='autoencoder' and loss='vgae' \(reconstruction \+ KL/N\)$"):
        graphdl.Trainer(ae.VGAE(16), task="link", epochs=1, progress=False).fit(None, _splits(_community_graph()))


@pytest.mark.parametrize("metric", ["acc", "hits@20", "ogbl-vessel"])
def test_the_autoencoder_task_takes_rocauc_or_ap(metric: str) -> None:
    """ogbl-vessel's evaluator is named rocauc but takes (positive, negative) scores; it was handed (labels,
    scores) and returned a meaningless number."""
    with pytest.raises(ConfigError, match=rf"^the autoencoder task reports rocauc and ap; metric must be one of "
                                          rf"them, got '{metric}'$"):
        ae.ReconstructionTask(metric=metric)
    assert ae.ReconstructionTask(metric="ap").other_metric.name == "rocauc"


def test_bad_splits_raise() -> None:
    data = _community_graph()
    task = ae.ReconstructionTask()
    with pytest.raises(ValidationError, match="RandomLinkSplit"):
        task.setup(None, {"train": data})
    train, val, test = RandomLinkSplit(num_val=0.05, num_test=0.1, is_undirected=True, split_labels=True,
                                       add_negative_train_samples=False, neg_sampling_ratio=0.0)(data)
    with pytest.raises(ValidationError, match=r"^the val split has no negative pairs to score its edges against; "
                                              r"RandomLinkSplit adds them"):
        task.setup(None, (train, val, test))
    # num_val=0: "needs positive and negative pairs ... RandomLinkSplit adds negatives by default" (misleading)
    for num_val, num_test, name in ((0.0, 0.1, "val"), (0.05, 0.0, "test")):
        parts = RandomLinkSplit(num_val=num_val, num_test=num_test, is_undirected=True, split_labels=True,
                                add_negative_train_samples=False)(data)
        for setup in (task.setup, graphdl.train.LinkTask().setup):
            with pytest.raises(ValidationError, match=rf"^the {name} graph of RandomLinkSplit holds no {name} edges "
                                                      rf"to score; split with num_{name} > 0"):
                setup(None, parts)


def test_arga_resumes_exactly_with_its_discriminator_optimizer(tmp_path) -> None:
    data = _community_graph()

    def trainer(epochs):
        graphdl.seed_everything(0)
        model = ae.ARGA(16, hidden_channels=16, out_channels=8)
        return graphdl.Trainer(model, loss="link_bce", task="adversarial_autoencoder", lr=0.01, epochs=epochs,
                               seed=0, progress=False, device="cpu",  # bit-exact: CPU kernels
                               callbacks=[graphdl.train.ModelCheckpoint(restore_best=False)])  # final weights

    full = trainer(4)
    full.fit(data)
    first = trainer(2)
    first.fit(data)
    first.save_checkpoint(tmp_path / "last.pt")
    assert torch.load(tmp_path / "last.pt", weights_only=False)["task"]["discriminator_optimizer"]["state"]
    resumed = trainer(4)
    resumed.fit(data, resume_from=tmp_path / "last.pt")
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert resumed.history == full.history
    # The discriminator's Adam moments continued too (a fresh Adam would have stepped differently).
    full_opt, resumed_opt = full.task.discriminator_optimizer, resumed.task.discriminator_optimizer
    for a, b in zip(full_opt.state.values(), resumed_opt.state.values()):
        assert torch.equal(a["exp_avg_sq"], b["exp_avg_sq"]) and int(a["step"]) == int(b["step"]) == 20


def test_a_checkpoint_with_task_state_cannot_be_loaded_by_a_task_without_it(tmp_path) -> None:
    data = _community_graph()
    model = ae.ARGA(16, hidden_channels=16, out_channels=8)
    trainer = graphdl.Trainer(model, loss="link_bce", task="adversarial_autoencoder", lr=0.01, epochs=1,
                              seed=0, progress=False)
    trainer.fit(data)
    trainer.save_checkpoint(tmp_path / "last.pt")
    # the Trainer refuses ARGA for the plain task when it is built, before any checkpoint is read
    with pytest.raises(ConfigError, match=r"^ARGA is an adversarial auto-encoder: the autoencoder task would train "
                                          r"its encoder alone and leave its discriminator untrained"):
        graphdl.Trainer(model, loss="link_bce", task="autoencoder", lr=0.01, epochs=2, seed=0, progress=False)
    # and the plain task refuses the adversarial task's state
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    with pytest.raises(ConfigError, match=r"^ReconstructionTask keeps no state, but the checkpoint holds task "
                                          r"state \['discriminator_optimizer'\]; it was written by another task$"):
        ae.ReconstructionTask().load_state_dict(state["task"])


@pytest.mark.parametrize("shares", [{"num_val": 0.5, "num_test": 0.6}, {"num_val": 0.0}, {"num_test": -0.1}])
def test_held_out_edge_shares_are_checked_when_built(shares) -> None:
    """Before: RandomLinkSplit's 'Insufficient number of edges' ValueError, or a message about negatives."""
    with pytest.raises(ConfigError, match=r"^num_val and num_test are the shares of edges held out for validation "
                                          r"and test: each in \(0, 1\), together below 1"):
        ae.ReconstructionTask(**shares)


def test_num_negatives_must_be_a_whole_number() -> None:
    with pytest.raises(ConfigError, match=r"^the autoencoder task's num_negatives must be an int >= 1, got 2.5$"):
        ae.ReconstructionTask(num_negatives=2.5)


@pytest.mark.parametrize("name", ["vgae", "argva"])
def test_a_variational_model_deep_copies_and_pickles_after_a_forward_pass(name: str) -> None:
    """Its last mu/logstd kept their autograd graph: deepcopy raised 'Only Tensors created explicitly by the user
    (graph leaves) support the deepcopy protocol'."""
    import copy
    import pickle

    model = graphdl.models.create(name, in_channels=4)
    model.encode(torch.randn(6, 4), torch.tensor([[0, 1, 2], [1, 2, 3]]))
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        torch.testing.assert_close(clone.mu, model.mu)
        torch.testing.assert_close(clone.kl_loss(), model.kl_loss())
    assert model.mu.requires_grad  # the model's own values keep theirs, for its KL term
