//! The classical baseline of the flow-control studies: for single test sequences, the
//! per-step controls themselves are the unknowns, optimised by Adam through the unrolled
//! solver on the objective the networks were trained with, from zero controls. Each
//! sequence's loss depends only on its own controls and Adam acts elementwise, so sequences
//! optimised together are independent optimisations ([`crate::optim::adam`] on the flattened
//! controls). Reported: the iterations and wall time each sequence needs to reach the trained
//! networks' final error on it, next to the networks' inference time.

use crate::error::{DiffsimError, Result};
use crate::experiments::study::Progress;
use crate::optim::{AdamSettings, adam};
use crate::viz::line_plot;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::path::Path;
use std::time::Instant;

/// Settings of the baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaselineConfig {
    /// Test sequences optimised (the first ones of the test set).
    pub examples: usize,
    /// Adam iterations.
    pub iterations: usize,
    /// Adam's learning rate (control units per iteration).
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

impl BaselineConfig {
    /// Checks the settings against the `test` sequences there are.
    pub fn validate(&self, test: usize) -> Result<()> {
        if self.examples == 0
            || self.examples > test
            || self.iterations == 0
            || !(self.learning_rate.is_finite() && self.learning_rate > 0.0)
        {
            return Err(DiffsimError::config(format!(
                "baseline: examples must be 1 to data.test = {test}, iterations ≥ 1 and learning_rate positive"
            )));
        }
        Ok(())
    }
}

/// The outcome of the baseline.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BaselineResult {
    /// The settings.
    pub config: BaselineConfig,
    /// The networks' final error on each sequence.
    pub network_errors: Vec<f64>,
    /// The networks' wall time for all sequences together (s).
    pub network_wall_s: f64,
    /// The optimised controls' final error on each sequence at the end.
    pub final_errors: Vec<f64>,
    /// Per sequence: the first iteration whose error is at or below the network's.
    pub reached: Vec<Option<usize>>,
    /// `(iteration, mean error)` of every iteration.
    pub curve: Vec<(usize, f64)>,
    /// Wall time of the optimisation of all sequences together (s).
    pub wall_s: f64,
}

impl BaselineResult {
    /// Wall time of one sequence's optimisation up to iteration `k` (s): the batched time
    /// shared evenly.
    pub fn seconds_to(&self, k: usize) -> f64 {
        self.wall_s / self.config.examples.max(1) as f64 * k as f64
            / self.config.iterations.max(1) as f64
    }

    /// The mean error per iteration against the networks' mean, as a PNG.
    pub fn plot(&self, path: &Path, title: &str, error: &str) -> Result<()> {
        let n = self.network_errors.len().max(1) as f64;
        let net_mean = self.network_errors.iter().sum::<f64>() / n;
        line_plot(
            path,
            title,
            "iteration",
            error,
            &[
                (
                    "Adam".into(),
                    self.curve.iter().map(|&(k, e)| (k as f64, e)).collect(),
                ),
                (
                    "networks".into(),
                    vec![(0.0, net_mean), (self.curve.len() as f64, net_mean)],
                ),
            ],
        )
    }

    /// The per-sequence table of the results pages (Markdown).
    pub fn table(&self) -> String {
        let mut s = "| sequence | network error | Adam final error | Adam iterations to the network's error | ≈ s |\n|---|---|---|---|---|\n".to_string();
        for (i, ((n, f), k)) in self
            .network_errors
            .iter()
            .zip(&self.final_errors)
            .zip(&self.reached)
            .enumerate()
        {
            let (it, secs) = match k {
                Some(k) => (k.to_string(), format!("{:.1}", self.seconds_to(*k))),
                None => ("not reached".into(), "–".into()),
            };
            s += &format!("| {i} | {n:.4} | {f:.4} | {it} | {secs} |\n");
        }
        s
    }
}

/// What one evaluation of the unrolled solver gives: the loss, its gradient with respect to
/// the flattened controls, and each sequence's final error.
pub struct Evaluation {
    /// The objective.
    pub loss: f64,
    /// Its gradient.
    pub gradient: Vec<f64>,
    /// Final error per sequence.
    pub errors: Vec<f64>,
}

/// Runs Adam from zero on `unknowns` flattened controls, `rollout` evaluating them, against
/// the networks' `network_errors` (measured in `network_wall_s`); `progress` counts the
/// iterations.
pub fn optimise_controls(
    bl: &BaselineConfig,
    network_errors: Vec<f64>,
    network_wall_s: f64,
    unknowns: usize,
    rollout: impl Fn(&[f64]) -> Result<Evaluation>,
    progress: &dyn Progress,
) -> Result<BaselineResult> {
    let b = network_errors.len();
    let errors = RefCell::new(Vec::<Vec<f64>>::new());
    progress.start("classical baseline (Adam iterations)", bl.iterations as u64);
    let objective = |p: &[f64]| -> Result<(f64, Vec<f64>)> {
        let e = rollout(p)?;
        let mut all = errors.borrow_mut();
        all.push(e.errors);
        progress.set(all.len() as u64);
        Ok((e.loss, e.gradient))
    };
    let t0 = Instant::now();
    adam(
        &objective,
        &vec![0.0; unknowns],
        AdamSettings::with_rate(bl.learning_rate),
        bl.iterations,
        None,
    )?;
    let wall_s = t0.elapsed().as_secs_f64();
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
        curve: errors
            .iter()
            .enumerate()
            .map(|(k, e)| (k, e.iter().sum::<f64>() / b.max(1) as f64))
            .collect(),
        wall_s,
    })
}
