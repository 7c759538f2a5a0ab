//! R2, Warp's rigid-body trajectory tracking (`warp.examples.optim.example_trajectory`,
//! Warp 1.9.1): a free sphere (r 0.1 m, density 100 kg/m³) starts at (1, 0, 0) without
//! gravity; per frame (60 fps, one step each) a force `(f_x, 0, f_z)` acts on it; the loss
//! is `Σᵢ |(x, z)(frame i+1) − (cos θᵢ, sin θᵢ)|²` with `θ = linspace(0, 2π, frames)`.
//! Warp runs Adam (lr 100) for 250 iterations on its tape gradient. The map from forces to
//! positions is linear, so the loss is linear least squares: one Gauss-Newton step from the
//! adjoint Jacobian solves it to round-off — with Warp's semi-implicit step and with backward
//! Euler alike. The study runs both, Adam with Warp's settings on the same gradient for
//! comparison, a finite-difference check, and times (loss, gradient).

use crate::error::Result;
use crate::experiments::study::{Progress, Study, log_loss_curve, study_page};
use crate::optim::{
    AdamSettings, Evaluation, Trace, adam, dense_gn_step, fd_error, gauss_newton, median_ms,
};
use crate::rigid::{
    BodyShape, BodyState, Differentiated, DifferentiatedStep, RigidBody, RigidModel, StateBar,
    Wrench,
};
use crate::viz::line_plot;
use crate::viz::rigid::{Disc, discs_gif};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Settings (Warp's example as shipped).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RigidTrajectoryConfig {
    /// Frames (one step each).
    pub frames: usize,
    /// Frames per second.
    pub fps: f64,
    /// Sphere radius (m).
    pub radius: f64,
    /// Density (kg/m³).
    pub density: f64,
    /// Adam's rate (N per iteration, about).
    pub adam_learning_rate: f64,
    /// Adam iterations.
    pub adam_iterations: usize,
    /// Gauss-Newton iterations at most (it stops below `gn_target`).
    pub gn_iterations: usize,
    /// Loss at which Gauss-Newton stops.
    pub gn_target: f64,
    /// Timed (loss, gradient) evaluations.
    pub repeats: usize,
}

impl Default for RigidTrajectoryConfig {
    fn default() -> Self {
        Self {
            frames: 100,
            fps: 60.0,
            radius: 0.1,
            density: 100.0,
            adam_learning_rate: 100.0,
            adam_iterations: 250,
            gn_iterations: 5,
            gn_target: 1e-24,
            repeats: 20,
        }
    }
}

/// The model with the forces `p = (f_x, f_z)` per frame, and the start state.
fn scene(cfg: &RigidTrajectoryConfig, p: &[f64]) -> Result<(RigidModel, BodyState)> {
    let sphere = RigidBody::from_shape(&BodyShape::Sphere { r: cfg.radius }, cfg.density)?;
    let wrenches = (0..cfg.frames)
        .map(|i| {
            vec![Wrench {
                f: [p[2 * i], 0.0, p[2 * i + 1]],
                t: [0.0; 3],
            }]
        })
        .collect();
    let model = RigidModel {
        bodies: vec![sphere],
        wrenches,
        ..Default::default()
    };
    Ok((model, BodyState::at([1.0, 0.0, 0.0])))
}

/// The reference `(cos θᵢ, sin θᵢ)`, `θ = linspace(0, 2π, frames)`.
fn reference(frames: usize) -> Vec<[f64; 2]> {
    (0..frames)
        .map(|i| {
            let t = std::f64::consts::TAU * i as f64 / (frames - 1).max(1) as f64;
            [t.cos(), t.sin()]
        })
        .collect()
}

/// The states after each frame (`frames + 1`, the start first) under the forces `p`, and a
/// function that runs the adjoint for per-state seeds.
type Adjoint = Box<dyn Fn(&[Vec<StateBar>]) -> Vec<f64>>;

fn simulate(
    cfg: &RigidTrajectoryConfig,
    step: DifferentiatedStep,
    p: &[f64],
) -> Result<(Vec<BodyState>, Adjoint)> {
    let (model, init) = scene(cfg, p)?;
    let h = 1.0 / cfg.fps;
    let frames = cfg.frames;
    let forces = move |g: crate::rigid::RigidGrads| -> Vec<f64> {
        g.wrenches
            .iter()
            .flat_map(|w| [w[0].f[0], w[0].f[2]])
            .collect()
    };
    let run = Differentiated::run(model, h, step, &[init], frames)?;
    let states = run.states().iter().map(|s| s[0]).collect();
    let adj: Adjoint = Box::new(move |bars| forces(run.adjoint(bars)));
    Ok((states, adj))
}

/// Residuals `(x, z)(frame i+1) − refᵢ`, 2 per frame.
fn residuals(states: &[BodyState], reference: &[[f64; 2]]) -> Vec<f64> {
    reference
        .iter()
        .enumerate()
        .flat_map(|(i, r)| [states[i + 1].c[0] - r[0], states[i + 1].c[2] - r[1]])
        .collect()
}

/// The study's (loss, gradient) of the forces, from `p0 = 0`.
pub fn objective(
    cfg: &RigidTrajectoryConfig,
    step: DifferentiatedStep,
) -> (Evaluation<'static>, Vec<f64>) {
    let cfg = cfg.clone();
    let reference = reference(cfg.frames);
    let p0 = vec![0.0; 2 * cfg.frames];
    let f: Evaluation<'static> = Box::new(move |p: &[f64]| {
        let (states, adjoint) = simulate(&cfg, step, p)?;
        let r = residuals(&states, &reference);
        let mut bars = vec![Vec::new(); states.len()];
        for (i, pair) in r.chunks(2).enumerate() {
            bars[i + 1] = vec![StateBar {
                c: [2.0 * pair[0], 0.0, 2.0 * pair[1]],
                ..Default::default()
            }];
        }
        Ok((r.iter().map(|x| x * x).sum(), adjoint(&bars)))
    });
    (f, p0)
}

/// Gauss-Newton with the dense Jacobian from one adjoint sweep per residual.
fn gauss_newton_run(cfg: &RigidTrajectoryConfig, step: DifferentiatedStep) -> Result<Trace> {
    let reference = reference(cfg.frames);
    let f = |p: &[f64]| -> Result<(Vec<f64>, Vec<f64>)> {
        let (states, adjoint) = simulate(cfg, step, p)?;
        let r = residuals(&states, &reference);
        let jac: Vec<Vec<f64>> = (0..r.len())
            .map(|k| {
                let mut bars = vec![Vec::new(); states.len()];
                let mut c = [0.0; 3];
                c[2 * (k % 2)] = 1.0;
                bars[k / 2 + 1] = vec![StateBar {
                    c,
                    ..Default::default()
                }];
                adjoint(&bars)
            })
            .collect();
        let step = dense_gn_step(&r, &jac, 1e-14)?;
        Ok((r, step))
    };
    gauss_newton(
        &f,
        &vec![0.0; 2 * cfg.frames],
        cfg.gn_iterations,
        cfg.gn_target,
    )
}

/// One step's measurements.
#[derive(Clone, Debug, Serialize)]
pub struct StepResult {
    /// The step.
    pub step: DifferentiatedStep,
    /// Gauss-Newton: the loss at the start and after each iteration.
    pub gn_losses: Vec<f64>,
    /// Wall time of the Gauss-Newton run (ms): Jacobians, steps and loss evaluations.
    pub gn_ms: f64,
    /// `|∇L − FD|∞ / |FD|∞` at the start (central differences, step 1e-3 N).
    pub fd_error: f64,
    /// One (loss, gradient) evaluation (ms, median).
    pub ms_per_evaluation: f64,
}

/// What the study measured.
#[derive(Clone, Debug, Serialize)]
pub struct RigidTrajectoryResult {
    /// The settings.
    pub config: RigidTrajectoryConfig,
    /// Per step: Gauss-Newton, the FD check, timing.
    pub steps: Vec<StepResult>,
    /// Adam with Warp's settings on the semi-implicit step's gradient.
    pub adam: Trace,
}

/// Runs the study (no pictures).
pub fn run(cfg: &RigidTrajectoryConfig, progress: &dyn Progress) -> Result<RigidTrajectoryResult> {
    progress.start("rigid-trajectory", 3);
    let mut steps = Vec::new();
    for step in [
        DifferentiatedStep::SemiImplicit,
        DifferentiatedStep::BackwardEuler,
    ] {
        let t0 = std::time::Instant::now();
        let gn = gauss_newton_run(cfg, step)?;
        let gn_ms = t0.elapsed().as_secs_f64() * 1e3;
        let (f, p0) = objective(cfg, step);
        steps.push(StepResult {
            step,
            gn_losses: gn.losses,
            gn_ms,
            fd_error: fd_error(&*f, &p0, 1e-3)?,
            ms_per_evaluation: median_ms(cfg.repeats, &|| f(&p0))?,
        });
        progress.set(steps.len() as u64);
    }
    let (f, p0) = objective(cfg, DifferentiatedStep::SemiImplicit);
    let adam = adam(
        &*f,
        &p0,
        AdamSettings::with_rate(cfg.adam_learning_rate),
        cfg.adam_iterations,
        None,
    )?;
    progress.set(3);
    Ok(RigidTrajectoryResult {
        config: cfg.clone(),
        steps,
        adam,
    })
}

/// The study: `diffsim experiment rigid-trajectory`.
pub struct RigidTrajectory;

impl Study for RigidTrajectory {
    const NAME: &'static str = "rigid-trajectory";
    const ABOUT: &'static str = "R2, Warp's rigid-body trajectory tracking: one Gauss-Newton step to round-off (semi-implicit and backward Euler) against Adam's 250 iterations";
    type Config = RigidTrajectoryConfig;
    type Result = RigidTrajectoryResult;

    fn full() -> RigidTrajectoryConfig {
        RigidTrajectoryConfig::default()
    }

    fn quick() -> RigidTrajectoryConfig {
        RigidTrajectoryConfig {
            adam_iterations: 50,
            repeats: 3,
            ..RigidTrajectoryConfig::default()
        }
    }

    fn validate(cfg: &RigidTrajectoryConfig) -> Result<()> {
        if cfg.frames < 2 || cfg.fps.is_nan() || cfg.fps <= 0.0 {
            return Err(crate::error::DiffsimError::config(
                "rigid-trajectory needs at least 2 frames and a positive fps",
            ));
        }
        RigidBody::from_shape(&BodyShape::Sphere { r: cfg.radius }, cfg.density).map(|_| ())
    }

    /// Runs [`run`] and writes `loss.png` (Adam and Gauss-Newton), `path.png` (the
    /// reference and the optimised x-z paths) and `trajectory.gif` (the sphere after one
    /// Gauss-Newton step, every 5th reference point marked).
    fn run(
        cfg: &RigidTrajectoryConfig,
        dir: &Path,
        progress: &dyn Progress,
    ) -> Result<RigidTrajectoryResult> {
        let r = run(cfg, progress)?;
        let mut series = vec![(
            format!("Adam, lr {} (Warp's settings)", cfg.adam_learning_rate),
            log_loss_curve(&r.adam.losses, 0),
        )];
        for s in &r.steps {
            series.push((
                format!("Gauss-Newton, {:?}", s.step),
                log_loss_curve(&s.gn_losses, 0),
            ));
        }
        line_plot(
            &dir.join("loss.png"),
            "rigid-trajectory: loss (log10) per iteration",
            "iteration",
            "log10 loss",
            &series,
        )?;
        let path = |p: &[f64]| -> Result<Vec<(f64, f64)>> {
            let (states, _) = simulate(cfg, DifferentiatedStep::SemiImplicit, p)?;
            Ok(states.iter().map(|s| (s.c[0], s.c[2])).collect())
        };
        let circle = reference(cfg.frames);
        let reference: Vec<(f64, f64)> = circle.iter().map(|r| (r[0], r[1])).collect();
        let one = RigidTrajectoryConfig {
            gn_iterations: 1,
            ..cfg.clone()
        };
        let gn = gauss_newton_run(&one, DifferentiatedStep::SemiImplicit)?;
        let (states, _) = simulate(cfg, DifferentiatedStep::SemiImplicit, &gn.params)?;
        let frames: Vec<Vec<Disc>> = states
            .iter()
            .step_by(2)
            .map(|s| {
                vec![Disc {
                    center: [s.c[0], s.c[2]],
                    radius: cfg.radius,
                    spoke: [1.0, 0.0],
                }]
            })
            .collect();
        let marks: Vec<[f64; 2]> = circle.into_iter().step_by(5).collect();
        discs_gif(
            &dir.join("trajectory.gif"),
            &frames,
            0,
            &marks,
            "rigid-trajectory: one Gauss-Newton step",
        )?;
        line_plot(
            &dir.join("path.png"),
            "rigid-trajectory: x-z path of the sphere",
            "x (m)",
            "z (m)",
            &[
                ("reference".into(), reference),
                (
                    format!("Adam, {} iterations", cfg.adam_iterations),
                    path(&r.adam.params)?,
                ),
                ("one Gauss-Newton step".into(), path(&gn.params)?),
            ],
        )?;
        Ok(r)
    }

    fn report(r: &RigidTrajectoryResult, dir: &Path) -> String {
        let mut lines = Vec::new();
        for s in &r.steps {
            lines.push(format!(
                "{:?}: Gauss-Newton loss {} in {:.1} ms; adjoint vs FD {:.1e}; (loss, gradient) {:.3} ms",
                s.step,
                s.gn_losses.iter().map(|l| format!("{l:.3e}")).collect::<Vec<_>>().join(" -> "),
                s.gn_ms,
                s.fd_error,
                s.ms_per_evaluation
            ));
        }
        let l = &r.adam.losses;
        let at = |k: usize| l.get(k).map_or("–".into(), |x| format!("{x:.4}"));
        lines.push(format!(
            "Adam (lr {}), loss before iteration 0, 1, 2, 9, 49, 99, 249: {}, {}, {}, {}, {}, {}, {}",
            r.config.adam_learning_rate,
            at(0),
            at(1),
            at(2),
            at(9),
            at(49),
            at(99),
            at(249)
        ));
        lines.push(format!("pictures: {}", dir.display()));
        study_page(RigidTrajectory::NAME, &lines)
    }
}
