//! Obstacle geometry and the cell masks it rasterises to.

use super::Grid;
use super::error::{GridError, Result};
use serde::{Deserialize, Serialize};

/// A region of the domain (domain units). TOML: `{ disc = { center = [50, 50], radius = 10 } }`
/// or `{ box = { min = [25, 5], max = [75, 10] } }`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Geometry {
    /// A disc of `radius` around `center = [x, y]`.
    Disc {
        /// Centre `[x, y]`.
        center: [f64; 2],
        /// Radius.
        radius: f64,
    },
    /// An axis-aligned box `[min, max]`, each `[x, y]`.
    Box {
        /// Lower corner `[x, y]`.
        min: [f64; 2],
        /// Upper corner `[x, y]`.
        max: [f64; 2],
    },
}

impl Geometry {
    /// True when the point `p = [x, y]` lies inside (boundary included).
    pub fn contains(&self, p: [f64; 2]) -> bool {
        match *self {
            Geometry::Disc { center, radius } => {
                let (dx, dy) = (p[0] - center[0], p[1] - center[1]);
                dx * dx + dy * dy <= radius * radius
            }
            Geometry::Box { min, max } => {
                p[0] >= min[0] && p[0] <= max[0] && p[1] >= min[1] && p[1] <= max[1]
            }
        }
    }

    /// Rejects degenerate or non-finite shapes.
    pub fn validate(&self) -> Result<()> {
        let ok = match *self {
            Geometry::Disc { center, radius } => {
                center.iter().all(|c| c.is_finite()) && radius.is_finite() && radius > 0.0
            }
            Geometry::Box { min, max } => {
                min.iter().chain(&max).all(|c| c.is_finite()) && max[0] > min[0] && max[1] > min[1]
            }
        };
        if ok {
            Ok(())
        } else {
            Err(GridError::new(format!("degenerate geometry {self:?}")))
        }
    }

    /// Cells whose centre lies inside, as a `[ny, nx]` row-major mask.
    pub fn cell_mask(&self, grid: &Grid) -> Vec<bool> {
        (0..grid.ny)
            .flat_map(|j| (0..grid.nx).map(move |i| (j, i)))
            .map(|(j, i)| self.contains(grid.position(super::Location::Center, j, i)))
            .collect()
    }
}

/// Solid (obstacle) cells of a grid: binary, a cell is solid when its centre lies in any
/// obstacle (no anti-aliasing, as in the reference code). Row-major `[ny, nx]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SolidMask {
    /// Grid the mask belongs to.
    pub grid: Grid,
    /// `true` for solid cells.
    pub solid: Vec<bool>,
}

impl SolidMask {
    /// Rasterises `obstacles` on `grid`. Errors when the obstacles fill every cell.
    pub fn new(grid: Grid, obstacles: &[Geometry]) -> Result<Self> {
        let mut solid = vec![false; grid.cells()];
        for g in obstacles {
            g.validate()?;
            for (s, inside) in solid.iter_mut().zip(g.cell_mask(&grid)) {
                *s |= inside;
            }
        }
        if solid.iter().all(|&s| s) {
            return Err(GridError::new(
                "the obstacles cover every cell: no fluid left",
            ));
        }
        Ok(Self { grid, solid })
    }

    /// Number of solid cells.
    pub fn count(&self) -> usize {
        self.solid.iter().filter(|&&s| s).count()
    }
}
