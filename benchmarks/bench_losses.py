"""Metric-learning losses: graphdl vs pytorch-metric-learning, side by side.

For every loss and batch size (512, 1024, 4096; 128-dimensional float32
embeddings, labels drawn from 100 classes, one fixed seed) this measures

* forward + backward time of ours and theirs, interleaved in one process on
  the same inputs (best of N repetitions, one CPU thread each);
* peak memory of one forward + backward, each implementation in a fresh
  subprocess: the growth of the peak resident set size (``ru_maxrss``) from
  just before the call to just after it;
* whether both give the same value (relative difference <= 1e-4 in float32).

pytorch-metric-learning cases whose memory, estimated from the tensor sizes its
code allocates, exceeds ``--max-gb`` (default 3.5) are not run; the table says
how much they would need. Every subprocess also runs under an address-space
limit so a wrong estimate fails the case instead of the machine.

Usage::

    python benchmarks/bench_losses.py                  # full table -> benchmarks/results/losses.md
    python benchmarks/bench_losses.py --batches 512 --only supcon ntxent --out /tmp/t.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIM, CLASSES, SEED = 128, 100, 0
BATCHES = (512, 1024, 4096)
GB = 1024 ** 3

# name -> (graphdl loss spec, pytorch-metric-learning spec); specs are evaluated in the worker
CASES: dict[str, tuple[str, str]] = {
    "contrastive": ("L.create('contrastive')", "P.ContrastiveLoss()"),
    "triplet (all)": ("L.create('triplet')", "P.TripletMarginLoss()"),
    "triplet (hard)": ("L.create('triplet', mining='hard')", "P.TripletMarginLoss() + M.BatchHardMiner()"),
    "triplet (semihard)": ("L.create('triplet', mining='semihard', margin=0.2)",
                           "P.TripletMarginLoss(margin=0.2) + M.TripletMarginMiner(margin=0.2, "
                           "type_of_triplets='semihard')"),
    "ntxent": ("L.create('ntxent')", "P.NTXentLoss()"),
    "supcon": ("L.create('supcon')", "P.SupConLoss()"),
    "multi_similarity": ("L.create('multi_similarity')", "P.MultiSimilarityLoss()"),
    "lifted_structure": ("L.create('lifted_structure')", "P.LiftedStructureLoss()"),
    "arcface": (f"L.create('arcface', num_classes={CLASSES}, embedding_size={DIM})",
                f"P.ArcFaceLoss(num_classes={CLASSES}, embedding_size={DIM})"),
}


# ------------------------------------------------------------------ estimates
def _pair_counts(batch: int) -> tuple[int, int, int]:
    """(positive pairs, negative pairs, all triplets) of the benchmark labels."""
    import torch

    labels = _labels(batch)
    counts = torch.bincount(labels, minlength=CLASSES).double()
    pos = float((counts * (counts - 1)).sum())
    neg = float((counts * (batch - counts)).sum())
    trip = float((counts * (counts - 1) * (batch - counts)).sum())
    return int(pos), int(neg), int(trip)


def theirs_bytes(name: str, batch: int) -> float:
    """Peak bytes pytorch-metric-learning allocates for one forward + backward (estimate).

    From its code: NTXent and LiftedStructure build float (positives x
    negatives) matrices (about 5 float32 and 2 bool copies); the all-triplet
    loss and the semi-hard miner enumerate every triplet (a uint8 B^3 tensor
    below B = 1291, then int64 indices and float32 distances per triplet);
    the others are O(B^2).
    """
    pos, neg, trip = _pair_counts(batch)
    b2 = batch * batch
    quadratic = b2 * 4 * 12 + (pos + neg) * 8 * 4
    if name == "ntxent":
        return pos * neg * 20 + quadratic
    if name == "lifted_structure":
        return pos * neg * 25 + quadratic
    if name in ("triplet (all)", "triplet (semihard)"):
        cube = batch ** 3 if batch ** 3 < 2 ** 31 - 1 else 0
        return cube * 2 + trip * (3 * 8 * 2 + 4 * 6) + quadratic
    return quadratic


# -------------------------------------------------------------------- worker
def _labels(batch: int):
    import torch

    g = torch.Generator().manual_seed(SEED + batch)
    return torch.randint(0, CLASSES, (batch,), generator=g)


def _embeddings(batch: int):
    import torch

    g = torch.Generator().manual_seed(SEED + 10_000 + batch)
    return torch.randn(batch, DIM, generator=g)


def _limit_address_space(extra_gb: float) -> None:
    with open("/proc/self/status") as fh:
        vm = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
    limit = int(vm + extra_gb * GB)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _build(impl: str, name: str):
    import graphdl.losses as L
    import torch
    from pytorch_metric_learning import losses as P
    from pytorch_metric_learning import miners as M

    spec = CASES[name][0 if impl == "ours" else 1]
    torch.manual_seed(SEED)  # ArcFace centres: the same initial weights for every build
    if impl == "ours":
        loss = eval(spec, {"L": L})
        return loss, (lambda e, y: loss(e, y))
    loss_spec, _, miner_spec = spec.partition(" + ")
    loss = eval(loss_spec, {"P": P})
    miner = eval(miner_spec, {"M": M}) if miner_spec else None
    if name == "arcface":  # same class centres as ours, for the same value
        ours, _ = _build("ours", name)
        with torch.no_grad():
            loss.W.copy_(ours.weight.t())

    def call(e, y):
        return loss(e, y, miner(e, y)) if miner is not None else loss(e, y)
    return loss, call


def _run_once(call, emb, labels) -> float:
    e = emb.clone().requires_grad_()
    value = call(e, labels)
    value.backward()
    return float(value)


def worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    emb, labels = _embeddings(args.batch), _labels(args.batch)
    impls = args.impls.split(",")
    _limit_address_space(args.max_gb + 1.0)
    built = {impl: _build(impl, args.name) for impl in impls}
    out: dict = {}
    try:
        if args.mode == "mem":
            (impl,) = impls
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            value = _run_once(built[impl][1], emb, labels)
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            out = {"value": value, "peak_mb": (after - before) / 1024}
        else:
            times: dict[str, list[float]] = {i: [] for i in impls}
            values = {i: _run_once(built[i][1], emb, labels) for i in impls}  # warm-up + values
            start = time.perf_counter()
            while True:
                for impl in impls:  # interleaved: load spikes hit both
                    t0 = time.perf_counter()
                    _run_once(built[impl][1], emb, labels)
                    times[impl].append(time.perf_counter() - t0)
                n = len(times[impls[0]])
                if n >= args.reps or (n >= 3 and time.perf_counter() - start > args.budget_s):
                    break
            out = {i: {"value": values[i], "ms": 1000 * min(times[i]), "reps": len(times[i])} for i in impls}
    except (MemoryError, RuntimeError) as exc:
        out = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"}
    print("RESULT " + json.dumps(out))


def _spawn(mode: str, name: str, batch: int, impls: list[str], args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--mode", mode, "--name", name, "--batch", str(batch),
           "--impls", ",".join(impls), "--max-gb", str(args.max_gb), "--reps", str(args.reps),
           "--budget-s", str(args.budget_s)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"})
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
    return {"error": f"worker failed: {tail[0][:160]}"}


# ---------------------------------------------------------------------- main
def _fmt_ms(x: float | None) -> str:
    return "-" if x is None else (f"{x:.1f}" if x < 100 else f"{x:.0f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    p.add_argument("--only", nargs="+", default=None, help="loss names (keys of CASES) to run")
    p.add_argument("--max-gb", type=float, default=3.5, help="skip theirs above this estimated memory")
    p.add_argument("--reps", type=int, default=10, help="at most this many timed repetitions")
    p.add_argument("--budget-s", type=float, default=6.0, help="stop repeating (after 3) past this time")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "losses.md")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="time", help=argparse.SUPPRESS)
    p.add_argument("--name", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    p.add_argument("--impls", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return 0

    names = args.only or list(CASES)
    unknown = [name for name in names if name not in CASES]
    if unknown:  # the workers would each fail on it, after the other cases' runs
        p.error(f"--only: unknown loss(es) {', '.join(map(repr, unknown))}; choose among "
                f"{', '.join(map(repr, CASES))} (quote names with spaces)")
    argv = sys.argv[1:] if argv is None else argv
    command = " ".join(["python benchmarks/bench_losses.py", *map(shlex.quote, argv)])
    rows, failures = [], []
    t_start = time.time()
    for name in names:
        for batch in args.batches:
            need = theirs_bytes(name, batch)
            run_theirs = need <= args.max_gb * GB
            impls = ["ours", "theirs"] if run_theirs else ["ours"]
            timing = _spawn("time", name, batch, impls, args)
            mem = {impl: _spawn("mem", name, batch, [impl], args) for impl in impls}
            ours_t = timing.get("ours", {})
            theirs_t = timing.get("theirs", {})
            row = {
                "loss": name, "batch": batch,
                "ours_ms": ours_t.get("ms"), "theirs_ms": theirs_t.get("ms"),
                "ours_mb": mem["ours"].get("peak_mb"), "theirs_mb": mem.get("theirs", {}).get("peak_mb"),
                "ours_value": ours_t.get("value"), "theirs_value": theirs_t.get("value"),
                "theirs_note": None if run_theirs else f"not run (needs ~{need / GB:.0f} GB)",
                "error": timing.get("error") or mem["ours"].get("error") or mem.get("theirs", {}).get("error"),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            if row["error"]:
                failures.append(f"{name} @ {batch}: {row['error']}")

    lines = [
        "# Metric-learning losses: graphdl vs pytorch-metric-learning",
        "",
        f"Forward + backward on {DIM}-dimensional float32 embeddings, labels from {CLASSES} classes. "
        "Time: best of N interleaved repetitions in one process, one CPU thread "
        f"({platform.processor() or platform.machine()}, shared machine). Peak memory: growth of the "
        "peak resident set size (`ru_maxrss`) over one forward + backward, each implementation in a "
        "fresh subprocess. pytorch-metric-learning cases whose estimated memory (from the tensor sizes "
        f"its code allocates) exceeds {args.max_gb:g} GB are not run. Values equal: relative difference "
        "<= 1e-4.",
        "",
        f"Command: `{command}` (pytorch-metric-learning "
        f"{_version('pytorch_metric_learning')}, torch {_version('torch')}).",
        "",
        "| loss | batch | ours ms | theirs ms | ratio | ours peak MB | theirs peak MB | values equal? |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        if r["theirs_note"]:
            theirs_ms, ratio, theirs_mb, equal = r["theirs_note"], "-", "-", "-"
        else:
            theirs_ms = _fmt_ms(r["theirs_ms"])
            ratio = (f"{r['ours_ms'] / r['theirs_ms']:.2f}" if r["ours_ms"] and r["theirs_ms"] else "-")
            theirs_mb = "-" if r["theirs_mb"] is None else f"{r['theirs_mb']:.0f}"
            if r["ours_value"] is not None and r["theirs_value"] is not None:
                rel = abs(r["ours_value"] - r["theirs_value"]) / max(abs(r["theirs_value"]), 1e-12)
                equal = f"{'yes' if rel <= 1e-4 else 'NO'} ({rel:.0e})"
            else:
                equal = "-"
        ours_mb = "-" if r["ours_mb"] is None else f"{r['ours_mb']:.0f}"
        note = f" **{r['error']}**" if r["error"] else ""
        lines.append(f"| {r['loss']} | {r['batch']} | {_fmt_ms(r['ours_ms'])} | {theirs_ms} | {ratio} | "
                     f"{ours_mb} | {theirs_mb} | {equal}{note} |")
    lines += ["", f"Total run time: {time.time() - t_start:.0f} s.", ""]

    sys.path.insert(0, str(ROOT))
    from graphdl.io import atomic_write_text

    atomic_write_text(args.out, "\n".join(lines))
    print("\n".join(lines))
    if failures:
        print("FAILED CASES:\n" + "\n".join(failures), file=sys.stderr)
    return 1 if failures else 0


def _version(module: str) -> str:
    from importlib import metadata

    name = {"pytorch_metric_learning": "pytorch-metric-learning"}.get(module, module)
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    raise SystemExit(main())
