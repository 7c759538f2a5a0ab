//! `diffsim bench burgers`: one (loss, gradient) evaluation of the DP-CFE chain of the Burgers
//! control study (31 U-Net applications, 32 solver steps), the same chain with the solver
//! replaced by the identity (the network's share), and a 32-step solver-only unroll, next
//! to PhiFlow 3.4 + JAX on the same work (`benches/phiflow/burgers_grad.py`).

use super::bench::percentile;
use crate::burgers::BurgersScene;
use crate::control::{cfe_chain, force_loss, forces};
use crate::error::{DiffsimError, Result};
use crate::experiments::burgers_control::BurgersDataConfig;
use crate::nn::UNet1dConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `diffsim bench burgers`.
#[derive(Debug, Clone, Args)]
pub struct BurgersBenchArgs {
    /// Sequences per evaluation.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Timed evaluations per measurement (the median is reported).
    #[arg(long, default_value_t = 10)]
    pub repeats: usize,
    /// PhiFlow 3.4 + JAX timings measured the same day on this machine: the JSON line of
    /// `benches/phiflow/burgers_grad.py --json`.
    #[arg(long, value_name = "FILE")]
    pub phiflow: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// The PhiFlow side (`burgers_grad.py --json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhiflowBurgers {
    /// DP-CFE (loss, gradient) (ms).
    pub dp_cfe_grad_ms: f64,
    /// The chain with the identity for the solver (ms).
    pub network_only_grad_ms: f64,
    /// 32-step solver-only (loss, gradient) (ms).
    pub solver_grad_ms: f64,
    /// 32-step solver-only forward (ms).
    pub solver_forward_ms: f64,
    /// Sequences per evaluation.
    pub batch: usize,
}

/// The measurement.
#[derive(Debug, Clone, Serialize)]
pub struct BurgersBenchResult {
    /// Sequences per evaluation.
    pub batch: usize,
    /// Timed evaluations.
    pub repeats: usize,
    /// DP-CFE (loss, gradient), parameter gradients gathered (ms, median).
    pub dp_cfe_grad_ms: f64,
    /// The same chain with the solver replaced by the identity (ms, median).
    pub network_only_grad_ms: f64,
    /// 32-step solver-only (loss, gradient) with respect to per-step controls (ms, median).
    pub solver_grad_ms: f64,
    /// 32-step solver-only forward, untracked (ms, median).
    pub solver_forward_ms: f64,
    /// `max(0, 1 − network_only / dp_cfe)`: the solver's share of the DP-CFE evaluation (a difference
    /// of two medians, so a few percent of noise).
    pub solver_share: f64,
    /// PhiFlow's timings when `--phiflow` was given.
    pub phiflow: Option<PhiflowBurgers>,
    /// PhiFlow DP-CFE time / diffsim's.
    pub speedup_dp_cfe: Option<f64>,
}

/// Median wall time (ms) of `repeats` calls of `f` after one untimed call.
fn time_ms(repeats: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..repeats)
        .map(|_| {
            let t0 = Instant::now();
            f();
            1e3 * t0.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    percentile(&t, 0.5)
}

/// Runs the benchmark.
pub fn bench_burgers(args: &BurgersBenchArgs) -> Result<BurgersBenchResult> {
    if args.batch == 0 || args.repeats == 0 {
        return Err(DiffsimError::config(
            "--batch and --repeats must be at least 1",
        ));
    }
    let phiflow = args
        .phiflow
        .as_ref()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|e| DiffsimError::file(p, e))?;
            serde_json::from_str::<PhiflowBurgers>(text.trim()).map_err(|e| {
                DiffsimError::file(
                    p,
                    format!("is not the JSON of benches/phiflow/burgers_grad.py --json ({e})"),
                )
            })
        })
        .transpose()?;
    let scene = BurgersScene::paper();
    let (b, n, steps) = (args.batch, scene.cells, scene.steps);
    if let Some(p) = &phiflow
        && p.batch != b
    {
        return Err(DiffsimError::config(format!(
            "the PhiFlow timings are for batch {}, this run is batch {b}",
            p.batch
        )));
    }
    let data = BurgersDataConfig::default();
    let (mut a, mut z) = (Vec::new(), Vec::new());
    for k in 0..b {
        a.extend(data.fields(&data.draw(2 * k)).0);
        z.extend(data.fields(&data.draw(2 * k + 1)).0);
    }
    let dev = Device::flex().autodiff();
    dev.seed(0);
    let net = UNet1dConfig::cfe().init(&dev);
    let lines = |v: &Vec<f32>, dev: &Device| {
        Tensor::<2>::from_data(TensorData::new(v.clone(), [b, n]), dev)
    };
    let (u0, target) = (lines(&a, &dev), lines(&z, &dev));
    let chain_grad = |identity: bool| {
        let states = cfe_chain(&net, u0.clone(), target.clone(), steps);
        let f = if identity {
            Tensor::cat(states[1..].to_vec(), 0) - Tensor::cat(states[..steps].to_vec(), 0)
        } else {
            forces(&scene, &states)
        };
        let loss = force_loss(f, b, 0.1);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        assert!(!grads.is_empty());
    };
    let dp_cfe_grad_ms = time_ms(args.repeats, || chain_grad(false));
    let network_only_grad_ms = time_ms(args.repeats, || chain_grad(true));
    let solver_grad_ms = time_ms(args.repeats, || {
        let c = Tensor::<3>::zeros([steps, b, n], &dev).require_grad();
        let mut u = u0.clone();
        for t in 0..steps {
            u = scene.natural(u) + c.clone().narrow(0, t, 1).reshape([b, n]);
        }
        let g = c.grad(&(u.clone() * u).sum().backward());
        assert!(g.is_some());
    });
    let plain = Device::flex();
    let u0_plain = lines(&a, &plain);
    let solver_forward_ms = time_ms(args.repeats, || {
        let mut u = u0_plain.clone();
        for _ in 0..steps {
            u = scene.natural(u);
        }
        let _ = u.sum().into_scalar::<f32>();
    });
    let speedup_dp_cfe = phiflow.as_ref().map(|p| p.dp_cfe_grad_ms / dp_cfe_grad_ms);
    Ok(BurgersBenchResult {
        batch: b,
        repeats: args.repeats,
        dp_cfe_grad_ms,
        network_only_grad_ms,
        solver_grad_ms,
        solver_forward_ms,
        solver_share: (1.0 - network_only_grad_ms / dp_cfe_grad_ms).max(0.0),
        phiflow,
        speedup_dp_cfe,
    })
}

impl BurgersBenchResult {
    /// One paragraph for people.
    pub fn human(&self) -> String {
        let mut s = format!(
            "burgers batch {}: DP-CFE (loss, gradient) {:.1} ms (network alone {:.1} ms, solver share {:.0}%); 32-step solver unroll forward {:.2} ms, (loss, gradient) {:.2} ms",
            self.batch,
            self.dp_cfe_grad_ms,
            self.network_only_grad_ms,
            100.0 * self.solver_share,
            self.solver_forward_ms,
            self.solver_grad_ms
        );
        if let (Some(p), Some(x)) = (&self.phiflow, self.speedup_dp_cfe) {
            s += &format!(
                "\nPhiFlow 3.4 + JAX (same day): DP-CFE {:.1} ms (network alone {:.1} ms), solver forward {:.2} ms, (loss, gradient) {:.2} ms; diffsim {x:.2}× on the DP-CFE evaluation, {:.2}× on the solver gradient",
                p.dp_cfe_grad_ms,
                p.network_only_grad_ms,
                p.solver_forward_ms,
                p.solver_grad_ms,
                p.solver_grad_ms / self.solver_grad_ms
            );
        }
        s
    }
}
