r"""Graph auto-encoders for link prediction: GAE, VGAE and the adversarially regularised ARGA/ARGVA.

An encoder maps the training graph to node embeddings
:math:`\mathbf{Z} \in \mathbb{R}^{N \times d}` and the inner-product decoder
scores a node pair by

.. math::
    p(A_{ij} = 1 \mid \mathbf{z}_i, \mathbf{z}_j) = \sigma(\mathbf{z}_i^{\top}\mathbf{z}_j).

* **GAE** (Kipf & Welling, 2016): :math:`\mathbf{Z} = \mathrm{GNN}(\mathbf{X}, \mathbf{A})`,
  trained with the link cross-entropy of positive edges against sampled
  negatives (loss ``link_bce``).
* **VGAE**: the encoder gives :math:`\boldsymbol{\mu}` and
  :math:`\log\boldsymbol{\sigma}` (two heads on a shared trunk),
  :math:`\mathbf{z}_i = \boldsymbol{\mu}_i + \boldsymbol{\sigma}_i \odot
  \boldsymbol{\epsilon}`, :math:`\boldsymbol{\epsilon} \sim \mathcal{N}(0, I)`
  while training and :math:`\mathbf{z}_i = \boldsymbol{\mu}_i` in evaluation;
  the loss ``vgae`` adds :math:`\frac{1}{N}\mathrm{KL}(q(\mathbf{Z})\,\|\,\mathcal{N}(0, I))`.
* **ARGA / ARGVA** (Pan et al., 2018): a GAE / VGAE whose embeddings are
  pushed towards the prior :math:`\mathcal{N}(0, I)` by a discriminator
  :math:`D` (an MLP on the latent space). :math:`D` minimises
  :math:`-\log\sigma(D(\mathbf{z}')) - \log(1 - \sigma(D(\mathbf{z})))` with
  :math:`\mathbf{z}' \sim \mathcal{N}(0, I)`; the encoder adds
  :math:`-\log\sigma(D(\mathbf{z}))` to its reconstruction loss. The two steps
  alternate inside :class:`AdversarialLinkTask`, which owns the
  discriminator's optimiser (the shared Trainer runs one optimiser, over the
  encoder only: :meth:`ARGA.optimizer_groups` leaves :math:`D` out).

Tasks (registered in :data:`graphdl.train.TASKS`): ``autoencoder``
(:class:`ReconstructionTask`) and ``adversarial_autoencoder``
(:class:`AdversarialLinkTask`). Both evaluate ROC-AUC and AP of held-out
positive and negative pairs, as PyG's ``GAE.test`` does.

>>> from torch_geometric.transforms import RandomLinkSplit
>>> splits = RandomLinkSplit(num_val=0.05, num_test=0.1, is_undirected=True, split_labels=True,
...                          add_negative_train_samples=False)(data)
>>> model = VGAE(dataset.num_features, hidden_channels=32, out_channels=16)
>>> Trainer(model, loss="vgae", task="autoencoder", lr=0.01, epochs=400).fit(None, splits).test
"""

from __future__ import annotations

import inspect
import math
import numbers
import random
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.utils import negative_sampling

from graphdl import layers as layer_registry
from graphdl.errors import ConfigError, ValidationError
from graphdl.models import MODELS, resolve
from graphdl.models.gnn import GNN
from graphdl.train.metrics import Metric, resolve_metric
from graphdl.train.tasks import (
    TASKS,
    Task,
    canonical_split,
    check_link_loss,
    link_loss,
    link_split_graphs,
    model_inputs,
    one_row_each,
    random_link_split_pairs,
    random_link_split_train_graph,
    refuse_model,
    refuse_untrained_discriminator,
    to_device,
    unwrap_model,
    with_graph,
)
from graphdl.validate import require_int

__all__ = [
    "MAX_LOGSTD",
    "VariationalGNNEncoder",
    "GAE",
    "VGAE",
    "ARGA",
    "ARGVA",
    "ReconstructionTask",
    "AdversarialLinkTask",
]

#: :math:`\log\sigma` is clamped at this value, as in PyG's VGAE.
MAX_LOGSTD = 10.0


# ----------------------------------------------------------------------------- encoders
class VariationalGNNEncoder(nn.Module):
    r"""A GNN trunk with two heads: :math:`(\boldsymbol{\mu}, \log\boldsymbol{\sigma})`.

    .. math::
        \mathbf{H} = \mathrm{drop}(\phi(\mathrm{GNN}_{L-1}(\mathbf{X}, \mathbf{A}))),\quad
        \boldsymbol{\mu} = \mathrm{conv}_{\mu}(\mathbf{H}, \mathbf{A}),\quad
        \log\boldsymbol{\sigma} = \mathrm{conv}_{\sigma}(\mathbf{H}, \mathbf{A})

    With ``layer="gcn"``, ``num_layers=2`` this is the encoder of Kipf &
    Welling (2016) and of PyG's ``examples/autoencoder.py``
    (``in -> hidden -> (out, out)``). The trunk is a :class:`~graphdl.models.gnn.GNN`
    stack (any registered layer); with ``num_layers=1`` there is no trunk.
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, num_layers: int = 2,
                 layer: str = "gcn", dropout: float = 0.0, activation: str = "relu",
                 layer_kwargs: dict[str, Any] | None = None, **gnn_kwargs: Any) -> None:
        super().__init__()
        require_int("VariationalGNNEncoder", "num_layers", num_layers)  # the trunk would name its own count
        self.trunk = (GNN(layer=layer, in_channels=in_channels, hidden_channels=hidden_channels,
                          out_channels=hidden_channels, num_layers=num_layers - 1, dropout=dropout,
                          activation=activation, layer_kwargs=layer_kwargs, **gnn_kwargs)
                      if num_layers > 1 else None)
        entry = layer_registry.entry(layer)
        self.uses_edge_weight = bool(entry.meta.get("edge_weight"))
        c = hidden_channels if num_layers > 1 else in_channels
        self.conv_mu = layer_registry.LAYERS.build(layer, c, out_channels, **(layer_kwargs or {}))
        self.conv_logstd = layer_registry.LAYERS.build(layer, c, out_channels, **(layer_kwargs or {}))
        self.act = resolve.activation(activation)
        self.dropout = dropout
        self.out_channels = out_channels

    def reset_parameters(self) -> None:
        for module in (self.trunk, self.conv_mu, self.conv_logstd):
            if module is not None:
                module.reset_parameters()

    def optimizer_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """One group; with the trunk's ``decay_first_layer_only``, its first layer decayed and the rest (later trunk
        layers, both heads) not, as :meth:`GNN.optimizer_groups <graphdl.models.gnn.GNN.optimizer_groups>`."""
        if self.trunk is None or not self.trunk.decay_first_layer_only:
            return [{"params": list(self.parameters()), "weight_decay": weight_decay}]
        first = {id(p) for p in self.trunk.convs[0].parameters()}
        return [{"params": [p for p in self.parameters() if id(p) in first], "weight_decay": weight_decay},
                {"params": [p for p in self.parameters() if id(p) not in first], "weight_decay": 0.0}]

    def _conv(self, conv: nn.Module, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None) -> Tensor:
        if self.uses_edge_weight and edge_weight is not None:
            return conv(x, edge_index, edge_weight)
        return conv(x, edge_index)

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self.trunk is not None:
            x = self.trunk(x, edge_index, edge_weight=edge_weight)
            x = F.dropout(self.act(x), self.dropout, self.training)
        return (self._conv(self.conv_mu, x, edge_index, edge_weight),
                self._conv(self.conv_logstd, x, edge_index, edge_weight))


# ----------------------------------------------------------------------------- models
def _check_posterior(owner: str, whose: str, mu: Any, logstd: Any) -> None:
    """``mu`` and ``logstd`` must be ``(num_nodes, d)`` tensors of one shape: a ``(N, 1)`` log-std broadcast
    silently, one noise draw shared by every dimension of a node, and a 1-D pair failed inside ``torch.sum``."""
    if not (isinstance(mu, Tensor) and isinstance(logstd, Tensor) and mu.dim() == 2 and mu.shape == logstd.shape):
        shapes = [tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__ for t in (mu, logstd)]
        raise ValidationError(f"{owner}: {whose} mu and logstd must be tensors of one shape (num_nodes, "
                              f"latent width), one log-std per mean; got mu {shapes[0]} and logstd {shapes[1]}")


class _GraphAutoEncoder(nn.Module):
    """Shared encoder construction, reparametrisation and inner-product decoder."""

    variational = False

    def __init__(self, in_channels: int | None = None, hidden_channels: int = 32, out_channels: int = 16,
                 num_layers: int = 2, layer: str = "gcn", dropout: float = 0.0, activation: str = "relu",
                 encoder: nn.Module | None = None, layer_kwargs: dict[str, Any] | None = None,
                 **gnn_kwargs: Any) -> None:
        super().__init__()
        if encoder is None:
            if in_channels is None:
                raise ConfigError(f"{type(self).__name__}: give in_channels (the node feature size) "
                                  f"or an encoder module")
            if self.variational:
                encoder = VariationalGNNEncoder(in_channels, hidden_channels, out_channels, num_layers,
                                                layer=layer, dropout=dropout, activation=activation,
                                                layer_kwargs=layer_kwargs, **gnn_kwargs)
            else:
                encoder = GNN(layer=layer, in_channels=in_channels, hidden_channels=hidden_channels,
                              out_channels=out_channels, num_layers=num_layers, dropout=dropout,
                              activation=activation, layer_kwargs=layer_kwargs, **gnn_kwargs)
        elif not isinstance(encoder, nn.Module):  # failed inside inspect with an AttributeError
            hint = f"; to pick a layer by name pass layer={encoder!r}" if isinstance(encoder, str) else ""
            raise ConfigError(f"{type(self).__name__}: encoder must be a torch.nn.Module mapping (x, edge_index) to "
                              f"node embeddings, got {type(encoder).__name__} {encoder!r}{hint}")
        self.encoder = encoder
        self.mu: Tensor | None = None
        self.logstd: Tensor | None = None
        self._enc_kwargs = self._forward_fields(encoder)

    def __getstate__(self) -> dict[str, Any]:
        """The module's state for ``copy.deepcopy`` and pickling, the last ``mu``/``logstd`` detached from the
        autograd graph that made them (tensors that are not leaves cannot be deep-copied)."""
        state = dict(super().__getstate__())
        for name in ("mu", "logstd"):
            if isinstance(state.get(name), Tensor):
                state[name] = state[name].detach()
        return state

    @staticmethod
    def _forward_fields(module: nn.Module) -> tuple[str, ...]:
        params = inspect.signature(module.forward).parameters
        var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
        return tuple(f for f in ("edge_weight", "edge_attr", "batch") if var_kw or f in params)

    def _apply(self, fn: Any, recurse: bool = True) -> _GraphAutoEncoder:
        """``.to()``, ``.double()``, ``.cuda()``: the last ``mu``/``logstd`` move with the parameters (detached), as
        buffers would, so that ``kl_loss()`` does not mix dtypes or devices."""
        super()._apply(fn, recurse)
        for name in ("mu", "logstd"):
            value = self.__dict__.get(name)
            if isinstance(value, Tensor):
                with torch.no_grad():
                    self.__dict__[name] = fn(value.detach())
        return self

    def reset_parameters(self) -> None:
        self.mu = self.logstd = None  # the posterior of the old weights, which kl_loss() would read after a reset
        if hasattr(self.encoder, "reset_parameters"):
            self.encoder.reset_parameters()
            return
        for module in self.encoder.modules():
            if module is not self.encoder and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def optimizer_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """The encoder's groups when it defines them, then any other parameters (decayed).

        The Trainer asks the model, not its encoder: without this, a GNN encoder's ``decay_first_layer_only``
        was ignored and every encoder weight decayed.
        """
        encoder = self.encoder
        groups = ([dict(g) for g in encoder.optimizer_groups(weight_decay)] if hasattr(encoder, "optimizer_groups")
                  else [{"params": list(encoder.parameters()), "weight_decay": weight_decay}])
        seen = {id(p) for g in groups for p in g["params"]}
        rest = [p for p in self.parameters() if id(p) not in seen]
        return groups + ([{"params": rest, "weight_decay": weight_decay}] if rest else [])

    def encode(self, x: Tensor, edge_index: Tensor, **kwargs: Any) -> Tensor:
        r"""Node embeddings :math:`\mathbf{Z}`; a variational model stores ``mu`` and ``logstd``."""
        kwargs = {k: v for k, v in kwargs.items() if k in self._enc_kwargs and v is not None}
        out = self.encoder(x, edge_index, **kwargs)
        if not self.variational:
            if isinstance(out, tuple):
                raise ConfigError(f"{type(self).__name__} got a (mu, logstd) encoder; use VGAE or ARGVA for it")
            return out
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ConfigError(f"{type(self).__name__} needs an encoder returning (mu, logstd), got "
                              f"{type(out).__name__}")
        _check_posterior(type(self).__name__, "its encoder's", out[0], out[1])
        self.mu, self.logstd = out[0], out[1].clamp(max=MAX_LOGSTD)
        return self.reparametrize(self.mu, self.logstd)

    def reparametrize(self, mu: Tensor, logstd: Tensor) -> Tensor:
        r""":math:`\boldsymbol{\mu} + \boldsymbol{\epsilon}\odot e^{\log\boldsymbol{\sigma}}` in training, :math:`\boldsymbol{\mu}` in evaluation."""
        if self.training:
            return mu + torch.randn_like(logstd) * torch.exp(logstd)
        return mu

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None,
                edge_attr: Tensor | None = None, batch: Tensor | None = None) -> Tensor:
        """Alias of :meth:`encode` (so the ``link`` task and the Trainer can call the model)."""
        return self.encode(x, edge_index, edge_weight=edge_weight, edge_attr=edge_attr, batch=batch)

    def decode(self, z: Tensor, pairs: Tensor) -> Tensor:
        r"""Edge logits :math:`\mathbf{z}_i^{\top}\mathbf{z}_j` of the pairs ``(2, P)`` (no sigmoid)."""
        return (z[pairs[0]] * z[pairs[1]]).sum(dim=-1)

    def decode_all(self, z: Tensor) -> Tensor:
        r"""Dense logits :math:`\mathbf{Z}\mathbf{Z}^{\top}` (no sigmoid)."""
        return z @ z.t()

    def kl_loss(self, mu: Tensor | None = None, logstd: Tensor | None = None) -> Tensor:
        r"""Mean over nodes of :math:`\mathrm{KL}(\mathcal{N}(\boldsymbol{\mu}_i, \boldsymbol{\sigma}_i^2)\,\|\,\mathcal{N}(0, I))`.

        .. math::
            -\frac{1}{2N}\sum_{i=1}^{N}\sum_{d}\big(1 + 2\log\sigma_{id} - \mu_{id}^2 - \sigma_{id}^2\big)

        of the given statistics or of the last :meth:`encode`, as PyG's ``VGAE.kl_loss``.
        """
        mu = self.mu if mu is None else mu
        logstd = self.logstd if logstd is None else logstd
        if mu is None or logstd is None:
            raise ConfigError(f"{type(self).__name__}.kl_loss: no (mu, logstd) yet; call encode() first "
                              f"(only variational models have them)")
        _check_posterior(f"{type(self).__name__}.kl_loss", "the", mu, logstd)
        logstd = logstd.clamp(max=MAX_LOGSTD)  # as encode() stores it (a no-op on those)
        return -0.5 * torch.mean(torch.sum(1 + 2 * logstd - mu ** 2 - logstd.exp() ** 2, dim=1))

    def extra_repr(self) -> str:
        return f"variational={self.variational}"


@MODELS.register("gae", summary="Graph auto-encoder (Kipf & Welling, 2016): GNN encoder, inner-product decoder")
class GAE(_GraphAutoEncoder):
    r"""Graph auto-encoder: :math:`\mathbf{Z} = \mathrm{GNN}(\mathbf{X}, \mathbf{A})`, :math:`\hat{A}_{ij} = \sigma(\mathbf{z}_i^{\top}\mathbf{z}_j)`.

    Args:
        in_channels: Node feature size.
        hidden_channels: Width of the hidden layers (PyG's example: ``2 * out_channels``).
        out_channels: Embedding size :math:`d`.
        num_layers: Message-passing layers of the encoder.
        layer: Registered layer name (``graphdl.layers.list()``); ``gcn`` is the classic encoder.
        dropout: Dropout between encoder layers.
        activation: Activation by name.
        encoder: A module ``(x, edge_index) -> Z`` replacing the built one.
        layer_kwargs, **gnn_kwargs: Passed to the :class:`~graphdl.models.gnn.GNN` stack.

    Train with ``Trainer(model, loss="link_bce", task="autoencoder")``.
    """


@MODELS.register("vgae", summary="Variational graph auto-encoder (Kipf & Welling, 2016)")
class VGAE(_GraphAutoEncoder):
    r"""Variational graph auto-encoder with a :class:`VariationalGNNEncoder`.

    .. math::
        \mathbf{z}_i = \boldsymbol{\mu}_i + \boldsymbol{\sigma}_i \odot \boldsymbol{\epsilon}_i,\quad
        \boldsymbol{\epsilon}_i \sim \mathcal{N}(0, I)\ \text{(training)},\qquad
        \mathbf{z}_i = \boldsymbol{\mu}_i\ \text{(evaluation)}

    After each forward pass ``model.mu`` and ``model.logstd`` (clamped at
    :data:`MAX_LOGSTD`) hold the posterior statistics. Arguments as
    :class:`GAE`; a custom ``encoder`` returns ``(mu, logstd)``. Train with
    ``Trainer(model, loss="vgae", task="autoencoder")``.
    """

    variational = True


class _Discriminator(nn.Module):
    """MLP :math:`D: \\mathbb{R}^d \\to \\mathbb{R}` (a logit) on the latent space."""

    def __init__(self, in_channels: int, hidden_channels: int = 64, num_layers: int = 3) -> None:
        super().__init__()
        if num_layers < 1:
            raise ConfigError(f"discriminator_layers must be >= 1, got {num_layers}")
        dims = [in_channels] + [hidden_channels] * (num_layers - 1) + [1]
        self.lins = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def reset_parameters(self) -> None:
        for lin in self.lins:
            lin.reset_parameters()

    def forward(self, z: Tensor) -> Tensor:
        for lin in self.lins[:-1]:
            z = F.relu(lin(z))
        return self.lins[-1](z).squeeze(-1)


@MODELS.register("arga", summary="Adversarially regularised graph auto-encoder (Pan et al., 2018)")
class ARGA(_GraphAutoEncoder):
    r"""GAE (or VGAE with ``variational=True``) with a latent-space discriminator.

    With :math:`D` an MLP giving a logit and the prior :math:`\mathcal{N}(0, I)`:

    .. math::
        \mathcal{L}_D = -\frac{1}{N}\sum_i \log\sigma(D(\mathbf{z}'_i))
                        -\frac{1}{N}\sum_i \log\big(1 - \sigma(D(\mathbf{z}_i))\big),
        \quad \mathbf{z}'_i \sim \mathcal{N}(0, I)

        \mathcal{L}_{\text{reg}} = -\frac{1}{N}\sum_i \log\sigma(D(\mathbf{z}_i))

    (PyG's ``ARGA.discriminator_loss`` and ``reg_loss``). Computed with the
    registry losses ``link_bce`` (real vs fake logits) and ``bce_with_logits``.
    Train with ``task="adversarial_autoencoder"``, which alternates
    ``discriminator_steps`` updates of :math:`D` with one encoder update.

    Args:
        variational: ARGVA: a variational encoder (train with ``loss="vgae"``).
        discriminator_hidden: Width of :math:`D`'s hidden layers.
        discriminator_layers: Linear layers of :math:`D`.
        **kwargs: As :class:`GAE`.
    """

    def __init__(self, in_channels: int | None = None, hidden_channels: int = 32, out_channels: int = 16,
                 num_layers: int = 2, layer: str = "gcn", variational: bool = False,
                 discriminator_hidden: int = 64, discriminator_layers: int = 3, **kwargs: Any) -> None:
        require_int(type(self).__name__, "discriminator_hidden", discriminator_hidden)  # 0 built a constant D
        require_int(type(self).__name__, "discriminator_layers", discriminator_layers)
        self.variational = variational
        super().__init__(in_channels, hidden_channels, out_channels, num_layers, layer, **kwargs)
        from graphdl import losses

        latent = getattr(self.encoder, "out_channels", out_channels)
        self.discriminator = _Discriminator(latent, discriminator_hidden, discriminator_layers)
        self._real_fake = losses.create("link_bce")
        self._bce = losses.create("bce_with_logits")

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.discriminator.reset_parameters()

    def optimizer_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """The encoder's groups only (:meth:`GAE.optimizer_groups`): the discriminator has its own optimiser (in the
        task)."""
        disc = {id(p) for p in self.discriminator.parameters()}
        groups = [{**g, "params": [p for p in g["params"] if id(p) not in disc]}
                  for g in super().optimizer_groups(weight_decay)]
        return [g for g in groups if g["params"]]

    @contextmanager
    def _frozen_discriminator(self) -> Iterator[None]:
        flags = [p.requires_grad for p in self.discriminator.parameters()]
        for p in self.discriminator.parameters():
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p, flag in zip(self.discriminator.parameters(), flags):
                p.requires_grad_(flag)

    def _check_latent(self, z: Tensor) -> None:
        """The embeddings must have the width :math:`D` was built for (torch's matmul error names neither)."""
        expected = self.discriminator.lins[0].in_features
        if z.dim() != 2 or z.size(-1) != expected:
            name = type(self).__name__
            if z.dim() != 2:
                raise ConfigError(f"{name}: the encoder must give node embeddings of shape (num_nodes, width), "
                                  f"got shape {tuple(z.shape)}")
            width = z.size(-1)
            raise ConfigError(f"{name}: the encoder gives embeddings of width {width}, but the discriminator was "
                              f"built for width {expected} (the encoder's out_channels attribute when it has one, "
                              f"else out_channels); build {name} with out_channels={width}, or set the encoder's "
                              f"out_channels attribute to {width}")

    def reg_loss(self, z: Tensor) -> Tensor:
        r"""Encoder term :math:`\mathcal{L}_{\text{reg}}`; no gradient reaches :math:`D`."""
        self._check_latent(z)
        with self._frozen_discriminator():
            logits = self.discriminator(z)
        return self._bce(logits, torch.ones_like(logits))

    def discriminator_loss(self, z: Tensor) -> Tensor:
        r"""Discriminator term :math:`\mathcal{L}_D` (``z`` is detached: no gradient reaches the encoder)."""
        self._check_latent(z)
        real = self.discriminator(torch.randn_like(z))
        fake = self.discriminator(z.detach())
        return self._real_fake(real, fake)


@MODELS.register("argva", summary="Adversarially regularised variational graph auto-encoder (Pan et al., 2018)")
class ARGVA(ARGA):
    """:class:`ARGA` with a variational encoder (``variational=True``); train with ``loss="vgae"``."""

    def __init__(self, in_channels: int | None = None, hidden_channels: int = 32, out_channels: int = 16,
                 num_layers: int = 2, layer: str = "gcn", **kwargs: Any) -> None:
        kwargs.setdefault("variational", True)
        super().__init__(in_channels, hidden_channels, out_channels, num_layers, layer, **kwargs)


# ----------------------------------------------------------------------------- tasks
def _decoder(model: nn.Module) -> Any:
    inner = unwrap_model(model)
    return inner.decode if hasattr(inner, "decode") else (lambda h, p: (h[p[0]] * h[p[1]]).sum(-1))


class _CachedSplit(NamedTuple):
    """A ``RandomLinkSplit`` made by :class:`ReconstructionTask`, and the random streams around it."""

    graph: weakref.ref  #: the graph object split
    edge_index: Tensor  #: its edges then (a graph given new edges is split again)
    num_nodes: int
    splits: Any  #: the (train, val, test) graphs
    rng_before: tuple[Any, ...]
    rng_after: tuple[Any, ...]


def _rng_states(device: torch.device) -> tuple[Any, ...]:
    """The streams ``RandomLinkSplit`` draws from: Python's (negative sampling), torch's CPU one and the device's."""
    return (random.getstate(), torch.get_rng_state(),
            torch.cuda.get_rng_state(device) if device.type == "cuda" else None)


def _same_rng_states(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return (a[0] == b[0] and torch.equal(a[1], b[1])
            and (a[2] is None) == (b[2] is None) and (a[2] is None or torch.equal(a[2], b[2])))


def _set_rng_states(states: tuple[Any, ...], device: torch.device) -> None:
    random.setstate(states[0])
    torch.set_rng_state(states[1])
    if states[2] is not None:
        torch.cuda.set_rng_state(states[2], device)


def _real(value: Any) -> bool:
    """A real number (not a bool, a string or a tensor), for settings compared with bounds."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


_posterior_cache: dict[type, bool] = {}


def _takes_posterior(loss_fn: Any) -> bool:
    """Whether the loss is called as ``loss(z, mu, logstd, pos, neg)`` (the ``vgae`` objective)."""
    key = type(loss_fn)
    if key not in _posterior_cache or not isinstance(loss_fn, nn.Module):
        forward = getattr(loss_fn, "forward", loss_fn)
        try:
            params = inspect.signature(forward).parameters
            _posterior_cache[key] = "mu" in params and "logstd" in params
        except (TypeError, ValueError):
            _posterior_cache[key] = False
    return _posterior_cache[key]


@TASKS.register("autoencoder", aliases=("gae", "reconstruction"),
                summary="Graph auto-encoder link reconstruction (GAE/VGAE): AUC and AP on held-out edges")
class ReconstructionTask(Task):
    r"""Train an auto-encoder to reconstruct the training edges; score held-out edges.

    Splits are the ``(train, val, test)`` graphs of PyG's ``RandomLinkSplit``
    (``split_labels=True`` gives ``pos_/neg_edge_label_index``; otherwise
    ``edge_label_index``/``edge_label`` are split by label). With
    ``splits=None`` the task splits ``data`` itself with
    ``RandomLinkSplit(num_val, num_test, split_labels=True,
    add_negative_train_samples=False)`` under the Trainer's seed, once per
    graph object: ``Trainer.evaluate(data)`` after ``fit(data)`` scores the
    same held-out edges (a new graph object is split afresh). Messages
    pass over the training graph ``train.edge_index`` only.

    Each epoch is one full batch, as in PyG's ``examples/autoencoder.py``: the
    model encodes the training graph, negatives are drawn with
    ``negative_sampling(pos_train, num_nodes)`` (as many as positives; like
    PyG's ``GAE.recon_loss``), and the loss is

    * ``loss(z, mu, logstd, pos, neg)`` for a loss taking the posterior
      (``vgae``: reconstruction + :math:`\mathrm{KL}/N`), with a variational model;
    * otherwise as the ``link`` task calls it (:func:`~graphdl.train.tasks.link_loss`):
      ``loss(pos_logits, neg_logits)`` (``link_bce``), ranked pairs
      (``margin_ranking``) or ``loss(logits, labels)`` (``bce_with_logits``);
      a loss it cannot call is refused when the Trainer is built.

    Evaluation (embeddings in eval mode, i.e. :math:`\boldsymbol{\mu}` for a
    VGAE) logs ``<split>_rocauc`` and ``<split>_ap`` of
    :math:`\sigma(\mathbf{z}_i^{\top}\mathbf{z}_j)` on ``val`` and ``test``.
    The Trainer selects the epoch by ``val_rocauc``.

    Args:
        metric: The monitored metric, ``rocauc`` or ``ap`` (both are logged).
        num_val, num_test: Edge fractions when the task splits ``data`` itself.
        num_negatives: Negatives per positive training edge.
    """

    level = "link"
    default_loss = "link_bce"

    def __init__(self, metric: str | Metric = "rocauc", num_val: float = 0.05, num_test: float = 0.1,
                 num_negatives: int = 1) -> None:
        super().__init__(metric)
        names = {"rocauc": "ap", "ap": "rocauc"}
        if self.metric.name not in names or self.metric.pairs:  # an OGB link evaluator takes (pos, neg) scores
            given = metric if isinstance(metric, str) else self.metric.name
            raise ConfigError(f"the autoencoder task reports rocauc and ap; metric must be one of them, "
                              f"got {given!r}")
        self.other_metric = resolve_metric(names[self.metric.name])
        require_int("the autoencoder task", "num_negatives", num_negatives)
        if not (_real(num_val) and _real(num_test) and 0 < num_val < 1 and 0 < num_test < 1 and num_val + num_test < 1):
            raise ConfigError(f"num_val and num_test are the shares of edges held out for validation and test: "
                              f"each in (0, 1), together below 1; got num_val={num_val!r}, num_test={num_test!r}")
        self.num_val, self.num_test, self.num_negatives = num_val, num_test, num_negatives
        # RandomLinkSplit's split of a graph object, reused for it (evaluate(data) after fit(data)); see _split
        self._split_cache: dict[int, _CachedSplit] = {}

    # ------------------------------------------------------------------ data
    def setup(self, data: Data | None, splits: Sequence[Data] | None = None,
              device: torch.device | str = "cpu") -> None:
        from graphdl.validate import check_graph

        self.device = torch.device(device)
        splits_given = splits is not None
        if splits is None:
            if not isinstance(data, Data):
                raise ValidationError("the autoencoder task needs a torch_geometric Data graph, or splits="
                                      "(train, val, test) from torch_geometric.transforms.RandomLinkSplit")
            splits = self._split(data)
        splits = link_split_graphs(splits)
        if not (isinstance(splits, (tuple, list)) and len(splits) == 3):
            raise ValidationError("splits must be the (train, val, test) graphs of "
                                  "torch_geometric.transforms.RandomLinkSplit, got "
                                  f"{type(splits).__name__}")
        self.pos: dict[str, Tensor] = {}
        self.neg: dict[str, Tensor] = {}
        for name, part in zip(("train", "val", "test"), splits):
            pos, neg = random_link_split_pairs(part, name)
            self.pos[name] = pos.to(self.device)
            if neg is not None:
                self.neg[name] = neg.to(self.device)
        for name in ("val", "test"):
            if name not in self.neg:
                raise ValidationError(f"the {name} split has no negative pairs to score its edges against; "
                                      f"RandomLinkSplit adds them to val/test by default (neg_sampling_ratio=1.0)")
        if self.pos["train"].numel() == 0:
            raise ValidationError("the training split holds no positive edges")
        train_graph = random_link_split_train_graph(data if splits_given else None, splits)
        check_graph(train_graph)
        self.data = to_device(train_graph, self.device)  # message passing over the training edges only

    def _split(self, data: Data) -> Any:
        """``RandomLinkSplit`` of ``data``, made once per graph object (with the same edges and node count).

        Splitting again would draw other held-out edges: ``Trainer.evaluate(data)`` after ``fit(data)`` would score
        edges the model trained on. A different graph object, even an equal one, is split afresh. When the random
        streams stand where they stood before the first split (a seeded refit), a reuse leaves them where that
        split left them, so the run draws what it drew then.
        """
        from torch_geometric.transforms import RandomLinkSplit

        from graphdl.validate import check_graph

        device = data.edge_index.device if isinstance(data.edge_index, Tensor) else torch.device("cpu")
        before = _rng_states(device)
        hit = self._split_cache.get(id(data))
        if (hit is not None and hit.graph() is data and hit.edge_index is data.edge_index
                and hit.num_nodes == data.num_nodes):
            if _same_rng_states(before, hit.rng_before):
                _set_rng_states(hit.rng_after, device)
            return hit.splits
        check_graph(data)
        splits = RandomLinkSplit(num_val=self.num_val, num_test=self.num_test, is_undirected=data.is_undirected(),
                                 split_labels=True, add_negative_train_samples=False)(data)
        cache, key = self._split_cache, id(data)
        # the entry goes with the graph: a weak reference, whose callback drops it once the graph is freed
        graph = weakref.ref(data, lambda _: cache.pop(key, None))
        cache[key] = _CachedSplit(graph, data.edge_index, data.num_nodes, splits, before, _rng_states(device))
        return splits

    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles start without cached splits (weak references do not pickle)."""
        state = dict(self.__dict__)
        state["_split_cache"] = {}
        return state

    def check_loss(self, loss_fn: Any, kind: str | None) -> None:
        if not _takes_posterior(loss_fn):
            check_link_loss("autoencoder", loss_fn, kind)
        super().check_loss(loss_fn, kind)

    def split_names(self) -> Sequence[str]:
        return ("val", "test")

    def train_batches(self) -> Iterable[Tensor]:
        return [self.pos["train"]]

    # ------------------------------------------------------------------ training
    def encode(self, model: nn.Module) -> Tensor:
        """Embeddings of the training graph (the model's mode decides sampling vs the mean)."""
        z = model(self.data.x, self.data.edge_index, **model_inputs(model, self.data))
        return one_row_each(z, self.data.num_nodes, "autoencoder", "node")

    def negatives(self, pos: Tensor) -> Tensor:
        """Uniform negatives avoiding ``pos`` (PyG's ``negative_sampling`` as in ``GAE.recon_loss``)."""
        return negative_sampling(pos, num_nodes=self.data.num_nodes,
                                 num_neg_samples=pos.size(1) * self.num_negatives)

    def objective(self, model: nn.Module, z: Tensor, pos: Tensor, neg: Tensor, loss_fn: nn.Module) -> Tensor:
        """The registry loss on the positive and negative pairs (see the class docstring)."""
        inner = unwrap_model(model)
        variational = bool(getattr(inner, "variational", False))
        if _takes_posterior(loss_fn):
            if not variational or getattr(inner, "mu", None) is None:
                raise ConfigError(f"loss {type(loss_fn).__name__} needs a variational model with mu/logstd "
                                  f"(VGAE, ARGVA); for {type(inner).__name__} use loss='link_bce'")
            return loss_fn(z, inner.mu, inner.logstd, pos, neg)
        if variational:
            raise ConfigError(f"{type(inner).__name__} is variational: train it with loss='vgae' "
                              f"(reconstruction + KL/N); {type(loss_fn).__name__} has no KL term")
        decode = _decoder(model)
        return link_loss(loss_fn, decode(z, pos), decode(z, neg), self.num_negatives)

    def check_model(self, model: nn.Module) -> None:
        refuse_untrained_discriminator("autoencoder", model)
        refuse_model("autoencoder", model, "node", objectives=False, instead="use a graph auto-encoder such as gae")

    def train_loss(self, model: nn.Module, batch: Tensor, loss_fn: nn.Module) -> Tensor:
        z = self.encode(model)
        return self.objective(model, z, batch, self.negatives(batch), loss_fn)

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def predict(self, model: nn.Module) -> Tensor:
        return self.encode(model)

    @torch.no_grad()
    def predict_on(self, model: nn.Module, data: Any, splits: Any = None,
                   device: torch.device | str = "cpu") -> Tensor:
        """Embeddings of the whole graph ``data`` (no split needed); with ``splits``, of their training graph."""
        if splits is not None:
            return super().predict_on(model, data, splits, device)
        if not isinstance(data, Data):  # with_graph would name the task by its level ("link")
            raise ValidationError(f"the autoencoder task predicts on one torch_geometric.data.Data graph, got "
                                  f"{type(data).__name__}; for a dataset of one graph pass dataset[0]")
        return with_graph(self, data, device).encode(model)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, splits: Sequence[str]) -> dict[str, float]:
        z = self.predict(model)
        decode = _decoder(model)
        out = {}
        for split in map(canonical_split, splits):
            pos, neg = decode(z, self.pos[split]), decode(z, self.neg[split])
            y = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)])
            score = torch.cat([pos, neg]).sigmoid()
            out[f"{split}_{self.metric.name}"] = self.metric(y, score)
            out[f"{split}_{self.other_metric.name}"] = self.other_metric(y, score)
        return out


@TASKS.register("adversarial_autoencoder", aliases=("arga",),
                summary="ARGA/ARGVA: auto-encoder link reconstruction with an adversarial latent regulariser")
class AdversarialLinkTask(ReconstructionTask):
    r""":class:`ReconstructionTask` with ARGA's alternating adversarial step.

    Per epoch, with :math:`\mathbf{Z}` the embeddings of the training graph:

    1. ``discriminator_steps`` times: one Adam step of the discriminator on
       :math:`\mathcal{L}_D(\mathbf{Z}^{\text{detached}})` (``model.discriminator_loss``),
       with an optimiser this task owns (``discriminator_lr``);
    2. the encoder loss returned to the Trainer: the registry loss (as in
       :class:`ReconstructionTask`) plus ``reg_weight`` :math:`\cdot\,\mathcal{L}_{\text{reg}}(\mathbf{Z})`.

    This is the loop of PyG's ``examples/argva_node_clustering.py``. The
    discriminator's optimiser state is part of Trainer checkpoints
    (:meth:`state_dict`), so a resumed run continues exactly.
    """

    def __init__(self, metric: str | Metric = "rocauc", discriminator_lr: float = 0.001,
                 discriminator_steps: int = 5, reg_weight: float = 1.0, **kwargs: Any) -> None:
        super().__init__(metric, **kwargs)
        owner = "the adversarial_autoencoder task"
        require_int(owner, "discriminator_steps", discriminator_steps)  # range(2.5) failed in the first step
        for name, value, low in (("discriminator_lr", discriminator_lr, "> 0"), ("reg_weight", reg_weight, ">= 0")):
            if not (_real(value) and math.isfinite(value) and (value > 0 if low == "> 0" else value >= 0)):
                raise ConfigError(f"{owner}'s {name} must be a number {low}, got {value!r}")
        self.discriminator_lr, self.discriminator_steps = discriminator_lr, discriminator_steps
        self.reg_weight = reg_weight
        self.discriminator_optimizer: torch.optim.Optimizer | None = None
        self._owner: nn.Module | None = None
        self._pending_state: dict[str, Any] | None = None  # a checkpoint's, until the optimiser exists
        self._fresh = True  # the next training step builds a new optimiser

    def setup(self, data: Data | None, splits: Sequence[Data] | None = None,
              device: torch.device | str = "cpu") -> None:
        super().setup(data, splits, device)
        # a new fit gets a fresh optimiser at its first step; until then the last one stays, as Trainer.evaluate(data)
        # also sets the task up: dropping it there lost D's Adam state from a checkpoint saved after the evaluation
        self._fresh, self._pending_state = True, None

    def state_dict(self) -> dict[str, Any]:
        optimizer = self.discriminator_optimizer
        return {"discriminator_optimizer": optimizer.state_dict() if optimizer is not None
                else self._pending_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        unknown = set(state) - {"discriminator_optimizer"}
        if unknown:
            raise ConfigError(f"the checkpoint's task state has keys {sorted(unknown)} that "
                              f"{type(self).__name__} does not know; it was written by another task")
        saved = state.get("discriminator_optimizer")
        groups = saved.get("param_groups") if isinstance(saved, dict) else None
        lr = groups[0].get("lr") if groups else None
        if lr is not None and lr != self.discriminator_lr:  # Adam.load_state_dict would silently restore the old one
            raise ConfigError(f"the checkpoint's discriminator optimiser was trained with discriminator_lr={lr!r}, "
                              f"but this task has discriminator_lr={self.discriminator_lr!r}; a resumed run continues "
                              f"the saved optimiser, so the change would not take effect. Resume with "
                              f"discriminator_lr={lr!r}, or start afresh in another checkpoint folder")
        self.discriminator_optimizer, self._owner = None, None
        self._pending_state = saved

    def _optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        if self._fresh or self.discriminator_optimizer is None or self._owner is not model:
            self.discriminator_optimizer = torch.optim.Adam(model.discriminator.parameters(),
                                                            lr=self.discriminator_lr)
            self._owner, self._fresh = model, False
            if self._pending_state is not None:
                self.discriminator_optimizer.load_state_dict(self._pending_state)
                self._pending_state = None
        return self.discriminator_optimizer

    def check_model(self, model: nn.Module) -> None:
        refuse_model("adversarial_autoencoder", model, "node", objectives=False,
                     instead="use a graph auto-encoder such as gae")
        inner = unwrap_model(model)
        if not (hasattr(inner, "discriminator") and hasattr(inner, "discriminator_loss")
                and hasattr(inner, "reg_loss")):
            raise ConfigError(f"the adversarial_autoencoder task needs a model with a discriminator "
                              f"(ARGA, ARGVA), got {type(inner).__name__}")

    def train_loss(self, model: nn.Module, batch: Tensor, loss_fn: nn.Module) -> Tensor:
        inner = unwrap_model(model)
        z = self.encode(model)
        optimizer = self._optimizer(inner)
        for _ in range(self.discriminator_steps):
            optimizer.zero_grad(set_to_none=True)
            inner.discriminator_loss(z.detach()).backward()
            optimizer.step()
        # D's gradients are spent: the Trainer clips the norm of every model gradient it finds (grad_clip), and
        # stale ones of D would shrink the encoder's update
        optimizer.zero_grad(set_to_none=True)
        loss = self.objective(model, z, batch, self.negatives(batch), loss_fn)
        return loss + self.reg_weight * inner.reg_loss(z)
