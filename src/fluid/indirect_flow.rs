//! The controlled flow of the indirect-control problem (Holl et al. 2020, "indirect control";
//! the authors' legacy scripts): a marker density `ρ: [B, n, n]` in a box of walls with three
//! buckets at the top, an open top and closed sides and bottom. A network may set the velocity
//! only in two vertical strips at the sides (the "ventilation region"); every step that raw
//! velocity is masked to the strips, made divergence-free by the pressure projection with the
//! obstacles (the differentiable projection and its adjoint solve), and the marker is
//! advected by the result. The interior, where the marker lives, is therefore moved only
//! through the pressure: a step has no memory of the previous velocity.
//!
//! Geometry in the paper's units (a 128x128 grid of unit cells, `x` to the right, `y` up),
//! scaled to `n` cells by `s = n/128`, box edges rounded outwards: walls
//! `x∈[0,20)×y∈[60,64)`, `[108,112)×[14,106)`, `[30,98)×[4,8)`, `[18,22)×[14,52)`,
//! `[18,22)×[72,106)`; bucket dividers `[19,21)`, `[49,51)`, `[79,81)`, `[109,111)` over
//! `y∈[105,115)`. The buckets are the gaps between neighbouring dividers, over the dividers'
//! rows.

use crate::error::{DiffsimError, Result};
use crate::grid::{
    ArraySpec, Boundaries, Extrap, Geometry, Grid, Location, Resolution, SideBc, SolidMask,
};
use crate::linalg::SolveConfig;
use crate::ops::{self, AdvectScheme, AdvectSpec, PressureProjection};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Walls `[x0, x1, y0, y1]` in the paper's 128-cell units.
const WALLS: [[f64; 4]; 5] = [
    [0.0, 20.0, 60.0, 64.0],
    [108.0, 112.0, 14.0, 106.0],
    [30.0, 98.0, 4.0, 8.0],
    [18.0, 22.0, 14.0, 52.0],
    [18.0, 22.0, 72.0, 106.0],
];
/// Left edges of the bucket dividers (2 cells wide) and their rows, paper units.
const DIVIDERS: [f64; 4] = [19.0, 49.0, 79.0, 109.0];
const DIVIDER_ROWS: [f64; 2] = [105.0, 115.0];
/// The paper's grid size.
pub const PAPER_CELLS: f64 = 128.0;

/// A box of cells `x0..x1 × y0..y1` (half-open, cell indices).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellBox {
    /// First column.
    pub x0: usize,
    /// One past the last column.
    pub x1: usize,
    /// First row.
    pub y0: usize,
    /// One past the last row.
    pub y1: usize,
}

impl CellBox {
    /// The paper-unit box `[x0, x1, y0, y1]` at `s` cells per paper cell, rounded outwards.
    fn scaled([x0, x1, y0, y1]: [f64; 4], s: f64) -> Self {
        let lo = |a: f64| (a * s).floor() as usize;
        let hi = |a: f64| (a * s).ceil() as usize;
        Self {
            x0: lo(x0),
            x1: hi(x1),
            y0: lo(y0),
            y1: hi(y1),
        }
    }

    /// True when cell `(j, i)` lies inside.
    pub fn contains(&self, j: usize, i: usize) -> bool {
        (self.x0..self.x1).contains(&i) && (self.y0..self.y1).contains(&j)
    }

    fn geometry(&self) -> Geometry {
        Geometry::Box {
            min: [self.x0 as f64, self.y0 as f64],
            max: [self.x1 as f64, self.y1 as f64],
        }
    }
}

/// What may be changed in the layout (TOML; paper units, scaled with the grid).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndirectLayout {
    /// Side of the marker square (the paper: 11).
    pub marker: f64,
    /// Width of each controlled side strip, counted on the staggered faces from either side
    /// (the paper's multi-step runs: 30).
    pub control_strip: f64,
    /// Lower-left corner `[x, y]` of the marker at the end of a sequence, one per bucket (the
    /// paper: `[30, 105]`, `[60, 105]`, `[94, 105]`).
    pub targets: Vec<[f64; 2]>,
}

impl Default for IndirectLayout {
    fn default() -> Self {
        Self {
            marker: 11.0,
            control_strip: 30.0,
            targets: vec![[30.0, 105.0], [60.0, 105.0], [94.0, 105.0]],
        }
    }
}

/// The vented box at `n x n` cells on one device, its projection factorised once.
#[derive(Clone, Debug)]
pub struct IndirectFlow {
    /// The grid (unit cells).
    pub grid: Grid,
    /// Walls and dividers.
    pub solid: SolidMask,
    /// The pressure projection (closed sides and bottom, open top, the obstacles).
    pub projection: Arc<PressureProjection>,
    /// Marker side (cells).
    pub marker: usize,
    /// Control strip width (faces).
    pub strip: usize,
    /// Lower-left marker corner `[x, y]` (cells) of each target.
    pub targets: Vec<[usize; 2]>,
    /// The bucket of each target.
    pub buckets: Vec<CellBox>,
    rho: ArraySpec,
    u: ArraySpec,
    v: ArraySpec,
    mask_u: Tensor<3>,
    mask_v: Tensor<3>,
}

/// True when face or cell column `i` of an `n`-cell grid lies in a control strip of `strip`
/// faces (counted on the `n + 1` staggered columns from either side).
fn in_strip(i: usize, strip: usize, n: usize) -> bool {
    i < strip || i + strip > n
}

impl IndirectFlow {
    /// The layout at `n x n` cells (`n ≥ 32`) on `device`. Errors name the offending setting:
    /// a control strip that covers no fluid face or the whole width, a target outside the
    /// domain, on a wall, or not inside a bucket.
    pub fn new(n: usize, layout: &IndirectLayout, device: &Device) -> Result<Self> {
        if n < 32 {
            return Err(DiffsimError::config(format!(
                "resolution {n}: the vented box needs at least 32 cells per side"
            )));
        }
        let s = n as f64 / PAPER_CELLS;
        let grid = Grid::new(Resolution::new(n, n), [n as f64, n as f64])?;
        let walls: Vec<CellBox> = WALLS.iter().map(|&w| CellBox::scaled(w, s)).collect();
        let dividers: Vec<CellBox> = DIVIDERS
            .iter()
            .map(|&x| CellBox::scaled([x, x + 2.0, DIVIDER_ROWS[0], DIVIDER_ROWS[1]], s))
            .collect();
        let geometry: Vec<Geometry> = walls
            .iter()
            .chain(&dividers)
            .map(CellBox::geometry)
            .collect();
        let solid = SolidMask::new(grid, &geometry)?;
        let marker = (layout.marker * s).round() as usize;
        if !(layout.marker.is_finite() && marker >= 1) {
            return Err(DiffsimError::config(format!(
                "layout.marker = {} is less than one cell at {n}x{n}",
                layout.marker
            )));
        }
        let strip = if layout.control_strip.is_finite() && layout.control_strip > 0.0 {
            (layout.control_strip * s).round() as usize
        } else {
            0
        };
        if 2 * strip >= n {
            return Err(DiffsimError::config(format!(
                "layout.control_strip = {}: the two strips cover the whole width; indirect control needs an uncontrolled interior",
                layout.control_strip
            )));
        }
        let bcs = Self::boundaries();
        let (u, v) = bcs.velocity_specs(&grid);
        let controlled = |i: usize| in_strip(i, strip, n);
        let fluid = |j: usize, i: usize| !solid.solid[j * n + i];
        // A u face is fluid when a fluid cell lies on either side of it.
        let fluid_faces = (0..n).any(|j| {
            (0..=n)
                .filter(|&i| controlled(i))
                .any(|i| (i > 0 && fluid(j, i - 1)) || (i < n && fluid(j, i)))
        });
        if !fluid_faces {
            return Err(DiffsimError::config(format!(
                "layout.control_strip = {} covers no fluid cell at {n}x{n}",
                layout.control_strip
            )));
        }
        let mut targets = Vec::new();
        let mut buckets = Vec::new();
        for &[x, y] in &layout.targets {
            let inside = |a: f64| a.is_finite() && a >= 0.0 && a + layout.marker <= PAPER_CELLS;
            if !(inside(x) && inside(y)) {
                return Err(DiffsimError::config(format!(
                    "target [{x}, {y}] with marker {} lies outside the {PAPER_CELLS}x{PAPER_CELLS} domain",
                    layout.marker
                )));
            }
            let corner = [(x * s).floor() as usize, (y * s).floor() as usize];
            let mbox = CellBox {
                x0: corner[0],
                x1: (corner[0] + marker).min(n),
                y0: corner[1],
                y1: (corner[1] + marker).min(n),
            };
            if (mbox.y0..mbox.y1).any(|j| (mbox.x0..mbox.x1).any(|i| !fluid(j, i))) {
                return Err(DiffsimError::config(format!(
                    "target [{x}, {y}]: the marker there overlaps a wall"
                )));
            }
            let centre = (mbox.x0 + mbox.x1) / 2;
            let bucket = dividers
                .windows(2)
                .map(|d| CellBox {
                    x0: d[0].x1,
                    x1: d[1].x0,
                    y0: d[0].y0,
                    y1: d[0].y1,
                })
                .find(|b| (b.x0..b.x1).contains(&centre) && mbox.y1 > b.y0 && mbox.y0 < b.y1)
                .ok_or_else(|| {
                    DiffsimError::config(format!("target [{x}, {y}] is not inside a bucket"))
                })?;
            targets.push(corner);
            buckets.push(bucket);
        }
        if targets.is_empty() {
            return Err(DiffsimError::config("layout.targets is empty"));
        }
        let projection = Arc::new(PressureProjection::new(
            &bcs,
            &solid,
            SolveConfig::default(),
        )?);
        let mask = |w: usize, h: usize| {
            let m: Vec<f32> = (0..h * w)
                .map(|k| f32::from(u8::from(controlled(k % w))))
                .collect();
            Tensor::<3>::from_data(TensorData::new(m, [1, h, w]), device)
        };
        Ok(Self {
            rho: ArraySpec::new(&grid, Location::Center, [Extrap::Value(0.0); 4]),
            mask_u: mask(n + 1, n),
            mask_v: mask(n, n + 1),
            grid,
            solid,
            projection,
            marker,
            strip,
            targets,
            buckets,
            u,
            v,
        })
    }

    /// Closed sides and bottom, open top.
    pub fn boundaries() -> Boundaries {
        Boundaries {
            x_lo: SideBc::Dirichlet(0.0),
            x_hi: SideBc::Dirichlet(0.0),
            y_lo: SideBc::Dirichlet(0.0),
            y_hi: SideBc::Open,
        }
    }

    /// Cells per side.
    pub fn n(&self) -> usize {
        self.grid.nx
    }

    /// `(u [B, n, n+1], v [B, n+1, n])` kept only in the control strips.
    pub fn restrict(&self, u: Tensor<3>, v: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        let (mu, mv) = (self.mask_u.clone(), self.mask_v.clone());
        let (du, dv) = (u.dtype(), v.dtype());
        (u * mu.cast(du), v * mv.cast(dv))
    }

    /// The velocity a raw control `(u, v)` produces: restricted to the strips, then projected
    /// (divergence-free in every fluid cell, zero normal velocity on walls and obstacles).
    pub fn velocity(&self, u: Tensor<3>, v: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        let (u, v) = self.restrict(u, v);
        self.project(u, v)
    }

    /// `(u, v)` made divergence-free in every fluid cell (walls and obstacles closed).
    pub fn project(&self, u: Tensor<3>, v: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        let (u, v, _) = ops::project(u, v, &self.projection);
        (u, v)
    }

    /// `ρ` advected semi-Lagrangian over one unit step by `(u, v)` (zero beyond the edges).
    pub fn advect(&self, rho: Tensor<3>, u: Tensor<3>, v: Tensor<3>) -> Tensor<3> {
        let spec = AdvectSpec {
            q: self.rho,
            u: self.u,
            v: self.v,
            dt_dx: 1.0,
            scheme: AdvectScheme::SemiLagrangian,
        };
        ops::advect(rho, u, v, spec)
    }

    /// One controlled step from `ρ` with the raw control `(u, v)`: `(ρ', u', v')` with
    /// `(u', v')` the projected velocity.
    pub fn step(
        &self,
        rho: Tensor<3>,
        u: Tensor<3>,
        v: Tensor<3>,
    ) -> (Tensor<3>, Tensor<3>, Tensor<3>) {
        let (u, v) = self.velocity(u, v);
        (self.advect(rho, u.clone(), v.clone()), u, v)
    }

    /// The marker square with its lower-left corner at `[x, y]` (cells; clipped to the grid),
    /// row-major `[n, n]`, added into `out`.
    pub fn draw_marker(&self, [x, y]: [usize; 2], out: &mut [f32]) {
        let n = self.n();
        for j in y..(y + self.marker).min(n) {
            for i in x..(x + self.marker).min(n) {
                out[j * n + i] = 1.0;
            }
        }
    }

    /// The share of `total` that `rho: [n, n]` (one item) holds inside `bucket`.
    pub fn share_in(&self, rho: &[f32], bucket: &CellBox, total: f64) -> f64 {
        let n = self.n();
        let inside: f64 = (bucket.y0..bucket.y1)
            .flat_map(|j| (bucket.x0..bucket.x1).map(move |i| rho[j * n + i] as f64))
            .sum();
        inside / total.max(1e-30)
    }

    /// The `[n, n]` picture of the layout: 1 in the control strips, 0.5 in the buckets.
    pub fn layout_picture(&self) -> Vec<f32> {
        let n = self.n();
        (0..n * n)
            .map(|k| {
                let (j, i) = (k / n, k % n);
                if in_strip(i, self.strip, n) {
                    1.0
                } else if self.buckets.iter().any(|b| b.contains(j, i)) {
                    0.5
                } else {
                    0.0
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::divergence;
    use burn::tensor::Distribution;

    fn host(t: Tensor<3>) -> Vec<f64> {
        t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
    }

    #[test]
    fn halved_layout_matches_the_paper_geometry() {
        let flow = IndirectFlow::new(64, &IndirectLayout::default(), &Device::flex()).unwrap();
        assert_eq!((flow.marker, flow.strip), (6, 15));
        assert_eq!(flow.targets, vec![[15, 52], [30, 52], [47, 52]]);
        let b: Vec<_> = flow
            .buckets
            .iter()
            .map(|b| (b.x0, b.x1, b.y0, b.y1))
            .collect();
        assert_eq!(
            b,
            vec![(11, 24, 52, 58), (26, 39, 52, 58), (41, 54, 52, 58)]
        );
        // Walls rounded outwards: the right wall [108, 112) → [54, 56).
        assert!(flow.solid.solid[30 * 64 + 54] && flow.solid.solid[30 * 64 + 55]);
        assert!(!flow.solid.solid[30 * 64 + 53] && !flow.solid.solid[30 * 64 + 56]);
    }

    #[test]
    fn the_interior_moves_only_through_the_pressure() {
        let dev = Device::flex();
        let flow = IndirectFlow::new(64, &IndirectLayout::default(), &dev).unwrap();
        let raw =
            |dims: [usize; 3]| Tensor::<3>::random(dims, Distribution::Normal(0.0, 1.0), &dev);
        let (u, v) = flow.velocity(raw([2, 64, 65]), raw([2, 65, 64]));
        // Divergence-free in every fluid cell.
        let div = host(divergence(u.clone(), v.clone(), 1.0));
        let worst = (0..2 * 64 * 64)
            .filter(|k| !flow.solid.solid[k % (64 * 64)])
            .map(|k| div[k].abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-4, "max |div| {worst}");
        // The interior (outside the strips) moves, though no control reaches it.
        let uh = host(u);
        let interior: f64 = (20..40).map(|j| uh[j * 65 + 32].abs()).sum();
        assert!(interior > 1e-3, "interior speed {interior}");
        // A raw control confined to the interior does nothing.
        let inner = |w: usize, h: usize| {
            let m: Vec<f32> = (0..h * w)
                .map(|k| {
                    if (20..40).contains(&(k % w)) {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect();
            Tensor::<3>::from_data(TensorData::new(m, [1, h, w]), &dev)
        };
        let (u0, v0) = flow.velocity(inner(65, 64), inner(64, 65));
        let most = host(u0)
            .into_iter()
            .chain(host(v0))
            .fold(0.0f64, |m, x| m.max(x.abs()));
        assert!(most < 1e-6, "{most}");
    }

    #[test]
    fn bad_layouts_are_rejected_with_the_setting_named() {
        let dev = Device::flex();
        let err = |l: IndirectLayout| IndirectFlow::new(64, &l, &dev).unwrap_err().to_string();
        let base = IndirectLayout::default;
        assert!(
            err(IndirectLayout {
                control_strip: 0.0,
                ..base()
            })
            .contains("covers no fluid cell")
        );
        assert!(
            err(IndirectLayout {
                control_strip: 70.0,
                ..base()
            })
            .contains("whole width")
        );
        assert!(
            err(IndirectLayout {
                targets: vec![[125.0, 105.0]],
                ..base()
            })
            .contains("outside")
        );
        assert!(
            err(IndirectLayout {
                targets: vec![[60.0, 40.0]],
                ..base()
            })
            .contains("not inside a bucket")
        );
        assert!(
            err(IndirectLayout {
                targets: vec![[105.0, 40.0]],
                ..base()
            })
            .contains("wall")
        );
    }
}
