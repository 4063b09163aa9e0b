"""Property-based tests over random graphs and inputs, for every registered layer and loss.

Layers: permutation equivariance, finite outputs and gradients on any graph,
degenerate ones included (one node, no edges, isolated nodes, self loops,
duplicate edges); graph-level pooling invariant to the node order. Losses:
the conformance suite of :mod:`graphdl.testing.losses` on random inputs,
finite values and gradients at extreme magnitudes and degenerate labels.
Built on the conformance building blocks (``graphdl.testing.layers``,
``graphdl.testing.losses``); examples are few and small so this file runs in
well under a minute.
"""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import graphdl
from graphdl.testing import general_layers
from graphdl.losses import LOSSES
from graphdl.testing.layers import _Case
from graphdl.testing.losses import _leaves, _replace_leaves, check_loss, default_inputs

IN, OUT, EDGE_DIM = 8, 16, 4  # the conformance suite's sizes (random_graph's edge_attr is 4 wide)
SETTINGS = settings(max_examples=15, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def graphs(draw, max_nodes=7, max_edges=16):
    """A random directed graph that may have no edges, isolated nodes, self loops and duplicate edges."""
    n = draw(st.integers(1, max_nodes))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=max_edges))
    seed = draw(st.integers(0, 2**16))
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.tensor(pairs, dtype=torch.long).t().reshape(2, -1)
    e = edge_index.size(1)
    perm = torch.tensor(draw(st.permutations(range(n))), dtype=torch.long)
    return {"x": torch.randn(n, IN, generator=gen), "edge_index": edge_index,
            "edge_weight": torch.rand(e, generator=gen) + 0.1, "edge_attr": torch.randn(e, EDGE_DIM, generator=gen),
            "perm": perm}


ONE_NODE = {"x": torch.ones(1, IN), "edge_index": torch.zeros(2, 0, dtype=torch.long),
            "edge_weight": torch.zeros(0), "edge_attr": torch.zeros(0, EDGE_DIM), "perm": torch.tensor([0])}
ONE_SELF_LOOP = dict(ONE_NODE, edge_index=torch.zeros(2, 1, dtype=torch.long), edge_weight=torch.ones(1),
                     edge_attr=torch.ones(1, EDGE_DIM))
ISOLATED_AND_DUPLICATES = {"x": torch.arange(24.0).view(3, IN) / 10, "perm": torch.tensor([2, 0, 1]),
                           "edge_index": torch.tensor([[0, 0, 1, 1], [1, 1, 1, 0]]),
                           "edge_weight": torch.ones(4), "edge_attr": torch.ones(4, EDGE_DIM)}


def _permuted(graph):
    perm = graph["perm"]
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.numel())
    return dict(graph, x=graph["x"][perm], edge_index=inverse[graph["edge_index"]])


@pytest.mark.parametrize("name", general_layers())
def test_layers_are_permutation_equivariant_and_finite_on_any_graph(name):
    case = _Case(name, IN, OUT, {}, seed=0)
    module = case.build().eval()  # eval: BatchNorm inside GIN's MLP cannot train on one node

    @SETTINGS
    @given(graph=graphs())
    @example(graph=ONE_NODE)
    @example(graph=ONE_SELF_LOOP)
    @example(graph=ISOLATED_AND_DUPLICATES)
    def check(graph):
        x = graph["x"].clone().requires_grad_()
        out = case.run(module, dict(graph, x=x))
        n = graph["x"].size(0)
        if tuple(out.shape) != (n, OUT) or not torch.isfinite(out).all():
            raise case.fail("output", f"shape {tuple(out.shape)} (expected {(n, OUT)}) or non-finite values "
                                      f"on a graph with {n} nodes and {graph['edge_index'].size(1)} edges")
        module.zero_grad()
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads = [p.grad for p in module.parameters() if p.grad is not None] + [x.grad]
        if not all(torch.isfinite(g).all() for g in grads):
            raise case.fail("gradients", "non-finite gradient on a degenerate graph")
        with torch.no_grad():
            out_perm = case.run(module, _permuted(graph))
            out = case.run(module, graph)
        if not torch.allclose(out[graph["perm"]], out_perm, atol=1e-5, rtol=1e-4):
            raise case.fail("permutation equivariance",
                            f"max difference {(out[graph['perm']] - out_perm).abs().max():.3g}")

    check()


@pytest.mark.parametrize("pool", ["mean", "sum", "max"])
@pytest.mark.parametrize("name", general_layers())
def test_graph_level_outputs_do_not_depend_on_the_node_order(name, pool):
    graphdl.seed_everything(0)
    model = graphdl.models.create("graph_gnn", layer=name, in_channels=IN, hidden_channels=8, out_channels=3,
                                  num_layers=2, pool=pool, dropout=0.0, edge_dim=EDGE_DIM).eval()
    uses_attr = graphdl.layers.entry(name).meta.get("edge_attr")

    def run(g, batch):
        kw = {"edge_attr": g["edge_attr"]} if uses_attr else {}
        return model(g["x"], g["edge_index"], batch=batch, **kw)

    @settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(first=graphs(max_nodes=5, max_edges=8), second=graphs(max_nodes=5, max_edges=8))
    def check(first, second):
        n1 = first["x"].size(0)
        g = {"x": torch.cat([first["x"], second["x"]]),
             "edge_index": torch.cat([first["edge_index"], second["edge_index"] + n1], dim=1),
             "edge_attr": torch.cat([first["edge_attr"], second["edge_attr"]]),
             "perm": torch.cat([first["perm"], second["perm"] + n1])}
        g["perm"] = g["perm"][torch.randperm(g["perm"].numel(), generator=torch.Generator().manual_seed(n1))]
        batch = torch.cat([torch.zeros(n1, dtype=torch.long), torch.ones(second["x"].size(0), dtype=torch.long)])
        with torch.no_grad():
            out, out_perm = run(g, batch), run(_permuted(g), batch[g["perm"]])
        assert out.shape == (2, 3) and torch.isfinite(out).all()
        assert torch.allclose(out, out_perm, atol=1e-5, rtol=1e-4), f"{name}/{pool}: {(out - out_perm).abs().max()}"

    check()


# ---------------------------------------------------------------------------- losses
def _build(name):
    entry = LOSSES.entry(name)
    return LOSSES.create(name, **getattr(entry.obj, "example_init", {})), entry.meta.get("kind")


def _inputs(loss, kind, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    if hasattr(loss, "example_inputs"):
        try:
            return loss.example_inputs(dtype=dtype, generator=gen)
        except NotImplementedError:
            pass
    return default_inputs(kind, dtype, gen)


def _finite_value_and_gradients(loss, args, kwargs, what):
    leaves = _leaves((args, kwargs))
    out = loss(*args, **kwargs)
    assert out.dim() == 0 and torch.isfinite(out), f"{what}: loss {out}"
    out.backward()
    for i, leaf in enumerate(leaves):
        assert leaf.grad is not None and torch.isfinite(leaf.grad).all(), f"{what}: gradient of input #{i}"
    for pname, p in loss.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), f"{what}: gradient of {pname}"


@pytest.mark.parametrize("name", graphdl.losses.list())
def test_losses_conform_on_random_inputs(name):
    loss, kind = _build(name)

    @settings(max_examples=6, deadline=None, derandomize=True)
    @given(seed=st.integers(0, 2**20))
    def check(seed):
        check_loss(name, inputs=_inputs(loss, kind, torch.float64, seed), gradcheck=False)

    check()


@pytest.mark.parametrize("name", graphdl.losses.list())
def test_losses_stay_finite_at_extreme_magnitudes(name):
    loss, kind = _build(name)

    @settings(max_examples=10, deadline=None, derandomize=True)
    @given(seed=st.integers(0, 2**20), scale=st.sampled_from([1e-6, 1e-2, 1e2, 1e3]))
    def check(seed, scale):
        args, kwargs = _inputs(loss, kind, torch.float32, seed)
        if kind == "divergence":
            # (log q, p): sharpen both, still normalised. p is data here: at p = 0 the derivative
            # d/dp p log(p / q) = log(p / q) + 1 is -inf by nature, so only log q is differentiated.
            log_q, p = args[:2]
            args = (F.log_softmax(log_q.detach() * scale, -1).requires_grad_(),
                    F.softmax(p.detach().log() * scale, -1), *args[2:])
            fresh = _leaves((args, kwargs))
        else:
            fresh = [(leaf.detach() * scale).requires_grad_() for leaf in _leaves((args, kwargs))]
        args, kwargs = _replace_leaves((args, kwargs), iter(fresh))
        _finite_value_and_gradients(loss, args, kwargs, f"{name} at scale {scale}")

    check()


METRIC_LOSSES = [e.name for e in LOSSES.entries() if e.meta.get("kind") == "metric"]


@pytest.mark.parametrize("name", METRIC_LOSSES)
@pytest.mark.parametrize("labels", ["all_same", "all_different", "pair"])
def test_metric_losses_are_finite_without_positives_or_negatives(name, labels):
    """Batches without any positive pair, or without any negative pair, are valid: finite, no crash."""
    loss, _ = _build(name)
    n = 2 if labels == "pair" else 6
    emb = torch.randn(n, 6, generator=torch.Generator().manual_seed(0)).requires_grad_()
    y = {"all_same": torch.zeros(n, dtype=torch.long), "all_different": torch.arange(n),
         "pair": torch.tensor([0, 1])}[labels]
    if getattr(loss, "num_classes", None) is not None:  # a classifier head (ArcFace): labels < num_classes
        y = y % loss.num_classes
    if getattr(loss, "embedding_size", None) not in (None, 6):
        emb = torch.randn(n, loss.embedding_size, generator=torch.Generator().manual_seed(0)).requires_grad_()
    _finite_value_and_gradients(loss, (emb, y), {}, f"{name} with {labels} labels")
