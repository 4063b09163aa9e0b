"""Metric losses equal pytorch-metric-learning's (same defaults, same inputs) to 1e-5."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import graphdl
from graphdl.losses.distances import CosineSimilarity, DotProductSimilarity, LpDistance

# a test dependency (pyproject's test extra): imported, not skipped, so that its absence fails loudly
import pytorch_metric_learning.distances as pml_dist  # noqa: E402
import pytorch_metric_learning.losses as pml_losses  # noqa: E402
import pytorch_metric_learning.miners as pml_miners  # noqa: E402

L = graphdl.losses


def _tol(dtype: torch.dtype) -> dict:
    return dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-7, atol=1e-9)


def _inputs(n: int, classes: int, dtype: torch.dtype, seed: int = 0, dim: int = 16):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, dtype=dtype, generator=g), torch.randint(0, classes, (n,), generator=g)


# name -> (ours, theirs, miner)
DEFAULT_CASES = {
    "contrastive": (lambda: L.create("contrastive"), lambda: pml_losses.ContrastiveLoss(), None),
    "triplet_all": (lambda: L.create("triplet"), lambda: pml_losses.TripletMarginLoss(), None),
    "ntxent": (lambda: L.create("ntxent"), lambda: pml_losses.NTXentLoss(), None),
    "supcon": (lambda: L.create("supcon"), lambda: pml_losses.SupConLoss(), None),
    "multi_similarity": (lambda: L.create("multi_similarity"), lambda: pml_losses.MultiSimilarityLoss(), None),
    "lifted_structure": (lambda: L.create("lifted_structure"), lambda: pml_losses.LiftedStructureLoss(), None),
}
EXTRA_CASES = {
    "triplet_hard": (lambda: L.create("triplet", mining="hard"), lambda: pml_losses.TripletMarginLoss(),
                     lambda: pml_miners.BatchHardMiner()),
    "triplet_semihard": (lambda: L.create("triplet", mining="semihard", margin=0.2),
                         lambda: pml_losses.TripletMarginLoss(margin=0.2),
                         lambda: pml_miners.TripletMarginMiner(margin=0.2, type_of_triplets="semihard")),
    "triplet_swap": (lambda: L.create("triplet", swap=True, margin=0.1),
                     lambda: pml_losses.TripletMarginLoss(swap=True, margin=0.1), None),
    "triplet_smooth": (lambda: L.create("triplet", smooth_loss=True),
                       lambda: pml_losses.TripletMarginLoss(smooth_loss=True), None),
    "triplet_cosine": (lambda: L.create("triplet", margin=0.1, distance=CosineSimilarity()),
                       lambda: pml_losses.TripletMarginLoss(margin=0.1, distance=pml_dist.CosineSimilarity()), None),
    "contrastive_cosine": (lambda: L.create("contrastive", pos_margin=0.9, neg_margin=0.2, distance="cosine"),
                           lambda: pml_losses.ContrastiveLoss(pos_margin=0.9, neg_margin=0.2,
                                                              distance=pml_dist.CosineSimilarity()), None),
    "ntxent_lp": (lambda: L.create("ntxent", temperature=0.5, distance=LpDistance()),
                  lambda: pml_losses.NTXentLoss(temperature=0.5, distance=pml_dist.LpDistance()), None),
    "supcon_dot": (lambda: L.create("supcon", temperature=2.0,
                                    distance=DotProductSimilarity(normalize_embeddings=False)),
                   lambda: pml_losses.SupConLoss(temperature=2.0, distance=pml_dist.DotProductSimilarity(
                       normalize_embeddings=False)), None),
    "ms_lp": (lambda: L.create("ms", alpha=1.0, beta=10.0, base=1.0, distance="lp"),
              lambda: pml_losses.MultiSimilarityLoss(alpha=1.0, beta=10.0, base=1.0,
                                                     distance=pml_dist.LpDistance()), None),
}


def _compare(ours, theirs, emb, labels, miner=None, *, indices_tuple=None, ref_emb=None, ref_labels=None):
    e1, e2 = emb.clone().requires_grad_(), emb.clone().requires_grad_()
    r1 = r2 = None
    if ref_emb is not None:
        r1, r2 = ref_emb.clone().requires_grad_(), ref_emb.clone().requires_grad_()
    # our mining is an argument of the loss; pml's is a separate miner handing it triplets
    v1 = ours(e1, labels, indices_tuple, r1, ref_labels)
    theirs_tuple = miner(emb, labels) if miner is not None else indices_tuple
    v2 = theirs(e2, labels, theirs_tuple, r2, ref_labels)
    tol = _tol(emb.dtype)
    torch.testing.assert_close(v1, v2.to(v1.dtype), **tol)
    v1.backward(), v2.backward()
    torch.testing.assert_close(e1.grad, e2.grad, **tol)
    if r1 is not None:
        torch.testing.assert_close(r1.grad, r2.grad, **tol)
    return v1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(DEFAULT_CASES) + sorted(EXTRA_CASES))
def test_matches_pml_on_labels(name: str, dtype: torch.dtype) -> None:
    ours, theirs, miner = {**DEFAULT_CASES, **EXTRA_CASES}[name]
    emb, labels = _inputs(64, 8, dtype)
    v = _compare(ours(), theirs(), emb, labels, miner() if miner else None)
    assert v.item() > 0


@pytest.mark.parametrize("labels", ["one class", "all distinct"])
@pytest.mark.parametrize("name", sorted(DEFAULT_CASES) + sorted(EXTRA_CASES))
def test_matches_pml_on_batches_with_only_positive_or_only_negative_pairs(name: str, labels: str) -> None:
    """A batch of one class (no negative pairs) or of distinct classes (no positive pairs), as small batches
    give: pml still scores the pairs of the other kind (contrastive, multi-similarity), where graphdl gave 0."""
    ours, theirs, miner = {**DEFAULT_CASES, **EXTRA_CASES}[name]
    emb = torch.randn(12, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    y = torch.zeros(12, dtype=torch.long) if labels == "one class" else torch.arange(12)
    e1, e2 = emb.clone().requires_grad_(), emb.clone().requires_grad_()
    v1 = ours()(e1, y)
    v2 = theirs()(e2, y, miner()(emb, y) if miner else None)
    torch.testing.assert_close(v1, v2.to(v1.dtype), **_tol(torch.float64))
    v1.backward()
    if v2.requires_grad:
        v2.backward()
    g1 = torch.zeros_like(emb) if e1.grad is None else e1.grad
    g2 = torch.zeros_like(emb) if e2.grad is None else e2.grad
    torch.testing.assert_close(g1, g2, **_tol(torch.float64))


def _dup(t: tuple) -> tuple:
    return tuple(torch.cat([x, x[:7]]) for x in t)  # repeated entries count twice, as in pml


@pytest.mark.parametrize("name", sorted(DEFAULT_CASES))
def test_matches_pml_on_index_tuples(name: str) -> None:
    ours, theirs, _ = DEFAULT_CASES[name]
    emb, labels = _inputs(60, 6, torch.float64, seed=1)
    # pml's pair losses build a (positives x negatives) matrix from a tuple: keep tuples small
    g = torch.Generator().manual_seed(5)
    pairs = pml_miners.PairMarginMiner(pos_margin=0.4, neg_margin=0.9)(emb, labels)
    keep_p = torch.randperm(pairs[0].numel(), generator=g)[:150]
    keep_n = torch.randperm(pairs[2].numel(), generator=g)[:400]
    pairs = (pairs[0][keep_p], pairs[1][keep_p], pairs[2][keep_n], pairs[3][keep_n])
    triplets = pml_miners.TripletMarginMiner(margin=0.3)(emb, labels)
    keep_t = torch.randperm(triplets[0].numel(), generator=g)[:300]
    triplets = tuple(t[keep_t] for t in triplets)
    mat_based = name in ("supcon", "multi_similarity")  # pml sets pair masks to 1: no multiplicities
    _compare(ours(), theirs(), emb, labels, indices_tuple=pairs if mat_based else _dup(pairs))
    if not mat_based:
        _compare(ours(), theirs(), emb, labels, indices_tuple=_dup(triplets))


@pytest.mark.parametrize("name", sorted(n for n in DEFAULT_CASES if n != "lifted_structure"))
def test_matches_pml_with_reference_embeddings(name: str) -> None:
    ours, theirs, _ = DEFAULT_CASES[name]
    emb, labels = _inputs(40, 5, torch.float64, seed=2)
    ref, ref_labels = _inputs(50, 5, torch.float64, seed=3)
    _compare(ours(), theirs(), emb, labels, ref_emb=ref, ref_labels=ref_labels)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_arcface_matches_pml_and_trains_its_centres(dtype: torch.dtype) -> None:
    emb, labels = _inputs(64, 10, dtype, seed=4)
    theirs = pml_losses.ArcFaceLoss(num_classes=10, embedding_size=16)
    ours = L.create("arcface", num_classes=10, embedding_size=16)
    with torch.no_grad():
        ours.weight.copy_(theirs.W.t())
    ours = ours.to(dtype)
    _compare(ours, theirs, emb, labels)
    torch.testing.assert_close(ours.weight.grad, theirs.W.grad.t().to(dtype), **_tol(dtype))
    assert [p is ours.weight for p in ours.parameters()] == [True]
    pairs = pml_miners.PairMarginMiner()(emb, labels)  # miner weights, as pml
    ours.zero_grad(), theirs.zero_grad()
    _compare(ours, theirs, emb, labels, indices_tuple=pairs)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 48), classes=st.integers(1, 12), seed=st.integers(0, 10_000),
       margin=st.sampled_from([0.0, 0.05, 0.3, 1.0]))
def test_sorted_all_triplets_equal_pml_enumeration(n: int, classes: int, seed: int, margin: float) -> None:
    emb, labels = _inputs(n, classes, torch.float64, seed=seed, dim=4)
    ours = L.create("triplet", margin=margin)(emb, labels)
    theirs = pml_losses.TripletMarginLoss(margin=margin)(emb, labels)
    torch.testing.assert_close(ours, theirs.to(ours.dtype), rtol=1e-9, atol=1e-12)
