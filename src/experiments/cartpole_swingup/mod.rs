//! R9, cartpole swing-up through the unrolled joint-space steppers: dm_control's
//! `suite/cartpole.xml` (cart 1 kg on a ±1.8 m slider, pole 0.1 kg capsule of 1 m, motor of
//! gear 10 with `ctrl ∈ [−1, 1]`, timestep 0.01 s) read by the MJCF reader, released with the
//! pole hanging down; one control per step for `duration` seconds. The loss is the mean over
//! the last `hold` seconds of `(1 − cos θₙ) + xₙ² + 0.1(ẋₙ² + θ̇ₙ²)` plus `c·Σ ctrlₙ²`
//! (swing up, then hold), minimised by L-BFGS
//! with the box `|ctrl| ≤ 1` on the adjoint gradient, with Warp's semi-implicit step and with
//! implicit Euler. The slider's range becomes the smooth joint limit (MuJoCo's constraint
//! solver is not reproduced). No anchor publishes a number for this task.

use crate::articulation::{JointKind, JointStepper, LimitLaw, MjcfOptions, Scheme, read_mjcf};
use crate::error::{DiffsimError, Result};
use crate::experiments::study::{Progress, Study, log_loss_curve, study_page};
use crate::optim::{Evaluation, Trace, fd_error, lbfgs_box, median_ms};
use crate::viz::line_plot;
use crate::viz::rigid::{Disc, discs_gif};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CartpoleSwingupConfig {
    /// The MJCF cartpole (one slide joint with a motor, one hinge; the pole along +z at 0).
    pub model: PathBuf,
    /// Seconds of control (steps = duration / the model's timestep).
    pub duration: f64,
    /// The last seconds over which the state cost is averaged: the pole must be up and held.
    pub hold: f64,
    /// Weight of `Σ ctrl²`.
    pub control_weight: f64,
    /// Weight of the terminal velocities' squares.
    pub velocity_weight: f64,
    /// Slider limit stiffness (N/m), damping (N·s/m) and smoothing (m).
    pub limit: [f64; 3],
    /// L-BFGS iterations at most.
    pub iterations: usize,
    /// Timed (loss, gradient) evaluations.
    pub repeats: usize,
}

impl Default for CartpoleSwingupConfig {
    fn default() -> Self {
        Self {
            model: PathBuf::from("data/robots/dm_control/cartpole.xml"),
            duration: 3.0,
            hold: 0.5,
            control_weight: 1e-4,
            velocity_weight: 0.1,
            limit: [1000.0, 60.0, 0.01],
            iterations: 1000,
            repeats: 10,
        }
    }
}

/// The loaded task.
struct Task {
    model: crate::articulation::Articulation,
    h: f64,
    steps: usize,
    actuated: usize,
    cfg: CartpoleSwingupConfig,
}

impl Task {
    fn load(cfg: &CartpoleSwingupConfig) -> Result<Task> {
        let [ke, kd, smoothing] = cfg.limit;
        let m = read_mjcf(
            &cfg.model,
            &MjcfOptions {
                limits: Some(LimitLaw { ke, kd, smoothing }),
                ..MjcfOptions::default()
            },
        )?;
        let (nv, acts) = (m.articulation.nv(), m.actuators.len());
        let kinds: Vec<&str> = m
            .articulation
            .links
            .iter()
            .filter_map(|l| match l.joint.kind {
                JointKind::Prismatic { .. } => Some("slide"),
                JointKind::Revolute { .. } => Some("hinge"),
                _ => None,
            })
            .collect();
        let cart_first =
            kinds == ["slide", "hinge"] && m.actuators.first().is_some_and(|a| a.dof == 0);
        if nv != 2 || acts != 1 || !cart_first {
            return Err(DiffsimError::config(format!(
                "'{}' is not a cartpole (a motor on a slide joint carrying one hinge): {nv} velocity coordinates, {acts} actuators",
                cfg.model.display()
            )));
        }
        Ok(Task {
            h: m.timestep,
            steps: (cfg.duration / m.timestep).round() as usize,
            actuated: m.actuators[0].dof,
            model: m.articulation,
            cfg: cfg.clone(),
        })
    }

    fn hinge(&self) -> usize {
        1 - self.actuated
    }

    /// The rollout from the hanging pole under per-step controls `p`.
    fn rollout(&self, scheme: Scheme, p: &[f64]) -> Result<crate::articulation::JointRollout> {
        let stepper = JointStepper::new(&self.model, self.h, scheme)?;
        let mut q0 = vec![0.0; 2];
        q0[self.hinge()] = std::f64::consts::PI;
        stepper.rollout(&q0, &[0.0; 2], &self.controls(p), self.steps)
    }

    fn controls(&self, p: &[f64]) -> Vec<Vec<f64>> {
        p.iter()
            .map(|&u| {
                let mut c = vec![0.0; 2];
                c[self.actuated] = u;
                c
            })
            .collect()
    }

    /// `(loss, gradient)` of the controls.
    /// The first step of the hold window.
    fn hold_start(&self) -> usize {
        let window = (self.cfg.hold / self.h).round() as usize;
        self.steps - window.min(self.steps)
    }

    fn evaluate(&self, scheme: Scheme, p: &[f64]) -> Result<(f64, Vec<f64>)> {
        let run = self.rollout(scheme, p)?;
        let (x, th) = (self.actuated, self.hinge());
        let (w, c) = (self.cfg.velocity_weight, self.cfg.control_weight);
        let first = self.hold_start();
        let count = (self.steps + 1 - first) as f64;
        let mut loss = c * p.iter().map(|u| u * u).sum::<f64>();
        let mut bars = vec![(Vec::new(), Vec::new()); self.steps + 1];
        for (bar, (q, v)) in bars[first..]
            .iter_mut()
            .zip(run.q[first..].iter().zip(&run.v[first..]))
        {
            loss += (1.0 - q[th].cos() + q[x] * q[x] + w * (v[0] * v[0] + v[1] * v[1])) / count;
            let mut qb = vec![0.0; 2];
            qb[x] = 2.0 * q[x] / count;
            qb[th] = q[th].sin() / count;
            *bar = (qb, v.iter().map(|y| 2.0 * w * y / count).collect());
        }
        let stepper = JointStepper::new(&self.model, self.h, scheme)?;
        let g = stepper.adjoint(&run, &self.controls(p), &bars)?;
        let grad = g
            .controls
            .iter()
            .zip(p)
            .map(|(gc, u)| gc[x] + 2.0 * c * u)
            .collect();
        Ok((loss, grad))
    }

    /// The starting controls: a small smooth push (the hanging rest is a saddle of the loss).
    fn start(&self) -> Vec<f64> {
        (0..self.steps)
            .map(|n| 0.1 * (0.3 * n as f64).sin())
            .collect()
    }
}

/// One scheme's optimisation.
#[derive(Clone, Debug, Serialize)]
pub struct SchemeResult {
    pub scheme: Scheme,
    /// L-BFGS: loss at the start and after each iteration.
    pub trace: Trace,
    /// Final pole angle from upright (deg), cart position (m), speeds (m/s, rad/s).
    pub final_angle_deg: f64,
    /// The largest angle from upright over the hold window (deg).
    pub hold_max_angle_deg: f64,
    pub final_cart: f64,
    pub final_speeds: [f64; 2],
    /// Largest |ctrl| used.
    pub max_ctrl: f64,
    /// `|∇L − FD|∞ / |FD|∞` at the start (central differences, step 1e-6).
    pub fd_error: f64,
    /// Wall time of the optimisation (s).
    pub seconds: f64,
    /// One (loss, gradient) (ms, median).
    pub ms_per_evaluation: f64,
}

/// What the study measured.
#[derive(Clone, Debug, Serialize)]
pub struct CartpoleSwingupResult {
    pub config: CartpoleSwingupConfig,
    pub steps: usize,
    pub timestep: f64,
    pub schemes: Vec<SchemeResult>,
}

/// The angle from upright of a hinge angle, in degrees within ±180.
fn from_upright(theta: f64) -> f64 {
    let t = theta.rem_euclid(std::f64::consts::TAU);
    let t = if t > std::f64::consts::PI {
        t - std::f64::consts::TAU
    } else {
        t
    };
    t.to_degrees()
}

/// Runs the study (no pictures).
pub fn run(cfg: &CartpoleSwingupConfig, progress: &dyn Progress) -> Result<CartpoleSwingupResult> {
    run_task(&Task::load(cfg)?, progress)
}

/// [`run`] on the loaded task.
fn run_task(task: &Task, progress: &dyn Progress) -> Result<CartpoleSwingupResult> {
    let cfg = &task.cfg;
    progress.start("cartpole-swingup", 2);
    let mut schemes = Vec::new();
    for scheme in [Scheme::SemiImplicit, Scheme::ImplicitEuler] {
        let f: Evaluation = Box::new(|p: &[f64]| task.evaluate(scheme, p));
        let p0 = task.start();
        let fd = fd_error(&*f, &p0, 1e-6)?;
        let ms = median_ms(cfg.repeats.max(1), &|| f(&p0))?;
        let (lo, hi) = (vec![-1.0; task.steps], vec![1.0; task.steps]);
        let t0 = std::time::Instant::now();
        let trace = lbfgs_box(&*f, &p0, (&lo, &hi), cfg.iterations, 0.0, 1e-10)?;
        let seconds = t0.elapsed().as_secs_f64();
        let run = task.rollout(scheme, &trace.params)?;
        let (q, v) = (&run.q[task.steps], &run.v[task.steps]);
        schemes.push(SchemeResult {
            scheme,
            final_angle_deg: from_upright(q[task.hinge()]),
            hold_max_angle_deg: run.q[task.hold_start()..]
                .iter()
                .map(|q| from_upright(q[task.hinge()]).abs())
                .fold(0.0, f64::max),
            final_cart: q[task.actuated],
            final_speeds: [v[task.actuated], v[task.hinge()]],
            max_ctrl: trace.params.iter().fold(0.0, |a, u| a.max(u.abs())),
            fd_error: fd,
            seconds,
            ms_per_evaluation: ms,
            trace,
        });
        progress.set(schemes.len() as u64);
    }
    Ok(CartpoleSwingupResult {
        config: cfg.clone(),
        steps: task.steps,
        timestep: task.h,
        schemes,
    })
}

/// The study: `diffsim experiment cartpole-swingup`.
pub struct CartpoleSwingup;

impl Study for CartpoleSwingup {
    const NAME: &'static str = "cartpole-swingup";
    const ABOUT: &'static str = "R9, dm_control's cartpole swung up by per-step motor controls: L-BFGS on the adjoint gradient through 300 steps (semi-implicit and implicit Euler)";
    type Config = CartpoleSwingupConfig;
    type Result = CartpoleSwingupResult;

    fn full() -> CartpoleSwingupConfig {
        CartpoleSwingupConfig::default()
    }

    fn quick() -> CartpoleSwingupConfig {
        CartpoleSwingupConfig {
            iterations: 15,
            repeats: 2,
            ..CartpoleSwingupConfig::default()
        }
    }

    fn validate(cfg: &CartpoleSwingupConfig) -> Result<()> {
        let ok = |x: f64| x.is_finite() && x >= 0.0;
        let fine = cfg.duration.is_finite()
            && cfg.duration > 0.0
            && cfg.hold >= 0.0
            && cfg.hold < cfg.duration
            && ok(cfg.control_weight)
            && ok(cfg.velocity_weight)
            && cfg.limit.iter().all(|&x| ok(x))
            && cfg.limit[2] > 0.0;
        if !fine {
            return Err(DiffsimError::config(
                "cartpole-swingup needs a positive duration, a hold window shorter than it, non-negative weights and limit gains, and a positive limit smoothing",
            ));
        }
        Task::load(cfg).map(|_| ())
    }

    /// Runs [`run`] and writes `loss.png`, `states.png` (cart position and hinge angle over
    /// time), `controls.png` and `swingup.gif` (the semi-implicit solution).
    fn run(
        cfg: &CartpoleSwingupConfig,
        dir: &Path,
        progress: &dyn Progress,
    ) -> Result<CartpoleSwingupResult> {
        let task = Task::load(cfg)?;
        let r = run_task(&task, progress)?;
        let series = r
            .schemes
            .iter()
            .map(|s| {
                (
                    format!("{:?}", s.scheme),
                    log_loss_curve(&s.trace.losses, 0),
                )
            })
            .collect::<Vec<_>>();
        line_plot(
            &dir.join("loss.png"),
            "cartpole-swingup: loss (log10) per L-BFGS iteration",
            "iteration",
            "log10 loss",
            &series,
        )?;
        let mut states = Vec::new();
        let mut controls = Vec::new();
        for s in &r.schemes {
            let run = task.rollout(s.scheme, &s.trace.params)?;
            let t = |n: usize| n as f64 * task.h;
            states.push((
                format!("{:?}: hinge angle (rad; 0 and ±2π upright)", s.scheme),
                run.q
                    .iter()
                    .enumerate()
                    .map(|(n, q)| (t(n), q[task.hinge()]))
                    .collect(),
            ));
            states.push((
                format!("{:?}: cart (m)", s.scheme),
                run.q
                    .iter()
                    .enumerate()
                    .map(|(n, q)| (t(n), q[task.actuated]))
                    .collect(),
            ));
            controls.push((
                format!("{:?}", s.scheme),
                s.trace
                    .params
                    .iter()
                    .enumerate()
                    .map(|(n, u)| (t(n), *u))
                    .collect(),
            ));
        }
        line_plot(
            &dir.join("states.png"),
            "cartpole-swingup: optimised motion",
            "t (s)",
            "",
            &states,
        )?;
        line_plot(
            &dir.join("controls.png"),
            "cartpole-swingup: controls (ctrl, gear 10 N)",
            "t (s)",
            "ctrl",
            &controls,
        )?;
        let best = &r.schemes[0];
        let run = task.rollout(best.scheme, &best.trace.params)?;
        let frames: Vec<Vec<Disc>> = run
            .q
            .iter()
            .step_by(3)
            .map(|q| {
                let (x, th) = (q[task.actuated], q[task.hinge()]);
                let cart = Disc {
                    center: [x, 0.0],
                    radius: 0.15,
                    spoke: [1.0, 0.0],
                };
                let pole = (1..=4).map(|k| {
                    let s = 0.25 * k as f64;
                    Disc {
                        center: [x + s * th.sin(), s * th.cos()],
                        radius: 0.05,
                        spoke: [th.sin(), th.cos()],
                    }
                });
                std::iter::once(cart).chain(pole).collect()
            })
            .collect();
        discs_gif(
            &dir.join("swingup.gif"),
            &frames,
            4,
            &[[0.0, 1.0]],
            "cartpole-swingup: semi-implicit solution",
        )?;
        Ok(r)
    }

    fn report(r: &CartpoleSwingupResult, dir: &Path) -> String {
        let mut lines = vec![format!(
            "{} steps of {} s; loss: mean over the last {} s of (1 − cos θ) + x² + {}(ẋ² + θ̇²), + {}·Σctrl²",
            r.steps, r.timestep, r.config.hold, r.config.velocity_weight, r.config.control_weight
        )];
        for s in &r.schemes {
            let l = &s.trace.losses;
            lines.push(format!(
                "{:?}: loss {:.4} → {:.3e} in {} L-BFGS iterations ({} evaluations, {:.2} s); pole within {:.2}° of upright over the hold, final {:.2}°, cart {:.3} m, speeds ({:.3} m/s, {:.3} rad/s), max |ctrl| {:.2}; adjoint vs FD {:.1e}; (loss, gradient) {:.2} ms",
                s.scheme,
                l[0],
                l[l.len() - 1],
                s.trace.iterations,
                s.trace.evaluations,
                s.seconds,
                s.hold_max_angle_deg,
                s.final_angle_deg,
                s.final_cart,
                s.final_speeds[0],
                s.final_speeds[1],
                s.max_ctrl,
                s.fd_error,
                s.ms_per_evaluation
            ));
        }
        lines.push(format!("pictures: {}", dir.display()));
        study_page(CartpoleSwingup::NAME, &lines)
    }
}
