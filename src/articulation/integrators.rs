//! Time stepping in joint space with exact adjoints.
//!
//! - [`Scheme::SemiImplicit`] (Warp's Featherstone step): `q̈ = ABA(q, v, τ(q, v, u))`,
//!   `v₁ = v + h q̈`, `q₁ = q ⊕ h v₁`.
//! - [`Scheme::ImplicitEuler`]: `v₁` solves the inverse-dynamics residual
//!   `G(v₁) = RNEA(q₁, v₁, (v₁ − v)/h) − τ(q₁, v₁, u) = 0`, `q₁ = q ⊕ h v₁`, by Newton with a
//!   dense LU (the matrix `∂G/∂v₁ = M/h + ∂RNEA/∂v + h ∂RNEA/∂q·J_⊕ − ∂τ/∂v₁` is not
//!   symmetric) kept across iterations with Broyden updates: drives, limits, damping and
//!   contact are fully implicit.
//!
//! `u` are the per-step controls, `τ` the joint forces of [`super::actuation`] (drives,
//! limits, damping) and [`super::contact`]. The adjoint of the
//! semi-implicit step is the transposed Jacobian of the step; that of the implicit step is the
//! implicit-function theorem, `Aᵀλ = v̄₁ + h J_δᵀ q̄₁`, `p̄ = −(∂G/∂p)ᵀλ`, with `A` factorised
//! once more at the converged `v₁`. All Jacobians are exact: the analytic RNEA and ABA
//! derivatives, the contact partials (closed form, dual passes for carried shapes), and one
//! dual-number pass per direction for the joint-force laws (diagonal: one pass in all) and the
//! exponential map (per joint block). Configuration bars live in the tangent space at their
//! configuration.

use super::Real;
use super::actuation::joint_forces;
use super::analytic::rnea_partials;
use super::contact::{JointContact, contact_forces, contact_partials};
use super::derivatives::aba_derivatives;
use super::dynamics::{aba, crba, difference, integrate, rnea, rnea_with};
use super::model::Articulation;
use super::spatial::{Inertia, Matrix};
use crate::error::{DiffsimError, Result};
use faer::Mat;
use faer::linalg::solvers::Solve;
use num_dual::Dual64;

/// The time-stepping scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// Warp's semi-implicit Euler in joint space.
    SemiImplicit,
    /// Implicit Euler on the inverse-dynamics residual.
    ImplicitEuler,
}

/// A trajectory: configurations and velocities, the initial ones first.
#[derive(Clone, Debug, PartialEq)]
pub struct JointRollout {
    pub q: Vec<Vec<f64>>,
    pub v: Vec<Vec<f64>>,
    /// Newton iterations per step (implicit scheme; zeros otherwise).
    pub newton_iters: Vec<usize>,
}

/// Gradients of a loss with respect to the initial state (configuration in the tangent
/// space) and every step's controls.
#[derive(Clone, Debug, PartialEq)]
pub struct JointGrads {
    pub q0: Vec<f64>,
    pub v0: Vec<f64>,
    pub controls: Vec<Vec<f64>>,
}

/// Iterations of the implicit step's nonlinear solve before it is an error.
const MAX_NEWTON: usize = 40;

/// A stepper for `model` with step `h`.
pub struct JointStepper<'a> {
    model: &'a Articulation,
    h: f64,
    scheme: Scheme,
    contact: Option<JointContact>,
}

fn lift(x: &[f64]) -> Vec<Dual64> {
    x.iter().map(|&r| Dual64::from(r)).collect()
}

fn seed(n: usize, k: usize) -> Vec<Dual64> {
    (0..n)
        .map(|j| Dual64::new(0.0, f64::from(u8::from(j == k))))
        .collect()
}

/// The Jacobian whose column `k` is `eval(k)`'s derivative part (`rows` outputs).
fn columns(rows: usize, cols: usize, eval: impl Fn(usize) -> Vec<f64>) -> Matrix {
    let cols: Vec<Vec<f64>> = (0..cols).map(eval).collect();
    (0..rows)
        .map(|r| cols.iter().map(|c| c[r]).collect())
        .collect()
}

/// `∂(q₁ ⊕ δ ⊖ q₀)/∂δ` at `δ = 0` (`nv × nv`): how a configuration loss written on the
/// tangent offset from `q₀` turns into a tangent bar at `q₁`.
pub fn difference_jacobian(m: &Articulation, q0: &[f64], q1: &[f64]) -> Matrix {
    let nv = m.nv();
    let (q0l, q1l) = (lift(q0), lift(q1));
    columns(nv, nv, |k| {
        difference(m, &q0l, &integrate(m, &q1l, &seed(nv, k)))
            .iter()
            .map(|x| x.eps)
            .collect()
    })
}

/// The tangent bar at `q` of a loss's gradient `qbar` in the raw configuration coordinates
/// (`nq` entries, quaternions included): `(∂(q ⊕ δ)/∂δ)ᵀ·qbar` at `δ = 0` (`nv` entries),
/// what [`JointStepper::adjoint`] takes.
pub fn configuration_bar(m: &Articulation, q: &[f64], qbar: &[f64]) -> Vec<f64> {
    let nv = m.nv();
    let ql = lift(q);
    (0..nv)
        .map(|k| {
            integrate(m, &ql, &seed(nv, k))
                .iter()
                .zip(qbar)
                .map(|(x, b)| x.eps * b)
                .sum()
        })
        .collect()
}

/// The diagonal matrix of a pass's derivative parts: the partials of the joint forces, which
/// are diagonal (a coordinate's drive, limit, spring and damping read its own `q`, `q̇` and
/// `u` only), from one pass with every direction seeded at once.
fn diagonal(tau: &[Dual64]) -> Matrix {
    let n = tau.len();
    (0..n)
        .map(|r| {
            (0..n)
                .map(|c| if r == c { tau[r].eps } else { 0.0 })
                .collect()
        })
        .collect()
}

/// `Jᵀy`.
fn t_mul(j: &Matrix, y: &[f64]) -> Vec<f64> {
    let cols = j.first().map_or(0, Vec::len);
    (0..cols)
        .map(|k| j.iter().zip(y).map(|(row, yr)| row[k] * yr).sum())
        .collect()
}

impl<'a> JointStepper<'a> {
    /// Checks the model and the step.
    pub fn new(model: &'a Articulation, h: f64, scheme: Scheme) -> Result<Self> {
        model.validate()?;
        if !(h > 0.0 && h.is_finite()) {
            return Err(DiffsimError::config(format!(
                "the time step must be positive, got {h}"
            )));
        }
        Ok(Self {
            model,
            h,
            scheme,
            contact: None,
        })
    }

    /// The articulation it steps.
    pub fn model(&self) -> &'a Articulation {
        self.model
    }

    /// Points on the links touching static shapes and shapes carried by links (checked:
    /// existing links, a finite law with a positive smoothing length).
    pub fn with_contact(mut self, contact: JointContact) -> Result<Self> {
        let n = self.model.links.len();
        if let Some((link, _, _)) = contact.points.iter().find(|(l, _, _)| *l >= n) {
            return Err(DiffsimError::config(format!(
                "contact point on link {link}, but the articulation has {n} links"
            )));
        }
        if let Some((link, _)) = contact.link_shapes.iter().find(|(l, _)| *l >= n) {
            return Err(DiffsimError::config(format!(
                "contact shape carried by link {link}, but the articulation has {n} links"
            )));
        }
        let c = &contact.law;
        let fine = [c.ke, c.kd, c.mu]
            .iter()
            .all(|x| x.is_finite() && *x >= 0.0)
            && c.smoothing.is_finite()
            && c.smoothing > 0.0;
        if !fine {
            return Err(DiffsimError::config(
                "contact stiffness, damping and friction must be finite and non-negative, the smoothing length positive",
            ));
        }
        self.contact = Some(contact);
        Ok(self)
    }

    /// The joint forces: drives, limits and damping, plus the contacts'.
    fn applied(&self, q: &[f64], v: &[f64], u: &[f64]) -> Vec<f64> {
        let mut tau = joint_forces(self.model, q, v, u);
        if let Some(c) = &self.contact {
            for (t, f) in tau.iter_mut().zip(contact_forces(self.model, c, q, v)) {
                *t += f;
            }
        }
        tau
    }

    fn semi_implicit(&self, q: &[f64], v: &[f64], u: &[f64]) -> Option<(Vec<f64>, Vec<f64>)> {
        let m = self.model;
        let qdd = aba(m, q, v, &self.applied(q, v, u))?;
        let v1: Vec<f64> = v.iter().zip(&qdd).map(|(vi, a)| vi + a * self.h).collect();
        let d: Vec<f64> = v1.iter().map(|x| x * self.h).collect();
        Some((integrate(m, q, &d), v1))
    }

    /// The implicit residual `G(v₁; q, v, u)`.
    fn residual(&self, q: &[f64], v: &[f64], u: &[f64], v1: &[f64]) -> Vec<f64> {
        let h = self.h;
        let d: Vec<f64> = v1.iter().map(|x| x * h).collect();
        let a: Vec<f64> = v1.iter().zip(v).map(|(x, y)| (x - y) / h).collect();
        let q1 = integrate(self.model, q, &d);
        let tau = rnea(self.model, &q1, v1, &a);
        tau.iter()
            .zip(self.applied(&q1, v1, u))
            .map(|(t, f)| t - f)
            .collect()
    }

    /// `(∂τ/∂q, ∂τ/∂v)` of the joint forces at `(q, v, u)` (`q` in the tangent space): the
    /// diagonal drive, limit and damping laws by one dual pass each, the contacts'
    /// [`contact_partials`].
    fn force_partials(&self, q: &[f64], v: &[f64], u: &[f64]) -> (Matrix, Matrix) {
        let m = self.model;
        let nv = v.len();
        let (ql, vl, ul) = (lift(q), lift(v), lift(u));
        let ones = vec![Dual64::new(0.0, 1.0); nv];
        let (mut tq, mut tv) = (
            diagonal(&joint_forces(m, &integrate(m, &ql, &ones), &vl, &ul)),
            diagonal(&joint_forces(m, &ql, &add(&vl, &ones), &ul)),
        );
        if let Some(c) = &self.contact {
            contact_partials(m, c, q, v, &mut tq, &mut tv);
        }
        (tq, tv)
    }

    /// `∂τ/∂u` of the joint forces at `(q, v, u)` (the contacts do not depend on `u`).
    fn control_partials(&self, q: &[f64], v: &[f64], u: &[f64]) -> Matrix {
        let ones = vec![Dual64::new(0.0, 1.0); v.len()];
        let (ql, vl, ul) = (lift(q), lift(v), lift(u));
        diagonal(&joint_forces(self.model, &ql, &vl, &add(&ul, &ones)))
    }

    /// The tangent Jacobian (at `q₁`) of `q₁ = q ⊕ h v₁` in `q` (`wrt_q`) or in `v₁`:
    /// block-diagonal by joint, `1` or `h` for one-coordinate joints, one dual pass of the
    /// joint's own `⊕` and `⊖` per tangent direction for ball and free joints.
    fn exp_jacobian(&self, q: &[f64], v1: &[f64], q1: &[f64], wrt_q: bool) -> Matrix {
        let (nv, h) = (v1.len(), self.h);
        let mut out = vec![vec![0.0; nv]; nv];
        for (l, (iq, iv)) in self.model.links.iter().zip(self.model.offsets()) {
            let kind = &l.joint.kind;
            let (nq, n) = (kind.nq(), kind.nv());
            if nq == 1 {
                out[iv][iv] = if wrt_q { 1.0 } else { h };
                continue;
            }
            let (ql, q1l) = (lift(&q[iq..iq + nq]), lift(&q1[iq..iq + nq]));
            let hv: Vec<Dual64> = v1[iv..iv + n]
                .iter()
                .map(|&x| Dual64::from(x * h))
                .collect();
            for k in 0..n {
                let e = seed(n, k);
                let moved = if wrt_q {
                    kind.integrate(&kind.integrate(&ql, &e), &hv)
                } else {
                    let d: Vec<Dual64> = hv.iter().zip(&e).map(|(a, b)| *a + *b * h).collect();
                    kind.integrate(&ql, &d)
                };
                for (r, t) in kind.difference(&q1l, &moved).iter().enumerate() {
                    out[iv + r][iv + k] = t.eps;
                }
            }
        }
        out
    }

    /// What Newton needs of the implicit residual at `v₁`, all at `q₁ = q ⊕ h v₁` from one
    /// analytic RNEA-derivative pass: `A = ∂G/∂v₁ = M/h + ∂RNEA/∂v − ∂τ/∂v +
    /// (∂RNEA/∂q − ∂τ/∂q)·J_{v₁}`, and for the adjoint `∂RNEA/∂q − ∂τ/∂q`, `M`, `J_{v₁}`, `q₁`.
    fn newton_parts(&self, q: &[f64], v: &[f64], u: &[f64], v1: &[f64]) -> NewtonParts {
        let m = self.model;
        let (nv, h) = (v1.len(), self.h);
        let d: Vec<f64> = v1.iter().map(|x| x * h).collect();
        let q1 = integrate(m, q, &d);
        let acc: Vec<f64> = v1.iter().zip(v).map(|(x, y)| (x - y) / h).collect();
        let p = rnea_partials(m, &q1, v1, &acc);
        let (tq, tv) = self.force_partials(&q1, v1, u);
        let jv1 = self.exp_jacobian(q, v1, &q1, false);
        let dq: Matrix = (0..nv)
            .map(|r| (0..nv).map(|c| p.dq[r][c] - tq[r][c]).collect())
            .collect();
        let dq_jv1 = mul(&dq, &jv1);
        NewtonParts {
            a: (0..nv)
                .map(|r| {
                    (0..nv)
                        .map(|c| p.mass[r][c] / h + p.dv[r][c] - tv[r][c] + dq_jv1[r][c])
                        .collect()
                })
                .collect(),
            dq,
            mass: p.mass,
            jv1,
            q1,
        }
    }

    /// The implicit residual's partials at `v₁`: `A`, `∂G/∂q = (∂RNEA/∂q − ∂τ/∂q)·J_q`,
    /// `∂G/∂v = −M/h`, `∂G/∂u = −∂τ/∂u`, and the Jacobians of `q ⊕ h v₁`.
    fn implicit_partials(&self, q: &[f64], v: &[f64], u: &[f64], v1: &[f64]) -> ImplicitPartials {
        let h = self.h;
        let n = self.newton_parts(q, v, u, v1);
        let jq = self.exp_jacobian(q, v1, &n.q1, true);
        ImplicitPartials {
            gq: mul(&n.dq, &jq),
            gv: n
                .mass
                .iter()
                .map(|r| r.iter().map(|x| -x / h).collect())
                .collect(),
            gu: self
                .control_partials(&n.q1, v1, u)
                .iter()
                .map(|r| r.iter().map(|x| -x).collect())
                .collect(),
            a: n.a,
            jq,
            jv1: n.jv1,
        }
    }

    /// One implicit step: `v₁` and Newton's iterations.
    fn implicit(&self, n: usize, q: &[f64], v: &[f64], u: &[f64]) -> Result<(Vec<f64>, usize)> {
        let (_, mut v1) = self
            .semi_implicit(q, v, u)
            .ok_or_else(|| DiffsimError::newton(n, "the joint-space inertia is singular"))?;
        let nv = v.len();
        // The residual's scale: the largest joint-space inertia over h.
        let mass = crba(self.model, q);
        let scale = 1.0 + (0..nv).map(|k| mass[k][k]).fold(0.0, f64::max) / self.h;
        // Broyden's method on top of a Newton matrix: the matrix `A₀` (a new one costs the RNEA
        // and force derivatives) is kept while full steps reduce the residual, its inverse
        // corrected by the rank-one updates of the steps taken since (Broyden's "good" update
        // in Kelley's product form, `B⁻¹ = Π(I + s₊ sᵀ/|s|²)·A₀⁻¹` applied to the residual, at
        // most `UPDATES` of them; a step cut by the line search starts a new matrix). Only the
        // converged velocity matters: the adjoint takes the exact matrix there.
        const UPDATES: usize = 12;
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let mut cached = None;
        let mut steps: Vec<Vec<f64>> = Vec::new();
        let mut g = self.residual(q, v, u, &v1);
        for iter in 0..=MAX_NEWTON {
            let gmax = g.iter().fold(0.0f64, |a, x| a.max(x.abs()));
            let vmax = v1.iter().fold(0.0f64, |a, x| a.max(x.abs()));
            if !gmax.is_finite() {
                break;
            }
            if gmax <= 1e-13 * scale * (1.0 + vmax) {
                return Ok((v1, iter));
            }
            let lu = cached.get_or_insert_with(|| {
                steps.clear();
                let a = self.newton_parts(q, v, u, &v1).a;
                Mat::from_fn(nv, nv, |r, c| a[r][c]).partial_piv_lu()
            });
            let d = lu.solve(Mat::from_fn(nv, 1, |r, _| -g[r]));
            let mut step: Vec<f64> = (0..nv).map(|r| d[(r, 0)]).collect();
            for pair in steps.windows(2) {
                let c = dot(&pair[0], &step) / dot(&pair[0], &pair[0]);
                step.iter_mut().zip(&pair[1]).for_each(|(x, y)| *x += c * y);
            }
            if let Some(last) = steps.last() {
                let den = 1.0 - dot(last, &step) / dot(last, last);
                if den.abs() < 1e-2 {
                    // A near-singular update: start again from a new matrix.
                    cached = None;
                    continue;
                }
                step.iter_mut().for_each(|x| *x /= den);
            }
            if step
                .iter()
                .all(|s| s.abs() <= 4.0 * f64::EPSILON * (1.0 + vmax))
            {
                return Ok((v1, iter));
            }
            let mut t = 1.0;
            let before = dot(&g, &g);
            let full = loop {
                let trial: Vec<f64> = v1.iter().zip(&step).map(|(x, s)| x + t * s).collect();
                let gt = self.residual(q, v, u, &trial);
                let reduced = dot(&gt, &gt);
                if reduced < before || t < 1e-6 {
                    v1 = trial;
                    g = gt;
                    break t == 1.0 && reduced < before;
                }
                t *= 0.5;
            };
            if full && steps.len() < UPDATES {
                steps.push(step);
            } else {
                cached = None;
            }
        }
        Err(DiffsimError::newton(
            n,
            format!(
                "the implicit joint-space Newton solve did not converge in {MAX_NEWTON} iterations"
            ),
        ))
    }

    /// `steps` steps from `(q0, v0)` with `controls[n]` (`nv` joint forces; missing steps
    /// have none).
    pub fn rollout(
        &self,
        q0: &[f64],
        v0: &[f64],
        controls: &[Vec<f64>],
        steps: usize,
    ) -> Result<JointRollout> {
        let m = self.model;
        let nv = m.nv();
        if q0.len() != m.nq() || v0.len() != nv || controls.iter().any(|u| u.len() != nv) {
            return Err(DiffsimError::config(format!(
                "the state and controls must have {} and {nv} entries",
                m.nq()
            )));
        }
        let mut run = JointRollout {
            q: vec![q0.to_vec()],
            v: vec![v0.to_vec()],
            newton_iters: Vec::new(),
        };
        let zero = vec![0.0; nv];
        for n in 0..steps {
            let (q, v) = (&run.q[n], &run.v[n]);
            let u = controls.get(n).unwrap_or(&zero);
            let (q1, v1, it) = match self.scheme {
                Scheme::SemiImplicit => {
                    let (q1, v1) = self.semi_implicit(q, v, u).ok_or_else(|| {
                        DiffsimError::newton(n, "the joint-space inertia is singular")
                    })?;
                    (q1, v1, 0)
                }
                Scheme::ImplicitEuler => {
                    let (v1, it) = self.implicit(n, q, v, u)?;
                    let d: Vec<f64> = v1.iter().map(|x| x * self.h).collect();
                    (integrate(m, q, &d), v1, it)
                }
            };
            if !q1.iter().chain(&v1).all(|x| x.is_finite()) {
                return Err(DiffsimError::config(format!(
                    "the articulation left the finite range in step {n} (time step too large?)"
                )));
            }
            run.q.push(q1);
            run.v.push(v1);
            run.newton_iters.push(it);
        }
        Ok(run)
    }

    /// Gradients given `bars[n] = (q̄ₙ, v̄ₙ)` (tangent space; an empty vector is zero).
    pub fn adjoint(
        &self,
        run: &JointRollout,
        controls: &[Vec<f64>],
        bars: &[(Vec<f64>, Vec<f64>)],
    ) -> Result<JointGrads> {
        Ok(self.adjoint_with_params(run, controls, bars, &[])?.0)
    }

    /// `∂RNEA/∂π` (`nv × params.len()`) at `(q, v, a)` for inertial parameters
    /// `(link, k)`: `k = 0` the link's mass, `k = 1, 2, 3` its centre of mass's coordinates
    /// (the rotational inertia about the centre of mass held).
    fn rnea_param_partials(
        &self,
        params: &[(usize, usize)],
        q: &[f64],
        v: &[f64],
        a: &[f64],
    ) -> Matrix {
        let m = self.model;
        let (ql, vl, al) = (lift(q), lift(v), lift(a));
        columns(v.len(), params.len(), |j| {
            let (link, k) = params[j];
            let mut inertias: Vec<Inertia<Dual64>> =
                m.links.iter().map(|l| l.inertia.lift()).collect();
            let target = &mut inertias[link];
            if k == 0 {
                target.m.eps = 1.0;
            } else {
                target.com[k - 1].eps = 1.0;
            }
            rnea_with(m, &inertias, &ql, &vl, &al)
                .iter()
                .map(|x| x.eps)
                .collect()
        })
    }

    /// [`JointStepper::adjoint`] and the gradient with respect to inertial parameters
    /// `(link, k)` (`k = 0` mass, `1..=3` centre of mass; see `rnea_param_partials`).
    pub fn adjoint_with_params(
        &self,
        run: &JointRollout,
        controls: &[Vec<f64>],
        bars: &[(Vec<f64>, Vec<f64>)],
        params: &[(usize, usize)],
    ) -> Result<(JointGrads, Vec<f64>)> {
        if let Some(&(link, k)) = params
            .iter()
            .find(|&&(l, k)| l >= self.model.links.len() || k > 3)
        {
            return Err(DiffsimError::config(format!(
                "inertial parameter ({link}, {k}): the link must exist and k be 0 (mass) or 1..=3 (centre of mass)"
            )));
        }
        let mut pbar = vec![0.0; params.len()];
        let (m, h) = (self.model, self.h);
        let nv = m.nv();
        let steps = run.q.len() - 1;
        let zero = vec![0.0; nv];
        let bar = |n: usize, which: usize| -> Vec<f64> {
            bars.get(n)
                .map(|b| if which == 0 { &b.0 } else { &b.1 })
                .filter(|x| !x.is_empty())
                .cloned()
                .unwrap_or_else(|| zero.clone())
        };
        let (mut qb, mut vb) = (bar(steps, 0), bar(steps, 1));
        let mut grads = JointGrads {
            q0: Vec::new(),
            v0: Vec::new(),
            controls: vec![zero.clone(); steps],
        };
        for n in (0..steps).rev() {
            let (q, v, q1) = (&run.q[n], &run.v[n], &run.q[n + 1]);
            let u = controls.get(n).unwrap_or(&zero);
            let v1 = &run.v[n + 1];
            let (qbn, vbn, ub): (Vec<f64>, Vec<f64>, Vec<f64>) = match self.scheme {
                Scheme::SemiImplicit => {
                    // v₁ = v + h q̈(q, v, u), q̈ = ABA(q, v, τ(q, v, u)), q₁ = q ⊕ h v₁.
                    let tau = self.applied(q, v, u);
                    let d = aba_derivatives(m, q, v, &tau)?;
                    let (tq, tv) = self.force_partials(q, v, u);
                    let tu = self.control_partials(q, v, u);
                    let jq = self.exp_jacobian(q, v1, q1, true);
                    let jv1 = self.exp_jacobian(q, v1, q1, false);
                    let ybar: Vec<f64> = vb
                        .iter()
                        .zip(t_mul(&jv1, &qb))
                        .map(|(a, b)| a + b)
                        .collect();
                    // (∂q̈/∂x)ᵀ ȳ = (∂ABA/∂x)ᵀ ȳ + (∂τ/∂x)ᵀ M⁻ᵀ ȳ.
                    let w = t_mul(&d.minv, &ybar);
                    // ∂q̈/∂π = −M⁻¹ ∂RNEA/∂π at a = q̈.
                    if !params.is_empty() {
                        let dp = self.rnea_param_partials(params, q, v, &d.qdd);
                        for (pb, g) in pbar.iter_mut().zip(t_mul(&dp, &w)) {
                            *pb -= h * g;
                        }
                    }
                    let qdd_t = |dx: &Matrix, tx: &Matrix| -> Vec<f64> {
                        t_mul(dx, &ybar)
                            .iter()
                            .zip(t_mul(tx, &w))
                            .map(|(a, b)| a + b)
                            .collect()
                    };
                    let gq = qdd_t(&d.dq, &tq);
                    let gv = qdd_t(&d.dv, &tv);
                    (
                        t_mul(&jq, &qb)
                            .iter()
                            .zip(gq)
                            .map(|(a, b)| a + h * b)
                            .collect(),
                        ybar.iter().zip(gv).map(|(a, b)| a + h * b).collect(),
                        t_mul(&tu, &w).iter().map(|x| h * x).collect(),
                    )
                }
                Scheme::ImplicitEuler => {
                    let p = self.implicit_partials(q, v, u, v1);
                    let ybar: Vec<f64> = vb
                        .iter()
                        .zip(t_mul(&p.jv1, &qb))
                        .map(|(a, b)| a + b)
                        .collect();
                    let lu = Mat::from_fn(nv, nv, |r, c| p.a[r][c]).partial_piv_lu();
                    let lam = lu.solve_transpose(Mat::from_fn(nv, 1, |r, _| ybar[r]));
                    let lam: Vec<f64> = (0..nv).map(|r| lam[(r, 0)]).collect();
                    // G ∋ RNEA(q₁, v₁, (v₁ − v)/h; π): π̄ −= (∂G/∂π)ᵀλ.
                    if !params.is_empty() {
                        let d: Vec<f64> = v1.iter().map(|x| x * h).collect();
                        let acc: Vec<f64> = v1.iter().zip(v).map(|(x, y)| (x - y) / h).collect();
                        let dp = self.rnea_param_partials(params, &integrate(m, q, &d), v1, &acc);
                        for (pb, g) in pbar.iter_mut().zip(t_mul(&dp, &lam)) {
                            *pb -= g;
                        }
                    }
                    let neg =
                        |g: &Matrix| -> Vec<f64> { t_mul(g, &lam).iter().map(|x| -x).collect() };
                    (
                        t_mul(&p.jq, &qb)
                            .iter()
                            .zip(neg(&p.gq))
                            .map(|(a, b)| a + b)
                            .collect(),
                        neg(&p.gv),
                        neg(&p.gu),
                    )
                }
            };
            grads.controls[n] = ub;
            qb = qbn.iter().zip(bar(n, 0)).map(|(a, b)| a + b).collect();
            vb = vbn.iter().zip(bar(n, 1)).map(|(a, b)| a + b).collect();
        }
        grads.q0 = qb;
        grads.v0 = vb;
        Ok((grads, pbar))
    }
}

/// `A·B`, skipping `B`'s zeros (the exponential maps' Jacobians are block-diagonal).
fn mul(a: &Matrix, b: &Matrix) -> Matrix {
    let cols = b.first().map_or(0, Vec::len);
    let nonzero: Vec<Vec<(usize, f64)>> = b
        .iter()
        .map(|row| {
            row.iter()
                .copied()
                .enumerate()
                .filter(|e| e.1 != 0.0)
                .collect()
        })
        .collect();
    a.iter()
        .map(|row| {
            let mut out = vec![0.0; cols];
            for (x, nz) in row.iter().zip(&nonzero) {
                for &(c, y) in nz {
                    out[c] += x * y;
                }
            }
            out
        })
        .collect()
}

/// What Newton needs (see [`JointStepper::newton_parts`]).
struct NewtonParts {
    a: Matrix,
    dq: Matrix,
    mass: Matrix,
    jv1: Matrix,
    q1: Vec<f64>,
}

/// The implicit residual's partials (see [`JointStepper::implicit_partials`]) and the
/// Jacobians of `q₁ = q ⊕ h v₁`.
struct ImplicitPartials {
    a: Matrix,
    gq: Matrix,
    gv: Matrix,
    gu: Matrix,
    jq: Matrix,
    jv1: Matrix,
}

fn add<T: Real>(a: &[T], b: &[T]) -> Vec<T> {
    a.iter().zip(b).map(|(x, y)| *x + *y).collect()
}
