"""Benchmarks: published configurations on real datasets, beside reference results.

>>> import graphdl.bench as bench
>>> bench.SUITES                                   # name -> description
>>> records = bench.run_suite("quick", root="../shared/data", json_path="quick.json")
>>> record = bench.run_config("ogbg-molbbbp", {"layer": "gin", "virtual_node": True}, seeds=3, epochs=100)

Suites: ``quick`` (Cora GCN x 10 seeds, GAT x 5 seeds, a 5-epoch OGB run), ``planetoid``,
``ogbg-mol`` (OGB's GCN/GIN +- virtual node, official example configuration),
``ogbl-ddi`` and ``ogbn-arxiv`` (GraphSAGE/GCN, leaderboard configurations).
:func:`run_config` also takes ``ogbn-products`` and other single-label ogbn
datasets. Reference numbers
and their sources are in :mod:`graphdl.bench.references`.
"""

from graphdl.layers import ogb as _ogb_layers  # noqa: F401  (registers ogb_gin / ogb_gcn)
from graphdl.models import ogb_mol as _ogb_mol  # noqa: F401  (registers the ogb_mol model)
from graphdl.bench.references import REFERENCES, Reference, reference_for
from graphdl.bench.runner import REQUIRED_KEYS, format_table, run_config, run_suite, save_records
from graphdl.bench.suites import SUITES, default_config

__all__ = ["SUITES", "run_suite", "run_config", "save_records", "format_table", "default_config", "REFERENCES", "Reference",
           "reference_for", "REQUIRED_KEYS"]
