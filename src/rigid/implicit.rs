//! Implicit rigid-body steps with implicit-function-theorem adjoints.
//!
//! **Backward Euler** minimises the incremental potential of the body's material points
//! `x = c + R r` over one step `h`:
//!
//! ```text
//! Φ(c, R) = m/(2h²)|c − c̃|² − tr(R J_m Q̃ᵀ)/h² − (m g + f)·c + V(c, R)
//! c̃ = cₙ + h vₙ,   Q̃ = (I + h[ωₙ]×) Rₙ,   J_m = ½tr(J)·1 − J
//! ```
//!
//! (`V`: the contact potentials of the body points; friction and damping lagged at the
//! points' previous positions as for particles), plus the external torque `τ` as the work
//! `τ·δθ` of a world-frame increment. Newton runs on `(c, δθ)` with `R = exp([δθ]×)·R̄`
//! re-centred at every iterate `R̄`, so there is no constraint and no singularity. With
//! `B = R̄ J_m Q̃ᵀ`, the rotational gradient is `vee(B − Bᵀ)/h² − τ` and the exact Jacobian of
//! that re-centred gradient field is `(tr(B)·1 − ½(B + Bᵀ))/h² − ½[g_Φ]×` (`g_Φ` the
//! potential part of the gradient; the skew term is the connection of the re-centring, and
//! the contact points add `Jᵀ∇²V J` with `J = [1, −[R̄a]×]` and a second-order term).
//! Afterwards `vₙ₊₁ = (c − cₙ)/h`, `ωₙ₊₁ = log(R Rₙᵀ)/h`. The adjoint solves the transposed
//! Newton matrix of the converged step once (its LU factors are kept).
//!
//! **Implicit midpoint** on Euler's equations in the body frame with the Cayley update:
//! `J(Ω₁ − Ω₀) = h (J Ω_m) × Ω_m + h Rₙᵀτ`, `Ω_m = (Ω₀ + Ω₁)/2`, `q₁ = q₀ ⊗ cay(hΩ_m)`
//! (the quaternion `(1, hΩ_m/2)` normalised), and `v₁ = v₀ + h(f/m + g)`,
//! `c₁ = c₀ + h(v₀ + v₁)/2`. For a torque-free body the midpoint rule keeps the quadratic
//! invariants of Euler's equations (energy, `|JΩ|`) and the Cayley update makes the world
//! angular momentum `R J Ω` exactly constant. External forces and torques only: it refuses a
//! model with contact.

use super::body::{BodyState, RigidBody, StateBar, mass_moment};
use super::model::{RigidModel, Wrench};
use super::semi_implicit::RawBar;
use super::so3::{self, Quat};
use super::{RigidGrads, body_obstacles, check_dt, check_finite};
use crate::error::{DiffsimError, Result};
use crate::solids::contact::{self, Shape};
use crate::solids::math::{M3, V3, dot, sub};
use faer::Mat;
use faer::linalg::solvers::{PartialPivLu, Solve};

/// The implicit scheme.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RigidScheme {
    /// Backward Euler on the incremental potential: first order, damps rotation and
    /// translation; contact supported.
    #[default]
    BackwardEuler,
    /// Implicit midpoint with the Cayley update: second order, conserves a free body's
    /// energy and angular momentum; no contact.
    Midpoint,
}

/// The implicit stepper.
pub struct Implicit<'a> {
    model: &'a RigidModel,
    h: f64,
    scheme: RigidScheme,
    obstacles: Vec<Vec<Shape>>,
    /// Newton tolerance on the residual, relative to the inertia scale.
    tol: f64,
    max_iters: usize,
}

/// What one body's step keeps for its adjoint.
enum StepTape {
    /// The LU factors of the converged Newton matrix (6×6).
    Euler(PartialPivLu<f64>),
    /// The LU factors of `∂r/∂Ω₁` and `Ω₀`, `Ω₁`.
    Midpoint(PartialPivLu<f64>, V3, V3),
}

/// A trajectory with what the adjoint needs.
pub struct ImplicitRigidRollout {
    /// `states[n][b]`, the initial states first.
    pub states: Vec<Vec<BodyState>>,
    tapes: Vec<Vec<StepTape>>,
    /// Newton iterations per step and body.
    pub newton_iters: Vec<Vec<usize>>,
}

impl<'a> Implicit<'a> {
    /// A stepper for `model` with step `h` (s).
    pub fn new(model: &'a RigidModel, h: f64, scheme: RigidScheme) -> Result<Self> {
        model.validate()?;
        check_dt(h)?;
        if scheme == RigidScheme::Midpoint && model.has_contact() {
            return Err(DiffsimError::config(
                "the rigid midpoint scheme takes external forces only; use backward Euler with contact",
            ));
        }
        Ok(Self {
            model,
            h,
            scheme,
            obstacles: body_obstacles(model),
            tol: 1e-12,
            max_iters: 50,
        })
    }

    /// `steps` steps from `init`.
    pub fn rollout(&self, init: &[BodyState], steps: usize) -> Result<ImplicitRigidRollout> {
        self.model.check_states(init)?;
        let nb = init.len();
        let mut run = ImplicitRigidRollout {
            states: vec![init.to_vec()],
            tapes: Vec::with_capacity(steps),
            newton_iters: Vec::with_capacity(steps),
        };
        for n in 0..steps {
            let (mut next, mut tapes, mut iters) = (Vec::new(), Vec::new(), Vec::new());
            for b in 0..nb {
                let s = &run.states[n][b];
                let w = self.model.wrench(n, b);
                let (state, tape, it) = match self.scheme {
                    RigidScheme::BackwardEuler => self.euler_step(b, s, w)?,
                    RigidScheme::Midpoint => self.midpoint_step(b, s, w)?,
                };
                next.push(state);
                tapes.push(tape);
                iters.push(it);
            }
            check_finite(n, &next)?;
            run.states.push(next);
            run.tapes.push(tapes);
            run.newton_iters.push(iters);
        }
        Ok(run)
    }

    /// Gradients given `state_bars[n][b]`, the loss's gradients with respect to every state
    /// (an empty entry is zero).
    pub fn adjoint(&self, run: &ImplicitRigidRollout, state_bars: &[Vec<StateBar>]) -> RigidGrads {
        let steps = run.states.len() - 1;
        let nb = self.model.bodies.len();
        let mut grads = RigidGrads::zeros(nb, steps);
        let seed = |n: usize, b: usize| -> StateBar {
            state_bars
                .get(n)
                .and_then(|v| v.get(b))
                .copied()
                .unwrap_or_default()
        };
        for b in 0..nb {
            let mut bar = seed(steps, b);
            for n in (0..steps).rev() {
                let (s, s1) = (&run.states[n][b], &run.states[n + 1][b]);
                let w = self.model.wrench(n, b);
                let (mut prev, wb) = match &run.tapes[n][b] {
                    StepTape::Euler(lu) => self.euler_vjp(b, s, s1, lu, &bar),
                    StepTape::Midpoint(lu, om0, om1) => {
                        self.midpoint_vjp(b, s, s1, w, lu, (*om0, *om1), &bar)
                    }
                };
                grads.wrenches[n][b] = wb;
                let add = seed(n, b);
                for i in 0..3 {
                    prev.c[i] += add.c[i];
                    prev.theta[i] += add.theta[i];
                    prev.v[i] += add.v[i];
                    prev.w[i] += add.w[i];
                }
                bar = prev;
            }
            grads.init[b] = bar;
        }
        grads
    }

    /// The residual of a backward-Euler step at `(c, q)` and its exact Jacobian.
    fn euler_system(
        &self,
        b: usize,
        s: &BodyState,
        ext: Wrench,
        c: V3,
        q: Quat,
    ) -> ([f64; 6], [[f64; 6]; 6]) {
        let (body, h) = (&self.model.bodies[b], self.h);
        let (m, h2) = (body.mass, h * h);
        let jm = mass_moment(&body.inertia);
        let rbar = so3::to_matrix(q);
        let qt = predicted(s, h);
        let bm = so3::mat_mul(&so3::mat_mul(&rbar, &jm), &so3::transpose(&qt));
        let skew: M3 = std::array::from_fn(|i| std::array::from_fn(|j| bm[i][j] - bm[j][i]));
        let gr = so3::vee(&skew);
        let mut g = [0.0; 6];
        let mut k = [[0.0; 6]; 6];
        for i in 0..3 {
            g[i] = m * (c[i] - s.c[i] - h * s.v[i]) / h2 - m * self.model.gravity[i] - ext.f[i];
            g[3 + i] = gr[i] / h2;
            k[i][i] = m / h2;
        }
        let tr = bm[0][0] + bm[1][1] + bm[2][2];
        for i in 0..3 {
            for j in 0..3 {
                let id = f64::from(u8::from(i == j));
                k[3 + i][3 + j] = (tr * id - 0.5 * (bm[i][j] + bm[j][i])) / h2;
            }
        }
        self.add_contact(b, s, c, &rbar, &mut g, &mut k);
        // The connection term of the re-centred rotation, from the potential part only.
        let gphi: V3 = [g[3], g[4], g[5]];
        let sk = so3::hat(gphi);
        for i in 0..3 {
            for j in 0..3 {
                k[3 + i][3 + j] -= 0.5 * sk[i][j];
            }
            g[3 + i] -= ext.t[i];
        }
        (g, k)
    }

    /// Adds the contact points' gradients and Hessians (normal potential; damping and
    /// friction lagged at the points' positions at the step's start).
    fn add_contact(
        &self,
        b: usize,
        s: &BodyState,
        c: V3,
        rbar: &M3,
        g: &mut [f64; 6],
        k: &mut [[f64; 6]; 6],
    ) {
        let body = &self.model.bodies[b];
        let cp = &self.model.contact;
        let rn = so3::to_matrix(s.q);
        for a in &body.points {
            let aw = so3::mat_vec(rbar, *a);
            let p = so3::add(c, aw);
            let pn = so3::add(s.c, so3::mat_vec(&rn, *a));
            for shape in &self.obstacles[b] {
                let (_, f, dfdx) = contact::normal(cp, shape, p, false);
                let mut gp: V3 = f.map(|x| -x);
                let mut hp: M3 = std::array::from_fn(|i| std::array::from_fn(|j| -dfdx[i][j]));
                if cp.kd > 0.0 {
                    let (w, n, _, _) = contact::damping_frame(cp, shape, pn);
                    let sd = dot(n, sub(p, pn));
                    for i in 0..3 {
                        gp[i] += w / self.h * sd * n[i];
                        for j in 0..3 {
                            hp[i][j] += w / self.h * n[i] * n[j];
                        }
                    }
                }
                if cp.mu > 0.0 {
                    let (_, gf, hf) = contact::friction(cp, shape, p, pn, self.h);
                    for i in 0..3 {
                        gp[i] += gf[i];
                        for j in 0..3 {
                            hp[i][j] += hf[i][j];
                        }
                    }
                }
                add_point(aw, gp, &hp, g, k);
            }
        }
    }

    fn euler_step(
        &self,
        b: usize,
        s: &BodyState,
        ext: Wrench,
    ) -> Result<(BodyState, StepTape, usize)> {
        let body = &self.model.bodies[b];
        let h = self.h;
        let mut c: V3 = std::array::from_fn(|i| s.c[i] + h * s.v[i]);
        let mut q = so3::quat_mul(so3::exp_quat(s.w.map(|x| h * x)), s.q);
        let scale_c = body.mass / (h * h);
        let tr = body.inertia[0][0] + body.inertia[1][1] + body.inertia[2][2];
        let scale_r = tr / (h * h);
        let converged = |g: &[f64; 6], c: &V3| {
            let cm = c.iter().fold(1.0f64, |a, x| a.max(x.abs()));
            (0..3).all(|i| g[i].abs() <= self.tol * scale_c * cm)
                && (3..6).all(|i| g[i].abs() <= self.tol * scale_r)
        };
        for it in 0..=self.max_iters {
            let (g, k) = self.euler_system(b, s, ext, c, q);
            if !g.iter().all(|x| x.is_finite()) {
                break;
            }
            let lu = Mat::from_fn(6, 6, |i, j| k[i][j]).partial_piv_lu();
            if converged(&g, &c) || it == self.max_iters {
                if !converged(&g, &c) {
                    break;
                }
                let w = so3::log_quat(so3::quat_mul(q, so3::conj(s.q))).map(|x| x / h);
                let v = std::array::from_fn(|i| (c[i] - s.c[i]) / h);
                return Ok((BodyState { c, q, v, w }, StepTape::Euler(lu), it));
            }
            let d = lu.solve(Mat::from_fn(6, 1, |i, _| -g[i]));
            // Backtracking on the residual norm (scaled per block).
            let norm = |g: &[f64; 6]| {
                (0..6)
                    .map(|i| (g[i] / if i < 3 { scale_c } else { scale_r }).powi(2))
                    .sum::<f64>()
            };
            let g0 = norm(&g);
            let mut t = 1.0;
            loop {
                let c1: V3 = std::array::from_fn(|i| c[i] + t * d[(i, 0)]);
                let q1 = so3::normalize(so3::quat_mul(
                    so3::exp_quat([d[(3, 0)] * t, d[(4, 0)] * t, d[(5, 0)] * t]),
                    q,
                ));
                let (g1, _) = self.euler_system(b, s, ext, c1, q1);
                if norm(&g1) < g0 || t < 1e-3 {
                    (c, q) = (c1, q1);
                    break;
                }
                t *= 0.5;
            }
        }
        Err(DiffsimError::config(format!(
            "the backward-Euler Newton solve of body {b} did not converge in {} iterations",
            self.max_iters
        )))
    }

    /// The IFT adjoint of one backward-Euler step.
    fn euler_vjp(
        &self,
        b: usize,
        s: &BodyState,
        s1: &BodyState,
        lu: &PartialPivLu<f64>,
        out: &StateBar,
    ) -> (StateBar, Wrench) {
        let (body, h) = (&self.model.bodies[b], self.h);
        let phi = so3::log_quat(so3::quat_mul(s1.q, so3::conj(s.q)));
        let jl = so3::left_jacobian_inv(phi);
        let wy = so3::mat_t_vec(&jl, out.w);
        let mut ybar = [0.0; 6];
        for i in 0..3 {
            ybar[i] = out.c[i] + out.v[i] / h;
            ybar[3 + i] = out.theta[i] + wy[i] / h;
        }
        let lam = lu.solve_transpose(Mat::from_fn(6, 1, |i, _| ybar[i]));
        let lc: V3 = std::array::from_fn(|i| lam[(i, 0)]);
        let lt: V3 = std::array::from_fn(|i| lam[(3 + i, 0)]);
        let m = body.mass;
        let mut prev = StateBar::default();
        let back = so3::mat_vec(&jl, out.w);
        for i in 0..3 {
            prev.c[i] = m / (h * h) * lc[i] - out.v[i] / h;
            prev.v[i] = m / h * lc[i];
            prev.theta[i] = -back[i] / h;
        }
        // Through B = R J_m Rₙᵀ (I − h[ωₙ]×): columns of ∂g_θ/∂ωₙ and ∂g_θ/∂δθₙ.
        let rm = so3::to_matrix(s1.q);
        let rn = so3::to_matrix(s.q);
        let cm = so3::mat_mul(
            &so3::mat_mul(&rm, &mass_moment(&body.inertia)),
            &so3::transpose(&rn),
        );
        let mm: M3 = std::array::from_fn(|i| {
            std::array::from_fn(|j| f64::from(u8::from(i == j)) - h * so3::hat(s.w)[i][j])
        });
        for k in 0..3 {
            let mut e = [0.0; 3];
            e[k] = 1.0;
            let ce = so3::mat_mul(&cm, &so3::hat(e));
            // C[e]× + [e]×Cᵀ = C[e]× − (C[e]×)ᵀ: its vee, times −1/h.
            let skew_w: M3 = std::array::from_fn(|i| std::array::from_fn(|j| ce[i][j] - ce[j][i]));
            let col_w = so3::vee(&skew_w).map(|x| -x / h);
            let db = so3::mat_mul(&ce, &mm).map(|r| r.map(|x| -x));
            let skew_r: M3 = std::array::from_fn(|i| std::array::from_fn(|j| db[i][j] - db[j][i]));
            let col_r = so3::vee(&skew_r).map(|x| x / (h * h));
            prev.w[k] -= dot(col_w, lt);
            prev.theta[k] -= dot(col_r, lt);
        }
        // The lagged contact terms depend on the points' previous positions pₙ = cₙ + Rₙa.
        let cp = &self.model.contact;
        if cp.kd > 0.0 || cp.mu > 0.0 {
            for a in &body.points {
                let aw = so3::mat_vec(&rm, *a);
                let an = so3::mat_vec(&rn, *a);
                let p = so3::add(s1.c, aw);
                let pn = so3::add(s.c, an);
                let y = so3::add(lc, so3::cross(lt, aw));
                for shape in &self.obstacles[b] {
                    let mut pnb = [0.0; 3];
                    if cp.kd > 0.0 {
                        let (w, n, dw, dn) = contact::damping_frame(cp, shape, pn);
                        let d = sub(p, pn);
                        let (sd, ny) = (dot(n, d), dot(n, y));
                        let ndt = so3::mat_t_vec(&dn, d);
                        let nty = so3::mat_t_vec(&dn, y);
                        for i in 0..3 {
                            pnb[i] -=
                                dw[i] * sd * ny / h + w / h * (ny * (ndt[i] - n[i]) + sd * nty[i]);
                        }
                    }
                    if cp.mu > 0.0 {
                        let v = contact::friction_lagged_vjp(cp, shape, p, pn, h, y);
                        (0..3).for_each(|i| pnb[i] -= v[i]);
                    }
                    let t = so3::cross(an, pnb);
                    for i in 0..3 {
                        prev.c[i] += pnb[i];
                        prev.theta[i] += t[i];
                    }
                }
            }
        }
        (prev, Wrench { f: lc, t: lt })
    }

    fn midpoint_residual(&self, b: usize, om0: V3, om1: V3, tb: V3) -> (V3, M3) {
        let (j, h) = (&self.model.bodies[b].inertia, self.h);
        let omm: V3 = std::array::from_fn(|i| 0.5 * (om0[i] + om1[i]));
        let jm = so3::mat_vec(j, omm);
        let gyro = so3::cross(jm, omm);
        let d = so3::mat_vec(j, sub(om1, om0));
        let r = std::array::from_fn(|i| d[i] - h * gyro[i] - h * tb[i]);
        let mm = midpoint_gyro_jacobian(j, omm);
        let jac = std::array::from_fn(|i| std::array::from_fn(|k| j[i][k] - 0.5 * h * mm[i][k]));
        (r, jac)
    }

    fn midpoint_step(
        &self,
        b: usize,
        s: &BodyState,
        ext: Wrench,
    ) -> Result<(BodyState, StepTape, usize)> {
        let body = &self.model.bodies[b];
        let (h, m, g) = (self.h, body.mass, self.model.gravity);
        let r0 = so3::to_matrix(s.q);
        let om0 = so3::mat_t_vec(&r0, s.w);
        let tb = so3::mat_t_vec(&r0, ext.t);
        let mut om1 = om0;
        // Newton to round-off (the last update below 2ε|Ω₁|, or no longer shrinking): the
        // conservation properties
        // hold to the accuracy of this solve.
        let (mut done, mut last_step) = (false, f64::INFINITY);
        for it in 0..=self.max_iters {
            let (r, jac) = self.midpoint_residual(b, om0, om1, tb);
            let lu = Mat::from_fn(3, 3, |i, k| jac[i][k]).partial_piv_lu();
            if done {
                let omm: V3 = std::array::from_fn(|i| 0.5 * (om0[i] + om1[i]));
                let q = so3::normalize(so3::quat_mul(s.q, so3::normalize(cayley_quat(omm, h))));
                let v: V3 = std::array::from_fn(|i| s.v[i] + h * (ext.f[i] / m + g[i]));
                let c = std::array::from_fn(|i| s.c[i] + 0.5 * h * (s.v[i] + v[i]));
                let w = so3::mat_vec(&so3::to_matrix(q), om1);
                return Ok((
                    BodyState { c, q, v, w },
                    StepTape::Midpoint(lu, om0, om1),
                    it,
                ));
            }
            if it == self.max_iters || !r.iter().all(|x| x.is_finite()) {
                break;
            }
            let d = lu.solve(Mat::from_fn(3, 1, |i, _| -r[i]));
            (0..3).for_each(|i| om1[i] += d[(i, 0)]);
            let size = om1.iter().fold(1e-300f64, |a, x| a.max(x.abs()));
            let step = (0..3).fold(0.0f64, |a, i| a.max(d[(i, 0)].abs()));
            // Done at round-off, or when the steps stop shrinking once they are tiny.
            done = step <= 2.0 * f64::EPSILON * size
                || (last_step <= 1e-10 * size && step >= last_step);
            last_step = step;
        }
        Err(DiffsimError::config(format!(
            "the midpoint Newton solve of body {b} did not converge in {} iterations",
            self.max_iters
        )))
    }

    #[allow(clippy::too_many_arguments)]
    fn midpoint_vjp(
        &self,
        b: usize,
        s: &BodyState,
        s1: &BodyState,
        ext: Wrench,
        lu: &PartialPivLu<f64>,
        (om0, om1): (V3, V3),
        out: &StateBar,
    ) -> (StateBar, Wrench) {
        let body = &self.model.bodies[b];
        let (h, m) = (self.h, body.mass);
        let out = RawBar::from_tangent(s1.q, out);
        let r0 = so3::to_matrix(s.q);
        let r1 = so3::to_matrix(s1.q);
        let mut bar = RawBar::default();
        // ω₁ = R(q₁) Ω₁.
        let mut om1b = so3::mat_t_vec(&r1, out.w);
        let mut q1b = out.q;
        let qr = so3::to_matrix_vjp(s1.q, &so3::outer(out.w, om1));
        (0..4).for_each(|i| q1b[i] += qr[i]);
        // q₁ = q₀ ⊗ u, u = normalize(k), k = (1, hΩ_m/2).
        let omm: V3 = std::array::from_fn(|i| 0.5 * (om0[i] + om1[i]));
        let k = cayley_quat(omm, h);
        let u = so3::normalize(k);
        // q₁ = normalize(q₀ ⊗ u) (a round-off correction; its Jacobian kept).
        q1b = so3::normalize_vjp(so3::quat_mul(s.q, u), q1b);
        let q0b = so3::quat_mul(q1b, so3::conj(u));
        let ub = so3::quat_mul(so3::conj(s.q), q1b);
        let kb = so3::normalize_vjp(k, ub);
        let mut om0b = [0.0; 3];
        for i in 0..3 {
            let ommb = 0.5 * h * kb[i + 1];
            om0b[i] += 0.5 * ommb;
            om1b[i] += 0.5 * ommb;
        }
        (0..4).for_each(|i| bar.q[i] += q0b[i]);
        // r(Ω₁; Ω₀, τ_b) = 0.
        let lam = lu.solve_transpose(Mat::from_fn(3, 1, |i, _| om1b[i]));
        let lam: V3 = std::array::from_fn(|i| lam[(i, 0)]);
        let mm = midpoint_gyro_jacobian(&body.inertia, omm);
        let d0: M3 = std::array::from_fn(|i| {
            std::array::from_fn(|k| body.inertia[i][k] + 0.5 * h * mm[i][k])
        });
        let o0 = so3::mat_t_vec(&d0, lam);
        (0..3).for_each(|i| om0b[i] += o0[i]);
        let tbb = lam.map(|x| h * x);
        // Ω₀ = R₀ᵀω₀, τ_b = R₀ᵀτ.
        bar.w = so3::mat_vec(&r0, om0b);
        let tbar = so3::mat_vec(&r0, tbb);
        let mut rb = so3::outer(s.w, om0b);
        let rt = so3::outer(ext.t, tbb);
        (0..9).for_each(|i| rb[i / 3][i % 3] += rt[i / 3][i % 3]);
        let qr = so3::to_matrix_vjp(s.q, &rb);
        (0..4).for_each(|i| bar.q[i] += qr[i]);
        // c₁ = c₀ + h(v₀ + v₁)/2, v₁ = v₀ + h(f/m + g).
        let v1b: V3 = std::array::from_fn(|i| out.v[i] + 0.5 * h * out.c[i]);
        bar.c = out.c;
        bar.v = std::array::from_fn(|i| v1b[i] + 0.5 * h * out.c[i]);
        let fbar = v1b.map(|x| h * x / m);
        (bar.to_tangent(s.q), Wrench { f: fbar, t: tbar })
    }
}

/// `(1, hΩ/2)`: the unnormalised quaternion of the Cayley map of `hΩ`.
fn cayley_quat(om: V3, h: f64) -> Quat {
    [1.0, 0.5 * h * om[0], 0.5 * h * om[1], 0.5 * h * om[2]]
}

/// `∂[(JΩ) × Ω]/∂Ω = [JΩ]× − [Ω]× J`.
fn midpoint_gyro_jacobian(j: &M3, om: V3) -> M3 {
    let a = so3::hat(so3::mat_vec(j, om));
    let bj = so3::mat_mul(&so3::hat(om), j);
    std::array::from_fn(|i| std::array::from_fn(|k| a[i][k] - bj[i][k]))
}

/// The predicted orientation matrix `Q̃ = (I + h[ω]×) Rₙ` of backward Euler.
fn predicted(s: &BodyState, h: f64) -> M3 {
    let rn = so3::to_matrix(s.q);
    let w = so3::hat(s.w);
    let m: M3 =
        std::array::from_fn(|i| std::array::from_fn(|j| f64::from(u8::from(i == j)) + h * w[i][j]));
    so3::mat_mul(&m, &rn)
}

/// Adds a point potential's gradient `g_p` and Hessian `H_p` at the body point `c + a`
/// (`a = R̄ a_b`) to the 6-vector and 6×6 matrix in `(c, δθ)`: `J = [1, −[a]×]` and the
/// second-order term `½(g_p aᵀ + a g_pᵀ) − (g_p·a)·1` of the rotation.
fn add_point(a: V3, gp: V3, hp: &M3, g: &mut [f64; 6], k: &mut [[f64; 6]; 6]) {
    let ax = so3::hat(a);
    let gt = so3::cross(a, gp);
    // H J: columns for δθ are −H_p [a]×.
    let hax = so3::mat_mul(hp, &ax);
    let axh = so3::mat_mul(&ax, hp);
    let axhax = so3::mat_mul(&axh, &ax);
    let ga = dot(gp, a);
    for i in 0..3 {
        g[i] += gp[i];
        g[3 + i] += gt[i];
        for j in 0..3 {
            let id = f64::from(u8::from(i == j));
            k[i][j] += hp[i][j];
            k[i][3 + j] -= hax[i][j];
            k[3 + i][j] += axh[i][j];
            k[3 + i][3 + j] += -axhax[i][j] + 0.5 * (gp[i] * a[j] + a[i] * gp[j]) - ga * id;
        }
    }
}

impl RigidBody {
    /// Kinetic energy `½m|v|² + ½ω·(R J Rᵀ)ω` at `s` (J).
    pub fn kinetic_energy(&self, s: &BodyState) -> f64 {
        let r = so3::to_matrix(s.q);
        let wb = so3::mat_t_vec(&r, s.w);
        0.5 * self.mass * dot(s.v, s.v) + 0.5 * dot(wb, so3::mat_vec(&self.inertia, wb))
    }

    /// World angular momentum about the centre of mass, `R J Rᵀ ω` (kg·m²/s).
    pub fn angular_momentum(&self, s: &BodyState) -> V3 {
        let r = so3::to_matrix(s.q);
        let wb = so3::mat_t_vec(&r, s.w);
        so3::mat_vec(&r, so3::mat_vec(&self.inertia, wb))
    }
}
