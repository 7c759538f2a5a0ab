//! Learning to Control PDEs (Holl et al. 2020), indirect control: a marker in a box of walls
//! is to be moved into one of three buckets at the top while the network's velocity counts
//! only in two side strips; the marker is driven through the pressure projection alone
//! ([`crate::fluid::IndirectFlow`]). The CFE is trained supervised on one step of
//! bounded squares (the motion's velocity, weighted by the density), then through chains of
//! differentiable steps on rising squares, first over windows of 8 steps, then 16, on the
//! blurred density error of every frame. The planned frames are the data's straight-line
//! keyframes, as in the authors' indirect experiment. Metrics on the test set: the final
//! blurred density error and the share of the marker's mass inside the target bucket, for
//! the supervised CFE and after each differentiable-physics stage.
//!
//! Files: [`data`] (sequences), [`report`] (evaluation, pictures, results page). Every stage
//! resumes (see [`crate::experiments::stage`]).

pub mod baseline;
pub mod data;
pub mod report;

pub use data::IndirectDataConfig;
pub use report::IndirectControlResult;

use super::control_baseline::BaselineConfig;
use super::stage::{StageConfig, StageReport, Start, run_stage};
use super::study::{Progress, Study};
use crate::control::indirect::{execute_chain, raw_control};
use crate::error::{DiffsimError, Result};
use crate::fluid::{IndirectFlow, IndirectLayout, on_faces};
use crate::io::read_plans;
use crate::nn::{UNet2d, UNet2dConfig};
use crate::ops::{DensityLoss, density_loss, divergence};
use burn::tensor::{Device, Tensor};
use data::{Motion, bounded, frames, rising, velocities};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Settings of the study (TOML, every field optional; `--print-config` prints them all).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndirectControlConfig {
    /// The data.
    pub data: IndirectDataConfig,
    /// Marker size, control strips and targets (paper units).
    pub layout: IndirectLayout,
    /// The CFE network: `[ρ, planned ρ']` → two velocity channels.
    pub cfe_net: UNet2dConfig,
    /// Supervised one-step training on bounded squares.
    pub sup: StageConfig,
    /// Differentiable-physics training, one stage per window, each starting from the last.
    pub dp: StageConfig,
    /// Steps of the differentiable-physics windows, ascending, each dividing `data.steps`.
    pub windows: Vec<usize>,
    /// Blur radius (cells) of the density losses and the reported error.
    pub blur_radius: f64,
    /// Supervised loss: weight of `½Σ((v − v_gt)·(ρ + ρ'))²`.
    pub velocity_weight: f64,
    /// Supervised loss: weight of `Σ|div v_raw|` of the restricted raw control.
    pub divergence_weight: f64,
    /// Differentiable-physics loss: weight of each frame's blurred density error.
    pub density_weight: f64,
    /// The classical baseline: Adam on the raw controls of single test sequences.
    pub baseline: BaselineConfig,
    /// An HDF5 file of one's own planned sequences (`density [S, steps + 1, n, n]`, `target
    /// [S]` bucket indices) that the final CFE is also evaluated on.
    pub plan_file: Option<PathBuf>,
    /// Test sequences drawn as GIFs.
    pub pictures: usize,
    /// Seed of the network weights and the batches.
    pub seed: u64,
}

impl Default for IndirectControlConfig {
    /// The course's CPU scale of the authors' setup: 64x64, 16 steps, a 4-level CFE.
    fn default() -> Self {
        Self {
            data: IndirectDataConfig::default(),
            layout: IndirectLayout::default(),
            cfe_net: UNet2dConfig::new()
                .with_outputs(2)
                .with_levels(4)
                .with_blocks(2),
            sup: StageConfig {
                iterations: 1000,
                batch: 16,
                learning_rate: 1e-3,
                half_life: 1000.0,
                checkpoint_every: 100,
                rollback: 0.0,
            },
            dp: StageConfig {
                iterations: 400,
                batch: 8,
                learning_rate: 2e-4,
                half_life: 400.0,
                checkpoint_every: 50,
                rollback: 0.0,
            },
            windows: vec![8, 16],
            blur_radius: 1.25,
            velocity_weight: 0.1,
            divergence_weight: 1e-4,
            density_weight: 0.1,
            baseline: BaselineConfig::default(),
            plan_file: None,
            pictures: 3,
            seed: 1,
        }
    }
}

impl IndirectControlConfig {
    /// The toy size of `--quick` (the test suite runs it): 32x32, 4 steps, a narrow network.
    pub fn quick() -> Self {
        let stage = |iterations| StageConfig {
            iterations,
            batch: 3,
            checkpoint_every: 0,
            ..StageConfig::default()
        };
        Self {
            data: IndirectDataConfig {
                resolution: 32,
                steps: 4,
                examples: 30,
                test: 6,
                validation: 3,
                ..IndirectDataConfig::default()
            },
            cfe_net: UNet2dConfig::new()
                .with_outputs(2)
                .with_levels(2)
                .with_filters(4)
                .with_blocks(1),
            sup: stage(3),
            dp: stage(2),
            windows: vec![2, 4],
            baseline: BaselineConfig {
                examples: 2,
                iterations: 20,
                ..BaselineConfig::default()
            },
            pictures: 1,
            ..Self::default()
        }
    }

    /// Checks every setting before anything runs (the layout is checked by [`Self::flow`]).
    pub fn validate(&self) -> Result<()> {
        self.data.validate()?;
        self.sup.validate("sup")?;
        self.dp.validate("dp")?;
        let n = self.data.resolution;
        let net = &self.cfe_net;
        if net.levels == 0
            || !n.is_multiple_of(1 << net.levels)
            || net.inputs != 2
            || net.outputs != 2
        {
            return Err(DiffsimError::config(format!(
                "cfe_net: needs 2 inputs, 2 outputs and 1 ≤ levels with 2^levels dividing the resolution {n}"
            )));
        }
        if self.windows.is_empty()
            || self.windows.windows(2).any(|w| w[0] >= w[1])
            || self
                .windows
                .iter()
                .any(|&w| w == 0 || !self.data.steps.is_multiple_of(w))
        {
            return Err(DiffsimError::config(format!(
                "windows {:?}: need at least one, ascending, each dividing data.steps = {}",
                self.windows, self.data.steps
            )));
        }
        let positive = |w: f64| w.is_finite() && w > 0.0;
        let all_positive = [self.blur_radius, self.velocity_weight, self.density_weight]
            .into_iter()
            .all(positive);
        let divergence_ok = self.divergence_weight.is_finite() && self.divergence_weight >= 0.0;
        if !(all_positive && divergence_ok) {
            return Err(DiffsimError::config(
                "blur_radius, velocity_weight and density_weight must be positive, divergence_weight non-negative",
            ));
        }
        self.baseline.validate(self.data.test)?;
        if self.pictures > self.data.test {
            return Err(DiffsimError::config(format!(
                "pictures = {} is more than the {} test sequences",
                self.pictures, self.data.test
            )));
        }
        Ok(())
    }

    /// The physics on `device`.
    pub fn flow(&self, device: &Device) -> Result<IndirectFlow> {
        IndirectFlow::new(self.data.resolution, &self.layout, device)
    }

    /// The blurred density error per item, `[B]`.
    pub fn blurred_error(&self, rho: Tensor<3>, target: Tensor<3>) -> Tensor<1> {
        density_loss(
            rho - target,
            DensityLoss::BlurredL2 {
                radius: self.blur_radius,
            },
        )
    }

    /// The differentiable-physics objective of a window: `density_weight · Σ_t
    /// reduce(e_t)`, `e_t: [B]` the blurred error of the state reached at step `t` against
    /// the plan's frame `t` (`reduce`: the batch mean for training, the sum where each
    /// sequence is its own problem).
    pub fn window_loss(
        &self,
        reached: &[Tensor<3>],
        plan: &[Tensor<3>],
        reduce: impl Fn(Tensor<1>) -> Tensor<1>,
    ) -> Tensor<1> {
        let total = reached
            .iter()
            .zip(plan)
            .map(|(rho, goal)| reduce(self.blurred_error(rho.clone(), goal.clone())))
            .reduce(|a, b| a + b)
            .expect("a window of at least one step");
        total * self.density_weight
    }
}

/// The stages' reports in training order (each stage's network is in `dir/<stage>`).
pub struct Trained {
    /// `(stage, report)`.
    pub stages: Vec<(String, StageReport)>,
}

/// Trains every stage into `dir/<stage>` on the autodiff device.
pub fn train_all(
    cfg: &IndirectControlConfig,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<Trained> {
    let device = Device::flex().autodiff();
    device.seed(cfg.seed);
    let flow = cfg.flow(&device)?;
    let steps = cfg.data.steps;
    let n = cfg.data.resolution;
    let mut stages = Vec::new();

    // One supervised step on bounded squares: the projected velocity against the motion's,
    // weighted by the density on the faces, and the raw control's divergence.
    let sup = |net: &UNet2d, k: usize| -> Result<Tensor<1>> {
        let b = cfg.sup.batch;
        let motions: Vec<Motion> = (0..b).map(|i| bounded(&cfg.data, k * b + i)).collect();
        let f = k % steps;
        let (a, next) = (
            frames(&flow, &motions, f, steps, &device),
            frames(&flow, &motions, f + 1, steps, &device),
        );
        let (gu, gv) = velocities(n, &motions, steps, &device);
        let (ru, rv) = raw_control(net, a.clone(), next.clone());
        let (ru, rv) = flow.restrict(ru, rv);
        let (u, v) = flow.project(ru.clone(), rv.clone());
        let weight = a + next;
        let (wu, wv) = (on_faces(weight.clone(), 2), on_faces(weight, 1));
        let (du, dv) = ((u - gu) * wu, (v - gv) * wv);
        let l2 = ((du.clone() * du).sum() + (dv.clone() * dv).sum()) * (0.5 / b as f64);
        let div = divergence(ru, rv, 1.0).abs().sum() * (1.0 / b as f64);
        Ok(l2 * cfg.velocity_weight + div * cfg.divergence_weight)
    };
    let (mut net, r) = run_stage(
        "sup",
        &cfg.sup,
        &dir.join("sup"),
        Start::Fresh(cfg.cfe_net.init(&device)),
        sup,
        progress,
    )?;
    stages.push(("sup".to_string(), r));

    // Chains of differentiable steps over windows of rising squares.
    let train = cfg.data.train_range();
    for &w in &cfg.windows {
        let name = format!("dp{w}");
        let windows = steps / w;
        let chain_loss = |net: &UNet2d, k: usize| -> Result<Tensor<1>> {
            let b = cfg.dp.batch;
            let draws = super::sampling::batch_of(
                super::sampling::Sampling::Independent,
                cfg.seed,
                k,
                b,
                (train.len(), windows),
            );
            let motions: Vec<Motion> = draws
                .iter()
                .map(|&(i, _)| rising(&cfg.data, &cfg.layout, train.start + i))
                .collect();
            // Each item starts at its own window: frames are drawn per item.
            let frame = |t: usize| -> Tensor<3> {
                let per: Vec<Tensor<3>> = draws
                    .iter()
                    .zip(&motions)
                    .map(|(&(_, s), m)| {
                        frames(&flow, std::slice::from_ref(m), s * w + t, steps, &device)
                    })
                    .collect();
                Tensor::cat(per, 0)
            };
            let plan: Vec<Tensor<3>> = (1..=w).map(frame).collect();
            let run = execute_chain(&flow, net, frame(0), &plan);
            Ok(cfg.window_loss(&run.densities[1..], &plan, |e| e.mean()))
        };
        let (trained, r) = run_stage(
            &name,
            &cfg.dp,
            &dir.join(&name),
            Start::After(net),
            chain_loss,
            progress,
        )?;
        net = trained;
        stages.push((name, r));
    }
    Ok(Trained { stages })
}

/// The study.
pub struct IndirectControl;

impl Study for IndirectControl {
    const NAME: &'static str = "indirect-control";
    const ABOUT: &'static str = "Learning to Control PDEs (Holl et al. 2020): indirect control, a CFE moving a marker into a bucket through pressure alone, supervised vs differentiable physics";
    type Config = IndirectControlConfig;
    type Result = IndirectControlResult;

    fn full() -> IndirectControlConfig {
        IndirectControlConfig::default()
    }

    fn quick() -> IndirectControlConfig {
        IndirectControlConfig::quick()
    }

    fn validate(cfg: &IndirectControlConfig) -> Result<()> {
        cfg.validate()?;
        let flow = cfg.flow(&Device::flex())?;
        if let Some(path) = &cfg.plan_file {
            let (steps, n) = (cfg.data.steps, cfg.data.resolution);
            read_plans(path, steps + 1, n, flow.targets.len())?;
        }
        Ok(())
    }

    fn run(
        cfg: &IndirectControlConfig,
        dir: &Path,
        progress: &dyn Progress,
    ) -> Result<IndirectControlResult> {
        Self::validate(cfg)?;
        let t0 = Instant::now();
        let trained = train_all(cfg, dir, progress)?;
        report::evaluate(cfg, &trained, dir, t0, progress)
    }

    fn report(result: &IndirectControlResult, _dir: &Path) -> String {
        report::results_page(result)
    }
}
