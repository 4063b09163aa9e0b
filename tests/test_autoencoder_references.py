"""Auto-encoders and anomaly detectors against their references: the settings they accept reach the computation
(weight decay of the encoder's first layer only), and invalid settings fail with a graphdl error naming them."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

import graphdl
from graphdl.errors import ConfigError, ValidationError
from graphdl.models import anomaly
from graphdl.models import autoencoders as ae


def _graph(n: int = 24, features: int = 6, seed: int = 0) -> Data:
    gen = torch.Generator().manual_seed(seed)
    upper = torch.triu(torch.rand(n, n, generator=gen) < 0.25, diagonal=1)
    return Data(x=torch.randn(n, features, generator=gen), edge_index=to_undirected(upper.nonzero().t(), num_nodes=n),
                num_nodes=n)


# ----------------------------------------------------------------------------- weight decay of the first layer
@pytest.mark.parametrize("name, loss, task", [("gae", "link_bce", "autoencoder"), ("vgae", "vgae", "autoencoder"),
                                              ("arga", "link_bce", "adversarial_autoencoder"),
                                              ("argva", "vgae", "adversarial_autoencoder")])
def test_decay_first_layer_only_reaches_the_optimizer(name: str, loss: str, task: str) -> None:
    """``decay_first_layer_only`` is passed to the encoder's GNN stack, but the Trainer asked the auto-encoder for
    its groups and, finding none (or ARGA's single group), decayed every encoder weight."""
    graphdl.seed_everything(0)
    model = graphdl.models.create(name, in_channels=6, hidden_channels=8, out_channels=4,
                                  decay_first_layer_only=True)
    trainer = graphdl.Trainer(model, loss=loss, task=task, lr=0.01, weight_decay=0.1, epochs=1, seed=0,
                              progress=False)
    trainer.fit(_graph())
    encoder = model.encoder if name in ("gae", "arga") else model.encoder.trunk
    first = {id(p) for p in encoder.convs[0].parameters()}
    decay = {id(p): g["weight_decay"] for g in trainer.optimizer.param_groups for p in g["params"]}
    disc = {id(p) for p in getattr(model, "discriminator", torch.nn.Module()).parameters()}
    assert not set(decay) & disc  # the discriminator keeps its own optimiser
    assert set(decay) == {id(p) for p in model.parameters()} - disc
    assert {decay[i] for i in first} == {0.1}
    assert {w for i, w in decay.items() if i not in first} == {0.0}


def test_without_decay_first_layer_only_every_encoder_weight_is_decayed() -> None:
    for model in (ae.GAE(6), ae.VGAE(6), ae.ARGA(6), ae.ARGVA(6)):
        groups = model.optimizer_groups(0.1)
        disc = {id(p) for p in getattr(model, "discriminator", torch.nn.Module()).parameters()}
        assert [g["weight_decay"] for g in groups] == [0.1]
        assert [id(p) for p in groups[0]["params"]] == [id(p) for p in model.parameters() if id(p) not in disc]


# ----------------------------------------------------------------------------- settings named in their errors
@pytest.mark.parametrize("kwargs, message", [
    ({"discriminator_steps": 2.5}, r"^the adversarial_autoencoder task's discriminator_steps must be an int >= 1, "
                                   r"got 2.5$"),  # before: range(2.5)'s TypeError in the first training step
    ({"discriminator_steps": True}, r"discriminator_steps must be an int >= 1, got True$"),
    ({"discriminator_lr": "0.01"}, r"^the adversarial_autoencoder task's discriminator_lr must be a number > 0, "
                                   r"got '0.01'$"),  # before: "'<=' not supported between 'str' and 'int'"
    ({"reg_weight": float("nan")}, r"reg_weight must be a number >= 0, got nan$"),  # before: a NaN training loss
])
def test_adversarial_task_settings_are_checked_when_built(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ae.AdversarialLinkTask(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"discriminator_hidden": 0}, r"^ARGA's discriminator_hidden must be an int >= 1, got 0$"),  # silently 0-wide
    ({"discriminator_layers": 2.0}, r"^ARGA's discriminator_layers must be an int >= 1, got 2.0$"),  # TypeError
])
def test_discriminator_widths_are_checked(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ae.ARGA(6, **kwargs)


@pytest.mark.parametrize("build, message", [
    (lambda: anomaly.MLPAutoEncoder(6, num_layers=4.0), r"^MLPAutoEncoder's num_layers must be an int >= 2, got 4.0$"),
    (lambda: anomaly.MLPAutoEncoder(6, hidden_channels=0),
     r"^MLPAutoEncoder's hidden_channels must be an int >= 1, got 0$"),  # before: a code of width 0
    (lambda: anomaly.DOMINANT(6, num_layers=4.0), r"^DOMINANT's num_layers must be an int >= 2, got 4.0$"),
    (lambda: ae.VGAE(6, num_layers=2.0), r"^VariationalGNNEncoder's num_layers must be an int >= 1, got 2.0$"),
])
def test_layer_counts_name_the_model_and_the_value_given(build, message: str) -> None:
    """Before: a TypeError from list repetition, or "gnn's num_layers ... got 2.0" for DOMINANT(num_layers=4.0)."""
    with pytest.raises(ConfigError, match=message):
        build()


@pytest.mark.parametrize("build, message", [
    (lambda: ae.ReconstructionTask(num_val="0.1"), r"^num_val and num_test are the shares of edges held out"),
    (lambda: graphdl.train.TASKS.create("anomaly", val_fraction="0.1"), r"^val_fraction must lie in \[0, 1\), "
                                                                        r"got '0.1'$"),
])
def test_shares_of_the_wrong_type_are_config_errors(build, message: str) -> None:
    """Before: "'<' not supported between instances of 'int' and 'str'"."""
    with pytest.raises(ConfigError, match=message):
        build()


@pytest.mark.parametrize("val_fraction, split", [(0.1, "val"), (0.9, "test")])
def test_an_anomaly_split_without_outliers_is_named_at_setup(val_fraction: float, split: str) -> None:
    """3 outliers and val_fraction=0.1 put round(0.3) = 0 of them in val: the first evaluation, after an epoch of
    training, failed in the metric ("no task has both positive and negative labels in this split")."""
    graph = _graph(n=30)
    graph.y_outlier = (torch.arange(30) < 3).long()
    task = graphdl.train.TASKS.create("anomaly", val_fraction=val_fraction)
    with pytest.raises(ValidationError, match=rf"^val_fraction={val_fraction} leaves \d+ outliers among the \d+ "
                                              rf"nodes of the {split} split, so its ROC-AUC is undefined"):
        task.setup(graph)
    graphdl.train.TASKS.create("anomaly", val_fraction=0.5).setup(graph)  # 2 and 1 outliers: both scored
