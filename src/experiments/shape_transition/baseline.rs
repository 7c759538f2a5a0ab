//! The classical baseline of the shape-transition study (see
//! [`crate::experiments::control_baseline`]): the 16 per-step potentials of single test
//! examples optimised by Adam through the unrolled solver on the training objective
//! (`target_weight·target loss + force_weight·force loss`), against the jointly trained
//! networks' relative final-density error.

use super::ShapeTransitionConfig;
use crate::control::flow::{Execution, FlowPlanner, execute};
use crate::error::Result;
use crate::experiments::control_baseline::{
    BaselineConfig, BaselineResult, Evaluation, optimise_controls,
};
use crate::experiments::study::Progress;
use crate::fluid::relative_mae;
use burn::tensor::{Device, Tensor, TensorData};
use std::time::Instant;

/// Runs the baseline on `(start, target)` (`[B, n, n]`, B = `cfg.baseline.examples`) on the
/// autodiff `device`, against the jointly trained `planner` (on a plain device).
pub fn optimise(
    cfg: &ShapeTransitionConfig,
    bl: &BaselineConfig,
    planner: &FlowPlanner,
    (start, target): (Tensor<3>, Tensor<3>),
    device: &Device,
    progress: &dyn Progress,
) -> Result<BaselineResult> {
    let flow = cfg.flow();
    let steps = cfg.data.steps;
    let [b, ny, nx] = start.dims();
    let t0 = Instant::now();
    let run = execute(
        &flow,
        planner,
        start.clone(),
        target.clone(),
        steps,
        Execution::Staggered,
    );
    let last = run.densities.last().expect("frames").clone();
    let network_errors = relative_mae(last, target.clone(), start.clone());
    let network_wall_s = t0.elapsed().as_secs_f64();

    let host = |t: Tensor<3>| -> Vec<f32> {
        t.into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32")
    };
    let to_dev =
        |v: Vec<f32>, dims: [usize; 3]| Tensor::<3>::from_data(TensorData::new(v, dims), device);
    let (start, target) = (
        to_dev(host(start), [b, ny, nx]),
        to_dev(host(target), [b, ny, nx]),
    );
    let rollout = |p: &[f64]| -> Result<Evaluation> {
        let x = to_dev(p.iter().map(|&v| v as f32).collect(), [steps * b, ny, nx]).require_grad();
        let (mut rho, mut velocities) = (start.clone(), Vec::with_capacity(steps));
        for t in 0..steps {
            let (next, u, v) = flow.step(rho, x.clone().narrow(0, t * b, b));
            rho = next;
            velocities.push((u, v));
        }
        let loss = cfg.objective(&flow, target.clone(), rho.clone(), &velocities);
        let errors = relative_mae(rho.detach(), target.clone(), start.clone());
        let value = loss.clone().into_scalar::<f64>();
        let g = x.grad(&loss.backward()).expect("potentials are tracked");
        Ok(Evaluation {
            loss: value,
            gradient: g
                .into_data()
                .convert::<f64>()
                .try_to_vec::<f64>()
                .expect("f64"),
            errors,
        })
    };
    optimise_controls(
        bl,
        network_errors,
        network_wall_s,
        steps * b * ny * nx,
        rollout,
        progress,
    )
}
