#!/usr/bin/env bash
# Packs a `--features wgpu` build of diffsim for a GPU machine that cannot build it: the
# stripped binary and the shared libraries it needs beyond the C library (HDF5 and its own
# dependencies), as one .tar.xz (about 25 MB). scripts/gpu-measure.sh unpacks and runs it.
# Usage: scripts/gpu-pack.sh OUT.tar.xz [BINARY]  (default binary: the wgpu build in
# $DIFFSIM_GPU_TARGET_DIR or ~/.cache/diffsim-target-gpu, built here if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: scripts/gpu-pack.sh OUT.tar.xz [BINARY]}
TARGET=${DIFFSIM_GPU_TARGET_DIR:-$HOME/.cache/diffsim-target-gpu}
BIN=${2:-$TARGET/release/diffsim}
if [ ! -x "$BIN" ]; then
  CARGO_TARGET_DIR=$TARGET cargo build --release --features wgpu
fi
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/diffsim-gpu/lib"
strip -o "$STAGE/diffsim-gpu/diffsim" "$BIN"
# Every shared library except the C runtime's own (the GPU machine's are used).
ldd "$BIN" | awk '/=> \//{print $3}' \
  | grep -v -E '/(libc|libm|libdl|librt|libpthread|libgcc_s|ld-linux[^/]*)\.so' \
  | while read -r lib; do cp -L "$lib" "$STAGE/diffsim-gpu/lib/"; done
tar -C "$STAGE" -cJf "$OUT" diffsim-gpu
ls -l "$OUT"
