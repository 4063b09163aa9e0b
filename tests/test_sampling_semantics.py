"""PyG-semantics checks of graphdl.sampling against references.

References: PyG's own ``NeighborSampler`` signature and ``edge_sample``
(``torch_geometric.sampler.neighbor_sampler``, pure Python, driven by our
sampler's ``sample``), full-graph forwards of several layer types (exact
seed outputs with full fan-out), and what the index / mask inputs mean.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.nn import GATConv, GINEConv, GraphConv, SAGEConv
from torch_geometric.sampler import EdgeSamplerInput, NegativeSampling, NeighborSampler
from torch_geometric.sampler.base import NumNeighbors
from torch_geometric.sampler.neighbor_sampler import edge_sample
from torch_geometric.utils import coalesce

import graphdl
from graphdl.errors import ValidationError
from graphdl.sampling import TorchNeighborSampler, neighbor_loader

N = 150


@pytest.fixture(scope="module")
def graph() -> Data:
    """Directed graph with self-loops, isolated nodes and per-edge features."""
    gen = torch.Generator().manual_seed(7)
    edge_index = coalesce(torch.randint(N - 10, (2, 900), generator=gen), num_nodes=N)  # last 10 isolated
    edge_index = edge_index[:, torch.randperm(edge_index.size(1), generator=gen)]
    num_edges = edge_index.size(1)
    return Data(
        x=torch.randn(N, 6, generator=gen),
        edge_index=edge_index,
        edge_attr=torch.randn(num_edges, 3, generator=gen),
        edge_weight=torch.rand(num_edges, generator=gen),
        num_nodes=N,
    )


def seeds_of(loader) -> list[int]:
    return [v for b in loader for v in b.n_id[: b.batch_size].tolist()]


# --- input_nodes: a mask given as a list or a numpy array ---------------------


@pytest.mark.parametrize("as_type", ["list", "numpy"])
def test_a_non_tensor_boolean_mask_selects_the_masked_nodes(graph, as_type):
    """A boolean mask passed as a list / numpy array was validated as a mask but then handed to
    NodeLoader, which converts non-tensors with ``torch.tensor(.., dtype=long)``: the seeds became
    node 0 and node 1 (one per entry) instead of the masked nodes."""
    mask = [False] * N
    for i in (3, 40, 77):
        mask[i] = True
    given = mask if as_type == "list" else np.array(mask)
    loader = neighbor_loader(graph, [2], input_nodes=given, batch_size=64)
    assert seeds_of(loader) == [3, 40, 77]
    # same as the tensor mask, input_id included (PyG: the masked node ids)
    batch = next(iter(loader))
    assert batch.input_id.tolist() == [3, 40, 77]


def test_index_sequences_are_taken_as_pyg_takes_them(graph):
    assert seeds_of(neighbor_loader(graph, [2], input_nodes=(5, 9), batch_size=8)) == [5, 9]
    assert seeds_of(neighbor_loader(graph, [2], input_nodes=np.array([5, 9]), batch_size=8)) == [5, 9]
    with pytest.raises(ValidationError, match=r"node type.*homogeneous graph"):
        neighbor_loader(graph, [2], input_nodes=("paper", torch.tensor([1])), batch_size=8)
    with pytest.raises(ValidationError, match=r"input_nodes: expected integer node indices"):
        neighbor_loader(graph, [2], input_nodes=[0.5, 2.0], batch_size=8)


# --- num_neighbors given as a tensor, an array or numpy ints ---------------------


@pytest.mark.parametrize(
    "given",
    [torch.tensor([4, -1]), np.array([4, -1]), [np.int64(4), np.int64(-1)], NumNeighbors([4, -1])],
    ids=["tensor", "ndarray", "numpy-ints", "NumNeighbors"],
)
def test_integer_fan_outs_of_any_integer_type_are_accepted(graph, given):
    """``_check_num_neighbors`` read ``.values`` of its argument (meant for PyG's NumNeighbors), which
    on a tensor is the sparse ``Tensor.values`` method: a tensor was refused as "not a list of
    ints", and so were a numpy array and numpy integers."""
    sampler = TorchNeighborSampler(graph, given)
    assert sampler.num_neighbors == [4, -1]
    assert all(type(k) is int for k in sampler.num_neighbors)


@pytest.mark.parametrize("given", [[2.0], [np.float64(2.0)], [True], torch.tensor([2.0])])
def test_non_integer_fan_outs_are_still_refused(graph, given):
    with pytest.raises(ValidationError, match="num_neighbors: every entry must be an int >= -1"):
        TorchNeighborSampler(graph, given)


# --- the sampler's signature is NeighborSampler's --------------------------------


def test_positional_arguments_mean_what_they_mean_to_pyg(graph):
    """TorchNeighborSampler took ``(data, num_neighbors, replace, subgraph_type, ...)`` while PyG's
    NeighborSampler takes ``(data, num_neighbors, subgraph_type, replace, ...)``: a positional
    ``"induced"`` (PyG's order) silently became ``replace=True`` with a directional subgraph."""
    ours = list(inspect.signature(TorchNeighborSampler).parameters)
    pyg = list(inspect.signature(NeighborSampler).parameters)
    assert ours == pyg
    sampler = TorchNeighborSampler(graph, [3], "induced", False, False)
    assert (sampler.subgraph_type, sampler.replace, sampler.disjoint) == ("induced", False, False)
    TorchNeighborSampler(graph, [3], sample_direction="forward")
    with pytest.raises(ValidationError, match="sample_direction='backward'"):
        TorchNeighborSampler(graph, [3], sample_direction="backward")


# --- references that held before (kept as regression checks) -------------------


class Two(torch.nn.Module):
    def __init__(self, make, keys) -> None:
        super().__init__()
        self.c1, self.c2, self.keys = make(6, 16), make(16, 4), keys

    def forward(self, x, edge_index, **kw):
        kw = {k: v for k, v in kw.items() if k in self.keys}
        return self.c2(self.c1(x, edge_index, **kw).relu(), edge_index, **kw)


def mlp(i: int, o: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(i, o), torch.nn.ReLU(), torch.nn.Linear(o, o))


LAYERS = {
    "sage": (lambda i, o: SAGEConv(i, o), ()),
    "gat_edge_attr": (lambda i, o: GATConv(i, o, heads=2, concat=False, edge_dim=3), ("edge_attr",)),
    "gine_edge_attr": (lambda i, o: GINEConv(mlp(i, o), edge_dim=3), ("edge_attr",)),
    "graphconv_edge_weight": (lambda i, o: GraphConv(i, o), ("edge_weight",)),
}


@pytest.mark.parametrize("layer", list(LAYERS))
@pytest.mark.parametrize(("subgraph_type", "disjoint"),
                         [("directional", False), ("directional", True), ("induced", False)])
def test_full_fan_out_gives_full_graph_outputs_with_edge_features(graph, layer, subgraph_type, disjoint):
    torch.manual_seed(0)
    model = Two(*LAYERS[layer]).eval()
    with torch.no_grad():
        full = model(graph.x, graph.edge_index, edge_attr=graph.edge_attr, edge_weight=graph.edge_weight)
        loader = neighbor_loader(graph, [-1, -1], batch_size=41, shuffle=True,
                                 subgraph_type=subgraph_type, disjoint=disjoint)
        for batch in loader:
            out = model(batch.x, batch.edge_index, edge_attr=batch.edge_attr, edge_weight=batch.edge_weight)
            torch.testing.assert_close(out[: batch.batch_size], full[batch.n_id[: batch.batch_size]])


@pytest.mark.parametrize("disjoint", [False, True])
@pytest.mark.parametrize("neg", [None, NegativeSampling("binary", 1.5), NegativeSampling("triplet", 3),
                                 NegativeSampling("triplet", 1)], ids=["none", "binary", "triplet3", "triplet1"])
def test_link_metadata_equals_pygs_edge_sample(graph, disjoint, neg):
    """``sample_from_edges`` against PyG's ``edge_sample`` run on the same draws: the same nodes and
    the same ``edge_label_index``/``edge_label`` or ``src_index``/``dst_pos_index``/``dst_neg_index``.
    (In disjoint binary mode PyG takes ``batch % num_pos``, which gives a negative link's two ends
    different ids; ours keeps ``batch`` = the link's position, as tests/test_sampling.py checks.)"""
    sampler = TorchNeighborSampler(graph, [3, 2], disjoint=disjoint)
    num_pos = 13
    label = None if neg is not None and neg.is_triplet() else torch.randint(3, (num_pos,))
    inputs = EdgeSamplerInput(torch.arange(num_pos) + 4, graph.edge_index[0, :num_pos],
                              graph.edge_index[1, :num_pos], label)
    torch.manual_seed(1)
    ours = sampler.sample_from_edges(inputs, neg)
    torch.manual_seed(1)
    ref = edge_sample(inputs, lambda seed, _time: sampler.sample(seed), N, disjoint, None, neg)
    assert torch.equal(ours.node, ref.node)
    assert len(ours.metadata) == len(ref.metadata)
    for a, b in zip(ours.metadata, ref.metadata):
        assert (a is None and b is None) or (a.shape == b.shape and torch.equal(a, b))


# --- uint8 masks ------------------------------------------------------------------


def test_a_uint8_mask_is_refused_not_read_as_indices(graph):
    """An old-style ``torch.uint8`` mask was converted with ``.long()`` (NodeTask) or taken as
    indices (NodeLoader): the training seeds became node 0 (many times) and node 1."""
    from graphdl.train.tasks import NodeTask

    mask = torch.zeros(N, dtype=torch.uint8)
    mask[[3, 40, 77]] = 1
    with pytest.raises(ValidationError, match=r"input_nodes is a torch\.uint8 tensor.*\.bool\(\)"):
        neighbor_loader(graph, [2], input_nodes=mask, batch_size=8)
    labelled = graph.clone()
    labelled.y = torch.randint(3, (N,))
    for num_neighbors in (None, [2]):
        with pytest.raises(ValidationError, match=r"split 'train' is a torch\.uint8 tensor.*\.bool\(\)"):
            NodeTask(num_neighbors=num_neighbors).setup(labelled, {"train": mask})
    task = NodeTask(num_neighbors=[2])
    task.setup(labelled, {"train": mask.bool()})
    assert task.splits["train"].tolist() == [3, 40, 77]
    # graph level: the same refusal, not graphs 0 and 1 taken as the training set
    from graphdl.train.tasks import GraphTask

    graphs = [Data(x=torch.randn(3, 2), edge_index=torch.tensor([[0, 1], [1, 2]]), y=torch.tensor([i % 2]))
              for i in range(6)]
    with pytest.raises(ValidationError, match=r"splits\['train'\] is a torch\.uint8 tensor.*\.bool\(\) if it is a "
                                              r"mask or with \.long\(\) if it holds graph indices"):
        GraphTask().setup(graphs, {"train": torch.tensor([1, 1, 1, 1, 0, 0], dtype=torch.uint8)})


# --- the node task's mini-batches --------------------------------------------------


def test_node_task_mini_batches_cover_the_train_seeds_and_match_full_batch(graph):
    """Full fan-out, one batch: the mini-batch loss is the full-batch loss; smaller batches cover
    every training seed once per epoch, in a new order each epoch; evaluation is full-batch."""
    from graphdl.train.tasks import NodeTask

    labelled = graph.clone()
    labelled.y = torch.randint(3, (N, 1))  # OGB's [N, 1] class labels
    train = torch.randperm(N, generator=torch.Generator().manual_seed(0))[:60]
    splits = {"train": train, "val": torch.arange(100, 120)}
    loss_fn = torch.nn.CrossEntropyLoss()
    torch.manual_seed(0)
    model = Two(lambda i, o: SAGEConv(i, o), ())
    model.c2 = SAGEConv(16, 3)
    full, mini = NodeTask(), NodeTask(num_neighbors=[-1, -1], batch_size=1000)
    for task in (full, mini):
        task.setup(labelled, splits)
        task.check_loss(loss_fn, "classification")
    (whole,) = full.train_batches()
    (batch,) = list(mini.train_batches())
    torch.testing.assert_close(mini.train_loss(model, batch, loss_fn), full.train_loss(model, whole, loss_fn))
    assert mini.evaluate(model.eval(), ["val"]) == full.evaluate(model, ["val"])

    small = NodeTask(num_neighbors=[3], batch_size=16)
    small.setup(labelled, splits)
    torch.manual_seed(1)
    epochs = [[int(v) for b in small.train_batches() for v in b.n_id[: b.batch_size]] for _ in range(2)]
    assert all(sorted(e) == sorted(train.tolist()) for e in epochs)
    assert epochs[0] != epochs[1]
    assert [b.batch_size for b in small.train_batches()] == [16, 16, 16, 12]


def test_node_task_names_a_last_batch_of_one_seed_for_batchnorm():
    n = 21
    data = Data(x=torch.randn(n, 4), edge_index=torch.empty(2, 0, dtype=torch.long), y=torch.randint(0, 2, (n,)))
    data.train_mask = torch.arange(n) < 11
    data.val_mask = data.test_mask = ~data.train_mask
    model = graphdl.models.create("gnn", layer="gin", in_channels=4, hidden_channels=8, out_channels=2)
    trainer = graphdl.Trainer(model, task="node", task_kwargs=dict(num_neighbors=[2, 2], batch_size=10), epochs=1,
                              progress=False)
    with pytest.raises(ValidationError, match=r"use a model without BatchNorm or a batch_size that leaves no last "
                                              r"batch of one seed without neighbours \(11 training nodes, "
                                              r"batch_size=10\)"):
        trainer.fit(data)


# --- one lookup table for every batch -------------------------------------------------


def test_the_shared_lookup_is_reset_after_every_batch_and_after_a_failure(graph, monkeypatch):
    """The global -> local table is allocated once and only its sampled entries are reset; a batch after a failed
    one (and after another batch) samples exactly what a fresh sampler samples."""
    import pickle

    import graphdl.sampling as sampling

    seeds = torch.tensor([5, 17, 5, 90])

    def sampled(sampler):
        torch.manual_seed(3)
        out = sampler.sample(seeds)
        return out.node, out.row, out.col, out.edge

    fresh = sampled(TorchNeighborSampler(graph, [3, 2]))  # a small graph: a fresh table per batch
    monkeypatch.setattr(sampling, "_REUSE_TABLE_ABOVE", 0)  # the table a large graph keeps, on this one
    assert all(torch.equal(a, b) for a, b in zip(sampled(TorchNeighborSampler(graph, [3, 2])), fresh))
    sampler = TorchNeighborSampler(graph, [3, 2])
    sampler.sample(torch.arange(40))  # another batch first
    table = sampler._g2l
    assert bool((table == sampling._UNSEEN).all())
    assert all(torch.equal(a, b) for a, b in zip(sampled(sampler), fresh)) and sampler._g2l is table

    calls = []
    hop = TorchNeighborSampler._hop

    def failing_second_hop(self, frontier, k):
        calls.append(k)
        if len(calls) == 2:
            raise KeyboardInterrupt  # a Ctrl-C in the middle of a batch
        return hop(self, frontier, k)

    monkeypatch.setattr(TorchNeighborSampler, "_hop", failing_second_hop)
    with pytest.raises(KeyboardInterrupt):
        sampler.sample(seeds)
    monkeypatch.setattr(TorchNeighborSampler, "_hop", hop)
    assert bool((table == sampling._UNSEEN).all())
    assert all(torch.equal(a, b) for a, b in zip(sampled(sampler), fresh))
    assert pickle.loads(pickle.dumps(sampler))._g2l is None  # a DataLoader worker builds its own
