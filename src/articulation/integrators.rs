//! Time stepping in joint space with exact adjoints.
//!
//! - [`Scheme::SemiImplicit`] (Warp's Featherstone step): `q̈ = ABA(q, v, τ(q, v, u))`,
//!   `v₁ = v + h q̈`, `q₁ = q ⊕ h v₁`.
//! - [`Scheme::ImplicitEuler`]: `v₁` solves the inverse-dynamics residual
//!   `G(v₁) = RNEA(q₁, v₁, (v₁ − v)/h) − τ(q₁, v₁, u) = 0`, `q₁ = q ⊕ h v₁`, by Newton with a
//!   dense LU (the matrix `∂G/∂v₁ = M/h + ∂RNEA/∂v + h ∂RNEA/∂q·J_⊕ − ∂τ/∂v₁` is not
//!   symmetric): drives, limits and damping are fully implicit.
//!
//! `u` are the per-step controls, `τ` the joint forces of [`super::actuation`] (drives,
//! limits, damping). The adjoint of the
//! semi-implicit step is the transposed Jacobian of the step; that of the implicit step is the
//! implicit-function theorem, `Aᵀλ = v̄₁ + h J_δᵀ q̄₁`, `p̄ = −(∂G/∂p)ᵀλ`, with `A` factorised
//! once more at the converged `v₁`. All Jacobians are exact, by one dual-number pass per
//! tangent direction. Configuration bars live in the tangent space at their configuration.

use super::actuation::joint_forces;
use super::derivatives::Matrix;
use super::dynamics::{aba, crba, difference, integrate, rnea};
use super::model::Articulation;
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

/// A stepper for `model` with step `h`.
pub struct JointStepper<'a> {
    model: &'a Articulation,
    h: f64,
    scheme: Scheme,
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
        Ok(Self { model, h, scheme })
    }

    /// The step's map `(q, v, u) → (q₁, v₁)` for the semi-implicit scheme, in any scalar.
    fn semi_implicit<T: super::Real>(&self, q: &[T], v: &[T], u: &[T]) -> Option<(Vec<T>, Vec<T>)> {
        let m = self.model;
        let qdd = aba(m, q, v, &joint_forces(m, q, v, u))?;
        let v1: Vec<T> = v
            .iter()
            .zip(&qdd)
            .map(|(&vi, &a)| vi + a * self.h)
            .collect();
        let d: Vec<T> = v1.iter().map(|&x| x * self.h).collect();
        Some((integrate(m, q, &d), v1))
    }

    /// The implicit residual `G(v₁; q, v, u)` in any scalar.
    fn residual<T: super::Real>(&self, q: &[T], v: &[T], u: &[T], v1: &[T]) -> Vec<T> {
        let h = self.h;
        let d: Vec<T> = v1.iter().map(|&x| x * h).collect();
        let a: Vec<T> = v1
            .iter()
            .zip(v)
            .map(|(&x, &y)| (x - y) / T::from(h))
            .collect();
        let q1 = integrate(self.model, q, &d);
        let tau = rnea(self.model, &q1, v1, &a);
        tau.iter()
            .zip(joint_forces(self.model, &q1, v1, u))
            .map(|(&t, f)| t - f)
            .collect()
    }

    /// `∂G/∂v₁` at `v₁`.
    fn newton_matrix(&self, q: &[f64], v: &[f64], u: &[f64], v1: &[f64]) -> Matrix {
        let n = v1.len();
        let (qd, vd, ud) = (lift(q), lift(v), lift(u));
        columns(n, n, |k| {
            let x: Vec<Dual64> = lift(v1)
                .iter()
                .zip(seed(n, k))
                .map(|(a, b)| *a + b)
                .collect();
            self.residual(&qd, &vd, &ud, &x)
                .iter()
                .map(|g| g.eps)
                .collect()
        })
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
        let norm = |g: &[f64]| g.iter().map(|x| x * x).sum::<f64>();
        for iter in 0..=30 {
            let g = self.residual(q, v, u, &v1);
            let gmax = g.iter().fold(0.0f64, |a, x| a.max(x.abs()));
            if !gmax.is_finite() {
                break;
            }
            if gmax <= 1e-13 * scale * (1.0 + v1.iter().fold(0.0f64, |a, x| a.max(x.abs()))) {
                return Ok((v1, iter));
            }
            let a = self.newton_matrix(q, v, u, &v1);
            let lu = Mat::from_fn(nv, nv, |r, c| a[r][c]).partial_piv_lu();
            let d = lu.solve(Mat::from_fn(nv, 1, |r, _| -g[r]));
            let step: Vec<f64> = (0..nv).map(|r| d[(r, 0)]).collect();
            if step.iter().all(|s| {
                s.abs()
                    <= 4.0 * f64::EPSILON * (1.0 + v1.iter().fold(0.0f64, |a, x| a.max(x.abs())))
            }) {
                return Ok((v1, iter));
            }
            let mut t = 1.0;
            loop {
                let trial: Vec<f64> = v1.iter().zip(&step).map(|(x, s)| x + t * s).collect();
                if norm(&self.residual(q, v, u, &trial)) < norm(&g) || t < 1e-6 {
                    v1 = trial;
                    break;
                }
                t *= 0.5;
            }
        }
        Err(DiffsimError::newton(
            n,
            "the implicit joint-space Newton solve did not converge in 30 iterations",
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
    ) -> JointGrads {
        let m = self.model;
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
            let (ql, vl, ul) = (lift(q), lift(v), lift(u));
            let (qbn, vbn, ub) = match self.scheme {
                Scheme::SemiImplicit => {
                    // Columns of the step's Jacobian: tangent of q₁ (at q₁) and v₁, per input.
                    let col = |q: Vec<Dual64>, v: Vec<Dual64>, u: Vec<Dual64>| -> Vec<f64> {
                        let (qo, vo) = self
                            .semi_implicit(&q, &v, &u)
                            .expect("the forward step succeeded");
                        let dq = difference(m, &lift(q1), &qo);
                        dq.iter().chain(&vo).map(|x| x.eps).collect()
                    };
                    let jq = columns(2 * nv, nv, |k| {
                        col(integrate(m, &ql, &seed(nv, k)), vl.clone(), ul.clone())
                    });
                    let jv = columns(2 * nv, nv, |k| {
                        col(ql.clone(), add(&vl, &seed(nv, k)), ul.clone())
                    });
                    let ju = columns(2 * nv, nv, |k| {
                        col(ql.clone(), vl.clone(), add(&ul, &seed(nv, k)))
                    });
                    let y: Vec<f64> = qb.iter().chain(&vb).copied().collect();
                    (t_mul(&jq, &y), t_mul(&jv, &y), t_mul(&ju, &y))
                }
                Scheme::ImplicitEuler => {
                    let v1 = &run.v[n + 1];
                    let v1l = lift(v1);
                    let h = self.h;
                    // q₁ = q ⊕ h v₁: its tangent Jacobians in q and in v₁.
                    let jq1_q = columns(nv, nv, |k| {
                        let d: Vec<Dual64> = v1l.iter().map(|x| *x * h).collect();
                        difference(
                            m,
                            &lift(q1),
                            &integrate(m, &integrate(m, &ql, &seed(nv, k)), &d),
                        )
                        .iter()
                        .map(|x| x.eps)
                        .collect()
                    });
                    let jq1_v1 = columns(nv, nv, |k| {
                        let d: Vec<Dual64> =
                            add(&v1l, &seed(nv, k)).iter().map(|x| *x * h).collect();
                        difference(m, &lift(q1), &integrate(m, &ql, &d))
                            .iter()
                            .map(|x| x.eps)
                            .collect()
                    });
                    let ybar: Vec<f64> = vb
                        .iter()
                        .zip(t_mul(&jq1_v1, &qb))
                        .map(|(a, b)| a + b)
                        .collect();
                    let a = self.newton_matrix(q, v, u, v1);
                    let lu = Mat::from_fn(nv, nv, |r, c| a[r][c]).partial_piv_lu();
                    let lam = lu.solve_transpose(Mat::from_fn(nv, 1, |r, _| ybar[r]));
                    let lam: Vec<f64> = (0..nv).map(|r| lam[(r, 0)]).collect();
                    let gq = columns(nv, nv, |k| {
                        self.residual(&integrate(m, &ql, &seed(nv, k)), &vl, &ul, &v1l)
                            .iter()
                            .map(|x| x.eps)
                            .collect()
                    });
                    let gv = columns(nv, nv, |k| {
                        self.residual(&ql, &add(&vl, &seed(nv, k)), &ul, &v1l)
                            .iter()
                            .map(|x| x.eps)
                            .collect()
                    });
                    let qbn: Vec<f64> = t_mul(&jq1_q, &qb)
                        .iter()
                        .zip(t_mul(&gq, &lam))
                        .map(|(a, b)| a - b)
                        .collect();
                    let gu = columns(nv, nv, |k| {
                        self.residual(&ql, &vl, &add(&ul, &seed(nv, k)), &v1l)
                            .iter()
                            .map(|x| x.eps)
                            .collect()
                    });
                    let vbn: Vec<f64> = t_mul(&gv, &lam).iter().map(|x| -x).collect();
                    let ub: Vec<f64> = t_mul(&gu, &lam).iter().map(|x| -x).collect();
                    (qbn, vbn, ub)
                }
            };
            grads.controls[n] = ub;
            qb = qbn.iter().zip(bar(n, 0)).map(|(a, b)| a + b).collect();
            vb = vbn.iter().zip(bar(n, 1)).map(|(a, b)| a + b).collect();
        }
        grads.q0 = qb;
        grads.v0 = vb;
        grads
    }
}

fn add(a: &[Dual64], b: &[Dual64]) -> Vec<Dual64> {
    a.iter().zip(b).map(|(x, y)| *x + *y).collect()
}
