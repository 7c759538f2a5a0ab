"""DiffTaichi's billiards (`difftaichi/examples/billiards.py`) on Taichi 1.7.3's CPU backend: the
anchor side of the `billiards` study (`diffsim experiment billiards`).

The physics is the example's, ported from its pre-1.0 API (`ti.var`, `ti.Tape`, the old GUI)
to `ti.field` and `ti.ad.Tape`, drawing removed: 11 balls of radius 0.03 (the cue at
x0 = (0.1, 0.5) with v0 = (0.3, 0), then 4 rows at x = 0.5 + 2ri, y = 0.5 + 2rj - 0.7ri),
dt 0.003, steps 1..1023, pairwise velocity impulses with elasticity 0.8 and the example's
time-of-impact position fix, f32; loss = squared distance of ball 10 to (0.9, 0.75) at step
1023; plain gradient descent with learning rate 0.01 on (x0, v0) for 200 iterations.

    python3 -m venv .venv && .venv/bin/pip install taichi==1.7.3 numpy
    .venv/bin/python benches/taichi/billiards.py --json > taichi-billiards.json

Prints one JSON object: the loss per iteration (before its update), the final (x0, v0), the
gradient at the start next to central differences of the same f32 forward (step 1e-3), and
the wall time of each taped iteration (the first, which compiles the kernels, reported apart).
"""

import argparse
import contextlib
import json
import statistics
import sys
import time

with contextlib.redirect_stdout(sys.stderr):
    import taichi as ti

    ti.init(arch=ti.cpu, default_fp=ti.f32, log_level=ti.ERROR)

MAX_STEPS = 2048
STEPS = 1024
LAYERS = 4
N_BALLS = 1 + (1 + LAYERS) * LAYERS // 2
TARGET = N_BALLS - 1
GOAL = (0.9, 0.75)
RADIUS = 0.03
ELASTICITY = 0.8
DT = 0.003
LR = 0.01

loss = ti.field(ti.f32, shape=(), needs_grad=True)
init_x = ti.Vector.field(2, ti.f32, shape=(), needs_grad=True)
init_v = ti.Vector.field(2, ti.f32, shape=(), needs_grad=True)
x = ti.Vector.field(2, ti.f32, shape=(MAX_STEPS, N_BALLS), needs_grad=True)
x_inc = ti.Vector.field(2, ti.f32, shape=(MAX_STEPS, N_BALLS), needs_grad=True)
v = ti.Vector.field(2, ti.f32, shape=(MAX_STEPS, N_BALLS), needs_grad=True)
impulse = ti.Vector.field(2, ti.f32, shape=(MAX_STEPS, N_BALLS), needs_grad=True)


@ti.func
def collide_pair(t, i, j):
    imp = ti.Vector([0.0, 0.0])
    x_inc_contrib = ti.Vector([0.0, 0.0])
    if i != j:
        dist = (x[t, i] + DT * v[t, i]) - (x[t, j] + DT * v[t, j])
        dist_norm = dist.norm()
        rela_v = v[t, i] - v[t, j]
        if dist_norm < 2 * RADIUS:
            direction = ti.math.normalize(dist)
            projected_v = direction.dot(rela_v)
            if projected_v < 0:
                imp = -(1 + ELASTICITY) * 0.5 * projected_v * direction
                toi = (dist_norm - 2 * RADIUS) / ti.min(-1e-3, projected_v)
                x_inc_contrib = ti.min(toi - DT, 0) * imp
    x_inc[t + 1, i] += x_inc_contrib
    impulse[t + 1, i] += imp


@ti.kernel
def collide(t: ti.i32):
    for i in range(N_BALLS):
        for j in range(i):
            collide_pair(t, i, j)
    for i in range(N_BALLS):
        for j in range(i + 1, N_BALLS):
            collide_pair(t, i, j)


@ti.kernel
def advance(t: ti.i32):
    for i in range(N_BALLS):
        v[t, i] = v[t - 1, i] + impulse[t, i]
        x[t, i] = x[t - 1, i] + DT * v[t, i] + x_inc[t, i]


@ti.kernel
def compute_loss(t: ti.i32):
    loss[None] = (x[t, TARGET][0] - GOAL[0]) ** 2 + (x[t, TARGET][1] - GOAL[1]) ** 2


@ti.kernel
def initialize():
    x[0, 0] = init_x[None]
    v[0, 0] = init_v[None]


@ti.kernel
def clear():
    for t, i in ti.ndrange(MAX_STEPS, N_BALLS):
        impulse[t, i] = ti.Vector([0.0, 0.0])
        x_inc[t, i] = ti.Vector([0.0, 0.0])


def forward():
    initialize()
    count = 0
    for i in range(LAYERS):
        for j in range(i + 1):
            count += 1
            x[0, count] = [i * 2 * RADIUS + 0.5, j * 2 * RADIUS + 0.5 - i * RADIUS * 0.7]
    for t in range(1, STEPS):
        collide(t - 1)
        advance(t)
    compute_loss(STEPS - 1)


def loss_at(p):
    init_x[None] = p[:2]
    init_v[None] = p[2:]
    clear()
    forward()
    return float(loss[None])


def taped(p):
    init_x[None] = p[:2]
    init_v[None] = p[2:]
    clear()
    with ti.ad.Tape(loss):
        forward()
    g = [init_x.grad[None][0], init_x.grad[None][1], init_v.grad[None][0], init_v.grad[None][1]]
    return float(loss[None]), [float(a) for a in g]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    p = [0.1, 0.5, 0.3, 0.0]
    t0 = time.perf_counter()
    l0, g0 = taped(p)
    first_ms = 1e3 * (time.perf_counter() - t0)
    eps = 1e-3
    fd = []
    for k in range(4):
        hi, lo = list(p), list(p)
        hi[k] += eps
        lo[k] -= eps
        fd.append((loss_at(hi) - loss_at(lo)) / (2 * eps))
    losses, ms = [], []
    for _ in range(args.iterations):
        t0 = time.perf_counter()
        l, g = taped(p)
        ms.append(1e3 * (time.perf_counter() - t0))
        losses.append(l)
        p = [a - LR * b for a, b in zip(p, g)]
    out = {
        "taichi": ti.__version__,
        "loss_start": l0,
        "grad_start": g0,
        "fd_start": fd,
        "losses": losses,
        "final": p,
        "final_loss": loss_at(p),
        "first_ms": first_ms,
        "ms": statistics.median(ms),
    }
    if args.json:
        print(json.dumps(out))
    else:
        for k in range(0, len(losses), 20):
            print(f"iter {k}: loss {losses[k]:.6f}")
        print(f"final loss {out['final_loss']:.6f} at {p}; {out['ms']:.1f} ms/iteration")


if __name__ == "__main__":
    main()
