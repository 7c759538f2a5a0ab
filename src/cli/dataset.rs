//! `diffsim dataset wake-flow`: the Solver-in-the-Loop reference data.

use super::progress::Bar;
use crate::config::read_over;
use crate::error::Result;
use crate::experiments::wake_flow::{Manifest, WakeDataConfig, dataset::generate};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

/// Which dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DatasetName {
    /// The SoL wake flow (docs/wake-flow.md §2 / §7): the `wake` scene at the reference resolution
    /// for every training and test Reynolds number, down-sampled 4× to the source grid.
    WakeFlow,
}

/// Arguments of `diffsim dataset`.
#[derive(Debug, Clone, Args)]
pub struct DatasetArgs {
    /// The dataset to generate.
    #[arg(value_enum)]
    pub name: DatasetName,
    /// The toy-size recipe (64x128 reference → 16x32, 60 warm-up steps, 3 + 1 simulations;
    /// seconds). The default recipe is docs/wake-flow.md §7: 128x256 → 32x64, 1000 warm-up steps, 6 training
    /// Reynolds numbers × 150 frames and 3 test ones × 101 frames.
    #[arg(long)]
    pub quick: bool,
    /// A TOML recipe overriding fields of the default (or of --quick's): reference,
    /// downsample_levels, warmup, train_frames, test_frames, train_reynolds, test_reynolds.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Output folder (default data/wake-flow, data/wake-flow-quick with --quick). Rerunning
    /// into the same folder resumes: finished simulations of the same recipe are kept.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the manifest as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The recipe of `args`: the default or quick one, with a TOML file's fields on top.
pub fn recipe(quick: bool, config: Option<&Path>) -> Result<WakeDataConfig> {
    let base = if quick {
        WakeDataConfig::quick()
    } else {
        WakeDataConfig::default()
    };
    let Some(path) = config else {
        return Ok(base);
    };
    read_over(path, &base)
}

/// Runs `diffsim dataset`.
pub fn dataset(args: &DatasetArgs) -> Result<(Manifest, PathBuf)> {
    let DatasetName::WakeFlow = args.name;
    let cfg = recipe(args.quick, args.config.as_deref())?;
    let dir = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(if args.quick {
            "data/wake-flow-quick"
        } else {
            "data/wake-flow"
        })
    });
    let progress = Bar::new(
        "wake-flow dataset (reference steps)",
        cfg.reference_steps(),
        args.json,
    );
    let manifest = generate(&cfg, &dir, |done, _| progress.set(done))?;
    progress.finish();
    Ok((manifest, dir))
}
