//! Data of the indirect-control study, after the authors' generators: a marker square moving
//! on a straight line over `steps` steps. "Bounded squares" (pre-training the CFE on one
//! step) start and end anywhere in the box's interior, corners uniform in `x ∈ [24, 93)`,
//! `y ∈ [10, 91)`; "rising squares" (the control task) start in the lower interior,
//! `x ∈ [34, 83)`, `y ∈ [18, 60)`, and end in a bucket, the layout's target `index mod
//! targets`, so that the test set visits every bucket equally. Positions are drawn as whole
//! paper cells (128x128) and scaled to the grid; frame `f`'s corner is the straight-line
//! position at `t = f/steps` (see [`Motion::corner`]). Every sequence is a function of `(seed, kind, index)`
//! alone; indices `0..test` are the test set, the next `validation` the validation set, the
//! rest training.

use crate::error::{DiffsimError, Result};
use crate::experiments::sampling::splitmix;
use crate::fluid::{IndirectFlow, IndirectLayout};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Settings of the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndirectDataConfig {
    /// Cells per side (the paper: 128; the course's CPU scale: 64).
    pub resolution: usize,
    /// Steps per sequence (a multiple of the training windows).
    pub steps: usize,
    /// Rising-square sequences.
    pub examples: usize,
    /// Test sequences (the first indices).
    pub test: usize,
    /// Validation sequences (the next indices).
    pub validation: usize,
    /// Seed of the draws.
    pub seed: u64,
}

impl Default for IndirectDataConfig {
    fn default() -> Self {
        Self {
            resolution: 64,
            steps: 16,
            examples: 1000,
            test: 100,
            validation: 100,
            seed: 11,
        }
    }
}

impl IndirectDataConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 {
            return Err(DiffsimError::config("data.steps must be at least 1"));
        }
        if self.test == 0 || self.test + self.validation >= self.examples {
            return Err(DiffsimError::config(format!(
                "data: test ({}) must be positive and test + validation ({}) fewer than examples ({})",
                self.test,
                self.test + self.validation,
                self.examples
            )));
        }
        Ok(())
    }

    /// The indices of the training sequences.
    pub fn train_range(&self) -> std::ops::Range<usize> {
        self.test + self.validation..self.examples
    }
}

/// A straight-line motion of the marker's lower-left corner (paper units).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Motion {
    /// Corner `[x, y]` at frame 0.
    pub start: [f64; 2],
    /// Corner at the last frame.
    pub end: [f64; 2],
    /// The target (bucket) index, for rising squares.
    pub target: Option<usize>,
}

fn uniform(rng: &mut impl FnMut() -> u64, lo: u64, hi: u64) -> f64 {
    (lo + rng() % (hi - lo)) as f64
}

/// Bounded square `index`.
pub fn bounded(cfg: &IndirectDataConfig, index: usize) -> Motion {
    let mut rng = splitmix(cfg.seed ^ (index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
    let mut corner = || [uniform(&mut rng, 24, 93), uniform(&mut rng, 10, 91)];
    Motion {
        start: corner(),
        end: corner(),
        target: None,
    }
}

/// Rising square `index` of `layout`.
pub fn rising(cfg: &IndirectDataConfig, layout: &IndirectLayout, index: usize) -> Motion {
    let mut rng = splitmix(!cfg.seed ^ (index as u64).wrapping_mul(0x8CB9_2BA7_2F3D_8DD7));
    let target = index % layout.targets.len();
    Motion {
        start: [uniform(&mut rng, 34, 83), uniform(&mut rng, 18, 60)],
        end: layout.targets[target],
        target: Some(target),
    }
}

impl Motion {
    /// The corner (cells) at frame `f` of `steps` on a grid of `s` cells per paper cell: the
    /// straight-line position rounded to whole paper cells (ties to even, as the authors'
    /// `int(round(·))`), then scaled and floored like the layout's targets, so that the last
    /// frame is exactly the target.
    pub fn corner(&self, f: usize, steps: usize, s: f64) -> [usize; 2] {
        let t = f as f64 / steps as f64;
        let at = |a: f64, b: f64| {
            ((a * (1.0 - t) + b * t).round_ties_even() * s)
                .floor()
                .max(0.0) as usize
        };
        [
            at(self.start[0], self.end[0]),
            at(self.start[1], self.end[1]),
        ]
    }

    /// The constant velocity `[vx, vy]` (cells per step) of the motion.
    pub fn velocity(&self, steps: usize, s: f64) -> [f64; 2] {
        let d = |a: f64, b: f64| (b - a) * s / steps as f64;
        [d(self.start[0], self.end[0]), d(self.start[1], self.end[1])]
    }
}

/// Frame `f` of `motions` as densities `[B, n, n]` on `device`.
pub fn frames(
    flow: &IndirectFlow,
    motions: &[Motion],
    f: usize,
    steps: usize,
    device: &Device,
) -> Tensor<3> {
    let n = flow.n();
    let s = n as f64 / crate::fluid::PAPER_CELLS;
    let mut out = vec![0.0f32; motions.len() * n * n];
    for (m, cells) in motions.iter().zip(out.chunks_mut(n * n)) {
        flow.draw_marker(m.corner(f, steps, s), cells);
    }
    Tensor::from_data(TensorData::new(out, [motions.len(), n, n]), device)
}

/// The motions' constant velocities as staggered fields `(u [B, n, n+1], v [B, n+1, n])`.
pub fn velocities(
    n: usize,
    motions: &[Motion],
    steps: usize,
    device: &Device,
) -> (Tensor<3>, Tensor<3>) {
    let s = n as f64 / crate::fluid::PAPER_CELLS;
    let fill = |axis: usize, cells: usize| {
        let values: Vec<f32> = motions
            .iter()
            .flat_map(|m| std::iter::repeat_n(m.velocity(steps, s)[axis] as f32, cells))
            .collect();
        values
    };
    let b = motions.len();
    (
        Tensor::from_data(TensorData::new(fill(0, n * (n + 1)), [b, n, n + 1]), device),
        Tensor::from_data(TensorData::new(fill(1, (n + 1) * n), [b, n + 1, n]), device),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rising_squares_end_in_their_bucket_and_cycle_through_the_targets() {
        let cfg = IndirectDataConfig::default();
        let layout = IndirectLayout::default();
        let flow = IndirectFlow::new(64, &layout, &Device::flex()).unwrap();
        for i in 0..30 {
            let m = rising(&cfg, &layout, i);
            assert_eq!(m.target, Some(i % 3));
            assert_eq!(m.corner(16, 16, 0.5), flow.targets[i % 3]);
            let [x, y] = m.corner(0, 16, 0.5);
            assert!((17..=41).contains(&x) && (9..=30).contains(&y), "{x} {y}");
        }
        let b = bounded(&cfg, 5);
        assert_eq!(b, bounded(&cfg, 5));
        assert_ne!(b, bounded(&cfg, 6));
    }
}
