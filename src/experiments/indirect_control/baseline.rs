//! The classical baseline of the indirect-control study (see
//! [`crate::experiments::control_baseline`]): the raw controls `(u_t, v_t)` of all 16 steps
//! of single test sequences (only their values in the control strips act) optimised by Adam
//! through the unrolled projection and advection on the differentiable-physics objective
//! (`density_weight · Σ_t` blurred error against the keyframes), against the final network's
//! final blurred density error.

use super::IndirectControlConfig;
use super::data::{Motion, frames, rising};
use crate::control::indirect::execute_chain;
use crate::error::Result;
use crate::experiments::control_baseline::{
    BaselineConfig, BaselineResult, Evaluation, optimise_controls,
};
use crate::experiments::study::Progress;
use crate::nn::UNet2d;
use burn::tensor::{Device, Tensor, TensorData};
use std::time::Instant;

fn host_f64<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .expect("f64")
}

/// Runs the baseline on the first `bl.examples` test sequences against `net` (plain device).
pub fn optimise(
    cfg: &IndirectControlConfig,
    bl: &BaselineConfig,
    net: &UNet2d,
    progress: &dyn Progress,
) -> Result<BaselineResult> {
    let (steps, n) = (cfg.data.steps, cfg.data.resolution);
    let motions: Vec<Motion> = (0..bl.examples)
        .map(|i| rising(&cfg.data, &cfg.layout, i))
        .collect();
    let b = motions.len();
    let plain = Device::flex();
    let flow = cfg.flow(&plain)?;
    let t0 = Instant::now();
    let keys: Vec<Tensor<3>> = (0..=steps)
        .map(|f| frames(&flow, &motions, f, steps, &plain))
        .collect();
    let run = execute_chain(&flow, net, keys[0].clone(), &keys[1..]);
    let last = run.densities.last().expect("frames").clone();
    let network_errors = host_f64(cfg.blurred_error(last, keys[steps].clone()));
    let network_wall_s = t0.elapsed().as_secs_f64();

    let device = Device::flex().autodiff();
    let flow = cfg.flow(&device)?;
    let keys: Vec<Tensor<3>> = (0..=steps)
        .map(|f| frames(&flow, &motions, f, steps, &device))
        .collect();
    let (nu, nv) = (steps * b * n * (n + 1), steps * b * (n + 1) * n);
    let tensor = |p: &[f64], dims: [usize; 3]| {
        let v: Vec<f32> = p.iter().map(|&x| x as f32).collect();
        Tensor::<3>::from_data(TensorData::new(v, dims), &device).require_grad()
    };
    let rollout = |p: &[f64]| -> Result<Evaluation> {
        let xu = tensor(&p[..nu], [steps * b, n, n + 1]);
        let xv = tensor(&p[nu..], [steps * b, n + 1, n]);
        let mut reached: Vec<Tensor<3>> = Vec::with_capacity(steps);
        let mut rho = keys[0].clone();
        for t in 0..steps {
            let (ru, rv) = (
                xu.clone().narrow(0, t * b, b),
                xv.clone().narrow(0, t * b, b),
            );
            rho = flow.step(rho, ru, rv).0;
            reached.push(rho.clone());
        }
        let loss = cfg.window_loss(&reached, &keys[1..], |e| e.sum());
        let errors = host_f64(cfg.blurred_error(rho.detach(), keys[steps].clone()));
        let value = loss.clone().into_scalar::<f64>();
        let grads = loss.backward();
        let mut gradient = host_f64(xu.grad(&grads).expect("controls are tracked"));
        gradient.extend(host_f64(xv.grad(&grads).expect("controls are tracked")));
        Ok(Evaluation {
            loss: value,
            gradient,
            errors,
        })
    };
    optimise_controls(
        bl,
        network_errors,
        network_wall_s,
        nu + nv,
        rollout,
        progress,
    )
}
