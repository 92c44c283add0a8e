#!/usr/bin/env bash
# The GPU measurements of docs/RESULTS.md in one run: at most 8 minutes on one GPU (benchmarks/gpu_check.py says
# what it measures). Run it first whenever a GPU is lent:
#   bash benchmarks/gpu_check.sh --out /tmp/gpu-check     # appends to docs/RESULTS.md, keeps the raw figures
#   bash benchmarks/gpu_check.sh --dry-run                # CPU, toy sizes: checks the script itself in seconds
set -euo pipefail
cd "$(dirname "$0")/.."
export YOLO_OFFLINE="${YOLO_OFFLINE:-1}"
exec python benchmarks/gpu_check.py "$@"
