//! Boundary conditions per domain side, and the extrapolation rules they imply for each array.

use super::error::{GridError, Result};
use super::{ArraySpec, Grid, Location};
use serde::{Deserialize, Serialize};

/// Boundary condition of one domain side.
///
/// TOML: `"periodic"`, `"open"`, `"zero-gradient"`, or `{ dirichlet = 1.0 }`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SideBc {
    /// Wraps to the opposite side, which must be periodic too.
    Periodic,
    /// A wall or inflow: the normal velocity on the boundary faces is this value (0 = closed
    /// wall, positive = into +x/+y); tangential velocity is 0 outside; pressure has zero normal
    /// gradient.
    Dirichlet(f64),
    /// Velocity continues with zero normal gradient and the boundary faces keep whatever the
    /// step gives them; pressure has zero normal gradient. A fluid region bounded only by
    /// walls and zero-gradient sides must carry zero net flux through them: the projection
    /// cannot change those faces and leaves a uniform divergence (its least-squares solution)
    /// otherwise. Pair zero-gradient outflow with an open side.
    ZeroGradient,
    /// Open: pressure is 0 outside (Dirichlet), the boundary faces are solved for by the
    /// projection, velocity continues with zero gradient.
    Open,
}

/// How an array continues beyond one of its edges.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Extrap {
    /// Repeat the edge value (zero normal gradient).
    ZeroGradient,
    /// A constant value outside.
    Value(f64),
    /// Wrap around (the opposite edge must be periodic too).
    Periodic,
}

/// What scalar (marker) fields see outside non-periodic sides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScalarOutside {
    /// Zero outside (PhiFlow's default for markers).
    #[default]
    Zero,
    /// Repeat the edge value.
    ZeroGradient,
}

/// Boundary conditions of the four domain sides.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Boundaries {
    /// Side x = 0.
    pub x_lo: SideBc,
    /// Side x = lx.
    pub x_hi: SideBc,
    /// Side y = 0.
    pub y_lo: SideBc,
    /// Side y = ly.
    pub y_hi: SideBc,
}

impl Boundaries {
    /// The same condition on all four sides.
    pub const fn all(bc: SideBc) -> Self {
        Self {
            x_lo: bc,
            x_hi: bc,
            y_lo: bc,
            y_hi: bc,
        }
    }

    /// Sides in the order `[x_lo, x_hi, y_lo, y_hi]`.
    pub fn sides(&self) -> [SideBc; 4] {
        [self.x_lo, self.x_hi, self.y_lo, self.y_hi]
    }

    /// Rejects a periodic side whose opposite side is not periodic, and non-finite values.
    pub fn validate(&self) -> Result<()> {
        for (axis, lo, hi) in [("x", self.x_lo, self.x_hi), ("y", self.y_lo, self.y_hi)] {
            let (pl, ph) = (lo == SideBc::Periodic, hi == SideBc::Periodic);
            if pl != ph {
                return Err(GridError::new(format!(
                    "boundary along {axis}: one side is periodic and the other is {:?}; make both periodic or neither",
                    if pl { hi } else { lo }
                )));
            }
            for bc in [lo, hi] {
                if let SideBc::Dirichlet(v) = bc
                    && !v.is_finite()
                {
                    return Err(GridError::new(format!(
                        "boundary along {axis}: Dirichlet value {v} is not finite"
                    )));
                }
            }
        }
        Ok(())
    }

    /// True when the axis (0 = x, 1 = y) is periodic.
    pub fn periodic(&self, axis: usize) -> bool {
        if axis == 0 {
            self.x_lo == SideBc::Periodic
        } else {
            self.y_lo == SideBc::Periodic
        }
    }

    /// Extrapolation of a velocity component at `loc` (`FaceX` = u, `FaceY` = v).
    /// Along its own normal axis a Dirichlet side continues with the wall value, across it
    /// with 0; open and zero-gradient sides repeat the edge.
    pub fn velocity_extrap(&self, loc: Location) -> [Extrap; 4] {
        let normal_axis = match loc {
            Location::FaceX => 0,
            Location::FaceY => 1,
            Location::Center => panic!("velocity components live on faces"),
        };
        let rule = |bc: SideBc, axis: usize| match bc {
            SideBc::Periodic => Extrap::Periodic,
            SideBc::Dirichlet(v) if axis == normal_axis => Extrap::Value(v),
            SideBc::Dirichlet(_) => Extrap::Value(0.0),
            SideBc::ZeroGradient | SideBc::Open => Extrap::ZeroGradient,
        };
        [
            rule(self.x_lo, 0),
            rule(self.x_hi, 0),
            rule(self.y_lo, 1),
            rule(self.y_hi, 1),
        ]
    }

    /// Extrapolation of a cell-centred scalar.
    pub fn scalar_extrap(&self, outside: ScalarOutside) -> [Extrap; 4] {
        self.sides().map(|bc| match (bc, outside) {
            (SideBc::Periodic, _) => Extrap::Periodic,
            (_, ScalarOutside::Zero) => Extrap::Value(0.0),
            (_, ScalarOutside::ZeroGradient) => Extrap::ZeroGradient,
        })
    }

    /// Extrapolation of the pressure: 0 beyond open sides, zero normal gradient at walls and
    /// zero-gradient sides, wrapped on periodic axes.
    pub fn pressure_extrap(&self) -> [Extrap; 4] {
        self.sides().map(|bc| match bc {
            SideBc::Periodic => Extrap::Periodic,
            SideBc::Open => Extrap::Value(0.0),
            SideBc::Dirichlet(_) | SideBc::ZeroGradient => Extrap::ZeroGradient,
        })
    }

    /// Array specs of `(u, v)` on `grid`.
    pub fn velocity_specs(&self, grid: &Grid) -> (ArraySpec, ArraySpec) {
        (
            ArraySpec::new(grid, Location::FaceX, self.velocity_extrap(Location::FaceX)),
            ArraySpec::new(grid, Location::FaceY, self.velocity_extrap(Location::FaceY)),
        )
    }
}
