//! 1D Burgers' equation `∂u/∂t + u·∂u/∂x = ν·∂²u/∂x²` on batches of lines `[B, N]`, made of
//! the differentiable line ops of [`crate::ops`]: semi-Lagrangian self-advection
//! ([`crate::ops::advect_line`], linear interpolation, edge values repeated beyond the ends)
//! followed by explicit diffusion ([`crate::ops::diffuse_explicit`] on one-row arrays: the
//! 3-point Laplacian with symmetric padding), in `diffusion_substeps` equal parts.
//!
//! Two named scenes (docs/burgers-control.md §1): `paper`, the discretisation of Holl et al.
//! 2020 (32 points in cell units, dx = dt = 1, `u += 0.1·Lap(u)` per step, the data force
//! added before the step) and `notebook`, the revised PDE-Control notebook (128 points on
//! [0, 1], ν = 0.003, dt = 0.03, 4 diffusion sub-steps, the force added after the step).

use crate::error::{DiffsimError, Result};
use crate::ops::{advect_line, diffuse_explicit, line_spec};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Where a data force enters a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForceOrder {
    /// `u ← P(u + f)` (the paper's data generator).
    BeforeStep,
    /// `u ← P(u) + f` (the revised notebook).
    AfterStep,
}

/// Where the initial conditions and forces are sampled on [0, 1].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SamplePoints {
    /// `linspace(0, 1, N)`: both ends included (the paper's generator).
    Linspace,
    /// Cell centres `(i + ½)/N` (PhiFlow's grids, the notebook).
    CellCentres,
}

/// A Burgers scene: grid, time step, viscosity, and where a data force enters.
/// TOML: a preset name (`scene = "notebook"`) or a table whose missing fields are the paper's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SceneSpec")]
pub struct BurgersScene {
    /// Points per line `N`.
    pub cells: usize,
    /// Domain length (dx = length / cells).
    pub length: f64,
    /// Time step.
    pub dt: f64,
    /// Viscosity ν (domain units: the diffusion number per step is ν·dt/dx²).
    pub viscosity: f64,
    /// Explicit diffusion sub-steps per step (each ν·dt/(k·dx²)).
    pub diffusion_substeps: usize,
    /// Steps per sequence `n`.
    pub steps: usize,
    /// Where a data force enters.
    pub force_order: ForceOrder,
    /// Where initial states and forces are sampled.
    pub points: SamplePoints,
}

/// The TOML forms of a scene: a name or a table.
#[derive(Deserialize)]
#[serde(untagged)]
enum SceneSpec {
    Name(String),
    Table(SceneTable),
}

/// A scene table (the derive target of [`SceneSpec::Table`]; same fields).
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct SceneTable {
    cells: usize,
    length: f64,
    dt: f64,
    viscosity: f64,
    diffusion_substeps: usize,
    steps: usize,
    force_order: ForceOrder,
    points: SamplePoints,
}

impl Default for SceneTable {
    fn default() -> Self {
        let p = BurgersScene::paper();
        Self {
            cells: p.cells,
            length: p.length,
            dt: p.dt,
            viscosity: p.viscosity,
            diffusion_substeps: p.diffusion_substeps,
            steps: p.steps,
            force_order: p.force_order,
            points: p.points,
        }
    }
}

impl TryFrom<SceneSpec> for BurgersScene {
    type Error = String;
    fn try_from(spec: SceneSpec) -> std::result::Result<Self, String> {
        match spec {
            SceneSpec::Name(name) => Self::named(&name).map_err(|e| e.to_string()),
            SceneSpec::Table(t) => Ok(Self {
                cells: t.cells,
                length: t.length,
                dt: t.dt,
                viscosity: t.viscosity,
                diffusion_substeps: t.diffusion_substeps,
                steps: t.steps,
                force_order: t.force_order,
                points: t.points,
            }),
        }
    }
}

impl Default for BurgersScene {
    fn default() -> Self {
        Self::paper()
    }
}

/// The preset names, in the order `--help` lists them.
pub const PRESETS: [&str; 2] = ["paper", "notebook"];

impl BurgersScene {
    /// Holl et al. 2020 (legacy code): 32 points, cell units, 32 steps, ν·dt/dx² = 0.1.
    pub fn paper() -> Self {
        Self {
            cells: 32,
            length: 32.0,
            dt: 1.0,
            viscosity: 0.1,
            diffusion_substeps: 1,
            steps: 32,
            force_order: ForceOrder::BeforeStep,
            points: SamplePoints::Linspace,
        }
    }

    /// The revised notebook: 128 points on [0, 1], ν = 0.003, dt = 0.03, 4 sub-steps.
    pub fn notebook() -> Self {
        Self {
            cells: 128,
            length: 1.0,
            dt: 0.03,
            viscosity: 0.003,
            diffusion_substeps: 4,
            steps: 32,
            force_order: ForceOrder::AfterStep,
            points: SamplePoints::CellCentres,
        }
    }

    /// The preset called `name` (one of [`PRESETS`]).
    pub fn named(name: &str) -> Result<Self> {
        match name {
            "paper" => Ok(Self::paper()),
            "notebook" => Ok(Self::notebook()),
            other => Err(DiffsimError::config(format!(
                "unknown Burgers scene '{other}': use one of {}",
                PRESETS.join(", ")
            ))),
        }
    }

    /// Point spacing.
    pub fn dx(&self) -> f64 {
        self.length / self.cells as f64
    }

    /// Diffusion number `ν·dt/(k·dx²)` of one of the `k` sub-steps.
    pub fn alpha(&self) -> f64 {
        self.viscosity * self.dt / (self.diffusion_substeps as f64 * self.dx() * self.dx())
    }

    /// Checks the scene; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(DiffsimError::config(m));
        if self.cells < 4 {
            return bad(format!("scene.cells = {} must be at least 4", self.cells));
        }
        if self.steps < 2 {
            return bad(format!("scene.steps = {} must be at least 2", self.steps));
        }
        if self.diffusion_substeps == 0 {
            return bad("scene.diffusion_substeps must be at least 1".into());
        }
        if !(self.length > 0.0 && self.dt > 0.0 && self.viscosity >= 0.0) {
            return bad("scene.length and scene.dt must be positive, scene.viscosity ≥ 0".into());
        }
        // Explicit diffusion of the 3-point Laplacian is stable for α ≤ ½.
        if self.alpha() > 0.5 {
            return bad(format!(
                "diffusion number ν·dt/(substeps·dx²) = {:.3} > 0.5 is unstable: raise scene.diffusion_substeps",
                self.alpha()
            ));
        }
        Ok(())
    }

    /// Sample positions on [0, 1] of the `N` points (for initial states and forces).
    pub fn unit_points(&self) -> Vec<f64> {
        let n = self.cells;
        (0..n)
            .map(|i| match self.points {
                SamplePoints::Linspace => i as f64 / (n - 1) as f64,
                SamplePoints::CellCentres => (i as f64 + 0.5) / n as f64,
            })
            .collect()
    }

    /// The uncontrolled step `P(u)`: advection, then diffusion. `u: [B, N]`.
    pub fn natural(&self, u: Tensor<2>) -> Tensor<2> {
        let [b, n] = u.dims();
        let line = u.reshape([b, 1, n]);
        let mut line = advect_line(line.clone(), line, self.dt / self.dx());
        let (spec, alpha) = (line_spec(n), self.alpha());
        for _ in 0..self.diffusion_substeps {
            line = diffuse_explicit(line, spec, alpha);
        }
        line.reshape([b, n])
    }

    /// One step driven by the data force `f: [B, N]` (a state increment per step), where
    /// [`BurgersScene::force_order`] says.
    pub fn forced(&self, u: Tensor<2>, f: Tensor<2>) -> Tensor<2> {
        match self.force_order {
            ForceOrder::BeforeStep => self.natural(u + f),
            ForceOrder::AfterStep => self.natural(u) + f,
        }
    }

    /// The control force of a transition: `F = u_next − P(u)`.
    pub fn control_force(&self, u: Tensor<2>, u_next: Tensor<2>) -> Tensor<2> {
        u_next - self.natural(u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Holder {
        scene: BurgersScene,
    }

    #[test]
    fn scenes_read_from_a_name_or_a_partial_table() {
        let h: Holder = toml::from_str("scene = \"notebook\"").unwrap();
        assert_eq!(h.scene, BurgersScene::notebook());
        let h: Holder = toml::from_str("[scene]\ncells = 64").unwrap();
        assert_eq!(h.scene.cells, 64);
        assert_eq!(h.scene.viscosity, 0.1);
        let e = toml::from_str::<Holder>("scene = \"heat\"").err().unwrap();
        assert!(
            e.to_string().contains("unknown Burgers scene 'heat'"),
            "{e}"
        );
        // Round trip through the table form.
        let text = format!(
            "[scene]\n{}",
            toml::to_string(&BurgersScene::notebook()).unwrap()
        );
        let h: Holder = toml::from_str(&text).unwrap();
        assert_eq!(h.scene, BurgersScene::notebook());
    }

    #[test]
    fn diffusion_numbers_are_the_published_ones() {
        assert!((BurgersScene::paper().alpha() - 0.1).abs() < 1e-15);
        // 0.003 · 0.03 / 4 · 128² = 0.36864 per sub-step (1.47 per step).
        assert!((BurgersScene::notebook().alpha() - 0.36864).abs() < 1e-12);
        let mut s = BurgersScene::notebook();
        s.diffusion_substeps = 1;
        assert!(s.validate().is_err());
    }
}
