#!/usr/bin/env bash
# The checks that need an NVIDIA GPU, in one short run, for a session that is
# lent one (issue 14): the CUDA build, the GPU tests, the model benchmark
# against PyTorch on the same GPU, and the efficiency benchmark with the 150m
# preset on CUDA. Everything it prints also goes to $OUT (or out/gpu-check).
#
#   scripts/gpu-check.sh            # all of it
#   GPU_CHECK_ROUNDS=2 scripts/gpu-check.sh   # a shorter efficiency run
#
# Needs: the CUDA layout of libtorch (`scripts/setup-libtorch.sh --cuda`, then
# `cargo clean -p torch-sys`), and for the PyTorch comparison
# `scripts/setup-libtorch.sh --python`. Each step has its own time limit so
# one slow step does not eat the others' time.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-out/gpu-check}"
mkdir -p "$out"
log="$out/gpu-check.log"
rounds="${GPU_CHECK_ROUNDS:-4}"
step() {
  local name="$1" limit="$2"; shift 2
  echo "== $name (limit ${limit}s): $*" | tee -a "$log"
  local start=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc after $((SECONDS - start)) s" | tee -a "$log"
}
nvidia-smi -L 2>&1 | tee -a "$log"
step setup 600 scripts/setup-libtorch.sh --cuda
step gpu-tests 300 cargo test -p bistro-core --features torch --release --test model_gpu -- --nocapture
step model-bench 300 env BISTRO_BENCH_PRESETS=tiny,150m \
  cargo bench -p bistro-core --features torch --bench model
step efficiency-150m 900 cargo run --release --example efficiency -- \
  --preset 150m --device cuda --miners 4 --steps 32 --rounds "$rounds" \
  --dir "$out/efficiency-150m"
cp "$out/efficiency-150m/efficiency.json" "$out/efficiency-150m/efficiency.svg" "$out/" 2>/dev/null || true
echo "log: $log"
