//! Contact between bodies: the points of body A (with A's radius) against the signed
//! distance of body B in B's frame, with the smooth law of [`crate::solids::contact`].
//!
//! Which directed pairs count ([`contact_pairs`]): B must have a signed distance (a sphere, a
//! box or a capsule); two spheres touch once (the lower index's centre against the other); a
//! box's corners are not tested against a sphere (the sphere's centre against the box covers
//! it); a capsule is a target for spheres' centres and other capsules' cap centres, and a
//! capsule's cap centres are not tested against a sphere (the sphere's centre against the
//! capsule covers it). A box's corners are not tested against a capsule: the capsule's axis
//! against the box covers them, with its cap centres and the point that slides along it
//! ([`super::sliding`]), which also meets box edges and other capsules' sides.
//! The pairs that act in a step are frozen at its start ([`active_pairs`]): those whose gap
//! is below `40·s` plus twice the distance the two bodies can close in the step; farther
//! points feel less than `e⁻⁴⁰` of the stiffness, which is left out.
//!
//! Geometry. With `a = R_A a_b` (A's point about its centre) and `d = c_A + a − c_B`, the
//! point in B's frame is `x = R_Bᵀd`. Both rotations are perturbed on the left
//! (`R ← exp([δθ]×)R`); the world vector `y = exp(−[δθ_B]×)(d + …)` with `x = R̄_Bᵀy` carries
//! every derivative: `∂y = ∂c_A + δθ_A × a − ∂c_B + d × δθ_B` to first order, plus the
//! second-order terms of [`add_pair_hessian`].

use super::body::{BodyState, RigidBody};
use super::model::RigidModel;
use super::so3;
use crate::solids::contact::{self, Contact, Shape};
use crate::solids::math::{M3, V3, dot, sub};

/// The directed pairs `(A, B)`: A's points against B's signed distance.
pub fn contact_pairs(model: &RigidModel) -> Vec<(usize, usize)> {
    if !model.body_contact || model.contact.ke <= 0.0 {
        return Vec::new();
    }
    let bodies = &model.bodies;
    let sphere = |b: &RigidBody| matches!(b.sdf, Some(Shape::Sphere { .. }));
    let capsule = |b: &RigidBody| matches!(b.sdf, Some(Shape::Capsule { .. }));
    let mut out = Vec::new();
    for (ia, a) in bodies.iter().enumerate() {
        for (ib, b) in bodies.iter().enumerate() {
            let counts = ia != ib
                && b.sdf.is_some()
                && !(a.radius == 0.0 && sphere(b))
                && !(sphere(a) && sphere(b) && ia > ib)
                && (!capsule(b) || sphere(a) || capsule(a))
                && !(capsule(a) && sphere(b));
            if counts && !a.points.is_empty() {
                out.push((ia, ib));
            }
        }
    }
    out
}

/// B's signed distance grown by A's radius.
pub fn pair_shape(model: &RigidModel, (ia, ib): (usize, usize)) -> Shape {
    model.bodies[ib]
        .sdf
        .as_ref()
        .expect("contact_pairs keeps bodies with a signed distance")
        .inflated(model.bodies[ia].radius)
}

/// The pairs of `pairs` that act in a step from `states` of length `h`. A pair whose bounding
/// balls (A's points with its radius about `c_A`, B's shape about `c_B`) are farther apart
/// than the cut is dropped before its points are placed: the signed distance of a shape
/// inside a ball of radius `E` about `c` is at least `|x − c| − E`.
pub fn active_pairs(
    model: &RigidModel,
    pairs: &[(usize, usize)],
    states: &[BodyState],
    h: f64,
) -> Vec<(usize, usize)> {
    let bound = bounds(model);
    let reach = reaches(model, states);
    pairs
        .iter()
        .copied()
        .filter(|&(ia, ib)| {
            let cut = activity_cut(model, h, reach[ia] + reach[ib]);
            let apart = so3::norm(sub(states[ia].c, states[ib].c));
            if apart - bound[ia] - extent(&model.bodies[ib]) >= cut {
                return false;
            }
            let shape = pair_shape(model, (ia, ib));
            points_in_b(model, ia, &states[ia], &states[ib])
                .iter()
                .any(|x| contact::distance(&shape, *x).0 < cut)
        })
        .collect()
}

/// Per body, the radius of the ball about its centre of mass that holds its contact points
/// grown by its radius.
fn bounds(model: &RigidModel) -> Vec<f64> {
    model
        .bodies
        .iter()
        .map(|body| {
            body.points
                .iter()
                .map(|p| so3::norm(*p))
                .fold(0.0, f64::max)
                + body.radius
        })
        .collect()
}

/// Per body at `states`, the fastest speed (m/s) of a point of its contact points' ball or of
/// its signed distance's.
pub fn reaches(model: &RigidModel, states: &[BodyState]) -> Vec<f64> {
    model
        .bodies
        .iter()
        .zip(states)
        .zip(bounds(model))
        .map(|((body, s), r)| so3::norm(s.v) + so3::norm(s.w) * (r + extent(body)))
        .collect()
}

/// The gap below which a contact acts in a step of length `h` whose two sides approach at
/// up to `speed`: `40·s` plus twice the distance they can close in the step.
pub fn activity_cut(model: &RigidModel, h: f64, speed: f64) -> f64 {
    40.0 * model.contact.smoothing + 2.0 * h * speed
}

/// The half diagonal of a body's signed-distance shape (0 for a sphere's centre).
pub(crate) fn extent(body: &RigidBody) -> f64 {
    match body.sdf {
        Some(Shape::Box { half, .. }) => so3::norm(half),
        Some(Shape::Sphere { radius, .. }) => radius,
        Some(Shape::Capsule {
            half_height,
            radius,
            ..
        }) => half_height + radius,
        Some(Shape::Mesh {
            ref sdf,
            center,
            radius,
        }) => sdf.bound() + so3::norm(center) + radius,
        _ => 0.0,
    }
}

/// A's points in B's frame at the states `sa`, `sb`.
pub fn points_in_b(model: &RigidModel, ia: usize, sa: &BodyState, sb: &BodyState) -> Vec<V3> {
    let ra = so3::to_matrix(sa.q);
    let rb = so3::to_matrix(sb.q);
    model.bodies[ia]
        .points
        .iter()
        .map(|p| {
            let d = sub(so3::add(sa.c, so3::mat_vec(&ra, *p)), sb.c);
            so3::mat_t_vec(&rb, d)
        })
        .collect()
}

/// The implicit step's local gradient and Hessian `(g_x, H_x)` at the point `x` (B's frame) of
/// the normal potential and the damping and friction lagged at `xₙ` (the same material point
/// at the step's start, in B's frame at the step's start).
pub fn local_terms(c: &Contact, shape: &Shape, x: V3, xn: V3, h: f64) -> (V3, M3) {
    let (_, f, dfdx) = contact::normal(c, shape, x, false);
    let mut g: V3 = f.map(|v| -v);
    let mut hs: M3 = std::array::from_fn(|i| std::array::from_fn(|j| -dfdx[i][j]));
    if c.kd > 0.0 {
        let (w, n, _, _) = contact::damping_frame(c, shape, xn);
        let sd = dot(n, sub(x, xn));
        for i in 0..3 {
            g[i] += w / h * sd * n[i];
            for j in 0..3 {
                hs[i][j] += w / h * n[i] * n[j];
            }
        }
    }
    if c.mu > 0.0 {
        let (_, gf, hf) = contact::friction(c, shape, x, xn, h);
        for i in 0..3 {
            g[i] += gf[i];
            for j in 0..3 {
                hs[i][j] += hf[i][j];
            }
        }
    }
    (g, hs)
}

/// The potential whose gradient and Hessian [`local_terms`] gives: the normal potential, the
/// lagged damping `w/(2h)·(n·(x − xₙ))²` and the lagged friction `D`.
pub fn local_potential(c: &Contact, shape: &Shape, x: V3, xn: V3, h: f64) -> f64 {
    let (mut e, _, _) = contact::normal(c, shape, x, true);
    if c.kd > 0.0 {
        let (w, n, _, _) = contact::damping_frame(c, shape, xn);
        e += 0.5 * w / h * dot(n, sub(x, xn)).powi(2);
    }
    if c.mu > 0.0 {
        e += contact::friction(c, shape, x, xn, h).0;
    }
    e
}

/// `(∂g_x/∂xₙ)ᵀ·z` of [`local_terms`]: the lagged damping and friction.
pub fn local_lagged_vjp(c: &Contact, shape: &Shape, x: V3, xn: V3, h: f64, z: V3) -> V3 {
    let mut out = [0.0; 3];
    if c.kd > 0.0 {
        let (w, n, dw, dn) = contact::damping_frame(c, shape, xn);
        let d = sub(x, xn);
        let (sd, nz) = (dot(n, d), dot(n, z));
        let ndt = so3::mat_t_vec(&dn, d);
        let ntz = so3::mat_t_vec(&dn, z);
        for i in 0..3 {
            out[i] += dw[i] * sd * nz / h + w / h * (nz * (ndt[i] - n[i]) + sd * ntz[i]);
        }
    }
    if c.mu > 0.0 {
        let v = contact::friction_lagged_vjp(c, shape, x, xn, h, z);
        (0..3).for_each(|i| out[i] += v[i]);
    }
    out
}

/// One pair point's contribution to the implicit step: gradient `g` (12: c_A, δθ_A, c_B,
/// δθ_B) and Hessian `k` (12×12), from the world gradient `gy` and Hessian `hy` with respect
/// to `y`, at `a = R̄_A a_b` and `d = c_A + a − c_B`.
pub fn add_pair_terms(a: V3, d: V3, gy: V3, hy: &M3, g: &mut [f64; 12], k: &mut [[f64; 12]; 12]) {
    // ∂y/∂(c_A, δθ_A, c_B, δθ_B) = [1, −[a]×, −1, [d]×].
    let id: M3 = std::array::from_fn(|i| std::array::from_fn(|j| f64::from(u8::from(i == j))));
    let neg = |m: M3| m.map(|r| r.map(|x| -x));
    let jac: [M3; 4] = [id, neg(so3::hat(a)), neg(id), so3::hat(d)];
    for (bi, ji) in jac.iter().enumerate() {
        let gi = so3::mat_t_vec(ji, gy);
        for r in 0..3 {
            g[3 * bi + r] += gi[r];
        }
        let hj: Vec<M3> = jac.iter().map(|jj| so3::mat_mul(hy, jj)).collect();
        for (bj, hjj) in hj.iter().enumerate() {
            let blk = so3::mat_mul(&so3::transpose(ji), hjj);
            add_block(k, bi, bj, &blk);
        }
    }
    add_pair_hessian(a, d, gy, k);
}

/// The second-order terms of `y` contracted with `g_y`.
fn add_pair_hessian(a: V3, d: V3, gy: V3, k: &mut [[f64; 12]; 12]) {
    let sym = |u: V3| -> M3 {
        let gu = dot(gy, u);
        std::array::from_fn(|i| {
            std::array::from_fn(|j| {
                0.5 * (gy[i] * u[j] + u[i] * gy[j]) - gu * f64::from(u8::from(i == j))
            })
        })
    };
    add_block(k, 1, 1, &sym(a));
    add_block(k, 3, 3, &sym(d));
    let gx = so3::hat(gy);
    let ngx = gx.map(|r| r.map(|x| -x));
    // δθ_B with c_A: [g]×; with c_B: −[g]×; with δθ_A: −[g]×[a]× (and the transposes).
    add_block(k, 3, 0, &gx);
    add_block(k, 0, 3, &ngx);
    add_block(k, 3, 2, &ngx);
    add_block(k, 2, 3, &gx);
    let ax = so3::hat(a);
    let ba = so3::mat_mul(&gx, &ax).map(|r| r.map(|x| -x));
    add_block(k, 3, 1, &ba);
    add_block(k, 1, 3, &so3::transpose(&ba));
}

fn add_block(k: &mut [[f64; 12]; 12], bi: usize, bj: usize, m: &M3) {
    for r in 0..3 {
        for c in 0..3 {
            k[3 * bi + r][3 * bj + c] += m[r][c];
        }
    }
}

/// Contact force (world) on A's point and the quantities its VJP needs, for the explicit
/// step: `(f, a, d, u_w, f_l, ∂f_l/∂x, ∂f_l/∂u)` with `u_w` the point's velocity relative to
/// B's material point at the same place.
pub struct PairForce {
    /// Force on A (world); B gets `−f`.
    pub f: V3,
    /// `a = R_A a_b`.
    pub a: V3,
    /// `d = c_A + a − c_B`.
    pub d: V3,
    u_w: V3,
    f_l: V3,
    /// `∂f_l/∂μ`.
    f_mu: V3,
    jx: M3,
    jv: M3,
}

/// The explicit contact force of one point of A on B at the states `sa`, `sb`.
pub fn pair_force(c: &Contact, shape: &Shape, ab: V3, sa: &BodyState, sb: &BodyState) -> PairForce {
    let ra = so3::to_matrix(sa.q);
    let rb = so3::to_matrix(sb.q);
    let a = so3::mat_vec(&ra, ab);
    let d = sub(so3::add(sa.c, a), sb.c);
    let u_w = sub(
        so3::add(sa.v, so3::cross(sa.w, a)),
        so3::add(sb.v, so3::cross(sb.w, d)),
    );
    let (x_l, u_l) = (so3::mat_t_vec(&rb, d), so3::mat_t_vec(&rb, u_w));
    let (f_l, jx, jv) = contact::force(c, shape, x_l, u_l);
    let f_mu = if c.mu > 0.0 {
        contact::friction_force_per_mu(c, shape, x_l, u_l)
    } else {
        [0.0; 3]
    };
    PairForce {
        f_mu,
        f: so3::mat_vec(&rb, f_l),
        a,
        d,
        u_w,
        f_l,
        jx,
        jv,
    }
}

/// Bars of one body for the explicit pair VJP: `(c̄, v̄, ω̄, R̄)`.
#[derive(Default)]
pub struct PairBar {
    /// `∂/∂c`.
    pub c: V3,
    /// `∂/∂v`.
    pub v: V3,
    /// `∂/∂ω`.
    pub w: V3,
    /// `∂/∂R` (matrix).
    pub r: M3,
    /// `∂/∂a_b`, the point in the body frame (A only).
    pub point: V3,
    /// `∂/∂μ` (A only, to be counted once per pair point).
    pub friction: f64,
}

/// The VJP of [`pair_force`]'s wrench (`f` and `a × f` on A, `−f` and `−d × f` on B) given
/// the bars of A's and B's total force and torque; `ab` is A's point in A's frame.
pub fn pair_force_vjp(
    p: &PairForce,
    ab: V3,
    (sa, sb): (&BodyState, &BodyState),
    (fa, ta): (V3, V3),
    (fb, tb): (V3, V3),
) -> (PairBar, PairBar) {
    let rb = so3::to_matrix(sb.q);
    let (mut ba, mut bb) = (PairBar::default(), PairBar::default());
    let f = p.f;
    let fbar = sub(
        so3::add(sub(fa, fb), so3::cross(ta, p.a)),
        so3::cross(tb, p.d),
    );
    let mut abar = so3::cross(f, ta);
    let mut dbar = so3::cross(f, tb).map(|x| -x);
    // f = R_B f_l.
    let flb = so3::mat_t_vec(&rb, fbar);
    ba.friction = dot(flb, p.f_mu);
    add_outer(&mut bb.r, fbar, p.f_l);
    let xb = so3::mat_t_vec(&p.jx, flb);
    let ub = so3::mat_t_vec(&p.jv, flb);
    // u_l = R_Bᵀu_w.
    let uwb = so3::mat_vec(&rb, ub);
    add_outer(&mut bb.r, p.u_w, ub);
    // u_w = v_A + ω_A × a − v_B − ω_B × d.
    ba.v = uwb;
    ba.w = so3::cross(p.a, uwb);
    abar = so3::add(abar, so3::cross(uwb, sa.w));
    bb.v = uwb.map(|x| -x);
    bb.w = so3::cross(p.d, uwb).map(|x| -x);
    dbar = sub(dbar, so3::cross(uwb, sb.w));
    // x_l = R_Bᵀd.
    dbar = so3::add(dbar, so3::mat_vec(&rb, xb));
    add_outer(&mut bb.r, p.d, xb);
    // d = c_A + a − c_B; a = R_A a_b.
    ba.c = dbar;
    bb.c = dbar.map(|x| -x);
    abar = so3::add(abar, dbar);
    add_outer(&mut ba.r, abar, ab);
    ba.point = so3::mat_t_vec(&so3::to_matrix(sa.q), abar);
    (ba, bb)
}

/// `M += u vᵀ`.
pub fn add_outer(m: &mut M3, u: V3, v: V3) {
    for i in 0..3 {
        for k in 0..3 {
            m[i][k] += u[i] * v[k];
        }
    }
}
