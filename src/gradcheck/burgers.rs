//! Gradient checks of the Burgers ops, of a whole 1D U-Net application ([`unet1d`]) and of a
//! 32-step DP-CFE unroll with its network.

use super::checker::{GradCheckConfig, GradCheckReport, check, weighted};
use crate::burgers::BurgersScene;
use crate::control::{cfe_chain, force_loss, forces};
use crate::error::{DiffsimError, Result};
use crate::nn::{CastParams, UNet1dConfig, unet1d};
use crate::ops::advect_line;
use burn::module::Module;
use burn::tensor::{Device, FloatDType, Tensor};

/// `[B, 1, N]` clash-like states: two smooth random lines of amplitude ~`scale`.
fn lines(b: usize, n: usize, scale: f64, seed: u64, dev: &Device) -> Tensor<3> {
    super::checker::field([b, 1, n], scale, 0.0, seed, dev)
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
        "unet1d-cfe" | "unet1d-op-two-chunks" => {
            // One application of the whole network, differentiated with respect to its input
            // and every packed parameter (f64). The CFE on 3 short lines (one chunk); the OP
            // on 17 lines of 37 points (split over the cores, the last chunk mostly padding).
            let cfe = name == "unet1d-cfe";
            let (b, n) = if cfe { (3, 13) } else { (17, 37) };
            let cfg_net = if cfe {
                UNet1dConfig::cfe()
            } else {
                UNet1dConfig::op()
            };
            dev.seed(7);
            let net = cfg_net
                .init(&dev)
                .map(&mut CastParams(FloatDType::F64))
                .packed();
            let c = net.arch.inputs;
            let p = net.params.clone().detach();
            // Biases start at zero; move them off so that their gradients are exercised.
            let p =
                p.clone() + lines(1, net.arch.params, 0.05, 13, &dev).reshape([net.arch.params]);
            let x = [
                lines(b * c, n, 1.0, 11, &dev).reshape([b, c, n]),
                p.reshape([1, 1, net.arch.params]),
            ];
            let arch = net.arch.clone();
            let loss = move |x: &[Tensor<3>]| {
                let params = x[1].clone().reshape([arch.params]);
                weighted(unet1d(x[0].clone(), params, arch.clone()), 9)
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
