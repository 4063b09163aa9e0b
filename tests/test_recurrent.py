"""Chain graphs: GRU and LSTM as message passing equal torch.nn.GRU / torch.nn.LSTM."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_sequence, pad_packed_sequence

import graphdl.layers.recurrent  # noqa: F401  (registers chain_gru / chain_lstm until the package imports it)
from graphdl.errors import ValidationError
from graphdl.graphs import chain, is_plain_chain
from graphdl.layers import LAYERS
from graphdl.layers.recurrent import ChainGRU, ChainLSTM

TOL = dict(atol=1e-5, rtol=1e-5)
CELLS = [(ChainGRU, nn.GRU), (ChainLSTM, nn.LSTM)]


def _flat(state):
    return torch.cat(state) if isinstance(state, tuple) else state


def _initial(cls, layers, dirs, n, hidden):
    h0 = torch.randn(layers * dirs, n, hidden, requires_grad=True)
    if cls is ChainLSTM:
        return (h0, torch.randn(layers * dirs, n, hidden, requires_grad=True))
    return h0


# a covering set of (num_layers, bidirectional, batch_first, bias, with_h0): every value of each
# setting, multi-layer with bidirectional, with and without biases and initial states
SETTINGS = [(1, False, False, True, False), (1, True, True, False, True), (2, False, True, True, True),
            (2, True, False, True, False), (2, True, True, False, True), (1, False, False, False, True)]


@pytest.mark.parametrize("cells", CELLS, ids=["gru", "lstm"])
@pytest.mark.parametrize("num_layers,bidirectional,batch_first,bias,with_h0", SETTINGS)
def test_equality_plain_tensors(cells, num_layers, bidirectional, batch_first, bias, with_h0):
    """Outputs, final states and gradients (input, h0, every weight) equal torch's, on both paths."""
    cls, ref_cls = cells
    torch.manual_seed(0)
    ref = ref_cls(3, 5, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias)
    layer = cls.from_torch(ref)
    x = torch.randn(4, 6, 3) if batch_first else torch.randn(6, 4, 3)
    x.requires_grad_(True)
    hx = _initial(cls, num_layers, 2 if bidirectional else 1, 4, 5) if with_h0 else None
    ref_out, ref_state = ref(x, hx)
    up_out, up_state = torch.randn_like(ref_out), torch.randn_like(_flat(ref_state))
    inputs = [x, *([hx] if isinstance(hx, torch.Tensor) else list(hx or []))]
    ref_loss = (ref_out * up_out).sum() + (_flat(ref_state) * up_state).sum()
    ref_grads = torch.autograd.grad(ref_loss, inputs + list(ref.parameters()))
    for method in ("dense", "message_passing"):
        out, state = layer(x, hx, method=method)
        torch.testing.assert_close(out, ref_out, **TOL)
        torch.testing.assert_close(_flat(state), _flat(ref_state), **TOL)
        loss = (out * up_out).sum() + (_flat(state) * up_state).sum()
        grads = torch.autograd.grad(loss, inputs + list(layer.parameters()))
        for a, b in zip(grads, ref_grads):
            torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("cells", CELLS, ids=["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_equality_on_chain_graphs_of_different_lengths(cells, bidirectional):
    """Chains of lengths 5, 1, 7, 3 equal torch on the packed sequences (node states and final states)."""
    cls, ref_cls = cells
    torch.manual_seed(1)
    ref = ref_cls(2, 4, num_layers=2, bidirectional=bidirectional)
    layer = cls.from_torch(ref)
    seqs = [torch.randn(n, 2) for n in (5, 1, 7, 3)]
    g = chain(seqs, bidirectional=bidirectional)
    assert is_plain_chain(g)
    packed_out, ref_state = ref(pack_sequence(seqs, enforce_sorted=False))
    padded, lengths = pad_packed_sequence(packed_out, batch_first=True)
    ref_nodes = torch.cat([padded[i, :n] for i, n in enumerate(lengths.tolist())])
    x = g.x.clone().requires_grad_(True)
    up = torch.randn_like(ref_nodes)
    grads = []
    for method in ("dense", "message_passing"):
        out, state = layer(x, g, method=method)
        torch.testing.assert_close(out, ref_nodes, **TOL)
        torch.testing.assert_close(_flat(state), _flat(ref_state), **TOL)
        grads.append(torch.autograd.grad((out * up).sum(), [x, *layer.parameters()]))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, **TOL)


def test_unbatched_registry_and_round_trip():
    layer = LAYERS.create("chain_lstm", 3, 6, num_layers=2, bidirectional=True)
    assert isinstance(layer, ChainLSTM) and layer.out_channels == 12
    ref = layer.to_torch()
    assert isinstance(ref, nn.LSTM)
    x = torch.randn(5, 3)  # unbatched (T, F)
    out, (h, c) = layer(x, method="message_passing")
    ref_out, (rh, rc) = ref(x)
    torch.testing.assert_close(out, ref_out, **TOL)
    torch.testing.assert_close(h, rh, **TOL)
    assert isinstance(LAYERS.create("chain_gru", 2, 2), ChainGRU)


def test_messages_follow_the_edges():
    """Message passing really uses the edges: a forward-only chain fed to a unidirectional GRU,
    and an edited chain (a cut edge) restarts the recursion from h0 where the edge is missing."""
    torch.manual_seed(2)
    layer = ChainGRU(2, 3)
    seq = torch.randn(6, 2)
    g = chain([seq])
    full, _ = layer(g, method="message_passing")
    cut = g.clone()
    cut.edge_index = g.edge_index[:, [0, 1, 3, 4]]  # drop the edge 2 -> 3
    cut.direction = g.direction[[0, 1, 3, 4]]
    assert not is_plain_chain(cut)
    out, _ = layer(cut)  # auto -> message passing
    torch.testing.assert_close(out[:3], full[:3])
    torch.testing.assert_close(out[3:], layer(seq[3:], method="dense")[0], **TOL)


def test_chain_builder():
    g = chain(torch.randn(2, 4, 3), bidirectional=True)
    assert g.num_graphs == 2 and g.num_nodes == 8
    assert g.edge_index.size(1) == 2 * 2 * 3
    fwd = g.edge_index[:, g.direction == 0]
    assert torch.equal(fwd[1] - fwd[0], torch.ones(6, dtype=torch.long))
    assert torch.equal(g.time, torch.tensor([0, 1, 2, 3, 0, 1, 2, 3]))
    g1 = chain([torch.randn(1, 2)])
    assert g1.edge_index.size(1) == 0 and is_plain_chain(g1)
    assert chain([torch.randn(5)]).x.shape == (5, 1)


def test_bad_input():
    with pytest.raises(ValidationError, match="sequence 1 has length 0"):
        chain([torch.randn(3, 2), torch.randn(0, 2)])
    with pytest.raises(ValidationError, match="must be a 3D tensor"):
        chain(torch.randn(4, 2))
    with pytest.raises(ValidationError, match="different feature sizes"):
        chain([torch.randn(3, 2), torch.randn(3, 4)])
    layer = ChainGRU(3, 5)
    with pytest.raises(ValidationError, match="mismatched hidden_size"):
        layer.load_from_torch(nn.GRU(3, 8))
    with pytest.raises(ValidationError, match="mismatched num_layers"):
        layer.load_from_torch(nn.GRU(3, 5, num_layers=2))
    with pytest.raises(ValidationError, match="expects a torch.nn.GRU"):
        ChainGRU.from_torch(nn.LSTM(3, 5))
    with pytest.raises(ValidationError, match="proj_size"):
        ChainLSTM.from_torch(nn.LSTM(3, 5, proj_size=2))
    with pytest.raises(ValidationError, match="length 0"):
        layer(torch.randn(0, 2, 3))
    with pytest.raises(ValidationError, match="initial state must have shape"):
        layer(torch.randn(4, 2, 3), torch.zeros(1, 3, 5))
    with pytest.raises(ValidationError, match="input has 2 features"):
        layer(torch.randn(4, 2, 2))
    with pytest.raises(ValidationError, match="needs 'time' and 'lengths'"):
        from torch_geometric.data import Data
        layer(torch.randn(4, 3), Data(edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]), num_nodes=4))


def test_variable_length_inputs_point_to_chain():
    layer = LAYERS.create("chain_gru", 4, 6)
    seqs = [torch.randn(5, 4), torch.randn(3, 4)]
    for given in (seqs, pack_sequence(seqs)):  # torch.nn.GRU's ways of passing them
        with pytest.raises(ValidationError, match=r"got (list|PackedSequence); for sequences of different "
                                                  r"lengths pass graphdl.graphs.chain\(\[seq, ...\]\)"):
            layer(given)
    out, _ = layer(chain(seqs))  # what the message suggests works
    assert out.shape == (8, 6)
