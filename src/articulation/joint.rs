//! Joint models: the joint transform `X_J(q)` and motion subspace `S` (constant in the child
//! frame, so the bias `c_J` is zero for every kind here), and the configuration update
//! `q ⊕ δ` in the tangent space.

use super::Real;
use super::spatial::{Motion, Transform, Vec3, axis_angle, c, dot, identity, quat_matrix};

/// A joint's kind. Velocities are the child's motion relative to the parent in the child
/// frame: a ball's `ω` and a free joint's `[ω; v]` are body-frame.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JointKind {
    /// Welded: no coordinates.
    Fixed,
    /// Rotation about a unit `axis` of the joint frame (rad): `nq = nv = 1`.
    Revolute { axis: Vec3<f64> },
    /// Translation along a unit `axis` of the joint frame (m): `nq = nv = 1`.
    Prismatic { axis: Vec3<f64> },
    /// Spherical: a unit quaternion `(w, x, y, z)`, `nq = 4`, body angular velocity, `nv = 3`.
    Ball,
    /// Floating: position (parent frame) and unit quaternion, `nq = 7`; body-frame
    /// `[ω; v]`, `nv = 6`.
    Free,
}

impl JointKind {
    /// Configuration coordinates.
    pub fn nq(&self) -> usize {
        match self {
            JointKind::Fixed => 0,
            JointKind::Revolute { .. } | JointKind::Prismatic { .. } => 1,
            JointKind::Ball => 4,
            JointKind::Free => 7,
        }
    }

    /// Velocity coordinates (the tangent space).
    pub fn nv(&self) -> usize {
        match self {
            JointKind::Fixed => 0,
            JointKind::Revolute { .. } | JointKind::Prismatic { .. } => 1,
            JointKind::Ball => 3,
            JointKind::Free => 6,
        }
    }

    /// The neutral configuration (zero angles and offsets, identity rotations).
    pub fn neutral(&self) -> Vec<f64> {
        match self {
            JointKind::Ball => vec![1.0, 0.0, 0.0, 0.0],
            JointKind::Free => vec![0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
            k => vec![0.0; k.nq()],
        }
    }

    /// `(X_J(q), S)`: the transform from the joint frame to the child frame and the motion
    /// subspace's `nv` columns.
    pub fn calc<T: Real>(&self, q: &[T]) -> (Transform<T>, Vec<Motion<T>>) {
        let z = [c::<T>(0.0); 3];
        let unit =
            |k: usize| -> Vec3<T> { std::array::from_fn(|i| c(f64::from(u8::from(i == k)))) };
        match *self {
            JointKind::Fixed => (Transform::identity(), Vec::new()),
            JointKind::Revolute { axis } => {
                let a = axis.map(c::<T>);
                let r = axis_angle(a, q[0]);
                let e = std::array::from_fn(|i| std::array::from_fn(|j| r[j][i]));
                (Transform { e, r: z }, vec![Motion { w: a, v: z }])
            }
            JointKind::Prismatic { axis } => {
                let a = axis.map(c::<T>);
                let t = Transform {
                    e: identity(),
                    r: a.map(|x| x * q[0]),
                };
                (t, vec![Motion { w: z, v: a }])
            }
            JointKind::Ball => {
                let r = quat_matrix([q[0], q[1], q[2], q[3]]);
                let e = std::array::from_fn(|i| std::array::from_fn(|j| r[j][i]));
                let s = (0..3).map(|k| Motion { w: unit(k), v: z }).collect();
                (Transform { e, r: z }, s)
            }
            JointKind::Free => {
                let r = quat_matrix([q[3], q[4], q[5], q[6]]);
                let e = std::array::from_fn(|i| std::array::from_fn(|j| r[j][i]));
                let mut s: Vec<Motion<T>> = (0..3).map(|k| Motion { w: unit(k), v: z }).collect();
                s.extend((0..3).map(|k| Motion { w: z, v: unit(k) }));
                (
                    Transform {
                        e,
                        r: [q[0], q[1], q[2]],
                    },
                    s,
                )
            }
        }
    }

    /// `q ⊕ δ`: `q + δ` for revolute and prismatic joints; `R ← R·exp([δ_ω]×)` for a ball
    /// (body frame) and, for a free joint, also `p ← p + R·δ_v` (the child's body-frame
    /// translation). `q` and the result have `nq` entries, `δ` has `nv`.
    pub fn integrate<T: Real>(&self, q: &[T], d: &[T]) -> Vec<T> {
        match self {
            JointKind::Fixed => Vec::new(),
            JointKind::Revolute { .. } | JointKind::Prismatic { .. } => vec![q[0] + d[0]],
            JointKind::Ball => {
                quat_mul([q[0], q[1], q[2], q[3]], exp_quat([d[0], d[1], d[2]])).to_vec()
            }
            JointKind::Free => {
                let qr = [q[3], q[4], q[5], q[6]];
                let r = quat_matrix(qr);
                let dp: Vec3<T> =
                    std::array::from_fn(|i| r[i][0] * d[3] + r[i][1] * d[4] + r[i][2] * d[5]);
                let rot = quat_mul(qr, exp_quat([d[0], d[1], d[2]]));
                vec![
                    q[0] + dp[0],
                    q[1] + dp[1],
                    q[2] + dp[2],
                    rot[0],
                    rot[1],
                    rot[2],
                    rot[3],
                ]
            }
        }
    }
}

impl JointKind {
    /// `q₁ ⊖ q₀`: the tangent increment `δ` with `q₀ ⊕ δ = q₁` (the inverse of
    /// [`JointKind::integrate`]; a rotation's through the quaternion logarithm).
    pub fn difference<T: Real>(&self, q0: &[T], q1: &[T]) -> Vec<T> {
        let conj = |q: &[T]| [q[0], -q[1], -q[2], -q[3]];
        match self {
            JointKind::Fixed => Vec::new(),
            JointKind::Revolute { .. } | JointKind::Prismatic { .. } => vec![q1[0] - q0[0]],
            JointKind::Ball => log_quat(quat_mul(conj(q0), [q1[0], q1[1], q1[2], q1[3]])).to_vec(),
            JointKind::Free => {
                let w = log_quat(quat_mul(conj(&q0[3..]), [q1[3], q1[4], q1[5], q1[6]]));
                let r = quat_matrix([q0[3], q0[4], q0[5], q0[6]]);
                let dp = [q1[0] - q0[0], q1[1] - q0[1], q1[2] - q0[2]];
                let v: Vec3<T> =
                    std::array::from_fn(|i| r[0][i] * dp[0] + r[1][i] * dp[1] + r[2][i] * dp[2]);
                vec![w[0], w[1], w[2], v[0], v[1], v[2]]
            }
        }
    }
}

/// The rotation vector of a unit quaternion (the shorter way round), with the series near the
/// identity.
fn log_quat<T: Real>(q: [T; 4]) -> Vec3<T> {
    let (w, u) = if q[0].re() < 0.0 {
        (-q[0], [-q[1], -q[2], -q[3]])
    } else {
        (q[0], [q[1], q[2], q[3]])
    };
    let n2 = dot(u, u);
    let k = if n2.re() < 1e-12 {
        (c::<T>(1.0) - n2 / (c::<T>(3.0) * w * w)) * c::<T>(2.0) / w
    } else {
        let n = n2.sqrt();
        c::<T>(2.0) * n.atan2(w) / n
    };
    u.map(|x| x * k)
}

/// The Hamilton product `a ⊗ b`.
fn quat_mul<T: Real>(a: [T; 4], b: [T; 4]) -> [T; 4] {
    [
        a[0] * b[0] - a[1] * b[1] - a[2] * b[2] - a[3] * b[3],
        a[0] * b[1] + a[1] * b[0] + a[2] * b[3] - a[3] * b[2],
        a[0] * b[2] - a[1] * b[3] + a[2] * b[0] + a[3] * b[1],
        a[0] * b[3] + a[1] * b[2] - a[2] * b[1] + a[3] * b[0],
    ]
}

/// The unit quaternion of the rotation vector `δ`, with the series near `δ = 0` (so that dual
/// numbers at zero get the right derivative).
fn exp_quat<T: Real>(d: Vec3<T>) -> [T; 4] {
    let t2 = dot(d, d);
    let (w, k) = if t2.re() < 1e-12 {
        (
            c::<T>(1.0) - t2 / c::<T>(8.0),
            c::<T>(0.5) - t2 / c::<T>(48.0),
        )
    } else {
        let t = t2.sqrt();
        let (s, co) = (t * c::<T>(0.5)).sin_cos();
        (co, s / t)
    };
    [w, d[0] * k, d[1] * k, d[2] * k]
}
