"""Pool result records of one benchmark run in pieces (``bench run --first-seed K``) into one record.

Records pool when they share dataset, model, metric, epochs and configuration:
their seeds, per-seed scores and curves are concatenated (ordered by seed) and
the mean and std (``ddof=1``) are taken over all seeds, as if one run had
trained them. A seed that appears twice, in one record or in two, is refused:
it would count one run as two.
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
    # epochs beside the configuration: a record without one (hand-written, older) still pools only its own epochs
    return json.dumps([record["dataset"], record["model"], record.get("metric"), record.get("epochs"),
                       record.get("config")], sort_keys=True, default=str)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_seeds(group: list[dict[str, Any]], names: list[str]) -> None:
    """Per-seed lists that can be pooled: ``seeds`` ints, ``runs`` numbers, no seed twice."""
    seen: dict[int, str] = {}
    for record, name in zip(group, names):
        case = f"{record['dataset']}/{record['model']}"
        seeds, runs = record.get("seeds"), record.get("runs")
        if seeds is not None and not (isinstance(seeds, list) and all(_is_int(s) for s in seeds)):
            raise ConfigError(f"{name}: {case} has seeds {seeds!r}, not a list of ints; pass files written by "
                              f"graphdl bench run or graphdl train")
        if runs is not None and not (isinstance(runs, list) and all(_is_number(v) for v in runs)):
            raise ConfigError(f"{name}: {case} has runs {runs!r}, not a list of numbers (one test score per "
                              f"seed); pass files written by graphdl bench run or graphdl train")
        for seed in seeds or []:
            if seed in seen:
                where = f"twice in {name}" if seen[seed] == name else f"in {seen[seed]} and in {name}"
                raise ConfigError(f"seed {seed} of {case} (same configuration) is {where}; pass each seed once")
            seen[seed] = name


def _numbers(group: list[dict[str, Any]], key: str) -> list[float] | None:
    """Every record's ``key``, or None when one lacks it (then the pooled record has no such figure)."""
    values = [r.get(key) for r in group]
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    return [float(v) for v in values] if ok else None


def _pool(group: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    _check_seeds(group, names)  # a lone record too: seeds [0, 0] would count one run as two
    if len(group) == 1:  # nothing to pool: the record as it was written
        return dict(group[0])
    if not all(isinstance(r.get("runs"), list) and r["runs"] and len(r.get("seeds") or []) == len(r["runs"])
               for r in group):
        raise ConfigError(f"records of {group[0]['dataset']}/{group[0]['model']} without one seed per run cannot be "
                          f"merged; pass files written by graphdl bench run or graphdl train")
    order = np.argsort([s for r in group for s in r["seeds"]], kind="stable")
    merged = dict(group[0])
    for key in _PER_SEED:
        if all(isinstance(r.get(key), list) and len(r[key]) == len(r["runs"]) for r in group):
            values = [v for r in group for v in r[key]]
            merged[key] = [values[i] for i in order]
        else:  # a piece without it: the first piece's values would pass for the pool's
            merged.pop(key, None)
    curves = [r.get("curves") if isinstance(r.get("curves"), dict) else None for r in group]
    if all(curves):  # the curves every piece has, one per seed
        keys = [k for k in curves[0] if all(isinstance(c.get(k), list) and len(c[k]) == len(r["runs"])
                                            for c, r in zip(curves, group))]
        pooled = {k: [c for curve in curves for c in curve[k]] for k in keys}
        merged["curves"] = {k: [v[i] for i in order] for k, v in pooled.items()}
    else:
        merged.pop("curves", None)
    runs = np.asarray(merged["runs"], dtype=float)
    merged["mean"] = float(runs.mean())
    merged["std"] = float(runs.std(ddof=1)) if len(runs) > 1 else None
    if "valid_runs" in merged:
        merged["valid_mean"] = float(np.mean(merged["valid_runs"]))
    else:  # a piece without validation scores: the first piece's mean would pass for the pool's
        merged.pop("valid_mean", None)
    seconds = _numbers(group, "seconds")
    merged["seconds"] = round(sum(seconds), 2) if seconds is not None else None
    weights = [sum(r["epochs_run"]) if isinstance(r.get("epochs_run"), list) and r["epochs_run"]
               else (r.get("epochs") or 0) * len(r["runs"]) for r in group]
    for key in ("seconds_per_epoch", "train_seconds_per_epoch"):
        values = _numbers(group, key)  # a piece without timing: the pool has none (n/a), not the others'
        ok = values is not None and all(isinstance(w, (int, float)) and w > 0 for w in weights)
        merged[key] = round(float(np.average(values, weights=weights)), 4) if ok else None
    peaks = _numbers(group, "peak_rss_mb")
    merged["peak_rss_mb"] = max(peaks) if peaks is not None else None
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
