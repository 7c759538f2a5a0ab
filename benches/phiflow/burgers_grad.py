"""PhiFlow 3.4 + JAX side of `diffsim bench burgers`: one jit-compiled (loss, gradient) evaluation
of the DP-CFE chain of Holl et al. 2020 (31 applications of the 1D U-Net, 32 Burgers steps, batch
100), the same chain with the solver replaced by the identity (the network alone), and a 32-step
solver-only unroll (forward, and (loss, gradient) with respect to per-step controls), on this
machine.

Physics (docs/burgers-control.md §1, the paper's discretisation): 32 points in cell units (dx = 1,
dt = 1), semi-Lagrangian self-advection with linear interpolation and zero-gradient ends, then
explicit diffusion u += 0.1 * Lap(u) with zero-gradient ends, through PhiFlow's
advect.semi_lagrangian and diffuse.explicit on a CenteredGrid. Network: the paper's 1D U-Net
(5 stride-2 levels of 4, 8, 16, 16, 16 filters, 2 residual blocks each, 3 centre blocks, linear 2x
upsampling, skips, 16-filter up path, 28,555 parameters with the t/n channel) written with
jax.lax convolutions, Glorot-uniform weights, zero biases. Loss: 0.1 * sum_t 1/2 sum_x F_t^2 / B,
F_t = u_{t+1} - P(u_t), differentiated with respect to every network parameter.

Setup (PyPI): python3 -m venv /tmp/phienv && /tmp/phienv/bin/pip install phiflow==3.4.0 "jax[cpu]"
Run:          /tmp/phienv/bin/python benches/phiflow/burgers_grad.py [--batch 100] [--repeats 10] [--json]
"""

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from phi.jax.flow import *  # noqa: F401,F403  (PhiFlow's documented entry point)

N, STEPS, NU = 32, 32, 0.1


def glorot(key, k, cin, cout):
    lim = np.sqrt(6.0 / (k * cin + k * cout))
    return jax.random.uniform(key, (cout, cin, k), jnp.float32, minval=-lim, maxval=lim)


def init_unet(key, cin):
    keys = iter(jax.random.split(key, 64))
    conv = lambda k, ci, co: (glorot(next(keys), k, ci, co), jnp.zeros(co, jnp.float32))
    res = lambda c, k: (conv(k, c, c), conv(k, c, c))
    p = {"down": [], "down_res": [], "up": [], "up_res": []}
    prev = cin
    for f in [4, 8, 16, 16, 16]:
        p["down"].append(conv(2, prev, f))
        p["down_res"].append([res(f, 3), res(f, 3)])
        prev = f
    p["centre"] = [res(16, 3) for _ in range(3)]
    for skip in [16, 16, 8, 4]:
        p["up"].append(conv(2, prev + skip, 16))
        p["up_res"].append([res(16, 2), res(16, 2)])
        prev = 16
    p["up"].append(conv(2, 16 + cin, 1))
    return p


def conv1d(x, wb, stride=1):
    w, b = wb
    y = jax.lax.conv_general_dilated(x, w, (stride,), "VALID", dimension_numbers=("NCH", "OIH", "NCH"))
    return y + b[None, :, None]


def pad_edges(x, before, after):
    return jnp.pad(x, ((0, 0), (0, 0), (before, after)), mode="edge")


def resblock(x, blk):
    k = blk[0][0].shape[2]
    lo, hi = (k - 1) // 2, k // 2
    h = jax.nn.leaky_relu(conv1d(pad_edges(x, lo, hi), blk[0]), 0.2)
    return jax.nn.leaky_relu(x + conv1d(pad_edges(h, lo, hi), blk[1]), 0.2)


def upsample2x(x):
    p = pad_edges(x, 1, 1)
    left = 0.25 * p[..., :-2] + 0.75 * p[..., 1:-1]
    right = 0.75 * p[..., 1:-1] + 0.25 * p[..., 2:]
    return jnp.stack([left, right], -1).reshape(x.shape[0], x.shape[1], -1)


def unet(p, x):
    n = x.shape[2]
    x = jnp.pad(x, ((0, 0), (0, 0), (0, 31)))
    skips, y = [x], x
    for d, blocks in zip(p["down"], p["down_res"]):
        y = jax.nn.relu(conv1d(y, d, 2))
        for blk in blocks:
            y = resblock(y, blk)
        skips.append(y)
    for blk in p["centre"]:
        y = resblock(y, blk)
    skips.pop()
    for l, u in enumerate(p["up"]):
        y = upsample2x(y)
        skip = skips.pop()[..., : y.shape[2]]
        y = pad_edges(jnp.concatenate([y, skip], 1), 0, 1)
        if l == len(p["up"]) - 1:
            y = conv1d(y, u)
        else:
            y = jax.nn.relu(conv1d(y, u))
            for blk in p["up_res"][l]:
                y = resblock(y, blk)
    return y[:, 0, :n]


def physics_step(u):
    """P(u) on PhiFlow grids: u [B, N] (JAX) -> [B, N]."""
    grid = CenteredGrid(
        math.tensor(u, batch("b"), spatial("x")),
        extrapolation.ZERO_GRADIENT,
        x=N,
        bounds=Box(x=N),
    )
    velocity = grid.with_values(math.expand(grid.values, channel(vector="x")))
    grid = advect.semi_lagrangian(grid, velocity, dt=1.0)
    grid = diffuse.explicit(grid, NU, dt=1.0)
    return grid.values.native("b,x")


def clash(batch, seed=0):
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, N)
    g = lambda c, a, s: a[:, None] * np.exp(-0.5 * (x[None] - c[:, None]) ** 2 / s[:, None] ** 2)
    u = lambda: g(rng.uniform(0.2, 0.4, batch), rng.uniform(0, 3, batch), rng.uniform(0.05, 0.15, batch)) + g(
        rng.uniform(0.6, 0.8, batch), rng.uniform(-3, 0, batch), rng.uniform(0.05, 0.15, batch)
    )
    return jnp.asarray(u(), jnp.float32), jnp.asarray(u(), jnp.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    params = init_unet(jax.random.PRNGKey(0), 3)
    u0, target = clash(a.batch)
    controls = jnp.zeros((STEPS, a.batch, N), jnp.float32)

    def chain_loss(params, u0, target, step):
        states = [u0]
        for t in range(STEPS - 1):
            tt = jnp.full_like(u0, t / STEPS)
            x = jnp.stack([states[-1], target, tt], 1)
            states.append(unet(params, x))
        states.append(target)
        before, after = jnp.concatenate(states[:-1]), jnp.concatenate(states[1:])
        f = after - step(before)
        return 0.1 * 0.5 * jnp.sum(f * f) / u0.shape[0]

    def solver_unroll(controls, u0):
        u = u0
        for t in range(STEPS):
            u = physics_step(u) + controls[t]
        return jnp.sum(u * u)

    runs = {
        "dp_cfe_grad": jax.jit(jax.value_and_grad(lambda p, a_, b_: chain_loss(p, a_, b_, physics_step))),
        "network_only_grad": jax.jit(jax.value_and_grad(lambda p, a_, b_: chain_loss(p, a_, b_, lambda u: u))),
        "solver_grad": jax.jit(jax.value_and_grad(solver_unroll)),
        "solver_forward": jax.jit(solver_unroll),
    }
    args = {
        "dp_cfe_grad": (params, u0, target),
        "network_only_grad": (params, u0, target),
        "solver_grad": (controls, u0),
        "solver_forward": (controls, u0),
    }
    res = dict(batch=a.batch, steps=STEPS, repeats=a.repeats)
    for name, f in runs.items():
        t = time.perf_counter()
        jax.block_until_ready(f(*args[name]))
        res[name + "_first_s"] = time.perf_counter() - t
        times = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            jax.block_until_ready(f(*args[name]))
            times.append(1e3 * (time.perf_counter() - t))
        res[name + "_ms"] = statistics.median(times)
    res["loss"] = float(runs["dp_cfe_grad"](*args["dp_cfe_grad"])[0])
    if a.json:
        print(json.dumps(res))
    else:
        print(
            f"PhiFlow 3.4 + JAX Burgers batch {a.batch}: DP-CFE (loss, gradient) {res['dp_cfe_grad_ms']:.1f} ms "
            f"(network alone {res['network_only_grad_ms']:.1f} ms), 32-step solver unroll forward "
            f"{res['solver_forward_ms']:.2f} ms, (loss, gradient) {res['solver_grad_ms']:.2f} ms; "
            f"jit of the DP-CFE gradient {res['dp_cfe_grad_first_s']:.1f} s"
        )


if __name__ == "__main__":
    main()
