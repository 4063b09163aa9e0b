"""Auto-encoder, ARGA and anomaly-task fixes: gradient clipping, split reuse, label-free scoring, the configured
loss, width and dtype errors, and error messages naming their own task."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

import graphdl
from graphdl.errors import ConfigError, ValidationError
from graphdl.models import autoencoders as ae
from graphdl.models.outliers import inject_outliers


def _link_graph(n: int = 120, blocks: int = 4, features: int = 16, seed: int = 0) -> Data:
    """A stochastic block model with block-informative features."""
    gen = torch.Generator().manual_seed(seed)
    block = torch.arange(n) % blocks
    prob = torch.where(block[:, None] == block[None, :], torch.tensor(0.25), torch.tensor(0.01))
    upper = torch.triu(torch.rand(n, n, generator=gen) < prob, diagonal=1)
    x = nn.functional.one_hot(block, features).float() + 0.3 * torch.randn(n, features, generator=gen)
    return Data(x=x, edge_index=to_undirected(upper.nonzero().t(), num_nodes=n), num_nodes=n)


def _outlier_graph(n: int = 200, features: int = 12) -> Data:
    gen = torch.Generator().manual_seed(0)
    block = torch.arange(n) % 4
    prob = torch.where(block[:, None] == block[None, :], torch.tensor(0.08), torch.tensor(0.002))
    upper = torch.triu(torch.rand(n, n, generator=gen) < prob, diagonal=1)
    x = torch.zeros(n, features)
    x[torch.arange(n), block] = 1.0
    x[:, 4:] = (torch.rand(n, features - 4, generator=gen) < 0.1).float()
    graph = Data(x=x, edge_index=to_undirected(upper.nonzero().t(), num_nodes=n), num_nodes=n)
    return inject_outliers(graph, m=8, n_structural=2, n_contextual=12, k=30, seed=1)


# ----------------------------------------------------------------------------- 1. ARGA grad_clip
@pytest.mark.parametrize("name, loss", [("arga", "link_bce"), ("argva", "vgae")])
def test_adversarial_grad_clip_measures_the_encoder_gradients_only(name: str, loss: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The discriminator's gradients of its own step were left in place and counted in the clipped norm, so the
    encoder's update shrank by the discriminator's gradient size."""
    graphdl.seed_everything(0)
    model = graphdl.models.create(name, in_channels=16, hidden_channels=8, out_channels=4)
    disc = {id(p) for p in model.discriminator.parameters()}
    norms: list[tuple[float, float]] = []
    clip = nn.utils.clip_grad_norm_

    def spy(params, max_norm, *args, **kwargs):  # noqa: ANN001, ANN202
        params = list(params)
        encoder = [p.grad for p in params if id(p) not in disc and p.grad is not None]
        expected = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in encoder]))
        total = clip(params, max_norm, *args, **kwargs)
        norms.append((float(total), float(expected)))
        return total

    monkeypatch.setattr(nn.utils, "clip_grad_norm_", spy)
    graphdl.Trainer(model, loss=loss, task="adversarial_autoencoder", epochs=2, seed=0, progress=False,
                    grad_clip=1e-3).fit(_link_graph())
    assert len(norms) == 2
    for total, expected in norms:
        assert total == pytest.approx(expected, rel=1e-6)
    assert all(p.grad is None for p in model.discriminator.parameters())


# ----------------------------------------------------------------------------- 2. autoencoder split reuse
@pytest.mark.parametrize("task, name", [("autoencoder", "gae"), ("adversarial_autoencoder", "arga")])
def test_evaluating_the_fitted_graph_reuses_its_split(task: str, name: str) -> None:
    """evaluate(data) split the graph again at random: other test edges, some of them trained on."""
    data = _link_graph()
    graphdl.seed_everything(0)
    model = graphdl.models.create(name, in_channels=16, hidden_channels=8, out_channels=4)
    trainer = graphdl.Trainer(model, loss="link_bce", task=task, epochs=3, seed=0, progress=False)
    trainer.fit(data)
    pos, neg = dict(trainer.task.pos), dict(trainer.task.neg)
    fitted = trainer.evaluate(split=["val", "test"])
    assert trainer.evaluate(data, split=["val", "test"]) == fitted
    for split in ("train", "val", "test"):
        assert torch.equal(trainer.task.pos[split], pos[split])
    assert torch.equal(trainer.task.neg["test"], neg["test"])
    # another graph object, even an equal one, is split afresh; the fitted graph's split stays reusable
    trainer.evaluate(data.clone())
    assert not torch.equal(trainer.task.pos["test"], pos["test"])
    assert trainer.evaluate(data, split=["val", "test"]) == fitted


def test_a_seeded_refit_of_the_same_graph_repeats_the_run() -> None:
    """Reusing the split must not change the random draws that follow it (negatives, reparametrisation)."""
    data = _link_graph()
    graphdl.seed_everything(0)
    model = ae.VGAE(16, hidden_channels=8, out_channels=4)
    trainer = graphdl.Trainer(model, loss="vgae", task="autoencoder", epochs=3, seed=0, progress=False)
    histories = []
    for _ in range(2):
        torch.manual_seed(1)
        model.reset_parameters()
        histories.append(trainer.fit(data).history)
    assert histories[0] == histories[1]


def test_a_graph_given_new_edges_is_split_again() -> None:
    data = _link_graph()
    task = graphdl.train.TASKS.create("autoencoder")
    task.setup(data)
    first = task.pos["test"]
    task.setup(data)
    assert task.pos["test"] is first
    data.edge_index = data.edge_index.clone()
    task.setup(data)
    assert task.pos["test"] is not first


# ----------------------------------------------------------------------------- 3. anomaly predict without labels
@pytest.mark.parametrize("labels", ["zeros", "ones", "absent", "fractional"])
def test_anomaly_predict_scores_a_graph_without_two_label_classes(labels: str) -> None:
    """predict(graph) ran the evaluation's label checks: all-inlier labels failed (ROC-AUC undefined)."""
    graph = _outlier_graph()
    graphdl.seed_everything(0)
    trainer = graphdl.Trainer(graphdl.models.create("dominant", in_channels=12, hidden_channels=16),
                              loss="dominant", task="anomaly", epochs=2, seed=0, progress=False)
    trainer.fit(graph)
    new = graph.clone()
    if labels == "absent":
        del new.y_outlier
    else:
        new.y_outlier = {"zeros": torch.zeros(200), "ones": torch.ones(200),
                         "fractional": torch.full((200,), 0.5)}[labels]
    scores = trainer.predict(new)
    unlabelled = graph.clone()
    del unlabelled.y_outlier
    assert scores.shape == (200,) and torch.equal(scores, trainer.predict(unlabelled))
    if labels != "absent":  # evaluation still needs both classes; the refused graph replaces nothing
        with pytest.raises(ValidationError, match=r"ROC-AUC is undefined|must be 0 \(inlier\) or 1"):
            trainer.evaluate(new, split="all")
    assert set(trainer.evaluate(split="all")) == {"all_rocauc"}


# ----------------------------------------------------------------------------- 4. the configured loss scores
def test_anomaly_scores_use_the_configured_loss_before_any_training_step() -> None:
    """Before the first train_loss call the task scored with DominantLoss() (alpha=0.5), not the user's."""
    graph = _outlier_graph()
    graphdl.seed_everything(0)
    model = graphdl.models.create("dominant", in_channels=12, hidden_channels=16)
    trainer = graphdl.Trainer(model, loss="dominant", loss_kwargs={"alpha": 1.0}, task="anomaly", epochs=1,
                              progress=False)
    scores = trainer.predict(graph)
    with torch.no_grad():
        x_hat = model.eval()(graph.x, graph.edge_index).x_hat
    attribute_error = torch.linalg.vector_norm(graph.x - x_hat, dim=1)
    assert torch.allclose(scores, attribute_error)
    trainer.task.setup(graph)  # right after setup, too
    assert torch.allclose(trainer.task.scores(model), attribute_error)


# ----------------------------------------------------------------------------- 5. ARGA latent width
class _LinearEncoder(nn.Module):
    """A custom encoder without an ``out_channels`` attribute."""

    def __init__(self, width: int, variational: bool = False) -> None:
        super().__init__()
        self.lin = nn.Linear(16, width)
        self.lin_logstd = nn.Linear(16, width) if variational else None

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        mu = self.lin(x)
        return mu if self.lin_logstd is None else (mu, self.lin_logstd(x))


@pytest.mark.parametrize("cls, loss", [(ae.ARGA, "link_bce"), (ae.ARGVA, "vgae")])
def test_arga_names_an_encoder_whose_width_the_discriminator_does_not_take(cls: type, loss: str) -> None:
    """The mismatch failed inside torch: 'mat1 and mat2 shapes cannot be multiplied (120x6 and 16x64)'."""
    variational = cls is ae.ARGVA
    model = cls(encoder=_LinearEncoder(6, variational))  # out_channels defaults to 16
    trainer = graphdl.Trainer(model, loss=loss, task="adversarial_autoencoder", epochs=1, progress=False)
    with pytest.raises(ConfigError, match=rf"^{cls.__name__}: the encoder gives embeddings of width 6, but the "
                                          rf"discriminator was built for width 16 .*build {cls.__name__} with "
                                          rf"out_channels=6"):
        trainer.fit(_link_graph())
    model = cls(encoder=_LinearEncoder(6, variational), out_channels=6)
    graphdl.Trainer(model, loss=loss, task="adversarial_autoencoder", epochs=1, progress=False).fit(_link_graph())


# ----------------------------------------------------------------------------- 6. float64 features
@pytest.mark.parametrize("name, owner", [("latent_distance", "LatentDistanceDetector"),
                                         ("mlp_ae", "MLPAutoEncoder")])
def test_feature_detectors_name_float64_features(name: str, owner: str) -> None:
    """torch's 'mat1 and mat2 must have the same dtype' became the library's dtype error (as the GNN models')."""
    graph = _outlier_graph()
    graph.x = graph.x.double()
    graphdl.seed_everything(0)
    model = graphdl.models.create(name, in_channels=12, hidden_channels=16)
    with pytest.raises(ValidationError, match=rf"^{owner}: x has dtype torch.float64 but the parameters are "
                                              rf"torch.float32; convert with x.to\(torch.float32\) or the module "
                                              rf"with .to\(torch.float64\)$"):
        graphdl.Trainer(model, loss="dominant", task="anomaly", epochs=1, progress=False).fit(graph)
    result = graphdl.Trainer(model.double(), loss="dominant", task="anomaly", epochs=2, progress=False,
                             device="cpu").fit(graph)  # a float64 model takes them
    assert 0.0 <= result.best["all_rocauc"] <= 1.0


# ----------------------------------------------------------------------------- 7. messages name their task
def _trainer(task: str) -> graphdl.Trainer:
    if task == "contrastive":
        return graphdl.Trainer(graphdl.models.create("gnn", in_channels=16, out_channels=8), loss="grace",
                               task="contrastive", epochs=1, progress=False)
    return graphdl.Trainer(ae.GAE(16, hidden_channels=8, out_channels=4), loss="link_bce", task="autoencoder",
                           epochs=1, progress=False)


@pytest.mark.parametrize("task, call, message", [
    ("contrastive", "fit", "needs one torch_geometric.data.Data graph, got list"),  # said "the node task"
    ("contrastive", "predict", "predicts on one torch_geometric.data.Data graph, got list"),  # "the node task"
    ("autoencoder", "predict", "predicts on one torch_geometric.data.Data graph, got list"),  # "the link task"
])
def test_errors_for_a_list_name_their_own_task(task: str, call: str, message: str) -> None:
    data = _link_graph()
    data.y = torch.arange(120) % 4
    with pytest.raises(ValidationError, match=rf"^the {task} task {message}; for a dataset of one graph pass "
                                              rf"dataset\[0\]$"):
        getattr(_trainer(task), call)([data])
