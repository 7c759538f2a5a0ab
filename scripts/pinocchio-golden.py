#!/usr/bin/env python3
"""Golden values for diffsim's articulation tests from Pinocchio (pip install pin==4.1.0 numpy).

Builds the two test trees of tests/articulation/ in Pinocchio -- the three-link chain of
revolute joints about y, and the tree with a free base, a ball joint, unaligned revolute and
prismatic joints, a fixed bracket and armature 0.05 on every coordinate -- and reads the
branched arm of tests/data/urdf-arm.urdf with Pinocchio's own URDF parser; evaluates the
joint-space inertia, RNEA, ABA and the RNEA and ABA derivatives, and writes them in diffsim's
conventions:
quaternions (w, x, y, z); a free joint's velocity angular first, [w; v] (Pinocchio's is [v; w]).

Usage: python3 scripts/pinocchio-golden.py > tests/data/pinocchio-golden.json
"""
import json
import os
import sys

import numpy as np
import pinocchio as pin


def rot(axis, angle):
    axis = np.asarray(axis, float)
    return pin.AngleAxis(angle, axis / np.linalg.norm(axis)).toRotationMatrix()


def chain():
    model = pin.Model()
    parent = 0
    for i in range(3):
        placement = pin.SE3(np.eye(3), np.array([0.0, 0.0, 0.0] if i == 0 else [1.0, 0.0, 0.0]))
        parent = model.addJoint(parent, pin.JointModelRY(), placement, f"j{i}")
        inertia = pin.Inertia(1.0, np.array([0.5, 0.0, 0.0]), np.diag([0.01, 1 / 12, 1 / 12]))
        model.appendBodyToJoint(parent, inertia, pin.SE3.Identity())
    model.gravity.linear = np.array([0.0, 0.0, -9.81])
    q = np.array([0.3, -0.5, 0.7])
    v = np.array([0.1, 0.2, -0.3])
    return model, q, v, list(range(3)), None


def tree():
    model = pin.Model()
    off_axis = np.array([[0.3, 0.02, -0.01], [0.02, 0.25, 0.03], [-0.01, 0.03, 0.2]])
    base = model.addJoint(0, pin.JointModelFreeFlyer(), pin.SE3.Identity(), "base")
    model.appendBodyToJoint(base, pin.Inertia(3.0, np.array([0.05, -0.02, 0.1]), off_axis), pin.SE3.Identity())
    shoulder = model.addJoint(base, pin.JointModelSpherical(), pin.SE3(rot([0, 0, 1], 0.4), np.array([0.2, 0.1, 0.0])), "shoulder")
    model.appendBodyToJoint(shoulder, pin.Inertia(1.2, np.array([0.0, 0.0, -0.3]), np.diag([0.04, 0.05, 0.01])), pin.SE3.Identity())
    axis = np.array([1.0, 2.0, 3.0]) / np.sqrt(14.0)
    elbow = model.addJoint(shoulder, pin.JointModelRevoluteUnaligned(axis), pin.SE3(np.eye(3), np.array([0.0, 0.0, -0.6])), "elbow")
    model.appendBodyToJoint(elbow, pin.Inertia(0.8, np.array([0.1, 0.0, -0.2]), np.diag([0.02, 0.03, 0.015])), pin.SE3.Identity())
    slide = model.addJoint(elbow, pin.JointModelPrismaticUnaligned(np.array([0.0, 0.6, 0.8])), pin.SE3(rot([1, 0, 0], -0.3), np.array([0.0, 0.1, -0.4])), "slide")
    model.appendBodyToJoint(slide, pin.Inertia(0.5, np.array([0.0, 0.05, 0.0]), np.diag([0.01, 0.01, 0.01])), pin.SE3.Identity())
    bracket = pin.SE3(rot([0, 1, 0], 0.7), np.array([-0.2, 0.0, 0.1]))
    model.appendBodyToJoint(base, pin.Inertia(0.4, np.array([0.0, 0.1, 0.0]), np.diag([0.005, 0.004, 0.003])), bracket)
    wrist = model.addJoint(base, pin.JointModelRZ(), bracket * pin.SE3(np.eye(3), np.array([0.0, 0.3, 0.0])), "wrist")
    model.appendBodyToJoint(wrist, pin.Inertia(0.6, np.array([0.05, 0.05, 0.0]), np.diag([0.01, 0.02, 0.02])), pin.SE3.Identity())
    model.armature = np.full(model.nv, 0.05)
    model.gravity.linear = np.array([0.0, 0.0, -9.81])
    # diffsim's velocity order: base [w; v] (Pinocchio [v; w]), then the rest.
    perm = [3, 4, 5, 0, 1, 2] + list(range(6, model.nv))
    d = np.array([0.7 * np.sin(1.7 * k + 0.3) for k in range(model.nv)])
    q = pin.integrate(model, pin.neutral(model), d[np.argsort(perm)])
    v = np.array([1.1 * np.cos(0.9 * k + 1.0) for k in range(model.nv)])[np.argsort(perm)]
    return model, q, v, perm, [(3, 7), (7, 11)]


def urdf_arm():
    """tests/data/urdf-arm.urdf through Pinocchio's own URDF parser (fixed base)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "urdf-arm.urdf")
    model = pin.buildModelFromUrdf(path)
    print("urdf-arm joints:", list(model.names)[1:], file=sys.stderr)
    nv = model.nv
    q = np.array([0.4 * np.sin(1.3 * k + 0.2) for k in range(nv)])
    v = np.array([0.9 * np.cos(0.7 * k + 0.5) for k in range(nv)])
    return model, q, v, list(range(nv)), None


def to_diffsim_q(q, quats):
    q = q.copy()
    for lo, hi in quats or []:
        x, y, z, w = q[lo:hi]
        q[lo:hi] = [w, x, y, z]
    return q


def golden(model, q, v, perm, quats):
    data = model.createData()
    nv = model.nv
    tau = np.array([1.0, -0.5, 0.25]) if nv == 3 else np.array([2.0 * np.sin(0.5 * k - 0.4) for k in range(nv)])[np.argsort(perm)]
    a = np.array([np.cos(0.4 * k) for k in range(nv)])[np.argsort(perm)]
    M = pin.crba(model, data, q)
    M = np.triu(M) + np.triu(M, 1).T
    bias = pin.rnea(model, data, q, v, np.zeros(nv))
    qdd = pin.aba(model, data, q, v, tau)
    pin.computeRNEADerivatives(model, data, q, v, a)
    dtau_dq, dtau_dv = data.dtau_dq.copy(), data.dtau_dv.copy()
    pin.computeABADerivatives(model, data, q, v, tau)
    ddq_dq, ddq_dv = data.ddq_dq.copy(), data.ddq_dv.copy()
    minv = np.triu(data.Minv) + np.triu(data.Minv, 1).T
    check = np.abs(pin.rnea(model, data, q, v, qdd) - tau).max()
    print(f"RNEA(q, v, ABA) - tau: {check:.1e}", file=sys.stderr)
    vec = lambda x: x[perm].tolist()
    mat = lambda x: x[np.ix_(perm, perm)].tolist()
    return {
        "q": to_diffsim_q(q, quats).tolist(),
        "v": vec(v),
        "tau": vec(tau),
        "a": vec(a),
        "mass": mat(M),
        "bias": vec(bias),
        "qdd": vec(qdd),
        "dtau_dq": mat(dtau_dq),
        "dtau_dv": mat(dtau_dv),
        "ddq_dq": mat(ddq_dq),
        "ddq_dv": mat(ddq_dv),
        "minv": mat(minv),
    }


if __name__ == "__main__":
    out = {
        "pinocchio": pin.__version__,
        "chain": golden(*chain()),
        "tree": golden(*tree()),
        "urdf_arm": golden(*urdf_arm()),
    }
    json.dump(out, sys.stdout)
    print()
