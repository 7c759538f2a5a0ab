//! Gradient checks of the flow-control ops: the staggered curl of a potential and the two
//! density losses, on small grids where the losses' kernels reach past the edges, and one
//! application of the 2D U-Net, a 4-step staggered execution of the shape-transition
//! control with its networks, and an 8-step indirect-control chain through the projection.

use super::checker::{GradCheckConfig, GradCheckReport, check, weighted};
use crate::control::flow::{Execution, FlowPlanner, execute};
use crate::control::indirect::execute_chain;
use crate::error::{DiffsimError, Result};
use crate::fluid::{IndirectFlow, IndirectLayout, ShapeFlow};
use crate::grid::Resolution;
use crate::nn::{CastParams, UNet2dConfig};
use crate::ops::{DensityLoss, density_loss, staggered_curl};
use burn::module::Module;
use burn::tensor::{Device, FloatDType, Tensor};

/// A smooth random `[b, ny, nx]` field of amplitude ~`scale`.
fn field(dims: [usize; 3], scale: f64, seed: u64, dev: &Device) -> Tensor<3> {
    super::checker::field(dims, scale, 0.0, seed, dev)
}

/// Runs the flow-control check `name`.
pub fn run(name: &str, cfg: &GradCheckConfig) -> Result<GradCheckReport> {
    let dev = Device::flex().autodiff();
    match name {
        "staggered-curl" => {
            let x = [field([2, 7, 10], 1.0, 1, &dev)];
            let loss = |x: &[Tensor<3>]| {
                let (u, v) = staggered_curl(x[0].clone(), 0.5);
                weighted(u, 2) + weighted(v, 3)
            };
            check(name, &x, &loss, cfg)
        }
        "spectral-target-loss" | "blurred-l2" => {
            // Per-item weights, so that the batch items' gradients differ in scale; the
            // notebook's σ = 0.01 on 32 cells (only the lowest frequencies count) and a blur
            // whose 13x13 support reaches past the edges of a 12x14 grid.
            let (dims, kind) = if name == "blurred-l2" {
                ([3, 12, 14], DensityLoss::BlurredL2 { radius: 2.0 })
            } else {
                ([3, 32, 24], DensityLoss::Spectral { sigma: 0.01 })
            };
            let x = [field(dims, 1.0, 4, &dev)];
            let loss = move |x: &[Tensor<3>]| {
                let per_item = density_loss(x[0].clone(), kind);
                let w = Tensor::<1>::from_floats([1.0, 0.5, 2.0], &per_item.device())
                    .cast(FloatDType::F64);
                (per_item * w).sum()
            };
            check(name, &x, &loss, cfg)
        }
        "unet2d-op" => {
            // One application of the 3-level OP network (f64) on 2 items of 8x16, with
            // respect to its input: every layer's backward is on the path.
            dev.seed(3);
            let net = UNet2dConfig::shape_op()
                .init(&dev)
                .map(&mut CastParams(FloatDType::F64));
            let x = [field([4, 8, 16], 1.0, 5, &dev)];
            let loss = move |x: &[Tensor<3>]| {
                let y = net.forward(x[0].clone().reshape([2, 2, 8, 16]));
                weighted(y.reshape([2, 8, 16]), 6)
            };
            check(name, &x, &loss, cfg)
        }
        "unroll4-shape-staggered" => {
            // Staggered execution of 4 steps on 16x16 (small f64 networks): the target loss of
            // the last density plus the force loss, with respect to the start and target
            // densities. Every op of the chain is on the path: U-Nets, curl, advection of the
            // density and of the velocity by itself, the spectral loss.
            dev.seed(9);
            let net = UNet2dConfig::new().with_filters(4).with_blocks(1);
            let planner = FlowPlanner::init(&net, &net.clone().with_levels(3), 4, &dev)
                .map(&mut CastParams(FloatDType::F64));
            let flow = ShapeFlow::new(Resolution::new(16, 16), 1.0)?;
            let x = [
                field([1, 16, 16], 1.0, 7, &dev),
                field([1, 16, 16], 1.0, 8, &dev),
            ];
            let loss = move |x: &[Tensor<3>]| {
                let run = execute(
                    &flow,
                    &planner,
                    x[0].clone(),
                    x[1].clone(),
                    4,
                    Execution::Staggered,
                );
                let last = run.densities.last().expect("frames").clone();
                let force = flow.force_loss(&run.velocities).expect("4 velocities");
                flow.target_loss(x[1].clone(), last).sum() * 1e-3 + force
            };
            check(name, &x, &loss, cfg)
        }
        "unroll8-indirect" => {
            // Indirect control over 8 steps on the 32x32 vented box (a small f64 CFE): the
            // blurred density error of every frame against the target, with respect to the
            // start and target densities. On the path: the U-Net, the restriction to the
            // control strips, the pressure projection with the walls (its adjoint solve), the
            // advection of the density and the blurred loss.
            dev.seed(11);
            let cfe = UNet2dConfig::new()
                .with_outputs(2)
                .with_filters(4)
                .with_blocks(1)
                .init(&dev)
                .map(&mut CastParams(FloatDType::F64));
            let flow = IndirectFlow::new(32, &IndirectLayout::default(), &dev)?;
            let x = [
                field([1, 32, 32], 1.0, 12, &dev),
                field([1, 32, 32], 1.0, 13, &dev),
            ];
            let loss = move |x: &[Tensor<3>]| {
                let plan = vec![x[1].clone(); 8];
                let run = execute_chain(&flow, &cfe, x[0].clone(), &plan);
                run.densities
                    .iter()
                    .skip(1)
                    .map(|rho| {
                        density_loss(
                            rho.clone() - x[1].clone(),
                            DensityLoss::BlurredL2 { radius: 1.25 },
                        )
                        .sum()
                    })
                    .reduce(|a, b| a + b)
                    .expect("8 frames")
            };
            check(name, &x, &loss, cfg)
        }
        other => Err(DiffsimError::config(format!(
            "unknown flow-control gradcheck '{other}'"
        ))),
    }
}
