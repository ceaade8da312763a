#!/usr/bin/env bash
# deepstart's main job: check a built-in failing model at initialization, fix it, and write the reports.
# Creates ./.venv if missing and installs the pinned dependencies into it.
# Usage: bash scripts/demo.sh [OUTDIR]     (default: ./reports)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -c constraints.txt -e .
out="${1:-reports}"
mkdir -p "$out"
.venv/bin/deepstart check "mlp:depth=50,width=64,activation=relu,init=glorot" \
    --n-inits 8 --fix --html "$out/check.html" --json "$out/check.json" || status=$?
echo "reports written to $out/ (exit status ${status:-0}: 1 means the original model had findings)"
