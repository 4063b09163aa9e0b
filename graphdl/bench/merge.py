"""Pool result records of one benchmark run in pieces (``bench run --first-seed K``) into one record.

Records pool when they share dataset, model, metric and configuration: their
seeds, per-seed scores and curves are concatenated (ordered by seed) and the
mean and std are taken over all seeds, as if one run had trained them. A seed
that appears twice is refused: it would count one run as two.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from graphdl.errors import ConfigError

__all__ = ["merge_records"]

_PER_SEED = ("runs", "seeds", "valid_runs", "best_epochs", "epochs_run")


def _key(record: dict[str, Any]) -> str:
    return json.dumps([record["dataset"], record["model"], record.get("metric"), record.get("config")],
                      sort_keys=True, default=str)


def _pool(group: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    seen: dict[int, str] = {}
    for record, name in zip(group, names):
        for seed in record.get("seeds") or []:
            if seed in seen:
                raise ConfigError(f"seed {seed} of {record['dataset']}/{record['model']} (same configuration) is in "
                                  f"{seen[seed]} and in {name}; pass each seed once")
            seen[seed] = name
    if not all(len(r.get("seeds") or []) == len(r["runs"]) for r in group):
        raise ConfigError(f"records of {group[0]['dataset']}/{group[0]['model']} without one seed per run cannot be "
                          f"merged; pass files written by graphdl bench run or graphdl train")
    order = np.argsort([s for r in group for s in r["seeds"]], kind="stable")
    merged = dict(group[0])
    for key in _PER_SEED:
        if all(key in r for r in group):
            values = [v for r in group for v in r[key]]
            merged[key] = [values[i] for i in order]
    curves = [r.get("curves") for r in group]
    if all(curves):
        merged["curves"] = {k: [c for r in curves for c in r[k]] for k in curves[0]}
        merged["curves"] = {k: [v[i] for i in order] for k, v in merged["curves"].items()}
    runs = np.asarray(merged["runs"], dtype=float)
    merged["mean"] = float(runs.mean())
    merged["std"] = float(runs.std(ddof=1)) if len(runs) > 1 else None
    if "valid_runs" in merged:
        merged["valid_mean"] = float(np.mean(merged["valid_runs"]))
    merged["seconds"] = round(sum(r["seconds"] for r in group), 2)
    weights = [sum(r.get("epochs_run") or [r["epochs"] * len(r["runs"])]) for r in group]
    for key in ("seconds_per_epoch", "train_seconds_per_epoch"):
        if all(r.get(key) is not None for r in group):
            merged[key] = round(float(np.average([r[key] for r in group], weights=weights)), 4)
    if all(r.get("peak_rss_mb") is not None for r in group):
        merged["peak_rss_mb"] = max(r["peak_rss_mb"] for r in group)
    return merged


def merge_records(records: Sequence[dict[str, Any]], sources: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One record per dataset/model/metric/configuration: finished records (status ``ok``) of the same
    case pooled over their seeds, in the order each case first appears; other records as they are.
    ``sources`` names where each record came from, for the error on a repeated seed."""
    names = list(sources) if sources is not None else [f"record {i}" for i in range(len(records))]
    groups: dict[str, tuple[list[dict[str, Any]], list[str]]] = {}
    out: list[Any] = []
    for record, name in zip(records, names):
        if record.get("status", "ok") != "ok":
            out.append(record)
            continue
        key = _key(record)
        if key not in groups:
            groups[key] = ([], [])
            out.append(key)
        groups[key][0].append(record)
        groups[key][1].append(name)
    return [_pool(*groups[item]) if isinstance(item, str) else item for item in out]
