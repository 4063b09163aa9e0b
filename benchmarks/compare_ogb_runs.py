"""graphdl's OGB molecule runs beside the official loop's runs on the same machine, seeds pooled.

Reads graphdl records (``graphdl.bench run ... --json``, several files per case
when the seeds were split with ``--first-seed``; a seed found twice must agree) and official-loop runs
(``benchmarks/bench_ogb_reference_runs.py --json``), and writes one table:
mean ± std over all seeds of each side, the official script's ANCHORS.md
figure, and Welch's t-test p-value for "the two means differ".

    python benchmarks/compare_ogb_runs.py --md benchmarks/results/ogb_compare.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphdl.bench.references import reference_for  # noqa: E402
from graphdl.io import atomic_write  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CASES = {  # case -> (graphdl record files, official-loop files), glob patterns under results/
    "ogbg-molbbbp/gcn": ("ogb_molbbbp_gcn.json", "ogb_reference_molbbbp_gcn.json"),
    "ogbg-molbace/gin-virtual": ("ogb_molbace_gin-virtual*.json", "ogb_reference_molbace_gin-virtual_*.json"),
}


def _files(pattern: str) -> list[Path]:
    files = sorted(RESULTS.glob(pattern))
    if not files:
        raise SystemExit(f"no result files match {RESULTS / pattern}")
    return files


def _add(runs: dict[int, float], seed: int, value: float, source: Path) -> None:
    if seed in runs and runs[seed] != value:
        raise SystemExit(f"seed {seed} has two different results ({runs[seed]} and {value}, the second in {source})")
    runs[seed] = value


def _ours(pattern: str) -> dict[int, float]:
    runs: dict[int, float] = {}
    for path in _files(pattern):
        record = json.loads(path.read_text())["records"][0]
        for seed, value in zip(record["seeds"], record["runs"]):
            _add(runs, seed, value, path)
    return runs


def _official(pattern: str) -> dict[int, float]:
    runs: dict[int, float] = {}
    for path in _files(pattern):
        for r in json.loads(path.read_text())["runs"]:
            _add(runs, r["seed"], r["test"], path)
    return runs


def _text(values: list[float]) -> str:
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f} ({len(values)} seeds)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--md", default=None)
    args = parser.parse_args()
    lines = ["| case (100 epochs, test at best validation) | graphdl | official loop, same machine | "
             "official script (ANCHORS.md) | Welch p |", "|---|---|---|---|---|"]
    for case, (ours_files, official_files) in CASES.items():
        ours, official = _ours(ours_files), _official(official_files)
        print(f"{case}: graphdl seeds {sorted(ours)}, official-loop seeds {sorted(official)}", file=sys.stderr)
        p = stats.ttest_ind(list(ours.values()), list(official.values()), equal_var=False).pvalue
        ref = reference_for(*case.split("/"))
        lines.append(f"| {case} | {_text(list(ours.values()))} | {_text(list(official.values()))} | "
                     f"{ref.text()} ({ref.runs} run{'s' if ref.runs != 1 else ''}) | {p:.2f} |")
    table = "\n".join(lines)
    print(table)
    if args.md:
        with atomic_write(args.md) as handle:
            handle.write(f"Command: `python benchmarks/compare_ogb_runs.py --md {args.md}`. graphdl: "
                         f"`python -m graphdl.bench run DATASET MODEL` (seeds as listed in its JSON files); "
                         f"official loop: `benchmarks/bench_ogb_reference_runs.py` (the official model and "
                         f"train/eval loop re-implemented, OGB's encoders and Evaluator); both one thread on "
                         f"this 2-core machine.\n\n{table}\n")


if __name__ == "__main__":
    main()
