//! Learning to Control PDEs (Holl et al. 2020), shape transitions at the scale of the authors'
//! revised notebook: a marker density on a 64x64 open grid is to reach a target shape in 16
//! steps of potential flow. The OP networks are pre-trained supervised on moving rectangles,
//! the CFE with one differentiable step on the same data, then CFE and OP hierarchy are
//! trained together through 16 steps of staggered execution with differentiable physics.
//! Metric: the relative final-density error `Σ|ρ₁₆ − ρ*| / Σ|ρ₀ − ρ*|` on the test set, for the
//! supervised-only and the jointly trained networks, executed staggered and with prediction
//! refinement.
//!
//! Files: [`data`] (shapes, examples), [`report`] (evaluation, pictures, results page); the
//! physics is [`crate::fluid::ShapeFlow`], the execution schemes [`crate::control::flow`].
//! Every stage resumes (see [`crate::experiments::stage`]).

pub mod baseline;
pub mod data;
pub mod report;

pub use super::control_baseline::{BaselineConfig, BaselineResult};
pub use data::{ShapeDataConfig, ShapeLibrary};
pub use report::ShapeTransitionResult;

use super::sampling::{Sampling, batch_of};
use super::stage::{StageConfig, StageReport, Start, run_stage};
use super::study::{Progress, Study};
use crate::control::flow::{Execution, FlowPlanner, apply, execute};
use crate::error::{DiffsimError, Result};
use crate::fluid::ShapeFlow;
use crate::grid::Resolution;
use crate::io::write_json;
use crate::nn::{FreshParams, UNet2d, UNet2dConfig};
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use data::{Shape, draw_rectangle, draw_shape, library, rectangle, transition};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// Settings of the study (TOML, every field optional; `--print-config` prints them all).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShapeTransitionConfig {
    /// The data.
    pub data: ShapeDataConfig,
    /// The CFE network (the notebook: 2 levels, 16 filters, 2 residual blocks).
    pub cfe_net: UNet2dConfig,
    /// Every OP network (the notebook: 3 levels).
    pub op_net: UNet2dConfig,
    /// Supervised pre-training of each OP_n on moving rectangles (the same for every n).
    pub sup_op: StageConfig,
    /// Pre-training of the CFE through one differentiable step on moving rectangles.
    pub sup_cfe: StageConfig,
    /// CFE and OP hierarchy trained together through staggered execution.
    pub dp_staggered: StageConfig,
    /// Weight of the final-frame target loss. The authors' training counts it twice (once as
    /// the differentiable-physics loss, once as the observation loss of the last frame).
    pub target_weight: f64,
    /// Weight of the force loss (the notebook: 1).
    pub force_weight: f64,
    /// The classical baseline: Adam on the per-step potentials of single test examples.
    pub baseline: BaselineConfig,
    /// Test examples drawn as GIFs.
    pub pictures: usize,
    /// Seed of the network weights and the batches.
    pub seed: u64,
}

impl Default for ShapeTransitionConfig {
    /// The notebook: batch 16, 1000 iterations per stage, Adam 1e-3 (5e-4 for the joint
    /// stage) halving every 1000 iterations. The joint stage rolls back from loss spikes
    /// (3× the last checkpoint interval's mean; the notebook has no such guard).
    fn default() -> Self {
        let stage = |learning_rate, rollback| StageConfig {
            iterations: 1000,
            batch: 16,
            learning_rate,
            half_life: 1000.0,
            checkpoint_every: 100,
            rollback,
        };
        Self {
            data: ShapeDataConfig::default(),
            cfe_net: UNet2dConfig::shape_cfe(),
            op_net: UNet2dConfig::shape_op(),
            sup_op: stage(1e-3, 0.0),
            sup_cfe: stage(1e-3, 0.0),
            dp_staggered: stage(5e-4, 3.0),
            target_weight: 2.0,
            force_weight: 1.0,
            baseline: BaselineConfig::default(),
            pictures: 3,
            seed: 1,
        }
    }
}

impl ShapeTransitionConfig {
    /// The toy size of `--quick` (the test suite runs it): 32x32, 4 steps, 48 examples,
    /// narrow networks, a few iterations per stage.
    pub fn quick() -> Self {
        let stage = |iterations| StageConfig {
            iterations,
            batch: 4,
            checkpoint_every: 0,
            ..StageConfig::default()
        };
        let net = |levels| {
            UNet2dConfig::new()
                .with_levels(levels)
                .with_filters(4)
                .with_blocks(1)
        };
        Self {
            data: ShapeDataConfig {
                resolution: 32,
                steps: 4,
                examples: 48,
                test: 8,
                validation: 8,
                ..ShapeDataConfig::default()
            },
            cfe_net: net(2),
            op_net: net(3),
            sup_op: stage(3),
            sup_cfe: stage(3),
            dp_staggered: stage(3),
            baseline: BaselineConfig {
                examples: 2,
                iterations: 60,
                ..BaselineConfig::default()
            },
            pictures: 1,
            ..Self::default()
        }
    }

    /// Checks every setting before anything runs.
    pub fn validate(&self) -> Result<()> {
        self.data.validate()?;
        for (name, s) in [
            ("sup_op", &self.sup_op),
            ("sup_cfe", &self.sup_cfe),
            ("dp_staggered", &self.dp_staggered),
        ] {
            s.validate(name)?;
        }
        for (name, net) in [("cfe_net", &self.cfe_net), ("op_net", &self.op_net)] {
            let n = self.data.resolution;
            if net.levels == 0
                || !n.is_multiple_of(1 << net.levels)
                || net.inputs != 2
                || net.outputs != 1
            {
                return Err(DiffsimError::config(format!(
                    "{name}: needs 2 inputs, 1 output and 1 ≤ levels with 2^levels dividing the resolution {n}"
                )));
            }
        }
        let weight = |w: f64| w.is_finite() && w >= 0.0;
        if !weight(self.target_weight) || !weight(self.force_weight) || self.target_weight == 0.0 {
            return Err(DiffsimError::config(
                "target_weight must be positive and force_weight non-negative",
            ));
        }
        self.baseline.validate(self.data.test)?;
        if self.pictures > self.data.test {
            return Err(DiffsimError::config(format!(
                "pictures = {} is more than the {} test examples",
                self.pictures, self.data.test
            )));
        }
        Ok(())
    }

    /// The training objective of a run that reached `last` through steps of `velocities`:
    /// `target_weight` times the batch mean of the target loss, plus `force_weight` times the
    /// force loss (none with fewer than two steps).
    pub fn objective(
        &self,
        flow: &ShapeFlow,
        target: Tensor<3>,
        last: Tensor<3>,
        velocities: &[(Tensor<3>, Tensor<3>)],
    ) -> Tensor<1> {
        let loss = flow.target_loss(target, last).mean() * self.target_weight;
        if self.force_weight > 0.0
            && let Some(force) = flow.force_loss(velocities)
        {
            loss + force * self.force_weight
        } else {
            loss
        }
    }

    /// The physics of the data's resolution (`dt = 1`).
    pub fn flow(&self) -> ShapeFlow {
        let n = self.data.resolution;
        ShapeFlow::new(Resolution::new(n, n), 1.0).expect("a validated resolution")
    }
}

/// Densities of the study's examples on a device.
pub struct Examples<'a> {
    cfg: &'a ShapeDataConfig,
    shapes: Vec<Shape>,
    device: Device,
}

impl<'a> Examples<'a> {
    /// The examples of `cfg` (the shape library is built here).
    pub fn new(cfg: &'a ShapeDataConfig, device: &Device) -> Self {
        Self {
            cfg,
            shapes: library(cfg.library, cfg.patch()),
            device: device.clone(),
        }
    }

    fn tensor(&self, values: Vec<f32>, b: usize) -> Tensor<3> {
        let n = self.cfg.resolution;
        Tensor::from_data(TensorData::new(values, [b, n, n]), &self.device)
    }

    /// `(start, target)` of the transition examples `indices`, `[B, n, n]` each.
    pub fn transitions(&self, indices: &[usize]) -> (Tensor<3>, Tensor<3>) {
        let cells = self.cfg.resolution * self.cfg.resolution;
        let (mut a, mut b) = (
            vec![0.0; indices.len() * cells],
            vec![0.0; indices.len() * cells],
        );
        for (k, &i) in indices.iter().enumerate() {
            let [p, q] = transition(self.cfg, self.shapes.len(), i);
            draw_shape(
                self.cfg,
                &self.shapes,
                p,
                &mut a[k * cells..(k + 1) * cells],
            );
            draw_shape(
                self.cfg,
                &self.shapes,
                q,
                &mut b[k * cells..(k + 1) * cells],
            );
        }
        (self.tensor(a, indices.len()), self.tensor(b, indices.len()))
    }

    /// Frame `f` of the moving-rectangle sequences `indices`, `[B, n, n]`.
    pub fn rectangles(&self, indices: &[usize], f: usize) -> Tensor<3> {
        let cells = self.cfg.resolution * self.cfg.resolution;
        let mut a = vec![0.0; indices.len() * cells];
        for (k, &i) in indices.iter().enumerate() {
            draw_rectangle(
                self.cfg,
                &rectangle(self.cfg, i),
                f,
                &mut a[k * cells..(k + 1) * cells],
            );
        }
        self.tensor(a, indices.len())
    }

    /// The shape library.
    pub fn shapes(&self) -> &[Shape] {
        &self.shapes
    }
}

/// The study.
pub struct ShapeTransition;

/// The pbdl-book run's relative final-density error on the test set.
pub const PUBLISHED_RELATIVE_MAE: f64 = 0.0545;

/// The networks of every stage.
pub struct Trained {
    /// OP networks pre-trained supervised with the CFE pre-trained on one step.
    pub supervised: FlowPlanner,
    /// After joint training with differentiable physics.
    pub joint: FlowPlanner,
    /// `(stage, report)` in training order.
    pub stages: Vec<(String, StageReport)>,
}

/// The data settings a folder's networks were trained on (written by the first run).
const DATA_FILE: &str = "data.json";

/// Refuses a folder whose networks were trained on other data; records `data` in a new one.
fn same_data(data: &ShapeDataConfig, dir: &Path) -> Result<()> {
    let path = dir.join(DATA_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let was: ShapeDataConfig =
                serde_json::from_str(&text).map_err(|e| DiffsimError::file(&path, e))?;
            if &was != data {
                return Err(DiffsimError::file(
                    &path,
                    "the networks here were trained on other data settings; use another output folder",
                ));
            }
            Ok(())
        }
        Err(_) => write_json(data, &path),
    }
}

/// Trains every stage into `dir/<stage>` on the autodiff device.
pub fn train_all(
    cfg: &ShapeTransitionConfig,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<Trained> {
    same_data(&cfg.data, dir)?;
    let device = Device::flex().autodiff();
    device.seed(cfg.seed);
    let flow = cfg.flow();
    let ex = Examples::new(&cfg.data, &device);
    let train = cfg.data.train_range();
    let draw = |k: usize, batch: usize| -> Vec<usize> {
        batch_of(Sampling::Independent, cfg.seed, k, batch, (train.len(), 1))
            .into_iter()
            .map(|(i, _)| train.start + i)
            .collect()
    };
    let steps = cfg.data.steps;
    let mut stages = Vec::new();

    // OP_n on moving rectangles: frames 0 and n in, frame n/2 out (the spectral loss).
    let mut ops: Vec<UNet2d> = Vec::new();
    let mut n = 2;
    while n <= steps {
        let name = format!("sup-op{n}");
        let (net, r) = run_stage(
            &name,
            &cfg.sup_op,
            &dir.join(&name),
            Start::Fresh(cfg.op_net.init(&device)),
            |net, k| {
                let idx = draw(k, cfg.sup_op.batch);
                let (a, b, mid) = (
                    ex.rectangles(&idx, 0),
                    ex.rectangles(&idx, n),
                    ex.rectangles(&idx, n / 2),
                );
                Ok(flow.target_loss(mid, apply(net, a, b)).mean())
            },
            progress,
        )?;
        ops.push(net);
        stages.push((name, r));
        n *= 2;
    }

    // CFE through one differentiable step: frame 1 of the rectangles as the planned state.
    let (cfe, r) = run_stage(
        "sup-cfe",
        &cfg.sup_cfe,
        &dir.join("sup-cfe"),
        Start::Fresh(cfg.cfe_net.init(&device)),
        |net, k| {
            let idx = draw(k, cfg.sup_cfe.batch);
            let (a, b) = (ex.rectangles(&idx, 0), ex.rectangles(&idx, 1));
            let (reached, _, _) = flow.step(a.clone(), apply(net, a, b.clone()));
            Ok(cfg.objective(&flow, b, reached, &[]))
        },
        progress,
    )?;
    stages.push(("sup-cfe".into(), r));
    let supervised = FlowPlanner { cfe, ops };

    // Joint training through staggered execution on the shape transitions.
    let init = supervised.clone().map(&mut FreshParams);
    let (joint, r) = run_stage(
        "dp-staggered",
        &cfg.dp_staggered,
        &dir.join("dp-staggered"),
        Start::After(init),
        |planner, k| {
            let (start, target) = ex.transitions(&draw(k, cfg.dp_staggered.batch));
            let run = execute(
                &flow,
                planner,
                start,
                target.clone(),
                steps,
                Execution::Staggered,
            );
            let last = run.densities.last().expect("frames").clone();
            Ok(cfg.objective(&flow, target, last, &run.velocities))
        },
        progress,
    )?;
    stages.push(("dp-staggered".into(), r));
    Ok(Trained {
        supervised,
        joint,
        stages,
    })
}

impl Study for ShapeTransition {
    const NAME: &'static str = "shape-transition";
    const ABOUT: &'static str = "Learning to Control PDEs (Holl et al. 2020): shape transitions, a CFE and an OP hierarchy moving a marker into a target shape through potential flow";
    type Config = ShapeTransitionConfig;
    type Result = ShapeTransitionResult;

    fn full() -> ShapeTransitionConfig {
        ShapeTransitionConfig::default()
    }

    fn quick() -> ShapeTransitionConfig {
        ShapeTransitionConfig::quick()
    }

    fn validate(cfg: &ShapeTransitionConfig) -> Result<()> {
        cfg.validate()
    }

    fn run(
        cfg: &ShapeTransitionConfig,
        dir: &Path,
        progress: &dyn Progress,
    ) -> Result<ShapeTransitionResult> {
        cfg.validate()?;
        let t0 = Instant::now();
        let trained = train_all(cfg, dir, progress)?;
        report::evaluate(cfg, &trained, dir, t0, progress)
    }

    fn report(result: &ShapeTransitionResult, _dir: &Path) -> String {
        report::results_page(result)
    }
}
