#!/usr/bin/env bash
# Runs deepstart's test suite. Creates ./.venv if missing and installs the pinned dependencies into it.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -c constraints.txt -e ".[test,ray]"
# Real data for the tests: ../shared/data beside the checkout unless the caller points elsewhere.
export DEEPSTART_DATA="${DEEPSTART_DATA:-$(cd .. && pwd)/shared/data}"
export PYTHONHASHSEED=0
exec .venv/bin/python -m pytest -n 2 --dist loadfile "$@"
