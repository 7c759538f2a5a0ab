//! The contact points of a backward-Euler step: a body point against static shapes, and
//! a point of body A against body B's signed distance; their weighted gradients, Hessians
//! and potentials, and the VJPs of their parameters and lagged parts.

use super::Implicit;
use crate::rigid::body::{BodyState, StateBar};
use crate::rigid::pairs;
use crate::rigid::sliding::WORLD;
use crate::rigid::so3;
use crate::solids::contact::{self, Shape};
use crate::solids::math::{M3, V3, dot, sub};
use faer::Mat;

/// Adds a point potential's gradient `g_p` and Hessian `H_p` at the body point `c + a`
/// (`a = R̄ a_b`) to the 6-vector and 6×6 block in `(c, δθ)`: `J = [1, −[a]×]` and the
/// second-order term `½(g_p aᵀ + a g_pᵀ) − (g_p·a)·1` of the rotation.
pub(crate) fn add_point(a: V3, gp: V3, hp: &M3, g: &mut [f64], k: &mut Mat<f64>, o: usize) {
    let ax = so3::hat(a);
    let gt = so3::cross(a, gp);
    let hax = so3::mat_mul(hp, &ax);
    let axh = so3::mat_mul(&ax, hp);
    let axhax = so3::mat_mul(&axh, &ax);
    let ga = dot(gp, a);
    for i in 0..3 {
        g[o + i] += gp[i];
        g[o + 3 + i] += gt[i];
        for j in 0..3 {
            let id = f64::from(u8::from(i == j));
            k[(o + i, o + j)] += hp[i][j];
            k[(o + i, o + 3 + j)] -= hax[i][j];
            k[(o + 3 + i, o + j)] += axh[i][j];
            k[(o + 3 + i, o + 3 + j)] +=
                -axhax[i][j] + 0.5 * (gp[i] * a[j] + a[i] * gp[j]) - ga * id;
        }
    }
}

/// Where a pair point sits: the bodies `(ia, ib)`, their rows `(la, lb)` in the group and
/// their iterates `(c, R)`; A is `None` for a point of the world (a static ball's centre).
pub(super) type PairAt<'a> = (
    (Option<usize>, usize),
    (Option<usize>, usize),
    (V3, &'a M3),
    (V3, &'a M3),
);

/// A pair point's bodies `(ia, ib)` (A `None` for the world), their adjoints `(λ_c, λ_θ)`
/// (zero for the world) and the step's states.
pub(super) type PairAdjoint<'a> = (
    (Option<usize>, usize),
    ((V3, V3), (V3, V3)),
    (&'a [BodyState], &'a [BodyState]),
);

/// The state of body `i`, or the world's.
fn state_of(states: &[BodyState], i: Option<usize>) -> &BodyState {
    i.map_or(&WORLD, |i| &states[i])
}

/// A pair point's geometry at the iterate and at the step's start: `(a, d, x, xₙ, aₙ, dₙ)`.
struct PairPoint {
    a: V3,
    d: V3,
    x: V3,
    xn: V3,
    an: V3,
    dn: V3,
}

fn pair_point(
    ab: V3,
    (ca, ra): (V3, &M3),
    (cb, rb): (V3, &M3),
    (sa, sb): (&BodyState, &BodyState),
) -> PairPoint {
    let a = so3::mat_vec(ra, ab);
    let d = sub(so3::add(ca, a), cb);
    let an = so3::mat_vec(&so3::to_matrix(sa.q), ab);
    let dn = sub(so3::add(sa.c, an), sb.c);
    PairPoint {
        a,
        d,
        x: so3::mat_t_vec(rb, d),
        xn: so3::mat_t_vec(&so3::to_matrix(sb.q), dn),
        an,
        dn,
    }
}

impl Implicit<'_> {
    /// Adds the weighted terms of body point `ab` against `shapes` at the iterate `(c, R)` of
    /// the body (its start `(cₙ, Rₙ)`, rows from `o`): gradient, Hessian and potential.
    pub(super) fn obstacle_point(
        &self,
        shapes: &[Shape],
        (ab, weight): (V3, f64),
        (c, rot, (cn, rn), o): (V3, &M3, (V3, &M3), usize),
        (g, k, phi): (&mut [f64], &mut Mat<f64>, &mut f64),
    ) {
        let (cp, h) = (&self.model.contact, self.h);
        let a = so3::mat_vec(rot, ab);
        let p = so3::add(c, a);
        let pn = so3::add(cn, so3::mat_vec(rn, ab));
        for shape in shapes {
            let (gp, hp) = pairs::local_terms(cp, shape, p, pn, h);
            let (gp, hp) = (gp.map(|x| weight * x), hp.map(|r| r.map(|x| weight * x)));
            add_point(a, gp, &hp, g, k, o);
            *phi += weight * pairs::local_potential(cp, shape, p, pn, h);
        }
    }

    /// Adds the weighted terms of A's point `ab` against B's `shape` at the iterates of the
    /// two bodies (global `(ia, ib)`, local `(la, lb)`).
    pub(super) fn pair_point(
        &self,
        shape: &Shape,
        (ab, weight): (V3, f64),
        ((ia, ib), (la, lb), (ca, ra), (cb, rb)): PairAt<'_>,
        start: &[BodyState],
        (g, k, phi): (&mut [f64], &mut Mat<f64>, &mut f64),
    ) {
        let (cp, h) = (&self.model.contact, self.h);
        let pp = pair_point(ab, (ca, ra), (cb, rb), (state_of(start, ia), &start[ib]));
        let (gl, hl) = pairs::local_terms(cp, shape, pp.x, pp.xn, h);
        *phi += weight * pairs::local_potential(cp, shape, pp.x, pp.xn, h);
        let gy = so3::mat_vec(rb, gl).map(|x| weight * x);
        let hy = so3::mat_mul(&so3::mat_mul(rb, &hl), &so3::transpose(rb))
            .map(|r| r.map(|x| weight * x));
        let (mut g12, mut k12) = ([0.0; 12], [[0.0; 12]; 12]);
        pairs::add_pair_terms(pp.a, pp.d, gy, &hy, &mut g12, &mut k12);
        let at = |q: usize| {
            if q < 6 {
                la.map(|la| 6 * la + q)
            } else {
                Some(6 * lb + q - 6)
            }
        };
        for (r, krow) in k12.iter().enumerate() {
            let Some(row) = at(r) else { continue };
            g[row] += g12[r];
            for (c, v) in krow.iter().enumerate() {
                if let Some(col) = at(c) {
                    k[(row, col)] += v;
                }
            }
        }
    }

    /// The VJP of [`Self::obstacle_point`] with the body's adjoint `(λ_c, λ_θ)`: adds the
    /// bars of the start state (`p`), of the point (`pbar`, body frame) and of the friction
    /// coefficient; returns the weight's bar.
    pub(super) fn obstacle_point_vjp(
        &self,
        shapes: &[Shape],
        (ab, weight): (V3, f64),
        (lcl, ltl): (V3, V3),
        (s, s1): (&BodyState, &BodyState),
        (p, pbar, friction): (&mut StateBar, &mut V3, &mut f64),
    ) -> f64 {
        let (cp, h) = (&self.model.contact, self.h);
        let (rm, rn) = (so3::to_matrix(s1.q), so3::to_matrix(s.q));
        let aw = so3::mat_vec(&rm, ab);
        let an = so3::mat_vec(&rn, ab);
        let y1 = so3::add(lcl, so3::cross(ltl, aw));
        let (y, ltl) = (y1.map(|x| weight * x), ltl.map(|x| weight * x));
        let (x, xn) = (so3::add(s1.c, aw), so3::add(s.c, an));
        let mut weight_bar = 0.0;
        for shape in shapes {
            let (gp, hp) = pairs::local_terms(cp, shape, x, xn, h);
            weight_bar -= dot(y1, gp);
            let moved = so3::add(so3::mat_t_vec(&hp, y), so3::cross(gp, ltl));
            *pbar = sub(*pbar, so3::mat_t_vec(&rm, moved));
            if cp.mu > 0.0 {
                *friction -= dot(y, contact::friction_gradient_per_mu(cp, shape, x, xn, h));
            }
            if cp.kd > 0.0 || cp.mu > 0.0 {
                let v = pairs::local_lagged_vjp(cp, shape, x, xn, h, y);
                let t = so3::cross(an, v);
                for i in 0..3 {
                    p.c[i] -= v[i];
                    p.theta[i] -= t[i];
                }
                *pbar = sub(*pbar, so3::mat_t_vec(&rn, v));
            }
        }
        weight_bar
    }

    /// The VJP of [`Self::pair_point`] with the two bodies' adjoints `(λ_c, λ_θ)`: A's point
    /// `a = R_A a_b` moves `y = d` and both lever arms; the lagged terms depend on
    /// `xₙ = R_{B,n}ᵀ(c_{A,n} + R_{A,n}a_b − c_{B,n})`. Adds the start states' bars (`prev`),
    /// the point's (`pbar`, A's frame) and the friction coefficient's; returns the weight's.
    pub(super) fn pair_point_vjp(
        &self,
        shape: &Shape,
        (ab, weight): (V3, f64),
        ((ia, ib), ((lca, lta), (lcb, ltb)), (start, end)): PairAdjoint<'_>,
        (prev, pbar, friction): (&mut [StateBar], &mut V3, &mut f64),
    ) -> f64 {
        let (cp, h) = (&self.model.contact, self.h);
        let (sa0, sa1) = (state_of(start, ia), state_of(end, ia));
        let (ra, rb) = (so3::to_matrix(sa1.q), so3::to_matrix(end[ib].q));
        let (ran, rbn) = (so3::to_matrix(sa0.q), so3::to_matrix(start[ib].q));
        let pp = pair_point(ab, (sa1.c, &ra), (end[ib].c, &rb), (sa0, &start[ib]));
        let zy1 = so3::add(
            sub(so3::add(lca, so3::cross(lta, pp.a)), lcb),
            so3::cross(pp.d, ltb),
        );
        let (gl, hl) = pairs::local_terms(cp, shape, pp.x, pp.xn, h);
        let gy = so3::mat_vec(&rb, gl);
        let weight_bar = -dot(zy1, gy);
        let zl = so3::mat_t_vec(&rb, zy1).map(|x| weight * x);
        let moved = so3::add(
            so3::mat_vec(&rb, so3::mat_t_vec(&hl, zl)),
            so3::cross(gy, sub(lta, ltb)).map(|x| weight * x),
        );
        *pbar = sub(*pbar, so3::mat_t_vec(&ra, moved));
        if cp.mu > 0.0 {
            let per_mu = contact::friction_gradient_per_mu(cp, shape, pp.x, pp.xn, h);
            *friction -= dot(zl, per_mu);
        }
        if cp.kd > 0.0 || cp.mu > 0.0 {
            let v = pairs::local_lagged_vjp(cp, shape, pp.x, pp.xn, h, zl);
            let e = so3::mat_vec(&rbn, v).map(|x| -x);
            let (ta, tb) = (so3::cross(pp.an, e), so3::cross(e, pp.dn));
            for i in 0..3 {
                if let Some(ia) = ia {
                    prev[ia].c[i] += e[i];
                    prev[ia].theta[i] += ta[i];
                }
                prev[ib].c[i] -= e[i];
                prev[ib].theta[i] += tb[i];
            }
            *pbar = so3::add(*pbar, so3::mat_t_vec(&ran, e));
        }
        weight_bar
    }
}
