//! `diffsim experiment NAME`: reproducible studies that write their pictures and numbers.

use super::{Progress, json, out};
use crate::error::{DiffsimError, Result};
use crate::train::smoke_target::{self, SmokeTargetConfig, SmokeTargetResult};
use crate::viz::{FieldPicture, line_plot};
use clap::Args;
use std::path::{Path, PathBuf};

/// Arguments of `diffsim experiment`.
#[derive(Debug, Clone, Args)]
pub struct ExperimentArgs {
    /// The experiment: `smoke-target` (optimise an initial velocity so that a smoke blob
    /// reaches a target shape, Adam through the unrolled solver).
    pub name: String,
    /// The toy-size version (seconds; the test suite runs it).
    #[arg(long)]
    pub quick: bool,
    /// A TOML file overriding the experiment's settings (see experiments/NAME/config.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Output folder (default out/NAME).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn read_config(path: &Path) -> Result<SmokeTargetConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| DiffsimError::file(path, e))?;
    toml::from_str(&text)
        .map_err(|e| DiffsimError::config(format!("{}: {}", path.display(), e.message())))
}

/// Runs the named experiment and writes its outputs.
pub fn experiment(args: &ExperimentArgs) -> Result<()> {
    if args.name != "smoke-target" {
        return Err(DiffsimError::config(format!(
            "unknown experiment '{}'; available: smoke-target",
            args.name
        )));
    }
    let cfg = match (&args.config, args.quick) {
        (Some(p), _) => read_config(p)?,
        (None, true) => SmokeTargetConfig::quick(),
        (None, false) => SmokeTargetConfig::default(),
    };
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("out").join(&args.name));
    std::fs::create_dir_all(&dir).map_err(|e| DiffsimError::file(&dir, e))?;
    let bar = Progress::new("smoke-target", cfg.iterations as u64, args.json);
    let result = smoke_target::run(&cfg, |k, _| bar.set(k as u64))?;
    bar.finish();
    write_outputs(&result, &dir)?;
    if args.json {
        json(&result)
    } else {
        out(&format!(
            "smoke-target {}: loss {:.3e} -> {:.3e} ({:.0}x lower) in {} Adam iterations, {:.1} s ({:.1} ms per iteration); pictures in {}",
            cfg.resolution,
            result.initial_loss,
            result.final_loss,
            result.reduction,
            result.iterations,
            result.wall_s,
            result.ms_per_iteration,
            dir.display()
        ))
    }
}

fn write_outputs(r: &SmokeTargetResult, dir: &Path) -> Result<()> {
    let curve: Vec<(f64, f64)> = r
        .losses
        .iter()
        .enumerate()
        .map(|(k, l)| (k as f64, l.log10()))
        .collect();
    line_plot(
        &dir.join("loss.png"),
        "smoke-target: loss (log10) per Adam iteration",
        "iteration",
        "log10 loss",
        &[("loss".into(), curve)],
    )?;
    let res = r.config.resolution;
    let titles = [
        "marker, zero control",
        "marker, optimised control",
        "target",
    ];
    for (name, (values, title)) in ["before", "after", "target"]
        .iter()
        .zip(r.pictures.iter().zip(titles))
    {
        FieldPicture {
            values,
            nx: res.nx,
            ny: res.ny,
            solid: &[],
            range: 1.0,
            title: format!("{title} after {} steps", r.config.steps),
        }
        .save_png(&dir.join(format!("{name}.png")))?;
    }
    let path = dir.join("result.json");
    let tmp = path.with_extension("json.partial");
    std::fs::write(
        &tmp,
        serde_json::to_string_pretty(r).expect("result serialises"),
    )
    .and_then(|_| std::fs::rename(&tmp, &path))
    .map_err(|e| DiffsimError::file(&path, e))
}
