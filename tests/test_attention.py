"""Complete graphs: multi-head attention as message passing equals torch.nn.MultiheadAttention."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import graphdl.layers.attention  # noqa: F401  (registers complete_mha until the package imports it)
from graphdl.errors import ValidationError
from graphdl.graphs import complete, is_complete
from graphdl.layers import LAYERS
from graphdl.layers.attention import CompleteMultiheadAttention

TOL = dict(atol=1e-5, rtol=1e-5)
N, L, S, E, H = 3, 4, 6, 8, 2


def _masks(kind: str) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    kpm = torch.zeros(N, S, dtype=torch.bool)
    kpm[0, -2:] = True
    kpm[2, 0] = True
    causal = torch.ones(L, S, dtype=torch.bool).triu(1 + S - L)  # every query keeps some keys
    if kind == "none":
        return {}
    if kind == "key_padding":
        return {"key_padding_mask": kpm}
    if kind == "attn_bool":
        return {"attn_mask": causal}
    if kind == "attn_float_per_head":
        return {"attn_mask": torch.randn(N * H, L, S, generator=g)}
    if kind == "both_float":
        return {"key_padding_mask": torch.randn(N, S, generator=g), "attn_mask": torch.randn(L, S, generator=g)}
    return {"key_padding_mask": kpm, "attn_mask": causal}  # both boolean


MASKS = ["none", "key_padding", "attn_bool", "attn_float_per_head", "both_float", "both_bool"]


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("batch_first,kv_dims,bias", [(False, None, True), (True, None, False), (True, (5, 7), True)])
def test_equality_with_masks(mask, batch_first, kv_dims, bias):
    """Outputs, attention weights (averaged and per head) and gradients equal torch's, on both paths."""
    torch.manual_seed(0)
    kdim, vdim = kv_dims or (E, E)
    ref = nn.MultiheadAttention(E, H, bias=bias, batch_first=batch_first, kdim=kdim, vdim=vdim)
    layer = CompleteMultiheadAttention.from_torch(ref)

    def make(t: int, f: int) -> torch.Tensor:
        return (torch.randn(N, t, f) if batch_first else torch.randn(t, N, f)).requires_grad_(True)

    q, k, v = make(L, E), make(S, kdim), make(S, vdim)
    masks = _masks(mask)
    for average in (True, False):
        ref_out, ref_w = ref(q, k, v, average_attn_weights=average, **masks)
        up = torch.randn_like(ref_out)
        ref_grads = torch.autograd.grad((ref_out * up).sum(), [q, k, v, *ref.parameters()])
        for method in ("dense", "message_passing"):
            out, w = layer(q, k, v, average_attn_weights=average, method=method, **masks)
            torch.testing.assert_close(out, ref_out, **TOL)
            torch.testing.assert_close(w, ref_w, **TOL)
            grads = torch.autograd.grad((out * up).sum(), [q, k, v, *layer.parameters()])
            for a, b in zip(grads, ref_grads):
                torch.testing.assert_close(a, b, **TOL)


def test_self_attention_on_complete_graphs():
    """Self-attention over the nodes of a batch of complete graphs equals torch on (B, n, E)."""
    torch.manual_seed(1)
    ref = nn.MultiheadAttention(E, H, batch_first=True)
    layer = CompleteMultiheadAttention.from_torch(ref)
    x = torch.randn(3, 5, E)
    ref_out, ref_w = ref(x, x, x, average_attn_weights=False)
    g = complete(5, batch_size=3, x=x.reshape(15, E))
    assert is_complete(g) and g.edge_index.size(1) == 3 * 25
    for method in ("dense", "message_passing"):
        out, alpha = layer(g, method=method)
        torch.testing.assert_close(out, ref_out.reshape(15, E), **TOL)
        # complete() numbers the edges (graph, target i, source j)
        torch.testing.assert_close(alpha, ref_w.permute(0, 2, 3, 1).reshape(-1, H), **TOL)
    # on an edited graph the same layer is attention restricted to the remaining edges
    g2 = g.clone()
    keep = g.edge_index[0] != g.edge_index[1]
    g2.edge_index = g.edge_index[:, keep]
    assert not is_complete(g2)
    out, _ = layer(g2)
    eye = torch.eye(5, dtype=torch.bool)
    torch.testing.assert_close(out, ref(x, x, x, attn_mask=eye)[0].reshape(15, E), **TOL)


def test_cross_attention_graph_and_round_trip():
    g = complete(4, num_sources=6)
    assert g.edge_index.size(1) == 24 and int(g.edge_index[0].max()) == 5 and int(g.edge_index[1].max()) == 3
    layer = LAYERS.create("complete_mha", 8, 8, num_heads=4)
    assert isinstance(layer, CompleteMultiheadAttention)
    ref = layer.to_torch()
    x = torch.randn(5, 2, 8)
    torch.testing.assert_close(layer(x, method="message_passing")[0], ref(x, x, x)[0], **TOL)
    unbatched = torch.randn(5, 8)
    torch.testing.assert_close(layer(unbatched, method="message_passing")[0], ref(unbatched, unbatched, unbatched)[0],
                               **TOL)


def test_bad_input():
    with pytest.raises(ValidationError, match="must be divisible by num_heads"):
        CompleteMultiheadAttention(10, num_heads=3)
    with pytest.raises(ValidationError, match="out_channels must equal in_channels"):
        CompleteMultiheadAttention(8, 16, num_heads=2)
    layer = CompleteMultiheadAttention(8, num_heads=2)
    with pytest.raises(ValidationError, match="mismatched num_heads"):
        layer.load_from_torch(nn.MultiheadAttention(8, 4))
    with pytest.raises(ValidationError, match="mismatched embed_dim"):
        layer.load_from_torch(nn.MultiheadAttention(16, 2))
    with pytest.raises(ValidationError, match="add_bias_kv"):
        CompleteMultiheadAttention.from_torch(nn.MultiheadAttention(8, 2, add_bias_kv=True))
    with pytest.raises(ValidationError, match="expects a torch.nn.MultiheadAttention"):
        CompleteMultiheadAttention.from_torch(nn.Linear(8, 8))
    x = torch.randn(4, 2, 8)
    with pytest.raises(ValidationError, match="key_padding_mask must have shape"):
        layer(x, key_padding_mask=torch.zeros(2, 3, dtype=torch.bool), method="message_passing")
    with pytest.raises(ValidationError, match="attn_mask must have shape"):
        layer(x, attn_mask=torch.zeros(3, 3, dtype=torch.bool), method="message_passing")
    with pytest.raises(ValidationError, match="n must be an int >= 1"):
        complete(0)


@pytest.mark.parametrize("method", ["dense", "message_passing"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_is_causal_as_in_torch(method, batch_first):
    # torch's keyword was a TypeError; torch needs the mask with the hint, graphdl builds it
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(8, 2, batch_first=batch_first)
    layer = CompleteMultiheadAttention.from_torch(ref)
    q = torch.randn(3, 5, 8) if batch_first else torch.randn(5, 3, 8)  # 3 sequences of length 5
    causal = torch.ones(5, 5, dtype=torch.bool).triu(1)
    expected, _ = ref(q, q, q, attn_mask=causal, is_causal=True)
    for mask in (None, causal):
        out, _ = layer(q, q, q, attn_mask=mask, is_causal=True, method=method)
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(layer(q, method=method)[0], expected, atol=1e-3)  # the mask matters here
    with pytest.raises(ValidationError, match="is_causal applies to tensor inputs"):
        layer(complete(4, batch_size=1).to_data_list()[0].update({"x": torch.randn(4, 8)}), is_causal=True)
