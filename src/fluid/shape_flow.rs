//! The controlled flow of the shape-transition problem (Holl et al. 2020; the authors' revised
//! notebook): a marker density `ρ: [B, ny, nx]` on an open grid of unit cells, moved every step
//! by the divergence-free velocity of a scalar potential that a network chooses. No pressure
//! solve: the velocity is the staggered curl of the potential, and physical consistency
//! enters only through the force loss, which asks each step's velocity to be the previous one
//! advected by itself.
//!
//! Conventions are PhiFlow 1.x's for an open domain: the network's centred potential
//! `ψ: [B, ny, nx]` is read as the values at the cells' lower-left corners, with zero on the
//! missing top row and right column ([`ShapeFlow::velocity`]); density and velocity are zero
//! beyond the edges; advection is semi-Lagrangian with bilinear interpolation.

use crate::error::Result;
use crate::grid::{ArraySpec, Extrap, Grid, Location, Resolution};
use crate::ops::{self, AdvectScheme, AdvectSpec, DensityLoss, density_loss, staggered_curl};
use burn::tensor::Tensor;
use burn::tensor::ops::PadMode;

/// The notebook's target-loss width: `exp(−k²/(2·0.01²))` per axis, `k` in cycles per cell.
pub const TARGET_SIGMA: f64 = 0.01;

/// A marker moved by potential flow on an open `n×n` grid of unit cells.
#[derive(Clone, Debug)]
pub struct ShapeFlow {
    /// The grid (`dx = 1`).
    pub grid: Grid,
    /// Time step.
    pub dt: f64,
    rho: ArraySpec,
    u: ArraySpec,
    v: ArraySpec,
}

impl ShapeFlow {
    /// A `nx × ny` grid of unit cells with time step `dt`.
    pub fn new(res: Resolution, dt: f64) -> Result<Self> {
        let grid = Grid::new(res, [res.nx as f64, res.ny as f64])?;
        let zero = [Extrap::Value(0.0); 4];
        Ok(Self {
            rho: ArraySpec::new(&grid, Location::Center, zero),
            u: ArraySpec::new(&grid, Location::FaceX, zero),
            v: ArraySpec::new(&grid, Location::FaceY, zero),
            grid,
            dt,
        })
    }

    /// The notebook's setting: 64x64, `dt = 1`.
    pub fn notebook() -> Self {
        Self::new(Resolution::new(64, 64), 1.0).expect("a valid grid")
    }

    /// The staggered velocity `(u [B, ny, nx+1], v [B, ny+1, nx])` of the centred potential
    /// `psi: [B, ny, nx]` (corner values, zero on the missing top row and right column).
    pub fn velocity(&self, psi: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        let nodes = psi.pad([(0, 1), (0, 1)], PadMode::Constant(0.0));
        staggered_curl(nodes, self.grid.dx)
    }

    fn spec(&self, q: ArraySpec) -> AdvectSpec {
        AdvectSpec {
            q,
            u: self.u,
            v: self.v,
            dt_dx: self.dt / self.grid.dx,
            scheme: AdvectScheme::SemiLagrangian,
        }
    }

    /// `ρ` advected over one step by `(u, v)`.
    pub fn advect(&self, rho: Tensor<3>, u: Tensor<3>, v: Tensor<3>) -> Tensor<3> {
        ops::advect(rho, u, v, self.spec(self.rho))
    }

    /// One controlled step: `(ρ', u, v)` with `(u, v)` the velocity of `psi`.
    pub fn step(&self, rho: Tensor<3>, psi: Tensor<3>) -> (Tensor<3>, Tensor<3>, Tensor<3>) {
        let (u, v) = self.velocity(psi);
        (self.advect(rho, u.clone(), v.clone()), u, v)
    }

    /// `(u, v)` advected by itself over one step: where the velocity would be without force.
    pub fn natural(&self, u: Tensor<3>, v: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        let ua = ops::advect(u.clone(), u.clone(), v.clone(), self.spec(self.u));
        let va = ops::advect(v.clone(), u, v, self.spec(self.v));
        (ua, va)
    }

    /// The notebook's force loss of a run's velocities `(u_t, v_t)`, `t = 1 … n`: the mean over
    /// consecutive pairs of `½·Σ (natural(v_t) − v_{t+1})²`, averaged over the batch; `None`
    /// with fewer than two velocities.
    pub fn force_loss(&self, velocities: &[(Tensor<3>, Tensor<3>)]) -> Option<Tensor<1>> {
        let pairs = velocities.len().checked_sub(1).filter(|&p| p > 0)?;
        let batch = velocities[0].0.dims()[0] as f64;
        let total = velocities
            .windows(2)
            .map(|w| {
                let (ua, va) = self.natural(w[0].0.clone(), w[0].1.clone());
                let (du, dv) = (ua - w[1].0.clone(), va - w[1].1.clone());
                (du.clone() * du).sum() + (dv.clone() * dv).sum()
            })
            .reduce(|a, b| a + b)?;
        Some(total * (0.5 / (batch * pairs as f64)))
    }

    /// The notebook's target loss per item: the frequency-weighted power of `target − rho`
    /// (see [`crate::ops::ControlOps::spectral_loss`]), `[B]`.
    pub fn target_loss(&self, target: Tensor<3>, rho: Tensor<3>) -> Tensor<1> {
        density_loss(
            target - rho,
            DensityLoss::Spectral {
                sigma: TARGET_SIGMA,
            },
        )
    }
}

/// Per item, `(Σ|ρ − ρ*|, Σ|ρ₀ − ρ*|)` (`[B, ny, nx]` each): the numerator and denominator of
/// [`relative_mae`].
pub fn mae_sums(rho: Tensor<3>, target: Tensor<3>, start: Tensor<3>) -> Vec<(f64, f64)> {
    let per_item = |t: Tensor<3>| -> Vec<f64> {
        let b = t.dims()[0];
        t.abs()
            .reshape([b as i32, -1])
            .sum_dim(1)
            .into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .expect("f64")
    };
    let (err, base) = (per_item(rho - target.clone()), per_item(start - target));
    err.into_iter().zip(base).collect()
}

/// Relative final-density error per item: `Σ|ρ − ρ*| / Σ|ρ₀ − ρ*|` (`[B, ny, nx]` each).
pub fn relative_mae(rho: Tensor<3>, target: Tensor<3>, start: Tensor<3>) -> Vec<f64> {
    mae_sums(rho, target, start)
        .into_iter()
        .map(|(e, b)| e / b.max(1e-30))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::divergence;
    use burn::tensor::{DType, Device, Distribution, FloatDType, TensorData};

    #[test]
    fn velocity_is_phiflows_curl_and_divergence_free() {
        let dev = Device::flex();
        let flow = ShapeFlow::new(Resolution::new(6, 5), 1.0).unwrap();
        let psi = Tensor::<3>::random([1, 5, 6], Distribution::Normal(0.0, 1.0), &dev)
            .cast(FloatDType::F64);
        let p: Vec<f64> = psi.clone().into_data().try_to_vec::<f64>().unwrap();
        let (u, v) = flow.velocity(psi);
        let (u, v): (Vec<f64>, Vec<f64>) = (
            u.into_data().try_to_vec::<f64>().unwrap(),
            v.into_data().try_to_vec::<f64>().unwrap(),
        );
        // PhiFlow 1.x: the potential padded by (1, 2) with zeros, convolved with [0, 1, −1]
        // along x for the y-component and [0, −1, 1] along y for the x-component.
        let at = |j: usize, i: usize| if j < 5 && i < 6 { p[j * 6 + i] } else { 0.0 };
        for j in 0..5 {
            for i in 0..=6 {
                assert!((u[j * 7 + i] - (at(j + 1, i) - at(j, i))).abs() < 1e-14);
            }
        }
        for j in 0..=5 {
            for i in 0..6 {
                assert!((v[j * 6 + i] - (at(j, i) - at(j, i + 1))).abs() < 1e-14);
            }
        }
        let (u, v) = (
            Tensor::<3>::from_data(TensorData::new(u, [1, 5, 7]), (&dev, DType::F64)),
            Tensor::<3>::from_data(TensorData::new(v, [1, 6, 6]), (&dev, DType::F64)),
        );
        let div: f64 = divergence(u, v, 1.0).abs().max().into_scalar::<f64>();
        assert!(div < 1e-12, "divergence {div}");
    }

    #[test]
    fn uniform_flow_moves_a_block_one_cell_per_unit_speed() {
        // ψ = y gives u = ψ[j+1] − ψ[j] = 1 and v = 0 away from the top row and right
        // column: a block of density moves one cell along x per step.
        let dev = Device::flex();
        let flow = ShapeFlow::new(Resolution::new(16, 16), 1.0).unwrap();
        let psi: Vec<f64> = (0..256).map(|k| (k / 16) as f64).collect();
        let psi = Tensor::<3>::from_data(TensorData::new(psi, [1, 16, 16]), &dev);
        let mut rho = vec![0.0f64; 256];
        for j in 6..9 {
            for i in 4..7 {
                rho[j * 16 + i] = 1.0;
            }
        }
        let rho = Tensor::<3>::from_data(TensorData::new(rho.clone(), [1, 16, 16]), &dev);
        let (moved, _, _) = flow.step(rho, psi);
        let m: Vec<f64> = moved
            .into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .unwrap();
        for j in 6..9 {
            assert_eq!(&m[j * 16 + 4..j * 16 + 8], &[0.0, 1.0, 1.0, 1.0], "row {j}");
        }
    }
}
