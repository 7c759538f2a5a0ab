//! Smooth frictional contact of points against static planes, spheres, z-aligned capsules,
//! axis-aligned (rounded) boxes and closed triangle meshes.
//!
//! With signed distance `φ(x)` and outward normal `n = ∇φ`, the force on a particle is
//!
//! - normal: `ke·s·softplus(−φ/s)·n`, with `s` the smoothing length (the one knob): a smooth
//!   penalty that equals `ke·(−φ)` deep inside and leaks `ke·s·e^{−φ/s}` outside;
//! - damping: `−kd·σ(−φ/s)·(v·n)·n` (σ the logistic function: on only in contact);
//! - friction: `−μ·|f_n|·v_t/√(|v_t|² + s²)`, with `v_t` the tangential velocity: Coulomb
//!   friction whose stick/slip transition is smoothed over tangential speeds `~s` (the same
//!   number, read in m/s).
//!
//! Every term is smooth in `(x, v)` away from a box's edges and corners, where `n` turns; the
//! Jacobians below are exact there too (`∂n/∂x` included).

use super::math::{M3, V3};
use super::mesh_sdf::MeshSdf;
use std::sync::Arc;

/// A static obstacle.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// The half-space `n·x ≥ offset` is free (`n` unit).
    Plane {
        /// Unit normal pointing into the free side.
        normal: V3,
        /// Offset.
        offset: f64,
    },
    /// An axis-aligned box (solid inside).
    Box {
        /// Centre.
        center: V3,
        /// Half extents.
        half: V3,
    },
    /// An axis-aligned box grown by `radius` in every direction (rounded edges and corners):
    /// what a ball of that radius at a point sees of a [`Shape::Box`].
    RoundedBox {
        /// Centre.
        center: V3,
        /// Half extents of the inner box.
        half: V3,
        /// Rounding radius.
        radius: f64,
    },
    /// A solid ball.
    Sphere {
        /// Centre.
        center: V3,
        /// Radius.
        radius: f64,
    },
    /// A solid capsule along the z axis: the points within `radius` of the segment from
    /// `center − half_height·ẑ` to `center + half_height·ẑ`.
    Capsule {
        /// Centre.
        center: V3,
        /// Half length of the axis segment.
        half_height: f64,
        /// Radius.
        radius: f64,
    },
    /// A closed triangle mesh (solid inside) translated by `center`, grown by `radius`.
    Mesh {
        /// The mesh's signed distance (in its own frame).
        sdf: Arc<MeshSdf>,
        /// Where the mesh's origin sits.
        center: V3,
        /// Growth.
        radius: f64,
    },
}

impl Shape {
    /// The same obstacle grown by `r ≥ 0`: its signed distance minus `r` (what a ball of
    /// radius `r` centred at the probed point touches).
    pub fn inflated(&self, r: f64) -> Shape {
        match *self {
            Shape::Mesh {
                ref sdf,
                center,
                radius,
            } => Shape::Mesh {
                sdf: sdf.clone(),
                center,
                radius: radius + r,
            },
            Shape::Plane { normal, offset } => Shape::Plane {
                normal,
                offset: offset + r,
            },
            Shape::Box { center, half } => Shape::RoundedBox {
                center,
                half,
                radius: r,
            },
            Shape::RoundedBox {
                center,
                half,
                radius,
            } => Shape::RoundedBox {
                center,
                half,
                radius: radius + r,
            },
            Shape::Sphere { center, radius } => Shape::Sphere {
                center,
                radius: radius + r,
            },
            Shape::Capsule {
                center,
                half_height,
                radius,
            } => Shape::Capsule {
                center,
                half_height,
                radius: radius + r,
            },
        }
    }
}

/// Contact parameters (the default: no contact forces).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Contact {
    /// Normal stiffness (N/m).
    pub ke: f64,
    /// Normal damping (N·s/m).
    pub kd: f64,
    /// Friction coefficient.
    pub mu: f64,
    /// Smoothing length `s` (m; also the friction regularisation speed in m/s).
    pub smoothing: f64,
}

/// `(|d| − radius, n = d/|d|, ∂n/∂x)` for the offset `d` of a point from the closest point
/// of a ball's centre set, where `∂d/∂x = diag(jac)`.
fn ball_distance(d: V3, radius: f64, jac: V3) -> (f64, V3, [[f64; 3]; 3]) {
    let r = d.iter().map(|c| c * c).sum::<f64>().sqrt().max(1e-300);
    let n: V3 = d.map(|c| c / r);
    let dn = std::array::from_fn(|a| {
        std::array::from_fn(|b| (f64::from(u8::from(a == b)) - n[a] * n[b]) * jac[b] / r)
    });
    (r - radius, n, dn)
}

/// `(φ, n, ∂n/∂x)` of a shape at `x`.
pub fn distance(shape: &Shape, x: V3) -> (f64, V3, [[f64; 3]; 3]) {
    match *shape {
        Shape::Mesh {
            ref sdf,
            center,
            radius,
        } => {
            let (phi, n, dn) = sdf.distance(std::array::from_fn(|a| x[a] - center[a]));
            (phi - radius, n, dn)
        }
        Shape::RoundedBox {
            center,
            half,
            radius,
        } => {
            let (phi, n, dn) = distance(&Shape::Box { center, half }, x);
            (phi - radius, n, dn)
        }
        Shape::Sphere { center, radius } => {
            let d: V3 = std::array::from_fn(|a| x[a] - center[a]);
            ball_distance(d, radius, [1.0; 3])
        }
        Shape::Capsule {
            center,
            half_height,
            radius,
        } => {
            // From the closest point of the axis segment; inside the segment's span that
            // point slides with x along z, so d does not change with x_z there.
            let z = x[2] - center[2];
            let t = z.clamp(-half_height, half_height);
            let d = [x[0] - center[0], x[1] - center[1], z - t];
            let slides = f64::from(u8::from(z.abs() >= half_height));
            ball_distance(d, radius, [1.0, 1.0, slides])
        }
        Shape::Plane { normal, offset } => {
            let phi = (0..3).map(|a| normal[a] * x[a]).sum::<f64>() - offset;
            (phi, normal, [[0.0; 3]; 3])
        }
        Shape::Box { center, half } => {
            let q: V3 = std::array::from_fn(|a| (x[a] - center[a]).abs() - half[a]);
            let sign: V3 = std::array::from_fn(|a| if x[a] >= center[a] { 1.0 } else { -1.0 });
            let outside: V3 = q.map(|c| c.max(0.0));
            let r = outside.iter().map(|c| c * c).sum::<f64>().sqrt();
            if r > 0.0 {
                // Outside: the distance to the closest point; n turns around edges and corners.
                let n: V3 = std::array::from_fn(|a| sign[a] * outside[a] / r);
                let active: V3 = std::array::from_fn(|a| f64::from(u8::from(outside[a] > 0.0)));
                let dn = std::array::from_fn(|a| {
                    std::array::from_fn(|b| {
                        let id = f64::from(u8::from(a == b));
                        active[a] * active[b] * (id - n[a] * n[b]) / r
                    })
                });
                (r, n, dn)
            } else {
                // Inside: the nearest face.
                let a = (0..3)
                    .max_by(|&i, &j| q[i].total_cmp(&q[j]))
                    .expect("three axes");
                let mut n = [0.0; 3];
                n[a] = sign[a];
                (q[a], n, [[0.0; 3]; 3])
            }
        }
    }
}

fn softplus(z: f64) -> f64 {
    if z > 30.0 { z } else { z.exp().ln_1p() }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// `∫_{−∞}^{z} softplus(t) dt = −Li₂(−e^z)`: the series `Σ (−1)^{k+1} e^{kz}/k²` for
/// `z ≤ −1`, 8-point Gauss-Legendre from −1 on `(−1, 0]`, and `F(z) = π²/6 + z²/2 − F(−z)`
/// above (as `softplus(t) − softplus(−t) = t`). Accurate to ~1e-15 relative.
fn softplus_integral(z: f64) -> f64 {
    if z > 0.0 {
        return std::f64::consts::PI.powi(2) / 6.0 + 0.5 * z * z - softplus_integral(-z);
    }
    let series = |z: f64| -> f64 {
        let u = z.exp();
        let (mut sum, mut term, mut k) = (0.0f64, u, 1.0f64);
        while term > 1e-18 * sum.max(1e-300) && k < 200.0 {
            sum += term / (k * k) * if (k as i64) % 2 == 1 { 1.0 } else { -1.0 };
            term *= u;
            k += 1.0;
        }
        sum
    };
    if z <= -1.0 {
        return series(z);
    }
    const NODES: [(f64, f64); 4] = [
        (0.183_434_642_495_649_8, 0.362_683_783_378_362),
        (0.525_532_409_916_329, 0.313_706_645_877_887_3),
        (0.796_666_477_413_626_7, 0.222_381_034_453_374_5),
        (0.960_289_856_497_536_3, 0.101_228_536_290_376_3),
    ];
    let (mid, half) = (0.5 * (z - 1.0), 0.5 * (z + 1.0));
    let quad: f64 = NODES
        .iter()
        .map(|&(t, w)| w * (softplus(mid + half * t) + softplus(mid - half * t)))
        .sum();
    series(-1.0) + half * quad
}

/// The normal force alone, from the potential `U = ke·s²·F(−φ/s)` (`F` the integral of the
/// softplus): `(U, f = −∇U, ∂f/∂x)` for a particle at `x`. With `project`, the term from the
/// turning normal at box edges and corners (which makes `U` non-convex there) is left out of
/// `∂f/∂x`, so that `−∂f/∂x` is positive semi-definite.
pub fn normal(c: &Contact, shape: &Shape, x: V3, project: bool) -> (f64, V3, [[f64; 3]; 3]) {
    let s = c.smoothing.max(1e-300);
    let (phi, n, dn) = distance(shape, x);
    let z = -phi / s;
    let g = c.ke * s * softplus(z);
    let dg = -c.ke * sigmoid(z);
    let turn = if project { 0.0 } else { g };
    (
        c.ke * s * s * softplus_integral(z),
        n.map(|a| g * a),
        std::array::from_fn(|a| std::array::from_fn(|b| dg * n[b] * n[a] + turn * dn[a][b])),
    )
}

/// The damping frame at a (previous) position `x`: `(w, n, ∂w/∂x, ∂n/∂x)` with `w =
/// kd·σ(−φ/s)`; the damping force at velocity `v` is `−w·(n·v)·n`.
pub fn damping_frame(c: &Contact, shape: &Shape, x: V3) -> (f64, V3, V3, [[f64; 3]; 3]) {
    let s = c.smoothing.max(1e-300);
    let (phi, n, dn) = distance(shape, x);
    let sg = sigmoid(-phi / s);
    let dw = -c.kd * sg * (1.0 - sg) / s;
    (c.kd * sg, n, n.map(|a| dw * a), dn)
}

/// The lagged friction frame at a previous position `xₙ`: the normal force magnitude
/// `λ = ke·s·softplus(−φ/s)`, its gradient `∇λ = −ke·σ(−φ/s)·n`, `n` and `∂n/∂x`.
fn friction_frame(c: &Contact, shape: &Shape, xn: V3) -> (f64, V3, V3, M3) {
    let s = c.smoothing.max(1e-300);
    let (phi, n, dn) = distance(shape, xn);
    let z = -phi / s;
    let dl = -c.ke * sigmoid(z);
    (c.ke * s * softplus(z), n.map(|a| dl * a), n, dn)
}

/// The tangential velocity `t = T(x − xₙ)/h` (`T = I − n nᵀ`) and `w = √(|t|² + s²)`.
fn tangential(n: V3, d: V3, h: f64, s: f64) -> (V3, f64) {
    let dn: f64 = (0..3).map(|a| d[a] * n[a]).sum();
    let t: V3 = std::array::from_fn(|a| (d[a] - dn * n[a]) / h);
    (t, (t.iter().map(|c| c * c).sum::<f64>() + s * s).sqrt())
}

/// Friction for an implicit step from `xₙ` with time step `h`, lagged as in IPC (Li et al.
/// 2020): with the normal force magnitude `λ` and the tangent projector `T = I − n nᵀ` taken at
/// `xₙ`, the potential `D(x) = μ·λ·h·√(|t|² + s²)` of the tangential velocity
/// `t = T(x − xₙ)/h` gives `−∇D = −μ·λ·t/√(|t|² + s²)`: the explicit friction force with
/// its frame one step behind. `D` is convex. Returns `(D, ∇D, ∇²D)` at `x`.
pub fn friction(c: &Contact, shape: &Shape, x: V3, xn: V3, h: f64) -> (f64, V3, M3) {
    let s = c.smoothing.max(1e-300);
    let (lam, _, n, _) = friction_frame(c, shape, xn);
    let d: V3 = std::array::from_fn(|a| x[a] - xn[a]);
    let (t, w) = tangential(n, d, h, s);
    let k = c.mu * lam;
    let hess = std::array::from_fn(|a| {
        std::array::from_fn(|b| {
            let proj = f64::from(u8::from(a == b)) - n[a] * n[b];
            k / h * (proj - t[a] * t[b] / (w * w)) / w
        })
    });
    (k * h * w, t.map(|ta| k * ta / w), hess)
}

/// `(∂∇D/∂xₙ)ᵀ·y` for [`friction`]'s `D` at `(x, xₙ)`: through `λ`, `n` and `x − xₙ`.
pub fn friction_lagged_vjp(c: &Contact, shape: &Shape, x: V3, xn: V3, h: f64, y: V3) -> V3 {
    let s = c.smoothing.max(1e-300);
    let (lam, dlam, n, dn) = friction_frame(c, shape, xn);
    let d: V3 = std::array::from_fn(|a| x[a] - xn[a]);
    let (t, w) = tangential(n, d, h, s);
    // ∇D = μλ·q(t), q = t/w, ∂q/∂t = Q = (I − t tᵀ/w²)/w (symmetric).
    let q: V3 = t.map(|ta| ta / w);
    let ty: f64 = (0..3).map(|a| t[a] * y[a]).sum();
    let qy: V3 = std::array::from_fn(|a| (y[a] - t[a] * ty / (w * w)) / w);
    let yq: f64 = (0..3).map(|a| y[a] * q[a]).sum();
    // h·∂t/∂xₙ_b = −dn[:, b](n·d) − n (dᵀ dn[:, b]) − T e_b.
    let nd: f64 = (0..3).map(|a| n[a] * d[a]).sum();
    let nqy: f64 = (0..3).map(|a| n[a] * qy[a]).sum();
    std::array::from_fn(|b| {
        let ddn: f64 = (0..3).map(|a| d[a] * dn[a][b]).sum();
        let dnqy: f64 = (0..3).map(|a| qy[a] * dn[a][b]).sum();
        let dt = -dnqy * nd - nqy * ddn - (qy[b] - nqy * n[b]);
        c.mu * (dlam[b] * yq + lam * dt / h)
    })
}

/// The contact force on a particle at `(x, v)`, and its Jacobians `∂f/∂x`, `∂f/∂v`.
pub fn force(c: &Contact, shape: &Shape, x: V3, v: V3) -> (V3, [[f64; 3]; 3], [[f64; 3]; 3]) {
    let s = c.smoothing.max(1e-300);
    let (phi, n, dn) = distance(shape, x);
    let z = -phi / s;
    let (sp, sg) = (softplus(z), sigmoid(z));
    let g = c.ke * s * sp; // normal magnitude; dg/dφ = −ke·σ
    let dg = -c.ke * sg;
    let dsg = -sg * (1.0 - sg) / s; // dσ(−φ/s)/dφ
    let vn: f64 = (0..3).map(|a| v[a] * n[a]).sum();
    let vt: V3 = std::array::from_fn(|a| v[a] - vn * n[a]);
    let w = ((0..3).map(|a| vt[a] * vt[a]).sum::<f64>() + s * s).sqrt();
    let mut f = [0.0; 3];
    for a in 0..3 {
        f[a] = g * n[a] - c.kd * sg * vn * n[a] - c.mu * g * vt[a] / w;
    }
    // ∂/∂x: through φ (∂φ/∂x = n) and n (∂n/∂x = dn).
    // ∂/∂v: damping and friction.
    let mut jx = [[0.0; 3]; 3];
    let mut jv = [[0.0; 3]; 3];
    let id = |a: usize, b: usize| f64::from(u8::from(a == b));
    // dvn/dx_b = Σ v_k dn_kb; dvt_a/dx_b = −(dvn/dx_b) n_a − vn dn_ab.
    let dvn_dx: V3 = std::array::from_fn(|b| (0..3).map(|k| v[k] * dn[k][b]).sum());
    let dvt_dx = |a: usize, b: usize| -dvn_dx[b] * n[a] - vn * dn[a][b];
    let dvt_dv = |a: usize, b: usize| id(a, b) - n[a] * n[b];
    for a in 0..3 {
        for b in 0..3 {
            // d(vt/w): (δ − vt vtᵀ/w²)/w applied to dvt.
            let fr = |dvt: &dyn Fn(usize, usize) -> f64| -> f64 {
                let dw: f64 = (0..3).map(|k| vt[k] * dvt(k, b)).sum::<f64>() / w;
                (dvt(a, b) - vt[a] * dw / w) / w
            };
            jx[a][b] = dg * n[b] * n[a] + g * dn[a][b]
                - c.kd * (dsg * n[b] * vn * n[a] + sg * dvn_dx[b] * n[a] + sg * vn * dn[a][b])
                - c.mu * (dg * n[b] * vt[a] / w + g * fr(&dvt_dx));
            jv[a][b] = -c.kd * sg * n[b] * n[a] - c.mu * g * fr(&dvt_dv);
        }
    }
    (f, jx, jv)
}

/// `∂f/∂μ` of [`force`]: the friction force per unit friction coefficient,
/// `−ke·s·softplus(−φ/s)·v_t/√(|v_t|² + s²)`.
pub fn friction_force_per_mu(c: &Contact, shape: &Shape, x: V3, v: V3) -> V3 {
    let s = c.smoothing.max(1e-300);
    let (phi, n, _) = distance(shape, x);
    let g = c.ke * s * softplus(-phi / s);
    let (vt, w) = tangential(n, v, 1.0, s);
    vt.map(|a| -g * a / w)
}

/// `∂∇D/∂μ` of [`friction`]'s `D`: its gradient per unit friction coefficient, `λ·t/w`.
pub fn friction_gradient_per_mu(c: &Contact, shape: &Shape, x: V3, xn: V3, h: f64) -> V3 {
    let s = c.smoothing.max(1e-300);
    let (lam, _, n, _) = friction_frame(c, shape, xn);
    let d: V3 = std::array::from_fn(|a| x[a] - xn[a]);
    let (t, w) = tangential(n, d, h, s);
    t.map(|ta| lam * ta / w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implicit_friction_derivatives_match_finite_differences() {
        let c = Contact {
            ke: 1e3,
            kd: 0.0,
            mu: 0.4,
            smoothing: 1e-2,
        };
        let shapes = [
            Shape::Plane {
                normal: [0.6, 0.8, 0.0],
                offset: 0.1,
            },
            // Near the box's edge, where the normal turns.
            Shape::Box {
                center: [0.0, 0.0, 0.0],
                half: [0.5, 0.5, 0.5],
            },
            // Beside a capsule's side, and over its cap.
            Shape::Capsule {
                center: [0.1, 0.0, 0.2],
                half_height: 0.4,
                radius: 0.3,
            },
            Shape::Capsule {
                center: [0.1, 0.0, 0.2],
                half_height: 0.4,
                radius: 0.3,
            },
        ];
        let (h, eps) = (0.01, 1e-6);
        let points = [
            ([0.3, 0.05, 0.2], [0.31, 0.06, 0.17]),
            ([0.503, 0.502, 0.1], [0.507, 0.515, 0.12]),
            ([0.395, 0.04, 0.3], [0.405, 0.03, 0.32]),
            ([0.2, 0.15, 0.84], [0.21, 0.16, 0.85]),
        ];
        for (shape, (x, xn)) in shapes.iter().zip(points) {
            let (_, g, hess) = friction(&c, shape, x, xn, h);
            let y = [0.7, -0.3, 0.5];
            let vjp = friction_lagged_vjp(&c, shape, x, xn, h, y);
            let moved = |v: V3, b: usize, d: f64| {
                let mut v = v;
                v[b] += d;
                v
            };
            for b in 0..3 {
                let dx = |d: f64| friction(&c, shape, moved(x, b, d), xn, h);
                let fd = (dx(eps).0 - dx(-eps).0) / (2.0 * eps);
                assert!(
                    (fd - g[b]).abs() <= 1e-7 * (1.0 + fd.abs()),
                    "∇D {b}: {} vs {fd}",
                    g[b]
                );
                for (a, row) in hess.iter().enumerate() {
                    let fd = (dx(eps).1[a] - dx(-eps).1[a]) / (2.0 * eps);
                    let tol = 1e-6 * (1.0 + fd.abs());
                    assert!((fd - row[b]).abs() <= tol, "∇²D {a}{b}: {} vs {fd}", row[b]);
                }
                let dxn = |d: f64| friction(&c, shape, x, moved(xn, b, d), h).1;
                let (p, q) = (dxn(eps), dxn(-eps));
                let fd: f64 = (0..3).map(|a| y[a] * (p[a] - q[a]) / (2.0 * eps)).sum();
                assert!(
                    (fd - vjp[b]).abs() <= 1e-6 * (1.0 + fd.abs()),
                    "vjp {b}: {} vs {fd}",
                    vjp[b]
                );
            }
            // −∇D is the explicit friction force with the frame at xₙ: opposite the
            // tangential velocity, at most μλ.
            let (lam, _, n, _) = friction_frame(&c, shape, xn);
            let gn: f64 = (0..3).map(|a| g[a] * n[a]).sum();
            let norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!(gn.abs() < 1e-12 && norm <= c.mu * lam && norm > 0.0);
        }
    }

    #[test]
    fn capsule_distance_and_its_normal_derivative() {
        let cap = Shape::Capsule {
            center: [1.0, 2.0, 3.0],
            half_height: 0.5,
            radius: 0.2,
        };
        // Beside the side, over the top cap, inside.
        let cases = [
            ([1.5, 2.0, 3.3], 0.3, [1.0, 0.0, 0.0]),
            ([1.0, 2.0, 4.0], 0.3, [0.0, 0.0, 1.0]),
            ([1.0, 2.1, 2.8], -0.1, [0.0, 1.0, 0.0]),
        ];
        for (x, phi, n) in cases {
            let (p, m, dn) = distance(&cap, x);
            assert!((p - phi).abs() < 1e-14 && (0..3).all(|a| (m[a] - n[a]).abs() < 1e-14));
            for b in 0..3 {
                let at = |d: f64| {
                    let mut y = x;
                    y[b] += d;
                    distance(&cap, y).1
                };
                let (hi, lo) = (at(1e-6), at(-1e-6));
                for a in 0..3 {
                    let fd = (hi[a] - lo[a]) / 2e-6;
                    assert!((fd - dn[a][b]).abs() < 1e-8, "{x:?}: ∂n{a}/∂x{b}");
                }
            }
        }
        let grown = cap.inflated(0.1);
        assert!((distance(&grown, [1.5, 2.0, 3.3]).0 - 0.2).abs() < 1e-14);
    }

    #[test]
    fn softplus_integral_is_continuous_and_its_derivative_is_the_softplus() {
        let pi2 = std::f64::consts::PI.powi(2);
        assert!((softplus_integral(0.0) - pi2 / 12.0).abs() < 1e-15);
        for z in [-1.0, 0.0] {
            let jump = softplus_integral(z + 1e-12) - softplus_integral(z - 1e-12);
            assert!(jump.abs() < 1e-11, "jump {jump:e} at {z}");
        }
        for z in [-40.0, -3.0, -1.0, -0.5, 0.0, 0.3, 1.0, 5.0, 40.0] {
            let h = 1e-5;
            let fd = (softplus_integral(z + h) - softplus_integral(z - h)) / (2.0 * h);
            let want = softplus(z);
            assert!(
                (fd - want).abs() <= 1e-9 * (1.0 + want),
                "z {z}: {fd} vs {want}"
            );
        }
        // Deep inside: F(z) → z²/2 + π²/6.
        assert!((softplus_integral(50.0) - (1250.0 + pi2 / 6.0)).abs() < 1e-9);
    }
}
