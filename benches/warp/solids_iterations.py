"""Warp 1.9.1 on the CPU: wall time of one optimisation iteration of its own `warp.examples.optim`
examples (forward through every step with `wp.Tape`, tape backward, parameter update), the
anchor side of `diffsim bench solids --warp FILE`.

Cases: `cloth-throw` (the example as published, and with `--cells N` an N x N cloth of the same
1 m size: N = 64 gives 65 x 65 = 4225 particles), `softbody-material`, `spring-cage`.
Each case's example is built once; one untimed iteration compiles the kernels; then `--repeats`
iterations are timed one by one.

    python3 -m venv .venv && .venv/bin/pip install warp-lang==1.9.1 numpy
    .venv/bin/python benches/warp/solids_iterations.py --json > warp.jsonl

Each output line (with --json) is one JSON object: case, cells, particles, steps, ms (median
over the repeats), all_ms.
"""

import argparse
import contextlib
import io
import json
import statistics
import time

import sys

# Warp prints its notices (deprecation of warp.sim, no CUDA driver) on stdout: keep stdout
# for the JSON lines.
with contextlib.redirect_stdout(sys.stderr):
    import warp as wp
    import warp.sim

    wp.config.quiet = True
    wp.init()


@contextlib.contextmanager
def cloth_cells(cells):
    """Make `ModelBuilder.add_cloth_grid` build `cells` x `cells` cells over the same 1 m square."""
    original = wp.sim.ModelBuilder.add_cloth_grid

    def patched(self, *args, **kwargs):
        kwargs.update(dim_x=cells, dim_y=cells, cell_x=1.0 / cells, cell_y=1.0 / cells)
        return original(self, *args, **kwargs)

    wp.sim.ModelBuilder.add_cloth_grid = patched
    try:
        yield
    finally:
        wp.sim.ModelBuilder.add_cloth_grid = original


def build(case, cells):
    if case == "cloth-throw":
        from warp.examples.optim import example_cloth_throw as ex

        with cloth_cells(cells):
            e = ex.Example(stage_path=None)
        return e, e.model.particle_count, e.sim_steps
    if case == "softbody-material":
        from warp.examples.optim import example_softbody_properties as ex

        e = ex.Example(stage_path=None)
        return e, e.model.particle_count, e.sim_steps
    if case == "spring-cage":
        from warp.examples.optim import example_spring_cage as ex

        e = ex.Example(stage_path=None)
        return e, e.model.particle_count, e.num_frames * e.sim_substep_count
    raise SystemExit(f"unknown case {case!r}")


def time_case(case, cells, repeats):
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        example, particles, steps = build(case, cells)
        example.step()  # compiles and loads the kernels
        all_ms = []
        for _ in range(repeats):
            t = time.perf_counter()
            example.step()
            wp.synchronize()
            all_ms.append(1e3 * (time.perf_counter() - t))
    return {
        "case": case,
        "cells": cells if case == "cloth-throw" else None,
        "particles": particles,
        "steps": steps,
        "ms": statistics.median(all_ms),
        "all_ms": all_ms,
        "warp": wp.__version__,
        "device": str(wp.get_device()),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", action="append", help="cloth-throw, softbody-material, spring-cage (repeatable; default all)")
    p.add_argument("--cells", type=int, action="append", help="cloth cells per side (repeatable; default 16 and 64)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    wp.set_device("cpu")
    cases = a.case or ["cloth-throw", "softbody-material", "spring-cage"]
    for case in cases:
        for cells in (a.cells or [16, 64]) if case == "cloth-throw" else [None]:
            r = time_case(case, cells, a.repeats)
            if a.json:
                print(json.dumps(r), flush=True)
            else:
                print(f"{case} {cells or ''}: {r['particles']} particles, {r['steps']} steps, {r['ms']:.1f} ms per iteration")


if __name__ == "__main__":
    main()
