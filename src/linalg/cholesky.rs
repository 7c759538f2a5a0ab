//! Sparse Cholesky of a [`Stencil`] with faer: symbolic (AMD ordering) and numeric
//! factorisation once per operator, then any number of multi-RHS solves.

use super::{SolveError, stencil::Stencil};
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::LltRegularization;
use faer::sparse::linalg::SupernodalThreshold;
use faer::sparse::linalg::cholesky::{
    CholeskySymbolicParams, LltRef, SymbolicCholesky, SymmetricOrdering,
    factorize_symbolic_cholesky,
};
use faer::sparse::{SparseColMat, Triplet};
use faer::{Conj, MatMut, Par, Side};
use std::sync::atomic::{AtomicUsize, Ordering};

static FACTORIZATIONS: AtomicUsize = AtomicUsize::new(0);

/// Numeric Cholesky factorisations performed by this process so far.
pub fn factorization_count() -> usize {
    FACTORIZATIONS.load(Ordering::Relaxed)
}

/// `P A Pᵀ = L Lᵀ` of an SPD stencil operator (AMD ordering `P`).
#[derive(Debug)]
pub struct CholeskyFactor {
    symbolic: SymbolicCholesky<u32>,
    values: Vec<f64>,
    /// `values` rounded to f32, for f32 right-hand sides (half the memory traffic per solve;
    /// the backward error stays at f32 round-off).
    values32: Vec<f32>,
    n: usize,
}

/// Element types the factor solves in: f64, and f32 with the rounded copy of the factor.
pub trait FactorScalar: faer::traits::ComplexField + Copy + Send + Sync + 'static {
    /// The factor's values in this type.
    fn values(f: &CholeskyFactor) -> &[Self];
}

impl FactorScalar for f64 {
    fn values(f: &CholeskyFactor) -> &[f64] {
        &f.values
    }
}

impl FactorScalar for f32 {
    fn values(f: &CholeskyFactor) -> &[f32] {
        &f.values32
    }
}

fn fail(e: impl std::fmt::Debug) -> SolveError {
    SolveError::Factorization(format!("{e:?}"))
}

impl CholeskyFactor {
    /// Factorises `stencil` (symbolic + numeric). Fails when `A` is not positive definite.
    ///
    /// The simplicial variant is forced: factorising costs more than the supernodal one, but it
    /// happens once, and its triangular solves were faster here (128x256 wake Poisson matrix:
    /// 1.1–2.0 ms vs 3.3–4.6 ms per solve; 32x64: equal). faer's inner parallelism is off
    /// ([`Par::Seq`]; with rayon a 16-RHS solve at 128x256 took 16 ms per RHS instead of
    /// 0.6 ms): diffsim parallelises over right-hand sides instead.
    pub fn new(stencil: &Stencil) -> Result<Self, SolveError> {
        let n = stencil.len();
        if n > u32::MAX as usize / 8 {
            return Err(SolveError::Factorization(format!(
                "{n} unknowns exceed the 32-bit sparse indices"
            )));
        }
        let trips: Vec<_> = stencil
            .lower_triplets()
            .into_iter()
            .map(|(r, c, v)| Triplet::new(r as u32, c as u32, v))
            .collect();
        let a = SparseColMat::<u32, f64>::try_new_from_triplets(n, n, &trips).map_err(fail)?;
        let params = CholeskySymbolicParams {
            supernodal_flop_ratio_threshold: SupernodalThreshold::FORCE_SIMPLICIAL,
            ..Default::default()
        };
        let symbolic =
            factorize_symbolic_cholesky(a.symbolic(), Side::Lower, SymmetricOrdering::Amd, params)
                .map_err(fail)?;
        let mut values = vec![0.0; symbolic.len_val()];
        let mut buf = MemBuffer::new(
            symbolic.factorize_numeric_llt_scratch::<f64>(Par::Seq, Default::default()),
        );
        symbolic
            .factorize_numeric_llt(
                &mut values,
                a.as_ref(),
                Side::Lower,
                LltRegularization::default(),
                Par::Seq,
                MemStack::new(&mut buf),
                Default::default(),
            )
            .map_err(fail)?;
        FACTORIZATIONS.fetch_add(1, Ordering::Relaxed);
        let values32 = values.iter().map(|&x| x as f32).collect();
        Ok(Self {
            symbolic,
            values,
            values32,
            n,
        })
    }

    /// Solves `A X = B` in place for `batch` right-hand sides stored one after another
    /// (`x.len() == batch * n`, a column-major `n × batch` matrix); blocks of right-hand sides
    /// run on separate rayon threads. `A` is symmetric, so the same call solves `Aᵀ X = B`.
    pub fn solve_in_place<T: FactorScalar>(&self, x: &mut [T], batch: usize) {
        assert_eq!(x.len(), self.n * batch, "right-hand side length");
        let solve = |block: &mut [T]| {
            let cols = block.len() / self.n;
            let mut buf = MemBuffer::new(self.symbolic.solve_in_place_scratch::<T>(cols, Par::Seq));
            let m: MatMut<'_, T> = MatMut::from_column_major_slice_mut(block, self.n, cols);
            LltRef::new(&self.symbolic, T::values(self)).solve_in_place_with_conj(
                Conj::No,
                m,
                Par::Seq,
                MemStack::new(&mut buf),
            );
        };
        if batch == 1 {
            solve(x);
        } else {
            use rayon::prelude::*;
            let per = batch.div_ceil(rayon::current_num_threads().max(1));
            x.par_chunks_mut(per * self.n).for_each(solve);
        }
    }
}
