//! [`LinearSolver`]: one SPD operator, its configured method, its cached factorisation and the
//! statistics of its last solve.

use super::cholesky::FactorScalar;
use super::{
    SolveConfig, SolveError, SolveInfo, SolveMethod, cg, cholesky::CholeskyFactor, stencil::Stencil,
};
use rayon::prelude::*;
use std::sync::{Mutex, OnceLock};

/// Solves `A x = b` for one fixed operator, as often as needed.
///
/// With [`SolveMethod::Cholesky`] the factorisation happens once, on the first solve (GPU
/// backends, which solve on the device, never pay for it), and every later solve (every step,
/// every batch item, the adjoint) reuses it. Iterative methods
/// keep the last solution as the next initial guess when `warm_start` is set.
#[derive(Debug)]
pub struct LinearSolver {
    stencil: Stencil,
    config: SolveConfig,
    factor: OnceLock<Result<CholeskyFactor, SolveError>>,
    warm: Mutex<Vec<f64>>,
    last: Mutex<Option<Result<SolveInfo, SolveError>>>,
    solves: std::sync::atomic::AtomicUsize,
    cholesky_residual: Mutex<f64>,
}

/// Element types a [`LinearSolver`] solves in (f64; f32 with the f32 copy of a Cholesky
/// factor, iterative methods run in f64).
pub trait SolveScalar: FactorScalar + Into<f64> {
    /// Whether every element is finite, as an integer OR over the exponent bits (vectorises,
    /// unlike a short-circuiting float test).
    fn all_finite(x: &[Self]) -> bool;
}
impl SolveScalar for f32 {
    fn all_finite(x: &[f32]) -> bool {
        const EXP: u32 = 0x7f80_0000;
        x.iter()
            .fold(0u32, |bad, v| bad | u32::from(v.to_bits() & EXP == EXP))
            == 0
    }
}
impl SolveScalar for f64 {
    fn all_finite(x: &[f64]) -> bool {
        const EXP: u64 = 0x7ff0_0000_0000_0000;
        x.iter()
            .fold(0u64, |bad, v| bad | u64::from(v.to_bits() & EXP == EXP))
            == 0
    }
}

/// Direct solves measure their residual on the first call and then on every this-many calls.
pub const RESIDUAL_CHECK_EVERY: usize = 64;

impl LinearSolver {
    /// Prepares a solver (a Cholesky factorisation waits for the first solve).
    pub fn new(stencil: Stencil, config: SolveConfig) -> Result<Self, SolveError> {
        config.validate()?;
        Ok(Self {
            stencil,
            config,
            factor: OnceLock::new(),
            warm: Mutex::new(Vec::new()),
            last: Mutex::new(None),
            solves: Default::default(),
            cholesky_residual: Mutex::new(0.0),
        })
    }

    /// The operator.
    pub fn stencil(&self) -> &Stencil {
        &self.stencil
    }

    /// Numeric factorisations this solver holds (1 for Cholesky once it solved, 0 for
    /// iterative methods): every solve reuses them.
    pub fn factorizations(&self) -> usize {
        usize::from(matches!(self.factor.get(), Some(Ok(_))))
    }

    /// The Cholesky factor (made on the first call), or None for iterative methods.
    fn factor(&self) -> Option<Result<&CholeskyFactor, SolveError>> {
        (self.config.method == SolveMethod::Cholesky).then(|| {
            self.factor
                .get_or_init(|| CholeskyFactor::new(&self.stencil))
                .as_ref()
                .map_err(Clone::clone)
        })
    }

    /// Solve calls so far (each may carry many right-hand sides).
    pub fn solve_calls(&self) -> usize {
        self.solves.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The configuration.
    pub fn config(&self) -> &SolveConfig {
        &self.config
    }

    /// Solves in place for `batch` right-hand sides stored one after another (`[batch, n]`).
    /// The outcome is also kept for [`LinearSolver::take_last`].
    pub fn solve<T: SolveScalar>(
        &self,
        x: &mut [T],
        batch: usize,
    ) -> Result<SolveInfo, SolveError> {
        self.solves
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out = self.solve_inner(x, batch);
        *self.last.lock().expect("solver stats lock") = Some(out.clone());
        out
    }

    /// Takes the outcome of the last solve (None when there was none since the last call).
    /// Ops whose signature cannot return an error record it here; the stepper checks it.
    pub fn take_last(&self) -> Option<Result<SolveInfo, SolveError>> {
        self.last.lock().expect("solver stats lock").take()
    }

    /// Records the outcome of a solve done elsewhere (the tensor-op CG of the default bodies).
    pub fn record(&self, outcome: Result<SolveInfo, SolveError>) {
        *self.last.lock().expect("solver stats lock") = Some(outcome);
    }

    fn solve_inner<T: SolveScalar>(
        &self,
        x: &mut [T],
        batch: usize,
    ) -> Result<SolveInfo, SolveError> {
        let n = self.stencil.len();
        assert_eq!(x.len(), n * batch);
        if !T::all_finite(x) {
            return Err(SolveError::NonFinite("right-hand side"));
        }
        if let Some(f) = self.factor() {
            let f = f?;
            // The factor's backward error is measured on the first solve and every
            // RESIDUAL_CHECK_EVERY-th after it (a stencil pass and a copy of b, ~15% of a
            // small solve); the other solves report the last measurement.
            let calls = self.solves.load(std::sync::atomic::Ordering::Relaxed);
            let wide = |x: &[T]| x.iter().map(|&v| v.into()).collect::<Vec<f64>>();
            let b = (calls % RESIDUAL_CHECK_EVERY == 1).then(|| wide(x));
            f.solve_in_place(x, batch);
            let mut last = self.cholesky_residual.lock().expect("residual lock");
            if let Some(b) = b {
                *last = self.residual(&b, &wide(x));
            }
            if !T::all_finite(x) {
                return Err(SolveError::NonFinite("solution"));
            }
            return Ok(SolveInfo {
                method: SolveMethod::Cholesky,
                iterations: 0,
                residual: *last,
                batch,
            });
        }
        let b: Vec<f64> = x.iter().map(|&v| v.into()).collect();
        let mut xs = vec![0.0; x.len()];
        let mut warm = self.warm.lock().expect("warm start lock");
        let use_warm = self.config.warm_start && warm.len() == x.len();
        if use_warm {
            xs.copy_from_slice(&warm);
        }
        let results: Vec<_> = xs
            .par_chunks_mut(n)
            .zip(b.par_chunks(n))
            .map(|(xi, bi)| cg::solve(&self.stencil, bi, xi, &self.config))
            .collect();
        let mut info = SolveInfo {
            method: self.config.method,
            iterations: 0,
            residual: 0.0,
            batch,
        };
        for r in results {
            let (it, res) = r?;
            info.iterations = info.iterations.max(it);
            info.residual = info.residual.max(res);
        }
        if self.config.warm_start {
            warm.clear();
            warm.extend_from_slice(&xs);
        }
        for (x, v) in x.iter_mut().zip(&xs) {
            *x = T::from_f64(*v).expect("finite solution");
        }
        Ok(info)
    }

    /// `max|b − A x|` over a batch (for tests and diagnostics).
    pub fn residual(&self, b: &[f64], x: &[f64]) -> f64 {
        let n = self.stencil.len();
        let mut ax = vec![0.0; n];
        b.chunks(n)
            .zip(x.chunks(n))
            .map(|(bi, xi)| {
                self.stencil.apply(xi, &mut ax);
                bi.iter()
                    .zip(&ax)
                    .fold(0.0f64, |m, (b, a)| m.max((b - a).abs()))
            })
            .fold(0.0, f64::max)
    }
}
