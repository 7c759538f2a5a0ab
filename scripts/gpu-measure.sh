#!/usr/bin/env bash
# The GPU measurements in one run that builds nothing, for a machine with a GPU (its Vulkan
# driver runs a diffsim built elsewhere with `--features wgpu`): forward steps and 16-step
# (loss, gradient) of the wake at 32x64 and 128x256 (batch 1 and 16) and at 1024x2048 and
# 2048x4096 (batch 1, from the 128x256 state resampled), each against its bandwidth bound (the
# device's copy bandwidth is measured in the same run); Solver-in-the-Loop
# training iterations per second for the small and the mars-moon corrector at SOL-4/8/16/32;
# and, when a folder of the phiflow 3.4.0 / phiml 1.16.1 wheels is given and the machine has
# JAX with its GPU plugin, PhiFlow + JAX on the same GPU and the same work.
#
# Usage (from the repository root): scripts/gpu-measure.sh DIFFSIM [WHEEL_FOLDER], where DIFFSIM
# is a binary or a pack made by scripts/gpu-pack.sh (binary + its shared libraries, .tar.xz).
# Results: JSON lines and logs in $OUT (default out/gpu). Each part has its own time limit (at
# most 7 minutes for all diffsim parts), so one that fails or hangs leaves the others' results.
# PARTS (default "small large train phiflow") picks groups, to split the work over several
# calls of at most 10 minutes: small = 32x64 and 128x256, large = 1024x2048 and 2048x4096;
# "sync" (needs gdb) runs scripts/host-sync-check.sh on a SOL-4 training run (about 60 s).
# On lavapipe (no GPU) the 32x64 parts finish (8 s and 17 s here); the rest run out of time.
set -uo pipefail
BIN=${1:?usage: scripts/gpu-measure.sh DIFFSIM [WHEEL_FOLDER]}
WHEELS=${2:-}
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
if [[ "$BIN" == *.tar.xz ]]; then
  tar -C "$OUT" -xJf "$BIN"
  export LD_LIBRARY_PATH="$PWD/$OUT/diffsim-gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  BIN="$PWD/$OUT/diffsim-gpu/diffsim"
fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
part() { # name, limit (s), command...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.json" 2> "$OUT/$name.log"
  echo "$name: exit $? after $((SECONDS - t0)) s" | tee -a "$OUT/summary.txt"
}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; vulkaninfo --summary; } \
  > "$OUT/device.txt" 2>&1
PARTS=${PARTS:-small large train phiflow}
want() { [[ " $PARTS " == *" $1 "* ]]; }
if want small; then
  for res in 32x64 128x256; do
    part "fluid-$res" 45 "$BIN" bench fluid --device wgpu --res "$res" --batch 16 --steps 100 --json
    part "grad-$res" 45 "$BIN" bench fluid --device wgpu --grad --res "$res" --repeats 5 --json
  done
fi
if want large; then
  for res in 1024x2048 2048x4096; do
    part "fluid-$res" 60 "$BIN" bench fluid --device wgpu --res "$res" --state-from 128x256 \
      --batch 0 --steps 20 --warmup 3 --json
    part "grad-$res" 90 "$BIN" bench fluid --device wgpu --grad --res "$res" --state-from 128x256 \
      --repeats 3 --json
  done
fi
want train && for model in small mars-moon; do
  for m in 4 8 16 32; do
    part "train-$model-$m" 30 "$BIN" bench train --device wgpu --no-kernels --model "$model" \
      --unroll "$m" --iters 5 --rounds 1 --json
  done
done
if want sync; then
  WARMUP_S=20 part host-sync 90 scripts/host-sync-check.sh "$BIN" wgpu 20
fi
if [ -n "$WHEELS" ] && want phiflow; then
  python3 -m pip install -q --no-index --find-links "$WHEELS" --target "$OUT/py" phiflow phiml \
    > "$OUT/pip.log" 2>&1
  for res in 32x64 128x256; do
    PYTHONPATH="$OUT/py" part "phiflow-grad-$res" 120 python3 benches/phiflow/wake_grad.py \
      --res "$res" --repeats 5 --json
  done
  PYTHONPATH="$OUT/py" part phiflow-train 240 python3 benches/phiflow/sol_train.py --backend jax \
    --model small mars-moon --unroll 4 8 16 32 --iters 5 --rounds 1 --json
fi
