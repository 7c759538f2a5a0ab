//! `diffsim bench train`: Solver-in-the-Loop training iterations per second (NON, SOL-4,
//! SOL-8; the small and the mars-moon corrector) on the wake flow at 32x64, batch 3, the
//! network alone (the same iteration with the identity for the solver), and the convolution
//! kernels' achieved rates against this machine's FMA peak; `--phiflow FILE` sets the
//! iterations beside PhiFlow 3.4 + torch / JAX measured the same day
//! (`benches/phiflow/sol_train.py`).
//!
//! The iteration is the training's own ([`iteration`]); its data are frames of the `wake`
//! scene at 32x64 for Re 97.66, 781.25 and 3125 (one batch item each), 40 steps after the
//! scene's start, so that no dataset is needed.

use super::bench::{percentile, read_json_lines};
use super::bench_machine::{MachineBenchArgs, bench_machine};
use crate::error::{DiffsimError, Result};
use crate::experiments::wake_flow::dataset::{NormStats, WakeDataConfig, std_abs};
use crate::experiments::wake_flow::hybrid::source_step;
use crate::experiments::wake_flow::train::{Batch, IterationError, ModelKind, iteration};
use crate::fluid::{FluidState, Reads, Simulation};
use crate::grid::Resolution;
use crate::nn::Corrector;
use crate::nn::conv_flex::{ConvShape, KernelRates, kernel_rates};
use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `diffsim bench train`.
#[derive(Debug, Clone, Args)]
pub struct TrainBenchArgs {
    /// Networks to time (repeatable): small, mars-moon. Default: both.
    #[arg(long, value_enum)]
    pub model: Vec<ModelKind>,
    /// Hybrid steps per iteration (repeatable): 1 is NON. Default: 1, 4 and 8.
    #[arg(long)]
    pub unroll: Vec<usize>,
    /// Timed iterations per measurement (after 2 untimed ones).
    #[arg(long, default_value_t = 20)]
    pub iters: usize,
    /// Rounds over every configuration (the median of the rounds is reported, so that slow
    /// drifts of the machine's speed reach every configuration alike).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Skip the kernel rates.
    #[arg(long)]
    pub no_kernels: bool,
    /// PhiFlow 3.4 timings measured the same day on this machine: the JSON lines of
    /// `benches/phiflow/sol_train.py --json`.
    #[arg(long, value_name = "FILE")]
    pub phiflow: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Compute device of the training iterations: flex (CPU), wgpu or cuda (GPU builds). The
    /// kernel rates and the FMA peak are the CPU's whatever the device (skip them with
    /// `--no-kernels`).
    #[arg(long, default_value = "flex")]
    pub device: String,
}

/// One line of `benches/phiflow/sol_train.py --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhiflowTrain {
    /// `torch` or `jax`.
    pub backend: String,
    /// `small` or `mars-moon`.
    pub model: String,
    /// Hybrid steps per iteration.
    pub unroll: usize,
    /// Iterations per second with the solver.
    pub it_per_s: f64,
    /// Iterations per second with the identity for the solver.
    pub network_only_it_per_s: f64,
}

/// One configuration's measurement.
#[derive(Debug, Clone, Serialize)]
pub struct TrainBenchRow {
    /// The network.
    pub model: ModelKind,
    /// Hybrid steps per iteration.
    pub unroll: usize,
    /// Iterations per second (median of the rounds).
    pub it_per_s: f64,
    /// Iterations per second with the identity for the solver (median of the rounds).
    pub network_only_it_per_s: f64,
    /// `max(0, 1 − it_per_s / network_only_it_per_s)`: the solver's share of an iteration.
    pub solver_share: f64,
    /// Share of the iterations' wall time the host spent issuing work, i.e. outside the one
    /// read-back of the loss (median of the rounds, with the solver). On the CPU the work runs
    /// as it is issued (about 1). On a GPU a value far below 1 shows that nothing inside an
    /// iteration waits for the device: a hidden read-back would add the execution time of
    /// the work before it to the issuing time.
    pub host_issue_share: f64,
    /// PhiFlow + torch (jit) iterations per second, when given.
    pub phiflow_torch: Option<f64>,
    /// PhiFlow + JAX (jit), when given.
    pub phiflow_jax: Option<f64>,
    /// PhiFlow + torch with the identity for the solver, when given.
    pub phiflow_torch_network_only: Option<f64>,
}

/// The measurement.
#[derive(Debug, Clone, Serialize)]
pub struct TrainBenchResult {
    /// f32 FMA peak of all cores, measured first (GFLOP/s).
    pub peak_gflops: f64,
    /// Training iterations.
    pub rows: Vec<TrainBenchRow>,
    /// The kernels at the corrector's shapes (empty with `--no-kernels`).
    pub kernels: Vec<KernelRates>,
}

impl TrainBenchResult {
    /// The report for people.
    pub fn human(&self) -> String {
        let ratio = |a: f64, b: Option<f64>| b.map_or("–".into(), |b| format!("{:.1}×", a / b));
        let it = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.1}"));
        let mut s = String::from(
            "SoL training, wake flow 32x64, batch 3 (iterations/s; median of rounds)\n\
             model      unroll  diffsim  net only  solver  issue  | PhiFlow torch  JAX   torch net only | ×torch  ×JAX  net ×torch\n",
        );
        for r in &self.rows {
            s += &format!(
                "{:<10} {:>6}  {:>7.1}  {:>8.1}  {:>5.0}%  {:>4.0}%  | {:>13}  {:>4}  {:>14} | {:>6}  {:>4}  {:>10}\n",
                r.model.name(),
                if r.unroll == 1 {
                    "NON".to_string()
                } else {
                    format!("SOL-{}", r.unroll)
                },
                r.it_per_s,
                r.network_only_it_per_s,
                100.0 * r.solver_share,
                100.0 * r.host_issue_share,
                it(r.phiflow_torch),
                it(r.phiflow_jax),
                it(r.phiflow_torch_network_only),
                ratio(r.it_per_s, r.phiflow_torch),
                ratio(r.it_per_s, r.phiflow_jax),
                ratio(r.network_only_it_per_s, r.phiflow_torch_network_only),
            );
        }
        if !self.kernels.is_empty() {
            s += &format!(
                "convolution kernels, f32 GFLOP/s (% of the {:.0} GFLOP/s FMA peak):\n",
                self.peak_gflops
            );
        }
        let pct = |g: f64| 100.0 * g / self.peak_gflops;
        for k in &self.kernels {
            let c = k.shape;
            s += &format!(
                "  b{} {}→{} {}x{} k{}: forward {:.0} ({:.0}%), input gradient {:.0} ({:.0}%), weight gradient {:.0} ({:.0}%)\n",
                c.b,
                c.ci,
                c.co,
                c.h,
                c.w,
                c.k,
                k.forward_gflops,
                pct(k.forward_gflops),
                k.input_gradient_gflops,
                pct(k.input_gradient_gflops),
                k.weight_gradient_gflops,
                pct(k.weight_gradient_gflops)
            );
        }
        s
    }
}

/// Reynolds numbers of the batch's three items.
const REYNOLDS: [f64; 3] = [97.66, 781.25, 3125.0];
/// Steps from the scene's start to the first frame.
const WARMUP: usize = 40;

/// The batch's simulations, start states and `unroll` targets, and statistics of the frames.
fn wake_batch(unroll: usize, device: &Device) -> Result<(Vec<Simulation>, Batch, NormStats)> {
    let recipe = WakeDataConfig::default();
    let res = Resolution::new(32, 64);
    let mut sims = Vec::new();
    let mut frames: Vec<Vec<FluidState>> = Vec::new();
    for re in REYNOLDS {
        let sim = Simulation::new(&recipe.scene(res, re)?, device)?;
        let mut s = sim.initial_state(1)?;
        let mut seq = Vec::new();
        for t in 0..WARMUP + unroll {
            s = sim.step_for(s, Reads::Velocity)?.0;
            if t + 1 >= WARMUP {
                seq.push(s.clone());
            }
        }
        sims.push(sim);
        frames.push(seq);
    }
    let std_abs = |pick: fn(&FluidState) -> Tensor<3>| {
        let samples: Vec<f32> = frames
            .iter()
            .flatten()
            .flat_map(|s| pick(s).to_data().try_to_vec::<f32>().expect("f32 field"))
            .collect();
        std_abs(&samples)
    };
    let mean_re = REYNOLDS.iter().sum::<f64>() / 3.0;
    let stats = NormStats {
        std_abs_u: std_abs(|s| s.u.clone()),
        std_abs_v: std_abs(|s| s.v.clone()),
        re_std: (REYNOLDS.iter().map(|r| (r - mean_re).powi(2)).sum::<f64>() / 3.0).sqrt(),
    };
    let batch = Batch {
        reynolds: REYNOLDS.to_vec(),
        start: frames.iter().map(|f| f[0].clone()).collect(),
        targets: (1..=unroll)
            .map(|i| frames.iter().map(|f| f[i].clone()).collect())
            .collect(),
    };
    Ok((sims, batch, stats))
}

/// One configuration: its network, optimiser and data.
struct Config {
    model: ModelKind,
    unroll: usize,
    net: Option<Corrector>,
    optim: ModuleOptimizer,
    sims: Vec<Simulation>,
    batch: Batch,
    stats: NormStats,
    rates: [Vec<f64>; 2],
    /// Per round: the host's issuing share of the iterations with the solver.
    issue: Vec<f64>,
}

impl Config {
    /// Iterations per second over `iters` iterations after 2 untimed ones, with the solver
    /// (`solver`) or the identity, and the share of that time the host spent issuing work.
    fn time(&mut self, iters: usize, solver: bool) -> Result<(f64, f64)> {
        let sims: Vec<&Simulation> = self.sims.iter().collect();
        let mut t0 = Instant::now();
        let mut issue_s = 0.0;
        for k in 0..iters + 2 {
            if k == 2 {
                t0 = Instant::now();
                issue_s = 0.0;
            }
            let net = self.net.take().expect("network present between iterations");
            let physics = |s: Vec<FluidState>| {
                if solver { source_step(&sims, s) } else { Ok(s) }
            };
            let step = iteration(
                net,
                &mut self.optim,
                1e-5,
                &self.batch,
                &self.stats,
                physics,
            );
            self.net = Some(match step {
                Ok(o) => {
                    issue_s += o.issue_s;
                    o.net
                }
                Err(IterationError::Diverged(l)) => {
                    return Err(DiffsimError::config(format!(
                        "the benchmark's loss is not finite ({l})"
                    )));
                }
                Err(IterationError::Solver(e)) => return Err(e),
            });
        }
        let wall = t0.elapsed().as_secs_f64();
        Ok((iters as f64 / wall, issue_s / wall))
    }
}

/// Runs the benchmark.
pub fn bench_train(args: &TrainBenchArgs) -> Result<TrainBenchResult> {
    if args.iters == 0 || args.rounds == 0 {
        return Err(DiffsimError::config(
            "--iters and --rounds must be at least 1",
        ));
    }
    if args.unroll.contains(&0) {
        return Err(DiffsimError::config("--unroll must be at least 1"));
    }
    let phiflow = args
        .phiflow
        .as_deref()
        .map(|f| read_json_lines::<PhiflowTrain>(f, "benches/phiflow/sol_train.py"))
        .transpose()?;
    let models = if args.model.is_empty() {
        vec![ModelKind::Small, ModelKind::MarsMoon]
    } else {
        args.model.clone()
    };
    let unrolls = if args.unroll.is_empty() {
        vec![1, 4, 8]
    } else {
        args.unroll.clone()
    };
    let device = super::device(&args.device)?.autodiff();
    device.seed(0);
    let mut configs = Vec::new();
    for &model in &models {
        for &unroll in &unrolls {
            let (sims, batch, stats) = wake_batch(unroll, &device)?;
            configs.push(Config {
                model,
                unroll,
                net: Some(model.config().init(&device)),
                optim: AdamConfig::new().init(),
                sims,
                batch,
                stats,
                rates: [Vec::new(), Vec::new()],
                issue: Vec::new(),
            });
        }
    }
    for _ in 0..args.rounds {
        for c in &mut configs {
            let (with, issue) = c.time(args.iters, true)?;
            let (without, _) = c.time(args.iters, false)?;
            c.rates[0].push(with);
            c.rates[1].push(without);
            c.issue.push(issue);
        }
    }
    let find = |backend: &str, c: &Config, net_only: bool| {
        let name = c.model.name();
        phiflow.as_ref().and_then(|runs| {
            runs.iter()
                .find(|r| r.backend == backend && r.model == name && r.unroll == c.unroll)
                .map(|r| {
                    if net_only {
                        r.network_only_it_per_s
                    } else {
                        r.it_per_s
                    }
                })
        })
    };
    let rows = configs
        .iter_mut()
        .map(|c| {
            for r in c.rates.iter_mut().chain([&mut c.issue]) {
                r.sort_by(f64::total_cmp);
            }
            let (with, without) = (percentile(&c.rates[0], 0.5), percentile(&c.rates[1], 0.5));
            TrainBenchRow {
                model: c.model,
                unroll: c.unroll,
                it_per_s: with,
                network_only_it_per_s: without,
                solver_share: (1.0 - with / without).max(0.0),
                host_issue_share: percentile(&c.issue, 0.5),
                phiflow_torch: find("torch", c, false),
                phiflow_jax: find("jax", c, false),
                phiflow_torch_network_only: find("torch", c, true),
            }
        })
        .collect();
    let peak = bench_machine(&MachineBenchArgs {
        seconds: 0.5,
        json: false,
    })?;
    let shape = |ci, co| ConvShape {
        b: 3,
        ci,
        co,
        h: 64,
        w: 32,
        k: 5,
    };
    let kernels = if args.no_kernels {
        Vec::new()
    } else {
        [(3, 16), (16, 16), (16, 2), (32, 32)]
            .into_iter()
            .map(|(ci, co)| kernel_rates(shape(ci, co), 50))
            .collect()
    };
    Ok(TrainBenchResult {
        peak_gflops: peak.fma_gflops_all_cores,
        rows,
        kernels,
    })
}
