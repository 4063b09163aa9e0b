"""dtype and device behaviour of every registered layer and model.

Every layer and model runs in float64 (output float64, finite gradients) and names an input of another dtype than
its parameters. The special graphs' cached structures (grid, chain, complete) are built as normal tensors, so the
layers run under ``torch.inference_mode()`` and a structure first built there still trains afterwards. A graph left
on another device than the node features, or features on another device than the weights, is named. The ``meta``
device stands in for a GPU.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import graphdl
from graphdl.errors import ValidationError
from graphdl.graphs import chain, complete, grid
from graphdl.graphs.chain import _single_edges
from graphdl.graphs.complete import _edges
from graphdl.graphs.grid import _batched_structure, _single_structure
from graphdl.testing.layers import general_layers, random_graph

GRAPH = random_graph(in_channels=8)
N = GRAPH["x"].size(0)
BATCH = torch.tensor([0] * (N // 2) + [1] * (N - N // 2))


def _cast(dtype: torch.dtype) -> dict[str, Tensor]:
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in GRAPH.items()}


def _call_layer(name: str, layer: nn.Module, g: dict[str, Tensor]) -> Tensor:
    meta = graphdl.layers.entry(name).meta
    if meta.get("edge_attr"):
        return layer(g["x"], g["edge_index"], edge_attr=g["edge_attr"])
    if meta.get("edge_weight"):
        return layer(g["x"], g["edge_index"], g["edge_weight"])
    return layer(g["x"], g["edge_index"])


def _layer(name: str) -> nn.Module:
    kwargs = {"edge_dim": 4} if graphdl.layers.entry(name).meta.get("edge_attr") else {}
    return graphdl.layers.create(name, 8, 6, **kwargs)


def _first(out: Any) -> Tensor:
    return out[0] if isinstance(out, tuple) else out


# ------------------------------------------------------------------ every layer and model in float64
IMAGES = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(0))
SEQS = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(1))
TOKENS = torch.randn(5, 2, 8, generator=torch.Generator().manual_seed(2))

#: special-graph layers: (builder, call on float inputs of a dtype)
SPECIAL: dict[str, tuple[Callable[[], nn.Module], Callable[[nn.Module, torch.dtype], Any]]] = {
    "grid_conv": (lambda: graphdl.layers.create("grid_conv", 3, 4, padding=1),
                  lambda m, dt: m(grid(IMAGES.to(dt), 3, padding=1), method="message_passing")),
    "grid_pool": (lambda: graphdl.layers.create("grid_pool", 3, reduce="mean"),
                  lambda m, dt: m(IMAGES.to(dt).requires_grad_(), method="message_passing")),
    "chain_gru": (lambda: graphdl.layers.create("chain_gru", 4, 6),
                  lambda m, dt: m(chain([s.to(dt) for s in SEQS]), method="message_passing")),
    "chain_lstm": (lambda: graphdl.layers.create("chain_lstm", 4, 6, batch_first=True),
                   lambda m, dt: m(SEQS.to(dt))),
    "complete_mha": (lambda: graphdl.layers.create("complete_mha", 8, num_heads=2),
                     lambda m, dt: m(complete(5, x=TOKENS[:, 0].to(dt)), method="message_passing")),
    "dynamic_edgeconv": (lambda: graphdl.layers.create("dynamic_edgeconv", 4, 6, k=3),
                         lambda m, dt: m(SEQS[0].to(dt))),
}

ATOMS = torch.zeros(N, 9, dtype=torch.long)
BONDS = torch.zeros(GRAPH["edge_index"].size(1), 3, dtype=torch.long)

#: models: (builder, call on float inputs of a dtype, whether the call takes float inputs)
MODELS: dict[str, tuple[Callable[[], nn.Module], Callable[[nn.Module, torch.dtype], Any], bool]] = {
    "gnn": (lambda: graphdl.models.create("gnn", in_channels=8, hidden_channels=6, out_channels=3, norm="batch"),
            lambda m, dt: m(GRAPH["x"].to(dt), GRAPH["edge_index"], edge_weight=GRAPH["edge_weight"].to(dt)), True),
    "graph_gnn": (lambda: graphdl.models.create("graph_gnn", out_channels=2, layer="gine", in_channels=6,
                                                hidden_channels=6, edge_dim=4, virtual_node=True,
                                                node_encoder=nn.Linear(8, 6)),
                  lambda m, dt: m(GRAPH["x"].to(dt), GRAPH["edge_index"], edge_attr=GRAPH["edge_attr"].to(dt),
                                  batch=BATCH), True),
    "link_gnn": (lambda: graphdl.models.create("link_gnn", decoder="mlp", in_channels=8, hidden_channels=6),
                 lambda m, dt: m.decode(m(GRAPH["x"].to(dt), GRAPH["edge_index"]), GRAPH["edge_index"]), True),
    "gae": (lambda: graphdl.models.create("gae", in_channels=8, hidden_channels=6, out_channels=3),
            lambda m, dt: m(GRAPH["x"].to(dt), GRAPH["edge_index"]), True),
    "vgae": (lambda: graphdl.models.create("vgae", in_channels=8, hidden_channels=6, out_channels=3),
             lambda m, dt: m(GRAPH["x"].to(dt), GRAPH["edge_index"]).sum() + m.kl_loss(), True),
    "arga": (lambda: graphdl.models.create("arga", in_channels=8, hidden_channels=6, out_channels=3),
             lambda m, dt: (lambda z: m.reg_loss(z) + m.discriminator_loss(z))(
                 m(GRAPH["x"].to(dt), GRAPH["edge_index"])), True),
    "argva": (lambda: graphdl.models.create("argva", in_channels=8, hidden_channels=6, out_channels=3),
              lambda m, dt: (lambda z: m.reg_loss(z) + m.kl_loss())(m(GRAPH["x"].to(dt), GRAPH["edge_index"])), True),
    "dominant": (lambda: graphdl.models.create("dominant", in_channels=8, hidden_channels=6, sigmoid_s=True),
                 lambda m, dt: (lambda o: o.x_hat.sum() + o.s_hat.sum())(
                     m(GRAPH["x"].to(dt), GRAPH["edge_index"], batch=BATCH)), True),
    "latent_distance": (lambda: graphdl.models.create("latent_distance", in_channels=8, hidden_channels=6),
                        lambda m, dt: m(GRAPH["x"].to(dt), GRAPH["edge_index"]).x_hat, True),
    "mlp_ae": (lambda: graphdl.models.create("mlp_ae", in_channels=8, hidden_channels=6),
               lambda m, dt: m(GRAPH["x"].to(dt)).x_hat, True),
    "chain_forecaster": (lambda: graphdl.models.create("chain_forecaster", in_channels=4, out_channels=2,
                                                       hidden_channels=5),
                         lambda m, dt: (lambda b: m(b.x, b.edge_index, b.batch))(chain([s.to(dt) for s in SEQS])),
                         True),
    "lenet_grid": (lambda: graphdl.models.create("lenet_grid", in_channels=3, out_channels=2, image_size=6,
                                                 channels=(2, 3), hidden=(4,), method="message_passing"),
                   lambda m, dt: m(IMAGES.to(dt)), True),
    "ogb_mol": (lambda: graphdl.models.create("ogb_mol", num_tasks=2, hidden_channels=6, num_layers=2),
                lambda m, dt: m(ATOMS, GRAPH["edge_index"], BONDS, batch=BATCH), False),
}


def test_the_sweep_covers_every_registered_layer_and_model() -> None:
    assert set(graphdl.layers.list()) == set(general_layers()) | set(SPECIAL)
    assert set(graphdl.models.list()) == set(MODELS)


def _runs_in_float64(module: nn.Module, call: Callable[[nn.Module], Any]) -> None:
    module = module.double().train()
    out = _first(call(module))
    assert out.dtype == torch.float64
    out.sum().backward()
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float64 and torch.isfinite(g).all() for g in grads)


_MISMATCH = re.compile(r"dtype torch\.(float32|float64) but the (parameters|weights) are torch\.(float64|float32)")


def _names_both_dtypes(module: nn.Module, call: Callable[[nn.Module], Any]) -> None:
    for params, given in ((torch.float64, torch.float32), (torch.float32, torch.float64)):
        with pytest.raises(ValidationError) as info:
            call(copy.deepcopy(module).to(params))
        found = _MISMATCH.search(str(info.value))
        assert found and found.group(1) == str(given)[6:] and found.group(3) == str(params)[6:], str(info.value)


@pytest.mark.parametrize("name", general_layers())
def test_general_layer_float64_and_dtype_mismatch(name: str) -> None:
    torch.manual_seed(0)
    _runs_in_float64(_layer(name), lambda m: _call_layer(name, m, _cast(torch.float64)))
    _names_both_dtypes(_layer(name), lambda m: _call_layer(
        name, m, _cast(torch.float32 if next(m.parameters()).dtype == torch.float64 else torch.float64)))


@pytest.mark.parametrize("name", sorted(SPECIAL))
def test_special_layer_float64_and_dtype_mismatch(name: str) -> None:
    build, call = SPECIAL[name]
    torch.manual_seed(0)
    module = build()
    if any(True for _ in module.parameters()):
        _runs_in_float64(module, lambda m: call(m, torch.float64))
        _names_both_dtypes(build(), lambda m: call(m, torch.float32 if next(m.parameters()).dtype == torch.float64
                                                   else torch.float64))
    else:  # pooling has no parameters: the input's dtype is kept
        assert call(module, torch.float64).dtype == torch.float64


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_float64_and_dtype_mismatch(name: str) -> None:
    build, call, float_inputs = MODELS[name]
    torch.manual_seed(0)
    _runs_in_float64(build(), lambda m: call(m, torch.float64))
    if float_inputs:
        _names_both_dtypes(build(), lambda m: call(m, torch.float32 if next(m.parameters()).dtype == torch.float64
                                                   else torch.float64))


# ------------------------------------------------------------------ OGB convs with float edge features
@pytest.mark.parametrize("name", ["ogb_gin", "ogb_gcn"])
def test_ogb_conv_names_float_edge_features_of_another_dtype(name: str) -> None:
    """With ``edge_dim`` the convs map float edge features by a linear layer: float64 features with float32
    parameters failed inside torch ("mat1 and mat2 must have the same dtype"), in the layer and in a GNN."""
    g = GRAPH
    message = "edge_attr has dtype torch.float64 but the parameters are torch.float32"
    with pytest.raises(ValidationError, match=re.escape(message)):
        graphdl.layers.create(name, 8, 6, edge_dim=4)(g["x"], g["edge_index"], edge_attr=g["edge_attr"].double())
    model = graphdl.models.create("gnn", layer=name, in_channels=8, hidden_channels=6, edge_dim=4)
    with pytest.raises(ValidationError, match=re.escape(message)):
        model(g["x"], g["edge_index"], edge_attr=g["edge_attr"].double())
    # the same features in the parameters' dtype pass
    assert model(g["x"], g["edge_index"], edge_attr=g["edge_attr"]).dtype == torch.float32


# ------------------------------------------------------------------ inference mode and the structure caches
def _clear_structure_caches() -> None:
    for cache in (_single_structure, _batched_structure, _single_edges, _edges):
        cache.cache_clear()


def test_grid_layers_run_under_inference_mode_and_still_train_after() -> None:
    """The grid structures built under ``torch.inference_mode()`` were inference tensors: reading their version
    counter failed ("Inference tensors do not track version counter") at every grid forward, and the cache kept
    them for the training calls after."""
    torch.manual_seed(0)
    conv = graphdl.layers.create("grid_conv", 3, 4, padding=1)
    pool = graphdl.layers.create("grid_pool", 4, reduce="max")
    images = torch.randn(2, 3, 6, 6)
    _clear_structure_caches()
    with torch.inference_mode():
        inferred = pool(conv(images, method="message_passing"), method="message_passing")
        on_graph = conv(grid(images, 3, padding=1))  # dense: the graph is recognised as a regular grid
    reference = F.max_pool2d(F.conv2d(images, conv.weight, conv.bias, padding=1), 2)
    torch.testing.assert_close(inferred, reference.detach())
    torch.testing.assert_close(on_graph, F.conv2d(images, conv.weight, conv.bias, padding=1)
                               .permute(0, 2, 3, 1).reshape(-1, 4).detach())
    # the structures cached under inference mode serve a training step
    x = images.clone().requires_grad_()
    pool(conv(x, method="message_passing"), method="message_passing").square().sum().backward()
    x_ref = images.clone().requires_grad_()
    w_ref = conv.weight.detach().clone().requires_grad_()
    F.max_pool2d(F.conv2d(x_ref, w_ref, conv.bias.detach(), padding=1), 2).square().sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)
    torch.testing.assert_close(conv.weight.grad, w_ref.grad)


def test_lenet_under_inference_mode_equals_no_grad() -> None:
    torch.manual_seed(0)
    model = graphdl.models.create("lenet_grid", image_size=8).eval()
    images = torch.randn(3, 1, 8, 8)
    _clear_structure_caches()
    for method in ("message_passing", "dense"):
        with torch.inference_mode():
            inferred = model(images, method=method)
        with torch.no_grad():
            expected = model(images, method=method)
        torch.testing.assert_close(inferred, expected)


def test_chain_and_complete_graphs_built_under_inference_mode() -> None:
    """A graph built under inference mode holds inference tensors: the structure check read their version counter
    and failed; it now checks them on every call (an edit in place cannot be seen) and lowers them as before."""
    torch.manual_seed(0)
    gru = graphdl.layers.create("chain_gru", 4, 6)
    mha = graphdl.layers.create("complete_mha", 8, num_heads=2).eval()
    seqs = [torch.randn(5, 4), torch.randn(3, 4)]
    tokens = torch.randn(10, 8)
    _clear_structure_caches()
    with torch.inference_mode():
        inferred_gru = gru(chain(seqs))[0]
        inferred_mha = mha(complete(5, batch_size=2, x=tokens))[0]
        inferred_fc = graphdl.models.create("chain_forecaster", in_channels=4)(
            *(lambda b: (b.x, b.edge_index, b.batch))(chain(seqs)))
    with torch.no_grad():  # torch.nn.GRU with the same weights on the padded sequences
        dense = gru.to_torch()(torch.nn.utils.rnn.pad_sequence(seqs))[0]
        torch.testing.assert_close(inferred_gru, torch.cat([dense[:5, 0], dense[:3, 1]]))
        torch.testing.assert_close(inferred_mha, mha(complete(5, batch_size=2, x=tokens), method="message_passing")[0])
    assert inferred_fc.shape == (2, 12)
    # the cached chain edges still train
    out = gru(chain(seqs), method="message_passing")[0]
    out.sum().backward()
    assert gru.weight_ih_l0.grad is not None and torch.isfinite(gru.weight_ih_l0.grad).all()


# ------------------------------------------------------------------ devices (meta stands in for a GPU)
def test_grid_conv_names_images_on_another_device_than_its_weights() -> None:
    """The dense path ran a CPU image through meta weights without a word, the message passing path failed
    inside torch ("Tensor on device meta is not on the expected device cpu!")."""
    conv = graphdl.layers.create("grid_conv", 3, 4, padding=1).to("meta")
    for method in ("dense", "message_passing"):
        with pytest.raises(ValidationError, match=re.escape(
                "grid_conv: images is on cpu but the weights are on meta; move it with images.to('meta') or "
                "the layer with .to('cpu')")):
            conv(IMAGES, method=method)
    lenet = graphdl.models.create("lenet_grid", image_size=6, in_channels=3).to("meta")
    with pytest.raises(ValidationError, match="grid_conv: x is on cpu but the weights are on meta"):
        lenet(IMAGES)


_ON_CPU = "the graph's edge_index is on cpu but the node features are on meta; move the graph with graph.to('meta')"


def _seq_graph() -> Any:
    return chain([torch.randn(5, 4), torch.randn(3, 4)])


@pytest.mark.parametrize("case", ["grid_conv", "grid_conv_bare", "grid_pool", "chain_gru", "complete_mha",
                                  "chain_forecaster"])
def test_special_layers_name_a_graph_left_on_another_device(case: str) -> None:
    """Features moved to the device with the module, the graph left on the CPU: grid_conv and complete_mha ran,
    grid_pool and chain_forecaster failed inside torch, chain_gru blamed the graph's time steps."""
    if case.startswith("grid_conv"):
        g = grid(IMAGES, 3, padding=1)
        conv = graphdl.layers.create("grid_conv", 3, 4, padding=1).to("meta")
        run = ((lambda: conv(g.x.to("meta"), g, method="message_passing")) if case == "grid_conv" else
               (lambda: conv(g.x.to("meta"), g.edge_index, g.offset, method="message_passing")))
    elif case == "grid_pool":
        g = grid(IMAGES, 2, stride=2)
        run = lambda: graphdl.layers.create("grid_pool", 3)(g.x.to("meta"), g, method="message_passing")  # noqa: E731
    elif case == "chain_gru":
        g = _seq_graph()
        run = lambda: graphdl.layers.create("chain_gru", 4, 6).to("meta")(g.x.to("meta"), g)  # noqa: E731
    elif case == "complete_mha":
        g = complete(5, x=TOKENS[:, 0])
        mha = graphdl.layers.create("complete_mha", 8, num_heads=2).to("meta")
        run = lambda: mha(g.x.to("meta"), g, method="message_passing")  # noqa: E731
    else:
        g = _seq_graph()
        model = graphdl.models.create("chain_forecaster", in_channels=4).to("meta")
        run = lambda: model(g.x.to("meta"), g.edge_index, g.batch)  # noqa: E731
    with pytest.raises(ValidationError, match=re.escape(_ON_CPU)):
        run()


def test_grid_structures_cached_per_device() -> None:
    """A structure asked for on another device is that device's copy; the CPU one the cache holds is untouched."""
    from graphdl.graphs.grid import grid_spec, grid_structure

    spec = grid_spec(5, 5, 3, 1, 1)
    cpu_edges, cpu_offset, counts = grid_structure(spec, 2)
    meta_edges, meta_offset, meta_counts = grid_structure(spec, 2, "meta")
    assert meta_edges.device.type == "meta" and meta_offset.device.type == "meta" and meta_counts == counts
    again = grid_structure(spec, 2, torch.device("cpu"))
    assert again[0] is cpu_edges and again[0].device.type == "cpu" and not cpu_edges.is_inference()


# ------------------------------------------------------------------ state_dict round trip
@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_state_dict_round_trip(name: str, tmp_path: Any) -> None:
    build, call, _ = MODELS[name]
    torch.manual_seed(1)
    a = build()
    call(a.train(), torch.float32)  # running statistics move
    a.eval()
    torch.save(a.state_dict(), tmp_path / "state.pt")
    torch.manual_seed(2)
    b = build()
    b.load_state_dict(torch.load(tmp_path / "state.pt"))
    b.eval()
    with torch.no_grad():
        torch.manual_seed(3)
        out_a = _first(call(a, torch.float32))
        torch.manual_seed(3)
        out_b = _first(call(b, torch.float32))
    torch.testing.assert_close(out_a, out_b, rtol=0, atol=0)
