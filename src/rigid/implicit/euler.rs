//! Backward Euler over a group of bodies coupled by contact in this step: one dense Newton
//! system in `(c, δθ)` of every body of the group (6 unknowns each), its IFT adjoint with
//! the converged LU. Bodies that touch nobody form groups of one.

use super::Implicit;
pub(crate) use super::points::add_point;
use crate::error::{DiffsimError, Result};
use crate::rigid::balls;
use crate::rigid::body::{BodyState, StateBar, mass_moment};
use crate::rigid::model::Wrench;
use crate::rigid::pairs;
use crate::rigid::sliding::Target;
use crate::rigid::so3::{self, Quat};
use crate::rigid::step_contacts::StepContacts;
use crate::solids::math::{M3, V3, dot};
use faer::Mat;
use faer::linalg::solvers::{PartialPivLu, Solve};

/// What a group's step keeps for its adjoint.
pub(super) struct EulerTape {
    /// The bodies of the group (global indices).
    pub bodies: Vec<usize>,
    /// The contacts between the group's bodies and of its bodies against static balls.
    pub contacts: StepContacts,
    /// The converged Newton matrix's LU (6k × 6k).
    pub lu: PartialPivLu<f64>,
}

/// Bodies that touch in a step (global indices) and their contacts.
pub(super) type Group = (Vec<usize>, StepContacts);

/// The groups of bodies joined by `active` pairs, each with the contacts of its bodies.
pub(super) fn groups(nb: usize, active: &StepContacts) -> Vec<Group> {
    let mut root: Vec<usize> = (0..nb).collect();
    fn find(root: &mut [usize], mut i: usize) -> usize {
        while root[i] != i {
            root[i] = root[root[i]];
            i = root[i];
        }
        i
    }
    for &(a, b) in &active.pairs {
        let (ra, rb) = (find(&mut root, a), find(&mut root, b));
        root[ra.max(rb)] = ra.min(rb);
    }
    let mut out: Vec<Group> = Vec::new();
    let mut slot = vec![usize::MAX; nb];
    for b in 0..nb {
        let r = find(&mut root, b);
        if slot[r] == usize::MAX {
            slot[r] = out.len();
            out.push((Vec::new(), StepContacts::default()));
        }
        out[slot[r]].0.push(b);
    }
    for &(a, b) in &active.pairs {
        let r = find(&mut root, a);
        out[slot[r]].1.pairs.push((a, b));
    }
    for sp in &active.sliding {
        let r = find(&mut root, sp.body);
        out[slot[r]].1.sliding.push(*sp);
    }
    for &(k, b) in &active.balls {
        let r = find(&mut root, b);
        out[slot[r]].1.balls.push((k, b));
    }
    out
}

/// The predicted orientation matrix `Q̃ = (I + h[ω]×) Rₙ` of backward Euler.
fn predicted(s: &BodyState, h: f64) -> M3 {
    let rn = so3::to_matrix(s.q);
    let w = so3::hat(s.w);
    let m: M3 =
        std::array::from_fn(|i| std::array::from_fn(|j| f64::from(u8::from(i == j)) + h * w[i][j]));
    so3::mat_mul(&m, &rn)
}

/// `tr(R J_m Q̃ᵀ) − tr(R_p J_m Q̃ᵀ)` at the orientation `q` (`R`), relative to the predicted
/// `R_p = exp([hωₙ]×)Rₙ`: with `R = exp([φ]×)R_p` and `C = R_p J_m Q̃ᵀ`, it is
/// `sin θ/θ·tr([φ]×C) + (1 − cos θ)/θ²·tr([φ]×²C)` (`θ = |φ|`). Backward Euler's rotational
/// potential is `−tr(R J_m Q̃ᵀ)/h²`; leaving out its constant `tr(C)` (of the order of
/// `tr J`) keeps `Φ`'s round-off at the size of its changes, which the line search must
/// resolve (a heavy body's `tr J/h²` of 1e7 made changes of 1e-6 unresolvable).
fn rotation_work(q: Quat, s: &BodyState, inertia: &M3, h: f64) -> f64 {
    let qp = so3::quat_mul(so3::exp_quat(s.w.map(|x| h * x)), s.q);
    let c = so3::mat_mul(
        &so3::mat_mul(&so3::to_matrix(qp), &mass_moment(inertia)),
        &so3::transpose(&predicted(s, h)),
    );
    let phi = so3::log_quat(so3::quat_mul(q, so3::conj(qp)));
    let theta = so3::norm(phi);
    let (a, b) = if theta < 1e-8 {
        (1.0, 0.5)
    } else {
        let half = (0.5 * theta).sin() / theta;
        (theta.sin() / theta, 2.0 * half * half)
    };
    let p = so3::hat(phi);
    let pp = so3::mat_mul(&p, &p);
    let tr = |m: &M3| -> f64 {
        (0..3)
            .map(|i| (0..3).map(|j| m[i][j] * c[j][i]).sum::<f64>())
            .sum()
    };
    a * tr(&p) + b * tr(&pp)
}

impl Implicit<'_> {
    /// The residual of a group's backward-Euler step at the iterates `it`, its exact
    /// Jacobian (6 rows per body, in the group's order) and the incremental potential `Φ`
    /// without the external torques' work.
    fn euler_system(
        &self,
        n: usize,
        bodies: &[usize],
        active: &StepContacts,
        start: &[BodyState],
        it: &[(V3, Quat)],
    ) -> (Vec<f64>, Mat<f64>, f64) {
        let (mut g, mut k, phi) = self.potential_system(n, bodies, active, start, it);
        self.add_connection(n, bodies, &mut g, &mut k);
        (g, k, phi)
    }

    /// [`Self::euler_system`] before [`Self::add_connection`]: the gradient and Hessian of
    /// `Φ` in `(c, δθ)` (inertia, gravity, external forces, obstacles and the active pairs).
    /// A coupled solve adds its own potentials' terms to the bodies' rows before the
    /// connection.
    pub(crate) fn potential_system(
        &self,
        n: usize,
        bodies: &[usize],
        contacts: &StepContacts,
        start: &[BodyState],
        it: &[(V3, Quat)],
    ) -> (Vec<f64>, Mat<f64>, f64) {
        let (h, h2) = (self.h, self.h * self.h);
        let mut phi = 0.0;
        let k6 = 6 * bodies.len();
        let mut g = vec![0.0; k6];
        let mut k = Mat::<f64>::zeros(k6, k6);
        let rot: Vec<M3> = it.iter().map(|(_, q)| so3::to_matrix(*q)).collect();
        for (l, &b) in bodies.iter().enumerate() {
            let (body, s, o) = (&self.model.bodies[b], &start[b], 6 * l);
            let (m, c) = (body.mass, it[l].0);
            let bm = so3::mat_mul(
                &so3::mat_mul(&rot[l], &mass_moment(&body.inertia)),
                &so3::transpose(&predicted(s, h)),
            );
            let skew: M3 = std::array::from_fn(|i| std::array::from_fn(|j| bm[i][j] - bm[j][i]));
            let gr = so3::vee(&skew);
            let ext = self.model.wrench(n, b);
            let tr = bm[0][0] + bm[1][1] + bm[2][2];
            phi -= rotation_work(it[l].1, s, &body.inertia, h) / h2;
            for i in 0..3 {
                let dc = c[i] - s.c[i] - h * s.v[i];
                phi += 0.5 * m / h2 * dc * dc
                    - (m * self.model.gravity[i] + ext.f[i]) * (c[i] - s.c[i]);
                g[o + i] =
                    m * (c[i] - s.c[i] - h * s.v[i]) / h2 - m * self.model.gravity[i] - ext.f[i];
                g[o + 3 + i] = gr[i] / h2;
                k[(o + i, o + i)] = m / h2;
                for j in 0..3 {
                    let id = f64::from(u8::from(i == j));
                    k[(o + 3 + i, o + 3 + j)] = (tr * id - 0.5 * (bm[i][j] + bm[j][i])) / h2;
                }
            }
            let rn = so3::to_matrix(s.q);
            for ab in &body.points {
                let at = (c, &rot[l], (s.c, &rn), o);
                let terms = (&mut g[..], &mut k, &mut phi);
                self.obstacle_point(&self.obstacles[b], (*ab, 1.0), at, terms);
            }
        }
        let local = |b: usize| {
            bodies
                .iter()
                .position(|&x| x == b)
                .expect("a pair inside its group")
        };
        let iterate = |l: usize| (it[l].0, &rot[l]);
        for &(ia, ib) in &contacts.pairs {
            let (la, lb) = (local(ia), local(ib));
            let shape = pairs::pair_shape(self.model, (ia, ib));
            for ab in &self.model.bodies[ia].points {
                let at = ((Some(ia), ib), (Some(la), lb), iterate(la), iterate(lb));
                let terms = (&mut g[..], &mut k, &mut phi);
                self.pair_point(&shape, (*ab, 1.0), at, start, terms);
            }
        }
        for sp in &contacts.sliding {
            let (ia, la) = (sp.body, local(sp.body));
            let terms = (&mut g[..], &mut k, &mut phi);
            match sp.target {
                Target::Body(ib) => {
                    let lb = local(ib);
                    let shape = pairs::pair_shape(self.model, (ia, ib));
                    let at = ((Some(ia), ib), (Some(la), lb), iterate(la), iterate(lb));
                    self.pair_point(&shape, (sp.point, sp.weight), at, start, terms);
                }
                Target::Obstacle(kk) => {
                    let shapes = &self.obstacles[ia][kk..=kk];
                    let rn = so3::to_matrix(start[ia].q);
                    let at = (it[la].0, &rot[la], (start[ia].c, &rn), 6 * la);
                    self.obstacle_point(shapes, (sp.point, sp.weight), at, terms);
                }
            }
        }
        // A static ball's centre against the body's signed distance (the ball is the world's).
        for &(kk, b) in &contacts.balls {
            let lb = local(b);
            let (centre, shape) = balls::geometry(self.model, (kk, b));
            let at = (
                (None, b),
                (None, lb),
                ([0.0; 3], &balls::IDENTITY),
                iterate(lb),
            );
            let terms = (&mut g[..], &mut k, &mut phi);
            self.pair_point(&shape, (centre, 1.0), at, start, terms);
        }
        (g, k, phi)
    }

    /// The connection term `−½[g_Φ]×` of each re-centred rotation (from the potential part
    /// of the rotational gradient, so every potential must be in `g` already), then the
    /// external torques `−τ`.
    pub(crate) fn add_connection(
        &self,
        n: usize,
        bodies: &[usize],
        g: &mut [f64],
        k: &mut Mat<f64>,
    ) {
        for (l, &b) in bodies.iter().enumerate() {
            let o = 6 * l;
            let sk = so3::hat([g[o + 3], g[o + 4], g[o + 5]]);
            let t = self.model.wrench(n, b).t;
            for i in 0..3 {
                for j in 0..3 {
                    k[(o + 3 + i, o + 3 + j)] -= 0.5 * sk[i][j];
                }
                g[o + 3 + i] -= t[i];
            }
        }
    }

    /// One group's backward-Euler step: the new states (in the group's order), the tape and
    /// the Newton iterations.
    pub(super) fn euler_step(
        &self,
        n: usize,
        (bodies, contacts): Group,
        start: &[BodyState],
    ) -> Result<(Vec<BodyState>, EulerTape, usize)> {
        let h = self.h;
        let mut it: Vec<(V3, Quat)> = bodies
            .iter()
            .map(|&b| {
                let s = &start[b];
                (
                    std::array::from_fn(|i| s.c[i] + h * s.v[i]),
                    so3::quat_mul(so3::exp_quat(s.w.map(|x| h * x)), s.q),
                )
            })
            .collect();
        let scales: Vec<(f64, f64)> = bodies
            .iter()
            .map(|&b| {
                let body = &self.model.bodies[b];
                let j = &body.inertia;
                (body.mass / (h * h), (j[0][0] + j[1][1] + j[2][2]) / (h * h))
            })
            .collect();
        let scale = |r: usize| {
            if r % 6 < 3 {
                scales[r / 6].0
            } else {
                scales[r / 6].1
            }
        };
        let converged = |g: &[f64], it: &[(V3, Quat)]| {
            (0..g.len()).all(|r| {
                let cm = if r % 6 < 3 {
                    it[r / 6].0.iter().fold(1.0f64, |a, x| a.max(x.abs()))
                } else {
                    1.0
                };
                g[r].abs() <= self.tol * scale(r) * cm
            })
        };
        let norm = |g: &[f64]| (0..g.len()).map(|r| (g[r] / scale(r)).powi(2)).sum::<f64>();
        // Converged at a residual of tol·(inertia scale), or after a Newton step below 1e-13
        // of the unknowns (large contact forces put the residual's round-off above tol).
        let mut tiny_step = false;
        for iter in 0..=self.max_iters {
            let (g, k, phi) = self.euler_system(n, &bodies, &contacts, start, &it);
            if !g.iter().all(|x| x.is_finite()) {
                break;
            }
            let lu = k.partial_piv_lu();
            if tiny_step || converged(&g, &it) {
                let states = bodies
                    .iter()
                    .zip(&it)
                    .map(|(&b, &(c, q))| {
                        let s = &start[b];
                        BodyState {
                            c,
                            q,
                            v: std::array::from_fn(|i| (c[i] - s.c[i]) / h),
                            w: so3::log_quat(so3::quat_mul(q, so3::conj(s.q))).map(|x| x / h),
                        }
                    })
                    .collect();
                return Ok((
                    states,
                    EulerTape {
                        bodies,
                        contacts,
                        lu,
                    },
                    iter,
                ));
            }
            if iter == self.max_iters {
                break;
            }
            let newton = lu.solve(Mat::from_fn(g.len(), 1, |i, _| -g[i]));
            let mut d: Vec<f64> = (0..g.len()).map(|r| newton[(r, 0)]).collect();
            tiny_step = (0..g.len()).all(|r| {
                let size = if r % 6 < 3 {
                    it[r / 6].0.iter().fold(1.0f64, |a, x| a.max(x.abs()))
                } else {
                    1.0
                };
                d[r].abs() <= 1e-13 * size
            });
            let mut slope: f64 = g.iter().zip(&d).map(|(a, b)| a * b).sum();
            // Where the Newton matrix is indefinite (large rotations against stiff contact)
            // its step may climb Φ: Levenberg-Marquardt's K + λ·diag(scale) instead, λ
            // growing until the step descends; the scaled steepest descent as a last resort.
            let mut lambda = 1e-6;
            let descends = |slope: f64| slope < 0.0;
            while !descends(slope) && lambda < 1e8 {
                let kr = Mat::from_fn(g.len(), g.len(), |i, j| {
                    k[(i, j)] + if i == j { lambda * scale(i) } else { 0.0 }
                });
                let step = kr
                    .partial_piv_lu()
                    .solve(Mat::from_fn(g.len(), 1, |i, _| -g[i]));
                d = (0..g.len()).map(|r| step[(r, 0)]).collect();
                slope = g.iter().zip(&d).map(|(a, b)| a * b).sum();
                lambda *= 10.0;
            }
            if !descends(slope) {
                d = (0..g.len()).map(|r| -g[r] / scale(r)).collect();
                slope = g.iter().zip(&d).map(|(a, b)| a * b).sum();
            }
            // The external torques' work along the step (Φ leaves it out).
            let torque_work: f64 = bodies
                .iter()
                .enumerate()
                .map(|(l, &b)| {
                    dot(
                        self.model.wrench(n, b).t,
                        [0, 1, 2].map(|i| d[6 * l + 3 + i]),
                    )
                })
                .sum();
            let g0 = norm(&g);
            // Backtracking: the step is taken once it satisfies Armijo's condition on Φ, or
            // lowers the scaled residual without raising Φ beyond its round-off (near the
            // solution Φ's decrease drowns in round-off). The residual alone can cycle or end
            // on a saddle when stiff contact makes the problem strongly nonlinear.
            let mut t = 1.0;
            loop {
                let trial: Vec<(V3, Quat)> = it
                    .iter()
                    .enumerate()
                    .map(|(l, (c, q))| {
                        let o = 6 * l;
                        (
                            std::array::from_fn(|i| c[i] + t * d[o + i]),
                            so3::normalize(so3::quat_mul(
                                so3::exp_quat(std::array::from_fn(|i| t * d[o + 3 + i])),
                                *q,
                            )),
                        )
                    })
                    .collect();
                let (g1, _, phi1) = self.euler_system(n, &bodies, &contacts, start, &trial);
                let rise = phi1 - t * torque_work - phi;
                let armijo = rise <= 1e-4 * t * slope;
                let flat = rise <= 1e-12 * phi.abs().max(1.0);
                if armijo || (flat && norm(&g1) < g0) || t < 1e-8 {
                    it = trial;
                    break;
                }
                t *= 0.5;
            }
        }
        Err(DiffsimError::config(format!(
            "the backward-Euler Newton solve of bodies {bodies:?} in step {n} did not converge in {} iterations",
            self.max_iters
        )))
    }

    /// The IFT adjoint of one group's step: given the bars of the new states (`out[b]`),
    /// adds the bars of the step's start states into `prev[b]`, sets the wrench bars and adds
    /// the contact parameters' bars (`points[b][k]`, `friction`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn euler_vjp(
        &self,
        tape: &EulerTape,
        start: &[BodyState],
        end: &[BodyState],
        out: &[StateBar],
        prev: &mut [StateBar],
        wrenches: &mut [Wrench],
        (points, friction): (&mut [Vec<V3>], &mut f64),
    ) {
        let ybar = self.euler_seed(&tape.bodies, start, end, out);
        let lam = tape
            .lu
            .solve_transpose(Mat::from_fn(ybar.len(), 1, |i, _| ybar[i]));
        let lam: Vec<f64> = (0..ybar.len()).map(|i| lam[(i, 0)]).collect();
        let group = (&tape.bodies[..], &tape.contacts);
        self.euler_vjp_lambda(
            group,
            (start, end),
            out,
            &lam,
            prev,
            wrenches,
            (points, friction),
        );
    }

    /// The right-hand side `ȳ` of a group's adjoint solve (6 per body: `(c, δθ)` of the new
    /// states) from the bars `out[b]` of the new states.
    pub(crate) fn euler_seed(
        &self,
        bodies: &[usize],
        start: &[BodyState],
        end: &[BodyState],
        out: &[StateBar],
    ) -> Vec<f64> {
        let h = self.h;
        let mut ybar = vec![0.0; 6 * bodies.len()];
        for (l, &b) in bodies.iter().enumerate() {
            let (s, s1, o) = (&start[b], &end[b], &out[b]);
            let jl = so3::left_jacobian_inv(so3::log_quat(so3::quat_mul(s1.q, so3::conj(s.q))));
            let wy = so3::mat_t_vec(&jl, o.w);
            for i in 0..3 {
                ybar[6 * l + i] = o.c[i] + o.v[i] / h;
                ybar[6 * l + 3 + i] = o.theta[i] + wy[i] / h;
            }
        }
        ybar
    }

    /// The part of [`Self::euler_vjp`] after the solve, given the adjoint `λ = K⁻ᵀȳ` of the
    /// group `(bodies, pairs)` (6 per body).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn euler_vjp_lambda(
        &self,
        (bodies, contacts): (&[usize], &StepContacts),
        (start, end): (&[BodyState], &[BodyState]),
        out: &[StateBar],
        lam: &[f64],
        prev: &mut [StateBar],
        wrenches: &mut [Wrench],
        (points, friction): (&mut [Vec<V3>], &mut f64),
    ) {
        let h = self.h;
        let lc = |l: usize| -> V3 { std::array::from_fn(|i| lam[6 * l + i]) };
        let lt = |l: usize| -> V3 { std::array::from_fn(|i| lam[6 * l + 3 + i]) };
        for (l, &b) in bodies.iter().enumerate() {
            let body = &self.model.bodies[b];
            let (s, s1, o) = (&start[b], &end[b], &out[b]);
            let (lcl, ltl) = (lc(l), lt(l));
            let m = body.mass;
            let p = &mut prev[b];
            let jl = so3::left_jacobian_inv(so3::log_quat(so3::quat_mul(s1.q, so3::conj(s.q))));
            let back = so3::mat_vec(&jl, o.w);
            for i in 0..3 {
                p.c[i] += m / (h * h) * lcl[i] - o.v[i] / h;
                p.v[i] += m / h * lcl[i];
                p.theta[i] -= back[i] / h;
            }
            // Through B = R J_m Rₙᵀ (I − h[ωₙ]×): columns of ∂g_θ/∂ωₙ and ∂g_θ/∂δθₙ.
            let rm = so3::to_matrix(s1.q);
            let rn = so3::to_matrix(s.q);
            let cm = so3::mat_mul(
                &so3::mat_mul(&rm, &mass_moment(&body.inertia)),
                &so3::transpose(&rn),
            );
            let wx = so3::hat(s.w);
            let mm: M3 = std::array::from_fn(|i| {
                std::array::from_fn(|j| f64::from(u8::from(i == j)) - h * wx[i][j])
            });
            for kk in 0..3 {
                let mut e = [0.0; 3];
                e[kk] = 1.0;
                let ce = so3::mat_mul(&cm, &so3::hat(e));
                // C[e]× + [e]×Cᵀ = C[e]× − (C[e]×)ᵀ: its vee, times −1/h.
                let skew_w: M3 =
                    std::array::from_fn(|i| std::array::from_fn(|j| ce[i][j] - ce[j][i]));
                let col_w = so3::vee(&skew_w).map(|x| -x / h);
                let db = so3::mat_mul(&ce, &mm).map(|r| r.map(|x| -x));
                let skew_r: M3 =
                    std::array::from_fn(|i| std::array::from_fn(|j| db[i][j] - db[j][i]));
                let col_r = so3::vee(&skew_r).map(|x| x / (h * h));
                p.w[kk] -= dot(col_w, ltl);
                p.theta[kk] -= dot(col_r, ltl);
            }
            // Static obstacles: the point p = c + R a_b and its lever arm in the residual, and
            // the lagged terms at pₙ = cₙ + Rₙa_b.
            for (ab, pbar) in body.points.iter().zip(points[b].iter_mut()) {
                let bars = (&mut *p, pbar, &mut *friction);
                let shapes = &self.obstacles[b];
                self.obstacle_point_vjp(shapes, (*ab, 1.0), (lcl, ltl), (s, s1), bars);
            }
            wrenches[b] = Wrench { f: lcl, t: ltl };
        }
        let local = |b: usize| bodies.iter().position(|&x| x == b).expect("in the group");
        let lam_of = |l: usize| (lc(l), lt(l));
        for &(ia, ib) in &contacts.pairs {
            let (la, lb) = (local(ia), local(ib));
            let shape = pairs::pair_shape(self.model, (ia, ib));
            for (ab, pbar) in self.model.bodies[ia]
                .points
                .iter()
                .zip(points[ia].iter_mut())
            {
                let at = ((Some(ia), ib), (lam_of(la), lam_of(lb)), (start, end));
                self.pair_point_vjp(&shape, (*ab, 1.0), at, (prev, pbar, friction));
            }
        }
        // A sliding point's position on its axis and its weight follow the start states.
        for sp in &contacts.sliding {
            let (ia, la) = (sp.body, local(sp.body));
            let mut pbar = [0.0; 3];
            let weight_bar = match sp.target {
                Target::Body(ib) => {
                    let shape = pairs::pair_shape(self.model, (ia, ib));
                    let lams = (lam_of(la), lam_of(local(ib)));
                    let at = ((Some(ia), ib), lams, (start, end));
                    let bars = (&mut *prev, &mut pbar, &mut *friction);
                    self.pair_point_vjp(&shape, (sp.point, sp.weight), at, bars)
                }
                Target::Obstacle(kk) => {
                    let shapes = &self.obstacles[ia][kk..=kk];
                    let bars = (&mut prev[ia], &mut pbar, &mut *friction);
                    let states = (&start[ia], &end[ia]);
                    let point = (sp.point, sp.weight);
                    self.obstacle_point_vjp(shapes, point, lam_of(la), states, bars)
                }
            };
            let moved = sp.start_bars(pbar, weight_bar);
            let mut sides = vec![(ia, &moved[..6])];
            if let Target::Body(ib) = sp.target {
                sides.push((ib, &moved[6..]));
            }
            for (k, m) in sides {
                for i in 0..3 {
                    prev[k].c[i] += m[i];
                    prev[k].theta[i] += m[3 + i];
                }
            }
        }
        for &(kk, b) in &contacts.balls {
            let (centre, shape) = balls::geometry(self.model, (kk, b));
            let at = (
                (None, b),
                (([0.0; 3], [0.0; 3]), lam_of(local(b))),
                (start, end),
            );
            let mut centre_bar = [0.0; 3];
            self.pair_point_vjp(&shape, (centre, 1.0), at, (prev, &mut centre_bar, friction));
        }
    }
}
