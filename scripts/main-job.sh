#!/usr/bin/env bash
# The main job: Solver-in-the-Loop on the wake flow end to end (docs/wake-flow.md §7) in a
# few-minute mode: reference data at 128x256 -> 32x64 (HDF5), NON / SOL-4 / SOL-8 correctors
# trained through the differentiable solver (500 iterations each), 100-step test rollouts
# against the source solver, pictures, GIFs and the results table in out/wake-flow-main/.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/diffsim"
"$bin" experiment wake-flow --config experiments/wake-flow/main-job.toml --out out/wake-flow-main
echo "wrote out/wake-flow-main/ (results.md, results.json, pictures, GIFs, data/, models)" >&2
