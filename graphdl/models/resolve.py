"""PyG's resolvers for activations, normalisations and pooling, with errors that name the choices.

PyG's own raise a ``ValueError`` listing class names (or a ``TypeError`` from a
constructor); these raise :class:`~graphdl.errors.ConfigError` naming the
argument, the closest names and how to pass a configured module instead.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch_geometric.nn import aggr as pyg_aggr
from torch_geometric.nn import norm as pyg_norm
from torch_geometric.nn.resolver import activation_resolver, aggregation_resolver, normalization_resolver

from graphdl.errors import ConfigError, did_you_mean

__all__ = ["activation", "normalization", "aggregation", "pooled_width"]


def _names(module: Any, base: type) -> list[str]:
    """Lower-case names of the ``base`` subclasses exported by ``module`` (what PyG's resolvers match)."""
    return sorted(name.lower() for name in getattr(module, "__all__", [])
                  if isinstance(getattr(module, name, None), type) and issubclass(getattr(module, name), base))


def activation(name: str | nn.Module, **kwargs: Any) -> nn.Module:
    """``activation_resolver(name)`` (``relu``, ``elu``, ``gelu``, ``leaky_relu``, ...), or a module as given."""
    if not isinstance(name, (str, nn.Module)):  # PyG's resolver returns it as is: a TypeError at the first call
        raise ConfigError(f"activation must be a name (relu, elu, gelu, leaky_relu, tanh, ...) or a torch.nn.Module "
                          f"instance, got {type(name).__name__} {name!r}; pass an instance such as "
                          f"torch.nn.ReLU(), or torch.nn.Identity() for none")
    try:
        return activation_resolver(name, **kwargs)
    except ValueError:
        names = _names(nn.modules.activation, nn.Module) + ["swish"]
        raise ConfigError(f"unknown activation {name!r}.{did_you_mean(str(name).lower().replace('_', ''), names)} "
                          f"Use a torch.nn activation by name (relu, elu, gelu, leaky_relu, tanh, ...) or pass "
                          f"a module") from None


def normalization(name: str | nn.Module, channels: int) -> nn.Module:
    """``normalization_resolver(name, channels)`` (``batch``, ``layer``, ``graph``, ``instance``, ...), or a copy
    of a module given (each layer gets its own, as PyG's ``BasicGNN`` deep-copies it)."""
    if isinstance(name, nn.Module):  # one instance appended per layer shared its weights and running statistics
        return copy.deepcopy(name)
    if not isinstance(name, str):
        raise ConfigError(f"norm must be a name (batch, layer, graph, instance, ...) or a torch.nn.Module instance, "
                          f"got {type(name).__name__} {name!r}; pass an instance such as "
                          f"torch.nn.BatchNorm1d({channels}), or a name")
    try:
        return normalization_resolver(name, channels)
    except ValueError:
        names = [n.removesuffix("norm") for n in _names(pyg_norm, nn.Module) if n.endswith("norm")]
        raise ConfigError(f"unknown norm {name!r}.{did_you_mean(str(name).lower().removesuffix('norm'), names)} "
                          f"Known: {', '.join(names)} (torch_geometric.nn.norm)") from None
    except TypeError as exc:  # a norm whose constructor takes more than the width, or no width at all
        raise ConfigError(f"norm {name!r} cannot be built from the layer width alone ({exc}); pass a configured "
                          f"torch_geometric.nn.norm module instead (each layer gets a copy of it), e.g. "
                          f"norm=torch_geometric.nn.norm.DiffGroupNorm({channels}, groups=4)") from None


def aggregation(pool: str | pyg_aggr.Aggregation) -> pyg_aggr.Aggregation:
    """A pooling by PyG aggregation name (``mean``, ``sum``/``add``, ``max``, ...) or a configured one."""
    if not isinstance(pool, (str, nn.Module)):  # PyG's resolver returns it as is: an AttributeError later
        hint = ""
        if callable(pool) and getattr(pool, "__name__", "").startswith("global_"):
            hint = f" (for {pool.__name__} give its name, {pool.__name__.split('_')[1]!r})"
        raise ConfigError(f"pool must be a PyG aggregation name (mean, sum, max, ...) or a configured "
                          f"torch_geometric.nn.aggr module, got {type(pool).__name__} {pool!r}{hint}")
    pool = "sum" if pool == "add" else pool
    try:
        return aggregation_resolver(pool)
    except ValueError:
        names = [n.removesuffix("aggregation") for n in _names(pyg_aggr, pyg_aggr.Aggregation)
                 if n.endswith("aggregation")]
        raise ConfigError(f"unknown pooling {pool!r}.{did_you_mean(str(pool).lower(), names)} Use mean, sum, max "
                          f"or another torch_geometric.nn.aggr name, or pass a configured aggregation "
                          f"module") from None
    except TypeError as exc:  # a resolved class whose constructor needs arguments (Set2Set, Attentional, ...)
        raise ConfigError(f"pooling {pool!r} needs constructor arguments ({exc}); pass the configured module, "
                          f"e.g. pool=torch_geometric.nn.aggr.Set2Set(hidden_channels, processing_steps=3)") from None


@torch.no_grad()
def pooled_width(pool: pyg_aggr.Aggregation, channels: int) -> int:
    """The width of ``pool``'s output for ``channels``-wide node features (Set2Set doubles it)."""
    was_training = pool.training
    pool.eval()
    ref = next(pool.parameters(), None)  # a module moved to float64 or a GPU pools inputs of its own kind
    kind = {"dtype": ref.dtype, "device": ref.device} if ref is not None and ref.is_floating_point() else {}
    try:
        return int(pool(torch.zeros(2, channels, **kind),
                        torch.zeros(2, dtype=torch.long, device=kind.get("device"))).size(-1))
    except Exception as exc:  # noqa: BLE001 - a module built for another width
        raise ConfigError(f"the pooling module {pool!r} cannot pool {channels}-wide node features: "
                          f"{type(exc).__name__}: {exc}") from None
    finally:
        pool.train(was_training)
