//! The articulations' test fixtures: Pinocchio's chain, a tree with every joint kind, a
//! state of it away from the neutral configuration, and the readers of the golden files.

use diffsim::articulation::spatial::axis_angle;
use diffsim::articulation::{Articulation, Inertia, Joint, JointKind, Link, Transform, integrate};

/// How far a point sinks into the smooth law (stiffness `ke`, smoothing `s`) where it carries
/// `load`: `ke·s·softplus(−φ/s) = load` at `φ = −s·ln(e^y − 1)`, `y = load/(ke·s)`, written
/// `y + ln(1 − e^−y)` so that it stays finite for large `y`.
pub fn sink(load: f64, ke: f64, s: f64) -> f64 {
    let y = load / (ke * s);
    s * (y + (-(-y).exp_m1()).ln())
}

pub fn diag(a: f64, b: f64, c: f64) -> [[f64; 3]; 3] {
    [[a, 0.0, 0.0], [0.0, b, 0.0], [0.0, 0.0, c]]
}

pub fn at(r: [f64; 3]) -> Transform<f64> {
    Transform {
        r,
        ..Transform::identity()
    }
}

/// Pinocchio's test chain: three links joined by revolute joints about y, joint i + 1 at
/// (1, 0, 0) in link i, each link 1 kg with its centre at (0.5, 0, 0) and I_c = diag(0.01,
/// 1/12, 1/12); gravity (0, 0, −9.81).
pub fn chain() -> Articulation {
    let links = (0..3)
        .map(|i| Link {
            name: format!("link{i}"),
            parent: if i == 0 { None } else { Some(i - 1) },
            joint: Joint::new(
                JointKind::Revolute {
                    axis: [0.0, 1.0, 0.0],
                },
                at(if i == 0 { [0.0; 3] } else { [1.0, 0.0, 0.0] }),
            ),
            inertia: Inertia {
                m: 1.0,
                com: [0.5, 0.0, 0.0],
                ic: diag(0.01, 1.0 / 12.0, 1.0 / 12.0),
            },
        })
        .collect();
    Articulation {
        links,
        gravity: [0.0, 0.0, -9.81],
    }
}

/// A tree with every joint kind: a free base, a ball joint, a revolute and a prismatic joint
/// on one branch, a fixed link and a revolute joint on another; off-axis inertias,
/// armature, offsets.
pub fn tree() -> Articulation {
    let body = |m: f64, com: [f64; 3], ic: [[f64; 3]; 3]| Inertia { m, com, ic };
    let tilted = |r: [f64; 3], axis: [f64; 3], angle: f64| {
        let rot = axis_angle(axis, angle);
        Transform {
            e: std::array::from_fn(|i| std::array::from_fn(|j| rot[j][i])),
            r,
        }
    };
    let n = (1.0f64 + 4.0 + 9.0).sqrt();
    let link = |name: &str, parent: Option<usize>, kind: JointKind, placement, inertia| Link {
        name: name.into(),
        parent,
        joint: Joint {
            armature: 0.05,
            ..Joint::new(kind, placement)
        },
        inertia,
    };
    let off_axis = [[0.3, 0.02, -0.01], [0.02, 0.25, 0.03], [-0.01, 0.03, 0.2]];
    Articulation {
        links: vec![
            link(
                "base",
                None,
                JointKind::Free,
                Transform::identity(),
                body(3.0, [0.05, -0.02, 0.1], off_axis),
            ),
            link(
                "shoulder",
                Some(0),
                JointKind::Ball,
                tilted([0.2, 0.1, 0.0], [0.0, 0.0, 1.0], 0.4),
                body(1.2, [0.0, 0.0, -0.3], diag(0.04, 0.05, 0.01)),
            ),
            link(
                "elbow",
                Some(1),
                JointKind::Revolute {
                    axis: [1.0 / n, 2.0 / n, 3.0 / n],
                },
                at([0.0, 0.0, -0.6]),
                body(0.8, [0.1, 0.0, -0.2], diag(0.02, 0.03, 0.015)),
            ),
            link(
                "slide",
                Some(2),
                JointKind::Prismatic {
                    axis: [0.0, 0.6, 0.8],
                },
                tilted([0.0, 0.1, -0.4], [1.0, 0.0, 0.0], -0.3),
                body(0.5, [0.0, 0.05, 0.0], diag(0.01, 0.01, 0.01)),
            ),
            link(
                "bracket",
                Some(0),
                JointKind::Fixed,
                tilted([-0.2, 0.0, 0.1], [0.0, 1.0, 0.0], 0.7),
                body(0.4, [0.0, 0.1, 0.0], diag(0.005, 0.004, 0.003)),
            ),
            link(
                "wrist",
                Some(4),
                JointKind::Revolute {
                    axis: [0.0, 0.0, 1.0],
                },
                at([0.0, 0.3, 0.0]),
                body(0.6, [0.05, 0.05, 0.0], diag(0.01, 0.02, 0.02)),
            ),
        ],
        gravity: [0.0, 0.0, -9.81],
    }
}

/// A configuration of the tree away from the neutral one, a velocity and a torque.
pub fn state(m: &Articulation) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let nv = m.nv();
    let d: Vec<f64> = (0..nv)
        .map(|k| 0.7 * (1.7 * k as f64 + 0.3).sin())
        .collect();
    let q = integrate(m, &m.neutral(), &d);
    let v = (0..nv)
        .map(|k| 1.1 * (0.9 * k as f64 + 1.0).cos())
        .collect();
    let tau = (0..nv)
        .map(|k| 2.0 * (0.5 * k as f64 - 0.4).sin())
        .collect();
    (q, v, tau)
}

/// The branched arm of `tests/data/urdf-arm.urdf` (fixed base, default options).
pub fn urdf_arm() -> Articulation {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/urdf-arm.urdf");
    diffsim::articulation::read_urdf(std::path::Path::new(path), &Default::default()).unwrap()
}

/// A JSON array of numbers.
pub fn numbers(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// A JSON array of arrays of numbers.
pub fn rows(v: &serde_json::Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(numbers).collect()
}

/// A point mass `m` on a massless rod of length `l` hanging along −z, swinging about y.
pub fn pendulum(m: f64, l: f64) -> Articulation {
    Articulation {
        links: vec![Link {
            name: "bob".into(),
            parent: None,
            joint: Joint::new(
                JointKind::Revolute {
                    axis: [0.0, 1.0, 0.0],
                },
                Transform::identity(),
            ),
            inertia: Inertia {
                m,
                com: [0.0, 0.0, -l],
                ic: diag(0.0, 0.0, 0.0),
            },
        }],
        gravity: [0.0, 0.0, -9.81],
    }
}
