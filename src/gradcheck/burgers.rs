//! Gradient checks of the Burgers ops, of the 1D U-Net's fused layer ([`line_conv`]) and of a
//! 32-step DP-CFE unroll with its network.

use super::checker::{GradCheckConfig, GradCheckReport, check, smooth_direction, tensor_f64};
use crate::burgers::BurgersScene;
use crate::control::{cfe_chain, force_loss, forces};
use crate::error::{DiffsimError, Result};
use crate::nn::{Activation, CastParams, LineConvSpec, UNet1dConfig, line_conv};
use crate::ops::advect_line;
use burn::module::Module;
use burn::tensor::{Device, FloatDType, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// `[B, 1, N]` clash-like states: two smooth random lines of amplitude ~`scale`.
fn lines(b: usize, n: usize, scale: f64, seed: u64, dev: &Device) -> Tensor<3> {
    let mut rng = StdRng::seed_from_u64(seed);
    let d = smooth_direction([b, 1, n], &mut rng);
    tensor_f64(d.into_iter().map(|x| scale * x).collect(), [b, 1, n], dev)
}

/// `Σ w·t` with a fixed smooth weight.
fn weighted(t: Tensor<3>, seed: u64) -> Tensor<1> {
    let [b, _, n] = t.dims();
    let w = lines(b, n, 1.0, seed, &t.device());
    (t * w).sum()
}

/// Runs the Burgers check `name`.
pub fn run(name: &str, cfg: &GradCheckConfig) -> Result<GradCheckReport> {
    let dev = Device::flex().autodiff();
    match name {
        "advect-line" => {
            // Separate q and u; dt/dx = 1.3 with |u| ~ 1.5: back-traces leave both ends.
            let x = [lines(2, 12, 1.0, 1, &dev), lines(2, 12, 1.5, 2, &dev)];
            let loss = |x: &[Tensor<3>]| weighted(advect_line(x[0].clone(), x[1].clone(), 1.3), 9);
            check(name, &x, &loss, cfg)
        }
        "burgers-step-paper" | "burgers-step-notebook" => {
            let scene = if name.ends_with("paper") {
                BurgersScene::paper()
            } else {
                BurgersScene::notebook()
            };
            let n = scene.cells;
            // Amplitudes of the data (±3): several cells per step in either scene.
            let x = [lines(2, n, 2.0, 3, &dev)];
            let loss = move |x: &[Tensor<3>]| {
                let u = scene.natural(x[0].clone().reshape([2, n]));
                weighted(u.reshape([2, 1, n]), 9)
            };
            check(name, &x, &loss, cfg)
        }
        "line-conv-edge-residual" | "line-conv-stride2-zero" => {
            // x [C_in = 3, L = 9, B = 5], w [C_out, 3, K], b [C_out]; 3-D inputs, reshaped.
            let residual = name.ends_with("residual");
            let (co, k, spec) = if residual {
                (
                    3,
                    3,
                    LineConvSpec {
                        stride: 1,
                        pad: [1, 1],
                        edge: true,
                        act: Activation::LeakyRelu(0.2),
                    },
                )
            } else {
                (
                    4,
                    2,
                    LineConvSpec {
                        stride: 2,
                        pad: [0, 4],
                        edge: false,
                        act: Activation::Relu,
                    },
                )
            };
            let lout = (9 + spec.pad[0] + spec.pad[1] - k) / spec.stride + 1;
            let mut x = vec![
                lines(3, 9 * 5, 1.0, 11, &dev).reshape([3, 9, 5]),
                lines(co, 3 * k, 0.7, 12, &dev).reshape([co, 3, k]),
                lines(1, co, 0.3, 13, &dev).reshape([1, 1, co]),
            ];
            if residual {
                x.push(lines(co, lout * 5, 1.0, 14, &dev).reshape([co, lout, 5]));
            }
            let loss = move |x: &[Tensor<3>]| {
                let y = line_conv(
                    x[0].clone(),
                    x[1].clone(),
                    x[2].clone().reshape([co]),
                    x.get(3).cloned(),
                    spec,
                );
                let [c, l, b] = y.dims();
                weighted(y.reshape([c, 1, l * b]), 9)
            };
            check(name, &x, &loss, cfg)
        }
        "unroll32-burgers-dp-cfe" => {
            // The DP-CFE force loss of a 32-step chain (31 U-Net applications, 32 solver
            // steps) in f64, differentiated with respect to the initial and target states.
            let scene = BurgersScene::paper();
            let (b, n) = (2, scene.cells);
            dev.seed(5);
            let net = UNet1dConfig::cfe()
                .init(&dev)
                .map(&mut CastParams(FloatDType::F64));
            let x = [lines(b, n, 1.5, 4, &dev), lines(b, n, 1.5, 6, &dev)];
            let loss = move |x: &[Tensor<3>]| {
                let (u0, target) = (x[0].clone().reshape([b, n]), x[1].clone().reshape([b, n]));
                force_loss(
                    forces(&scene, &cfe_chain(&net, u0, target, scene.steps)),
                    b,
                    0.1,
                )
            };
            check(name, &x, &loss, cfg)
        }
        other => Err(DiffsimError::config(format!(
            "unknown Burgers gradcheck '{other}'"
        ))),
    }
}
