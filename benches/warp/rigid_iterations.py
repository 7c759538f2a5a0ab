"""Warp 1.9.1 on the CPU: wall time of one optimisation iteration (forward through every frame
under `wp.Tape`, tape backward, Adam update) of its rigid-body trajectory example
`warp.examples.optim.example_trajectory` (a free sphere pushed by per-frame forces, the
SemiImplicitIntegrator, 60 fps, one step per frame), the anchor side of
`diffsim bench rigid --warp FILE`.

Frames: 100 (the example as shipped) and 1000 (`num_frames=1000`; its reference circle is
then sampled at 1000 points). Each size is built once; one untimed iteration compiles the
kernels; then `--repeats` iterations are timed one by one.

    python3 -m venv .venv && .venv/bin/pip install warp-lang==1.9.1 numpy
    .venv/bin/python benches/warp/rigid_iterations.py --json > warp-rigid.jsonl

Each output line (with --json) is one JSON object: case, frames, ms (median over the
repeats), all_ms, and the loss before the first and after the last timed iteration.
"""

import argparse
import contextlib
import json
import statistics
import sys
import time

with contextlib.redirect_stdout(sys.stderr):
    import warp as wp
    import warp.sim

    wp.config.quiet = True
    wp.init()
    from warp.examples.optim.example_trajectory import Example


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for frames in args.frames:
        with contextlib.redirect_stdout(sys.stderr):
            ex = Example(stage_path=None, verbose=False, num_frames=frames)
            ex.step()  # compiles the kernels
            first_loss = float(ex.loss.numpy()[0])
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                ex.step()
                times.append(1e3 * (time.perf_counter() - t0))
        rec = {
            "case": "trajectory",
            "frames": frames,
            "ms": statistics.median(times),
            "all_ms": times,
            "first_loss": first_loss,
            "last_loss": float(ex.loss.numpy()[0]),
        }
        if args.json:
            print(json.dumps(rec), flush=True)
        else:
            print(f"trajectory, {frames} frames: {rec['ms']:.1f} ms per iteration (median of {args.repeats})")


if __name__ == "__main__":
    main()
