//! Learning to Control PDEs (Holl et al. 2020), Burgers control (docs/burgers-control.md):
//! data, the CFE chain trained supervised and with differentiable physics, the OP hierarchy
//! pre-trained supervised and then trained end to end through staggered execution and with
//! prediction refinement, the iterative baseline, and the total-force table on the test set
//! next to the published values. Every stage resumes: a finished dataset or stage of the
//! same settings is kept, an interrupted stage continues from its last checkpoint.
//!
//! Files: [`dataset`] (data), [`super::stage`] (stages), [`baseline`] (iterative optimisation),
//! [`report`] (evaluation, pictures, results page); the schemes and losses are
//! [`crate::control`].

pub mod baseline;
pub mod dataset;
pub mod report;

pub use super::stage::StageConfig;
pub use baseline::BaselineConfig;
pub use dataset::{BurgersData, BurgersDataConfig};
pub use report::{BurgersControlResult, MethodResult};

use super::sampling::splitmix;
use super::stage::{StageReport, Start, run_stage};
use super::study::{Progress, Study};
use crate::control::{Hierarchy, cfe_chain, force_loss, forces, predict_mid};
use crate::error::{DiffsimError, Result};
use crate::nn::{FreshParams, UNet1d, UNet1dConfig};
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// Settings of the study (TOML, every field optional; `--print-config` prints them all).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BurgersControlConfig {
    /// The data.
    pub data: BurgersDataConfig,
    /// Factor of the differentiable-physics force loss (the paper: 0.1).
    pub force_loss_scale: f64,
    /// (a) CFE chain, supervised on the next ground-truth frame.
    pub sup_cfe: StageConfig,
    /// (b) CFE chain, force loss through the unrolled chain.
    pub dp_cfe: StageConfig,
    /// Start (b) from (a)'s weights instead of a fresh network (the paper's two CFE scripts
    /// share one variable scope, so the supervised checkpoint loads into the DP model).
    pub dp_cfe_from_supervised: bool,
    /// (c) supervised pre-training of each OP_n (the same settings for every n).
    pub sup_op: StageConfig,
    /// (c) staggered execution trained end to end with the force loss.
    pub dp_staggered: StageConfig,
    /// (d) prediction refinement trained end to end, starting from (c).
    pub dp_refined: StageConfig,
    /// The iterative baseline.
    pub baseline: BaselineConfig,
    /// Test sequences drawn as space-time pictures.
    pub pictures: usize,
    /// Seed of the network weights and the batches.
    pub seed: u64,
}

impl Default for BurgersControlConfig {
    /// docs/burgers-control.md §4: as the authors' revised code, Adam 1e-3 halving every 1000
    /// iterations, batch 100 and 3000 iterations for every stage, supervised and
    /// differentiable-physics alike.
    fn default() -> Self {
        let stage = |iterations, batch| StageConfig {
            iterations,
            batch,
            ..StageConfig::default()
        };
        Self {
            data: BurgersDataConfig::default(),
            force_loss_scale: 0.1,
            sup_cfe: stage(3000, 100),
            dp_cfe: stage(3000, 100),
            dp_cfe_from_supervised: true,
            sup_op: stage(3000, 100),
            dp_staggered: stage(3000, 100),
            dp_refined: stage(3000, 100),
            baseline: BaselineConfig::default(),
            pictures: 3,
            seed: 1,
        }
    }
}

impl BurgersControlConfig {
    /// The toy size of `--quick` (the test suite runs it): 96 sequences of 8 steps, a few
    /// iterations per stage.
    pub fn quick() -> Self {
        let mut data = BurgersDataConfig::quick();
        data.scene.steps = 8;
        let stage = |iterations| StageConfig {
            iterations,
            batch: 8,
            checkpoint_every: 0,
            ..StageConfig::default()
        };
        Self {
            data,
            sup_cfe: stage(6),
            dp_cfe: stage(4),
            sup_op: stage(4),
            dp_staggered: stage(3),
            dp_refined: stage(2),
            baseline: BaselineConfig {
                sequences: 4,
                iterations: 30,
                ..BaselineConfig::default()
            },
            pictures: 1,
            ..Self::default()
        }
    }

    /// Checks every setting before anything runs.
    pub fn validate(&self) -> Result<()> {
        self.data.validate()?;
        let steps = self.data.scene.steps;
        if !steps.is_power_of_two() {
            return Err(DiffsimError::config(format!(
                "data.scene.steps = {steps}: the OP hierarchy needs a power of two (OP levels 2, 4, …, steps)"
            )));
        }
        for (name, s) in [
            ("sup_cfe", &self.sup_cfe),
            ("dp_cfe", &self.dp_cfe),
            ("sup_op", &self.sup_op),
            ("dp_staggered", &self.dp_staggered),
            ("dp_refined", &self.dp_refined),
        ] {
            s.validate(name)?;
        }
        if self.baseline.sequences > self.data.test || self.baseline.iterations == 0 {
            return Err(DiffsimError::config(format!(
                "baseline.sequences = {} must be at most data.test = {} and baseline.iterations ≥ 1",
                self.baseline.sequences, self.data.test
            )));
        }
        if !(self.force_loss_scale.is_finite() && self.force_loss_scale > 0.0) {
            return Err(DiffsimError::config("force_loss_scale must be positive"));
        }
        Ok(())
    }
}

/// The study.
pub struct BurgersControl;

/// Published total forces (Holl et al. 2020, Table 1): `(method, value, ±)`.
pub const PUBLISHED: [(&str, f64, f64); 3] = [
    ("Sup-CFE chain", 83.4, 2.0),
    ("DP-CFE chain", 28.8, 0.8),
    ("DP-refined", 14.2, 0.7),
];

/// Random x-flips of a batch: a function of `(seed, k)` alone.
fn flips(seed: u64, k: usize, batch: usize) -> Vec<bool> {
    let mut next = splitmix(seed ^ 0xF11F ^ (k as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
    (0..batch).map(|_| next() & 1 == 1).collect()
}

/// `½Σ(a − b)²/B`, the paper's L2 loss.
fn l2(a: Tensor<2>, b: Tensor<2>) -> Tensor<1> {
    let bs = a.dims()[0];
    let d = a - b;
    (d.clone() * d).sum().mul_scalar(0.5 / bs as f64)
}

/// Trains every stage into `dir/<stage>` on the autodiff device; returns each stage's report.
pub fn train_all(
    cfg: &BurgersControlConfig,
    data: &BurgersData,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<Vec<(String, StageReport)>> {
    let device = Device::flex().autodiff();
    device.seed(cfg.seed);
    let (steps, seed) = (data.config.scene.steps, cfg.seed);
    let scene = &data.config.scene;
    let train = &data.train;
    let draw = |k: usize, batch: usize, starts: usize| {
        super::sampling::batch_of(
            super::sampling::Sampling::Independent,
            seed,
            k,
            batch,
            (train.len(), starts),
        )
    };
    let seqs = |picks: &[(usize, usize)]| picks.iter().map(|p| train[p.0]).collect::<Vec<_>>();
    let mut stages = Vec::new();

    // (a) CFE supervised: (u_t, u*, t/n) → u_{t+1}, t < n − 1.
    let b = cfg.sup_cfe.batch;
    let (sup_cfe, r) = run_stage(
        "sup-cfe",
        &cfg.sup_cfe,
        &dir.join("sup-cfe"),
        Start::Fresh(UNet1dConfig::cfe().init(&device)),
        |net, k| {
            let picks = draw(k, b, steps - 1);
            let (s, fl) = (seqs(&picks), flips(seed, k, b));
            let t: Vec<usize> = picks.iter().map(|p| p.1).collect();
            let gather = |dt: usize| {
                let times: Vec<usize> = t.iter().map(|t| t + dt).collect();
                data.states_at(&s, &times, &fl, &device)
            };
            let target = data.states(&s, steps, &fl, &device);
            let times: Vec<f32> = t.iter().map(|&t| t as f32 / steps as f32).collect();
            let tt = Tensor::<1>::from_floats(times.as_slice(), &device)
                .reshape([b, 1])
                .expand([b, scene.cells]);
            let x = Tensor::stack::<3>(vec![gather(0), target, tt], 1);
            let pred = net.forward(x).reshape([b, scene.cells]);
            Ok(l2(pred, gather(1)))
        },
        progress,
    )?;
    stages.push(("sup-cfe".to_string(), r));

    // (b) CFE with differentiable physics: the force loss of the whole chain.
    let b = cfg.dp_cfe.batch;
    let init = if cfg.dp_cfe_from_supervised {
        Start::After(sup_cfe.clone())
    } else {
        Start::Fresh(UNet1dConfig::cfe().init(&device))
    };
    let (_, r) = run_stage(
        "dp-cfe",
        &cfg.dp_cfe,
        &dir.join("dp-cfe"),
        init,
        |net, k| {
            let (s, fl) = (seqs(&draw(k, b, 1)), flips(seed, k, b));
            let (u0, target) = (
                data.states(&s, 0, &fl, &device),
                data.states(&s, steps, &fl, &device),
            );
            let states = cfe_chain(net, u0, target, steps);
            Ok(force_loss(forces(scene, &states), b, cfg.force_loss_scale))
        },
        progress,
    )?;
    stages.push(("dp-cfe".to_string(), r));

    // (c) OP_n supervised, OP_n starting from OP_{n/2}.
    let b = cfg.sup_op.batch;
    let mut levels: Vec<UNet1d> = Vec::new();
    let mut n = 2;
    while n <= steps {
        let name = format!("sup-op{n}");
        let init = match levels.last() {
            Some(prev) => Start::After(prev.clone().map(&mut FreshParams)),
            None => Start::Fresh(UNet1dConfig::op().init(&device)),
        };
        let (net, r) = run_stage(
            &name,
            &cfg.sup_op,
            &dir.join(&name),
            init,
            |net, k| {
                let picks = draw(k, b, steps - n + 1);
                let (s, fl) = (seqs(&picks), flips(seed, k, b));
                let at = |dt: usize| {
                    let times: Vec<usize> = picks.iter().map(|p| p.1 + dt).collect();
                    data.states_at(&s, &times, &fl, &device)
                };
                Ok(l2(predict_mid(&net.packed(), at(0), at(n)), at(n / 2)))
            },
            progress,
        )?;
        levels.push(net);
        stages.push((name, r));
        n *= 2;
    }
    let sup_op = Hierarchy {
        ops: levels
            .into_iter()
            .map(|n| n.map(&mut FreshParams))
            .collect(),
    };

    // (c) staggered execution end to end, then (d) refinement end to end.
    let hierarchy_stage =
        |name: &str,
         stage: &StageConfig,
         init: Hierarchy,
         scheme: fn(&Hierarchy, Tensor<2>, Tensor<2>, usize) -> Vec<Tensor<2>>|
         -> Result<(Hierarchy, StageReport)> {
            let b = stage.batch;
            run_stage(
                name,
                stage,
                &dir.join(name),
                Start::After(init),
                |ops, k| {
                    let (s, fl) = (seqs(&draw(k, b, 1)), flips(seed, k, b));
                    let states = scheme(
                        ops,
                        data.states(&s, 0, &fl, &device),
                        data.states(&s, steps, &fl, &device),
                        steps,
                    );
                    Ok(force_loss(forces(scene, &states), b, cfg.force_loss_scale))
                },
                progress,
            )
        };
    let (dp_staggered, r) = hierarchy_stage(
        "dp-staggered",
        &cfg.dp_staggered,
        sup_op.clone(),
        crate::control::staggered,
    )?;
    stages.push(("dp-staggered".to_string(), r));
    let (_, r) = hierarchy_stage(
        "dp-refined",
        &cfg.dp_refined,
        dp_staggered.clone(),
        crate::control::refined,
    )?;
    stages.push(("dp-refined".to_string(), r));
    Ok(stages)
}

impl Study for BurgersControl {
    const NAME: &'static str = "burgers-control";
    const ABOUT: &'static str = "Learning to Control PDEs (Holl et al. 2020): Burgers control with CFE chains and OP hierarchies";
    type Config = BurgersControlConfig;
    type Result = BurgersControlResult;

    fn full() -> BurgersControlConfig {
        BurgersControlConfig::default()
    }

    fn quick() -> BurgersControlConfig {
        BurgersControlConfig::quick()
    }

    fn validate(cfg: &BurgersControlConfig) -> Result<()> {
        cfg.validate()
    }

    fn run(
        cfg: &BurgersControlConfig,
        dir: &Path,
        progress: &dyn Progress,
    ) -> Result<BurgersControlResult> {
        cfg.validate()?;
        let t0 = Instant::now();
        progress.start("burgers data (sequences)", cfg.data.sequences as u64);
        let data_dir = dir.join("data");
        let file = dataset::generate(&cfg.data, &data_dir, |k, _| progress.set(k as u64))?;
        let data = BurgersData::load(&file)?;
        let data_s = t0.elapsed().as_secs_f64();
        let stages = train_all(cfg, &data, dir, progress)?;
        report::evaluate(cfg, &data, &stages, dir, data_s, t0, progress)
    }

    fn report(result: &BurgersControlResult, _dir: &Path) -> String {
        report::results_page(result)
    }
}
