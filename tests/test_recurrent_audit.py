"""Audit of chain_gru / chain_lstm and the chain graphs: edited chains, eval mode, argument checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from graphdl.errors import ValidationError
from graphdl.graphs import chain, is_plain_chain
from graphdl.graphs.chain import ChainGraph, chain_edges
from graphdl.layers.recurrent import ChainGRU, ChainLSTM

TOL = dict(atol=1e-5, rtol=1e-5)
CELLS = [(ChainGRU, nn.GRU), (ChainLSTM, nn.LSTM)]


def _flat(state):
    return torch.cat(state) if isinstance(state, tuple) else state


def test_rewired_chain_with_the_chains_edge_count_is_not_lowered():
    """is_plain_chain only counted the edges, so swapping two edges between sequences kept a graph 'plain':
    the default method lowered it to the ATen kernel, which ignored the edges the user had changed."""
    torch.manual_seed(0)
    ref = nn.GRU(2, 3)
    layer = ChainGRU.from_torch(ref)
    a, b = torch.randn(5, 2), torch.randn(5, 2)
    g = chain([a, b])
    swapped = g.clone()  # 2 -> 3 and 7 -> 8 become 2 -> 8 and 7 -> 3: the sequences swap their states at t = 3
    ei = g.edge_index.clone()
    ei[1, 2], ei[1, 6] = 8, 3
    swapped.edge_index = ei
    out, _ = layer(swapped)  # auto
    torch.testing.assert_close(out, layer(swapped, method="message_passing")[0])
    assert not is_plain_chain(swapped)
    _, h_b = ref(b[:3, None])  # node 3 continues from b's state at t = 2
    torch.testing.assert_close(out[3:5], ref(a[3:, None], h_b)[0][:, 0], **TOL)
    torch.testing.assert_close(out[:3], ref(a[:3, None])[0][:, 0], **TOL)


def test_is_plain_chain_checks_each_edge():
    g = chain([torch.randn(4, 2), torch.randn(3, 2)])
    gb = chain([torch.randn(4, 2), torch.randn(3, 2)], bidirectional=True)
    assert is_plain_chain(g) and is_plain_chain(gb)
    assert is_plain_chain(ChainGraph(edge_index=gb.edge_index, time=gb.time, lengths=gb.lengths, num_nodes=7))
    edited = []
    for ei in (g.edge_index.flip(0),  # reversed edges
               g.edge_index[:, [0, 0, 1, 3, 4]],  # a repeated edge in place of a missing one
               torch.cat([g.edge_index[:, :2], torch.tensor([[3], [4]]), g.edge_index[:, 3:]], 1)):  # across chains
        h = g.clone()
        h.edge_index = ei
        edited.append(h)
    h = gb.clone()
    h.direction = 1 - gb.direction  # forward edges labelled backward
    edited.append(h)
    assert not any(is_plain_chain(h) for h in edited)


@pytest.mark.parametrize("cells", CELLS, ids=["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_message_passing_on_a_chain_without_direction_labels(cells, bidirectional):
    """A bidirectional chain without its 'direction' (as chain_forecaster builds it from an edge_index) was
    lowered by default, but method='message_passing' took the backward edges for forward ones and raised."""
    cls, ref_cls = cells
    torch.manual_seed(1)
    ref = ref_cls(2, 3, num_layers=2, bidirectional=bidirectional)
    layer = cls.from_torch(ref)
    seqs = [torch.randn(4, 2), torch.randn(4, 2)]
    gb = chain(seqs, bidirectional=True)
    g = ChainGraph(edge_index=gb.edge_index, time=gb.time, lengths=gb.lengths, num_nodes=8)
    ref_out, ref_state = ref(torch.stack(seqs, 1))
    for method in ("dense", "message_passing"):
        out, state = layer(gb.x, g, method=method)
        torch.testing.assert_close(out, ref_out.transpose(0, 1).reshape(8, -1), **TOL)
        torch.testing.assert_close(_flat(state), _flat(ref_state), **TOL)


@pytest.mark.parametrize("cells", CELLS, ids=["gru", "lstm"])
def test_from_torch_and_to_torch_keep_eval_mode(cells):
    """from_torch of an eval-mode module returned a layer in training mode: its dropout changed the output."""
    cls, ref_cls = cells
    torch.manual_seed(2)
    ref = ref_cls(3, 4, num_layers=2, dropout=0.5).eval()
    layer = cls.from_torch(ref)
    assert not layer.training
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(_flat(layer(x)[1]), _flat(ref(x)[1]), **TOL)
    back = layer.to_torch()
    assert not back.training
    torch.testing.assert_close(back(x)[0], ref(x)[0], **TOL)


@pytest.mark.parametrize("cls", [ChainGRU, ChainLSTM])
def test_unbatched_initial_state_of_another_hidden_size_is_named(cls):
    """A 2D state of the wrong size was quoted with the batch axis the layer had added: 'got (1, 1, 3)'."""
    layer = cls(3, 4)
    h = torch.zeros(1, 3)
    hx = h if cls is ChainGRU else (torch.zeros(1, 4), h)
    with pytest.raises(ValidationError, match=rf"{layer.registry_name}: for unbatched \(T, F\) input the initial "
                                              rf"state must be 2D \(num_layers\*num_directions, hidden\) = \(1, 4\), "
                                              rf"got \(1, 3\)"):
        layer(torch.randn(5, 3), hx)


@pytest.mark.parametrize("kwargs,message", [
    (dict(in_channels=3.7), r"in_channels must be an int >= 1, got 3.7"),
    (dict(out_channels=4.5), r"out_channels must be an int >= 1, got 4.5"),
    (dict(num_layers=2.9), r"num_layers must be an int >= 1, got 2.9"),
    (dict(dropout=True), r"dropout must lie in \[0, 1\], got True"),
])
def test_constructor_rejects_sizes_it_would_truncate(kwargs, message):
    """int() truncated float sizes without a word: ChainGRU(3.7, 4) built a layer for 3 input features."""
    args = dict(in_channels=3, out_channels=4) | kwargs
    with pytest.raises(ValidationError, match=rf"chain_gru: {message}"):
        ChainGRU(**args)


def test_chain_edges_of_empty_and_negative_lengths():
    """A length of 0 failed inside torch ('upper bound and lower bound inconsistent with step sign')."""
    ei, d = chain_edges([2, 0, 3], bidirectional=True)
    ref_ei, ref_d = chain_edges([2, 3], bidirectional=True)
    assert torch.equal(ei, ref_ei) and torch.equal(d, ref_d)
    with pytest.raises(ValidationError, match=r"chain_edges: length 1 is -2; chain lengths must be >= 0"):
        chain_edges([2, -2])
