"""Module hygiene of every registered layer and model: what PyG/torch users rely on of an ``nn.Module``.

Copies (``copy.deepcopy``, pickle) and ``state_dict()`` round trips give equal outputs; ``reset_parameters()``
re-draws every parameter and resets the buffers (a trained module reset under a seed equals a new one reset under
that seed); ``.train()``/``.eval()`` reach every submodule and evaluation is deterministic; ``.to(float64)`` and
``.to("meta")`` move every tensor the module holds; ``repr()`` names the settings; no module keeps its last input
alive. The sweep is parametrised over the registries, so a new plugin must be given a recipe here.
"""

from __future__ import annotations

import copy
import gc
import pickle
import weakref
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import graphdl
from graphdl.errors import ConfigError
from graphdl.graphs import chain, complete, grid
from graphdl.testing.layers import general_layers, random_graph

GRAPH = random_graph(in_channels=8)
N = GRAPH["x"].size(0)
BATCH = torch.tensor([0] * (N // 2) + [1] * (N - N // 2))
IMAGES = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(0))
SEQS = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(1))
TOKENS = torch.randn(5, 8, generator=torch.Generator().manual_seed(2))
ATOMS = torch.zeros(N, 9, dtype=torch.long)
BONDS = torch.zeros(GRAPH["edge_index"].size(1), 3, dtype=torch.long)

#: a call returns (output, the input objects it built: fresh ones every call, for the weak-reference check)
Call = Callable[[nn.Module, torch.dtype], tuple[Any, list[Any]]]


def _graph(dtype: torch.dtype) -> dict[str, Tensor]:
    return {k: (v.to(dtype) if v.is_floating_point() else v).clone() for k, v in GRAPH.items()}


def _general_layer(name: str) -> tuple[Callable[[], nn.Module], Call]:
    meta = graphdl.layers.entry(name).meta
    ogb = name.startswith("ogb")  # bond features are categorical: OGB's BondEncoder
    kwargs = {"edge_dim": 4} if meta.get("edge_attr") and not ogb else {}

    def call(m: nn.Module, dt: torch.dtype) -> tuple[Any, list[Any]]:
        g = _graph(dt)
        if ogb:
            return m(g["x"], g["edge_index"], BONDS.clone()), [g["x"]]
        if meta.get("edge_attr"):
            return m(g["x"], g["edge_index"], edge_attr=g["edge_attr"]), [g["x"], g["edge_attr"]]
        if meta.get("edge_weight"):
            return m(g["x"], g["edge_index"], g["edge_weight"]), [g["x"], g["edge_weight"]]
        return m(g["x"], g["edge_index"]), [g["x"]]

    return (lambda: graphdl.layers.create(name, 8, 6, **kwargs)), call


def _on(make: Callable[[torch.dtype], Any], run: Callable[[nn.Module, Any], Any]) -> Call:
    def call(m: nn.Module, dt: torch.dtype) -> tuple[Any, list[Any]]:
        given = make(dt)
        return run(m, given), [given]
    return call


def _on_graph(run: Callable[[nn.Module, dict[str, Tensor]], Any]) -> Call:
    def call(m: nn.Module, dt: torch.dtype) -> tuple[Any, list[Any]]:
        g = _graph(dt)
        return run(m, g), [g["x"]]
    return call


SPECIAL: dict[str, tuple[Callable[[], nn.Module], Call]] = {
    "grid_conv": (lambda: graphdl.layers.create("grid_conv", 3, 4, padding=1),
                  _on(lambda dt: grid(IMAGES.to(dt).clone(), 3, padding=1),
                      lambda m, g: m(g, method="message_passing"))),
    "grid_pool": (lambda: graphdl.layers.create("grid_pool", 3, reduce="mean"),
                  _on(lambda dt: IMAGES.to(dt).clone(), lambda m, x: m(x, method="message_passing"))),
    "chain_gru": (lambda: graphdl.layers.create("chain_gru", 4, 6, num_layers=2, dropout=0.3, bidirectional=True),
                  _on(lambda dt: chain([s.to(dt) for s in SEQS]), lambda m, g: m(g, method="message_passing"))),
    "chain_lstm": (lambda: graphdl.layers.create("chain_lstm", 4, 6, batch_first=True),
                   _on(lambda dt: SEQS.to(dt).clone(), lambda m, x: m(x))),
    "complete_mha": (lambda: graphdl.layers.create("complete_mha", 8, num_heads=2, dropout=0.2),
                     _on(lambda dt: complete(5, x=TOKENS.to(dt).clone()), lambda m, g: m(g, method="message_passing"))),
    "dynamic_edgeconv": (lambda: graphdl.layers.create("dynamic_edgeconv", 4, 6, k=3),
                         _on(lambda dt: SEQS[0].to(dt).clone(), lambda m, x: m(x))),
}

MODELS: dict[str, tuple[Callable[[], nn.Module], Call]] = {
    "gnn": (lambda: graphdl.models.create("gnn", in_channels=8, hidden_channels=6, out_channels=3, norm="batch",
                                          dropout=0.3),
            _on_graph(lambda m, g: m(g["x"], g["edge_index"], edge_weight=g["edge_weight"]))),
    "graph_gnn": (lambda: graphdl.models.create("graph_gnn", out_channels=2, layer="gine", in_channels=6,
                                                hidden_channels=6, edge_dim=4, virtual_node=True,
                                                node_encoder=nn.Linear(8, 6)),
                  _on_graph(lambda m, g: m(g["x"], g["edge_index"], edge_attr=g["edge_attr"], batch=BATCH))),
    "link_gnn": (lambda: graphdl.models.create("link_gnn", decoder="mlp", in_channels=8, hidden_channels=6),
                 _on_graph(lambda m, g: m.decode(m(g["x"], g["edge_index"]), g["edge_index"]))),
    "gae": (lambda: graphdl.models.create("gae", in_channels=8, hidden_channels=6, out_channels=3),
            _on_graph(lambda m, g: m(g["x"], g["edge_index"]))),
    "vgae": (lambda: graphdl.models.create("vgae", in_channels=8, hidden_channels=6, out_channels=3),
             _on_graph(lambda m, g: m(g["x"], g["edge_index"]))),
    "arga": (lambda: graphdl.models.create("arga", in_channels=8, hidden_channels=6, out_channels=3),
             _on_graph(lambda m, g: (lambda z: torch.cat([z.flatten(), m.discriminator(z)]))(
                 m(g["x"], g["edge_index"])))),
    "argva": (lambda: graphdl.models.create("argva", in_channels=8, hidden_channels=6, out_channels=3),
              _on_graph(lambda m, g: (lambda z: torch.cat([z.flatten(), m.discriminator(z)]))(
                  m(g["x"], g["edge_index"])))),
    "dominant": (lambda: graphdl.models.create("dominant", in_channels=8, hidden_channels=6, sigmoid_s=True,
                                               dropout=0.2),
                 _on_graph(lambda m, g: (lambda o: torch.cat([o.x_hat.flatten(), o.s_hat.flatten()]))(
                     m(g["x"], g["edge_index"], batch=BATCH)))),
    "latent_distance": (lambda: graphdl.models.create("latent_distance", in_channels=8, hidden_channels=6,
                                                      dropout=0.2),
                        _on_graph(lambda m, g: m(g["x"], g["edge_index"]).x_hat)),
    "mlp_ae": (lambda: graphdl.models.create("mlp_ae", in_channels=8, hidden_channels=6, dropout=0.2),
               _on_graph(lambda m, g: m(g["x"]).x_hat)),
    "chain_forecaster": (lambda: graphdl.models.create("chain_forecaster", in_channels=4, out_channels=2,
                                                       hidden_channels=5, num_layers=2, dropout=0.3),
                         _on(lambda dt: chain([s.to(dt) for s in SEQS]),
                             lambda m, b: m(b.x, b.edge_index, b.batch))),
    "lenet_grid": (lambda: graphdl.models.create("lenet_grid", in_channels=3, out_channels=2, image_size=6,
                                                 channels=(2, 3), hidden=(4,), method="message_passing",
                                                 dropout=0.3),
                   _on(lambda dt: IMAGES.to(dt).clone(), lambda m, x: m(x))),
    "ogb_mol": (lambda: graphdl.models.create("ogb_mol", num_tasks=2, hidden_channels=6, num_layers=2),
                _on(lambda dt: ATOMS.clone(), lambda m, a: m(a, GRAPH["edge_index"], BONDS, batch=BATCH))),
}

CASES: dict[str, tuple[Callable[[], nn.Module], Call]] = {
    **{f"layer:{n}": _general_layer(n) for n in general_layers()},
    **{f"layer:{n}": v for n, v in SPECIAL.items()},
    **{f"model:{n}": v for n, v in MODELS.items()},
}
NAMES = sorted(CASES)


def _first(out: Any) -> Tensor:
    while isinstance(out, tuple):
        out = out[0]
    return out


def _build(case: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return CASES[case][0]()


def _out(case: str, module: nn.Module, dtype: torch.dtype = torch.float32) -> Tensor:
    with torch.no_grad():
        return _first(CASES[case][1](module, dtype)[0])


def _train_step(case: str, module: nn.Module) -> None:
    """One SGD step in training mode (moves every parameter with a gradient and the BatchNorm statistics)."""
    module.train()
    params = [p for p in module.parameters() if p.requires_grad]
    torch.manual_seed(2)
    out = _first(CASES[case][1](module, torch.float32)[0])
    if params:
        (out.float() ** 2).sum().backward()
        torch.optim.SGD(params, lr=0.5).step()


def test_the_sweep_covers_every_registered_layer_and_model() -> None:
    assert {f"layer:{n}" for n in graphdl.layers.list()} | {f"model:{n}" for n in graphdl.models.list()} == set(CASES)


@pytest.mark.parametrize("case", NAMES)
def test_copies_and_state_dict_give_equal_outputs(case: str) -> None:
    module = _build(case)
    _train_step(case, module)  # a copy after training: cached outputs (VGAE's mu) must not break it
    module.eval()
    ref = _out(case, module)
    assert torch.equal(_out(case, copy.deepcopy(module)), ref)
    assert torch.equal(_out(case, pickle.loads(pickle.dumps(module))), ref)
    other = _build(case, seed=5).eval()
    other.load_state_dict(module.state_dict(), strict=True)
    assert torch.equal(_out(case, other), ref)


@pytest.mark.parametrize("case", NAMES)
def test_reset_parameters_redraws_every_parameter_and_buffer(case: str) -> None:
    trained = _build(case)
    if not any(True for _ in trained.parameters()):
        assert trained.state_dict() == {}  # nothing to re-draw or reset (grid_pool, as torch's pooling modules)
        return
    assert hasattr(trained, "reset_parameters"), f"{case} has parameters but no reset_parameters()"
    _train_step(case, trained)
    fresh = _build(case, seed=9)
    torch.manual_seed(11)
    trained.reset_parameters()
    torch.manual_seed(11)
    fresh.reset_parameters()
    got, want = trained.state_dict(), fresh.state_dict()
    assert [k for k in want if not torch.equal(got[k], want[k])] == []
    assert torch.equal(_out(case, trained.eval()), _out(case, fresh.eval()))


@pytest.mark.parametrize("case", NAMES)
def test_modes_reach_every_submodule_and_eval_is_deterministic(case: str) -> None:
    module = _build(case)
    assert all(m.training for m in module.train().modules())
    assert not any(m.training for m in module.eval().modules())
    torch.manual_seed(0)
    first = _out(case, module)
    torch.manual_seed(1)
    assert torch.equal(_out(case, module), first)


@pytest.mark.parametrize("case", NAMES)
def test_float64_and_meta_move_every_tensor(case: str) -> None:
    module = _build(case)
    torch.manual_seed(1)
    CASES[case][1](module.train(), torch.float32)  # a training forward: anything it keeps must move too
    module.eval()
    ref = _out(case, module)
    double = copy.deepcopy(module).to(torch.float64)
    out = _out(case, double, torch.float64)
    if ref.is_floating_point():
        assert out.dtype == torch.float64
        torch.testing.assert_close(out.float(), ref, atol=1e-5, rtol=1e-4)
    meta = copy.deepcopy(module).to("meta")
    for mod_d, mod_m in zip(double.modules(), meta.modules()):
        for key, value in vars(mod_d).items():
            if isinstance(value, Tensor) and value.is_floating_point():
                assert value.dtype == torch.float64, f"{type(mod_d).__name__}.{key} stayed {value.dtype}"
        for key, value in vars(mod_m).items():
            if isinstance(value, Tensor):
                assert value.device.type == "meta", f"{type(mod_m).__name__}.{key} stayed on {value.device}"


@pytest.mark.parametrize("case", NAMES)
def test_no_module_keeps_its_last_input_alive(case: str) -> None:
    for training in (True, False):
        module = _build(case).train(training)
        torch.manual_seed(0)
        out, given = CASES[case][1](module, torch.float32)
        refs = [weakref.ref(obj) for obj in given]
        del out, given
        if getattr(module, "variational", False):
            # VGAE/ARGVA keep the last posterior on purpose (kl_loss() reads it, as PyG's VGAE): nothing else
            assert isinstance(module.mu, Tensor) and isinstance(module.logstd, Tensor)
            module.mu = module.logstd = None
        if any(r() is not None for r in refs):
            gc.collect()  # only when reference counting left something (a full collection takes ~0.5 s)
        assert [r for r in refs if r() is not None] == [], f"{case} (training={training}) keeps its input alive"


@pytest.mark.parametrize("case", NAMES)
def test_repr_names_the_class(case: str) -> None:
    module = _build(case)
    assert type(module).__name__ in repr(module)


# ------------------------------------------------------------------ the fixes, one by one
def test_vgae_posterior_moves_with_the_module() -> None:
    """``model.mu``/``logstd`` stayed float32 on the CPU after ``.double()`` / ``.to(device)``; ``kl_loss()``
    then mixed the old posterior's dtype into a float64 model."""
    torch.manual_seed(0)
    model = graphdl.models.create("vgae", in_channels=8, hidden_channels=6, out_channels=3).eval()
    g = _graph(torch.float32)
    model(g["x"], g["edge_index"])
    kl32 = model.kl_loss()
    model.double()
    assert model.mu.dtype == torch.float64 and model.logstd.dtype == torch.float64
    assert model.kl_loss().dtype == torch.float64
    torch.testing.assert_close(model.kl_loss().float(), kl32)
    g64 = _graph(torch.float64)
    model(g64["x"], g64["edge_index"])  # the moved posterior equals the one a float64 encode gives
    torch.testing.assert_close(model.kl_loss().float(), kl32)
    model.to("meta")
    assert model.mu.device.type == "meta" and model.logstd.device.type == "meta"


def test_vgae_reset_drops_the_old_posterior() -> None:
    """After ``reset_parameters()`` the stored posterior was the old weights': ``kl_loss()`` scored it."""
    torch.manual_seed(0)
    model = graphdl.models.create("argva", in_channels=8, hidden_channels=6, out_channels=3)
    g = _graph(torch.float32)
    model(g["x"], g["edge_index"])
    model.reset_parameters()
    assert model.mu is None and model.logstd is None
    with pytest.raises(ConfigError, match=r"no \(mu, logstd\) yet; call encode\(\) first"):
        model.kl_loss()


@pytest.mark.parametrize("case", ["layer:dynamic_edgeconv", "model:lenet_grid", "model:chain_forecaster"])
def test_reset_parameters_of_the_models_that_lacked_it(case: str) -> None:
    module = _build(case)
    before = copy.deepcopy(module.state_dict())
    torch.manual_seed(3)
    module.reset_parameters()
    after = module.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in after if after[k].is_floating_point()
               and after[k].numel() > 1)


@pytest.mark.parametrize("case", ["model:lenet_grid", "model:chain_forecaster"])
def test_reset_parameters_draws_as_the_constructor(case: str) -> None:
    """Under one seed a reset gives the weights of a new model (the constructor's draws, in its order)."""
    trained = _build(case)
    _train_step(case, trained)
    torch.manual_seed(4)
    trained.reset_parameters()
    new = _build(case, seed=4)
    for key, value in new.state_dict().items():
        assert torch.equal(trained.state_dict()[key], value), key


def test_repr_names_the_settings() -> None:
    assert "mode='knn', k=3" in repr(graphdl.models.create("latent_distance", in_channels=4, mode="knn", k=3))
    assert "mode='neighbors'" in repr(graphdl.models.create("latent_distance", in_channels=4))
    assert "sigmoid_s=True" in repr(graphdl.models.create("dominant", in_channels=4, sigmoid_s=True))
    assert "dropout=0.25" in repr(graphdl.models.create("mlp_ae", in_channels=4, dropout=0.25))
    assert "method='message_passing'" in repr(graphdl.models.create("lenet_grid", method="message_passing"))
    assert "method='dense'" in repr(graphdl.models.create("chain_forecaster", method="dense"))


# ------------------------------------------------------------------ structure caches do not outlive their graph
def _edit_grid(g: Any) -> None:
    g.edge_index[0, 5] = (g.edge_index[0, 5] + 1) % g.num_nodes


def _edit_first_edge(g: Any) -> None:
    g.edge_index[:, 0] = g.edge_index[:, 1]


@pytest.mark.parametrize("name, make, edit", [
    ("grid_conv", lambda: grid(IMAGES.clone(), 3, padding=1), _edit_grid),
    ("chain_gru", lambda: chain([s.clone() for s in SEQS]), _edit_first_edge),
    ("complete_mha", lambda: complete(5, x=TOKENS.clone()), _edit_first_edge),
])
def test_a_graph_edited_after_a_dense_call_is_not_read_as_the_special_graph(name: str, make: Any, edit: Any) -> None:
    """The verdict "this is still the grid/chain/complete graph" is cached per edge_index; an in-place edit must
    send the next call to message passing, which then equals an explicit message-passing call."""
    torch.manual_seed(0)
    layer = {"grid_conv": lambda: graphdl.layers.create("grid_conv", 3, 4, padding=1),
             "chain_gru": lambda: graphdl.layers.create("chain_gru", 4, 6),
             "complete_mha": lambda: graphdl.layers.create("complete_mha", 8, num_heads=2)}[name]()
    g = make()
    before = _first(layer(g))
    edit(g)
    after, reference = _first(layer(g)), _first(layer(g, method="message_passing"))
    torch.testing.assert_close(after, reference)
    assert not torch.allclose(after, before)


def test_lenet_input_grid_check_is_redone_after_an_in_place_edit() -> None:
    from graphdl.errors import ValidationError

    model = graphdl.models.create("lenet_grid")
    g = grid(torch.rand(1, 1, 8, 8), 3, padding=1)  # the first convolution's grid, as digits_graphs() builds it
    edge_index, offset = g.edge_index.clone(), g.edge_attr.clone()
    model(g.x, edge_index, offset)
    offset[:3] = (offset[:3] + 1) % 9  # now three edges carry the wrong kernel offset
    with pytest.raises(ValidationError, match="edge_index is not the first convolution's grid"):
        model(g.x, edge_index, offset)
