//! The pressure solve as one dense matrix, for GPU backends on small grids: a projection's
//! solve becomes one matrix product (no iterations, no host round trip), and its adjoint the
//! product with the transpose.
//!
//! The matrix is `M = A_p⁻¹ Π`, where `A_p` is the pinned Poisson operator of
//! [`PoissonSystem`] and `Π` removes the mean of each floating region (the range projection
//! the CPU path applies to the right-hand side before its solve). So `p = M·rhs` equals the
//! CPU solution for any raw right-hand side, and the CPU adjoint `Π·A_p⁻¹·p̄` is `Mᵀ·p̄`.

use super::{CholeskyFactor, PoissonSystem, SolveError, Stencil};

/// Largest system (unknowns) solved with a dense inverse on GPU backends (pressure projections,
/// implicit diffusion): the f32 matrix then takes at most 256 MiB (64x128 cells).
pub const DENSE_MAX_CELLS: usize = 64 * 128;

/// `Mᵀ = (A_p⁻¹ Π)ᵀ` of one Poisson system, row-major `[n, n]`, and its accuracy.
#[derive(Debug)]
pub struct DenseInverse {
    /// Unknowns (cells).
    pub n: usize,
    /// `Mᵀ` row-major: row `k` is `M e_k`, so a batch of right-hand sides stored as rows
    /// `R: [B, n]` solves as `P = R·Mᵀ`.
    pub transposed: Vec<f64>,
    /// `max|A_p M b − Π b| / max|b|` for a pseudo-random `b`, measured when it was built (f64).
    pub residual: f64,
}

impl DenseInverse {
    /// Builds the matrix of a Poisson system from a Cholesky factorisation of its operator (`n`
    /// solves).
    pub fn new(sys: &PoissonSystem) -> Result<Self, SolveError> {
        Self::of(&sys.stencil, &sys.floating)
    }

    /// `(A⁻¹Π)ᵀ` of an SPD stencil `A`, `Π` removing the mean of each of `floating`'s regions
    /// (none: plain `A⁻¹`).
    pub fn of(stencil: &Stencil, floating: &[Vec<u32>]) -> Result<Self, SolveError> {
        let n = stencil.len();
        let factor = CholeskyFactor::new(stencil)?;
        let mut m = vec![0.0f64; n * n];
        for (k, row) in m.chunks_exact_mut(n).enumerate() {
            row[k] = 1.0;
        }
        for region in floating {
            let w = 1.0 / region.len() as f64;
            for &k in region {
                let row = &mut m[k as usize * n..(k as usize + 1) * n];
                region.iter().for_each(|&c| row[c as usize] -= w);
            }
        }
        factor.solve_in_place(&mut m, n);
        let mut dense = Self {
            n,
            transposed: m,
            residual: 0.0,
        };
        dense.residual = dense.check(stencil, floating);
        Ok(dense)
    }

    /// `p = M·rhs` for one right-hand side (f64, on the host).
    pub fn apply(&self, rhs: &[f64]) -> Vec<f64> {
        let mut p = vec![0.0; self.n];
        for (&r, row) in rhs.iter().zip(self.transposed.chunks_exact(self.n)) {
            p.iter_mut().zip(row).for_each(|(p, m)| *p += r * m);
        }
        p
    }

    /// Relative residual of `A_p M b = Π b` for a fixed pseudo-random `b`.
    fn check(&self, stencil: &Stencil, floating: &[Vec<u32>]) -> f64 {
        let b: Vec<f64> = (0..self.n)
            .map(|k| ((k as f64 * 0.618_034).fract() - 0.5) * 2.0)
            .collect();
        let mut projected = b.clone();
        for region in floating {
            let mean = region.iter().map(|&c| b[c as usize]).sum::<f64>() / region.len() as f64;
            region.iter().for_each(|&c| projected[c as usize] -= mean);
        }
        let x = self.apply(&b);
        let mut ax = vec![0.0; self.n];
        stencil.apply(&x, &mut ax);
        let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        ax.iter()
            .zip(&projected)
            .fold(0.0f64, |m, (a, p)| m.max((a - p).abs()))
            / scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::{Boundaries, Geometry, Grid, Resolution, SideBc, SolidMask};

    /// `M·rhs` equals the Cholesky solution of the range-projected right-hand side, on a
    /// closed box cut in two by a wall (two floating regions), a periodic box, and an open
    /// channel with a disc.
    #[test]
    fn dense_inverse_equals_the_projected_cholesky_solve() {
        let grid = Grid::new(Resolution::new(12, 8), [12.0, 8.0]).unwrap();
        let wall = Geometry::Box {
            min: [5.2, -1.0],
            max: [5.8, 9.0],
        };
        let disc = Geometry::Disc {
            center: [6.0, 4.0],
            radius: 1.5,
        };
        for (bc, obstacle, regions) in [
            (SideBc::Dirichlet(0.0), wall, 2),
            (SideBc::Periodic, disc, 1),
            (SideBc::Open, disc, 0),
        ] {
            let solid = SolidMask::new(grid, &[obstacle]).unwrap();
            let sys = PoissonSystem::new(&Boundaries::all(bc), &solid);
            assert_eq!(sys.floating.len(), regions);
            let dense = DenseInverse::new(&sys).unwrap();
            assert!(dense.residual < 1e-12, "residual {}", dense.residual);
            let raw: Vec<f64> = (0..grid.cells()).map(|k| (k as f64 * 0.37).sin()).collect();
            let mut rhs = raw.clone();
            for region in &sys.floating {
                let mean =
                    region.iter().map(|&c| rhs[c as usize]).sum::<f64>() / region.len() as f64;
                region.iter().for_each(|&c| rhs[c as usize] -= mean);
            }
            CholeskyFactor::new(&sys.stencil)
                .unwrap()
                .solve_in_place(&mut rhs, 1);
            let p = dense.apply(&raw);
            let err = p
                .iter()
                .zip(&rhs)
                .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
            assert!(err < 1e-11, "{bc:?}: dense vs Cholesky {err}");
        }
    }
}
