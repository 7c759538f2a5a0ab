#!/usr/bin/env bash
# The main job: simulate the Solver-in-the-Loop wake flow at 128x256 (Re 585.94, 1500 steps)
# and write HDF5 frames, vorticity PNGs, a GIF and a JSON summary into out/.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/diffsim"
mkdir -p out
"$bin" simulate wake --res 128x256 --re 585.94 --steps 1500 --save-every 50 \
  --out out/wake.h5 --png out/png --gif out/wake.gif --json | tee out/summary.json
echo "wrote out/wake.h5, out/png/, out/wake.gif, out/summary.json" >&2
