//! `diffsim eval wake-flow`: test rollouts of SRC and trained correctors, with error curves,
//! side-by-side vorticity pictures and GIFs.

use super::progress::Bars;
use crate::error::{DiffsimError, Result};
use crate::experiments::wake_flow::eval::model_name;
use crate::experiments::wake_flow::report::{EvalReport, evaluate};
use crate::experiments::wake_flow::{WakeData, train::load_model};
use burn::tensor::Device;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `diffsim eval wake-flow`.
#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// The study (only `wake-flow`).
    pub name: String,
    /// A training output folder (model.bpk + train.json); repeat for several models. SRC (the
    /// source solver without correction) is always evaluated too.
    #[arg(long = "model", value_name = "DIR")]
    pub models: Vec<PathBuf>,
    /// Dataset folder written by `diffsim dataset wake-flow` (its test simulations are used).
    #[arg(long, default_value = "data/wake-flow")]
    pub data: PathBuf,
    /// Rollout length (steps from the first test frame; at most the test frames − 1).
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// Output folder (eval.json, error curves, vorticity pictures, GIFs). Default
    /// out/eval-wake-flow.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `diffsim eval`; returns the report and the output folder.
pub fn eval_cmd(args: &EvalArgs) -> Result<(EvalReport, PathBuf)> {
    if args.name != "wake-flow" {
        return Err(DiffsimError::config(format!(
            "unknown evaluation study '{}'; available: wake-flow",
            args.name
        )));
    }
    let device = Device::flex();
    let mut models = Vec::new();
    for dir in &args.models {
        let (net, report) = load_model(dir, &device)?;
        let mut name = model_name(report.config.unroll);
        if models.iter().any(|(n, _)| *n == name) {
            name = format!("{name} ({})", dir.display());
        }
        models.push((name, net));
    }
    let data = WakeData::open(&args.data)?;
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("out/eval-wake-flow"));
    let report = evaluate(&data, &models, args.steps, &dir, &Bars::new(args.json))?;
    Ok((report, dir))
}
