//! The contract every reproduced study keeps: a name, settings with a full and a quick
//! default (TOML-readable, a file names only what it changes), a run function that writes its
//! pictures into an output folder and reports progress, and a result that serialises to JSON
//! and renders as Markdown. [`record`] runs a study and writes what every study writes.

use crate::error::{DiffsimError, Result};
use crate::io::{write_json, write_text};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A reproduced study (one module of `src/experiments/`, one folder of `experiments/`).
pub trait Study {
    /// The name on the command line and of its folder `experiments/<name>/`.
    const NAME: &'static str;
    /// One line: what it reproduces.
    const ABOUT: &'static str;
    /// Its settings (TOML and JSON).
    type Config: Serialize + DeserializeOwned + Clone;
    /// Its measured result (JSON).
    type Result: Serialize;
    /// The full settings: the study as published or as reproduced at this machine's scale.
    fn full() -> Self::Config;
    /// The toy size (seconds; the test suite runs it).
    fn quick() -> Self::Config;
    /// The default output folder under `out/`.
    fn default_out(quick: bool) -> String {
        if quick {
            format!("out/{}-quick", Self::NAME)
        } else {
            format!("out/{}", Self::NAME)
        }
    }
    /// Checks the settings before anything is written (default: nothing to check beyond
    /// what [`Study::run`] checks as it goes).
    fn validate(_cfg: &Self::Config) -> Result<()> {
        Ok(())
    }
    /// Runs the study with `cfg`, writing its pictures (and anything it resumes from) into
    /// `dir`, which exists.
    fn run(cfg: &Self::Config, dir: &Path, progress: &dyn Progress) -> Result<Self::Result>;
    /// The result as a Markdown page (`results.md`; the command line prints it).
    fn report(result: &Self::Result, dir: &Path) -> String;
}

/// Where a study reports how far it is: `start` opens a stage of `total` units, `set` marks
/// `done` of them finished.
pub trait Progress {
    /// A new stage of `total` units.
    fn start(&self, stage: &str, total: u64);
    /// `done` units of the current stage are finished.
    fn set(&self, done: u64);
}

/// Runs study `S` with `cfg` into `dir` and writes what every study writes there: `config.toml`
/// (the settings used), `results.json` and `results.md`, each complete or absent. Settings
/// that [`Study::validate`] refuses leave `dir` untouched.
pub fn record<S: Study>(cfg: &S::Config, dir: &Path, progress: &dyn Progress) -> Result<S::Result> {
    S::validate(cfg)?;
    std::fs::create_dir_all(dir).map_err(|e| crate::error::DiffsimError::file(dir, e))?;
    let settings = toml::to_string(cfg).expect("settings serialise to TOML");
    write_text(&dir.join("config.toml"), &settings)?;
    let result = S::run(cfg, dir, progress)?;
    write_json(&result, &dir.join("results.json"))?;
    write_text(&dir.join("results.md"), &S::report(&result, dir))?;
    Ok(result)
}

/// `(iteration, log10 loss)` of losses whose first entry is iteration `first` (0: the
/// starting point of an optimisation; 1: the first training step), floored at 1e-30.
pub fn log_loss_curve(losses: &[f64], first: usize) -> Vec<(f64, f64)> {
    losses
        .iter()
        .enumerate()
        .map(|(k, l)| ((k + first) as f64, l.max(1e-30).log10()))
        .collect()
}

/// A solids study's page: a heading and one bullet per measured line.
pub fn study_page(name: &str, lines: &[String]) -> String {
    let mut page = format!("# {name}: measured results\n\n");
    for l in lines {
        page += &format!("- {l}\n");
    }
    page
}

/// The model's file in a training folder (burnpack).
pub const MODEL_FILE: &str = "model.bpk";
/// The optimizer state's file in a training folder (Adam's moments, burnpack).
pub const OPTIMIZER_FILE: &str = "optimizer.bpk";

/// Writes a training checkpoint into `dir`: [`MODEL_FILE`], [`OPTIMIZER_FILE`] and the JSON
/// `report_file`, each through a temporary name, then renamed; the report last, so a folder
/// whose report names iteration k holds the model and optimizer of iteration k (or later,
/// when a save was cut short).
pub fn save_checkpoint<M: burn::module::Module + Clone, R: Serialize>(
    dir: &Path,
    net: &M,
    optim: &burn::optim::ModuleOptimizer,
    report_file: &str,
    report: &R,
) -> Result<()> {
    let write = |name: &str, f: &dyn Fn(&Path) -> std::result::Result<(), String>| {
        let path = dir.join(name);
        let tmp = dir.join(format!("{name}.partial"));
        f(&tmp).map_err(|e| DiffsimError::file(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| DiffsimError::file(&path, e))
    };
    write(MODEL_FILE, &|p| {
        net.clone().save_file(p).map_err(|e| format!("{e:?}"))
    })?;
    write(OPTIMIZER_FILE, &|p| {
        optim.save(p).map_err(|e| format!("{e:?}"))
    })?;
    write_json(report, &dir.join(report_file))
}

/// One acceptance check.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Check {
    /// What is required.
    pub what: String,
    /// Whether it holds.
    pub passed: bool,
}

/// The checks as a Markdown task list.
pub fn checks_list(checks: &[Check]) -> String {
    checks
        .iter()
        .map(|c| format!("- [{}] {}\n", if c.passed { "x" } else { " " }, c.what))
        .collect()
}

/// Mean and sample standard deviation (0 for fewer than two values).
pub fn mean_std(x: &[f64]) -> (f64, f64) {
    let n = x.len().max(1) as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}
