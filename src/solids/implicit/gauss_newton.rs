//! Gauss-Newton through implicit rollouts: the dense Jacobian by adjoint sweeps, and sparse
//! Gauss-Newton (Zehnder et al. 2021) for fixed parameters and per-step controls.

use super::lagged::{Lagged, LaggedProbes, lagged_damping_jacobian};
use super::step::fail;
use super::step::{Implicit, ImplicitRollout, Scheme};
use crate::error::{DiffsimError, Result};
use crate::solids::math::V3;
use crate::solids::{Params, Rollout};
use faer::Mat;
use faer::Side;
use faer::linalg::solvers::Solve;
use faer::sparse::{SparseColMat, Triplet};

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
    pub(super) fn solve_point(&self, run: &Rollout, n: usize) -> Vec<V3> {
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
