//! Scene configurations: TOML-serialisable, with built-in named defaults.

use crate::error::{DiffsimError, Result};
use crate::grid::{Boundaries, Geometry, Resolution, ScalarOutside, SideBc};
use crate::linalg::SolveConfig;
use crate::ops::AdvectScheme;
use serde::{Deserialize, Serialize};

/// Paper Re of Solver-in-the-Loop ↔ the code's `re_code`: `Re = re_code · 10 / 128²`.
pub const SOL_RE_FACTOR: f64 = 10.0 / (128.0 * 128.0);

/// How the kinematic viscosity ν (domain units²/time) is given.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Viscosity {
    /// ν directly.
    Kinematic(f64),
    /// The Solver-in-the-Loop scale: `ν = lx² / re_code` with `re_code = Re / (10/128²)`, which is
    /// the reference code's cell-unit diffusion `α = nx²·dt/re_code` at every resolution.
    SolReynolds(f64),
    /// The pbdl-book/PhiFlow wake: diffusivity `dt·32²/Re` in domain units.
    PhiflowReynolds(f64),
}

impl Viscosity {
    /// The Reynolds number, if the scene is specified by one.
    pub fn reynolds(&self) -> Option<f64> {
        match *self {
            Viscosity::Kinematic(_) => None,
            Viscosity::SolReynolds(re) | Viscosity::PhiflowReynolds(re) => Some(re),
        }
    }

    /// The same rule with another Reynolds number; errors for a kinematic viscosity.
    pub fn with_reynolds(self, re: f64) -> Result<Self> {
        if !(re.is_finite() && re > 0.0) {
            return Err(DiffsimError::config(format!(
                "Reynolds number {re} must be positive and finite"
            )));
        }
        match self {
            Viscosity::Kinematic(_) => Err(DiffsimError::config(
                "--re applies to scenes whose viscosity is given by a Reynolds number (wake, wake-phiflow); set viscosity = { kinematic = ... } instead",
            )),
            Viscosity::SolReynolds(_) => Ok(Viscosity::SolReynolds(re)),
            Viscosity::PhiflowReynolds(_) => Ok(Viscosity::PhiflowReynolds(re)),
        }
    }

    /// ν in domain units²/time for a domain of width `lx` and time step `dt`.
    pub fn nu(&self, lx: f64, dt: f64) -> f64 {
        match *self {
            Viscosity::Kinematic(nu) => nu,
            Viscosity::SolReynolds(re) => lx * lx * SOL_RE_FACTOR / re,
            Viscosity::PhiflowReynolds(re) => dt * 32.0 * 32.0 / re,
        }
    }
}

/// How viscosity is integrated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiffusionScheme {
    /// One explicit Euler step per time step (needs `α = ν·dt/dx² ≤ 1/4`).
    #[default]
    Explicit,
    /// Backward Euler, one SPD solve per component (unconditionally stable).
    Implicit,
    /// No viscosity term.
    None,
}

/// A side of the domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    /// x = 0.
    XLo,
    /// x = lx.
    XHi,
    /// y = 0.
    YLo,
    /// y = ly.
    YHi,
}

/// A set of velocity faces.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaceRegion {
    /// Faces whose centre lies in the geometry.
    Inside(Geometry),
    /// The `layers` outermost rows (y sides) or columns (x sides) of the component's array at
    /// `side`, counted in array indices (resolution-dependent, as in the reference code).
    Edge {
        /// Side.
        side: Side,
        /// Rows or columns.
        layers: usize,
    },
}

/// Overwrites velocity faces with fixed values after diffusion (before advection).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forcing {
    /// Where.
    pub region: FaceRegion,
    /// Value for x-faces in the region (None: leave u).
    #[serde(default)]
    pub u: Option<f64>,
    /// Value for y-faces in the region (None: leave v).
    #[serde(default)]
    pub v: Option<f64>,
}

/// The passive (or buoyant) marker.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MarkerConfig {
    /// Regions where the marker is injected (cell centres inside).
    pub inflow: Vec<Geometry>,
    /// Injection rate per time; `rate·dt` is added per step after advection.
    pub rate: f64,
    /// Values outside non-periodic sides.
    pub outside: ScalarOutside,
    /// Buoyancy: `v += dt · buoyancy · marker` (marker averaged to y-faces).
    pub buoyancy: f64,
    /// Advect the marker even without sources or buoyancy (for runs that start from a given
    /// marker field). Without any of the three the marker is not stepped at all.
    pub carried: bool,
}

/// The initial velocity.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Initial {
    /// At rest.
    Rest,
    /// Uniform `[u, v]`.
    Uniform([f64; 2]),
    /// Solver-in-the-Loop wake start: `v = 1` on every face, and `u = 1` on rows
    /// `ny/2+10 ..= ny/2+19`, columns `nx/2−2 ..= nx/2+1` of the x-faces (the "poke").
    SolPoke,
    /// Taylor-Green vortex of this amplitude on a `2π`-periodic domain:
    /// `u = A sin x cos y`, `v = −A cos x sin y`.
    TaylorGreen(f64),
}

/// Floating-point precision of the simulation tensors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// 32-bit (default, fastest).
    #[default]
    F32,
    /// 64-bit (validation, tight gradient checks).
    F64,
}

/// A complete scene. Every field has a default (`SceneConfig::default()` is an empty closed
/// box); the built-in scenes are named presets, and TOML files override any field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SceneConfig {
    /// Name (for output attributes).
    pub name: String,
    /// Resolution `NXxNY`.
    pub resolution: Resolution,
    /// Domain size `[lx, ly]` (domain units).
    pub domain: [f64; 2],
    /// Time step.
    pub dt: f64,
    /// Default number of steps of `diffsim simulate`.
    pub steps: usize,
    /// Boundary conditions.
    pub boundaries: Boundaries,
    /// Static obstacles (cells whose centre lies inside are solid).
    pub obstacles: Vec<Geometry>,
    /// Viscosity.
    pub viscosity: Viscosity,
    /// Viscosity integration.
    pub diffusion: DiffusionScheme,
    /// Advection scheme (velocity and marker).
    pub advection: AdvectScheme,
    /// Velocity forcing regions.
    pub forcing: Vec<Forcing>,
    /// Marker.
    pub marker: MarkerConfig,
    /// Initial velocity.
    pub initial: Initial,
    /// Pressure solve.
    pub solve: SolveConfig,
    /// The adjoint pressure solves of backward passes (default: the forward `solve`, whose
    /// Cholesky factor is then reused). Set it to give CG adjoint solves their own tolerance.
    #[serde(default)]
    pub adjoint_solve: Option<SolveConfig>,
    /// Tensor precision.
    pub precision: Precision,
}

impl Default for SceneConfig {
    fn default() -> Self {
        Self {
            name: "custom".into(),
            resolution: Resolution::new(32, 32),
            domain: [1.0, 1.0],
            dt: 0.01,
            steps: 100,
            boundaries: Boundaries::all(SideBc::Dirichlet(0.0)),
            obstacles: Vec::new(),
            viscosity: Viscosity::Kinematic(0.0),
            diffusion: DiffusionScheme::Explicit,
            advection: AdvectScheme::SemiLagrangian,
            forcing: Vec::new(),
            marker: MarkerConfig::default(),
            initial: Initial::Rest,
            solve: SolveConfig::default(),
            adjoint_solve: None,
            precision: Precision::F32,
        }
    }
}

/// Names of the built-in scenes.
pub const BUILTIN_SCENES: [&str; 4] = ["wake", "wake-phiflow", "smoke", "taylor-green"];

impl SceneConfig {
    /// A built-in scene by name.
    pub fn builtin(name: &str) -> Result<Self> {
        match name {
            "wake" => Ok(Self::wake()),
            "wake-phiflow" => Ok(Self::wake_phiflow()),
            "smoke" => Ok(Self::smoke()),
            "taylor-green" => Ok(Self::taylor_green()),
            _ => Err(DiffsimError::UnknownScene {
                name: name.into(),
                known: BUILTIN_SCENES.join(", "),
            }),
        }
    }

    /// A built-in name, or a path to a TOML file (fields not given take the defaults of
    /// [`SceneConfig::default`], or of the built-in named by the file's `base = "..."`).
    pub fn load(name_or_path: &str) -> Result<Self> {
        if name_or_path.ends_with(".toml") || std::path::Path::new(name_or_path).is_file() {
            let text = std::fs::read_to_string(name_or_path)
                .map_err(|e| DiffsimError::file(name_or_path, e))?;
            return Self::from_toml(&text).map_err(|e| DiffsimError::file(name_or_path, e));
        }
        Self::builtin(name_or_path)
    }

    /// Parses a scene from TOML. A top-level `base = "wake"` starts from that built-in.
    pub fn from_toml(text: &str) -> Result<Self> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| DiffsimError::config(one_line(&e)))?;
        let base = match table.remove("base") {
            Some(toml::Value::String(b)) => Self::builtin(&b)?,
            Some(other) => {
                return Err(DiffsimError::config(format!(
                    "base must be a scene name, got {other}"
                )));
            }
            None => Self::default(),
        };
        crate::config::overlay(&base, table, crate::config::Merge::TopLevel)
            .map_err(|e| DiffsimError::config(one_line(&e)))
    }

    /// The scene as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("scene serialises")
    }

    /// The Solver-in-the-Loop wake flow (Um et al. 2020, docs/wake-flow.md §1) at 128x256, Re 585.94.
    pub fn wake() -> Self {
        let v1 = |region| Forcing {
            region,
            u: None,
            v: Some(1.0),
        };
        Self {
            name: "wake".into(),
            resolution: Resolution::new(128, 256),
            domain: [100.0, 200.0],
            dt: 1.0,
            steps: 1500,
            boundaries: Boundaries::all(SideBc::Open),
            obstacles: vec![Geometry::Disc {
                center: [50.0, 50.0],
                radius: 10.0,
            }],
            viscosity: Viscosity::SolReynolds(585.94),
            diffusion: DiffusionScheme::Explicit,
            advection: AdvectScheme::SemiLagrangian,
            forcing: vec![
                v1(FaceRegion::Edge {
                    side: Side::YLo,
                    layers: 2,
                }),
                v1(FaceRegion::Edge {
                    side: Side::XLo,
                    layers: 1,
                }),
                v1(FaceRegion::Edge {
                    side: Side::XHi,
                    layers: 1,
                }),
            ],
            marker: MarkerConfig {
                inflow: vec![Geometry::Box {
                    min: [25.0, 5.0],
                    max: [75.0, 10.0],
                }],
                rate: 1.0,
                outside: ScalarOutside::Zero,
                buoyancy: 0.0,
                carried: false,
            },
            initial: Initial::SolPoke,
            solve: SolveConfig::default(),
            adjoint_solve: None,
            precision: Precision::F32,
        }
    }

    /// The pbdl-book/PhiFlow 3 wake (closed x walls, open y ends, inflow strip y < 5,
    /// diffusivity dt·32²/Re with Re = 1e6) at 32x64; start it from `data/phiflow/wake_phiflow_32x64.h5` with `--init`.
    pub fn wake_phiflow() -> Self {
        Self {
            name: "wake-phiflow".into(),
            resolution: Resolution::new(32, 64),
            boundaries: Boundaries {
                x_lo: SideBc::Dirichlet(0.0),
                x_hi: SideBc::Dirichlet(0.0),
                y_lo: SideBc::Open,
                y_hi: SideBc::Open,
            },
            viscosity: Viscosity::PhiflowReynolds(1e6),
            forcing: vec![Forcing {
                region: FaceRegion::Inside(Geometry::Box {
                    min: [-1.0, -1.0],
                    max: [101.0, 5.0 - 1e-9],
                }),
                u: Some(0.0),
                v: Some(1.0),
            }],
            initial: Initial::Uniform([0.0, 1.0]),
            steps: 200,
            ..Self::wake()
        }
    }

    /// A buoyant plume rising from a disc source in a closed 100x100 box. Semi-Lagrangian: its
    /// marker stays within 8% of what the source injected at 64x64, MacCormack's within 43%
    /// (see the validation tests).
    pub fn smoke() -> Self {
        Self {
            name: "smoke".into(),
            resolution: Resolution::new(64, 64),
            domain: [100.0, 100.0],
            dt: 1.0,
            steps: 150,
            boundaries: Boundaries::all(SideBc::Dirichlet(0.0)),
            obstacles: Vec::new(),
            viscosity: Viscosity::Kinematic(0.01),
            diffusion: DiffusionScheme::Explicit,
            advection: AdvectScheme::SemiLagrangian,
            forcing: Vec::new(),
            marker: MarkerConfig {
                inflow: vec![Geometry::Disc {
                    center: [50.0, 12.0],
                    radius: 6.0,
                }],
                rate: 0.2,
                outside: ScalarOutside::Zero,
                buoyancy: 0.05,
                carried: false,
            },
            initial: Initial::Rest,
            solve: SolveConfig::default(),
            adjoint_solve: None,
            precision: Precision::F32,
        }
    }

    /// The decaying Taylor-Green vortex on `[0, 2π]²`, periodic, ν = 0.05 (validation scene).
    pub fn taylor_green() -> Self {
        let two_pi = 2.0 * std::f64::consts::PI;
        Self {
            name: "taylor-green".into(),
            resolution: Resolution::new(64, 64),
            domain: [two_pi, two_pi],
            dt: 0.05,
            steps: 40,
            boundaries: Boundaries::all(SideBc::Periodic),
            obstacles: Vec::new(),
            viscosity: Viscosity::Kinematic(0.05),
            diffusion: DiffusionScheme::Implicit,
            advection: AdvectScheme::MacCormack,
            forcing: Vec::new(),
            marker: MarkerConfig::default(),
            initial: Initial::TaylorGreen(1.0),
            solve: SolveConfig::default(),
            adjoint_solve: None,
            precision: Precision::F32,
        }
    }

    /// Checks values that the grid and solvers do not check themselves.
    pub fn validate(&self) -> Result<()> {
        if !(self.dt.is_finite() && self.dt > 0.0) {
            return Err(DiffsimError::config(format!(
                "dt = {} must be positive and finite",
                self.dt
            )));
        }
        self.boundaries.validate()?;
        let nu = self.viscosity.nu(self.domain[0], self.dt);
        if !(nu.is_finite() && nu >= 0.0) {
            return Err(DiffsimError::config(format!(
                "viscosity ν = {nu} must be finite and >= 0"
            )));
        }
        if !(self.marker.rate.is_finite() && self.marker.buoyancy.is_finite()) {
            return Err(DiffsimError::config(
                "marker rate and buoyancy must be finite",
            ));
        }
        Ok(())
    }
}

/// The first line of a (possibly multi-line) TOML error.
fn one_line(e: &toml::de::Error) -> String {
    let msg = e.message().trim().to_string();
    match e.span() {
        Some(span) => format!("TOML error at byte {}: {msg}", span.start),
        None => format!("TOML error: {msg}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_scenes_round_trip_through_toml() {
        for name in BUILTIN_SCENES {
            let s = SceneConfig::builtin(name).unwrap();
            s.validate().unwrap();
            assert_eq!(SceneConfig::from_toml(&s.to_toml()).unwrap(), s, "{name}");
        }
    }

    #[test]
    fn toml_overrides_a_base_scene() {
        let s = SceneConfig::from_toml(
            "base = \"wake\"\nresolution = \"32x64\"\nviscosity = { sol-reynolds = 146.48 }\n",
        )
        .unwrap();
        assert_eq!(s.resolution, Resolution::new(32, 64));
        assert_eq!(s.viscosity.reynolds(), Some(146.48));
        assert_eq!(s.obstacles, SceneConfig::wake().obstacles);
        assert!(
            SceneConfig::from_toml("base = \"nope\"")
                .unwrap_err()
                .to_string()
                .contains("unknown scene")
        );
        assert!(SceneConfig::from_toml("dt = \"fast\"").is_err());
        assert!(
            SceneConfig::from_toml("colour = 3")
                .unwrap_err()
                .to_string()
                .contains("colour")
        );
    }

    #[test]
    fn sol_viscosity_matches_the_reference_cell_unit_diffusion() {
        // α = nx²·dt/re_code with re_code = Re·1638.4: 0.625/Re at 32x64, 10/Re at 128x256.
        let re = 585.94;
        let nu = Viscosity::SolReynolds(re).nu(100.0, 1.0);
        for (nx, alpha) in [(32.0, 0.625 / re), (128.0, 10.0 / re)] {
            let dx: f64 = 100.0 / nx;
            assert!((nu / (dx * dx) - alpha).abs() < 1e-12 * alpha);
        }
    }
}
