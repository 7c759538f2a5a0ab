//! The implicit stepper: settings, the model's unknowns and Hessian pattern, the incremental
//! potential's gradient and Hessian, and the Newton solve of a step.

use super::lagged::{Lagged, cloth_blocks, combine, damping_term};
use crate::error::{DiffsimError, Result};
use crate::linalg::SolveError;
use crate::solids::Rollout;
use crate::solids::contact;
use crate::solids::mass_spring::Model;
use crate::solids::math::{M3, V3};
use faer::linalg::solvers::Solve;
use faer::sparse::linalg::solvers::{Llt, SymbolicLlt};
use faer::sparse::{Argsort, Pair, SparseColMat, SymbolicSparseColMat, Triplet};
use faer::{Mat, Side};

/// Newton settings.
#[derive(Clone, Copy, Debug)]
pub struct NewtonConfig {
    /// Converged when `|∇Φ|∞ ≤ tol·(1 + max m/h)`, or when the Newton step falls below the
    /// positions' round-off (4ε·max|x|).
    pub tol: f64,
    /// Iterations at most per step.
    pub max_iters: usize,
}

impl Default for NewtonConfig {
    fn default() -> Self {
        Self {
            tol: 1e-12,
            max_iters: 50,
        }
    }
}

/// The implicit time-stepping scheme of a step of length `dt`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// Backward Euler: first order; damps a linear mode of frequency ω by `1/√(1 + ω²dt²)`
    /// per step (a stiff contact spring bounces nearly inelastically).
    #[default]
    BackwardEuler,
    /// Implicit midpoint: a backward-Euler step of `dt/2` from `(xₙ, vₙ)` to `(y, v_y)`,
    /// then `xₙ₊₁ = 2y − xₙ`, `vₙ₊₁ = 2v_y − vₙ` (free particles). This is exactly
    /// `xₙ₊₁ = xₙ + dt·(vₙ + vₙ₊₁)/2`, `M(vₙ₊₁ − vₙ) = dt·f((xₙ + xₙ₊₁)/2)` with the lagged
    /// terms taken at `(xₙ, vₙ)`: second order, symplectic, no numerical damping of a linear
    /// mode at any `dt`. Same cost per step as backward Euler (one Newton solve).
    Midpoint,
}

/// The stepper: the model's free-particle numbering and the symbolic factorisation.
pub struct Implicit<'a> {
    pub(super) model: &'a Model,
    /// The backward-Euler solve's step: `dt`, or `dt/2` for [`Scheme::Midpoint`].
    pub(super) h: f64,
    pub(super) scheme: Scheme,
    pub(super) cfg: NewtonConfig,
    /// Unknown index of each particle (None: fixed).
    pub(crate) index: Vec<Option<usize>>,
    /// The Hessian's pattern and the order that sums its entries into it (no sort per
    /// assembly).
    pub(super) pattern: SymbolicSparseColMat<usize>,
    pub(super) order: Argsort<usize>,
    pub(super) symbolic: SymbolicLlt<usize>,
}

/// One implicit step's result: `(xₙ₊₁, vₙ₊₁)`, the exact-Hessian factor at `xₙ₊₁`, Newton
/// iterations.
pub type StepResult = (Vec<V3>, Vec<V3>, Llt<usize, f64>, usize);

/// A trajectory with the exact-Hessian factor of every step (for the adjoint) and the Newton
/// iterations per step.
pub struct ImplicitRollout {
    /// The states.
    pub run: Rollout,
    /// Factor of `H(xₙ₊₁)` per step.
    pub(super) factors: Vec<Llt<usize, f64>>,
    /// Newton iterations per step.
    pub newton_iters: Vec<usize>,
}

impl ImplicitRollout {
    /// Newton iterations per step: (mean, max).
    pub fn newton_stats(&self) -> (f64, usize) {
        let it = &self.newton_iters;
        (
            it.iter().sum::<usize>() as f64 / it.len().max(1) as f64,
            it.iter().copied().max().unwrap_or(0),
        )
    }
}

impl<'a> Implicit<'a> {
    /// Prepares the stepper for `model` with time step `h` (symbolic analysis once).
    pub fn new(model: &'a Model, h: f64, cfg: NewtonConfig) -> Result<Self> {
        model.validate()?;
        if !(h > 0.0 && h.is_finite()) {
            return Err(DiffsimError::config("the time step must be positive"));
        }
        let mut k = 0;
        let index = (0..model.len())
            .map(|p| {
                model.free(p).then(|| {
                    k += 1;
                    k - 1
                })
            })
            .collect();
        let (pattern, order) =
            SymbolicSparseColMat::try_new_from_indices(0, 0, &[]).map_err(fail)?;
        let mut s = Self {
            model,
            h,
            scheme: Scheme::BackwardEuler,
            cfg,
            index,
            symbolic: SymbolicLlt::try_new(pattern.as_ref(), Side::Lower).map_err(fail)?,
            pattern,
            order,
        };
        let x0 = vec![[0.0; 3]; model.len()];
        let lag = Lagged::new(model, 0, &x0, &x0);
        let pairs: Vec<Pair<usize, usize>> = s
            .hessian_entries((&x0, &x0), &lag, (false, 0.0))
            .iter()
            .map(|t| Pair::new(t.row, t.col))
            .collect();
        let n = s.unknowns();
        (s.pattern, s.order) =
            SymbolicSparseColMat::try_new_from_indices(n, n, &pairs).map_err(fail)?;
        s.symbolic = SymbolicLlt::try_new(s.pattern.as_ref(), Side::Lower).map_err(fail)?;
        Ok(s)
    }

    /// The same stepper with `scheme` (backward Euler by default) for the same `dt`. Fails
    /// for the midpoint rule with friction (see [`check_scheme`]).
    pub fn with_scheme(mut self, scheme: Scheme) -> Result<Self> {
        check_scheme(self.model, scheme)?;
        let dt = self.dt();
        self.scheme = scheme;
        self.h = match scheme {
            Scheme::BackwardEuler => dt,
            Scheme::Midpoint => dt / 2.0,
        };
        Ok(self)
    }

    /// The time step.
    pub fn dt(&self) -> f64 {
        match self.scheme {
            Scheme::BackwardEuler => self.h,
            Scheme::Midpoint => 2.0 * self.h,
        }
    }

    /// The same stepper for `model`, a model with the same particles (free or fixed) and
    /// springs (endpoints) but other parameter values: the symbolic factorisation is reused.
    pub fn with_model<'b>(&self, model: &'b Model) -> Result<Implicit<'b>> {
        model.validate()?;
        let same = model.len() == self.model.len()
            && (0..model.len()).all(|p| model.free(p) == self.model.free(p))
            && model.springs.len() == self.model.springs.len()
            && model
                .springs
                .iter()
                .zip(&self.model.springs)
                .all(|(a, b)| (a.i, a.j) == (b.i, b.j))
            && model
                .tets
                .iter()
                .map(|t| t.nodes)
                .eq(self.model.tets.iter().map(|t| t.nodes))
            && model
                .tris
                .iter()
                .map(|t| t.nodes)
                .eq(self.model.tris.iter().map(|t| t.nodes))
            && model
                .bends
                .iter()
                .map(|b| b.nodes)
                .eq(self.model.bends.iter().map(|b| b.nodes));
        if !same {
            return Err(DiffsimError::config(
                "with_model needs the same particles and element nodes",
            ));
        }
        check_scheme(model, self.scheme)?;
        Ok(Implicit {
            model,
            h: self.h,
            scheme: self.scheme,
            cfg: self.cfg,
            index: self.index.clone(),
            pattern: self.pattern.clone(),
            order: self.order.clone(),
            symbolic: self.symbolic.clone(),
        })
    }

    /// Numbers stored in one factor of the step's Hessian (what the adjoint keeps per step
    /// besides the state).
    pub fn factor_len(&self) -> Result<usize> {
        use faer::sparse::linalg::cholesky::factorize_symbolic_cholesky;
        let s = factorize_symbolic_cholesky(
            self.pattern.as_ref(),
            Side::Lower,
            Default::default(),
            Default::default(),
        )
        .map_err(fail)?;
        Ok(s.len_val())
    }

    pub(crate) fn unknowns(&self) -> usize {
        3 * self.index.iter().flatten().count()
    }

    /// `∇Φ` over the unknowns at `x`, and `Φ`.
    pub(crate) fn gradient(
        &self,
        x: &[V3],
        (xn, vn): (&[V3], &[V3]),
        lag: &Lagged,
    ) -> (Vec<f64>, f64) {
        let (m, h) = (self.model, self.h);
        let mut g = vec![0.0; self.unknowns()];
        let mut phi = m.energy(lag.step, x);
        let mut f = vec![[0.0; 3]; m.len()];
        m.add_elastic_forces(lag.step, x, &mut f);
        for s in &m.springs {
            let nh = m.frame(s, xn).n;
            let r: f64 = (0..3)
                .map(|a| nh[a] * (x[s.i][a] - x[s.j][a] - xn[s.i][a] + xn[s.j][a]))
                .sum();
            phi += 0.5 * s.kd / h * r * r;
            for a in 0..3 {
                f[s.i][a] -= s.kd / h * r * nh[a];
                f[s.j][a] += s.kd / h * r * nh[a];
            }
        }
        for p in (0..m.len()).filter(|&p| m.free(p)) {
            for shape in &m.shapes {
                let (u, fc, _) = contact::normal(&m.contact, shape, x[p], false);
                let (w, n, _, _) = contact::damping_frame(&m.contact, shape, xn[p]);
                let r: f64 = (0..3).map(|a| n[a] * (x[p][a] - xn[p][a])).sum();
                phi += u + 0.5 * w / h * r * r;
                for a in 0..3 {
                    f[p][a] += fc[a] - w / h * r * n[a];
                }
                if m.contact.mu != 0.0 {
                    let (d, gd, _) = contact::friction(&m.contact, shape, x[p], xn[p], h);
                    phi += d;
                    for a in 0..3 {
                        f[p][a] -= gd[a];
                    }
                }
            }
        }
        for ((t, k), air) in m.tris.iter().zip(&lag.tri).zip(&lag.air) {
            damping_term(&t.nodes, k, (x, xn), h, (&mut phi, &mut f));
            for &p in &t.nodes {
                for a in 0..3 {
                    f[p][a] += air[a];
                    phi -= air[a] * x[p][a];
                }
            }
        }
        for (b, k) in m.bends.iter().zip(&lag.bend) {
            damping_term(&b.nodes, k, (x, xn), h, (&mut phi, &mut f));
        }
        for (p, idx) in self.index.iter().enumerate() {
            let Some(k) = idx else { continue };
            let u = lag.control[p];
            for a in 0..3 {
                let dx = x[p][a] - xn[p][a] - h * vn[p][a];
                let pull = m.mass[p] * m.gravity[a] + u[a];
                phi += 0.5 * m.mass[p] / (h * h) * dx * dx - pull * x[p][a];
                g[3 * k + a] = m.mass[p] * dx / (h * h) - f[p][a] - pull;
            }
        }
        (g, phi)
    }

    /// The Hessian of `Φ` (lower triangle, every block of the pattern present), exact or with
    /// each spring's transverse term clamped at 0 (`project`), plus `shift` on the diagonal.
    pub(super) fn hessian(
        &self,
        x: &[V3],
        xn: &[V3],
        lag: &Lagged,
        project: bool,
        shift: f64,
    ) -> Result<SparseColMat<usize, f64>> {
        let values: Vec<f64> = self
            .hessian_entries((x, xn), lag, (project, shift))
            .iter()
            .map(|t| t.val)
            .collect();
        SparseColMat::new_from_argsort(self.pattern.clone(), &self.order, &values).map_err(fail)
    }

    /// The entries of [`Implicit::hessian`], always the same positions in the same order.
    pub(crate) fn hessian_entries(
        &self,
        (x, xn): (&[V3], &[V3]),
        lag: &Lagged,
        (project, shift): (bool, f64),
    ) -> Vec<Triplet<usize, usize, f64>> {
        let (m, h) = (self.model, self.h);
        let mut trips = Vec::new();
        let mut block = |pi: usize, pj: usize, b: &[[f64; 3]; 3], sign: f64| {
            if let (Some(ki), Some(kj)) = (self.index[pi], self.index[pj]) {
                for (a, row) in b.iter().enumerate() {
                    for (c, val) in row.iter().enumerate() {
                        let (r, col) = (3 * ki + a, 3 * kj + c);
                        if r >= col {
                            trips.push(Triplet::new(r, col, sign * val));
                        }
                    }
                }
            }
        };
        for p in 0..m.len() {
            let d = m.mass[p] / (h * h) + shift;
            block(p, p, &[[d, 0.0, 0.0], [0.0, d, 0.0], [0.0, 0.0, d]], 1.0);
            if !m.free(p) {
                continue;
            }
            for shape in &m.shapes {
                let (_, _, jx) = contact::normal(&m.contact, shape, x[p], project);
                let (w, n, _, _) = contact::damping_frame(&m.contact, shape, xn[p]);
                let mut b: M3 = std::array::from_fn(|a| {
                    std::array::from_fn(|c| -jx[a][c] + w / h * n[a] * n[c])
                });
                if m.contact.mu != 0.0 {
                    let (_, _, hf) = contact::friction(&m.contact, shape, x[p], xn[p], h);
                    b = combine(&b, &hf, 1.0);
                }
                block(p, p, &b, 1.0);
            }
        }
        for k in 0..m.tets.len() {
            let t = m.tet(lag.step, k);
            let hb = t.hessian_blocks(x, project);
            for (a, &na) in t.nodes.iter().enumerate() {
                for (b, &nb) in t.nodes.iter().enumerate() {
                    block(na, nb, &hb[a][b], 1.0);
                }
            }
        }
        for (t, kb) in m.tris.iter().zip(&lag.tri) {
            cloth_blocks(&mut block, &t.nodes, (&t.hessian_blocks(x, project), kb), h);
        }
        for (e, kb) in m.bends.iter().zip(&lag.bend) {
            cloth_blocks(&mut block, &e.nodes, (&e.hessian_blocks(x, project), kb), h);
        }
        for s in &m.springs {
            let fr = m.frame(s, x);
            let nh = m.frame(s, xn).n;
            let t = 1.0 - s.rest / fr.len.max(1e-300);
            let t = if project { t.max(0.0) } else { t };
            let b: [[f64; 3]; 3] = std::array::from_fn(|a| {
                std::array::from_fn(|c| {
                    let id = f64::from(u8::from(a == c));
                    s.ke * (fr.n[a] * fr.n[c] + t * (id - fr.n[a] * fr.n[c]))
                        + s.kd / h * nh[a] * nh[c]
                })
            });
            block(s.i, s.i, &b, 1.0);
            block(s.j, s.j, &b, 1.0);
            block(s.i, s.j, &b, -1.0);
            block(s.j, s.i, &b, -1.0);
        }
        trips
    }

    pub(super) fn factor(&self, a: &SparseColMat<usize, f64>) -> Option<Llt<usize, f64>> {
        Llt::try_new_with_symbolic(self.symbolic.clone(), a.as_ref(), Side::Lower).ok()
    }

    /// Step `n` (which picks the controls) from `(xn, vn)`: `(xₙ₊₁, vₙ₊₁)`, the
    /// exact-Hessian factor of the step's backward-Euler solve (at `xₙ₊₁`, or at the
    /// midpoint `y`), and the Newton iterations.
    pub fn step(&self, n: usize, xn: &[V3], vn: &[V3]) -> Result<StepResult> {
        let (y, vy, factor, iters) = self.backward_euler(n, xn, vn)?;
        if self.scheme == Scheme::BackwardEuler {
            return Ok((y, vy, factor, iters));
        }
        let m = self.model;
        let (mut x, mut v) = (y, vy);
        for p in (0..m.len()).filter(|&p| m.free(p)) {
            for a in 0..3 {
                x[p][a] = 2.0 * x[p][a] - xn[p][a];
                v[p][a] = 2.0 * v[p][a] - vn[p][a];
            }
        }
        Ok((x, v, factor, iters))
    }

    /// The backward-Euler step of length `h` of step `n` from `(xn, vn)` by Newton's method.
    pub(super) fn backward_euler(&self, n: usize, xn: &[V3], vn: &[V3]) -> Result<StepResult> {
        let (m, h) = (self.model, self.h);
        let mut x: Vec<V3> = (0..m.len())
            .map(|p| {
                if m.free(p) {
                    std::array::from_fn(|a| xn[p][a] + h * vn[p][a])
                } else {
                    xn[p]
                }
            })
            .collect();
        let lag = Lagged::new(m, n, xn, vn);
        let scale = 1.0 + (0..m.len()).map(|p| m.mass[p] / h).fold(0.0, f64::max);
        let mut iters = 0;
        loop {
            let (g, phi) = self.gradient(&x, (xn, vn), &lag);
            let gmax = g.iter().fold(0.0f64, |a, b| a.max(b.abs()));
            if !gmax.is_finite() {
                return Err(DiffsimError::newton(n, "the state became non-finite"));
            }
            if gmax <= self.cfg.tol * scale {
                break;
            }
            if iters == self.cfg.max_iters {
                return Err(DiffsimError::newton(
                    n,
                    format!("Newton did not converge in {iters} iterations (|∇Φ| = {gmax:e})"),
                ));
            }
            // The exact Hessian; else the projected one (springs' transverse terms clamped,
            // tetrahedra projected onto PSD, cloth area curvature and turning contact normals
            // dropped); else, with a growing diagonal shift.
            let mut llt = self.factor(&self.hessian(&x, xn, &lag, false, 0.0)?);
            if llt.is_none() {
                llt = self.factor(&self.hessian(&x, xn, &lag, true, 0.0)?);
            }
            let mut shift = 1e-8 * scale * scale;
            while llt.is_none() && shift < 1e8 * scale * scale {
                llt = self.factor(&self.hessian(&x, xn, &lag, true, shift)?);
                shift *= 10.0;
            }
            let llt =
                llt.ok_or_else(|| DiffsimError::newton(n, "no positive definite Newton matrix"))?;
            let rhs = Mat::from_fn(g.len(), 1, |r, _| -g[r]);
            let dx = llt.solve(&rhs);
            // A Newton step below the positions' round-off: |∇Φ| is at its floor.
            let xmax = x.iter().flatten().fold(1.0f64, |a, b| a.max(b.abs()));
            let dmax = (0..g.len()).fold(0.0f64, |a, r| a.max(dx[(r, 0)].abs()));
            if dmax <= 4.0 * f64::EPSILON * xmax {
                break;
            }
            // Backtracking (Armijo) on Φ.
            let slope: f64 = (0..g.len()).map(|r| g[r] * dx[(r, 0)]).sum();
            let mut alpha = 1.0;
            let trial = |alpha: f64| -> Vec<V3> {
                let mut y = x.clone();
                for (p, idx) in self.index.iter().enumerate() {
                    if let Some(k) = idx {
                        for a in 0..3 {
                            y[p][a] += alpha * dx[(3 * k + a, 0)];
                        }
                    }
                }
                y
            };
            // Accept a step that decreases Φ enough, or (near the solution, where Φ's changes
            // fall below its round-off) one that decreases |∇Φ| without raising Φ beyond that
            // round-off. (Accepting any |∇Φ| decrease let a stiff friction step cycle between
            // two points, Φ rising by 2e-4·|Φ| on every other step.) Φ sums terms far larger
            // than itself (inertia, elastic energies), so its round-off is taken as
            // 1e-8·max(|Φ|, 1), not a few ε·|Φ| (the cloth throw needs that much).
            let roundoff = 1e-8 * phi.abs().max(1.0);
            let accept = |y: &[V3], alpha: f64| {
                let (gy, phiy) = self.gradient(y, (xn, vn), &lag);
                phiy <= phi + 1e-4 * alpha * slope
                    || (phiy <= phi + roundoff
                        && gy.iter().fold(0.0f64, |a, b| a.max(b.abs())) < gmax)
            };
            let mut y = trial(alpha);
            while !accept(&y, alpha) && alpha > 1e-8 {
                alpha *= 0.5;
                y = trial(alpha);
            }
            x = y;
            iters += 1;
        }
        let factor = self.factor(&self.hessian(&x, xn, &lag, false, 0.0)?).ok_or_else(|| {
            DiffsimError::newton(
                n,
                "the Hessian at the solution is not positive definite, so the step is not differentiable there",
            )
        })?;
        let v = (0..m.len())
            .map(|p| std::array::from_fn(|a| (x[p][a] - xn[p][a]) / h))
            .collect();
        Ok((x, v, factor, iters))
    }

    /// `steps` steps from `(x0, v0)` at step 0, keeping states and factors.
    pub fn rollout(&self, x0: &[V3], v0: &[V3], steps: usize) -> Result<ImplicitRollout> {
        self.rollout_from(0, x0, v0, steps)
    }

    /// `steps` steps from `(x0, v0)`, the state of step `first`, keeping states and factors.
    pub fn rollout_from(
        &self,
        first: usize,
        x0: &[V3],
        v0: &[V3],
        steps: usize,
    ) -> Result<ImplicitRollout> {
        let mut states = vec![(x0.to_vec(), v0.to_vec())];
        let (mut factors, mut newton_iters) = (Vec::new(), Vec::new());
        for n in first..first + steps {
            let (x, v) = states.last().expect("one state");
            let (x1, v1, f, it) = self.step(n, x, v)?;
            states.push((x1, v1));
            factors.push(f);
            newton_iters.push(it);
        }
        Ok(ImplicitRollout {
            run: Rollout { first, states },
            factors,
            newton_iters,
        })
    }
}

/// The midpoint rule is refused with friction: a sticking particle's half step has
/// `v_y ≈ 0`, so `vₙ₊₁ = 2v_y − vₙ` flips its velocity every step and the friction's lagged
/// terms chase it (Newton stalls within a few steps on a particle sliding to rest).
pub(super) fn check_scheme(m: &Model, scheme: Scheme) -> Result<()> {
    if scheme == Scheme::Midpoint && m.contact.mu != 0.0 && !m.shapes.is_empty() {
        return Err(DiffsimError::config(
            "the implicit midpoint rule does not support friction (a sticking contact makes the velocity alternate sign): use backward Euler",
        ));
    }
    Ok(())
}

pub(super) fn fail(e: impl std::fmt::Debug) -> DiffsimError {
    SolveError::Factorization(format!("{e:?}")).into()
}
