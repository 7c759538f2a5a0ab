//! Smooth frictional contact of particles against static planes and axis-aligned boxes.
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

use super::mass_spring::V3;

/// A static obstacle.
#[derive(Clone, Copy, Debug, PartialEq)]
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

/// `(φ, n, ∂n/∂x)` of a shape at `x`.
fn distance(shape: &Shape, x: V3) -> (f64, V3, [[f64; 3]; 3]) {
    match *shape {
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
