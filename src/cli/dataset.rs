//! `diffsim dataset`: the Solver-in-the-Loop reference data and the Burgers control data.

use super::progress::Bar;
use super::{json, out};
use crate::config::read_over;
use crate::error::Result;
use crate::experiments::burgers_control::{BurgersData, BurgersDataConfig, dataset as burgers};
use crate::experiments::wake_flow::{WakeDataConfig, dataset::generate};
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// Which dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DatasetName {
    /// The SoL wake flow (docs/wake-flow.md §2 / §7): the `wake` scene at the reference resolution
    /// for every training and test Reynolds number, down-sampled 4× to the source grid.
    WakeFlow,
    /// Holl et al. 2020's Burgers control data (docs/burgers-control.md §2): "clash" initial
    /// states driven by Gaussian forces, 4000 sequences of 32 steps on 32 points (one HDF5
    /// file, burgers.h5; --quick: 96 sequences).
    BurgersControl,
}

/// Arguments of `diffsim dataset`.
#[derive(Debug, Clone, Args)]
pub struct DatasetArgs {
    /// The dataset to generate.
    #[arg(value_enum)]
    pub name: DatasetName,
    /// The toy-size recipe (seconds). wake-flow: 64x128 reference → 16x32, 60 warm-up steps,
    /// 3 + 1 simulations (default: 128x256 → 32x64, 1000 warm-up steps, 6 training Reynolds
    /// numbers × 150 frames and 3 test ones × 101 frames). burgers-control: 96 sequences
    /// (default 4000).
    #[arg(long)]
    pub quick: bool,
    /// A TOML recipe overriding fields of the default (or of --quick's). wake-flow:
    /// reference, downsample_levels, warmup, train_frames, test_frames, train_reynolds,
    /// test_reynolds. burgers-control: scene ("paper", "notebook" or a table), sequences,
    /// validation, test, force_amplitude, seed.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Output folder (default data/NAME, data/NAME-quick with --quick). Rerunning into the
    /// same folder resumes: finished simulations or blocks of the same recipe are kept.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the manifest as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The default (or `quick`) recipe with a TOML file's fields on top.
fn recipe<T: Serialize + DeserializeOwned>(base: T, config: Option<&Path>) -> Result<T> {
    match config {
        Some(path) => read_over(path, &base),
        None => Ok(base),
    }
}

/// Runs `diffsim dataset` and prints what it made.
pub fn dataset(args: &DatasetArgs) -> Result<()> {
    let name = args.name.to_possible_value().expect("named");
    let dir = args.out.clone().unwrap_or_else(|| {
        let suffix = if args.quick { "-quick" } else { "" };
        PathBuf::from(format!("data/{}{suffix}", name.get_name()))
    });
    match args.name {
        DatasetName::WakeFlow => {
            let base = if args.quick {
                WakeDataConfig::quick()
            } else {
                WakeDataConfig::default()
            };
            let cfg = recipe(base, args.config.as_deref())?;
            let progress = Bar::new(
                "wake-flow dataset (reference steps)",
                cfg.reference_steps(),
                args.json,
            );
            let manifest = generate(&cfg, &dir, |done, _| progress.set(done))?;
            progress.finish();
            if args.json {
                return json(&manifest);
            }
            let s = &manifest.stats;
            out(&format!(
                "{}: {} simulations at {} ({} reference), std|u| {:.4}, std|v| {:.4}, Re std {:.2}, {:.1} s",
                dir.display(),
                manifest.sims.len(),
                manifest.resolution,
                manifest.recipe.reference,
                s.std_abs_u,
                s.std_abs_v,
                s.re_std,
                manifest.generation_s
            ))
        }
        DatasetName::BurgersControl => {
            let base = if args.quick {
                BurgersDataConfig::quick()
            } else {
                BurgersDataConfig::default()
            };
            let cfg = recipe(base, args.config.as_deref())?;
            let progress = Bar::new(
                "burgers-control dataset (sequences)",
                cfg.sequences as u64,
                args.json,
            );
            let path = burgers::generate(&cfg, &dir, |done, _| progress.set(done as u64))?;
            progress.finish();
            let data = BurgersData::load(&path)?;
            let summary = BurgersSummary {
                file: path.display().to_string(),
                train: data.train.len(),
                validation: data.validation.len(),
                test: data.test.len(),
                steps: cfg.scene.steps,
                points: cfg.scene.cells,
                recipe: cfg,
            };
            if args.json {
                return json(&summary);
            }
            out(&format!(
                "{}: {} train / {} validation / {} test sequences of {} steps on {} points",
                summary.file,
                summary.train,
                summary.validation,
                summary.test,
                summary.steps,
                summary.points
            ))
        }
    }
}

/// What `diffsim dataset burgers-control` made.
#[derive(Serialize)]
struct BurgersSummary {
    file: String,
    train: usize,
    validation: usize,
    test: usize,
    steps: usize,
    points: usize,
    recipe: BurgersDataConfig,
}
