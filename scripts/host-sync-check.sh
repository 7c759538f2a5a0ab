#!/usr/bin/env bash
# Checks that a Solver-in-the-Loop training iteration on a GPU reads nothing back from the
# device except its loss: runs `diffsim bench train --device DEVICE` and, once it is past its
# warm-up, samples the stack of the thread issuing the iterations SAMPLES times with gdb. Every
# sample is classified as "issuing" (recording work, or waiting for room in the device's
# queue) or as a read-back, named by the diffsim function that asked for it. The only
# read-back the training loop makes is the loss (`iteration`, inlined into the benchmark's
# timing loop); any other caller is a host synchronisation inside the iteration.
#
# Usage (from the repository root): scripts/host-sync-check.sh DIFFSIM [DEVICE] [SAMPLES] [MODEL] [UNROLL]
# Needs gdb and python3. Defaults: wgpu, 40 samples, the small corrector, SOL-4.
set -euo pipefail
BIN=${1:?usage: scripts/host-sync-check.sh DIFFSIM [DEVICE] [SAMPLES] [MODEL] [UNROLL]}
DEVICE=${2:-wgpu}
SAMPLES=${3:-40}
MODEL=${4:-small}
UNROLL=${5:-4}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
"$BIN" bench train --device "$DEVICE" --no-kernels --model "$MODEL" --unroll "$UNROLL" \
  --iters 100000 --rounds 1 > /dev/null 2> "$dir/log" &
pid=$!
# Past the set-up and the untimed iterations (kernel compilation, autotuning).
sleep "${WARMUP_S:-40}"
for i in $(seq 1 "$SAMPLES"); do
  kill -0 "$pid" 2> /dev/null || { echo "diffsim exited early:"; cat "$dir/log"; exit 1; }
  gdb -p "$pid" -batch -ex "thread apply all bt 80" > "$dir/s$i.txt" 2> /dev/null || true
  sleep 0.5
done
python3 - "$dir" "$SAMPLES" << 'EOF'
import collections, re, sys
folder, n = sys.argv[1], int(sys.argv[2])
read = re.compile(r"into_data|into_scalar|read_tensor|read_lazy|read_async|client::Client::read|max_abs_host")
counts = collections.Counter()
for i in range(1, n + 1):
    text = open(f"{folder}/s{i}.txt").read()
    for block in text.split("\nThread ")[1:]:
        if "bench_train::Config::time" not in block:
            continue
        frames = [re.sub(r"^#\d+\s+(0x[0-9a-f]+ in )?", "", l).split(" (")[0]
                  for l in block.splitlines() if l.startswith("#")]
        caller = next((re.sub(r"::h[0-9a-f]{16}$", "", f) for f in frames if f.startswith("diffsim::")), "?")
        counts[("read-back" if any(read.search(f) for f in frames) else "issuing", caller)] += 1
total = sum(counts.values())
print(f"{total} samples of the issuing thread")
for (kind, caller), c in counts.most_common():
    print(f"{c:5d}  {kind:9s}  {caller}")
others = sum(c for (k, caller), c in counts.items()
             if k == "read-back" and not caller.endswith("bench_train::Config::time"))
print("read-backs other than the loss:", others)
sys.exit(1 if others else 0)
EOF
