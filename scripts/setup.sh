#!/usr/bin/env bash
# Installs what diffsim needs on a fresh Debian machine: the HDF5 C library (and Rust, if missing).
# With --gpu, also a Vulkan driver for the wgpu feature: Mesa's (lavapipe runs it on the CPU
# when the machine has no GPU).
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
if ! pkg-config --exists hdf5 2>/dev/null && [ ! -e /usr/lib/x86_64-linux-gnu/hdf5/serial/libhdf5.so ]; then
  echo "setup: installing libhdf5-dev" >&2
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends libhdf5-dev pkg-config >/dev/null
fi
if ! command -v cargo >/dev/null; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "setup: installing Rust (rustup)" >&2
    $SUDO apt-get install -y -qq --no-install-recommends curl ca-certificates build-essential >/dev/null
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
if [ "${1:-}" = "--gpu" ] && ! ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
  echo "setup: installing mesa-vulkan-drivers" >&2
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1 >/dev/null
fi
