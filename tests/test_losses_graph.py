"""Graph losses against PyG's GAE / VGAE / DeepGraphInfomax and the GRACE formula."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch_geometric.nn import GAE, VGAE, DeepGraphInfomax

import graphdl

DT = torch.float64
TOL = dict(rtol=1e-6, atol=1e-6)


def _data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(20, 8, dtype=DT, generator=g) * 0.5
    pos = torch.randint(0, 20, (2, 40), generator=g)
    neg = torch.randint(0, 20, (2, 50), generator=g)
    return z, pos, neg, g


def test_link_bce_matches_pyg_gae_recon_loss() -> None:
    z, pos, neg, _ = _data()
    a, b = z.clone().requires_grad_(), z.clone().requires_grad_()
    ours = graphdl.losses.create("link_bce")(a, pos, neg)
    ref = GAE(torch.nn.Identity()).recon_loss(b, pos, neg)
    torch.testing.assert_close(ours, ref, **TOL)
    ours.backward(), ref.backward()
    torch.testing.assert_close(a.grad, b.grad, **TOL)
    # score form: the same value from precomputed logits
    s_pos, s_neg = (z[pos[0]] * z[pos[1]]).sum(1), (z[neg[0]] * z[neg[1]]).sum(1)
    torch.testing.assert_close(graphdl.losses.create("link_bce")(s_pos, s_neg), ours.detach(), **TOL)
    none = graphdl.losses.create("link_bce", reduction="none")(s_pos, s_neg)
    assert none.shape == (90,)


def test_link_bce_samples_negatives_when_not_given() -> None:
    z, pos, _, _ = _data()
    torch.manual_seed(0)
    out = graphdl.losses.create("link_bce", reduction="none", neg_ratio=2.0)(z, pos)
    assert out.shape == (40 + 80,)


def test_vgae_matches_pyg() -> None:
    z, pos, neg, g = _data(1)
    mu = torch.randn(20, 8, dtype=DT, generator=g)
    logstd = torch.randn(20, 8, dtype=DT, generator=g) * 0.3
    logstd[0, 0] = 12.0  # clamped at 10 like PyG
    ins = [t.clone().requires_grad_() for t in (z, mu, logstd)]
    ref_ins = [t.clone().requires_grad_() for t in (z, mu, logstd)]
    ours = graphdl.losses.create("vgae")(*ins, pos, neg)
    model = VGAE(torch.nn.Identity())
    ref = model.recon_loss(ref_ins[0], pos, neg) + model.kl_loss(ref_ins[1], ref_ins[2]) / 20
    torch.testing.assert_close(ours, ref, **TOL)
    ours.backward(), ref.backward()
    for x, y in zip(ins, ref_ins):
        torch.testing.assert_close(x.grad, y.grad, **TOL)


def test_dgi_matches_pyg() -> None:
    g = torch.Generator().manual_seed(2)
    pos_z = torch.randn(15, 6, dtype=DT, generator=g)
    neg_z = torch.randn(15, 6, dtype=DT, generator=g)
    ours = graphdl.losses.create("dgi", hidden_channels=6).double()
    ref = DeepGraphInfomax(6, encoder=torch.nn.Identity(), summary=lambda z, *a: torch.sigmoid(z.mean(0)),
                           corruption=lambda x: x).double()
    with torch.no_grad():
        ours.weight.copy_(ref.weight)
    a, b = pos_z.clone().requires_grad_(), pos_z.clone().requires_grad_()
    v1 = ours(a, neg_z)
    v2 = ref.loss(b, neg_z, torch.sigmoid(b.mean(0)))
    torch.testing.assert_close(v1, v2, **TOL)
    v1.backward(), v2.backward()
    torch.testing.assert_close(a.grad, b.grad, **TOL)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, **TOL)


def _grace_reference(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> torch.Tensor:
    """GRACE's published loss, transcribed with explicit exp / log."""
    def semi(h1, h2):
        h1, h2 = F.normalize(h1), F.normalize(h2)
        refl = torch.exp(h1 @ h1.t() / tau)
        between = torch.exp(h1 @ h2.t() / tau)
        return -torch.log(between.diag() / (refl.sum(1) + between.sum(1) - refl.diag()))
    return (0.5 * (semi(z1, z2) + semi(z2, z1))).mean()


def test_grace_matches_the_paper_and_ntxent() -> None:
    g = torch.Generator().manual_seed(3)
    z1, z2 = torch.randn(12, 5, dtype=DT, generator=g), torch.randn(12, 5, dtype=DT, generator=g)
    ours = graphdl.losses.create("grace", temperature=0.4)(z1, z2)
    torch.testing.assert_close(ours, _grace_reference(z1, z2, 0.4), **TOL)
    nt = graphdl.losses.create("ntxent", temperature=0.4)(torch.cat([z1, z2]), torch.arange(12).repeat(2))
    torch.testing.assert_close(ours, nt, **TOL)
