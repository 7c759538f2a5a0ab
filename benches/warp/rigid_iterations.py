"""Warp 1.9.1 on the CPU: wall time of one optimisation iteration (forward through every frame
under `wp.Tape`, tape backward, Adam update) of its rigid-body trajectory example
`warp.examples.optim.example_trajectory` (a free sphere pushed by per-frame forces, the
SemiImplicitIntegrator, 60 fps, one step per frame), the anchor side of
`diffsim bench rigid --warp FILE`.

Cases:
- `trajectory`, frames 100 (the example as shipped) and 1000 (`num_frames=1000`; its
  reference circle is then sampled at 1000 points). Each size is built once; one untimed
  iteration compiles the kernels; then `--repeats` iterations are timed one by one.
- `sphere-pushing`: the scene of `warp/tests/sim/test_sim_grad.py::test_sphere_pushing_on_rails`
  (prismatic rails, SemiImplicitIntegrator, 150 frames x 50 substeps = 7500 steps, the push
  as a body force for the first 10 frames), rebuilt here as in the test: the time of one
  taped rollout + backward, and Warp's tape gradient next to its central difference with
  the test's step 0.2 for the actions 80 and 40.

    python3 -m venv .venv && .venv/bin/pip install warp-lang==1.9.1 numpy
    .venv/bin/python benches/warp/rigid_iterations.py --json > warp-rigid.jsonl

Each output line (with --json) is one JSON object: case, frames, ms (median over the
repeats), all_ms, and the loss before the first and after the last timed iteration.
"""

import argparse
import contextlib
import json
import statistics
import sys
import time

with contextlib.redirect_stdout(sys.stderr):
    import warp as wp
    import warp.sim

    wp.config.quiet = True
    wp.init()
    from warp.examples.optim.example_trajectory import Example


def sphere_pushing(repeats):
    """One env of Warp's sphere-pushing test (its 2 envs are identical copies): times and
    gradients."""
    import numpy as np

    num_envs, frames, substeps, dt, target = 2, 150, 50, 1.0 / 30.0, 3.0
    builder_all = wp.sim.ModelBuilder()
    builder_all.default_shape_ke, builder_all.default_shape_kd = 1e3, 1e1
    for _ in range(num_envs):
        b = wp.sim.ModelBuilder(gravity=0.0)
        b.default_shape_ke, b.default_shape_kd = 1e3, 1e1
        b0 = b.add_body(name="pusher")
        b.add_shape_sphere(b0, radius=0.4, density=100.0)
        b1 = b.add_body(name="passive")
        b.add_shape_sphere(b1, radius=0.47, density=100.0)
        b.add_joint_prismatic(-1, b0)
        b.add_joint_prismatic(-1, b1)
        b.joint_q[-2:] = [0.0, 2.0]
        builder_all.add_builder(b)
    builder_all.gravity = 0.0
    model = builder_all.finalize(requires_grad=True)
    model.ground = False
    model.joint_attach_ke, model.joint_attach_kd = 32000.0 * 16, 500.0 * 4
    wp.sim.eval_fk(model, model.joint_q, model.joint_qd, None, model)
    model.rigid_contact_margin = 10.0
    wp.sim.collide(model, model.state())
    integ = wp.sim.SemiImplicitIntegrator()

    @wp.kernel
    def assign_force(action: wp.array(dtype=float), body_f: wp.array(dtype=wp.spatial_vector)):
        tid = wp.tid()
        body_f[2 * tid] = wp.spatial_vector(0.0, 0.0, 0.0, action[tid], 0.0, 0.0)

    @wp.kernel
    def evaluate_loss(joint_q: wp.array(dtype=float), target: float, loss: wp.array(dtype=float)):
        tid = wp.tid()
        d = (target - joint_q[tid * 2 + 1]) ** 2.0
        wp.atomic_add(loss, 0, d)

    def rollout(action):
        states = [model.state() for _ in range(frames * substeps + 1)]
        wp.sim.eval_fk(model, model.joint_q, model.joint_qd, None, states[0])
        control = model.control()
        i = 0
        for step in range(frames):
            for _ in range(substeps):
                if step < 10:
                    wp.launch(assign_force, dim=num_envs, inputs=[action], outputs=[states[i].body_f])
                integ.simulate(model, states[i], states[i + 1], dt / substeps, control)
                i += 1
        wp.sim.eval_ik(model, states[-1], states[-1].joint_q, states[-1].joint_qd)
        loss = wp.zeros(1, requires_grad=True)
        wp.launch(evaluate_loss, dim=num_envs, inputs=[states[-1].joint_q, target], outputs=[loss])
        return loss

    def loss_and_grad(a):
        action = wp.array([a] * num_envs, dtype=wp.float32, requires_grad=True)
        tape = wp.Tape()
        with tape:
            loss = rollout(action)
        tape.backward(loss=loss)
        g = action.grad.numpy().copy()
        tape.zero()
        return float(loss.numpy()[0]), g

    def loss_only(a):
        return float(rollout(wp.array([a] * num_envs, dtype=wp.float32)).numpy()[0])

    loss_and_grad(80.0)  # compiles
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        loss_and_grad(80.0)
        times.append(1e3 * (time.perf_counter() - t0))
    checks = {}
    for a in (80.0, 40.0):
        loss, g = loss_and_grad(a)
        fd = (loss_only(a + 0.2) - loss_only(a - 0.2)) / 0.4
        # The action is one number per env; the loss sums both envs: dL/da of a shared action.
        checks[str(a)] = {"loss": loss, "tape_grad": float(np.sum(g)), "fd_step_0.2": fd}
    return {"case": "sphere-pushing", "frames": frames, "steps": frames * substeps,
            "ms": statistics.median(times), "all_ms": times, "checks": checks}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-pushing", action="store_true", help="skip the sphere-pushing case")
    args = parser.parse_args()
    for frames in args.frames:
        with contextlib.redirect_stdout(sys.stderr):
            ex = Example(stage_path=None, verbose=False, num_frames=frames)
            ex.step()  # compiles the kernels
            first_loss = float(ex.loss.numpy()[0])
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                ex.step()
                times.append(1e3 * (time.perf_counter() - t0))
        rec = {
            "case": "trajectory",
            "frames": frames,
            "ms": statistics.median(times),
            "all_ms": times,
            "first_loss": first_loss,
            "last_loss": float(ex.loss.numpy()[0]),
        }
        if args.json:
            print(json.dumps(rec), flush=True)
        else:
            print(f"trajectory, {frames} frames: {rec['ms']:.1f} ms per iteration (median of {args.repeats})")
    if not args.no_pushing:
        with contextlib.redirect_stdout(sys.stderr):
            rec = sphere_pushing(max(1, args.repeats // 3))
        if args.json:
            print(json.dumps(rec), flush=True)
        else:
            print(f"sphere-pushing, {rec['steps']} steps: {rec['ms']:.1f} ms per (loss, gradient); {rec['checks']}")


if __name__ == "__main__":
    main()
