//! Indirect control (Holl et al. 2020): a CFE chain drives a marker through an
//! [`IndirectFlow`], where the network's velocity counts only in the side strips and reaches
//! the marker through the pressure projection. As in the authors' indirect experiment, the
//! planned states are given (the straight-line keyframes of the data), not predicted: the
//! chain executes one step towards each planned frame from the state actually reached.

use crate::fluid::IndirectFlow;
use crate::nn::UNet2d;
use burn::tensor::Tensor;
use burn::tensor::ops::PadMode;

/// The CFE's raw staggered control `(u [B, n, n+1], v [B, n+1, n])` from `[ρ, planned ρ']`
/// (`[B, n, n]` each): the network's two output channels, extended by one cell at the high
/// end of both axes with the edge value (the authors' symmetric padding) and cut to the face
/// grids (channel 0 is `u`, channel 1 is `v`).
pub fn raw_control(net: &UNet2d, rho: Tensor<3>, planned: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
    let [b, ny, nx] = rho.dims();
    let y = net
        .forward(Tensor::stack::<4>(vec![rho, planned], 1))
        .pad([(0, 1), (0, 1)], PadMode::Edge);
    let u = y
        .clone()
        .narrow(1, 0, 1)
        .narrow(2, 0, ny)
        .reshape([b, ny, nx + 1]);
    let v = y.narrow(1, 1, 1).narrow(3, 0, nx).reshape([b, ny + 1, nx]);
    (u, v)
}

/// An executed chain: densities `ρ_0 … ρ_n` and the projected velocity of each step.
pub struct Chain {
    /// Densities `[B, n, n]`, one more than steps.
    pub densities: Vec<Tensor<3>>,
    /// `(u, v)` of each step after the projection.
    pub velocities: Vec<(Tensor<3>, Tensor<3>)>,
}

/// Executes one step towards each frame of `plan` from `start`.
pub fn execute_chain(
    flow: &IndirectFlow,
    cfe: &UNet2d,
    start: Tensor<3>,
    plan: &[Tensor<3>],
) -> Chain {
    let mut densities = vec![start];
    let mut velocities = Vec::with_capacity(plan.len());
    for planned in plan {
        let rho = densities.last().expect("a start").clone();
        let (ru, rv) = raw_control(cfe, rho.clone(), planned.clone());
        let (next, u, v) = flow.step(rho, ru, rv);
        densities.push(next);
        velocities.push((u, v));
    }
    Chain {
        densities,
        velocities,
    }
}
