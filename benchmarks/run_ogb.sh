#!/usr/bin/env bash
# OGB benchmarks, one heavy run at a time, in priority order; logs and JSON in benchmarks/results/.
#
#   benchmarks/run_ogb.sh                              # the four molecule runs below, 3 seeds x 100 epochs
#   benchmarks/run_ogb.sh ogbg-molesol/gin-virtual     # chosen steps only
#   SEEDS=10 EPOCHS=200 benchmarks/run_ogb.sh ogbl-ddi/sage ogbl-ddi/gcn   # the full ddi leaderboard protocol
#
# Environment: ROOT (data root, default ../shared/data), SEEDS, EPOCHS (default: the configuration's),
# EVAL_TRAIN=1 to also score the training split every epoch as the official mol script does (the
# reported test-at-best-validation is the same either way; it only costs time), OMP_NUM_THREADS
# (default 1: on a shared 2-core machine under load, 2 OpenMP threads ran 10x slower).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${ROOT:-../shared/data}
SEEDS=${SEEDS:-3}
EPOCHS=${EPOCHS:-}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export PYTHONUNBUFFERED=1
PY=${PYTHON:-.venv/bin/python}
OUT=benchmarks/results
mkdir -p "$OUT"
steps=("$@")
if [ ${#steps[@]} -eq 0 ]; then
  steps=(ogbg-molbbbp/gcn ogbg-molbbbp/gin-virtual ogbg-molesol/gin-virtual ogbg-molbace/gin-virtual)
fi
for step in "${steps[@]}"; do
  dataset=${step%%/*}
  model=${step##*/}
  tag="ogb_${dataset#ogb?-}_${model}"
  extra=()
  if [ "${EVAL_TRAIN:-0}" != "1" ] && [ "${dataset#ogbg}" != "$dataset" ]; then
    extra=(--set 'eval_splits=["val","test"]')
  fi
  echo "=== $(date '+%F %T') $step seeds=$SEEDS epochs=${EPOCHS:-default} threads=$OMP_NUM_THREADS" | tee "$OUT/$tag.log"
  "$PY" -m graphdl.bench run "$dataset" "$model" --seeds "$SEEDS" ${EPOCHS:+--epochs "$EPOCHS"} \
    --root "$ROOT" --json "$OUT/$tag.json" "${extra[@]}" 2>&1 | grep --line-buffered -v 'it/s' | tee -a "$OUT/$tag.log"
done
"$PY" -m graphdl.bench report "$OUT"/ogb_mol*_*.json --md "$OUT/ogb_mol.md" --png "$OUT/ogb_mol.png" \
  > /dev/null 2>&1 || true
