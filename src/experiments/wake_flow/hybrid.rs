//! The hybrid solver `s̃ₜ₊₁ = P(s̃ₜ) + C(P(s̃ₜ), Re)` (docs/wake-flow.md §3): the source solver `P`
//! on the down-sampled grid, one [`Simulation`] per Reynolds number (their viscosities
//! differ), and the corrector network `C` run on the whole batch at once.
//!
//! Features (docs/wake-flow.md §3): `[v_y / std|v|, v_x / std|u|, Re / re_std]` on the cell grid (the lower
//! and left face of each cell: the staggered arrays without their last row / column). The
//! network's two output channels, times the same stds, are added to those faces; the last row
//! of `v` and the last column of `u` get no correction.

use super::dataset::NormStats;
use crate::error::Result;
use crate::fluid::{FluidState, Reads, Simulation};
use burn::tensor::Tensor;

/// Input features `[B, 3, ny, nx]` of a batch of single-item states with their Reynolds
/// numbers.
pub fn features(states: &[FluidState], reynolds: &[f64], stats: &NormStats) -> Tensor<4> {
    let items: Vec<Tensor<4>> = states
        .iter()
        .zip(reynolds)
        .map(|(s, &re)| {
            let [_, ny, nx1] = s.u.dims();
            let nx = nx1 - 1;
            let u = s.u.clone().narrow(2, 0, nx).div_scalar(stats.std_abs_u);
            let v = s.v.clone().narrow(1, 0, ny).div_scalar(stats.std_abs_v);
            let re = u.ones_like().mul_scalar(re / stats.re_std);
            Tensor::cat(vec![v, u, re], 0).unsqueeze_dim(0)
        })
        .collect();
    Tensor::cat(items, 0)
}

/// Adds the corrections `c: [B, 2, ny, nx]` (normalised units) to the states.
pub fn correct(states: Vec<FluidState>, c: Tensor<4>, stats: &NormStats) -> Vec<FluidState> {
    states
        .into_iter()
        .enumerate()
        .map(|(b, s)| {
            let [_, ny, nx1] = s.u.dims();
            let item = c.clone().narrow(0, b, 1).squeeze_dim::<3>(0);
            let dv = item.clone().narrow(0, 0, 1).mul_scalar(stats.std_abs_v);
            let du = item.narrow(0, 1, 1).mul_scalar(stats.std_abs_u);
            let dv = Tensor::cat(vec![dv.clone(), dv.narrow(1, 0, 1).zeros_like()], 1);
            let du = Tensor::cat(vec![du.clone(), du.narrow(2, 0, 1).zeros_like()], 2);
            debug_assert_eq!(du.dims(), [1, ny, nx1]);
            FluidState {
                u: s.u + du,
                v: s.v + dv,
                ..s
            }
        })
        .collect()
}

/// One step of the source solver for every item (`sims[b]` steps item `b`), velocity only.
pub fn source_step(sims: &[&Simulation], states: Vec<FluidState>) -> Result<Vec<FluidState>> {
    states
        .into_iter()
        .zip(sims)
        .map(|(s, sim)| Ok(sim.step_for(s, Reads::Velocity)?.0))
        .collect()
}
