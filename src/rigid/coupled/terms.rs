//! The coupling potentials between one particle and one body, their gradients and Hessians in
//! the local unknowns `[x_p (3), c (3), δθ (3)]`, and the transposed products of their lagged
//! parts and parameters for the adjoint.

use super::Attachment;
use crate::rigid::body::{BodyState, StateBar};
use crate::rigid::implicit::euler::add_point;
use crate::rigid::pairs;
use crate::rigid::so3;
use crate::solids::contact::{self, Contact, Shape};
use crate::solids::math::{M3, V3, dot, sub};
use faer::Mat;

/// A coupling term at an iterate: its potential, gradient (9) and Hessian (9×9) in
/// `[x_p, c, δθ]` (the body's rotation re-centred at the iterate; no connection term).
pub(super) struct Local {
    pub phi: f64,
    pub g: [f64; 9],
    pub k: Mat<f64>,
}

/// A body iterate: centre and rotation matrix.
pub(super) type BodyAt<'a> = (V3, &'a M3);

/// The attachment's world offset `d = x_p − c − R a_b` and its gradient `g_d` and Hessian
/// `H_d` with respect to `d` (the dashpot lagged at `dₙ`); with `project`, the transverse
/// stiffness of a stretched spring is clamped at 0.
pub(super) fn attachment_force(
    at: &Attachment,
    d: V3,
    dn: V3,
    h: f64,
    project: bool,
) -> (f64, V3, M3) {
    let (k, kappa) = (at.stiffness, at.damping / h);
    let len = so3::norm(d);
    let id = |i: usize, j: usize| f64::from(u8::from(i == j));
    let (mut phi, mut g, mut hs): (f64, V3, M3) = if at.rest == 0.0 {
        (
            0.5 * k * len * len,
            d.map(|x| k * x),
            std::array::from_fn(|i| std::array::from_fn(|j| k * id(i, j))),
        )
    } else {
        let n = d.map(|x| x / len.max(1e-300));
        let t = 1.0 - at.rest / len.max(1e-300);
        let t = if project { t.max(0.0) } else { t };
        (
            0.5 * k * (len - at.rest).powi(2),
            n.map(|x| k * (len - at.rest) * x),
            std::array::from_fn(|i| {
                std::array::from_fn(|j| k * (n[i] * n[j] + t * (id(i, j) - n[i] * n[j])))
            }),
        )
    };
    let r = sub(d, dn);
    phi += 0.5 * kappa * dot(r, r);
    for i in 0..3 {
        g[i] += kappa * r[i];
        hs[i][i] += kappa;
    }
    (phi, g, hs)
}

/// The offsets `(a, d, aₙ, dₙ)` of an attachment at the iterate and at the step's start.
fn attachment_geometry(
    at: &Attachment,
    (x, xn): (V3, V3),
    (c, r): BodyAt,
    sn: &BodyState,
) -> [V3; 4] {
    let a = so3::mat_vec(r, at.point);
    let an = so3::mat_vec(&so3::to_matrix(sn.q), at.point);
    [a, sub(sub(x, c), a), an, sub(sub(xn, sn.c), an)]
}

/// An attachment's term: the spring acts on the particle with `g_d` and on the body point
/// `c + a` with `−g_d` (its rotation rows through [`add_point`]).
pub(super) fn attachment(
    at: &Attachment,
    (x, xn): (V3, V3),
    body: BodyAt,
    sn: &BodyState,
    h: f64,
    project: bool,
) -> Local {
    let [a, d, _, dn] = attachment_geometry(at, (x, xn), body, sn);
    let (phi, gd, hd) = attachment_force(at, d, dn, h, project);
    let mut g = [0.0; 9];
    let mut k = Mat::<f64>::zeros(9, 9);
    add_point(a, gd.map(|v| -v), &hd, &mut g, &mut k, 3);
    let ax = so3::hat(a);
    let hax = so3::mat_mul(&hd, &ax);
    let axh = so3::mat_mul(&ax, &hd);
    for i in 0..3 {
        g[i] = gd[i];
        for j in 0..3 {
            k[(i, j)] = hd[i][j];
            k[(i, 3 + j)] = -hd[i][j];
            k[(i, 6 + j)] = hax[i][j];
            k[(3 + i, j)] = -hd[i][j];
            k[(6 + i, j)] = -axh[i][j];
        }
    }
    Local { phi, g, k }
}

/// The adjoint of an attachment at the converged step, given its local adjoint `λ = [λ_p,
/// λ_c, λ_θ]`: adds `x̄ₙ` of the particle, the body's start-state bar and returns the
/// attachment's parameter bar. With `y = λ_c + λ_θ × a − λ_p`: the dashpot's lagged
/// `dₙ = xₙ − cₙ − Rₙa_b` has `d̄ₙ = −(kd/h)·y`; the point `ā = −(H_d y + λ_θ × g_d)` (world)
/// and `Rₙᵀ(kd/h)y` through `dₙ`; the stiffness `(∂g_d/∂k)·y`.
pub(super) fn attachment_vjp(
    at: &Attachment,
    (x, xn): (V3, V3),
    (s1, sn): (&BodyState, &BodyState),
    lam: &[f64; 9],
    h: f64,
    (xbn, prev): (&mut V3, &mut StateBar),
) -> super::AttachmentBar {
    let r1 = so3::to_matrix(s1.q);
    let [a, d, an, dn] = attachment_geometry(at, (x, xn), (s1.c, &r1), sn);
    let (_, gd, hd) = attachment_force(at, d, dn, h, false);
    let (lp, lc, lt): (V3, V3, V3) = (
        std::array::from_fn(|i| lam[i]),
        std::array::from_fn(|i| lam[3 + i]),
        std::array::from_fn(|i| lam[6 + i]),
    );
    let y = sub(so3::add(lc, so3::cross(lt, a)), lp);
    let kappa = at.damping / h;
    let dnbar = y.map(|v| -kappa * v);
    let tn = so3::cross(dnbar, an);
    for i in 0..3 {
        xbn[i] += dnbar[i];
        prev.c[i] -= dnbar[i];
        prev.theta[i] += tn[i];
    }
    let abar = so3::add(so3::mat_vec(&hd, y), so3::cross(lt, gd)).map(|v| -v);
    let rn = so3::to_matrix(sn.q);
    let point = sub(so3::mat_t_vec(&r1, abar), so3::mat_t_vec(&rn, dnbar));
    let len = so3::norm(d);
    let per_k = if at.rest == 0.0 {
        d
    } else {
        d.map(|v| v * (len - at.rest) / len.max(1e-300))
    };
    super::AttachmentBar {
        point,
        stiffness: dot(per_k, y),
    }
}

/// The particle's position in the body's frame at the iterate and at the step's start, and
/// its world offset from the centre at both.
fn contact_geometry((x, xn): (V3, V3), (c, r): BodyAt, sn: &BodyState) -> [V3; 4] {
    let d = sub(x, c);
    let dn = sub(xn, sn.c);
    [
        so3::mat_t_vec(r, d),
        so3::mat_t_vec(&so3::to_matrix(sn.q), dn),
        d,
        dn,
    ]
}

/// A body–particle contact term: the particle as a body point at zero lever arm against the
/// body's `shape` (its signed distance grown by the particle's radius, body frame).
pub(super) fn particle_contact(
    cp: &Contact,
    shape: &Shape,
    (x, xn): (V3, V3),
    (c, r): BodyAt,
    sn: &BodyState,
    h: f64,
) -> Local {
    let [xl, xln, d, _] = contact_geometry((x, xn), (c, r), sn);
    let (gl, hl) = pairs::local_terms(cp, shape, xl, xln, h);
    let phi = pairs::local_potential(cp, shape, xl, xln, h);
    let gy = so3::mat_vec(r, gl);
    let hy = so3::mat_mul(&so3::mat_mul(r, &hl), &so3::transpose(r));
    let (mut g12, mut k12) = ([0.0; 12], [[0.0; 12]; 12]);
    pairs::add_pair_terms([0.0; 3], d, gy, &hy, &mut g12, &mut k12);
    // [c_A, δθ_A, c_B, δθ_B] → [x_p, c, δθ] (A's rotation has no lever arm).
    let at = |q: usize| if q < 3 { q } else { q - 3 };
    let rows = (0..3).chain(6..12);
    let mut g = [0.0; 9];
    let mut k = Mat::<f64>::zeros(9, 9);
    for r in rows.clone() {
        g[at(r)] = g12[r];
        for c in rows.clone() {
            k[(at(r), at(c))] = k12[r][c];
        }
    }
    Local { phi, g, k }
}

/// The adjoint of a body–particle contact's lagged damping and friction (in the body's frame
/// at the step's start): adds `x̄ₙ` of the particle and the body's start-state bar, and
/// returns `μ̄`.
pub(super) fn particle_contact_vjp(
    cp: &Contact,
    shape: &Shape,
    (x, xn): (V3, V3),
    (s1, sn): (&BodyState, &BodyState),
    lam: &[f64; 9],
    h: f64,
    (xbn, prev): (&mut V3, &mut StateBar),
) -> f64 {
    let r1 = so3::to_matrix(s1.q);
    let [xl, xln, d, dn] = contact_geometry((x, xn), (s1.c, &r1), sn);
    let (lp, lc, lt): (V3, V3, V3) = (
        std::array::from_fn(|i| lam[i]),
        std::array::from_fn(|i| lam[3 + i]),
        std::array::from_fn(|i| lam[6 + i]),
    );
    let zl = so3::mat_t_vec(&r1, so3::add(sub(lp, lc), so3::cross(d, lt)));
    let mut mu_bar = 0.0;
    if cp.mu > 0.0 {
        mu_bar -= dot(zl, contact::friction_gradient_per_mu(cp, shape, xl, xln, h));
    }
    if cp.kd > 0.0 || cp.mu > 0.0 {
        let v = pairs::local_lagged_vjp(cp, shape, xl, xln, h, zl);
        let e = so3::mat_vec(&so3::to_matrix(sn.q), v).map(|x| -x);
        let tb = so3::cross(e, dn);
        for i in 0..3 {
            xbn[i] += e[i];
            prev.c[i] -= e[i];
            prev.theta[i] += tb[i];
        }
    }
    mu_bar
}
