"""Audit of complete_mha and complete graphs: edited graphs, shared edge caches, ignored arguments, modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch_geometric.transforms as T
from torch import nn

import graphdl.layers.attention  # noqa: F401  (registers complete_mha)
from graphdl.errors import ValidationError
from graphdl.graphs import complete, is_complete
from graphdl.graphs.complete import complete_edges
from graphdl.layers.attention import CompleteMultiheadAttention

TOL = dict(atol=1e-5, rtol=1e-5)
E, H = 8, 2


def _pair(seed: int = 0, **kw) -> tuple[nn.MultiheadAttention, CompleteMultiheadAttention]:
    torch.manual_seed(seed)
    ref = nn.MultiheadAttention(E, H, batch_first=True, **kw)
    return ref, CompleteMultiheadAttention.from_torch(ref)


def test_reordered_complete_graph_weights_follow_its_edges():
    """A coalesced complete graph (edges sorted by source) returns each edge's own weight, as torch gives it."""
    ref, layer = _pair()
    b, n = 2, 5
    x = torch.randn(b, n, E)
    _, ref_w = ref(x, x, x, average_attn_weights=False)  # (b, H, target, source)
    g = T.ToUndirected()(complete(n, batch_size=b, x=x.reshape(b * n, E)))
    assert g.edge_index.size(1) == b * n * n and not is_complete(g)
    out, alpha = layer(g)
    src, dst = g.edge_index
    torch.testing.assert_close(alpha, ref_w[dst // n, :, dst % n, src % n], **TOL)
    torch.testing.assert_close(out, ref(x, x, x)[0].reshape(b * n, E), **TOL)


def test_complete_graph_with_replaced_edges_attends_along_them():
    """Self-loops replaced with as many other edges: attention over the new edges (a doubled edge counts twice)."""
    ref, layer = _pair(1)
    n = 4
    x = torch.randn(1, n, E)
    g = complete(n, x=x[0])
    ei = g.edge_index.clone()
    loop = ei[0] == ei[1]
    ei[0, loop] = (ei[1, loop] + 1) % n  # j = i + 1 now sends twice to i, i nothing to itself
    g.edge_index = ei
    assert not is_complete(g)
    count = torch.zeros(n, n).index_put_((ei[1], ei[0]), torch.ones(ei.size(1)), accumulate=True)
    expected, _ = ref(x, x, x, attn_mask=count.log())  # log(multiplicity), -inf where no edge
    out, _ = layer(g)
    torch.testing.assert_close(out, expected[0], **TOL)


def test_complete_edges_returns_a_fresh_tensor():
    edges = complete_edges(3)
    expected = torch.stack([torch.arange(3).repeat(3), torch.arange(3).repeat_interleave(3)])
    torch.testing.assert_close(edges, expected)
    edges[0, 0] = 2  # the caller's tensor, not the cache
    torch.testing.assert_close(complete_edges(3), expected)
    torch.testing.assert_close(complete(3).edge_index, expected)


def test_complete_edges_validates_like_complete():
    with pytest.raises(ValidationError, match=r"^n must be an int >= 1, got -1$"):
        complete_edges(-1)
    with pytest.raises(ValidationError, match=r"^self_loops=False only makes sense for a complete graph"):
        complete_edges(2, 3, self_loops=False)
    torch.testing.assert_close(complete_edges(3, 3, self_loops=False), complete(3, self_loops=False).edge_index)
    torch.testing.assert_close(complete(np.int64(3)).edge_index, complete(3).edge_index)
    with pytest.raises(ValidationError, match=r"^x must be a tensor of node features, got list$"):
        complete(3, x=[1.0, 2.0, 3.0])


def test_graph_input_refuses_tensor_only_arguments():
    """Masks (or key/value) given with a graph were silently ignored."""
    _, layer = _pair()
    g = complete(4, x=torch.randn(4, E))
    mask = torch.ones(4, 4, dtype=torch.bool).triu(1)
    with pytest.raises(ValidationError, match=r"^complete_mha: attn_mask apply to tensor inputs, not to a graph "):
        layer(g, attn_mask=mask)
    with pytest.raises(ValidationError, match=r"^complete_mha: key_padding_mask apply to tensor inputs"):
        layer(g.x, g, key_padding_mask=torch.zeros(1, 4, dtype=torch.bool))
    with pytest.raises(ValidationError, match=r"^complete_mha: key, value apply to tensor inputs"):
        layer(g, g.x, g.x)


def test_graph_input_rows_must_match_the_nodes():
    _, layer = _pair()
    g = complete(3, batch_size=2, x=torch.randn(6, E))
    for rows in (9, 4):
        with pytest.raises(ValidationError, match=rf"^complete_mha: the graph has 6 nodes but the node features "
                                                  rf"have {rows} rows"):
            layer(torch.randn(rows, E), g, method="message_passing")


def test_non_tensor_key_or_value_is_named():
    _, layer = _pair()
    q = torch.randn(2, 4, E)
    with pytest.raises(ValidationError, match=r"^complete_mha: key must be a tensor, got ndarray$"):
        layer(q, q.numpy())
    with pytest.raises(ValidationError, match=r"^complete_mha: value must be a tensor, got list$"):
        layer(q, q, [1.0])


def test_conversion_keeps_eval_mode():
    """An eval-mode torch module converts to an eval-mode layer (no dropout), and back."""
    ref, _ = _pair(dropout=0.5)
    ref.eval()
    layer = CompleteMultiheadAttention.from_torch(ref)
    x = torch.randn(2, 5, E)
    expected = ref(x, x, x)[0]
    for method in ("dense", "message_passing"):
        torch.testing.assert_close(layer(x, method=method)[0], expected, **TOL)
    back = layer.to_torch()
    torch.testing.assert_close(back(x, x, x)[0], expected, **TOL)
    assert CompleteMultiheadAttention.from_torch(ref.train()).training and layer.train().to_torch().training


@pytest.mark.parametrize("kwargs,message", [
    (dict(dropout=-0.1), r"dropout is a probability in \[0, 1\], got -0.1"),
    (dict(dropout=1.5), r"dropout is a probability in \[0, 1\], got 1.5"),
    (dict(in_channels=0, num_heads=1), r"embed_dim and num_heads must be >= 1, got embed_dim=0 and num_heads=1"),
    (dict(num_heads=-2), r"embed_dim and num_heads must be >= 1, got embed_dim=8 and num_heads=-2"),
])
def test_constructor_refuses_bad_hyper_parameters(kwargs, message):
    kwargs = {"in_channels": E, "num_heads": H, **kwargs}
    with pytest.raises(ValidationError, match=rf"^complete_mha: {message}$"):
        CompleteMultiheadAttention(**kwargs)
