"""Conformance checks every message-passing layer must pass, plugins included.

>>> from graphdl.testing import check_layer
>>> check_layer("my_conv")            # a registered name, or a class / factory

Checks: output shape; permutation equivariance (permuting the nodes permutes
the output rows); ``reset_parameters`` resets every trainable parameter,
reproducibly under a seed; a ``state_dict`` round trip into a layer built
under another seed gives the same outputs; gradients reach every
parameter; nodes without edges and a graph without edges give finite outputs;
the layer stores the width it was built for as ``in_channels``, as PyG's convs do;
built by ``graphdl.layers.create``, the layer raises a
``ValidationError`` for an out-of-range ``edge_index``, NaN features and a
feature width other than ``in_channels`` (so its forward must take
``(x, edge_index, ...)`` and it must set ``in_channels``), and gives the same
outputs as without the checks. The layer must not write into its inputs.
Each failure raises ``AssertionError`` naming the layer and check.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from graphdl.errors import ValidationError

__all__ = ["check_layer", "LAYER_CHECKS", "random_graph", "general_layers"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _seed(seed: int) -> None:
    """Seed the CPU generator the checks draw from, and CUDA's only where it is initialised (so forked):
    ``torch.manual_seed`` would also queue a seed for a CUDA not yet initialised, which replaces the caller's
    own and is applied when the caller first uses the GPU."""
    torch.default_generator.manual_seed(seed)
    if torch.cuda.is_initialized():
        torch.cuda.manual_seed_all(seed)


def _keeps_caller_state(check: _F) -> _F:
    """Run ``check`` on a fork of torch's random generators (CPU, and CUDA's where initialised), with gradients
    on: the seeds it sets for its own reproducibility must not reseed the caller's (a script that seeds, runs a
    check, then builds its model would otherwise get the same initial weights for every seed), and a caller's
    ``torch.no_grad()`` / ``inference_mode()`` must not fail the gradient checks of a correct plugin."""
    @functools.wraps(check)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
        with torch.random.fork_rng(devices=devices), torch.inference_mode(False), torch.enable_grad():
            return check(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


def random_graph(num_nodes: int = 12, num_edges: int = 40, in_channels: int = 8, edge_dim: int = 4,
                 seed: int = 0) -> dict[str, Tensor]:
    """A small random directed graph without self loops or duplicate edges."""
    gen = torch.Generator().manual_seed(seed)
    src = torch.randint(0, num_nodes, (num_edges,), generator=gen)
    dst = torch.randint(0, num_nodes, (num_edges,), generator=gen)
    keep = src != dst
    edge_index = torch.unique(torch.stack([src[keep], dst[keep]]), dim=1)
    e = edge_index.size(1)
    return {
        "x": torch.randn(num_nodes, in_channels, generator=gen),
        "edge_index": edge_index,
        "edge_weight": torch.rand(e, generator=gen) + 0.1,
        "edge_attr": torch.randn(e, edge_dim, generator=gen),
    }


def general_layers() -> list[str]:
    """Registered layers that run on any ``edge_index`` (not on a grid, chain or complete graph only).

    The conformance suite applies to these; special-graph layers are checked
    against their ``torch.nn`` twins instead.
    """
    from graphdl import layers

    return [e.name for e in layers.entries() if not e.meta.get("graph")]


def _resolve(layer: str | Callable[..., nn.Module]) -> tuple[str, Callable[..., nn.Module], dict[str, Any]]:
    if isinstance(layer, str):
        from graphdl import layers

        entry = layers.entry(layer)
        return entry.name, entry.obj, dict(entry.meta)
    return getattr(layer, "__name__", repr(layer)), layer, {}


class _Case:
    def __init__(self, layer: str | Callable[..., nn.Module], in_channels: int, out_channels: int,
                 kwargs: dict[str, Any], seed: int) -> None:
        self.layer = layer
        self.name, self.factory, meta = _resolve(layer)
        self.edge_weight, self.edge_attr = bool(meta.get("edge_weight")), bool(meta.get("edge_attr"))
        self.in_channels, self.out_channels, self.seed = in_channels, out_channels, seed
        self.kwargs = dict(kwargs)
        self.check = ""  # the check running, for failures raised by run()
        self.graph = random_graph(in_channels=in_channels, seed=seed)
        if self.edge_attr:
            self.kwargs.setdefault("edge_dim", self.graph["edge_attr"].size(1))

    def build(self, seed: int | None = None) -> nn.Module:
        _seed(self.seed if seed is None else seed)
        return self.factory(self.in_channels, self.out_channels, **self.kwargs)

    def run(self, module: nn.Module, graph: dict[str, Tensor] | None = None) -> Tensor:
        g = graph or self.graph
        # The layer gets copies: one that writes into its inputs (x.mul_(2), edge_weight /= deg) is named
        # as such, rather than corrupting the shared graph and failing a later check for another reason.
        given = {key: g[key].clone() for key in ("x", "edge_index", "edge_weight", "edge_attr")}
        if self.edge_attr:
            out = module(given["x"], given["edge_index"], edge_attr=given["edge_attr"])
        elif self.edge_weight:
            out = module(given["x"], given["edge_index"], given["edge_weight"])
        else:
            out = module(given["x"], given["edge_index"])
        for key, value in given.items():
            if value.shape != g[key].shape or not torch.allclose(value, g[key], rtol=0, atol=0, equal_nan=True):
                raise self.fail(self.check, f"forward modified its input {key} in place; work on a copy "
                                            f"(x = x * 2, not x.mul_(2))")
        return out

    def fail(self, check: str, detail: str) -> AssertionError:
        return AssertionError(f"layer {self.name!r} fails the {check} check: {detail}")


def _shape(case: _Case) -> None:
    module = case.build().eval()
    out = case.run(module)
    expected = (case.graph["x"].size(0), case.out_channels)
    if tuple(out.shape) != expected:
        raise case.fail("output shape", f"expected {expected}, got {tuple(out.shape)}")
    if not torch.isfinite(out).all():
        raise case.fail("output shape", "output holds NaN or inf")


def _in_channels(case: _Case) -> None:
    """The layer stores the width it was built for as ``in_channels`` (an int, or a pair for bipartite
    layers), as PyG's convs do: ``graphdl.layers.create`` checks the width of ``x`` against it, and without it a
    wrong width reaches the layer's matmul as a bare shape error (or passes, for a layer without weights)."""
    module = case.build()
    width = getattr(module, "in_channels", None)
    widths = width if isinstance(width, tuple) else (width,)
    if all(isinstance(w, int) and not isinstance(w, bool) and w == case.in_channels for w in widths):
        return
    what = ("does not set self.in_channels" if width is None
            else f"sets in_channels={width!r} although built with in_channels={case.in_channels}")
    raise case.fail("in_channels", f"the layer {what}; store the width in __init__ (self.in_channels = "
                                   f"in_channels), as PyG's convs do: graphdl.layers.create checks the feature "
                                   f"width of x against it")


def _permutation(case: _Case) -> None:
    module = case.build().eval()
    g = case.graph
    n = g["x"].size(0)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(case.seed + 1))
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(n)
    permuted = dict(g, x=g["x"][perm], edge_index=inverse[g["edge_index"]])
    with torch.no_grad():
        out, out_perm = case.run(module), case.run(module, permuted)
    if not torch.allclose(out[perm], out_perm, atol=1e-5, rtol=1e-4):
        err = (out[perm] - out_perm).abs().max().item()
        raise case.fail("permutation equivariance", f"max difference {err:.3g} after permuting the nodes")


def _reset(case: _Case) -> None:
    """Two resets under one seed give the same state, although every trainable parameter was moved in
    between (so a reset_parameters() that skips a parameter, or does nothing, fails)."""
    module = case.build()
    if not hasattr(module, "reset_parameters"):
        raise case.fail("reset_parameters", "the layer has no reset_parameters() method")
    states = []
    for _ in range(2):
        _seed(case.seed + 7)
        module.reset_parameters()
        states.append(copy.deepcopy(module.state_dict()))
        with torch.no_grad():
            for p in module.parameters():
                if p.requires_grad:
                    p.add_(1.0)  # as training would have moved them
    for key in states[0]:
        if not torch.equal(states[0][key], states[1][key]):
            raise case.fail("reset_parameters", f"{key!r} differs between two resets under the same seed (with "
                                                f"the parameters changed in between: does reset_parameters() "
                                                f"reset {key!r}?)")


def _state_dict(case: _Case) -> None:
    a = case.build().eval()
    # built under another seed, so that a tensor that state_dict() misses (a plain tensor attribute rather
    # than a parameter or buffer) differs between a and b and changes the outputs
    b = case.build(seed=case.seed + 3).eval()
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        if not torch.allclose(case.run(a), case.run(b)):
            raise case.fail("state_dict round trip", "a copy loaded from state_dict() gives other outputs (a "
                                                     "tensor kept as a plain attribute rather than an "
                                                     "nn.Parameter or a buffer?)")


def _gradients(case: _Case) -> None:
    module = case.build().train()
    if not any(p.requires_grad for p in module.parameters()):
        return  # a layer without trainable parameters (pure propagation) has no gradient to reach
    out = case.run(module)
    (out * torch.randn_like(out)).sum().backward()
    missing = [name for name, p in module.named_parameters()
               if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
    if missing:
        raise case.fail("gradients", f"no finite gradient reaches {', '.join(missing)}")
    if not any(p.grad.abs().sum() > 0 for p in module.parameters() if p.requires_grad):
        raise case.fail("gradients", "every gradient is zero")


def _degenerate_graphs(case: _Case) -> None:
    """Nodes without edges (half of them) and a graph without any edge give finite outputs of the right shape:
    a degree normalisation such as :math:`D^{-1/2}` or a softmax over an empty neighbourhood must not divide by
    zero (DGL's zero-degree test graphs)."""
    module = case.build().eval()
    g = case.graph
    n = g["x"].size(0)
    graphs = {}
    for what, keep in (("nodes without edges", (g["edge_index"] < n // 2).all(0)),
                       ("a graph without edges", torch.zeros(g["edge_index"].size(1), dtype=torch.bool))):
        graphs[what] = dict(g, edge_index=g["edge_index"][:, keep], edge_weight=g["edge_weight"][keep],
                            edge_attr=g["edge_attr"][keep])
    for what, graph in graphs.items():
        with torch.no_grad():
            out = case.run(module, graph)
        if tuple(out.shape) != (n, case.out_channels):
            raise case.fail("degenerate graphs", f"{what}: expected shape {(n, case.out_channels)}, got "
                                                 f"{tuple(out.shape)}")
        if not bool(torch.isfinite(out).all()):
            rows = (~torch.isfinite(out)).any(-1).nonzero().view(-1).tolist()
            raise case.fail("degenerate graphs", f"{what}: NaN or inf in the outputs of nodes {rows} (a division by "
                                                 f"a degree of 0?)")


def _input_checks(case: _Case) -> None:
    """Built by ``graphdl.layers.create``, the layer rejects bad input with a ValidationError, and
    the check leaves valid calls unchanged."""
    from graphdl import layers

    if not isinstance(case.layer, str):
        return  # only registered layers get the checks (plain factories are not built by create)
    _seed(case.seed)
    checked = layers.create(case.layer, case.in_channels, case.out_channels, **case.kwargs).eval()
    plain = case.build().eval()
    with torch.no_grad():
        if not torch.equal(case.run(checked), case.run(plain)):
            raise case.fail("input checks", "the checked layer's output differs from the unchecked one")
    g = case.graph
    n = g["x"].size(0)
    one_more_edge = {key: torch.cat([g[key], g[key][:1]]) for key in ("edge_weight", "edge_attr")}
    bad_inputs = {
        "an edge_index entry out of range": dict(
            g, edge_index=torch.cat([g["edge_index"], torch.tensor([[0], [n]])], 1), **one_more_edge),
        "NaN features": dict(g, x=g["x"].clone().index_fill_(0, torch.tensor([1]), float("nan"))),
        f"{case.in_channels + 1} features for in_channels={case.in_channels}": dict(
            g, x=torch.randn(n, case.in_channels + 1)),
    }
    for what, graph in bad_inputs.items():
        try:
            with torch.no_grad():
                case.run(checked, graph)
        except ValidationError:
            continue
        except Exception as exc:  # noqa: BLE001 - the point is which error
            raise case.fail("input checks", f"{what} raised {type(exc).__name__} ({exc}), not a "
                                            f"ValidationError; does forward take (x, edge_index, ...) and "
                                            f"the layer set in_channels?") from None
        raise case.fail("input checks", f"{what} raised no error")


LAYER_CHECKS: dict[str, Callable[[_Case], None]] = {
    "shape": _shape,
    "permutation": _permutation,
    "reset_parameters": _reset,
    "state_dict": _state_dict,
    "gradients": _gradients,
    "degenerate_graphs": _degenerate_graphs,
    "in_channels": _in_channels,
    "input_checks": _input_checks,
}


@_keeps_caller_state
def check_layer(layer: str | Callable[..., nn.Module], in_channels: int = 8, out_channels: int = 16,
                checks: tuple[str, ...] | None = None, seed: int = 0, **kwargs: Any) -> None:
    """Run the conformance checks on ``layer`` (a registered name or a class/factory).

    ``kwargs`` go to the layer's constructor. Raises ``AssertionError`` on the
    first failing check. The checks are seeded by ``seed``; the caller's random generator state is kept.
    """
    unknown = [name for name in checks or () if name not in LAYER_CHECKS]
    if unknown:
        raise ValueError(f"unknown check {unknown[0]!r}; the checks are {', '.join(LAYER_CHECKS)}")
    case = _Case(layer, in_channels, out_channels, kwargs, seed)
    for name in tuple(LAYER_CHECKS) if checks is None else checks:  # () runs none, as asked
        case.check = name
        try:
            LAYER_CHECKS[name](case)
        except AssertionError:
            raise
        except Exception as exc:  # noqa: BLE001 - a layer that cannot be built or called fails, naming why
            raise case.fail(name, f"{type(exc).__name__}: {exc} (a layer is built as layer(in_channels, "
                                  f"out_channels, **kwargs) and called as layer(x, edge_index, ...))") from exc
