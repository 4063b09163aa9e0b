"""graphdl's OGB molecule runs beside the official loop's runs on the same machine, seeds pooled.

Reads graphdl records (``graphdl.bench run ... --json``, several files per case
when the seeds were split with ``--first-seed``; a seed found twice must agree; of a file with several
records, a suite's, those of the case, which must share one configuration) and official-loop runs
(``benchmarks/bench_ogb_reference_runs.py --json``), and writes one table, mean ± std over all seeds of
each side and a p-value for "the two sides differ", with these rows per case (both cases are ROC-AUC,
higher is better):

- test at the best validation epoch, beside the official script's ANCHORS.md figure (Welch's t-test);
- how many seeds reach that figure (Fisher's exact test);
- the best validation score, beside the script's;
- test averaged over epochs ``FROM..100`` (``--from-epoch``, default 21), over the seeds whose curves
  were kept: whether the models learn equally well apart from which epoch the small validation set
  happens to select;
- that selected epoch (0-based);
- the Pearson correlation, within a seed, of the validation and test curves over the same epochs: near
  zero, choosing the epoch by validation is close to choosing it at random.

    python benchmarks/compare_ogb_runs.py --md benchmarks/results/ogb_compare.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass, field
from typing import NamedTuple
from pathlib import Path

from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphdl.bench.references import reference_for  # noqa: E402
from graphdl.io import atomic_write_text  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CASES = {  # case -> (graphdl record files, official-loop files), glob patterns under results/
    # "gcn.json" and "gcn_*.json", not "gcn*.json", which would take in gcn-virtual's files too
    "ogbg-molbbbp/gcn": (("ogb_molbbbp_gcn.json", "ogb_molbbbp_gcn_*.json"),
                         ("ogb_reference_molbbbp_gcn.json", "ogb_reference_molbbbp_gcn_*.json")),
    "ogbg-molbace/gin-virtual": (("ogb_molbace_gin-virtual.json", "ogb_molbace_gin-virtual_*.json"),
                                 "ogb_reference_molbace_gin-virtual_*.json"),
}

#: The official script's validation score at its best epoch, ANCHORS.md's "valid mean" column
#: (over the same runs as its test figure in ``graphdl.bench.references``).
SCRIPT_VALID = {"ogbg-molbbbp/gcn": 0.9429, "ogbg-molbace/gin-virtual": 0.8205}


def _files(pattern: str | tuple[str, ...]) -> list[Path]:
    patterns = (pattern,) if isinstance(pattern, str) else pattern
    files = sorted({path for p in patterns for path in RESULTS.glob(p)})
    if not files:
        raise SystemExit(f"no result files match {' or '.join(str(RESULTS / p) for p in patterns)}")
    return files


class Source(NamedTuple):
    """One pooled results file: its name, the seeds it holds, the command and note it recorded."""

    file: str
    seeds: list[int]
    command: str
    note: str = ""


@dataclass
class Side:
    """Per-seed figures of one side: test and validation at the best validation epoch, test averaged
    over epochs and the val-test correlation (seeds with curves only), and the selected epoch."""

    runs: dict[int, float] = field(default_factory=dict)
    valid: dict[int, float] = field(default_factory=dict)
    averaged: dict[int, float] = field(default_factory=dict)
    correlations: dict[int, float] = field(default_factory=dict)
    best_epochs: dict[int, int] = field(default_factory=dict)
    sources: list[Source] = field(default_factory=list)


def _add(runs: dict[int, float], seed: int, value: float, source: Path) -> None:
    if seed in runs and runs[seed] != value:
        raise SystemExit(f"seed {seed} has two different results ({runs[seed]} and {value}, the second in {source})")
    runs[seed] = value


def _curve_mean(curve: list[float] | None, from_epoch: int) -> float | None:
    """Mean of a per-epoch test curve from epoch ``from_epoch`` (1-based) on; ``None`` without a curve."""
    return statistics.mean(curve[from_epoch - 1:]) if curve else None


def _curve_correlation(val: list[float] | None, test: list[float] | None, from_epoch: int) -> float | None:
    """Pearson r of the validation and test curves from epoch ``from_epoch`` (1-based) on; ``None``
    without both curves."""
    if not val or not test:
        return None
    return statistics.correlation(val[from_epoch - 1:], test[from_epoch - 1:])


def _case_records(path: Path, saved: dict, case: str | None) -> list[dict]:
    """The finished records of ``case`` (``dataset/model``) in one results file; without ``case``, the file's
    one record. A file of several records (a suite's) gives those of the case; one with none is refused."""
    records = saved["records"] if "records" in saved else [saved]
    if case is None:
        if len(records) != 1:
            raise SystemExit(f"{path} holds {len(records)} records; name the case (dataset/model) to take")
        return records
    found = [r for r in records if f"{r.get('dataset')}/{r.get('model')}" == case and r.get("status", "ok") == "ok"]
    if not found:
        held = ", ".join(f"{r.get('dataset')}/{r.get('model')} ({r.get('status', 'ok')})" for r in records)
        raise SystemExit(f"{path} holds no finished {case} record (it holds {held or 'none'}); move it out of "
                         f"{RESULTS} or rename it so that the case's patterns do not match it")
    return found


def _ours(pattern: str | tuple[str, ...], from_epoch: int, case: str | None = None) -> Side:
    """The per-seed figures of graphdl bench records (those of ``case`` in each file); records of the case
    whose configurations differ are refused: their seeds would pool two different runs."""
    side = Side()
    config: tuple[Path, object] | None = None  # the first record's file and configuration
    for path in _files(pattern):
        saved = json.loads(path.read_text())
        records = _case_records(path, saved, case)
        side.sources.append(Source(path.name, [s for r in records for s in r["seeds"]], saved.get("command", ""),
                                   saved.get("note", "")))
        for record in records:
            if config is None:
                config = (path, record.get("config"))
            elif record.get("config") != config[1]:
                raise SystemExit(f"{case or 'the'} records of {config[0]} and {path} have different configurations "
                                 f"({config[1]} and {record.get('config')}); pool only runs of one configuration")
            curves = record.get("curves", {})
            missing = [None] * len(record["seeds"])
            for seed, value, valid, epoch, val, test in zip(
                    record["seeds"], record["runs"], record.get("valid_runs") or missing, record["best_epochs"],
                    curves.get("val") or missing, curves.get("test") or missing):
                _add(side.runs, seed, value, path)
                if valid is not None:
                    _add(side.valid, seed, valid, path)
                _add(side.best_epochs, seed, epoch, path)
                if (mean := _curve_mean(test, from_epoch)) is not None:
                    _add(side.averaged, seed, mean, path)
                if (r := _curve_correlation(val, test, from_epoch)) is not None:
                    _add(side.correlations, seed, r, path)
    return side


def _official(pattern: str | tuple[str, ...], from_epoch: int, case: str | None = None) -> Side:
    """The same figures from official-loop files (older files kept no curves); a file of another case is
    refused."""
    side = Side()
    for path in _files(pattern):
        saved = json.loads(path.read_text())
        if case is not None and saved.get("case", case) != case:
            raise SystemExit(f"{path} holds official-loop runs of {saved['case']}, not {case}; move it out of "
                             f"{RESULTS} or rename it so that the case's patterns do not match it")
        side.sources.append(Source(path.name, [r["seed"] for r in saved["runs"]], saved.get("command", ""),
                                   saved.get("note", "")))
        for r in saved["runs"]:
            _add(side.runs, r["seed"], r["test"], path)
            _add(side.valid, r["seed"], r["valid"], path)
            _add(side.best_epochs, r["seed"], r["best_epoch"], path)
            if (mean := _curve_mean(r.get("test_curve"), from_epoch)) is not None:
                _add(side.averaged, r["seed"], mean, path)
            if (corr := _curve_correlation(r.get("valid_curve"), r.get("test_curve"), from_epoch)) is not None:
                _add(side.correlations, r["seed"], corr, path)
    return side


def _seed_ranges(seeds: list[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2, 5, 7-8"``."""
    spans: list[list[int]] = []  # [first, last] of each run of consecutive seeds
    for seed in sorted(seeds):
        if spans and seed == spans[-1][1] + 1:
            spans[-1][1] = seed
        else:
            spans.append([seed, seed])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _sources(case: str, ours: Side, official: Side) -> list[str]:
    """Markdown lines naming each pooled file, its seeds and the command (and note) it recorded."""
    lines = [f"- {case}:"]
    for side_name, side in (("graphdl", ours), ("official loop", official)):
        for source in sorted(side.sources, key=lambda source: min(source.seeds, default=-1)):
            recorded = f": `{source.command}`" if source.command else " (no command recorded)"
            label = "seed" if len(source.seeds) == 1 else "seeds"
            note = f" ({source.note})" if source.note else ""
            lines.append(f"  - {side_name}, {label} {_seed_ranges(source.seeds)}, `{source.file}`{recorded}{note}")
    return lines


def _text(values: list[float], digits: int = 4) -> str:
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f} ({len(values)} seeds)"


def _welch_row(case: str, label: str, a: dict[int, float], b: dict[int, float], script: str,
               digits: int) -> list[str]:
    """One row comparing the two sides' means (Welch's t-test); none while a side has fewer than two seeds."""
    if len(a) < 2 or len(b) < 2:
        return []
    p = stats.ttest_ind(list(a.values()), list(b.values()), equal_var=False).pvalue
    return [f"| {case} | {label} | {_text(list(a.values()), digits)} | {_text(list(b.values()), digits)} | "
            f"{script} | {p:.2f} (Welch) |"]


def _reaching(runs: dict[int, float], target: float) -> tuple[int, int]:
    """(seeds at or above ``target``, seeds below it)."""
    reached = sum(value >= target for value in runs.values())
    return reached, len(runs) - reached


def _reaching_row(case: str, ours: dict[int, float], official: dict[int, float], target: float) -> list[str]:
    """One row counting each side's seeds at or above ``target`` (Fisher's exact test); none without seeds."""
    if not ours or not official:
        return []
    counts = _reaching(ours, target), _reaching(official, target)
    cells = [f"{k} of {k + n} ({k / (k + n):.0%})" for k, n in counts]
    return [f"| {case} | seeds at or above {target:.4f} | {cells[0]} | {cells[1]} | - | "
            f"{stats.fisher_exact(counts).pvalue:.2f} (Fisher) |"]


def _rows(case: str, ours: Side, official: Side, from_epoch: int) -> list[str]:
    """The table rows of one case; a row is left out while a side has too few seeds for it."""
    ref = reference_for(*case.split("/"))
    runs = f"({ref.runs} run{'s' if ref.runs != 1 else ''})"
    lines = _welch_row(case, "test at the best validation epoch", ours.runs, official.runs,
                       f"{ref.text()} {runs}", 4)
    lines += _reaching_row(case, ours.runs, official.runs, ref.value)
    lines += _welch_row(case, "best validation score", ours.valid, official.valid,
                        f"{SCRIPT_VALID[case]:.4f} {runs}", 4)
    lines += _welch_row(case, f"test, mean over epochs {from_epoch}-100", ours.averaged, official.averaged, "-", 4)
    lines += _welch_row(case, "best validation epoch (0-based)", ours.best_epochs, official.best_epochs, "-", 1)
    lines += _welch_row(case, f"val-test correlation within a seed, epochs {from_epoch}-100", ours.correlations,
                        official.correlations, "-", 2)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--md", default=None)
    parser.add_argument("--from-epoch", type=int, default=21,
                        help="first epoch (1-based) of the averaged test curve and the val-test correlation")
    args = parser.parse_args()
    lines = ["| case (100 epochs) | figure | graphdl | official loop, same machine | "
             "official script (ANCHORS.md) | p |", "|---|---|---|---|---|---|"]
    sources: list[str] = []
    for case, (ours_files, official_files) in CASES.items():
        ours = _ours(ours_files, args.from_epoch, case)
        official = _official(official_files, args.from_epoch, case)
        sources += _sources(case, ours, official)
        print(f"{case}: graphdl seeds {sorted(ours.runs)}, official-loop seeds {sorted(official.runs)}; "
              f"with curves: {sorted(ours.averaged)} and {sorted(official.averaged)}", file=sys.stderr)
        lines += _rows(case, ours, official, args.from_epoch)
    table = "\n".join(lines)
    print(table)
    if args.md:
        atomic_write_text(args.md, f"Command: `python benchmarks/compare_ogb_runs.py --md {args.md}`. graphdl: "
                          f"`python -m graphdl.bench run DATASET MODEL` (seeds as listed in its JSON files); "
                          f"official loop: `benchmarks/bench_ogb_reference_runs.py` (the official model and "
                          f"train/eval loop re-implemented, OGB's encoders and Evaluator); both one thread on "
                          f"this 2-core machine.\n\n{table}\n\nFiles pooled (under benchmarks/results/), with the "
                          f"commands they recorded (paths as on the machine that ran them):\n\n"
                          + "\n".join(sources) + "\n")


if __name__ == "__main__":
    main()
