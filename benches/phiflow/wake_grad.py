"""PhiFlow 3.4 + JAX side of `diffsim bench fluid --grad`: one jit-compiled (loss, gradient)
evaluation of the 16-step wake-phiflow unroll from the PhiFlow state in data/phiflow, next to the
forward-only time, on this machine.

Scene (as docs/wake-flow.md §6 describes the state's origin): box 100 x 200, closed x
walls, open y ends, disc r = 10 at (50, 50), velocity (0, 1) forced on faces with centre
y < 5, explicit diffusion with diffusivity dt*32^2/Re (Re = 1e6), semi-Lagrangian
self-advection, pressure projection with the obstacle (PhiFlow's default solve). Loss:
mean(u^2) over every staggered face after N steps, differentiated with respect to the
initial velocity. The passive marker is not carried (the loss never reads it; jit would drop it).

Setup (PyPI): python3 -m venv /tmp/phienv && /tmp/phienv/bin/pip install phiflow==3.4.0 "jax[cpu]"
Run:          /tmp/phienv/bin/python benches/phiflow/wake_grad.py [--res 32x64] [--steps 16] [--repeats 20] [--json]
"""

import argparse
import json
import statistics
import time

import h5py
import jax
import numpy as np
from phi.jax.flow import *  # noqa: F401,F403  (PhiFlow's documented entry point)


def load_state(path, domain):
    with h5py.File(path, "r") as f:
        u = np.asarray(f["velocity_x"][0], dtype=np.float32)  # [ny, nx+1]
        v = np.asarray(f["velocity_y"][0], dtype=np.float32)  # [ny+1, nx]
    # PhiFlow's staggered values: one tensor per component, spatial dims (x, y).
    # Zero x walls: PhiFlow stores only the interior x-faces (the wall faces are 0 in the file).
    ux = math.tensor(u[:, 1:-1].T, spatial("x,y"))
    vy = math.tensor(v.T, spatial("x,y"))
    values = math.stack([ux, vy], dual(vector="x,y"))
    return StaggeredGrid(values, **domain)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--res", default="32x64")
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--data", default="data/phiflow")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    nx, ny = map(int, a.res.split("x"))
    domain = dict(
        x=nx,
        y=ny,
        bounds=Box(x=100, y=200),
        extrapolation=extrapolation.combine_sides(
            x=extrapolation.ZERO, y=extrapolation.BOUNDARY
        ),
    )
    v0 = load_state(f"{a.data}/wake_phiflow_{nx}x{ny}.h5", domain)
    # Faces with centre y < 5 (Box(x=None, ...) would cover the whole domain).
    mask = StaggeredGrid(Box(x=(-1, 101), y=(-1, 5)), **domain)
    obstacle = Obstacle(Sphere(x=50, y=50, radius=10))
    dt, re = 1.0, 1e6
    diffusivity = dt * 32 * 32 / re

    def step(v):
        v = diffuse.explicit(v, diffusivity, dt)
        v = v * (1 - mask) + mask * vec(x=0, y=1)
        v = advect.semi_lagrangian(v, v, dt)
        v, _ = fluid.make_incompressible(v, [obstacle])
        return v

    def loss(v):
        for _ in range(a.steps):
            v = step(v)
        return math.mean(v.values**2, dim=math.non_batch(v.values))

    forward = math.jit_compile(loss)
    grad = math.jit_compile(math.gradient(loss, wrt="v", get_output=True))

    def timed(f):
        t = time.perf_counter()
        block(f(v0))
        return 1e3 * (time.perf_counter() - t)

    def block(out):
        """Waits for JAX's asynchronous dispatch: the loss, and the gradient's components."""
        outs = out if isinstance(out, (tuple, list)) else [out]
        for o in outs:
            if isinstance(o, Field):
                for c in math.unstack(o.values, "~vector"):
                    jax.block_until_ready(c.native(c.shape))
            else:
                jax.block_until_ready(o.native())

    t = time.perf_counter()
    timed(grad)
    warm_grad_s = time.perf_counter() - t
    timed(forward)
    fw, gr, ratio = [], [], []
    for _ in range(a.repeats):
        f, g = timed(forward), timed(grad)
        fw.append(f)
        gr.append(g)
        ratio.append(g / f)
    res = dict(
        resolution=a.res,
        steps=a.steps,
        repeats=a.repeats,
        grad_ms=statistics.median(gr),
        forward_ms=statistics.median(fw),
        grad_over_forward=statistics.median(ratio),
        first_grad_s=warm_grad_s,
        loss=float(forward(v0)),
    )
    if a.json:
        print(json.dumps(res))
    else:
        print(
            f"PhiFlow 3.4 + JAX wake-phiflow {a.res} unroll {a.steps}: (loss, gradient) "
            f"{res['grad_ms']:.2f} ms, forward {res['forward_ms']:.2f} ms, ratio "
            f"{res['grad_over_forward']:.2f}, first call (jit) {warm_grad_s:.1f} s, loss {res['loss']:.6f}"
        )


if __name__ == "__main__":
    main()
