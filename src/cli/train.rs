//! `diffsim train wake-flow`: a Solver-in-the-Loop corrector (NON or SOL-m).

use super::progress::Bar;
use crate::config::read_over;
use crate::error::{DiffsimError, Result};
use crate::experiments::study::log_loss_curve;
use crate::experiments::wake_flow::train::train_on;
use crate::experiments::wake_flow::{ModelKind, TrainConfig, TrainReport, WakeData};
use crate::viz::line_plot;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `diffsim train wake-flow`.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// The study (only `wake-flow`).
    pub name: String,
    /// Dataset folder written by `diffsim dataset wake-flow`.
    #[arg(long, default_value = "data/wake-flow")]
    pub data: PathBuf,
    /// TOML settings (fields of the defaults: model, unroll, iterations, batch,
    /// learning_rate, final_learning_rate, decay_fraction, warmup_iterations, sampling
    /// ("independent" or "epochs"), seed, checkpoint_every).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Architecture: small (docs/wake-flow.md §7, default) or mars-moon (the paper's).
    #[arg(long, value_enum)]
    pub model: Option<ModelKind>,
    /// Hybrid steps per loss: 1 is NON (supervised), 4/8/16/32 are SOL-m.
    #[arg(long)]
    pub unroll: Option<usize>,
    /// Adam iterations.
    #[arg(long)]
    pub iters: Option<usize>,
    /// Continue the run in --out from its last checkpoint (same settings required).
    #[arg(long)]
    pub resume: bool,
    /// Output folder (model.bpk, train.toml, train.json, loss.png). Default out/train-wake-flow-M.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Compute device: flex (CPU), wgpu or cuda (GPU builds).
    #[arg(long, default_value = "flex")]
    pub device: String,
}

/// Runs `diffsim train`; returns the report and the output folder.
pub fn train_cmd(args: &TrainArgs) -> Result<(TrainReport, PathBuf)> {
    if args.name != "wake-flow" {
        return Err(DiffsimError::config(format!(
            "unknown training study '{}'; available: wake-flow",
            args.name
        )));
    }
    let mut cfg = match &args.config {
        Some(p) => read_over(p, &TrainConfig::default())?,
        None => TrainConfig::default(),
    };
    if let Some(m) = args.model {
        cfg.model = m;
    }
    if let Some(m) = args.unroll {
        cfg.unroll = m;
    }
    if let Some(n) = args.iters {
        cfg.iterations = n;
    }
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("out/train-wake-flow-{}", cfg.unroll)));
    let device = super::device(&args.device)?;
    let data = WakeData::open(&args.data)?;
    let progress = Bar::new(
        &format!("train wake-flow m={}", cfg.unroll),
        cfg.iterations as u64,
        args.json,
    );
    let (_, report) = train_on(&data, &cfg, &dir, args.resume, &device, |k, _| {
        progress.set(k as u64)
    })?;
    progress.finish();
    line_plot(
        &dir.join("loss.png"),
        &format!("wake-flow training, unroll {}", cfg.unroll),
        "iteration",
        "log10 loss",
        &[("loss".into(), log_loss_curve(&report.losses, 1))],
    )?;
    Ok((report, dir))
}
