#!/usr/bin/env python3
"""Reference values for diffsim's MJCF reader from MuJoCo (pip install mujoco==4.0.1 numpy).

For each model -- tests/data/mjcf-arm.xml and dm_control's cartpole, acrobot and pendulum
(data/robots/dm_control/) -- MuJoCo compiles the file; at two states (qpos from a smooth
sequence around qpos0, quaternions normalised; qvel likewise) it records the joint-space inertia
(mj_fullM, armature included), the bias forces qfrc_bias (Coriolis, centrifugal and gravity:
RNEA at zero acceleration), the bodies' masses, the timestep and gravity, and per joint its
type, damping, armature and (when limited) range in radians or metres. MuJoCo's qpos and qvel
orders and conventions match diffsim's for hinge, slide and ball joints (ball: quaternion
w, x, y, z and body-frame angular velocity); the models have no free joints.

Usage: python3 scripts/mujoco-golden.py > tests/data/mjcf-golden.json
"""
import json
import os
import sys

import mujoco
import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODELS = {
    "mjcf_arm": "tests/data/mjcf-arm.xml",
    "cartpole": "data/robots/dm_control/cartpole.xml",
    "acrobot": "data/robots/dm_control/acrobot.xml",
    "pendulum": "data/robots/dm_control/pendulum.xml",
}


def state(model, k):
    qpos = model.qpos0.copy()
    for j in range(model.njnt):
        a = model.jnt_qposadr[j]
        t = model.jnt_type[j]
        if t == mujoco.mjtJoint.mjJNT_BALL:
            d = np.array([0.3 * np.sin(1.1 * (j + k) + 0.2), 0.2 * np.cos(0.7 * (j + k)), -0.25])
            quat = np.zeros(4)
            mujoco.mju_axisAngle2Quat(quat, d / np.linalg.norm(d), np.linalg.norm(d))
            res = np.zeros(4)
            mujoco.mju_mulQuat(res, qpos[a:a + 4], quat)
            qpos[a:a + 4] = res
        else:
            qpos[a] += 0.6 * np.sin(1.3 * (j + 2 * k) + 0.4)
    qvel = np.array([0.9 * np.cos(0.8 * i + k) for i in range(model.nv)])
    return qpos, qvel


def golden(path):
    model = mujoco.MjModel.from_xml_path(os.path.join(ROOT, path))
    data = mujoco.MjData(model)
    states = []
    for k in range(2):
        qpos, qvel = state(model, k)
        data.qpos[:] = qpos
        data.qvel[:] = qvel
        mujoco.mj_forward(model, data)
        mass = np.zeros((model.nv, model.nv))
        mujoco.mj_fullM(model, data, mass)
        states.append(dict(qpos=qpos.tolist(), qvel=qvel.tolist(), mass=mass.tolist(), bias=data.qfrc_bias.tolist()))
    joints = []
    for j in range(model.njnt):
        d = model.jnt_dofadr[j]
        joints.append(dict(
            name=mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j),
            type=int(model.jnt_type[j]),
            damping=float(model.dof_damping[d]),
            armature=float(model.dof_armature[d]),
            range=model.jnt_range[j].tolist() if model.jnt_limited[j] else None,
        ))
    return dict(
        mujoco=mujoco.__version__,
        timestep=float(model.opt.timestep),
        gravity=model.opt.gravity.tolist(),
        body_mass=model.body_mass[1:].tolist(),
        joints=joints,
        states=states,
    )


if __name__ == "__main__":
    json.dump({name: golden(path) for name, path in MODELS.items()}, sys.stdout, indent=1)
    print()
