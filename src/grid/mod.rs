//! Grid geometry, field locations, boundary conditions and obstacle masks.
//!
//! Conventions (DESIGN.md): arrays are row-major `[y, x]`; a resolution is written `NXxNY` (x
//! first). On the MAC grid the x-velocity `u` lives on x-faces, shape `[ny, nx+1]`, the
//! y-velocity `v` on y-faces, shape `[ny+1, nx]`, scalars at cell centres, shape `[ny, nx]`.
//! Burn tensors add a leading batch dimension `B`.

mod boundary;
mod error;
mod obstacle;
pub mod resample;

pub use boundary::{Boundaries, Extrap, ScalarOutside, SideBc};
pub use error::GridError;
pub use obstacle::{Geometry, SolidMask};

use error::Result;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A grid resolution `NXxNY` (cells along x, then y).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Resolution {
    /// Cells along x.
    pub nx: usize,
    /// Cells along y.
    pub ny: usize,
}

impl Resolution {
    /// A resolution; both counts must be at least 2 (checked by [`Grid::new`]).
    pub const fn new(nx: usize, ny: usize) -> Self {
        Self { nx, ny }
    }
}

impl FromStr for Resolution {
    type Err = GridError;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            GridError::new(format!(
                "resolution '{s}' is not of the form NXxNY with NX, NY >= 2 (e.g. 32x64)"
            ))
        };
        let (a, b) = s.split_once(['x', 'X']).ok_or_else(bad)?;
        let nx: usize = a.trim().parse().map_err(|_| bad())?;
        let ny: usize = b.trim().parse().map_err(|_| bad())?;
        if nx < 2 || ny < 2 {
            return Err(bad());
        }
        Ok(Self { nx, ny })
    }
}

impl TryFrom<String> for Resolution {
    type Error = GridError;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Resolution> for String {
    fn from(r: Resolution) -> String {
        r.to_string()
    }
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.nx, self.ny)
    }
}

/// A uniform 2D grid of square cells covering `[0, nx·dx] × [0, ny·dx]` (domain units).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    /// Cells along x.
    pub nx: usize,
    /// Cells along y.
    pub ny: usize,
    /// Cell size (domain units); cells are square.
    pub dx: f64,
}

impl Grid {
    /// A grid of `res` cells over a `size = [lx, ly]` domain. Cells must be square
    /// (`lx/nx == ly/ny` to 1e-9 relative), and each axis needs at least 2 cells.
    pub fn new(res: Resolution, size: [f64; 2]) -> Result<Self> {
        if res.nx < 2 || res.ny < 2 {
            return Err(GridError::new(format!(
                "resolution {res} needs at least 2 cells per axis"
            )));
        }
        if !(size[0] > 0.0 && size[1] > 0.0 && size[0].is_finite() && size[1].is_finite()) {
            return Err(GridError::new(format!(
                "domain size {size:?} must be positive and finite"
            )));
        }
        let dx = size[0] / res.nx as f64;
        let dy = size[1] / res.ny as f64;
        if ((dx - dy) / dx).abs() > 1e-9 {
            return Err(GridError::new(format!(
                "resolution {res} on a {}x{} domain gives non-square cells ({dx} x {dy}); choose NX:NY = {}:{}",
                size[0], size[1], size[0], size[1]
            )));
        }
        Ok(Self {
            nx: res.nx,
            ny: res.ny,
            dx,
        })
    }

    /// The resolution `NXxNY`.
    pub fn resolution(&self) -> Resolution {
        Resolution::new(self.nx, self.ny)
    }

    /// Domain size `[lx, ly]`.
    pub fn size(&self) -> [f64; 2] {
        [self.nx as f64 * self.dx, self.ny as f64 * self.dx]
    }

    /// Number of cells.
    pub fn cells(&self) -> usize {
        self.nx * self.ny
    }

    /// Shape `[ny, nx]` of an array at `loc` (without the batch dimension): `[ny, nx]`
    /// for centres, `[ny, nx+1]` for x-faces, `[ny+1, nx]` for y-faces.
    pub fn shape(&self, loc: Location) -> [usize; 2] {
        match loc {
            Location::Center => [self.ny, self.nx],
            Location::FaceX => [self.ny, self.nx + 1],
            Location::FaceY => [self.ny + 1, self.nx],
        }
    }

    /// Position (domain units) of array element `[j, i]` at `loc`.
    pub fn position(&self, loc: Location, j: usize, i: usize) -> [f64; 2] {
        let (ox, oy) = loc.offset();
        [(i as f64 + ox) * self.dx, (j as f64 + oy) * self.dx]
    }
}

/// Where the samples of an array sit within a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Location {
    /// Cell centres, `[ny, nx]`.
    Center,
    /// x-faces (normal along x), `[ny, nx+1]`: the MAC `u`.
    FaceX,
    /// y-faces (normal along y), `[ny+1, nx]`: the MAC `v`.
    FaceY,
}

impl Location {
    /// Offset of element `[0, 0]` from the domain origin, in cells `(x, y)`.
    pub fn offset(self) -> (f64, f64) {
        match self {
            Location::Center => (0.5, 0.5),
            Location::FaceX => (0.0, 0.5),
            Location::FaceY => (0.5, 0.0),
        }
    }
}

/// How one array at one location is sampled: its size, where element `[0,0]` sits and how
/// it extends beyond its edges. This is what the grid kernels see.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArraySpec {
    /// Columns (x).
    pub nx: usize,
    /// Rows (y).
    pub ny: usize,
    /// Offset of element `[0,0]` from the origin in cells, x.
    pub ox: f64,
    /// Offset of element `[0,0]` from the origin in cells, y.
    pub oy: f64,
    /// Extrapolation beyond `[x_lo, x_hi, y_lo, y_hi]`.
    pub ext: [Extrap; 4],
    /// Period along x for periodic extrapolation: `nx` for centres, `nx-1` for x-faces
    /// (whose last column repeats the first).
    pub period_x: usize,
    /// Period along y, likewise.
    pub period_y: usize,
}

impl ArraySpec {
    /// The spec of an array at `loc` on `grid` with extrapolation `ext` (`[x_lo, x_hi, y_lo, y_hi]`).
    pub fn new(grid: &Grid, loc: Location, ext: [Extrap; 4]) -> Self {
        let [ny, nx] = grid.shape(loc);
        let (ox, oy) = loc.offset();
        Self {
            nx,
            ny,
            ox,
            oy,
            ext,
            period_x: grid.nx,
            period_y: grid.ny,
        }
    }

    /// Elements per batch item.
    pub fn len(&self) -> usize {
        self.nx * self.ny
    }

    /// True when the array has no elements (never for a valid grid).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_parses_nx_by_ny_and_rejects_degenerate_grids() {
        assert_eq!(
            "32x64".parse::<Resolution>().unwrap(),
            Resolution::new(32, 64)
        );
        assert_eq!(
            "128X256".parse::<Resolution>().unwrap().to_string(),
            "128x256"
        );
        for bad in ["0x5", "5x1", "32", "axb", "32x", "-3x4"] {
            let e = bad.parse::<Resolution>().unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("NXxNY"), "{bad}: {e}");
        }
    }

    #[test]
    fn grid_requires_square_cells_and_knows_its_shapes() {
        let g = Grid::new(Resolution::new(32, 64), [100.0, 200.0]).unwrap();
        assert_eq!(g.dx, 3.125);
        assert_eq!(g.shape(Location::FaceX), [64, 33]);
        assert_eq!(g.shape(Location::FaceY), [65, 32]);
        assert_eq!(g.position(Location::FaceY, 0, 0), [1.5625, 0.0]);
        let e = Grid::new(Resolution::new(32, 32), [100.0, 200.0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("non-square"), "{e}");
    }

    #[test]
    fn boundaries_reject_half_periodic_axes() {
        let b = Boundaries {
            x_lo: SideBc::Periodic,
            x_hi: SideBc::Open,
            y_lo: SideBc::Open,
            y_hi: SideBc::Open,
        };
        assert!(b.validate().unwrap_err().to_string().contains("periodic"));
        assert!(
            Boundaries::all(SideBc::Dirichlet(f64::NAN))
                .validate()
                .is_err()
        );
        let ext = Boundaries::all(SideBc::Dirichlet(2.0)).velocity_extrap(Location::FaceX);
        assert_eq!(
            ext,
            [
                Extrap::Value(2.0),
                Extrap::Value(2.0),
                Extrap::Value(0.0),
                Extrap::Value(0.0)
            ]
        );
    }

    #[test]
    fn obstacles_rasterise_cell_centres() {
        let g = Grid::new(Resolution::new(10, 10), [10.0, 10.0]).unwrap();
        let m = SolidMask::new(
            g,
            &[Geometry::Disc {
                center: [5.0, 5.0],
                radius: 1.0,
            }],
        )
        .unwrap();
        // Centres (4.5|5.5, 4.5|5.5) are at distance 0.707 < 1: exactly 4 cells.
        assert_eq!(m.count(), 4);
        assert!(
            SolidMask::new(
                g,
                &[Geometry::Box {
                    min: [-1.0, -1.0],
                    max: [11.0, 11.0]
                }]
            )
            .is_err()
        );
        assert!(
            SolidMask::new(
                g,
                &[Geometry::Disc {
                    center: [5.0, 5.0],
                    radius: -1.0
                }]
            )
            .is_err()
        );
    }
}
