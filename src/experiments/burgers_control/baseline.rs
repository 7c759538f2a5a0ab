//! The iterative baseline (docs/burgers-control.md §5): for single test sequences, the
//! intermediate states `u_1 … u_{n−1}` themselves are the unknowns, optimised by Adam on the
//! differentiable-physics force loss through the solver, with `u_0` and `u_n = u*` fixed. Each
//! sequence's loss depends only on its own states and Adam acts elementwise, so a batch of
//! sequences optimised together is exactly that many independent optimisations
//! ([`crate::optim::adam`] on the flattened states).

use crate::burgers::BurgersScene;
use crate::control::{force_loss, forces, total_force};
use crate::error::Result;
use crate::optim::{AdamSettings, adam};
use burn::tensor::{DType, Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::time::Instant;

/// Settings of the iterative baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaselineConfig {
    /// Test sequences optimised (the first ones of the test set).
    pub sequences: usize,
    /// Adam iterations.
    pub iterations: usize,
    /// Adam's learning rate (state units per iteration).
    pub learning_rate: f64,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        Self {
            sequences: 20,
            iterations: 3000,
            learning_rate: 0.01,
        }
    }
}

/// The outcome of the iterative baseline.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BaselineResult {
    /// Total force of every optimised sequence at the end.
    pub totals: Vec<f64>,
    /// `(iteration, mean total force)` of every iteration.
    pub curve: Vec<(usize, f64)>,
    /// Iterations run.
    pub iterations: usize,
    /// Relative decrease of the loss over the last 10% of the iterations (convergence).
    pub last_decrease: f64,
    /// Wall time of the whole batched optimisation (s).
    pub wall_s: f64,
    /// Each requested level of mean total force with the first iteration at or below it.
    pub reached: Vec<(f64, Option<usize>)>,
}

/// Optimises the intermediate states between `u0` and `target` (`[B, N]` each) on `device`
/// (an autodiff device), in f64; `levels` are mean total forces whose first crossing is
/// recorded. Returns the result and the optimised trajectory.
pub fn optimise(
    scene: &BurgersScene,
    cfg: &BaselineConfig,
    u0: Tensor<2>,
    target: Tensor<2>,
    levels: &[f64],
    device: &Device,
) -> Result<(BaselineResult, Vec<Tensor<2>>)> {
    let (n, [b, points]) = (scene.steps, u0.dims());
    let host = |t: &Tensor<2>| -> Vec<f64> {
        t.clone()
            .into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .expect("f64")
    };
    let (a, z) = (host(&u0), host(&target));
    let to_dev = |v: Vec<f64>, dims: [usize; 2]| {
        Tensor::<2>::from_data(TensorData::new(v, dims), (device, DType::F64))
    };
    let (u0, target) = (
        to_dev(a.clone(), [b, points]),
        to_dev(z.clone(), [b, points]),
    );
    // Start: linear interpolation in time between u_0 and u*; layout [n−1, B, N].
    let p0: Vec<f64> = (1..n)
        .flat_map(|t| {
            let w = t as f64 / n as f64;
            a.iter().zip(&z).map(move |(x, y)| x * (1.0 - w) + y * w)
        })
        .collect();
    let states_of = |x: Tensor<2>| -> Vec<Tensor<2>> {
        let mut s = vec![u0.clone()];
        s.extend((0..n - 1).map(|t| x.clone().narrow(0, t * b, b)));
        s.push(target.clone());
        s
    };
    let curve = RefCell::new(Vec::new());
    let objective = |p: &[f64]| -> Result<(f64, Vec<f64>)> {
        let x = to_dev(p.to_vec(), [(n - 1) * b, points]).require_grad();
        let f = forces(scene, &states_of(x.clone()));
        let loss = force_loss(f.clone(), b, 1.0);
        let value = loss.clone().into_scalar::<f64>();
        let totals = total_force(f.detach(), b);
        let mut c = curve.borrow_mut();
        let k = c.len();
        c.push((k, totals.iter().sum::<f64>() / b as f64));
        let g = x.grad(&loss.backward()).expect("states are tracked");
        Ok((value, host(&g)))
    };
    let t0 = Instant::now();
    let trace = adam(
        &objective,
        &p0,
        AdamSettings::with_rate(cfg.learning_rate),
        cfg.iterations,
        None,
    )?;
    let wall_s = t0.elapsed().as_secs_f64();
    let states = states_of(to_dev(trace.params, [(n - 1) * b, points]));
    let totals = total_force(forces(scene, &states), b);
    let curve = curve.into_inner();
    let reached = levels
        .iter()
        .map(|&l| (l, curve.iter().find(|c| c.1 <= l).map(|c| c.0)))
        .collect();
    let l = &trace.losses;
    let tail = l[l.len() - 1 - l.len() / 10];
    Ok((
        BaselineResult {
            totals,
            curve,
            iterations: cfg.iterations,
            last_decrease: (tail - l[l.len() - 1]) / tail.abs().max(1e-300),
            wall_s,
            reached,
        },
        states,
    ))
}
