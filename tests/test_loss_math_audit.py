"""Divergences, graph losses and distances against their references, on inputs at the edge of their domain."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning import distances as pml_distances
from torch_geometric.nn import DeepGraphInfomax

import graphdl
from graphdl.errors import ValidationError
from graphdl.losses.distances import CosineSimilarity, DotProductSimilarity, LpDistance

L = graphdl.losses
DT = torch.float64
TOL = dict(rtol=1e-6, atol=1e-6)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", ["kl_div", "js_div"])
@pytest.mark.parametrize("bad", [float("inf"), "all -inf"], ids=["+inf logit", "row of -inf"])
def test_divergence_from_logits_without_a_softmax_is_refused(name, bad) -> None:
    """log_softmax of a +inf logit or of a row of -inf is NaN: kl_div returned NaN, js_div a negative value."""
    x = torch.randn(3, 4, dtype=DT, generator=_gen())
    if bad == "all -inf":
        x[1] = float("-inf")
    else:
        x[1, 2] = bad
    p = torch.softmax(torch.randn(3, 4, dtype=DT, generator=_gen(1)), -1)
    with pytest.raises(ValidationError, match=rf"^{L.get(name).__name__}: input holds logits with no softmax along "
                                              r"dim=-1: 4 entries of log_softmax\(input\) are NaN \(a \+inf logit, "
                                              r"or a distribution whose logits are all -inf\); give each"):
        L.create(name, from_logits=True)(x, p)


@pytest.mark.parametrize("name", ["kl_div", "js_div"])
def test_divergence_from_logits_keeps_a_few_minus_inf_logits(name) -> None:
    """A -inf logit beside finite ones is a class of probability 0, not an error; JS against its KL form."""
    x = torch.randn(3, 4, dtype=DT, generator=_gen())
    x[0, 1] = float("-inf")
    p = torch.softmax(torch.randn(3, 4, dtype=DT, generator=_gen(1)), -1)
    ours = L.create(name, from_logits=True)(x, p)
    log_q = x.log_softmax(-1)
    if name == "kl_div":
        ref = F.kl_div(log_q, p, reduction="batchmean")
    else:  # JS = KL(p || m) / 2 + KL(q || m) / 2, m = (p + q) / 2
        log_m = (0.5 * (p + log_q.exp())).log()
        q = log_q.exp()
        ref = 0.5 * (F.kl_div(log_m, p, reduction="batchmean") + F.kl_div(log_m, q, reduction="batchmean"))
    torch.testing.assert_close(ours, ref, **TOL)
    assert float(ours) >= 0 and (name == "kl_div" or float(ours) <= torch.log(torch.tensor(2.0)).item())


def _dgi_pair(d: int = 6):
    ours = L.create("dgi", hidden_channels=d).double()
    ref = DeepGraphInfomax(d, encoder=torch.nn.Identity(), summary=lambda z, *a: z, corruption=lambda x: x).double()
    with torch.no_grad():
        ours.weight.copy_(ref.weight)
    return ours, ref


def test_dgi_summary_of_another_dtype_is_used_in_the_embeddings_dtype() -> None:
    """A float32 summary beside float64 embeddings failed in matmul ('addmv ... same dtype')."""
    g = _gen(2)
    pos_z, neg_z = torch.randn(10, 6, dtype=DT, generator=g), torch.randn(10, 6, dtype=DT, generator=g)
    summary = torch.sigmoid(pos_z.mean(0)).float()
    ours, ref = _dgi_pair()
    torch.testing.assert_close(ours(pos_z, neg_z, summary), ref.loss(pos_z, neg_z, summary.double()), **TOL)
    # embeddings of two dtypes: each scored in its own, as the weight is
    torch.testing.assert_close(ours(pos_z, neg_z.float()), ours(pos_z, neg_z.float().double()), rtol=1e-5, atol=1e-5)


def test_dgi_without_nodes_names_the_empty_embeddings() -> None:
    """The default summary of no rows is NaN, which was reported as a training divergence."""
    ours, _ = _dgi_pair()
    with pytest.raises(ValidationError, match=r"^DGILoss: pos_z has no rows, so the default summary \(the sigmoid "
                                              r"of their mean\) is undefined; pass"):
        ours(torch.empty(0, 6, dtype=DT), torch.randn(3, 6, dtype=DT))


@pytest.mark.parametrize("ours,ref", [
    (LpDistance(), pml_distances.LpDistance()),
    (LpDistance(p=1, power=2), pml_distances.LpDistance(p=1, power=2)),
    (CosineSimilarity(), pml_distances.CosineSimilarity()),
    (DotProductSimilarity(normalize_embeddings=False), pml_distances.DotProductSimilarity(normalize_embeddings=False)),
], ids=["lp", "l1-squared", "cosine", "dot"])
@pytest.mark.parametrize("dtypes", [(torch.float32, torch.float16), (torch.float16, torch.float32),
                                    (torch.float64, torch.float32)], ids=str)
def test_distance_of_query_and_reference_of_two_dtypes(ours, ref, dtypes) -> None:
    """cdist and matmul refuse mixed dtypes: LpDistance took (float16, float32) but not the reverse."""
    g = _gen(3)
    x, y = torch.randn(5, 4, generator=g).to(dtypes[0]), torch.randn(3, 4, generator=g).to(dtypes[1])
    common = torch.promote_types(*dtypes)
    out = ours(x, y)
    assert out.dtype == common
    torch.testing.assert_close(out, ref(x.to(common), y.to(common)))
