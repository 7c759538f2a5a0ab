//! The classical baseline of the shape-transition study: for single test examples, the 16
//! per-step potentials themselves are the unknowns, optimised by Adam through the unrolled
//! solver on the objective the networks were trained with (`target_weight·target loss +
//! force_weight·force loss`), from zero potentials. Each example's loss depends only on its own
//! potentials and Adam acts elementwise, so examples optimised together are independent
//! optimisations ([`crate::optim::adam`] on the flattened potentials). Reported: the
//! iterations and wall time each example needs to reach the jointly trained networks' relative
//! final-density error on it, next to the networks' inference time.

use super::ShapeTransitionConfig;
use crate::control::flow::{Execution, FlowPlanner, execute};
use crate::error::Result;
use crate::fluid::relative_mae;
use crate::optim::{AdamSettings, adam};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::time::Instant;

/// Settings of the baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaselineConfig {
    /// Test examples optimised (the first ones of the test set).
    pub examples: usize,
    /// Adam iterations.
    pub iterations: usize,
    /// Adam's learning rate (potential units, cells²/step, per iteration).
    pub learning_rate: f64,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        Self {
            examples: 8,
            iterations: 1500,
            learning_rate: 0.1,
        }
    }
}

/// The outcome of the baseline.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BaselineResult {
    /// The settings.
    pub config: BaselineConfig,
    /// The networks' relative final-density error on each example (DP staggered).
    pub network_errors: Vec<f64>,
    /// The networks' wall time for all examples together (s).
    pub network_wall_s: f64,
    /// The optimised potentials' relative error on each example at the end.
    pub final_errors: Vec<f64>,
    /// Per example: the first iteration whose error is at or below the network's.
    pub reached: Vec<Option<usize>>,
    /// `(iteration, mean relative error)` of every iteration.
    pub curve: Vec<(usize, f64)>,
    /// Wall time of the optimisation of all examples together (s).
    pub wall_s: f64,
}

impl BaselineResult {
    /// Wall time of one example's optimisation up to iteration `k` (s): the batched time
    /// shared evenly.
    pub fn seconds_to(&self, k: usize) -> f64 {
        self.wall_s / self.config.examples.max(1) as f64 * k as f64
            / self.config.iterations.max(1) as f64
    }
}

/// Runs the baseline on `(start, target)` (`[B, n, n]`, B = `cfg.baseline.examples`) on the
/// autodiff `device`, against the jointly trained `planner` (on a plain device).
pub fn optimise(
    cfg: &ShapeTransitionConfig,
    bl: &BaselineConfig,
    planner: &FlowPlanner,
    (start, target): (Tensor<3>, Tensor<3>),
    device: &Device,
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
    let curve = RefCell::new(Vec::new());
    let errors = RefCell::new(Vec::<Vec<f64>>::new());
    let objective = |p: &[f64]| -> Result<(f64, Vec<f64>)> {
        let x = to_dev(p.iter().map(|&v| v as f32).collect(), [steps * b, ny, nx]).require_grad();
        let (mut rho, mut velocities) = (start.clone(), Vec::with_capacity(steps));
        for t in 0..steps {
            let (next, u, v) = flow.step(rho, x.clone().narrow(0, t * b, b));
            rho = next;
            velocities.push((u, v));
        }
        let mut loss = flow.target_loss(target.clone(), rho.clone()).mean() * cfg.target_weight;
        if cfg.force_weight > 0.0
            && let Some(force) = flow.force_loss(&velocities)
        {
            loss = loss + force * cfg.force_weight;
        }
        let e = relative_mae(rho.detach(), target.clone(), start.clone());
        let mut c = curve.borrow_mut();
        let k = c.len();
        c.push((k, e.iter().sum::<f64>() / b as f64));
        errors.borrow_mut().push(e);
        let value = loss.clone().into_scalar::<f64>();
        let g = x.grad(&loss.backward()).expect("potentials are tracked");
        Ok((
            value,
            g.into_data()
                .convert::<f64>()
                .try_to_vec::<f64>()
                .expect("f64"),
        ))
    };
    let t1 = Instant::now();
    adam(
        &objective,
        &vec![0.0; steps * b * ny * nx],
        AdamSettings::with_rate(bl.learning_rate),
        bl.iterations,
        None,
    )?;
    let wall_s = t1.elapsed().as_secs_f64();
    let errors = errors.into_inner();
    let reached = (0..b)
        .map(|i| errors.iter().position(|e| e[i] <= network_errors[i]))
        .collect();
    Ok(BaselineResult {
        config: bl.clone(),
        final_errors: errors.last().cloned().unwrap_or_default(),
        network_errors,
        network_wall_s,
        reached,
        curve: curve.into_inner(),
        wall_s,
    })
}
