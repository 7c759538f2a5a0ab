"""MJX (MuJoCo's JAX port) on the CPU: wall time of one jitted gradient through dm_control's
cartpole (default) or MJX's humanoid (--model humanoid), the anchor side of
`diffsim bench articulation --mjx FILE`.

The model is data/robots/dm_control/cartpole.xml (dm_control's suite file as shipped; its energy
flag is switched off because MJX refuses it; contacts are disabled in the file; RK4, dt 0.01).
From qpos = 0, qvel = (0.1, -0.2), the loss sum(qpos_N^2) + sum(qvel_N^2) after N steps of
lax.scan(mjx.step) is differentiated with respect to the (N, 1) control sequence (all 0.05) by
jax.grad under jax.jit, with opt.iterations = 1 and ls_iterations = 4 (MJX's constraint solver
loop is otherwise a while_loop that reverse mode cannot differentiate). The first call compiles;
the median of --reps later calls is the time.

The humanoid is data/robots/mjx/humanoid.xml (MJX's test model as shipped: Newton solver,
iterations 1, ls_iterations 4, dt 0.005, the four foot capsules paired with the floor), from its
first keyframe ("squat", feet on the floor) at rest, with the (N, 21) controls all 0.05.

    python3 -m venv .venv && .venv/bin/pip install mujoco mujoco-mjx "jax[cpu]"
    .venv/bin/python benches/mjx/cartpole_gradient.py > mjx.jsonl

One JSON line per length: case ("cartpole-ctrl" or "humanoid-ctrl"), steps, ms, compile_s,
loss, grad_norm.
"""
import argparse
import contextlib
import json
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

with contextlib.redirect_stdout(sys.stderr):  # mjx prints its optional-backend notes
    from mujoco import mjx

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = {
    "cartpole": os.path.join(HERE, "..", "..", "data", "robots", "dm_control", "cartpole.xml"),
    "humanoid": os.path.join(HERE, "..", "..", "data", "robots", "mjx", "humanoid.xml"),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", default="100,300,1000")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--model", choices=sorted(MODELS), default="cartpole")
    args = ap.parse_args()
    m = mujoco.MjModel.from_xml_path(MODELS[args.model])
    m.opt.enableflags &= ~int(mujoco.mjtEnableBit.mjENBL_ENERGY)
    d = mujoco.MjData(m)
    if args.model == "humanoid":
        mujoco.mj_resetDataKeyframe(m, d, 0)
    mujoco.mj_forward(m, d)
    mx = mjx.put_model(m)
    mx = mx.replace(opt=mx.opt.replace(iterations=1, ls_iterations=4))
    dx0 = mjx.put_data(m, d)
    qvel0 = jnp.array([0.1, -0.2]) if args.model == "cartpole" else jnp.zeros(m.nv)
    for n in (int(s) for s in args.steps.split(",")):
        def loss(ctrls):
            def body(dd, u):
                return mjx.step(mx, dd.replace(ctrl=u)), None
            dd, _ = jax.lax.scan(body, dx0.replace(qvel=qvel0), ctrls, length=n)
            return jnp.sum(dd.qpos ** 2) + jnp.sum(dd.qvel ** 2)
        ctrls = jnp.full((n, m.nu), 0.05)
        g = jax.jit(jax.value_and_grad(loss))
        t0 = time.perf_counter()
        value, grad = jax.block_until_ready(g(ctrls))
        first = time.perf_counter() - t0
        ts = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            jax.block_until_ready(g(ctrls))
            ts.append(time.perf_counter() - t0)
        med = statistics.median(ts)
        print(json.dumps(dict(case=f"{args.model}-ctrl", steps=n, ms=1e3 * med, compile_s=first - med,
                              loss=float(value), grad_norm=float(np.linalg.norm(np.asarray(grad))),
                              mujoco=mujoco.__version__, jax=jax.__version__)), flush=True)


if __name__ == "__main__":
    main()
