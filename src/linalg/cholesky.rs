//! Sparse Cholesky of a [`Stencil`] with faer: symbolic (AMD ordering) and numeric
//! factorisation once per operator, then any number of multi-RHS solves.

use super::{SolveError, stencil::Stencil};
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::LltRegularization;
use faer::sparse::linalg::SupernodalThreshold;
use faer::sparse::linalg::cholesky::{
    CholeskySymbolicParams, SymbolicCholeskyRaw, SymmetricOrdering, factorize_symbolic_cholesky,
};
use faer::sparse::{SparseColMat, Triplet};
use faer::{Par, Side};
use std::sync::atomic::{AtomicUsize, Ordering};

static FACTORIZATIONS: AtomicUsize = AtomicUsize::new(0);

/// Numeric Cholesky factorisations performed by this process so far.
pub fn factorization_count() -> usize {
    FACTORIZATIONS.load(Ordering::Relaxed)
}

/// `P A Pᵀ = L Lᵀ` of an SPD stencil operator (AMD ordering `P`), held as two gather-form
/// triangular factors (in f64, and rounded to f32 for f32 right-hand sides: half the memory
/// traffic per solve, backward error at f32 round-off).
#[derive(Debug)]
pub struct CholeskyFactor {
    l64: Triangular<f64>,
    l32: Triangular<f32>,
    n: usize,
}

/// The strictly lower part of `L` by rows and by columns, both relabelled to the caller's
/// (unpermuted) unknowns, and `1/diag(L)`. Both triangular solves are then gathers
/// (`x[i] = (b[i] − Σ l·x[k])·d⁻¹`): no scatter, no permutation copies.
///
/// faer's simplicial solve scatters by columns and permutes through a scratch vector. On the
/// wake Poisson matrices, per f32 right-hand side (`cargo bench --bench fluid --
/// pressure_solve`): 32x64 (nnz(L) = 25,870) 37.8 µs with faer, 27.5 µs here; 128x256
/// 1061 µs vs 891 µs. A single running sum instead of [`gather_dot`]'s four: 40 µs.
#[derive(Debug)]
struct Triangular<T> {
    /// `order[i]`: the unknown eliminated `i`-th (`Pᵀ`).
    order: Vec<u32>,
    inv_diag: Vec<T>,
    /// Row `i` of `L` (strict part), in CSR with unknowns as column labels.
    row_ptr: Vec<u32>,
    row_idx: Vec<u32>,
    row_val: Vec<T>,
    /// Column `i` of `L` (strict part), in CSC with unknowns as row labels.
    col_ptr: Vec<u32>,
    col_idx: Vec<u32>,
    col_val: Vec<T>,
}

impl<T: FactorScalar> Triangular<T> {
    /// From faer's simplicial `L` (`col_ptr`, `row_idx`, `values`, diagonal first in each
    /// column) and its ordering.
    fn new(col_ptr: &[u32], row_idx: &[u32], values: &[f64], order: Vec<u32>) -> Self {
        let n = order.len();
        let cast = |v: f64| T::from_f64(v).expect("finite factor");
        let mut inv_diag = Vec::with_capacity(n);
        let (mut col_idx, mut col_val) = (Vec::new(), Vec::new());
        let mut new_col_ptr = vec![0u32];
        let mut row_count = vec![0u32; n + 1];
        for j in 0..n {
            let range = col_ptr[j] as usize..col_ptr[j + 1] as usize;
            debug_assert_eq!(row_idx[range.start] as usize, j, "diagonal first");
            inv_diag.push(cast(1.0 / values[range.start]));
            for k in range.start + 1..range.end {
                let i = row_idx[k] as usize;
                col_idx.push(order[i]);
                col_val.push(cast(values[k]));
                row_count[i + 1] += 1;
            }
            new_col_ptr.push(col_idx.len() as u32);
        }
        let mut row_ptr = row_count;
        for i in 0..n {
            row_ptr[i + 1] += row_ptr[i];
        }
        let mut fill = row_ptr.clone();
        let mut row_idx_out = vec![0u32; col_idx.len()];
        let mut row_val = vec![T::from_f64(0.0).expect("zero"); col_idx.len()];
        for j in 0..n {
            for k in col_ptr[j] as usize + 1..col_ptr[j + 1] as usize {
                let i = row_idx[k] as usize;
                let slot = fill[i] as usize;
                row_idx_out[slot] = order[j];
                row_val[slot] = cast(values[k]);
                fill[i] += 1;
            }
        }
        Self {
            order,
            inv_diag,
            row_ptr,
            row_idx: row_idx_out,
            row_val,
            col_ptr: new_col_ptr,
            col_idx,
            col_val,
        }
    }

    /// `x ← A⁻¹ x` for one right-hand side: `L y = P x`, then `Lᵀ z = y`, `x = Pᵀ z`, all on
    /// `x`'s own labels.
    fn solve_in_place(&self, x: &mut [T]) {
        for (i, &xi) in self.order.iter().enumerate() {
            let range = self.row_ptr[i] as usize..self.row_ptr[i + 1] as usize;
            let dot = gather_dot(&self.row_idx[range.clone()], &self.row_val[range], x);
            x[xi as usize] = (x[xi as usize] - dot) * self.inv_diag[i];
        }
        for (i, &xi) in self.order.iter().enumerate().rev() {
            let range = self.col_ptr[i] as usize..self.col_ptr[i + 1] as usize;
            let dot = gather_dot(&self.col_idx[range.clone()], &self.col_val[range], x);
            x[xi as usize] = (x[xi as usize] - dot) * self.inv_diag[i];
        }
    }
}

/// `Σ val[k]·x[idx[k]]` with four independent partial sums (a single running sum is a chain
/// of dependent adds, the latency bound of the solve).
#[inline(always)]
fn gather_dot<T: FactorScalar>(idx: &[u32], val: &[T], x: &[T]) -> T {
    let mut acc = [T::zero(); 4];
    let (ic, ir) = idx.as_chunks::<4>();
    let (vc, vr) = val.as_chunks::<4>();
    for (i4, v4) in ic.iter().zip(vc) {
        for q in 0..4 {
            acc[q] += v4[q] * x[i4[q] as usize];
        }
    }
    let mut tail = T::zero();
    for (&i, &v) in ir.iter().zip(vr) {
        tail += v * x[i as usize];
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Element types the factor solves in: f64, and f32 with the rounded copy of the factor.
pub trait FactorScalar:
    num_traits::Float + num_traits::NumAssign + num_traits::FromPrimitive + Send + Sync + 'static
{
    /// `x ← A⁻¹ x` (one right-hand side) with the factor in this type.
    fn solve_one(f: &CholeskyFactor, x: &mut [Self]);
}

impl FactorScalar for f64 {
    fn solve_one(f: &CholeskyFactor, x: &mut [f64]) {
        f.l64.solve_in_place(x)
    }
}

impl FactorScalar for f32 {
    fn solve_one(f: &CholeskyFactor, x: &mut [f32]) {
        f.l32.solve_in_place(x)
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
        let SymbolicCholeskyRaw::Simplicial(l) = symbolic.raw() else {
            unreachable!("the simplicial variant is forced");
        };
        let order: Vec<u32> = match symbolic.perm() {
            Some(p) => p.arrays().0.to_vec(),
            None => (0..n as u32).collect(),
        };
        Ok(Self {
            l64: Triangular::new(l.col_ptr(), l.row_idx(), &values, order.clone()),
            l32: Triangular::new(l.col_ptr(), l.row_idx(), &values, order),
            n,
        })
    }

    /// Solves `A X = B` in place for `batch` right-hand sides stored one after another
    /// (`x.len() == batch * n`, a column-major `n × batch` matrix); blocks of right-hand sides
    /// run on separate rayon threads. `A` is symmetric, so the same call solves `Aᵀ X = B`.
    pub fn solve_in_place<T: FactorScalar>(&self, x: &mut [T], batch: usize) {
        assert_eq!(x.len(), self.n * batch, "right-hand side length");
        if batch == 1 {
            T::solve_one(self, x);
        } else {
            use rayon::prelude::*;
            x.par_chunks_mut(self.n).for_each(|b| T::solve_one(self, b));
        }
    }
}
