"""Warp 1.9.1 on the CPU: its inverse-kinematics example (`warp.examples.optim.example_inverse_kinematics`,
as shipped: a 4-link planar chain, revolute joints about z, links 1 m, target (2, 1, 0) for the
last body's origin, gradient descent on joint_q with rate 0.01 by wp.Tape), the anchor side of
`diffsim experiment ik-chain`. Prints one JSON line: the loss before iterations 0, 1, 10, 100, 200
and after 512 iterations, the final joint angles (deg), and the median wall time of one iteration.

    python3 -m venv .venv && .venv/bin/pip install warp-lang==1.9.1 numpy
    .venv/bin/python benches/warp/ik_chain.py
"""
import contextlib
import json
import statistics
import sys
import time

import numpy as np

with contextlib.redirect_stdout(sys.stderr):
    import warp as wp

    wp.config.quiet = True
    wp.init()
    from warp.examples.optim.example_inverse_kinematics import Example

with wp.ScopedDevice("cpu"), contextlib.redirect_stdout(sys.stderr):
    ex = Example(stage_path=None)
    losses, times = [], []
    for it in range(512):
        t0 = time.perf_counter()
        ex.step()
        times.append(time.perf_counter() - t0)
        losses.append(float(ex.loss.numpy()[0]))
    ex.forward()
    final = float(ex.loss.numpy()[0])
    q = np.rad2deg(ex.model.joint_q.numpy()).tolist()
print(json.dumps(dict(
    warp=wp.__version__,
    loss_before={k: losses[k] for k in (0, 1, 10, 100, 200)},
    loss_after_512=final,
    joint_q_deg=q,
    ms_per_iteration=1e3 * statistics.median(times[1:]),
)))
