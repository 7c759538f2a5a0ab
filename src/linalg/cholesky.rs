//! Sparse Cholesky of a [`Stencil`] with faer: symbolic (AMD ordering) and numeric
//! factorisation once per operator, then any number of multi-RHS solves.

use super::{SolveError, stencil::Stencil};
use faer::prelude::*;
use faer::sparse::linalg::solvers::{Llt, SymbolicLlt};
use faer::sparse::{SparseColMat, Triplet};
use faer::{MatMut, Side};
use std::sync::atomic::{AtomicUsize, Ordering};

static FACTORIZATIONS: AtomicUsize = AtomicUsize::new(0);

/// Numeric Cholesky factorisations performed by this process so far (tests use it to prove
/// that steps, batch items and adjoints reuse one factor).
pub fn factorization_count() -> usize {
    FACTORIZATIONS.load(Ordering::Relaxed)
}

/// `A = L Lᵀ` of an SPD stencil operator.
#[derive(Debug)]
pub struct CholeskyFactor {
    llt: Llt<usize, f64>,
    n: usize,
}

impl CholeskyFactor {
    /// Factorises `stencil` (symbolic + numeric). Fails when `A` is not positive definite.
    pub fn new(stencil: &Stencil) -> Result<Self, SolveError> {
        let n = stencil.len();
        let trips: Vec<_> = stencil.lower_triplets().into_iter().map(|(r, c, v)| Triplet::new(r, c, v)).collect();
        let a = SparseColMat::<usize, f64>::try_new_from_triplets(n, n, &trips)
            .map_err(|e| SolveError::Factorization(format!("{e:?}")))?;
        let symbolic = SymbolicLlt::<usize>::try_new(a.symbolic(), Side::Lower)
            .map_err(|e| SolveError::Factorization(format!("{e:?}")))?;
        let llt = Llt::try_new_with_symbolic(symbolic, a.as_ref(), Side::Lower)
            .map_err(|e| SolveError::Factorization(format!("{e:?}")))?;
        FACTORIZATIONS.fetch_add(1, Ordering::Relaxed);
        Ok(Self { llt, n })
    }

    /// Solves `A X = B` in place for `batch` right-hand sides stored one after another
    /// (`x.len() == batch * n`, i.e. a column-major `n × batch` matrix). `A` is symmetric, so
    /// the same call solves the adjoint system `Aᵀ X = B`.
    pub fn solve_in_place(&self, x: &mut [f64], batch: usize) {
        assert_eq!(x.len(), self.n * batch, "right-hand side length");
        let m: MatMut<'_, f64> = MatMut::from_column_major_slice_mut(x, self.n, batch);
        self.llt.solve_in_place(m);
    }
}
