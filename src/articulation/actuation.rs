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
use super::model::{Articulation, Drive, JointLimit};
use super::spatial::c;

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

/// The joint forces `τ(q, q̇, u)` (`nv` entries): drives, limits, springs and damping.
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
            Drive::Muscle(muscle) => muscle.torque(qk, qd, uk),
        };
        tau[iv] += drive + limit - qk * j.stiffness;
    }
    tau
}
