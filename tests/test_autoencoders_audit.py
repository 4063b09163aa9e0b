"""Audit of graphdl.models.autoencoders: the discriminator optimiser's state survives an evaluation and refuses a
changed learning rate on resume; mismatched posterior statistics are named instead of broadcast."""

from __future__ import annotations

import pytest
import torch
import torch_geometric
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

import graphdl
from graphdl.errors import ConfigError, ValidationError
from graphdl.models import autoencoders as ae


def _graph(n: int = 60, features: int = 8, seed: int = 0) -> Data:
    gen = torch.Generator().manual_seed(seed)
    block = torch.arange(n) % 3
    prob = torch.where(block[:, None] == block[None, :], torch.tensor(0.3), torch.tensor(0.02))
    upper = torch.triu(torch.rand(n, n, generator=gen) < prob, diagonal=1)
    x = torch.nn.functional.one_hot(block, features).float() + 0.3 * torch.randn(n, features, generator=gen)
    return Data(x=x, edge_index=to_undirected(upper.nonzero().t(), num_nodes=n), num_nodes=n)


def _arga_trainer(epochs: int, **task_kwargs) -> graphdl.Trainer:
    graphdl.seed_everything(0)
    model = ae.ARGA(8, hidden_channels=8, out_channels=4, discriminator_hidden=8)
    task = ae.AdversarialLinkTask(**task_kwargs)
    return graphdl.Trainer(model, loss="link_bce", task=task, lr=0.01, epochs=epochs, seed=0, progress=False,
                           device="cpu", callbacks=[graphdl.train.ModelCheckpoint(restore_best=False)])


# ----------------------------------------------------------------------------- discriminator optimiser state
def test_a_checkpoint_saved_after_evaluate_resumes_exactly(tmp_path) -> None:
    """Trainer.evaluate(data) sets the task up again, which dropped the discriminator's Adam state: the checkpoint
    saved after it held discriminator_optimizer=None and the resumed run drifted from the uninterrupted one."""
    data = _graph()
    full = _arga_trainer(4)
    full.fit(data)
    first = _arga_trainer(2)
    first.fit(data)
    optimizer = first.task.discriminator_optimizer
    first.evaluate(data)  # the same graph object: the same cached split
    assert first.task.discriminator_optimizer is optimizer
    first.save_checkpoint(tmp_path / "last.pt")
    saved = torch.load(tmp_path / "last.pt", weights_only=False)["task"]["discriminator_optimizer"]
    assert saved is not None and all(int(s["step"]) == 10 for s in saved["state"].values())
    resumed = _arga_trainer(4)
    resumed.fit(data, resume_from=tmp_path / "last.pt")
    assert resumed.history == full.history
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_new_fit_still_starts_a_fresh_discriminator_optimizer() -> None:
    data = _graph()
    trainer = _arga_trainer(2)
    trainer.fit(data)
    trainer.fit(data)  # same model, same task: D's Adam starts again with the encoder's
    state = trainer.task.discriminator_optimizer.state_dict()["state"]
    assert all(int(s["step"]) == 2 * 5 for s in state.values())


def test_resuming_with_another_discriminator_lr_is_refused(tmp_path) -> None:
    """Adam.load_state_dict restores the saved learning rate: discriminator_lr=0.01 silently trained D at 0.001."""
    data = _graph()
    first = _arga_trainer(1)
    first.fit(data)
    first.save_checkpoint(tmp_path / "last.pt")
    other = _arga_trainer(2, discriminator_lr=0.01)
    with pytest.raises(ConfigError, match=r"was trained with other settings \(discriminator_lr 0\.001 -> 0\.01\)"):
        other.fit(data, resume_from=tmp_path / "last.pt")
    # a checkpoint written before the task's arguments were among its settings reaches the task's own check
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    del state["settings"]["task_arguments"]
    torch.save(state, tmp_path / "older.pt")
    with pytest.raises(ConfigError, match=r"^the checkpoint's discriminator optimiser was trained with "
                                          r"discriminator_lr=0\.001, but this task has discriminator_lr=0\.01; a "
                                          r"resumed run continues the saved optimiser, so the change would not take "
                                          r"effect\. Resume with discriminator_lr=0\.001, or start afresh"):
        other.fit(data, resume_from=tmp_path / "older.pt")
    same = _arga_trainer(2)
    same.fit(data, resume_from=tmp_path / "last.pt")
    assert same.task.discriminator_optimizer.param_groups[0]["lr"] == 0.001


# ----------------------------------------------------------------------------- posterior statistics
class _Encoder(torch.nn.Module):
    def __init__(self, logstd_width: int) -> None:
        super().__init__()
        self.mu, self.logstd = torch.nn.Linear(8, 4), torch.nn.Linear(8, logstd_width)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mu(x), self.logstd(x)


def test_an_encoder_with_one_logstd_per_node_is_refused() -> None:
    """A (N, 1) logstd broadcast: every dimension of a node got the same noise draw, and the KL counted it 4 times."""
    data = _graph()
    model = ae.VGAE(encoder=_Encoder(1))
    with pytest.raises(ValidationError, match=r"^VGAE: its encoder's mu and logstd must be tensors of one shape "
                                              r"\(num_nodes, latent width\), one log-std per mean; got mu \(60, 4\) "
                                              r"and logstd \(60, 1\)$"):
        model(data.x, data.edge_index)
    ae.VGAE(encoder=_Encoder(4))(data.x, data.edge_index)


@pytest.mark.parametrize("mu, logstd, shapes", [
    (torch.zeros(5, 4), torch.zeros(5, 1), r"mu \(5, 4\) and logstd \(5, 1\)"),  # before: silently broadcast
    (torch.zeros(5), torch.zeros(5), r"mu \(5,\) and logstd \(5,\)"),  # before: IndexError inside torch.sum
])
def test_kl_loss_names_mismatched_statistics(mu, logstd, shapes) -> None:
    with pytest.raises(ValidationError, match=rf"^VGAE.kl_loss: the mu and logstd must be tensors of one shape "
                                              rf"\(num_nodes, latent width\), one log-std per mean; got {shapes}$"):
        ae.VGAE(8).kl_loss(mu, logstd)


def test_kl_loss_still_equals_pyg_with_clamping() -> None:
    torch.manual_seed(0)
    mu, logstd = torch.randn(7, 3), torch.randn(7, 3) * 8  # some above MAX_LOGSTD
    reference = torch_geometric.nn.VGAE(torch.nn.Identity())
    torch.testing.assert_close(ae.VGAE(8).kl_loss(mu, logstd), reference.kl_loss(mu, logstd))
