//! The Burgers control data (docs/burgers-control.md §2): "clash" initial states (a positive
//! Gaussian on the left, a negative one on the right) driven by a Gaussian force constant in
//! time, simulated for `steps` steps and written to one HDF5 sequence set
//! ([`crate::io::SetWriter`]). Every sequence's draws come from `(seed, index)` alone, so a
//! resumed generation writes what an uninterrupted one would. Split by index: the first
//! `test` sequences are the test set, the next `validation` the validation set, the rest
//! training (the draws are i.i.d., so a contiguous split is a random one).

use crate::burgers::BurgersScene;
use crate::error::{DiffsimError, Result};
use crate::experiments::sampling::splitmix;
use crate::io::{SequenceSet, SetBlock, SetShape, SetWriter, read_sequences};
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How the data is made. TOML-serialisable; every field has a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BurgersDataConfig {
    /// The physics (a preset name or a table).
    pub scene: BurgersScene,
    /// Sequences in all (the paper generated 4000).
    pub sequences: usize,
    /// Validation sequences.
    pub validation: usize,
    /// Test sequences.
    pub test: usize,
    /// Largest |amplitude| of the data force per step (the paper: 0.05; the notebook's
    /// 0.05·32 per unit time is 0.048 per step at dt = 0.03).
    pub force_amplitude: f64,
    /// Seed of every draw.
    pub seed: u64,
}

impl Default for BurgersDataConfig {
    fn default() -> Self {
        Self {
            scene: BurgersScene::paper(),
            sequences: 4000,
            validation: 200,
            test: 200,
            force_amplitude: 0.05,
            seed: 2020,
        }
    }
}

/// Names of the drawn parameters of a sequence, in the order of the `params` dataset.
pub const PARAMS: [&str; 9] = [
    "left_centre",
    "left_amplitude",
    "left_sigma",
    "right_centre",
    "right_amplitude",
    "right_sigma",
    "force_centre",
    "force_amplitude",
    "force_sigma",
];

/// Split codes of the `split` dataset.
pub const TRAIN: u8 = 0;
/// Validation.
pub const VALIDATION: u8 = 1;
/// Test.
pub const TEST: u8 = 2;

impl BurgersDataConfig {
    /// The toy size of `--quick`: 96 sequences (16 validation, 16 test).
    pub fn quick() -> Self {
        Self {
            sequences: 96,
            validation: 16,
            test: 16,
            ..Self::default()
        }
    }

    /// Checks the recipe; the error names the field.
    pub fn validate(&self) -> Result<()> {
        self.scene.validate()?;
        if self.validation + self.test + 1 > self.sequences || self.test == 0 {
            return Err(DiffsimError::config(format!(
                "data: {} sequences cannot hold {} validation + {} test (≥ 1) sequences and a training set",
                self.sequences, self.validation, self.test
            )));
        }
        if !(self.force_amplitude >= 0.0 && self.force_amplitude.is_finite()) {
            return Err(DiffsimError::config(
                "data.force_amplitude must be finite and ≥ 0",
            ));
        }
        Ok(())
    }

    /// The split of sequence `k`.
    pub fn split_of(&self, k: usize) -> u8 {
        if k < self.test {
            TEST
        } else if k < self.test + self.validation {
            VALIDATION
        } else {
            TRAIN
        }
    }

    /// The drawn parameters of sequence `k` (see [`PARAMS`]), as the paper's generator draws
    /// them: centres U(0.2, 0.4) and U(0.6, 0.8), amplitudes U(0, 3) and U(−3, 0), widths
    /// U(0.05, 0.15); force centre U(0.4, 0.6), amplitude ±`force_amplitude`, width U(0.1, 0.4).
    pub fn draw(&self, k: usize) -> [f64; 9] {
        let mut rng = StdRng::seed_from_u64(splitmix(
            self.seed ^ (k as u64).wrapping_mul(0xA24B_AED4_963E_E407),
        )());
        let a = self.force_amplitude;
        let ranges = [
            (0.2, 0.4),
            (0.0, 3.0),
            (0.05, 0.15),
            (0.6, 0.8),
            (-3.0, 0.0),
            (0.05, 0.15),
            (0.4, 0.6),
            (-a, a),
            (0.1, 0.4),
        ];
        ranges.map(|(lo, hi)| {
            if hi > lo {
                rng.random_range(lo..hi)
            } else {
                lo
            }
        })
    }

    /// Initial state and data force of the parameters `p`, sampled at the scene's points.
    pub fn fields(&self, p: &[f64; 9]) -> (Vec<f32>, Vec<f32>) {
        let gauss = |x: f64, c: f64, a: f64, s: f64| a * (-0.5 * (x - c).powi(2) / (s * s)).exp();
        let xs = self.scene.unit_points();
        let u0 = xs
            .iter()
            .map(|&x| (gauss(x, p[0], p[1], p[2]) + gauss(x, p[3], p[4], p[5])) as f32)
            .collect();
        let f = xs
            .iter()
            .map(|&x| gauss(x, p[6], p[7], p[8]) as f32)
            .collect();
        (u0, f)
    }

    /// Shapes of the set.
    pub fn shape(&self) -> SetShape {
        SetShape {
            sequences: self.sequences,
            frames: self.scene.steps + 1,
            points: self.scene.cells,
            params: PARAMS.len(),
        }
    }
}

/// The dataset file in a data folder.
pub const FILE: &str = "burgers.h5";

/// Sequences simulated per written block.
const BLOCK: usize = 500;

/// Generates (or finishes, or finds finished) `dir/burgers.h5` for `cfg`; `progress(done,
/// total)` after each block. A finished file of another recipe is an error (use another
/// folder or delete it).
pub fn generate(
    cfg: &BurgersDataConfig,
    dir: &Path,
    mut progress: impl FnMut(usize, usize),
) -> Result<PathBuf> {
    cfg.validate()?;
    let path = dir.join(FILE);
    let recipe = serde_json::to_string(cfg).expect("recipe serialises");
    if path.is_file() {
        let set = read_sequences(&path)?;
        if set.recipe == recipe {
            progress(cfg.sequences, cfg.sequences);
            return Ok(path);
        }
        return Err(DiffsimError::file(
            &path,
            "holds a dataset of another recipe; delete it or choose another --out folder",
        ));
    }
    let shape = cfg.shape();
    let mut writer = SetWriter::open(&path, shape, &recipe)?;
    let device = Device::flex();
    let (n, frames) = (shape.points, shape.frames);
    while writer.written() < cfg.sequences {
        let start = writer.written();
        let len = BLOCK.min(cfg.sequences - start);
        let params: Vec<[f64; 9]> = (start..start + len).map(|k| cfg.draw(k)).collect();
        let (mut u0, mut f) = (Vec::with_capacity(len * n), Vec::with_capacity(len * n));
        for p in &params {
            let (a, b) = cfg.fields(p);
            u0.extend(a);
            f.extend(b);
        }
        let force = Tensor::<2>::from_data(TensorData::new(f.clone(), [len, n]), &device);
        let mut u = Tensor::<2>::from_data(TensorData::new(u0, [len, n]), &device);
        let mut traj = vec![0f32; len * frames * n];
        for t in 0..frames {
            if t > 0 {
                u = cfg.scene.forced(u, force.clone());
            }
            let host: Vec<f32> = u
                .clone()
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .expect("f32 state");
            if host.iter().any(|x| !x.is_finite()) {
                return Err(DiffsimError::config(format!(
                    "data: a sequence of block {start}.. became non-finite at step {t}"
                )));
            }
            for (s, row) in host.chunks_exact(n).enumerate() {
                traj[(s * frames + t) * n..(s * frames + t + 1) * n].copy_from_slice(row);
            }
        }
        let split: Vec<u8> = (start..start + len).map(|k| cfg.split_of(k)).collect();
        let flat: Vec<f64> = params.iter().flatten().copied().collect();
        writer.write(&SetBlock {
            start,
            u: &traj,
            force: &f,
            split: &split,
            params: &flat,
        })?;
        progress(writer.written(), cfg.sequences);
    }
    writer.finish()
}

/// A loaded dataset.
pub struct BurgersData {
    /// The recipe it was made with.
    pub config: BurgersDataConfig,
    /// The arrays.
    pub set: SequenceSet,
    /// Training sequence indices.
    pub train: Vec<usize>,
    /// Validation sequence indices.
    pub validation: Vec<usize>,
    /// Test sequence indices.
    pub test: Vec<usize>,
}

impl BurgersData {
    /// Reads `dir/burgers.h5` (or the file `path` itself), checking it against its recipe.
    pub fn load(path: &Path) -> Result<Self> {
        let file = if path.is_dir() {
            path.join(FILE)
        } else {
            path.to_path_buf()
        };
        let set = read_sequences(&file)?;
        let config: BurgersDataConfig = serde_json::from_str(&set.recipe)
            .map_err(|e| DiffsimError::file(&file, format!("unreadable recipe attribute: {e}")))?;
        if set.shape != config.shape() {
            return Err(DiffsimError::file(
                &file,
                format!(
                    "arrays of shape [{}, {}, {}] do not match the recipe's [{}, {}, {}]",
                    set.shape.sequences,
                    set.shape.frames,
                    set.shape.points,
                    config.sequences,
                    config.scene.steps + 1,
                    config.scene.cells
                ),
            ));
        }
        let pick = |code: u8| -> Vec<usize> {
            (0..set.shape.sequences)
                .filter(|&k| set.split[k] == code)
                .collect()
        };
        let (train, validation, test) = (pick(TRAIN), pick(VALIDATION), pick(TEST));
        Ok(Self {
            config,
            set,
            train,
            validation,
            test,
        })
    }

    /// Frame `t` of sequence `s`, `[N]`.
    pub fn frame(&self, s: usize, t: usize) -> &[f32] {
        let SetShape { frames, points, .. } = self.set.shape;
        &self.set.u[(s * frames + t) * points..(s * frames + t + 1) * points]
    }

    /// The data force of sequence `s`, `[N]`.
    pub fn data_force(&self, s: usize) -> &[f32] {
        let n = self.set.shape.points;
        &self.set.force[s * n..(s + 1) * n]
    }

    /// Frames `t` of the sequences `seqs` as a `[B, N]` tensor on `device`; see
    /// [`BurgersData::states_at`].
    pub fn states(&self, seqs: &[usize], t: usize, flip: &[bool], device: &Device) -> Tensor<2> {
        self.states_at(seqs, &vec![t; seqs.len()], flip, device)
    }

    /// Frame `times[k]` of sequence `seqs[k]` for every `k`, as a `[B, N]` tensor on `device`;
    /// an item with `flip` set is mirrored in x with its sign changed (`u(x) → −u(1 − x)`, the
    /// velocity of the mirrored flow).
    pub fn states_at(
        &self,
        seqs: &[usize],
        times: &[usize],
        flip: &[bool],
        device: &Device,
    ) -> Tensor<2> {
        let n = self.set.shape.points;
        let mut v = Vec::with_capacity(seqs.len() * n);
        for (k, (&s, &t)) in seqs.iter().zip(times).enumerate() {
            let f = self.frame(s, t);
            if flip.get(k).copied().unwrap_or(false) {
                v.extend(f.iter().rev().map(|x| -x));
            } else {
                v.extend_from_slice(f);
            }
        }
        Tensor::from_data(TensorData::new(v, [seqs.len(), n]), device)
    }
}
