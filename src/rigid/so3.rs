//! Rotations: unit quaternions `q = (s, x, y, z)` (scalar first), rotation matrices, the
//! exponential and logarithm of SO(3) with their Jacobians, and the vector-Jacobian products of
//! the quaternion operations that the hand-written adjoints chain through.
//!
//! Tangent convention: a rotation is perturbed on the left in the world frame,
//! `R ← exp([δθ]×)·R`, i.e. `q ← exp_q(δθ) ⊗ q`, so `dq = ½·G(q)·δθ` with [`g_mul`]. A gradient
//! with respect to a quaternion `q̄` (orthogonal to `q`) and one with respect to the rotation
//! vector `θ̄` are related by `θ̄ = ½·G(q)ᵀq̄` and `q̄ = 2·G(q)·θ̄` ([`tangent_bar`],
//! [`quat_bar`]): derivatives are always reported and probed in the tangent space.

use crate::solids::math::{M3, V3};

/// A quaternion `(s, x, y, z)`.
pub type Quat = [f64; 4];

/// The identity rotation.
pub const IDENTITY: Quat = [1.0, 0.0, 0.0, 0.0];

/// `a × b`.
pub fn cross(a: V3, b: V3) -> V3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// `a + b`.
pub fn add(a: V3, b: V3) -> V3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

/// `|a|`.
pub fn norm(a: V3) -> f64 {
    crate::solids::math::dot(a, a).sqrt()
}

/// `M·v`.
pub fn mat_vec(m: &M3, v: V3) -> V3 {
    std::array::from_fn(|i| m[i][0] * v[0] + m[i][1] * v[1] + m[i][2] * v[2])
}

/// `Mᵀ·v`.
pub fn mat_t_vec(m: &M3, v: V3) -> V3 {
    std::array::from_fn(|i| m[0][i] * v[0] + m[1][i] * v[1] + m[2][i] * v[2])
}

/// `A·B`.
pub fn mat_mul(a: &M3, b: &M3) -> M3 {
    std::array::from_fn(|i| std::array::from_fn(|j| (0..3).map(|k| a[i][k] * b[k][j]).sum()))
}

/// `Aᵀ`.
pub fn transpose(a: &M3) -> M3 {
    std::array::from_fn(|i| std::array::from_fn(|j| a[j][i]))
}

/// `[v]×`, the matrix of `u ↦ v × u`.
pub fn hat(v: V3) -> M3 {
    [[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]]
}

/// `vee(K) = (K₃₂, K₁₃, K₂₁)`, the inverse of [`hat`] on skew matrices.
pub fn vee(k: &M3) -> V3 {
    [k[2][1], k[0][2], k[1][0]]
}

/// `u vᵀ`.
pub fn outer(u: V3, v: V3) -> M3 {
    std::array::from_fn(|i| std::array::from_fn(|j| u[i] * v[j]))
}

/// `a ⊗ b`.
pub fn quat_mul(a: Quat, b: Quat) -> Quat {
    let (sa, va) = (a[0], [a[1], a[2], a[3]]);
    let (sb, vb) = (b[0], [b[1], b[2], b[3]]);
    let c = cross(va, vb);
    [
        sa * sb - (va[0] * vb[0] + va[1] * vb[1] + va[2] * vb[2]),
        sa * vb[0] + sb * va[0] + c[0],
        sa * vb[1] + sb * va[1] + c[1],
        sa * vb[2] + sb * va[2] + c[2],
    ]
}

/// The conjugate (the inverse of a unit quaternion).
pub fn conj(q: Quat) -> Quat {
    [q[0], -q[1], -q[2], -q[3]]
}

/// `q / |q|`.
pub fn normalize(q: Quat) -> Quat {
    let n = q.iter().map(|c| c * c).sum::<f64>().sqrt();
    q.map(|c| c / n)
}

/// The rotation matrix of a unit quaternion (the quadratic formula, also used off the unit
/// sphere: the adjoints only ever move `q` tangentially).
pub fn to_matrix(q: Quat) -> M3 {
    let [s, x, y, z] = q;
    [
        [
            1.0 - 2.0 * (y * y + z * z),
            2.0 * (x * y - s * z),
            2.0 * (x * z + s * y),
        ],
        [
            2.0 * (x * y + s * z),
            1.0 - 2.0 * (x * x + z * z),
            2.0 * (y * z - s * x),
        ],
        [
            2.0 * (x * z - s * y),
            2.0 * (y * z + s * x),
            1.0 - 2.0 * (x * x + y * y),
        ],
    ]
}

/// `Σᵢⱼ R̄ᵢⱼ ∂Rᵢⱼ/∂q` for [`to_matrix`].
pub fn to_matrix_vjp(q: Quat, rb: &M3) -> Quat {
    let [s, x, y, z] = q;
    let r = rb;
    [
        2.0 * (-z * r[0][1] + y * r[0][2] + z * r[1][0] - x * r[1][2] - y * r[2][0] + x * r[2][1]),
        2.0 * (y * r[0][1] + z * r[0][2] + y * r[1][0] - 2.0 * x * r[1][1] - s * r[1][2]
            + z * r[2][0]
            + s * r[2][1]
            - 2.0 * x * r[2][2]),
        2.0 * (-2.0 * y * r[0][0] + x * r[0][1] + s * r[0][2] + x * r[1][0] + z * r[1][2]
            - s * r[2][0]
            + z * r[2][1]
            - 2.0 * y * r[2][2]),
        2.0 * (-2.0 * z * r[0][0] - s * r[0][1] + x * r[0][2] + s * r[1][0] - 2.0 * z * r[1][1]
            + y * r[1][2]
            + x * r[2][0]
            + y * r[2][1]),
    ]
}

/// `(0, w) ⊗ q = G(q)·w`: `G(q)` is 4×3 with orthonormal columns orthogonal to a unit `q`.
pub fn g_mul(q: Quat, w: V3) -> Quat {
    quat_mul([0.0, w[0], w[1], w[2]], q)
}

/// `G(q)ᵀ·y` (see [`g_mul`]).
pub fn g_t_mul(q: Quat, y: Quat) -> V3 {
    let (s, u) = (q[0], [q[1], q[2], q[3]]);
    let yv = [y[1], y[2], y[3]];
    let c = cross(u, yv);
    std::array::from_fn(|i| -y[0] * u[i] + s * yv[i] + c[i])
}

/// `((0, w) ⊗ ·)ᵀ·y`, the transpose of left multiplication by `(0, w)` applied to `y`.
pub fn left_pure_t_mul(w: V3, y: Quat) -> Quat {
    let yv = [y[1], y[2], y[3]];
    let c = cross(yv, w);
    [
        w[0] * yv[0] + w[1] * yv[1] + w[2] * yv[2],
        -y[0] * w[0] + c[0],
        -y[0] * w[1] + c[1],
        -y[0] * w[2] + c[2],
    ]
}

/// The gradient with respect to the world rotation vector from one with respect to `q`.
pub fn tangent_bar(q: Quat, qbar: Quat) -> V3 {
    g_t_mul(q, qbar).map(|c| 0.5 * c)
}

/// The gradient with respect to `q` (tangential) from one with respect to the world rotation
/// vector.
pub fn quat_bar(q: Quat, thetabar: V3) -> Quat {
    g_mul(q, thetabar).map(|c| 2.0 * c)
}

/// The VJP of [`normalize`] at `q` for `ȳ`: `(I − q̂q̂ᵀ)ȳ/|q|`.
pub fn normalize_vjp(q: Quat, ybar: Quat) -> Quat {
    let n = q.iter().map(|c| c * c).sum::<f64>().sqrt();
    let qh = q.map(|c| c / n);
    let d: f64 = (0..4).map(|i| qh[i] * ybar[i]).sum();
    std::array::from_fn(|i| (ybar[i] - d * qh[i]) / n)
}

/// The unit quaternion of the rotation vector `θ` (angle `|θ|` about `θ/|θ|`).
pub fn exp_quat(theta: V3) -> Quat {
    let a = norm(theta);
    let (c, s) = ((0.5 * a).cos(), sinc_half(a));
    [c, s * theta[0], s * theta[1], s * theta[2]]
}

/// `sin(a/2)/a`, with its series near 0.
fn sinc_half(a: f64) -> f64 {
    if a < 1e-4 {
        0.5 - a * a / 48.0
    } else {
        (0.5 * a).sin() / a
    }
}

/// The rotation vector of a unit quaternion (angle in `[0, π]`).
pub fn log_quat(q: Quat) -> V3 {
    let q = if q[0] < 0.0 { q.map(|c| -c) } else { q };
    let v = [q[1], q[2], q[3]];
    let sn = norm(v);
    let angle = 2.0 * sn.atan2(q[0]);
    let k = if sn < 1e-12 { 2.0 / q[0] } else { angle / sn };
    v.map(|c| k * c)
}

/// `exp([θ]×)` as a matrix.
pub fn exp_matrix(theta: V3) -> M3 {
    to_matrix(exp_quat(theta))
}

/// The inverse left Jacobian of SO(3): `log(exp([δ]×)·exp([φ]×)) ≈ φ + J_l⁻¹(φ)·δ`. The
/// right one is its transpose: `log(exp([φ]×)·exp([δ]×)) ≈ φ + J_l⁻¹(φ)ᵀ·δ`.
pub fn left_jacobian_inv(phi: V3) -> M3 {
    let a = norm(phi);
    let k = if a < 1e-4 {
        1.0 / 12.0 + a * a / 720.0
    } else {
        1.0 / (a * a) - (1.0 + a.cos()) / (2.0 * a * a.sin())
    };
    let p = hat(phi);
    let p2 = mat_mul(&p, &p);
    std::array::from_fn(|i| {
        std::array::from_fn(|j| f64::from(u8::from(i == j)) - 0.5 * p[i][j] + k * p2[i][j])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q0() -> Quat {
        normalize([0.8, -0.3, 0.4, 0.2])
    }

    #[test]
    fn matrix_vjp_matches_finite_differences() {
        let q = [0.7, -0.2, 0.5, 0.3];
        let rb = [[0.3, -1.0, 0.2], [0.5, 0.7, -0.4], [0.1, 0.9, -0.6]];
        let vjp = to_matrix_vjp(q, &rb);
        for k in 0..4 {
            let f = |d: f64| {
                let mut p = q;
                p[k] += d;
                let r = to_matrix(p);
                (0..9)
                    .map(|i| r[i / 3][i % 3] * rb[i / 3][i % 3])
                    .sum::<f64>()
            };
            let fd = (f(1e-6) - f(-1e-6)) / 2e-6;
            assert!((fd - vjp[k]).abs() < 1e-8, "{k}: {} vs {fd}", vjp[k]);
        }
    }

    #[test]
    fn exp_log_and_tangent_maps_agree() {
        let th = [0.4, -1.1, 0.7];
        let back = log_quat(exp_quat(th));
        assert!((0..3).all(|i| (back[i] - th[i]).abs() < 1e-14));
        let r = exp_matrix(th);
        let rtr = mat_mul(&r, &transpose(&r));
        assert!(
            (0..9).all(|i| (rtr[i / 3][i % 3] - f64::from(u8::from(i % 4 == 0))).abs() < 1e-14)
        );
        // exp_q(δ) ⊗ q ≈ q + ½G(q)δ.
        let q = q0();
        let d = [1e-7, -2e-7, 3e-7];
        let moved = quat_mul(exp_quat(d), q);
        let lin = g_mul(q, d);
        assert!((0..4).all(|i| (moved[i] - q[i] - 0.5 * lin[i]).abs() < 1e-13));
        // θ̄·δ = q̄·dq for a tangential q̄.
        let tb = [0.3, -0.7, 1.2];
        let qb = quat_bar(q, tb);
        let lhs: f64 = (0..3).map(|i| tb[i] * d[i]).sum();
        let rhs: f64 = (0..4).map(|i| qb[i] * 0.5 * lin[i]).sum();
        assert!((lhs - rhs).abs() < 1e-18);
        let back = tangent_bar(q, qb);
        assert!((0..3).all(|i| (back[i] - tb[i]).abs() < 1e-14));
    }

    #[test]
    fn left_jacobian_inverse_matches_finite_differences() {
        for phi in [[0.3, -0.5, 0.9], [1e-6, 2e-6, -1e-6], [2.0, 1.0, -0.5]] {
            let j = left_jacobian_inv(phi);
            for k in 0..3 {
                let mut d = [0.0; 3];
                d[k] = 1e-6;
                let f = |s: f64| log_quat(quat_mul(exp_quat(d.map(|c| s * c)), exp_quat(phi)));
                let (p, m) = (f(1.0), f(-1.0));
                for i in 0..3 {
                    let fd = (p[i] - m[i]) / 2e-6;
                    assert!(
                        (fd - j[i][k]).abs() < 1e-7,
                        "{phi:?} {i}{k}: {} vs {fd}",
                        j[i][k]
                    );
                }
                let g = |s: f64| log_quat(quat_mul(exp_quat(phi), exp_quat(d.map(|c| s * c))));
                let (p, m) = (g(1.0), g(-1.0));
                for i in 0..3 {
                    let fd = (p[i] - m[i]) / 2e-6;
                    assert!((fd - j[k][i]).abs() < 1e-7, "right {phi:?} {i}{k}");
                }
            }
        }
    }

    #[test]
    fn quaternion_product_transposes_match() {
        let (q, w, y) = (q0(), [0.3, -0.8, 0.5], [0.2, 0.9, -0.4, 0.6]);
        // y·((0,w)⊗q) = (G(q)ᵀy)·w = (L(w)ᵀy)·q.
        let p = g_mul(q, w);
        let lhs: f64 = (0..4).map(|i| y[i] * p[i]).sum();
        let gw = g_t_mul(q, y);
        let lw = left_pure_t_mul(w, y);
        assert!((lhs - (0..3).map(|i| gw[i] * w[i]).sum::<f64>()).abs() < 1e-15);
        assert!((lhs - (0..4).map(|i| lw[i] * q[i]).sum::<f64>()).abs() < 1e-15);
        let a = to_matrix(q);
        let b = mat_vec(&a, w);
        let c = quat_mul(quat_mul(q, [0.0, w[0], w[1], w[2]]), conj(q));
        assert!((0..3).all(|i| (b[i] - c[i + 1]).abs() < 1e-15));
    }
}
