#!/usr/bin/env bash
# The test command: installs what is missing, then builds and runs every test in release mode
# (the numerics are too slow in debug), including one pass over each criterion benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo test --release --all-targets
