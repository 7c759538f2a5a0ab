//! The Solver-in-the-Loop wake-flow reference data (docs/wake-flow.md §2, CPU-scale docs/wake-flow.md §7): the
//! `wake` scene run at the reference resolution for every training and test Reynolds number,
//! the warm-up discarded, each kept frame down-sampled to the source grid with the SoL
//! staggered down-sampling ([`crate::grid::resample`]) and written to one HDF5 file per
//! simulation (the layout of [`crate::io`], plus the recipe and the |v| moments as
//! attributes). `dataset.toml` lists the files and the normalisation statistics; it is
//! written last, so a folder without it is not a finished dataset.
//!
//! Generation is resumable: a simulation whose file is complete and was made by the same
//! recipe is not rerun; an interrupted one restarts from its beginning (its partial file is
//! never taken for a finished one).

use crate::error::{DiffsimError, Result};
use crate::fluid::{SceneConfig, Simulation, Viscosity};
use crate::grid::{Grid, Resolution, resample};
use crate::io::{
    Frame, SimWriter, Trajectory, read_attr_f64s, read_attr_str, read_trajectory, write_text,
};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How the reference data is made. TOML-serialisable; every field has a default (docs/wake-flow.md §7).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WakeDataConfig {
    /// Resolution of the reference solver (docs/wake-flow.md §1: 128x256).
    pub reference: Resolution,
    /// Halvings of both axes from the reference to the source grid (2: 4×, 128x256 → 32x64).
    pub downsample_levels: u32,
    /// Reference steps discarded before the first stored frame (docs/wake-flow.md §7: 1000).
    pub warmup: usize,
    /// Frames stored per training simulation, one per step (docs/wake-flow.md §7: 150).
    pub train_frames: usize,
    /// Frames stored per test simulation (docs/wake-flow.md §7: 101, for 100-step rollouts).
    pub test_frames: usize,
    /// Training Reynolds numbers on the SoL scale (docs/wake-flow.md §2: 97.66 … 3125).
    pub train_reynolds: Vec<f64>,
    /// Test Reynolds numbers (docs/wake-flow.md §7: 146.48, 585.94, 2343.75).
    pub test_reynolds: Vec<f64>,
}

impl Default for WakeDataConfig {
    fn default() -> Self {
        Self {
            reference: Resolution::new(128, 256),
            downsample_levels: 2,
            warmup: 1000,
            train_frames: 150,
            test_frames: 101,
            train_reynolds: vec![97.66, 195.31, 390.63, 781.25, 1562.5, 3125.0],
            test_reynolds: vec![146.48, 585.94, 2343.75],
        }
    }
}

impl WakeDataConfig {
    /// The toy-size recipe of `--quick` (the test suite runs it): a 64x128 reference
    /// down-sampled to 16x32, 60 warm-up steps, three training and one test Reynolds number.
    pub fn quick() -> Self {
        Self {
            reference: Resolution::new(64, 128),
            warmup: 60,
            train_frames: 16,
            test_frames: 13,
            train_reynolds: vec![97.66, 781.25, 3125.0],
            test_reynolds: vec![585.94],
            ..Self::default()
        }
    }

    /// Checks the recipe; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let f = 1usize << self.downsample_levels;
        let Resolution { nx, ny } = self.reference;
        if nx % f != 0 || ny % f != 0 || nx / f < 4 || ny / f < 4 {
            return Err(DiffsimError::config(format!(
                "reference {} must be divisible by 2^downsample_levels = {f} into at least 4x4 cells",
                self.reference
            )));
        }
        if self.train_frames < 2 || self.test_frames < 2 {
            return Err(DiffsimError::config(
                "train_frames and test_frames must be at least 2",
            ));
        }
        if self.train_reynolds.is_empty() || self.test_reynolds.is_empty() {
            return Err(DiffsimError::config(
                "train_reynolds and test_reynolds need at least one value each",
            ));
        }
        for &re in self.train_reynolds.iter().chain(&self.test_reynolds) {
            Viscosity::SolReynolds(1.0).with_reynolds(re)?;
        }
        Ok(())
    }

    /// The source (down-sampled) resolution.
    pub fn source(&self) -> Resolution {
        let f = 1usize << self.downsample_levels;
        Resolution::new(self.reference.nx / f, self.reference.ny / f)
    }

    /// The `wake` scene at `res` and Reynolds number `re`.
    pub fn scene(&self, res: Resolution, re: f64) -> Result<SceneConfig> {
        let mut s = SceneConfig::wake();
        s.resolution = res;
        s.viscosity = s.viscosity.with_reynolds(re)?;
        s.steps = self.warmup + self.train_frames.max(self.test_frames) - 1;
        Ok(s)
    }

    /// Reference steps of the whole recipe (the unit of generation progress).
    pub fn reference_steps(&self) -> u64 {
        self.sims()
            .iter()
            .map(|s| (self.warmup + s.3 - 1) as u64)
            .sum()
    }

    /// The simulations of the recipe: (split, index, Reynolds number, frames).
    fn sims(&self) -> Vec<(Split, usize, f64, usize)> {
        let train = self.train_reynolds.iter().enumerate();
        let test = self.test_reynolds.iter().enumerate();
        train
            .map(|(i, &re)| (Split::Train, i, re, self.train_frames))
            .chain(test.map(|(i, &re)| (Split::Test, i, re, self.test_frames)))
            .collect()
    }
}

/// Training or test simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Used for training and the normalisation statistics.
    Train,
    /// Held out for evaluation.
    Test,
}

/// One simulation of a dataset, as listed in `dataset.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimEntry {
    /// File name inside the dataset folder.
    pub file: String,
    /// Split.
    pub split: Split,
    /// Reynolds number (SoL scale).
    pub reynolds: f64,
    /// Stored frames.
    pub frames: usize,
}

/// Normalisation statistics (docs/wake-flow.md §2: std of absolute values, no mean subtraction when applied).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NormStats {
    /// Std of |u| over every stored x-face sample of the training frames.
    pub std_abs_u: f64,
    /// Std of |v| over the y-face samples.
    pub std_abs_v: f64,
    /// Population std of the training Reynolds numbers (the Re input channel is `Re / re_std`).
    pub re_std: f64,
}

/// `dataset.toml`: the recipe, the statistics and the files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// diffsim version that wrote it.
    pub created_by: String,
    /// Source resolution of the stored frames.
    pub resolution: Resolution,
    /// Normalisation statistics.
    pub stats: NormStats,
    /// Wall time of the generation, in seconds (simulations skipped on resume count 0).
    pub generation_s: f64,
    /// The recipe.
    pub recipe: WakeDataConfig,
    /// The simulations.
    pub sims: Vec<SimEntry>,
}

/// The manifest's file name inside a dataset folder.
pub const MANIFEST: &str = "dataset.toml";

/// `[n, Σ|x|, Σx²]` of the samples.
fn abs_moments(x: &[f32]) -> [f64; 3] {
    x.iter().fold([0.0; 3], |[n, s, q], &v| {
        let v = f64::from(v);
        [n + 1.0, s + v.abs(), q + v * v]
    })
}

fn add(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

fn std_of([n, s, q]: [f64; 3]) -> f64 {
    (q / n - (s / n).powi(2)).max(0.0).sqrt()
}

/// The standard deviation of `|x|` over the samples (the normalisation statistic).
pub fn std_abs(x: &[f32]) -> f64 {
    std_of(abs_moments(x))
}

/// Runs (or, on resume, skips) every simulation of `cfg` into `dir` and writes the manifest.
/// `progress(done, total)` counts reference steps.
pub fn generate(
    cfg: &WakeDataConfig,
    dir: &Path,
    mut progress: impl FnMut(u64, u64),
) -> Result<Manifest> {
    cfg.validate()?;
    std::fs::create_dir_all(dir).map_err(|e| DiffsimError::file(dir, e))?;
    let recipe = serde_json::to_string(cfg).expect("recipe serialises");
    let (sims, total) = (cfg.sims(), cfg.reference_steps());
    let device = Device::flex();
    let t0 = std::time::Instant::now();
    let (mut done, mut moments) = (0u64, [[0.0f64; 3]; 2]);
    let mut entries = Vec::new();
    for (split, index, re, frames) in sims {
        let name = format!("{}_{index:02}_re{re}.h5", split_name(split));
        let path = dir.join(&name);
        let m = match finished(&path, &recipe) {
            Some(m) => m,
            None => run_one(cfg, &path, &recipe, split, re, frames, &device, |k| {
                progress(done + k, total)
            })?,
        };
        done += (cfg.warmup + frames - 1) as u64;
        progress(done, total);
        if split == Split::Train {
            moments = [add(moments[0], m[0]), add(moments[1], m[1])];
        }
        entries.push(SimEntry {
            file: name,
            split,
            reynolds: re,
            frames,
        });
    }
    let re = &cfg.train_reynolds;
    let mean = re.iter().sum::<f64>() / re.len() as f64;
    let re_std = (re.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / re.len() as f64).sqrt();
    let manifest = Manifest {
        created_by: concat!("diffsim ", env!("CARGO_PKG_VERSION")).into(),
        resolution: cfg.source(),
        stats: NormStats {
            std_abs_u: std_of(moments[0]),
            std_abs_v: std_of(moments[1]),
            // One training Reynolds number: the channel is Re / Re.
            re_std: if re_std > 0.0 { re_std } else { re[0] },
        },
        generation_s: t0.elapsed().as_secs_f64(),
        recipe: cfg.clone(),
        sims: entries,
    };
    let text = toml::to_string_pretty(&manifest).expect("manifest serialises");
    write_text(&dir.join(MANIFEST), &text)?;
    Ok(manifest)
}

fn split_name(s: Split) -> &'static str {
    match s {
        Split::Train => "train",
        Split::Test => "test",
    }
}

/// The |u|, |v| moments of a finished file made by `recipe`, or None (then it is rerun). A
/// file exists under its final name only once complete ([`SimWriter::finish`]).
fn finished(path: &Path, recipe: &str) -> Option<[[f64; 3]; 2]> {
    if read_attr_str(path, "recipe")? != recipe {
        return None;
    }
    let mx = read_attr_f64s(path, "abs_moments_u")?;
    let my = read_attr_f64s(path, "abs_moments_v")?;
    Some([mx.try_into().ok()?, my.try_into().ok()?])
}

/// Runs one reference simulation and writes its down-sampled frames; returns the moments.
#[allow(clippy::too_many_arguments)]
fn run_one(
    cfg: &WakeDataConfig,
    path: &Path,
    recipe: &str,
    split: Split,
    re: f64,
    frames: usize,
    device: &Device,
    mut progress: impl FnMut(u64),
) -> Result<[[f64; 3]; 2]> {
    let reference = cfg.scene(cfg.reference, re)?;
    let source = cfg.scene(cfg.source(), re)?;
    let sim = Simulation::new(&reference, device)?;
    let low = Simulation::new(&source, device)?;
    let mut writer = SimWriter::create(path, &low)?;
    writer.attr_str("recipe", recipe)?;
    writer.attr_str("split", split_name(split))?;
    writer.attr_str(
        "reference_scene",
        &serde_json::to_string(&reference).expect("scene serialises"),
    )?;
    writer.attr_f64s("warmup", &[cfg.warmup as f64])?;
    let (levels, g) = (cfg.downsample_levels, sim.grid);
    let shape = [g.nx, g.ny];
    let mut state = sim.initial_state(1)?;
    let mut moments = [[0.0; 3]; 2];
    for k in 0..cfg.warmup + frames {
        if k > 0 {
            state = sim.step(state)?.0;
            progress(k as u64);
        }
        if k < cfg.warmup {
            continue;
        }
        sim.check_finite(&state)?;
        let f = Frame::of_state(&sim, &state, 0);
        let (u, v) = resample::downsample_velocity(f.u, f.v, shape, levels);
        moments = [
            add(moments[0], abs_moments(&u)),
            add(moments[1], abs_moments(&v)),
        ];
        writer.append(&Frame {
            u,
            v,
            pressure: f
                .pressure
                .map(|p| resample::downsample_scalar(p, shape, levels)),
            marker: f
                .marker
                .map(|m| resample::downsample_scalar(m, shape, levels)),
            step: f.step,
            time: f.time,
        })?;
    }
    writer.attr_f64s("abs_moments_u", &moments[0])?;
    writer.attr_f64s("abs_moments_v", &moments[1])?;
    writer.finish()?;
    Ok(moments)
}

/// One simulation loaded for training or evaluation.
#[derive(Clone, Debug)]
pub struct LoadedSim {
    /// Its manifest entry.
    pub entry: SimEntry,
    /// Its velocity frames on the source grid.
    pub frames: Trajectory,
}

/// A finished dataset in memory.
#[derive(Clone, Debug)]
pub struct WakeData {
    /// The folder.
    pub dir: PathBuf,
    /// `dataset.toml`.
    pub manifest: Manifest,
    /// Training simulations, in manifest order.
    pub train: Vec<LoadedSim>,
    /// Test simulations.
    pub test: Vec<LoadedSim>,
}

impl WakeData {
    /// Loads `dir/dataset.toml` and every file it lists.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|_| {
            DiffsimError::file(
                &path,
                "no finished dataset here; run `diffsim dataset wake-flow --out DIR` first",
            )
        })?;
        let manifest: Manifest =
            toml::from_str(&text).map_err(|e| DiffsimError::file(&path, e.message()))?;
        let source = manifest.recipe.scene(manifest.resolution, 1.0)?;
        let grid = Grid::new(source.resolution, source.domain)?;
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for entry in &manifest.sims {
            let frames = read_trajectory(&dir.join(&entry.file), &grid)?;
            if frames.frames != entry.frames {
                return Err(DiffsimError::file(
                    dir.join(&entry.file),
                    format!(
                        "{} frames, the manifest says {}; regenerate the dataset",
                        frames.frames, entry.frames
                    ),
                ));
            }
            let sim = LoadedSim {
                entry: entry.clone(),
                frames,
            };
            match entry.split {
                Split::Train => train.push(sim),
                Split::Test => test.push(sim),
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
            train,
            test,
        })
    }
}
