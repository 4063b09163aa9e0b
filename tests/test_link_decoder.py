"""Link decoders: the MLP decoder is the OGB example's LinkPredictor; its faster gather and dropout keep the math."""

import pytest
import torch
import torch.nn.functional as F

from graphdl.errors import ConfigError
from graphdl.models.gnn import DotDecoder, MLPDecoder, hadamard, pair_dropout


def _pairs(num_nodes: int, num_pairs: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, num_nodes, (2, num_pairs), generator=torch.Generator().manual_seed(seed))


def test_hadamard_and_its_gradient_match_advanced_indexing() -> None:
    z = torch.randn(30, 8, requires_grad=True)
    pairs = _pairs(30, 500)  # many repeated nodes: the backward must accumulate
    weight = torch.randn(500, 8)
    (hadamard(z, pairs) * weight).sum().backward()
    ours, z.grad = z.grad, None
    ((z[pairs[0]] * z[pairs[1]]) * weight).sum().backward()
    torch.testing.assert_close(hadamard(z, pairs), z[pairs[0]] * z[pairs[1]], rtol=0, atol=0)
    torch.testing.assert_close(ours, z.grad)


def test_mlp_decoder_is_the_ogb_example_link_predictor() -> None:
    """examples/linkproppred/ddi/gnn.py: x = x_i * x_j, then lin, relu, dropout per hidden layer, last lin."""
    torch.manual_seed(0)
    decoder = MLPDecoder(16, num_layers=3, dropout=0.5).eval()
    z, pairs = torch.randn(20, 16), _pairs(20, 40)
    x = z[pairs[0]] * z[pairs[1]]
    for lin in decoder.lins[:-1]:
        x = F.dropout(F.relu(lin(x)), p=0.5, training=False)
    torch.testing.assert_close(decoder(z, pairs), decoder.lins[-1](x).squeeze(-1))
    torch.testing.assert_close(DotDecoder()(z, pairs), (z[pairs[0]] * z[pairs[1]]).sum(-1))


def test_pair_dropout_keeps_each_entry_with_probability_one_minus_p_and_rescales() -> None:
    torch.manual_seed(0)
    h = torch.rand(1000, 1000) + 0.5  # no zeros, so a dropped entry is exactly the zeros of the output
    for p in (0.1, 0.5, 0.8):
        out = pair_dropout(h, p, training=True)
        kept = out != 0
        n = h.numel()
        assert abs(kept.sum().item() - (1 - p) * n) < 5 * ((p * (1 - p) * n) ** 0.5)  # 5 sigma
        torch.testing.assert_close(out[kept], h[kept] / (1 - p))
        # No correlation along rows or columns: each row keeps ~(1 - p) of its entries.
        assert kept.float().mean(1).std().item() < 5 * ((p * (1 - p) / 1000) ** 0.5)


def test_pair_dropout_gradient_is_the_scaled_mask_and_it_is_off_outside_training() -> None:
    torch.manual_seed(1)
    h = (torch.rand(200, 50) + 0.5).requires_grad_()
    out = pair_dropout(h, 0.3, training=True)
    out.sum().backward()
    torch.testing.assert_close(h.grad, (out != 0).float() / 0.7)
    assert pair_dropout(h, 0.3, training=False) is h
    assert pair_dropout(h, 0.0, training=True) is h
    # Drawn from torch's global RNG: seeded runs (and resumed checkpoints) repeat it.
    torch.manual_seed(5)
    first = pair_dropout(h, 0.3, training=True)
    torch.manual_seed(5)
    assert torch.equal(first, pair_dropout(h, 0.3, training=True))


@pytest.mark.parametrize("dropout", [1.0, -0.1])
def test_mlp_decoder_rejects_a_dropout_outside_zero_one(dropout: float) -> None:
    with pytest.raises(ConfigError) as err:
        MLPDecoder(8, dropout=dropout)
    assert str(err.value) == f"MLPDecoder dropout must lie in [0, 1), got {dropout}"
