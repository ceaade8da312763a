#!/usr/bin/env bash
# Every CUDA path of deepstart, tested and timed on one GPU, in under 5 minutes (H100 or H200; docs/gpu.md).
#
#   bash benchmarks/gpu.sh                 # from anywhere; runs in the repository root
#   OUT=out bash benchmarks/gpu.sh > out/gpu.jsonl   # out/ is git-ignored
#
# 1. `nvidia-smi -L`, then a Python check that torch sees a CUDA GPU: without one it exits 2 with a message saying
#    what is missing (no GPU, or a CPU build of torch in .venv).
# 2. Uses .venv as it is when it exists (installs nothing); otherwise creates it:
#    python3 -m venv .venv && .venv/bin/pip install -q -c constraints.txt -e ".[test]"
# 3. Tests: `pytest -m cuda tests/` (tests/test_cuda_paths.py: check, fix_, Jacobian spectra, sampling, training,
#    sweeps and a tiny reproduction on the GPU, against the CPU or theory) and tests/diagnose/test_device.py.
# 4. Benchmarks with --device cuda, each under `timeout`: bench_jacobian_exact, bench_jacobian_lanczos,
#    bench_batched_training (MNIST when it is found, else the toy dataset), bench_check, bench_check_memory
#    (ResNet-56; GPT-2 only when transformers is installed) and bench_reproduce_signal. Not run here:
#    bench_phase_diagram.py and bench_free_probability_density.py are NumPy/SciPy theory (no torch, no device), and
#    bench_ray.py measures Ray's scheduling overhead on the CPU.
#
# stdout: one JSON line per step and nothing else (a benchmark's last JSON line, with "device"; for the tests
# {"name": "tests_...", "rc", "summary"}; a step that failed, timed out or found the budget spent prints
# {"name", "device", "error", "rc"}). Everything else goes to ${OUT:-/tmp}/gpu-bench.log, progress to stderr.
# Exit status: 0 when every step passed, 1 when one failed, 2 when there is no usable GPU.
# The steps share a budget of GPU_SH_BUDGET_S seconds (default 290, counted after the venv is ready): each runs
# under the smaller of its own cap and what is left, so the whole stays under 5 minutes.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT_DIR="${OUT:-/tmp}"
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/gpu-bench.log"
: > "$LOG"
say() { echo "gpu.sh: $*" >&2; }

# --- 1. a GPU? ------------------------------------------------------------------------------------------------
if ! command -v nvidia-smi > /dev/null 2>&1; then
    say "no CUDA GPU: nvidia-smi is not installed on this machine (no NVIDIA driver). Run this script on a machine" \
        "with an NVIDIA GPU; the CPU paths are covered by the default test suite (pytest)."
    exit 2
fi
if ! nvidia-smi -L >&2; then
    say "no CUDA GPU: 'nvidia-smi -L' failed (driver not loaded or no GPU visible; check CUDA_VISIBLE_DEVICES)."
    exit 2
fi

# --- 2. the environment -----------------------------------------------------------------------------------------
if [[ ! -x .venv/bin/python ]]; then
    say "no .venv: creating it (python3 -m venv .venv; pip install -c constraints.txt -e .[test])"
    python3 -m venv .venv >> "$LOG" 2>&1
    .venv/bin/pip install -q -c constraints.txt -e ".[test]" >> "$LOG" 2>&1
fi
PY=.venv/bin/python
if ! "$PY" - >&2 <<'EOF'; then
import sys

import torch

if not torch.cuda.is_available():
    print(f"gpu.sh: no CUDA GPU for torch {torch.__version__} in .venv (its CUDA build: {torch.version.cuda}); "
          "a CPU build of torch cannot use the GPU: install a CUDA build into .venv (pip install -c constraints.txt "
          "torch from PyPI on Linux x86-64 is one) or remove .venv so that this script creates it", file=sys.stderr)
    sys.exit(2)
print(f"gpu.sh: torch {torch.__version__} (CUDA {torch.version.cuda}) on {torch.cuda.get_device_name(0)}")
EOF
    exit 2
fi

# --- helpers ----------------------------------------------------------------------------------------------------
BUDGET="${GPU_SH_BUDGET_S:-290}"
DEADLINE=$((SECONDS + BUDGET))
FAILED=0

failure_json() {  # name error rc
    "$PY" -c 'import json, sys; print(json.dumps({"name": sys.argv[1], "device": "cuda", "error": sys.argv[2],
                                                  "rc": int(sys.argv[3])}))' "$1" "$2" "$3"
}

# step KIND NAME CAP COMMAND...: run COMMAND under min(CAP, budget left); KIND "bench" prints its last JSON line,
# KIND "tests" a JSON line with pytest's summary.
step() {
    local kind=$1 name=$2 cap=$3 left rc tmp line summary
    shift 3
    left=$((DEADLINE - SECONDS))
    if ((left < 10)); then
        say "$name: skipped, the ${BUDGET} s budget is spent"
        failure_json "$name" "budget spent" -1
        FAILED=1
        return 0
    fi
    ((cap < left)) || cap=$left
    say "$name (at most ${cap} s)"
    echo "=== $name: $*" >> "$LOG"
    tmp=$(mktemp)
    if timeout -k 10 "$cap" "$@" > "$tmp" 2>&1; then rc=0; else rc=$?; fi
    cat "$tmp" >> "$LOG"
    if [[ $kind == tests ]]; then
        summary=$(grep -E '(passed|failed|skipped|error|no tests ran)' "$tmp" | tail -n 1 || true)
        "$PY" -c 'import json, sys; print(json.dumps({"name": sys.argv[1], "device": "cuda", "rc": int(sys.argv[2]),
                                                      "summary": sys.argv[3].strip("= ")}))' "$name" "$rc" "$summary"
        ((rc == 0)) || FAILED=1
    else
        line=$(grep '^{' "$tmp" | tail -n 1 || true)
        if ((rc == 0)) && [[ -n $line ]]; then
            echo "$line"
        else
            if ((rc == 124)); then failure_json "$name" "timeout after ${cap} s" "$rc"
            else failure_json "$name" "failed (see $LOG)" "$rc"; fi
            FAILED=1
        fi
    fi
    rm -f "$tmp"
}

# --- 3. tests ---------------------------------------------------------------------------------------------------
step tests tests_cuda 120 "$PY" -m pytest -m cuda tests/ -q -p no:cacheprovider
step tests tests_device 45 "$PY" -m pytest tests/diagnose/test_device.py -q -p no:cacheprovider

# --- 4. benchmarks ----------------------------------------------------------------------------------------------
if [[ -z ${DEEPSTART_DATA:-} ]]; then  # the shared data folder the test suite also looks in (tests/conftest.py)
    for d in ../shared/data shared/data; do
        if [[ -d $d/mnist ]]; then export DEEPSTART_DATA="$PWD/$d"; break; fi
    done
fi
if "$PY" -c 'from deepstart.experiments.trial import Trial, load_data
load_data(Trial(dataset="mnist", limit=128, test_limit=0))' >> "$LOG" 2>&1; then
    DATASET=mnist
else
    DATASET=toy
    say "MNIST not found (set DEEPSTART_DATA); bench_batched_training trains on the toy dataset"
fi
step bench jacobian_exact 40 "$PY" benchmarks/bench_jacobian_exact.py --device cuda
step bench jacobian_lanczos 70 "$PY" benchmarks/bench_jacobian_lanczos.py --device cuda
step bench batched_training 60 "$PY" benchmarks/bench_batched_training.py --device cuda --dataset "$DATASET" \
    --sequential-members 8
step bench check 90 "$PY" benchmarks/bench_check.py --device cuda --repeats 3
step bench check_memory_resnet56 60 "$PY" benchmarks/bench_check_memory.py --device cuda --models resnet56
if "$PY" -c 'import transformers' > /dev/null 2>&1; then
    step bench check_memory_gpt2 70 "$PY" benchmarks/bench_check_memory.py --device cuda --models gpt2
else
    say "transformers is not installed: bench_check_memory --models gpt2 skipped"
fi
step bench reproduce_signal 30 "$PY" benchmarks/bench_reproduce_signal.py --device cuda

say "done in ${SECONDS} s; log: $LOG"
exit "$FAILED"
