"""Reference results the benchmark tables print beside graphdl's, with their sources.

Scores are in the evaluator's scale (accuracy and ROC-AUC as fractions, RMSE
in the target's unit, Hits@20 as a fraction). ``std`` is ``None`` where the
source gives none. Each row says where the number comes from:

* ``paper``: the published paper (table named in ``source``);
* ``OGB leaderboard``: the official OGB leaderboard entry of the baseline;
* ``ANCHORS.md``: the official OGB example script (or the PyG-style loop) run
  on this project's machines (``/work/shared/ANCHORS.md``), with the same
  model and epochs; few runs, so the std is rough.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Reference", "REFERENCES", "reference_for"]


@dataclass(frozen=True)
class Reference:
    """One published or measured result."""

    value: float
    std: float | None
    source: str
    kind: str  # "paper", "OGB leaderboard", "ANCHORS.md"
    runs: int | None = None
    epochs: int | None = None

    def text(self) -> str:
        """``0.8150`` or ``0.8300 ± 0.0070``."""
        return f"{self.value:.4f}" if self.std is None else f"{self.value:.4f} ± {self.std:.4f}"


_KIPF = "Kipf & Welling, ICLR 2017, Table 2 (GCN, public split)"
_GAT = "Velickovic et al., ICLR 2018, Table 2 (GAT, public split, 100 runs)"
_ANCHOR_OGB = "official OGB example main_pyg.py on this machine (ANCHORS.md)"
_OGB_LB = "OGB leaderboard (ogbl-ddi), 10 runs, official example examples/linkproppred/ddi/gnn.py"
_OGB_ARXIV = "OGB leaderboard (ogbn-arxiv), 10 runs, official example examples/nodeproppred/arxiv/gnn.py"
_OGB_PRODUCTS = ("OGB leaderboard (ogbn-products, full batch), 10 runs, official example "
                 "examples/nodeproppred/products/gnn.py")

#: (dataset, model) -> reference results, best-known source first.
REFERENCES: dict[tuple[str, str], tuple[Reference, ...]] = {
    ("cora", "gcn"): (Reference(0.815, None, _KIPF, "paper"),
                      Reference(0.8193, 0.0081, "PyG-style loop on this machine, seeds 0-9, 200 epochs (ANCHORS.md)",
                                "ANCHORS.md", runs=10, epochs=200)),
    ("citeseer", "gcn"): (Reference(0.703, None, _KIPF, "paper"),),
    ("pubmed", "gcn"): (Reference(0.790, None, _KIPF, "paper"),),
    ("cora", "gat"): (Reference(0.830, 0.007, _GAT, "paper", runs=100),),
    ("citeseer", "gat"): (Reference(0.725, 0.007, _GAT, "paper", runs=100),),
    ("pubmed", "gat"): (Reference(0.790, 0.003, _GAT, "paper", runs=100),),
    ("ogbg-molbace", "gin-virtual"): (Reference(0.7733, None, _ANCHOR_OGB, "ANCHORS.md", runs=1, epochs=100),),
    ("ogbg-molbbbp", "gcn"): (Reference(0.7015, 0.0103, _ANCHOR_OGB, "ANCHORS.md", runs=2, epochs=100),),
    ("ogbg-molbbbp", "gin-virtual"): (Reference(0.6776, 0.0339, _ANCHOR_OGB, "ANCHORS.md", runs=3, epochs=100),),
    ("ogbg-molesol", "gin-virtual"): (Reference(1.0252, 0.0397, _ANCHOR_OGB, "ANCHORS.md", runs=2, epochs=100),),
    ("ogbl-ddi", "sage"): (Reference(0.5390, 0.0474, _OGB_LB, "OGB leaderboard", runs=10, epochs=200),),
    ("ogbl-ddi", "gcn"): (Reference(0.3707, 0.0507, _OGB_LB, "OGB leaderboard", runs=10, epochs=200),),
    ("ogbn-arxiv", "gcn"): (Reference(0.7174, 0.0029, _OGB_ARXIV, "OGB leaderboard", runs=10, epochs=500),),
    ("ogbn-arxiv", "sage"): (Reference(0.7149, 0.0027, _OGB_ARXIV, "OGB leaderboard", runs=10, epochs=500),),
    ("ogbn-products", "gcn"): (Reference(0.7564, 0.0021, _OGB_PRODUCTS, "OGB leaderboard", runs=10, epochs=300),),
    ("ogbn-products", "sage"): (Reference(0.7850, 0.0014, _OGB_PRODUCTS, "OGB leaderboard", runs=10, epochs=300),),
}

#: Per-epoch wall time of the official OGB example on this machine (ANCHORS.md),
#: including its per-epoch evaluation of train/valid/test, in seconds.
OFFICIAL_SECONDS_PER_EPOCH: dict[tuple[str, str], float] = {
    ("ogbg-molbace", "gin-virtual"): 5.8,
    ("ogbg-molbbbp", "gcn"): 2.5,
    ("ogbg-molbbbp", "gin-virtual"): 5.8,
    ("ogbg-molesol", "gin-virtual"): 2.3,
}


def reference_for(dataset: str, model: str) -> Reference | None:
    """The first (preferred) reference of ``(dataset, model)``, or ``None``."""
    refs = REFERENCES.get((dataset.lower(), model.lower()))
    return refs[0] if refs else None
