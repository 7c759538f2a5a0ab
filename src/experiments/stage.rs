//! Training stages of the control studies (Burgers, shape transitions). A stage is Adam
//! on one module with the learning rate `lr·0.5^(k/half_life)`, a loss that draws its batch
//! from `(seed, iteration)` alone, and a folder holding `model.bpk`, `optimizer.bpk` and
//! `stage.json` (settings, losses, wall time, a fingerprint of the starting network), saved every
//! `checkpoint_every` iterations and at the end, so that a rerun continues an interrupted stage
//! where it stopped and keeps a finished one. A rerun asking for more iterations with the same
//! batch and learning-rate schedule extends a finished stage (the batches and rates depend on
//! the iteration alone, so this equals a longer run from the start); a stage whose starting
//! network has changed since (an earlier stage was extended) is refused.

use crate::error::{DiffsimError, Result};
use crate::experiments::study::Progress;
use crate::experiments::study::{MODEL_FILE, OPTIMIZER_FILE, save_checkpoint};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// Settings of one training stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StageConfig {
    /// Adam iterations.
    pub iterations: usize,
    /// Sequences (or frames, for supervised stages) per batch.
    pub batch: usize,
    /// Initial learning rate.
    pub learning_rate: f64,
    /// Iterations over which the learning rate halves.
    pub half_life: f64,
    /// Iterations between checkpoints (0: only at the end).
    pub checkpoint_every: usize,
}

impl Default for StageConfig {
    fn default() -> Self {
        Self {
            iterations: 1000,
            batch: 32,
            learning_rate: 1e-3,
            half_life: 1000.0,
            checkpoint_every: 100,
        }
    }
}

impl StageConfig {
    /// The learning rate of iteration `k`.
    pub fn learning_rate_at(&self, k: usize) -> f64 {
        self.learning_rate * 0.5f64.powf(k as f64 / self.half_life)
    }

    /// Checks the settings of stage `name`.
    pub fn validate(&self, name: &str) -> Result<()> {
        let positive = |x: f64| x.is_finite() && x > 0.0;
        if self.batch == 0 || !positive(self.learning_rate) || !positive(self.half_life) {
            return Err(DiffsimError::config(format!(
                "{name}: batch, learning_rate and half_life must be positive"
            )));
        }
        Ok(())
    }
}

/// What a stage reports (`stage.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StageReport {
    /// The settings.
    pub config: StageConfig,
    /// Loss of every iteration.
    pub losses: Vec<f64>,
    /// Wall time of all runs of the stage (s).
    pub wall_s: f64,
    /// [`fingerprint`] of the network the stage started from, when that was an earlier
    /// stage's ([`Start::After`]).
    #[serde(default)]
    pub init: Option<f64>,
}

impl StageReport {
    /// Iterations per second.
    pub fn iterations_per_s(&self) -> f64 {
        self.losses.len() as f64 / self.wall_s.max(1e-9)
    }

    /// The stage's line on a results page.
    pub fn row(&self, name: &str) -> StageRow {
        (
            name.to_string(),
            self.losses.len(),
            self.losses.last().copied().unwrap_or(f64::NAN),
            self.iterations_per_s(),
            self.wall_s,
        )
    }
}

/// A stage on a results page: `(name, iterations, final loss, iterations/s, wall s)`.
pub type StageRow = (String, usize, f64, f64, f64);

/// The Markdown table of `rows`.
pub fn stages_table(rows: &[StageRow]) -> String {
    let mut s = "| stage | iterations | final loss | it/s | wall (s) |\n|---|---|---|---|---|\n"
        .to_string();
    for (name, it, last, rate, wall) in rows {
        s += &format!("| {name} | {it} | {last:.4e} | {rate:.2} | {wall:.1} |\n");
    }
    s
}

const REPORT: &str = "stage.json";

/// A fingerprint of a module's parameters: `Σ_k (1 + k mod 7)·x_k` over every scalar in
/// visiting order (f64). Equal networks give equal values; any change of a weight shows.
pub fn fingerprint<M: Module>(module: &M) -> f64 {
    struct Sum(f64, usize);
    impl ModuleVisitor for Sum {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let values = param.val().into_data().convert::<f64>();
            for x in values.iter::<f64>() {
                self.0 += (1 + self.1 % 7) as f64 * x;
                self.1 += 1;
            }
        }
    }
    let mut sum = Sum(0.0, 0);
    module.visit(&mut sum);
    sum.0
}

/// True when `a` and `b` differ only in iterations and checkpoint spacing.
fn same_schedule(a: &StageConfig, b: &StageConfig) -> bool {
    (a.batch, a.learning_rate, a.half_life) == (b.batch, b.learning_rate, b.half_life)
}

/// The network a stage starts from.
pub enum Start<M> {
    /// Freshly initialised weights. They are not compared on a rerun: they come from the
    /// device's shared random generator, which concurrent work may also draw from.
    Fresh(M),
    /// An earlier stage's trained network: a rerun refuses the stage when it has changed.
    After(M),
}

/// Runs (or continues, extends, or keeps) stage `name` in `dir` from `start`; `loss(net, k)`
/// is the loss of iteration `k`. A stage folder of another schedule, of more iterations, or
/// trained from another earlier network is an error.
pub fn run_stage<M: Module + Clone>(
    name: &str,
    cfg: &StageConfig,
    dir: &Path,
    start: Start<M>,
    loss: impl Fn(&M, usize) -> Result<Tensor<1>>,
    progress: &dyn Progress,
) -> Result<(M, StageReport)> {
    cfg.validate(name)?;
    std::fs::create_dir_all(dir).map_err(|e| DiffsimError::file(dir, e))?;
    let mut optim = AdamConfig::new().init();
    let (mut net, init_print) = match start {
        Start::Fresh(m) => (m, None),
        Start::After(m) => {
            let f = fingerprint(&m);
            (m, Some(f))
        }
    };
    let mut report = StageReport {
        config: cfg.clone(),
        losses: Vec::new(),
        wall_s: 0.0,
        init: init_print,
    };
    if dir.join(REPORT).is_file() {
        let old = read_report(dir)?;
        let path = dir.join(REPORT);
        if !same_schedule(&old.config, cfg) {
            return Err(DiffsimError::file(
                path,
                format!(
                    "stage '{name}' was trained with other settings; use another output folder"
                ),
            ));
        }
        if old.losses.len() > cfg.iterations {
            return Err(DiffsimError::file(
                path,
                format!(
                    "stage '{name}' has {} iterations, more than the {} asked for; use another output folder",
                    old.losses.len(),
                    cfg.iterations
                ),
            ));
        }
        if let (Some(was), Some(now)) = (old.init, init_print)
            && (was - now).abs() > 1e-12 * was.abs().max(1.0)
        {
            return Err(DiffsimError::file(
                path,
                format!(
                    "stage '{name}' was trained from another starting network (an earlier stage has changed); delete its folder to retrain it"
                ),
            ));
        }
        net = load(net, dir)?;
        let path = dir.join(OPTIMIZER_FILE);
        optim = optim
            .load(&path)
            .map_err(|e| DiffsimError::file(&path, format!("{e:?}")))?;
        report = StageReport {
            config: cfg.clone(),
            ..old
        };
    }
    progress.start(name, cfg.iterations as u64);
    progress.set(report.losses.len() as u64);
    let t0 = Instant::now();
    let (wall_before, start) = (report.wall_s, report.losses.len());
    for k in start..cfg.iterations {
        let l = loss(&net, k)?;
        let value = l.clone().into_scalar::<f64>();
        if !value.is_finite() {
            return Err(DiffsimError::config(format!(
                "{name}: loss {value} at iteration {k}; lower its learning_rate"
            )));
        }
        let grads = GradientsParams::from_grads(l.backward(), &net);
        net = optim.step(cfg.learning_rate_at(k), net, grads);
        report.losses.push(value);
        progress.set(k as u64 + 1);
        let done = k + 1;
        if done < cfg.iterations && cfg.checkpoint_every > 0 && done % cfg.checkpoint_every == 0 {
            report.wall_s = wall_before + t0.elapsed().as_secs_f64();
            save_checkpoint(dir, &net, &optim, REPORT, &report)?;
        }
    }
    if start < cfg.iterations {
        report.wall_s = wall_before + t0.elapsed().as_secs_f64();
        save_checkpoint(dir, &net, &optim, REPORT, &report)?;
    }
    Ok((net, report))
}

/// Reads `dir/stage.json`.
pub fn read_report(dir: &Path) -> Result<StageReport> {
    let path = dir.join(REPORT);
    let text = std::fs::read_to_string(&path)
        .map_err(|_| DiffsimError::file(&path, "no trained model here (stage.json missing)"))?;
    serde_json::from_str(&text).map_err(|e| DiffsimError::file(&path, e))
}

/// `net` with the weights of `dir/model.bpk`.
pub fn load<M: Module>(net: M, dir: &Path) -> Result<M> {
    let path = dir.join(MODEL_FILE);
    if !path.is_file() {
        return Err(DiffsimError::file(&path, "missing model"));
    }
    net.try_load_file(&path)
        .map_err(|e| DiffsimError::file(&path, format!("{e:?}")))
}
