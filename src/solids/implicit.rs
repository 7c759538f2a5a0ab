//! Implicit (backward) Euler by Newton's method, with an implicit-function-theorem adjoint.
//!
//! A step minimises the incremental potential
//! `Φ(x) = Σ m/(2h²)·|x − xₙ − h·vₙ|² + E(x) + Σ_s kd/(2h)·(n̂ₛ·(Δₛ(x) − Δₛ(xₙ)))² − Σ m·g·x`
//! `+ Σ_contacts [U(x_p) + w/(2h)·(n̂·(x_p − xₙ,p))² + D(x_p)] + Σ_cloth [½ΔᵀKΔ/h − f_air(xₙ, vₙ)·x]`
//! `− Σ uₙ·x`
//! (`E`: springs, stable Neo-Hookean tetrahedra, cloth membranes and bending with its rest
//! edge length; `U` the smooth contact's normal potential, `w = kd·σ(−φ/s)` and `n̂` its
//! damping weight and normal at `xₙ`: contact damping lagged like the springs'; and friction's
//! potential `D = μ·λ·h·√(|T(x − xₙ)/h|² + s²)` with the normal force `λ` and tangent
//! projector `T` at `xₙ` ([`contact::friction`]). Cloth: `K` the membrane damping (exact, `Ḟ` is linear in `v`) and
//! the area and bending damping with `∇J`, `∇θ` lagged at `xₙ`; the air force is taken at
//! `(xₙ, vₙ)`; these lagged terms are evaluated once per step; `uₙ` the step's control
//! forces, [`Model::controls`].)
//! over the free particles (`Δₛ = xᵢ − xⱼ`, `n̂ₛ` the spring direction at `xₙ`: the damping is
//! the Warp spring damping with its direction lagged one step, which keeps `Φ` a potential and
//! its Hessian symmetric). `∇Φ(xₙ₊₁) = 0` is backward Euler with `vₙ₊₁ = (xₙ₊₁ − xₙ)/h`.
//!
//! Newton uses the exact Hessian while it is positive definite and the Hessian with each
//! spring's transverse term clamped at 0 otherwise, with a backtracking line search on `Φ`; the
//! sparse Cholesky's symbolic analysis and the order that sums the element entries into the
//! pattern are computed once per model. After convergence the exact
//! Hessian `H` at `xₙ₊₁` is factorised once more; the adjoint of the step solves `H·λ = x̄ₙ₊₁ +
//! v̄ₙ₊₁/h` with that factor (`dx/dp = −H⁻¹ ∂G/∂p`, `G = ∇Φ`) and needs no other solve.

use super::contact;
use super::mass_spring::{M3, Model, V3};
use super::{Params, Rollout};
use crate::error::{DiffsimError, Result};
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
    model: &'a Model,
    /// The backward-Euler solve's step: `dt`, or `dt/2` for [`Scheme::Midpoint`].
    h: f64,
    scheme: Scheme,
    cfg: NewtonConfig,
    /// Unknown index of each particle (None: fixed).
    index: Vec<Option<usize>>,
    /// The Hessian's pattern and the order that sums its entries into it (no sort per
    /// assembly).
    pattern: SymbolicSparseColMat<usize>,
    order: Argsort<usize>,
    symbolic: SymbolicLlt<usize>,
}

/// The terms of step `n` that depend on `(xₙ, vₙ)` and `n` alone: cloth damping matrices
/// (node blocks, `Φ ∋ ½ΔᵀKΔ/h`), the air force per triangle and the control force per
/// particle.
struct Lagged {
    /// The step (it picks the controls and the tetrahedra's activations).
    step: usize,
    tri: Vec<[[M3; 3]; 3]>,
    bend: Vec<[[M3; 4]; 4]>,
    air: Vec<V3>,
    control: Vec<V3>,
}

impl Lagged {
    fn new(m: &Model, n: usize, xn: &[V3], vn: &[V3]) -> Self {
        Self {
            step: n,
            tri: m.tris.iter().map(|t| t.damping_blocks(xn)).collect(),
            bend: m.bends.iter().map(|b| b.damping_blocks(xn)).collect(),
            air: m.tris.iter().map(|t| t.air_force(xn, vn)).collect(),
            control: (0..m.len()).map(|p| m.control(n, p)).collect(),
        }
    }
}

/// One implicit step's result: `(xₙ₊₁, vₙ₊₁)`, the exact-Hessian factor at `xₙ₊₁`, Newton
/// iterations.
pub type StepResult = (Vec<V3>, Vec<V3>, Llt<usize, f64>, usize);

/// The parameters of [`Implicit::sparse_gn_jacobian`]'s columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GnParameters {
    /// One column per spring: its rest length.
    RestLengths,
    /// Two columns per tetrahedron: `[μ₀, λ₀, μ₁, λ₁, …]`.
    Materials,
}

impl GnParameters {
    /// The gradient of these parameters in `g`.
    pub fn of(self, g: &Params) -> Vec<f64> {
        match self {
            GnParameters::RestLengths => g.rest.clone(),
            GnParameters::Materials => {
                g.mu.iter()
                    .zip(&g.lambda)
                    .flat_map(|(a, b)| [*a, *b])
                    .collect()
            }
        }
    }
}

/// A trajectory with the exact-Hessian factor of every step (for the adjoint) and the Newton
/// iterations per step.
pub struct ImplicitRollout {
    /// The states.
    pub run: Rollout,
    /// Factor of `H(xₙ₊₁)` per step.
    factors: Vec<Llt<usize, f64>>,
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

    fn unknowns(&self) -> usize {
        3 * self.index.iter().flatten().count()
    }

    /// `∇Φ` over the unknowns at `x`, and `Φ`.
    fn gradient(&self, x: &[V3], (xn, vn): (&[V3], &[V3]), lag: &Lagged) -> (Vec<f64>, f64) {
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
    fn hessian(
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
    fn hessian_entries(
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

    fn factor(&self, a: &SparseColMat<usize, f64>) -> Option<Llt<usize, f64>> {
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
    fn backward_euler(&self, n: usize, xn: &[V3], vn: &[V3]) -> Result<StepResult> {
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
                return Err(DiffsimError::config(
                    "implicit step: the state became non-finite",
                ));
            }
            if gmax <= self.cfg.tol * scale {
                break;
            }
            if iters == self.cfg.max_iters {
                return Err(DiffsimError::config(format!(
                    "implicit step: Newton did not converge in {iters} iterations (|∇Φ| = {gmax:e})"
                )));
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
            let llt = llt.ok_or_else(|| {
                DiffsimError::config("implicit step: no positive definite Newton matrix")
            })?;
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
            DiffsimError::config("implicit step: the Hessian at the solution is not positive definite, so the step is not differentiable there")
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

    /// Gradients of a loss given its gradients `(x̄_N, v̄_N)` at the last state: one solve
    /// per step with that step's factor.
    pub fn adjoint(&self, r: &ImplicitRollout, xbar: &[V3], vbar: &[V3]) -> Params {
        let m = self.model;
        let mut g = Params::zeros(m);
        let (mut xb, mut vb) = (xbar.to_vec(), vbar.to_vec());
        for n in (0..r.factors.len()).rev() {
            let (xn, vn) = &r.run.states[n];
            let x1 = &r.run.states[n + 1].0;
            let factor = &r.factors[n];
            (xb, vb) = match self.scheme {
                Scheme::BackwardEuler => self.backward_euler_adjoint(
                    r.run.first + n,
                    (xn, vn),
                    x1,
                    factor,
                    (&xb, &vb),
                    &mut g,
                ),
                Scheme::Midpoint => {
                    // x₁ = 2y − xₙ, v₁ = 2v_y − vₙ (free particles; a fixed one stays at
                    // y = xₙ with v = 0), so y = (xₙ + x₁)/2, ȳ = 2x̄₁, v̄_y = 2v̄₁.
                    let y = self.solve_point(&r.run, n);
                    let twice =
                        |w: &[V3]| -> Vec<V3> { w.iter().map(|q| q.map(|c| 2.0 * c)).collect() };
                    let (mut xbn, mut vbn) = self.backward_euler_adjoint(
                        r.run.first + n,
                        (xn, vn),
                        &y,
                        factor,
                        (&twice(&xb), &twice(&vb)),
                        &mut g,
                    );
                    for p in 0..m.len() {
                        for a in 0..3 {
                            xbn[p][a] -= xb[p][a];
                            if m.free(p) {
                                vbn[p][a] -= vb[p][a];
                            }
                        }
                    }
                    (xbn, vbn)
                }
            };
        }
        g.x0 = xb;
        g.v0 = vb;
        g
    }

    /// The adjoint of the backward-Euler solve of step `step`, `(xₙ, vₙ) → (x₁, v₁)`, with
    /// `factor` of the Hessian at `x₁`: adds the parameter and control gradients to `g` and
    /// returns `(x̄ₙ, v̄ₙ)` from `(x̄₁, v̄₁)`.
    fn backward_euler_adjoint(
        &self,
        step: usize,
        (xn, vn): (&[V3], &[V3]),
        x1: &[V3],
        factor: &Llt<usize, f64>,
        (xb, vb): (&[V3], &[V3]),
        g: &mut Params,
    ) -> (Vec<V3>, Vec<V3>) {
        let (m, h) = (self.model, self.h);
        let np = m.len();
        // v₁ = (x₁ − xₙ)/h; x₁ solves G = ∇Φ = 0: λ = H⁻¹ (x̄₁ + v̄₁/h).
        let mut rhs = Mat::zeros(self.unknowns(), 1);
        for (p, idx) in self.index.iter().enumerate() {
            if let Some(k) = idx {
                for a in 0..3 {
                    rhs[(3 * k + a, 0)] = xb[p][a] + vb[p][a] / h;
                }
            }
        }
        let lam_u = factor.solve(&rhs);
        let lam: Vec<V3> = (0..np)
            .map(|p| match self.index[p] {
                Some(k) => std::array::from_fn(|a| lam_u[(3 * k + a, 0)]),
                None => [0.0; 3],
            })
            .collect();
        // G ∋ −uₙ: ūₙ = λ (zero on fixed particles).
        if let Some(gu) = g.controls.get_mut(step) {
            gu.copy_from_slice(&lam);
        }
        let (mut xbn, mut vbn) = (vec![[0.0; 3]; np], vec![[0.0; 3]; np]);
        for p in 0..np {
            for a in 0..3 {
                if m.free(p) {
                    // G ∋ m(x₁ − xₙ − h vₙ)/h²; v₁ ∋ −xₙ/h.
                    xbn[p][a] += m.mass[p] * lam[p][a] / (h * h) - vb[p][a] / h;
                    vbn[p][a] += m.mass[p] * lam[p][a] / h;
                } else {
                    // A fixed particle stays where it is (v = 0): x̄ passes through.
                    xbn[p][a] += xb[p][a];
                }
            }
        }
        for (k, s) in m.springs.iter().enumerate() {
            let mu: V3 = std::array::from_fn(|a| lam[s.i][a] - lam[s.j][a]);
            let fr = m.frame(s, x1);
            let nh = m.frame(s, xn).n;
            let mn: f64 = (0..3).map(|a| mu[a] * fr.n[a]).sum();
            // ∇ₓᵢE = ke(l − L)n: ∂/∂L = −ke n, ∂/∂ke = (l − L) n; q̄ −= μ·∂G/∂q.
            g.rest[k] += s.ke * mn;
            g.ke[k] -= (fr.len - s.rest) * mn;
            // Damping term T = kd/h·n̂(n̂·ρ), ρ = Δ(x₁) − Δ(xₙ).
            let rho: V3 =
                std::array::from_fn(|a| x1[s.i][a] - x1[s.j][a] - xn[s.i][a] + xn[s.j][a]);
            let (nr, mnh) = (
                (0..3).map(|a| nh[a] * rho[a]).sum::<f64>(),
                (0..3).map(|a| mu[a] * nh[a]).sum::<f64>(),
            );
            g.kd[k] -= mnh * nr / h;
            // E also depends on fixed particles' x₁ (= xₙ): ∂G/∂x₁ of a fixed endpoint.
            if !(m.free(s.i) && m.free(s.j)) {
                let (hess, _) = m.spring_jacobians(s, x1, None);
                for b in 0..3 {
                    // Gᵢ ∋ fs(Δ), Gⱼ ∋ −fs(Δ), J = ∂fs/∂Δ, μ = λᵢ − λⱼ (0 at the fixed end):
                    // a fixed j gets −(∂Gᵢ/∂xⱼ)ᵀλᵢ = Jᵀμ, a fixed i gets −(∂Gⱼ/∂xᵢ)ᵀλⱼ = −Jᵀμ.
                    let jt_mu: f64 = (0..3).map(|a| mu[a] * hess[a][b]).sum();
                    if !m.free(s.i) {
                        xbn[s.i][b] -= jt_mu;
                    }
                    if !m.free(s.j) {
                        xbn[s.j][b] += jt_mu;
                    }
                }
            }
        }
        self.add_lagged_vjp((xn, vn), x1, &lam, (&mut xbn, &mut vbn));
        // Tetrahedra: q̄ += λᵀ·∂f/∂q for (μ, λ, a); a fixed node gets (∂f/∂x)ᵀλ.
        let mut fixed = vec![[0.0; 3]; np];
        for k in 0..m.tets.len() {
            let t = m.tet(step, k);
            g.add_tet(step, k, t.parameter_gradients(x1, &lam));
            if t.nodes.iter().any(|&p| !m.free(p)) {
                t.add_force_jacobian_transpose(x1, &lam, &mut fixed);
            }
        }
        // Cloth: lagged damping and air; a fixed node gets −(H + K/h)λ.
        for t in &m.tris {
            if t.nodes.iter().any(|&p| !m.free(p)) {
                let (hb, kb) = (t.hessian_blocks(x1, false), t.damping_blocks(xn));
                fixed_node_terms(&t.nodes, (&hb, &kb), h, m, &lam, &mut fixed);
            }
        }
        for b in &m.bends {
            if b.nodes.iter().any(|&p| !m.free(p)) {
                let (hb, kb) = (b.hessian_blocks(x1, false), b.damping_blocks(xn));
                fixed_node_terms(&b.nodes, (&hb, &kb), h, m, &lam, &mut fixed);
            }
        }
        for p in (0..np).filter(|&p| !m.free(p)) {
            for a in 0..3 {
                xbn[p][a] += fixed[p][a];
            }
        }
        (xbn, vbn)
    }

    /// `x̄ₙ −= (∂D/∂xₙ)ᵀλ`, `v̄ₙ −= (∂D/∂vₙ)ᵀλ` for the terms `D` of a step's `G` that are
    /// lagged at `(xₙ, vₙ)`: the damping directions of springs, contacts and cloth, the
    /// friction frames and the air forces (not the inertia).
    fn add_lagged_vjp(
        &self,
        (xn, vn): (&[V3], &[V3]),
        x1: &[V3],
        lam: &[V3],
        (xbn, vbn): (&mut [V3], &mut [V3]),
    ) {
        let (m, h) = (self.model, self.h);
        for s in &m.springs {
            // Δₙ̄ = −(∂T/∂Δₙ)ᵀμ, μ = λᵢ − λⱼ.
            let mu: V3 = std::array::from_fn(|a| lam[s.i][a] - lam[s.j][a]);
            let kb = lagged_damping_jacobian(m, s, x1, xn, h);
            for b in 0..3 {
                let d = -(0..3).map(|a| mu[a] * kb[a][b]).sum::<f64>();
                xbn[s.i][b] += d;
                xbn[s.j][b] -= d;
            }
        }
        self.add_probed_lagged_vjp((xn, vn), x1, lam, (xbn, vbn));
    }

    /// The part of [`Self::add_lagged_vjp`] whose Jacobian rows [`Self::lagged_jacobians`]
    /// probes: contact damping and friction, cloth damping and air (the springs' lagged
    /// damping has its 3×3 block in closed form).
    fn add_probed_lagged_vjp(
        &self,
        (xn, vn): (&[V3], &[V3]),
        x1: &[V3],
        lam: &[V3],
        (xbn, vbn): (&mut [V3], &mut [V3]),
    ) {
        let (m, h) = (self.model, self.h);
        // Contact damping T = (w/h)·n·(n·(x₁ − xₙ)) with w, n taken at xₙ:
        // ∂T/∂xₙ = (1/h)[r·n·∇wᵀ + w·r·∂n + w·n·((x₁ − xₙ)ᵀ∂n − nᵀ)], x̄ₙ −= (∂T/∂xₙ)ᵀλ;
        // friction likewise through its lagged λ, n and x₁ − xₙ.
        for p in (0..m.len()).filter(|&p| m.free(p)) {
            for shape in &m.shapes {
                let (w, n, dw, dn) = contact::damping_frame(&m.contact, shape, xn[p]);
                let d: V3 = std::array::from_fn(|a| x1[p][a] - xn[p][a]);
                let r: f64 = (0..3).map(|a| n[a] * d[a]).sum();
                let ln: f64 = (0..3).map(|a| lam[p][a] * n[a]).sum();
                for b in 0..3 {
                    let dnd: f64 = (0..3).map(|a| d[a] * dn[a][b]).sum();
                    let ldn: f64 = (0..3).map(|a| lam[p][a] * dn[a][b]).sum();
                    let col = r * ln * dw[b] + w * r * ldn + w * ln * (dnd - n[b]);
                    xbn[p][b] -= col / h;
                }
                if m.contact.mu != 0.0 {
                    let c = &m.contact;
                    let fr = contact::friction_lagged_vjp(c, shape, x1[p], xn[p], h, lam[p]);
                    for b in 0..3 {
                        xbn[p][b] -= fr[b];
                    }
                }
            }
        }
        for t in &m.tris {
            t.add_lagged_vjp((x1, xn, vn), lam, h, xbn, vbn);
        }
        for b in &m.bends {
            b.add_lagged_vjp((x1, xn), lam, h, xbn);
        }
    }
}

/// Sparse Gauss-Newton (Zehnder et al. 2021) for fixed parameters (rest lengths or
/// tetrahedron materials), its KKT system solved by block elimination in time order (both
/// schemes); and for per-step controls (below; backward Euler). Every model term (springs,
/// tetrahedra, cloth, contact with friction).
///
/// Unknowns: the position changes `ΔX₁..ΔX_N` of the free particles, the parameter change
/// `Δp`, and multipliers `Λ₀..Λ_{N−1}` of the linearised step equations
/// `Hₙ·ΔXₙ₊₁ + Aₙ·ΔXₙ + Bₙ·ΔXₙ₋₁ + Pₙ·Δp = 0` (`Gₙ = M(xₙ₊₁ − 2xₙ + xₙ₋₁)/h² + ∇E(xₙ₊₁) + Dₙ`,
/// `Hₙ = ∂Gₙ/∂xₙ₊₁` the step's exact Hessian, whose factor the rollout keeps). The objective
/// is `½|r + J_r·ΔX_N|² + ½μ|Δp|²`. The constraint rows are block lower-triangular in time:
/// step `n` gives `ΔXₙ₊₁ = Sₙ₊₁·Δp` with `Sₙ₊₁ = −Hₙ⁻¹(Aₙ·Sₙ + Bₙ·Sₙ₋₁ + Pₙ)` (`np` right-hand
/// sides per stored factor), which leaves the Schur complement on `Δp`:
/// `(JᵀJ + μI)·Δp = −Jᵀr` with `J = J_r·S_N`, i.e. dense GN's step; the multipliers are never
/// formed. Linear in `N` (faer's general sparse LU on the assembled KKT matrix grew like
/// `N^1.9` here, and an LDLᵀ of it failed on its zero primal block).
impl Implicit<'_> {
    /// The solve point of step `n` of `run` (`x₁`, or the midpoint rule's `y = (xₙ + x₁)/2`
    /// of free particles).
    fn solve_point(&self, run: &Rollout, n: usize) -> Vec<V3> {
        let (xn, x1) = (&run.states[n].0, &run.states[n + 1].0);
        match self.scheme {
            Scheme::BackwardEuler => x1.clone(),
            Scheme::Midpoint => xn
                .iter()
                .zip(x1)
                .map(|(a, b)| std::array::from_fn(|k| 0.5 * (a[k] + b[k])))
                .collect(),
        }
    }

    /// `(∂D/∂xₙ, ∂D/∂vₙ)` of step `n` of `run` over the free unknowns (triplets, duplicates to
    /// be summed) for the terms `D` of its `G` lagged at `(xₙ, vₙ)`.
    ///
    /// The springs' lagged damping blocks are closed-form ([`lagged_damping_jacobian`]); the
    /// other terms' rows come from their transposed products
    /// ([`Self::add_probed_lagged_vjp`], the adjoint's own), probed with unit multipliers:
    /// particles whose neighbourhoods (the particles they share a triangle or hinge with, and
    /// themselves) are disjoint share a probe (a distance-2 colouring), so a step costs
    /// `3 × colours` products.
    fn lagged_jacobians(
        &self,
        run: &Rollout,
        (n, x1): (usize, &[V3]),
        probes: &LaggedProbes,
    ) -> [Vec<Triplet<usize, usize, f64>>; 2] {
        let m = self.model;
        let (xn, vn) = &run.states[n];
        let (mut dx, mut dv) = (Vec::new(), Vec::new());
        let dof = |p: usize| self.index[p].map(|k| 3 * k);
        for s in &m.springs {
            let kb = lagged_damping_jacobian(m, s, x1, xn, self.h);
            for (pi, si) in [(s.i, 1.0), (s.j, -1.0)] {
                let Some(bi) = dof(pi) else { continue };
                for (pj, sj) in [(s.i, 1.0), (s.j, -1.0)] {
                    let Some(bj) = dof(pj) else { continue };
                    for (a, row) in kb.iter().enumerate() {
                        for (b, v) in row.iter().enumerate() {
                            dx.push(Triplet::new(bi + a, bj + b, si * sj * v));
                        }
                    }
                }
            }
        }
        let LaggedProbes {
            neighbours,
            colours,
        } = probes;
        let mut lam = vec![[0.0; 3]; m.len()];
        let (mut xbn, mut vbn) = (vec![[0.0; 3]; m.len()], vec![[0.0; 3]; m.len()]);
        for colour in colours {
            for axis in 0..3 {
                colour.iter().for_each(|&p| lam[p][axis] = 1.0);
                xbn.iter_mut()
                    .chain(vbn.iter_mut())
                    .for_each(|v| *v = [0.0; 3]);
                self.add_probed_lagged_vjp((xn, vn), x1, &lam, (&mut xbn, &mut vbn));
                colour.iter().for_each(|&p| lam[p][axis] = 0.0);
                for &p in colour {
                    let row = 3 * self.index[p].expect("probes are free particles") + axis;
                    for &q in &neighbours[p] {
                        let Some(kq) = self.index[q] else { continue };
                        for c in 0..3 {
                            // x̄ₙ −= (∂D/∂xₙ)ᵀλ: row `row` of ∂D/∂xₙ is −x̄ₙ.
                            dx.push(Triplet::new(row, 3 * kq + c, -xbn[q][c]));
                            dv.push(Triplet::new(row, 3 * kq + c, -vbn[q][c]));
                        }
                    }
                }
            }
        }
        [dx, dv]
    }

    /// `(Gx, Gv) = (∂Gₙ/∂xₙ, ∂Gₙ/∂vₙ)` of step `n` (its solve, of length `h`, at the solve
    /// point `x1`, [`Self::solve_point`]): the inertia's `−M/h²` and `−M/h` and the lagged
    /// terms.
    fn previous_state_jacobians(
        &self,
        run: &Rollout,
        (n, x1): (usize, &[V3]),
        probes: &LaggedProbes,
    ) -> [Vec<Triplet<usize, usize, f64>>; 2] {
        let (m, h) = (self.model, self.h);
        let [mut gx, mut gv] = self.lagged_jacobians(run, (n, x1), probes);
        for (p, idx) in self.index.iter().enumerate() {
            let Some(k) = idx else { continue };
            for r in 3 * k..3 * k + 3 {
                gx.push(Triplet::new(r, r, -m.mass[p] / (h * h)));
                gv.push(Triplet::new(r, r, -m.mass[p] / h));
            }
        }
        [gx, gv]
    }

    /// `J = ∂r/∂p` (rows per residual, columns per parameter of `params`) for residuals with
    /// gradients `jr[k]` (`∂r_k/∂x_N`) at the end of `run`, one adjoint sweep per residual:
    /// dense Gauss-Newton's Jacobian, which [`Self::sparse_gn_jacobian`] equals.
    pub fn adjoint_jacobian(
        &self,
        run: &ImplicitRollout,
        jr: &[Vec<V3>],
        params: GnParameters,
    ) -> Vec<Vec<f64>> {
        let zero = vec![[0.0; 3]; self.model.len()];
        jr.iter()
            .map(|seed| params.of(&self.adjoint(run, seed, &zero)))
            .collect()
    }

    /// `J = ∂r/∂p` (rows per residual, columns per parameter of `params`) for residuals with
    /// gradients `jr[k]` (`∂r_k/∂x_N`) at the end of `run`, from the KKT elimination above;
    /// the GN step is then `optim::dense_gn_step(r, J, μ)`. Any model, both schemes: the
    /// sensitivities `(Sˣₙ, Sᵛₙ)` of the state are carried; the solve point's is
    /// `Sʸ = −H⁻¹(Gx·Sˣₙ + Gv·Sᵛₙ + Pₙ)`, then backward Euler takes `Sˣₙ₊₁ = Sʸ`,
    /// `Sᵛₙ₊₁ = (Sʸ − Sˣₙ)/h` and the midpoint rule `Sˣₙ₊₁ = 2Sʸ − Sˣₙ`,
    /// `Sᵛₙ₊₁ = 2(Sʸ − Sˣₙ)/h − Sᵛₙ` (`h` its half step).
    pub fn sparse_gn_jacobian(
        &self,
        run: &ImplicitRollout,
        jr: &[Vec<V3>],
        params: GnParameters,
    ) -> Result<Vec<Vec<f64>>> {
        let (m, h) = (self.model, self.h);
        let np = match params {
            GnParameters::RestLengths => m.springs.len(),
            GnParameters::Materials => 2 * m.tets.len(),
        };
        let d = self.unknowns();
        let dof = |p: usize| self.index[p].map(|k| 3 * k);
        // Sˣ, Sᵛ (d × np, column-major by parameter), zero at the start (x₀, v₀ are given).
        let (mut sx, mut sv) = (Mat::<f64>::zeros(d, np), Mat::<f64>::zeros(d, np));
        let mut unit = vec![[0.0; 3]; m.len()];
        let probes = LaggedProbes::new(m);
        for n in 0..run.factors.len() {
            let y = self.solve_point(&run.run, n);
            // rhs = −(Gx·Sˣ + Gv·Sᵛ + Pₙ).
            let mut rhs = Mat::<f64>::zeros(d, np);
            let [gx, gv] = self.previous_state_jacobians(&run.run, (n, &y), &probes);
            for (t, s) in gx
                .iter()
                .map(|t| (t, &sx))
                .chain(gv.iter().map(|t| (t, &sv)))
            {
                for c in 0..np {
                    rhs[(t.row, c)] -= t.val * s[(t.col, c)];
                }
            }
            match params {
                GnParameters::RestLengths => {
                    for (k, s) in m.springs.iter().enumerate() {
                        let n_hat = m.frame(s, &y).n;
                        // ∂Gᵢ/∂Lₛ = −ke·n (i), +ke·n (j).
                        for (pi, si) in [(s.i, 1.0), (s.j, -1.0)] {
                            let Some(bi) = dof(pi) else { continue };
                            for a in 0..3 {
                                rhs[(bi + a, k)] += si * s.ke * n_hat[a];
                            }
                        }
                    }
                }
                GnParameters::Materials => {
                    for k in 0..m.tets.len() {
                        let t = m.tet(run.run.first + n, k);
                        // ∂G/∂(μ, λ) = −∂f/∂(μ, λ), row by row: eᵀ∂f/∂q by unit weights.
                        for &p in &t.nodes {
                            let Some(bp) = dof(p) else { continue };
                            for a in 0..3 {
                                unit[p][a] = 1.0;
                                let [gmu, glambda, _] = t.parameter_gradients(&y, &unit);
                                unit[p][a] = 0.0;
                                rhs[(bp + a, 2 * k)] += gmu;
                                rhs[(bp + a, 2 * k + 1)] += glambda;
                            }
                        }
                    }
                }
            }
            let sy = run.factors[n].solve(&rhs);
            (sx, sv) = match self.scheme {
                Scheme::BackwardEuler => {
                    let sv1 = Mat::from_fn(d, np, |r, c| (sy[(r, c)] - sx[(r, c)]) / h);
                    (sy, sv1)
                }
                Scheme::Midpoint => (
                    Mat::from_fn(d, np, |r, c| 2.0 * sy[(r, c)] - sx[(r, c)]),
                    Mat::from_fn(d, np, |r, c| {
                        2.0 * (sy[(r, c)] - sx[(r, c)]) / h - sv[(r, c)]
                    }),
                ),
            };
        }
        Ok(jr
            .iter()
            .map(|row| {
                (0..np)
                    .map(|c| {
                        (0..m.len())
                            .filter_map(|p| dof(p).map(|b| (p, b)))
                            .map(|(p, b)| (0..3).map(|a| row[p][a] * sx[(b + a, c)]).sum::<f64>())
                            .sum()
                    })
                    .collect()
            })
            .collect())
    }

    /// The sparse Gauss-Newton step `Δu` on every per-step control force of `run`
    /// ([`Model::controls`], which must cover its steps), for residuals `r` with gradients
    /// `jr[k]` (`∂r_k/∂x_N`) and damping `μ`: the minimiser of `½|r + J·Δu|² + ½μ|Δu|²`,
    /// returned per step and particle (zero on fixed particles).
    ///
    /// With controls the parameters grow with the horizon (`3·free·N`), so dense GN's
    /// `JᵀJ + μI` is a dense matrix of that size: `O(N²)` memory, `O(N³)` time. Here the step
    /// equations `Hₙ·ΔXₙ₊₁ + Aₙ·ΔXₙ + Bₙ·ΔXₙ₋₁ = Δuₙ` (`∂Gₙ/∂uₙ = −I`) define `Δu = L·ΔX`
    /// one-to-one (`L` block lower-triangular with three block diagonals, `ΔX₀ = 0`), so the
    /// same step minimises `½|r + J_r·ΔX_N|² + ½μ|L·ΔX|²` over the positions: the sparse
    /// normal matrix `μLᵀL + E_NᵀJ_rᵀJ_rE_N` is block-pentadiagonal in time and faer's sparse
    /// Cholesky solves it in `O(N)`. Backward Euler, any model.
    pub fn sparse_gn_control_step(
        &self,
        run: &ImplicitRollout,
        r: &[f64],
        jr: &[Vec<V3>],
        mu: f64,
    ) -> Result<Vec<Vec<V3>>> {
        if self.scheme != Scheme::BackwardEuler {
            return Err(DiffsimError::config(
                "the sparse control step handles backward Euler only (under the midpoint rule the velocity, and with it the step equations, is not banded in the positions)",
            ));
        }
        let (m, h, first, steps) = (self.model, self.h, run.run.first, run.factors.len());
        if m.controls.len() < first + steps {
            return Err(DiffsimError::config(format!(
                "the model has controls for {} steps, the rollout runs to step {}",
                m.controls.len(),
                first + steps
            )));
        }
        if !(mu.is_finite() && mu > 0.0) {
            return Err(DiffsimError::config(
                "the control step needs a damping μ > 0 (the controls outnumber the residuals)",
            ));
        }
        let d = self.unknowns();
        let probes = LaggedProbes::new(m);
        // L: block row n = [Bₙ at ΔXₙ₋₁, Aₙ at ΔXₙ, Hₙ at ΔXₙ₊₁]; unknown ΔXₙ₊₁ at n·d.
        let mut l = Vec::new();
        for n in 0..steps {
            let (xn, vn) = &run.run.states[n];
            let x1 = &run.run.states[n + 1].0;
            let lag = Lagged::new(m, first + n, xn, vn);
            for t in self.hessian_entries((x1, xn), &lag, (false, 0.0)) {
                l.push(Triplet::new(n * d + t.row, n * d + t.col, t.val));
                if t.row != t.col {
                    l.push(Triplet::new(n * d + t.col, n * d + t.row, t.val));
                }
            }
            if n >= 1 {
                // vₙ = (xₙ − xₙ₋₁)/h: Aₙ = Gx + Gv/h at ΔXₙ, Bₙ = −Gv/h at ΔXₙ₋₁.
                let [gx, gv] = self.previous_state_jacobians(&run.run, (n, &x1[..]), &probes);
                let at = |t: &Triplet<usize, usize, f64>, back: usize, w: f64| {
                    Triplet::new(n * d + t.row, (n - back) * d + t.col, w * t.val)
                };
                l.extend(gx.iter().map(|t| at(t, 1, 1.0)));
                l.extend(gv.iter().map(|t| at(t, 1, 1.0 / h)));
                if n >= 2 {
                    l.extend(gv.iter().map(|t| at(t, 2, -1.0 / h)));
                }
            }
        }
        // A = [√μ·L; J_r·E_N] (rows: N·d + residuals), normal matrix AᵀA.
        let nd = steps * d;
        let mut a: Vec<Triplet<usize, usize, f64>> = l
            .iter()
            .map(|t| Triplet::new(t.row, t.col, mu.sqrt() * t.val))
            .collect();
        // (particle, first unknown of its ΔX_N) of each free particle.
        let last: Vec<(usize, usize)> = (0..m.len())
            .filter_map(|p| self.index[p].map(|i| (p, nd - d + 3 * i)))
            .collect();
        for (k, row) in jr.iter().enumerate() {
            for &(p, b) in &last {
                for (c, v) in row[p].iter().enumerate() {
                    a.push(Triplet::new(nd + k, b + c, *v));
                }
            }
        }
        let rows = nd + jr.len();
        let at: Vec<_> = a
            .iter()
            .map(|t| Triplet::new(t.col, t.row, t.val))
            .collect();
        let a = SparseColMat::try_new_from_triplets(rows, nd, &a).map_err(fail)?;
        let at = SparseColMat::try_new_from_triplets(nd, rows, &at).map_err(fail)?;
        let normal = faer::sparse::linalg::matmul::sparse_sparse_matmul(
            at.as_ref(),
            a.as_ref(),
            1.0,
            faer::Par::Seq,
        )
        .map_err(fail)?;
        // rhs = −Aᵀ[0; r] = −E_NᵀJ_rᵀr.
        let mut rhs = Mat::<f64>::zeros(nd, 1);
        for (row, rk) in jr.iter().zip(r) {
            for &(p, b) in &last {
                for (c, v) in row[p].iter().enumerate() {
                    rhs[(b + c, 0)] -= v * rk;
                }
            }
        }
        let dx = normal.sp_cholesky(Side::Lower).map_err(fail)?.solve(&rhs);
        let mut du = vec![vec![[0.0; 3]; m.len()]; steps];
        let mut flat = vec![0.0; nd];
        for t in &l {
            flat[t.row] += t.val * dx[(t.col, 0)];
        }
        for (n, u) in du.iter_mut().enumerate() {
            for (p, idx) in self.index.iter().enumerate() {
                if let Some(i) = idx {
                    u[p] = std::array::from_fn(|c| flat[n * d + 3 * i + c]);
                }
            }
        }
        Ok(du)
    }
}

impl super::Integrator for Implicit<'_> {
    type Run = ImplicitRollout;
    fn rollout_from(
        &self,
        first: usize,
        x0: &[V3],
        v0: &[V3],
        steps: usize,
    ) -> Result<ImplicitRollout> {
        Implicit::rollout_from(self, first, x0, v0, steps)
    }
    fn last<'r>(&self, run: &'r ImplicitRollout) -> &'r (Vec<V3>, Vec<V3>) {
        run.run.last()
    }
    fn adjoint(&self, run: &ImplicitRollout, xbar: &[V3], vbar: &[V3]) -> Params {
        Implicit::adjoint(self, run, xbar, vbar)
    }
}

/// `Φ ∋ ½·ΔᵀKΔ/h` and `f −= KΔ/h` for a damping `K` (node blocks) on `Δ = x − xₙ`.
fn damping_term<const N: usize>(
    nodes: &[usize; N],
    k: &[[M3; N]; N],
    (x, xn): (&[V3], &[V3]),
    h: f64,
    (phi, f): (&mut f64, &mut [V3]),
) {
    let d: [V3; N] = nodes.map(|p| std::array::from_fn(|a| x[p][a] - xn[p][a]));
    for (a, &na) in nodes.iter().enumerate() {
        let kd: V3 = std::array::from_fn(|r| {
            (0..N)
                .map(|b| (0..3).map(|c| k[a][b][r][c] * d[b][c]).sum::<f64>())
                .sum()
        });
        for r in 0..3 {
            *phi += 0.5 * d[a][r] * kd[r] / h;
            f[na][r] -= kd[r] / h;
        }
    }
}

/// The probes that recover the lagged terms' `∂D/∂xₙ` rows from their transposed products.
struct LaggedProbes {
    /// Per particle: itself and every particle it shares a triangle or hinge with (the only
    /// columns its rows of the probed `∂D/∂xₙ` can have).
    neighbours: Vec<Vec<usize>>,
    /// Free particles grouped so that the neighbourhoods within a group are disjoint (one
    /// probe per group and axis); none when the model has no probed terms (no contact, no
    /// cloth).
    colours: Vec<Vec<usize>>,
}

impl LaggedProbes {
    fn new(m: &Model) -> Self {
        let mut neighbours: Vec<Vec<usize>> = (0..m.len()).map(|p| vec![p]).collect();
        let groups = m.tris.iter().map(|t| t.nodes.to_vec());
        let groups = groups.chain(m.bends.iter().map(|b| b.nodes.to_vec()));
        for nodes in groups {
            for &p in &nodes {
                neighbours[p].extend(nodes.iter().copied().filter(|&q| q != p));
            }
        }
        neighbours.iter_mut().for_each(|v| {
            v.sort_unstable();
            v.dedup();
        });
        // Greedy distance-2 colouring of the free particles.
        let mut colour_of = vec![usize::MAX; m.len()];
        let mut colours: Vec<Vec<usize>> = Vec::new();
        let probed = !(m.shapes.is_empty() && m.tris.is_empty() && m.bends.is_empty());
        for p in (0..m.len()).filter(|&p| probed && m.free(p)) {
            let taken: std::collections::BTreeSet<usize> = neighbours[p]
                .iter()
                .flat_map(|&r| &neighbours[r])
                .map(|&q| colour_of[q])
                .collect();
            let c = (0..).find(|c| !taken.contains(c)).expect("a free colour");
            if c == colours.len() {
                colours.push(Vec::new());
            }
            colours[c].push(p);
            colour_of[p] = c;
        }
        Self {
            neighbours,
            colours,
        }
    }
}

/// `∂T/∂Δₙ = kd/h·[−n̂n̂ᵀ + ((n̂·ρ)I + n̂ρᵀ)(I − n̂n̂ᵀ)/lₙ]` of a spring's damping term
/// `T = kd/h·n̂(n̂·ρ)` (`ρ = Δ(x₁) − Δ(xₙ)`, `n̂` and `lₙ` its direction and length at `xₙ`)
/// with respect to `Δₙ = xᵢ − xⱼ` at `xₙ`.
fn lagged_damping_jacobian(m: &Model, s: &super::Spring, x1: &[V3], xn: &[V3], h: f64) -> M3 {
    let frame = m.frame(s, xn);
    let (nh, ln) = (frame.n, frame.len.max(1e-300));
    let rho: V3 = std::array::from_fn(|a| x1[s.i][a] - x1[s.j][a] - xn[s.i][a] + xn[s.j][a]);
    let nr: f64 = (0..3).map(|a| nh[a] * rho[a]).sum();
    let id = |a: usize, b: usize| f64::from(u8::from(a == b));
    let proj = |a: usize, b: usize| id(a, b) - nh[a] * nh[b];
    std::array::from_fn(|a| {
        std::array::from_fn(|b| {
            let inner: f64 = (0..3)
                .map(|c| (nr * id(a, c) + nh[a] * rho[c]) * proj(c, b))
                .sum();
            s.kd / h * (-nh[a] * nh[b] + inner / ln)
        })
    })
}

/// Emits `H + K/h` of a cloth element (node blocks) through `block(pᵢ, pⱼ, B, sign)`.
fn cloth_blocks<const N: usize>(
    block: &mut impl FnMut(usize, usize, &M3, f64),
    nodes: &[usize; N],
    (hb, kb): (&[[M3; N]; N], &[[M3; N]; N]),
    h: f64,
) {
    for (a, &na) in nodes.iter().enumerate() {
        for (b, &nb) in nodes.iter().enumerate() {
            block(na, nb, &combine(&hb[a][b], &kb[a][b], 1.0 / h), 1.0);
        }
    }
}

/// `H + s·K` for 3×3 blocks.
fn combine(hb: &M3, kb: &M3, s: f64) -> M3 {
    std::array::from_fn(|r| std::array::from_fn(|c| hb[r][c] + s * kb[r][c]))
}

/// `out[p] −= Σ_b (H + K/h)[a][b]·λ_b` for the fixed nodes `p = nodes[a]` of an element.
fn fixed_node_terms<const N: usize>(
    nodes: &[usize; N],
    (hb, kb): (&[[M3; N]; N], &[[M3; N]; N]),
    h: f64,
    m: &Model,
    lam: &[V3],
    out: &mut [V3],
) {
    for (a, &na) in nodes.iter().enumerate().filter(|(_, p)| !m.free(**p)) {
        for (b, &nb) in nodes.iter().enumerate() {
            let blk = combine(&hb[a][b], &kb[a][b], 1.0 / h);
            for r in 0..3 {
                out[na][r] -= (0..3).map(|c| blk[r][c] * lam[nb][c]).sum::<f64>();
            }
        }
    }
}

/// The midpoint rule is refused with friction: a sticking particle's half step has
/// `v_y ≈ 0`, so `vₙ₊₁ = 2v_y − vₙ` flips its velocity every step and the friction's lagged
/// terms chase it (Newton stalls within a few steps on a particle sliding to rest).
fn check_scheme(m: &Model, scheme: Scheme) -> Result<()> {
    if scheme == Scheme::Midpoint && m.contact.mu != 0.0 && !m.shapes.is_empty() {
        return Err(DiffsimError::config(
            "the implicit midpoint rule does not support friction (a sticking contact makes the velocity alternate sign): use backward Euler",
        ));
    }
    Ok(())
}

fn fail(e: impl std::fmt::Debug) -> DiffsimError {
    DiffsimError::config(format!("sparse Cholesky: {e:?}"))
}
