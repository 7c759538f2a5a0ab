//! Training a corrector through unrolled differentiable solves (docs/wake-flow.md §3, docs/wake-flow.md §7).
//!
//! NON is `unroll = 1` (supervised: the solver step has no parameters, so no gradient passes
//! through it); SOL-m back-propagates the loss of `m` hybrid steps through the source solver's
//! custom adjoints. Per iteration: `batch` random (training simulation, start frame) pairs,
//! loss `(1/m) Σᵢ mean(((r − s̃)/std)²)` over every staggered sample of both components, one
//! Adam step. Start frames and the network's initial weights come from `seed` alone, so
//! every model of a comparison sees the same data in the same order.

use super::dataset::{NormStats, WakeData, WakeDataConfig};
use super::hybrid::{correct, features, source_step};
use crate::error::{DiffsimError, Result};
pub use crate::experiments::sampling::{Sampling, batch_of};
use crate::experiments::study::save_checkpoint;
use crate::fluid::{FluidState, Simulation};
use crate::nn::{Corrector, CorrectorConfig};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// Which corrector architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// docs/wake-flow.md §7: 16 channels, 2 residual blocks, 27,682 parameters.
    Small,
    /// docs/wake-flow.md §3 "mars_moon": 32 channels, 5 residual blocks, 260,354 parameters.
    MarsMoon,
}

impl ModelKind {
    /// Its architecture.
    pub fn config(self) -> CorrectorConfig {
        match self {
            Self::Small => CorrectorConfig::small(),
            Self::MarsMoon => CorrectorConfig::mars_moon(),
        }
    }

    /// Its name on the command line and in TOML.
    pub fn name(self) -> &'static str {
        match self {
            Self::Small => "small",
            Self::MarsMoon => "mars-moon",
        }
    }
}

/// Training settings. TOML-serialisable, saved beside the model; every field has a default
/// (docs/wake-flow.md §7).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Architecture.
    pub model: ModelKind,
    /// Hybrid steps per loss (1: NON; 4, 8, 16, 32: SOL-m).
    pub unroll: usize,
    /// Adam iterations. Default 5000: docs/wake-flow.md §7 names 1000 for a machine of ~10 GFLOP/s (≈ 22 min
    /// of training for NON + SOL-4 + SOL-8) and asks to scale the count with the measured
    /// throughput, within docs/wake-flow.md §7's ≤ ~30 min of training; on this 2-core machine 5000 per model
    /// take 27–31 min (pbdl-book's SOL-4: 5 epochs ≈ 5000 iterations). At 1000, SOL-4 has not
    /// learned the lowest Reynolds numbers yet (experiments/wake-flow/RESULTS.md).
    pub iterations: usize,
    /// (simulation, start frame) pairs per iteration.
    pub batch: usize,
    /// Adam learning rate for the first `1 − decay_fraction` of the iterations.
    pub learning_rate: f64,
    /// Learning rate of the last `decay_fraction` of the iterations.
    pub final_learning_rate: f64,
    /// Fraction of iterations at `final_learning_rate` (docs/wake-flow.md §7: 0.3).
    pub decay_fraction: f64,
    /// Iterations over which the learning rate ramps up linearly to `learning_rate`
    /// (iteration k uses (k+1)/warmup of it). Without it, Adam's first full-size step blows
    /// the untrained network's unrolled loss up 10–400×, and that gradient's square stays in
    /// Adam's second moment (β₂ = 0.999) for ~1000 iterations, shrinking every later step.
    pub warmup_iterations: usize,
    /// How the batches are drawn.
    pub sampling: Sampling,
    /// Seed of the initial weights and of the batch sampling.
    pub seed: u64,
    /// Save the model and the loss history every this many iterations (0: only at the end).
    pub checkpoint_every: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            model: ModelKind::Small,
            unroll: 4,
            iterations: 5000,
            batch: 3,
            learning_rate: 1e-3,
            final_learning_rate: 1e-4,
            decay_fraction: 0.3,
            warmup_iterations: 100,
            sampling: Sampling::Independent,
            seed: 0,
            checkpoint_every: 100,
        }
    }
}

impl TrainConfig {
    /// Checks the settings against the data (`frames` per training simulation).
    pub fn validate(&self, frames: usize) -> Result<()> {
        if self.unroll == 0 || self.unroll >= frames {
            return Err(DiffsimError::config(format!(
                "unroll {} must be between 1 and {} (the training simulations have {frames} frames)",
                self.unroll,
                frames - 1
            )));
        }
        if self.batch == 0 || self.iterations == 0 {
            return Err(DiffsimError::config(
                "batch and iterations must be at least 1",
            ));
        }
        if !(self.learning_rate > 0.0 && self.final_learning_rate > 0.0) {
            return Err(DiffsimError::config("learning rates must be positive"));
        }
        if !(0.0..=1.0).contains(&self.decay_fraction) {
            return Err(DiffsimError::config("decay_fraction must be in [0, 1]"));
        }
        Ok(())
    }

    /// The learning rate of iteration `k` (0-based): a linear warm-up, `learning_rate`, then
    /// `final_learning_rate` for the last `decay_fraction` of the iterations.
    pub fn learning_rate_at(&self, k: usize) -> f64 {
        let switch = ((1.0 - self.decay_fraction) * self.iterations as f64).round() as usize;
        if k >= switch {
            self.final_learning_rate
        } else if k < self.warmup_iterations {
            self.learning_rate * (k + 1) as f64 / self.warmup_iterations as f64
        } else {
            self.learning_rate
        }
    }
}

/// What training reports (also written as `train.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainReport {
    /// The settings.
    pub config: TrainConfig,
    /// Loss of every iteration so far.
    pub losses: Vec<f64>,
    /// Iterations done.
    pub iterations: usize,
    /// Iterations per second of this run (resumed iterations not counted).
    pub iterations_per_s: f64,
    /// Share of the forward wall time spent in the source solver (the rest: network,
    /// features, loss); the backward is not split.
    pub solver_share_forward: f64,
    /// Wall time of this run (s).
    pub wall_s: f64,
    /// The recipe of the dataset trained on (absent in reports of older versions).
    #[serde(default)]
    pub data_recipe: Option<WakeDataConfig>,
}

/// A velocity frame of a loaded simulation on `sim`'s device, batch 1, untracked.
pub fn frame_state(sim: &Simulation, data: &super::dataset::LoadedSim, t: usize) -> FluidState {
    let g = sim.grid;
    let (nu, nv) = (g.ny * (g.nx + 1), (g.ny + 1) * g.nx);
    let f = &data.frames;
    sim.state_from_arrays(
        f.u[t * nu..(t + 1) * nu].to_vec(),
        f.v[t * nv..(t + 1) * nv].to_vec(),
        None,
        1,
    )
}

/// `mean(((r − s)/std)²)` over every staggered sample of the batch, both components.
pub fn normalised_mse(
    states: &[FluidState],
    targets: &[FluidState],
    stats: &NormStats,
) -> Tensor<1> {
    let flat = |s: &[FluidState], u: bool| {
        Tensor::cat(
            s.iter()
                .map(|x| if u { x.u.clone() } else { x.v.clone() }.flatten::<1>(0, 2))
                .collect(),
            0,
        )
    };
    let du = (flat(states, true) - flat(targets, true)).div_scalar(stats.std_abs_u);
    let dv = (flat(states, false) - flat(targets, false)).div_scalar(stats.std_abs_v);
    Tensor::cat(vec![du, dv], 0).powf_scalar(2.0).mean()
}

/// The source simulations of the training set (the test set when `test`) on `device`, one per
/// Reynolds number.
pub fn sims_for(data: &WakeData, device: &Device, test: bool) -> Result<Vec<Simulation>> {
    let list = if test { &data.test } else { &data.train };
    list.iter()
        .map(|s| {
            let scene = data
                .manifest
                .recipe
                .scene(data.manifest.resolution, s.entry.reynolds)?;
            Simulation::new(&scene, device)
        })
        .collect()
}

/// Trains (or resumes from `dir/model.bpk` + `dir/train.json` when `resume`) on the CPU; see
/// [`train_on`].
pub fn train(
    data: &WakeData,
    cfg: &TrainConfig,
    dir: &Path,
    resume: bool,
    progress: impl FnMut(usize, f64),
) -> Result<(Corrector, TrainReport)> {
    train_on(data, cfg, dir, resume, &Device::flex(), progress)
}

/// Trains (or resumes from `dir/model.bpk` + `dir/train.json` when `resume`) on `device`,
/// writing the model, `train.toml` and `train.json` into `dir` every `checkpoint_every`
/// iterations and at the end. `progress(iteration, loss)` after every iteration.
///
/// The network is initialised on the CPU from the seed and then moved, so a seed gives the
/// same initial network on every device. An iteration reads one value back to the host (its
/// loss, for the divergence check and the log); state, loss and gradients otherwise stay on
/// the device. On a GPU, `solver_share_forward` measures the host's time issuing the physics,
/// not the device's time running it.
pub fn train_on(
    data: &WakeData,
    cfg: &TrainConfig,
    dir: &Path,
    resume: bool,
    device: &Device,
    mut progress: impl FnMut(usize, f64),
) -> Result<(Corrector, TrainReport)> {
    let frames = data.train.iter().map(|s| s.entry.frames).min().unwrap_or(0);
    cfg.validate(frames)?;
    let device = device.clone().autodiff();
    device.seed(cfg.seed);
    let init = Device::flex().autodiff();
    init.seed(cfg.seed);
    // Drawn on the CPU first, then copied into a network built on the device (a record, not
    // `fork`, which can re-initialise parameters lazily on the target device).
    let drawn = cfg.model.config().init(&init).into_record();
    let mut net = cfg.model.config().init(&device).load_record(drawn);
    let mut losses = Vec::new();
    if resume {
        let report = read_report(dir)?;
        if report.config != *cfg {
            return Err(DiffsimError::file(
                dir.join("train.json"),
                "was trained with other settings; resume with the same config, or use another output folder",
            ));
        }
        if report.data_recipe.as_ref() != Some(&data.manifest.recipe) {
            return Err(DiffsimError::file(
                dir.join("train.json"),
                "was trained on another dataset; resume on the same data, or use another output folder",
            ));
        }
        net = net
            .try_load_file(dir.join("model.bpk"))
            .map_err(|e| DiffsimError::file(dir.join("model.bpk"), format!("{e:?}")))?;
        losses = report.losses;
    }
    std::fs::create_dir_all(dir).map_err(|e| DiffsimError::file(dir, e))?;
    std::fs::write(
        dir.join("train.toml"),
        toml::to_string_pretty(cfg).expect("config serialises"),
    )
    .map_err(|e| DiffsimError::file(dir.join("train.toml"), e))?;
    let sims = sims_for(data, &device, false)?;
    let stats = data.manifest.stats;
    let mut optim = AdamConfig::new().init();
    if resume {
        let path = dir.join(OPTIMIZER);
        optim = optim
            .load(&path)
            .map_err(|e| DiffsimError::file(&path, format!("{e:?}")))?;
    }
    let t0 = Instant::now();
    let (mut solver_s, mut forward_s) = (0.0, 0.0);
    let start_iteration = losses.len();
    for k in start_iteration..cfg.iterations {
        let picks = batch_of(
            cfg.sampling,
            cfg.seed,
            k,
            cfg.batch,
            (sims.len(), frames - cfg.unroll),
        );
        let item_sims: Vec<&Simulation> = picks.iter().map(|p| &sims[p.0]).collect();
        let batch = Batch {
            reynolds: picks
                .iter()
                .map(|p| data.train[p.0].entry.reynolds)
                .collect(),
            start: picks
                .iter()
                .map(|&(s, t)| frame_state(&sims[s], &data.train[s], t))
                .collect(),
            targets: (1..=cfg.unroll)
                .map(|i| {
                    picks
                        .iter()
                        .map(|&(s, t)| frame_state(&sims[s], &data.train[s], t + i))
                        .collect()
                })
                .collect(),
        };
        let step = iteration(
            net,
            &mut optim,
            cfg.learning_rate_at(k),
            &batch,
            &stats,
            |states| source_step(&item_sims, states),
        );
        let value;
        (net, value) = match step {
            Ok(s) => {
                solver_s += s.solver_s;
                forward_s += s.forward_s;
                (s.net, s.loss)
            }
            Err(IterationError::Diverged(loss)) => {
                return Err(DiffsimError::config(format!(
                    "training diverged: loss {loss} at iteration {k}; lower learning_rate"
                )));
            }
            Err(IterationError::Solver(e)) => return Err(e),
        };
        losses.push(value);
        progress(k + 1, value);
        // Checkpoints in between; the last iteration is saved once, after the loop.
        let done = k + 1;
        if done < cfg.iterations && cfg.checkpoint_every > 0 && done % cfg.checkpoint_every == 0 {
            let report = report_of(
                data,
                cfg,
                &losses,
                t0,
                done - start_iteration,
                solver_s,
                forward_s,
            );
            save(dir, &net, &optim, &report)?;
        }
    }
    let report = report_of(
        data,
        cfg,
        &losses,
        t0,
        cfg.iterations - start_iteration,
        solver_s,
        forward_s,
    );
    save(dir, &net, &optim, &report)?;
    Ok((net, report))
}

/// One training batch: per item its Reynolds number, start state and the `unroll` target
/// states after it (`targets[i]` holds every item's state `i + 1` steps on).
pub struct Batch {
    /// Reynolds number of each item.
    pub reynolds: Vec<f64>,
    /// The items' start states.
    pub start: Vec<FluidState>,
    /// Per hybrid step, the items' reference states.
    pub targets: Vec<Vec<FluidState>>,
}

/// What one [`iteration`] did.
pub struct IterationOutcome {
    /// The network after the Adam step.
    pub net: Corrector,
    /// The loss before the step.
    pub loss: f64,
    /// Seconds in `physics` (forward).
    pub solver_s: f64,
    /// Seconds of the whole forward unroll (physics, network, loss).
    pub forward_s: f64,
    /// Seconds the host spent outside the one read-back of the loss: issuing the forward,
    /// the backward and the Adam step. On a GPU that is only recording work when nothing
    /// inside the iteration synchronises; the rest of the iteration is waiting for the loss.
    pub issue_s: f64,
}

/// Why an [`iteration`] stopped.
pub enum IterationError {
    /// The loss was not finite.
    Diverged(f64),
    /// The physics step failed.
    Solver(DiffsimError),
}

/// One Solver-in-the-Loop iteration: `batch.targets.len()` hybrid steps
/// `s ← physics(s); s ← s + C(s, Re)`, the mean normalised MSE against the targets, its
/// gradient through every step, and one Adam step with learning rate `lr`. `physics` is the
/// source solver in training (the identity in the benchmark's network-only timing).
pub fn iteration(
    net: Corrector,
    optim: &mut ModuleOptimizer,
    lr: f64,
    batch: &Batch,
    stats: &NormStats,
    physics: impl Fn(Vec<FluidState>) -> Result<Vec<FluidState>>,
) -> std::result::Result<IterationOutcome, IterationError> {
    let tf = Instant::now();
    let mut solver_s = 0.0;
    let mut states = batch.start.clone();
    let mut loss: Option<Tensor<1>> = None;
    for targets in &batch.targets {
        let ts = Instant::now();
        states = physics(states).map_err(IterationError::Solver)?;
        solver_s += ts.elapsed().as_secs_f64();
        let c = net.forward(features(&states, &batch.reynolds, stats));
        states = correct(states, c, stats);
        let l = normalised_mse(&states, targets, stats);
        loss = Some(match loss {
            Some(acc) => acc + l,
            None => l,
        });
    }
    let loss = loss
        .expect("at least one hybrid step")
        .div_scalar(batch.targets.len() as f64);
    let forward_s = tf.elapsed().as_secs_f64();
    let tr = Instant::now();
    let value = loss.clone().into_scalar::<f64>();
    let read_s = tr.elapsed().as_secs_f64();
    if !value.is_finite() {
        return Err(IterationError::Diverged(value));
    }
    let grads = GradientsParams::from_grads(loss.backward(), &net);
    let net = optim.step(lr, net, grads);
    Ok(IterationOutcome {
        net,
        loss: value,
        solver_s,
        forward_s,
        issue_s: tf.elapsed().as_secs_f64() - read_s,
    })
}

fn report_of(
    data: &WakeData,
    cfg: &TrainConfig,
    losses: &[f64],
    t0: Instant,
    run: usize,
    solver_s: f64,
    forward_s: f64,
) -> TrainReport {
    let wall_s = t0.elapsed().as_secs_f64();
    TrainReport {
        config: cfg.clone(),
        losses: losses.to_vec(),
        iterations: losses.len(),
        iterations_per_s: run as f64 / wall_s.max(1e-9),
        solver_share_forward: solver_s / forward_s.max(1e-12),
        wall_s,
        data_recipe: Some(data.manifest.recipe.clone()),
    }
}

/// The optimizer state's file in a training folder (Adam's moments, burnpack).
pub const OPTIMIZER: &str = crate::experiments::study::OPTIMIZER_FILE;

/// Writes the checkpoint (`model.bpk`, `optimizer.bpk`, `train.json` last).
fn save(dir: &Path, net: &Corrector, optim: &ModuleOptimizer, report: &TrainReport) -> Result<()> {
    save_checkpoint(dir, net, optim, "train.json", report)
}

/// Reads `dir/train.json`.
pub fn read_report(dir: &Path) -> Result<TrainReport> {
    let path = dir.join("train.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|_| DiffsimError::file(&path, "no training run here (train.json missing)"))?;
    let mut value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| DiffsimError::file(&path, e))?;
    // Reports written before the warm-up setting existed trained without one (the config's
    // default would otherwise make them look like runs of today's settings); those from
    // before the sampling setting drew independently.
    if let Some(config) = value.get_mut("config").and_then(|c| c.as_object_mut()) {
        config.entry("warmup_iterations").or_insert(0.into());
        config.entry("sampling").or_insert("independent".into());
    }
    serde_json::from_value(value).map_err(|e| DiffsimError::file(&path, e))
}

/// Loads a trained corrector from `dir` (its `train.json` names the architecture) onto `device`.
pub fn load_model(dir: &Path, device: &Device) -> Result<(Corrector, TrainReport)> {
    let report = read_report(dir)?;
    let net = report
        .config
        .model
        .config()
        .init(device)
        .try_load_file(dir.join("model.bpk"))
        .map_err(|e| DiffsimError::file(dir.join("model.bpk"), format!("{e:?}")))?;
    Ok((net, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_learning_rate_warms_up_then_drops_for_the_last_fraction() {
        let cfg = TrainConfig {
            iterations: 1000,
            warmup_iterations: 100,
            ..TrainConfig::default()
        };
        let lr = |k| cfg.learning_rate_at(k);
        assert!((lr(0) - 1e-5).abs() < 1e-18 && (lr(49) - 5e-4).abs() < 1e-15);
        assert_eq!((lr(99), lr(100), lr(699)), (1e-3, 1e-3, 1e-3));
        assert_eq!((lr(700), lr(999)), (1e-4, 1e-4));
        let none = TrainConfig {
            warmup_iterations: 0,
            ..cfg.clone()
        };
        assert_eq!(none.learning_rate_at(0), 1e-3);
    }

    #[test]
    fn a_report_from_before_the_warm_up_reads_as_trained_without_one() {
        let dir = tempfile::tempdir().unwrap();
        let report = TrainReport {
            config: TrainConfig::default(),
            losses: vec![1.0],
            iterations: 1,
            iterations_per_s: 1.0,
            solver_share_forward: 0.0,
            wall_s: 1.0,
            data_recipe: None,
        };
        let mut value = serde_json::to_value(&report).unwrap();
        let path = dir.path().join("train.json");
        std::fs::write(&path, value.to_string()).unwrap();
        assert_eq!(
            read_report(dir.path()).unwrap().config.warmup_iterations,
            100
        );
        value["config"]
            .as_object_mut()
            .unwrap()
            .remove("warmup_iterations");
        std::fs::write(&path, value.to_string()).unwrap();
        assert_eq!(read_report(dir.path()).unwrap().config.warmup_iterations, 0);
        value["config"]["sampling"] = "epochs".into();
        std::fs::write(&path, value.to_string()).unwrap();
        assert_eq!(
            read_report(dir.path()).unwrap().config.sampling,
            Sampling::Epochs
        );
        value["config"].as_object_mut().unwrap().remove("sampling");
        std::fs::write(&path, value.to_string()).unwrap();
        assert_eq!(
            read_report(dir.path()).unwrap().config.sampling,
            Sampling::Independent
        );
    }

    /// Epoch sampling draws every (simulation, start) pair exactly once per epoch, in a
    /// different order each epoch and for each seed, batches straddling epochs included;
    /// independent draws repeat pairs within an epoch, and keep the stream of the runs before
    /// the sampling setting existed.
    #[test]
    fn epoch_sampling_draws_every_pair_once_per_epoch() {
        let (sims, starts, batch) = (6, 146, 5);
        let pairs = sims * starts;
        let draws = |sampling, seed| -> Vec<(usize, usize)> {
            (0..3 * pairs / batch + 1)
                .flat_map(|k| batch_of(sampling, seed, k, batch, (sims, starts)))
                .take(3 * pairs)
                .collect()
        };
        let d = draws(Sampling::Epochs, 0);
        assert_eq!(d.len(), 3 * pairs);
        for epoch in d.chunks(pairs) {
            let mut seen = vec![0; pairs];
            for &(s, t) in epoch {
                assert!(s < sims && t < starts);
                seen[s * starts + t] += 1;
            }
            assert!(seen.iter().all(|&n| n == 1));
        }
        assert_ne!(d[..pairs], d[pairs..2 * pairs]);
        assert_ne!(d, draws(Sampling::Epochs, 1));
        let i = draws(Sampling::Independent, 0);
        let mut seen = vec![0; pairs];
        i[..pairs]
            .iter()
            .for_each(|&(s, t)| seen[s * starts + t] += 1);
        assert!(seen.iter().any(|&n| n > 1));
        // The first pairs of the stream before 2026-12-02 (seed 0, iteration 0, batch 3;
        // computed by an independent SplitMix64 in Python).
        assert_eq!(
            batch_of(Sampling::Independent, 0, 0, 3, (6, 146)),
            [(1, 98), (1, 118), (1, 62)]
        );
    }
}
