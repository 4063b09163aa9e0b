#!/usr/bin/env bash
# The ogbl-ddi leaderboard protocol (GraphSAGE and GCN, 10 seeds x 200 epochs each), one process per
# (model, seed), JOBS of them at a time: on one GPU the small kernels of ddi leave the card mostly
# idle, so several processes share it. One JSON record and one per-epoch CSV per seed in OUTDIR;
# merge them with `python benchmarks/summarize_ddi_seeds.py OUTDIR/ogb_ddi_*_seed*.json`.
#
#   JOBS=10 ROOT=../shared/data OUTDIR=runs/ddi benchmarks/run_ddi_parallel.sh
#   SEEDS="1 2" MODELS="sage" DEADLINE=3600 benchmarks/run_ddi_parallel.sh   # a subset, stop after an hour
#
# Environment: ROOT (data root, default ../shared/data), OUTDIR (default runs/ddi), JOBS (default 1),
# MODELS (default "sage gcn"), SEEDS (default 0..9), EPOCHS (default 200), PYTHON (default python3),
# DEADLINE (seconds; seeds still running then are stopped, their CSV logs keep the epochs they ran).
# Seeds whose JSON already exists in OUTDIR are skipped, so a stopped run can be continued.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=${ROOT:-../shared/data}
OUTDIR=${OUTDIR:-runs/ddi}
JOBS=${JOBS:-1}
MODELS=${MODELS:-sage gcn}
SEEDS=${SEEDS:-0 1 2 3 4 5 6 7 8 9}
EPOCHS=${EPOCHS:-200}
PY=${PYTHON:-python3}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} PYTHONUNBUFFERED=1
mkdir -p "$OUTDIR"

# Process the dataset once, before the workers read it concurrently.
"$PY" -c "import sys, graphdl.datasets as d; d.load('ogbl-ddi', root=sys.argv[1])" "$ROOT" || exit 1

jobs=()
for seed in $SEEDS; do for model in $MODELS; do
  [ -f "$OUTDIR/ogb_ddi_${model}_seed${seed}.json" ] || jobs+=("$model $seed")
done; done
echo "$(date '+%F %T') ${#jobs[@]} runs, $JOBS at a time, epochs=$EPOCHS"

run_one() {  # model seed
  local tag="ogb_ddi_$1_seed$2"
  "$PY" -m graphdl.bench run ogbl-ddi "$1" --seeds 1 --first-seed "$2" --epochs "$EPOCHS" --root "$ROOT" \
    --json "$OUTDIR/$tag.json" --log "$OUTDIR/$tag.csv" > "$OUTDIR/$tag.log" 2>&1
  local rc=$?
  echo "$(date '+%F %T') $tag exit $rc: $(grep -E 'seed [0-9]+:' "$OUTDIR/$tag.log" | tail -1)"
  [ $rc -eq 0 ] || tail -5 "$OUTDIR/$tag.log"
}
export -f run_one
export PY ROOT OUTDIR EPOCHS

cmd=(xargs -P "$JOBS" -L 1 bash -c 'run_one "$0" "$1"')
if [ -n "${DEADLINE:-}" ]; then cmd=(timeout --signal=TERM "$DEADLINE" "${cmd[@]}"); fi
printf '%s\n' "${jobs[@]}" | "${cmd[@]}"
echo "$(date '+%F %T') done: $(ls "$OUTDIR"/ogb_ddi_*_seed*.json 2>/dev/null | wc -l) seed records in $OUTDIR"
