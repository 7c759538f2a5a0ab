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
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
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
    /// Divergence guard (0: off): when the mean loss of the last [`SPIKE_WINDOW`] iterations
    /// exceeds this factor times the mean of the last `checkpoint_every` kept (not rolled-back)
    /// losses before the last checkpoint, or a loss is not finite, the network and optimizer go back to that
    /// checkpoint and training goes on with the next iteration's batch (the batches in between
    /// are skipped, as PaLM's training did at loss spikes). Needs checkpoints at least
    /// [`SPIKE_WINDOW`] iterations apart; before the first one a divergence is an error.
    pub rollback: f64,
}

/// Iterations whose mean loss the divergence guard watches.
pub const SPIKE_WINDOW: usize = 10;

/// Roll-backs within `MAX_ROLLBACKS + 1` checkpoint intervals before the guard gives up.
const MAX_ROLLBACKS: usize = 3;

impl Default for StageConfig {
    fn default() -> Self {
        Self {
            iterations: 1000,
            batch: 32,
            learning_rate: 1e-3,
            half_life: 1000.0,
            checkpoint_every: 100,
            rollback: 0.0,
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
        if !(self.rollback == 0.0 || self.rollback.is_finite() && self.rollback > 1.0) {
            return Err(DiffsimError::config(format!(
                "{name}: rollback must be 0 (off) or a factor above 1"
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
    /// Loss of every iteration (`f64::MAX` where it was not finite).
    pub losses: Vec<f64>,
    /// Wall time of all runs of the stage (s).
    pub wall_s: f64,
    /// [`fingerprint`] of the network the stage started from, when that was an earlier
    /// stage's ([`Start::After`]).
    #[serde(default)]
    pub init: Option<f64>,
    /// Divergence-guard roll-backs: `(checkpoint, iteration)`, the iterations
    /// `checkpoint..=iteration` undone (their losses stay in `losses`).
    #[serde(default)]
    pub rollbacks: Vec<(usize, usize)>,
}

impl StageReport {
    /// Whether iteration `i` was undone by a roll-back.
    fn undone(&self, i: usize) -> bool {
        self.rollbacks.iter().any(|&(a, b)| (a..=b).contains(&i))
    }

    /// Whether the last [`SPIKE_WINDOW`] losses (since checkpoint `c` and the last roll-back)
    /// have left the last `interval` kept losses before `c` by more than `factor`.
    fn spiking(&self, c: usize, interval: usize, factor: f64) -> bool {
        let k = self.losses.len();
        let fresh = self.rollbacks.last().map_or(0, |r| r.1 + 1).max(c);
        if factor == 0.0 || interval == 0 || k < fresh + SPIKE_WINDOW {
            return false;
        }
        let reference: Vec<f64> = (0..c)
            .rev()
            .filter(|&i| !self.undone(i))
            .take(interval)
            .map(|i| self.losses[i])
            .collect();
        let mean = |w: &[f64]| w.iter().sum::<f64>() / w.len() as f64;
        reference.len() == interval
            && mean(&self.losses[k - SPIKE_WINDOW..]) > factor * mean(&reference)
    }
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
        rollbacks: Vec::new(),
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
        (net, optim) = load_checkpoint(net, optim, dir)?;
        report = StageReport {
            config: cfg.clone(),
            ..old
        };
    }
    progress.start(name, cfg.iterations as u64);
    progress.set(report.losses.len() as u64);
    let t0 = Instant::now();
    let (wall_before, start) = (report.wall_s, report.losses.len());
    let every = cfg.checkpoint_every;
    // The last checkpoint (the guard's return point).
    let last_checkpoint = |k: usize| k.checked_div(every).map_or(0, |q| q * every);
    for k in start..cfg.iterations {
        let l = loss(&net, k)?;
        let value = l.clone().into_scalar::<f64>();
        let diverged = !value.is_finite();
        if !diverged {
            let grads = GradientsParams::from_grads(l.backward(), &net);
            net = optim.step(cfg.learning_rate_at(k), net, grads);
        }
        report.losses.push(if diverged { f64::MAX } else { value });
        progress.set(k as u64 + 1);
        let c = last_checkpoint(k);
        if diverged || report.spiking(c, every, cfg.rollback) {
            let recent = (report.rollbacks.iter())
                .filter(|r| r.1 + (MAX_ROLLBACKS + 1) * every > k)
                .count();
            if cfg.rollback == 0.0 || c == 0 || recent >= MAX_ROLLBACKS {
                return Err(DiffsimError::config(format!(
                    "{name}: the loss diverged at iteration {k} ({value:.3e}); lower its learning_rate"
                )));
            }
            (net, optim) = load_checkpoint(net, optim, dir)?;
            report.rollbacks.push((c, k));
        }
        let done = k + 1;
        if done < cfg.iterations && every > 0 && done % every == 0 {
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

/// `net` and `optim` with the weights and moments of the checkpoint in `dir`.
fn load_checkpoint<M: Module>(
    net: M,
    optim: ModuleOptimizer,
    dir: &Path,
) -> Result<(M, ModuleOptimizer)> {
    let path = dir.join(OPTIMIZER_FILE);
    let optim = optim
        .load(&path)
        .map_err(|e| DiffsimError::file(&path, format!("{e:?}")))?;
    Ok((load(net, dir)?, optim))
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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Initializer, Linear, LinearConfig};
    use burn::tensor::Device;
    use std::cell::RefCell;

    struct Quiet;
    impl Progress for Quiet {
        fn start(&self, _: &str, _: u64) {}
        fn set(&self, _: u64) {}
    }

    /// A 1→1 linear fit whose loss is multiplied by `scale(k)` (a spike when large); records
    /// the network's fingerprint at the start of every iteration.
    fn fit(
        dir: &Path,
        iterations: usize,
        scale: impl Fn(usize) -> f64,
        seen: &RefCell<Vec<f64>>,
    ) -> Result<(Linear, StageReport)> {
        let dev = Device::flex().autodiff();
        let cfg = StageConfig {
            iterations,
            batch: 1,
            learning_rate: 1e-2,
            half_life: 1e9,
            checkpoint_every: 10,
            rollback: 3.0,
        };
        let net = LinearConfig::new(1, 1)
            .with_initializer(Initializer::Constant { value: 0.5 })
            .init(&dev);
        let x = Tensor::<2>::from_floats([[1.0], [2.0], [-1.0]], &dev);
        let y = Tensor::<2>::from_floats([[3.0], [5.0], [-1.0]], &dev);
        let loss = |net: &Linear, k: usize| {
            seen.borrow_mut().push(fingerprint(net));
            let e = net.forward(x.clone()) - y.clone();
            Ok((e.clone() * e).sum().reshape([1]) * scale(k))
        };
        run_stage("fit", &cfg, dir, Start::Fresh(net), loss, &Quiet)
    }

    #[test]
    fn a_loss_spike_rolls_back_to_the_last_checkpoint_and_skips_its_batches() {
        let dir = tempfile::tempdir().unwrap();
        let seen = RefCell::new(Vec::new());
        let spike = |k: usize| if (25..30).contains(&k) { 1e4 } else { 1.0 };
        let (_, r) = fit(dir.path(), 60, spike, &seen).unwrap();
        // The window 20..=29 holds five spiked losses: back to the network of iteration 20.
        assert_eq!(r.rollbacks, vec![(20, 29)]);
        let seen = seen.borrow();
        assert_eq!(seen[30], seen[20]);
        assert_ne!(seen[30], seen[29]);
        assert_eq!(r.losses.len(), 60);
        // Without spikes nothing is rolled back and the runs agree.
        let (calm, twice) = (tempfile::tempdir().unwrap(), RefCell::new(Vec::new()));
        let (_, r) = fit(calm.path(), 40, |_| 1.0, &twice).unwrap();
        assert!(r.rollbacks.is_empty());
        assert_eq!(twice.borrow()[..20], seen[..20]);
    }

    #[test]
    fn a_lasting_divergence_is_an_error_and_a_guardless_nan_too() {
        let dir = tempfile::tempdir().unwrap();
        let seen = RefCell::new(Vec::new());
        let e = fit(dir.path(), 200, |k| if k >= 25 { 1e4 } else { 1.0 }, &seen)
            .expect_err("diverges for good");
        assert!(e.to_string().contains("diverged"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let nan = |k: usize| if k == 5 { f64::NAN } else { 1.0 };
        // Before the first checkpoint there is nothing to go back to.
        let e = fit(dir.path(), 20, nan, &seen).expect_err("NaN loss");
        assert!(e.to_string().contains("iteration 5"), "{e}");
        // After it, a NaN rolls back.
        let dir = tempfile::tempdir().unwrap();
        let (_, r) = fit(
            dir.path(),
            30,
            |k| if k == 15 { f64::NAN } else { 1.0 },
            &seen,
        )
        .unwrap();
        assert_eq!(r.rollbacks, vec![(10, 15)]);
    }
}
