"""The plugin conformance kits (graphdl.testing.check_layer / check_loss): every listed check runs and fails a
plugin broken for it with its message, failures name the inputs they used, and the kits leave the caller's
state alone."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing, SAGEConv

import graphdl
from graphdl.losses import Loss
from graphdl.testing import LAYER_CHECKS, check_layer, check_loss

from test_plugin_checks import _MeanConv, _registered  # a correct layer; a registration undone after the block


# ------------------------------------------------------------------ layers
class _NoInChannels(_MeanConv):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels)
        del self.in_channels


class _WrongInChannels(_MeanConv):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels)
        self.in_channels = out_channels


class _NoWeights(MessagePassing):
    """Without weights and without in_channels: a feature width other than the built one passed every check."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(aggr="mean")

    def reset_parameters(self) -> None:
        pass

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return (self.propagate(edge_index, x=x) + x) / 2


class _WrongWidth(_MeanConv):
    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return super().forward(x, edge_index)[:, :-1]


class _InfOut(_MeanConv):
    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return super().forward(x, edge_index) / 0.0


class _Positional(_MeanConv):
    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return super().forward(x, edge_index) + torch.arange(x.size(0), dtype=x.dtype).unsqueeze(-1)


class _NoReset(_MeanConv):
    def __getattribute__(self, name: str) -> Any:
        if name == "reset_parameters":
            raise AttributeError(name)
        return super().__getattribute__(name)


class _UnusedParameter(_MeanConv):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels)
        self.unused = nn.Parameter(torch.ones(3))


class _DividesByDegree(_MeanConv):
    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        deg = torch.zeros(x.size(0), dtype=x.dtype).index_add_(0, edge_index[1], torch.ones(edge_index.size(1),
                                                                                          dtype=x.dtype))
        return super().forward(x, edge_index) / deg.unsqueeze(-1)


class _OtherArgumentNames(_MeanConv):
    """forward(h, adj): create's checks cannot match the arguments, so bad input is not refused by name."""

    def forward(self, h: Tensor, adj: Tensor) -> Tensor:  # type: ignore[override]
        return self.lin(self.propagate(adj.clamp(max=h.size(0) - 1), x=h)) + self.root(h)


@pytest.mark.parametrize("layer,check,match", [
    (_WrongWidth, "shape", r"fails the output shape check: expected \(12, 16\), got \(12, 15\)"),
    (_InfOut, "shape", r"fails the output shape check: output holds NaN or inf"),
    (_Positional, "permutation", r"fails the permutation equivariance check: max difference"),
    (_NoReset, "reset_parameters", r"fails the reset_parameters check: the layer has no reset_parameters"),
    (_UnusedParameter, "gradients", r"fails the gradients check: no finite gradient reaches unused$"),
    (_DividesByDegree, "degenerate_graphs", r"fails the degenerate graphs check: nodes without edges: NaN or inf"),
    (_NoInChannels, "in_channels", r"fails the in_channels check: the layer does not set self.in_channels"),
])
def test_check_layer_fails_a_layer_broken_for_each_check(layer: type, check: str, match: str) -> None:
    with pytest.raises(AssertionError, match=rf"^layer '{layer.__name__}' {match}"):
        check_layer(layer, checks=(check,))
    check_layer(_MeanConv, checks=(check,))  # the correct layer passes the same check


def test_check_layer_fails_a_registered_layer_the_input_checks_cannot_reach() -> None:
    with _registered(graphdl.layers, "wave24_other_names", _OtherArgumentNames) as name:
        with pytest.raises(AssertionError, match=r"^layer 'wave24_other_names' fails the input checks check: an "
                                                 r"edge_index entry out of range raised no error$"):
            check_layer(name, checks=("input_checks",))


@pytest.mark.parametrize("layer,what", [(_NoInChannels, "does not set self.in_channels"),
                                        (_WrongInChannels, "sets in_channels=16 although built with in_channels=8"),
                                        (_NoWeights, "does not set self.in_channels")])
def test_check_layer_requires_in_channels(layer: type, what: str) -> None:
    # before: a layer without in_channels passed (as a class; registered, a layer with weights failed the
    # input checks with a bare matmul error and one without weights passed), although graphdl.layers.create
    # checks the width of x against it and the README asks for it
    message = (rf"fails the in_channels check: the layer {what}; store the width in __init__ \(self.in_channels = "
               rf"in_channels\), as PyG's convs do: graphdl.layers.create checks the feature width of x against it$")
    kwargs = {"in_channels": 8, "out_channels": 8} if layer is _NoWeights else {}
    with pytest.raises(AssertionError, match=rf"^layer '{layer.__name__}' {message}"):
        check_layer(layer, **kwargs)
    with _registered(graphdl.layers, "wave24_in_channels", layer) as name:
        with pytest.raises(AssertionError, match=rf"^layer 'wave24_in_channels' {message}"):
            check_layer(name, **kwargs)


def test_check_layer_takes_a_registered_factory() -> None:
    def make_sage(in_channels: int, out_channels: int, aggr: str = "mean") -> SAGEConv:
        return SAGEConv(in_channels, out_channels, aggr=aggr)

    def make_without_width(in_channels: int, out_channels: int) -> nn.Module:
        return _NoInChannels(in_channels, out_channels)

    with _registered(graphdl.layers, "wave24_factory", make_sage) as name:
        check_layer(name, aggr="max")
    with _registered(graphdl.layers, "wave24_factory", make_without_width) as name:
        with pytest.raises(AssertionError, match=r"^layer 'wave24_factory' fails the in_channels check"):
            check_layer(name)
    assert list(LAYER_CHECKS)[-2:] == ["in_channels", "input_checks"]


# ------------------------------------------------------------------ losses
class _Center(Loss):
    kind = "metric"

    def __init__(self, num_classes: int, dim: int, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.num_classes, self.dim = num_classes, dim
        self.centers = nn.Parameter(torch.randn(num_classes, dim))

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        return self._reduce((embeddings - self.centers.to(embeddings.dtype)[labels]).pow(2).sum(1))


_FIT = (r"if the loss takes other inputs, give them with check_loss\('wave24_center', inputs=\(\(args\.\.\.\), "
        r"\{kwargs\}\)\), build the loss to fit these with check_loss\('wave24_center', init_kwargs=\{\.\.\.\}\), "
        r"or give the class an example_inputs\(dtype, generator\) method$")


def test_check_loss_names_the_inputs_a_failing_call_used() -> None:
    # before: torch's bare "The size of tensor a (6) must match the size of tensor b (16)" from deep in forward
    with _registered(graphdl.losses, "wave24_center", _Center) as name:
        with pytest.raises(AssertionError, match=(
                r"^wave24_center\[mean\]: the value check: calling the loss raised RuntimeError: The size of "
                r"tensor a \(6\) must match the size of tensor b \(16\) at non-singleton dimension 1\. check_loss "
                r"called loss\(\*args, \*\*kwargs\) with the default inputs for kind='metric': args "
                r"\(Tensor\(12, 6\) float64 requires_grad, Tensor\(12,\) int64\), kwargs \{\}; " + _FIT)) as info:
            check_loss(name, init_kwargs={"num_classes": 4, "dim": 16})
        assert isinstance(info.value.__cause__, RuntimeError)
        emb = torch.randn(6, 5, requires_grad=True)
        with pytest.raises(AssertionError, match=r"with the inputs= given: args \(Tensor\(6, 5\) float32 "
                                                 r"requires_grad, Tensor\(6,\) int64\), kwargs \{\}; "):
            check_loss(name, init_kwargs={"num_classes": 4, "dim": 16}, inputs=(emb, torch.zeros(6, dtype=torch.long)))
        check_loss(name, init_kwargs={"num_classes": 4, "dim": 5}, inputs=(emb, torch.zeros(6, dtype=torch.long)))


class _FailingBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        raise RuntimeError("backward is broken")


class _BackwardFails(Loss):
    kind = "regression"

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return self._reduce(_FailingBackward.apply(input - target) ** 2)


class _Float32Only(Loss):
    kind = "regression"

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        if input.dtype != torch.float32:
            raise TypeError(f"expects float32, got {input.dtype}")
        return self._reduce((input - target) ** 2)


def test_check_loss_names_a_failing_backward_and_gradcheck_call() -> None:
    # before: the RuntimeError / TypeError themselves, naming neither the check nor the inputs
    with pytest.raises(AssertionError, match=r"^_BackwardFails\[mean\]: the gradient check: backward\(\) through the "
                                             r"value raised RuntimeError: backward is broken\. check_loss called "
                                             r"loss\(\*args, \*\*kwargs\) with the default inputs for "
                                             r"kind='regression': args \(Tensor\(8, 2\) float64 requires_grad"):
        check_loss(_BackwardFails())
    pair = (torch.randn(4, 3, requires_grad=True), torch.randn(4, 3))
    check_loss(_Float32Only(), inputs=pair, gradcheck=False)
    with pytest.raises(AssertionError, match=r"^_Float32Only: gradcheck: calling the loss \(reduction='sum'\) on "
                                             r"float64 copies of the inputs raised TypeError: expects float32, got "
                                             r"torch\.float64\. check_loss called .* with the inputs= given: args "
                                             r"\(Tensor\(4, 3\) float32 requires_grad, Tensor\(4, 3\) float32\)"):
        check_loss(_Float32Only(), inputs=pair)


def test_check_loss_names_init_kwargs_for_a_loss_it_cannot_build() -> None:
    # before: the registry's ConfigError, which does not say how to give check_loss the arguments
    with _registered(graphdl.losses, "wave24_center", _Center) as name:
        with pytest.raises(AssertionError, match=r"^wave24_center: could not be built \(ConfigError: .*missing 2 "
                                                 r"required positional arguments: 'num_classes' and 'dim'.*\); pass "
                                                 r"its constructor arguments with check_loss\('wave24_center', "
                                                 r"init_kwargs=\{\.\.\.\}\)$"):
            check_loss(name)


def test_check_loss_refuses_init_kwargs_for_a_built_module() -> None:
    # before: dropped without a word, so the module was checked as built
    with pytest.raises(ValueError, match=r"^check_loss: init_kwargs=\{'dim': 16\} apply to a registered name only"):
        check_loss(_Center(4, 6), init_kwargs={"dim": 16})


class _KindlessCE(Loss):
    """A Loss without a kind of its own, built by a factory registered with kind=."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return self._reduce(F.cross_entropy(input, target, reduction="none"))


def test_check_loss_finds_the_kind_of_a_module_a_registered_factory_built() -> None:
    # before: ValueError "no default inputs for losses of kind None" although the factory was registered with one
    def make(reduction: str = "mean") -> _KindlessCE:
        return _KindlessCE(reduction=reduction)

    with _registered(graphdl.losses, "wave24_factory_ce", make, kind="classification") as name:
        assert check_loss(name)["kind"] == "classification"
        built = graphdl.losses.create(name)
        report = check_loss(built)
        assert report["kind"] == "classification"
        torch.testing.assert_close(report["values"]["mean"], check_loss(name)["values"]["mean"])


class _ValueErrorReduction(nn.Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{reduction} is not a valid value for reduction")
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        terms = (input - target) ** 2
        return terms.mean() if self.reduction == "mean" else terms.sum() if self.reduction == "sum" else terms

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


def test_check_loss_reports_a_bad_reduction_refused_with_another_error() -> None:
    # before: the plugin's ValueError escaped the kit instead of an AssertionError naming the check
    with _registered(graphdl.losses, "wave24_value_error", _ValueErrorReduction, kind="regression") as name:
        with pytest.raises(AssertionError, match=r"^wave24_value_error: reduction='no-such-reduction' raised "
                                                 r"ValueError \(no-such-reduction is not a valid value for "
                                                 r"reduction\), not a graphdl.errors.ValidationError"):
            check_loss(name)


class _Faulty(Loss):
    kind = "regression"
    fault = ""

    def __init__(self, scale: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.scale = scale
        self.weight = nn.Parameter(torch.ones(()))
        self.unused = nn.Parameter(torch.ones(()))

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        terms = self.scale * self.weight * (input - target) ** 2
        if self.fault == "float":
            return float(terms.sum())  # type: ignore[return-value]
        if self.fault == "zero-grad":
            terms = terms * 0
        if self.fault == "mean-shape" and self.reduction == "mean":
            return terms.mean(0)
        out = self._reduce(terms)
        if self.fault == "unused-parameter":
            return out
        return out + 0 * self.unused


@pytest.mark.parametrize("fault,match", [
    ("float", r"^_Faulty\[mean\]: returned float, not a Tensor$"),
    ("zero-grad", r"^_Faulty\[mean\]: the gradient is zero for every input$"),
    ("mean-shape", r"^_Faulty\[mean\]: expected a scalar, got shape \(2,\)$"),
    ("unused-parameter", r"^_Faulty\[mean\]: parameter 'unused' got no gradient$"),
])
def test_check_loss_fails_a_loss_broken_for_each_check(fault: str, match: str) -> None:
    loss = _Faulty()
    check_loss(loss)  # the same loss without the fault conforms
    loss.fault = fault
    with pytest.raises(AssertionError, match=match):
        check_loss(loss, gradcheck=False)


def test_check_loss_fails_an_ignored_input_a_skipped_reduction_and_an_accepted_bad_reduction() -> None:
    a, b = torch.randn(5, 3, requires_grad=True), torch.randn(5, 3, requires_grad=True)
    with pytest.raises(AssertionError, match=r"^_IgnoresTarget\[mean\]: no gradient reached differentiable "
                                             r"input #1$"):
        check_loss(_IgnoresTarget(), inputs=(a, b), gradcheck=False)
    with _registered(graphdl.losses, "wave24_fixed", lambda reduction="mean": _Faulty(), kind="regression") as name:
        with pytest.raises(AssertionError, match=r"^wave24_fixed: reduction='sum' was not applied$"):
            check_loss(name)
    with _registered(graphdl.losses, "wave24_torch_mse", lambda reduction="mean": nn.MSELoss(reduction=reduction),
                     kind="regression") as name:
        with pytest.raises(AssertionError, match=r"^wave24_torch_mse: reduction='no-such-reduction' was accepted; "
                                                 r"raise ValidationError$"):
            check_loss(name)


class _IgnoresTarget(Loss):
    """A loss of two differentiable inputs that ignores the second."""

    kind = "regression"

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return self._reduce(input ** 2)



# ------------------------------------------------------------------ the caller's state
def _checks() -> list[Any]:
    return [lambda: check_layer("sage", checks=("shape", "gradients", "reset_parameters")),
            lambda: check_loss("mse")]


@pytest.mark.parametrize("check", _checks(), ids=["check_layer", "check_loss"])
@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
def test_the_kits_pass_a_correct_plugin_under_the_callers_no_grad(check: Any, mode: Any) -> None:
    # before: "fails the gradients check: RuntimeError: element 0 of tensors does not require grad" for sage and
    # "mse[mean]: the value carries no gradient" for mse, blaming correct plugins for the caller's grad mode
    with mode():
        check()
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()


@pytest.mark.parametrize("check", _checks(), ids=["check_layer", "check_loss"])
def test_the_kits_leave_the_callers_state_alone(check: Any) -> None:
    # before: torch.manual_seed in the kits also queued a seed for CUDA, replacing the caller's own: on a GPU
    # machine, a script that seeds, runs a check and then first uses CUDA got the kit's seed there
    torch.manual_seed(11)
    expected = torch.rand(4)
    torch.manual_seed(11)
    queued = list(torch.cuda._lazy_seed_tracker.get_calls())  # the seed CUDA gets when first used
    layers, losses, dtype = graphdl.layers.list(), graphdl.losses.list(), torch.get_default_dtype()
    check()
    assert list(torch.cuda._lazy_seed_tracker.get_calls()) == queued
    assert torch.equal(torch.rand(4), expected)
    assert (graphdl.layers.list(), graphdl.losses.list(), torch.get_default_dtype()) == (layers, losses, dtype)


def test_an_entry_point_naming_a_registered_plugin_keeps_its_registration_meta(monkeypatch):
    """A class its module registered with kind='metric' and an entry point named otherwise got a second entry
    without the kind (the class's default); now the second name keeps what the first was registered with."""
    import sys
    from importlib import metadata

    from graphdl.registry import Registry

    module = type(sys)("gdl_wave24_meta_plugins")
    module.Center = type("Center", (), {})
    monkeypatch.setitem(sys.modules, "gdl_wave24_meta_plugins", module)
    monkeypatch.delenv("GRAPHDL_NO_PLUGINS", raising=False)
    ep = metadata.EntryPoint("other_name", "gdl_wave24_meta_plugins:Center", "graphdl.gadgets")
    monkeypatch.setattr(metadata, "entry_points", lambda group=None: [e for e in [ep] if e.group == group])
    registry = Registry("gadgets")
    registry.register("center", module.Center, kind="metric")
    registry.load_plugins()
    assert registry.entry("other_name").meta == {"kind": "metric"}


def test_check_layer_with_no_checks_runs_none():
    """checks=() ran every check (an empty tuple is falsy); None runs them all."""
    from graphdl.testing import check_layer

    class NoReset(torch.nn.Module):  # fails reset_parameters when that check runs
        def __init__(self, in_channels, out_channels):
            super().__init__()
            self.in_channels = in_channels
            self.lin = torch.nn.Linear(in_channels, out_channels)

        def forward(self, x, edge_index):
            return self.lin(x)

    check_layer(NoReset, checks=())
    with pytest.raises(AssertionError, match="reset_parameters"):
        check_layer(NoReset)


def test_check_loss_reads_a_modules_kind_as_the_trainer_does():
    """check_loss took a module's class kind over the kind it was registered with, the Trainer the other way:
    one module was checked with the inputs of one kind and trained as another."""
    from graphdl.losses import LOSSES
    from graphdl.testing import check_loss

    class Pull(graphdl.losses.Loss):
        kind = "classification"

        def forward(self, embeddings, labels):
            return self._reduce(embeddings.pow(2).sum(-1))

    LOSSES.register("wave24_pull", kind="metric")(Pull)
    try:
        assert check_loss(Pull(), gradcheck=False)["kind"] == "metric"
        assert graphdl.losses.kind_of(Pull()) == "metric"
    finally:
        LOSSES.unregister("wave24_pull")
