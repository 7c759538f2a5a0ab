//! Linear systems of the grid: 5-point SPD stencils (pressure Poisson, implicit diffusion),
//! their assembly from grid + boundaries + obstacles, and the solvers: faer sparse Cholesky
//! (symbolic and numeric factorisation once per operator, then multi-RHS solves) and
//! matrix-free (Jacobi-preconditioned) CG.

mod cg;
mod cholesky;
pub mod dense;
pub mod multigrid;
pub mod poisson;
pub mod solver;
mod stencil;

pub use cholesky::{CholeskyFactor, FactorScalar, factorization_count};
pub use dense::{DENSE_MAX_CELLS, DenseInverse};
pub use poisson::PoissonSystem;
pub use solver::{LinearSolver, SolveScalar};
pub use stencil::{Dir, Stencil};

use serde::{Deserialize, Serialize};

/// Which method solves `A x = b`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SolveMethod {
    /// faer sparse Cholesky: factor once per operator, then two triangular solves per right-hand side.
    #[default]
    Cholesky,
    /// Matrix-free conjugate gradients, no preconditioner.
    Cg,
    /// Matrix-free conjugate gradients with a Jacobi (diagonal) preconditioner.
    JacobiCg,
    /// One product with a precomputed dense inverse ([`DenseInverse`]): what GPU backends use
    /// for pressure solves on grids up to [`DENSE_MAX_CELLS`] cells. Reported, never configured.
    #[serde(skip_deserializing)]
    DenseInverse,
    /// Conjugate gradients preconditioned by an aggregation multigrid V-cycle
    /// ([`multigrid::Hierarchy`]), on the device: what GPU backends use for pressure and
    /// implicit-diffusion solves above [`DENSE_MAX_CELLS`] unknowns when a direct method is
    /// configured. Reported, never configured.
    #[serde(skip_deserializing)]
    MultigridCg,
}

/// How a linear system is solved. Serialisable (TOML `[solve]` table).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SolveConfig {
    /// Method.
    pub method: SolveMethod,
    /// Iterative methods stop when `max|r| <= abs_tol + rel_tol * max|b|`.
    pub rel_tol: f64,
    /// See `rel_tol`. The reference wake-flow code uses an absolute 1e-5.
    pub abs_tol: f64,
    /// Iterative methods fail with [`SolveError::NotConverged`] after this many iterations.
    pub max_iters: usize,
    /// Iterative methods start from the previous solution of the same operator.
    pub warm_start: bool,
}

impl Default for SolveConfig {
    fn default() -> Self {
        Self {
            method: SolveMethod::Cholesky,
            rel_tol: 1e-6,
            abs_tol: 1e-8,
            max_iters: 10_000,
            warm_start: true,
        }
    }
}

impl SolveConfig {
    /// CG with the given absolute tolerance (relative tolerance 0).
    pub fn cg(abs_tol: f64) -> Self {
        Self {
            method: SolveMethod::Cg,
            rel_tol: 0.0,
            abs_tol,
            ..Self::default()
        }
    }

    /// Rejects tolerances that are negative or non-finite, and a zero iteration cap.
    pub fn validate(&self) -> Result<(), SolveError> {
        if matches!(
            self.method,
            SolveMethod::DenseInverse | SolveMethod::MultigridCg
        ) {
            return Err(SolveError::Config(format!(
                "{:?} is chosen automatically for GPU solves; configure cholesky, cg or jacobi-cg",
                self.method
            )));
        }
        let tol_ok = |t: f64| t.is_finite() && t >= 0.0;
        if !tol_ok(self.rel_tol) || !tol_ok(self.abs_tol) || self.max_iters == 0 {
            return Err(SolveError::Config(format!(
                "solver tolerances must be finite and >= 0 and max_iters > 0 (got rel_tol {}, abs_tol {}, max_iters {})",
                self.rel_tol, self.abs_tol, self.max_iters
            )));
        }
        if self.method != SolveMethod::Cholesky && self.rel_tol == 0.0 && self.abs_tol == 0.0 {
            return Err(SolveError::Config(
                "an iterative solve needs rel_tol or abs_tol > 0".into(),
            ));
        }
        Ok(())
    }
}

/// Statistics of one (possibly batched) solve.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SolveInfo {
    /// Method used.
    pub method: SolveMethod,
    /// Iterations (the maximum over batch items; 0 for Cholesky).
    pub iterations: usize,
    /// Final `max|b - A x|` over batch items (Cholesky: the last measurement, taken on the
    /// first solve and every [`solver::RESIDUAL_CHECK_EVERY`]-th; a GPU multigrid solve with a
    /// relative tolerance checks itself on the device, returns NaN where it misses the
    /// tolerance, and reports the relative residual its calibration reached).
    pub residual: f64,
    /// Right-hand sides solved.
    pub batch: usize,
}

/// A failed solve. Never a silent result.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SolveError {
    /// An iterative solve hit its iteration cap.
    #[error(
        "{method:?} did not converge: residual {residual:.3e} > tolerance {tolerance:.3e} after {iterations} iterations; raise max_iters, loosen the tolerance or use method = \"cholesky\""
    )]
    NotConverged {
        method: SolveMethod,
        iterations: usize,
        residual: f64,
        tolerance: f64,
    },
    /// The matrix could not be factorised (not positive definite).
    #[error(
        "sparse Cholesky factorisation failed: {0}; the operator is singular or not positive definite"
    )]
    Factorization(String),
    /// The right-hand side or the solution contains NaN or infinity.
    #[error("non-finite values in the {0} of a linear solve")]
    NonFinite(&'static str),
    /// An invalid [`SolveConfig`].
    #[error("{0}")]
    Config(String),
}
