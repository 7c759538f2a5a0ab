//! A kinematic tree: links in topological order, each with its joint to its parent (or to the
//! world), the joint's placement in the parent's frame, and the link's inertia.

use super::joint::JointKind;
use super::spatial::{Inertia, Transform, Vec3};
use crate::error::{DiffsimError, Result};

/// A joint: its kind, its frame in the parent link's frame, and the rotor inertia and viscous
/// damping of each of its velocity coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct Joint {
    pub kind: JointKind,
    /// `ʲX_λ`: from the parent link's frame to the joint frame (the child's frame at `q = 0`).
    pub placement: Transform<f64>,
    /// Rotor inertia added to the joint-space inertia's diagonal (kg·m² or kg).
    pub armature: f64,
    /// Viscous damping `−d·q̇` (N·m·s/rad or N·s/m), applied by the integrators.
    pub damping: f64,
    /// A spring `−k·q` toward `q = 0` (N·m/rad or N/m; revolute and prismatic joints:
    /// MuJoCo's joint `stiffness` with `springref` 0).
    pub stiffness: f64,
    /// How the per-coordinate control enters (default: the control is the joint force).
    pub drive: Drive,
    /// A smooth position limit (revolute and prismatic joints).
    pub limit: Option<JointLimit>,
}

impl Joint {
    /// A joint of `kind` at `placement`, no armature, damping or limit; a motor of gear 1.
    pub fn new(kind: JointKind, placement: Transform<f64>) -> Self {
        Self {
            kind,
            placement,
            armature: 0.0,
            damping: 0.0,
            stiffness: 0.0,
            drive: Drive::default(),
            limit: None,
        }
    }
}

/// A link.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    pub name: String,
    /// The parent link (None: the world).
    pub parent: Option<usize>,
    pub joint: Joint,
    /// Mass, centre of mass and rotational inertia about it, in the link frame.
    pub inertia: Inertia<f64>,
}

/// A kinematic tree under gravity.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Articulation {
    /// Links, every parent before its children.
    pub links: Vec<Link>,
    /// Gravity (m/s², world frame).
    pub gravity: Vec3<f64>,
}

impl Articulation {
    /// Checks the tree: parents before children, unit joint axes, finite placements, and
    /// inertias with non-negative mass and a symmetric positive semi-definite rotational part
    /// that satisfies the triangle inequality.
    pub fn validate(&self) -> Result<()> {
        for (i, l) in self.links.iter().enumerate() {
            let fail = |what: String| {
                Err(DiffsimError::config(format!(
                    "link {i} ('{}'): {what}",
                    l.name
                )))
            };
            if let Some(p) = l.parent
                && p >= i
            {
                return fail(format!("its parent {p} does not come before it"));
            }
            if let JointKind::Revolute { axis } | JointKind::Prismatic { axis } = l.joint.kind {
                let n = axis.iter().map(|x| x * x).sum::<f64>().sqrt();
                if (n - 1.0).abs() >= 1e-9 || n.is_nan() {
                    return fail(format!("its joint axis {axis:?} is not a unit vector"));
                }
            }
            let t = &l.joint.placement;
            let e = &t.e;
            let orthonormal = (0..3).all(|a| {
                (0..3).all(|b| {
                    let d: f64 = (0..3).map(|k| e[a][k] * e[b][k]).sum();
                    (d - f64::from(u8::from(a == b))).abs() < 1e-9
                })
            });
            if !orthonormal || !t.r.iter().all(|x| x.is_finite()) {
                return fail("its joint placement is not a rigid transform".into());
            }
            if let Some(why) = check(&l.joint) {
                return fail(why);
            }
            let ine = &l.inertia;
            let j = &ine.ic;
            let symmetric = (0..3).all(|a| {
                (0..3).all(|b| (j[a][b] - j[b][a]).abs() <= 1e-12 * (1.0 + j[a][b].abs()))
            });
            let d = [j[0][0], j[1][1], j[2][2]];
            let triangle = d[0] + d[1] >= d[2] * (1.0 - 1e-9)
                && d[1] + d[2] >= d[0] * (1.0 - 1e-9)
                && d[0] + d[2] >= d[1] * (1.0 - 1e-9);
            let minors = d.iter().all(|&x| x >= 0.0)
                && j[0][0] * j[1][1] - j[0][1] * j[1][0] >= -1e-12
                && det3(j) >= -1e-15;
            if !(ine.m >= 0.0 && ine.m.is_finite() && ine.com.iter().all(|x| x.is_finite())) {
                return fail(format!("mass {} is negative or not finite", ine.m));
            }
            if !(symmetric && triangle && minors) {
                return fail("its rotational inertia is not a symmetric positive semi-definite tensor of a mass distribution".into());
            }
        }
        Ok(())
    }

    /// Configuration coordinates.
    pub fn nq(&self) -> usize {
        self.links.iter().map(|l| l.joint.kind.nq()).sum()
    }

    /// Velocity coordinates.
    pub fn nv(&self) -> usize {
        self.links.iter().map(|l| l.joint.kind.nv()).sum()
    }

    /// Per link: the offsets of its joint's coordinates in `q` and in `v`.
    pub fn offsets(&self) -> Vec<(usize, usize)> {
        let (mut iq, mut iv) = (0, 0);
        self.links
            .iter()
            .map(|l| {
                let o = (iq, iv);
                iq += l.joint.kind.nq();
                iv += l.joint.kind.nv();
                o
            })
            .collect()
    }

    /// `q` with every ball and free joint's quaternion scaled to unit length (as MuJoCo does
    /// to a keyframe's); `None` if one is zero or not finite. The dynamics and their
    /// derivatives assume unit quaternions.
    pub fn normalized(&self, q: &[f64]) -> Option<Vec<f64>> {
        let mut out = q.to_vec();
        for (l, (iq, _)) in self.links.iter().zip(self.offsets()) {
            let at = match l.joint.kind {
                JointKind::Ball => iq,
                JointKind::Free => iq + 3,
                _ => continue,
            };
            let quat = out.get_mut(at..at + 4)?;
            let norm = quat.iter().map(|x| x * x).sum::<f64>().sqrt();
            if !(norm.is_finite() && norm > 0.0) {
                return None;
            }
            quat.iter_mut().for_each(|x| *x /= norm);
        }
        Some(out)
    }

    /// The neutral configuration.
    pub fn neutral(&self) -> Vec<f64> {
        self.links
            .iter()
            .flat_map(|l| l.joint.kind.neutral())
            .collect()
    }
}

fn det3(j: &[[f64; 3]; 3]) -> f64 {
    j[0][0] * (j[1][1] * j[2][2] - j[1][2] * j[2][1])
        - j[0][1] * (j[1][0] * j[2][2] - j[1][2] * j[2][0])
        + j[0][2] * (j[1][0] * j[2][1] - j[1][1] * j[2][0])
}

/// How a joint's per-coordinate control `u` becomes a joint force `τ` (N·m or N).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Drive {
    /// A motor: `τ = gear·u` on every coordinate of the joint (gear 1: `u` is the force).
    Motor { gear: f64 },
    /// A servo toward the target position `u` (rad or m): `τ = ke(u − q) − kd·q̇`. Warp's
    /// `TARGET_POSITION` mode; MuJoCo's `position` actuator with `kp = ke`, `kv = kd`.
    /// One-coordinate joints only.
    Position { ke: f64, kd: f64 },
    /// A servo toward the target velocity `u`: `τ = ke(u − q̇)`, faded out by the limit's
    /// `σ` weights while a limit is violated (Warp switches it off there). One-coordinate
    /// joints only.
    Velocity { ke: f64 },
    /// A Hill-type muscle–tendon unit whose control `u` is its activation `a ∈ [0, 1]`
    /// (see [`super::muscle`]: the force law, and the activation dynamics that turn
    /// excitations into activations). One-coordinate joints only.
    Muscle(super::muscle::Muscle),
}

impl Default for Drive {
    fn default() -> Self {
        Drive::Motor { gear: 1.0 }
    }
}

/// A smooth limit `lower ≤ q ≤ upper` on a one-coordinate joint.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JointLimit {
    /// Lower bound (rad or m).
    pub lower: f64,
    /// Upper bound (rad or m).
    pub upper: f64,
    /// Stiffness past the bound (N·m/rad or N/m).
    pub ke: f64,
    /// Damping while past the bound (N·m·s/rad or N·s/m).
    pub kd: f64,
    /// The smoothing length `s` (rad or m): the width of the softened corner.
    pub smoothing: f64,
}

/// Checks a joint's damping, armature, drive and limit; the reason when they are not valid.
fn check(j: &Joint) -> Option<String> {
    let ok = |x: f64| x >= 0.0 && x.is_finite();
    if !(ok(j.armature) && ok(j.damping) && ok(j.stiffness)) {
        return Some("negative or non-finite armature, damping or stiffness".into());
    }
    let single = j.kind.nv() == 1;
    if j.stiffness > 0.0 && !single {
        return Some("joint springs act on revolute and prismatic joints only".into());
    }
    match j.drive {
        Drive::Motor { gear } if !gear.is_finite() => {
            return Some(format!("motor gear {gear} is not finite"));
        }
        Drive::Position { ke, kd } if !(ok(ke) && ok(kd)) => {
            return Some("a position servo needs finite non-negative gains".into());
        }
        Drive::Velocity { ke } if !ok(ke) => {
            return Some("a velocity servo needs a finite non-negative gain".into());
        }
        Drive::Position { .. } | Drive::Velocity { .. } if !single => {
            return Some("servos act on revolute and prismatic joints only".into());
        }
        Drive::Muscle(_) if !single => {
            return Some("muscles act on revolute and prismatic joints only".into());
        }
        Drive::Muscle(m) => {
            if let Some(why) = m.check() {
                return Some(why);
            }
        }
        _ => {}
    }
    if let Some(l) = j.limit {
        if !single {
            return Some("limits act on revolute and prismatic joints only".into());
        }
        if !(l.lower < l.upper
            && ok(l.ke)
            && ok(l.kd)
            && l.smoothing > 0.0
            && l.smoothing.is_finite())
        {
            return Some(format!(
                "limit needs lower < upper, finite non-negative ke and kd and a positive smoothing length (got {l:?})"
            ));
        }
    }
    None
}
