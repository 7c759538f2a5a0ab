"""Pinocchio (pip `pin`) on the CPU: microseconds per call of rnea, crba, aba,
computeRNEADerivatives and computeABADerivatives for the URDFs given, the anchor side of
`diffsim bench articulation --pinocchio FILE`.

    python3 -m venv .venv && .venv/bin/pip install pin example-robot-data
    .venv/bin/python benches/pinocchio/dynamics.py [--floating] URDF... > pinocchio.jsonl

Each URDF is read by Pinocchio's own parser (with a free-flyer root when `--floating`). The
state is a random configuration inside the joint limits (neutral where they are infinite),
random velocities, torques and accelerations (seed 0). Calls go through the Python binding:
the median time of a trivial binding call (`pin.neutral`) is reported as
`python_call_overhead` and is part of every figure. One JSON line per robot: robot (the file
stem, `-floating` appended with `--floating`), nq, nv, us_per_call.
"""

import argparse
import json
import os
import statistics
import time

import numpy as np
import pinocchio as pin


def per_call(fn, n, reps=5):
    fn()
    meds = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        meds.append((time.perf_counter() - t0) / n)
    return statistics.median(meds)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--floating", action="store_true")
    ap.add_argument("urdf", nargs="+")
    args = ap.parse_args()
    for path in args.urdf:
        if args.floating:
            model = pin.buildModelFromUrdf(path, pin.JointModelFreeFlyer())
        else:
            model = pin.buildModelFromUrdf(path)
        data = model.createData()
        rng = np.random.default_rng(0)
        finite = np.all(np.isfinite(model.upperPositionLimit)) and np.all(np.isfinite(model.lowerPositionLimit))
        q = pin.randomConfiguration(model) if finite else pin.neutral(model)
        v, tau, a = (rng.standard_normal(model.nv) for _ in range(3))
        t = {
            "rnea": per_call(lambda: pin.rnea(model, data, q, v, a), 3000),
            "crba": per_call(lambda: pin.crba(model, data, q), 3000),
            "aba": per_call(lambda: pin.aba(model, data, q, v, tau), 3000),
            "rnea_derivatives": per_call(lambda: pin.computeRNEADerivatives(model, data, q, v, a), 1000),
            "aba_derivatives": per_call(lambda: pin.computeABADerivatives(model, data, q, v, tau), 1000),
            "python_call_overhead": per_call(lambda: pin.neutral(model), 3000),
        }
        stem = os.path.splitext(os.path.basename(path))[0] + ("-floating" if args.floating else "")
        print(json.dumps(dict(robot=stem, nq=model.nq, nv=model.nv, pin=pin.__version__,
                              us_per_call={k: round(s * 1e6, 3) for k, s in t.items()})), flush=True)


if __name__ == "__main__":
    main()
