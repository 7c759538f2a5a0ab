"""Warp 1.9.1 on the CPU: wall time of one (loss, gradient) through its own cartpole with the
FeatherstoneIntegrator, the anchor side of `diffsim bench articulation --warp FILE`.

The model is Warp's `examples/assets/cartpole.urdf` set up as `examples/sim/example_cartpole.py`
sets it up (turned -90 deg about x, density 100, armature 0.1, limit_ke 1e4, limit_kd 10,
joint_q = (0, 0.3, 0)), dt = 1/600, no contact; loss sum(q_N^2) + sum(qd_N^2); gradient with
respect to the initial joint_qd = (0.1, -0.2, 0.3) by wp.Tape (forward under the tape, then
backward; tape.zero() after each). One untimed call compiles the kernels. Warp's tape gradient
on this model is wrong from about 100 steps and NaN at 1000 (tests/data/warp-cartpole.json):
the time is what Warp takes, not a correct gradient.

    python3 -m venv .venv && .venv/bin/pip install warp-lang==1.9.1 numpy
    .venv/bin/python benches/warp/cartpole_gradient.py > warp-cartpole.jsonl

One JSON line per length: case ("cartpole"), steps, ms (median of --repeats), all_ms.
"""

import argparse
import contextlib
import json
import os
import statistics
import sys
import time

import numpy as np

with contextlib.redirect_stdout(sys.stderr):
    import warp as wp
    import warp.sim

    wp.config.quiet = True
    wp.init()

HERE = os.path.dirname(os.path.abspath(__file__))
URDF = os.path.join(HERE, "..", "..", "data", "robots", "warp", "cartpole.urdf")


@wp.kernel
def loss_kernel(q: wp.array(dtype=float), qd: wp.array(dtype=float), loss: wp.array(dtype=float)):
    i = wp.tid()
    wp.atomic_add(loss, 0, q[i] * q[i] + qd[i] * qd[i])


def model():
    b = wp.sim.ModelBuilder()
    wp.sim.parse_urdf(URDF, b,
                      xform=wp.transform(wp.vec3(), wp.quat_from_axis_angle(wp.vec3(1.0, 0.0, 0.0), -np.pi * 0.5)),
                      floating=False, density=100, armature=0.1, stiffness=0.0, damping=0.0,
                      limit_ke=1.0e4, limit_kd=1.0e1, enable_self_collisions=False)
    b.joint_q[-3:] = [0.0, 0.3, 0.0]
    m = b.finalize(requires_grad=True)
    m.ground = False
    return m


def gradient(m, n):
    integ = wp.sim.FeatherstoneIntegrator(m)
    qd0 = wp.array(np.array([0.1, -0.2, 0.3], dtype=np.float32), dtype=float, requires_grad=True)
    states = [m.state(requires_grad=True) for _ in range(n + 1)]
    tape = wp.Tape()
    with tape:
        wp.copy(states[0].joint_qd, qd0)
        wp.sim.eval_fk(m, states[0].joint_q, states[0].joint_qd, None, states[0])
        for i in range(n):
            states[i].clear_forces()
            integ.simulate(m, states[i], states[i + 1], 1.0 / 600.0)
        loss = wp.zeros(1, dtype=float, requires_grad=True)
        wp.launch(loss_kernel, dim=m.joint_coord_count, inputs=[states[n].joint_q, states[n].joint_qd, loss])
    tape.backward(loss=loss)
    g = qd0.grad.numpy().copy()
    tape.zero()
    return g


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", default="100,1000")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with wp.ScopedDevice("cpu"):
        m = model()
        for n in (int(s) for s in args.steps.split(",")):
            gradient(m, n)
            t = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                gradient(m, n)
                t.append(1e3 * (time.perf_counter() - t0))
            print(json.dumps(dict(case="cartpole", steps=n, ms=statistics.median(t), all_ms=t)), flush=True)


if __name__ == "__main__":
    main()
