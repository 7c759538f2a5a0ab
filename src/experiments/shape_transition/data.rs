//! Data of the shape-transition study: a library of binary shapes made here, the transition
//! examples (a random shape at a random place to another), and the moving-rectangle sequences
//! that pre-train the networks (the only data with intermediate frames).
//!
//! Setup of the authors' revised notebook, at any even resolution `n` (64 there): shapes are
//! binary `n/2 × n/2` patches of about `n²/32` cells each (128 at 64x64; the authors' ten
//! patches hold 120–128), from one of two libraries ([`ShapeLibrary`]: the notebook's ten
//! convex-ish shapes re-made here, or thirteen with letters, a star and a ring), placed with
//! their corner at `(y, x)`, each uniform in
//! `[margin, n − margin − n/2 − 2]`; rectangles of `6..=9` cells per side at 64 (scaled with
//! `n`) move linearly between two random positions in `[10, 56)` (scaled) over `steps + 1`
//! frames, frame `f` at time `f/(steps + 1)` with the position rounded (ties to even). Every
//! example is a function of `(seed, index)` alone; indices `0..test` are the test set, the
//! next `validation` the validation set, the rest training (the notebook: 100 / 100 / 800).

use crate::error::{DiffsimError, Result};
use crate::experiments::sampling::splitmix;
use serde::{Deserialize, Serialize};

/// Settings of the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShapeDataConfig {
    /// Cells per side of the square grid (even).
    pub resolution: usize,
    /// Steps per transition (a power of two).
    pub steps: usize,
    /// Examples of each kind (transitions, moving rectangles).
    pub examples: usize,
    /// Test examples (the first indices).
    pub test: usize,
    /// Validation examples (the next indices).
    pub validation: usize,
    /// Cells kept free at the low edges when placing a shape.
    pub margin: usize,
    /// Seed of the draws.
    pub seed: u64,
    /// The shapes placed.
    pub library: ShapeLibrary,
}

/// The shapes of the transitions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShapeLibrary {
    /// The ten shapes of the authors' notebook library, made here from their descriptions:
    /// two diagonal squares, a disc, a square, a diamond, two triangles (apex up, apex to the
    /// side), a 2:1 rectangle both ways and an 8:1 bar both ways.
    #[default]
    Notebook,
    /// Thirteen shapes: disc, square, diamond, triangle, hexagon, star, cross, ring, the
    /// letters L, T and H, two diagonal squares and a 4:1 bar. Harder: a potential flow
    /// cannot open the ring's hole, and concave targets need finer control.
    Extended,
}

impl Default for ShapeDataConfig {
    fn default() -> Self {
        Self {
            resolution: 64,
            steps: 16,
            examples: 1000,
            test: 100,
            validation: 100,
            margin: 1,
            seed: 7,
            library: ShapeLibrary::Notebook,
        }
    }
}

impl ShapeDataConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        let n = self.resolution;
        if n < 16 || !n.is_multiple_of(8) {
            return Err(DiffsimError::config(format!(
                "data.resolution {n} must be a multiple of 8 and at least 16"
            )));
        }
        if self.steps < 2 || !self.steps.is_power_of_two() {
            return Err(DiffsimError::config(format!(
                "data.steps {} must be a power of two, at least 2",
                self.steps
            )));
        }
        if self.test + self.validation >= self.examples || self.test == 0 {
            return Err(DiffsimError::config(
                "data: test and validation must leave training examples, and test must not be empty",
            ));
        }
        if n - self.margin < n / 2 + 2 + self.margin {
            return Err(DiffsimError::config(
                "data.margin leaves no room to place a shape",
            ));
        }
        Ok(())
    }

    /// Cells per side of a shape patch.
    pub fn patch(&self) -> usize {
        self.resolution / 2
    }

    /// The indices of the training examples.
    pub fn train_range(&self) -> std::ops::Range<usize> {
        self.test + self.validation..self.examples
    }
}

/// A binary shape on its square patch.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    /// Its name.
    pub name: &'static str,
    /// Cells per side.
    pub size: usize,
    /// `size × size` values, 1 inside, row-major `[y, x]`.
    pub cells: Vec<f32>,
}

impl Shape {
    /// Cells inside.
    pub fn area(&self) -> usize {
        self.cells.iter().filter(|&&c| c > 0.0).count()
    }
}

/// A shape in coordinates where it spans about `[−1, 1]²` (y along the rows, as on the grid).
type Inside = fn(f64, f64) -> bool;

fn in_polygon(x: f64, y: f64, corners: &[(f64, f64)]) -> bool {
    let mut inside = false;
    let mut j = corners.len() - 1;
    for i in 0..corners.len() {
        let ((xi, yi), (xj, yj)) = (corners[i], corners[j]);
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

fn regular(k: usize, x: f64, y: f64) -> bool {
    let corners: Vec<(f64, f64)> = (0..k)
        .map(|i| {
            let a = std::f64::consts::FRAC_PI_2 + std::f64::consts::TAU * i as f64 / k as f64;
            (a.cos(), a.sin())
        })
        .collect();
    in_polygon(x, y, &corners)
}

fn star(x: f64, y: f64) -> bool {
    let corners: Vec<(f64, f64)> = (0..10)
        .map(|i| {
            let a = std::f64::consts::FRAC_PI_2 + std::f64::consts::PI * i as f64 / 5.0;
            let r = if i % 2 == 0 { 1.0 } else { 0.45 };
            (r * a.cos(), r * a.sin())
        })
        .collect();
    in_polygon(x, y, &corners)
}

fn rect(x: f64, y: f64, [x0, x1, y0, y1]: [f64; 4]) -> bool {
    (x0..=x1).contains(&x) && (y0..=y1).contains(&y)
}

fn triangle_up(x: f64, y: f64) -> bool {
    in_polygon(x, y, &[(-1.0, 1.0), (1.0, 1.0), (0.0, -1.0)])
}

fn triangle_side(x: f64, y: f64) -> bool {
    in_polygon(x, y, &[(1.0, -1.0), (1.0, 1.0), (-1.0, 0.0)])
}

fn two_squares(x: f64, y: f64) -> bool {
    rect(x, y, [-1.0, 0.0, 0.0, 1.0]) || rect(x, y, [0.0, 1.0, -1.0, 0.0])
}

/// The notebook library's shapes: `(name, inside)`.
const NOTEBOOK: [(&str, Inside); 10] = [
    ("two squares", two_squares),
    ("disc", |x, y| x * x + y * y <= 1.0),
    ("bar", |x, y| x.abs() <= 1.0 && y.abs() <= 0.125),
    ("upright bar", |x, y| x.abs() <= 0.125 && y.abs() <= 1.0),
    ("wide rectangle", |x, y| x.abs() <= 1.0 && y.abs() <= 0.5),
    ("tall rectangle", |x, y| x.abs() <= 0.5 && y.abs() <= 1.0),
    ("diamond", |x, y| x.abs() + y.abs() <= 1.0),
    ("square", |x, y| x.abs() <= 1.0 && y.abs() <= 1.0),
    ("triangle", triangle_up),
    ("side triangle", triangle_side),
];

/// The extended library's shapes: `(name, inside)`.
const EXTENDED: [(&str, Inside); 13] = [
    ("disc", |x, y| x * x + y * y <= 1.0),
    ("square", |x, y| x.abs() <= 1.0 && y.abs() <= 1.0),
    ("diamond", |x, y| x.abs() + y.abs() <= 1.0),
    ("triangle", |x, y| regular(3, x, y)),
    ("hexagon", |x, y| regular(6, x, y)),
    ("star", star),
    ("cross", |x, y| {
        rect(x, y, [-1.0, 1.0, -0.3, 0.3]) || rect(x, y, [-0.3, 0.3, -1.0, 1.0])
    }),
    ("ring", |x, y| (0.3..=1.0).contains(&(x * x + y * y))),
    ("letter L", |x, y| {
        rect(x, y, [-0.7, -0.2, -1.0, 1.0]) || rect(x, y, [-0.7, 0.7, -1.0, -0.5])
    }),
    ("letter T", |x, y| {
        rect(x, y, [-0.9, 0.9, 0.5, 1.0]) || rect(x, y, [-0.25, 0.25, -1.0, 1.0])
    }),
    ("letter H", |x, y| {
        rect(x, y, [-0.8, -0.4, -1.0, 1.0])
            || rect(x, y, [0.4, 0.8, -1.0, 1.0])
            || rect(x, y, [-0.8, 0.8, -0.2, 0.2])
    }),
    ("two squares", two_squares),
    ("bar", |x, y| x.abs() <= 1.0 && y.abs() <= 0.25),
];

/// `inside` rasterised on a `size × size` patch at scale `s` (cells per unit), centred
/// `shift = [x, y]` cells off the patch's centre (half a cell lets a shape span an odd
/// number of cells).
fn rasterise(inside: Inside, size: usize, s: f64, shift: [f64; 2]) -> Vec<f32> {
    let c = size as f64 / 2.0;
    (0..size * size)
        .map(|k| {
            let (j, i) = (k / size, k % size);
            let x = (i as f64 + 0.5 - c + shift[0]) / s;
            let y = (j as f64 + 0.5 - c + shift[1]) / s;
            if inside(x, y) { 1.0 } else { 0.0 }
        })
        .collect()
}

/// Shape library `kind` for `size × size` patches: every shape scaled to the area closest to
/// `size²/8` cells (128 on the 32x32 patches of a 64x64 grid; the smallest such scale), at
/// most half the patch per unit so that it fits, centred or half a cell off along either axis.
pub fn library(kind: ShapeLibrary, size: usize) -> Vec<Shape> {
    let want = (size * size / 8) as i64;
    let shapes: &[(&str, Inside)] = match kind {
        ShapeLibrary::Notebook => &NOTEBOOK,
        ShapeLibrary::Extended => &EXTENDED,
    };
    shapes
        .iter()
        .map(|&(name, inside)| {
            // Scales from 2 cells per unit to half the patch, in steps of 1/64 cell.
            let steps = (size / 2 - 2) * 64;
            let (cells, _) = (0..=steps)
                .flat_map(|k| [[0.0, 0.0], [0.5, 0.0], [0.0, 0.5], [0.5, 0.5]].map(|s| (k, s)))
                .map(|(k, shift)| {
                    let cells = rasterise(inside, size, 2.0 + k as f64 / 64.0, shift);
                    let area = cells.iter().filter(|&&c| c > 0.0).count() as i64;
                    (cells, (area - want).abs())
                })
                .min_by_key(|(_, miss)| *miss)
                .expect("at least one scale");
            Shape { name, size, cells }
        })
        .collect()
}

/// One placed shape: which, and the corner of its patch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Placement {
    /// Index into the library.
    pub shape: usize,
    /// Row of the patch's first row.
    pub y: usize,
    /// Column of the patch's first column.
    pub x: usize,
}

/// A transition example: start and target placements.
pub fn transition(cfg: &ShapeDataConfig, shapes: usize, index: usize) -> [Placement; 2] {
    let mut rng = splitmix(cfg.seed ^ (index as u64).wrapping_mul(0xA24B_AED4_963E_E407));
    let hi = cfg.resolution - cfg.margin - cfg.patch() - 2;
    let mut draw = |lo: usize, hi: usize| lo + (rng() % (hi - lo + 1) as u64) as usize;
    let mut place = || Placement {
        shape: draw(0, shapes - 1),
        y: draw(cfg.margin, hi),
        x: draw(cfg.margin, hi),
    };
    [place(), place()]
}

/// The density `[n, n]` of a placed shape.
pub fn draw_shape(cfg: &ShapeDataConfig, library: &[Shape], p: Placement, out: &mut [f32]) {
    let (n, s) = (cfg.resolution, &library[p.shape]);
    out.fill(0.0);
    for j in 0..s.size {
        let row = &mut out[(p.y + j) * n + p.x..(p.y + j) * n + p.x + s.size];
        row.copy_from_slice(&s.cells[j * s.size..(j + 1) * s.size]);
    }
}

/// A moving rectangle: start and end centres `(y, x)` and its size `(h, w)` in cells.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rectangle {
    /// Centre at frame 0.
    pub start: [usize; 2],
    /// Centre at time 1 (after the last frame).
    pub end: [usize; 2],
    /// Height and width.
    pub size: [usize; 2],
}

/// Moving-rectangle sequence `index`.
pub fn rectangle(cfg: &ShapeDataConfig, index: usize) -> Rectangle {
    let mut rng = splitmix(!cfg.seed ^ (index as u64).wrapping_mul(0x9FB2_1C65_1E98_DF25));
    let n = cfg.resolution;
    let mut draw = |lo: usize, hi: usize| lo + (rng() % (hi - lo) as u64) as usize;
    let (p0, p1) = (10 * n / 64, 56 * n / 64);
    let (s0, s1) = (6 * n / 64, 10 * n / 64);
    Rectangle {
        start: [draw(p0, p1), draw(p0, p1)],
        end: [draw(p0, p1), draw(p0, p1)],
        size: [draw(s0, s1), draw(s0, s1)],
    }
}

/// The density `[n, n]` of rectangle `r` at frame `f` of `cfg.steps + 1` frames.
pub fn draw_rectangle(cfg: &ShapeDataConfig, r: &Rectangle, f: usize, out: &mut [f32]) {
    let n = cfg.resolution as isize;
    let t = f as f64 / (cfg.steps + 1) as f64;
    out.fill(0.0);
    let lo: [isize; 2] = std::array::from_fn(|a| {
        let centre = (r.start[a] as f64 * (1.0 - t) + r.end[a] as f64 * t).round_ties_even();
        centre as isize - (r.size[a] / 2) as isize
    });
    for j in lo[0].max(0)..(lo[0] + r.size[0] as isize).min(n) {
        for i in lo[1].max(0)..(lo[1] + r.size[1] as isize).min(n) {
            out[(j * n + i) as usize] = 1.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_shapes_hold_128_cells_within_8_on_64x64() {
        for (kind, count) in [(ShapeLibrary::Notebook, 10), (ShapeLibrary::Extended, 13)] {
            let lib = library(kind, 32);
            assert_eq!(lib.len(), count);
            for s in &lib {
                let a = s.area() as i64;
                println!("{:14} {a}", s.name);
                assert!((a - 128).abs() <= 8, "{} has {a} cells", s.name);
                // Fits its patch with an empty border (nothing on the outermost ring) except
                // the notebook's bars, which span it (32 x 4, as the authors' do).
                let (rows, cols) = (
                    (0..32).any(|k| s.cells[k] > 0.0 || s.cells[31 * 32 + k] > 0.0),
                    (0..32).any(|k| s.cells[k * 32] > 0.0 || s.cells[k * 32 + 31] > 0.0),
                );
                match s.name {
                    "bar" if kind == ShapeLibrary::Notebook => assert!(cols && !rows),
                    "upright bar" => assert!(rows && !cols),
                    "bar" => assert!(!rows),
                    _ => assert!(!rows && !cols, "{} touches its patch's edge", s.name),
                }
            }
            let distinct = lib
                .iter()
                .enumerate()
                .all(|(i, a)| lib[i + 1..].iter().all(|b| a.cells != b.cells));
            assert!(distinct);
        }
        // The notebook's shapes at their sizes: bars 32 x 4, rectangles 16 x 8, square 11 or 12
        // a side (the authors': 11 x 11, 121 cells; 12 x 11 is closer to 128).
        let lib = library(ShapeLibrary::Notebook, 32);
        let extent = |name: &str| {
            let s = lib.iter().find(|s| s.name == name).expect("in the library");
            let rows = (0..32).filter(|&j| (0..32).any(|i| s.cells[j * 32 + i] > 0.0));
            let cols = (0..32).filter(|&i| (0..32).any(|j| s.cells[j * 32 + i] > 0.0));
            (rows.count(), cols.count())
        };
        assert_eq!(extent("bar"), (4, 32));
        assert_eq!(extent("upright bar"), (32, 4));
        assert_eq!(extent("wide rectangle"), (8, 16));
        assert_eq!(extent("tall rectangle"), (16, 8));
        let (h, w) = extent("square");
        assert!((11..=12).contains(&h) && (11..=12).contains(&w));
        assert_eq!(extent("two squares"), (16, 16));
    }

    #[test]
    fn placements_stay_inside_and_are_reproducible() {
        let cfg = ShapeDataConfig::default();
        let lib = library(cfg.library, cfg.patch());
        let mut rho = vec![0.0; 64 * 64];
        for k in 0..200 {
            let [a, b] = transition(&cfg, lib.len(), k);
            assert_eq!([a, b], transition(&cfg, lib.len(), k));
            for p in [a, b] {
                assert!(p.y >= 1 && p.y <= 29 && p.x >= 1 && p.x <= 29, "{p:?}");
                draw_shape(&cfg, &lib, p, &mut rho);
                let mass: f32 = rho.iter().sum();
                assert_eq!(mass as usize, lib[p.shape].area());
            }
        }
    }

    #[test]
    fn rectangles_move_from_start_towards_end() {
        let cfg = ShapeDataConfig::default();
        let r = Rectangle {
            start: [20, 10],
            end: [20, 44],
            size: [6, 8],
        };
        let mut rho = vec![0.0; 64 * 64];
        draw_rectangle(&cfg, &r, 0, &mut rho);
        // Rows 17..23, columns 6..14 at frame 0.
        assert_eq!(rho.iter().sum::<f32>(), 48.0);
        assert_eq!(
            (rho[17 * 64 + 6], rho[16 * 64 + 6], rho[17 * 64 + 14]),
            (1.0, 0.0, 0.0)
        );
        // Frame 16 of 17: centre x = 10 + 34·16/17 = 42.0 → columns 38..46.
        draw_rectangle(&cfg, &r, 16, &mut rho);
        assert_eq!(
            (rho[20 * 64 + 38], rho[20 * 64 + 37], rho[20 * 64 + 45]),
            (1.0, 0.0, 1.0)
        );
        for k in 0..100 {
            let r = rectangle(&cfg, k);
            assert!(r.start.iter().chain(&r.end).all(|&p| (10..56).contains(&p)));
            assert!(r.size.iter().all(|&s| (6..10).contains(&s)));
        }
    }
}
