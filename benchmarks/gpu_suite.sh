#!/usr/bin/env bash
# The checks only a GPU can make, in one run of at most 8 minutes on one GPU (each step has a limit):
#   the gpu-marked tests; trials per GPU-hour against a textbook loop and Ray Tune (bench_gpu_throughput.py);
#   the trainer's fused arrays against one trial at a time (bench_fused_arrays.py). TUITUNE_GPU_SUITE=extended adds
#   the trainer's data path against DataLoader, memory after 50 trials, a real out-of-memory error, 4 workers
#   on one GPU against 1, --workers auto against 1 and 2, and training time in the TUI against headless (over
#   8 minutes in all).
# Writes benchmarks/results/gpu-YYYY-MM-DD.md (and a copy under $OUT when set) with the conditions.
#
# On a machine without textual, sqlite-utils or plotext (the device image), carry their wheels in .whl/
# (benchmarks/gpu_wheels.sh downloads them); they are installed into /tmp/site first.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
date=$(date -u +%F)
only=${1:-}  # an extended regex: run only the steps whose title matches it (a rerun), into gpu-DATE-rerun.md
out=benchmarks/results/gpu-$date${only:+-rerun}.md
mkdir -p benchmarks/results
{
  echo "# GPU suite, $date"
  echo
  echo "Made by \`benchmarks/gpu_suite.sh\`. Conditions:"
  echo
  echo '```'
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -4
  $PY -c 'import torch, platform, os; print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda, "cpus", os.cpu_count())'
  git log -1 --format='tuitune commit %h %cd' 2>/dev/null || true
  echo '```'
  echo
} > "$out"

step() {  # step SECONDS TITLE COMMAND...: run one check with a time limit, its output into the report
  local limit=$1 title=$2
  shift 2
  if [ -n "$only" ] && ! grep -qE "$only" <<<"$title"; then return 0; fi
  echo "== $title (limit ${limit}s)"
  local t0=$SECONDS log
  log=$(mktemp)
  timeout "$limit" "$@" >"$log" 2>&1
  local rc=$?
  cat "$log"
  {
    echo "## $title"
    echo
    echo "\`$*\`: exit $rc in $((SECONDS - t0)) s$([ $rc = 124 ] && echo ' (TIMED OUT)')"
    echo
    if grep -q '^## ' "$log"; then sed -n '/^## /,$p' "$log" | sed 's/^## /### /'; else echo '```'; tail -40 "$log"; echo '```'; fi
    echo
  } >> "$out"
  if [ -n "${OUT:-}" ]; then cp "$out" "$OUT/"; fi  # what is done comes back even if a later step is cut off
}

if ! $PY -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "no CUDA device: nothing to do" | tee -a "$out"
  exit 1
fi
step 60 "gpu-marked tests" $PY -m pytest -q -m gpu -p no:cacheprovider -p no:randomly tests/unit/test_training.py tests/unit/test_fused.py tests/unit/test_packing.py
# Trials per GPU-hour, side by side (tuitune's default, in-process, a textbook DataLoader loop, Ray Tune at 0.25
# GPU per trial): 64 configs of one seed with the architecture fixed, 1 epoch each, each side stopped after 20 s
# (its rate then comes from the trials it completed).
step 300 "trials per GPU-hour (bench_gpu_throughput)" $PY benchmarks/bench_gpu_throughput.py --device cuda --space fixed-arch --configs 64 --epochs 1 --limit 18
# The trainer alone: its fused arrays against one trial at a time and a textbook loop, no engine around them.
step 100 "fused arrays in the trainer (bench_fused_arrays)" $PY benchmarks/bench_fused_arrays.py --device cuda --configs 32 --epochs 1
# The rest were measured on 2026-11-30 (benchmarks/results/gpu-2026-11-30*.md); they fit the 8 minutes only
# without the throughput step: TUITUNE_GPU_SUITE=extended runs them too.
if [ "${TUITUNE_GPU_SUITE:-}" = extended ]; then
  step 45 "fused trials (torch.func prototype)" $PY benchmarks/bench_gpu.py fused --device cuda
  step 90 "trainer data path vs DataLoader (MNIST-sized, MLP)" $PY benchmarks/bench_trainer.py --device cuda --epochs 2 --workers 2,4
  step 75 "memory after 50 trials" $PY benchmarks/bench_gpu.py memory --device cuda
  step 45 "out of memory contained" $PY benchmarks/bench_gpu.py oom --device cuda
  step 90 "workers on one GPU" $PY benchmarks/bench_gpu.py workers --device cuda
  step 120 "--workers auto on one GPU against 1 and 2" $PY benchmarks/bench_workers_auto.py --device cuda:0 --trials 16 --epochs 2 --rounds 1
  step 150 "training in the TUI against headless (GPU)" $PY benchmarks/bench_tui_training.py --device cuda --ways headless,tui --trials 3 --epochs 30 --reps 3
  step 150 "training in the TUI against headless (the server's CPU, quiet)" $PY benchmarks/bench_tui_training.py --device cpu --ways headless,tui --trials 3 --epochs 30 --reps 3
  # Warm workers (issue 20): where a worker's start goes on the GPU, and the form's warm workers from Start.
  step 90 "a worker's start on the GPU (bench_worker_start)" $PY benchmarks/bench_worker_start.py --devices cuda --reps 2
  step 90 "Start to first epoch, warm workers against none (bench_worker_start --tui)" $PY benchmarks/bench_worker_start.py --tui --devices cuda --reps 2
  # The step itself (issue 20 item 4): TUITUNE_STEP eager, compile and graph (CUDA graphs), one trial and an
  # array of 8, on digits-mlp and an MNIST-sized MLP; the default stays eager until this shows one pays.
  step 150 "step modes: eager, compile, graph (bench_step)" $PY benchmarks/bench_step.py --device cuda --presets digits-mlp,mnist-mlp --epochs 4 --images 10000
  step 30 "graph-mode test (CUDA graphs equal eager)" $PY -m pytest -q -m gpu -p no:cacheprovider -p no:randomly tests/unit/test_step.py
  # The coordinator keeping up (issue 20 item 5): workers idle waiting for asks, on the GPU (asha, bayes).
  step 120 "workers waiting for suggestions (bench_ask_idle)" $PY benchmarks/bench_ask_idle.py --devices cuda --workers 2 --fuse 8 --cases asha-bayes,bayes,asha-random
fi
if [ -n "${OUT:-}" ]; then cp "$out" "$OUT/"; fi
echo "wrote $out"
