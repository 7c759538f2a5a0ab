#!/usr/bin/env python3
"""Reference values for diffsim's URDF cartpole test from NVIDIA Warp 1.9.1 (float32, CPU).

Loads Warp's own cartpole.urdf (vendored in data/robots/warp/) as warp/examples/sim/example_cartpole.py
does -- turned -90 deg about x (y up), fixed base, density 100, armature 0.1, limit_ke 1e4, limit_kd 10,
joint_q = (0, 0.3, 0) -- and steps it with warp.sim.FeatherstoneIntegrator at dt = 1/600 without
contact. For N = 20, 100 and 1000 steps it records the final joint_q and joint_qd, the loss
sum(q_N^2) + sum(qd_N^2), its gradient with respect to the initial joint_qd = (0.1, -0.2, 0.3) by
Warp's tape, and by central differences (eps 1e-2 and 1e-3) of Warp's own rollout. It also records
the masses, centres of mass and inertias Warp derives: at the given density Warp ignores the URDF
inertials and gives each link its collision boxes' mass and inertia plus the armature.

Usage (python3 -m venv venv && venv/bin/pip install warp-lang==1.9.1 numpy):
    venv/bin/python scripts/warp-cartpole.py tests/data/warp-cartpole.json
"""
import json
import os
import sys

import numpy as np
import warp as wp
import warp.sim

wp.config.quiet = True
HERE = os.path.dirname(os.path.abspath(__file__))
URDF = os.path.join(HERE, "..", "data", "robots", "warp", "cartpole.urdf")
DT = 1.0 / 600.0
QD0 = np.array([0.1, -0.2, 0.3], dtype=np.float32)


@wp.kernel
def loss_kernel(q: wp.array(dtype=float), qd: wp.array(dtype=float), loss: wp.array(dtype=float)):
    i = wp.tid()
    wp.atomic_add(loss, 0, q[i] * q[i] + qd[i] * qd[i])


def model():
    b = wp.sim.ModelBuilder()
    wp.sim.parse_urdf(
        URDF,
        b,
        xform=wp.transform(wp.vec3(), wp.quat_from_axis_angle(wp.vec3(1.0, 0.0, 0.0), -np.pi * 0.5)),
        floating=False,
        density=100,
        armature=0.1,
        stiffness=0.0,
        damping=0.0,
        limit_ke=1.0e4,
        limit_kd=1.0e1,
        enable_self_collisions=False,
    )
    b.joint_q[-3:] = [0.0, 0.3, 0.0]
    m = b.finalize(requires_grad=True)
    m.ground = False
    return m


def rollout(m, qd0, n):
    integ = wp.sim.FeatherstoneIntegrator(m)
    states = [m.state(requires_grad=True) for _ in range(n + 1)]
    wp.copy(states[0].joint_qd, qd0)
    wp.sim.eval_fk(m, states[0].joint_q, states[0].joint_qd, None, states[0])
    for i in range(n):
        states[i].clear_forces()
        integ.simulate(m, states[i], states[i + 1], DT)
    loss = wp.zeros(1, dtype=float, requires_grad=True)
    wp.launch(loss_kernel, dim=m.joint_coord_count, inputs=[states[n].joint_q, states[n].joint_qd, loss])
    return loss, states[n]


def main():
    wp.init()
    out = {"warp": wp.__version__, "dt": DT, "qd0": QD0.tolist(), "q0": [0.0, 0.3, 0.0]}
    with wp.ScopedDevice("cpu"):
        m = model()
        out["body_mass"] = m.body_mass.numpy().tolist()
        out["body_com"] = m.body_com.numpy().tolist()
        out["body_inertia"] = m.body_inertia.numpy().tolist()
        out["gravity"] = [float(x) for x in m.gravity]
        runs = []
        for n in (20, 100, 1000):
            loss, last = rollout(m, wp.array(QD0, dtype=float), n)
            fd = {}
            for eps in (1e-2, 1e-3):
                g = []
                for k in range(3):
                    v = []
                    for s in (1, -1):
                        p = QD0.copy()
                        p[k] += s * eps
                        v.append(float(rollout(m, wp.array(p, dtype=float), n)[0].numpy()[0]))
                    g.append((v[0] - v[1]) / (2 * eps))
                fd[f"{eps:g}"] = g
            qd0 = wp.array(QD0, dtype=float, requires_grad=True)
            tape = wp.Tape()
            with tape:
                tloss, _ = rollout(m, qd0, n)
            tape.backward(loss=tloss)
            grad = [float(x) for x in qd0.grad.numpy()]
            runs.append(
                dict(
                    steps=n,
                    loss=float(loss.numpy()[0]),
                    q=last.joint_q.numpy().tolist(),
                    qd=last.joint_qd.numpy().tolist(),
                    tape_grad=[g if np.isfinite(g) else None for g in grad],
                    fd_grad=fd,
                )
            )
        out["runs"] = runs
    with open(sys.argv[1], "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
