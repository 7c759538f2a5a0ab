//! `diffsim simulate`.

use super::progress::Bar;
use crate::error::{DiffsimError, Result};
use crate::fluid::{FluidState, SceneConfig, Simulation};
use crate::grid::Resolution;
use crate::io::{Frame, SimWriter, read_frame, stored_resolution};
use crate::linalg::SolveMethod;
use crate::viz::{FieldPicture, GifWriter, robust_range, vorticity};
use clap::Args;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `diffsim simulate`.
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// A built-in scene (wake, wake-phiflow, smoke, taylor-green; see `diffsim scenes`) or a
    /// TOML scene file.
    pub scene: String,
    /// Resolution NXxNY (x first), e.g. 32x64. Default: the scene's, or that of --init.
    #[arg(long)]
    pub res: Option<String>,
    /// Number of steps. Default: the scene's.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Reynolds number on the scene's scale (wake: the Solver-in-the-Loop scale, e.g. 585.94).
    #[arg(long)]
    pub re: Option<f64>,
    /// Time step. Default: the scene's.
    #[arg(long)]
    pub dt: Option<f64>,
    /// Start from the last frame of this HDF5 file (velocity_x, velocity_y; marker if present).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Write frames to this HDF5 file (written as FILE.partial, renamed when complete).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Keep every K-th step (and the first and last). Default: steps/50.
    #[arg(long)]
    pub save_every: Option<usize>,
    /// Write a vorticity PNG of every kept frame into this folder.
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// Write an animated GIF of the vorticity of the kept frames.
    #[arg(long)]
    pub gif: Option<PathBuf>,
    /// Field shown in the pictures: vorticity or marker.
    #[arg(long, value_enum, default_value_t = PictureField::Vorticity)]
    pub field: PictureField,
    /// Compute device: flex (CPU), wgpu or cuda (GPU builds; portable op bodies, CG solves).
    #[arg(long, default_value = "flex")]
    pub device: String,
    /// Pressure solver: cholesky (factor once, default), cg or jacobi-cg.
    #[arg(long, value_parser = parse_method)]
    pub solver: Option<SolveMethod>,
    /// Print a machine-readable JSON summary on stdout (and no progress).
    #[arg(long)]
    pub json: bool,
}

/// What the pictures show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PictureField {
    /// `∂v/∂x − ∂u/∂y` at cell centres (blue negative, red positive).
    Vorticity,
    /// The passive/buoyant marker (white 0, red high).
    Marker,
}

fn parse_method(s: &str) -> std::result::Result<SolveMethod, String> {
    match s {
        "cholesky" => Ok(SolveMethod::Cholesky),
        "cg" => Ok(SolveMethod::Cg),
        "jacobi-cg" => Ok(SolveMethod::JacobiCg),
        _ => Err(format!(
            "unknown solver '{s}': use cholesky, cg or jacobi-cg"
        )),
    }
}

/// What `diffsim simulate` reports.
#[derive(Debug, Clone, Serialize)]
pub struct SimulateSummary {
    /// Scene name.
    pub scene: String,
    /// Resolution.
    pub resolution: String,
    /// Steps run.
    pub steps: usize,
    /// Time step.
    pub dt: f64,
    /// Kinematic viscosity.
    pub nu: f64,
    /// Reynolds number, if the scene has one.
    pub reynolds: Option<f64>,
    /// Mean wall time per step (ms), excluding output.
    pub ms_per_step: f64,
    /// Mean wall time of the projection per step (ms).
    pub projection_ms_per_step: f64,
    /// Max |div u| over fluid cells after the last step (domain units).
    pub max_divergence: f64,
    /// Largest CFL number `max|u|·dt/dx` over the kept frames.
    pub max_cfl: f64,
    /// Pressure solver method that ran.
    pub solver: SolveMethod,
    /// Max iterations of one pressure solve (0 for Cholesky).
    pub solver_max_iterations: usize,
    /// Max residual `max|b − A p|` of the pressure solves.
    pub solver_max_residual: f64,
    /// Frames kept.
    pub frames: usize,
    /// HDF5 output.
    pub out: Option<PathBuf>,
    /// PNG folder.
    pub png: Option<PathBuf>,
    /// GIF.
    pub gif: Option<PathBuf>,
    /// Total wall time (s).
    pub wall_s: f64,
}

impl SimulateSummary {
    /// A few readable lines.
    pub fn human(&self) -> String {
        let mut s = format!(
            "{} {}: {} steps, {:.3} ms/step ({:.0}% projection), max |div| {:.2e}, max CFL {:.2}, {:?} residual {:.1e}, {:.1} s",
            self.scene,
            self.resolution,
            self.steps,
            self.ms_per_step,
            100.0 * self.projection_ms_per_step / self.ms_per_step.max(1e-12),
            self.max_divergence,
            self.max_cfl,
            self.solver,
            self.solver_max_residual,
            self.wall_s
        );
        for (what, p) in [
            ("frames", &self.out),
            ("pictures", &self.png),
            ("animation", &self.gif),
        ] {
            if let Some(p) = p {
                s += &format!("\n{what}: {}", p.display());
            }
        }
        s
    }
}

/// Loads the scene and applies the command-line overrides.
pub fn resolve_scene(args: &SimulateArgs) -> Result<SceneConfig> {
    let mut scene = SceneConfig::load(&args.scene)?;
    let res = args
        .res
        .as_deref()
        .map(str::parse::<Resolution>)
        .transpose()?;
    if let Some(res) = res.or_else(|| args.init.as_deref().and_then(stored_resolution)) {
        scene.resolution = res;
    }
    if let Some(steps) = args.steps {
        scene.steps = steps;
    }
    if let Some(re) = args.re {
        scene.viscosity = scene.viscosity.with_reynolds(re)?;
    }
    if let Some(dt) = args.dt {
        scene.dt = dt;
    }
    if let Some(m) = args.solver {
        scene.solve.method = m;
    }
    Ok(scene)
}

/// Runs `diffsim simulate`.
pub fn simulate(args: &SimulateArgs) -> Result<SimulateSummary> {
    let t0 = Instant::now();
    let scene = resolve_scene(args)?;
    if args.save_every == Some(0) {
        return Err(DiffsimError::config("--save-every must be at least 1"));
    }
    let device = super::device(&args.device)?;
    let sim = Simulation::new(&scene, &device)?;
    let mut state = match &args.init {
        Some(path) => {
            let f = read_frame(path, &sim.grid)?;
            sim.state_from_arrays(f.u, f.v, f.marker, 1)
        }
        None => sim.initial_state(1)?,
    };
    let steps = scene.steps;
    let every = args.save_every.unwrap_or((steps / 50).max(1));
    let mut writer = args
        .out
        .as_deref()
        .map(|p| SimWriter::create(p, &sim))
        .transpose()?;
    let keep_pictures = args.png.is_some() || args.gif.is_some();
    let mut pictures: Vec<(usize, Vec<f32>)> = Vec::new();
    let mut max_cfl: f64 = 0.0;
    let mut keep = |state: &FluidState, writer: &mut Option<SimWriter>| -> Result<()> {
        sim.check_finite(state)?;
        max_cfl = max_cfl.max(sim.cfl(state));
        let f = Frame::of_state(&sim, state, 0);
        if keep_pictures {
            let values = match args.field {
                PictureField::Vorticity => vorticity(&f.u, &f.v, &sim.grid),
                PictureField::Marker => f
                    .marker
                    .clone()
                    .unwrap_or_else(|| vec![0.0; sim.grid.cells()]),
            };
            pictures.push((state.step, values));
        }
        if let Some(w) = writer {
            w.append(&f)?;
        }
        Ok(())
    };
    keep(&state, &mut writer)?;
    let progress = Bar::new(
        &format!("{} {}", scene.name, scene.resolution),
        steps as u64,
        args.json,
    );
    let (mut step_s, mut proj_s, mut max_it, mut max_res) = (0.0, 0.0, 0, 0.0f64);
    // The method that actually ran (the portable GPU bodies solve by CG whatever the config).
    let mut method = scene.solve.method;
    for k in 1..=steps {
        let (next, info) = sim.step(state)?;
        state = next;
        step_s += info.step_secs;
        proj_s += info.projection_secs;
        max_it = max_it.max(info.solve.iterations);
        max_res = max_res.max(info.solve.residual);
        method = info.solve.method;
        if k % every == 0 || k == steps {
            keep(&state, &mut writer)?;
        }
        progress.set(k as u64);
    }
    progress.finish();
    let frames = writer.as_ref().map_or(pictures.len(), |w| w.frames());
    let out = writer.map(|w| w.finish()).transpose()?;
    write_pictures(
        &sim,
        args.field,
        &pictures,
        args.png.as_deref(),
        args.gif.as_deref(),
    )?;
    let n = steps.max(1) as f64;
    Ok(SimulateSummary {
        scene: scene.name.clone(),
        resolution: scene.resolution.to_string(),
        steps,
        dt: scene.dt,
        nu: sim.nu,
        reynolds: scene.viscosity.reynolds(),
        ms_per_step: 1e3 * step_s / n,
        projection_ms_per_step: 1e3 * proj_s / n,
        max_divergence: sim.max_divergence(&state),
        max_cfl,
        solver: method,
        solver_max_iterations: max_it,
        solver_max_residual: max_res,
        frames,
        out,
        png: args.png.clone(),
        gif: args.gif.clone(),
        wall_s: t0.elapsed().as_secs_f64(),
    })
}

/// PNGs and GIF with one colour range for all frames (the 99th percentile of |value| in
/// fluid cells over the frames).
fn write_pictures(
    sim: &Simulation,
    field: PictureField,
    frames: &[(usize, Vec<f32>)],
    png: Option<&Path>,
    gif: Option<&Path>,
) -> Result<()> {
    if frames.is_empty() || (png.is_none() && gif.is_none()) {
        return Ok(());
    }
    let solid = &sim.solid.solid;
    let range = robust_range(frames.iter().map(|(_, w)| w.as_slice()), solid);
    let g = sim.grid;
    let name = match field {
        PictureField::Vorticity => "vorticity",
        PictureField::Marker => "marker",
    };
    let title = |step: usize| {
        format!(
            "{} {}  {}  step {step}  t = {:.1}",
            sim.scene.name,
            g.resolution(),
            name,
            step as f64 * sim.scene.dt
        )
    };
    if let Some(dir) = png {
        std::fs::create_dir_all(dir).map_err(|e| DiffsimError::file(dir, e))?;
        for (step, w) in frames {
            FieldPicture::on_grid(w, solid, &g, range, title(*step))
                .save_png(&dir.join(format!("{name}_{step:06}.png")))?;
        }
    }
    if let Some(path) = gif {
        let (_, w0) = &frames[0];
        let mut gw = GifWriter::create(
            path,
            FieldPicture::on_grid(w0, solid, &g, range, title(0)).size(),
            80,
        )?;
        let stride = frames.len().div_ceil(200);
        for (step, w) in frames.iter().step_by(stride) {
            gw.add(&FieldPicture::on_grid(w, solid, &g, range, title(*step)))?;
        }
        gw.finish()?;
    }
    Ok(())
}
