//! The smoke-target control experiment: find the initial velocity that carries a smoke blob
//! onto a target shape after `steps` steps, by Adam on gradients through the unrolled solver.
//!
//! The target is reachable by construction: it is the blob after `steps` steps from a hidden
//! reference flow (a projected Gaussian jet), so the optimum loss is 0 and the fall of the
//! loss measures the optimisation, not the physics' reach. The control is a free velocity
//! field; the unroll starts from its projection (divergence-free, walls respected), so only
//! physical initial states are searched.

use crate::error::{DiffsimError, Result};
use crate::experiments::study::{Progress, Study, log_loss_curve};
use crate::fluid::{FluidState, Precision, SceneConfig, Simulation, host_item};
use crate::grid::{Resolution, ScalarOutside};
use crate::ops;
use crate::viz::{FieldPicture, line_plot};
use burn::module::{Module, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// Settings (TOML); [`SmokeTargetConfig::default`] is the full run, [`SmokeTargetConfig::quick`]
/// the toy size of the test suite.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SmokeTargetConfig {
    /// Grid (domain 100×100, closed box).
    pub resolution: Resolution,
    /// Unrolled steps (dt = 1).
    pub steps: usize,
    /// Adam iterations at most.
    pub iterations: usize,
    /// Adam learning rate (velocity units).
    pub learning_rate: f64,
    /// Stop once the loss is below `initial loss × stop_ratio`.
    pub stop_ratio: f64,
    /// Centre of the initial blob (domain units).
    pub blob_center: [f64; 2],
    /// Radius of the initial blob.
    pub blob_radius: f64,
    /// Peak speed and direction of the hidden reference jet that makes the target.
    pub jet: [f64; 2],
    /// Width (standard deviation) of the reference jet.
    pub jet_width: f64,
}

impl Default for SmokeTargetConfig {
    fn default() -> Self {
        Self {
            resolution: Resolution::new(64, 64),
            steps: 16,
            iterations: 100,
            learning_rate: 0.05,
            stop_ratio: 1e-3,
            blob_center: [35.0, 35.0],
            blob_radius: 14.0,
            jet: [3.0, 2.25],
            jet_width: 14.0,
        }
    }
}

impl SmokeTargetConfig {
    /// The toy size run by the test suite (same pipeline).
    pub fn quick() -> Self {
        Self {
            resolution: Resolution::new(24, 24),
            steps: 8,
            iterations: 60,
            ..Self::default()
        }
    }

    /// Checks the settings (also done by [`run`]).
    pub fn validate(&self) -> Result<()> {
        let ok = self.steps > 0
            && self.iterations > 0
            && self.learning_rate > 0.0
            && self.blob_radius > 0.0
            && self.jet_width > 0.0;
        if ok {
            Ok(())
        } else {
            Err(DiffsimError::config(
                "smoke-target: steps, iterations, learning_rate, blob_radius and jet_width must be positive",
            ))
        }
    }

    /// The closed-box scene with a carried marker, no source, no buoyancy.
    pub fn scene(&self) -> SceneConfig {
        let mut scene = SceneConfig::smoke();
        scene.name = "smoke-target".into();
        scene.resolution = self.resolution;
        scene.steps = self.steps;
        scene.marker.inflow.clear();
        scene.marker.buoyancy = 0.0;
        scene.marker.carried = true;
        scene.marker.outside = ScalarOutside::Zero;
        scene.precision = Precision::F32;
        scene
    }
}

/// The control: a free velocity field, projected before the unroll.
#[derive(Module, Debug)]
pub struct Control {
    /// x-velocity, `[1, ny, nx+1]`.
    pub u: Param<Tensor<3>>,
    /// y-velocity, `[1, ny+1, nx]`.
    pub v: Param<Tensor<3>>,
}

/// What the experiment measured.
#[derive(Clone, Debug, Serialize)]
pub struct SmokeTargetResult {
    /// The configuration run.
    pub config: SmokeTargetConfig,
    /// Loss per iteration (before each update), then the final loss.
    pub losses: Vec<f64>,
    /// Loss of the zero control.
    pub initial_loss: f64,
    /// Loss of the final control.
    pub final_loss: f64,
    /// `initial_loss / final_loss`.
    pub reduction: f64,
    /// Adam iterations taken.
    pub iterations: usize,
    /// Wall time of the optimisation (s).
    pub wall_s: f64,
    /// Mean wall time of one (loss, gradient) evaluation and update (ms).
    pub ms_per_iteration: f64,
    /// Marker after the unroll: zero control, final control and target, `[ny, nx]` each.
    #[serde(skip)]
    pub pictures: [Vec<f32>; 3],
}

/// A smooth disc of marker (1 inside, 0 outside, a tanh edge of one cell).
fn blob(sim: &Simulation, center: [f64; 2], radius: f64) -> Vec<f32> {
    let g = &sim.grid;
    (0..g.ny * g.nx)
        .map(|k| {
            let (x, y) = ((k % g.nx) as f64 + 0.5, (k / g.nx) as f64 + 0.5);
            let r = ((x * g.dx - center[0]).powi(2) + (y * g.dx - center[1]).powi(2)).sqrt();
            (0.5 * (1.0 - ((r - radius) / g.dx).tanh())) as f32
        })
        .collect()
}

/// The marker after the unroll from the projection of `(u, v)`.
fn rollout(
    sim: &Simulation,
    start: &FluidState,
    u: Tensor<3>,
    v: Tensor<3>,
    steps: usize,
) -> Result<Tensor<3>> {
    let (u, v, _) = ops::project(u, v, &sim.projection);
    let mut s = FluidState {
        u,
        v,
        ..start.clone()
    };
    for _ in 0..steps {
        s = sim.step(s)?.0;
    }
    Ok(s.marker)
}

/// Runs the experiment; `progress(iteration, loss)` is called after every evaluation.
pub fn run(
    cfg: &SmokeTargetConfig,
    mut progress: impl FnMut(usize, f64),
) -> Result<SmokeTargetResult> {
    cfg.validate()?;
    let device = Device::flex().autodiff();
    let sim = Simulation::new(&cfg.scene(), &device)?;
    let g = sim.grid;
    let (du, dv) = ([1, g.ny, g.nx + 1], [1, g.ny + 1, g.nx]);
    let start = sim.state_from_arrays(
        vec![0.0; g.ny * (g.nx + 1)],
        vec![0.0; (g.ny + 1) * g.nx],
        Some(blob(&sim, cfg.blob_center, cfg.blob_radius)),
        1,
    );
    // The hidden reference jet and the target it makes.
    let jet = |dims: [usize; 3], ox: f64, oy: f64, speed: f64| -> Tensor<3> {
        let w = cfg.jet_width;
        let vals: Vec<f32> = (0..dims[1] * dims[2])
            .map(|k| {
                let (x, y) = ((k % dims[2]) as f64 + ox, (k / dims[2]) as f64 + oy);
                let (dx, dy) = (x * g.dx - cfg.blob_center[0], y * g.dx - cfg.blob_center[1]);
                (speed * (-(dx * dx + dy * dy) / (2.0 * w * w)).exp()) as f32
            })
            .collect();
        Tensor::from_data(TensorData::new(vals, dims), &device)
    };
    let target = rollout(
        &sim,
        &start,
        jet(du, 0.0, 0.5, cfg.jet[0]),
        jet(dv, 0.5, 0.0, cfg.jet[1]),
        cfg.steps,
    )?
    .detach();
    let loss_of = |m: Tensor<3>| (m - target.clone()).powf_scalar(2.0).mean();
    let mut control = Control {
        u: Param::from_tensor(Tensor::zeros(du, &device)),
        v: Param::from_tensor(Tensor::zeros(dv, &device)),
    };
    let zero_marker = host_item(
        &rollout(&sim, &start, control.u.val(), control.v.val(), cfg.steps)?.detach(),
        0,
    );
    let mut optim = AdamConfig::new().init();
    let mut losses = Vec::new();
    let t0 = Instant::now();
    let mut iterations = 0;
    loop {
        let loss = loss_of(rollout(
            &sim,
            &start,
            control.u.val(),
            control.v.val(),
            cfg.steps,
        )?);
        let value = loss.clone().into_scalar::<f64>();
        if !value.is_finite() {
            return Err(DiffsimError::config(format!(
                "smoke-target: the loss became {value} at iteration {iterations}; lower learning_rate"
            )));
        }
        losses.push(value);
        progress(iterations, value);
        if iterations == cfg.iterations || value < losses[0] * cfg.stop_ratio {
            break;
        }
        let grads = GradientsParams::from_grads(loss.backward(), &control);
        control = optim.step(cfg.learning_rate, control, grads);
        iterations += 1;
    }
    let wall_s = t0.elapsed().as_secs_f64();
    let final_marker = host_item(
        &rollout(&sim, &start, control.u.val(), control.v.val(), cfg.steps)?.detach(),
        0,
    );
    let (initial_loss, final_loss) = (losses[0], *losses.last().expect("one loss"));
    Ok(SmokeTargetResult {
        config: cfg.clone(),
        initial_loss,
        final_loss,
        reduction: initial_loss / final_loss,
        iterations,
        wall_s,
        ms_per_iteration: 1e3 * wall_s / losses.len() as f64,
        losses,
        pictures: [zero_marker, final_marker, host_item(&target, 0)],
    })
}

/// The study: `diffsim experiment smoke-target`.
pub struct SmokeTarget;

impl Study for SmokeTarget {
    const NAME: &'static str = "smoke-target";
    const ABOUT: &'static str = "optimise an initial velocity so that a smoke blob reaches a target shape: Adam through the unrolled differentiable solver";
    type Config = SmokeTargetConfig;
    type Result = SmokeTargetResult;

    fn full() -> SmokeTargetConfig {
        SmokeTargetConfig::default()
    }

    fn quick() -> SmokeTargetConfig {
        SmokeTargetConfig::quick()
    }

    fn validate(cfg: &SmokeTargetConfig) -> Result<()> {
        cfg.validate()
    }

    /// Runs the optimisation ([`run`]) and writes `loss.png`, `before.png`, `after.png` and
    /// `target.png`.
    fn run(
        cfg: &SmokeTargetConfig,
        dir: &Path,
        progress: &dyn Progress,
    ) -> Result<SmokeTargetResult> {
        cfg.validate()?;
        progress.start("smoke-target", cfg.iterations as u64);
        let r = run(cfg, |k, _| progress.set(k as u64))?;

        line_plot(
            &dir.join("loss.png"),
            "smoke-target: loss (log10) per Adam iteration",
            "iteration",
            "log10 loss",
            &[("loss".into(), log_loss_curve(&r.losses, 0))],
        )?;
        let res = r.config.resolution;
        let titles = [
            "marker, zero control",
            "marker, optimised control",
            "target",
        ];
        for (name, (values, title)) in ["before", "after", "target"]
            .iter()
            .zip(r.pictures.iter().zip(titles))
        {
            FieldPicture {
                values,
                nx: res.nx,
                ny: res.ny,
                solid: &[],
                range: 1.0,
                title: format!("{title} after {} steps", r.config.steps),
            }
            .save_png(&dir.join(format!("{name}.png")))?;
        }
        Ok(r)
    }

    fn report(r: &SmokeTargetResult, dir: &Path) -> String {
        format!(
            "# smoke-target: measured results\n\n- {}: loss {:.3e} -> {:.3e} ({:.0}x lower) in {} Adam iterations, {:.1} s ({:.1} ms per iteration); pictures in {}\n",
            r.config.resolution,
            r.initial_loss,
            r.final_loss,
            r.reduction,
            r.iterations,
            r.wall_s,
            r.ms_per_iteration,
            dir.display()
        )
    }
}
