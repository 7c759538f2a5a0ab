//! Joint forces: drives (motors, PD position and velocity servos), smooth joint limits and
//! viscous damping, per velocity coordinate and in any [`Real`] scalar, so that the steppers'
//! dual-number Jacobians see every term.
//!
//! A limit uses the contact law of the solids and rigid bodies with the joint coordinate as the
//! signed distance: with `φ = q − lower` (or `upper − q`) and the smoothing length `s`,
//! `±ke·s·softplus(−φ/s) − kd·σ(−φ/s)·q̇`. It equals Warp's `eval_joint_force` limit
//! `ke(lower − q) − kd q̇` deep inside the violated range and is C^∞ across the limit, so
//! Newton and the implicit-function adjoint stay exact; `s → 0` recovers Warp's C⁰ law.

use super::Real;
use super::model::{Articulation, Joint};
use super::spatial::c;

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

/// `softplus(x) = ln(1 + eˣ)`, without overflow.
fn softplus<T: Real>(x: T) -> T {
    if x.re() > 0.0 {
        x + ((-x).exp() + c::<T>(1.0)).ln()
    } else {
        (x.exp() + c::<T>(1.0)).ln()
    }
}

/// The logistic function `σ(x) = 1/(1 + e⁻ˣ)`, without overflow.
fn sigmoid<T: Real>(x: T) -> T {
    if x.re() > 0.0 {
        c::<T>(1.0) / ((-x).exp() + c::<T>(1.0))
    } else {
        let e = x.exp();
        e / (e + c::<T>(1.0))
    }
}

/// The limit's force and its activity `1 − (1 − σ_lower)(1 − σ_upper)` at `(q, q̇)`.
fn limit_force<T: Real>(l: &JointLimit, q: T, qd: T) -> (T, T) {
    let s = l.smoothing;
    let below = (c::<T>(l.lower) - q) / s;
    let above = (q - c::<T>(l.upper)) / s;
    let (sl, su) = (sigmoid(below), sigmoid(above));
    let force = (softplus(below) - softplus(above)) * (l.ke * s) - (sl + su) * qd * l.kd;
    let one = c::<T>(1.0);
    (force, one - (one - sl) * (one - su))
}

/// The joint forces `τ(q, q̇, u)` (`nv` entries): drives, limits and damping.
pub fn joint_forces<T: Real>(m: &Articulation, q: &[T], v: &[T], u: &[T]) -> Vec<T> {
    let mut tau = vec![c::<T>(0.0); v.len()];
    for (l, (iq, iv)) in m.links.iter().zip(m.offsets()) {
        let j = &l.joint;
        let nv = j.kind.nv();
        for k in iv..iv + nv {
            tau[k] = -v[k] * j.damping;
        }
        if nv != 1 {
            if let Drive::Motor { gear } = j.drive {
                for k in iv..iv + nv {
                    tau[k] += u[k] * gear;
                }
            }
            continue;
        }
        let (qk, qd, uk) = (q[iq], v[iv], u[iv]);
        let (limit, active) = j
            .limit
            .map_or((c(0.0), c(0.0)), |lim| limit_force(&lim, qk, qd));
        let drive = match j.drive {
            Drive::Motor { gear } => uk * gear,
            Drive::Position { ke, kd } => (uk - qk) * ke - qd * kd,
            Drive::Velocity { ke } => (uk - qd) * ke * (c::<T>(1.0) - active),
        };
        tau[iv] += drive + limit;
    }
    tau
}

/// Checks a joint's damping, armature, drive and limit; the reason when they are not valid.
pub(super) fn check(j: &Joint) -> Option<String> {
    let ok = |x: f64| x >= 0.0 && x.is_finite();
    if !(ok(j.armature) && ok(j.damping)) {
        return Some("negative or non-finite armature or damping".into());
    }
    let single = j.kind.nv() == 1;
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
