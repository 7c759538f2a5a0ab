"""PhiFlow 3.4 side of `diffsim bench train`: Solver-in-the-Loop training iterations per second
on the wake flow at 32x64, batch 3, next to diffsim measured the same day on this machine.

The iteration is diffsim's (`train::iteration`): m hybrid steps s <- P(s); s <- s + C(s, Re),
the mean over the steps of the normalised MSE against reference frames, its gradient through
every step (NON: m = 1), one Adam step; the whole iteration is jit-compiled. P is the `wake`
scene at 32x64 on a 100 x 200 box: open sides (zero-gradient velocity), a disc r = 10 at
(50, 50), v_y = 1 forced on the two lowest face rows and on the outer x-face columns, explicit
diffusion with nu = 100^2 * 10 / 128^2 / Re, semi-Lagrangian self-advection, and PhiFlow's
pressure projection with the obstacle (CG to a relative tolerance of 1e-3, PhiFlow's
training default; diffsim solves exactly with a factored matrix). C is the corrector: a 5x5
convolution 3 -> w with LeakyReLU(0.3), b residual blocks of two 5x5 convolutions w -> w,
a 5x5 convolution w -> 2 ('same' zero padding); small: w = 16, b = 2; mars-moon: w = 32,
b = 5. Items: Re 97.66, 781.25 and 3125, frames 40 steps after the scene's start (v_y = 1).
"Network only" runs the same iteration with the identity for P.

Backends: JAX (jax.jit over the whole iteration) and torch (the solver step through PhiFlow's
`math.jit_compile`, the network and Adam in eager torch with 2 threads: without the jit, the
eager solver runs NON at ~6 it/s). Optimiser: Adam (optax for JAX, torch.optim for torch),
learning rate 1e-5.

Setup (PyPI): python3 -m venv /tmp/phienv && /tmp/phienv/bin/pip install phiflow==3.4.0 "jax[cpu]" optax h5py [torch]
Run:          /tmp/phienv/bin/python benches/phiflow/sol_train.py --backend jax [--model small] [--unroll 1 4 8] [--iters 20] [--json]
"""

import argparse
import json
import statistics
import time

import numpy as np

REYNOLDS = [97.66, 781.25, 3125.0]
WARMUP = 40
NX, NY = 32, 64
WIDTHS = {"small": (16, 2), "mars-moon": (32, 5)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", choices=["jax", "torch"], default="jax")
    ap.add_argument("--model", nargs="+", default=["small"])
    ap.add_argument("--unroll", nargs="+", type=int, default=[1, 4, 8])
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.backend == "jax":
        from phi.jax import flow
    else:
        from phi.torch import flow
    physics = Physics(flow)
    rows = []
    for model in a.model:
        for unroll in a.unroll:
            bench = (JaxIteration if a.backend == "jax" else TorchIteration)(
                physics, model, unroll
            )
            rates, net_rates = [], []
            for _ in range(a.rounds):
                rates.append(bench.rate(a.iters, solver=True))
                net_rates.append(bench.rate(a.iters, solver=False))
            row = dict(
                backend=a.backend,
                model=model,
                unroll=unroll,
                it_per_s=statistics.median(rates),
                network_only_it_per_s=statistics.median(net_rates),
                first_call_s=bench.first_call_s,
            )
            rows.append(row)
            if a.json:
                print(json.dumps(row), flush=True)
            else:
                print(
                    f"PhiFlow 3.4 + {a.backend} {model} unroll {unroll}: "
                    f"{row['it_per_s']:.2f} it/s, network only {row['network_only_it_per_s']:.2f} it/s, "
                    f"first call {bench.first_call_s:.1f} s",
                    flush=True,
                )


class Physics:
    """The source solver P on PhiFlow, and the conversions between its staggered grids and
    the network's [batch, channel, y, x] arrays."""

    def __init__(self, flow):
        self.flow = flow
        f = flow
        self.domain = dict(
            x=NX, y=NY, bounds=f.Box(x=100, y=200), extrapolation=f.extrapolation.BOUNDARY
        )
        self.obstacle = f.Obstacle(f.Sphere(x=50, y=50, radius=10))
        dx = 100 / NX
        # Faces forced to v_y = 1: the two lowest rows of y-faces and the outer x-face columns.
        self.mask = f.StaggeredGrid(
            f.union(
                f.Box(x=(-10, 110), y=(-10, 2 * dx - dx / 2)),
                f.Box(x=(-10, dx / 2), y=(-10, 210)),
                f.Box(x=(100 - dx / 2, 110), y=(-10, 210)),
            ),
            **self.domain,
        )
        self.nu = f.math.tensor(
            [100.0**2 * 10.0 / 128**2 / re for re in REYNOLDS], f.batch("b")
        )
        self.solve = f.Solve("CG", 1e-3, 1e-5, max_iterations=2000)
        self.step_jit = f.math.jit_compile(self.step)

    def step(self, v):
        f = self.flow
        v = f.diffuse.explicit(v, self.nu, 1.0)
        v = v * (1 - self.mask) + self.mask * f.vec(x=0, y=1)
        v = f.advect.semi_lagrangian(v, v, 1.0)
        v, _ = f.fluid.make_incompressible(v, [self.obstacle], self.solve)
        return v

    def frames(self, count):
        """`count` frames per item from the scene's start (v_y = 1), after WARMUP steps."""
        f = self.flow
        v = f.StaggeredGrid(f.vec(x=0, y=1), **self.domain) * f.math.ones(f.batch(b=3))
        out = []
        for t in range(WARMUP + count - 1):
            v = self.step(v)
            if t + 1 >= WARMUP:
                out.append(v)
        return out

    def faces(self, v):
        """(u [b, nx+1, ny], v [b, nx, ny+1]) native arrays of a staggered grid (x before y,
        PhiFlow's order; the network then sees [b, c, x, y], the same work as [b, c, y, x])."""
        vx, vy = self.flow.math.unstack(v.values, "~vector")
        return (
            vx.native(["b", "x", "y"]),
            vy.native(["b", "x", "y"]),
        )

    def grid(self, u, v):
        f = self.flow
        vx = f.math.tensor(u, f.batch("b"), f.spatial("x,y"))
        vy = f.math.tensor(v, f.batch("b"), f.spatial("x,y"))
        values = f.math.stack([vx, vy], f.dual(vector="x,y"))
        return f.StaggeredGrid(values, **self.domain)


def corrector_spec(model):
    width, blocks = WIDTHS[model]
    return [(3, width)] + [(width, width)] * (2 * blocks) + [(width, 2)]


def glorot(rng, cin, cout):
    lim = np.sqrt(6.0 / (25 * cin + 25 * cout))
    return rng.uniform(-lim, lim, (cout, cin, 5, 5)).astype(np.float32)


class Iteration:
    """Shared set-up: reference frames, statistics and the parameters."""

    def __init__(self, physics, model, unroll):
        self.p = physics
        self.unroll = unroll
        frames = physics.frames(unroll + 1)
        self.frames = [tuple(np.asarray(x) for x in physics.faces(v)) for v in frames]
        us = np.concatenate([fr[0].ravel() for fr in self.frames])
        vs = np.concatenate([fr[1].ravel() for fr in self.frames])
        self.std_u, self.std_v = float(np.abs(us).std()), float(np.abs(vs).std())
        re = np.array(REYNOLDS)
        self.re_channel = (re / re.std()).astype(np.float32)
        rng = np.random.default_rng(0)
        self.weights = [
            (glorot(rng, ci, co), np.zeros(co, np.float32)) for ci, co in corrector_spec(model)
        ]
        self.first_call_s = None

    def rate(self, iters, solver):
        self.run(solver)  # compiles on the first call of each variant
        t = time.perf_counter()
        for _ in range(iters):
            self.run(solver)
        return iters / (time.perf_counter() - t)


class JaxIteration(Iteration):
    def __init__(self, physics, model, unroll):
        super().__init__(physics, model, unroll)
        import jax
        import jax.numpy as jnp
        import optax

        self.jax, self.jnp = jax, jnp
        self.params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in self.weights]
        self.opt = optax.adam(1e-5)
        self.state = self.opt.init(self.params)
        self.steps = {}
        t = time.perf_counter()
        self.run(True)
        self.first_call_s = time.perf_counter() - t

    def network(self, params, x):
        jax, jnp = self.jax, self.jnp

        def conv(x, wb):
            w, b = wb
            y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME")
            return y + b[None, :, None, None]

        act = lambda z: jax.nn.leaky_relu(z, 0.3)
        h = act(conv(x, params[0]))
        blocks = (len(params) - 2) // 2
        for k in range(blocks):
            inner = act(conv(h, params[1 + 2 * k]))
            h = act(h + conv(inner, params[2 + 2 * k]))
        return conv(h, params[-1])

    def make_step(self, solver):
        jax, jnp, p = self.jax, self.jnp, self.p
        su, sv, re = self.std_u, self.std_v, jnp.asarray(self.re_channel)
        frames = [tuple(jnp.asarray(x) for x in fr) for fr in self.frames]

        def loss_fn(params):
            u, v = frames[0]
            total = 0.0
            for i in range(1, self.unroll + 1):
                if solver:
                    u, v = p.faces(p.step(p.grid(u, v)))
                feats = jnp.stack(
                    [v[:, :, :-1] / sv, u[:, :-1, :] / su, jnp.ones_like(u[:, :-1, :]) * re[:, None, None]],
                    axis=1,
                )
                c = self.network(params, feats)
                v = v + jnp.pad(c[:, 0] * sv, ((0, 0), (0, 0), (0, 1)))
                u = u + jnp.pad(c[:, 1] * su, ((0, 0), (0, 1), (0, 0)))
                tu, tv = frames[i]
                total = total + jnp.mean(
                    jnp.concatenate([((u - tu) / su).ravel(), ((v - tv) / sv).ravel()]) ** 2
                )
            return total / self.unroll

        def step(params, state):
            loss, grads = jax.value_and_grad(loss_fn)(params)
            updates, state = self.opt.update(grads, state, params)
            import optax

            return optax.apply_updates(params, updates), state, loss

        return jax.jit(step)

    def run(self, solver):
        if solver not in self.steps:
            self.steps[solver] = self.make_step(solver)
        self.params, self.state, loss = self.steps[solver](self.params, self.state)
        self.jax.block_until_ready(loss)


class TorchIteration(Iteration):
    def __init__(self, physics, model, unroll):
        super().__init__(physics, model, unroll)
        import torch

        self.torch = torch
        torch.set_num_threads(2)
        self.params = [
            (torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True))
            for w, b in self.weights
        ]
        self.opt = torch.optim.Adam([t for wb in self.params for t in wb], lr=1e-5)
        self.frames_t = [tuple(torch.tensor(x) for x in fr) for fr in self.frames]
        t = time.perf_counter()
        self.run(True)
        self.first_call_s = time.perf_counter() - t

    def network(self, x):
        F = self.torch.nn.functional
        conv = lambda x, wb: F.conv2d(x, wb[0], wb[1], padding=2)
        act = lambda z: F.leaky_relu(z, 0.3)
        p = self.params
        h = act(conv(x, p[0]))
        for k in range((len(p) - 2) // 2):
            inner = act(conv(h, p[1 + 2 * k]))
            h = act(h + conv(inner, p[2 + 2 * k]))
        return conv(h, p[-1])

    def run(self, solver):
        torch, p = self.torch, self.p
        F = torch.nn.functional
        su, sv = self.std_u, self.std_v
        re = torch.tensor(self.re_channel)
        u, v = self.frames_t[0]
        total = 0.0
        for i in range(1, self.unroll + 1):
            if solver:
                u, v = p.faces(p.step_jit(p.grid(u, v)))
            feats = torch.stack(
                [v[:, :, :-1] / sv, u[:, :-1, :] / su, torch.ones_like(u[:, :-1, :]) * re[:, None, None]],
                dim=1,
            )
            c = self.network(feats)
            v = v + F.pad(c[:, 0] * sv, (0, 1, 0, 0))
            u = u + F.pad(c[:, 1] * su, (0, 0, 0, 1))
            tu, tv = self.frames_t[i]
            total = total + torch.mean(
                torch.cat([((u - tu) / su).ravel(), ((v - tv) / sv).ravel()]) ** 2
            )
        loss = total / self.unroll
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()


if __name__ == "__main__":
    main()
