"""The plugin conformance checks fail broken plugins for the property they claim, pass correct ones, and the
registry hands every argument to the plugin."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GATConv, GCNConv, MessagePassing, SAGEConv

import graphdl
from graphdl.errors import ValidationError
from graphdl.registry import Registry
from graphdl.testing import check_layer, check_loss


@contextmanager
def _registered(family: Any, name: str, obj: Any, **meta: Any) -> Iterator[str]:
    family.register(name, obj, **meta)
    try:
        yield name
    finally:
        family.unregister(name)


# ------------------------------------------------------------------ layers
class _MeanConv(MessagePassing):
    """Mean of the in-neighbours, then a linear map, plus a root weight: a correct layer."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(aggr="mean")
        self.in_channels = in_channels
        self.lin = nn.Linear(in_channels, out_channels)
        self.root = nn.Linear(in_channels, out_channels, bias=False)

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()
        self.root.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.lin(self.propagate(edge_index, x=x)) + self.root(x)


class _ResetDoesNothing(_MeanConv):
    def reset_parameters(self) -> None:
        pass


class _ResetSkipsRoot(_MeanConv):
    def reset_parameters(self) -> None:
        self.lin.reset_parameters()


class _PlainTensorShift(_MeanConv):
    """Keeps a learned-looking shift as a plain attribute: state_dict() does not carry it."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels)
        self.shift = torch.randn(out_channels)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return super().forward(x, edge_index) + self.shift


class _ScalesXInPlace(_MeanConv):
    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        x.mul_(2)
        return super().forward(x, edge_index)


class _NormalisesWeightsInPlace(GCNConv):
    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        edge_weight /= edge_weight.max()
        return super().forward(x, edge_index, edge_weight)


class _Propagate(MessagePassing):
    """Mean over the neighbours and the node itself, without parameters (in_channels == out_channels)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(aggr="mean")
        self.in_channels = in_channels

    def reset_parameters(self) -> None:
        pass

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return (self.propagate(edge_index, x=x) + x) / 2


@pytest.mark.parametrize("layer,match", [
    # before: two resets under one seed were compared with nothing changed in between, so a no-op passed
    (_ResetDoesNothing, r"'lin\.weight' differs between two resets .* does reset_parameters\(\) reset 'lin\.weight'"),
    (_ResetSkipsRoot, r"'root\.weight' differs between two resets"),
])
def test_check_layer_catches_a_reset_parameters_that_resets_nothing_or_not_all(layer: type, match: str) -> None:
    with pytest.raises(AssertionError, match=rf"fails the reset_parameters check: {match}"):
        check_layer(layer, checks=("reset_parameters",))
    with _registered(graphdl.layers, "audit_reset_layer", layer) as name:
        with pytest.raises(AssertionError, match=match):
            check_layer(name)


def test_check_layer_catches_a_tensor_the_state_dict_misses() -> None:
    # before: both copies were built under one seed, so the plain-attribute shift was the same in both
    with pytest.raises(AssertionError, match=r"^layer '_PlainTensorShift' fails the state_dict round trip check: a "
                                             r"copy loaded from state_dict\(\) gives other outputs"):
        check_layer(_PlainTensorShift, checks=("state_dict",))


def test_check_layer_names_a_layer_that_writes_into_its_inputs() -> None:
    # before: the shared x was doubled by every call and the state_dict check was blamed
    with pytest.raises(AssertionError, match=r"^layer '_ScalesXInPlace' fails the shape check: forward modified its "
                                             r"input x in place"):
        check_layer(_ScalesXInPlace)
    with _registered(graphdl.layers, "audit_inplace_weights", _NormalisesWeightsInPlace, edge_weight=True) as name:
        with pytest.raises(AssertionError, match=r"forward modified its input edge_weight in place"):
            check_layer(name)


def test_check_layer_passes_a_layer_without_parameters() -> None:
    # before: 'every gradient is zero' for a layer that has no parameter at all
    check_layer(_Propagate, in_channels=8, out_channels=8)
    with _registered(graphdl.layers, "audit_propagate", _Propagate) as name:
        check_layer(name, in_channels=8, out_channels=8)


@pytest.mark.parametrize("layer,meta", [
    (_MeanConv, {}), (GCNConv, {"edge_weight": True}), (SAGEConv, {}), (GATConv, {"edge_attr": True}),
])
def test_check_layer_passes_correct_layers(layer: type, meta: dict[str, Any]) -> None:
    check_layer(layer)
    with _registered(graphdl.layers, "audit_correct_layer", layer, **meta) as name:
        check_layer(name)


# ------------------------------------------------------------------ losses
class _CrossEntropy(nn.Module):
    """Cross-entropy that checks its reduction, as a plain nn.Module plugin."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValidationError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction

    def terms(self, input: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(input, target, reduction="none")

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        t = self.terms(input, target)
        return t.mean() if self.reduction == "mean" else t.sum() if self.reduction == "sum" else t

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class _DetachedCrossEntropy(_CrossEntropy):
    def terms(self, input: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(input.detach(), target, reduction="none")


class _DoubledGradSquare(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return 4 * x * grad  # wrong: d(x^2)/dx is 2x


class _WrongBackwardMSE(_CrossEntropy):
    def terms(self, input: Tensor, target: Tensor) -> Tensor:
        return _DoubledGradSquare.apply(input - target)


def test_check_loss_names_a_value_without_gradient() -> None:
    # before: torch's bare "element 0 of tensors does not require grad" RuntimeError from backward()
    with _registered(graphdl.losses, "audit_detached_ce", _DetachedCrossEntropy, kind="classification") as name:
        with pytest.raises(AssertionError, match=r"^audit_detached_ce\[mean\]: the value carries no gradient"):
            check_loss(name)


def test_check_loss_reports_a_failed_gradcheck_as_an_assertion() -> None:
    # before: torch's GradcheckError ("Jacobian mismatch ..."), neither an AssertionError nor naming the loss
    with _registered(graphdl.losses, "audit_wrong_backward", _WrongBackwardMSE, kind="regression") as name:
        check_loss(name, gradcheck=False)  # every other check passes
        with pytest.raises(AssertionError, match=r"^audit_wrong_backward: gradcheck failed: .*Jacobian mismatch"):
            check_loss(name)


def test_check_loss_passes_a_correct_plain_module_loss() -> None:
    with _registered(graphdl.losses, "audit_plain_ce", _CrossEntropy, kind="classification") as name:
        assert check_loss(name)["reductions"] == ("mean", "sum", "none")


# ------------------------------------------------------------------ registry
def test_create_hands_a_name_keyword_to_the_plugin() -> None:
    # before: TypeError "Registry.create() got multiple values for argument 'name'"
    things = Registry("audit_things", entry_point_group="")
    things.register("named", lambda name, size=1: (name, size))
    assert things.create("named", name="cora", size=2) == ("cora", 2)
    assert things.build("named", name="cora") == ("cora", 1)

    class NamedLoss(_CrossEntropy):
        def __init__(self, name: str = "x", reduction: str = "mean") -> None:
            super().__init__(reduction)
            self.name = name

    with _registered(graphdl.losses, "audit_named_loss", NamedLoss, kind="classification") as loss:
        assert graphdl.losses.create(loss, name="y").name == "y"
    # the layer family checks widths in its own build: a layer plugin may take name= too

    def named_gcn(in_channels: int, out_channels: int, name: str = "x") -> GCNConv:
        conv = GCNConv(in_channels, out_channels)
        conv.tag = name
        return conv

    with _registered(graphdl.layers, "audit_named_gcn", named_gcn) as layer:
        assert graphdl.layers.create(layer, in_channels=4, out_channels=3, name="y").tag == "y"
