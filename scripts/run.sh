#!/usr/bin/env bash
# One entry point that does all setup on a fresh machine, then runs a job:
#   bash scripts/run.sh test    # the test suite (what CI runs)
#   bash scripts/run.sh quick   # the main job: `graphdl bench quick` on the local data mirror
# Setup: a virtual environment in .venv with the project installed in editable mode.
# constraints.txt pins torch to the local CPU wheel, so no CUDA build is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
job="${1:-test}"; shift || true

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
. .venv/bin/activate
stamp=.venv/.graphdl-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
    python -m pip install -q --upgrade pip
    python -m pip install -q -c constraints.txt -e ".[test]"
    touch "$stamp"
fi

# The read-only mirror of official dataset files that sits beside the repository.
if [ -z "${GRAPHDL_DATA:-}" ] && [ -d ../shared/data ]; then
    export GRAPHDL_DATA="$(cd ../shared/data && pwd)"
fi

case "$job" in
    # One thread per test process: two xdist workers on two cores, and OpenMP threads
    # oversubscribing them make small-graph kernels orders of magnitude slower.
    test)  OMP_NUM_THREADS=1 exec python -m pytest -q -n 2 "$@" ;;
    quick) exec graphdl bench quick --json runs/quick.json --plot runs/quick.png "$@" ;;
    *)     echo "usage: bash scripts/run.sh test|quick [extra args]" >&2; exit 2 ;;
esac
