"""R7 anchor: Tiny Differentiable Simulator's `pendulum_sys_id` pendulum, run by its Python
wheel (`pip install pytinydiffsim==0.9.5`, CPU, float64).

Builds the compound pendulum of TDS's `init_compound_pendulum` (one link, JOINT_REVOLUTE_X,
mass 1, centre of mass (0, L, 0), inertia of a sphere of radius 0.15 about it), released from
q = 0 at rest, 100 steps of `forward_dynamics` + `integrate_euler` at dt 0.01 under the
world's gravity (0, 0, -9.81). Prints JSON: the angles and velocities before each step for the
lengths given, and TDS's gradient-descent protocol (rate 0.3 from L = 1.0, 100 iterations) on
the loss mean_t (q - q*)^2 + (qd - qd*)^2. The wheel exposes no automatic differentiation, so
the descent uses central differences (step 1e-6) on TDS's own rollout; the time per
(loss, gradient) is that of three rollouts.

    python benches/tds/pendulum_sys_id.py > tds-pendulum.json
"""

import json
import sys
import time

import pytinydiffsim as tds

STEPS, DT, RADIUS, MASS = 100, 0.01, 0.15, 1.0


def rollout(length):
    world = tds.TinyWorld()
    mb = tds.TinyMultiBody(False)
    sphere = tds.TinySphere(RADIUS)
    com = tds.Vector3(0.0, length, 0.0)
    local = sphere.compute_local_inertia(MASS)
    inertia = tds.Matrix3(tds.Quaternion(0.0, 0.0, 0.0, 1.0))
    for k in range(3):
        inertia[k, k] = local[k]
    rbi = tds.RigidBodyInertia(MASS, com, inertia)
    x_t = tds.TinySpatialTransform()
    x_t.set_identity()
    link = tds.TinyLink(tds.JOINT_REVOLUTE_X, x_t, rbi)
    mb.attach_link(link, -1, False)
    mb.initialize()
    gravity = world.gravity
    q, qd = [], []
    for _ in range(STEPS):
        q.append(mb.q[0])
        qd.append(mb.qd[0])
        tds.forward_dynamics(mb, gravity)
        tds.integrate_euler(mb, DT)
    return q, qd


def loss(length, data):
    q, qd = rollout(length)
    return sum((a - b) ** 2 + (c - d) ** 2 for a, b, c, d in zip(q, data[0], qd, data[1])) / STEPS


def main():
    lengths = [float(x) for x in sys.argv[1:]] or [1.5, 1.0, 1.2]
    out = {"tds": "pytinydiffsim 0.9.5", "gravity": list(tds.TinyWorld().gravity[k] for k in range(3))}
    out["rollouts"] = [{"length": l, "q": rollout(l)[0], "qd": rollout(l)[1]} for l in lengths]
    data = rollout(1.5)
    p, losses, times = 1.0, [], []
    for _ in range(100):
        t0 = time.perf_counter()
        value = loss(p, data)
        grad = (loss(p + 1e-6, data) - loss(p - 1e-6, data)) / 2e-6
        times.append(time.perf_counter() - t0)
        losses.append(value)
        p -= 0.3 * grad
    losses.append(loss(p, data))
    times.sort()
    out["descent"] = {"losses": losses, "length": p, "ms_per_evaluation": 1e3 * times[len(times) // 2]}
    json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
